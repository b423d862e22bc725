"""Ensembles: N networks of one design from different initialisations, logits averaged.

From a few labels a single network's answer depends much on its draw of initial weights
and sub-volumes (on the Taizhou change maps one design scored kappa 0.31-0.88 over draws;
benchmarks/README.md). The members see the same labels and differ only in their seed
(member m trains from ``seed + MEMBER_SEED_STEP * m``); averaging their class logits
(not their probabilities, the same rule as blocks and test-time flips in
:mod:`fhn_core.prediction`) is a lower-variance estimate of the class scores. The cost is
N trainings and N passes per prediction.

Members train one after another, each with its own checkpoint folder under the run's
folder (``checkpoint`` for member 0, as a single network's run, then ``checkpoint-1`` ...),
so stopping and resuming continues the member that was training: members whose checkpoint
reached the last iteration are taken as they are, the others resume or start. Validation
labels are split once, from the run's seed, so that no member trains on the labels the
ensemble is scored on. The model (:class:`fhn_core.checkpoint.TrainedModel`) holds every
member; a progress callback sees the iterations of all members as one count.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .checkpoint import TrainedModel
from .coarse import output_factor, to_data_grid
from .design import NetworkDesign
from .distributed import Ranks
from .errors import FhnError
from .metrics import Metrics, evaluate
from .prediction import horizontal_transforms, model_logits, resolve_device
from .task import SegmentationTask
from .training import Progress, TrainConfig, Trainer, TrainResult, split_validation

MEMBER_SEED_STEP = 1000


def member_seed(seed: int, member: int) -> int:
    """The seed member ``member`` trains from (initialisation and sub-volume draws)."""
    return seed + MEMBER_SEED_STEP * member


def checkpoint_name(member: int) -> str:
    """Member ``member``'s checkpoint folder under the run folder."""
    return "checkpoint" if member == 0 else f"checkpoint-{member}"


@dataclass(frozen=True)
class RunTime:
    """What a run will cost, from one measured training step and one whole-data pass."""

    members: int
    iterations: int
    step_seconds: float
    validations: int          # per member
    pass_seconds: float       # one whole-data pass of one network (validation, prediction)
    augment_passes: int = 1   # passes per network of a prediction with test-time flips

    @property
    def training_seconds(self) -> float:
        per_member = self.iterations * self.step_seconds + self.validations * self.pass_seconds
        return self.members * per_member

    def prediction_seconds(self, augment: bool = False) -> float:
        """One whole-data prediction: every member, once or once per test-time transform."""
        return self.members * (self.augment_passes if augment else 1) * self.pass_seconds

    def summary(self) -> str:
        """One line: the totals and what they are made of."""
        nets = f"{self.members} networks" if self.members > 1 else "1 network"
        vals = (f" + {self.validations} validations of {self.pass_seconds:.2g} s"
                if self.validations else "")
        return (f"about {format_seconds(self.training_seconds)} of training ({nets} x "
                f"({self.iterations} iterations of {self.step_seconds:.2g} s{vals})); a "
                f"whole-data prediction about {format_seconds(self.prediction_seconds())}, "
                f"{format_seconds(self.prediction_seconds(True))} averaged over flips")


def format_seconds(seconds: float) -> str:
    """A time span as people say it: 45 s, 3 min 20 s, 1 h 05 min."""
    s = max(0, int(round(seconds)))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def validations_per_member(config: TrainConfig, validating: bool) -> int:
    """Whole-data validations one member makes: every ``validate_every`` and at the end."""
    if not validating or not config.validate_every:
        return 0
    every = config.validate_every
    return config.iterations // every + (config.iterations % every != 0)


class EnsembleTrainer:
    """Trains ``config.ensemble`` networks one after another; the model holds them all.

    With ``ensemble = 1`` it is one :class:`Trainer` (the same checkpoint, the same
    losses). The interface is the Trainer's where callers use it: ``run``, ``iteration``,
    ``history``, ``device``, ``ranks``, ``val_labels``, ``model`` (member 0's while it
    trains), ``config``.
    """

    def __init__(
        self,
        task: SegmentationTask,
        design: NetworkDesign,
        config: TrainConfig | None = None,
        *,
        out_dir: str | Path | None = None,
        class_colours: list[str] | None = None,
        ranks: Ranks | None = None,
        resume: bool = False,
    ) -> None:
        self.config = config or TrainConfig()
        self.design = design
        self.out_dir = Path(out_dir) if out_dir else None
        self.class_colours = class_colours
        self.ranks = ranks or Ranks()
        if resume and self.out_dir is None:
            raise FhnError("resuming needs the run's output folder")
        self.resuming = resume
        self.task = _with_validation_split(task, self.config)
        self.val_labels: np.ndarray | None = None
        self.members: list[TrainedModel] = []   # members done, in order
        self.results: list[TrainResult] = []
        self.history: list[dict] = []
        self.iteration = 0
        self.trainer = self._member_trainer(0)
        self.design = self.trainer.design  # on resume: the checkpoint's, for every member
        self._skip_finished()

    @property
    def size(self) -> int:
        return self.config.ensemble

    @property
    def iterations(self) -> int:
        """Iterations of the whole run: every member's."""
        return self.size * self.config.last_iteration

    @property
    def device(self):
        return self.trainer.device

    @property
    def model(self) -> TrainedModel:
        return self.trainer.model

    @property
    def current(self) -> int:
        """The member training now (or next)."""
        return len(self.members)

    def _member_trainer(self, member: int) -> Trainer:
        config = replace(self.config, seed=member_seed(self.config.seed, member))
        name = checkpoint_name(member)
        # member 0's checkpoint must be there to resume (Trainer.resume says so); a later
        # member without one had not started
        if self.resuming and self.out_dir is not None and (
                member == 0 or (self.out_dir / name / "training.json").is_file()):
            trainer = Trainer.resume(self.out_dir, self.task, config, ranks=self.ranks,
                                     checkpoint_name=name)
        else:
            trainer = Trainer(self.task, self.design, config, out_dir=self.out_dir,
                              class_colours=self.class_colours, ranks=self.ranks,
                              checkpoint_name=name)
        self.val_labels = trainer.val_labels
        return trainer

    def _skip_finished(self) -> None:
        """On resume: take the members whose checkpoints reached the last iteration."""
        while self.trainer.iteration >= self.config.last_iteration and self.current < self.size - 1:
            self._finish(self.trainer.run())
            self.trainer = self._member_trainer(self.current)
        self.iteration = self.current * self.config.last_iteration + self.trainer.iteration
        self.history = [*self._done_history(), *self.trainer.history]

    def _done_history(self) -> list[dict]:
        """The finished members' history records, iterations counted over the run."""
        out = []
        for m, result in enumerate(self.results):
            for record in result.history:
                shifted = dict(record, iteration=m * self.config.last_iteration
                               + record["iteration"], member=m)
                out.append(shifted)
        return out

    def _finish(self, result: TrainResult) -> None:
        self.results.append(result)
        self.members.append(result.model)

    def measure(self) -> RunTime:
        """The run's cost: one step and one whole-data pass measured on the trainer here."""
        task = self.task
        flips = len(horizontal_transforms(task.spatial_shape, task.fixed_axes,
                                          task.slice_axis))
        return RunTime(self.size, self.config.last_iteration, self.trainer.measure_step_seconds(),
                       validations_per_member(self.config, self.val_labels is not None),
                       self.trainer.measure_pass_seconds(), flips)

    def run(
        self,
        callback: Callable[[Progress], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> TrainResult:
        start = time.perf_counter()
        per = self.config.last_iteration
        while True:
            member = self.current
            offset = member * per

            def progress(p: Progress, offset: int = offset) -> None:
                self.iteration = offset + p.iteration
                if callback:
                    callback(replace(p, iteration=offset + p.iteration,
                                     iterations=self.iterations,
                                     elapsed=time.perf_counter() - start))

            result = self.trainer.run(progress, should_stop)
            self._finish(result)
            self.history = self._done_history()
            if result.status != "finished" or self.current == self.size:
                return self._result(result)
            self.trainer = self._member_trainer(self.current)

    def _result(self, last: TrainResult) -> TrainResult:
        """The ensemble's result: every member trained so far; validation of their mean."""
        if self.size == 1:
            return last
        first = self.members[0]
        model = TrainedModel(first.net, first.info, [m.net for m in self.members[1:]])
        validation = self._validate(model)
        done = self.current if last.status == "finished" else self.current - 1
        message = (f"{last.message} (ensemble member {self.current} of {self.size})"
                   if last.status != "finished" else
                   f"finished {self.size} networks of {self.config.last_iteration} iterations")
        if last.status != "finished":
            message += (f"; {done} member(s) finished, the model holds the "
                        f"{self.current} trained so far")
        return TrainResult(model, last.status, message, self.iteration, self.history,
                           validation, self.results[0].checkpoint, self.results[0].diagnostics)

    def _validate(self, model: TrainedModel) -> Metrics | None:
        """The ensemble's scores on the held-back labels (the mean of its members' logits)."""
        if self.val_labels is None or not self.ranks.is_main:
            return None
        task, trainer = self.task, self.trainer
        logits = model_logits(model, trainer.x, device=resolve_device(trainer.device))
        classes = to_data_grid(logits.argmax(0), output_factor(model.design),
                               self.val_labels.shape)
        return evaluate(classes, self.val_labels, task.n_classes)


def _with_validation_split(task: SegmentationTask, config: TrainConfig) -> SegmentationTask:
    """The task with its validation labels split off once (from the run's seed), so that
    every member holds back the same labels; a task with validation labels is kept."""
    if task.val_labels is not None or config.ensemble == 1:
        return task  # one network splits as it always has (the Trainer, from its seed)
    train, val = split_validation(task.valid_labels(task.labels), config.validation_fraction,
                                  config.seed)
    return replace(task, labels=train, val_labels=val if (val >= 0).any() else None)
