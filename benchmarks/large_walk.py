"""The whole product path on a survey larger than memory, by the CLI, step by step.

    nice -n 10 python -m benchmarks.large_walk                  # 8 GB (about 20-30 min)
    python -m benchmarks.large_walk --size 0.5 --workdir /tmp/fhn-walk

A synthetic post-stack SEG-Y of the given size (``benchmarks.streaming``'s generator:
512 crosslines x 512 samples per inline, written one inline at a time, never in memory)
goes through what an interpreter does, each step in its own fresh subprocess (peak RSS =
the child's ``ru_maxrss``, read with ``os.wait4``; glibc's mmap threshold fixed as in the
other benchmarks):

- ``ingest``: ``fhn ingest survey.sgy survey.zarr``;
- ``label``: five wells (a CSV of top/base intervals in ms, classes = the polarity of the
  generator's layer envelope, so the labels are true) placed on the store with a radius of
  1.5 traces (``io_adapters.boreholes.import_borehole_cells``, what ``fhn train`` calls);
- ``train``: ``fhn train run.toml`` on the store: 4 iterations on 64 x 64 x 512
  sub-volumes read as drawn, statistics over every chunk, validation at the end on the
  held-back 20 % of the well cells (the blocks holding them only);
- ``predict + export``: ``fhn predict run/model survey.zarr --out classes.sgy --store
  pred.zarr --block 64 --workers 2``: streamed prediction into Zarr, then the SEG-Y export
  with the source's headers.

The design is small (2 channels, a Haar level, 1x1x1 kernels: this measures the data path
on two cores, not the network). Target (issue 22): no step's peak RSS over 2 GB. All
generated files are deleted at the end (``--keep`` keeps them; ``--keep-store`` keeps only
the ingested ``survey.zarr``, e.g. for ``benchmarks.slice_display``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .harness import Column, format_table
from .streaming import (
    RESULT_PREFIX,
    SAMPLE_INTERVAL_MS,
    run_step,
    survey_shape,
    write_synthetic_segy,
)

MODULE = "benchmarks.large_walk"
RSS_LIMIT_MB = 2000
WELLS = ((0.1, 0.2), (0.3, 0.7), (0.5, 0.5), (0.7, 0.3), (0.9, 0.8))  # fractions of il, xl
COLUMNS = [
    Column("step", "step"), Column("seconds", "s", ".1f"),
    Column("rss", "peak RSS MB", ".0f"), Column("cpu", "child CPU s", ".0f"),
    Column("note", "note"),
]


def well_table(shape: tuple[int, int, int]) -> str:
    """A wells CSV whose intervals follow the generator's layers (see write_synthetic_segy):
    depth index ``k + shift - 1 - i // 8 - 0.05 j`` at sample k of trace (i, j), class
    ``positive`` where ``sin(0.021 depth) > 0``, else ``negative``."""
    n_iline, n_xline, n_samples = shape
    shift = n_iline // 8 + 1
    lines = ["well,iline,xline,top,base,class"]
    for n, (fi, fj) in enumerate(WELLS):
        i, j = int(fi * (n_iline - 1)), int(fj * (n_xline - 1))
        depth = np.arange(n_samples) + shift - 1 - i // 8 - 0.05 * j
        positive = np.sin(0.021 * depth) > 0
        edges = np.flatnonzero(np.diff(positive.astype(int))) + 1
        for top, base in zip([0, *edges], [*edges - 1, n_samples - 1], strict=True):
            name = "positive" if positive[top] else "negative"
            lines.append(f"W{n + 1},{i + 1},{j + 1},{top * SAMPLE_INTERVAL_MS:g},"
                         f"{base * SAMPLE_INTERVAL_MS:g},{name}")
    return "\n".join(lines) + "\n"


def run_config(folder: Path) -> dict:
    return {
        "output": str(folder / "run"),
        "data": {"path": str(folder / "survey.zarr")},
        "labels": {"path": str(folder / "wells.csv"), "radius": 1.5},
        "design": {"in_channels": 2, "spatial_dims": 3, "kernel_size": 1,
                   "segments": [[0, 1, 2], [1, 1, 4], [0, 1, 2]]},
        "training": {"recipe": "fixed", "iterations": 4, "patch": [64, 64, 0],
                     "validate_every": 4,
                     "validation_fraction": 0.2, "checkpoint_every": 0, "device": "cpu",
                     "learning_rate": 0.01},
    }


def _child(step: str, args: list[str]) -> dict:
    import app.cli  # noqa: F401  (imports before the clock starts)
    from app.cli import main

    folder = Path(args[0])
    start = time.perf_counter()
    note = ""
    if step == "generate":
        write_synthetic_segy(folder / "survey.sgy", tuple(int(a) for a in args[1:4]))
    elif step == "ingest":
        if main(["ingest", str(folder / "survey.sgy"), str(folder / "survey.zarr")]) != 0:
            raise SystemExit("ingest failed")
    elif step == "label":
        from io_adapters.boreholes import import_borehole_cells
        from io_adapters.zarr_store import open_segy_store

        cells, wells = import_borehole_cells(folder / "wells.csv",
                                             open_segy_store(folder / "survey.zarr"), 1.5)
        note = f"{len(wells)} wells, {len(cells.cells)} labelled cells"
    elif step == "train":
        if main(["train", str(folder / "run.toml")]) != 0:
            raise SystemExit("train failed")
    elif step == "predict":
        if main(["predict", str(folder / "run" / "model"), str(folder / "survey.zarr"),
                 "--out", str(folder / "classes.sgy"), "--store", str(folder / "pred.zarr"),
                 "--block", "64", "--workers", "2", "--device", "cpu"]) != 0:
            raise SystemExit("predict failed")
    else:
        raise SystemExit(f"unknown step {step}")
    return {"seconds": time.perf_counter() - start, "note": note}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=float, default=8.0, help="SEG-Y size in GB (default 8)")
    parser.add_argument("--workdir", type=Path, help="where the files go (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    parser.add_argument("--keep-store", action="store_true",
                        help="delete everything but the ingested survey.zarr")
    parser.add_argument("--child", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    ns = parser.parse_args(argv)
    if ns.child:
        print(RESULT_PREFIX + json.dumps(_child(ns.child[0], ns.child[1:])), flush=True)
        return 0
    import tomli_w

    work = Path(ns.workdir or tempfile.mkdtemp(prefix="fhn-walk-"))
    work.mkdir(parents=True, exist_ok=True)
    shape = survey_shape(ns.size)
    need = ns.size * 1e9 * (3 + 14 / 4) * 1.05  # SEG-Y, store, products, export
    if shutil.disk_usage(work).free < need:
        raise SystemExit(f"needs {need / 1e9:.0f} GB of disk in {work}")
    print(f"survey {ns.size:g} GB: {shape[0]} x {shape[1]} x {shape[2]} "
          f"({int(np.prod(shape)) / 1e9:.2f} G cells) in {work}; load average at start "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    rows = []
    try:
        (work / "wells.csv").write_text(well_table(shape))
        (work / "run.toml").write_text(tomli_w.dumps(run_config(work)))
        for step in ("generate", "ingest", "label", "train", "predict"):
            args = (str(work), *map(str, shape)) if step == "generate" else (str(work),)
            r = run_step(step, *args, log=work.parent / f"{work.name}-steps.log",
                         module=MODULE)
            name = "predict + SEG-Y export" if step == "predict" else step
            rows.append({"step": name, "seconds": r["seconds"], "rss": r["peak_rss_mb"],
                         "cpu": r["cpu_seconds"], "note": r["note"]})
            print(format_table(COLUMNS, rows[-1:]), flush=True)
    finally:
        if ns.keep_store:
            for path in work.iterdir():
                if path.name != "survey.zarr":
                    shutil.rmtree(path) if path.is_dir() else path.unlink()
        elif not ns.keep:
            shutil.rmtree(work, ignore_errors=True)
    print("\n" + format_table(COLUMNS, rows))
    worst = max(rows, key=lambda r: r["rss"])
    verdict = "pass" if worst["rss"] <= RSS_LIMIT_MB else "FAIL"
    print(f"\ntarget: every step's peak RSS <= {RSS_LIMIT_MB} MB: largest {worst['rss']:.0f} MB "
          f"({worst['step']}): {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
