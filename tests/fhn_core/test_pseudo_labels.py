"""Forest-guided training: pseudo-labels only where the forest is sure, never over the
user's labels, a teacher that sees the training labels only (inside cross-validation the
fold's), and a loss that weighs the pseudo-labels as set."""

import numpy as np
import pytest
import torch

from fhn_core import auto_recipe, baseline, pseudo_labels
from fhn_core.auto_recipe import Candidate, Prepared
from fhn_core.cross_validation import spatial_folds
from fhn_core.design import NetworkDesign, Segment
from fhn_core.errors import FhnError
from fhn_core.losses import partial_cross_entropy
from fhn_core.metrics import evaluate
from fhn_core.task import SegmentationTask
from fhn_core.training import TrainConfig, Trainer

DESIGN = NetworkDesign(2, 2, [Segment(0, 2, 4), Segment(1, 2, 8), Segment(0, 2, 4)])


def _map(seed=0, shape=(32, 32), points=60):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    truth = ((np.sin(xx / 5.0) + np.cos(yy / 7.0)) > 0).astype(np.int64)
    signal = truth * 2.0 - 1.0 + 0.4 * rng.standard_normal(shape)
    data = np.stack([signal, rng.standard_normal(shape)]).astype(np.float32)
    labels = np.full(shape, -1, dtype=np.int64)
    ys, xs = rng.integers(0, shape[0], points), rng.integers(0, shape[1], points)
    labels[ys, xs] = truth[ys, xs]
    return data, labels, truth


def test_pseudo_labels_come_only_from_confident_cells_and_never_replace_labels():
    proba = np.array([[[0.95, 0.5, 0.2], [0.69, 0.71, 0.05]],
                      [[0.05, 0.5, 0.8], [0.31, 0.29, 0.95]]], dtype=np.float32)
    labels = np.array([[1, -1, -1], [-1, -1, 0]])
    pseudo = pseudo_labels.confident_cells(proba, labels, threshold=0.7)
    # sure cells get the top class; the 0.5 and 0.69 cells stay unlabelled; user cells too
    assert pseudo.tolist() == [[-1, -1, 1], [-1, 0, -1]]
    grid = pseudo_labels.combine(labels, pseudo, 2)
    assert grid.tolist() == [[1, -1, 3], [-1, 2, 0]]
    real, fake = pseudo_labels.separate(torch.from_numpy(grid), 2)
    assert real.tolist() == labels.tolist() and fake.tolist() == pseudo.tolist()


def test_the_forest_teacher_labels_a_learnable_map_and_skips_nodata():
    data, labels, truth = _map(1)
    data[:, 0, :] = np.nan  # a nodata row
    pseudo = pseudo_labels.forest_pseudo_labels(data, labels, 2, threshold=0.8, seed=0)
    assert (pseudo[0] == -1).all() and (pseudo[labels >= 0] == -1).all()
    sure = pseudo >= 0
    assert sure.mean() > 0.3
    assert (pseudo[sure] == truth[sure]).mean() > 0.9  # the confident cells are mostly right
    looser = pseudo_labels.forest_pseudo_labels(data, labels, 2, threshold=0.55, seed=0)
    assert (looser >= 0).sum() > sure.sum()


def test_the_guided_loss_adds_the_pseudo_term_at_its_weight():
    torch.manual_seed(0)
    scores = torch.randn(1, 2, 4, 4)
    y = torch.full((1, 4, 4), -1)
    y[0, 0, 0], y[0, 1, 1] = 0, 1          # user labels
    y[0, 2:, 2:] = 2                        # pseudo class 0
    y[0, 3, 0] = 3                          # pseudo class 1
    real, fake = pseudo_labels.separate(y, 2)
    loss = pseudo_labels.GuidedLoss(2, 0.25, None)(scores, y, lambda t: t, None)
    expected = partial_cross_entropy(scores, real) + 0.25 * partial_cross_entropy(scores, fake)
    assert torch.isclose(loss, expected)
    only_pseudo = torch.where(y < 2, -1, y)  # a window without user labels still trains
    value = pseudo_labels.GuidedLoss(2, 0.25, None)(scores, only_pseudo, lambda t: t, None)
    assert torch.isfinite(value) and value > 0


@pytest.mark.parametrize("bad", [{"guide": "teacher"}, {"guide_threshold": 0.0},
                                 {"guide_threshold": 1.5}, {"guide_weight": 0.0}])
def test_bad_guide_settings_are_refused_with_the_setting_named(bad):
    with pytest.raises(FhnError, match=next(iter(bad))):
        TrainConfig(**bad)


def test_inside_cross_validation_the_teacher_sees_only_the_folds_training_labels(monkeypatch):
    data, labels, _ = _map(2, points=80)
    folds = spatial_folds(labels, 3, seed=0)
    seen: list[np.ndarray] = []
    real_fit = baseline.fit_forest

    def recording_fit(features, fit_labels, seed=0, trees=baseline.N_TREES):
        seen.append(fit_labels.copy())
        return real_fit(features, fit_labels, seed, trees)

    monkeypatch.setattr(baseline, "fit_forest", recording_fit)
    task = SegmentationTask(data, labels, 2)
    config = TrainConfig(iterations=2, device="cpu", guide="forest", patch=(16, 16))
    prepared = Prepared(task, DESIGN, config)
    for fold in range(folds.n_folds):
        seen.clear()
        auto_recipe.train_fold(prepared, folds, fold, auto_recipe.fold_config(config, True))
        train, val = folds.split(labels, fold)
        assert len(seen) == 1
        assert np.array_equal(seen[0], train)          # exactly the fold's training cells
        assert (seen[0][val >= 0] == -1).all() and (val >= 0).any()


def test_a_guided_network_learns_the_map_from_few_points_on_windows():
    data, labels, truth = _map(4, shape=(48, 48), points=30)
    task = SegmentationTask(data, labels, 2)
    config = TrainConfig(iterations=40, device="cpu", learning_rate=0.02, guide="forest",
                         patch=(16, 16), validation_fraction=0.0, checkpoint_every=0)
    trainer = Trainer(task, DESIGN, config, diagnostics=False)
    assert trainer.sampler.size == (16, 16) and trainer.guide.coverage > 0.3
    result = trainer.run()
    from fhn_core.prediction import predict_logits
    from fhn_core.task import Normalisation, to_input

    x = to_input(task.data, Normalisation.of(task.data), DESIGN)
    classes = predict_logits(result.model.net, x, 2).argmax(0).numpy()
    assert evaluate(classes, truth, 2).kappa > 0.7


def test_the_dates_candidates_start_with_the_guided_one_on_windows():
    first = auto_recipe.candidates_for("dates")[0]
    assert first.overrides["training.guide"] == "forest"
    assert first.overrides["training.patch"] == (auto_recipe.GUIDE_PATCH,) * 2
    assert first.overrides["data.change_channels"] is True
    # on seismic too the guided network goes first, on windows of 64 traces and whole traces
    # (benchmarks/README, "The auto recipe reworked"); a plain one follows
    seismic = auto_recipe.candidates_for("seismic")
    assert seismic[0].overrides["training.guide"] == "forest"
    assert seismic[0].overrides["training.patch"] == (64, 64, 0)
    assert "training.guide" not in seismic[1].overrides
    # a user who fixed the window keeps it; the guide is still tried
    kept = auto_recipe.open_candidates([first], {"training.patch"})[0]
    assert "training.patch" not in kept.overrides and kept.overrides["training.guide"]


def test_a_later_candidate_whose_pilot_does_not_fit_the_budget_is_not_started():
    data, labels, _ = _map(5)
    folds = spatial_folds(labels, 2, seed=0)
    ticks = iter(range(10_000))

    def clock():  # every reading one "second" later, so a pilot looks expensive
        return float(next(ticks))

    def prepare(candidate: Candidate) -> Prepared:
        return Prepared(SegmentationTask(data, labels, 2), DESIGN,
                        TrainConfig(iterations=4, device="cpu", patch=None))

    choice, _ = auto_recipe.choose([Candidate("a", {}), Candidate("b", {"x": 1})], prepare,
                                   folds, budget_seconds=20, choose_iterations=False,
                                   clock=clock)
    assert [r.status for r in choice.results] == ["scored", "skipped"]
    assert "pilot" in choice.results[1].reason
