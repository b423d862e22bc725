"""The app's training on several processes (torchrun, 2 ranks with gloo on the CPU): the run
folder the Results page reads, both ranks' losses averaged, Stop and Continue, a failing
process shown as a message, and no process left behind."""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from app import jobs, runs
from app.distributed_job import PROGRESS_LOG, RUN_TOML, error_messages
from assets.demo_project import ensure_demo_project
from fhn_core.checkpoint import TrainedModel, load_checkpoint
from fhn_core.design import NetworkDesign, Segment
from fhn_core.training import TrainConfig, Trainer, sampler_seed
from io_adapters.errors import DataError
from io_adapters.project import Project
from io_adapters.seismic_attributes import attributes_of

SHAPE = (16, 16, 32)
TINY = NetworkDesign(5, 3, (Segment(0, 1, 4), Segment(1, 1, 4), Segment(0, 1, 4)))
WAIT = 300.0
PAGES = Path(__file__).resolve().parents[2] / "app" / "screens"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_demo_project(tmp_path_factory.mktemp("ranks") / "demo", shape=SHAPE)


def config(iterations: int, device: str = runs.cpu_ranks(2), **kw) -> TrainConfig:
    return TrainConfig(iterations=iterations, patch=(8, 8, None), validate_every=2,
                       checkpoint_every=0, learning_rate=0.01, device=device, **kw)


def processes_in(folder: Path) -> list[int]:
    """Processes whose working directory is ``folder`` (torchrun and its ranks run there)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if Path(os.readlink(entry / "cwd")) == folder.resolve():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def loss_of_rank(task, rank: int) -> float:
    """The first iteration's loss of ``rank`` trained alone: the same starting weights (DDP
    broadcasts rank 0's, every rank draws them from the same seed), the rank's own draws."""
    trainer = Trainer(task, TINY, config(1, device="cpu"))
    trainer.generator.manual_seed(sampler_seed(0, rank))
    return trainer.run().history[0]["loss"]


@pytest.mark.slow  # torchrun and two ranks start in 10-20 s
def test_two_cpu_ranks_train_a_run_the_results_page_shows(demo: Path) -> None:
    job = jobs.registry().start(jobs.JobSpec(demo, TINY, config(4)))
    assert job.wait(WAIT), "the job did not finish"
    snap = job.snapshot()
    assert snap.status == "finished", snap.error
    assert [h["iteration"] for h in snap.history] == [1, 2, 3, 4]
    assert [h["iteration"] for h in snap.history if h["val_miou"] is not None] == [2, 4]
    assert snap.iteration == snap.iterations == 4

    project = Project.open(demo)
    paths = runs.RunPaths.of(project, job.name)
    assert processes_in(paths.run_dir) == []
    info = runs.read_run(project, job.name)
    assert (info.status, info.iteration, info.ranks, info.has_model, info.has_checkpoint,
            info.has_prediction) == ("finished", 4, 2, True, True, True)
    assert info.config["device"] == runs.cpu_ranks(2)  # "Continue" trains on 2 again
    start = json.loads((paths.run_dir / PROGRESS_LOG).read_text().splitlines()[0])
    assert (start["event"], start["ranks"]) == ("start", 2)
    described = tomllib.loads((paths.run_dir / RUN_TOML).read_text())
    assert described["data"]["project"] == "../.." and described["training"]["device"] == "cpu"

    # The loss of each step is the mean over both ranks' sub-volumes.
    from app.training_task import build_task

    da = project.load_data()
    task = build_task(da, project.load_labels(da))
    one, other = loss_of_rank(task, 0), loss_of_rank(task, 1)
    assert one != pytest.approx(other, rel=1e-3)
    assert snap.history[0]["loss"] == pytest.approx((one + other) / 2, rel=1e-4)

    model = TrainedModel.load(paths.model_dir)
    assert model.design == TINY
    prediction = runs.load_prediction(project, job.name)
    assert prediction.classes.shape == SHAPE
    np.testing.assert_allclose(prediction.probabilities.sum(0), 1.0, atol=1e-4)
    train, val = runs.load_split_labels(project, job.name)
    assert val is not None and not ((train >= 0) & (val >= 0)).any()
    scores = runs.load_metrics(project, job.name)
    from fhn_core.metrics import evaluate

    assert scores["validation"].mean_iou == pytest.approx(
        evaluate(prediction.classes, val, 5).mean_iou)

    results = AppTest.from_file(str(PAGES / "results.py"), default_timeout=90).run()
    assert not results.exception, [e.value for e in results.exception]
    shown = [m.value for m in results.metric if m.label == "Mean IoU"]
    assert f"{scores['validation'].mean_iou:.3f}" in shown


@pytest.mark.slow  # torchrun and two ranks start in 10-20 s
def test_stop_saves_a_checkpoint_that_continues_on_two_ranks(demo: Path) -> None:
    job = jobs.registry().start(jobs.JobSpec(demo, TINY, config(10_000)))
    for _ in range(int(WAIT * 10)):
        if job.snapshot().iteration >= 1:
            break
        assert not job.wait(0.1), job.snapshot().error
    run_dir = runs.RunPaths.of(Project.open(demo), job.name).run_dir
    assert len(processes_in(run_dir)) >= 3  # torchrun and its two ranks
    assert jobs.registry().stop()
    assert job.wait(WAIT)
    snap = job.snapshot()
    assert snap.status == "stopped", snap.error
    assert 1 <= snap.iteration < 10_000
    project = Project.open(demo)
    paths = runs.RunPaths.of(project, job.name)
    _model, _tensors, state = load_checkpoint(paths.checkpoint_dir)
    assert state["iteration"] == snap.iteration
    assert runs.read_run(project, job.name).has_prediction
    assert processes_in(paths.run_dir) == []
    # the page's "Continue" button: the saved settings, more iterations, on 2 ranks again
    again = jobs.registry().start(jobs.JobSpec(demo, TINY, config(snap.iteration + 1),
                                               resume=job.name))
    assert again.wait(WAIT) and again.snapshot().status == "finished", again.snapshot().error
    assert again.snapshot().iteration == snap.iteration + 1
    assert load_checkpoint(paths.checkpoint_dir)[2]["iteration"] == snap.iteration + 1


@pytest.mark.slow  # torchrun and two ranks start in 10-20 s
def test_a_failing_process_ends_the_job_with_its_message(demo: Path) -> None:
    narrow = NetworkDesign(3, 3, (Segment(0, 1, 4),))  # 3 output channels, 5 classes
    job = jobs.registry().start(jobs.JobSpec(demo, narrow, config(2)))
    assert job.wait(WAIT)
    snap = job.snapshot()
    assert snap.status == "failed"
    assert snap.error.startswith("5 classes but the design's output has 3 channels")
    assert "Traceback" not in snap.error and "fhn: error" not in snap.error
    project = Project.open(demo)
    assert runs.read_run(project, job.name).status == "failed"
    assert processes_in(runs.RunPaths.of(project, job.name).run_dir) == []


def test_error_lines_two_processes_wrote_at_once_give_one_message_each() -> None:
    # what CI's log held once: the second rank's line began before the first's newline
    log = ("[rank0] starting\n"
           "fhn: error: 5 classes but 3 channels; set in_channels to 5"
           "fhn: error: 5 classes but 3 channels; set in_channels to 5\n"
           "E1207 torchrun: process 1 failed\nfhn: error: later\n")
    assert error_messages(log) == ["5 classes but 3 channels; set in_channels to 5"] * 2 + ["later"]
    assert error_messages("no marker here\n") == []


def test_what_several_processes_cannot_do_is_refused_before_starting(demo: Path) -> None:
    with pytest.raises(DataError, match="auto recipe"):
        jobs.registry().start(jobs.JobSpec(demo, TINY, config(2), recipe="auto"))
    with pytest.raises(DataError, match="at least 2"):
        jobs.registry().start(jobs.JobSpec(demo, TINY, config(2, device=runs.cpu_ranks(1))))
    assert jobs.registry().active() is None


def test_device_keys() -> None:
    import torch

    assert runs.processes_of("cpu") == runs.processes_of("cuda:0") == 1
    assert runs.processes_of(runs.cpu_ranks(3)) == 3
    assert runs.rank_device_of(runs.cpu_ranks(3)) == "cpu"
    assert runs.rank_device_of(runs.ALL_GPUS) == "cuda"
    assert runs.rank_device_of("cuda:1") == "cuda:1"
    free, total = runs.free_memory(runs.cpu_ranks(2))
    whole = runs.free_memory("cpu")
    assert total == pytest.approx(whole[1] / 2)
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    keys = [d.key for d in runs.devices()]
    assert (runs.ALL_GPUS in keys) == (gpus >= 2)
    assert not any(k.startswith("cpu-ranks") for k in keys)
    if gpus < 2:
        with pytest.raises(DataError, match="one process per GPU"):
            runs.processes_of(runs.ALL_GPUS)


def test_the_train_page_offers_several_processes_and_starts_them(
        demo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from app.distributed_job import DistributedJob

    # this machine has no two GPUs: offer the CPU processes the same way "All GPUs" is
    real = runs.devices
    monkeypatch.setattr(runs, "devices", lambda: [*real(), runs.Device(
        runs.cpu_ranks(2), "CPU processes (2)", *runs.free_memory(runs.cpu_ranks(2)))])
    at = AppTest.from_file(str(PAGES / "train.py"), default_timeout=90).run()
    assert not at.exception, [e.value for e in at.exception]
    assert not any("processes" in c.value for c in at.caption)
    at.selectbox(key="fhn-train-device").set_value(runs.cpu_ranks(2)).run()
    said = [c.value for c in at.caption if "Trains in 2 processes" in c.value]
    assert said and "averaged" in said[0] and "own sub-volumes" in said[0]
    at.button(key="fhn-train-start").click().run()
    assert not at.exception, [e.value for e in at.exception]
    job = jobs.registry().current()
    assert isinstance(job, DistributedJob) and job.spec.config.device == runs.cpu_ranks(2)
    job.stop()  # while the processes start: they end without a model, and say so
    assert job.wait(WAIT)
    snap = job.snapshot()
    if snap.status == "failed":
        assert snap.error.startswith("stopped before the training processes")
    else:
        assert snap.status == "stopped", snap.error
    assert processes_in(runs.RunPaths.of(Project.open(demo), job.name).run_dir) == []


def test_fhn_train_reads_the_run_description_and_writes_the_progress_log(
        demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """What the processes run, in this one process: the job's run.toml, its labels (a label
    grid, or listed cells as on a survey store), and the JSON lines the job follows."""
    from app.cli import main
    from app.distributed_job import LABELS_FILE, run_description
    from io_adapters.labels import LabelCells, save_label_cells, save_labels

    project = Project.open(demo)
    labels = project.load_labels()
    assert labels.split is None  # so listed cells (which keep no split) are the same labels
    first_losses = []
    for kind, save, what in (("labelset", save_labels, labels),
                             ("labelcells", save_label_cells, LabelCells.of(labels))):
        run_dir = demo / "models" / kind
        run_dir.mkdir(parents=True)
        save(run_dir / LABELS_FILE, what)
        (run_dir / RUN_TOML).write_text(run_description(
            demo, run_dir, TINY.to_dict(), config(2, device="cpu"),
            {"vertical_channel": True, "envelope_channel": False}, kind))
        log = run_dir / PROGRESS_LOG
        assert main(["train", str(run_dir / RUN_TOML), "--progress-log", str(log)]) == 0
        events = [json.loads(line) for line in log.read_text().splitlines()]
        assert [e["event"] for e in events] == ["start", "iteration", "iteration", "end"]
        assert (events[0]["ranks"], events[0]["iterations"]) == (1, 2)
        assert [e["iteration"] for e in events[1:3]] == [1, 2]
        assert events[2]["val_miou"] == pytest.approx(
            events[3]["history"][-1]["validation"]["mean_iou"])
        assert (events[3]["status"], events[3]["iteration"]) == ("finished", 2)
        first_losses.append(events[1]["loss"])
        model = TrainedModel.load(run_dir / "model")
        assert model.info.class_names == labels.class_names
        assert attributes_of(model.info.channel_names) == {
            "vertical_channel": True, "envelope_channel": False, "semblance_channel": False}
    assert first_losses[0] == pytest.approx(first_losses[1], rel=1e-6)
    capsys.readouterr()
    bad = demo / "models" / "labelset" / RUN_TOML
    bad.write_text(bad.read_text().replace('project = "../.."', 'project = "../.."\nkind = "segy"'))
    assert main(["train", str(bad)]) == 2
    assert "leave out kind" in capsys.readouterr().err
