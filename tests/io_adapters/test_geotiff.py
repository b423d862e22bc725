"""io_adapters.geotiff against real GeoTIFFs (rasterio test data) and rasters made from them."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import rasterio
import xarray as xr
from rasterio.crs import CRS
from rasterio.transform import Affine, from_origin
from rasterio.warp import Resampling, calculate_default_transform, reproject, transform_bounds

from io_adapters.errors import DataError, DataWarning
from io_adapters.geotiff import raster_profile, read_geotiff, stack_rasters, write_geotiff


@pytest.fixture
def rgb(shared_data: Path) -> Path:
    return shared_data / "geotiff" / "RGB.byte.tif"


@pytest.fixture
def shade(shared_data: Path) -> Path:
    return shared_data / "geotiff" / "shade.tif"


@pytest.fixture
def geographic(rgb: Path, tmp_path: Path) -> Path:
    """RGB band 1 warped to EPSG:4326 at another resolution, northern half only."""
    path = tmp_path / "geographic.tif"
    with rasterio.open(rgb) as src:
        transform, width, height = calculate_default_transform(
            src.crs, "EPSG:4326", src.width, src.height, *src.bounds, resolution=0.005
        )
        warped = np.zeros((height, width), np.uint8)
        reproject(rasterio.band(src, 1), warped, dst_transform=transform, dst_crs="EPSG:4326",
                  dst_nodata=0, resampling=Resampling.nearest)
    profile = dict(driver="GTiff", width=width, height=height // 2, count=1, dtype="uint8",
                   crs="EPSG:4326", transform=transform, nodata=0)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(warped[np.newaxis, : height // 2])
    return path


@pytest.fixture
def geology(rgb: Path, tmp_path: Path) -> Path:
    """A coarse categorical map (classes 1, 2, 5; nodata 0) over part of RGB's footprint."""
    path = tmp_path / "geology.tif"
    with rasterio.open(rgb) as src:
        left, top = src.bounds.left + 30_000, src.bounds.top - 20_000
    classes = np.ones((40, 50), np.uint8)
    classes[:, 20:] = 2
    classes[25:, 35:] = 5
    classes[:3, :3] = 0
    profile = dict(driver="GTiff", width=50, height=40, count=1, dtype="uint8",
                   crs="EPSG:32618", transform=from_origin(left, top, 2500.0, 2500.0), nodata=0)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(classes[np.newaxis])
    return path


def _independent_warp(path: Path, like: Path, resampling: Resampling) -> np.ndarray:
    """rasterio's own reprojection of band 1 of path onto like's grid, NaN for no data."""
    with rasterio.open(path) as src, rasterio.open(like) as ref:
        out = np.full((ref.height, ref.width), np.nan, np.float32)
        reproject(rasterio.band(src, 1), out, src_nodata=src.nodata, dst_transform=ref.transform,
                  dst_crs=ref.crs, dst_nodata=np.nan, resampling=resampling)
    return out


# ----------------------------------------------------------------------------- reading


def test_read_rgb(rgb: Path) -> None:
    da = read_geotiff(rgb)
    with rasterio.open(rgb) as src:
        raw = src.read()
        transform = src.transform
    assert da.dims == ("band", "y", "x") and da.dtype == np.float32
    assert da.shape == (3, 718, 791)
    np.testing.assert_array_equal(da.band, [1, 2, 3])
    assert CRS.from_wkt(da.attrs["crs"]).to_epsg() == 32618
    assert Affine(*da.attrs["transform"]) == transform
    assert da.attrs["nodata"] == 0.0 and da.attrs["kind"] == "raster"
    assert da.attrs["source_path"] == str(rgb.resolve())
    assert da.attrs["colorinterp"] == ("red", "green", "blue")
    assert float(da.x[0]) == pytest.approx(transform.c + transform.a / 2)
    assert float(da.y[-1]) == pytest.approx(transform.f + transform.e * (718 - 0.5))

    nodata = raw == 0
    assert nodata.any() and (~nodata).any()
    np.testing.assert_array_equal(np.isnan(da.values), nodata)
    np.testing.assert_array_equal(da.values[~nodata], raw[~nodata].astype(np.float32))


def test_read_selected_bands(rgb: Path) -> None:
    da = read_geotiff(rgb, bands=[3])
    with rasterio.open(rgb) as src:
        blue = src.read(3)
    assert da.shape == (1, 718, 791)
    np.testing.assert_array_equal(da.band, [3])
    np.testing.assert_array_equal(da.values[0][blue > 0], blue[blue > 0])
    with pytest.raises(DataError, match=r"RGB\.byte\.tif, which has bands 1\.\.3"):
        read_geotiff(rgb, bands=[4])


def test_read_not_a_raster(tmp_path: Path) -> None:
    bad = tmp_path / "notes.tif"
    bad.write_text("not a raster\n")
    with pytest.raises(DataError, match=r"notes\.tif is not a raster"):
        read_geotiff(bad)


# ---------------------------------------------------------------------------- stacking


def test_stack_rgb_and_shade_on_rgb_grid(rgb: Path, shade: Path) -> None:
    with pytest.warns(DataWarning, match=r"shade\.tif does not overlap the reference grid of "
                                         r"RGB\.byte\.tif"):
        stack = stack_rasters([rgb, shade])
    with rasterio.open(rgb) as ref, rasterio.open(shade) as other:
        ref_crs, ref_transform, ref_bounds = ref.crs, ref.transform, ref.bounds
        shade_in_utm = transform_bounds(other.crs, ref.crs, *other.bounds)
    assert stack.shape == (4, 718, 791)
    assert list(stack.band.values) == [
        "RGB.byte.tif:1", "RGB.byte.tif:2", "RGB.byte.tif:3", "shade.tif:1"
    ]
    assert CRS.from_wkt(stack.attrs["crs"]) == ref_crs
    assert Affine(*stack.attrs["transform"]) == ref_transform
    np.testing.assert_array_equal(stack.values[:3], read_geotiff(rgb).values)

    # the hillshade (Colorado) lies far outside the Landsat scene (Bahamas): all NaN there
    assert shade_in_utm[0] > ref_bounds.right or shade_in_utm[2] < ref_bounds.left
    assert np.isnan(stack.values[3]).all()
    independent = _independent_warp(shade, rgb, Resampling.bilinear)
    np.testing.assert_array_equal(np.isnan(stack.values[3]), np.isnan(independent))


def test_stack_other_crs_and_resolution(rgb: Path, geographic: Path) -> None:
    stack = stack_rasters([rgb, geographic])
    warped = stack.values[3]
    independent = _independent_warp(geographic, rgb, Resampling.bilinear)
    np.testing.assert_array_equal(np.isnan(warped), np.isnan(independent))
    np.testing.assert_allclose(warped, independent, atol=1e-3)

    # the southern half of the scene lies outside the cropped raster: NaN there
    red = stack.values[0]
    assert np.isnan(warped[-100:]).all() and np.isfinite(red[-100:]).any()
    # where both exist, the round trip UTM -> lon/lat -> UTM lands on the same pixels
    both = np.isfinite(warped) & np.isfinite(red)
    assert both.sum() > 100_000
    assert np.corrcoef(warped[both], red[both])[0, 1] > 0.9

    # the other raster as the reference: its grid and CRS
    on_geo = stack_rasters([rgb, geographic], reference=geographic)
    with rasterio.open(geographic) as src:
        assert on_geo.shape == (4, src.height, src.width)
        assert Affine(*on_geo.attrs["transform"]) == src.transform
        assert CRS.from_wkt(on_geo.attrs["crs"]).to_epsg() == 4326


def test_stack_categorical_one_hot(rgb: Path, geology: Path) -> None:
    stack = stack_rasters([rgb, geology], categorical=[False, True])
    names = list(stack.band.values)
    assert names[3:] == ["geology.tif:class=1", "geology.tif:class=2", "geology.tif:class=5"]
    one_hot = stack.values[3:]
    valid = np.isfinite(one_hot[0])
    assert valid.sum() > 1000 and (~valid).sum() > 1000
    for channel in one_hot:  # NaN in every channel at the same places
        np.testing.assert_array_equal(np.isfinite(channel), valid)
    assert set(np.unique(one_hot[:, valid])) == {0.0, 1.0}
    np.testing.assert_array_equal(one_hot[:, valid].sum(axis=0), 1.0)

    ids = _independent_warp(geology, rgb, Resampling.nearest)
    np.testing.assert_array_equal(np.isfinite(ids), valid)
    np.testing.assert_array_equal(np.array([1, 2, 5])[one_hot[:, valid].argmax(axis=0)], ids[valid])

    plain = stack_rasters([rgb, geology], categorical=[False, True], one_hot=False)
    assert list(plain.band.values)[3:] == ["geology.tif:1"]
    np.testing.assert_array_equal(plain.values[3], ids)


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_stack_without_crs(rgb: Path, tmp_path: Path) -> None:
    bare = tmp_path / "bare.tif"
    profile = dict(driver="GTiff", width=20, height=10, count=1, dtype="float32")
    with rasterio.open(bare, "w", **profile) as dst:
        dst.write(np.ones((1, 10, 20), np.float32))
    with pytest.raises(DataError) as err:
        stack_rasters([rgb, bare])
    assert "bare.tif has no coordinate reference system" in str(err.value)
    assert "gdal_edit.py -a_srs" in str(err.value)
    # alone it needs no common grid, so it is just read
    alone = stack_rasters([bare])
    assert alone.shape == (1, 10, 20) and alone.attrs["crs"] is None


def test_stack_argument_errors(rgb: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="categorical has 1 entries for 2 rasters"):
        stack_rasters([rgb, rgb], categorical=[True])
    with pytest.raises(DataError, match="reference=5"):
        stack_rasters([rgb], reference=5)
    field = tmp_path / "field.tif"  # a continuous field marked categorical by mistake
    profile = dict(driver="GTiff", width=30, height=20, count=1, dtype="float32",
                   crs="EPSG:32618", transform=from_origin(500_000, 2_800_000, 30, 30))
    with rasterio.open(field, "w", **profile) as dst:
        dst.write(np.random.default_rng(0).random((1, 20, 30), dtype=np.float32))
    with pytest.raises(DataError, match="field.tif has 600 distinct values"):
        stack_rasters([field], categorical=[True])


# ----------------------------------------------------------------------------- writing


def test_write_class_map_with_colours(rgb: Path, geology: Path, tmp_path: Path) -> None:
    stack = stack_rasters([rgb, geology], categorical=[False, True])
    red = np.nan_to_num(stack.values[0])
    classes = np.digitize(red, [60, 120]).astype(np.int64)  # 0, 1, 2
    colours = {0: (200, 30, 30), 1: (30, 200, 30), 2: (30, 30, 200)}
    out = write_geotiff(tmp_path / "pred.tif", classes, stack, colormap=colours,
                        band_names=["class"])
    assert out == tmp_path / "pred.tif"
    assert sorted(os.listdir(tmp_path)) == ["geology.tif", "pred.tif"]

    no_input = np.isnan(stack.values).all(axis=0)
    assert no_input.any() and (~no_input).any()
    with rasterio.open(out) as src:
        assert src.crs == CRS.from_wkt(stack.attrs["crs"])
        assert src.transform == Affine(*stack.attrs["transform"])
        assert (src.count, src.height, src.width) == (1, 718, 791)
        assert src.dtypes == ("uint8",) and src.nodata == 255
        assert src.profile["tiled"] is True
        assert (src.profile["blockxsize"], src.profile["blockysize"]) == (256, 256)
        assert src.compression.value == "DEFLATE"
        assert src.descriptions == ("class",)
        table = src.colormap(1)
        for value, rgb_colour in colours.items():
            assert table[value][:3] == rgb_colour
        written = src.read(1)
    np.testing.assert_array_equal(written[no_input], 255)
    np.testing.assert_array_equal(written[~no_input], classes[~no_input])


def test_write_probabilities_float(rgb: Path, tmp_path: Path) -> None:
    like = read_geotiff(rgb)
    probs = np.random.default_rng(0).random((2, 718, 791)).astype(np.float32)
    out = write_geotiff(tmp_path / "probs.tif", probs, like)
    no_input = np.isnan(like.values).all(axis=0)
    with rasterio.open(out) as src:
        assert src.dtypes == ("float32", "float32") and np.isnan(src.nodata)
        back = src.read()
    assert np.isnan(back[:, no_input]).all()
    np.testing.assert_array_equal(back[:, ~no_input], probs[:, ~no_input])


def test_raster_profile_small_raster_is_not_tiled(rgb: Path) -> None:
    small = read_geotiff(rgb)[:, :100, :200]
    profile = raster_profile(small, dtype="uint8", count=1, nodata=255)
    assert (profile["width"], profile["height"]) == (200, 100)
    assert "tiled" not in profile and profile["compress"] == "deflate"
    assert profile["driver"] == "GTiff" and profile["nodata"] == 255


def test_write_wrong_shape(rgb: Path, tmp_path: Path) -> None:
    like = read_geotiff(rgb)
    with pytest.raises(DataError) as err:
        write_geotiff(tmp_path / "pred.tif", np.zeros((700, 791), np.uint8), like)
    assert "(700, 791)" in str(err.value) and "(718, 791)" in str(err.value)
    assert os.listdir(tmp_path) == []


def test_write_unwritable(rgb: Path, tmp_path: Path) -> None:
    like = read_geotiff(rgb)
    values = np.zeros((718, 791), np.uint8)
    with pytest.raises(DataError, match="no_such_folder"):
        write_geotiff(tmp_path / "no_such_folder" / "pred.tif", values, like)
    folder = tmp_path / "a_folder"
    folder.mkdir()
    with pytest.raises(DataError, match="a_folder.*folder"):
        write_geotiff(folder, values, like)
    with pytest.raises(DataError, match="colour"):  # fails after the temporary file exists
        write_geotiff(tmp_path / "pred.tif", values, like, colormap={0: (300, 0, 0)})
    assert os.listdir(tmp_path) == ["a_folder"]
    assert os.listdir(folder) == []


# ------------------------------------------------------------------------ lazy reading


def _big_float_raster(path: Path, *, tiled: bool) -> np.ndarray:
    """A 4000 x 4000 float32 raster (64 MB, uncompressed) with nodata -9999 in a corner;
    returns its values with NaN for nodata."""
    rng = np.random.default_rng(7)
    values = rng.standard_normal((4000, 4000), dtype=np.float32)
    values[:300, :200] = -9999.0
    layout = dict(tiled=True, blockxsize=256, blockysize=256) if tiled else {}
    with rasterio.open(path, "w", driver="GTiff", width=4000, height=4000, count=1,
                       dtype="float32", nodata=-9999.0, crs="EPSG:32618",
                       transform=from_origin(500_000, 4_000_000, 10.0, 10.0), **layout) as dst:
        dst.write(values[np.newaxis])
    values[:300, :200] = np.nan
    return values


def test_lazy_read_equals_eager_on_real_files(rgb: Path, shade: Path) -> None:
    for path in (rgb, shade):
        eager, lazy = read_geotiff(path), read_geotiff(path, lazy=True)
        assert eager.chunks is None and lazy.chunks is not None
        assert set(lazy.chunks[0]) == {1}  # one band per chunk: a band view reads one band
        xr.testing.assert_identical(lazy.load(), eager)
    one = read_geotiff(rgb, bands=[3], lazy=True)
    xr.testing.assert_identical(one.compute(), read_geotiff(rgb, bands=[3]))


def test_small_rasters_load_and_large_ones_stay_lazy(rgb: Path, monkeypatch) -> None:
    from io_adapters import lazy

    assert read_geotiff(rgb).chunks is None  # 6.8 MB as float32: in memory, as before
    monkeypatch.setattr(lazy, "IN_MEMORY_BYTES", 3 * 718 * 791 * 4 - 1)
    assert read_geotiff(rgb).chunks is not None
    assert read_geotiff(rgb, lazy=False).chunks is None


def test_lazy_stack_equals_eager(rgb: Path, geology: Path, tmp_path: Path) -> None:
    """Channels on the reference grid (continuous and one-hot) read by windows, a raster on
    another grid resampled in memory: the same stack as read at once."""
    on_grid = tmp_path / "zones.tif"
    with rasterio.open(rgb) as src:
        profile = dict(src.profile, count=1, nodata=0)
        zones = (src.read(1) // 64).astype(np.uint8)  # 0 (nodata), 1, 2, 3
    with rasterio.open(on_grid, "w", **profile) as dst:
        dst.write(zones[np.newaxis])
    paths, flags = [rgb, on_grid, geology], [False, True, True]
    eager = stack_rasters(paths, categorical=flags)
    lazy = stack_rasters(paths, categorical=flags, lazy=True)
    assert eager.chunks is None and lazy.chunks is not None
    assert list(lazy.band.values)[3:6] == ["zones.tif:class=1", "zones.tif:class=2",
                                           "zones.tif:class=3"]
    xr.testing.assert_identical(lazy.compute(), eager)


@pytest.mark.parametrize("tiled", [True, False])
def test_lazy_window_reads_only_the_window(tmp_path: Path, tiled: bool) -> None:
    import tracemalloc

    path = tmp_path / "big.tif"
    values = _big_float_raster(path, tiled=tiled)
    da = read_geotiff(path, lazy=True)
    rows, cols = da.chunks[1], da.chunks[2]
    if tiled:  # chunks of whole 256 x 256 tiles, about a million pixels
        assert all(n % 256 == 0 for n in (*rows[:-1], *cols[:-1])) and rows[0] == 1024
    else:  # strips: whole rows
        assert cols == (4000,) and rows[0] * 4000 <= 1 << 20
    corner = da.isel(band=0, y=slice(0, 2), x=slice(0, 2)).values  # (imports, thread pool)
    assert np.isnan(corner).all()
    tracemalloc.start()
    window = da.isel(band=0, y=slice(150, 406), x=slice(3000, 3256)).values
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    np.testing.assert_array_equal(window, values[150:406, 3000:3256])
    # the file is 64 MB, a chunk 4 MB (12 MB while read masked), the window 256 kB
    assert peak < 2 << 20, f"peak {peak / 2**20:.1f} MB"
