"""The auto recipe in the app: the Train page's default and budget, the Results page's
cross-validated scores beside the baseline's, the plain message when the baseline wins,
and the baseline's export."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from app import jobs, runs
from assets.demo_project import ensure_demo_project
from fhn_core.auto_recipe import (
    AUTO_ITERATIONS,
    BASELINE_WINS,
    AutoChoice,
    Candidate,
    CandidateResult,
)
from fhn_core.cross_validation import FoldScores, spatial_folds
from fhn_core.design import NetworkDesign, Segment
from fhn_core.metrics import evaluate
from fhn_core.training import TrainConfig
from io_adapters.project import Project

PAGES = Path(__file__).resolve().parents[2] / "app" / "screens"
TRAIN, RESULTS, EXPORT = (str(PAGES / f"{p}.py") for p in ("train", "results", "export"))
WAIT = 120.0
SHAPE = (16, 16, 32)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_demo_project(tmp_path_factory.mktemp("auto") / "demo", shape=SHAPE)


def _run(script: str) -> AppTest:
    at = AppTest.from_file(script, default_timeout=90).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _scores(labels: np.ndarray, right: float, n_folds: int = 3) -> FoldScores:
    """Real fold scores of a prediction that gets about ``right`` of the cells right."""
    rng = np.random.default_rng(int(right * 100))
    out = []
    for _ in range(n_folds):
        ref = labels[labels >= 0]
        pred = np.where(rng.random(ref.size) < right, ref, (ref + 1) % 5)
        out.append(evaluate(pred, ref, 5))
    return FoldScores(tuple(out))


def _auto_run(demo: Path, network: float, forest: float, baseline_weight: float = 0.0,
              mapped: float | None = None, map_label: str = "") -> str:
    """A finished run whose record is the auto recipe's, with these cell accuracies (and the
    forest's weight in its map)."""
    job = jobs.registry().start(jobs.JobSpec(
        demo, NetworkDesign(5, 3, (Segment(0, 1, 4), Segment(1, 1, 4), Segment(0, 1, 4))),
        TrainConfig(iterations=2, patch=(8, 8, None), validate_every=2)))
    assert job.wait(WAIT) and job.snapshot().status == "finished", job.snapshot().error
    project = Project.open(demo)
    labels = project.load_labels().labels.astype(np.int64)
    folds = spatial_folds(labels, 3, vertical_axis=2)
    chosen = CandidateResult(Candidate("attributes", {"data.envelope_channel": True}),
                             fold_seconds=[1.0] * 3, iterations=2,
                             scores=_scores(labels, network))
    choice = AutoChoice(chosen, [chosen], folds, 600.0, 3.0, _scores(labels, forest),
                        reason="Adopted 'attributes' at 2 iterations.",
                        baseline_weight=baseline_weight, map_label=map_label,
                        mapped=None if mapped is None else _scores(labels, mapped))
    info = runs.read_run(project, job.name)
    info = replace(info, recipe="auto",
                   cross_validation=choice.as_dict(project.load_labels().class_names))
    paths = runs.RunPaths.of(project, job.name)
    runs.write_run(paths, info)
    network_prediction = runs.load_prediction(project, job.name, mmap=False)
    runs.save_baseline_prediction(paths, replace(
        network_prediction, classes=np.zeros_like(network_prediction.classes)))
    return job.name


def test_results_page_shows_both_cross_validated_scores_and_says_when_the_forest_wins(
        demo: Path) -> None:
    name = _auto_run(demo, network=0.6, forest=0.9)
    at = _run(RESULTS)
    info = runs.read_run(Project.open(demo), name)
    record = info.cross_validation
    assert any(record["score_line"] in m.value for m in at.markdown)
    assert "baseline" in record["score_line"] and "3 spatial folds" in record["score_line"]
    shown = {m.label: m.value for m in at.metric}
    net, base = record["network"], record["baseline"]
    assert shown["Network kappa"] == f"{net['kappa']:.2f} ± {net['kappa_sd']:.2f}"
    assert shown["Baseline kappa"] == f"{base['kappa']:.2f} ± {base['kappa_sd']:.2f}"
    assert base["kappa"] > net["kappa"]
    assert any(w.value == BASELINE_WINS for w in at.warning)
    at.button(key="fhn-results-baseline-export").click().run()
    assert not at.exception
    written = runs.RunPaths.of(Project.open(demo), name).export_dir / \
        f"{name}-baseline-classes.sgy"
    assert written.is_file(), [s.value for s in at.success] + [e.value for e in at.error]
    export = _run(EXPORT)
    options = export.radio(key="fhn-export-source").options
    assert options[0] == "the network" and "baseline" in options[1]
    assert not any("mean of the network's" in i.value for i in at.info)  # not blended


def test_results_page_says_nothing_of_a_win_when_the_network_wins(demo: Path) -> None:
    _auto_run(demo, network=0.95, forest=0.5, baseline_weight=0.5)
    at = _run(RESULTS)
    assert not any(w.value == BASELINE_WINS for w in at.warning)
    assert any("Cross-validated" in m.value for m in at.markdown)
    # a seismic run of the auto recipe maps the mean of the two models, and says so
    assert any("mean of the network's class probabilities and the per-cell baseline's "
               "(the baseline's weight 0.5)" in i.value for i in at.info)
    options = _run(EXPORT).radio(key="fhn-export-source").options
    assert options[0] == "the network with the per-cell baseline (mean)"


def test_the_train_page_defaults_to_auto_for_the_default_design(demo: Path) -> None:
    at = _run(TRAIN)
    assert at.radio(key="fhn-train-recipe").value == "fixed"  # the demo's tuned recipe
    at.selectbox(key="fhn-train-preset").set_value("default").run()
    assert at.radio(key="fhn-train-recipe").value == "auto"
    assert not at.number_input(key="fhn-train-budget-minutes").disabled
    assert [n for n in at.number_input if n.label == "Iterations"][0].disabled
    assert any("Auto chooses among" in c.value for c in at.caption)
    at.number_input(key="fhn-train-budget-minutes").set_value(2.0).run()
    at.button(key="fhn-train-start").click().run()
    job = jobs.registry().current()
    assert job.spec.recipe == "auto" and job.spec.budget_minutes == 2.0
    assert job.spec.config.iterations == AUTO_ITERATIONS
    job.stop()
    assert job.wait(WAIT)


def test_results_page_scores_the_map_where_it_is_not_the_networks_own(demo: Path) -> None:
    """Two dates map with the scene's class mix: the page shows the map's own score beside
    the network's and compares the forest with the map."""
    _auto_run(demo, network=0.95, forest=0.8, mapped=0.6, map_label="the scene's class mix")
    at = _run(RESULTS)
    shown = {m.label: m.value for m in at.metric}
    assert "Map (the scene's class mix) kappa" in shown
    assert any("differs from the network's own answer (the scene's class mix)" in i.value
               for i in at.info)
    assert any(w.value == BASELINE_WINS for w in at.warning)  # 0.8 beats the map, not the net
    options = _run(EXPORT).radio(key="fhn-export-source").options
    assert options == ["the network (the scene's class mix)",
                       "the per-cell baseline (random forest)"]
    table = at.dataframe[0].value
    assert {"network IoU", "baseline IoU", "map IoU", "map ±"} <= set(table.columns)
    assert table["map IoU"].notna().all()
