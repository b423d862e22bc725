"""A per-cell baseline: a random forest on the network's input channels, cell by cell.

What a network trained from a few labels should beat: a classifier that sees each cell's
input values alone, without any neighbourhood (Breiman 2001, *Random forests*, Machine
Learning 45). It gets exactly the channels the network gets (the task's data, after the
same standardisation; with a label-embedding slice axis, eq. 3.20, every slice's values
become features of the cell), trains on the same labels in seconds, and is scored on the
same spatial folds (:mod:`fhn_core.cross_validation`), so the two scores compare like for
like. 200 trees with class weights balanced over the training cells, as the network's loss
(eq. 3.19 with balanced weights); at most ``MAX_TRAINING_CELLS`` cells per fit (a seeded
stratified draw), which keeps a fit on densely painted 3D labels to seconds.

A fitted forest is never stored (no pickle): it is refitted from its stored training table
(:func:`training_table`: the training cells' feature rows and classes) and its seed wherever
it is needed again, which gives the same trees (:func:`fit_forest_on` is deterministic for
a seed), on the survey it was trained on or any other with the same channels.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .cross_validation import FoldScores, SpatialFolds
from .errors import FhnError
from .metrics import Metrics, confusion_matrix, metrics_from_confusion
from .task import Normalisation, SegmentationTask

N_TREES = 200
MAX_TRAINING_CELLS = 20_000
PREDICT_CHUNK = 2**18  # cells per predict_proba call: bounds the memory of the tree outputs


def cell_features(data: np.ndarray, slice_axis: int | None = None) -> np.ndarray:
    """(F, *label grid) float32 features from channels-first data (C, *S).

    The channels standardised as the network's input (nodata -> 0); a slice axis (the
    band axis of a time-lapse layout) is folded into the features.
    """
    x = Normalisation.of(data).apply(np.asarray(data, dtype=np.float32))
    if slice_axis is not None:
        x = np.moveaxis(x, 1 + slice_axis, 1)
        x = x.reshape(x.shape[0] * x.shape[1], *x.shape[2:])
    return x


def _draw(labels: np.ndarray, limit: int, seed: int) -> np.ndarray:
    """Flat indices of at most ``limit`` labelled cells, every class in proportion."""
    idx = np.flatnonzero(labels >= 0)
    if idx.size <= limit:
        return idx
    rng = np.random.default_rng(seed)
    flat = labels.reshape(-1)[idx]
    keep = []
    for k in np.unique(flat):
        members = idx[flat == k]
        n = max(1, round(limit * members.size / idx.size))
        keep.append(rng.choice(members, size=min(n, members.size), replace=False))
    return np.sort(np.concatenate(keep))


def fit_forest(features: np.ndarray, labels: np.ndarray, seed: int = 0,
               trees: int = N_TREES):
    """A random forest fitted on the labelled cells (``labels`` on the features' grid)."""
    return fit_forest_on(*training_table(features, labels, seed), seed, trees)


def training_table(features: np.ndarray, labels: np.ndarray,
                   seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The (n, F) feature rows and (n,) classes :func:`fit_forest` trains on: the labelled
    cells, at most ``MAX_TRAINING_CELLS`` of them (seeded), in their flat order on the grid.
    Stored with a run, they refit the same forest on any grid (:func:`fit_forest_on`)."""
    if labels.shape != features.shape[1:]:
        raise FhnError(f"labels {labels.shape} are not on the features' grid "
                       f"{features.shape[1:]}")
    cells = _draw(labels, MAX_TRAINING_CELLS, seed)
    if not cells.size:
        raise FhnError("the baseline has no labelled cells to train on")
    table = features.reshape(features.shape[0], -1)
    return table[:, cells].T, labels.reshape(-1)[cells]


def fit_forest_on(rows: np.ndarray, classes: np.ndarray, seed: int = 0,
                  trees: int = N_TREES):
    """A random forest fitted on feature ``rows`` (n, F) and their ``classes`` (n,)."""
    from sklearn.ensemble import RandomForestClassifier

    if rows.ndim != 2 or classes.shape != (rows.shape[0],) or not rows.shape[0]:
        raise FhnError(f"the baseline needs one class per feature row, got rows "
                       f"{rows.shape} and classes {classes.shape}")
    forest = RandomForestClassifier(n_estimators=trees, class_weight="balanced",
                                    random_state=seed, n_jobs=-1)
    forest.fit(rows, classes)
    return forest


def forest_probabilities(forest, features: np.ndarray, n_classes: int,
                         cells: np.ndarray | None = None,
                         progress: Callable[[float], None] | None = None) -> np.ndarray:
    """(n_classes, n) class probabilities of flat ``cells`` (default: every cell).

    Classes the forest never saw (absent from a fold's training cells) get probability 0.
    """
    table = features.reshape(features.shape[0], -1)
    cells = np.arange(table.shape[1]) if cells is None else np.asarray(cells)
    out = np.zeros((n_classes, cells.size), dtype=np.float32)
    for start in range(0, cells.size, PREDICT_CHUNK):
        part = cells[start:start + PREDICT_CHUNK]
        out[forest.classes_, start:start + part.size] = forest.predict_proba(table[:, part].T).T
        if progress:
            progress(min(1.0, (start + part.size) / max(cells.size, 1)))
    return out


def predict_forest(forest, features: np.ndarray, n_classes: int,
                   progress: Callable[[float], None] | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(class ids int16 on the grid, probabilities (K, *grid) float32) of every cell."""
    proba = forest_probabilities(forest, features, n_classes, progress=progress)
    grid = features.shape[1:]
    return proba.argmax(0).astype(np.int16).reshape(grid), proba.reshape(n_classes, *grid)


def fold_probabilities(features: np.ndarray, labels: np.ndarray, folds: SpatialFolds,
                       n_classes: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per fold, the baseline's (K, n) probabilities at its n validation cells (in their
    flat order on the grid) and their classes (n,), trained on the fold's training cells."""
    out = []
    for f in range(folds.n_folds):
        train, val = folds.split(labels, f)
        forest = fit_forest(features, train, seed)
        cells = np.flatnonzero(val >= 0)
        out.append((forest_probabilities(forest, features, n_classes, cells),
                    val.reshape(-1)[cells]))
    return out


def fold_metrics(features: np.ndarray, labels: np.ndarray, folds: SpatialFolds,
                 n_classes: int, seed: int = 0) -> list[Metrics]:
    """The baseline's scores on each fold's validation cells, trained on its training cells."""
    return [metrics_from_confusion(confusion_matrix(proba.argmax(0), truth, n_classes))
            for proba, truth in fold_probabilities(features, labels, folds, n_classes, seed)]


def cross_validated(task: SegmentationTask, folds: SpatialFolds, seed: int = 0) -> FoldScores:
    """The baseline's scores over ``folds`` on the task's input channels and labels."""
    features = cell_features(task.data, task.slice_axis)
    labels = task.valid_labels(task.labels)
    return FoldScores(tuple(fold_metrics(features, labels, folds, task.n_classes, seed)))
