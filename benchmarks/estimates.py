"""Benchmark 6: the memory estimate (paper's Table 1) for the paper's three designs.

Pure arithmetic from :func:`fhn_core.memory.estimate_memory` (the numbers ``fhn estimate``
prints), on the input sizes of the paper's examples:

- seismic 3D (Table 3) on 1 x 12 x 248^3;
- multi-raster aquifer map, 2D, 848 x 1456 with 112 channels (112/448/1792/7168 channels
  over its levels, 39 layers, rank 24, 3 x 3 kernels);
- hyperspectral time-lapse, 368 x 288 x 184 with 16 channels, 18 layers, one
  coarsening, rank 16.

    python -m benchmarks.estimates
"""

from __future__ import annotations

import sys

from fhn_core.design import aquifer_map, hyperspectral_timelapse, seismic_table3
from fhn_core.memory import GB, estimate_memory

from .harness import BenchOptions, BenchResult, Column, main_for, timed

NAME = "estimates"
CASES = (
    (seismic_table3(), (1, 12, 248, 248, 248)),
    (aquifer_map(), (1, 112, 848, 1456)),
    (hyperspectral_timelapse(), (1, 16, 368, 288, 184)),
)
COLUMNS = [
    Column("design", "design"),
    Column("input", "input"),
    Column("layers", "layers"),
    Column("network", "network"),
    Column("states_gb", "states GB", ".3f"),
    Column("kernels_gb", "kernels GB", ".3f"),
    Column("total_gb", "total GB", ".3f"),
]


def run(opts: BenchOptions) -> BenchResult:
    return timed(lambda: _run(opts))


def _run(opts: BenchOptions) -> BenchResult:
    rows, notes = [], []
    for design, shape in CASES:
        est = estimate_memory(design, shape)
        common = {"design": design.name, "input": "x".join(map(str, shape)),
                  "layers": design.n_layers}
        for network, states, kernels, total in est.rows():
            rows.append({**common, "network": network, "states_gb": states,
                         "kernels_gb": kernels, "total_gb": total})
        rows.append({**common, "network": "training peak (est.)",
                     "total_gb": est.training_peak / GB})
        channels = sorted({s.channels for s in design.layer_specs()})
        notes.append(f"{design.name}: channels per level {channels}, ranks "
                     f"{sorted({s.rank for s in design.segments})}")
    notes.append("GB = 1e9 bytes, float32; the same numbers as `fhn estimate`")
    return BenchResult(NAME, "Memory estimates for the paper's designs (Table 1)", COLUMNS,
                       rows, notes=notes)


def main(argv: list[str] | None = None) -> int:
    return main_for(run, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    sys.exit(main())
