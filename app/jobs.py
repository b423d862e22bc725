"""One training job at a time per server, in a background thread that never calls streamlit.

The Train page starts a job with :func:`registry` ``().start(JobSpec(...))`` and polls
:meth:`TrainingJob.snapshot` to draw the progress. The registry is a module-level object
of the server process, not session state, so a page reload (or another browser tab)
re-attaches to the running job.

The worker, in order: loads the project's data and labels (or takes the data the page
already loaded), builds the task with :mod:`app.training_task`, trains with
:class:`fhn_core.ensemble.EnsembleTrainer` (one network, or an ensemble one member after
another) into ``models/NAME`` (checkpoints there, resumable), saves the model
(``models/NAME/model``), predicts the whole data and writes the prediction, the label
split and the metrics into ``predictions/NAME`` (see :mod:`app.runs`). On a survey store
(data read chunk by chunk) nothing holds the survey: the labels are listed cell by cell
when the survey is too large for a label grid (``Project.labels_as_cells``), and the
prediction streams block by block into ``predictions/NAME/prediction.zarr``
(:func:`app.streamed.predict_to_store`), scored at the labelled cells. Stop asks the
trainer to end after the current iteration; the checkpoint and model are saved and the
prediction made as for a finished run. A bad input (DataError, FhnError) or any other
failure ends the job with a readable message. A device meaning several training processes
(all GPUs, :data:`app.runs.ALL_GPUS`) starts :class:`app.distributed_job.DistributedJob`
instead: the same steps, with the training done by torchrun's processes.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from fhn_core.auto_recipe import DEFAULT_BUDGET_MINUTES
from fhn_core.chunked import is_chunked
from fhn_core.design import NetworkDesign
from fhn_core.errors import FhnError
from fhn_core.run_lock import RunLock
from fhn_core.training import Progress, TrainConfig
from io_adapters.change_channels import has_change_channels
from io_adapters.errors import DataError
from io_adapters.seismic_attributes import ATTRIBUTE_FLAGS, attributes_of

from . import runs

__all__ = ["JobBusy", "JobSpec", "JobSnapshot", "TrainingJob", "JobRegistry", "registry",
           "ACTIVE", "DONE"]

log = logging.getLogger(__name__)

ACTIVE = ("preparing", "training", "predicting")
LAYOUT_FLAGS = ("change_channels", "every_slice")  # JobSpec switches of app.layout
DONE = ("finished", "stopped", "diverged", "failed")


class JobBusy(FhnError):
    """A training job is running already; the server runs one at a time."""


@dataclass(frozen=True)
class JobSpec:
    """What to train: a project, a design, the settings.

    ``resume`` names a run of the project to continue from its checkpoint (``config``
    may raise its iterations); ``data`` is the project's data when the caller has it
    loaded already (else the worker loads it); ``name`` the run name (default: new).
    ``vertical_channel``, ``envelope_channel`` and ``semblance_channel`` add the sample
    time, the envelope and the semblance of seismic data as input channels (see
    :mod:`io_adapters.seismic_attributes`); ``change_channels`` adds t2 - t1 and ||t2 - t1||
    to two dates; ``every_slice`` labels every band slice of a 3D band layout and averages
    over the bands (:mod:`app.layout`); a resumed run keeps the channels it had.
    ``augment`` predicts with test-time augmentation (logits averaged over the horizontal
    flips/transposes).
    ``stratigraphic_order`` keeps the classes in the top-to-bottom order the labels show
    down every trace (:mod:`fhn_core.stratigraphy`); where the labels show no single order
    the prediction is made without it and the run's message says so.
    ``class_priors`` "scene" or "training": the class mix the prediction decides with
    (:mod:`fhn_core.priors`); None: the model's default (the scene's for two dates).
    ``recipe`` "auto" chooses the input channels, the default design's size and the
    iterations by spatially blocked cross-validation within ``budget_minutes``
    (:mod:`app.auto_run`; ``design`` and the attribute flags are then not used, ``config``
    gives the other settings and, in ``iterations``, each fold's iteration budget);
    "fixed" trains exactly ``design`` and ``config``. A resumed run continues as fixed.
    ``scheduler``: on a survey store, the address of a ``dask.distributed`` scheduler on
    whose workers the block-by-block prediction runs (:mod:`app.streamed`); None: here.
    """

    project: Path
    design: NetworkDesign
    config: TrainConfig
    vertical_channel: bool = False
    envelope_channel: bool = False
    semblance_channel: bool = False
    change_channels: bool = False
    every_slice: bool = False
    augment: bool = False
    stratigraphic_order: bool = False
    class_priors: str | None = None
    name: str | None = None
    resume: str | None = None
    recipe: str = "fixed"
    budget_minutes: float = DEFAULT_BUDGET_MINUTES
    scheduler: str | None = None
    data: xr.DataArray | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class JobSnapshot:
    """A consistent copy of a job's state for a page to draw (no locks needed)."""

    name: str
    project: Path
    status: str
    message: str
    error: str
    iteration: int
    iterations: int
    loss: float | None
    val_miou: float | None
    elapsed: float
    peak_memory_mb: float
    history: tuple[dict[str, Any], ...]
    device: str
    remaining: float | None = None   # seconds of training left (estimate), None: unknown
    predicted: float = 0.0           # fraction of the final prediction done
    validate_every: int = 0          # validation interval of the run (0: no validation)

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    @property
    def fraction(self) -> float:
        return min(1.0, self.iteration / self.iterations) if self.iterations else 0.0


@dataclass
class Fitted:
    """What training hands on to the prediction, whichever way it trained: the saved model
    (already in ``models/NAME/model``), how training ended, where to predict, and the
    labels it held back for validation (None: none)."""

    model: Any  # fhn_core.checkpoint.TrainedModel
    status: str
    message: str
    iteration: int
    history: list[dict[str, Any]]
    diagnostics: dict[str, Any] | None
    device: str
    val_labels: Any


class TrainingJob:
    """One training run in a daemon thread; its state is read with :meth:`snapshot`."""

    def __init__(self, spec: JobSpec, name: str) -> None:
        self.spec, self.name = spec, name
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._done = threading.Event()
        self._state: dict[str, Any] = {
            "status": "preparing", "message": "Loading the data and labels", "error": "",
            "iteration": 0, "iterations": spec.config.iterations * spec.config.ensemble,
            "loss": None,
            "val_miou": None, "elapsed": 0.0, "peak_memory_mb": 0.0, "device": "",
            "remaining": None, "predicted": 0.0, "start_iteration": 0,
        }
        self._history: list[dict[str, Any]] = []
        self._started = time.perf_counter()
        self._thread = threading.Thread(target=self._run, name=f"fhn-train-{name}", daemon=True)
        self._run_lock: RunLock | None = None  # held from the start of _run to its end

    # --- control ---------------------------------------------------------------------
    def start(self) -> TrainingJob:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Ask the trainer to stop after the current iteration (checkpoint kept)."""
        self._stop.set()
        with self._lock:
            if self._state["status"] in ACTIVE:
                self._state["message"] = "Stopping after this iteration..."

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job is done (True) or ``timeout`` seconds passed (False)."""
        return self._done.wait(timeout)

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def snapshot(self) -> JobSnapshot:
        with self._lock:
            s = dict(self._state)
            history = tuple(dict(h) for h in self._history)
        if s["status"] in ACTIVE:
            s["elapsed"] = time.perf_counter() - self._started
        return JobSnapshot(self.name, self.spec.project, s["status"], s["message"], s["error"],
                           s["iteration"], s["iterations"], s["loss"], s["val_miou"],
                           s["elapsed"], s["peak_memory_mb"], history, s["device"],
                           s["remaining"], s["predicted"], self.spec.config.validate_every)

    def _set(self, **changes: Any) -> None:
        with self._lock:
            self._state.update(changes)

    # --- the worker ------------------------------------------------------------------
    def _progress(self, p: Progress) -> None:
        self._record(p.iteration, p.iterations, float(p.loss), float(p.learning_rate),
                     p.elapsed, p.peak_memory_mb,
                     None if p.validation is None else float(p.validation.mean_iou))

    def _record(self, iteration: int, iterations: int, loss: float, learning_rate: float,
                elapsed: float, peak_memory_mb: float, val_miou: float | None) -> None:
        """One iteration done: its history record, the progress and the time left."""
        record: dict[str, Any] = {"iteration": iteration, "loss": loss,
                                  "learning_rate": learning_rate, "val_miou": val_miou}
        changes: dict[str, Any] = {"iteration": iteration, "iterations": iterations,
                                   "loss": loss, "peak_memory_mb": peak_memory_mb}
        if val_miou is not None:
            changes["val_miou"] = val_miou
        with self._lock:
            done = iteration - self._state["start_iteration"]
            if done > 0:  # the pace so far (validations included) times what is left
                changes["remaining"] = elapsed / done * max(0, iterations - iteration)
            self._history.append(record)
            self._state.update(changes)
            if not self._stop.is_set():
                self._state["message"] = f"Training: iteration {iteration} of {iterations}"

    def _run(self) -> None:
        from io_adapters.project import Project

        spec = self.spec
        info = runs.RunInfo(self.name, status="preparing",
                            created=datetime.now().isoformat(timespec="seconds"),
                            iterations=spec.config.iterations * spec.config.ensemble,
                            design=spec.design.to_dict(),
                            config=asdict(spec.config))
        paths = lock = None
        try:
            project = Project.open(spec.project)
            run_paths = runs.RunPaths.of(project, self.name)
            # one writer per run folder: a CLI run on it refuses this job, and vice versa
            lock = self._run_lock = RunLock(run_paths.run_dir).acquire()
            paths = run_paths
            if spec.resume:
                old = runs.read_run(project, self.name)
                info.created = old.created or info.created
                info.design = old.design or info.design  # the checkpoint's design trains on
                info.channel_names = old.channel_names    # ... on the inputs it had
            runs.write_run(paths, info)
            self._train(project, paths, info)
        except (DataError, FhnError) as err:
            self._fail(info, str(err))
        except MemoryError as err:
            self._fail(info, f"out of memory ({err}); choose a smaller design or patch")
        except Exception as err:  # noqa: BLE001 - the page must show why, never hang
            if type(err).__name__ == "OutOfMemoryError":
                self._fail(info, "the GPU ran out of memory; choose a smaller design or patch, "
                                 "or train on the CPU")
            else:
                log.exception("training job %s failed", self.name)
                self._fail(info, f"training failed unexpectedly: {type(err).__name__}: {err}")
        finally:
            info.finished = datetime.now().isoformat(timespec="seconds")
            self._set(elapsed=time.perf_counter() - self._started)
            if paths is not None:
                try:
                    runs.write_run(paths, info)
                except (DataError, OSError):
                    log.exception("could not write %s", paths.run_file)
            if lock is not None:
                lock.release()
            self._done.set()

    def _fail(self, info: runs.RunInfo, message: str) -> None:
        info.status, info.error, info.message = "failed", message, message
        self._set(status="failed", error=message, message=message)

    def _train(self, project, paths: runs.RunPaths, info: runs.RunInfo) -> None:
        from app.layout import to_channels_first
        from app.training_task import build_task
        from fhn_core.metrics import evaluate
        from fhn_core.prediction import predict

        spec = self.spec
        da = spec.data if spec.data is not None else project.load_data()
        labelset = (project.load_label_cells(da) if project.labels_as_cells(da)
                    else project.load_labels(da))
        if not labelset.classes:
            raise DataError("the project has no classes yet; add classes and paint labels on "
                            "View & label first")
        inputs = (_inputs_of(info.channel_names, paths) if spec.resume else
                  {flag: getattr(spec, flag) for flag in (*ATTRIBUTE_FLAGS, *LAYOUT_FLAGS)})
        design, config, choice = spec.design, spec.config, None
        if spec.recipe == "auto" and not spec.resume:
            choice, layout, task, design, config = self._choose(da, labelset, info)
        else:
            layout = to_channels_first(da, spatial_dims=spec.design.spatial_dims, **inputs)
            task = build_task(da, labelset, layout=layout)
        streamed = is_chunked(layout.data)
        if streamed and spec.augment:
            raise DataError("test-time augmentation is not available on a survey store "
                            "(predicted block by block); train without it")
        colours = [c.colour for c in labelset.classes]
        info.class_names, info.class_colours = list(labelset.class_names), colours
        info.channel_names = list(layout.channel_names)
        info.grid_dims, info.grid_shape = list(layout.grid_dims), list(layout.grid_shape)
        if spec.resume:
            self._set(message=f"Resuming from {paths.checkpoint_dir}")
        fitted = self._fit(task, design, config, paths, info, labelset, inputs)
        ordered = spec.stratigraphic_order and bool(fitted.model.info.class_order)
        if spec.stratigraphic_order and not ordered:
            fitted.message += (" Predicted without the stratigraphic order: the labels put "
                               "some classes above each other in different traces.")
        info.status, info.message, info.iteration = fitted.status, fitted.message, fitted.iteration
        info.history = [history_record(h) for h in fitted.history]
        if fitted.diagnostics is not None:
            info.diagnostics = fitted.diagnostics

        self._set(status="predicting", remaining=0.0, predicted=0.0,
                  message="Predicting the whole data with the trained model")
        if streamed:
            metrics = self._predict_streamed(paths, da, fitted, task, ordered)
            final = metrics["validation"]
            self._set(status=fitted.status, message=fitted.message,
                      val_miou=final.mean_iou if final is not None else self.snapshot().val_miou)
            return
        forest = None
        if choice is not None:
            from . import auto_run

            self._set(message="Predicting with the per-cell baseline")
            forest = auto_run.baseline_of(layout, task.valid_labels(task.labels),
                                          config.seed, task.n_classes)
            self._set(message="Predicting the whole data with the trained model")
        prediction = predict(fitted.model, layout.data, augment=spec.augment,
                             stratigraphic_order=ordered, class_priors=spec.class_priors,
                             baseline_probabilities=(None if forest is None
                                                     else forest.probabilities),
                             device=fitted.device,
                             progress=lambda done: self._set(predicted=float(done)))
        if forest is not None and fitted.model.info.baseline_weight > 0:
            fitted.message += (" The map is the mean of the network's class probabilities and "
                               "the per-cell baseline's (the baseline's weight "
                               f"{fitted.model.info.baseline_weight:g}).")
            info.message = fitted.message
        if prediction.scene_prior is not None:
            from fhn_core.priors import mix_text

            fitted.message += (" Predicted with the class mix re-estimated on the scene ("
                               f"{mix_text(prediction.scene_prior, labelset.class_names)}).")
            info.message = fitted.message
        val = fitted.val_labels
        train = task.valid_labels(task.labels)
        if val is not None:
            train = np.where(val >= 0, -1, train)
        k = task.n_classes
        metrics = {
            "validation": evaluate(prediction.classes, val, k) if val is not None else None,
            "training": evaluate(prediction.classes, train, k) if (train >= 0).any() else None,
        }
        if forest is not None:
            runs.save_baseline_prediction(paths, forest)
        runs.save_prediction(paths, prediction, train, val, metrics)
        final = metrics["validation"]
        self._set(status=fitted.status, message=fitted.message,
                  val_miou=final.mean_iou if final is not None else self.snapshot().val_miou)

    def _fit(self, task, design: NetworkDesign, config: TrainConfig, paths: runs.RunPaths,
             info: runs.RunInfo, labelset, inputs: dict[str, bool]) -> Fitted:
        """Train in this thread (one network, or an ensemble one member after another, see
        fhn_core.ensemble) and save the model; :mod:`app.distributed_job` trains in several
        processes instead. ``labelset`` and ``inputs`` (the layout switches) are what the
        task was built from."""
        from fhn_core.ensemble import EnsembleTrainer

        colours = [c.colour for c in labelset.classes]
        trainer = EnsembleTrainer(task, design, config, out_dir=paths.run_dir,
                                  class_colours=colours, resume=bool(self.spec.resume))
        info.device = str(trainer.device)
        with self._lock:
            self._history = [history_record(h) for h in trainer.history]
            self._state.update(status="training", device=info.device,
                               iteration=trainer.iteration, iterations=trainer.iterations,
                               start_iteration=trainer.iteration,
                               message=f"Training on {trainer.device}")
        info.status = "training"
        runs.write_run(paths, info)

        result = trainer.run(self._progress, self._stop.is_set)
        result.model.save(paths.model_dir)
        return Fitted(result.model, result.status, result.message, result.iteration,
                      result.history,
                      None if result.diagnostics is None else result.diagnostics.as_dict(),
                      str(trainer.device), trainer.val_labels)

    def _choose(self, da, labelset, info: runs.RunInfo):
        """The auto recipe: settings by blocked cross-validation (app.auto_run)."""
        from . import auto_run

        spec = self.spec
        started = time.perf_counter()
        self._set(message="Auto recipe: cross-validating the candidates on spatial folds")
        training = asdict(spec.config)  # its iterations: each fold's budget (the page: 200)
        inputs = auto_run.RunInputs(da, labelset, auto_run.default_design_of,
                                    training=training)
        choice, prepared, config = auto_run.choose_settings(
            inputs, set(), budget_minutes=spec.budget_minutes, seed=spec.config.seed,
            report=lambda line: self._set(message=f"Auto recipe: {line}"),
            should_stop=self._stop.is_set)
        info.recipe = "auto"
        info.cross_validation = choice.as_dict(list(labelset.class_names))
        info.cross_validation["timings_seconds"] = {
            "cross_validation": round(time.perf_counter() - started, 1)}
        info.iterations = config.last_iteration
        info.design, info.config = prepared.design.to_dict(), asdict(config)
        layout = inputs.layouts[choice.chosen.candidate.name]
        return choice, layout, prepared.task, prepared.design, config

    def _predict_streamed(self, paths: runs.RunPaths, da: xr.DataArray, fitted: Fitted, task,
                          ordered: bool) -> dict[str, Any]:
        """Predict a survey store block by block into ``prediction.zarr`` (app.streamed) and
        score it at the labelled cells; returns the metrics (also saved)."""
        from app.streamed import predict_to_store

        store = predict_to_store(paths.model_dir, da, paths.prediction_dir / runs.STORE_NAME,
                                 stratigraphic_order=ordered, device=fitted.device,
                                 scheduler=self.spec.scheduler, overwrite=True,
                                 progress=lambda done: self._set(predicted=float(done)))
        k = task.n_classes
        val = fitted.val_labels
        train = task.valid_labels(task.labels)
        if val is not None:  # the held-back cells are not training cells
            held = np.ravel_multi_index(tuple(val.cells.T), val.shape)
            train = train.subset(~np.isin(np.ravel_multi_index(tuple(train.cells.T),
                                                               train.shape), held))
        metrics = {"validation": None if val is None else _scored_at_cells(store, val, k),
                   "training": _scored_at_cells(store, train, k) if len(train) else None}
        runs.save_streamed_metrics(paths, metrics)
        return metrics


def _scored_at_cells(store: Path, labels, n_classes: int):
    """Metrics of the predicted classes in ``store`` at the cells of SparseLabels ``labels``
    (only those cells are read)."""
    import zarr

    from fhn_core.metrics import evaluate

    classes = zarr.open_array(store / "classes", mode="r")
    return evaluate(np.asarray(classes.vindex[tuple(labels.cells.T)]), labels.classes,
                    n_classes)


def _inputs_of(channel_names: list[str], paths: runs.RunPaths) -> dict[str, bool]:
    """The layout switches a run being resumed was trained with (its channels, and its
    checkpoint's label embedding)."""
    import json

    try:
        saved = json.loads((paths.checkpoint_dir / "model.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        saved = {}
    return {**attributes_of(channel_names), "change_channels": has_change_channels(channel_names),
            "every_slice": saved.get("averaged_axis") is not None}


def history_record(h: dict[str, Any]) -> dict[str, Any]:
    """A trainer history entry as the job keeps it (validation reduced to its mean IoU)."""
    val = h.get("validation")
    return {"iteration": int(h["iteration"]), "loss": float(h["loss"]),
            "learning_rate": float(h.get("learning_rate", 0.0)),
            "val_miou": float(val["mean_iou"]) if isinstance(val, dict) else None}


class JobRegistry:
    """The server's training jobs: at most one running; the last one kept for display."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._current: TrainingJob | None = None

    def start(self, spec: JobSpec) -> TrainingJob:
        """Start a job (JobBusy while another one runs); returns it, already running."""
        from io_adapters.project import Project

        with self._lock:
            running = self._current
            if running is not None and not running.done:
                raise JobBusy(
                    f"training run {running.name} is still running; stop it or wait for it "
                    "to finish (one training run at a time per server)"
                )
            project = Project.open(spec.project)
            if spec.resume:
                name = spec.resume
                if not runs.read_run(project, name).has_checkpoint:
                    raise DataError(f"run {name} has no checkpoint to continue from")
            else:
                name = spec.name or runs.new_run_name(project)
            job_class = TrainingJob
            if runs.processes_of(spec.config.device) > 1:  # several training processes
                from .distributed_job import DistributedJob

                DistributedJob.check(spec)
                job_class = DistributedJob
            job = job_class(spec, name)
            self._current = job
            return job.start()

    def current(self) -> TrainingJob | None:
        """The running job, or the last one started (finished) in this server."""
        with self._lock:
            return self._current

    def active(self) -> TrainingJob | None:
        """The running job, if any."""
        job = self.current()
        return job if job is not None and not job.done else None

    def stop(self) -> bool:
        """Ask the running job to stop; False when none runs."""
        job = self.active()
        if job is None:
            return False
        job.stop()
        return True


_REGISTRY = JobRegistry()


def registry() -> JobRegistry:
    """The process-wide job registry (one per server)."""
    return _REGISTRY
