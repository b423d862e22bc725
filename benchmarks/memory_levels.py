"""Benchmark 2: memory against the number of Haar coarsenings, with and without BLR.

In 3D every coarsening multiplies the channels by 8, so a full C x C kernel grows by 64
per level: the kernel-memory explosion of the paper. A block-low-rank layer (eq. 3.17)
keeps the kernel at r x C. Designs: U-shaped, levels 0..L..0, two layers per segment,
gradient mode ``invertible``. "Without BLR" means rank = the channel count at each level.
Configurations whose kernels (weights plus gradients) exceed the measuring limit are not
run: their row is estimated with :func:`fhn_core.memory.estimate_memory` and marked so.

    python -m benchmarks.memory_levels [--quick] [--device cpu|cuda]
"""

from __future__ import annotations

import sys
from typing import Any

from fhn_core.memory import estimate_memory

from .harness import (
    MB,
    BenchOptions,
    BenchResult,
    Column,
    describe_failure,
    main_for,
    probe_memory,
    ratio,
    state_bytes,
    timed,
    u_design,
)

NAME = "memory_levels"
RANK = 8
LAYERS_PER_SEGMENT = 2
MODE = "invertible"
COLUMNS = [
    Column("levels", "coarsenings"),
    Column("blr", "BLR"),
    Column("layers", "layers"),
    Column("coarse_channels", "channels at coarsest"),
    Column("coarse_rank", "rank at coarsest"),
    Column("kernels_mb", "kernels MB", ".1f"),
    Column("peak_mb", "step peak MB", ".1f"),
    Column("peak_states", "peak / state", ".1f"),
    Column("source", "source"),
]


def sizes(opts: BenchOptions) -> tuple[tuple[int, ...], tuple[int, ...], float]:
    """(input shape, levels, kernel bytes above which a row is only estimated)."""
    if opts.quick:
        return (1, 2, 16, 16, 16), (1, 2, 3, 4), 0.2e9
    # 32^3 is the smallest cube that 4 coarsenings leave at 2^3. Full kernels at level 3
    # are 1.8 GB per layer (4096 x 4096 x 27 x 4 bytes): estimated on a CPU.
    limit = 20e9 if opts.on_gpu else 1.0e9
    return (1, 8, 32, 32, 32), (1, 2, 3, 4), limit


def run(opts: BenchOptions) -> BenchResult:
    return timed(lambda: _run(opts))


def _row(levels: int, blr: bool, design: Any, shape: tuple[int, ...]) -> dict[str, Any]:
    coarse = max(design.segments, key=lambda s: s.level)
    est = estimate_memory(design, shape)
    return {
        "levels": levels,
        "blr": "yes" if blr else "no",
        "layers": design.n_layers,
        "coarse_channels": design.channels_at(coarse.level),
        "coarse_rank": coarse.rank,
        "kernels_mb": (est.kernels_blr if blr else est.kernels_full) / MB,
    }


def _run(opts: BenchOptions) -> BenchResult:
    shape, all_levels, limit = sizes(opts)
    rows, notes = [], []
    for levels in all_levels:
        depth = LAYERS_PER_SEGMENT * (2 * levels + 1)
        for blr in (True, False):
            design = u_design(shape[1], levels, depth, RANK if blr else None)
            row = _row(levels, blr, design, shape)
            kernels = row["kernels_mb"] * MB
            if 2 * kernels > limit:
                # Weights and their gradients alone pass the limit: estimate, do not run.
                est = estimate_memory(design, shape)
                peak = est.states_invertible + 2 * kernels
                row.update(peak_mb=peak / MB, source="estimated")
            else:
                result = probe_memory(design, shape, MODE, opts)
                failure = describe_failure(f"{levels} levels, BLR {row['blr']}", result)
                if failure:
                    notes.append(failure)
                # The weights exist before the measured step starts: add them back.
                peak = (
                    result["peak_bytes"] + result["param_bytes"]
                    if result.get("status") == "ok" else None
                )
                row.update(peak_mb=None if peak is None else peak / MB, source="measured")
            row["peak_states"] = None if row["peak_mb"] is None else (
                row["peak_mb"] * MB / state_bytes(shape))
            rows.append(row)
    by = {(r["levels"], r["blr"]): r for r in rows}
    top = all_levels[-1]
    explosion = ratio(by[top, "no"]["kernels_mb"], by[top, "yes"]["kernels_mb"])
    notes.append(f"{top} coarsenings: kernels without BLR are {explosion:.0f} x those with BLR")
    notes.insert(0, (
        f"input {'x'.join(map(str, shape))}, mode {MODE}, {LAYERS_PER_SEGMENT} layers per "
        f"segment, BLR rank {RANK}; step peak includes the weights; estimated rows = 3 states "
        "+ weights + their gradients (estimate_memory), not run because weights and "
        f"gradients alone pass {limit / 1e9:g} GB"))
    return BenchResult(NAME, "Memory vs coarsening, with and without BLR", COLUMNS, rows,
                       notes=notes)


def main(argv: list[str] | None = None) -> int:
    return main_for(run, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    sys.exit(main())
