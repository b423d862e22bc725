"""Benchmark 1: peak memory of one training step against depth, for the three gradient modes.

Same network, same input, same BLR rank; only the gradient mechanism changes:
``invertible`` (states rebuilt backwards, this product), ``autograd`` (every state kept)
and ``checkpoint`` (torch.utils.checkpoint per layer). Each configuration runs in a fresh
subprocess. The peak is also given in units of one state tensor (the input's size).

    python -m benchmarks.memory_depth [--quick] [--device cpu|cuda]
"""

from __future__ import annotations

import sys

from .harness import (
    MODES,
    BenchOptions,
    BenchResult,
    Column,
    Target,
    cpu_or_gpu_shape,
    describe_failure,
    main_for,
    memory_row,
    probe_memory,
    ratio,
    state_bytes,
    timed,
    u_design,
)

NAME = "memory_depth"
RANK = 8
COLUMNS = [
    Column("depth", "depth"),
    Column("mode", "mode"),
    Column("peak_mb", "peak MB", ".1f"),
    Column("peak_states", "peak / state", ".1f"),
    Column("step_s", "step s", ".1f"),
    Column("status", "status"),
]


def sizes(opts: BenchOptions) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(input shape, depths) for the run."""
    if opts.quick:
        return (1, 4, 16, 16, 16), (2, 4, 8)
    return cpu_or_gpu_shape(opts), (8, 16, 32, 64)


def run(opts: BenchOptions) -> BenchResult:
    return timed(lambda: _run(opts))


def _run(opts: BenchOptions) -> BenchResult:
    shape, depths = sizes(opts)
    rows, notes = [], []
    for depth in depths:
        design = u_design(shape[1], 0, depth, RANK)
        for mode in MODES:
            result = probe_memory(design, shape, mode, opts)
            rows.append({"depth": depth, "mode": mode, **memory_row(result, shape)})
            failure = describe_failure(f"depth {depth} {mode}", result)
            if failure:
                notes.append(failure)
    peak = {(r["depth"], r["mode"]): r["peak_mb"] for r in rows}
    lo, hi = depths[0], depths[-1]
    mid = 32 if 32 in depths else depths[len(depths) // 2]
    targets = [
        Target(f"invertible peak depth {hi} / depth {lo}",
               ratio(peak[hi, "invertible"], peak[lo, "invertible"]), "<=", 1.15),
        Target(f"autograd peak depth {hi} / depth {lo}",
               ratio(peak[hi, "autograd"], peak[lo, "autograd"]), ">=", 4.0),
        Target(f"depth {mid}: invertible / checkpoint peak",
               ratio(peak[mid, "invertible"], peak[mid, "checkpoint"]), "<=", 0.5),
        Target(f"depth {mid}: invertible / autograd peak",
               ratio(peak[mid, "invertible"], peak[mid, "autograd"]), "<=", 0.3),
    ]
    notes.insert(0, f"input {'x'.join(map(str, shape))}, one level, BLR rank {RANK}; "
                    f"one state = {state_bytes(shape) / 1e6:.2f} MB")
    return BenchResult(NAME, "Memory vs depth (one training step)", COLUMNS, rows, targets, notes)


def main(argv: list[str] | None = None) -> int:
    return main_for(run, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    sys.exit(main())
