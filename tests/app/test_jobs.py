"""The background training job, without streamlit: progress, files, stop, errors, one at a time."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app import jobs, runs
from assets.demo_project import ensure_demo_project
from fhn_core.checkpoint import TrainedModel, load_checkpoint
from fhn_core.design import NetworkDesign, Segment
from fhn_core.training import TrainConfig, Trainer
from io_adapters.labels import LabelSet
from io_adapters.project import Project
from io_adapters.seismic_attributes import attributes_of

SHAPE = (16, 16, 32)
TINY = NetworkDesign(5, 3, (Segment(0, 1, 4), Segment(1, 1, 4), Segment(0, 1, 4)))
WAIT = 120.0


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_demo_project(tmp_path_factory.mktemp("jobs") / "demo", shape=SHAPE)


def config(iterations: int, **kw) -> TrainConfig:
    return TrainConfig(iterations=iterations, patch=(8, 8, None), validate_every=2,
                       checkpoint_every=0, learning_rate=0.01, **kw)


def test_job_trains_and_writes_model_prediction_and_metrics(demo: Path) -> None:
    job = jobs.registry().start(jobs.JobSpec(demo, TINY, config(4)))
    assert job.wait(WAIT), "the job did not finish"
    snap = job.snapshot()
    assert snap.status == "finished", snap.error
    assert [h["iteration"] for h in snap.history] == [1, 2, 3, 4]
    assert all(np.isfinite(h["loss"]) for h in snap.history)
    assert [h["iteration"] for h in snap.history if h["val_miou"] is not None] == [2, 4]
    assert snap.iteration == snap.iterations == 4 and snap.fraction == 1.0

    project = Project.open(demo)
    info = runs.read_run(project, job.name)
    assert (info.status, info.iteration, info.has_model, info.has_checkpoint,
            info.has_prediction) == ("finished", 4, True, True, True)
    assert info.class_names == project.load_labels().class_names
    model = TrainedModel.load(runs.RunPaths.of(project, job.name).model_dir)
    assert model.design == TINY
    prediction = runs.load_prediction(project, job.name)
    assert prediction.classes.shape == SHAPE
    assert prediction.probabilities.shape == (5, *SHAPE)
    np.testing.assert_allclose(prediction.probabilities.sum(0), 1.0, atol=1e-4)
    train, val = runs.load_split_labels(project, job.name)
    labels = project.load_labels().labels
    assert val is not None and (val >= 0).any()
    # training and validation labels split the painted labels without overlap
    assert not ((train >= 0) & (val >= 0)).any()
    assert np.array_equal(np.where(val >= 0, val, train), labels)
    scores = runs.load_metrics(project, job.name)
    from fhn_core.metrics import evaluate

    expected = evaluate(prediction.classes, val, 5)
    assert scores["validation"].mean_iou == pytest.approx(expected.mean_iou)
    assert snap.val_miou == pytest.approx(expected.mean_iou)


def test_stop_ends_the_run_with_a_checkpoint_that_resumes(demo: Path) -> None:
    seen: list[int] = []
    job = jobs.registry().start(jobs.JobSpec(demo, TINY, config(10_000)))
    for _ in range(int(WAIT * 10)):
        snap = job.snapshot()
        if snap.iteration >= 2:
            break
        assert not job.wait(0.1), job.snapshot().error
    seen.append(job.snapshot().iteration)
    assert jobs.registry().stop()
    assert job.wait(WAIT)
    snap = job.snapshot()
    assert snap.status == "stopped", snap.error
    assert seen[0] <= snap.iteration < 10_000
    project = Project.open(demo)
    paths = runs.RunPaths.of(project, job.name)
    model, _tensors, state = load_checkpoint(paths.checkpoint_dir)
    assert state["iteration"] == snap.iteration
    assert runs.read_run(project, job.name).has_prediction
    # the checkpoint continues training where it stopped
    from app.training_task import build_task

    da = project.load_data()
    task = build_task(da, project.load_labels(da))
    trainer = Trainer.resume(paths.run_dir, task, config(snap.iteration + 1))
    assert trainer.iteration == snap.iteration
    assert trainer.run().iteration == snap.iteration + 1
    # ... and so does the registry, from the page's "continue" button
    again = jobs.registry().start(jobs.JobSpec(demo, TINY, config(snap.iteration + 2),
                                               resume=job.name))
    assert again.wait(WAIT) and again.snapshot().status == "finished", again.snapshot().error
    assert again.name == job.name


def test_attribute_channels_reach_the_model_and_survive_a_resume(demo: Path) -> None:
    job = jobs.registry().start(jobs.JobSpec(demo, TINY, config(2), vertical_channel=True,
                                             envelope_channel=True, semblance_channel=True))
    assert job.wait(WAIT) and job.snapshot().status == "finished", job.snapshot().error
    project = Project.open(demo)
    paths = runs.RunPaths.of(project, job.name)
    names = TrainedModel.load(paths.model_dir).info.channel_names
    assert names[0] == "amplitude" and len(names) == 4
    assert all(attributes_of(names).values())
    assert runs.read_run(project, job.name).channel_names == names
    # the page's "continue" button sends no flag: the run keeps the inputs it was trained on
    again = jobs.registry().start(jobs.JobSpec(demo, TINY, config(3), resume=job.name))
    assert again.wait(WAIT) and again.snapshot().status == "finished", again.snapshot().error
    assert TrainedModel.load(paths.model_dir).info.channel_names == names
    assert runs.read_run(project, job.name).channel_names == names


def test_augmented_prediction_is_what_the_job_saves(demo: Path) -> None:
    from app.layout import layout_for_model
    from fhn_core.prediction import predict

    job = jobs.registry().start(jobs.JobSpec(demo, TINY, config(2), augment=True))
    assert job.wait(WAIT) and job.snapshot().status == "finished", job.snapshot().error
    project = Project.open(demo)
    model = TrainedModel.load(runs.RunPaths.of(project, job.name).model_dir)
    layout = layout_for_model(project.load_data(), model)
    saved = runs.load_prediction(project, job.name).probabilities
    np.testing.assert_allclose(saved, predict(model, layout.data, augment=True,
                                              device="cpu").probabilities, atol=1e-6)
    plain = predict(model, layout.data, device="cpu").probabilities
    assert np.abs(saved - plain).max() > 1e-5  # augmentation changed the answer


def test_a_job_asked_for_the_scenes_class_mix_saves_and_reports_it(demo: Path) -> None:
    from app.layout import layout_for_model
    from fhn_core.prediction import predict

    job = jobs.registry().start(jobs.JobSpec(demo, TINY, config(2), class_priors="scene"))
    assert job.wait(WAIT) and job.snapshot().status == "finished", job.snapshot().error
    assert "class mix re-estimated on the scene (" in job.snapshot().message
    project = Project.open(demo)
    model = TrainedModel.load(runs.RunPaths.of(project, job.name).model_dir)
    assert model.info.class_priors == "training"  # seismic: the job's choice, not the model's
    layout = layout_for_model(project.load_data(), model)
    saved = runs.load_prediction(project, job.name).probabilities
    scene = predict(model, layout.data, class_priors="scene", device="cpu")
    np.testing.assert_allclose(saved, scene.probabilities, atol=1e-6)
    assert np.abs(saved - predict(model, layout.data, device="cpu").probabilities).max() > 1e-5


def test_one_job_at_a_time(demo: Path) -> None:
    first = jobs.registry().start(jobs.JobSpec(demo, TINY, config(10_000)))
    with pytest.raises(jobs.JobBusy, match=first.name):
        jobs.registry().start(jobs.JobSpec(demo, TINY, config(2)))
    first.stop()
    assert first.wait(WAIT)
    second = jobs.registry().start(jobs.JobSpec(demo, TINY, config(1)))
    assert second.wait(WAIT) and second.snapshot().status == "finished"
    assert jobs.registry().current() is second


def test_bad_input_ends_the_job_with_a_readable_message(demo: Path) -> None:
    project = Project.open(demo)
    empty = project.load_labels()
    project.save_labels(LabelSet.empty(empty.shape, empty.classes, empty.dims))
    job = jobs.registry().start(jobs.JobSpec(demo, TINY, config(2)))
    assert job.wait(WAIT)
    snap = job.snapshot()
    assert snap.status == "failed"
    assert "no labels" in snap.error and "Traceback" not in snap.error
    assert runs.read_run(project, job.name).status == "failed"
    # a design the data cannot take: 2D network on a 3D volume
    flat = NetworkDesign(5, 2, (Segment(0, 1, 4),))
    job = jobs.registry().start(jobs.JobSpec(demo, flat, config(2)))
    assert job.wait(WAIT)
    assert job.snapshot().status == "failed"
    assert "2D" in job.snapshot().error and "3D" in job.snapshot().error


def test_an_auto_job_records_its_cross_validated_choice_and_the_baseline(demo: Path) -> None:
    # a budget this small scores the first candidate only (the others are listed as skipped)
    spec = jobs.JobSpec(demo, TINY, config(2), recipe="auto", budget_minutes=0.01)
    job = jobs.registry().start(spec)
    assert job.wait(WAIT * 3), "the job did not finish"
    snap = job.snapshot()
    assert snap.status == "finished", snap.error
    project = Project.open(demo)
    info = runs.read_run(project, job.name)
    record = info.cross_validation
    assert info.recipe == "auto" and record is not None
    names = project.load_labels().class_names
    assert set(record["network"]["class_iou"]) == set(names)
    assert record["baseline"]["n_folds"] == record["network"]["n_folds"] >= 2
    assert [c["status"] for c in record["candidates"]] == ["scored"] + ["skipped"] * 3
    assert record["chosen"] == record["candidates"][0]["name"]
    assert info.design == TrainedModel.load(runs.RunPaths.of(project, job.name).model_dir
                                            ).design.to_dict()
    assert runs.has_baseline(project, job.name)
    forest = runs.load_prediction(project, job.name, source="baseline")
    assert forest.classes.shape == SHAPE and forest.probabilities.shape == (5, *SHAPE)
