"""Data in, task out, prediction back: app.layout, app.training_task, app.export, app.demo
and io_adapters.open_data (loading, channels-first layouts, tasks, exports, the demo recipe)."""

from __future__ import annotations

import tomllib

import numpy as np
import pytest
import rasterio
import segyio
import xarray as xr

from app.demo import RECIPE_PATH, demo_recipe, demo_task
from app.export import export_prediction
from app.layout import to_channels_first
from app.training_task import build_task, default_design
from fhn_core.prediction import Prediction
from fhn_core.task import check_design_fits
from io_adapters.errors import DataError
from io_adapters.labels import LabelSet
from io_adapters.open_data import load_class_map, load_data
from io_adapters.seismic_attributes import ATTRIBUTE_FLAGS


@pytest.fixture(scope="module")
def f3(shared_data) -> xr.DataArray:
    return load_data(shared_data / "segy" / "f3.sgy")


@pytest.fixture(scope="module")
def rgb(shared_data) -> xr.DataArray:
    return load_data(shared_data / "geotiff" / "RGB.byte.tif")


def _prediction(shape: tuple[int, ...], k: int, seed: int = 0) -> Prediction:
    rng = np.random.default_rng(seed)
    p = rng.random((k, *shape)).astype(np.float32)
    p /= p.sum(0, keepdims=True)
    entropy = rng.random(shape).astype(np.float32)
    return Prediction(p.argmax(0).astype(np.int16), p, entropy)


# --------------------------------------------------------------------------- layouts
def test_seismic_is_one_channel_with_fixed_vertical_axis(f3):
    layout = to_channels_first(f3)
    assert layout.data.shape == (1, 23, 18, 75)
    assert layout.data.dtype == np.float32
    assert layout.fixed_axes == (2,)
    assert layout.grid_dims == ("iline", "xline", "samples")
    assert layout.grid_shape == (23, 18, 75)
    np.testing.assert_array_equal(layout.data[0], f3.values)


def test_geotiff_is_bands_first(rgb):
    layout = to_channels_first(rgb)
    assert layout.data.shape == (3, 718, 791)
    assert layout.fixed_axes == () and layout.grid_dims == ("y", "x")
    np.testing.assert_array_equal(layout.data, rgb.values)  # NaN nodata kept as NaN
    with pytest.raises(DataError, match="3D design"):
        to_channels_first(rgb, spatial_dims=3)


def test_two_dates_become_band_times_time_channels(shared_data):
    folder = shared_data / "changedetection" / "taizhou"
    da = load_data([folder / "2000TM", folder / "2003TM"])
    assert da.dims == ("y", "x", "band", "time")
    layout = to_channels_first(da)
    assert layout.data.shape == (12, 400, 400)
    assert layout.grid_shape == (400, 400)
    # channel t * n_band + b is band b of date t (all bands of 2000, then of 2003)
    for t in range(2):
        for b in range(6):
            np.testing.assert_array_equal(layout.data[t * 6 + b], da.values[:, :, b, t])
    assert layout.channel_names[7].startswith("2003TM")
    cube = to_channels_first(da, spatial_dims=3)  # bands as an axis, labels at its middle
    assert cube.data.shape == (2, 6, 400, 400)
    assert (cube.slice_axis, cube.slice_index, cube.grid_shape) == (0, 3, (400, 400))
    single = to_channels_first(load_data(folder / "2000TM.HDR"))
    assert single.data.shape == (6, 400, 400)
    np.testing.assert_array_equal(single.data, layout.data[:6])


def test_unknown_extension_lists_supported_types(tmp_path):
    odd = tmp_path / "volume.xyz"
    odd.write_text("1 2 3\n")
    with pytest.raises(DataError, match=r"SEG-Y \(\.sgy.*GeoTIFF"):
        load_data(odd)
    with pytest.raises(DataError, match="not found"):
        load_data(tmp_path / "missing.sgy")
    with pytest.raises(DataError, match="accepts"):
        load_data(odd, kind="segy", colour="red")


# --------------------------------------------------------------------------- tasks
def test_build_task_uses_labelset_classes_and_split(f3):
    ls = LabelSet.empty((23, 18, 75), ["sand", "shale"], ("iline", "xline", "samples"))
    ls.labels[2, 3, 10:20] = 0
    ls.labels[5, 6, 40:50] = 1
    ls.split = np.zeros(ls.shape, np.uint8)
    ls.split[5, 6, 45:50] = 1
    task = build_task(f3, ls)
    assert task.n_classes == 2 and task.class_names == ["sand", "shale"]
    assert task.fixed_axes == (2,)
    assert int((task.labels >= 0).sum()) == 15
    assert task.val_labels is not None and int((task.val_labels == 1).sum()) == 5
    assert not ((task.labels >= 0) & (task.val_labels >= 0)).any()
    design = default_design(to_channels_first(f3), task.n_classes)
    check_design_fits(design, task)  # raises if the proposal does not fit the data


def test_build_task_labels_on_another_grid_name_both_shapes(f3):
    ls = LabelSet.empty((23, 18, 70), ["a", "b"])
    ls.labels[0, 0, 0] = 1
    with pytest.raises(DataError, match=r"\(23, 18, 70\).*\(23, 18, 75\)"):
        build_task(f3, ls)


def test_default_design_for_two_dates_and_presets(shared_data):
    folder = shared_data / "changedetection" / "taizhou"
    layout = to_channels_first(load_data([folder / "2000TM", folder / "2003TM"]))
    design = default_design(layout, 2)
    assert (design.spatial_dims, design.in_channels) == (2, 12)
    assert default_design(layout, 2, preset="multi-raster-map").in_channels == 12
    with pytest.raises(DataError, match="3D"):
        default_design(layout, 2, preset="seismic-3d")


def test_default_design_sized_by_layers_per_level_and_rank_is_the_demo_design():
    # the demo recipe's design, written out segment by segment in assets/demo_recipe.toml,
    # is the default design with 1/2/3/4 layers at levels 0-3 and rank 4
    survey = xr.DataArray(np.zeros((128, 128, 128), np.float32),
                          dims=("iline", "xline", "samples"))
    layout = to_channels_first(survey)
    sized = default_design(layout, 5, layers_per_level=[1, 2, 3, 4], rank=4)
    written = tomllib.loads(RECIPE_PATH.read_text(encoding="utf-8"))["design"]["segments"]
    assert [[s.level, s.layers, s.rank] for s in sized.segments] == written
    assert sized.in_channels == 5
    assert sized.name == "fhn default (3D, layers 1/2/3/4 per level, rank 4)"
    # a short axis still limits the depth: 8 cells a side at the coarsest grid
    short = to_channels_first(survey.isel(samples=slice(0, 32)))
    shallower = default_design(short, 5, layers_per_level=[1, 2, 3, 4])
    assert max(s.level for s in shallower.segments) == 2
    plain = default_design(layout, 5)
    assert [[s.level, s.layers, s.rank] for s in plain.segments] == [
        [0, 2, 8], [1, 2, 16], [2, 2, 32], [1, 2, 16], [0, 2, 8]]
    assert plain.name == "fhn default (3D)"
    with pytest.raises(DataError, match="rank"):
        default_design(layout, 5, rank=0)
    with pytest.raises(DataError, match="layers_per_level"):
        default_design(layout, 5, layers_per_level=[1, 2.5])


# --------------------------------------------------------------------------- exports
def test_export_segy_keeps_source_geometry_and_values(f3, tmp_path):
    pred = _prediction((23, 18, 75), 3)
    out = export_prediction(pred, f3, tmp_path / "classes.sgy")
    with segyio.open(out, iline=189, xline=193) as f:
        np.testing.assert_array_equal(f.ilines, f3.coords["iline"].values)
        np.testing.assert_array_equal(f.xlines, f3.coords["xline"].values)
        np.testing.assert_allclose(f.samples, f3.coords["samples"].values)
        np.testing.assert_array_equal(segyio.tools.cube(f), pred.classes.astype(np.float32))
    conf = export_prediction(pred, f3, tmp_path / "p.sgy", what="probabilities")
    with segyio.open(conf, iline=189, xline=193) as f:
        np.testing.assert_allclose(segyio.tools.cube(f), pred.probabilities.max(0))
    one = export_prediction(pred, f3, tmp_path / "p1.sgy", what="probabilities", class_index=1)
    with segyio.open(one, iline=189, xline=193) as f:
        np.testing.assert_allclose(segyio.tools.cube(f), pred.probabilities[1])
    assert np.array_equal(load_class_map(out), pred.classes)


def test_export_geotiff_keeps_georeferencing_and_colours(rgb, tmp_path):
    pred = _prediction((718, 791), 3, seed=1)
    table = [("water", "#0000ff"), ("forest", "#00ff00"), ("town", "#ff0000")]
    out = export_prediction(pred, rgb, tmp_path / "classes.tif", class_table=table)
    with rasterio.open(rgb.attrs["source_path"]) as src, rasterio.open(out) as dst:
        assert dst.crs == src.crs
        assert dst.transform.almost_equals(src.transform)
        colours = dst.colormap(1)
        assert colours[2][:3] == (255, 0, 0) and colours[0][:3] == (0, 0, 255)
        written = dst.read(1)
    valid = np.isfinite(rgb.values).any(axis=0)
    np.testing.assert_array_equal(written[valid], pred.classes[valid])
    back = load_class_map(out)  # nodata (outside the scene) reads back as unlabelled
    np.testing.assert_array_equal(back, np.where(valid, pred.classes, -1))
    probs = export_prediction(pred, rgb, tmp_path / "p.tif", what="probabilities",
                              class_table=table)
    with rasterio.open(probs) as dst:
        assert dst.count == 3 and dst.descriptions == ("water", "forest", "town")
        np.testing.assert_allclose(dst.read()[:, valid], pred.probabilities[:, valid])


def test_export_npy_and_netcdf_round_trip(f3, tmp_path):
    pred = _prediction((23, 18, 75), 4, seed=2)
    npy = export_prediction(pred, f3, tmp_path / "p.npy", what="probabilities")
    np.testing.assert_array_equal(np.load(npy), pred.probabilities)
    nc = export_prediction(pred, f3, tmp_path / "e.nc", what="entropy")
    with xr.open_dataarray(nc, engine="h5netcdf") as back:
        np.testing.assert_array_equal(back.values, pred.entropy)
        np.testing.assert_array_equal(back.coords["iline"].values, f3.coords["iline"].values)
        np.testing.assert_allclose(back.coords["cdp_x"].values, f3.coords["cdp_x"].values)
    cls = export_prediction(pred, f3, tmp_path / "c.nc", class_table=["a", "b", "c", "d"])
    with xr.open_dataarray(cls, engine="h5netcdf") as back:
        np.testing.assert_array_equal(back.values, pred.classes)
        assert back.attrs["flag_meanings"] == "a b c d"
    assert np.array_equal(load_class_map(cls), pred.classes)
    probs = export_prediction(pred, f3, tmp_path / "p.nc", what="probabilities")
    with xr.open_dataarray(probs, engine="h5netcdf") as back:
        assert back.dims == ("class", "iline", "xline", "samples")
        np.testing.assert_array_equal(back.values, pred.probabilities)


def test_export_on_another_grid_or_format_is_refused(f3, rgb, tmp_path):
    with pytest.raises(DataError, match=r"\(23, 18, 74\).*\(23, 18, 75\)"):
        export_prediction(_prediction((23, 18, 74), 2), f3, tmp_path / "x.sgy")
    assert not (tmp_path / "x.sgy").exists()
    with pytest.raises(DataError, match="SEG-Y export needs seismic"):
        export_prediction(_prediction((718, 791), 2), rgb, tmp_path / "x.sgy")
    with pytest.raises(DataError, match="GeoTIFF export needs map"):
        export_prediction(_prediction((23, 18, 75), 2), f3, tmp_path / "x.tif")
    with pytest.raises(DataError, match="cannot export"):
        export_prediction(_prediction((23, 18, 75), 2), f3, tmp_path / "x.png")


# --------------------------------------------------------------------------- demo
def test_demo_recipe_follows_the_toml():
    raw = tomllib.loads(RECIPE_PATH.read_text(encoding="utf-8"))
    recipe = demo_recipe()
    design, config = recipe.design, recipe.config
    assert [[s.level, s.layers, s.rank] for s in design.segments] == raw["design"]["segments"]
    assert design.in_channels == raw["design"]["in_channels"]
    assert config.iterations == raw["training"]["iterations"]
    assert config.learning_rate == raw["training"]["learning_rate"]
    if "patch" in raw["training"]:
        assert config.patch == tuple(None if p == 0 else p for p in raw["training"]["patch"])
    assert recipe.borehole_radius == raw["labels"]["borehole_radius"]
    assert recipe.vertical_channel == raw.get("data", {}).get("vertical_channel", False)
    for flag in ATTRIBUTE_FLAGS:
        assert getattr(recipe, flag) == raw.get("data", {}).get(flag, False)
    assert recipe.augment == raw.get("prediction", {}).get("augment", False)


def test_demo_task_labels_the_wells_of_a_small_survey(tmp_path):
    task, units, files = demo_task((32, 32, 48), folder=tmp_path / "demo", radius=1.0)
    assert files.segy.is_file() and files.folder == tmp_path / "demo"
    # amplitude and the recipe's attributes
    n_attributes = sum(getattr(demo_recipe(), flag) for flag in ATTRIBUTE_FLAGS)
    assert task.data.shape == (1 + n_attributes, 32, 32, 48) and units.shape == (32, 32, 48)
    assert task.channel_names[1].startswith("vertical coordinate")
    assert task.n_classes == 5 and task.class_names[-1] == "Salt"
    labelled = task.labels >= 0
    assert 0 < labelled.sum() < 0.2 * labelled.size  # sparse: only around the wells
    # labels come from the wells, which sample the true geology
    assert (task.labels[labelled] == units[labelled]).mean() > 0.9


def test_vertical_channel_carries_the_sample_times(shared_data):
    from app.layout import to_channels_first
    from io_adapters.segy import read_segy

    da = read_segy(shared_data / "segy" / "f3.sgy")
    layout = to_channels_first(da, vertical_channel=True)
    assert layout.data.shape == (2, 23, 18, 75)
    assert np.array_equal(layout.data[0], da.values)
    assert np.array_equal(layout.data[1, 5, 7], da.coords["samples"].values.astype(np.float32))
    assert layout.channel_names[1].startswith("vertical coordinate")


def test_attribute_channels_follow_the_amplitude(shared_data):
    from app.layout import to_channels_first
    from io_adapters.segy import read_segy
    from io_adapters.seismic_attributes import envelope, semblance

    da = read_segy(shared_data / "segy" / "f3.sgy")
    layout = to_channels_first(da, vertical_channel=True, envelope_channel=True,
                               semblance_channel=True)
    assert layout.data.shape == (4, 23, 18, 75)
    assert layout.channel_names[2:] == ["envelope", "semblance"]
    assert np.array_equal(layout.data[2], envelope(da.values))
    assert np.array_equal(layout.data[3], semblance(da.values))
    with pytest.raises(DataError, match="for seismic"):
        to_channels_first(da.isel(samples=0).rename(iline="y", xline="x"),
                          envelope_channel=True)
