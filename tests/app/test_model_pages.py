"""Train, Results, 3D view and Export pages under streamlit's AppTest, on a small demo copy.

Training runs in the server's background job (app.jobs), which the test process shares
with AppTest: a test starts a run from the page, waits on the job, then reruns the page.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from app import jobs, runs
from assets.demo_project import ensure_demo_project
from fhn_core.checkpoint import TrainedModel, load_checkpoint
from fhn_core.design import NetworkDesign, Segment
from fhn_core.metrics import evaluate
from fhn_core.training import TrainConfig
from io_adapters.project import Project
from io_adapters.segy import read_segy

PAGES = Path(__file__).resolve().parents[2] / "app" / "screens"
TRAIN, RESULTS, VIEW3D, EXPORT = (str(PAGES / f"{p}.py") for p in
                                  ("train", "results", "view3d", "export"))
SHAPE = (16, 16, 32)
TIMEOUT = 90
WAIT = 120.0


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_demo_project(tmp_path_factory.mktemp("pages") / "demo", shape=SHAPE)


@pytest.fixture(scope="module")
def trained(template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the demo with one short finished run (trained through app.jobs)."""
    folder = tmp_path_factory.mktemp("trained") / "demo"
    shutil.copytree(template, folder)
    design = NetworkDesign(5, 3, (Segment(0, 1, 4), Segment(1, 1, 4), Segment(0, 1, 4)))
    job = jobs.registry().start(jobs.JobSpec(folder, design, TrainConfig(
        iterations=3, patch=(8, 8, None), validate_every=3)))
    assert job.wait(WAIT) and job.snapshot().status == "finished", job.snapshot().error
    return folder


def run(script: str) -> AppTest:
    at = AppTest.from_file(script, default_timeout=TIMEOUT).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def quick_settings(at: AppTest, iterations: int) -> AppTest:
    """Choose the quick-check design, a few iterations and small sub-volumes."""
    at.selectbox(key="fhn-train-preset").set_value("quick").run()
    [n for n in at.number_input if n.label == "Iterations"][0].set_value(iterations)
    for axis in ("iline", "xline"):
        [n for n in at.number_input if n.label == axis][0].set_value(8)
    return at.run()


def test_short_training_from_the_train_page_then_results(demo: Path) -> None:
    at = run(TRAIN)
    # the demo project opens on the demo's recipe, which also says how to predict
    assert at.selectbox(key="fhn-train-preset").value == "demo"
    assert at.toggle(key="fhn-train-augment").value and at.toggle(key="fhn-train-order").value
    at = quick_settings(at, 4)
    [n for n in at.number_input if n.label.startswith("Average the weights")][0].set_value(0.9)
    at.toggle(key="fhn-train-order").set_value(True)
    at.run()
    assert not at.error, [e.value for e in at.error]
    start = at.button(key="fhn-train-start")
    assert not start.disabled
    start.click().run()
    job = jobs.registry().current()
    assert job is not None and Path(job.spec.project) == demo
    assert job.spec.design.n_layers == 3 and job.spec.config.iterations == 4
    assert job.spec.config.average_decay == pytest.approx(0.9)
    # seismic data: the sample time and the attributes go in as channels unless switched off
    assert at.toggle(key="fhn-train-vertical").value and job.spec.vertical_channel
    assert at.toggle(key="fhn-train-envelope").value and job.spec.envelope_channel
    assert at.toggle(key="fhn-train-semblance").value and job.spec.semblance_channel
    assert not at.toggle(key="fhn-train-augment").value and not job.spec.augment
    assert job.spec.stratigraphic_order
    assert job.wait(WAIT)
    at.run()
    assert not at.exception
    assert any("Finished 4 iterations" in s.value for s in at.success), job.snapshot().error
    assert [m.value for m in at.metric if m.label == "Iteration"] == ["4 / 4"]
    project = Project.open(demo)
    info = runs.read_run(project, job.name)
    assert info.has_model and info.has_prediction and info.status == "finished"
    # the wells' top-to-bottom order of the units holds down every trace of the prediction
    order = json.loads((runs.RunPaths.of(project, job.name).model_dir / "model.json")
                       .read_text())["class_order"]
    rank = np.argsort(order)[runs.load_prediction(project, job.name).classes.astype(int)]
    assert sorted(order) == [0, 1, 2, 3, 4] and (np.diff(rank, axis=2) >= 0).all()

    results = run(RESULTS)
    assert not results.error, [e.value for e in results.error]
    scores = runs.load_metrics(project, job.name)["validation"]
    table = results.dataframe[0].value
    assert list(table["class"]) == project.load_labels().class_names
    np.testing.assert_allclose(table["IoU"].astype(float), np.round(scores.iou, 4), atol=1e-4)
    shown = [m.value for m in results.metric if m.label == "Mean IoU"]
    assert shown[0] == f"{scores.mean_iou:.3f}"
    # the demo's ground truth is offered as the reference, scored on every cell
    prediction = runs.load_prediction(project, job.name)
    units = np.load(runs.find_reference(project))
    full = evaluate(prediction.classes, units, 5)
    assert f"{full.mean_iou:.3f}" in shown
    assert any(n == full.n_labelled == units.size for n in
               [int(m.value.replace(",", "")) for m in results.metric
                if m.label == "Cells scored"])


def test_stop_on_the_page_leaves_a_usable_checkpoint(demo: Path) -> None:
    at = quick_settings(run(TRAIN), 100_000)
    at.button(key="fhn-train-start").click().run()
    job = jobs.registry().current()
    for _ in range(int(WAIT * 10)):
        if job.snapshot().iteration >= 1:
            break
        assert not job.wait(0.1), job.snapshot().error
    at.run()
    stop = at.button(key="fhn-train-stop")
    assert at.button(key="fhn-train-start").disabled  # one run at a time
    stop.click().run()
    assert job.wait(WAIT)
    snap = job.snapshot()
    assert snap.status == "stopped" and snap.iteration < 100_000
    at.run()
    assert any("Stopped by request" in s.value for s in at.success)
    paths = runs.RunPaths.of(Project.open(demo), job.name)
    model, _, state = load_checkpoint(paths.checkpoint_dir)
    assert state["iteration"] == snap.iteration
    assert TrainedModel.load(paths.model_dir).design == model.design
    assert not run(RESULTS).error  # the stopped run has its prediction too


def test_a_design_that_does_not_fit_is_refused_with_the_estimate(demo: Path) -> None:
    at = run(TRAIN)
    (zeros,) = [t for t in at.toggle if t.label == "Class scores start at zero"]
    assert not zeros.value                      # the demo's design reads data channels
    zeros.set_value(True).run()
    assert any("5 zero channel(s) in front" in c.value for c in at.caption)
    budget = [n for n in at.number_input if n.label == "Use at most (GB)"][0]
    budget.set_value(0.0001).run()
    assert any("does not fit" in e.value for e in at.error), [e.value for e in at.error]
    (code,) = [c.value for c in at.code]
    assert "whole-volume pass" in code and "invertible + BLR" in code
    assert at.button(key="fhn-train-start").disabled
    assert jobs.registry().active() is None


def test_export_page_writes_files_that_read_back(trained: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FHN_PROJECT", str(trained))
    project = Project.open(trained)
    (info,) = runs.list_runs(project)
    at = run(EXPORT)
    at.multiselect(key="fhn-export-what").set_value(["classes", "entropy"])
    at.radio(key="fhn-export-format").set_value(".sgy")
    [b for b in at.button if b.label == "Export"][0].click().run()
    assert not at.error, [e.value for e in at.error]
    at.button(key="fhn-export-model").click().run()
    folder = project.exports_dir / info.name
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        f"{info.name}-{n}" for n in ("classes.sgy", "entropy.sgy", "model.zip"))
    da = project.load_data()
    prediction = runs.load_prediction(project, info.name)
    back = read_segy(folder / f"{info.name}-classes.sgy")
    assert back.sizes == da.sizes
    np.testing.assert_array_equal(back.coords["iline"].values, da.coords["iline"].values)
    np.testing.assert_array_equal(back.values, prediction.classes)
    assert len([b for b in at.get("download_button")]) == 3


def test_3d_view_shows_the_prediction(trained: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FHN_PROJECT", str(trained))
    at = run(VIEW3D)
    assert not at.error, [e.value for e in at.error]
    at.toggle(key="fhn-3d-interactive").set_value(False).run()
    assert not at.exception and not at.error
    assert len(pictures(at)) == 1  # the rendered image instead of the interactive view
    at.radio(key="fhn-3d-layer").set_value("error-reference").run()
    assert not at.exception and not at.error
    assert len(pictures(at)) == 1


def pictures(at: AppTest) -> list[bytes]:
    """The PNG pictures a page wrote into itself (app.ui.image), decoded."""
    import base64
    import re

    found = []
    for block in at.markdown:
        for data in re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", block.value):
            raw = base64.b64decode(data)
            assert raw.startswith(b"\x89PNG")
            found.append(raw)
    return found


def test_an_ensemble_from_the_train_page_shows_its_time_first(demo: Path) -> None:
    at = quick_settings(run(TRAIN), 2)
    [n for n in at.number_input if n.label == "Networks (ensemble)"][0].set_value(2)
    at.run()
    assert any("Estimate the time" in c.value for c in at.caption)
    at.button(key="fhn-train-time").click().run()
    assert not at.exception, [e.value for e in at.exception]
    shown = [m.value for m in at.markdown if "Estimated time" in m.value]
    assert shown and "2 networks x (2 iterations" in shown[0], [m.value for m in at.markdown]
    at.button(key="fhn-train-start").click().run()
    job = jobs.registry().current()
    assert job is not None and job.spec.config.ensemble == 2
    assert job.wait(WAIT) and job.snapshot().status == "finished", job.snapshot().error
    assert job.snapshot().iterations == 4
    model_dir = runs.RunPaths.of(Project.open(demo), job.name).model_dir
    assert json.loads((model_dir / "model.json").read_text())["ensemble"] == 2
    assert (model_dir / "member-1.safetensors").is_file()
