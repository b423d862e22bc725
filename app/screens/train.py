"""Train: design the network, check it fits in memory, train in the background, watch it."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app import jobs, run_ui, runs, ui
from app.demo import demo_recipe
from app.training_task import class_priors_for
from fhn_core.auto_recipe import AUTO_ITERATIONS, DEFAULT_BUDGET_MINUTES, candidates_for
from fhn_core.coarse import haar_route
from fhn_core.ensemble import format_seconds
from fhn_core.memory import GB
from fhn_core.memory_check import check_memory
from fhn_core.training import TrainConfig

DESIGN_KEY = "fhn_train_design"      # (choice, NetworkDesign, suggested TrainConfig | None)
DESIGN_DATA_KEY = "fhn_train_design_data"  # the data the design was chosen for
VERSION_KEY = "fhn_train_version"    # re-keys the design widgets when a preset is chosen
PRESET_KEY = "fhn-train-preset"
AUGMENT_KEY = "fhn-train-augment"
ORDER_KEY = "fhn-train-order"
RECIPE_KEY = "fhn-train-recipe"
RECIPES = {"auto": "Auto: chosen by cross-validation on your labels",
           "fixed": "Fixed: exactly the settings below"}
TIME_KEY = "fhn_train_time"         # (settings it was measured for, RunTime)



def validation_summary(held_back: bool, fraction: float, every: int) -> str:
    """What the validation settings do, in words."""
    if held_back:
        return (f"validation on the held-back labels of Wells & validation every {every} "
                "iterations and at the end")
    if fraction > 0:
        return (f"validation on a random {fraction:.0%} of each class's labels, held back from "
                f"training, every {every} iterations and at the end")
    return ("no validation: every label trains (hold some back with the validation share "
            "above or a split on Wells & validation to measure the network)")


st.subheader("Train")

project, grid, editor = ui.open_label_editor()

run_ui.job_panel(project)
busy = jobs.registry().active() is not None

n_classes = len(editor.labels.classes)
labelled = editor.total()
if n_classes == 0 or labelled == 0:
    st.warning("There are no labels to train on yet: paint some on **View & label** or import "
               "wells on **Wells & validation**.", icon=":material/brush:")
    ui.link("screens/label.py", "View and label the data", ":material/brush:")
    st.stop()

shapes = ui.run_action(lambda: runs.layout_shapes(grid))
choices = ui.run_action(lambda: runs.design_choices(grid, n_classes))
if not shapes or not choices:
    st.stop()


def choose_preset() -> None:
    key = st.session_state.get(PRESET_KEY, "default")
    design, config = choices.get(key, choices["default"])
    st.session_state[DESIGN_KEY] = (key, design, config)
    st.session_state[VERSION_KEY] = st.session_state.get(VERSION_KEY, 0) + 1
    # the demo's recipe also says how to predict; other presets leave both off
    recipe = demo_recipe() if key == "demo" else None
    st.session_state[AUGMENT_KEY] = bool(recipe and recipe.augment)
    st.session_state[ORDER_KEY] = bool(recipe and recipe.stratigraphic_order)
    # a design picked from the list is a fixed choice; the default leaves auto to choose
    st.session_state[RECIPE_KEY] = "auto" if key == "default" else "fixed"


# the design chosen belongs to the data it was chosen for: another project (or new data)
# starts from its own presets (a 3D seismic design does not fit a map)
data_key = ui.data_signature(project)
if (DESIGN_KEY not in st.session_state or st.session_state[DESIGN_KEY][0] not in choices
        or st.session_state.get(DESIGN_DATA_KEY) != data_key):
    st.session_state[DESIGN_DATA_KEY] = data_key
    first = "demo" if "demo" in choices and runs.find_reference(project) else "default"
    st.session_state[PRESET_KEY] = first
    choose_preset()
_, base, suggested = st.session_state[DESIGN_KEY]
version = st.session_state.get(VERSION_KEY, 0)
layout = shapes[base.spatial_dims]
base_config = suggested or TrainConfig()

recipe_col, budget_col = st.columns([3, 1], vertical_alignment="bottom")
on_store = grid.chunks is not None  # cross-validation reads the whole survey: not on a store
if on_store:
    st.session_state[RECIPE_KEY] = "fixed"
recipe = recipe_col.radio(
    "Recipe", list(RECIPES), format_func=RECIPES.get, horizontal=True, key=RECIPE_KEY,
    disabled=on_store,
    help=("A survey store trains with the settings below (the auto recipe cross-validates "
          "on a survey held in memory). " if on_store else "")
    + "Auto tries a small fixed set of input channels and design sizes on spatial folds "
         "of your labels (whole regions held out, never neighbouring cells), picks the "
         "iterations where the held-out score peaks, trains the winner on all labels and "
         "shows its cross-validated score beside a per-cell random forest's. What a "
         "candidate sets (seismic: windows, learning rate, class weights, weight "
         "averaging) replaces the page's setting; the rest (device, ...) is used as set.")
auto = recipe == "auto"
budget_minutes = budget_col.number_input(
    "Time budget (minutes)", min_value=1.0, max_value=24 * 60.0,
    value=DEFAULT_BUDGET_MINUTES, step=5.0, key="fhn-train-budget-minutes", disabled=not auto,
    help="Auto stops trying further candidates when their cross-validation and the final "
         "training would pass this time")
if auto:
    st.caption("Auto chooses among: " + "; ".join(
        f"**{c.name}** ({c.why})" for c in candidates_for(layout.kind))
        + f"; iterations up to {AUTO_ITERATIONS}. The design, input channels and iterations "
        "below are not used.")

design_col, settings_col = st.columns([1.15, 1], gap="large")

# ----------------------------------------------------------------------------- design
with design_col:
    st.markdown("#### Network design")
    st.selectbox("Start from", list(choices), key=PRESET_KEY, on_change=choose_preset,
                 format_func=lambda k: runs.DESIGN_CHOICES.get(k, k),
                 help="Designs after the paper's examples, the demo's tuned recipe, or a "
                      "small network sized for this data")
    st.caption("Segments of consecutive layers: the Haar **level** (0 = full resolution; "
               "levels change by one between segments; ending above 0 puts the output and "
               "the labels on a 2^level coarser grid, section 3.4), the number of "
               "**layers** and the **block rank** of their kernels (eq. 3.17).")
    rows = st.data_editor(
        pd.DataFrame(runs.segment_rows(base)), num_rows="dynamic", hide_index=True,
        disabled=auto,
        key=f"fhn-train-segments-{version}", width="stretch",
        column_config={
            "level": st.column_config.NumberColumn("level", min_value=0, max_value=6, step=1,
                                                   required=True),
            "layers": st.column_config.NumberColumn("layers", min_value=1, max_value=64,
                                                    step=1, required=True),
            "rank": st.column_config.NumberColumn("block rank", min_value=1, max_value=512,
                                                  step=1, required=True),
        },
    )
    vertical = layout.kind == "seismic" and st.toggle(
        "Sample time as an input channel", value=True, key="fhn-train-vertical",
        disabled=auto,
        help="Adds each sample's two-way time (or depth) as a second input channel. With "
             "labels from a few wells the network then knows where in the section it is, "
             "and generalises between the wells far better.")
    # a survey store (read chunk by chunk) trains on amplitude and time, predicts unflipped
    chunked = grid.chunks is not None
    not_chunked = " Not available on a survey store (read chunk by chunk)." if chunked else ""
    envelope = layout.kind == "seismic" and st.toggle(
        "Envelope as an input channel", value=not chunked, key="fhn-train-envelope",
        disabled=auto or chunked,
        help="Adds the envelope (instantaneous amplitude) of each trace as an input channel: "
             "reflection strength without the wavelet's oscillation, which tells transparent "
             "units (shale, salt) from bright or thinly bedded ones away from the wells."
             + not_chunked)
    semblance = layout.kind == "seismic" and st.toggle(
        "Semblance as an input channel", value=not chunked, key="fhn-train-semblance",
        disabled=auto or chunked,
        help="Adds the semblance (coherence of neighbouring traces) as an input channel: high "
             "where reflectors continue, low in chaotic bodies such as salt, which a quiet "
             "shale and a salt interior otherwise share." + not_chunked)
    change = layout.kind == "dates" and st.toggle(
        "Change channels (t2 - t1 and its magnitude)", value=False, key="fhn-train-change",
        disabled=auto,
        help="Adds the per-band differences of the two dates and the length of the change "
             "vector ||t2 - t1|| as input channels (change vector analysis). From a few "
             "labelled points the network does not learn to form that length itself; on the "
             "Taizhou pair it helped on four of five training-half splits.")
    band_axis = layout.spatial_dims == 3 and layout.kind in ("dates", "hyperspectral")
    every_slice = band_axis and st.toggle(
        "Labels on every band slice", value=False, key="fhn-train-every-slice",
        help="The 3D layout makes the bands an axis. The paper embeds the labels at one band "
             "slice (eq. 3.20); this labels every slice with them and averages the class "
             "scores over the bands when predicting, so every slice's output is trained.")
    predict_flips = st.toggle(
        "Average the prediction over flips", key=AUGMENT_KEY, disabled=chunked,
        help="Predicts the data once per horizontal flip and transpose the network was trained "
             "with and averages the class scores (test-time augmentation): usually a little "
             "more accurate and smoother, at 4-8 times the prediction time." + not_chunked)
    predict_flips = predict_flips and not chunked
    superposition = layout.kind == "seismic" and st.toggle(
        "Keep the units in their top-to-bottom order", key=ORDER_KEY,
        help="Law of superposition: the classes are read as layers whose top-to-bottom order "
             "the labels show (wells or painted sections). Down every trace the prediction "
             "then keeps that order, each class at most once, choosing the most probable "
             "such sequence. For stratigraphic units; leave it off for facies that repeat.")
    scene_mix = layout.kind == "dates" and st.toggle(
        "Re-estimate the class mix on the scene", key="fhn-train-scene-mix",
        value=class_priors_for(layout.kind) == "scene",
        help="Your labels are points drawn per class, not in the scene's proportions, so the "
             "network learns as if every class were equally common. The prediction then "
             "estimates each class's share of the scene from the network's own answers (EM) "
             "and decides with it. Off: decide with equal shares.")
    scheduler = chunked and st.text_input(
        "Predict on a Dask cluster (scheduler address)", key="fhn-train-scheduler",
        placeholder="tcp://host:8786",
        help="The block-by-block prediction of the survey store runs on the workers of this "
             "running dask.distributed scheduler (they must read the project folder at the "
             "same path). Empty: on this machine.")
    data_channels = layout.channels + int(vertical) + int(envelope) + int(semblance)
    if change:  # 2D: a difference per band and the magnitude; 3D: two more channels
        data_channels += 2 if layout.spatial_dims == 3 else layout.channels // 2 + 1
    c1, c2, c3 = st.columns(3)
    min_channels = max(data_channels, n_classes)
    in_channels = c1.number_input(
        "Input channels", min_value=min_channels, max_value=4096,
        value=max(base.in_channels - base.zero_channels, min_channels),
        key=f"fhn-train-channels-{version}",
        help=f"The data has {data_channels} channel(s) and there are {n_classes} classes; "
             "the input is replicated up to this many channels (section 3.2)")
    kernel = c2.selectbox("Kernel size", [1, 3, 5, 7], index=[1, 3, 5, 7].index(
        base.kernel_size) if base.kernel_size in (1, 3, 5, 7) else 1,
        key=f"fhn-train-kernel-{version}")
    h = c3.number_input("h (step)", min_value=0.01, max_value=2.0, value=float(base.h),
                        step=0.05, format="%.3f", key=f"fhn-train-h-{version}",
                        help="Time step of eq. 2.6; default 0.2 (h² = 0.04, as in the authors' "
                             "scripts; the paper does not state h)")
    zero_scores = st.toggle(
        "Class scores start at zero", value=bool(base.zero_channels),
        key=f"fhn-train-zeros-{version}",
        help="Puts one channel of zeros per class in front of the data, where the network's "
             "class scores are read, so the scores start at zero instead of at the first data "
             "channels' values. On the Taizhou change maps it scored higher on 7 of 10 "
             "validation splits inside the training half, the same on average on the test "
             "half; it adds as many channels as there are classes.")
    design = ui.run_action(lambda: runs.design_from_rows(
        rows.to_dict("records"), in_channels=int(in_channels),
        spatial_dims=base.spatial_dims, kernel_size=int(kernel), h=float(h),
        zero_channels=n_classes if zero_scores else 0, name=base.name))
    haar = st.toggle(
        "Haar route for more classes than channels", value=False,
        key=f"fhn-train-haar-{version}",
        help="Section 3.2: instead of replicating the data's channels up to the number of "
             "classes, Haar-transform the input once (information preserving: 4x the channels "
             "in 2D, 8x in 3D, the grid 2x coarser). The network then runs one level up, its "
             "output and the labels are on the coarser grid; the prediction is brought back "
             "to the data grid by nearest neighbour, its probabilities stay coarse.")
    if design is not None and haar:
        design = ui.run_action(lambda: haar_route(design, data_channels, n_classes))
    if design is not None and design.out_level:
        st.caption(f"Output on a grid {2 ** design.out_level}x coarser than the data "
                   f"(section 3.4), {design.out_channels} output channels; labels coarsened "
                   "by majority, prediction brought back to the data grid by nearest.")
    if design is not None:
        zeros = (f"; {design.zero_channels} zero channel(s) in front, where the class scores "
                 "start" if design.zero_channels else "")
        st.caption(f"{design.spatial_dims}D network, {design.n_layers} layers, "
                   f"{design.max_level} Haar level(s); data laid out as "
                   f"{(data_channels, *layout.spatial_shape)} ({', '.join(layout.axis_names)})"
                   f"{zeros}")

# ----------------------------------------------------------------------------- settings
with settings_col:
    st.markdown("#### Training")
    device_list = runs.devices()
    labels = {d.key: d.label for d in device_list}
    device = st.selectbox("Device", list(labels), format_func=labels.get, key="fhn-train-device",
                          help="CUDA when a GPU is present, else the CPU")
    if (processes := runs.device_summary(device)) is not None:
        st.caption(processes)
    c1, c2 = st.columns(2)
    optimiser = c1.radio("Optimiser", ["adam", "sgd"], horizontal=True,
                         index=["adam", "sgd"].index(base_config.optimiser),
                         format_func={"adam": "Adam", "sgd": "SGD + momentum"}.get,
                         key=f"fhn-train-opt-{version}")
    lr = c2.number_input("Learning rate", min_value=1e-6, max_value=1.0,
                         value=float(base_config.learning_rate), step=1e-3, format="%.4f",
                         key=f"fhn-train-lr-{version}")
    c1, c2 = st.columns(2)
    iterations = c1.number_input("Iterations", min_value=1, max_value=100_000,
                                 value=int(base_config.iterations), step=10,
                                 key=f"fhn-train-iters-{version}", disabled=auto)
    ensemble = c2.number_input(
        "Networks (ensemble)", min_value=1, max_value=32, value=int(base_config.ensemble),
        step=1, key=f"fhn-train-ensemble-{version}", disabled=auto,
        help="Trains this many networks one after another from different random starts and "
             "averages their class scores. From a few labels one network's answer depends "
             "much on its start; the average is steadier. Costs that many times the "
             "training and prediction time.")
    held_back = editor.labels.split is not None and bool(
        ((editor.labels.split == 1) & (editor.labels.labels >= 0)).any())
    c1, c2 = st.columns(2)
    fraction = c1.slider(
        "Validation: random share of the labels", 0.0, 0.5,
        0.0 if held_back else float(base_config.validation_fraction), 0.05,
        key=f"fhn-train-vfrac-{version}", disabled=held_back, format="%.2f",
        help="The share of each class's labels held back at random to measure the network "
             "on labels it did not train on. 0 = every label trains and nothing is measured. "
             + ("Not used: the held-back labels of Wells & validation are." if held_back
                else "A split on Wells & validation (random or by region) replaces it."))
    validating = held_back or fraction > 0
    validate_every = c2.number_input(
        "Validate every (iterations)", min_value=1, max_value=100_000,
        value=int(min(base_config.validate_every or 25, max(1, base_config.iterations))),
        key=f"fhn-train-val-{version}", disabled=not validating,
        help="How often the whole data is predicted and scored on the held-back labels "
             "(also after the last iteration). Each validation costs about one prediction.")
    st.caption("Sub-volume per step (0 = the whole axis)")
    defaults = list(base_config.patch or [])
    patch = []
    for a, (col, name, size) in enumerate(zip(st.columns(len(layout.axis_names)),
                                              layout.axis_names, layout.spatial_shape,
                                              strict=True)):
        if a < len(defaults):
            value = int(defaults[a] or 0)
        else:
            value = 0 if a == layout.slice_axis or name == "samples" else min(64, int(size))
        patch.append(col.number_input(name, min_value=0, max_value=int(size),
                                      value=min(value, int(size)),
                                      key=f"fhn-train-patch-{a}-{version}"))
    with st.expander("More settings"):
        m1, m2 = st.columns(2)
        schedule = m1.selectbox("Learning-rate schedule", ["cosine", "step", "constant"],
                                index=["cosine", "step", "constant"].index(base_config.schedule),
                                key=f"fhn-train-sched-{version}")
        weights = m2.selectbox("Class weights", ["balanced", "none"],
                               index=["balanced", "none"].index(base_config.class_weights),
                               key=f"fhn-train-weights-{version}")
        seed = m1.number_input("Seed", 0, 2**31 - 1, int(base_config.seed),
                               key=f"fhn-train-seed-{version}")
        checkpoint_every = m2.number_input("Checkpoint every", 0, 100_000,
                                           int(base_config.checkpoint_every),
                                           key=f"fhn-train-ckpt-{version}")
        augment = m2.toggle("Flip and transpose (horizontal axes)", value=base_config.augment,
                            key=f"fhn-train-aug-{version}")
        average = m2.number_input(
            "Average the weights (decay, 0 = off)", 0.0, 0.999,
            float(base_config.average_decay), 0.01, format="%.3f",
            key=f"fhn-train-average-{version}",
            help="Validate and keep a moving average of the weights over about "
                 "1 / (1 - decay) iterations instead of the last ones: steadier results "
                 "from a few labels (0.98 averages the last ~50 iterations)")
        amp = m1.toggle("bfloat16 autocast", value=False, key="fhn-train-amp",
                        disabled=not device.startswith("cuda"),
                        help="CUDA only: faster convolutions; the states stay float32")

config = ui.run_action(lambda: TrainConfig(
    iterations=AUTO_ITERATIONS if auto else int(iterations), optimiser=optimiser,
    learning_rate=float(lr),
    schedule=schedule, patch=tuple(int(p) or None for p in patch),
    validate_every=int(validate_every) if validating else 0,
    checkpoint_every=int(checkpoint_every),
    class_weights=weights, seed=int(seed), validation_fraction=float(fraction),
    augment=bool(augment), device=device, amp=bool(amp) and device.startswith("cuda"),
    average_decay=float(average), ensemble=1 if auto else int(ensemble)))

# ----------------------------------------------------------------------------- memory
st.markdown("#### Memory")
free, total = runs.free_memory(device)
mem_cols = st.columns([1, 1, 1, 1.3], vertical_alignment="bottom")
free_gb = (free or 0) / GB
budget_key = f"fhn-train-budget-{device}"
if budget_key not in st.session_state:  # set once: the free memory drifts between reruns
    st.session_state[budget_key] = round(free_gb, 2)
# the choice is kept apart from the widget's own state, which streamlit drops (and the box
# then falls back to 0 GB: "does not fit") when a rerun is cut short before the box is drawn
budget_input = f"{budget_key}-input"
st.session_state[budget_input] = st.session_state[budget_key]


def keep_budget() -> None:
    st.session_state[budget_key] = st.session_state[budget_input]


budget = mem_cols[3].number_input(
    "Use at most (GB)", min_value=0.0, step=0.5, format="%.3f", key=budget_input,
    on_change=keep_budget,
    help="Memory this run may use on the device; the free memory by default. Lower it to "
         "leave room for other work.")
available = min(float(budget) * GB, free) if free is not None else float(budget) * GB
check = None
if design is not None and config is not None:
    check = ui.run_action(lambda: check_memory(
        design, layout.spatial_shape, config.patch, available, n_classes=n_classes,
        averaging=config.average_decay > 0))
if check is not None:
    mem_cols[0].metric("Training needs", f"{check.training_bytes / GB:.3f} GB",
                       help=check.breakdown())
    mem_cols[1].metric("Whole-data prediction", f"{check.prediction_bytes / GB:.3f} GB")
    mem_cols[2].metric("Free on device", f"{free_gb:.2f} GB" if free is not None else "unknown",
                       help=f"of {total / GB:.1f} GB" if total else None)
    table = check.training.table()
    if not check.fits:
        st.error(f"**This design does not fit.** {check.summary()} Use a smaller sub-volume, "
                 "fewer input channels, lower ranks or fewer levels.", icon=":material/memory:")
        st.code(f"{check.breakdown()}\n\ntraining step on {check.training.input_shape}:\n"
                f"{table}", language=None)
    else:
        with st.expander(f"Memory estimate (paper, Table 1): {check.summary()}"):
            st.code(f"{check.breakdown()}\n\ntraining step on {check.training.input_shape}:\n"
                    f"{table}", language=None)

# The leapfrog stability bound for h (fhn_core.stability), on the starting weights.
if design is not None and config is not None:
    unstable = ui.run_action(lambda: runs.stability_warning(design, config.seed))
    if unstable:
        st.warning(unstable, icon=":material/warning:")

# ----------------------------------------------------------------------------- time
ready = design is not None and config is not None and check is not None and check.fits
inputs = {"vertical_channel": bool(vertical), "envelope_channel": bool(envelope),
          "semblance_channel": bool(semblance), "change_channels": bool(change),
          "every_slice": bool(every_slice)}
timing = (data_key, design.to_toml() if design else "", repr(config), repr(inputs))
time_col, cost_col = st.columns([1, 4], vertical_alignment="center")
if time_col.button("Estimate the time", icon=":material/timer:",
                   disabled=busy or not ready or auto,
                   key="fhn-train-time", width="stretch",
                   help="Times one training step and one whole-data pass on the device"):
    cost = ui.run_action(lambda: runs.estimate_run_time(grid, editor.training_labels(), design,
                                                        config, **inputs))
    if cost is not None:
        st.session_state[TIME_KEY] = (timing, cost)
estimated = st.session_state.get(TIME_KEY)
if estimated is not None and estimated[0] == timing:
    cost = estimated[1]
    flips = " (averaged over flips)" if predict_flips else ""
    cost_col.markdown(
        f"**Estimated time: {format_seconds(cost.training_seconds)} of training and "
        f"{format_seconds(cost.prediction_seconds(bool(predict_flips)))} to predict the "
        f"data{flips}.** {cost.summary().capitalize()}.")
else:
    cost_col.caption("Estimate the time to see what this run costs before it starts "
                     f"({int(ensemble)} network(s) x {int(iterations)} iterations).")

# ----------------------------------------------------------------------------- start
st.caption(f"{labelled:,} labelled cells in {n_classes} classes; "
           f"{validation_summary(held_back, fraction, int(validate_every))}.")
start_col, note_col = st.columns([1, 4], vertical_alignment="center")
if start_col.button("Start training", type="primary", icon=":material/play_arrow:",
                    disabled=busy or not ready, key="fhn-train-start", width="stretch"):
    started = ui.run_action(lambda: jobs.registry().start(
        jobs.JobSpec(project.folder, design, config, **inputs,
                     augment=bool(predict_flips), stratigraphic_order=bool(superposition),
                     class_priors=None if layout.kind != "dates" else
                     ("scene" if scene_mix else "training"),
                     recipe=recipe, budget_minutes=float(budget_minutes),
                     scheduler=(scheduler or "").strip() or None, data=grid)))
    if started is not None:
        st.session_state[run_ui.RUN_KEY] = started.name
        st.rerun()
if busy:
    note_col.caption("A run is in progress; one run at a time. Stop it above to start another.")

# ----------------------------------------------------------------------------- past runs
past = runs.list_runs(project)
if past:
    st.markdown("#### Runs of this project")
    active = jobs.registry().active()
    table = pd.DataFrame([{
        "run": r.name,
        "status": ("running" if active is not None and active.name == r.name
                   else "interrupted" if r.status in runs.ACTIVE else r.status),
        "iterations": f"{r.iteration} / {r.iterations}" if r.iterations else "",
        "validation IoU": runs.last_validation(r.history or []),
        "model": r.has_model, "prediction": r.has_prediction,
    } for r in past])
    st.dataframe(table, hide_index=True, width="stretch", column_config={
        "validation IoU": st.column_config.NumberColumn(format="%.3f")})
    resumable = [r.name for r in past if r.has_checkpoint]
    if resumable and not busy:
        with st.expander("Continue a run from its checkpoint"):
            r1, r2, r3 = st.columns([2, 1, 1], vertical_alignment="bottom")
            again = r1.selectbox("Run", resumable, key="fhn-train-resume-run")
            done = next(r for r in past if r.name == again)
            saved = TrainConfig.from_dict(
                {k: (tuple(v) if k == "patch" and v is not None else v)
                 for k, v in (done.config or {}).items()})
            if saved.ensemble > 1:  # iterations per network; unfinished members finish
                more = r2.number_input(
                    "Train each network up to iteration", min_value=saved.iterations,
                    value=saved.iterations, key="fhn-train-resume-iters",
                    help=f"An ensemble of {saved.ensemble} networks, {saved.iterations} "
                         "iterations each: networks that did not finish continue; more "
                         "iterations continue the finished ones too")
            else:
                more = r2.number_input("Train up to iteration", min_value=done.iteration + 1,
                                       value=done.iteration + max(10, done.iterations // 2),
                                       key="fhn-train-resume-iters")
            if r3.button("Continue", icon=":material/resume:", key="fhn-train-resume"):
                resumed = ui.run_action(lambda: jobs.registry().start(jobs.JobSpec(
                    project.folder, design, TrainConfig(**{**saved.__dict__,
                                                           "iterations": int(more)}),
                    resume=again, data=grid)))
                if resumed is not None:
                    st.rerun()
