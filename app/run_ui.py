"""Streamlit glue for training runs, shared by the Train, Results, 3D view and Export pages.

- :func:`job_panel` — the server's training job (running or last): progress bar,
  iteration, loss, validation IoU, live loss/validation plots and Stop; polls the job
  registry once a second while it runs, so a reload re-attaches to it;
- :func:`run_picker` — which run of the project to look at (kept across pages);
- :func:`reference_picker` — an optional full reference class map (error map, scores);
- :func:`metrics_block` / :func:`history_charts` — scores and training curves;
- :func:`scene_png` / :func:`scene_html` — cached 3D renders of a run (app.render3d).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from fhn_core.ensemble import format_seconds
from fhn_core.metrics import Metrics, error_map, evaluate
from io_adapters.project import Project

from . import jobs, runs, ui

__all__ = ["RUN_KEY", "REFERENCE_KEY", "job_panel", "run_picker", "reference_picker",
           "metrics_block", "history_charts", "legend_html", "class_bar_html", "errors_of",
           "scene_png", "scene_html"]

RUN_KEY = "fhn_run"
REFERENCE_KEY = "fhn_reference_path"
_SEEN_ACTIVE = "fhn_job_seen_active"
STATUS_TITLES = {
    "preparing": "Preparing", "training": "Training", "predicting": "Predicting",
    "finished": "Finished", "stopped": "Stopped", "diverged": "Diverged", "failed": "Failed",
}


# --------------------------------------------------------------------------- charts
def history_charts(history: list[dict[str, Any]] | tuple[dict[str, Any], ...],
                   key: str = "hist", validate_every: int | None = None) -> None:
    """Training loss per iteration and validation mean IoU where it was measured."""
    if not history:
        st.caption("No iterations yet.")
        return
    frame = pd.DataFrame(history)
    left, right = st.columns(2)
    with left:
        st.caption("Training loss (partial cross-entropy)")
        st.line_chart(frame.set_index("iteration")[["loss"]], height=220,
                      x_label="iteration", y_label="loss")
    with right:
        st.caption("Validation mean IoU (held-back labels)")
        val = frame.dropna(subset=["val_miou"]) if "val_miou" in frame else frame.iloc[0:0]
        if len(val):
            # a line with points: one validation is one point, which a plain line hides
            st.vega_lite_chart(val[["iteration", "val_miou"]], {
                "mark": {"type": "line", "point": True},
                "height": 220,
                "encoding": {
                    "x": {"field": "iteration", "type": "quantitative",
                          "scale": {"domain": [1, int(frame["iteration"].max())]}},
                    "y": {"field": "val_miou", "type": "quantitative", "title": "mean IoU",
                          "scale": {"domain": [0, 1]}},
                },
            }, width="stretch")
        else:
            if validate_every == 0:
                st.caption("No validation in this run: no labels were held back.")
            elif validate_every:
                st.caption(f"Not measured yet: every {validate_every} iterations and at the "
                           "end, on the held-back labels.")
            else:
                st.caption("Not measured in this run.")


# --------------------------------------------------------------------------- job panel
def _job_status(snap: jobs.JobSnapshot) -> None:
    title = STATUS_TITLES.get(snap.status, snap.status)
    loss = f"{snap.loss:.4f}" if snap.loss is not None else "-"
    val = f"{snap.val_miou:.3f}" if snap.val_miou is not None else "-"
    left = (f" · about {format_seconds(snap.remaining)} left" if snap.status == "training"
            and snap.remaining is not None else "")
    st.progress(snap.fraction, text=f"**{title}** · iteration {snap.iteration} of "
                                    f"{snap.iterations} · loss {loss} · validation IoU {val}"
                                    f"{left}")
    if snap.status == "predicting":
        st.progress(min(1.0, snap.predicted),
                    text=f"Predicting the whole data: {snap.predicted:.0%}")
    cols = st.columns(5)
    cols[0].metric("Iteration", f"{snap.iteration} / {snap.iterations}")
    cols[1].metric("Loss", loss)
    cols[2].metric("Validation mean IoU", val)
    cols[3].metric("Elapsed", f"{snap.elapsed:.0f} s")
    cols[4].metric("Peak memory", f"{snap.peak_memory_mb:,.0f} MB" if snap.peak_memory_mb
                   else "-")


def job_panel(project: Project) -> jobs.JobSnapshot | None:
    """The server's running training job (of any project: one runs at a time), or this
    project's last one; refreshed every second while it runs.

    Returns the snapshot drawn first (None when there is nothing to show).
    """
    job = jobs.registry().current()
    if job is None:
        return None
    first = job.snapshot()
    same_project = Path(first.project).resolve() == Path(project.folder).resolve()
    if not same_project and not first.active:
        return None  # another project's finished run is none of this page's business

    @st.fragment(run_every=1.0 if first.active else None)
    def panel() -> None:
        snap = job.snapshot()
        with st.container(border=True):
            head, stop_col = st.columns([5, 1], vertical_alignment="center")
            where = "" if same_project else f" of project `{snap.project}`"
            head.markdown(f"#### Run `{snap.name}`{where}")
            if snap.active:
                st.session_state[_SEEN_ACTIVE] = snap.name
                stop_col.button("Stop", icon=":material/stop_circle:", key="fhn-train-stop",
                                on_click=job.stop, disabled=job.stop_requested, width="stretch",
                                help="End training after the current iteration; the "
                                     "checkpoint and model are saved and the prediction made")
            _job_status(snap)
            if snap.status == "failed":
                st.error(snap.error, icon=":material/error:")
            elif snap.status == "diverged":
                st.warning(snap.message, icon=":material/warning:")
            elif snap.status in ("finished", "stopped"):
                st.success(f"{snap.message.capitalize()}. The model, checkpoint and prediction "
                           f"are in the project folder (models/{snap.name}, "
                           f"predictions/{snap.name}).", icon=":material/check_circle:")
                if same_project:
                    ui.link("screens/results.py", "See the results", ":material/insights:")
            else:
                st.caption(snap.message)
            history_charts(snap.history, validate_every=snap.validate_every)
        if not snap.active and st.session_state.get(_SEEN_ACTIVE) == snap.name:
            # the job ended while this page watched: redraw the whole page once
            st.session_state.pop(_SEEN_ACTIVE, None)
            if same_project:
                st.session_state[RUN_KEY] = snap.name
            st.rerun()

    panel()
    return first


# --------------------------------------------------------------------------- runs
def run_picker(project: Project, *, need: str = "prediction",
               label: str = "Run") -> runs.RunInfo | None:
    """A select box of the project's runs that have ``need`` ("prediction" or "model");
    the choice is shared by the pages. None (with a hint) when there is none."""
    active = jobs.registry().active()
    found = [r for r in runs.list_runs(project)
             if (r.has_prediction if need == "prediction" else r.has_model)]
    if not found:
        st.info("No trained run with a prediction yet. Train one on the **Train** page.",
                icon=":material/model_training:")
        ui.link("screens/train.py", "Train a network", ":material/model_training:")
        return None
    names = [r.name for r in found]
    chosen = st.session_state.get(RUN_KEY)
    index = names.index(chosen) if chosen in names else 0
    by_name = {r.name: r for r in found}

    def title(name: str) -> str:
        info = by_name[name]
        busy = " - running" if active is not None and active.name == name else ""
        return info.title + busy

    name = st.selectbox(label, names, index=index, format_func=title, key="fhn-run-pick")
    st.session_state[RUN_KEY] = name
    return by_name[name]


# --------------------------------------------------------------------------- reference
@st.cache_data(max_entries=4, show_spinner="Loading the reference...")
def _reference_cached(path: str, stamp: tuple, shape: tuple[int, ...]) -> np.ndarray:
    del stamp  # cache key only
    return runs.load_reference(path, shape)


def reference_picker(project: Project, grid_shape: tuple[int, ...]) -> tuple[np.ndarray | None,
                                                                              str]:
    """An optional full reference class map: (array or None, its path).

    Offered by path; the demo's ground truth is proposed when it is there.
    """
    suggestion = runs.find_reference(project)
    owner_key = f"{REFERENCE_KEY}_project"  # the choice belongs to one project
    if (REFERENCE_KEY not in st.session_state
            or st.session_state.get(owner_key) != str(project.folder)):
        st.session_state[owner_key] = str(project.folder)
        st.session_state[REFERENCE_KEY] = str(suggestion) if suggestion else ""
    # the widget's own key is dropped when another page shows; the choice is kept apart
    widget_key = "fhn-reference-input"
    st.session_state[widget_key] = st.session_state[REFERENCE_KEY]

    def keep() -> None:
        st.session_state[REFERENCE_KEY] = st.session_state[widget_key]

    with st.popover("Reference", icon=":material/fact_check:"):
        st.caption("A full reference class map on the data's grid (a .npy of class ids, a "
                   "class-map GeoTIFF or SEG-Y, or a NetCDF written by an export) to score "
                   "the prediction on every cell. Leave empty for none.")
        st.text_input("Reference file", key=widget_key, on_change=keep,
                      placeholder="/data/reference_classes.npy")
        if suggestion:
            st.caption(f"The demo's ground truth is `{suggestion}`.")
    path = str(st.session_state.get(REFERENCE_KEY) or "").strip()
    if not path:
        return None, ""
    p = Path(path).expanduser()
    try:
        stat = p.stat()
        ref = _reference_cached(str(p), (stat.st_size, stat.st_mtime_ns), tuple(grid_shape))
    except FileNotFoundError:
        st.warning(f"Reference {p} not found; check the path.")
        return None, ""
    except ui.user_errors() as err:
        ui.show_error(err)
        return None, ""
    return ref, str(p)


def errors_of(classes: np.ndarray, reference: np.ndarray | None,
              n_classes: int) -> tuple[np.ndarray | None, Metrics | None, str]:
    """(error map, metrics, problem) of a prediction against a reference (-1 = none)."""
    if reference is None or not (reference >= 0).any():
        return None, None, ""
    try:
        return error_map(classes, reference), evaluate(classes, reference, n_classes), ""
    except ui.user_errors() as err:
        return None, None, str(err)


def legend_html(names: list[str], colours: list[str]) -> str:
    """Class colour swatches with their names, in one line."""
    import html

    items = "".join(
        f"<span style='margin-right:14px;white-space:nowrap'><span style='display:inline-block;"
        f"width:12px;height:12px;border-radius:2px;background:{c};border:1px solid #0003;"
        f"margin-right:5px;vertical-align:-1px'></span>{html.escape(n)}</span>"
        for n, c in zip(names, colours, strict=False))
    return f"<div style='font-size:0.85rem'>{items}</div>"


def class_bar_html(title: str, names: list[str], colours: list[str]) -> str:
    """A categorical colour bar: one block per class, its colour and name, top to bottom."""
    import html

    blocks = "".join(
        f"<div style='display:flex;align-items:center;margin:2px 0'><span style='display:"
        f"inline-block;width:16px;height:26px;background:{c};border:1px solid #0005;"
        f"margin-right:8px'></span><span>{html.escape(n)}</span></div>"
        for n, c in zip(names, colours, strict=False))
    return (f"<div class='fhn-class-bar' style='font-size:0.85rem;margin-top:3rem'>"
            f"<div style='font-weight:600;margin-bottom:4px'>{html.escape(title)}</div>"
            f"{blocks}</div>")


# --------------------------------------------------------------------------- metrics
def metrics_block(metrics: Metrics | None, class_names: list[str], what: str) -> None:
    """Mean IoU, overall accuracy, kappa and a per-class table (IoU, accuracy, cells)."""
    if metrics is None:
        st.caption(f"No {what} to score against.")
        return
    cols = st.columns(4)
    cols[0].metric("Mean IoU", f"{metrics.mean_iou:.3f}")
    cols[1].metric("Overall accuracy", f"{metrics.overall_accuracy:.3f}")
    cols[2].metric("Kappa", f"{metrics.kappa:.3f}")
    cols[3].metric("Cells scored", f"{metrics.n_labelled:,}")
    frame = pd.DataFrame(runs.metrics_rows(metrics, class_names))
    st.dataframe(frame, hide_index=True, width="stretch", column_config={
        "IoU": st.column_config.ProgressColumn("IoU", min_value=0.0, max_value=1.0,
                                               format="%.3f"),
        "accuracy": st.column_config.ProgressColumn("accuracy", min_value=0.0, max_value=1.0,
                                                    format="%.3f"),
    })


def cross_validation_block(record: dict[str, Any] | None) -> None:
    """The auto recipe's scores: cross-validated on spatial folds, network beside baseline."""
    from fhn_core.auto_recipe import BASELINE_WINS

    if not record:
        st.caption("This run trained fixed settings, so it has no cross-validated score; "
                   "train with the auto recipe for one.")
        return
    net, base = record.get("network") or {}, record.get("baseline") or {}
    st.markdown(f"**{record.get('score_line', '')}**")
    if record.get("baseline_wins"):
        st.warning(BASELINE_WINS, icon=":material/balance:")
    mapped, label = runs.map_scores(record)
    if record.get("baseline_weight"):
        st.info(f"This run's map is the mean of the network's class probabilities and the "
                f"per-cell baseline's (the baseline's weight {record['baseline_weight']:g})"
                + ("; its own cross-validated score is the map's." if mapped else
                   "; the scores below are each model's alone."), icon=":material/join:")
    elif mapped:
        st.info(f"This run's map differs from the network's own answer ({label}); its own "
                "cross-validated score is the map's.", icon=":material/join:")
    shown = [("Network", net), ("Baseline", base)] + ([(f"Map ({label})", mapped)]
                                                      if mapped else [])
    cols = st.columns(2 * len(shown))
    for i, (who, scores) in enumerate(shown):
        cols[i].metric(f"{who} kappa", _pm(scores, "kappa"))
        cols[len(shown) + i].metric(f"{who} mean IoU", _pm(scores, "mean_iou"))
    st.dataframe(pd.DataFrame(runs.cross_validation_rows(record)), hide_index=True,
                 width="stretch", column_config={
                     c: st.column_config.NumberColumn(format="%.3f")
                     for c in ("network IoU", "network ±", "baseline IoU", "baseline ±",
                               "map IoU", "map ±")})
    folds = record.get("folds") or {}
    st.caption(
        f"Scores on labels the model did not train on: {folds.get('n_folds', '?')} spatial "
        f"folds of your labels (blocks of {folds.get('block_side', '?')} cells, "
        f"{folds.get('buffer', '?')}-cell gap), mean ± sd over the folds. Baseline: "
        f"{record.get('baseline_name', '')}. {record.get('why', '')}")


def _pm(scores: dict[str, Any], key: str) -> str:
    if scores.get(key) is None:
        return "–"
    return f"{scores[key]:.2f} ± {scores.get(key + '_sd') or 0.0:.2f}"


# --------------------------------------------------------------------------- 3D scenes
def _scene(folder: str, run: str, colour_by: str, reference: str, positions: tuple,
           surfaces: tuple[int, ...], exaggeration: float, signature: tuple,
           categorical_bar: bool = True):
    """A render3d plotter for one run (built fresh; the callers cache what it renders)."""
    from . import render3d

    project = Project.open(folder)
    da = ui.load_grid(project, quiet=True)
    if da is None:
        raise runs.DataError(f"the data of project {folder} cannot be loaded")
    info = runs.read_run(project, run)
    prediction = runs.load_prediction(project, run)
    names, colours = list(info.class_names or []), list(info.class_colours or [])
    classes = np.asarray(prediction.classes)
    if colour_by == "prediction":
        layer = render3d.class_layer(classes, names, colours)
    elif colour_by == "uncertainty":
        layer = render3d.entropy_layer(np.asarray(prediction.entropy))
    elif colour_by in ("error-reference", "error-validation"):
        if colour_by == "error-reference":
            ref = runs.load_reference(reference, classes.shape)
            title = "error vs reference"
        else:
            ref = runs.load_split_labels(project, run)[1]
            title = "error vs validation labels"
            if ref is None:
                raise runs.DataError("this run has no validation labels")
        layer = render3d.error_layer(error_map(classes, ref), title)
    else:
        layer = render3d.data_layer(da)
    geometry = render3d.geometry_of(da, exaggeration)
    # surfaces on a coarser grid: smooth enough to read, small enough for the browser
    meshes = render3d.class_surfaces(geometry, classes, list(surfaces),
                                     stride=max(1, int(np.ceil(max(classes.shape) / 100))))
    return render3d.build_plotter(da, layer, positions=positions or None, surfaces=meshes,
                                  surface_colours=colours, geometry=geometry,
                                  scalar_bar=categorical_bar or not layer.categorical)


@st.cache_data(max_entries=8, show_spinner="Rendering the 3D view...")
def scene_png(folder: str, run: str, colour_by: str, reference: str, positions: tuple,
              surfaces: tuple[int, ...], exaggeration: float, signature: tuple) -> bytes:
    """The 3D view of a run as a PNG (off-screen render); cached per setting."""
    from . import render3d

    plotter = _scene(folder, run, colour_by, reference, positions, surfaces, exaggeration,
                     signature)
    return render3d.render_png(plotter)


@st.cache_data(max_entries=4, show_spinner="Preparing the interactive 3D view...")
def scene_html(folder: str, run: str, colour_by: str, reference: str, positions: tuple,
               surfaces: tuple[int, ...], exaggeration: float, signature: tuple) -> str:
    """The 3D view of a run as a self-contained vtk.js page; cached per setting."""
    from . import render3d

    # vtk.js draws a scalar bar as numbers (0-4 for five classes): the page shows the
    # class bar beside the scene instead (:func:`class_bar_html`)
    plotter = _scene(folder, run, colour_by, reference, positions, surfaces, exaggeration,
                     signature, categorical_bar=False)
    try:
        return render3d.interactive_html(plotter)
    finally:
        plotter.close()


def diagnostics_block(record: dict[str, Any] | None) -> None:
    """The paper's Fig. 3 properties of a run's trained network, as its run record has them."""
    from fhn_core.diagnostics import Diagnostics

    if not record:
        st.caption("This run recorded no network diagnostics (it predates them).")
        return
    d = Diagnostics.from_dict(record)
    cols = st.columns(3)
    cols[0].metric("Energy growth", f"{d.energy_growth:.3g}",
                   help="||g(X)|| / ||X|| on the centred training window")
    cols[1].metric("Stability", f"{d.stability:.3g} ± {d.stability_std:.2g}",
                   help=f"||g(X) - g(X + dX)|| / ||dX||, ||dX|| = {d.perturbation:g} ||X||, "
                        f"mean ± std over {d.draws} draws")
    cols[2].metric("Invertibility error", f"{d.invertibility_error:.2e}",
                   help="||g^-1(g(X)) - X|| / ||X||: how exactly the trained network can be "
                        "run backwards in float32")
    st.caption("The three properties of the paper's Fig. 3 (section 2.1) for the network this "
               "run trained; `fhn diagnose MODEL --sweep-h` gives them over h.")


def streamed_note(project: Project, info: runs.RunInfo) -> None:
    """Where a run on a survey store put its prediction, and what the page shows of it."""
    store = runs.prediction_store(project, info.name)
    st.info(f"Run {info.name} predicted the survey block by block into `{store}` (classes, "
            "probabilities and entropy, Zarr). The sections below are read from it as they "
            "are shown; its scores are at the labelled cells. **Export** writes it as SEG-Y "
            "with the source's headers, chunk by chunk.", icon=":material/info:")
