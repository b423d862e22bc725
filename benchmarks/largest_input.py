"""Benchmark 4: the largest cube whose training step fits a memory budget, per gradient mode.

Design: 32 layers, three coarsenings (U-shaped, levels 0-1-2-3-2-1-0), BLR rank 8, input
1 x 8 x E^3 with E a multiple of 2^3. Every probe is one training step in a fresh child
that stops itself as soon as its memory growth passes the budget (an RSS watchdog and an
address-space limit on a CPU, the per-process memory fraction on a GPU), so a probe can
never take the machine down. The search: extrapolate from the last fitting probe
(peak ~ E^3) until a probe fails, then bisect between the largest fit and the smallest
failure down to one step of 8.

    python -m benchmarks.largest_input [--quick] [--device cpu|cuda] [--budget-gb 6]
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .harness import (
    GB,
    MB,
    MODES,
    BenchOptions,
    BenchResult,
    Column,
    Target,
    main_for,
    probe_memory,
    ratio,
    timed,
    u_design,
)

NAME = "largest_input"
RANK = 8
LEVELS = 3
DEPTH = 32
IN_CHANNELS = 8
UNIT = 2**LEVELS
MAX_EDGE = 4096
# Default CPU budget (GB). The issue asks for 6 GB; the default run uses less because on
# 2 cores one 32-layer step at the cube that fills 6 GB (edge ~190) takes longer than the
# whole benchmark may. --budget-gb 6 runs it. Not less than 0.5 GB: below that, autograd's
# largest cube (edge <= 48 for 8 channels) falls on PyTorch's im2col CPU convolution
# (slow_conv3d, chosen for N = 1 when N * C * D * H <= 20480) with its 27-state column
# buffer, while the invertible network's cube is on oneDNN: an unfair comparison.
CPU_BUDGET_GB = 0.5
QUICK_BUDGET_GB = 0.03
QUICK_CHANNELS, QUICK_DEPTH = 2, 8
# Keep this much of the machine's available memory free whatever the budget says.
RESERVE_BYTES = int(2 * GB)
COLUMNS = [
    Column("mode", "mode"),
    Column("largest_edge", "largest edge"),
    Column("voxels_m", "voxels (M)", ".2f"),
    Column("peak_mb", "peak MB at that edge", ".0f"),
    Column("first_fail", "smallest failing edge"),
    Column("bytes_per_voxel", "bytes/voxel (slope)", ".0f"),
    Column("probes", "probes"),
    Column("budget_gb", "budget GB", ".2f"),
]

Probe = Callable[[int], tuple[bool, float | None]]


def search_largest(
    probe: Probe, budget: float, start: int, unit: int = UNIT, max_edge: int = MAX_EDGE
) -> tuple[int, int | None, list[tuple[int, bool, float | None]]]:
    """The largest multiple of ``unit`` for which ``probe(edge)`` fits the budget.

    ``probe`` returns (fits, peak bytes or None). Extrapolates with peak ~ edge^3 from
    each fitting probe until one fails (or ``max_edge`` fits), then bisects. Returns
    (largest fitting edge or 0, smallest failing edge or None, the probes in order).
    """
    history: list[tuple[int, bool, float | None]] = []
    lo, hi = 0, None
    edge = max(unit, start - start % unit)
    while hi is None:
        fits, peak = probe(edge)
        history.append((edge, fits, peak))
        if not fits:
            hi = edge
            break
        lo = edge
        if edge >= max_edge:
            break
        grow = (budget / peak) ** (1 / 3) if peak and peak > 0 else 2.0
        guess = math.ceil(min(max(grow, 1.0), 2.0) * edge / unit) * unit
        edge = min(max(guess, edge + unit), max_edge)
    while hi is not None and hi - lo > unit:
        mid = lo + (hi - lo) // (2 * unit) * unit
        fits, peak = probe(mid)
        history.append((mid, fits, peak))
        lo, hi = (mid, hi) if fits else (lo, mid)
    return lo, hi, history


def bytes_per_voxel(points: list[tuple[int, float]]) -> float | None:
    """Slope b of peak = a + b E^3 through the two largest fitting probes, None if < 2.

    The fixed part a (kernels, their gradients, allocator) favours whichever mode has the
    smaller one at a small budget; the slope is what decides the edge at a large budget.
    Only the two largest probes are used: small cubes may run on a different CPU
    convolution back end (see CPU_BUDGET_GB) with a different workspace per voxel.
    """
    points = sorted(dict(points).items())[-2:]
    if len(points) < 2:
        return None
    xs = [float(e) ** 3 for e, _ in points]
    ys = [p for _, p in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx


def available_bytes() -> int | None:
    """MemAvailable from /proc/meminfo, or None where it cannot be read."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def budget_bytes(opts: BenchOptions) -> tuple[int, list[str]]:
    """The budget: --budget-gb, else the card's memory (GPU) or the CPU default."""
    import torch

    notes = []
    if opts.budget_gb is not None:
        budget = int(opts.budget_gb * GB)
    elif opts.on_gpu:
        budget = torch.cuda.get_device_properties(opts.device).total_memory
    else:
        budget = int((QUICK_BUDGET_GB if opts.quick else CPU_BUDGET_GB) * GB)
    if not opts.on_gpu:
        free = available_bytes()
        if free is not None and budget > free - RESERVE_BYTES:
            notes.append(f"budget lowered from {budget / GB:.2f} GB to what the machine has free")
            budget = max(int(0.1 * GB), free - RESERVE_BYTES)
    return budget, notes


def run(opts: BenchOptions) -> BenchResult:
    return timed(lambda: _run(opts))


def _run(opts: BenchOptions) -> BenchResult:
    budget, notes = budget_bytes(opts)
    channels = QUICK_CHANNELS if opts.quick else IN_CHANNELS
    design = u_design(channels, LEVELS, QUICK_DEPTH if opts.quick else DEPTH, RANK)
    start = 16 if opts.quick else 32
    rows: list[dict[str, Any]] = []
    for mode in MODES:
        peaks: dict[int, float | None] = {}

        def probe(edge: int, mode: str = mode, peaks: dict = peaks) -> tuple[bool, float | None]:
            shape = (1, channels, edge, edge, edge)
            result = probe_memory(design, shape, mode, opts, budget_bytes=budget)
            ok = result.get("status") == "ok"
            if result.get("status") not in ("ok", "over_budget"):
                notes.append(f"{mode} edge {edge}: {result.get('status')} {result.get('error')}")
            peaks[edge] = result.get("peak_bytes") if ok else None
            return ok, peaks[edge]

        best, fail, history = search_largest(probe, budget, start)
        peak = peaks.get(best)
        rows.append({
            "mode": mode,
            "largest_edge": best,
            "voxels_m": best**3 / 1e6,
            "peak_mb": None if peak is None else peak / MB,
            "first_fail": fail,
            "bytes_per_voxel": bytes_per_voxel(
                [(e, p) for e, p in peaks.items() if p is not None]),
            "probes": " ".join(f"{e}{'+' if ok else '-'}" for e, ok, _ in history),
            "budget_gb": budget / GB,
        })
    edge = {r["mode"]: r["largest_edge"] for r in rows}
    targets = [Target("largest edge invertible / autograd",
                      ratio(edge["invertible"], edge["autograd"]), ">=", 1.6)]
    slope = {r["mode"]: r["bytes_per_voxel"] for r in rows}
    limit = ratio(slope["autograd"], slope["invertible"])
    if limit is not None and limit > 0:
        notes.append(f"at a large budget the edge ratio invertible / autograd tends to "
                     f"(slope ratio)^(1/3) = {limit ** (1 / 3):.2f} (voxels x {limit:.2f})")
    notes.insert(0, (
        f"design: {design.n_layers} layers, {LEVELS} coarsenings, BLR rank {RANK}, input "
        f"1 x {channels} x E^3, E a multiple of {UNIT}; probes: edge then + (fits) or - "
        "(over budget)"))
    return BenchResult(NAME, "Largest trainable cube within the memory budget", COLUMNS, rows,
                       targets, notes)


def main(argv: list[str] | None = None) -> int:
    return main_for(run, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    sys.exit(main())
