"""What the slice viewer shows: sections of the data grid as images, labels as overlays.

Pure numpy / matplotlib / Pillow (no streamlit), so every step is tested directly:

- a :class:`View` says which 2D section of the label grid is on screen (an inline,
  crossline or time/depth slice of a seismic volume, or the map of a raster/cube) and
  how it is oriented: on vertical sections time/depth runs down the screen, so the
  slice's (trace, sample) axes are transposed for display;
- :func:`data_section` / :func:`label_section` cut that section out of the data and the
  label arrays (the latter as a writable view, so painting writes into the volume);
- :func:`clip_range`, :func:`colourize`, :func:`label_overlay`, :func:`composite` turn
  values into an RGB image with symmetric percentile clipping and a transparent overlay;
- :func:`upscale` enlarges a grid image to the display size with exactly the cell
  footprints that :func:`io_adapters.label_geometry.display_to_grid` maps painted points
  back with, so what is painted on a pixel lands on the cell drawn under it;
- :func:`draw_markers` draws wells, section positions and transects on the image.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import xarray as xr
from PIL import Image, ImageDraw, ImageFont

from io_adapters.gridmatch import spatial_dims
from io_adapters.label_geometry import display_to_grid, grid_to_display

__all__ = [
    "View",
    "ViewKind",
    "view_kinds",
    "make_view",
    "is_volume",
    "section_shape",
    "data_section",
    "label_section",
    "to_display",
    "display_to_slice_cells",
    "slice_to_display_cells",
    "clip_range",
    "colourize",
    "hex_to_rgb",
    "label_overlay",
    "composite",
    "fit_display_size",
    "upscale",
    "Marker",
    "draw_markers",
    "well_markers",
    "section_lines",
    "cell_readout",
    "axis_title",
    "cursor_marker",
    "COLOUR_MAPS",
    "DisplaySettings",
    "default_settings",
    "band_values",
    "default_rgb",
    "section_rgb",
    "render_section",
    "ColourBar",
    "Framed",
    "frame_section",
    "display_axes",
    "axis_ticks",
    "data_colourbar",
]

# Display colour maps: seismic amplitude (diverging) and grey; others for maps and cubes.
COLOUR_MAPS: dict[str, str] = {
    "seismic": "seismic",
    "grey": "gray",
    "red-white-blue": "RdBu",
    "viridis": "viridis",
    "terrain": "terrain",
}


@dataclass(frozen=True)
class ViewKind:
    """One kind of section the data offers: ``name`` (key), ``title`` and sliced ``axis``."""

    name: str
    title: str
    axis: int | None


@dataclass(frozen=True)
class View:
    """The 2D section on screen.

    ``axis`` is the label-grid axis that is cut (None for a 2D map), ``index`` the
    position along it, ``transpose`` True when display rows/cols are the slice's
    cols/rows (vertical sections: samples run down the screen).
    """

    kind: str
    axis: int | None
    index: int
    transpose: bool
    title: str = ""


def is_volume(grid: xr.DataArray) -> bool:
    """True for data whose label grid is 3D (seismic): the viewer cuts sections."""
    return len(spatial_dims(grid)) == 3


def view_kinds(grid: xr.DataArray) -> list[ViewKind]:
    """The sections a dataset offers: inline/crossline/time (or depth) slices, or the map."""
    if not is_volume(grid):
        return [ViewKind("map", "Map view", None)]
    dims = spatial_dims(grid)
    unit = str(grid.attrs.get("vertical_unit", "ms")).lower()
    vertical = "Depth slice" if unit in ("m", "ft", "km") else "Time slice"
    names = {"iline": "Inline", "xline": "Crossline"}
    kinds = []
    for axis, dim in enumerate(dims):
        if axis == 2:
            kinds.append(ViewKind("timeslice", vertical, 2))
        else:
            title = names.get(dim, dim)
            kinds.append(ViewKind(title.lower(), title, axis))
    return kinds


def make_view(grid: xr.DataArray, kind: str, index: int = 0) -> View:
    """The :class:`View` of ``kind`` (a :func:`view_kinds` name) at ``index`` (clipped)."""
    kinds = {k.name: k for k in view_kinds(grid)}
    if kind not in kinds:
        raise ValueError(f"view '{kind}' is not one of {list(kinds)} for this data")
    k = kinds[kind]
    if k.axis is None:
        return View(k.name, None, 0, False, k.title)
    n = int(grid.sizes[spatial_dims(grid)[k.axis]])
    idx = int(np.clip(index, 0, n - 1))
    # a vertical section keeps samples (axis 2) as its last axis: show it down the screen
    return View(k.name, k.axis, idx, k.axis != 2, k.title)


def section_shape(label_shape: Sequence[int], view: View) -> tuple[int, int]:
    """(rows, cols) of the section as displayed."""
    shape = tuple(int(n) for n in label_shape)
    if view.axis is None:
        return shape[0], shape[1]
    rest = [n for a, n in enumerate(shape) if a != view.axis]
    return (rest[1], rest[0]) if view.transpose else (rest[0], rest[1])


def _slice2d(array: np.ndarray, view: View) -> np.ndarray:
    if view.axis is None:
        return array
    key: list[int | slice] = [slice(None)] * array.ndim
    key[view.axis] = view.index
    return array[tuple(key)]


def to_display(section: np.ndarray, view: View) -> np.ndarray:
    """A slice-oriented 2D array in display orientation (transposed for vertical sections)."""
    return section.T if view.transpose else section


def label_section(labels: np.ndarray, view: View) -> np.ndarray:
    """The writable slice of a label (or source/split) array, in *slice* orientation.

    Painting on it writes into ``labels``; use :func:`to_display` to show it.
    """
    return _slice2d(labels, view)


def data_section(
    grid: xr.DataArray, view: View, *, band: int = 0, time: int = 0
) -> np.ndarray:
    """The data values of the section in display orientation, as float32.

    Non-spatial dims pick ``band`` (rasters, cubes) and ``time`` (two-date cubes) by index.
    """
    picks = {}
    if "band" in grid.dims:
        picks["band"] = int(np.clip(band, 0, grid.sizes["band"] - 1))
    if "time" in grid.dims:
        picks["time"] = int(np.clip(time, 0, grid.sizes["time"] - 1))
    da = grid.isel(picks) if picks else grid
    dims = spatial_dims(grid)
    da = da.transpose(*dims)
    if view.axis is not None and not picks:  # a store's crossline/time-slice copy, if any
        from io_adapters.zarr_store import read_section

        section = read_section(da, view.axis, view.index)
        if section is not None:
            return np.asarray(to_display(section, view), dtype=np.float32)
    if view.axis is not None:  # cut before reading: a Dask-backed store reads one slab
        da = da.isel({dims[view.axis]: view.index})
    return np.asarray(to_display(np.asarray(da.values), view), dtype=np.float32)


def display_to_slice_cells(cells: np.ndarray, view: View) -> np.ndarray:
    """Cells (row, col) of the displayed section -> cells (row, col) of the slice."""
    c = np.asarray(cells, dtype=np.int64).reshape(-1, 2)
    return c[:, ::-1].copy() if view.transpose else c


def slice_to_display_cells(cells: np.ndarray, view: View) -> np.ndarray:
    """Cells (row, col) of the slice -> cells (row, col) of the displayed section."""
    return display_to_slice_cells(cells, view)  # a swap is its own inverse


# --------------------------------------------------------------------------- colours
def clip_range(
    values: np.ndarray, percentile: float = 99.0, *, symmetric: bool = True,
    max_samples: int = 1_000_000,
) -> tuple[float, float]:
    """Display range clipped at ``percentile``: (-c, c) with c the percentile of |values|
    when ``symmetric`` (seismic amplitudes), else the (100 - p, p) percentiles.

    NaNs are ignored; large arrays are subsampled evenly (``max_samples``). A constant or
    empty input gives a small range around its value so colour mapping never divides by 0.
    """
    flat = np.asarray(values, dtype=np.float64).ravel()
    if flat.size > max_samples:
        flat = flat[:: int(np.ceil(flat.size / max_samples))]
    flat = flat[np.isfinite(flat)]
    if flat.size == 0:
        return -1.0, 1.0
    p = float(np.clip(percentile, 50.0, 100.0))
    if symmetric:
        c = float(np.percentile(np.abs(flat), p))
        c = c if c > 0 else float(np.max(np.abs(flat))) or 1.0
        return -c, c
    lo, hi = (float(v) for v in np.percentile(flat, [100.0 - p, p]))
    if hi <= lo:
        lo, hi = lo - 0.5, lo + 0.5
    return lo, hi


def colourize(
    values: np.ndarray, cmap: str = "seismic", vmin: float = -1.0, vmax: float = 1.0,
    *, nan_colour: tuple[int, int, int] = (236, 236, 236),
) -> np.ndarray:
    """Map a 2D array to uint8 RGB (h, w, 3) with a matplotlib colour map; NaN -> nan_colour.

    ``cmap`` is a key of :data:`COLOUR_MAPS` or any matplotlib name; values outside
    [vmin, vmax] are clipped to the end colours.
    """
    from matplotlib import colormaps  # lazy: matplotlib is slow to import

    name = COLOUR_MAPS.get(cmap, cmap)
    lut = (colormaps[name](np.linspace(0.0, 1.0, 256))[:, :3] * 255).round().astype(np.uint8)
    v = np.asarray(values, dtype=np.float64)
    span = vmax - vmin if vmax > vmin else 1.0
    idx = np.clip((v - vmin) / span * 255.0, 0, 255)
    finite = np.isfinite(idx)
    rgb = lut[np.where(finite, idx, 0).round().astype(np.int64)]
    rgb[~finite] = nan_colour
    return rgb


def hex_to_rgb(colour: str) -> tuple[int, int, int]:
    """'#rrggbb' -> (r, g, b)."""
    c = colour.lstrip("#")
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)


def label_overlay(
    labels: np.ndarray, colours: Sequence[str], *, alpha: float = 0.6,
    split: np.ndarray | None = None, validation_alpha: float | None = None,
) -> np.ndarray:
    """RGBA uint8 (h, w, 4): class colours where labelled (>= 0), transparent elsewhere.

    With ``split`` (1 = validation), validation cells get ``validation_alpha`` (default
    half of ``alpha``) so the held-back labels stand out.
    """
    lab = np.asarray(labels)
    out = np.zeros((*lab.shape, 4), dtype=np.uint8)
    if not colours:
        return out
    table = np.array([hex_to_rgb(c) for c in colours], dtype=np.uint8)
    known = (lab >= 0) & (lab < len(table))
    out[known, :3] = table[lab[known]]
    out[known, 3] = int(round(np.clip(alpha, 0, 1) * 255))
    if split is not None:
        va = alpha / 2 if validation_alpha is None else validation_alpha
        val = known & (np.asarray(split) == 1)
        out[val, 3] = int(round(np.clip(va, 0, 1) * 255))
    return out


def composite(base_rgb: np.ndarray, overlay_rgba: np.ndarray) -> np.ndarray:
    """Alpha-blend an RGBA overlay onto an RGB image (same h, w); returns uint8 RGB."""
    base = np.asarray(base_rgb, dtype=np.float32)
    over = np.asarray(overlay_rgba, dtype=np.float32)
    if base.shape[:2] != over.shape[:2]:
        raise ValueError(f"overlay {over.shape[:2]} and image {base.shape[:2]} differ in size")
    a = over[..., 3:4] / 255.0
    return (base * (1.0 - a) + over[..., :3] * a).round().astype(np.uint8)


# --------------------------------------------------------------------------- display size
def fit_display_size(
    grid_shape: tuple[int, int], max_width: int = 900, max_height: int = 620,
    *, vertical_stretch: float = 1.0, min_cell: float = 1.0,
) -> tuple[int, int]:
    """(width, height) in display pixels for a (rows, cols) grid: square cells (times
    ``vertical_stretch`` on the rows) scaled to fit max_width x max_height.

    Large grids are shrunk (cells below one pixel), small ones enlarged; never below
    ``min_cell`` pixel per cell unless the grid is larger than the box.
    """
    rows, cols = (max(1, int(n)) for n in grid_shape)
    stretch = max(float(vertical_stretch), 1e-3)
    scale = min(max_width / cols, max_height / (rows * stretch))
    if scale < min_cell:
        scale = min(scale, min_cell)
    width = max(1, int(round(cols * scale)))
    height = max(1, int(round(rows * scale * stretch)))
    return width, height


def upscale(image: np.ndarray, display_size: tuple[int, int]) -> np.ndarray:
    """Resample a grid image (rows, cols[, c]) to display (height, width[, c]) by cell.

    Display pixel (x, y) shows the cell that :func:`display_to_grid` maps it to, so the
    image and the painting agree exactly, whatever the (non-integer) scale factors.
    """
    img = np.asarray(image)
    rows, cols = img.shape[:2]
    width, height = display_size
    col_idx = display_to_grid(np.stack([np.arange(width), np.zeros(width)], axis=1),
                              display_size, (rows, cols))[:, 1]
    row_idx = display_to_grid(np.stack([np.zeros(height), np.arange(height)], axis=1),
                              display_size, (rows, cols))[:, 0]
    return img[row_idx][:, col_idx]


# --------------------------------------------------------------------------- markers
@dataclass
class Marker:
    """Something drawn on the display image, in display pixel coordinates.

    ``kind`` "well" (a circle with a name at ``points[0]``), "line" (a polyline through
    ``points``), "cursor" (a crosshair at ``points[0]``) or "column" (a well on a
    section: ``segments`` of (y0, y1, colour) drawn at x = ``points[0][0]``).
    """

    kind: str
    points: list[tuple[float, float]]
    label: str = ""
    colour: str = "#111111"
    segments: list[tuple[float, float, str]] = field(default_factory=list)
    dashed: bool = False


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has no sized default font
        return ImageFont.load_default()


def _dashed(draw: ImageDraw.ImageDraw, p0, p1, fill, width: int, dash: float = 7.0) -> None:
    (x0, y0), (x1, y1) = p0, p1
    length = float(np.hypot(x1 - x0, y1 - y0))
    if length == 0:
        return
    n = max(1, int(length // dash))
    for k in range(0, n, 2):
        t0, t1 = k / n, min(1.0, (k + 1) / n)
        draw.line([(x0 + (x1 - x0) * t0, y0 + (y1 - y0) * t0),
                   (x0 + (x1 - x0) * t1, y0 + (y1 - y0) * t1)], fill=fill, width=width)


def draw_markers(image: np.ndarray, markers: Sequence[Marker]) -> np.ndarray:
    """Draw ``markers`` onto a copy of an RGB uint8 display image; returns the copy."""
    pil = Image.fromarray(np.asarray(image, dtype=np.uint8))
    draw = ImageDraw.Draw(pil)
    font = _font(13)
    for m in markers:
        if m.kind == "line" and len(m.points) >= 2:
            for p0, p1 in zip(m.points[:-1], m.points[1:], strict=True):
                if m.dashed:
                    _dashed(draw, p0, p1, m.colour, 1)
                else:
                    draw.line([p0, p1], fill=m.colour, width=2)
        elif m.kind == "well" and m.points:
            x, y = m.points[0]
            r = 5
            draw.ellipse([x - r, y - r, x + r, y + r], fill="#ffffff", outline="#111111", width=2)
            draw.line([(x - r + 2, y), (x + r - 2, y)], fill="#111111")
            draw.line([(x, y - r + 2), (x, y + r - 2)], fill="#111111")
            if m.label:
                draw.text((x + r + 3, y - r - 9), m.label, fill="#111111", font=font,
                          stroke_width=2, stroke_fill="#ffffff")
        elif m.kind == "cursor" and m.points:
            x, y = m.points[0]
            for colour, width in (("#ffffff", 4), ("#111111", 2)):
                draw.line([(x - 9, y), (x - 3, y)], fill=colour, width=width)
                draw.line([(x + 3, y), (x + 9, y)], fill=colour, width=width)
                draw.line([(x, y - 9), (x, y - 3)], fill=colour, width=width)
                draw.line([(x, y + 3), (x, y + 9)], fill=colour, width=width)
        elif m.kind == "column" and m.points:
            x = m.points[0][0]
            for y0, y1, colour in m.segments:
                draw.rectangle([x - 3, y0, x + 3, y1], fill=colour, outline="#111111")
            if m.label:
                top = min((s[0] for s in m.segments), default=0.0)
                draw.text((x + 6, top + 2), m.label, fill="#111111", font=font,
                          stroke_width=2, stroke_fill="#ffffff")
    return np.asarray(pil)


def well_markers(
    grid: xr.DataArray, view: View, wells: Sequence, colours: Sequence[str],
    display_size: tuple[int, int], *, tolerance: float = 2.0,
) -> list[Marker]:
    """Markers for boreholes: a symbol and name on maps/time slices, a column of interval
    colours on an inline/crossline within ``tolerance`` traces of the well.

    ``wells`` are :class:`io_adapters.boreholes.Borehole` (position = (row, col) cell of the
    horizontal grid; intervals (top, base, class id) in the samples' unit).
    """
    shape = tuple(int(grid.sizes[d]) for d in spatial_dims(grid))
    disp = section_shape(shape, view)
    markers: list[Marker] = []
    if view.axis is None or view.axis == 2:
        for w in wells:
            xy = grid_to_display(np.array([w.position], dtype=np.float64), display_size, disp)[0]
            markers.append(Marker("well", [(float(xy[0]), float(xy[1]))], w.name))
        return markers
    zdim = spatial_dims(grid)[2]
    z = (np.asarray(grid.coords[zdim].values, dtype=np.float64) if zdim in grid.coords
         else np.arange(shape[2], dtype=np.float64))
    along = 1 - view.axis  # inline (axis 0): the well's xline index is along the section
    for w in wells:
        if abs(w.position[view.axis] - view.index) > tolerance:
            continue
        trace = w.position[along]
        x = grid_to_display(np.array([[0, trace]], dtype=np.float64), display_size, disp)[0][0]
        segments = []
        for top, base, cid in w.intervals:
            k0 = int(np.abs(z - top).argmin())
            k1 = int(np.abs(z - base).argmin())
            y0 = k0 * display_size[1] / disp[0]
            y1 = (k1 + 1) * display_size[1] / disp[0]
            colour = colours[cid] if 0 <= cid < len(colours) else "#888888"
            segments.append((y0, y1, colour))
        markers.append(Marker("column", [(float(x), 0.0)], w.name, segments=segments))
    return markers


def section_lines(
    view: View, positions: dict[int, int], label_shape: Sequence[int],
    display_size: tuple[int, int],
) -> list[Marker]:
    """Dashed lines where the other sections cut this one (``positions``: axis -> index).

    On a time slice: the current inline and crossline; on an inline: the current
    crossline and time slice; and so on. Nothing for 2D maps.
    """
    if view.axis is None:
        return []
    disp = section_shape(label_shape, view)
    width, height = display_size
    others = [a for a in range(3) if a != view.axis]
    markers = []
    for slice_axis, other in enumerate(others):
        if other not in positions:
            continue
        k = positions[other]
        # slice axis 0 = slice rows; transposed sections swap rows and cols on screen
        on_rows = (slice_axis == 0) != view.transpose
        if on_rows:
            y = (k + 0.5) * height / disp[0]
            markers.append(Marker("line", [(0.0, y), (float(width), y)], colour="#222222",
                                  dashed=True))
        else:
            x = (k + 0.5) * width / disp[1]
            markers.append(Marker("line", [(x, 0.0), (x, float(height))], colour="#222222",
                                  dashed=True))
    return markers


def cursor_marker(
    cell: Sequence[int], view: View, display_size: tuple[int, int], label_shape: Sequence[int]
) -> Marker | None:
    """A crosshair at a label-grid cell, if the cell lies on the section shown."""
    c = [int(v) for v in cell]
    if len(c) != len(label_shape):
        return None
    if view.axis is None:
        rc = (c[0], c[1])
    else:
        if c[view.axis] != view.index:
            return None
        rest = [v for a, v in enumerate(c) if a != view.axis]
        rc = (rest[1], rest[0]) if view.transpose else (rest[0], rest[1])
    xy = grid_to_display(np.array([rc], dtype=np.float64), display_size,
                         section_shape(label_shape, view))[0]
    return Marker("cursor", [(float(xy[0]), float(xy[1]))])


# --------------------------------------------------------------------------- readout
def axis_title(grid: xr.DataArray, dim: str) -> str:
    """What an interpreter calls a grid axis: Inline, Crossline, Time or Depth, x, y."""
    if dim == "samples":
        unit = str(grid.attrs.get("vertical_unit", "ms")).lower()
        return "Depth" if unit in ("m", "ft", "km") else "Time"
    return {"iline": "Inline", "xline": "Crossline"}.get(dim, dim)


def cell_readout(
    grid: xr.DataArray, cell: Sequence[int], labels: np.ndarray | None = None,
    class_names: Sequence[str] = (), *, band: int = 0, time: int = 0,
) -> dict[str, str]:
    """Coordinates and value of one label-grid cell, as display strings.

    Seismic: inline, crossline, time/depth, CDP X/Y; maps: row, col, x, y; then the data
    value (of the shown band/date) and the label there.
    """
    dims = spatial_dims(grid)
    idx = {d: int(c) for d, c in zip(dims, cell, strict=True)}
    out: dict[str, str] = {}
    for d in dims:
        text = f"index {idx[d]}"
        if d in grid.coords and grid.coords[d].ndim == 1:
            v = grid.coords[d].values[idx[d]]
            unit = f" {grid.attrs.get('vertical_unit', '')}" if d == "samples" else ""
            number = f"{float(v):.2f}".rstrip("0").rstrip(".") if isinstance(
                v, float | np.floating) else str(v)
            text = f"{number}{unit} (index {idx[d]})"
        out[axis_title(grid, d)] = text
    if "cdp_x" in grid.coords and "cdp_y" in grid.coords:
        h = {k: idx[k] for k in ("iline", "xline") if k in idx}
        out["CDP X"] = f"{float(grid.coords['cdp_x'].isel(h).values):.1f}"
        out["CDP Y"] = f"{float(grid.coords['cdp_y'].isel(h).values):.1f}"
    picks = {}
    if "band" in grid.dims:
        picks["band"] = band
    if "time" in grid.dims:
        picks["time"] = time
    value = float(grid.isel({**picks, **idx}).values)
    out["value"] = "nodata" if not np.isfinite(value) else f"{value:.6g}"
    if labels is not None:
        lab = int(labels[tuple(int(c) for c in cell)])
        out["label"] = "none" if lab < 0 else (class_names[lab] if lab < len(class_names)
                                               else str(lab))
    return out


# --------------------------------------------------------------------------- whole image
@dataclass
class DisplaySettings:
    """How a section is drawn (the viewer's display controls).

    ``cmap`` a :data:`COLOUR_MAPS` key; ``percentile`` the clip percentile;
    ``symmetric`` clip about zero (seismic) or at both tails (maps); ``opacity`` of the
    label overlay; ``band``/``time`` pick the raster band and the date; ``rgb`` three band
    indices for a colour composite (None: one band with ``cmap``); ``vertical_stretch``
    exaggerates time/depth on sections; ``max_width``/``max_height`` bound the image;
    ``smooth`` interpolates the data (bilinear) when enlarging — labels always keep sharp
    cell edges, so what is painted is what is shown.
    """

    cmap: str = "seismic"
    percentile: float = 99.0
    symmetric: bool = True
    opacity: float = 0.6
    band: int = 0
    time: int = 0
    rgb: tuple[int, int, int] | None = None
    vertical_stretch: float = 1.0
    max_width: int = 900
    max_height: int = 620
    show_wells: bool = True
    show_sections: bool = True
    smooth: bool = False


def default_settings(grid: xr.DataArray) -> DisplaySettings:
    """Seismic: seismic colours, symmetric clip; maps and cubes: grey, percentile stretch."""
    if is_volume(grid):
        return DisplaySettings(smooth=True)
    return DisplaySettings(cmap="grey", percentile=98.0, symmetric=False)


def default_rgb(grid: xr.DataArray) -> tuple[int, int, int]:
    """Band indices for a natural-colour composite: the bands nearest 640, 550 and 470 nm
    when the data has wavelengths (micrometres or nanometres), else bands 1, 2, 3."""
    n = int(grid.sizes.get("band", 0))
    if n < 3 or "wavelength" not in grid.coords:
        return (0, 1, 2)
    wl = np.asarray(grid.coords["wavelength"].values, dtype=np.float64)
    if not np.all(np.isfinite(wl)):
        return (0, 1, 2)
    nm = wl * 1000.0 if np.nanmax(wl) < 100 else wl
    picks = tuple(int(np.abs(nm - target).argmin()) for target in (640.0, 550.0, 470.0))
    return picks if len(set(picks)) == 3 else (0, 1, 2)


def band_values(grid: xr.DataArray, band: int, time: int = 0) -> np.ndarray:
    """All values of one band (and date) of the data, for the clip range."""
    picks = {}
    if "band" in grid.dims:
        picks["band"] = int(np.clip(band, 0, grid.sizes["band"] - 1))
    if "time" in grid.dims:
        picks["time"] = int(np.clip(time, 0, grid.sizes["time"] - 1))
    values = (grid.isel(picks) if picks else grid).data
    if hasattr(values, "dask"):  # a survey larger than memory: a few chunks
        from io_adapters.zarr_store import sample_values

        return sample_values(values)
    return np.asarray(values)


def section_rgb(
    grid: xr.DataArray, view: View, settings: DisplaySettings,
    clips: Sequence[tuple[float, float]], *, display_size: tuple[int, int] | None = None,
) -> np.ndarray:
    """The data of the section as uint8 RGB at grid resolution (display orientation).

    ``clips`` holds one (vmin, vmax) per shown band: one for a single band, three for an
    RGB composite (each band stretched to 0..255 grey, then stacked). With
    ``display_size`` (width, height) the image is :func:`upscale`'s at that size, the cells
    shown picked before they are coloured: a map far larger than the screen is coloured
    only where a pixel shows it.
    """
    def section(band: int) -> np.ndarray:
        values = data_section(grid, view, band=band, time=settings.time)
        return values if display_size is None else upscale(values, display_size)

    if settings.rgb is None:
        return colourize(section(settings.band), settings.cmap, *clips[0])
    channels = []
    for b, (lo, hi) in zip(settings.rgb, clips, strict=True):
        v = section(b).astype(np.float64)
        channels.append(np.clip((v - lo) / (hi - lo if hi > lo else 1.0), 0, 1) * 255)
    rgb = np.stack(channels, axis=-1)
    nodata = ~np.all(np.isfinite(rgb), axis=-1)  # a gap in any band is a gap in the image
    rgb[nodata] = 236
    return rgb.round().astype(np.uint8)


def render_section(
    grid: xr.DataArray,
    view: View,
    settings: DisplaySettings,
    clips: Sequence[tuple[float, float]],
    *,
    labels: np.ndarray | None = None,
    colours: Sequence[str] = (),
    split: np.ndarray | None = None,
    wells: Sequence = (),
    positions: dict[int, int] | None = None,
    extra_overlays: Sequence[np.ndarray] = (),
    cursor: Sequence[int] | None = None,
) -> tuple[np.ndarray, tuple[int, int]]:
    """The display image of a section: data, label overlay, markers; and its (w, h).

    ``labels``/``split`` are full label-grid arrays (cut here); ``extra_overlays`` are
    RGBA images of the section at grid resolution in display orientation (predictions),
    blended under the labels. ``positions`` (axis -> index) draw where the other
    sections cut this one; ``cursor`` (a label-grid cell) draws a crosshair when it lies
    on this section.
    """
    shape = tuple(int(grid.sizes[d]) for d in spatial_dims(grid))
    disp_shape = section_shape(shape, view)
    stretch = settings.vertical_stretch if view.transpose else 1.0
    size = fit_display_size(disp_shape, settings.max_width, settings.max_height,
                            vertical_stretch=stretch)
    if settings.smooth and (size[0] > disp_shape[1] or size[1] > disp_shape[0]):
        base = section_rgb(grid, view, settings, clips)
        image = np.asarray(Image.fromarray(base).resize(size, Image.Resampling.BILINEAR))
    elif size[0] * size[1] < disp_shape[0] * disp_shape[1]:  # fewer pixels than cells
        image = section_rgb(grid, view, settings, clips, display_size=size)
    else:
        image = upscale(section_rgb(grid, view, settings, clips), size)
    for over in extra_overlays:
        image = composite(image, upscale(over, size))
    if labels is not None and colours:
        lab = to_display(label_section(labels, view), view)
        spl = None if split is None else to_display(label_section(split, view), view)
        over = label_overlay(lab, colours, alpha=settings.opacity, split=spl)
        image = composite(image, upscale(over, size))
    markers: list[Marker] = []
    if settings.show_sections and positions:
        markers += section_lines(view, positions, shape, size)
    if settings.show_wells and wells:
        markers += well_markers(grid, view, wells, colours, size)
    marker = cursor_marker(cursor, view, size, shape) if cursor is not None else None
    if marker is not None:
        markers.append(marker)
    if markers:
        image = draw_markers(image, markers)
    return image, size


# --------------------------------------------------------------------------- axes, colour bar
@dataclass(frozen=True)
class ColourBar:
    """The key drawn beside a section: a continuous bar (``cmap`` over ``clim``, e.g. the
    amplitude clip range) or a categorical one (``classes``: (name, colour) pairs)."""

    title: str
    cmap: str = "seismic"
    clim: tuple[float, float] = (-1.0, 1.0)
    classes: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Framed:
    """A section image with axes and a colour bar around it; ``offset`` (left, top) is
    where the section itself starts, ``size`` (w, h) its size in the framed image."""

    image: np.ndarray
    offset: tuple[int, int]
    size: tuple[int, int]


FRAME_LEFT, FRAME_TOP, FRAME_BOTTOM = 64, 38, 8
_BAR_WIDTH = 14


def display_axes(grid: xr.DataArray, view: View) -> tuple[str, str]:
    """The label-grid dims along the displayed section's (rows, cols)."""
    dims = spatial_dims(grid)
    if view.axis is None:
        return dims[0], dims[1]
    rest = [d for a, d in enumerate(dims) if a != view.axis]
    return (rest[1], rest[0]) if view.transpose else (rest[0], rest[1])


def _axis_label(grid: xr.DataArray, dim: str) -> str:
    title = axis_title(grid, dim)
    unit = str(grid.attrs.get("vertical_unit", "")) if dim == "samples" else ""
    return f"{title} ({unit})" if unit else title


def axis_ticks(coords: np.ndarray, length: int, max_ticks: int) -> list[tuple[float, str]]:
    """(pixel position, label) of round coordinate values along an axis of ``length``
    display pixels showing one cell per coordinate (centres at (i + 0.5) * length / n)."""
    from matplotlib.ticker import MaxNLocator

    c = np.asarray(coords, dtype=np.float64)
    n = c.size
    if n == 0 or not np.all(np.isfinite(c)):
        return []
    if n == 1:
        return [(length / 2, _tick_text(c[0]))]
    lo, hi = float(c.min()), float(c.max())
    integral = bool(np.all(np.mod(c, 1) == 0))
    locator = MaxNLocator(nbins=max(2, max_ticks), integer=integral, steps=[1, 2, 2.5, 5, 10])
    order = np.argsort(c)
    out = []
    for value in locator.tick_values(lo, hi):
        if value < lo - 1e-9 or value > hi + 1e-9:
            continue
        index = float(np.interp(value, c[order], order.astype(np.float64)))
        out.append(((index + 0.5) * length / n, _tick_text(value)))
    return out


def _tick_text(value: float) -> str:
    v = float(value)
    return str(int(round(v))) if abs(v - round(v)) < 1e-9 else f"{v:.6g}"


def _colourbar_width(bar: ColourBar | None) -> int:
    if bar is None:
        return 8
    if bar.classes:
        longest = max((len(name) for name, _ in bar.classes), default=4)
        return 36 + 7 * min(longest, 22)
    return 84


def frame_section(
    image: np.ndarray, grid: xr.DataArray, view: View, colourbar: ColourBar | None = None,
) -> Framed:
    """The section ``image`` (display orientation, as :func:`render_section` draws it) with
    axes in survey coordinates: along the top the inline/crossline numbers (or x), down
    the left side the time/depth (or y), and on the right a colour bar with its range.
    The section keeps its pixels: display point (x, y) of the section is (x + left, y + top)
    in the framed image (:attr:`Framed.offset`)."""
    img = np.asarray(image, dtype=np.uint8)
    height, width = img.shape[:2]
    font, small = _font(12), _font(11)
    row_dim, col_dim = display_axes(grid, view)
    shape = section_shape([int(grid.sizes[d]) for d in spatial_dims(grid)], view)
    col_coords = _coords_of(grid, col_dim, shape[1])
    row_coords = _coords_of(grid, row_dim, shape[0])
    row_ticks = axis_ticks(row_coords, height, max(2, height // 60))
    # room on the left for the longest tick label and the rotated axis title
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    widest = max((measure.textlength(t, font=small) for _, t in row_ticks), default=0.0)
    left = max(FRAME_LEFT, int(widest) + 30)
    right = _colourbar_width(colourbar)
    total = (left + width + right, FRAME_TOP + height + FRAME_BOTTOM)
    pil = Image.new("RGB", total, (255, 255, 255))
    pil.paste(Image.fromarray(img[..., :3]), (left, FRAME_TOP))
    draw = ImageDraw.Draw(pil)
    ink = (40, 40, 40)
    x0, y0 = left, FRAME_TOP
    draw.rectangle([x0 - 1, y0 - 1, x0 + width, y0 + height], outline=ink)
    for x, text in axis_ticks(col_coords, width, max(2, width // 90)):
        px = x0 + x
        draw.line([(px, y0 - 5), (px, y0 - 1)], fill=ink)
        w = draw.textlength(text, font=small)
        draw.text((min(max(px - w / 2, x0 - 20), x0 + width - w + 20), y0 - 18), text,
                  fill=ink, font=small)
    draw.text((x0, 2), _axis_label(grid, col_dim), fill=ink, font=font)
    for y, text in row_ticks:
        py = y0 + y
        draw.line([(x0 - 5, py), (x0 - 1, py)], fill=ink)
        w = draw.textlength(text, font=small)
        draw.text((x0 - 8 - w, py - 7), text, fill=ink, font=small)
    title = _axis_label(grid, row_dim)
    label = Image.new("RGB", (max(1, int(draw.textlength(title, font=font)) + 4), 16),
                      (255, 255, 255))
    ImageDraw.Draw(label).text((2, 1), title, fill=ink, font=font)
    rotated = label.rotate(90, expand=True)
    pil.paste(rotated, (2, y0 + max(0, (height - rotated.height) // 2)))
    if colourbar is not None:
        _draw_colourbar(draw, colourbar, x0 + width + 12, y0, height, font, small, ink)
    return Framed(np.asarray(pil), (left, FRAME_TOP), (width, height))


def _coords_of(grid: xr.DataArray, dim: str, n: int) -> np.ndarray:
    if dim in grid.coords and grid.coords[dim].ndim == 1:
        values = np.asarray(grid.coords[dim].values)
        if np.issubdtype(values.dtype, np.number):
            return values
    return np.arange(n)


def _draw_colourbar(draw: ImageDraw.ImageDraw, bar: ColourBar, x: int, top: int, height: int,
                    font, small, ink) -> None:
    from matplotlib import colormaps

    draw.text((x, top - 18), bar.title, fill=ink, font=font)
    if bar.classes:
        for i, (name, colour) in enumerate(bar.classes):
            y = top + 4 + 20 * i
            if y + 14 > top + max(height, 20 * len(bar.classes)):
                break
            draw.rectangle([x, y, x + _BAR_WIDTH, y + 14], fill=colour, outline=ink)
            draw.text((x + _BAR_WIDTH + 6, y), name, fill=ink, font=small)
        return
    lo, hi = bar.clim
    lut = colormaps[COLOUR_MAPS.get(bar.cmap, bar.cmap)]
    span = max(1, height - 1)
    for k in range(height):
        r, g, b, _ = lut(1.0 - k / span)  # the top of the bar is the high end
        draw.line([(x, top + k), (x + _BAR_WIDTH, top + k)],
                  fill=(round(r * 255), round(g * 255), round(b * 255)))
    draw.rectangle([x, top, x + _BAR_WIDTH, top + height - 1], outline=ink)
    marks = [hi, lo] + ([0.0] if lo < 0 < hi else [])
    for value in marks:
        y = top + (hi - value) / (hi - lo if hi > lo else 1.0) * span
        draw.line([(x + _BAR_WIDTH, y), (x + _BAR_WIDTH + 4, y)], fill=ink)
        draw.text((x + _BAR_WIDTH + 6, y - 7), _bar_text(value), fill=ink, font=small)


def _bar_text(value: float) -> str:
    v = float(value)
    if v == 0:
        return "0"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:.3g}"


def data_colourbar(grid: xr.DataArray, settings: DisplaySettings,
                   clips: Sequence[tuple[float, float]]) -> ColourBar | None:
    """The colour bar of the data as shown: the colour map over the clip range (none for
    an RGB composite, whose three bands have three ranges)."""
    if settings.rgb is not None or not clips:
        return None
    title = str(grid.name or ("amplitude" if is_volume(grid) else "value"))
    return ColourBar(title, settings.cmap, (float(clips[0][0]), float(clips[0][1])))
