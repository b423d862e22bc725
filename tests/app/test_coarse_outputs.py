"""Coarse-output designs (section 3.4) and the Haar route (3.2) through fhn train/predict
and the Train and Results pages, on small data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import segyio
import segyio.tools
import tomli_w
import xarray as xr
from streamlit.testing.v1 import AppTest

from app import jobs, runs
from app.cli import main
from assets.demo_project import ensure_demo_project
from fhn_core.design import NetworkDesign
from io_adapters.project import Project
from io_adapters.segy import read_segy

PAGES = Path(__file__).resolve().parents[2] / "app" / "screens"
TRAIN, RESULTS = (str(PAGES / f"{p}.py") for p in ("train", "results"))
COARSE = {"in_channels": 4, "spatial_dims": 3, "segments": [[0, 1, 4], [1, 1, 4]]}
WAIT = 120.0


def _config(tmp_path: Path, shared_data: Path, design: dict) -> Path:
    (tmp_path / "wells.csv").write_text(
        "well,iline,xline,top,base,class\nA,115,880,4,120,upper\nA,115,880,124,300,lower\n"
        "B,128,888,4,160,upper\nB,128,888,164,300,lower\n")
    config = {"output": "run", "data": {"path": str(shared_data / "segy" / "f3.sgy")},
              "labels": {"path": "wells.csv", "radius": 1.0}, "design": design,
              "training": {"recipe": "fixed",  # a fixed run: the settings as given
                           "iterations": 2, "validate_every": 2, "checkpoint_every": 0,
                           "device": "cpu", "validation_fraction": 0.3}}
    path = tmp_path / "run.toml"
    path.write_text(tomli_w.dumps(config))
    return path


def test_coarse_design_through_fhn_train_and_predict(tmp_path, shared_data, capsys):
    assert main(["train", str(_config(tmp_path, shared_data, COARSE))]) == 0
    model = tmp_path / "run"
    source = read_segy(shared_data / "segy" / "f3.sgy")
    out = tmp_path / "classes.sgy"
    assert main(["predict", str(model), str(shared_data / "segy" / "f3.sgy"),
                 "--out", str(out)]) == 0
    assert "nearest" in capsys.readouterr().out
    classes = read_segy(out)
    assert classes.shape == source.shape  # back on the survey's grid
    values = np.asarray(classes.values)
    # nearest: every 2x2x2 block of the coarse output holds one class
    block = values[:2, :2, :2]
    assert (block == block.flat[0]).all()
    nc = tmp_path / "p.nc"
    assert main(["predict", str(model), str(shared_data / "segy" / "f3.sgy"),
                 "--what", "probabilities", "--out", str(nc)]) == 0
    assert "coarser than the data" in capsys.readouterr().out
    probs = xr.open_dataarray(nc, engine="h5netcdf")
    assert probs.dims == ("class", "iline_coarse", "xline_coarse", "samples_coarse")
    assert probs.attrs["fhn_output_factor"] == 2 and "2x coarser" in probs.attrs["fhn_grid"]
    assert probs.shape[1:] == tuple(-(-s // 2) for s in source.shape)
    np.testing.assert_allclose(probs.values.sum(0), 1.0, atol=1e-5)
    probs.close()
    npy = tmp_path / "p.npy"
    assert main(["predict", str(model), str(shared_data / "segy" / "f3.sgy"),
                 "--what", "probabilities", "--out", str(npy)]) == 0
    assert "2x coarser" in (tmp_path / "p.grid.json").read_text()
    sgy = tmp_path / "p.sgy"
    assert main(["predict", str(model), str(shared_data / "segy" / "f3.sgy"),
                 "--what", "probabilities", "--out", str(sgy)]) == 0
    _check_coarse_segy(sgy, source, np.load(npy))


def _check_coarse_segy(path: Path, source: xr.DataArray, probabilities: np.ndarray) -> None:
    """A coarse survey: every other line numbered as its block's first, CDP X/Y at the
    block's centre, twice the sample interval, the confidence as samples."""
    with segyio.open(path, iline=189, xline=193) as f:
        assert list(f.ilines) == list(source.coords["iline"].values[::2])
        assert list(f.xlines) == list(source.coords["xline"].values[::2])
        assert f.bin[segyio.BinField.Interval] == 8000  # 2 x 4 ms
        assert "2x coarser" in segyio.tools.wrap(f.text[0])
        cube = segyio.tools.cube(f)
        header = f.header[f.xlines.size + 1]  # coarse trace (1, 1): data traces 2-3 x 2-3
        scalar = abs(header[segyio.TraceField.SourceGroupScalar])
        centre_x = source.coords["cdp_x"].values[2:4, 2:4].mean()
        assert abs(header[segyio.TraceField.CDP_X] / scalar - centre_x) < 0.02
        assert f.samples[0] == source.coords["samples"].values[0] + 2  # centre of 2 x 4 ms
    np.testing.assert_allclose(cube, probabilities.max(axis=0), atol=1e-6)


def test_coarse_probabilities_as_a_georeferenced_geotiff(shared_data, tmp_path):
    from app.export import export_prediction
    from fhn_core.prediction import Prediction
    from io_adapters.geotiff import read_geotiff

    grid = read_geotiff(shared_data / "geotiff" / "RGB.byte.tif")
    h, w = grid.sizes["y"], grid.sizes["x"]
    coarse = np.random.default_rng(0).dirichlet([1, 1, 1], size=(-(-h // 4), -(-w // 4)))
    coarse = np.moveaxis(coarse, -1, 0).astype(np.float32)
    classes = np.repeat(np.repeat(coarse.argmax(0), 4, 0), 4, 1)[:h, :w].astype(np.int16)
    prediction = Prediction(classes, coarse, np.zeros((h, w), np.float32))
    out = export_prediction(prediction, grid, tmp_path / "p.tif", what="probabilities",
                            class_table=["water", "field", "town"])
    with rasterio.open(shared_data / "geotiff" / "RGB.byte.tif") as src, rasterio.open(out) as ds:
        assert ds.crs == src.crs
        assert (ds.transform.a, ds.transform.e) == (4 * src.transform.a, 4 * src.transform.e)
        assert (ds.transform.c, ds.transform.f) == (src.transform.c, src.transform.f)
        assert ds.descriptions == ("water", "field", "town")
        assert "4x coarser" in ds.tags()["FHN_GRID"]
        np.testing.assert_allclose(ds.read(), coarse, atol=1e-6)


def test_haar_route_from_the_run_config(tmp_path, shared_data, capsys):
    design = {"in_channels": 1, "spatial_dims": 3, "segments": [[0, 1, 4], [1, 1, 4], [0, 1, 4]],
              "channel_expansion": "haar"}
    assert main(["train", str(_config(tmp_path, shared_data, design))]) == 0
    saved = NetworkDesign.load(tmp_path / "run" / "model" / "design.toml")
    assert [s.level for s in saved.segments] == [1, 2, 1] and saved.in_channels == 1
    assert "Haar route" in capsys.readouterr().out
    design["channel_expansion"] = "cubic"
    assert main(["train", str(_config(tmp_path, shared_data, design))]) == 2


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_demo_project(tmp_path_factory.mktemp("coarse") / "demo", shape=(16, 16, 32))


def test_haar_route_on_the_train_page_trains_and_shows_results(demo: Path) -> None:
    at = AppTest.from_file(TRAIN, default_timeout=90).run()
    at.selectbox(key="fhn-train-preset").set_value("quick").run()
    [n for n in at.number_input if n.label == "Iterations"][0].set_value(2)
    for axis in ("iline", "xline"):
        [n for n in at.number_input if n.label == axis][0].set_value(8)
    at.run()
    [t for t in at.toggle if t.label.startswith("Haar route")][0].set_value(True).run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("coarser than the data" in c.value for c in at.caption)
    at.button(key="fhn-train-start").click().run()
    job = jobs.registry().current()
    assert job.spec.design.out_level == 1
    assert job.wait(WAIT) and job.snapshot().status == "finished", job.snapshot().error
    prediction = runs.load_prediction(Project.open(demo), job.name)
    assert prediction.classes.shape == (16, 16, 32) and prediction.output_factor == 2
    results = AppTest.from_file(RESULTS, default_timeout=90).run()
    assert not results.exception, [e.value for e in results.exception]
