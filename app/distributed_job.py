"""Training from the app in several processes: one per GPU (or N on the CPU), by torchrun.

The Train page's device "All GPUs (N)" (:data:`app.runs.ALL_GPUS`; :func:`app.runs.cpu_ranks`
for processes on the CPU) starts this job instead of the one-process
:class:`app.jobs.TrainingJob`. It trains exactly as a user would by hand with
``torchrun --nproc-per-node N ... fhn train RUN.toml`` (:mod:`fhn_core.distributed`): each
process draws its own sub-volumes, DistributedDataParallel averages the gradients, rank 0
validates and writes the checkpoint and the model. The job writes into the run folder
``models/NAME/``

- ``run.toml``: what the page's settings amount to as ``fhn train`` reads them (the
  project's data, the labels below, the design, the training settings, recipe "fixed");
- ``labels.npz``: the project's labels as the job read them (listed label cells on a
  survey too large for a label grid), so the run keeps what it trained on;
- ``train.log``: what torchrun and the processes printed; ``progress.jsonl``: the
  progress ``fhn train --progress-log`` writes (:mod:`app.train_log`), which the job follows
  to draw the page's progress;

then runs ``python -m torch.distributed.run --standalone --nproc-per-node N -m app.cli
train run.toml ...`` in a session of its own. Stop sends SIGINT to torchrun, which passes it
on: the processes end after the current iteration and rank 0 saves the checkpoint and the
model (``fhn train`` on Ctrl-C). A process that fails ends the job with its ``fhn: error:``
line. Afterwards the job predicts the whole data in this process as the one-process job
does, so the run folder is the same kind (the Results page reads it alike) and "Continue"
resumes it with ``--resume`` on as many processes as the device gives.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import tomli_w

from fhn_core.design import NetworkDesign
from fhn_core.errors import FhnError
from fhn_core.training import TrainConfig, validation_split
from io_adapters.atomic import atomic_output
from io_adapters.errors import DataError
from io_adapters.labels import LabelCells, save_label_cells, save_labels

from . import runs
from .jobs import Fitted, JobSpec, TrainingJob, history_record
from .train_log import LogReader

__all__ = ["DistributedJob", "run_description", "RUN_TOML", "LABELS_FILE", "OUTPUT_LOG",
           "PROGRESS_LOG"]

RUN_TOML = "run.toml"
LABELS_FILE = "labels.npz"
OUTPUT_LOG = "train.log"
PROGRESS_LOG = "progress.jsonl"
POLL_SECONDS = 0.25
# Stop: how long torchrun lets the processes finish their iteration and save before it
# kills them (its default, 30 s, can be shorter than one iteration of a large design).
SHUTDOWN_SECONDS = 300
# How long the job waits for processes it ends itself (after an error of its own).
END_WAIT_SECONDS = 60.0
_REPO = Path(__file__).resolve().parents[1]  # where app/, fhn_core/, io_adapters/ live


def run_description(project_folder: Path, run_dir: Path, design: dict[str, Any],
                    config: TrainConfig, inputs: dict[str, bool], labels_kind: str) -> str:
    """The run TOML ``fhn train`` reads for an app run: the project's data (the folder given
    relative to the run folder, so the project can move), ``labels.npz`` beside it, the
    design and settings, recipe "fixed", output the run folder itself."""
    training: dict[str, Any] = {"recipe": "fixed"}
    for key, value in asdict(config).items():
        if key == "patch":
            if value is not None:  # TOML has no null: 0 is "the whole axis"
                training[key] = [int(p or 0) for p in value]
        elif key == "device":
            training[key] = runs.rank_device_of(value)
        else:
            training[key] = value
    doc = {
        "output": ".",
        "data": {"project": os.path.relpath(project_folder, run_dir),
                 **{k: bool(v) for k, v in inputs.items() if v}},
        "labels": {"path": LABELS_FILE, "kind": labels_kind},
        "design": design,
        "training": training,
    }
    return ("# Written by the fhn app for a training on several processes. By hand, from this\n"
            "# folder: torchrun --nproc-per-node N -m app.cli train run.toml [--resume]\n"
            + tomli_w.dumps(doc))


class DistributedJob(TrainingJob):
    """A :class:`~app.jobs.TrainingJob` whose training runs in torchrun's processes."""

    @staticmethod
    def check(spec: JobSpec) -> None:
        """Refuse, before anything starts, what several processes cannot do."""
        if spec.recipe == "auto" and not spec.resume:
            raise DataError("the auto recipe cross-validates in one process; choose the fixed "
                            "recipe to train on several processes, or one device for auto")
        runs.processes_of(spec.config.device)  # enough GPUs (DataError otherwise)

    def _fit(self, task, design: NetworkDesign, config: TrainConfig, paths: runs.RunPaths,
             info: runs.RunInfo, labelset, inputs: dict[str, bool]) -> Fitted:
        n = runs.processes_of(config.device)
        rank_device = runs.rank_device_of(config.device)
        cells = isinstance(labelset, LabelCells)
        (save_label_cells if cells else save_labels)(paths.run_dir / LABELS_FILE, labelset)
        with atomic_output(paths.run_dir / RUN_TOML) as tmp:
            tmp.write_text(run_description(
                self.spec.project, paths.run_dir, info.design or design.to_dict(), config,
                inputs, "labelcells" if cells else "labelset"), encoding="utf-8")
        progress = paths.run_dir / PROGRESS_LOG
        progress.unlink(missing_ok=True)  # a resumed run's old log is not this run's
        info.device, info.ranks = f"{n} processes on {rank_device}", n
        info.status = "training"
        runs.write_run(paths, info)
        self._set(status="training", device=info.device,
                  message=f"Starting {n} training processes ({rank_device})")

        if self._stop.is_set():
            raise FhnError("stopped before the training processes were started")
        # fhn train takes the run lock itself: hand it over while the processes train
        lock = self._run_lock
        if lock is not None:
            lock.release()
        try:
            code, end = self._train_in_processes(n, rank_device, paths)
        finally:
            if lock is not None:
                lock.acquire()
        if end is None:
            raise FhnError(self._why_no_model(code, paths))
        from fhn_core.checkpoint import TrainedModel

        return Fitted(TrainedModel.load(paths.model_dir), str(end["status"]),
                      str(end["message"]), int(end["iteration"]), list(end["history"]),
                      end.get("diagnostics"), rank_device, validation_split(task, config)[1])

    def _train_in_processes(self, n: int, rank_device: str,
                            paths: runs.RunPaths) -> tuple[int, dict[str, Any] | None]:
        """Run torchrun until it exits, following its progress; (exit code, end event)."""
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                   "--nnodes", "1", "--nproc-per-node", str(n),
                   "-m", "app.cli", "train", RUN_TOML, "--progress-log", PROGRESS_LOG,
                   "--no-estimate"] + (["--resume"] if self.spec.resume else [])
        env = dict(os.environ, TORCH_ELASTIC_SHUTDOWN_TIMEOUT=str(SHUTDOWN_SECONDS),
                   PYTHONPATH=os.pathsep.join(
                       p for p in (str(_REPO), os.environ.get("PYTHONPATH")) if p))
        # the bar goes to train.log, which nobody watches as it is written: a line per 10 s
        env.setdefault("TQDM_MININTERVAL", "10")
        if rank_device == "cpu" and "OMP_NUM_THREADS" not in os.environ:
            # the processes share the cores (torchrun would give each one thread)
            env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // n))
        reader = LogReader(paths.run_dir / PROGRESS_LOG)
        end: dict[str, Any] | None = None
        with open(paths.run_dir / OUTPUT_LOG, "wb") as output:
            proc = subprocess.Popen(command, cwd=paths.run_dir, env=env, stdout=output,
                                    stderr=subprocess.STDOUT, start_new_session=True)
            interrupted = False
            try:
                while True:
                    code = proc.poll()
                    for event in reader.new_events():  # after poll: nothing left behind
                        end = self._follow(event, n) or end
                    if code is not None:
                        return code, end
                    if self._stop.is_set() and not interrupted:
                        os.killpg(proc.pid, signal.SIGINT)  # torchrun passes it on
                        interrupted = True
                    time.sleep(POLL_SECONDS)
            finally:
                if proc.poll() is None:  # this job failed itself: end what it started
                    _end(proc)

    def _follow(self, event: dict[str, Any], n: int) -> dict[str, Any] | None:
        """Show one progress event on the page; returns it when it is the end event."""
        kind = event.get("event")
        if kind == "start":
            start = int(event["iteration"])
            with self._lock:
                self._history = [history_record(h) for h in event.get("history", [])]
                self._state.update(iteration=start, iterations=int(event["iterations"]),
                                   start_iteration=start)
                if not self._stop.is_set():
                    self._state["message"] = (f"Training on {event['ranks']} processes "
                                              f"({event['device']} on rank 0)")
            if int(event["ranks"]) != n:
                raise FhnError(f"torchrun started {event['ranks']} training processes, not "
                               f"{n}; see {OUTPUT_LOG} in the run folder")
        elif kind == "iteration":
            loss = event.get("loss")
            self._record(int(event["iteration"]), int(event["iterations"]),
                         float("nan") if loss is None else float(loss),
                         float(event["learning_rate"]), float(event["elapsed"]),
                         float(event["peak_memory_mb"]),
                         None if event.get("val_miou") is None else float(event["val_miou"]))
        elif kind == "end":
            return event
        return None

    def _why_no_model(self, code: int, paths: runs.RunPaths) -> str:
        """The message of training processes that ended without saving a model: their
        ``fhn: error:`` line where one printed it."""
        try:
            text = (paths.run_dir / OUTPUT_LOG).read_text(encoding="utf-8", errors="replace")
        except OSError:
            text = ""
        errors = error_messages(text)
        kept = (" The last checkpoint is kept: continue the run from it."
                if (paths.checkpoint_dir / "training.json").is_file() else "")
        if self._stop.is_set():  # whatever the processes said on their way out
            return "stopped before the training processes had trained and saved a model." + kept
        if errors:
            return errors[0]
        return (f"the training processes ended (exit code {code}) without saving a model; "
                f"see {paths.run_dir / OUTPUT_LOG}.{kept}")


def error_messages(log: str) -> list[str]:
    """The ``fhn: error:`` messages in the processes' shared log, in order. Two processes
    failing at once can still share a line; each piece after the marker is one message."""
    return [piece.strip() for line in log.splitlines()
            for piece in line.split("fhn: error:")[1:] if piece.strip()]


def _end(proc: subprocess.Popen) -> None:
    """End torchrun (it ends its processes), forcefully if it does not go in time."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(END_WAIT_SECONDS)
            return
        except subprocess.TimeoutExpired:
            continue
