"""Adding data files to a project from the app: by path or by upload.

The reading itself is io_adapters' (:meth:`Project.add_source`, :meth:`Project.load_data`);
this module only strings the steps together for the "Project & data" page: pick the
kind from the file name when asked to, add the files, then load the project's data once
and take the files back out if it cannot be read, so a bad file never leaves the project
unusable. :func:`option_widgets` draws the reader options of a kind.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from io_adapters.errors import DataError
from io_adapters.project import Project, guess_kind

__all__ = ["KINDS", "KIND_TITLES", "open_project", "create_project", "add_paths", "add_uploads",
           "option_widgets"]

KINDS = ("segy", "geotiff", "hyperspectral")
KIND_TITLES = {
    "segy": "SEG-Y volume",
    "geotiff": "GeoTIFF map(s)",
    "hyperspectral": "Image cube (ENVI, .mat, NetCDF)",
}
_ENVI_HEADER = ".hdr"


def open_project(folder: str) -> Project:
    """Open the project in ``folder`` (a DataError when the field is empty)."""
    if not str(folder).strip():
        raise DataError("give the folder of the project to open")
    return Project.open(str(folder).strip())


def create_project(folder: str, name: str = "") -> Project:
    """Create a project in ``folder``, named ``name`` or after the folder."""
    if not str(folder).strip():
        raise DataError("give a folder for the new project (it is created if missing)")
    path = Path(str(folder).strip()).expanduser()
    if not path.is_absolute():
        raise DataError(f"give the new project's folder as a full path, e.g. /data/{path}")
    return Project.create(path, name.strip() or path.name)


def _kind_options(kind: str, options: dict[str, Any]) -> dict[str, Any]:
    """The options that apply to ``kind`` (the form offers them all)."""
    allowed = {
        "segy": ("iline", "xline", "fill_missing"),
        "geotiff": ("categorical", "reference"),
        "hyperspectral": ("variable", "band_axis", "time"),
    }[kind]
    return {k: v for k, v in options.items() if k in allowed and v not in (None, "")}


def add_paths(
    project: Project, paths: Sequence[str], kind: str = "auto",
    options: dict[str, Any] | None = None,
) -> list[str]:
    """Add files to the project and check that the project's data still loads.

    ``kind`` "auto" guesses from each file name. Reader ``options`` apply to every file
    (for ``time`` with several cubes, give the dates in the same order, comma-separated).
    When loading fails, the files just added are removed again and the DataError is
    raised. Returns the names added.
    """
    if not paths:
        raise DataError("give at least one file path (one per line)")
    opts = dict(options or {})
    times = [t.strip() for t in str(opts.pop("time", "") or "").split(",") if t.strip()]
    before = len(project.sources)
    added = []
    try:
        for i, raw in enumerate(paths):
            path = str(Path(raw.strip().strip('"').strip("'")).expanduser())
            k = guess_kind(path) if kind == "auto" else kind
            per_file = _kind_options(k, opts)
            if k == "hyperspectral" and i < len(times):
                per_file["time"] = times[i]
            if not Path(path).is_absolute() and not project.resolve(path).exists():
                path = str(Path(path).resolve())
            project.add_source(path, k, **per_file)
            added.append(Path(path).name)
        project.load_data()
    except DataError:
        while len(project.sources) > before:
            project.remove_source(len(project.sources) - 1)
        raise
    return added


def add_uploads(
    project: Project, uploads: Sequence[tuple[str, bytes]], kind: str = "auto",
    options: dict[str, Any] | None = None,
) -> list[str]:
    """Store uploaded files in the project's data/ folder and add them as sources.

    An ENVI header and its data file are uploaded together; only the header becomes a
    source (the reader finds the data beside it). See :func:`add_paths` for the rest.
    """
    if not uploads:
        raise DataError("choose one or more files to upload first")
    stored = [project.store_file(name, content) for name, content in uploads]
    headers = {Path(s).stem.lower() for s in stored if Path(s).suffix.lower() == _ENVI_HEADER}
    sources = [
        s for s in stored
        if Path(s).suffix.lower() == _ENVI_HEADER
        or not (Path(s).stem.lower() in headers or Path(s).name.lower() in headers)
    ]
    return add_paths(project, sources, kind, options)


def option_widgets(kind: str, key: str) -> dict[str, Any]:
    """Reader options of ``kind`` as streamlit widgets (all kinds for "auto")."""
    import streamlit as st

    opts: dict[str, Any] = {}
    show = KINDS if kind == "auto" else (kind,)
    if "segy" in show:
        with st.expander("SEG-Y header bytes", expanded=kind == "segy"):
            c1, c2, c3 = st.columns(3)
            opts["iline"] = c1.number_input("Inline byte", 1, 237, 189, key=f"{key}-il")
            opts["xline"] = c2.number_input("Crossline byte", 1, 237, 193, key=f"{key}-xl")
            opts["fill_missing"] = c3.checkbox("Fill missing traces", key=f"{key}-fill",
                                               help="Place an incomplete survey on the "
                                               "full grid (gaps become zeros)")
            if opts["iline"] == 189 and opts["xline"] == 193:
                del opts["iline"], opts["xline"]  # defaults: keep project.toml short
            if not opts["fill_missing"]:
                del opts["fill_missing"]
    if "geotiff" in show:
        with st.expander("GeoTIFF options", expanded=kind == "geotiff"):
            if st.checkbox("Categorical map (classes, one channel per class)",
                           key=f"{key}-cat"):
                opts["categorical"] = True
            if st.checkbox("Defines the grid (reference raster)", key=f"{key}-ref"):
                opts["reference"] = True
    if "hyperspectral" in show:
        with st.expander("Cube options", expanded=kind == "hyperspectral"):
            c1, c2 = st.columns(2)
            var = c1.text_input("Variable (.mat / NetCDF)", key=f"{key}-var",
                                placeholder="largest 3D variable")
            dates = c2.text_input("Dates, comma-separated", key=f"{key}-dates",
                                  placeholder="2000, 2003")
            if var.strip():
                opts["variable"] = var.strip()
            if dates.strip():
                opts["time"] = dates.strip()
    return opts
