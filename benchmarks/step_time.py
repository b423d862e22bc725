"""Benchmark 3: time of one training step, the three gradient modes alternated in one process.

For each design (no coarsening or three, depth 8 or 32) one child process builds ONE
network and switches its ``gradient_mode`` between steps, rotating the order every round,
so that all modes see the same weights, the same machine load and the same allocator
state. After a warm-up round, the median of the timed steps is reported, with the ratios
invertible / autograd and invertible / checkpoint.

    python -m benchmarks.step_time [--quick] [--device cpu|cuda]
"""

from __future__ import annotations

import statistics
import sys
import time
from typing import Any

from .harness import (
    MODES,
    BenchOptions,
    BenchResult,
    Column,
    Target,
    cpu_or_gpu_shape,
    main_for,
    make_batch,
    ratio,
    run_child,
    synchronize,
    timed,
    train_step,
    u_design,
)

NAME = "step_time"
RANK = 8
COLUMNS = [
    Column("coarsenings", "coarsenings"),
    Column("depth", "depth"),
    Column("invertible_s", "invertible s", ".3f"),
    Column("autograd_s", "autograd s", ".3f"),
    Column("checkpoint_s", "checkpoint s", ".3f"),
    Column("inv_over_autograd", "inv / autograd", ".2f"),
    Column("inv_over_checkpoint", "inv / checkpoint", ".2f"),
    Column("min_inv_over_autograd", "min: inv / autograd", ".2f"),
    Column("min_inv_over_checkpoint", "min: inv / checkpoint", ".2f"),
    Column("steps", "timed steps"),
]


def sizes(opts: BenchOptions) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], int]:
    """(input shape, levels, depths, timed steps per mode)."""
    if opts.quick:
        return (1, 4, 16, 16, 16), (0, 3), (8,), 3
    return cpu_or_gpu_shape(opts), (0, 3), (8, 32), 5


def time_modes(args: dict[str, Any]) -> dict[str, Any]:
    """Child: time ``rounds`` steps per mode, modes alternated, after one warm-up round."""
    import torch

    from fhn_core import HyperbolicNetwork, NetworkDesign

    device = args["device"]
    torch.manual_seed(0)
    net = HyperbolicNetwork(NetworkDesign.from_dict(args["design"])).to(device)
    x, labels = make_batch(args["shape"], device)
    times: dict[str, list[float]] = {m: [] for m in MODES}
    for round_ in range(args["rounds"] + 1):
        order = MODES[round_ % len(MODES):] + MODES[:round_ % len(MODES)]
        for mode in order:
            net.gradient_mode = mode
            net.zero_grad(set_to_none=True)
            synchronize(device)
            start = time.perf_counter()
            train_step(net, x, labels)
            synchronize(device)
            if round_ > 0:  # round 0 is the warm-up
                times[mode].append(time.perf_counter() - start)
    return {"status": "ok", "times": times}


def run(opts: BenchOptions) -> BenchResult:
    return timed(lambda: _run(opts))


def _run(opts: BenchOptions) -> BenchResult:
    shape, all_levels, depths, rounds = sizes(opts)
    rows, notes = [], []
    for levels in all_levels:
        for depth in depths:
            design = u_design(shape[1], levels, depth, RANK)
            args = {"design": design.to_dict(), "shape": list(shape), "device": opts.device,
                    "rounds": rounds}
            result = run_child("benchmarks.step_time:time_modes", args, opts)
            row: dict[str, Any] = {"coarsenings": levels, "depth": depth, "steps": rounds}
            if result.get("status") != "ok":
                notes.append(f"{levels} coarsenings, depth {depth}: {result.get('error')}")
                rows.append(row)
                continue
            med = {m: statistics.median(t) for m, t in result["times"].items()}
            row.update({f"{m}_s": med[m] for m in MODES})
            row["inv_over_autograd"] = ratio(med["invertible"], med["autograd"])
            row["inv_over_checkpoint"] = ratio(med["invertible"], med["checkpoint"])
            fastest = {m: min(t) for m, t in result["times"].items()}
            row["min_inv_over_autograd"] = ratio(fastest["invertible"], fastest["autograd"])
            row["min_inv_over_checkpoint"] = ratio(fastest["invertible"], fastest["checkpoint"])
            rows.append(row)
    targets = []
    for r in rows:
        where = f"{r['coarsenings']} coarsenings, depth {r['depth']}"
        targets += [
            Target(f"{where}: step time invertible / autograd",
                   r.get("inv_over_autograd"), "<=", 1.25),
            Target(f"{where}: step time invertible / checkpoint",
                   r.get("inv_over_checkpoint"), "<=", 1.10),
        ]
    notes.insert(0, (
        f"input {'x'.join(map(str, shape))}, BLR rank {RANK}, median of {rounds} steps per "
        "mode after a warm-up round; 3 coarsenings = U-shaped design, levels 0-1-2-3-2-1-0"))
    notes.append("targets are checked on the medians (as specified); the ratios of the fastest "
                 "steps are shown beside them because on a shared machine single steps of the "
                 "same configuration vary several-fold with the other processes' load")
    return BenchResult(NAME, "Step time (median seconds per training step)", COLUMNS, rows,
                       targets, notes)


def main(argv: list[str] | None = None) -> int:
    return main_for(run, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    sys.exit(main())
