"""The bad-input and fault matrix: every row names an input and the one-line message it must get.

Rows run through the real entry points on real files made with the real libraries in
tmp_path (SEG-Y via segyio, GeoTIFF via rasterio, ENVI header + raw file, .mat via scipy,
NetCDF via xarray/h5netcdf): ``fhn train`` / ``fhn evaluate`` (exit code 2, exactly one
``fhn: error:`` line, no traceback), the io_adapters readers (DataError), the project
store, and the readers' DataWarnings for data that reads but is wrong. Crash injection at
every step of a checkpoint or model save is in tests/fhn_core/test_checkpoint_swap.py; the
run lock's process tests and the exact resume with patches and weight averaging are at the
end of this file.
"""

from __future__ import annotations

import os
import re
import signal
import struct
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import rasterio
import scipy.io
import tomli_w
import torch
import xarray as xr
from rasterio.transform import from_origin

from app.cli import main
from assets.demo_survey import build_demo_survey
from io_adapters.errors import DataError, DataWarning
from io_adapters.geotiff import stack_rasters
from io_adapters.hyperspectral import read_envi, read_mat, read_netcdf
from io_adapters.project import Project
from io_adapters.segy import create_segy, read_segy

REPO = Path(__file__).resolve().parents[1]
SHAPE = (16, 16, 32)  # the demo survey at test size: 4 ms samples, 0-124 ms
TINY_DESIGN = {"in_channels": 5, "spatial_dims": 3, "segments": [[0, 1, 2], [1, 1, 2], [0, 1, 2]]}
HEADER = "well,iline,xline,top,base,class\n"


@pytest.fixture(scope="module")
def survey(tmp_path_factory: pytest.TempPathFactory):
    return build_demo_survey(tmp_path_factory.mktemp("survey"), shape=SHAPE)


def _train_config(folder: Path, survey, *, wells: str | bytes | None = None,
                  **labels) -> Path:
    """A `fhn train` TOML on the demo survey; ``wells`` replaces its borehole CSV."""
    csv = folder / "wells.csv"
    if wells is None:
        csv.write_bytes(survey.wells.read_bytes())
    elif isinstance(wells, bytes):
        csv.write_bytes(wells)
    else:
        csv.write_text(wells, encoding="utf-8")
    config = {
        "output": "run",
        "data": {"path": str(survey.segy)},
        "labels": {"path": "wells.csv", "radius": 1.0, **labels},
        "design": dict(TINY_DESIGN),
        "training": {"recipe": "fixed",  # a fixed run: the settings as given
                     "iterations": 1, "validate_every": 0, "checkpoint_every": 0,
                     "device": "cpu", "validation_fraction": 0.0},
    }
    path = folder / "run.toml"
    path.write_text(tomli_w.dumps(config))
    return path


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("fhn: error: ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def _first_well(survey) -> tuple[int, int]:
    """(iline, xline) of the first well of the demo survey."""
    first = survey.wells.read_text().splitlines()[1].split(",")
    return int(first[1]), int(first[2])


# --------------------------------------------------------------------------- label inputs
@dataclass(frozen=True)
class TrainRow:
    """`fhn train` on the demo survey with one thing wrong in its labels."""

    name: str
    expected: str                     # regex the one error line must match
    labels: dict | None = None        # [labels] keys replacing the good ones
    wells: Callable[[tuple[int, int]], str | bytes] | None = None  # the CSV, from a well


def _interval_rows(top: str, base: str, second: tuple[str, str] | None = None):
    def make(well: tuple[int, int]) -> str:
        il, xl = well
        rows = f"A,{il},{xl},{top},{base},sand\nB,{il + 2},{xl + 2},60,100,shale\n"
        if second:
            rows += f"A,{il},{xl},{second[0]},{second[1]},shale\n"
        return HEADER + rows
    return make


TRAIN_ROWS = [
    TrainRow("radius 1e6", r"radius 1e\+06 is larger than the grid \(16 x 16 cells\); "
             r"use at most 16", labels={"radius": 1e6}),
    TrainRow("radius nan", r"radius nan is not a radius; give a finite number",
             labels={"radius": float("nan")}),
    TrainRow("radius inf", r"radius inf is not a radius", labels={"radius": float("inf")}),
    TrainRow("negative radius", r"radius -1\.0 is not a radius; .* >= 0",
             labels={"radius": -1.0}),
    TrainRow("radius as text", r"radius 'wide' is not a number", labels={"radius": "wide"}),
    TrainRow("non-UTF-8 CSV", r"cannot read .*wells\.csv as text \(invalid start byte at "
             r"byte 34\); save it as UTF-8 CSV",
             wells=lambda w: (HEADER + f"Bj\xf8rn,{w[0]},{w[1]},0,40,sand\n").encode("latin-1")),
    TrainRow("non-UTF-8 CSV, kind given", r"cannot read .*wells\.csv as CSV .*save it as UTF-8",
             labels={"kind": "boreholes"},
             wells=lambda w: (HEADER + f"Bj\xf8rn,{w[0]},{w[1]},0,40,sand\n").encode("latin-1")),
    TrainRow("top = nan", r"wells\.csv, line 2: column 'top' = 'nan' is not a finite number",
             wells=_interval_rows("nan", "40")),
    TrainRow("base = inf", r"wells\.csv, line 2: column 'base' = 'inf' is not a finite number",
             wells=_interval_rows("0", "inf")),
    TrainRow("overlapping intervals", r"wells\.csv, line 4 \(well A\): interval 20-60 overlaps "
             r"the interval 0-40 of the same well; fix the tops and bases",
             wells=_interval_rows("0", "40", second=("20", "60"))),
    TrainRow("a single class", r"the labels hold one class only \(sand\); .*label at least "
             r"one more class",
             wells=lambda w: HEADER + f"A,{w[0]},{w[1]},0,120,sand\n"),
]


@pytest.mark.parametrize("row", TRAIN_ROWS, ids=[r.name for r in TRAIN_ROWS])
def test_label_input_ends_in_one_line(row: TrainRow, survey, tmp_path, capsys) -> None:
    wells = row.wells(_first_well(survey)) if row.wells else None
    config = _train_config(tmp_path, survey, wells=wells, **(row.labels or {}))
    assert main(["train", str(config)]) == 2
    assert re.search(row.expected, _one_error_line(capsys)), row.name
    assert not (tmp_path / "run" / "checkpoint").exists()


def test_the_good_config_of_the_matrix_trains(survey, tmp_path, capsys) -> None:
    """The rows above differ from this config in one thing only."""
    assert main(["train", str(_train_config(tmp_path, survey))]) == 0
    assert (tmp_path / "run" / "model" / "model.json").is_file()


# --------------------------------------------------------------------------- project store
PROJECT_ROWS = [
    ("upload name with NUL", lambda p: p.store_file("cube\0.sgy", b"x"),
     r"contains control characters \(such as NUL\); rename the file"),
    ("upload name of 300 bytes", lambda p: p.store_file("é" * 150, b"x"),
     r"is 300 bytes long; rename the file to at most 240 bytes"),
    ("upload name with a folder", lambda p: p.store_file("../escape.sgy", b"x"),
     r"is not a plain file name"),
]


@pytest.mark.parametrize("name,action,expected", PROJECT_ROWS, ids=[r[0] for r in PROJECT_ROWS])
def test_upload_names(name, action, expected, tmp_path) -> None:
    project = Project.create(tmp_path / "p", "p")
    with pytest.raises(DataError, match=expected):
        action(project)
    assert not list((tmp_path / "p").rglob("*.part"))


@pytest.mark.parametrize("label_path", ["../outside.npz", "/tmp/elsewhere/labels.npz",
                                        "labels/../../outside.npz"])
def test_project_label_path_outside_the_project(label_path, tmp_path) -> None:
    Project.create(tmp_path / "p", "p")
    toml = tmp_path / "p" / "project.toml"
    text = re.sub(r'^labels = .*$', f"labels = {label_path!r}".replace("'", '"'),
                  toml.read_text(), flags=re.M)
    toml.write_text(text)
    with pytest.raises(DataError, match=r"'labels' = .* leads outside the project folder"):
        Project.open(tmp_path / "p")


# --------------------------------------------------------------------------- hyperspectral
def _envi(folder: Path, cube: np.ndarray, **header) -> Path:
    """A real ENVI pair: raw BSQ float32 + header (``header`` keys override the true ones)."""
    lines, samples, bands = cube.shape
    data = folder / "cube.img"
    data.write_bytes(np.transpose(cube, (2, 0, 1)).astype("<f4").tobytes())
    keys = {"samples": samples, "lines": lines, "bands": bands, "header offset": 0,
            "data type": 4, "interleave": "bsq", "byte order": 0, **header}
    (folder / "cube.hdr").write_text("ENVI\n" + "".join(f"{k} = {v}\n" for k, v in keys.items()))
    return folder / "cube.hdr"


CUBE = np.arange(6 * 5 * 4, dtype=np.float32).reshape(6, 5, 4)


def _mat(folder: Path, **variables) -> Path:
    path = folder / "cube.mat"
    scipy.io.savemat(path, variables)
    return path


def _netcdf(folder: Path, dims: tuple[str, ...]) -> Path:
    path = folder / "cube.nc"
    xr.Dataset({"reflectance": (dims, CUBE)}).to_netcdf(path, engine="h5netcdf")
    return path


HYPERSPECTRAL_ROWS = [
    ("ENVI header says more lines", lambda d: read_envi(_envi(d, CUBE, lines=12)),
     r"cube\.img is 480 bytes but its header cube\.hdr describes 960 bytes .* the file is "
     r"truncated; re-copy the data file or fix the header"),
    ("ENVI header says fewer bands", lambda d: read_envi(_envi(d, CUBE, bands=2)),
     r"is 480 bytes but its header cube\.hdr describes 240 bytes .* larger than the header"),
    ("ENVI header says complex data", lambda d: read_envi(_envi(d, CUBE, **{"data type": 6})),
     r"data type 6 is not supported"),
    ("ENVI header with a made-up interleave",
     lambda d: read_envi(_envi(d, CUBE, interleave="bsx")),
     r"interleave 'bsx' unknown; use bsq, bil or bip"),
    ("ENVI header without lines", lambda d: read_envi(_envi(d, CUBE, lines="")),
     r"cube\.hdr"),
    (".mat without the asked-for variable",
     lambda d: read_mat(_mat(d, other=CUBE), variable="cube"),
     r"variable 'cube' is not a 3D numeric array \(candidates: other \(6, 5, 4\)\)"),
    (".mat with no 3D array", lambda d: read_mat(_mat(d, flat=CUBE[:, :, 0])),
     r"cube\.mat holds no 3D numeric array \(variables found: none; other variables: "
     r"flat \(6, 5\)\)"),
    ("NetCDF without named dims", lambda d: read_netcdf(_netcdf(d, ("dim_0", "dim_1", "dim_2"))),
     r"variable 'reflectance' has dims \('dim_0', 'dim_1', 'dim_2'\); cannot tell which is "
     r"y, x and band"),
]


@pytest.mark.parametrize("name,read,expected", HYPERSPECTRAL_ROWS,
                         ids=[r[0] for r in HYPERSPECTRAL_ROWS])
def test_hyperspectral_input(name, read, expected, tmp_path) -> None:
    with pytest.raises(DataError, match=expected):
        read(tmp_path)


def test_the_good_hyperspectral_files_read(tmp_path) -> None:
    for folder in ("envi", "mat", "nc"):
        (tmp_path / folder).mkdir()
    assert read_envi(_envi(tmp_path / "envi", CUBE)).shape == (6, 5, 4)
    assert read_mat(_mat(tmp_path / "mat", cube=CUBE)).shape == (6, 5, 4)
    assert read_netcdf(_netcdf(tmp_path / "nc", ("y", "x", "band"))).shape == (6, 5, 4)


# --------------------------------------------------------------------------- fhn evaluate
def _npy(folder: Path, name: str, values) -> str:
    path = folder / name
    np.save(path, np.asarray(values), allow_pickle=True)
    return str(path)


EVALUATE_ROWS = [
    ("maps of different shapes", lambda d: [_npy(d, "p.npy", np.zeros((4, 4), int)),
                                            _npy(d, "r.npy", np.zeros((4, 5), int))],
     r"the prediction .*p\.npy has shape \(4, 4\) but the reference .*r\.npy has \(4, 5\)"),
    ("missing prediction", lambda d: [str(d / "nope.npy"), _npy(d, "r.npy", np.zeros(3, int))],
     r"nope\.npy not found; check the path"),
    ("non-integer prediction", lambda d: [_npy(d, "p.npy", [0.5, 1.0]),
                                          _npy(d, "r.npy", [0, 1])],
     r"p\.npy holds non-integer values; it is not a class map"),
    ("pickled object array", lambda d: [_npy(d, "p.npy", np.array([{"a": 1}], dtype=object)),
                                        _npy(d, "r.npy", [0])],
     r"cannot read .*p\.npy as a numeric \.npy array"),
    ("prediction unlabelled where the reference has labels",
     lambda d: [_npy(d, "p.npy", [-1, 1]), _npy(d, "r.npy", [0, 1])],
     r"p\.npy has no class at cells the reference labels"),
    ("--classes smaller than the ids",
     lambda d: [_npy(d, "p.npy", [0, 2]), _npy(d, "r.npy", [0, 2]), "--classes", "2"],
     r"class ids outside 0\.\.1 \(reference max 2, prediction range 0\.\.2\); check the "
     r"number of classes"),
    ("error map into a missing folder",
     lambda d: [_npy(d, "p.npy", [[0, 1]]), _npy(d, "r.npy", [[0, 1]]),
                "--error-map", str(d / "no" / "map.png")],
     r"cannot write .*map\.png: folder .* does not exist"),
    ("error map of 1D maps",
     lambda d: [_npy(d, "p.npy", [0, 1]), _npy(d, "r.npy", [0, 1]),
                "--error-map", str(d / "map.png")],
     r"an error-map image needs 2D or 3D class maps, these are 1D; leave out --error-map"),
]


@pytest.mark.parametrize("name,args,expected", EVALUATE_ROWS, ids=[r[0] for r in EVALUATE_ROWS])
def test_evaluate_input(name, args, expected, tmp_path, capsys) -> None:
    assert main(["evaluate", *args(tmp_path)]) == 2
    assert re.search(expected, _one_error_line(capsys)), name


# --------------------------------------------------------------------------- data warnings
def _seismic_like(seed: int = 0) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    cube = gaussian_filter(np.random.default_rng(seed).standard_normal((12, 10, 64)), (1, 1, 2))
    return (cube * 10000 / np.abs(cube).max()).astype(np.float32)


def _segy(folder: Path, cube: np.ndarray, fmt: int = 5, *, header_says: int | None = None):
    path = folder / f"cube{fmt}.sgy"
    create_segy(path, cube, ilines=range(1, cube.shape[0] + 1),
                xlines=range(1, cube.shape[1] + 1), sample_interval_ms=4.0, sample_format=fmt)
    if header_says is not None:  # the binary header's format code, bytes 3225-3226
        with open(path, "r+b") as fh:
            fh.seek(3224)
            fh.write(struct.pack(">h", header_says))
    return path


def _tif(folder: Path, name: str, left: float, top: float, size: int = 8) -> Path:
    path = folder / name
    with rasterio.open(path, "w", driver="GTiff", width=size, height=size, count=1,
                       dtype="float32", crs="EPSG:32631",
                       transform=from_origin(left, top, 10.0, 10.0)) as ds:
        ds.write(np.arange(size * size, dtype=np.float32).reshape(1, size, size))
    return path


WARNING_ROWS = [
    ("IBM floats in a file whose header says IEEE",
     lambda d: read_segy(_segy(d, _seismic_like(), fmt=1, header_says=5)),
     r"cube1\.sgy: the binary header says IEEE floats \(format 5\) but the samples look like "
     r"IBM floats: read as IEEE they span -6\d\d\.?\d* to 6\d\d\.?\d*, as IBM -1e\+04 to"),
    ("NaN and inf samples in a SEG-Y",
     lambda d: read_segy(_segy(d, np.where(np.arange(12 * 10 * 64).reshape(12, 10, 64) % 97 == 0,
                                           np.nan, _seismic_like()).astype(np.float32))),
     r"cube5\.sgy: 80 of 7,680 checked samples \(1\.04%\) are NaN or inf"),
    ("NaN samples in an ENVI cube",
     lambda d: read_envi(_envi(d, np.where(CUBE > 100, np.inf, CUBE).astype(np.float32))),
     r"cube\.img: 19 of 120 samples \(15\.83%\) are NaN or inf"),
    ("ENVI header says float32, the data are int32",
     lambda d: read_envi(_envi(d, (CUBE + 1).astype("<i4").view("<f4"))),
     r"cube\.img: 100% of the values are below 1e-38 or above 1e30 in magnitude, .*the data "
     r"type or byte order in cube\.hdr is probably wrong"),
    ("ENVI header says little-endian, the data are big-endian",
     lambda d: read_envi(_envi(d, (CUBE / 7 + 0.3).astype(">f4").view("<f4"))),
     r"cube\.img: \d+% of the values are below 1e-38 or above 1e30 in magnitude"),
    ("a GeoTIFF in a stack that misses the reference",
     lambda d: stack_rasters([_tif(d, "ref.tif", 500000, 6000000),
                              _tif(d, "far.tif", 700000, 6000000)]),
     r"far\.tif does not overlap the reference grid of ref\.tif .*its channels are all nodata"),
    ("a 1 x 1 raster in a stack",
     lambda d: stack_rasters([_tif(d, "ref.tif", 500000, 6000000),
                              _tif(d, "dot.tif", 500000, 6000000, size=1)]),
     r"dot\.tif is a 1 x 1 raster: on the 8 x 8 grid of ref\.tif its few values are stretched"),
]


@pytest.mark.parametrize("name,read,expected", WARNING_ROWS, ids=[r[0] for r in WARNING_ROWS])
def test_data_that_reads_but_is_wrong_warns(name, read, expected, tmp_path) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        read(tmp_path)
    messages = [str(w.message) for w in caught if issubclass(w.category, DataWarning)]
    assert any(re.search(expected, m) for m in messages), messages
    assert len(messages) <= 2  # the row's warning, and NaN/inf where misread bytes make them


def test_good_files_read_without_warnings(tmp_path, survey) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        read_segy(_segy(tmp_path, _seismic_like(), fmt=1))
        read_segy(_segy(tmp_path, _seismic_like(), fmt=5))
        read_segy(survey.segy)
        read_envi(_envi(tmp_path, CUBE / 7 + 0.3))
        stack_rasters([_tif(tmp_path, "a.tif", 500000, 6000000),
                       _tif(tmp_path, "b.tif", 500040, 6000000)])


def test_the_cli_prints_a_data_warning_as_one_line(tmp_path, capsys) -> None:
    classes = np.tile(np.arange(4, dtype=np.float32), (12, 10, 16))
    classes[0, 0, :5] = np.nan  # read as unlabelled (-1), so the reference leaves them out
    reference = _npy(tmp_path, "reference.npy", np.nan_to_num(classes, nan=-1).astype(int))
    path = _segy(tmp_path, classes)
    assert main(["evaluate", str(path), reference]) == 0
    err = capsys.readouterr().err
    assert re.fullmatch(r"fhn: warning: .*cube5\.sgy: 5 of 7,680 checked samples \(0\.07%\) "
                        r"are NaN or inf; .*\n", err), err


def test_an_exploding_loss_is_diverged_not_trained(survey, tmp_path, capsys) -> None:
    """h = 50: warned before training (the leapfrog bound), then stopped as diverged (exit 1).

    With the constant-memory backward the drift guard stops the first step; with plain
    autograd (no rebuilt states to check) the loss goes to ~1e9 instead of NaN and the
    explosion check stops it.
    """
    config = _train_config(tmp_path, survey)
    assert main(["train", str(config), "--set", "design.h=50.0"]) == 1
    err = capsys.readouterr().err
    assert re.search(r"fhn: warning: h = 50 breaks the leapfrog stability bound", err), err
    assert re.search(r"fhn: error: training stopped at iteration 1: the constant-memory "
                     r"backward rebuilt the input with a relative error of ", err), err
    assert main(["train", str(config), "--set", "design.h=50.0",
                 "--set", 'training.gradient_mode="autograd"']) == 1
    err = capsys.readouterr().err
    assert re.search(r"fhn: error: training stopped at iteration 1: the loss exploded to "
                     r"[\d.e+]+ \(1000 times the [\d.]+ of a guess\)", err), err


# --------------------------------------------------------------------------- one writer per run
_HOLD = ("import sys, time; from fhn_core.run_lock import RunLock; "
         "RunLock(sys.argv[1]).acquire(); print('held', flush=True); time.sleep(120)")


def _holder(folder: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", _HOLD, str(folder)], stdout=subprocess.PIPE,
                            text=True, env=env)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_train_on_one_folder_names_the_holder_and_a_kill_frees_it(
        survey, tmp_path, capsys) -> None:
    config = _train_config(tmp_path, survey)
    holder = _holder(tmp_path / "run")
    try:
        assert main(["train", str(config)]) == 2
        line = _one_error_line(capsys)
        assert re.search(rf"run is in use by another training run \(pid {holder.pid}\); wait "
                         "for it to finish or stop it, or choose another output folder", line)
        assert not (tmp_path / "run" / "checkpoint").exists()
    finally:
        os.kill(holder.pid, signal.SIGKILL)  # no cleanup runs: the kernel drops the lock
        holder.wait()
    assert main(["train", str(config)]) == 0


def test_fhn_demo_takes_the_same_lock(tmp_path, capsys) -> None:
    holder = _holder(tmp_path / "out")
    try:
        assert main(["demo", "--out", str(tmp_path / "out"), "--shape", *map(str, SHAPE),
                     "--demo-dir", str(tmp_path / "survey"), "--iterations", "1"]) == 2
        assert f"out is in use by another training run (pid {holder.pid})" in _one_error_line(
            capsys)
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()


def test_the_apps_worker_and_a_cli_run_exclude_each_other(tmp_path) -> None:
    from app import jobs
    from assets.demo_project import ensure_demo_project
    from fhn_core.design import NetworkDesign, Segment
    from fhn_core.training import TrainConfig

    folder = ensure_demo_project(tmp_path / "demo", shape=SHAPE)
    design = NetworkDesign(5, 3, (Segment(0, 1, 2),))
    holder = _holder(folder / "models" / "cli-run")
    try:
        job = jobs.registry().start(jobs.JobSpec(
            folder, design, TrainConfig(iterations=1, validate_every=0, checkpoint_every=0),
            vertical_channel=True, name="cli-run"))
        assert job.wait(120)
        snap = job.snapshot()
        assert snap.status == "failed"
        assert f"in use by another training run (pid {holder.pid})" in snap.error
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()


# --------------------------------------------------------------------------- exact resume
def test_resume_with_patches_and_weight_averaging_repeats_the_run_exactly(tmp_path) -> None:
    """The demo recipe (assets/demo_recipe.toml: attribute channels, random 64 x 64 patches
    with flips, a moving average of the weights, cosine schedule) on a small survey, with
    patches and iterations cut to test size: stopped after 2 of 4 iterations and resumed,
    the loss sequence, the live weights and the averaged model equal those of one run."""
    from dataclasses import replace

    from app.demo import demo_recipe, demo_task
    from fhn_core.training import Trainer

    recipe = demo_recipe()
    task, _, _ = demo_task((16, 16, 32), folder=tmp_path / "demo", recipe=recipe)
    design = recipe.design
    config = replace(recipe.config, iterations=4, patch=(8, 8, None), validate_every=0,
                     checkpoint_every=0, device="cpu")
    assert config.average_decay > 0 and config.augment  # what makes the resume hard

    one = Trainer(task, design, config, out_dir=tmp_path / "straight")
    straight = one.run()
    stopped = Trainer(task, design, config, out_dir=tmp_path / "resumed")
    calls = iter(range(100))
    first = stopped.run(should_stop=lambda: next(calls) == 1)
    assert first.status == "stopped" and first.iteration == 2
    torch.manual_seed(12345)  # the resumed run must not depend on the process's RNG
    again = Trainer.resume(tmp_path / "resumed", task, config)
    resumed = again.run()
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in straight.history]
    pairs = [(again.model.net, one.model.net), (resumed.model.net, straight.model.net)]
    for resumed_net, straight_net in pairs:  # live weights, then the averaged model
        for a, b in zip(resumed_net.parameters(), straight_net.parameters(), strict=True):
            assert torch.equal(a, b)
    assert any(not torch.equal(a, b) for a, b in zip(  # averaging was really on
        resumed.model.net.parameters(), again.model.net.parameters(), strict=True))


def test_the_app_shows_a_data_warning_on_the_page(tmp_path, monkeypatch) -> None:
    from streamlit.testing.v1 import AppTest

    cube = _seismic_like(seed=1)
    cube[2, 3, :7] = np.nan
    project = Project.create(tmp_path / "p", "p")
    project.add_source(str(_segy(tmp_path, cube)), "segy")
    monkeypatch.setenv("FHN_PROJECT", str(project.folder))
    at = AppTest.from_file(str(REPO / "app" / "screens" / "data.py"), default_timeout=60).run()
    assert not at.exception and not at.error, [e.value for e in (*at.exception, *at.error)]
    assert [w.value for w in at.warning if "NaN or inf" in w.value] == [
        f"{tmp_path / 'cube5.sgy'}: 7 of 7,680 checked samples (0.09%) are NaN or inf; training "
        "and prediction treat those cells as nodata, so check the file (or its sample format) "
        "if that is not meant"]


class _Killed(BaseException):
    """Stands for a kill: no Exception handler (and so no cleanup) catches it."""


def test_a_kill_during_the_final_model_save_then_resume(survey, tmp_path, monkeypatch,
                                                        capsys) -> None:
    """Killed at the rename that puts model/ in place (its part is complete, model/ does not
    exist yet): loading finds the complete part, and `--resume` writes model/ and clears up."""
    from fhn_core.checkpoint import TrainedModel

    config = _train_config(tmp_path, survey)
    real_rename = os.rename

    def rename(src, dst, *args, **kwargs):
        if Path(dst).name == "model":
            raise _Killed
        return real_rename(src, dst, *args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(os, "rename", rename)
        with pytest.raises(_Killed):
            main(["train", str(config)])
    run = tmp_path / "run"
    assert not (run / "model").exists() and list(run.glob("model.*.part"))
    assert TrainedModel.load(run / "model").info.n_classes == 5  # the complete part
    capsys.readouterr()
    assert main(["train", str(config), "--resume"]) == 0
    assert "resuming from" in capsys.readouterr().out
    assert sorted(p.name for p in run.iterdir() if not p.name.startswith(".")) == [
        "checkpoint", "diagnostics.json", "model"]
    assert TrainedModel.load(run / "model").info.n_classes == 5


@pytest.mark.slow
def test_real_kills_while_checkpointing_every_iteration_then_resume(survey, tmp_path,
                                                                    capsys) -> None:
    """`fhn train` in a real process saving a checkpoint every iteration, killed with
    SIGKILL at two moments (a kill lands inside a save most of the time): every time the
    newest complete checkpoint loads, and `--resume` finishes the run."""
    from fhn_core.checkpoint import load_checkpoint

    config = _train_config(tmp_path, survey)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "app.cli", "train", str(config), "--iterations", "2000",
               "--set", "training.checkpoint_every=1"]
    checkpoint = tmp_path / "run" / "checkpoint"
    reached = []
    for delay in (0.0, 0.5):
        args = command + (["--resume"] if reached else [])
        proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            before = _iteration_on_disk(checkpoint)
            deadline = time.monotonic() + 120
            while _iteration_on_disk(checkpoint) <= before and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(delay)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        state = load_checkpoint(checkpoint)[2]
        assert state["iteration"] > before
        reached.append(state["iteration"])
    assert reached == sorted(reached)
    assert main(["train", str(config), "--resume", "--iterations", str(reached[-1] + 1)]) == 0
    assert load_checkpoint(checkpoint)[2]["iteration"] == reached[-1] + 1
    assert not list(checkpoint.parent.glob("*.part"))


def _iteration_on_disk(checkpoint: Path) -> int:
    from fhn_core.checkpoint import load_checkpoint
    from fhn_core.errors import FhnError

    try:
        return int(load_checkpoint(checkpoint)[2]["iteration"])
    except FhnError:
        return 0
