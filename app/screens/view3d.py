"""3D view: orthogonal slices of the data, prediction, error or uncertainty, class surfaces."""

from __future__ import annotations

import streamlit as st

from app import run_ui, runs, ui, viewer, views
from app.layout import grid_of

st.subheader("3D view")

project, grid = ui.open_project_and_grid()

pick_col, ref_col = st.columns([5, 1], vertical_alignment="bottom")
with pick_col:
    info = run_ui.run_picker(project)
if info is None:
    st.stop()
if project.labels_as_cells(grid):  # the 3D scene holds the whole volume in memory
    st.info("The 3D view holds the whole volume in memory, which a survey of this size does "
            "not fit. Look at its sections on **Results**, or export the prediction as "
            "SEG-Y and open it in OpendTect or Petrel.", icon=":material/info:")
    ui.link("screens/results.py", "Sections on Results", ":material/insights:")
    st.stop()
dims, shape = grid_of(grid)
with ref_col:
    reference, reference_path = run_ui.reference_picker(project, shape)
names = list(info.class_names or [])
has_validation = runs.RunPaths.of(project, info.name).prediction_dir.joinpath(
    "validation_labels.npy").is_file()

layers = {"data": "Data", "prediction": "Prediction"}
if reference is not None:
    layers["error-reference"] = "Error vs reference"
if has_validation:
    layers["error-validation"] = "Error vs validation labels"
layers["uncertainty"] = "Uncertainty"
if st.session_state.get("fhn-3d-layer") not in layers:
    st.session_state["fhn-3d-layer"] = "prediction"

volume = views.is_volume(grid)
controls, scene_col, bar_col = st.columns([1, 3.2, 0.7], gap="medium")
with controls:
    colour_by = st.radio("Colour the slices by", list(layers), format_func=layers.get,
                         key="fhn-3d-layer")
    positions: tuple[int, ...] = ()
    surfaces: tuple[int, ...] = ()
    exaggeration = 1.0
    if volume:
        start = viewer.section_positions(grid, key="view")  # where the 2D viewer is
        titles = [k.title for k in views.view_kinds(grid)]
        picked = []
        for a, title in enumerate(titles):
            coords, unit = viewer.axis_coordinates(grid, a)
            key = f"fhn-3d-pos-{a}"
            if key not in st.session_state:
                st.session_state[key] = int(min(start.get(a, len(coords) // 2), len(coords) - 1))
            picked.append(st.select_slider(
                f"{title} ({unit})" if unit else title, options=list(range(len(coords))),
                format_func=lambda i, c=coords, u=unit: f"{ui.format_coordinate(c[i])} {u}".strip(),
                key=key))
        positions = tuple(int(p) for p in picked)
        st.caption("Slice positions in survey coordinates (indices "
                   f"{', '.join(map(str, positions))})")
        surfaces = tuple(st.multiselect(
            "Class surfaces", range(len(names)), format_func=names.__getitem__,
            key="fhn-3d-surfaces", help="Boundaries of the predicted classes, see-through"))
        exaggeration = st.slider("Vertical exaggeration", 0.25, 4.0, 1.0, 0.25,
                                 key="fhn-3d-stretch")
    interactive = st.toggle("Interactive (rotate, zoom)", value=True, key="fhn-3d-interactive",
                            help="Off: a rendered image")



def class_bar_of(layer: str) -> tuple[str, list[str], list[str]] | None:
    """(title, names, colours) of a categorical layer's colour bar; None for the others."""
    from app.render3d import ERROR_COLOURS, ERROR_NAMES

    if layer == "prediction":
        return "prediction", names, list(info.class_colours or [])
    if layer.startswith("error"):
        return layers[layer].lower(), list(ERROR_NAMES), list(ERROR_COLOURS)
    return None


signature = (runs.RunPaths.of(project, info.name).metrics_file.stat().st_mtime_ns,
             ui.data_signature(project))
args = (str(project.folder), info.name, colour_by, reference_path, positions, surfaces,
        float(exaggeration), signature)

with scene_col:
    shown = False
    if interactive:
        try:
            import pyvista as pv
            import stpyvista  # components-v2: importable only inside a running app

            html = run_ui.scene_html(*args)
            holder = pv.Plotter(off_screen=True, window_size=[900, 640])
            holder._fhn_html = html  # the cached, offline-safe export of this scene
            # serve our export instead of stpyvista's, which forks the server per view
            stpyvista._trame_html = lambda plotter, **_: plotter._fhn_html
            stpyvista.stpyvista(holder, backend="trame", key="fhn-3d-scene")
            holder.close()
            shown = True
            from app.render3d import axes_key

            st.caption("Drag to rotate, scroll to zoom, shift-drag to pan."
                       + (f" {axes_key(grid)} Switch *Interactive* off for the "
                          "image with ticked axes." if volume else ""))
            categories = class_bar_of(colour_by)
            if categories is not None:  # the scene has no bar of its own for classes
                bar_col.markdown(run_ui.class_bar_html(*categories), unsafe_allow_html=True)
        except ui.user_errors() as err:
            ui.show_error(err)
            st.stop()
        except Exception as err:  # noqa: BLE001 - any failure: fall back to the image
            st.caption(f"The interactive view is not available here ({type(err).__name__}: "
                       f"{err}); showing a rendered image.")
    if not shown:
        png = ui.run_action(lambda: run_ui.scene_png(*args))
        if png is None:
            st.stop()
        ui.image(png, caption=f"{layers[colour_by]} on orthogonal slices" if volume
                 else layers[colour_by])
        st.download_button("Download image", png, file_name=f"{info.name}-{colour_by}.png",
                           mime="image/png", icon=":material/download:", key="fhn-3d-png")
    if colour_by == "prediction" or surfaces:
        st.markdown(run_ui.legend_html(names, list(info.class_colours or [])),
                    unsafe_allow_html=True)
    elif colour_by.startswith("error"):
        st.caption("Green: right, red: wrong, grey: not evaluated.")
    elif colour_by == "uncertainty":
        st.caption("Normalised entropy: dark = certain, bright = uncertain.")
