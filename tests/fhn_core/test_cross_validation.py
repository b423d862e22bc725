"""Spatially blocked folds: blocks whole, every labelled cell validated once, classes spread,
a buffer between training and validation, the same folds for the same seed."""

import numpy as np
import pytest

from fhn_core.cross_validation import (
    MIN_BLOCK_SIDE,
    FoldScores,
    block_side,
    spatial_folds,
)
from fhn_core.errors import FhnError
from fhn_core.metrics import evaluate


def _points(shape=(120, 160), n=300, n_classes=3, seed=0):
    """Scattered single labelled cells, class from the column band they fall in (so every
    class is spread over the whole map)."""
    rng = np.random.default_rng(seed)
    labels = np.full(shape, -1, dtype=np.int64)
    ys, xs = rng.integers(0, shape[0], n), rng.integers(0, shape[1], n)
    labels[ys, xs] = (xs // 7) % n_classes
    return labels


def test_blocks_are_never_split_between_folds_and_each_cell_is_validated_once():
    labels = _points()
    folds = spatial_folds(labels, 5, seed=3)
    assert folds.n_folds == 5
    labelled = labels >= 0
    for b in range(folds.n_blocks):
        assert np.unique(folds.fold[folds.block == b]).size == 1
    seen = np.zeros(labels.shape, dtype=int)
    for f in range(folds.n_folds):
        train, val = folds.split(labels, f)
        assert not ((train >= 0) & (val >= 0)).any()
        assert np.array_equal(val[val >= 0], labels[val >= 0])
        seen += val >= 0
    assert np.array_equal(seen, labelled.astype(int))  # exactly one validation fold each


def test_every_class_is_validated_in_every_fold_when_it_spans_enough_blocks():
    labels = _points(n=400)
    folds = spatial_folds(labels, 4, seed=0)
    for f in range(folds.n_folds):
        train, val = folds.split(labels, f)
        assert set(np.unique(val[val >= 0])) == {0, 1, 2}
        assert set(np.unique(train[train >= 0])) == {0, 1, 2}


def test_no_training_cell_is_within_the_buffer_of_a_validation_cell():
    labels = np.full((64, 64), -1, dtype=np.int64)
    labels[10:54, 10:54] = (np.arange(10, 54)[None, :] >= 32).astype(int)  # one dense area
    folds = spatial_folds(labels, 3, seed=1, buffer=2)
    for f in range(folds.n_folds):
        train, val = folds.split(labels, f)
        ty, tx = np.nonzero(train >= 0)
        vy, vx = np.nonzero(val >= 0)
        gap = np.maximum(np.abs(ty[:, None] - vy[None]), np.abs(tx[:, None] - vx[None]))
        assert gap.min() > 2
        assert (train >= 0).sum() > 0


def test_seismic_blocks_keep_whole_traces_and_wells_whole():
    """Vertical axis 2: a trace is never cut; a well of radius 3 (7 x 7 traces) is one patch,
    so blocks are at least twice its size."""
    labels = np.full((64, 64, 20), -1, dtype=np.int64)
    wells = [(8, 8), (8, 40), (30, 20), (50, 10), (52, 50), (30, 55), (20, 30), (45, 33)]
    for i, (a, b) in enumerate(wells):
        labels[a - 3:a + 4, b - 3:b + 4, :] = (np.arange(20) >= 8 + i % 3).astype(int)
    folds = spatial_folds(labels, 4, vertical_axis=2, seed=0)
    assert folds.block_axes == (0, 1)
    assert folds.side >= 14
    trace_folds = folds.fold.max(axis=2)
    assert np.array_equal(folds.fold, np.where(labels >= 0, trace_folds[..., None], -1))


def test_the_same_seed_gives_the_same_folds_and_another_seed_others():
    labels = _points()
    a, b = spatial_folds(labels, 5, seed=7), spatial_folds(labels, 5, seed=7)
    assert np.array_equal(a.fold, b.fold)
    others = [spatial_folds(labels, 5, seed=s).fold for s in range(8, 12)]
    assert any(not np.array_equal(a.fold, o) for o in others)


def test_block_side_follows_the_spread_of_the_labels():
    sparse = _points(shape=(400, 400), n=100)
    assert block_side(sparse >= 0, (0, 1), 5) >= 25
    dense = np.zeros((400, 400), dtype=bool)
    dense[100:110, 100:110] = True  # one painted patch: cut into regions all the same
    assert block_side(dense, (0, 1), 5) == 5
    assert block_side(dense[:106, :106], (0, 1), 5) == MIN_BLOCK_SIDE


def test_labels_in_one_place_cannot_be_cross_validated():
    labels = np.full((32, 32), -1, dtype=np.int64)
    labels[5, 5], labels[5, 6] = 0, 1
    with pytest.raises(FhnError, match="one .*block"):
        spatial_folds(labels, 5, side=8)


def test_fewer_blocks_than_folds_lowers_the_number_of_folds():
    labels = np.full((64, 64), -1, dtype=np.int64)
    labels[2, 2], labels[60, 60], labels[2, 60] = 0, 1, 0
    folds = spatial_folds(labels, 5, side=8)
    assert folds.n_folds == 3


def test_fold_scores_give_mean_and_spread_per_class():
    ref = np.array([0, 0, 1, 1])
    folds = (evaluate(np.array([0, 0, 1, 1]), ref, 2), evaluate(np.array([0, 1, 1, 1]), ref, 2))
    scores = FoldScores(folds)
    assert scores.kappa == pytest.approx((1.0 + 0.5) / 2)
    assert scores.kappa_sd == pytest.approx(np.std([1.0, 0.5], ddof=1))
    iou, sd = scores.class_iou
    assert iou[0] == pytest.approx((1.0 + 0.5) / 2)
    record = scores.as_dict(["sand", "shale"])
    assert record["n_folds"] == 2 and set(record["class_iou"]) == {"sand", "shale"}
    assert scores.line() == "kappa 0.75 ± 0.35"
