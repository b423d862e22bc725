"""The auto recipe (:mod:`fhn_core.auto_recipe`) on loaded data: candidates become tasks,
the choice a run record, and the per-cell baseline a prediction that can be exported.

``fhn train`` (recipe ``auto``, the default) and the app's training worker share this
module: :func:`choose_settings` turns each candidate's overrides (``data.*`` input
channels, ``design.layers_per_level``, ``training.*``) into a task, a design and settings
through the calls a fixed run uses (:mod:`app.layout`, :mod:`app.training_task`),
cross-validates them on spatial folds of the labels, and scores the baseline on the
adopted candidate's inputs.

The baseline is never pickled. A run keeps what refits it: ``baseline/labels.npz`` (its
training table, the feature rows and classes of the cells it trained on, and for the
record their flat indices on the grid; ``allow_pickle=False``) and
``baseline/baseline.json`` (seed, trees, classes, features per cell);
:func:`baseline_prediction` refits the forest from them (the same trees for the same seed,
seconds) and predicts every cell of data laid out as for the run's model, on the survey
it was trained on or another with the same channels. The app also stores the baseline's
prediction of the project's own data at training time, beside the network's
(:mod:`app.runs`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from fhn_core import auto_recipe, baseline
from fhn_core.auto_recipe import AutoChoice, Candidate, Prepared
from fhn_core.cross_validation import spatial_folds
from fhn_core.design import NetworkDesign
from fhn_core.errors import FhnError
from fhn_core.prediction import Prediction, probabilities_to_prediction
from fhn_core.task import SegmentationTask
from fhn_core.training import TrainConfig
from io_adapters.atomic import atomic_output
from io_adapters.errors import DataError

from .layout import DataLayout, to_channels_first
from .training_task import DEFAULT_DESIGN_KEYS, build_task, default_design

BASELINE_DIR = "baseline"
RECORD_FILE = "cross_validation.json"
RECIPES = ("auto", "fixed")


@dataclass
class RunInputs:
    """What every candidate of one run shares: data, labels and the user's settings.

    ``flags`` the seismic attribute channels as given; ``design_of(layout, n_classes,
    design_overrides)`` the design for a candidate; ``training`` TrainConfig fields.
    """

    da: xr.DataArray
    labelset: Any
    design_of: Callable[[DataLayout, int, dict[str, Any]], NetworkDesign]
    flags: dict[str, bool] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    val_labels: Any = None
    spatial_dims: int | None = None
    layouts: dict[str, DataLayout] = field(default_factory=dict)  # of the prepared candidates

    def prepare(self, candidate: Candidate) -> Prepared:
        parts: dict[str, dict[str, Any]] = {"data": {}, "design": {}, "training": {}}
        for key, value in candidate.overrides.items():
            section, _, name = key.partition(".")
            if section not in parts or not name:
                raise FhnError(f"candidate {candidate.name}: override {key!r} is not "
                               "data.*, design.* or training.*")
            parts[section][name] = value
        layout = to_channels_first(self.da, spatial_dims=self.spatial_dims,
                                            **{**self.flags, **parts["data"]})
        task = build_task(self.da, self.labelset, val_labels=self.val_labels, layout=layout)
        self.layouts[candidate.name] = layout
        design = self.design_of(layout, task.n_classes, parts["design"])
        if "patch" in parts["training"]:
            parts["training"]["patch"] = horizontal_patch(parts["training"]["patch"], layout)
        config = TrainConfig.from_dict({**self.training, **parts["training"]})
        return Prepared(task, design, config)

    def kind(self) -> str:
        return to_channels_first(self.da, spatial_dims=self.spatial_dims).kind


def horizontal_patch(patch: Any, layout: DataLayout) -> tuple[int | None, ...]:
    """A candidate's window (sizes of the last, horizontal axes) for this layout: leading
    axes (a time-lapse layout's band axis) are taken whole."""
    patch = tuple(patch)
    spatial = layout.data.ndim - 1
    if len(patch) > spatial:
        raise FhnError(f"a window of {len(patch)} axes does not fit {spatial}D data")
    return (None,) * (spatial - len(patch)) + patch


def default_design_of(layout: DataLayout, n_classes: int,
                      overrides: dict[str, Any]) -> NetworkDesign:
    """The default design for the data, sized by a candidate's ``layers_per_level``,
    ``rank`` and ``levels``."""
    unknown = sorted(set(overrides) - set(DEFAULT_DESIGN_KEYS))
    if unknown:
        raise FhnError(f"design override(s) {unknown} are not known to the default design")
    return default_design(layout, n_classes, **overrides)


def choose_settings(
    inputs: RunInputs,
    fixed: set[str],
    *,
    budget_minutes: float,
    n_folds: int | None = None,
    seed: int = 0,
    report: Callable[[str], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> tuple[AutoChoice, Prepared, TrainConfig]:
    """Run the auto recipe; returns the choice, the adopted candidate and its final settings.

    ``fixed`` the "section.key" names the user set (``"design"`` when a design was given);
    ``n_folds`` None: the recipe's number for the data kind (:func:`auto_recipe.folds_for`).
    """
    if not budget_minutes > 0:
        raise DataError(f"budget_minutes must be positive, got {budget_minutes}")
    kind = inputs.kind()
    candidates = auto_recipe.open_candidates(auto_recipe.candidates_for(kind), fixed)
    first = inputs.prepare(candidates[0])
    task = first.task
    if not isinstance(task.labels, np.ndarray) or not isinstance(task.data, np.ndarray):
        raise DataError("the auto recipe cross-validates in memory and cannot train on a "
                        "survey store; set [training] recipe = \"fixed\" for a store")
    folds = spatial_folds(task.valid_labels(task.labels),
                          n_folds or auto_recipe.folds_for(kind),
                          vertical_axis=task.vertical_axis, seed=seed)
    if report:
        report(f"auto recipe: {len(candidates)} candidate(s) on {folds.summary()}; budget "
               f"{budget_minutes:g} min")
    prepared_once = {candidates[0].name: first}

    def prepare(candidate: Candidate) -> Prepared:
        return prepared_once.pop(candidate.name, None) or inputs.prepare(candidate)

    choice, prepared = auto_recipe.choose(
        candidates, prepare, folds, budget_seconds=budget_minutes * 60.0,
        choose_iterations="training.iterations" not in fixed,
        baseline=lambda p: baseline.cross_validated(p.task, folds, seed),
        report=report, should_stop=should_stop)
    members = auto_recipe.final_members(kind, choice, prepared,
                                        ensemble_fixed="training.ensemble" in fixed)
    prepared = auto_recipe.mapped(kind, choice, prepared, seed)
    return choice, prepared, auto_recipe.final_config(prepared, choice.chosen, members)


def fixed_keys(data: Mapping[str, Any], design: Mapping[str, Any],
               training: Mapping[str, Any]) -> set[str]:
    """The "section.key" names a run description sets (what auto leaves alone)."""
    out = {f"data.{k}" for k in data} | {f"training.{k}" for k in training}
    return out | ({"design"} if design else set())


def write_record(path: Path, choice: AutoChoice, class_names: list[str],
                 timings: Mapping[str, float], final: TrainConfig) -> Path:
    """The run record of the recipe (JSON, atomically): choice, scores, candidates, times,
    and the final training's settings (what ``--resume`` continues with)."""
    record = choice.as_dict(class_names)
    record["timings_seconds"] = {k: round(float(v), 1) for k, v in timings.items()}
    record["final_config"] = asdict(final)
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(record, indent=1), encoding="utf-8")
    return path


def final_config_of(record: Mapping[str, Any]) -> TrainConfig:
    """The final training's settings a record holds."""
    try:
        return TrainConfig.from_dict(dict(record["final_config"]))
    except (KeyError, TypeError) as err:
        raise DataError(f"the auto recipe's record has no usable final settings ({err}); "
                        "train again without --resume") from err


def read_record(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise DataError(f"{path} cannot be read ({err}); train again") from err


# --------------------------------------------------------------------------- baseline
def write_baseline_inputs(folder: Path, task: SegmentationTask, seed: int) -> Path:
    """What refits the task's baseline: its training table (the training cells' feature
    rows and classes, :func:`fhn_core.baseline.training_table`) and seed; no fitted model
    is stored. The cells' grid indices are kept too, for the record."""
    folder.mkdir(parents=True, exist_ok=True)
    features = baseline.cell_features(task.data, task.slice_axis)
    labels, n_classes = task.valid_labels(task.labels), task.n_classes
    rows, classes = baseline.training_table(features, labels, seed)
    cells = np.flatnonzero(labels >= 0)
    with atomic_output(folder / "labels.npz") as tmp, open(tmp, "wb") as fh:
        np.savez(fh, index=cells.astype(np.int64),
                 classes=labels.reshape(-1)[cells].astype(np.int16),
                 grid=np.asarray(labels.shape, dtype=np.int64),
                 rows=rows.astype(np.float32), row_classes=classes.astype(np.int16))
    meta = {"seed": int(seed), "trees": baseline.N_TREES, "n_classes": int(n_classes),
            "features": int(features.shape[0]), "what": auto_recipe.BASELINE_NAME}
    with atomic_output(folder / "baseline.json") as tmp:
        tmp.write_text(json.dumps(meta, indent=1), encoding="utf-8")
    return folder


def baseline_of(layout: DataLayout, labels: np.ndarray, seed: int,
                n_classes: int) -> Prediction:
    """The baseline fitted on ``labels`` and applied to every cell of ``layout``'s data."""
    features = baseline.cell_features(layout.data, layout.slice_axis)
    forest = baseline.fit_forest(features, labels, seed)
    return _as_prediction(baseline.predict_forest(forest, features, n_classes)[1])


def _as_prediction(probabilities: np.ndarray) -> Prediction:
    """Class ids and normalised entropy of per-cell probabilities, as the network's."""
    import torch

    return probabilities_to_prediction(torch.log(torch.from_numpy(probabilities)
                                                 .clamp_min(1e-12)))


def baseline_folder(model_folder: Path) -> Path:
    """The baseline inputs of the run a model folder belongs to (``RUN/baseline``)."""
    for candidate in (model_folder / BASELINE_DIR, model_folder.parent / BASELINE_DIR):
        if (candidate / "baseline.json").is_file():
            return candidate
    raise DataError(f"no baseline beside {model_folder} (looked for "
                    f"{model_folder.parent / BASELINE_DIR}); train with recipe = \"auto\" to "
                    "get one")


def baseline_prediction(folder: Path, layout: DataLayout,
                        progress: Callable[[float], None] | None = None) -> Prediction:
    """Refit the run's baseline from its stored training table and seed; predict every cell
    of ``layout``'s data (the survey it was trained on, or another with the same channels).
    Runs written before the table was stored refit from their cells, on their own grid only."""
    try:
        meta = json.loads((folder / "baseline.json").read_text(encoding="utf-8"))
        with np.load(folder / "labels.npz", allow_pickle=False) as stored:
            table = ((stored["rows"], stored["row_classes"]) if "rows" in stored.files
                     else None)
            index, classes, grid = stored["index"], stored["classes"], stored["grid"]
        seed, trees = int(meta["seed"]), int(meta["trees"])
    except (OSError, KeyError, ValueError, json.JSONDecodeError) as err:
        raise DataError(f"the baseline in {folder} cannot be read ({err}); train again") from err
    features = baseline.cell_features(layout.data, layout.slice_axis)
    if table is not None:
        if table[0].shape[1] != features.shape[0]:
            raise DataError(f"the baseline in {folder} was trained on {table[0].shape[1]} "
                            f"features per cell, this data gives {features.shape[0]}; apply "
                            "it to data with the channels it was trained on")
        forest = baseline.fit_forest_on(table[0], table[1].astype(np.int64), seed, trees)
    else:
        if tuple(int(g) for g in grid) != tuple(features.shape[1:]):
            raise DataError(f"the baseline was trained on a grid of {tuple(grid)}, this data's "
                            f"is {tuple(features.shape[1:])}; apply it to the data it was "
                            "trained on (or train again: newer runs keep what applies anywhere)")
        labels = np.full(features.shape[1:], -1, dtype=np.int64)
        labels.reshape(-1)[index] = classes
        forest = baseline.fit_forest(features, labels, seed, trees)
    _, proba = baseline.predict_forest(forest, features, int(meta["n_classes"]), progress)
    return _as_prediction(proba)
