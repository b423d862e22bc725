"""The per-cell baseline and the auto recipe: scores on blocked folds, the adoption rule,
user-fixed settings kept, the budget respected."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from fhn_core import auto_recipe, baseline
from fhn_core.auto_recipe import Candidate, CandidateResult, Prepared, adopt, open_candidates
from fhn_core.calibration import HeldOut
from fhn_core.cross_validation import FoldScores, spatial_folds
from fhn_core.design import NetworkDesign, Segment
from fhn_core.errors import FhnError
from fhn_core.metrics import evaluate
from fhn_core.task import SegmentationTask
from fhn_core.training import TrainConfig

DESIGN = NetworkDesign(2, 2, [Segment(0, 2, 4), Segment(1, 2, 8), Segment(0, 2, 4)])


def _map(seed=0, shape=(32, 32)):
    """Two classes in smooth regions; channel 0 tells them apart, channel 1 is noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    truth = ((np.sin(xx / 5.0) + np.cos(yy / 7.0)) > 0).astype(np.int64)
    signal = truth * 2.0 - 1.0 + 0.3 * rng.standard_normal(shape)
    noise = rng.standard_normal(shape)
    labels = np.full(shape, -1, dtype=np.int64)
    ys, xs = rng.integers(0, shape[0], 120), rng.integers(0, shape[1], 120)
    labels[ys, xs] = truth[ys, xs]
    return np.stack([signal, noise]).astype(np.float32), labels, truth


def test_the_baseline_scores_high_on_an_informative_channel_and_low_on_noise():
    data, labels, truth = _map()
    folds = spatial_folds(labels, 4, seed=0)
    good = baseline.cross_validated(SegmentationTask(data, labels, 2), folds)
    bad = baseline.cross_validated(SegmentationTask(data[1:], labels, 2), folds)
    assert good.kappa > 0.8 and len(good.folds) == 4
    assert bad.kappa < 0.3
    forest = baseline.fit_forest(baseline.cell_features(data), labels, seed=0)
    classes, proba = baseline.predict_forest(forest, baseline.cell_features(data), 2)
    assert classes.shape == truth.shape and proba.shape == (2, *truth.shape)
    assert evaluate(classes, truth, 2).kappa > 0.8
    again = baseline.fit_forest(baseline.cell_features(data), labels, seed=0)  # refit = same
    assert np.array_equal(baseline.predict_forest(again, baseline.cell_features(data), 2)[0],
                          classes)
    # its training table alone (what a run stores) refits the same trees, off the grid too
    rows, classes_of_rows = baseline.training_table(baseline.cell_features(data), labels, 0)
    assert rows.shape == (int((labels >= 0).sum()), 2)
    from_table = baseline.fit_forest_on(rows.copy(), classes_of_rows.copy(), seed=0)
    np.testing.assert_array_equal(
        baseline.predict_forest(from_table, baseline.cell_features(data), 2)[1], proba)
    with pytest.raises(FhnError, match="one class per feature row"):
        baseline.fit_forest_on(rows, classes_of_rows[:-1])


def test_the_baseline_folds_a_slice_axis_into_features():
    data = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)
    assert baseline.cell_features(data, slice_axis=0).shape == (6, 8, 8)


def _prepare_for(data, labels, iterations=16):
    def prepare(candidate: Candidate) -> Prepared:
        channels = candidate.overrides["data.channels"]
        task = SegmentationTask(data[channels], labels, 2)
        config = TrainConfig(iterations=iterations, learning_rate=0.02, device="cpu",
                             patch=None, augment=False)
        return Prepared(task, DESIGN, config)
    return prepare


def test_auto_adopts_the_clearly_better_candidate_and_reports_it():
    data, labels, _ = _map(1)
    folds = spatial_folds(labels, 2, seed=0)
    candidates = [Candidate("noise only", {"data.channels": [1]}, "a useless input"),
                  Candidate("signal", {"data.channels": [0, 1]}, "the informative input")]
    lines = []
    choice, prepared = auto_recipe.choose(
        candidates, _prepare_for(data, labels, iterations=12), folds, budget_seconds=600,
        baseline=lambda p: baseline.cross_validated(p.task, folds), report=lines.append)
    assert choice.chosen.candidate.name == "signal"
    noise = choice.results[0].scores
    assert choice.chosen.scores.kappa > noise.kappa + 0.3
    assert 0 < choice.chosen.iterations <= 12
    assert prepared.task.data.shape[0] == 2
    record = choice.as_dict(["a", "b"])
    assert record["chosen"] == "signal" and record["network"]["n_folds"] == 2
    assert record["baseline"]["n_folds"] == 2 and "rule" in record
    assert "spatial folds, cross-validated" in choice.score_line()
    assert any("fold 2/2" in line for line in lines)
    final = auto_recipe.final_config(prepared, choice.chosen)
    assert final.last_iteration == choice.chosen.iterations and final.validation_fraction == 0


def test_the_budget_stops_adding_candidates():
    data, labels, _ = _map(2)
    folds = spatial_folds(labels, 3, seed=0)
    candidates = [Candidate("first", {"data.channels": [0]}),
                  Candidate("second", {"data.channels": [0, 1]}),
                  Candidate("third", {"data.channels": [1]})]
    choice, _ = auto_recipe.choose(candidates, _prepare_for(data, labels, iterations=4), folds,
                                   budget_seconds=0.01)
    assert [r.status for r in choice.results] == ["scored", "skipped", "skipped"]
    assert "budget" in choice.results[1].reason
    assert choice.chosen.candidate.name == "first"
    assert "Not tried within the budget: second, third" in choice.reason
    assert "more than the budget" in choice.reason


def _result(name, kappas, seconds):
    ref = np.array([0, 1] * 10)
    folds = []
    for k in kappas:  # a confusion with the wanted kappa: flip a share of the cells
        wrong = round((1 - k) / 2 * ref.size)
        pred = ref.copy()
        pred[:wrong] = 1 - pred[:wrong]
        folds.append(evaluate(pred, ref, 2))
    return CandidateResult(Candidate(name, {}), fold_seconds=[seconds] * len(kappas),
                           iterations=10, scores=FoldScores(tuple(folds)))


def test_adoption_rule_prefers_the_cheaper_candidate_within_one_standard_error():
    best = _result("big", [0.9, 0.7, 0.8, 0.9], seconds=100)
    close = _result("small", [0.8, 0.8, 0.8, 0.8], seconds=10)
    far = _result("tiny", [0.3, 0.2, 0.3, 0.3], seconds=1)
    chosen, reason = adopt([best, close, far])
    assert chosen.candidate.name == "small"
    assert "within one standard error" in reason and "'big'" in reason
    clear = _result("clear", [1.0, 1.0, 0.9, 1.0], seconds=100)
    chosen, _ = adopt([clear, close])
    assert chosen.candidate.name == "clear"


def test_user_fixed_settings_are_not_chosen():
    seismic = auto_recipe.candidates_for("seismic")
    fixed = open_candidates(seismic, {"data.envelope_channel", "data.semblance_channel",
                                      "design"})
    assert all("design.layers_per_level" not in c.overrides for c in fixed)
    assert all("data.envelope_channel" not in c.overrides for c in fixed)
    assert len(fixed) == 3 and "(=" in fixed[0].name  # two of them became the same
    assert fixed[0].overrides["training.guide"] == "forest"
    assert "training.guide" not in fixed[1].overrides
    assert fixed[2].overrides["training.ensemble"] == 3
    assert len(open_candidates(seismic, {"design", "data.envelope_channel", "training.guide",
                                         "data.semblance_channel", "training.ensemble"})) == 1
    assert len(open_candidates(seismic, set())) == 4
    assert auto_recipe.folds_for("seismic") == 2 and auto_recipe.folds_for("dates") == 5
    dates = [c.overrides for c in auto_recipe.candidates_for("dates")]
    assert dates[0]["data.change_channels"] and dates[0]["training.guide"] == "forest"
    assert dates[1]["data.change_channels"] and not dates[2]["data.change_channels"]


def test_a_fold_without_two_training_classes_is_refused():
    labels = np.full((40, 40), -1, dtype=np.int64)
    labels[2, 2], labels[2, 3], labels[38, 38] = 0, 1, 0
    folds = spatial_folds(labels, 2, side=8)
    with pytest.raises(Exception, match="fewer than two classes"):
        auto_recipe.check_folds(folds, labels)


def test_a_small_budget_lowers_the_iteration_budget_to_what_fits():
    data, labels, _ = _map(3)
    folds = spatial_folds(labels, 2, seed=0)
    prepared = _prepare_for(data, labels, iterations=10_000)(
        Candidate("signal", {"data.channels": [0, 1]}))
    cap = auto_recipe.iterations_within(prepared, folds, budget_seconds=30.0)
    assert cap is not None and auto_recipe.MIN_ITERATIONS <= cap < 10_000
    assert auto_recipe.iterations_within(
        _prepare_for(data, labels, iterations=2)(Candidate("s", {"data.channels": [0]})),
        folds, budget_seconds=3600.0) is None


def test_the_baseline_wins_only_when_its_mean_kappa_is_higher_not_on_rounding():
    network = _result("net", [0.8, 0.9, 0.9, 0.7, 0.9], seconds=1)
    forest = _result("forest", [0.9, 0.7, 0.8, 1.0, 0.8], seconds=1)  # the same mean, 0.84
    folds = spatial_folds(np.array([[0, -1, 1, -1, 0, 1]]), 2, side=1)
    tie = auto_recipe.AutoChoice(network, [network], folds, 60.0, 1.0, forest.scores)
    assert not tie.baseline_wins and auto_recipe.BASELINE_WINS not in tie.text()
    ahead = _result("forest", [0.9, 0.8, 0.8, 1.0, 0.8], seconds=1)
    assert auto_recipe.AutoChoice(network, [network], folds, 60.0, 1.0,
                                  ahead.scores).baseline_wins


def test_folds_slower_than_the_pilot_said_stop_earlier_to_keep_the_budget(monkeypatch):
    data, labels, _ = _map(6)
    folds = spatial_folds(labels, 3, seed=0)
    now = [0.0]
    real_fold = auto_recipe.train_fold

    def slow_fold(prepared, folds, fold, config, should_stop=None):
        now[0] += config.last_iteration  # a second a step, which the pilot did not see
        return real_fold(prepared, folds, fold, config, should_stop)

    monkeypatch.setattr(auto_recipe, "train_fold", slow_fold)
    monkeypatch.setattr(auto_recipe, "MIN_ITERATIONS", 4)
    choice, prepared = auto_recipe.choose(
        [Candidate("signal", {"data.channels": [0, 1]})],
        _prepare_for(data, labels, iterations=16), folds, budget_seconds=40,
        clock=lambda: now[0])
    result = choice.chosen  # 16 s for fold 1 left 24 s for two folds and the final: 8 each
    assert "folds 2-3 stopped at 8 iterations" in result.reason and now[0] == 32
    assert max(point["iteration"] for point in result.as_dict()["curve"]) == 8
    assert result.iterations <= 8
    assert auto_recipe.final_config(prepared, result).last_iteration == result.iterations


def test_the_final_model_of_two_dates_averages_as_many_networks_as_the_time_left_covers():
    net = _result("net", [0.8, 0.9], seconds=10)
    folds = spatial_folds(np.array([[0, -1, 1, -1, 0, 1]]), 2, side=1)
    prepared = Prepared(SegmentationTask(np.zeros((1, 1, 6), np.float32),
                                         np.array([[0, -1, 1, -1, 0, 1]]), 2),
                        DESIGN, TrainConfig(iterations=20, device="cpu"))

    def members(kind, budget, spent, config=prepared.config, fixed=False):
        choice = auto_recipe.AutoChoice(net, [net], folds, budget, spent)
        n = auto_recipe.final_members(kind, choice, replace(prepared, config=config), fixed)
        return n, choice

    n, choice = members("dates", 600.0, 100.0)      # 500 s left at 10 s a network: the cap
    assert n == auto_recipe.FINAL_MEMBERS["dates"] == 5
    assert choice.final_members == 5 and choice.as_dict()["final_members"] == 5
    assert "averages 5 networks" in choice.reason and "one network's" in choice.reason
    final = auto_recipe.final_config(prepared, net, n)
    assert final.ensemble == 5 and final.last_iteration == net.iterations
    assert members("dates", 600.0, 570.0)[0] == 3   # 30 s left: three networks
    assert members("dates", 600.0, 599.0)[0] == 1   # never fewer than one
    assert members("maps", 600.0, 100.0)[0] == 1    # only two dates average
    assert members("seismic", 600.0, 100.0)[0] == 1
    assert members("dates", 600.0, 100.0, fixed=True)[0] == 1   # the user's ensemble stays
    three = replace(prepared.config, ensemble=3)
    assert members("dates", 600.0, 100.0, config=three)[0] == 1
    assert auto_recipe.final_config(replace(prepared, config=three), net, 1).ensemble == 3


def test_the_out_of_fold_logits_score_every_labelled_cell_once():
    data, labels, _ = _map(2)
    folds = spatial_folds(labels, 3, seed=0)
    prepared = _prepare_for(data, labels, iterations=8)(
        Candidate("signal", {"data.channels": [0, 1]}))
    config = auto_recipe.fold_config(prepared.config, choose_iterations=False)
    curves = [auto_recipe.train_fold(prepared, folds, f, config) for f in range(folds.n_folds)]
    held = HeldOut.pooled([curve[config.last_iteration][1] for curve in curves])
    assert held.logits.shape == (2, int((labels >= 0).sum()))
    assert sorted(held.classes.tolist()) == sorted(labels[labels >= 0].tolist())
    # each fold's kappa is that of its held-out logits
    for curve in curves:
        metrics, fold_held = curve[config.last_iteration]
        assert np.isclose(metrics.kappa, fold_held.metrics().kappa)


def test_the_map_of_a_blended_kind_is_scored_on_the_same_folds_as_the_two_models():
    data, labels, _ = _map(3)
    folds = spatial_folds(labels, 3, seed=0)
    candidates = [Candidate("signal", {"data.channels": [0, 1]})]
    choice, prepared = auto_recipe.choose(
        candidates, _prepare_for(data, labels, iterations=8), folds, budget_seconds=600,
        baseline=lambda p: baseline.cross_validated(p.task, folds, seed=4))
    net, forest = choice.chosen.scores, choice.baseline
    assert list(choice.chosen.held_out) == [choice.chosen.iterations]  # t* only is kept

    def kappas(weight):
        scores = auto_recipe.map_fold_scores(choice.chosen, prepared.task, folds, weight,
                                             seed=4)
        return scores.kappas
    # the blend's two ends are the two models' own fold scores: the cells line up
    np.testing.assert_allclose(kappas(0.0), net.kappas, atol=1e-9)
    np.testing.assert_allclose(kappas(1.0), forest.kappas, atol=1e-9)

    seismic = auto_recipe.mapped("seismic", choice, prepared, seed=4)
    assert seismic.task.baseline_weight == 0.5 and choice.baseline_weight == 0.5
    np.testing.assert_allclose(choice.mapped.kappas, kappas(0.5))
    assert "the map (their mean)" in choice.score_line()
    record = choice.as_dict(["a", "b"])
    assert record["baseline_weight"] == 0.5 and record["map"]["n_folds"] == 3
    assert record["map_label"] == "their mean"
    assert "the map's cross-validated kappa" in record["why"]
    # the forest "wins" only against what the user gets: the map
    assert choice.baseline_wins == (forest.kappa > choice.mapped.kappa + 1e-9)
    assert auto_recipe.mapped("map", choice, prepared) is prepared  # the network's own map


def test_a_map_with_the_scenes_class_mix_is_scored_with_each_folds_own_mix():
    """Two dates map with the class mix EM finds on the scene (fhn_core.priors): each fold
    network's held-out logits move by the shift its own whole-scene map gave."""
    data, labels, _ = _map(3)
    folds = spatial_folds(labels, 3, seed=0)

    def prepare(candidate):
        prepared = _prepare_for(data, labels, iterations=8)(candidate)
        return replace(prepared, task=replace(prepared.task, class_priors="scene"))
    choice, prepared = auto_recipe.choose(
        [Candidate("signal", {"data.channels": [0, 1]})], prepare, folds,
        budget_seconds=600, baseline=lambda p: baseline.cross_validated(p.task, folds))
    held = choice.chosen.held_out[choice.chosen.iterations]
    assert all(h.scene_shift is not None and h.scene_shift.shape == (2,) for h in held)
    same = auto_recipe.mapped("dates", choice, prepared)
    assert same is prepared and choice.baseline_weight == 0  # no blend for two dates
    expected = [evaluate((h.logits + h.scene_shift[:, None].float()).argmax(0).numpy(),
                         h.classes, 2).kappa for h in held]
    np.testing.assert_allclose(choice.mapped.kappas, expected, atol=1e-12)
    assert choice.map_label == "the scene's class mix"
    assert "the map (the scene's class mix)" in choice.score_line()
    assert "class mix it finds on the whole scene" in choice.reason

    # the shift decides: one that drains class 1 out of every fold leaves kappa 0
    drained = [replace(h, scene_shift=torch.tensor([0.0, -1e6], dtype=torch.float64))
               for h in held]
    chosen = replace(choice.chosen, held_out={choice.chosen.iterations: drained})
    scores = auto_recipe.map_fold_scores(chosen, prepared.task, folds, 0.0)
    assert max(scores.kappas) == 0.0 < min(choice.chosen.scores.kappas)
    # a fold without a scene mix (a streamed survey) leaves the map unscored
    unmixed = replace(choice.chosen, held_out={choice.chosen.iterations:
                                               [replace(h, scene_shift=None) for h in held]})
    assert auto_recipe.map_fold_scores(unmixed, prepared.task, folds, 0.0) is None


def test_thinned_held_out_cells_keep_their_positions():
    held = HeldOut(torch.arange(10.0).repeat(2, 1), np.arange(10) % 2)
    thin = held.thinned(most=4, seed=1)
    assert thin.positions.size == 4
    np.testing.assert_array_equal(thin.logits[0].numpy(), thin.positions.astype(float))
    again = thin.thinned(most=2, seed=0)
    assert set(again.positions) <= set(thin.positions)
    np.testing.assert_array_equal(again.logits[0].numpy(), again.positions.astype(float))
