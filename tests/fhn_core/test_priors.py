"""The scene's class mix by EM (Saerens et al. 2002): recovered, applied, and kept with a model."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from fhn_core.checkpoint import ModelInfo, Normalisation, TrainedModel
from fhn_core.design import NetworkDesign, Segment
from fhn_core.errors import FhnError
from fhn_core.network import HyperbolicNetwork
from fhn_core.prediction import predict
from fhn_core.priors import (
    check_class_priors,
    label_prior,
    mix_text,
    scene_prior,
    shift_to_prior,
    uniform_prior,
)
from fhn_core.task import SegmentationTask
from fhn_core.training import TrainConfig, Trainer


def _scene(shares: tuple[float, float], n: int = 40_000, seed: int = 0):
    """Cells of two unit Gaussian classes at -1 and +1 in the given shares, and the exact
    posterior logits of a classifier trained with equal classes (prior 0.5 / 0.5)."""
    rng = np.random.default_rng(seed)
    truth = (rng.random(n) < shares[1]).astype(np.int64)
    x = rng.normal(size=n) + np.where(truth == 1, 1.0, -1.0)
    logits = torch.from_numpy(np.stack([-(x + 1) ** 2 / 2, -(x - 1) ** 2 / 2]))
    return logits.reshape(2, 200, n // 200), truth.reshape(200, n // 200)


@pytest.mark.parametrize("shares", [(0.2, 0.8), (0.5, 0.5), (0.9, 0.1)])
def test_em_recovers_the_class_mix_of_a_scene_from_balanced_posteriors(shares):
    logits, _ = _scene(shares)
    q = scene_prior(logits, uniform_prior(2))
    np.testing.assert_allclose(q.numpy(), shares, atol=0.015)


def test_the_shifted_posterior_decides_better_where_the_mix_is_not_the_training_one():
    logits, truth = _scene((0.15, 0.85), seed=1)
    q = scene_prior(logits, uniform_prior(2))
    plain = (logits.argmax(0).numpy() == truth).mean()
    shifted = (shift_to_prior(logits, uniform_prior(2), q).argmax(0).numpy() == truth).mean()
    # Bayes: with the true prior the error of two unit Gaussians 2 apart falls from 15.9 %
    # (the balanced threshold at 0) to about 12 %
    assert shifted > plain + 0.02


def test_a_shift_to_the_training_prior_changes_nothing_and_nan_cells_take_no_part():
    logits, _ = _scene((0.3, 0.7), n=4000)
    same = shift_to_prior(logits, [0.3, 0.7], torch.tensor([0.3, 0.7], dtype=torch.float64))
    torch.testing.assert_close(same, logits)
    with_gap = logits.clone()
    with_gap[:, :5] = float("nan")
    q = scene_prior(with_gap, uniform_prior(2))
    assert torch.isfinite(q).all() and abs(float(q.sum()) - 1) < 1e-9


def test_priors_of_the_loss_and_bad_choices():
    assert uniform_prior(4) == [0.25] * 4
    np.testing.assert_allclose(label_prior(torch.tensor([30, 10, 0])), [0.75, 0.25, 1e-6])
    assert mix_text([0.234, 0.766], ["change"]) == "change 23 %, class 1 77 %"
    with pytest.raises(FhnError, match="'sceen' is not one of"):
        check_class_priors("sceen")
    with pytest.raises(FhnError, match="2 positive class shares"):
        scene_prior(torch.zeros(2, 4), [])


def _model(class_priors: str) -> TrainedModel:
    torch.manual_seed(0)
    net = HyperbolicNetwork(NetworkDesign(2, 2, [Segment(0, 1, 3)]))
    info = ModelInfo(n_classes=2, data_channels=2,
                     normalisation=Normalisation((0.0, 0.0), (1.0, 1.0)),
                     training_prior=[0.5, 0.5], class_priors=class_priors)
    return TrainedModel(net, info)


def test_prediction_takes_the_models_default_and_the_callers_choice_wins():
    data = np.random.default_rng(0).standard_normal((2, 16, 16)).astype(np.float32)
    scene = predict(_model("scene"), data, device="cpu")
    plain = predict(_model("scene"), data, class_priors="training", device="cpu")
    assert plain.scene_prior is None and predict(_model("training"), data).scene_prior is None
    assert scene.scene_prior is not None and abs(float(scene.scene_prior.sum()) - 1) < 1e-6
    # the shift is one constant per class in logits: log-odds move by the same amount
    shift = np.log(scene.scene_prior[1] / scene.scene_prior[0])
    odds = np.log(scene.probabilities[1] / scene.probabilities[0])
    np.testing.assert_allclose(odds - np.log(plain.probabilities[1] / plain.probabilities[0]),
                               shift, atol=1e-3)


@pytest.mark.parametrize(("weights", "expected"), [("balanced", [0.5, 0.5]),
                                                   ("none", [0.75, 0.25])])
def test_the_trainer_keeps_the_prior_its_loss_implies_and_the_tasks_default(weights,
                                                                           expected):
    labels = np.full((16, 16), -1, np.int64)
    labels[2, :12] = 0
    labels[12, :4] = 1
    task = SegmentationTask(np.random.default_rng(0).standard_normal((2, 16, 16))
                            .astype(np.float32), labels, 2, class_priors="scene")
    config = TrainConfig(iterations=1, class_weights=weights, validation_fraction=0.0,
                         checkpoint_every=0, device="cpu")
    trainer = Trainer(task, NetworkDesign(2, 2, [Segment(0, 1, 3)]), config,
                      diagnostics=False)
    info = trainer.model.info
    np.testing.assert_allclose(info.training_prior, expected)
    assert info.class_priors == "scene"
    assert ModelInfo.from_json(info.to_json()).training_prior == info.training_prior


def test_a_validations_scene_shift_is_the_one_predict_applies_with_the_same_network():
    """The auto recipe scores the map of two dates with each fold network's own shift
    (HeldOut.scene_shift): it must be the class mix fhn predict would find with it."""
    rng = np.random.default_rng(1)
    labels = np.full((16, 16), -1, np.int64)
    labels[2, :12], labels[12, :12] = 0, 1
    task = SegmentationTask(rng.standard_normal((2, 16, 16)).astype(np.float32), labels, 2,
                            class_priors="scene")
    config = TrainConfig(iterations=2, validation_fraction=0.3, checkpoint_every=0,
                         device="cpu", patch=None, augment=False)
    trainer = Trainer(task, NetworkDesign(2, 2, [Segment(0, 1, 3)]), config,
                      diagnostics=False)
    trainer.run()
    held = trainer.held_out()
    mix = predict(trainer.final_model(), task.data, device="cpu").scene_prior
    expected = np.log(mix) - np.log(trainer.model.info.training_prior)
    np.testing.assert_allclose(held.scene_shift.numpy(), expected, atol=1e-4)
    assert abs(float(held.scene_shift[1] - held.scene_shift[0])) > 1e-3  # not a no-op
    plain = Trainer(replace(task, class_priors="training"),
                    NetworkDesign(2, 2, [Segment(0, 1, 3)]), config, diagnostics=False)
    assert plain.held_out().scene_shift is None
