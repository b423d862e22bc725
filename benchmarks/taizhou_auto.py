"""Taizhou through the product's auto recipe: the score shown to the user against the east.

Issue 21's check that the cross-validated score a user sees is honest. For each seed:
the benchmark's own split (:func:`benchmarks.taizhou_change.split`: 50 reference points per
class from the western half, every reference label of the eastern half held out) becomes
a point-label raster; ``fhn train`` runs on a run TOML with the default ``auto`` recipe
(only the TOML's ``[training]`` settings below are given; nothing is chosen here); then,
once, ``fhn predict`` (network and ``--baseline``) maps the scene and the eastern half is
scored. The network is scored as the product predicts it (two dates: the class mix
re-estimated on the scene, :mod:`fhn_core.priors`) and, for the record only, with
``--class-priors training``. The east is read after every choice is made and never
feeds back into one.

    python -m benchmarks.taizhou_auto --seeds 0 1 2 --budget 15 --out /tmp/tz-auto

prints per seed: the cross-validated kappa (mean ± sd over the spatial folds) of the
network, of its map (the scene's class mix; the record's ``map``) and of the forest as
``fhn train`` reported them, their kappa on the east, and
where the time went (cross-validation, final training, prediction). ``--tile 2`` times the
issue's 800 x 800 x 6 x 2 case on the scene mirrored 2 x 2 (the points in the first copy;
nothing scored).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import tomli_w

from app.cli import main as fhn
from benchmarks.taizhou_change import DATA, load_scene, split
from fhn_core.metrics import evaluate
from io_adapters.hyperspectral import read_envi


def tiled_dates(folder: Path, tile: int) -> list[Path]:
    """The two dates mirrored into tile x tile copies (ENVI, float32): a scene of the size
    the issue's time target names (tile 2: 800 x 800 x 6 x 2) from the real one."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in ("2000TM", "2003TM"):
        cube = read_envi(DATA / name).values.astype("<f4")           # (y, x, band)
        row = np.concatenate([cube if i % 2 == 0 else cube[:, ::-1] for i in range(tile)], 1)
        big = np.concatenate([row if i % 2 == 0 else row[::-1] for i in range(tile)], 0)
        lines, samples, bands = big.shape
        (folder / f"{name}.img").write_bytes(np.ascontiguousarray(big.transpose(2, 0, 1))
                                             .tobytes())
        header = folder / f"{name}.hdr"
        header.write_text(f"ENVI\nsamples = {samples}\nlines = {lines}\nbands = {bands}\n"
                          "header offset = 0\nfile type = ENVI Standard\ndata type = 4\n"
                          "interleave = bsq\nbyte order = 0\n")
        paths.append(header)
    return paths


def run_seed(seed: int, folder: Path, budget: float, training: dict, tile: int = 1) -> dict:
    """One seed through fhn train / fhn predict; the east scored once at the end.

    ``tile`` > 1: the scene mirrored tile x tile times with the seed's points in the first
    copy, for timing only (nothing is scored)."""
    folder.mkdir(parents=True, exist_ok=True)
    _, ref = load_scene()
    train, east = split(ref, seed)
    dates = [DATA / "2000TM", DATA / "2003TM"]
    if tile > 1:
        dates = tiled_dates(folder / "scene", tile)
        train = np.pad(train, [(0, (tile - 1) * n) for n in train.shape], constant_values=-1)
    points = np.where(train >= 0, train + 1, 0).astype(np.int16)  # file: 0 = none
    np.save(folder / "points.npy", points)
    config = {"output": "run",
              "data": {"path": [str(d) for d in dates]},
              "labels": {"path": "points.npy", "classes": ["changed", "unchanged"]},
              "training": {"seed": seed, "budget_minutes": budget, **training}}
    toml = folder / "run.toml"
    toml.write_text(tomli_w.dumps(config))
    started = time.perf_counter()
    if fhn(["train", str(toml)]) != 0:
        raise SystemExit(f"fhn train failed for seed {seed}")
    trained = time.perf_counter() - started
    record = json.loads((folder / "run" / "cross_validation.json").read_text())
    row = {"seed": seed, "chosen": record["chosen"], "iterations": record["iterations"],
           "cv_network": (record["network"]["kappa"], record["network"]["kappa_sd"]),
           "cv_baseline": (record["baseline"]["kappa"], record["baseline"]["kappa_sd"]),
           "cv_map": ((record["map"]["kappa"], record["map"]["kappa_sd"])
                      if record.get("map") else (float("nan"), float("nan"))),
           "timings": record["timings_seconds"], "train_seconds": trained}
    for name, extra in (("network", []), ("baseline", ["--baseline"]),
                        ("network_training_mix", ["--class-priors", "training"])):
        out = folder / f"{name}.npy"
        started = time.perf_counter()
        if fhn(["predict", str(folder / "run"), *map(str, dates), "--out", str(out),
                *extra]) != 0:
            raise SystemExit(f"fhn predict {name} failed for seed {seed}")
        row[f"{name}_predict_seconds"] = time.perf_counter() - started
        row[f"east_{name}"] = (float("nan") if tile > 1 else
                               evaluate(np.load(out), east, 2).kappa)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--budget", type=float, default=15.0, help="budget_minutes")
    parser.add_argument("--out", type=Path, default=Path("taizhou-auto"))
    parser.add_argument("--tile", type=int, default=1,
                        help="time a scene mirrored N x N times (2: 800 x 800); not scored")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="extra [training] settings of the run TOML, e.g. patch=[128,128]")
    args = parser.parse_args(argv)
    if not DATA.is_dir():
        print(f"Taizhou data not found at {DATA}; clone with ../shared beside the repository")
        return 2
    import tomllib

    training = {"device": "cpu"}
    for item in args.set:
        key, _, value = item.partition("=")
        training[key.strip()] = tomllib.loads(f"v = {value}")["v"]
    rows = [run_seed(s, args.out / f"seed{s}", args.budget, training, args.tile)
            for s in args.seeds]
    print("\nseed  chosen              CV network      CV map          CV forest       "
          "east network  east forest  east network, training mix  CV / final / predict (s)")
    for r in rows:
        t = r["timings"]
        print(f"{r['seed']:<5} {r['chosen'][:18]:<18} "
              f"{r['cv_network'][0]:.3f} ± {r['cv_network'][1]:.3f}  "
              f"{r['cv_map'][0]:.3f} ± {r['cv_map'][1]:.3f}  "
              f"{r['cv_baseline'][0]:.3f} ± {r['cv_baseline'][1]:.3f}  "
              f"{r['east_network']:.3f}         {r['east_baseline']:.3f}        "
              f"{r['east_network_training_mix']:.3f}                        "
              f"{t.get('cross_validation', 0):.0f} / {t.get('final_training', 0):.0f} / "
              f"{r['network_predict_seconds']:.0f}")
    (args.out / "summary.json").write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
