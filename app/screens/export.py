"""Export: a run's prediction as SEG-Y / GeoTIFF / NumPy / NetCDF and its model, as files."""

from __future__ import annotations

import streamlit as st

from app import run_ui, runs, ui
from io_adapters.summary import format_bytes

PRODUCTS = {
    "classes": "Classes (class id per cell)",
    "probabilities": "Probabilities (per class; SEG-Y: of the predicted class)",
    "entropy": "Uncertainty (normalised entropy)",
}
MIME = {".sgy": "application/octet-stream", ".tif": "image/tiff", ".npy":
        "application/octet-stream", ".nc": "application/x-netcdf", ".zip": "application/zip"}

DOWNLOAD_LIMIT = 512 * 2**20  # bytes; larger files are read where they were written

st.subheader("Export")

project, grid = ui.open_project_and_grid()
info = run_ui.run_picker(project)
if info is None:
    st.stop()
paths = runs.RunPaths.of(project, info.name)
streamed = runs.prediction_store(project, info.name) is not None
formats = runs.export_formats(grid, streamed=streamed)

message = st.session_state.pop("fhn-export-message", None)
if message:
    (st.error if message[0] == "error" else st.success)(message[1])

left, right = st.columns(2, gap="large")
with left:
    st.markdown("#### Prediction")
    with st.form("fhn-export-form", border=False):
        source = "network"
        if streamed:
            st.caption("This run's prediction is a Zarr store written block by block; it is "
                       "exported chunk by chunk, never held in memory.")
        if runs.has_baseline(project, info.name):
            source = st.radio(
                "Prediction of", list(runs.SOURCES), horizontal=True, key="fhn-export-source",
                format_func=runs.source_titles(info.cross_validation).get,
                help="Runs of the auto recipe also keep the baseline's prediction; its "
                     "cross-validated score is beside the network's on Results.")
        what = st.multiselect("Products", list(PRODUCTS), default=["classes"],
                              format_func=PRODUCTS.get, key="fhn-export-what")
        suffix = st.radio("Format", formats, horizontal=True, key="fhn-export-format",
                          format_func=lambda s: f"{runs.FORMAT_TITLES[s]} ({s})")
        st.caption({
            ".sgy": "SEG-Y with every header of the source volume (text, binary, trace "
                    "headers); values as IEEE floats. Opens in OpendTect, Petrel, segyio.",
            ".tif": "GeoTIFF on the source's grid and CRS; classes with a colour table. "
                    "Opens in QGIS and ArcGIS.",
            ".npy": "NumPy array on the label grid (classes int16, probabilities per class).",
            ".nc": "NetCDF-4 with the source's coordinates and class names.",
        }.get(suffix, ""))
        if st.form_submit_button("Export", type="primary", icon=":material/ios_share:"):
            written = []
            for product in what:
                path = ui.run_action(lambda product=product: runs.export_run(
                    project, info.name, grid, product, suffix, source=source))
                if path is None:
                    break
                written.append(path.name)
            if written:
                st.session_state["fhn-export-message"] = (
                    "ok", f"Wrote {', '.join(written)} into `{paths.export_dir}`")
                st.rerun()
with right:
    st.markdown("#### Model")
    st.caption("The trained network: weights (safetensors), design (TOML) and model.json "
               "(classes, scaling). `fhn predict` applies it to new data of the same kind.")
    if not info.has_model:
        st.info("This run has no saved model.")
    elif st.button("Zip the model", icon=":material/folder_zip:", key="fhn-export-model"):
        zipped = ui.run_action(lambda: runs.zip_model(project, info.name))
        if zipped is not None:
            st.session_state["fhn-export-message"] = ("ok", f"Wrote {zipped.name} into "
                                                            f"`{paths.export_dir}`")
            st.rerun()

st.markdown("#### Files of this run")
files = runs.exported_files(project, info.name)
if not files:
    st.caption(f"Nothing exported yet. Files are saved in `{paths.export_dir}`.")
for i, f in enumerate(files):
    name_col, size_col, button_col = st.columns([5, 1.2, 1.4], vertical_alignment="center")
    name_col.markdown(f"`{f.name}`")
    size = f.stat().st_size
    size_col.caption(format_bytes(size))
    if size > DOWNLOAD_LIMIT:  # the browser download goes through memory: use the file
        button_col.caption("in the folder below")
        continue
    button_col.download_button("Download", f.read_bytes, file_name=f.name,
                               mime=MIME.get(f.suffix.lower(), "application/octet-stream"),
                               icon=":material/download:", key=f"fhn-export-dl-{i}-{f.name}",
                               on_click="ignore")
if files:
    st.caption(f"Saved in `{paths.export_dir}`.")
