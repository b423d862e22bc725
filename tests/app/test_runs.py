"""Runs in a project folder: designs from the form, memory checks, exports read back."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
import segyio

from app import runs
from assets.demo_project import ensure_demo_project
from fhn_core.checkpoint import ModelInfo, TrainedModel
from fhn_core.design import PRESETS, NetworkDesign, Segment
from fhn_core.errors import FhnError
from fhn_core.memory import estimate_memory
from fhn_core.metrics import evaluate
from fhn_core.network import HyperbolicNetwork
from fhn_core.prediction import Prediction, probabilities_to_prediction
from fhn_core.task import Normalisation
from io_adapters.errors import DataError
from io_adapters.project import Project
from io_adapters.segy import read_segy

SHAPE = (16, 17, 32)
K = 5


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    return Project.open(ensure_demo_project(tmp_path_factory.mktemp("runs") / "demo",
                                            shape=SHAPE))


def fake_run(project: Project, name: str = "run-test") -> tuple[str, Prediction]:
    """A run with a random prediction, a split, metrics and an (untrained) model."""
    import torch

    paths = runs.RunPaths.of(project, name)
    torch.manual_seed(0)
    prediction = probabilities_to_prediction(torch.randn(K, *SHAPE) * 3)
    labels = project.load_labels().labels.astype(np.int64)
    val = np.where(np.arange(labels.size).reshape(labels.shape) % 5 == 0, labels, -1)
    train = np.where(val >= 0, -1, labels)
    table = project.load_labels().classes
    info = runs.RunInfo(name, status="finished", created="2026-01-01T00:00:00",
                        class_names=[c.name for c in table],
                        class_colours=[c.colour for c in table], grid_shape=list(SHAPE))
    runs.write_run(paths, info)
    runs.save_prediction(paths, prediction, train, val,
                         {"validation": evaluate(prediction.classes, val, K), "training": None})
    design = NetworkDesign(K, 3, (Segment(0, 1, 2),))
    model = TrainedModel(HyperbolicNetwork(design),
                         ModelInfo(K, 1, Normalisation((0.0,), (1.0,)), info.class_names))
    model.save(paths.model_dir)
    return name, prediction


def test_layouts_and_design_choices_follow_the_data(project: Project) -> None:
    da = project.load_data()
    shapes = runs.layout_shapes(da)
    assert list(shapes) == [3]
    assert (shapes[3].channels, shapes[3].spatial_shape) == (1, SHAPE)
    choices = runs.design_choices(da, K)
    # 2D presets cannot take a seismic volume; the rest take max(channels, classes) inputs
    assert "multi-raster-map" not in choices
    assert {"default", "quick", "demo", "seismic-3d", "hyperspectral-timelapse"} <= set(choices)
    for design, _config in choices.values():
        assert design.spatial_dims == 3 and design.in_channels == K
    assert choices["seismic-3d"][0].segments == PRESETS["seismic-3d"]().segments
    assert choices["demo"][1] is not None  # the recipe's training settings come along


def test_design_from_rows_round_trips_and_explains_bad_rows() -> None:
    design = PRESETS["seismic-3d"](in_channels=6)
    rows = runs.segment_rows(design)
    again = runs.design_from_rows(rows + [{"level": None, "layers": None, "rank": None}],
                                  in_channels=6, spatial_dims=3, name=design.name)
    assert again == design
    zeros = runs.design_from_rows(rows, in_channels=6, spatial_dims=3, zero_channels=5)
    assert zeros.in_channels == 11 and zeros.zero_channels == 5
    assert zeros.segments == design.segments
    with pytest.raises(FhnError, match="whole numbers"):
        runs.design_from_rows([{"level": 0, "layers": "two", "rank": 4}], in_channels=1,
                              spatial_dims=3)
    with pytest.raises(FhnError, match="jumps from level"):
        runs.design_from_rows([{"level": 0, "layers": 1, "rank": 4},
                               {"level": 2, "layers": 1, "rank": 4}], in_channels=1,
                              spatial_dims=3)


def test_memory_check_uses_the_padded_window_and_refuses_what_does_not_fit() -> None:
    from fhn_core.memory_check import check_memory, training_window

    design = NetworkDesign(4, 3, (Segment(0, 1, 4), Segment(1, 1, 8), Segment(2, 1, 8),
                                  Segment(1, 1, 8), Segment(0, 1, 4)))
    assert training_window((100, 90, 50), (30, None, 0), 2) == (32, 92, 52)
    check = check_memory(design, (100, 90, 50), (30, None, None), 1e12)
    assert check.training == estimate_memory(design, (1, 4, 32, 92, 52))
    assert check.prediction == estimate_memory(design, (1, 4, 100, 92, 52))
    assert check.fits and check.needed == check.held_bytes + max(check.step_bytes,
                                                                 check.prediction_bytes)
    tight = check_memory(design, (100, 90, 50), (30, None, None), check.needed - 1)
    assert not tight.fits and "does NOT fit" in tight.summary()
    assert check_memory(design, (100, 90, 50), None, None).fits  # unknown: no refusal


def test_runs_are_listed_with_their_files(project: Project) -> None:
    name, _ = fake_run(project, "run-listed")
    (project.models_dir / "run-listed.part").mkdir(exist_ok=True)  # a half-written folder
    found = {r.name: r for r in runs.list_runs(project)}
    assert "run-listed" in found and "run-listed.part" not in found
    info = found[name]
    assert (info.status, info.has_model, info.has_prediction, info.has_checkpoint) == (
        "finished", True, True, False)
    assert runs.new_run_name(project) not in found
    with pytest.raises(DataError):
        runs.RunPaths.of(project, "../escape")


def test_export_segy_reopens_with_the_source_geometry(project: Project) -> None:
    name, prediction = fake_run(project, "run-segy")
    da = project.load_data()
    assert runs.export_formats(da) == [".sgy", ".npy", ".nc"]
    path = runs.export_run(project, name, da, "classes", ".sgy")
    assert path == project.exports_dir / name / f"{name}-classes.sgy"
    source = da.attrs["source_path"]
    with segyio.open(source, ignore_geometry=False) as src, \
            segyio.open(path, ignore_geometry=False) as out:
        assert list(out.ilines) == list(src.ilines)
        assert list(out.xlines) == list(src.xlines)
        assert np.array_equal(out.samples, src.samples)
        assert out.text[0] == src.text[0]
        for i in (0, src.tracecount - 1):
            assert dict(out.header[i]) == dict(src.header[i])
    back = read_segy(path)
    assert back.sizes == da.sizes
    np.testing.assert_array_equal(back.values, prediction.classes.astype(np.float32))
    entropy = read_segy(runs.export_run(project, name, da, "entropy", ".sgy"))
    np.testing.assert_allclose(entropy.values, prediction.entropy, atol=1e-6)


def test_export_numpy_netcdf_and_model_zip(project: Project) -> None:
    import xarray as xr

    name, prediction = fake_run(project, "run-files")
    da = project.load_data()
    probs = np.load(runs.export_run(project, name, da, "probabilities", ".npy"))
    np.testing.assert_allclose(probs, prediction.probabilities)
    nc = runs.export_run(project, name, da, "classes", ".nc")
    with xr.open_dataarray(nc, engine="h5netcdf") as arr:
        assert arr.dims == ("iline", "xline", "samples")
        np.testing.assert_array_equal(arr.coords["iline"].values, da.coords["iline"].values)
        np.testing.assert_array_equal(arr.values, prediction.classes)
    zipped = runs.zip_model(project, name)
    with zipfile.ZipFile(zipped) as zf:
        assert sorted(zf.namelist()) == sorted(f"{name}/{f}" for f in (
            "model.safetensors", "design.toml", "model.json"))
        zf.extractall(zipped.parent / "unzipped")
    model = TrainedModel.load(zipped.parent / "unzipped" / name)
    assert model.info.class_names == runs.read_run(project, name).class_names
    names = [p.name for p in runs.exported_files(project, name)]
    assert names == sorted([f"{name}-probabilities.npy", f"{name}-classes.nc",
                            f"{name}-model.zip"])


def test_geotiff_export_reads_back_on_the_source_grid(shared_data: Path, tmp_path: Path) -> None:
    from io_adapters.geotiff import read_geotiff

    tif = next(iter(sorted(shared_data.rglob("*.tif"))), None)
    if tif is None:
        pytest.skip("no GeoTIFF in the shared data")
    project = Project.create(tmp_path / "map", "map")
    project.add_source(str(tif), "geotiff")
    da = project.load_data()
    if ".tif" not in runs.export_formats(da):
        pytest.skip(f"{tif} has no georeferencing")
    h, w = int(da.sizes["y"]), int(da.sizes["x"])
    import torch

    prediction = probabilities_to_prediction(torch.randn(3, h, w))
    paths = runs.RunPaths.of(project, "run-map")
    runs.write_run(paths, runs.RunInfo("run-map", class_names=["a", "b", "c"],
                                       class_colours=["#ff0000", "#00ff00", "#0000ff"]))
    labels = np.full((h, w), -1, np.int64)
    runs.save_prediction(paths, prediction, labels, None, {"validation": None})
    out = read_geotiff(runs.export_run(project, "run-map", da, "classes", ".tif"))
    assert out.attrs["crs"] == da.attrs["crs"]
    assert tuple(out.attrs["transform"]) == tuple(da.attrs["transform"])
    assert (out.sizes["y"], out.sizes["x"]) == (h, w)
    np.testing.assert_array_equal(out.coords["x"].values, da.coords["x"].values)
    # cells where the source has no data in any band are nodata in the export too
    valid = np.isfinite(da.values).any(axis=0)
    written = out.isel(band=0).values
    assert np.isfinite(written[valid]).all() and not np.isfinite(written[~valid]).any()
    np.testing.assert_array_equal(written[valid], prediction.classes[valid])


def test_reference_must_be_on_the_grid(project: Project, tmp_path: Path) -> None:
    found = runs.find_reference(project)
    assert found is not None and found.name == "demo_units.npy"
    ref = runs.load_reference(found, SHAPE)
    assert ref.shape == SHAPE and ref.max() < K
    np.save(tmp_path / "small.npy", np.zeros((2, 2, 2), np.int16))
    with pytest.raises(DataError, match=r"\(2, 2, 2\)"):
        runs.load_reference(tmp_path / "small.npy", SHAPE)
