"""The network and the per-cell baseline together: the weighted mean of their probabilities,
and prediction deciding from it (class ids, the stratigraphic order, the model's default)."""

import numpy as np
import pytest
import torch

from fhn_core.blending import blended_logits, check_baseline_weight
from fhn_core.checkpoint import ModelInfo, TrainedModel
from fhn_core.design import NetworkDesign, Segment
from fhn_core.errors import FhnError
from fhn_core.network import HyperbolicNetwork
from fhn_core.prediction import predict
from fhn_core.task import Normalisation


def _probabilities(shape, seed: int) -> np.ndarray:
    p = np.random.default_rng(seed).random(shape).astype(np.float32)
    return p / p.sum(0, keepdims=True)


def test_the_blend_is_the_weighted_mean_of_the_two_probabilities():
    logits = torch.randn(3, 6, 5, generator=torch.Generator().manual_seed(0))
    forest = _probabilities((3, 6, 5), seed=1)
    network = torch.softmax(logits, 0).numpy()
    for weight in (0.0, 0.25, 0.5, 1.0):
        blended = torch.softmax(blended_logits(logits, forest, weight), 0).numpy()
        np.testing.assert_allclose(blended, (1 - weight) * network + weight * forest,
                                   rtol=1e-5, atol=1e-6)


def test_a_class_both_models_rule_out_keeps_finite_scores():
    logits = torch.tensor([[50.0], [-50.0]])
    forest = np.array([[1.0], [0.0]], dtype=np.float32)
    assert torch.isfinite(blended_logits(logits, forest, 0.5)).all()


@pytest.mark.parametrize("bad", [-0.1, 1.5, True, "0.5", float("nan")])
def test_a_weight_outside_zero_to_one_is_refused_by_name(bad):
    with pytest.raises(FhnError, match="baseline's weight"):
        check_baseline_weight(bad)


def test_probabilities_on_another_grid_are_refused():
    with pytest.raises(FhnError, match="not on the network's output grid"):
        blended_logits(torch.zeros(2, 4, 4), np.full((2, 4, 5), 0.5, np.float32), 0.5)


def _model(weight: float, class_order=()) -> TrainedModel:
    torch.manual_seed(0)
    net = HyperbolicNetwork(NetworkDesign(2, 2, [Segment(0, 1, 4), Segment(0, 1, 4)]))
    info = ModelInfo(n_classes=2, data_channels=2,
                     normalisation=Normalisation((0.0, 0.0), (1.0, 1.0)),
                     vertical_axis=1, class_order=list(class_order), baseline_weight=weight)
    return TrainedModel(net, info)


def test_prediction_decides_from_the_blend_with_the_models_weight():
    data = np.random.default_rng(2).standard_normal((2, 8, 16)).astype(np.float32)
    forest = _probabilities((2, 8, 16), seed=3)
    alone = predict(_model(0.0), data, device="cpu")
    blended = predict(_model(0.5), data, baseline_probabilities=forest, device="cpu")
    mean = 0.5 * (alone.probabilities + forest)
    np.testing.assert_allclose(blended.probabilities, mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(blended.classes, mean.argmax(0))
    # the caller's weight overrides the model's: 0 is the network alone, 1 the forest alone
    np.testing.assert_allclose(predict(_model(0.5), data, baseline_probabilities=forest,
                                       baseline_weight=0, device="cpu").probabilities,
                               alone.probabilities, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(predict(_model(0.5), data, baseline_probabilities=forest,
                                          baseline_weight=1, device="cpu").classes,
                                  forest.argmax(0))


def test_the_stratigraphic_order_is_taken_from_the_blend():
    # the forest says class 1 above class 0 in every trace; the blend, dominated by it, must
    # still keep the order the wells showed (0 above 1) down every trace
    data = np.zeros((2, 4, 10), dtype=np.float32)
    forest = np.zeros((2, 4, 10), dtype=np.float32)
    forest[1, :, :5], forest[0, :, :5] = 0.99, 0.01
    forest[0, :, 5:], forest[1, :, 5:] = 0.99, 0.01
    model = _model(0.9, class_order=(0, 1))
    unordered = predict(model, data, baseline_probabilities=forest, device="cpu").classes
    assert (unordered[:, :5] == 1).all()  # the blend alone follows the forest
    ordered = predict(model, data, baseline_probabilities=forest, stratigraphic_order=True,
                      device="cpu").classes
    assert (np.diff(ordered.astype(int), axis=1) >= 0).all()


def test_a_blending_model_without_the_baselines_probabilities_says_what_to_do():
    data = np.zeros((2, 8, 8), dtype=np.float32)
    with pytest.raises(FhnError, match="weight 0.5.*set the baseline's weight to 0"):
        predict(_model(0.5), data, device="cpu")
    predict(_model(0.5), data, baseline_weight=0, device="cpu")  # the network alone


def test_a_model_written_before_the_blend_predicts_with_the_network_alone():
    stored = _model(0.5).info.to_json()
    assert stored["baseline_weight"] == 0.5
    assert ModelInfo.from_json(stored).baseline_weight == 0.5
    del stored["baseline_weight"]
    assert ModelInfo.from_json(stored).baseline_weight == 0.0
