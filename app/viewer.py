"""The slice viewer's widgets, shared by every page that shows the data (streamlit).

:func:`view_controls` picks the section (inline / crossline / time slice, or the map)
with a slider and a number input; :func:`display_controls` holds the colour map,
clipping, overlay opacity and band choices in a popover; :func:`clip_ranges` computes
the volume-wide clip range once per setting. Drawing the image is
:func:`app.views.render_section` (pure numpy, tested on its own).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st
import xarray as xr

from io_adapters.gridmatch import spatial_dims

from . import ui
from .views import (
    COLOUR_MAPS,
    DisplaySettings,
    View,
    band_values,
    clip_range,
    default_rgb,
    default_settings,
    make_view,
    view_kinds,
)

__all__ = ["view_controls", "axis_coordinates", "load_view_state", "save_view_state",
           "layer_controls", "display_popover", "display_controls", "clip_ranges",
           "section_positions"]


def _index_key(key: str, kind: str) -> str:
    return f"{key}-{kind}"


VIEW_FILE = "view.json"  # the viewer's section and positions, kept in the project folder
_LOADED_KEY = "fhn_view_state_of"


def axis_coordinates(grid: xr.DataArray, axis: int) -> tuple[np.ndarray, str]:
    """The survey coordinates along a label-grid axis and their unit (inline/crossline
    numbers; times or depths in the file's unit), or indices where there are none."""
    dim = spatial_dims(grid)[axis]
    n = int(grid.sizes[dim])
    if dim in grid.coords and grid.coords[dim].ndim == 1:
        values = np.asarray(grid.coords[dim].values)
    else:
        values = np.arange(n)
    unit = str(grid.attrs.get("vertical_unit", "")) if dim == "samples" else ""
    return values, unit


def load_view_state(folder: str | Path) -> dict[str, Any]:
    """The viewer state saved in a project folder ({} when none or unreadable)."""
    path = Path(folder) / VIEW_FILE
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def save_view_state(folder: str | Path, state: dict[str, Any]) -> None:
    """Keep the viewer state in the project folder (atomically; a read-only folder is
    silently left as it is: the view is a convenience, not data)."""
    from io_adapters.atomic import atomic_output

    try:
        with atomic_output(Path(folder) / VIEW_FILE) as tmp:
            tmp.write_text(json.dumps(state, sort_keys=True))
    except OSError:
        pass


def _restore(grid: xr.DataArray, key: str, folder: str | Path | None) -> None:
    """Put the project's saved section and positions into the widgets' state, once per
    session and project (a reload starts a new session: the view comes back)."""
    if folder is None or st.session_state.get(f"{_LOADED_KEY}-{key}") == str(folder):
        return
    st.session_state[f"{_LOADED_KEY}-{key}"] = str(folder)
    saved = load_view_state(folder).get(key, {})
    kinds = {k.name: k for k in view_kinds(grid)}
    if saved.get("kind") in kinds:
        st.session_state[f"{key}-kind"] = saved["kind"]
    for name, index in (saved.get("positions") or {}).items():
        if name in kinds and isinstance(index, int):
            st.session_state[f"{_index_key(key, name)}__value"] = index


def _remember(grid: xr.DataArray, key: str, folder: str | Path | None, kind: str) -> None:
    if folder is None:
        return
    positions = {}
    for k in view_kinds(grid):
        value = st.session_state.get(f"{_index_key(key, k.name)}__value")
        if value is not None:
            positions[k.name] = int(value)
    state = {"kind": kind, "positions": positions}
    everything = load_view_state(folder)
    if everything.get(key) != state:
        everything[key] = state
        save_view_state(folder, everything)


def view_controls(
    grid: xr.DataArray, key: str = "view", defaults: dict[str, int] | None = None,
    project: Any = None,
) -> View:
    """Section picker: the kind of section and its position in survey coordinates (slider
    + number box; the index as a detail). With ``project`` the section and positions are
    kept in its folder, so a reload (or the next visit) shows the same section."""
    folder = getattr(project, "folder", None)
    kinds = view_kinds(grid)
    if len(kinds) == 1:
        return make_view(grid, kinds[0].name)
    _restore(grid, key, folder)
    titles = {k.name: k.title for k in kinds}
    kind_key = f"{key}-kind"
    if st.session_state.get(kind_key) not in titles:
        st.session_state[kind_key] = kinds[0].name
    left, right = st.columns([2.2, 4], vertical_alignment="bottom")
    with left:
        kind = st.segmented_control(
            "Section", [k.name for k in kinds], format_func=titles.get, key=kind_key,
            required=True,
        ) or kinds[0].name
    k = next(v for v in kinds if v.name == kind)
    coords, unit = axis_coordinates(grid, k.axis)
    n = len(coords)
    default = (defaults or {}).get(kind, n // 2)
    label = f"{k.title} ({unit})" if unit else k.title
    with right:
        index = ui.synced_position(label, coords, _index_key(key, kind), default, unit=unit)
    view = make_view(grid, kind, index)
    st.caption(f"{k.title} **{ui.format_coordinate(coords[index])}{' ' + unit if unit else ''}**"
               f" · index {index} of {n - 1}")
    _remember(grid, key, folder, kind)
    return view


def section_positions(grid: xr.DataArray, key: str = "view",
                      defaults: dict[str, int] | None = None) -> dict[int, int]:
    """Axis -> index of every section kind (for the lines showing where they cut)."""
    out = {}
    for k in view_kinds(grid):
        if k.axis is None:
            continue
        n = int(grid.sizes[spatial_dims(grid)[k.axis]])
        value = st.session_state.get(f"{_index_key(key, k.name)}__value")
        out[k.axis] = int(value) if value is not None else (defaults or {}).get(k.name, n // 2)
    return out


def _band_names(grid: xr.DataArray) -> list[str]:
    if "band" not in grid.dims:
        return []
    n = grid.sizes["band"]
    if "wavelength" in grid.coords:
        wl = np.asarray(grid.coords["wavelength"].values)
        unit = str(grid.coords["wavelength"].attrs.get("units", ""))
        return [f"{i + 1}: {float(w):g} {unit}".strip() for i, w in enumerate(wl)]
    if "band" in grid.coords:
        return [f"{i + 1}: {v}" for i, v in enumerate(np.asarray(grid.coords["band"].values))]
    return [str(i + 1) for i in range(n)]


def layer_controls(grid: xr.DataArray, settings: DisplaySettings, key: str = "display") -> None:
    """Band (or RGB composite) and date pickers, side by side; nothing for one-band data."""
    names = _band_names(grid)
    has_time = "time" in grid.dims
    if len(names) <= 1 and not has_time:
        return
    cols = st.columns([1.2, 4, 2] if has_time else [1.2, 5], vertical_alignment="bottom")
    composite = False
    if len(names) >= 3:
        composite = cols[0].toggle("RGB", key=f"{key}-rgb-on", value=False,
                                   help="Show three bands as red, green and blue")
    if names:
        with cols[1]:
            if composite:
                natural = default_rgb(grid)
                picks = []
                for i, (col, colour) in enumerate(zip(st.columns(3), ("Red", "Green", "Blue"),
                                                      strict=True)):
                    picks.append(col.selectbox(colour, range(len(names)), index=natural[i],
                                               format_func=names.__getitem__,
                                               key=f"{key}-rgb{i}"))
                settings.rgb = (picks[0], picks[1], picks[2])
            else:
                settings.band = st.selectbox("Band", range(len(names)),
                                             format_func=names.__getitem__, key=f"{key}-band")
    if has_time:
        dates = ([str(t) for t in np.asarray(grid.coords["time"].values)]
                 if "time" in grid.coords else [str(i) for i in range(grid.sizes["time"])])
        with cols[-1]:
            settings.time = st.segmented_control(
                "Date", range(len(dates)), format_func=dates.__getitem__, key=f"{key}-time",
                default=0) or 0


def display_popover(grid: xr.DataArray, settings: DisplaySettings, key: str = "display") -> None:
    """Colour map, clipping, opacity, exaggeration, size and marker toggles, in a popover."""
    base = default_settings(grid)
    s = settings
    with st.popover("Display", icon=":material/tune:"):
        if s.rgb is None:
            maps = list(COLOUR_MAPS)
            s.cmap = st.selectbox("Colour map", maps, index=maps.index(base.cmap),
                                  key=f"{key}-cmap")
            s.symmetric = st.toggle("Symmetric about zero", value=base.symmetric,
                                    key=f"{key}-sym",
                                    help="Clip at -c..c (seismic amplitudes); off: clip both "
                                    "tails separately (maps, reflectance)")
        s.percentile = st.slider("Clip at percentile", 90.0, 100.0, base.percentile, 0.5,
                                 key=f"{key}-pct",
                                 help="Values beyond this percentile of the whole volume "
                                 "saturate the colour map")
        s.opacity = st.slider("Label opacity", 0.0, 1.0, base.opacity, 0.05, key=f"{key}-alpha")
        if len(spatial_dims(grid)) == 3:
            s.vertical_stretch = st.slider("Vertical exaggeration", 0.25, 4.0, 1.0, 0.25,
                                           key=f"{key}-stretch")
        s.max_width = st.slider("Image width (px)", 400, 1400, base.max_width, 20,
                                key=f"{key}-width")
        s.max_height = st.slider("Image height (px)", 300, 1200, base.max_height, 20,
                                 key=f"{key}-height")
        s.smooth = st.toggle("Interpolate data", value=base.smooth, key=f"{key}-smooth",
                             help="Bilinear display of the data when enlarged; labels keep "
                             "their cell edges")
        s.show_wells = st.toggle("Show wells", value=True, key=f"{key}-wells")
        s.show_sections = st.toggle("Show section lines", value=True, key=f"{key}-lines")


def display_controls(grid: xr.DataArray, key: str = "display") -> DisplaySettings:
    """:func:`layer_controls` and :func:`display_popover` in one place (simple pages)."""
    settings = default_settings(grid)
    layer_controls(grid, settings, key)
    display_popover(grid, settings, key)
    return settings


def clip_ranges(grid: xr.DataArray, settings: DisplaySettings,
                signature: Sequence = ()) -> list[tuple[float, float]]:
    """Volume-wide clip range per shown band, cached in the session per setting."""
    cache = st.session_state.setdefault("fhn_clip_cache", {})
    bands = list(settings.rgb) if settings.rgb is not None else [settings.band]
    symmetric = settings.symmetric if settings.rgb is None else False
    out = []
    for b in bands:
        k = (tuple(signature), b, settings.time, settings.percentile, symmetric)
        if k not in cache:
            cache[k] = clip_range(band_values(grid, b, settings.time), settings.percentile,
                                  symmetric=symmetric)
        out.append(cache[k])
    return out
