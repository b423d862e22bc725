"""Off-screen 3D views: geometry from the survey, non-blank renders in the class colours."""

from __future__ import annotations

import re

import numpy as np
import pytest
import xarray as xr

from app import render3d
from app.views import hex_to_rgb

COLOURS = ["#f2c14e", "#e4632d", "#4c78a8"]
NAMES = ["sand", "shale", "salt"]


@pytest.fixture(scope="module")
def survey() -> xr.DataArray:
    """A small seismic-like volume on a rotated 25 m x 12.5 m grid, 4 ms sampling."""
    ni, nx, ns = 12, 10, 20
    il, xl = np.meshgrid(np.arange(ni), np.arange(nx), indexing="ij")
    angle = np.deg2rad(30)
    x = 1000 + 25 * il * np.cos(angle) - 12.5 * xl * np.sin(angle)
    y = 5000 + 25 * il * np.sin(angle) + 12.5 * xl * np.cos(angle)
    rng = np.random.default_rng(0)
    values = rng.normal(size=(ni, nx, ns)).astype(np.float32)
    return xr.DataArray(
        values, dims=("iline", "xline", "samples"),
        coords={"iline": 100 + np.arange(ni), "xline": 200 + np.arange(nx),
                "samples": 4.0 * np.arange(ns), "cdp_x": (("iline", "xline"), x),
                "cdp_y": (("iline", "xline"), y)},
        attrs={"sample_interval": 4.0, "vertical_unit": "ms"}, name="amplitude")


def layered(shape: tuple[int, int, int]) -> np.ndarray:
    """Three classes in horizontal layers (shallow to deep)."""
    classes = np.zeros(shape, np.int16)
    classes[:, :, shape[2] // 3:] = 1
    classes[:, :, 2 * shape[2] // 3:] = 2
    return classes


def close_to(image: np.ndarray, colour: str, tol: float = 12.0) -> int:
    rgb = np.asarray(hex_to_rgb(colour), dtype=np.float64)
    return int((np.abs(image.astype(np.float64) - rgb).max(axis=-1) <= tol).sum())


def test_geometry_uses_bin_sizes_and_points_time_down(survey: xr.DataArray) -> None:
    g = render3d.geometry_of(survey)
    assert g.shape == (12, 10, 20) and not g.flat
    assert g.spacing[0] == pytest.approx(25.0) and g.spacing[1] == pytest.approx(12.5)
    # time scaled to about 0.6 of the wider side, exaggeration multiplies it
    assert 20 * g.spacing[2] == pytest.approx(0.6 * 12 * 25.0)
    assert render3d.geometry_of(survey, 2.0).spacing[2] == pytest.approx(2 * g.spacing[2])
    scene = g.to_scene(np.arange(20)[np.newaxis, np.newaxis, :] * np.ones((12, 10, 1)))
    assert scene[0, 0, -1] == 0 and scene[0, 0, 0] == 19  # the first sample is on top
    assert g.centre(2, 0) > g.centre(2, 19)
    bare = survey.drop_vars(["cdp_x", "cdp_y"])
    assert render3d.geometry_of(bare).spacing[:2] == (1.0, 1.0)


def test_volume_cells_keep_the_values(survey: xr.DataArray) -> None:
    g = render3d.geometry_of(survey)
    classes = layered(g.shape)
    grid = render3d.volume(g, render3d.class_layer(classes, NAMES, COLOURS))
    assert grid.n_cells == classes.size
    values = np.asarray(grid.cell_data["prediction"]).reshape(g.scene_shape, order="F")
    np.testing.assert_array_equal(values, g.to_scene(classes))
    cut = render3d.slices(grid, g, (3, 4, 5))
    assert len(cut) == 3 and all(block.n_cells > 0 for block in cut)
    sliced = np.unique(np.concatenate([np.asarray(b.cell_data["prediction"]) for b in cut]))
    assert set(sliced) <= {0.0, 1.0, 2.0}  # whole classes: no values between two classes


def test_prediction_renders_in_the_class_colours(survey: xr.DataArray) -> None:
    g = render3d.geometry_of(survey)
    plotter = render3d.build_plotter(
        survey, render3d.class_layer(layered(g.shape), NAMES, COLOURS),
        window_size=(400, 300), scalar_bar=False)
    image = render3d.screenshot(plotter)
    assert image.shape == (300, 400, 3) and image.dtype == np.uint8
    assert image.std() > 10
    for colour in COLOURS:
        assert close_to(image, colour) > 50, f"{colour} is missing from the render"


def test_data_error_and_uncertainty_layers_render(survey: xr.DataArray) -> None:
    g = render3d.geometry_of(survey)
    data = render3d.data_layer(survey)
    assert data.clim[0] == -data.clim[1]  # seismic: symmetric about zero
    errors = np.where(layered(g.shape) == 1, 1, 0).astype(np.int8)
    errors[:, :, :3] = -1
    for layer in (data, render3d.error_layer(errors),
                  render3d.entropy_layer(np.linspace(0, 1, errors.size).reshape(g.shape))):
        png = render3d.render_png(render3d.build_plotter(survey, layer, window_size=(320, 240)))
        assert png.startswith(b"\x89PNG")
    image = render3d.screenshot(render3d.build_plotter(
        survey, render3d.error_layer(errors), window_size=(400, 300), scalar_bar=False))
    assert close_to(image, render3d.ERROR_COLOURS[1]) > 50  # wrong: red
    assert close_to(image, render3d.ERROR_COLOURS[0]) > 50  # right: green


def test_class_surfaces_close_around_each_class(survey: xr.DataArray) -> None:
    g = render3d.geometry_of(survey)
    classes = np.zeros(g.shape, np.int16)
    classes[3:8, 3:7, 5:12] = 1  # a box of class 1
    surfaces = render3d.class_surfaces(g, classes, [1, 2])
    assert list(surfaces) == [1]  # class 2 is absent: no surface
    box = surfaces[1]
    assert box.n_points > 0
    bounds = np.asarray(box.bounds).reshape(3, 2)
    assert bounds[0, 0] == pytest.approx(3 * 25.0, abs=25.0)
    assert bounds[0, 1] == pytest.approx(8 * 25.0, abs=25.0)
    image = render3d.screenshot(render3d.build_plotter(
        survey, render3d.data_layer(survey), surfaces=surfaces, surface_colours=COLOURS,
        window_size=(300, 200)))
    assert image.std() > 5


def test_flat_map_is_shown_north_up() -> None:
    y = 100.0 - 10.0 * np.arange(8)
    x = 10.0 * np.arange(6)
    classes = np.zeros((8, 6), np.int16)
    classes[:4] = 1  # the northern half
    da = xr.DataArray(np.zeros((1, 8, 6), np.float32), dims=("band", "y", "x"),
                      coords={"y": y, "x": x}, attrs={"transform": (10, 0, 0, 0, -10, 105)})
    g = render3d.geometry_of(da)
    assert g.flat and g.scene_shape == (6, 8, 1) and g.spacing[:2] == (10.0, 10.0)
    scene = g.to_scene(classes)
    assert scene[:, -1, 0].tolist() == [1] * 6  # scene y grows north
    image = render3d.screenshot(render3d.build_plotter(
        da, render3d.class_layer(classes, ["south", "north"], COLOURS[:2]),
        window_size=(300, 300), scalar_bar=False))
    ys_north = np.nonzero(np.abs(image.astype(int) - hex_to_rgb(COLOURS[1])).max(-1) < 12)[0]
    ys_south = np.nonzero(np.abs(image.astype(int) - hex_to_rgb(COLOURS[0])).max(-1) < 12)[0]
    assert ys_north.size and ys_south.size and ys_north.mean() < ys_south.mean()


def test_interactive_page_is_self_contained(survey: xr.DataArray) -> None:
    g = render3d.geometry_of(survey)
    plotter = render3d.build_plotter(survey, render3d.class_layer(layered(g.shape), NAMES,
                                                                  COLOURS))
    try:
        page = render3d.interactive_html(plotter)
    finally:
        plotter.close()
    assert page.lstrip().lower().startswith("<!doctype html>")
    assert "OfflineLocalView.load" in page and "base64Str" in page
    # nothing is loaded from elsewhere: no external src/href, no favicon from kitware
    assert not re.search(r"""(src|href)\s*=\s*["']https?://""", page)
    assert "kitware.github.io/vtk-js/icon" not in page


def test_axes_read_survey_coordinates_with_time_growing_down(survey: xr.DataArray) -> None:
    import pyvista as pv

    layer = render3d.class_layer(layered((12, 10, 20)), NAMES, COLOURS)
    plotter = render3d.build_plotter(survey, layer, window_size=(400, 300))
    try:
        (axes,) = [a for a in plotter.renderer.actors.values()
                   if isinstance(a, pv.CubeAxesActor)]
        inlines = [float(v) for v in axes.x_labels]
        assert inlines[0] == 100 and inlines[-1] == 111
        assert (float(axes.y_labels[0]), float(axes.y_labels[-1])) == (200, 209)
        # z points up in the scene: its labels, bottom to top, are the latest time first
        times = [float(v) for v in axes.z_labels]
        assert times[0] == 76 and times[-1] == 0 and np.all(np.diff(times) < 0)
        assert axes.GetZTitle().startswith("Time (ms)")
        assert axes.GetXTitle() == "Inline" and axes.GetYTitle() == "Crossline"
        # the class colour bar names the classes (categorical), not 0..K-1
        bar = next(iter(plotter.scalar_bars.values()))
        assert bar.GetLookupTable().GetNumberOfAnnotatedValues() == len(NAMES)
        assert [bar.GetLookupTable().GetAnnotation(i) for i in range(3)] == NAMES
        image = render3d.screenshot(plotter, close=False)
    finally:
        plotter.close()
    assert all(close_to(image, c) > 50 for c in COLOURS)


def test_browser_scene_leaves_out_axes_it_would_number_wrongly(survey: xr.DataArray) -> None:
    import pyvista as pv

    layer = render3d.class_layer(layered((12, 10, 20)), NAMES, COLOURS)
    plotter = render3d.build_plotter(survey, layer, window_size=(300, 200))
    try:
        def cube_axes() -> int:
            return sum(isinstance(a, pv.CubeAxesActor) for a in plotter.renderer.actors.values())

        assert cube_axes() == 1  # in the rendered image
        html = render3d.interactive_html(plotter)
        # vtk.js numbers cube axes in scene units (metres), not inlines and times
        assert cube_axes() == 0 and "<html" in html.lower()
    finally:
        plotter.close()
    assert render3d.axes_key(survey) == (
        "Inline 100-111 along the front edge, crossline 200-209 along the side, time 0-76 "
        "ms growing downwards.")
