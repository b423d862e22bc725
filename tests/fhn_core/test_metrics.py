import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score, jaccard_score
from sklearn.metrics import confusion_matrix as sk_confusion

from fhn_core.errors import FhnError
from fhn_core.metrics import confusion_matrix, error_map, evaluate


def test_metrics_agree_with_scikit_learn():
    rng = np.random.default_rng(0)
    ref = rng.integers(0, 4, (30, 40))
    pred = np.where(rng.random(ref.shape) < 0.7, ref, rng.integers(0, 4, ref.shape))
    ref_sparse = np.where(rng.random(ref.shape) < 0.5, ref, -1)
    m = evaluate(pred, ref_sparse, 4)
    known = ref_sparse >= 0
    r, p = ref_sparse[known], pred[known]
    assert np.array_equal(m.confusion, sk_confusion(r, p, labels=range(4)))
    assert m.kappa == pytest.approx(cohen_kappa_score(r, p), abs=1e-12)
    assert np.allclose(m.iou, jaccard_score(r, p, average=None, labels=range(4)))
    assert m.mean_iou == pytest.approx(jaccard_score(r, p, average="macro", labels=range(4)))
    assert m.overall_accuracy == pytest.approx((r == p).mean())


def test_error_map_marks_wrong_right_and_unknown():
    ref = np.array([[0, 1, -1], [2, 2, 1]])
    pred = np.array([[0, 2, 1], [2, 0, 1]])
    assert error_map(pred, ref).tolist() == [[0, 1, -1], [0, 1, 0]]


def test_absent_class_is_nan_and_excluded_from_mean():
    m = evaluate(np.array([0, 0, 1]), np.array([0, 0, 1]), 3)
    assert np.isnan(m.iou[2]) and m.mean_iou == 1.0 and m.kappa == 1.0


def test_bad_input():
    with pytest.raises(FhnError, match="different grids"):
        confusion_matrix(np.zeros((2, 2)), np.zeros((2, 3)), 2)
    with pytest.raises(FhnError, match="no labelled"):
        evaluate(np.zeros(3), -np.ones(3), 2)
    with pytest.raises(FhnError, match="outside"):
        evaluate(np.array([0, 5]), np.array([0, 1]), 2)
