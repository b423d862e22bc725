"""Benchmark 6: the memory estimate (paper's Table 1) for the paper's three designs.

Pure arithmetic from :func:`fhn_core.memory.estimate_memory` (the numbers ``fhn estimate``
prints), on the input sizes of the paper's examples:

- seismic 3D (Table 3) on 1 x 12 x 248^3 (30 layers, 2/3/3/10/3/3/6 per level);
- aquifer map (Table 2), 2D, 848 x 1456 with 112 channels (112/448/1792/7168 channels
  over its levels, 38 layers with 17 at the coarsest, rank 24, 3 x 3 kernels);
- hyperspectral time-lapse (Table 2), 368 x 288 x 184 with 16 channels, 6 + 12 layers,
  one coarsening and no refinement (output on the coarse grid), rank 16.

The designs and inputs come from :mod:`fhn_core.paper`; ``fhn estimate PRESET`` prints the
same rows beside the paper's printed Table 1.

    python -m benchmarks.estimates
"""

from __future__ import annotations

import sys

from fhn_core.memory import GB, estimate_memory
from fhn_core.memory_check import check_memory
from fhn_core.paper import EXAMPLES

from .harness import BenchOptions, BenchResult, Column, main_for, timed

NAME = "estimates"
CASES = tuple((e.design(), e.input_shape) for e in EXAMPLES.values())
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
        run = check_memory(design, shape[2:], None, None)
        rows.append({**common, "network": "training run (memory_check)",
                     "total_gb": run.needed / GB})
        channels = sorted({s.channels for s in design.layer_specs()})
        notes.append(f"{design.name}: channels per level {channels}, ranks "
                     f"{sorted({s.rank for s in design.segments})}")
    notes.append("GB = 1e9 bytes, float32; the same numbers as `fhn estimate`; the training "
                 "run row is fhn_core.memory_check on the whole input (held + the larger of "
                 "a step and the whole-volume pass)")
    return BenchResult(NAME, "Memory estimates for the paper's designs (Table 1)", COLUMNS,
                       rows, notes=notes)


def main(argv: list[str] | None = None) -> int:
    return main_for(run, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    sys.exit(main())
