"""Benchmark 5: voxels per second of full-volume prediction on the demo survey.

Runs the product's prediction engine (:func:`fhn_core.prediction.predict_logits`) with the
demo recipe's design on the synthetic demo survey, once in overlapping blocks and once as
a whole volume in one chunk, and reports voxels of the survey per second (blocks, padding
and overlap included, as a user sees it). Weights are freshly initialised: the cost of a
forward pass does not depend on their values. The softmax/entropy step that follows
(:func:`fhn_core.prediction.probabilities_to_prediction`) is timed with it.

    python -m benchmarks.prediction_throughput [--quick] [--device cpu|cuda]
"""

from __future__ import annotations

import sys
import time
import tomllib
from typing import Any

from .harness import (
    BenchOptions,
    BenchResult,
    Column,
    main_for,
    run_child,
    synchronize,
    timed,
)

NAME = "prediction_throughput"
N_CLASSES = 5
COLUMNS = [
    Column("survey", "survey (il x xl x samples)"),
    Column("block", "block"),
    Column("overlap", "overlap"),
    Column("seconds", "seconds", ".2f"),
    Column("mvoxels_per_s", "Mvoxels/s", ".3f"),
]


def sizes(opts: BenchOptions) -> tuple[tuple[int, int, int], list[int | None], int]:
    """(survey shape, block edges where None = whole volume, overlap)."""
    if opts.quick:
        return (32, 32, 64), [32, None], 8
    return (128, 128, 128), [64, None], 16


def measure_prediction(args: dict[str, Any]) -> dict[str, Any]:
    """Child: generate the demo survey, predict it (warm-up, then timed), per block size."""
    import torch

    from assets.demo_project import RECIPE_PATH
    from assets.demo_survey import generate_demo_survey
    from fhn_core import HyperbolicNetwork, NetworkDesign
    from fhn_core.prediction import predict_logits, probabilities_to_prediction
    from fhn_core.task import Normalisation, to_input

    device = args["device"]
    with open(RECIPE_PATH, "rb") as fh:
        design = NetworkDesign.from_dict(tomllib.load(fh)["design"], source=str(RECIPE_PATH))
    torch.manual_seed(0)
    net = HyperbolicNetwork(design).to(device)
    data = generate_demo_survey(tuple(args["shape"]), seed=0).amplitude[None]
    x = to_input(data, Normalisation.of(data), design)
    times = {}
    for block in args["blocks"]:
        def once(block: int | None = block) -> None:
            logits = predict_logits(net, x, N_CLASSES, block=block, overlap=args["overlap"],
                                    device=device)
            probabilities_to_prediction(logits)
        once()  # warm-up: allocator and convolution kernels for this block shape
        synchronize(device)
        start = time.perf_counter()
        once()
        synchronize(device)
        times[str(block)] = time.perf_counter() - start
    return {"status": "ok", "times": times, "voxels": int(data[0].size),
            "design_layers": design.n_layers}


def run(opts: BenchOptions) -> BenchResult:
    return timed(lambda: _run(opts))


def _run(opts: BenchOptions) -> BenchResult:
    shape, blocks, overlap = sizes(opts)
    args = {"shape": list(shape), "blocks": blocks, "overlap": overlap, "device": opts.device}
    result = run_child("benchmarks.prediction_throughput:measure_prediction", args, opts)
    rows, notes = [], []
    if result.get("status") != "ok":
        notes.append(f"prediction failed: {result.get('status')} {result.get('error')}")
    else:
        for block in blocks:
            seconds = result["times"][str(block)]
            rows.append({
                "survey": "x".join(map(str, shape)),
                "block": "whole volume" if block is None else f"{block}^3",
                "overlap": 0 if block is None else overlap,
                "seconds": seconds,
                "mvoxels_per_s": result["voxels"] / seconds / 1e6,
            })
        notes.append(f"demo recipe design ({result['design_layers']} layers), "
                     "fhn_core.prediction.predict_logits + probabilities_to_prediction, "
                     "second call timed")
    return BenchResult(NAME, "Prediction throughput on the demo survey", COLUMNS, rows,
                       notes=notes)


def main(argv: list[str] | None = None) -> int:
    return main_for(run, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    sys.exit(main())
