"""The law of superposition: the order read from labels, and the most probable ordered classes."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from fhn_core import stratigraphy
from fhn_core.errors import FhnError
from fhn_core.stratigraphy import ordered_classes, superposition_order


def _layered_labels(order: tuple[int, ...], shape=(6, 5, 30), seed=0) -> np.ndarray:
    """Labels whose traces run through ``order`` top to bottom, with wavy boundaries."""
    rng = np.random.default_rng(seed)
    ni, nx, ns = shape
    labels = np.full(shape, -1)
    for i, j in itertools.product(range(ni), range(nx)):
        cuts = np.sort(rng.choice(np.arange(1, ns), size=len(order) - 1, replace=False))
        trace = np.repeat(order, np.diff(np.concatenate([[0], cuts, [ns]])))
        labels[i, j] = trace
    return labels


def _rank_path(classes: np.ndarray, order) -> np.ndarray:
    rank = np.empty(max(order) + 1, dtype=int)
    rank[list(order)] = np.arange(len(order))
    return rank[classes]


def test_order_is_read_from_the_labelled_traces():
    labels = _layered_labels((2, 0, 3, 1))
    assert superposition_order(labels, 2, 4) == (2, 0, 3, 1)
    # the same labels with the vertical axis first
    assert superposition_order(np.moveaxis(labels, 2, 0), 0, 4) == (2, 0, 3, 1)


def test_sparse_wells_decide_what_they_show_and_class_ids_the_rest():
    labels = np.full((10, 10, 40), -1)
    labels[2, 2, :20], labels[2, 2, 20:] = 3, 1      # well 1: class 3 above class 1
    labels[7, 7, :25], labels[7, 7, 25:] = 3, 0      # well 2: class 3 above class 0
    # 0 and 1 never meet: the lower id first; 2 is unlabelled: after everything above it
    assert superposition_order(labels, 2, 4) == (2, 3, 0, 1)


def test_labels_that_contradict_each_other_are_refused_by_name():
    labels = np.full((4, 4, 20), -1)
    labels[0, 0, :10], labels[0, 0, 10:] = 0, 1
    labels[3, 3, :10], labels[3, 3, 10:] = 1, 0
    with pytest.raises(FhnError, match="Sand both above and below Shale"):
        superposition_order(labels, 2, 2, class_names=["Sand", "Shale"])
    repeated = np.full((1, 1, 30), -1)
    repeated[0, 0, :10], repeated[0, 0, 10:20], repeated[0, 0, 20:] = 0, 1, 0
    with pytest.raises(FhnError, match="no single top-to-bottom order"):
        superposition_order(repeated, 2, 2)


def test_a_cycle_across_traces_is_refused():
    labels = np.full((3, 1, 20), -1)
    for t, (a, b) in enumerate(((0, 1), (1, 2), (2, 0))):
        labels[t, 0, :10], labels[t, 0, 10:] = a, b
    with pytest.raises(FhnError, match="cycle"):
        superposition_order(labels, 2, 3)


def _best_monotone_score(log_p: np.ndarray) -> float:
    """Brute force: the largest summed log-probability of any non-decreasing rank path."""
    n, k = log_p.shape
    best = -np.inf
    for cuts in itertools.combinations_with_replacement(range(n + 1), k - 1):
        bounds = (0, *cuts, n)
        path = np.concatenate([np.full(bounds[r + 1] - bounds[r], r) for r in range(k)])
        best = max(best, float(log_p[np.arange(n), path].sum()))
    return best


def test_viterbi_finds_the_most_probable_ordered_sequence():
    torch.manual_seed(0)
    order = (1, 2, 0)
    logits = torch.randn(3, 7, 4, 8) * 2          # (K, traces a, traces b, vertical)
    classes = ordered_classes(logits, order, vertical_axis=2)
    assert classes.shape == (7, 4, 8) and classes.dtype == np.int16
    ranks = _rank_path(classes, order)
    assert (np.diff(ranks, axis=2) >= 0).all()    # superposition holds in every trace
    log_p = torch.log_softmax(logits, 0).numpy()[list(order)]  # by rank
    for i, j in itertools.product(range(7), range(4)):
        trace = log_p[:, i, j].T                  # (vertical, ranks)
        got = float(trace[np.arange(8), ranks[i, j]].sum())
        assert got == pytest.approx(_best_monotone_score(trace), abs=1e-5)


def test_classes_already_in_order_are_left_alone():
    labels = _layered_labels((0, 1, 2, 3), shape=(5, 6, 24))
    logits = torch.nn.functional.one_hot(torch.from_numpy(labels), 4).movedim(-1, 0) * 5.0
    logits += 0.3 * torch.randn(logits.shape)     # noise below the margin keeps the argmax
    np.testing.assert_array_equal(ordered_classes(logits, (0, 1, 2, 3), 2), labels)


def test_vertical_axis_and_trace_chunks_do_not_change_the_answer(monkeypatch):
    torch.manual_seed(1)
    logits = torch.randn(4, 9, 5, 16)
    whole = ordered_classes(logits, (3, 1, 0, 2), 2)
    first = ordered_classes(logits.movedim(3, 1), (3, 1, 0, 2), 0)
    np.testing.assert_array_equal(np.moveaxis(first, 0, 2), whole)
    monkeypatch.setattr(stratigraphy, "_POINTER_BYTES", 16 * 4 * 7)  # 7 traces per chunk
    np.testing.assert_array_equal(ordered_classes(logits, (3, 1, 0, 2), 2), whole)


def test_an_order_that_is_not_a_permutation_is_refused():
    with pytest.raises(FhnError, match="not a permutation"):
        ordered_classes(torch.zeros(3, 2, 2, 4), (0, 1), 2)
