"""3D views with PyVista, off-screen: orthogonal slices of a volume and class surfaces.

No streamlit here. A :class:`Layer` is what the slices are coloured by (the data, the
predicted classes, an error map or the uncertainty) with its colour map; a
:class:`Geometry` places the label grid in space: seismic (iline, xline, samples) with
the bin sizes measured from cdp_x/cdp_y (index units without them) and the sample
interval, time/depth pointing down and scaled so the volume is about as deep as it is
wide (times the user's exaggeration); maps (y, x) as a flat plane with north up.

:func:`build_plotter` makes the scene; :func:`screenshot` / :func:`render_png` render it
without a display (VTK's EGL window, chosen below before VTK is imported; OSMesa or X
also work where EGL is missing), :func:`interactive_html` exports it as a
self-contained vtk.js page (trame) for an interactive embed, with nothing fetched from
the internet. Very large volumes are shown every n-th cell (``max_cells``).
"""

from __future__ import annotations

import io
import math
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import xarray as xr

# VTK picks its render window when first imported: off-screen EGL needs no X display.
os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")

import pyvista as pv  # noqa: E402

pv.OFF_SCREEN = True

__all__ = [
    "Geometry",
    "Layer",
    "geometry_of",
    "data_layer",
    "class_layer",
    "error_layer",
    "entropy_layer",
    "volume",
    "slices",
    "class_surfaces",
    "build_plotter",
    "screenshot",
    "render_png",
    "interactive_html",
    "ERROR_NAMES",
    "ERROR_COLOURS",
]

ERROR_NAMES = ("right", "wrong")
ERROR_COLOURS = ("#2ca02c", "#d62728")
NAN_COLOUR = "#d9d9d9"
# VTK is not thread-safe: streamlit runs each session's script in its own thread.
_RENDER_LOCK = threading.Lock()


# --------------------------------------------------------------------------- geometry
@dataclass(frozen=True)
class Geometry:
    """Where the cells of a label grid sit in the 3D scene.

    ``dims``/``shape``: the grid (iline, xline, samples) or (y, x); ``spacing``: the
    scene size of one cell along scene x, y, z; ``flat``: a 2D map (one cell thick).
    Scene x = iline (or map x), y = xline (or map y, north up), z = minus time/depth.
    """

    dims: tuple[str, ...]
    shape: tuple[int, ...]
    spacing: tuple[float, float, float]
    flat: bool

    @property
    def scene_shape(self) -> tuple[int, int, int]:
        """Cells along scene x, y, z."""
        if self.flat:
            return (self.shape[1], self.shape[0], 1)
        return (self.shape[0], self.shape[1], self.shape[2])

    def to_scene(self, values: np.ndarray) -> np.ndarray:
        """A grid-ordered array -> scene order [x, y, z] (vertical flipped: z points up)."""
        v = np.asarray(values)
        if self.flat:
            return v.T[:, ::-1, np.newaxis]  # rows run south: flip so y grows north
        return v[:, :, ::-1]

    def centre(self, axis: int, index: int) -> float:
        """Scene coordinate of the centre of cell ``index`` along grid ``axis``."""
        if self.flat:
            raise ValueError("a flat map has no slices")
        n = self.shape[axis]
        k = n - 1 - index if axis == 2 else index
        return (k + 0.5) * self.spacing[axis]


def _bin(da: xr.DataArray, dim: str) -> float | None:
    """Distance between neighbouring cells along ``dim`` from cdp_x/cdp_y (median)."""
    if "cdp_x" not in da.coords or "cdp_y" not in da.coords or da.sizes[dim] < 2:
        return None
    x = np.asarray(da.coords["cdp_x"].values, dtype=np.float64)
    y = np.asarray(da.coords["cdp_y"].values, dtype=np.float64)
    axis = list(da.coords["cdp_x"].dims).index(dim)
    d = np.hypot(np.diff(x, axis=axis), np.diff(y, axis=axis))
    d = d[np.isfinite(d) & (d > 0)]
    return float(np.median(d)) if d.size else None


def geometry_of(da: xr.DataArray, vertical_exaggeration: float = 1.0) -> Geometry:
    """The scene geometry of the data's label grid (see :class:`Geometry`)."""
    if {"iline", "xline", "samples"} <= set(map(str, da.dims)):
        dims = ("iline", "xline", "samples")
        shape = tuple(int(da.sizes[d]) for d in dims)
        bx, by = _bin(da, "iline"), _bin(da, "xline")
        if bx is None or by is None:
            bx = by = 1.0  # no coordinates: index units
        dt = float(da.attrs.get("sample_interval") or 1.0)
        # time and distance have different units: scale time so the volume is about
        # as deep as the longer side is wide, then apply the user's exaggeration
        width = max(shape[0] * bx, shape[1] * by)
        depth = shape[2] * dt
        dz = dt * (0.6 * width / depth if depth > 0 else 1.0) * float(vertical_exaggeration)
        return Geometry(dims, shape, (bx, by, dz), False)
    if {"y", "x"} <= set(map(str, da.dims)):
        shape = (int(da.sizes["y"]), int(da.sizes["x"]))
        dx = _step(da, "x")
        dy = _step(da, "y")
        return Geometry(("y", "x"), shape, (dx, dy, min(dx, dy)), True)
    raise ValueError(f"no 3D view for data with dims {tuple(da.dims)}")


def _step(da: xr.DataArray, dim: str) -> float:
    if dim in da.coords and da.sizes[dim] > 1:
        c = np.asarray(da.coords[dim].values, dtype=np.float64)
        step = float(np.median(np.abs(np.diff(c))))
        if np.isfinite(step) and step > 0:
            return step
    return 1.0


# --------------------------------------------------------------------------- layers
@dataclass
class Layer:
    """Values on the label grid with how to colour them.

    ``categories``: class names for a categorical layer (values 0..K-1, -1 or NaN =
    none) coloured by ``colours``; else continuous with colour map ``cmap`` over
    ``clim``. ``title`` labels the colour bar.
    """

    title: str
    values: np.ndarray
    cmap: str = "gray"
    clim: tuple[float, float] = (0.0, 1.0)
    categories: list[str] = field(default_factory=list)
    colours: list[str] = field(default_factory=list)

    @property
    def categorical(self) -> bool:
        return bool(self.categories)


def data_layer(
    da: xr.DataArray, *, band: int = 0, time: int = 0, percentile: float = 99.0
) -> Layer:
    """The data (one band/date of rasters and cubes) on its label grid, clipped at a
    percentile: symmetric about zero for seismic, both tails otherwise."""
    from app.layout import grid_of

    from .views import clip_range

    picks = {}
    if "band" in da.dims:
        picks["band"] = int(np.clip(band, 0, da.sizes["band"] - 1))
    if "time" in da.dims:
        picks["time"] = int(np.clip(time, 0, da.sizes["time"] - 1))
    dims, _ = grid_of(da)
    sub = da.isel(picks) if picks else da
    values = np.asarray(sub.transpose(*dims).values, dtype=np.float32)
    seismic = "samples" in dims
    clim = clip_range(values, percentile, symmetric=seismic)
    name = str(da.name or ("amplitude" if seismic else "value"))
    return Layer(name, values, "seismic" if seismic else "gray", clim)


def class_layer(classes: np.ndarray, names: Sequence[str], colours: Sequence[str],
                title: str = "prediction") -> Layer:
    """Class ids 0..K-1 (-1 = none) coloured by the class table."""
    k = len(names)
    return Layer(title, np.asarray(classes), clim=(-0.5, k - 0.5), categories=list(names),
                 colours=list(colours))


def error_layer(errors: np.ndarray, title: str = "error") -> Layer:
    """An error map (1 wrong, 0 right, -1 not evaluated: grey)."""
    return Layer(title, np.asarray(errors), clim=(-0.5, 1.5), categories=list(ERROR_NAMES),
                 colours=list(ERROR_COLOURS))


def entropy_layer(entropy: np.ndarray, title: str = "uncertainty (entropy)") -> Layer:
    """Normalised entropy, 0 certain .. 1 uniform."""
    return Layer(title, np.asarray(entropy, dtype=np.float32), "magma", (0.0, 1.0))


# --------------------------------------------------------------------------- meshes
def _stride(shape: Sequence[int], max_cells: int | None) -> int:
    if not max_cells:
        return 1
    return max(1, math.ceil((math.prod(shape) / max_cells) ** (1 / len(shape))))


def _scalars(layer: Layer, values: np.ndarray) -> np.ndarray:
    v = values.astype(np.float32)
    if layer.categorical:
        v[v < 0] = np.nan  # unlabelled / not evaluated: the NaN colour
    return v


def volume(geometry: Geometry, layer: Layer, *, stride: int = 1) -> pv.ImageData:
    """The layer as an ImageData with one cell per (every ``stride``-th) grid cell."""
    values = np.asarray(layer.values)
    if tuple(values.shape) != geometry.shape:
        raise ValueError(f"layer {layer.title!r} has shape {values.shape}, the grid is "
                         f"{geometry.shape}")
    if stride > 1 and not geometry.flat:
        values = values[::stride, ::stride, ::stride]
    elif stride > 1:
        values = values[::stride, ::stride]
    scene = geometry.to_scene(values)
    step = stride if stride > 1 else 1
    spacing = tuple(s * (step if not (geometry.flat and a == 2) else 1)
                    for a, s in enumerate(geometry.spacing))
    grid = pv.ImageData(dimensions=tuple(n + 1 for n in scene.shape), spacing=spacing)
    grid.cell_data[layer.title] = _scalars(layer, scene).ravel(order="F")
    return grid


def slices(grid: pv.ImageData, geometry: Geometry,
           positions: Sequence[int] | None = None) -> pv.MultiBlock:
    """Three orthogonal slices through cell centres at grid ``positions`` (default the
    middle) of (iline, xline, sample); a flat map is returned whole."""
    if geometry.flat:
        return pv.MultiBlock([grid])
    pos = list(positions) if positions is not None else [n // 2 for n in geometry.shape]
    pos = [int(np.clip(p, 0, n - 1)) for p, n in zip(pos, geometry.shape, strict=True)]
    x, y, z = (geometry.centre(a, p) for a, p in enumerate(pos))
    # snap to the middle of the (possibly strided) cell so the cut never sits on a face
    spacing = grid.spacing
    x, y, z = ((math.floor(c / s) + 0.5) * s for c, s in zip((x, y, z), spacing, strict=True))
    return grid.slice_orthogonal(x=x, y=y, z=z)


def class_surfaces(
    geometry: Geometry, classes: np.ndarray, class_ids: Sequence[int], *, stride: int = 1,
    smooth: int = 15,
) -> dict[int, pv.PolyData]:
    """Boundary surface of each class in ``class_ids`` (contour at 0.5 of its one-hot
    volume, lightly smoothed); classes that are absent are left out."""
    if geometry.flat:
        return {}
    values = np.asarray(classes)[::stride, ::stride, ::stride]
    scene = geometry.to_scene(values)
    spacing = tuple(s * stride for s in geometry.spacing)
    origin = tuple(0.5 * s for s in spacing)  # point data sit at cell centres
    out = {}
    for k in class_ids:
        onehot = (scene == k).astype(np.float32)
        if not onehot.any():
            continue
        # pad with zeros so a class touching the edge still gets a closed surface
        padded = np.pad(onehot, 1)
        pts = pv.ImageData(dimensions=padded.shape, spacing=spacing,
                           origin=tuple(o - s for o, s in zip(origin, spacing, strict=True)))
        pts.point_data["onehot"] = padded.ravel(order="F")
        surface = pts.contour([0.5], scalars="onehot")
        if surface.n_points == 0:
            continue
        if smooth:
            surface = surface.smooth_taubin(n_iter=smooth, pass_band=0.1)
        out[int(k)] = surface
    return out


# --------------------------------------------------------------------------- scene
def _lookup(layer: Layer) -> pv.LookupTable:
    from matplotlib.colors import to_rgba

    if layer.categorical:
        lut = pv.LookupTable()
        lut.values = np.array([[round(c * 255) for c in to_rgba(col)] for col in layer.colours],
                              dtype=np.uint8)
        lut.scalar_range = layer.clim
        lut.nan_color = NAN_COLOUR
        lut.annotations = {i: name for i, name in enumerate(layer.categories)}
        return lut
    lut = pv.LookupTable(cmap=layer.cmap, n_values=256)
    lut.scalar_range = layer.clim
    lut.nan_color = NAN_COLOUR
    return lut


def build_plotter(
    da: xr.DataArray,
    layer: Layer,
    *,
    positions: Sequence[int] | None = None,
    surfaces: dict[int, pv.PolyData] | None = None,
    surface_colours: Sequence[str] = (),
    surface_opacity: float = 0.55,
    vertical_exaggeration: float = 1.0,
    window_size: tuple[int, int] = (900, 640),
    max_cells: int | None = 4_000_000,
    scalar_bar: bool = True,
    geometry: Geometry | None = None,
) -> pv.Plotter:
    """An off-screen plotter: the layer on three orthogonal slices (a flat map: the map),
    an outline of the volume, optional class surfaces and a colour bar.

    ``positions``: (iline, xline, sample) indices of the slices; ``surfaces`` from
    :func:`class_surfaces` (class id -> mesh) drawn in ``surface_colours[id]``.
    """
    geometry = geometry or geometry_of(da, vertical_exaggeration)
    stride = _stride(geometry.shape, max_cells)
    grid = volume(geometry, layer, stride=stride)
    plotter = pv.Plotter(off_screen=True, window_size=list(window_size))
    plotter.set_background("white")
    lut = _lookup(layer)
    bar = {"title": layer.title, "vertical": True, "position_x": 0.86, "position_y": 0.12,
           "height": 0.76, "width": 0.06, "color": "black", "title_font_size": 14,
           "label_font_size": 12, "fmt": "%.3g"}
    if layer.categorical:
        bar["n_labels"] = 0
    shown = slices(grid, geometry, positions)
    for i, block in enumerate(shown):
        if block is None or block.n_cells == 0:
            continue
        plotter.add_mesh(block, scalars=layer.title, cmap=lut, clim=layer.clim,
                         show_scalar_bar=scalar_bar and i == 0, scalar_bar_args=bar,
                         nan_color=NAN_COLOUR, lighting=False, interpolate_before_map=False)
    plotter.add_mesh(grid.outline(), color="black", line_width=1)
    if not geometry.flat:
        survey_axes(plotter, da, grid.bounds)
    for k, mesh in (surfaces or {}).items():
        colour = surface_colours[k] if k < len(surface_colours) else "#888888"
        plotter.add_mesh(mesh, color=colour, opacity=surface_opacity, smooth_shading=True)
    if geometry.flat:
        plotter.view_xy()
    else:
        # from the first inline's side and a little above, z (up) upright on the screen:
        # time/depth runs down the vertical sections as on the 2D sections
        x0, x1, y0, y1, z0, z1 = grid.bounds
        centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2, (z0 + z1) / 2])
        direction = np.array([-1.0, -1.6, 0.9])
        plotter.camera_position = [tuple(centre + direction), tuple(centre), (0.0, 0.0, 1.0)]
        plotter.reset_camera()
        plotter.camera.zoom(1.05)
    return plotter


def survey_axes(plotter: pv.Plotter, da: xr.DataArray, bounds: Sequence[float]) -> None:
    """Axes along the volume's edges labelled in survey coordinates: inline and crossline
    numbers, and time or depth in the file's unit growing downwards (the scene's z points
    up, so its bottom is the latest time)."""
    def span(dim: str) -> tuple[float, float]:
        values = np.asarray(da.coords[dim].values, dtype=np.float64) if dim in da.coords \
            else np.arange(da.sizes[dim], dtype=np.float64)
        return float(values[0]), float(values[-1])

    il, xl, z = span("iline"), span("xline"), span("samples")
    unit = str(da.attrs.get("vertical_unit", "ms"))
    vertical = "Depth" if unit.lower() in ("m", "ft", "km") else "Time"
    # the cube axes count up along +z: give them minus the time, then label the ticks with
    # the time itself (VTK places no labels on a falling range)
    actor = plotter.show_bounds(
        bounds=list(bounds), axes_ranges=[il[0], il[1], xl[0], xl[1], -z[1], -z[0]],
        xtitle="Inline", ytitle="Crossline", ztitle=f"{vertical} ({unit}), down",
        color="black", font_size=10, fmt="%.0f", location="outer", ticks="outside",
        minor_ticks=False, use_3d_text=False)
    from pyvista.core.utilities.arrays import convert_string_array

    times = [label.strip().lstrip("-") or "0" for label in actor.z_labels]
    actor.SetAxisLabels(2, convert_string_array(np.array(times)))
    actor._fhn_survey_bounds = (il[0], il[1], xl[0], xl[1], z[0], z[1])  # see below


def _without_survey_axes(plotter: pv.Plotter) -> None:
    """Leave the survey axes out of a browser (vtk.js) scene: vtk.js labels cube axes with
    the scene's own coordinates (scaled metres), which would read as wrong inline numbers
    and times. The page states the axes beside the scene instead (:func:`axes_key`)."""
    for name, actor in list(plotter.renderer.actors.items()):
        if getattr(actor, "_fhn_survey_bounds", None) is not None:
            plotter.remove_actor(name, render=False)


def axes_key(da: xr.DataArray) -> str:
    """The survey axes of the 3D scene in words (inline, crossline, time/depth ranges)."""
    def span(dim: str) -> str:
        values = np.asarray(da.coords[dim].values, dtype=np.float64) if dim in da.coords \
            else np.arange(da.sizes[dim], dtype=np.float64)
        return f"{values[0]:g}-{values[-1]:g}"

    unit = str(da.attrs.get("vertical_unit", "ms"))
    vertical = "depth" if unit.lower() in ("m", "ft", "km") else "time"
    return (f"Inline {span('iline')} along the front edge, crossline {span('xline')} along "
            f"the side, {vertical} {span('samples')} {unit} growing downwards.")


def screenshot(plotter: pv.Plotter, *, close: bool = True) -> np.ndarray:
    """Render off-screen; uint8 RGB (h, w, 3)."""
    with _RENDER_LOCK:
        try:
            return np.asarray(plotter.screenshot(return_img=True))[..., :3].copy()
        finally:
            if close:
                plotter.close()


def render_png(plotter: pv.Plotter, *, close: bool = True) -> bytes:
    """Render off-screen as PNG bytes (for st.image and downloads)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(screenshot(plotter, close=close)).save(buf, format="PNG")
    return buf.getvalue()


def interactive_html(plotter: pv.Plotter) -> str:
    """The scene as a self-contained HTML page (vtk.js, trame's offline viewer).

    The same page trame's ``export_html`` writes (and stpyvista's trame backend embeds),
    serialised here without starting trame's web server: that server cannot start
    outside the main thread (streamlit runs scripts in threads) and, with trame-vtklocal
    installed, downloads VTK.wasm from kitware.com. The viewer's favicon links to
    kitware.github.io are removed too, so the page fetches nothing from the internet.
    """
    import json
    import zipfile

    from trame_vtk.modules.vtk.serializers import (
        SynchronizationContext,
        extract_array_hash,
        initialize_serializers,
        reference_id,
        serialize,
    )
    from trame_vtk.tools.vtksz2html import write_html

    _without_survey_axes(plotter)
    with _RENDER_LOCK:
        plotter.render()  # brings every mapper's input up to date
        window = plotter.render_window
        camera = plotter.renderer.GetActiveCamera()
        initialize_serializers()
        context = SynchronizationContext()
        context.set_ignore_last_dependencies(True)
        scene = serialize(None, window, reference_id(window), context, 1)
        if not scene:
            raise RuntimeError("the 3D scene could not be serialised for the browser")
        scene["extra"] = {"vtkRefId": reference_id(window),
                          "centerOfRotation": list(camera.GetFocalPoint()),
                          "camera": reference_id(camera)}
        hashes = {}
        for entry in extract_array_hash(scene):
            key = entry["hash"]
            hashes[key] = {**entry, "content": context.get_cached_data_array(key, False)}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("index.json", json.dumps({"hashes": hashes, "scene": scene}))
    page = io.StringIO()
    write_html(buffer.getvalue(), page)
    return page.getvalue().replace("https://kitware.github.io/vtk-js/icon/favicon-", "data:,")
