"""Results: the prediction over the data, error maps, uncertainty and scores of a run."""

from __future__ import annotations

import streamlit as st

from app import overlays, run_ui, runs, ui, viewer, views
from app.layout import grid_of
from fhn_core.metrics import error_map

st.subheader("Results")

project, grid = ui.open_project_and_grid()

pick_col, ref_col = st.columns([5, 1], vertical_alignment="bottom")
with pick_col:
    info = run_ui.run_picker(project)
if info is None:
    st.stop()
# a run on a survey store was predicted block by block into Zarr: its sections are read
# from there as they are shown; error maps over the whole survey are not made
streamed = runs.prediction_store(project, info.name) is not None
prediction = ui.run_action(lambda: runs.load_prediction(project, info.name))
split = (None, None) if streamed else ui.run_action(
    lambda: runs.load_split_labels(project, info.name))
scores = ui.run_action(lambda: runs.load_metrics(project, info.name))
if prediction is None or split is None or scores is None:
    st.stop()
if streamed:
    run_ui.streamed_note(project, info)
classes = prediction.classes
grid_shape = grid_of(grid)[1]
if classes.shape != grid_shape:
    st.error(f"Run {info.name} predicted a grid of {classes.shape} but the project's data is "
             f"{grid_shape}; the data changed since. Train again on this data.")
    st.stop()
names = list(info.class_names or [])
colours = list(info.class_colours or [])
k = int(prediction.probabilities.shape[0])
training, validation = split
reference, reference_path = None, None
if not streamed:
    with ref_col:
        reference, reference_path = run_ui.reference_picker(project, classes.shape)
ref_errors, ref_metrics, problem = run_ui.errors_of(classes, reference, k)
if problem:
    st.error(problem)
val_errors = error_map(classes, validation) if validation is not None else None

# ----------------------------------------------------------------------------- sections
settings = views.default_settings(grid)
head, display_col = st.columns([8, 1], vertical_alignment="bottom")
with head:
    view = viewer.view_controls(grid, key="view", project=project)  # the viewer's sections
    viewer.layer_controls(grid, settings, key="results-display")
with display_col:
    viewer.display_popover(grid, settings, key="results-display")
clips = viewer.clip_ranges(grid, settings, ui.data_signature(project))
positions = viewer.section_positions(grid, key="view")
settings.max_width = min(settings.max_width, 560)  # two figures with axes side by side

options = {"uncertainty": "Uncertainty"}
if val_errors is not None:
    options = {"validation": "Errors vs validation labels", **options}
if ref_errors is not None:
    options = {"reference": "Errors vs reference", **options}
right_key = "fhn-results-right"
if st.session_state.get(right_key) not in options:
    st.session_state[right_key] = next(iter(options))

left, right = st.columns(2, gap="medium")
with left:
    st.markdown("**Prediction**")
    image, _ = views.render_section(
        grid, view, settings, clips, positions=positions,
        extra_overlays=[overlays.class_overlay(classes, view, colours, settings.opacity)])
    figure = views.frame_section(image, grid, view, views.ColourBar(
        "class", classes=tuple(zip(names, colours, strict=False)))).image
    ui.image(figure)
    section_name = view.kind if view.axis is None else f"{view.kind}-{view.index}"
    st.download_button("Save figure", ui.png_bytes(figure), icon=":material/download:",
                       file_name=f"{info.name}-prediction-{section_name}.png",
                       mime="image/png", key="fhn-results-fig-left", on_click="ignore")
    shown = overlays.section_of(classes, view)
    st.markdown(ui.class_legend_html([
        {"class": n, "colour": c, "labelled": int((shown == i).sum()),
         "training": 0, "validation": 0} for i, (n, c) in enumerate(zip(names, colours,
                                                                        strict=False))]),
        unsafe_allow_html=True)
    st.caption("cells of each class on this section")
with right:
    choice = st.segmented_control("Show", list(options), format_func=options.get,
                                  key=right_key, required=True) or next(iter(options))
    if choice == "uncertainty":
        over = overlays.entropy_overlay(prediction.entropy, view)
        bar = views.ColourBar("entropy", "magma", (0.0, 1.0))
        caption = ("Normalised entropy of the class probabilities: dark = certain, bright = "
                   "uncertain (1 = all classes equally likely).")
    else:
        errors = ref_errors if choice == "reference" else val_errors
        over = overlays.error_overlay(errors, view)
        bar = views.ColourBar("error", classes=(("right", overlays.ERROR_RIGHT),
                                                ("wrong", overlays.ERROR_WRONG)))
        right_cells, wrong_cells = overlays.error_counts(overlays.section_of(errors, view))
        what = "the reference" if choice == "reference" else "validation labels"
        caption = (f"Green right, red wrong against {what}: {right_cells:,} right and "
                   f"{wrong_cells:,} wrong cells on this section.")
    image, _ = views.render_section(grid, view, settings, clips, positions=positions,
                                    extra_overlays=[over])
    figure = views.frame_section(image, grid, view, bar).image
    ui.image(figure)
    st.download_button("Save figure", ui.png_bytes(figure), icon=":material/download:",
                       file_name=f"{info.name}-{choice}-{section_name}.png",
                       mime="image/png", key="fhn-results-fig-right", on_click="ignore")
    st.caption(caption)

# ----------------------------------------------------------------------------- scores
st.markdown("#### Scores")
if info.recipe == "auto" or info.cross_validation:
    st.markdown("##### Cross-validated (spatial folds of your labels)")
    run_ui.cross_validation_block(info.cross_validation)
    if runs.has_baseline(project, info.name):
        formats = runs.export_formats(grid)
        b1, b2 = st.columns([1, 3], vertical_alignment="center")
        fmt = b2.radio("Baseline export format", formats, horizontal=True,
                       key="fhn-results-baseline-format", label_visibility="collapsed",
                       format_func=lambda s: f"{runs.FORMAT_TITLES[s]} ({s})")
        if b1.button("Export the baseline's classes", icon=":material/ios_share:",
                     key="fhn-results-baseline-export"):
            written = ui.run_action(lambda: runs.export_run(project, info.name, grid,
                                                            "classes", fmt, source="baseline"))
            if written is not None:
                st.success(f"Wrote {written.name} into `{written.parent}`")
    st.markdown("##### This run's own labels")
tabs = []
if scores.get("validation") is not None or validation is not None:
    tabs.append(("validation", "Validation labels (held back)", scores.get("validation")))
if reference is not None:
    tabs.append(("reference", f"Reference ({reference_path})", ref_metrics))
tabs.append(("training", "Training labels", scores.get("training")))
for (what, _title, metrics), tab in zip(tabs, st.tabs([t[1] for t in tabs]), strict=True):
    with tab:
        run_ui.metrics_block(metrics, names, {"validation": "validation labels",
                                              "reference": "reference",
                                              "training": "training labels"}[what])

with st.expander("Training curves", icon=":material/show_chart:"):
    history = [{"iteration": h["iteration"], "loss": h["loss"],
                "val_miou": h.get("val_miou")} for h in info.history or []]
    run_ui.history_charts(history, validate_every=int((info.config or {}).get(
        "validate_every", 0) or 0))
    st.caption(info.message)

with st.expander("Network diagnostics (paper, Fig. 3)", icon=":material/monitor_heart:"):
    run_ui.diagnostics_block(info.diagnostics)

ui.link("screens/view3d.py", "Look at it in 3D", ":material/view_in_ar:")
ui.link("screens/export.py", "Export the prediction", ":material/ios_share:")
