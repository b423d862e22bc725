"""Wells & validation: boreholes (CSV import or typed in) and the train/validation split."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st

from app import ui, viewer, views
from io_adapters.errors import DataError
from io_adapters.gridmatch import spatial_dims
from io_adapters.project import plain_file_name

st.subheader("Wells & validation")

project, grid, editor = ui.open_label_editor()

seismic = views.is_volume(grid)
unit = str(grid.attrs.get("vertical_unit", "ms"))
message = st.session_state.pop("fhn-wells-message", None)
if message:
    st.success(message, icon=":material/check_circle:")

wells_col, split_col = st.columns([1.25, 1], gap="large")

# ----------------------------------------------------------------------------- wells
with wells_col:
    st.markdown("#### Boreholes")
    radius = st.number_input(
        "Radius (traces / cells around each well that get its labels)", 0.0, 25.0, 2.0, 0.5,
        key="fhn-well-radius")
    csv_tab, type_tab = st.tabs(["Import a CSV", "Add a well"])
    with csv_tab:
        columns = ("well, iline, xline (or x, y), top, base, class" if seismic
                   else "well, x, y (or row, col), class")
        st.caption(f"One row per interval. Columns: `{columns}`"
                   + (f"; top and base in {unit}." if seismic else "."))
        with st.form("fhn-well-csv", border=False, clear_on_submit=True):
            path = st.text_input("CSV path on this machine", key="fhn-well-csv-path")
            upload = st.file_uploader("...or upload the CSV", type=["csv", "txt"],
                                      key="fhn-well-csv-upload")
            if st.form_submit_button("Import wells", icon=":material/upload_file:"):
                def do_import() -> int:
                    if upload is not None:
                        with tempfile.TemporaryDirectory() as tmp:
                            target = Path(tmp) / plain_file_name(upload.name)
                            target.write_bytes(upload.getvalue())
                            return editor.import_boreholes(target, radius)
                    if not path.strip():
                        raise DataError("give the CSV's path or upload it")
                    return editor.import_boreholes(path.strip(), radius)

                n = ui.run_action(do_import)
                if n is not None:
                    st.session_state["fhn-wells-message"] = (
                        f"Imported wells: {n:,} cells labelled — saved")
                    st.rerun()
    with type_tab:
        with st.form("fhn-well-add", border=False):
            name = st.text_input("Well name", key="fhn-well-name", placeholder="W-07")
            c1, c2 = st.columns(2)
            if seismic:
                il = grid.coords["iline"].values
                xl = grid.coords["xline"].values
                by = st.radio("Position by", ["inline / crossline", "map x / y"],
                              horizontal=True, key="fhn-well-by")
                a = c1.number_input("Inline or x", value=float(il[len(il) // 2]),
                                    key="fhn-well-a", format="%.2f")
                b = c2.number_input("Crossline or y", value=float(xl[len(xl) // 2]),
                                    key="fhn-well-b", format="%.2f")
                position = ({"iline": int(a), "xline": int(b)} if by.startswith("inline")
                            else {"x": a, "y": b})
            else:
                by = st.radio("Position by", ["map x / y", "row / col"], horizontal=True,
                              key="fhn-well-by")
                a = c1.number_input("x or row", value=0.0, key="fhn-well-a", format="%.3f")
                b = c2.number_input("y or col", value=0.0, key="fhn-well-b", format="%.3f")
                position = ({"x": a, "y": b} if by.startswith("map")
                            else {"row": int(a), "col": int(b)})
            names = editor.labels.class_names
            if seismic:
                st.caption(f"Intervals (top and base in {unit}; class from the class table)")
                z = grid.coords[spatial_dims(grid)[2]].values
                start = pd.DataFrame({"top": [float(z[0])], "base": [float(z[-1])],
                                      "class": [names[0] if names else ""]})
            else:
                st.caption("Class of the well (a disk of the radius is labelled)")
                start = pd.DataFrame({"top": [0.0], "base": [0.0],
                                      "class": [names[0] if names else ""]})
            table = st.data_editor(
                start, num_rows="dynamic", key="fhn-well-intervals", width="stretch",
                column_config={
                    "class": st.column_config.SelectboxColumn("class", options=names,
                                                              required=True),
                    "top": st.column_config.NumberColumn(f"top ({unit})" if seismic else "top"),
                    "base": st.column_config.NumberColumn(f"base ({unit})" if seismic
                                                          else "base"),
                },
            )
            if st.form_submit_button("Add well", icon=":material/add_location:"):
                intervals = [(float(r.top), float(r.base), str(r["class"]))
                             for _, r in table.dropna().iterrows()]
                n = ui.run_action(lambda: editor.add_borehole(name, position, intervals,
                                                              radius))
                if n is not None:
                    st.session_state["fhn-wells-message"] = (
                        f"Added well {name}: {n:,} cells labelled — saved")
                    st.rerun()

    if editor.wells:
        st.markdown(f"**{len(editor.wells)} wells**")
        rows = []
        for w in editor.wells:
            intervals = "; ".join(
                f"{t:g}-{b:g} {editor.labels.class_names[c] if 0 <= c < len(names) else c}"
                for t, b, c in w.intervals)
            if seismic:
                where = (f"IL {grid.coords['iline'].values[w.position[0]]}, "
                         f"XL {grid.coords['xline'].values[w.position[1]]}")
            else:
                ys, _ = viewer.axis_coordinates(grid, 0)
                xs, _ = viewer.axis_coordinates(grid, 1)
                where = (f"x {ui.format_coordinate(xs[w.position[1]])}, "
                         f"y {ui.format_coordinate(ys[w.position[0]])} "
                         f"(row {w.position[0]}, col {w.position[1]})")
            rows.append({"well": w.name, "position": where, "intervals": intervals or "-"})
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
        with st.popover("Remove a well marker", icon=":material/wrong_location:"):
            gone = st.selectbox("Well", [w.name for w in editor.wells], key="fhn-well-gone")
            st.caption("Its labels stay; erase them on the sections if they are wrong.")
            if st.button("Remove", key="fhn-well-remove"):
                ui.run_action(lambda: editor.remove_well(gone), f"Removed {gone}")
                st.rerun()
    else:
        st.info("No wells yet.")

# ----------------------------------------------------------------------------- split
with split_col:
    st.markdown("#### Train / validation split")
    st.caption("Validation labels are held back from training and used to measure the "
               "network on labels it has not seen.")
    mode = st.radio("Hold back", ["at random", "by region"], horizontal=True,
                    key="fhn-split-mode")
    if mode == "at random":
        c1, c2 = st.columns(2)
        fraction = c1.slider("Fraction for validation", 0.05, 0.5, 0.2, 0.05,
                             key="fhn-split-frac")
        seed = c2.number_input("Seed", 0, 10_000, 0, key="fhn-split-seed")
        if st.button("Apply random split", icon=":material/shuffle:", key="fhn-split-random"):
            ui.run_action(lambda: editor.split_random(fraction, int(seed)), "Split saved")
    else:
        axes = editor.split_axes()
        axis = st.selectbox("Along", axes, key="fhn-split-axis")
        coords, along_unit = viewer.axis_coordinates(grid, axes.index(axis))
        n = len(coords)
        position = st.select_slider(
            "Validation from", options=list(range(1, max(2, n))), value=max(1, (3 * n) // 4),
            format_func=lambda i: f"{ui.format_coordinate(coords[min(i, n - 1)])} "
                                  f"{along_unit}".strip(),
            key=f"fhn-split-pos-{axis}",
            help="Labels from this position on (in survey coordinates) are for validation")
        st.caption(f"{axis} {ui.format_coordinate(coords[min(position, n - 1)])} "
                   f"{along_unit} and beyond (index {position} of {n - 1})")
        if st.button("Apply regional split", icon=":material/crop:", key="fhn-split-region"):
            ui.run_action(lambda: editor.split_by_region(axis, position), "Split saved")
    if editor.labels.split is not None and st.button("Clear split", key="fhn-split-clear"):
        ui.run_action(editor.clear_split, "Split cleared: every label trains")
    st.metric("Labelled cells", f"{editor.total():,}")
    st.markdown(ui.class_legend_html(editor.counts_table()), unsafe_allow_html=True)
    if editor.labels.split is None:
        st.caption("No split yet: every label is used for training.")
