"""Calibrated posteriors (BCTS, Alexandari et al. 2020): fitted and bounded; the held-out
logits validation hands on."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fhn_core.calibration import Calibration, HeldOut, fit_calibration
from fhn_core.design import NetworkDesign, Segment
from fhn_core.errors import FhnError
from fhn_core.priors import scene_prior, uniform_prior
from fhn_core.task import SegmentationTask
from fhn_core.training import Progress, TrainConfig, Trainer


def _cells(shares: tuple[float, float], n: int, seed: int, confidence: float = 4.0,
           offset: float = 0.0):
    """Two unit Gaussian classes at -1 and +1 in ``shares``; the logits of a classifier
    trained with equal classes, ``confidence`` times too sure and leaning ``offset``."""
    rng = np.random.default_rng(seed)
    truth = (rng.random(n) < shares[1]).astype(np.int64)
    x = rng.normal(size=n) + np.where(truth == 1, 1.0, -1.0)
    exact = np.stack([-(x + 1) ** 2 / 2, -(x - 1) ** 2 / 2])   # log-odds 2x: calibrated
    return torch.from_numpy(confidence * exact + np.array([[0.0], [offset]])), truth


def test_the_fit_undoes_an_over_confident_and_leaning_network():
    logits, truth = _cells((0.5, 0.5), 20_000, seed=0, confidence=4.0, offset=1.0)
    calibration = fit_calibration(HeldOut(logits, truth), 2)
    assert calibration.temperature == pytest.approx(4.0, rel=0.08)
    # the bias takes back the lean: log-odds offset 1 / T = 0.25 once the temperature is out
    lean = calibration.bias[1] - calibration.bias[0]
    assert lean == pytest.approx(-0.25, abs=0.06)
    np.testing.assert_allclose(calibration.prior, [0.5, 0.5], atol=0.01)


def test_calibrated_em_recovers_a_scene_mix_that_over_confident_em_misses():
    held_logits, held_truth = _cells((0.5, 0.5), 400, seed=1)   # balanced points, as drawn
    calibration = fit_calibration(HeldOut(held_logits, held_truth), 2)
    scene, _ = _cells((0.85, 0.15), 40_000, seed=2)
    plain = scene_prior(scene, uniform_prior(2))
    fixed = scene_prior(calibration.apply(scene), list(calibration.prior))
    assert abs(float(fixed[1]) - 0.15) < 0.03
    assert abs(float(plain[1]) - 0.15) > 2 * abs(float(fixed[1]) - 0.15)


def test_points_the_network_separates_keep_a_finite_temperature():
    # every point right: the likelihood alone would sharpen the posteriors without end
    logits = torch.tensor([[1.0, 0.5, -0.5, -1.0], [-1.0, -0.5, 0.5, 1.0]])
    calibration = fit_calibration(HeldOut(logits, np.array([0, 0, 1, 1])), 2)
    assert 0.05 < calibration.temperature < 1 and np.isfinite(calibration.bias).all()


def test_held_out_cells_thin_pool_and_score():
    logits, truth = _cells((0.5, 0.5), 500, seed=3)
    held = HeldOut(logits, truth)
    thin = held.thinned(most=100, seed=0)
    assert thin.classes.size == 100 and thin.logits.shape == (2, 100)
    assert held.thinned(most=1000) is held
    both = HeldOut.pooled([thin, held])
    assert both.classes.size == 600 and both.logits.shape == (2, 600)
    assert held.metrics().n_labelled == 500
    with pytest.raises(FhnError, match="nothing was validated"):
        HeldOut.pooled([])


def test_bad_calibrations_are_refused_with_what_is_missing():
    with pytest.raises(FhnError, match="temperature must be positive"):
        Calibration(0.0, (0.0, 0.0), (0.5, 0.5))
    with pytest.raises(FhnError, match="one bias and one positive prior share"):
        Calibration(1.0, (0.0,), (0.5, 0.5))
    with pytest.raises(FhnError, match="needs temperature, bias and prior"):
        Calibration.from_dict({"temperature": 2.0})
    with pytest.raises(FhnError, match="held-out logits"):
        fit_calibration(HeldOut(torch.zeros(3, 4), np.zeros(4, np.int64)), 2)


def test_validation_hands_the_logits_it_scored_to_the_callback():
    rng = np.random.default_rng(0)
    data = rng.standard_normal((2, 16, 16)).astype(np.float32)
    labels = np.full((16, 16), -1, np.int64)
    labels[2:5, :10], labels[11:14, :10] = 0, 1
    config = TrainConfig(iterations=4, validate_every=2, validation_fraction=0.3,
                         checkpoint_every=0, device="cpu")
    trainer = Trainer(SegmentationTask(data, labels, 2), NetworkDesign(2, 2, [Segment(0, 1, 3)]),
                      config, diagnostics=False)
    seen: list[Progress] = []
    trainer.run(seen.append)
    validated = [p for p in seen if p.validation is not None]
    assert [p.iteration for p in validated] == [2, 4]
    held = validated[-1].held_out
    assert held is not None and held.classes.size == int((trainer.val_labels >= 0).sum())
    assert held.metrics().kappa == validated[-1].validation.kappa == trainer.validate().kappa
    assert all(p.held_out is None for p in seen if p.validation is None)
