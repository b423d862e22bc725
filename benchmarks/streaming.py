"""Surveys larger than memory: ingest, streamed prediction and SEG-Y export, step by step.

    python -m benchmarks.streaming                       # 0.5, 8 and 2 GB (about 15 min)
    python -m benchmarks.streaming --sizes 0.5 --workdir /tmp/fhn-stream

For each size a synthetic post-stack SEG-Y (512 crosslines x 512 samples per inline, as
many inlines as the size needs; IEEE floats, inline/crossline/CDP headers) is written by
a streaming generator, one inline at a time, never held in memory. Then, each step in its
own fresh subprocess (peak RSS = ``ru_maxrss`` of that child, read with ``os.wait4``):

- ``ingest``: ``fhn ingest SURVEY.sgy SURVEY.zarr`` (64^3 chunks);
- ``predict``: ``fhn predict MODEL SURVEY.zarr --out PRED.zarr --block 64 --workers 2``
  with a small design (3 layers of 1x1x1 kernels, 2 channels, 2 classes, random weights:
  it measures the data path, not the network; its receptive radius is 0, so the overlap
  is set to 4 cells to make the blocks overlap and blend as a real design's do), classes,
  probabilities and entropy written into Zarr;
- ``export``: the classes from the prediction store to SEG-Y with the source's headers;

and on the smallest survey: the same prediction on a ``distributed.LocalCluster`` of 1 and
of 2 worker processes (one thread each; cluster start-up not timed), and the demo recipe's
design (20 layers, 3x3x3 kernels, 3 Haar levels; receptive radius 139, so the overlap is
half a block) on a 64 x 64 inline x crossline corner of it, all samples: the full 0.5 GB
would take hours on two cores at that design's rate.

Throughput is cells (samples of the survey) per second of the step. Generated files are
deleted after each size (``--keep`` keeps them). Targets (issue 22): peak RSS of every step
at the largest size <= 1.25x that at the smallest and < 2 GB; predict throughput at the
largest size within 15 % of the smallest; 2 workers >= 1.6x one worker.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .harness import MALLOC_ENV, ROOT, Column, format_table

N_XLINE = 512
N_SAMPLES = 512
SAMPLE_INTERVAL_MS = 4.0
BLOCK = 64
OVERLAP = 4  # the small design's receptive radius is 0 (1x1x1 kernels); blend anyway
RESULT_PREFIX = "STREAM_RESULT "
DEMO_CORNER = 64  # inlines and crosslines of the demo-design run
COLUMNS = [
    Column("size", "survey"), Column("step", "step"), Column("seconds", "s", ".1f"),
    Column("mcells", "Mcells/s", ".2f"), Column("rss", "peak RSS MB", ".0f"),
    Column("cpu", "child CPU s", ".0f"),
    Column("note", "note"),
]


def survey_shape(gigabytes: float) -> tuple[int, int, int]:
    """Inlines x crosslines x samples of a SEG-Y of about this many GB (1e9 bytes)."""
    trace_bytes = 240 + 4 * N_SAMPLES
    n_iline = max(1, round(gigabytes * 1e9 / trace_bytes / N_XLINE))
    return n_iline, N_XLINE, N_SAMPLES


def _trace_dtype(n_samples: int) -> np.dtype:
    """A SEG-Y trace record: the header fields the generator fills, big-endian, then samples."""
    fields = {  # name: (format, 1-based byte position of SEG-Y rev 1)
        "sequence_line": (">i4", 1), "sequence_file": (">i4", 5), "scalar": (">i2", 71),
        "n_samples": (">i2", 115), "interval": (">i2", 117), "cdp_x": (">i4", 181),
        "cdp_y": (">i4", 185), "iline": (">i4", 189), "xline": (">i4", 193),
    }
    names = [*fields, "samples"]
    formats = [f for f, _ in fields.values()] + [(">f4", (n_samples,))]
    offsets = [b - 1 for _, b in fields.values()] + [240]
    return np.dtype({"names": names, "formats": formats, "offsets": offsets,
                     "itemsize": 240 + 4 * n_samples})


def _file_header(n_samples: int) -> bytes:
    """Text and binary header (3600 bytes) of an IEEE-float SEG-Y, made by segyio."""
    import segyio

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "header.sgy"
        spec = segyio.spec()
        spec.format, spec.tracecount = 5, 1
        spec.samples = np.arange(n_samples) * SAMPLE_INTERVAL_MS
        with segyio.create(str(path), spec) as f:
            f.text[0] = b"C 1 fhn streaming benchmark: synthetic layered survey".ljust(3200)
            f.bin.update({segyio.BinField.Interval: int(SAMPLE_INTERVAL_MS * 1000),
                          segyio.BinField.Samples: n_samples, segyio.BinField.Format: 5})
        return path.read_bytes()[:3600]


def write_synthetic_segy(path: Path, shape: tuple[int, int, int], seed: int = 0) -> None:
    """Dipping layers plus noise, written one inline at a time (memory: a few inlines).

    The layers dip along the crosslines and shift down one sample every 8 inlines; the
    noise cycles through 7 precomputed inline fields, so an inline costs a slice and an
    add, and the generator runs at disk speed.
    """
    n_iline, n_xline, n_samples = shape
    rng = np.random.default_rng(seed)
    record = _trace_dtype(n_samples)
    shift = n_iline // 8 + 1
    depth = (np.arange(n_samples + shift, dtype=np.float32)[None, :]
             - 0.05 * np.arange(n_xline, dtype=np.float32)[:, None])
    layers = np.sin(depth * 0.35) * np.sign(np.sin(depth * 0.021))
    noise = 0.2 * rng.standard_normal((7, n_xline, n_samples), dtype=np.float32)
    with open(path, "wb") as fh:
        fh.write(_file_header(n_samples))
        traces = np.zeros(n_xline, dtype=record)
        traces["scalar"], traces["n_samples"] = -100, n_samples
        traces["interval"] = int(SAMPLE_INTERVAL_MS * 1000)
        traces["xline"] = np.arange(1, n_xline + 1)
        traces["cdp_y"] = (6_000_000 + 25 * np.arange(n_xline)) * 100
        for i in range(n_iline):
            down = shift - 1 - i // 8
            traces["samples"] = layers[:, down:down + n_samples] + noise[i % 7]
            traces["iline"] = i + 1
            traces["cdp_x"] = (500_000 + 25 * i) * 100
            traces["sequence_line"] = traces["sequence_file"] = (
                i * n_xline + np.arange(1, n_xline + 1))
            traces.tofile(fh)


def save_models(folder: Path) -> dict[str, Path]:
    """The small design and the demo design, random weights, amplitude-only input."""
    import torch

    from app.demo import demo_recipe
    from fhn_core.checkpoint import ModelInfo, TrainedModel
    from fhn_core.design import NetworkDesign
    from fhn_core.network import HyperbolicNetwork
    from fhn_core.task import Normalisation

    torch.manual_seed(0)
    small = NetworkDesign(in_channels=2, spatial_dims=3, kernel_size=1,
                          segments=[[0, 3, 2]], name="small")
    out = {}
    for name, design in (("small", small), ("demo", demo_recipe().design)):
        k = min(design.in_channels, 5)
        info = ModelInfo(n_classes=k, data_channels=1, normalisation=Normalisation((0.0,), (1.0,)),
                         channel_names=["amplitude"], fixed_axes=(2,), vertical_axis=2)
        out[name] = TrainedModel(HyperbolicNetwork(design), info).save(folder / f"model-{name}")
    return out


# --------------------------------------------------------------------------- the steps
def _child(step: str, args: list[str]) -> dict:
    """One step, run in this (fresh) process; returns what it measured."""
    # the libraries are loaded before the clock starts: seconds of imports are not the step
    import app.cli  # noqa: F401
    import app.streamed  # noqa: F401
    import fhn_core.blocks  # noqa: F401

    start = time.perf_counter()
    if step == "generate":
        shape = tuple(int(a) for a in args[1:4])
        write_synthetic_segy(Path(args[0]), shape)
        cells = int(np.prod(shape))
    elif step == "ingest":
        from app.cli import main

        if main(["ingest", args[0], args[1]]) != 0:
            raise SystemExit("ingest failed")
        cells = _cells(args[1])
    elif step == "predict":
        from app.cli import main

        if main(["predict", args[0], args[1], "--out", args[2], "--block", str(BLOCK),
                 "--overlap", str(OVERLAP), "--workers", args[3], "--device", "cpu"]) != 0:
            raise SystemExit("predict failed")
        cells = _cells(args[1])
    elif step == "export":
        from app.streamed import export_store

        export_store(args[0], args[1], what="classes")
        cells = _cells(args[0], "classes")
    elif step == "cluster":
        return _cluster_predict(*args)
    elif step == "demo":
        from app.streamed import predict_to_store
        from io_adapters.zarr_store import open_segy_store

        corner = open_segy_store(args[1]).isel(iline=slice(0, DEMO_CORNER),
                                               xline=slice(0, DEMO_CORNER))
        start = time.perf_counter()
        predict_to_store(args[0], corner, args[2], block=BLOCK, workers=2, device="cpu")
        cells = int(np.prod(corner.shape))
    else:
        raise SystemExit(f"unknown step {step}")
    return {"seconds": time.perf_counter() - start, "cells": cells}


def _cells(store: str, variable: str = "amplitude") -> int:
    import xarray as xr

    return int(np.prod(xr.open_zarr(store, consolidated=False)[variable].shape))


def _cluster_predict(model: str, store: str, out: str, workers: str) -> dict:
    from distributed import Client, LocalCluster

    from app.streamed import predict_to_store
    from io_adapters.zarr_store import open_segy_store

    with LocalCluster(n_workers=int(workers), threads_per_worker=1, processes=True,
                      host="127.0.0.1", dashboard_address=None) as cluster, Client(cluster):
        da = open_segy_store(store)
        start = time.perf_counter()
        predict_to_store(model, da, out, block=BLOCK, overlap=OVERLAP, device="cpu",
                         scheduler=cluster.scheduler_address, overwrite=True)
        seconds = time.perf_counter() - start
    return {"seconds": seconds, "cells": int(np.prod(da.shape))}


def run_step(step: str, *args: str, log: Path, module: str = "benchmarks.streaming") -> dict:
    """Run one step in a fresh subprocess (``python -m module --child step args``); its
    result plus the child's peak RSS (MB)."""
    env = dict(os.environ, **MALLOC_ENV)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    with open(log, "a", encoding="utf-8") as err:
        child = subprocess.Popen(
            [sys.executable, "-m", module, "--child", step, *args],
            stdout=subprocess.PIPE, stderr=err, env=env, cwd=ROOT, text=True)
        out = child.stdout.read()
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise RuntimeError(f"step {step} failed (exit {child.returncode}); see {log}")
    line = [s for s in out.splitlines() if s.startswith(RESULT_PREFIX)][-1]
    result = json.loads(line[len(RESULT_PREFIX):])
    result["peak_rss_mb"] = usage.ru_maxrss / 1024  # Linux reports kB
    result["cpu_seconds"] = usage.ru_utime + usage.ru_stime  # of the child (and its waited-for)
    return result


def _row(size: str, step: str, r: dict, extra: str = "") -> dict:
    return {"size": size, "step": step, "seconds": r["seconds"],
            "mcells": r["cells"] / r["seconds"] / 1e6, "rss": r.get("peak_rss_mb", float("nan")),
            "cpu": r.get("cpu_seconds", float("nan")), "note": extra}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[0.5, 8.0, 2.0],
                        help="SEG-Y sizes in GB, run in this order (default 0.5 8 2)")
    parser.add_argument("--workdir", type=Path, help="where the surveys go (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    parser.add_argument("--no-cluster", action="store_true", help="skip the LocalCluster rows")
    parser.add_argument("--no-demo", action="store_true", help="skip the demo-design row")
    parser.add_argument("--child", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    ns = parser.parse_args(argv)
    if ns.child:
        print(RESULT_PREFIX + json.dumps(_child(ns.child[0], ns.child[1:])), flush=True)
        return 0
    work = Path(ns.workdir or tempfile.mkdtemp(prefix="fhn-streaming-"))
    work.mkdir(parents=True, exist_ok=True)
    log = work / "steps.log"
    rows: list[dict] = []
    try:
        models = save_models(work)
        for gb in ns.sizes:  # in the order given: `--sizes 0.5 8 2` measures the targets first
            shape = survey_shape(gb)
            size = f"{gb:g} GB {shape[0]}x{shape[1]}x{shape[2]}"
            # the SEG-Y, its store, the products (14 bytes a cell for 2 classes), the export
            need = gb * 1e9 * (3 + 14 / 4) * 1.05
            free = shutil.disk_usage(work).free
            if free < need:
                print(f"skipping {size}: needs {need / 1e9:.0f} GB of disk, {free / 1e9:.0f} GB "
                      "free", flush=True)
                continue
            folder = work / f"{gb:g}GB"
            folder.mkdir(exist_ok=True)
            segy, store = folder / "survey.sgy", folder / "survey.zarr"
            pred, classes = folder / "pred.zarr", folder / "classes.sgy"
            steps = [("generate", (str(segy), *map(str, shape))),
                     ("ingest", (str(segy), str(store))),
                     ("predict", (str(models["small"]), str(store), str(pred), "2")),
                     ("export", (str(pred), str(classes)))]
            for step, args in steps:
                r = run_step(step, *args, log=log)
                rows.append(_row(size, step, r))
                print(format_table(COLUMNS, rows[-1:]), flush=True)
            if gb == min(ns.sizes) and not ns.no_cluster:
                for workers in ("1", "2"):
                    r = run_step("cluster", str(models["small"]), str(store),
                                 str(folder / f"cluster{workers}.zarr"), workers, log=log)
                    rows.append(_row(size, f"predict, LocalCluster {workers} worker(s)", r,
                                     "RSS: the client process only"))
                    print(format_table(COLUMNS, rows[-1:]), flush=True)
            if gb == min(ns.sizes) and not ns.no_demo:
                r = run_step("demo", str(models["demo"]), str(store), str(folder / "demo.zarr"),
                             log=log)
                rows.append(_row(size, "predict, demo design", r,
                                 f"{DEMO_CORNER}x{DEMO_CORNER} inline x crossline corner"))
                print(format_table(COLUMNS, rows[-1:]), flush=True)
            if not ns.keep:
                shutil.rmtree(folder)
    finally:
        if not ns.keep:
            shutil.rmtree(work, ignore_errors=True)
    print("\n" + format_table(COLUMNS, rows))
    _print_targets(rows, ns.sizes)
    return 0


def _print_targets(rows: list[dict], sizes: list[float]) -> None:
    if len(sizes) < 2:
        return
    small, large = (f"{g:g} GB" for g in (min(sizes), max(sizes)))

    def pick(size: str, step: str) -> dict:
        return next(r for r in rows if r["size"].startswith(size + " ") and r["step"] == step)

    print("\ntargets:")
    for step in ("ingest", "predict", "export"):
        a, b = pick(small, step), pick(large, step)
        ratio = b["rss"] / a["rss"]
        print(f"  {step}: peak RSS {b['rss']:.0f} MB at {large} = {ratio:.2f}x {small} "
              f"(<= 1.25x: {'pass' if ratio <= 1.25 else 'FAIL'}; < 2000 MB: "
              f"{'pass' if b['rss'] < 2000 else 'FAIL'})")
    a, b = pick(small, "predict"), pick(large, "predict")
    change = b["mcells"] / a["mcells"] - 1
    print(f"  predict throughput {b['mcells']:.2f} vs {a['mcells']:.2f} Mcells/s: {change:+.0%} "
          f"(within 15 %: {'pass' if abs(change) <= 0.15 else 'FAIL'})")
    one = [r for r in rows if r["step"].endswith("1 worker(s)")]
    two = [r for r in rows if r["step"].endswith("2 worker(s)")]
    if one and two:
        speedup = one[0]["seconds"] / two[0]["seconds"]
        print(f"  LocalCluster 2 workers {speedup:.2f}x one worker (>= 1.6x: "
              f"{'pass' if speedup >= 1.6 else 'FAIL'})")


if __name__ == "__main__":
    sys.exit(main())
