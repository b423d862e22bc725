"""Project & data: open or create a project, add SEG-Y / GeoTIFF / image cubes, summary."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app import sources, ui, viewer, views
from io_adapters.summary import summarize

MISFIT_KEY = "fhn-data-misfit"  # files that did not fit the open project: (paths, kind, options)


def new_project_offer(paths: list[str], kind: str, options: dict) -> None:
    """Offer to start a new project from files that do not fit the open one."""
    from pathlib import Path

    first = Path(paths[0]).expanduser()
    suggestion = first.resolve().parent / f"{first.stem}-project"
    with st.container(border=True):
        st.markdown(f"**{first.name} does not fit this project.** Start a new project from "
                    f"{'these files' if len(paths) > 1 else 'it'} instead?")
        with st.form("fhn-misfit-project", border=False):
            left, right = st.columns([3, 2], vertical_alignment="bottom")
            folder = left.text_input("Folder of the new project", str(suggestion),
                                     key="fhn-misfit-folder")
            name = right.text_input("Name", first.stem, key="fhn-misfit-name")
            if st.form_submit_button("New project from this file",
                                     icon=":material/create_new_folder:"):
                made = ui.run_action(lambda: sources.create_project(folder, name))
                if made is not None:
                    added = ui.run_action(lambda: sources.add_paths(made, paths, kind,
                                                                    options))
                    if added:
                        st.session_state.pop(MISFIT_KEY, None)
                        ui.set_project_dir(made.folder)
                        st.session_state["fhn-data-message"] = (
                            f"New project {made.name} with {', '.join(added)}")
                        st.rerun()


st.subheader("Project & data")

# ----------------------------------------------------------------------------- project
project = ui.current_project()
with st.expander("Open another project or start a new one", icon=":material/folder_open:",
                 expanded=project is None):
    open_tab, new_tab = st.tabs(["Open a project", "New project"])
    with open_tab:
        with st.form("fhn-open-project", border=False):
            folder = st.text_input("Project folder", value=str(project.folder) if project else "",
                                   placeholder="/data/projects/north-sea",
                                   help="A folder that holds a project.toml")
            if st.form_submit_button("Open", icon=":material/folder_open:"):
                opened = ui.run_action(lambda: sources.open_project(folder))
                if opened is not None:
                    ui.set_project_dir(opened.folder)
                    st.rerun()
    with new_tab:
        with st.form("fhn-new-project", border=False):
            left, right = st.columns(2)
            new_folder = left.text_input("New project folder", placeholder="/data/projects/my-map")
            new_name = right.text_input("Name", placeholder="My map")
            if st.form_submit_button("Create", icon=":material/create_new_folder:"):
                made = ui.run_action(lambda: sources.create_project(new_folder, new_name))
                if made is not None:
                    ui.set_project_dir(made.folder)
                    st.rerun()

if project is None:
    st.stop()


message = st.session_state.pop("fhn-data-message", None)
if message:
    st.success(message, icon=":material/check_circle:")

# ----------------------------------------------------------------------------- sources
st.markdown("#### Sources")
if not project.sources:
    st.info("No data in this project yet.")
for i, s in enumerate(project.sources):
    row = st.columns([6, 2, 3, 1], vertical_alignment="center")
    row[0].markdown(f"`{s.path}`")
    row[1].markdown(sources.KIND_TITLES.get(s.kind, s.kind))
    row[2].caption(", ".join(f"{k}={v}" for k, v in s.options.items()) or "default options")
    if row[3].button("", icon=":material/delete:", key=f"fhn-src-del-{i}",
                     help="Remove this source from the project (the file stays on disk)"):
        ui.run_action(lambda i=i: project.remove_source(i), "Source removed")
        ui.drop_editor()
        st.rerun()

# ----------------------------------------------------------------------------- summary
grid = ui.load_grid(project, quiet=not project.sources)
if grid is not None:
    st.markdown("#### Summary")
    info = summarize(grid)
    left, right = st.columns([3, 2], gap="large")
    with left:
        table = pd.DataFrame(info.rows, columns=["", "value"]).set_index("")
        st.table(table)
    with right:
        kinds = views.view_kinds(grid)
        if hasattr(grid.data, "dask"):  # a survey store: an inline reads one row of chunks
            preview = views.make_view(grid, kinds[0].name, grid.sizes[grid.dims[0]] // 2)
        else:
            preview = views.make_view(grid, kinds[-1].name, grid.sizes[grid.dims[-1]] // 2
                                      if kinds[-1].axis == 2 else 0)
        settings = views.default_settings(grid)
        clip = views.clip_range(views.band_values(grid, 0), settings.percentile,
                                symmetric=settings.symmetric)
        settings.max_width, settings.max_height = 460, 400
        image, _ = views.render_section(grid, preview, settings, [clip])
        image = views.frame_section(image, grid, preview,
                                    views.data_colourbar(grid, settings, [clip])).image
        if preview.axis is not None:
            coords, unit = viewer.axis_coordinates(grid, preview.axis)
            caption = (f"{preview.title} {ui.format_coordinate(coords[preview.index])} "
                       f"{unit}".strip())
        else:
            caption = "Band 1"
        ui.image(image, caption=caption)
        ui.link("screens/label.py", "View and label the data", ":material/brush:")

st.divider()
# ----------------------------------------------------------------------------- add data
st.markdown("#### Add data")
limit_mb = int(st.get_option("server.maxUploadSize"))
path_tab, upload_tab = st.tabs(["From a path on this machine", "Upload"])
with path_tab:
    with st.form("fhn-add-path", border=False):
        paths_text = st.text_area(
            "File path(s), one per line", height=90, key="fhn-add-paths",
            placeholder="/data/survey.sgy\n/data/maps/elevation.tif",
            help="SEG-Y (.sgy/.segy), GeoTIFF (.tif), ENVI (.hdr + data), MATLAB (.mat), "
                 "NetCDF/HDF5 (.nc/.h5). Several GeoTIFFs are put on one grid; two cubes of "
                 "one scene become a two-date pair.")
        kind_col, opt_col = st.columns([1, 2])
        kind = kind_col.selectbox("Kind", ["auto", *sources.KINDS], key="fhn-add-kind",
                                  format_func=lambda k: sources.KIND_TITLES.get(k, "Detect from "
                                                                                 "file name"))
        with opt_col:
            options = sources.option_widgets(kind, key="fhn-add-opt")
        if st.form_submit_button("Add to project", icon=":material/add:"):
            paths = [p.strip() for p in paths_text.splitlines() if p.strip()]
            st.session_state.pop(MISFIT_KEY, None)
            try:
                added = sources.add_paths(project, paths, kind, options)
            except ui.user_errors() as err:
                added = None
                ui.show_error(err)
                if paths and project.sources:  # the file may be fine on its own
                    st.session_state[MISFIT_KEY] = (paths, kind, options)
            if added:
                ui.drop_editor()
                st.session_state["fhn-data-message"] = f"Added {', '.join(added)}"
                st.rerun()
    misfit = st.session_state.get(MISFIT_KEY)
    if misfit:
        new_project_offer(*misfit)
with upload_tab:
    st.caption(f"Files up to **{limit_mb:,} MB** each (set by `server.maxUploadSize` in "
               "`.streamlit/config.toml`). Uploads are copied into the project's `data/` "
               "folder; for larger files give their path instead. For ENVI, upload the "
               "header and the data file together.")
    with st.form("fhn-upload", border=False, clear_on_submit=True):
        files = st.file_uploader("Data files", accept_multiple_files=True, key="fhn-upload-files")
        up_kind = st.selectbox("Kind", ["auto", *sources.KINDS], key="fhn-up-kind",
                               format_func=lambda k: sources.KIND_TITLES.get(k, "Detect from "
                                                                              "file name"))
        up_options = sources.option_widgets(up_kind, key="fhn-up-opt")
        if st.form_submit_button("Upload and add", icon=":material/upload:"):
            uploads = [(f.name, f.getvalue()) for f in files or []]
            added = ui.run_action(lambda: sources.add_uploads(project, uploads, up_kind,
                                                              up_options))
            if added:
                ui.drop_editor()
                st.session_state["fhn-data-message"] = f"Uploaded and added {', '.join(added)}"
                st.rerun()
