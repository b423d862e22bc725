"""Slice viewer rendering: sections, orientation, colours, overlays, exact display mapping."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from app.labelling import Stroke, canvas_to_cells
from app.views import (
    DisplaySettings,
    Marker,
    cell_readout,
    clip_range,
    colourize,
    composite,
    data_section,
    draw_markers,
    fit_display_size,
    label_overlay,
    label_section,
    make_view,
    render_section,
    section_lines,
    section_shape,
    to_display,
    upscale,
    view_kinds,
    well_markers,
)
from io_adapters.boreholes import Borehole
from io_adapters.label_geometry import display_to_grid, grid_to_display

SHAPE = (6, 7, 9)  # iline, xline, samples: all different, so orientation mistakes show


def seismic() -> xr.DataArray:
    values = np.arange(np.prod(SHAPE), dtype=np.float32).reshape(SHAPE)
    il, xl = np.arange(100, 106), np.arange(200, 207)
    cdp_x = (1000.0 + 25 * np.arange(6))[:, None] + np.zeros(7)[None, :]
    cdp_y = (5000.0 + 25 * np.arange(7))[None, :] + np.zeros(6)[:, None]
    return xr.DataArray(
        values, dims=("iline", "xline", "samples"),
        coords={"iline": il, "xline": xl, "samples": np.arange(9) * 4.0,
                "cdp_x": (("iline", "xline"), cdp_x), "cdp_y": (("iline", "xline"), cdp_y)},
        attrs={"vertical_unit": "ms"},
    )


def raster() -> xr.DataArray:
    values = np.arange(2 * 5 * 8, dtype=np.float32).reshape(2, 5, 8)
    return xr.DataArray(values, dims=("band", "y", "x"))


def test_view_kinds_and_orientation() -> None:
    grid = seismic()
    assert [k.name for k in view_kinds(grid)] == ["inline", "crossline", "timeslice"]
    assert [k.name for k in view_kinds(raster())] == ["map"]
    inline, xline, tslice = (make_view(grid, k, 3) for k in ("inline", "crossline",
                                                             "timeslice"))
    # sections show samples down the screen: (samples, xline) and (samples, iline)
    assert section_shape(SHAPE, inline) == (9, 7)
    assert section_shape(SHAPE, xline) == (9, 6)
    assert section_shape(SHAPE, tslice) == (6, 7)
    v = grid.values
    np.testing.assert_array_equal(data_section(grid, inline), v[3].T)
    np.testing.assert_array_equal(data_section(grid, xline), v[:, 3, :].T)
    np.testing.assert_array_equal(data_section(grid, tslice), v[:, :, 3])
    assert make_view(grid, "inline", 99).index == 5  # clipped to the axis
    with pytest.raises(ValueError, match="not one of"):
        make_view(grid, "map")


def test_map_view_picks_band() -> None:
    grid = raster()
    view = make_view(grid, "map")
    np.testing.assert_array_equal(data_section(grid, view, band=1), grid.values[1])
    assert section_shape((5, 8), view) == (5, 8)


def test_label_section_is_a_writable_view() -> None:
    labels = np.full(SHAPE, -1, dtype=np.int16)
    view = make_view(seismic(), "crossline", 2)
    label_section(labels, view)[4, 8] = 3  # slice (iline 4, sample 8)
    assert labels[4, 2, 8] == 3
    assert to_display(label_section(labels, view), view)[8, 4] == 3


@pytest.mark.parametrize("display", [(700, 450), (13, 11), (7, 9), (1000, 37), (61, 93)])
def test_painted_points_land_on_the_cell_drawn_under_them(display: tuple[int, int]) -> None:
    """Whatever the scale (enlarged, shrunk, non-integer, anisotropic), the cell a display
    pixel shows is the cell a stroke through that pixel paints."""
    grid = seismic()
    view = make_view(grid, "inline", 1)
    rows, cols = section_shape(SHAPE, view)
    ids = np.arange(rows * cols).reshape(rows, cols)
    shown = upscale(ids, display)
    assert shown.shape == (display[1], display[0])
    # a click on a pixel's centre paints exactly the cell that pixel shows
    for py in range(display[1]):
        for px in range(0, display[0], max(1, display[0] // 50)):
            centre = np.array([[px + 0.5, py + 0.5]])
            cell = canvas_to_cells(Stroke("point", centre), display, view, SHAPE)[0]
            r, c = divmod(int(shown[py, px]), cols)
            assert tuple(cell) == (c, r), (px, py)
    # any point of a stroke paints the cell whose display footprint contains it
    rng = np.random.default_rng(0)
    points = rng.uniform(0, 1, size=(500, 2)) * display
    cells = canvas_to_cells(Stroke("path", points), display, view, SHAPE)
    col_w, row_h = display[0] / cols, display[1] / rows
    for (x, y), (slice_row, slice_col) in zip(points, cells, strict=True):
        r, c = slice_col, slice_row  # slice (xline, sample) = display (col, row)
        assert c * col_w <= x < (c + 1) * col_w + 1e-9
        assert r * row_h <= y < (r + 1) * row_h + 1e-9


def test_cell_centres_round_trip_through_the_display() -> None:
    grid = seismic()
    for kind in ("inline", "crossline", "timeslice"):
        view = make_view(grid, kind, 2)
        disp = section_shape(SHAPE, view)
        for size in ((300, 410), (5, 4)):
            cells = np.argwhere(np.ones(disp, dtype=bool))
            xy = grid_to_display(cells, size, disp)
            back = display_to_grid(xy, size, disp, pixel_index=False)
            np.testing.assert_array_equal(back, cells)


def test_clip_range_symmetric_and_tails() -> None:
    values = np.concatenate([np.linspace(-10, 10, 1001), [np.nan, 1e6]])
    lo, hi = clip_range(values, 99.0, symmetric=True)
    assert lo == -hi and 9.8 < hi < 10.1  # the outlier does not set the scale
    lo, hi = clip_range(np.arange(101.0), 90.0, symmetric=False)
    assert (lo, hi) == (10.0, 90.0)
    assert clip_range(np.zeros(5)) == (-1.0, 1.0)
    assert clip_range(np.full(3, np.nan), symmetric=False) == (-1.0, 1.0)


def test_colourize_ends_and_nodata() -> None:
    rgb = colourize(np.array([[-5.0, 0.0, 5.0, np.nan]]), "grey", -1.0, 1.0)
    assert rgb.dtype == np.uint8 and rgb.shape == (1, 4, 3)
    assert tuple(rgb[0, 0]) == (0, 0, 0) and tuple(rgb[0, 2]) == (255, 255, 255)
    assert tuple(rgb[0, 3]) == (236, 236, 236)
    seis = colourize(np.array([[-1.0, 1.0]]), "seismic", -1.0, 1.0)
    assert seis[0, 0, 2] > seis[0, 0, 0] and seis[0, 1, 0] > seis[0, 1, 2]  # blue .. red


def test_overlay_and_composite() -> None:
    labels = np.array([[-1, 0], [1, 1]])
    split = np.array([[0, 0], [0, 1]], dtype=np.uint8)
    over = label_overlay(labels, ["#ff0000", "#0000ff"], alpha=0.5, split=split)
    assert over[0, 0, 3] == 0 and tuple(over[0, 1]) == (255, 0, 0, 128)
    assert over[1, 1, 3] == 64  # validation cells drawn fainter
    base = np.full((2, 2, 3), 100, dtype=np.uint8)
    out = composite(base, over)
    assert tuple(out[0, 0]) == (100, 100, 100)
    assert tuple(out[0, 1]) == (178, 50, 50)  # 100 * (1 - 128/255) + 255 * 128/255
    with pytest.raises(ValueError, match="differ in size"):
        composite(base, over[:1])


def test_fit_display_size() -> None:
    assert fit_display_size((128, 128), 900, 620) == (620, 620)
    assert fit_display_size((100, 400), 800, 600) == (800, 200)
    assert fit_display_size((50, 100), 800, 600, vertical_stretch=2.0) == (600, 600)
    w, h = fit_display_size((2000, 3000), 900, 620)
    assert w <= 900 and h <= 620 and abs(w / h - 1.5) < 0.01


def test_well_markers_on_map_and_sections() -> None:
    grid = seismic()
    wells = [Borehole("A", (2, 5), None, [(0.0, 12.0, 0), (16.0, 32.0, 1)]),
             Borehole("B", (5, 0), None, [])]
    colours = ["#ff0000", "#00ff00"]
    tslice = make_view(grid, "timeslice", 0)
    marks = well_markers(grid, tslice, wells, colours, (70, 60))
    assert [m.kind for m in marks] == ["well", "well"]
    assert marks[0].points[0] == pytest.approx((55.0, 25.0))  # centre of cell (2, 5)
    inline = make_view(grid, "inline", 3)  # 1 inline from A, 2 from B
    marks = well_markers(grid, inline, wells, colours, (70, 90), tolerance=1)
    assert [m.label for m in marks] == ["A"] and marks[0].kind == "column"
    assert marks[0].points[0][0] == pytest.approx(55.0)  # xline index 5 of 7 over 70 px
    # 0-12 ms = samples 0..3 -> y 0..40 of 90 px (9 samples); 16-32 ms = samples 4..8
    assert marks[0].segments == [(0.0, 40.0, "#ff0000"), (40.0, 90.0, "#00ff00")]
    far = make_view(grid, "inline", 0)
    assert well_markers(grid, far, wells, colours, (70, 90), tolerance=1) == []


def test_section_lines_cross_at_the_other_sections() -> None:
    view = make_view(seismic(), "inline", 1)
    lines = section_lines(view, {0: 1, 1: 3, 2: 4}, SHAPE, (70, 90))
    # on an inline (display rows = samples, cols = xlines): the crossline is vertical at
    # xline 3, the time slice horizontal at sample 4
    xs = sorted(lines, key=lambda m: m.points[0][0] == m.points[1][0])
    horizontal, vertical = xs
    assert horizontal.points[0][1] == pytest.approx(45.0)
    assert vertical.points[0][0] == pytest.approx(35.0)
    assert section_lines(make_view(raster(), "map"), {0: 1}, (5, 8), (80, 50)) == []


def test_draw_markers_changes_pixels_where_drawn() -> None:
    img = np.full((40, 60, 3), 200, dtype=np.uint8)
    out = draw_markers(img, [Marker("well", [(30.0, 20.0)], "W"),
                             Marker("line", [(0.0, 5.0), (59.0, 5.0)])])
    assert out.shape == img.shape and not np.array_equal(out[20, 30], img[20, 30])
    assert not np.array_equal(out[5, 10], img[5, 10])
    assert np.array_equal(out[35, 5], img[35, 5])  # far from both markers
    assert np.array_equal(img, np.full((40, 60, 3), 200))  # input left alone


def test_cell_readout() -> None:
    grid = seismic()
    labels = np.full(SHAPE, -1, dtype=np.int16)
    labels[2, 3, 4] = 1
    out = cell_readout(grid, (2, 3, 4), labels, ["sand", "shale"])
    assert out["Inline"] == "102 (index 2)" and out["Crossline"] == "203 (index 3)"
    assert out["Time"] == "16 ms (index 4)"
    assert out["CDP X"] == "1050.0" and out["CDP Y"] == "5075.0"
    assert out["value"] == f"{grid.values[2, 3, 4]:.6g}" and out["label"] == "shale"
    assert cell_readout(grid, (0, 0, 0), labels, ["sand", "shale"])["label"] == "none"


def test_render_section_layers() -> None:
    grid = seismic()
    labels = np.full(SHAPE, -1, dtype=np.int16)
    labels[2, :, :] = 0  # the whole inline 2
    settings = DisplaySettings(cmap="grey", max_width=140, max_height=180, opacity=1.0)
    view = make_view(grid, "inline", 2)
    image, size = render_section(grid, view, settings, [(-1.0, 1.0)], labels=labels,
                                 colours=["#ff0000"])
    assert size == (140, 180) and image.shape == (180, 140, 3)
    assert np.all(image == (255, 0, 0))  # opaque labels cover the data everywhere
    other = make_view(grid, "inline", 3)
    image, _ = render_section(grid, other, settings, [(-1.0, 1.0)], labels=labels,
                              colours=["#ff0000"])
    assert not np.any(np.all(image == (255, 0, 0), axis=-1))


def test_default_rgb_picks_natural_colour_bands() -> None:
    from app.views import default_rgb

    tm = xr.DataArray(np.zeros((2, 2, 6)), dims=("y", "x", "band"),
                      coords={"wavelength": ("band", [0.485, 0.56, 0.66, 0.83, 1.65, 2.2])})
    assert default_rgb(tm) == (2, 1, 0)  # red 0.66 um, green 0.56, blue 0.485
    nm = tm.assign_coords(wavelength=("band", [450.0, 500, 550, 600, 650, 700]))
    assert default_rgb(nm) == (4, 2, 0)
    assert default_rgb(raster().isel(band=[0, 1, 0])) == (0, 1, 2)  # no wavelengths


def test_cursor_marker_only_on_its_section() -> None:
    from app.views import cursor_marker

    grid = seismic()
    inline = make_view(grid, "inline", 2)
    mark = cursor_marker((2, 3, 4), inline, (70, 90), SHAPE)
    assert mark is not None and mark.points[0] == pytest.approx((35.0, 45.0))
    assert cursor_marker((1, 3, 4), inline, (70, 90), SHAPE) is None
    assert cursor_marker((1, 3), inline, (70, 90), SHAPE) is None


def test_rgb_composite_greys_out_gaps_in_any_band() -> None:
    from app.views import section_rgb

    grid = raster().isel(band=[0, 1, 0]).copy()
    grid.values[1, 2, 3] = np.nan
    settings = DisplaySettings(rgb=(0, 1, 2))
    rgb = section_rgb(grid, make_view(grid, "map"), settings, [(0.0, 80.0)] * 3)
    assert tuple(rgb[2, 3]) == (236, 236, 236)
    assert rgb[0, 0, 0] == 0 and rgb[4, 7, 1] == round(float(grid.values[1, 4, 7]) / 80 * 255)
