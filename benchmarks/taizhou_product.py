"""Taizhou change detection through the product path: ``fhn sample-points``, ``fhn train``
with a run TOML, ``fhn predict --augment``, ``fhn evaluate --region``.

The protocol of ``taizhou_change`` (50 points per class drawn, seeded, from the western
half x < 200 of the reference masks; every reference label of the eastern half scored),
with the network settings that method chose on the western proxies, expressed as product
settings: the 2D five-segment design with two zero channels, the change channels
(``[data] change_channels``), an ensemble of three networks (``[training] ensemble``),
75 iterations of Adam (lr 3e-3, cosine, weight decay 0.03), test-time flips. It is
``taizhou_change``'s ``zeros+cva+ensemble+tta`` made of product settings; the mixed and
time-lapse members of that script's default are not (yet) product settings. The east is
a frozen test set: run this to report a figure, never to choose a setting.

    python -m benchmarks.taizhou_product [--seeds 0 1 2 3 4] [--work DIR] [--ensemble 3]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import tempfile
import time
from pathlib import Path

import tomli_w

from app.cli import main as fhn

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "changedetection" / "taizhou"
WEST, EAST = "x < 200", "x >= 200"


def run_config(work: Path, points: Path, ensemble: int, seed: int) -> dict:
    """The run TOML of one seed: what a user of ``fhn train`` would write."""
    return {
        "output": str(work / "run"),
        "data": {"path": [str(DATA / "2000TM"), str(DATA / "2003TM")],
                 "change_channels": True},
        "labels": {"points": str(points), "classes": ["changed", "unchanged"]},
        "design": {"spatial_dims": 2, "in_channels": 21, "zero_channels": 2,
                   "segments": [[0, 1, 8], [1, 2, 16], [2, 2, 16], [1, 2, 16], [0, 1, 8]]},
        "training": {"recipe": "fixed", "iterations": 75, "learning_rate": 3e-3,
                     "schedule": "cosine",
                     "weight_decay": 0.03, "validation_fraction": 0.0, "validate_every": 0,
                     "ensemble": ensemble, "seed": seed, "checkpoint_every": 0},
    }


def one_seed(seed: int, work: Path, ensemble: int) -> float:
    """Kappa on the east of the product path trained on seed ``seed``'s western points."""
    masks = [str(DATA / "change.bmp"), str(DATA / "unchanged.bmp")]
    points = work / "points.csv"
    steps = [
        ["sample-points", "--masks", *masks, "--per-class", "50", "--region", WEST,
         "--seed", str(seed), "--out", str(points)],
    ]
    config = work / "run.toml"
    prediction = work / "classes.npy"
    steps += [
        ["train", str(config)],
        ["predict", str(work / "run"), str(DATA / "2000TM"), str(DATA / "2003TM"),
         "--out", str(prediction), "--augment"],
        ["evaluate", str(prediction), "--masks", *masks, "--region", EAST,
         "--model", str(work / "run")],
    ]
    printed = io.StringIO()
    for step in steps:
        if step[0] == "train":
            config.write_text(tomli_w.dumps(run_config(work, points, ensemble, seed)))
        with contextlib.redirect_stdout(printed):
            code = fhn(step)
        if code != 0:
            raise SystemExit(f"fhn {step[0]} failed with exit code {code}")
    return float(re.findall(r"kappa (\d\.\d+)", printed.getvalue())[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--ensemble", type=int, default=3)
    parser.add_argument("--work", type=Path, default=None,
                        help="folder for the runs (default: a temporary one, removed)")
    args = parser.parse_args(argv)
    if not DATA.is_dir():
        print(f"Taizhou data not found at {DATA}; clone with ../shared beside the repository")
        return 1
    kappas = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            work = (args.work or Path(tmp)) / f"seed{seed}"
            work.mkdir(parents=True, exist_ok=True)
            start = time.perf_counter()
            kappas.append(one_seed(seed, work, args.ensemble))
            print(f"seed {seed}  fhn product path (ensemble {args.ensemble})  kappa "
                  f"{kappas[-1]:.4f}  ({time.perf_counter() - start:.0f} s)", flush=True)
    print(f"mean kappa {sum(kappas) / len(kappas):.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
