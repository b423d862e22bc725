"""A map far larger than the screen: only the shown cells are coloured, and the image is
the one the viewer drew before (every cell coloured, then picked); a lazily read raster
shows the same image as one read whole."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import xarray as xr
from rasterio.transform import from_origin

from app import views
from io_adapters.geotiff import read_geotiff


def _raster(path: Path) -> Path:
    rng = np.random.default_rng(4)
    values = rng.standard_normal((3, 700, 900)).astype(np.float32)
    values[:, :50, :80] = -9999.0
    with rasterio.open(path, "w", driver="GTiff", width=900, height=700, count=3,
                       dtype="float32", nodata=-9999.0, crs="EPSG:32618",
                       transform=from_origin(0, 7000, 10, 10), tiled=True, blockxsize=256,
                       blockysize=256) as dst:
        dst.write(values)
    return path


@pytest.mark.parametrize("rgb", [None, (2, 1, 0)])
def test_large_map_coloured_where_shown_is_the_same_image(tmp_path: Path, rgb) -> None:
    grid = read_geotiff(_raster(tmp_path / "map.tif"))
    view = views.make_view(grid, "map")
    settings = views.default_settings(grid)
    settings.rgb, settings.smooth = rgb, False
    settings.max_width, settings.max_height = 310, 250
    clips = [views.clip_range(views.band_values(grid, b), settings.percentile,
                              symmetric=settings.symmetric) for b in (rgb or (0,))]
    image, size = views.render_section(grid, view, settings, clips)
    assert size[0] * size[1] < 700 * 900  # the display has fewer pixels than the map cells
    every_cell = views.section_rgb(grid, view, settings, clips)
    assert every_cell.shape[:2] == (700, 900)
    np.testing.assert_array_equal(image, views.upscale(every_cell, size))

    lazy = read_geotiff(tmp_path / "map.tif", lazy=True)
    assert lazy.chunks is not None
    np.testing.assert_array_equal(views.render_section(lazy, view, settings, clips)[0], image)


def test_small_map_is_still_coloured_per_cell_then_enlarged() -> None:
    values = np.arange(12, dtype=np.float32).reshape(1, 3, 4)
    grid = xr.DataArray(values, dims=("band", "y", "x"), attrs={"kind": "raster"})
    view = views.make_view(grid, "map")
    settings = views.default_settings(grid)
    image, size = views.render_section(grid, view, settings, [(0.0, 11.0)])
    assert size[0] > 4 and size[1] > 3
    every_cell = views.section_rgb(grid, view, settings, [(0.0, 11.0)])
    np.testing.assert_array_equal(image, views.upscale(every_cell, size))


def test_a_raster_project_over_the_limit_opens_lazily_and_lays_out_as_before(
    tmp_path: Path, monkeypatch
) -> None:
    """The app's loader hands out the raster Dask-backed; the summary samples it and the
    training layout reads it whole, to the same channels as the in-memory raster."""
    from app.layout import to_channels_first
    from io_adapters import lazy
    from io_adapters.project import Project
    from io_adapters.summary import summarize

    project = Project.create(tmp_path / "p", "big map")
    project.add_source(_raster(tmp_path / "map.tif"), "geotiff")
    eager = project.load_data()
    monkeypatch.setattr(lazy, "IN_MEMORY_BYTES", eager.nbytes - 1)
    grid = project.load_data()
    assert eager.chunks is None and grid.chunks is not None
    xr.testing.assert_identical(grid.compute(), eager)
    assert dict(summarize(grid).rows)["Kind"] == dict(summarize(eager).rows)["Kind"]
    a, b = to_channels_first(grid), to_channels_first(eager)
    assert isinstance(a.data, np.ndarray)
    np.testing.assert_array_equal(a.data, b.data)
    assert a.channel_names == b.channel_names
