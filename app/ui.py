"""Streamlit glue shared by every page: the open project, its data, its label editor.

Pages stay thin by asking this module for what they show:

- :func:`current_project` — the project folder chosen in this session (or, in order, the
  ``?project=`` query parameter, ``--project DIR`` after ``--`` on the streamlit command
  line, the ``FHN_PROJECT`` environment variable, the demo project);
- :func:`load_grid` — the project's data, loaded once per server and cached;
- :func:`label_editor` — the session's :class:`app.labelling.LabelEditor` (saves every
  edit at once);
- :func:`show_error` — a :class:`DataError` (or any fhn error) as a message, never a
  traceback; :func:`sidebar` — the project panel every page shares.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st
import xarray as xr

from io_adapters.errors import DataError, DataWarning
from io_adapters.project import PROJECT_FILE, Project
from io_adapters.summary import format_bytes

from .labelling import LabelEditor, editor_for

__all__ = [
    "PROJECT_KEY",
    "ENV_PROJECT",
    "EDITOR_KEY",
    "project_dir",
    "set_project_dir",
    "current_project",
    "data_signature",
    "load_grid",
    "label_editor",
    "drop_editor",
    "show_error",
    "user_errors",
    "sidebar",
    "synced_position",
    "image",
    "png_bytes",
    "format_coordinate",
    "nearest_index",
    "coordinate_step",
]

PROJECT_KEY = "fhn_project_dir"
EDITOR_KEY = "fhn_editor"
ENV_PROJECT = "FHN_PROJECT"


def _argv_project() -> str | None:
    """``--project DIR`` given after ``--`` on the streamlit command line."""
    argv = sys.argv[1:]
    for i, arg in enumerate(argv):
        if arg == "--project" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--project="):
            return arg.split("=", 1)[1]
    return None


def project_dir() -> Path | None:
    """The project folder of this session (see the module docstring for the order)."""
    chosen = st.session_state.get(PROJECT_KEY)
    if chosen:
        return Path(chosen)
    query = st.query_params.get("project")
    for candidate in (query, _argv_project(), os.environ.get(ENV_PROJECT)):
        if candidate:
            return Path(candidate).expanduser()
    from assets.demo_project import DEFAULT_PROJECT_DIR, ensure_demo_project

    if (DEFAULT_PROJECT_DIR / PROJECT_FILE).is_file():
        return DEFAULT_PROJECT_DIR
    try:
        with st.spinner("Building the demo survey (first start only)..."):
            return ensure_demo_project()
    except DataError as err:
        show_error(err)
        return None


def set_project_dir(folder: str | Path) -> None:
    """Make ``folder`` this session's project (kept in the URL, so a reload keeps it)."""
    path = str(Path(folder).expanduser().resolve())
    st.session_state[PROJECT_KEY] = path
    st.query_params["project"] = path
    drop_editor()


def current_project() -> Project | None:
    """The open :class:`Project`, or None (with the reason shown on the page)."""
    folder = project_dir()
    if folder is None:
        return None
    try:
        return Project.open(folder)
    except DataError as err:
        show_error(err)
        return None


def data_signature(project: Project) -> tuple:
    """What identifies the loaded data: sources, their options and file stamps."""
    parts: list[Any] = [str(project.folder)]
    for s in project.sources:
        path = project.resolve(s.path)
        try:
            stat = path.stat()
            stamp = (stat.st_size, stat.st_mtime_ns)
        except OSError:
            stamp = (None, None)
        parts.append((str(path), s.kind, tuple(sorted((k, str(v)) for k, v in s.options.items())),
                      stamp))
    return tuple(parts)


@st.cache_resource(max_entries=3, show_spinner="Loading data...")
def _load_cached(folder: str, signature: tuple) -> tuple[xr.DataArray, tuple[str, ...]]:
    """The data and the DataWarnings its reading raised (kept, so every page shows them)."""
    del signature  # part of the cache key only
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataWarning)
        data = Project.open(folder).load_data()
    return data, tuple(str(w.message) for w in caught if issubclass(w.category, DataWarning))


def load_grid(project: Project, *, quiet: bool = False) -> xr.DataArray | None:
    """The project's data (cached per server), or None with the reason on the page."""
    if not project.sources:
        if not quiet:
            st.info("This project has no data yet. Add a SEG-Y volume, GeoTIFF maps or an "
                    "image cube on the **Project & data** page.")
        return None
    try:
        data, data_warnings = _load_cached(str(project.folder), data_signature(project))
    except DataError as err:
        if not quiet:
            show_error(err)
        return None
    if not quiet:
        for text in data_warnings:
            st.warning(text, icon=":material/warning:")
    return data


def drop_editor() -> None:
    """Forget the session's label editor (another project or new data was opened)."""
    st.session_state.pop(EDITOR_KEY, None)


def label_editor(project: Project, grid: xr.DataArray) -> LabelEditor | None:
    """The session's label editor for this project and data (None + message on error).

    Rebuilt when the data changed or the label file was written by someone else (another
    browser tab), so this session never overwrites newer labels with older ones.
    """
    key = data_signature(project)
    entry = st.session_state.get(EDITOR_KEY)
    if entry is not None:
        sig, editor = entry
        if sig == key and editor.stamp == editor.file_stamp():
            return editor
    try:
        editor = editor_for(project, grid)
    except DataError as err:
        show_error(err)
        return None
    st.session_state[EDITOR_KEY] = (key, editor)
    return editor


def show_error(err: BaseException) -> None:
    """Show an error as a readable message on the page (never a traceback)."""
    st.error(str(err), icon=":material/error:")


def user_errors() -> tuple[type[BaseException], ...]:
    """The exception types whose message is meant for the user (DataError, FhnError)."""
    types: list[type[BaseException]] = [DataError]
    try:
        from fhn_core.errors import FhnError  # optional: fhn_core may lack it

        types.append(FhnError)
    except ImportError:
        pass
    return tuple(types)


def run_action(action: Callable[[], Any], success: str | None = None) -> Any:
    """Run a user action; a user error becomes a message, success an optional toast."""
    try:
        result = action()
    except user_errors() as err:
        show_error(err)
        return None
    if success:
        st.toast(success, icon=":material/check_circle:")
    return result


def format_coordinate(value: Any) -> str:
    """A survey coordinate as people write it: 1020, 1200, 1204.5 (no trailing zeros)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if number.is_integer():
        return str(int(number))
    return f"{number:.3f}".rstrip("0").rstrip(".")


def synced_position(label: str, values: Sequence[Any], key: str, default: int = 0,
                    unit: str = "", help: str | None = None) -> int:
    """A slider and a number box in survey coordinates (``values``: the coordinate of each
    index, e.g. inline numbers or times in ms) for one position; returns its index.

    The slider steps through the coordinates; the number box takes any number and goes to
    the nearest coordinate. The index is kept in ``{key}__value`` (other widgets read it).
    """
    coords = np.asarray(values)
    n = len(coords)
    numeric = np.issubdtype(coords.dtype, np.number)
    value_key = f"{key}__value"
    if value_key not in st.session_state:
        st.session_state[value_key] = int(min(max(default, 0), n - 1))
    st.session_state[value_key] = int(min(max(st.session_state[value_key], 0), n - 1))
    suffix = f" {unit}" if unit else ""

    def as_text(i: int) -> str:
        return f"{format_coordinate(coords[i])}{suffix}"

    def from_slider() -> None:
        st.session_state[value_key] = int(st.session_state[f"{key}__slider"])

    def from_number() -> None:
        typed = st.session_state[f"{key}__number"]
        st.session_state[value_key] = nearest_index(coords, typed) if numeric else int(typed)

    index = st.session_state[value_key]
    st.session_state[f"{key}__slider"] = index
    left, right = st.columns([5, 1.3], vertical_alignment="bottom")
    if n > 1:
        left.select_slider(label, options=list(range(n)), format_func=as_text,
                           key=f"{key}__slider", on_change=from_slider, help=help)
    else:
        left.caption(f"{label}: {as_text(0)} (a single position)")
    if numeric:
        step = coordinate_step(coords)
        integral = bool(np.all(np.mod(coords, 1) == 0) and float(step).is_integer())
        cast = int if integral else float
        st.session_state[f"{key}__number"] = cast(coords[index])
        right.number_input(
            f"{label} number", cast(coords.min()), cast(coords.max()), step=cast(step),
            key=f"{key}__number", on_change=from_number,
            format=None if integral else "%g",
            label_visibility="collapsed" if n > 1 else "visible",
            help=f"Type a value in {unit or 'survey coordinates'}: the nearest one is shown")
    else:
        st.session_state[f"{key}__number"] = index
        right.number_input(f"{label} index", 0, n - 1, step=1, key=f"{key}__number",
                           on_change=from_number, label_visibility="collapsed")
    return int(st.session_state[value_key])


def nearest_index(coords: Sequence[Any] | np.ndarray, value: float) -> int:
    """Index of the coordinate nearest ``value``."""
    c = np.asarray(coords, dtype=np.float64)
    return int(np.abs(c - float(value)).argmin())


def coordinate_step(coords: Sequence[Any] | np.ndarray) -> float:
    """The typical distance between neighbouring coordinates (1 when there is none)."""
    c = np.asarray(coords, dtype=np.float64)
    if c.size < 2:
        return 1.0
    step = float(np.median(np.abs(np.diff(c))))
    return step if np.isfinite(step) and step > 0 else 1.0


def png_bytes(image: np.ndarray) -> bytes:
    """An RGB(A) uint8 image as PNG bytes."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def image(picture: np.ndarray | bytes, caption: str | None = None,
          width: int | None = None) -> None:
    """Show an image written into the page itself (a PNG data URI).

    ``st.image`` serves the picture from the server's media store, which drops a run's
    files when the next run ends: a rerun that starts before the browser fetched the
    picture (a click, a stroke, a page switch) leaves a broken image and a "404 Not Found"
    in the console. A picture inside the page cannot go missing.
    """
    import base64

    data = picture if isinstance(picture, bytes) else png_bytes(picture)
    source = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    size = f"width:{int(width)}px;max-width:100%" if width else "max-width:100%"
    text = (f"<div style='color:#808495;font-size:0.85rem;margin-top:2px'>"
            f"{_escape(caption)}</div>" if caption else "")
    st.markdown(f"<div class='fhn-image'><img src='{source}' style='{size}' alt="
                f"'{_escape(caption or 'image')}'/>{text}</div>", unsafe_allow_html=True)


def sidebar(project: Project | None) -> None:
    """The project panel shown on every page."""
    with st.sidebar:
        st.markdown("### fhn")
        st.caption("Invertible networks for sparse-label segmentation")
        if project is None:
            st.warning("No project open. Open or create one on **Project & data**.")
            return
        st.markdown(f"**{project.name}**")
        st.caption(f"`{project.folder}`")
        if project.sources:
            kinds = {s.kind for s in project.sources}
            kind = next(iter(kinds))
            names = ", ".join(Path(s.path).name for s in project.sources)
            title = {"segy": "SEG-Y", "geotiff": "GeoTIFF", "hyperspectral": "Cube"}.get(kind, kind)
            st.caption(f"{title}: {names}")
            grid = load_grid(project, quiet=True)
            if grid is not None:
                dims = " x ".join(str(grid.sizes[d]) for d in grid.dims)
                st.caption(f"{dims} ({', '.join(map(str, grid.dims))}), "
                           f"{format_bytes(grid.nbytes)}")
        else:
            st.caption("No data yet.")
        if project.has_labels():
            entry = st.session_state.get(EDITOR_KEY)
            total = None
            if entry is not None and entry[1].project.folder == project.folder:
                total = entry[1].total()
            stamp = project.labels_path.stat().st_mtime
            from datetime import datetime

            when = datetime.fromtimestamp(stamp).strftime("%H:%M:%S")
            what = f"{total:,} labelled cells, " if total is not None else ""
            st.caption(f":material/save: {what}saved {when}")


# --------------------------------------------------------------------------- label widgets
def class_legend_html(rows: list[dict[str, Any]]) -> str:
    """The class counts as a compact HTML table with colour swatches."""
    if not rows:
        return "<p style='color:#888'>No classes.</p>"
    has_split = any(r["validation"] for r in rows)
    head = "<th style='text-align:right'>train</th><th style='text-align:right'>val</th>" \
        if has_split else ""
    body = []
    for r in rows:
        swatch = (f"<span style='display:inline-block;width:12px;height:12px;border-radius:2px;"
                  f"background:{r['colour']};border:1px solid #0003;margin-right:6px;"
                  f"vertical-align:-1px'></span>")
        split = (f"<td style='text-align:right'>{r['training']:,}</td>"
                 f"<td style='text-align:right'>{r['validation']:,}</td>") if has_split else ""
        body.append(f"<tr><td>{swatch}{_escape(r['class'])}</td>"
                    f"<td style='text-align:right'>{r['labelled']:,}</td>{split}</tr>")
    return ("<table class='fhn-counts' style='width:100%;font-size:0.85rem;"
            "border-collapse:collapse'>"
            f"<tr><th style='text-align:left'>class</th><th style='text-align:right'>cells</th>"
            f"{head}</tr>{''.join(body)}</table>")


def readout_html(readout: dict[str, str]) -> str:
    """A cell readout (coordinates, value, label) as a small two-column table."""
    rows = "".join(f"<tr><td style='color:#666;padding-right:10px'>{_escape(k)}</td>"
                   f"<td style='text-align:right'><code>{_escape(v)}</code></td></tr>"
                   for k, v in readout.items())
    return f"<table style='font-size:0.85rem;width:100%'>{rows}</table>"


def _escape(text: object) -> str:
    import html

    return html.escape(str(text))


CLASS_VERSION_KEY = "fhn_class_version"
CLASS_DELETE_KEY = "fhn_class_delete"
CLASS_MSG_KEY = "fhn_class_message"


def _class_changed(ok: bool, message: str) -> None:
    st.session_state[CLASS_MSG_KEY] = ("ok" if ok else "error", message)
    if not ok:  # re-key the fields so they show the table as it is
        st.session_state[CLASS_VERSION_KEY] = st.session_state.get(CLASS_VERSION_KEY, 0) + 1


def _edit_class(editor: LabelEditor, action: Callable[[], Any], message: str) -> None:
    try:
        action()
    except user_errors() as err:
        _class_changed(False, str(err))
        return
    _class_changed(True, message)


def class_table(editor: LabelEditor) -> None:
    """Add, rename, recolour and delete classes (delete asks first); each change is saved."""
    from io_adapters.labels import default_colour

    version = st.session_state.get(CLASS_VERSION_KEY, 0)
    classes = list(editor.labels.classes)
    counts = editor.labels.counts()

    def rename(cid: int, key: str) -> None:
        name = str(st.session_state.get(key, "")).strip()
        _edit_class(editor, lambda: editor.rename_class(cid, name), f"Renamed class to {name}")

    def recolour(cid: int, key: str) -> None:
        colour = st.session_state.get(key)
        _edit_class(editor, lambda: editor.recolour_class(cid, colour), "Colour changed")

    def ask_delete(cid: int) -> None:
        st.session_state[CLASS_DELETE_KEY] = cid

    for c in classes:
        pick, name, delete = st.columns([1, 4, 1], vertical_alignment="center")
        ckey, nkey = f"fhn-cls-colour-{c.id}-{version}", f"fhn-cls-name-{c.id}-{version}"
        pick.color_picker("Colour", c.colour, key=ckey, label_visibility="collapsed",
                          on_change=recolour, args=(c.id, ckey))
        name.text_input("Name", c.name, key=nkey, label_visibility="collapsed",
                        on_change=rename, args=(c.id, nkey))
        delete.button("", icon=":material/delete:", key=f"fhn-cls-del-{c.id}-{version}",
                      on_click=ask_delete, args=(c.id,), help=f"Delete class {c.name}")

    pending = st.session_state.get(CLASS_DELETE_KEY)
    if pending is not None and 0 <= pending < len(classes):
        doomed = classes[pending]

        def confirm() -> None:
            st.session_state.pop(CLASS_DELETE_KEY, None)
            st.session_state[CLASS_VERSION_KEY] = st.session_state.get(CLASS_VERSION_KEY, 0) + 1
            _edit_class(editor, lambda: editor.delete_class(doomed.id),
                        f"Deleted class {doomed.name}")

        def cancel() -> None:
            st.session_state.pop(CLASS_DELETE_KEY, None)

        st.warning(f"Delete class **{doomed.name}** and its {counts[doomed.id]:,} labelled "
                   "cells? Higher class numbers move down by one. This cannot be undone.")
        yes, no = st.columns(2)
        yes.button("Delete", type="primary", on_click=confirm, key="fhn-cls-del-yes",
                   width="stretch")
        no.button("Cancel", on_click=cancel, key="fhn-cls-del-no", width="stretch")

    with st.form(f"fhn-cls-add-{version}", border=False, clear_on_submit=True):
        name_col, colour_col = st.columns([4, 1], vertical_alignment="bottom")
        new_name = name_col.text_input("New class", placeholder="e.g. Channel sand",
                                       key="fhn-cls-new-name")
        new_colour = colour_col.color_picker("Colour", default_colour(len(classes)),
                                             key=f"fhn-cls-new-colour-{len(classes)}")
        if st.form_submit_button("Add class", icon=":material/add:"):
            _edit_class(editor, lambda: editor.add_class(new_name, new_colour),
                        f"Added class {new_name}")
            st.rerun()

    message = st.session_state.get(CLASS_MSG_KEY)
    if message:
        (st.error if message[0] == "error" else st.caption)(message[1])


def link(page: str, label: str, icon: str | None = None) -> None:
    """A link to another page of the app (nothing when the page runs on its own, in tests)."""
    from streamlit.errors import StreamlitAPIException

    try:
        st.page_link(page, label=label, icon=icon)
    except (StreamlitAPIException, KeyError):
        pass


def open_project_and_grid() -> tuple[Project, xr.DataArray]:
    """The page preamble: the current project and its data grid, or stop the page here
    (the sidebar and the called functions have already said why)."""
    project = current_project()
    grid = None if project is None else load_grid(project)
    if project is None or grid is None:
        st.stop()
    return project, grid


def open_label_editor() -> tuple[Project, xr.DataArray, LabelEditor]:
    """:func:`open_project_and_grid` plus the project's label editor, or stop the page."""
    project, grid = open_project_and_grid()
    editor = label_editor(project, grid)
    if editor is None:
        st.stop()
    return project, grid, editor
