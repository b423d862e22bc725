"""Training from sparse labels, as in the paper's examples.

Each iteration draws ``accumulate`` random sub-volumes that contain labels (flipped and
transposed along horizontal axes only), sums their partial cross-entropy gradients
(eq. 3.19) and takes one SGD-with-momentum or Adam step with a decaying learning rate.
Every ``validate_every`` iterations the whole volume is predicted and scored on held-back
labels. A callback receives the progress; a stop function ends training cleanly with a
checkpoint. A non-finite loss, gradient or weight stops training with the last good
weights kept. Checkpoints hold the optimiser and RNG states, so a resumed run repeats
the loss sequence of an uninterrupted one. With ``average_decay`` > 0 a moving average
of the weights runs beside the optimiser (averaging.py); validation and the returned
model use it, the checkpoint keeps both. Under torchrun several ranks train one model
(distributed.py): each draws its own sub-volumes, DDP averages the gradients, and rank 0
alone validates and writes.

The drift guard of the constant-memory backward (:mod:`fhn_core.stability`) stops training,
with the cause and the fixes, at a step whose rebuilt gradients cannot be trusted. The
result records the paper's Fig. 3 properties of the network it returns (diagnostics.py).
A design that ends on a coarser grid (section 3.4) is trained on labels coarsened to it
and validated on the data grid (:mod:`fhn_core.coarse`). With ``guide = "forest"`` the
windows are drawn from the training labels plus the per-cell forest's confident
pseudo-labels, the forest fitted on the training labels only (:mod:`fhn_core.pseudo_labels`).

A task whose data are a chunked array-like (a survey larger than memory, see
:mod:`fhn_core.chunked`) trains the same way on windows read as they are drawn; it is
validated on the blocks that hold validation labels only (:func:`fhn_core.blocks.logits_at`).
"""

from __future__ import annotations

import copy
import math
import resource
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import distributed
from .averaging import WeightAverage, copy_into
from .calibration import HeldOut
from .checkpoint import ModelInfo, TrainedModel, load_checkpoint, restore_optimiser, save_checkpoint
from .coarse import labels_on_output_grid, output_factor, output_slice_index, to_data_grid
from .design import NetworkDesign
from .diagnostics import Diagnostics, trained_diagnostics
from .distributed import Ranks
from .errors import FhnError
from .losses import balanced_class_weights, class_scores, partial_cross_entropy
from .metrics import Metrics
from .network import HyperbolicNetwork
from .prediction import predict_logits, resolve_device
from .priors import label_prior, prior_shift, scene_prior, uniform_prior
from .pseudo_labels import DEFAULT_THRESHOLD, DEFAULT_WEIGHT, check_guide, forest_guide
from .sampler import SubvolumeSampler
from .sparse_labels import SparseLabels
from .stability import drift_problem
from .stratigraphy import superposition_order
from .task import (
    Labels,
    Normalisation,
    SegmentationTask,
    StreamedInput,
    check_design_fits,
    labelled_classes,
    pad_labels,
    to_input,
)


@dataclass
class TrainConfig:
    """Optimisation settings; every field can come from TOML or a command-line flag."""

    iterations: int = 200
    optimiser: str = "adam"          # "adam" | "sgd" (with momentum)
    learning_rate: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "cosine"         # "cosine" | "step" | "constant"
    step_every: int = 100
    step_gamma: float = 0.5
    accumulate: int = 1              # sub-volumes per optimiser step
    patch: tuple[int | None, ...] | None = None  # sub-volume size; None = whole volume
    augment: bool = True
    class_weights: str = "balanced"  # "balanced" | "none"
    validation_fraction: float = 0.2
    validate_every: int = 25
    checkpoint_every: int = 50
    seed: int = 0
    device: str = "auto"
    amp: bool = False                # bfloat16 autocast on CUDA; states stay float32
    gradient_mode: str = "invertible"
    average_decay: float = 0.0       # > 0: validate and return averaged weights (averaging.py)
    stop_after: int = 0              # > 0: end after this many iterations, the schedule still
    #                                  spanning `iterations` (early stopping, auto_recipe.py)
    ensemble: int = 1                # networks trained one after another (ensemble.py)
    guide: str = "none"              # "forest": dense pseudo-labels beside the labels
    guide_threshold: float = DEFAULT_THRESHOLD  # (pseudo_labels.py)
    guide_weight: float = DEFAULT_WEIGHT

    def __post_init__(self) -> None:
        if self.optimiser not in ("adam", "sgd"):
            raise FhnError(f"optimiser must be 'adam' or 'sgd', got {self.optimiser!r}")
        if self.schedule not in ("cosine", "step", "constant"):
            raise FhnError(f"schedule must be cosine, step or constant, got {self.schedule!r}")
        if self.iterations < 1 or self.accumulate < 1:
            raise FhnError("iterations and accumulate must be at least 1")
        if not self.learning_rate > 0:
            raise FhnError(f"learning_rate must be positive, got {self.learning_rate}")
        if not 0 <= self.validation_fraction < 1:
            raise FhnError("validation_fraction must be in [0, 1)")
        if not 0 <= self.stop_after <= self.iterations:
            raise FhnError(f"stop_after must be in 0..iterations ({self.iterations}), got "
                           f"{self.stop_after}")
        if isinstance(self.ensemble, bool) or not isinstance(self.ensemble, int) \
                or self.ensemble < 1:
            raise FhnError(f"ensemble must be a whole number of networks >= 1 (1 = one "
                           f"network), got {self.ensemble!r}")
        if not 0 <= self.average_decay < 1:
            raise FhnError(f"average_decay must be in [0, 1) (0 = off), got {self.average_decay}")
        check_guide(self.guide, self.guide_threshold, self.guide_weight)
        if self.patch is not None:
            self.patch = tuple(None if p in (None, 0) else int(p) for p in self.patch)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise FhnError(f"unknown training setting(s) {unknown}; known: {sorted(known)}")
        return cls(**data)

    @property
    def last_iteration(self) -> int:
        """The iteration training ends after: ``stop_after`` when set, else ``iterations``."""
        return self.stop_after or self.iterations

    def learning_rate_at(self, iteration: int) -> float:
        if self.schedule == "cosine":
            return self.learning_rate * 0.5 * (1 + math.cos(math.pi * iteration / self.iterations))
        if self.schedule == "step":
            return self.learning_rate * self.step_gamma ** (iteration // self.step_every)
        return self.learning_rate


@dataclass(frozen=True)
class Progress:
    """What a callback sees after each iteration."""

    iteration: int               # 1-based, iterations done
    iterations: int
    loss: float
    learning_rate: float
    elapsed: float               # seconds since this run started
    peak_memory_mb: float
    validation: Metrics | None   # set on validation iterations
    held_out: HeldOut | None = None  # the logits validation scored (auto_recipe.train_fold)


@dataclass
class TrainResult:
    model: TrainedModel
    status: str                  # "finished" | "stopped" | "diverged"
    message: str
    iteration: int
    history: list[dict[str, Any]] = field(default_factory=list)
    validation: Metrics | None = None
    checkpoint: Path | None = None
    diagnostics: Diagnostics | None = None  # Fig. 3's properties of the returned network


def split_validation(
    labels: Labels, fraction: float, seed: int
) -> tuple[Labels, Labels]:
    """Hold back a random ``fraction`` of each class's labels: (training, validation) labels.

    The one stratified split of the product (the Trainer, the app's Wells & validation page
    and notebooks use it): per class, ``round(fraction * n)`` labels, at least one when
    ``fraction`` > 0, and always at least one left for training; a class with a single label
    keeps it for training. SparseLabels are split into SparseLabels, holding back the same
    cells as their dense grid would.
    """
    if not 0.0 <= fraction < 1.0:
        raise FhnError(f"validation fraction {fraction} must be in [0, 1); e.g. 0.2")
    if isinstance(labels, SparseLabels):
        held = _held_back(labels.classes, fraction, seed)
        return labels.subset(~held), labels.subset(held)
    held = _held_back(labels.ravel(), fraction, seed).reshape(labels.shape)
    return np.where(held, -1, labels), np.where(held, labels, -1)


def validation_split(task: SegmentationTask, config: TrainConfig) -> tuple[Labels, Labels | None]:
    """(training labels, held-back labels or None) of a run of ``task`` with ``config``.

    The task's own validation labels when it has them, else :func:`split_validation` from
    the run's seed. A function of the task and settings alone, so a process that did not
    train (the app scoring a run its training processes made) holds back the same cells.
    """
    labels = task.valid_labels(task.labels)
    if task.val_labels is not None:
        train, val = labels, task.valid_labels(task.val_labels)
    else:
        train, val = split_validation(labels, config.validation_fraction, config.seed)
    return train, (val if labelled_classes(val).size else None)


def _held_back(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """(n,) which of a flat list of labels (-1 unlabelled) :func:`split_validation` holds back."""
    rng = np.random.default_rng(seed)
    held = np.zeros(labels.shape, dtype=bool)
    if fraction == 0:
        return held
    for k in np.unique(labels[labels >= 0]):
        idx = np.flatnonzero(labels == k)
        if idx.size < 2:
            continue
        n_val = min(max(1, round(fraction * idx.size)), idx.size - 1)
        held[rng.choice(idx, size=n_val, replace=False)] = True
    return held


EXPLOSION_FACTOR = 1000.0


def exploded_loss(loss: float, n_classes: int) -> str | None:
    """What is wrong when a finite loss has exploded, else None.

    A network that guesses scores ln(n_classes) in cross-entropy (eq. 3.19, balanced
    weights keep that scale); a loss :data:`EXPLOSION_FACTOR` times that means logits of
    thousands against the labels, which no learning rate brings back (h = 5 starts at
    ~1e7, h = 50 climbs to ~1e9): training is stopped as diverged, not carried on.
    """
    guess = math.log(max(n_classes, 2))
    if loss > EXPLOSION_FACTOR * guess:
        return (f"the loss exploded to {loss:.3g} ({EXPLOSION_FACTOR:g} times the "
                f"{guess:.2f} of a guess)")
    return None


def sampler_seed(seed: int, rank: int) -> int:
    """The seed of a rank's sub-volume stream: the run's own seed on rank 0, so one process
    draws as it always has, and streams far apart on the other ranks."""
    return seed + 1_000_003 * rank


def _training_prior(train: Labels, n_classes: int, class_weights: str) -> list[float]:
    """The class prior the loss implies: uniform when balanced, else the training labels'
    frequencies (a forest guide's pseudo-labels left out: they follow the same labels)."""
    if class_weights == "balanced":
        return uniform_prior(n_classes)
    counts = np.bincount(labelled_classes(train), minlength=n_classes)
    return label_prior(torch.from_numpy(counts))


def _class_order(task: SegmentationTask) -> list[int]:
    """The top-to-bottom class order all the task's labels show ([] where there is none).

    Kept with the model so prediction can enforce it (:mod:`fhn_core.stratigraphy`);
    data without a vertical axis, or labels that contradict themselves, have none.
    """
    if task.vertical_axis is None:
        return []
    labels, vertical = task.labels, task.vertical_axis
    if isinstance(labels, SparseLabels):
        if isinstance(task.val_labels, SparseLabels):  # the training label wins a shared cell
            labels = SparseLabels(labels.shape, np.concatenate([task.val_labels.cells,
                                                                labels.cells]),
                                  np.concatenate([task.val_labels.classes, labels.classes]))
        labels, vertical = labels.labelled_traces(vertical), 1  # the labelled traces only
    elif task.val_labels is not None:
        labels = np.where(labels >= 0, labels, task.val_labels)
    try:
        return list(superposition_order(labels, vertical, task.n_classes))
    except FhnError:
        return []


def _peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Trainer:
    """Trains a HyperbolicNetwork on a SegmentationTask; resumable from a checkpoint folder."""

    def __init__(
        self,
        task: SegmentationTask,
        design: NetworkDesign,
        config: TrainConfig | None = None,
        *,
        out_dir: str | Path | None = None,
        class_colours: list[str] | None = None,
        ranks: Ranks | None = None,
        diagnostics: bool = True,
        checkpoint_name: str = "checkpoint",
    ) -> None:
        self.task, self.design, self.config = task, design, config or TrainConfig()
        self.records_diagnostics = diagnostics  # False: no Fig. 3 record (a throwaway fit)
        self.checkpoint_name = checkpoint_name  # the folder under out_dir (ensemble members)
        check_design_fits(design, task)
        cfg = self.config
        self.ranks = ranks or Ranks()
        self.device = distributed.rank_device(self.ranks, resolve_device(cfg.device))
        self.out_dir = Path(out_dir) if out_dir else None
        torch.manual_seed(cfg.seed)
        net = HyperbolicNetwork(design, gradient_mode=cfg.gradient_mode)  # type: ignore[arg-type]
        info = ModelInfo(
            n_classes=task.n_classes, data_channels=task.data.shape[0],
            normalisation=Normalisation.of(task.data), class_names=list(task.class_names),
            class_colours=list(class_colours or []), channel_names=list(task.channel_names),
            fixed_axes=tuple(task.fixed_axes),
            slice_axis=task.slice_axis, slice_index=task.slice_index,
            vertical_axis=task.vertical_axis, class_order=_class_order(task),
            averaged_axis=task.averaged_axis, class_priors=task.class_priors,
            baseline_weight=task.baseline_weight,
        )
        self.model = TrainedModel(net.to(self.device), info)
        # What forward and backward run through: DDP over the network with several ranks.
        self.trained = distributed.wrap(self.model.net, self.ranks)
        train, self.val_labels = validation_split(task, cfg)
        if task.streamed:  # read window by window; nothing is held whole
            if output_factor(design) > 1:
                raise FhnError("training on a survey read chunk by chunk needs a design "
                               "whose output is on the data grid (no Haar route or coarse "
                               "output); load the data in memory for that design")
            self.x = self.x_padded = StreamedInput(task.data, info.normalisation, design)
        else:
            self.x = to_input(task.data, info.normalisation, design)
            from .haar import pad_to_multiple  # local: only the padded copy is kept

            self.x_padded, _ = pad_to_multiple(self.x, design.max_level)
        self.generator = torch.Generator().manual_seed(sampler_seed(cfg.seed, self.ranks.rank))
        # The forest guide's teacher sees the training labels only (never val).
        self.guide = None if cfg.guide == "none" else forest_guide(
            task.data, train, task.n_classes, threshold=cfg.guide_threshold,
            weight=cfg.guide_weight, seed=cfg.seed, balanced=cfg.class_weights == "balanced",
            slice_axis=task.slice_axis)
        sampled = train if self.guide is None else self.guide.labels
        self.sampler = SubvolumeSampler(
            self.x_padded, pad_labels(sampled, design.max_level), size=cfg.patch,
            fixed_axes=task.fixed_axes, slice_axis=task.slice_axis, augment=cfg.augment,
            multiple=2**design.max_level, generator=self.generator,
        )
        self.weights = (
            balanced_class_weights(torch.from_numpy(labelled_classes(train)),
                                   task.n_classes).to(self.device)
            if cfg.class_weights == "balanced" else None
        )
        info.training_prior = _training_prior(train, task.n_classes, cfg.class_weights)
        self.optimiser = self._optimiser()
        self.average = WeightAverage(net, cfg.average_decay) if cfg.average_decay > 0 else None
        self.iteration = 0
        self.history: list[dict[str, Any]] = []
        self._last_good = [p.detach().clone() for p in self.model.net.parameters()]
        self._last_good_iteration = 0

    def _optimiser(self) -> torch.optim.Optimizer:
        cfg, params = self.config, self.model.net.parameters()
        if cfg.optimiser == "sgd":
            return torch.optim.SGD(params, lr=cfg.learning_rate, momentum=cfg.momentum,
                                   weight_decay=cfg.weight_decay)
        return torch.optim.Adam(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)

    # --- one iteration --------------------------------------------------------------
    def _loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        task = self.task
        slice_axis = None if task.slice_axis is None else 2 + task.slice_axis
        use_amp = self.config.amp and self.device.type == "cuda"
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_amp):
            out = self.trained(x)
        scores = class_scores(out, task.n_classes, slice_axis=slice_axis,
                              slice_index=output_slice_index(task.slice_index, self.design))
        if self.guide is not None:
            return self.guide.loss(scores, y, lambda lab: labels_on_output_grid(
                lab, self.design, task.n_classes), self.weights)
        y = labels_on_output_grid(y, self.design, task.n_classes)  # section 3.4
        return partial_cross_entropy(scores, y, class_weights=self.weights)

    def _step(self) -> float | str:
        """One optimiser step; returns the loss, or what went non-finite."""
        net, cfg = self.model.net, self.config
        lr = cfg.learning_rate_at(self.iteration)
        for group in self.optimiser.param_groups:
            group["lr"] = lr
        self.optimiser.zero_grad(set_to_none=True)
        weights = [p.detach().clone() for p in net.parameters()]
        total = 0.0
        for k in range(cfg.accumulate):
            x, y = self.sampler.draw()
            problem, loss = None, None
            if not torch.isfinite(x).all():
                problem = "the input data contain NaN or inf"
            else:
                loss = self._loss(x.to(self.device), y.to(self.device)) / cfg.accumulate
                if not torch.isfinite(loss):
                    problem = "the loss became NaN or inf"
            # Every rank must leave the loop together, or the others wait in backward.
            if distributed.any_rank(problem is not None, self.ranks):
                return problem or "another rank's data or loss became NaN or inf"
            with self._gradient_sync(last=k == cfg.accumulate - 1):
                loss.backward()
            total += loss.item()
            drift = drift_problem(net)  # gradients rebuilt wrongly (on any rank)
            if distributed.any_rank(drift is not None, self.ranks):
                self._drift = drift or "another rank's backward rebuilt its input badly"
                return self._drift
        total = distributed.mean_over_ranks([total], self.ranks)[0]
        # After DDP's averaging the gradients are the same on every rank, so is this test.
        if any(not torch.isfinite(p.grad).all() for p in net.parameters() if p.grad is not None):
            return "the gradients became NaN or inf"
        if (exploded := exploded_loss(total, self.task.n_classes)) is not None:
            return exploded
        # These weights gave a finite loss: the ones to fall back on if the step ruins them.
        self._last_good, self._last_good_iteration = weights, self.iteration
        self.optimiser.step()
        return total

    def measure_step_seconds(self, repeats: int = 2) -> float:
        """Seconds one training step takes here (the fastest of ``repeats`` after a warm-up).

        A step's forward and backward on a drawn sub-volume, with the sampler's stream and
        the gradients put back afterwards: the run it measures is unchanged.
        """
        stream = self.generator.get_state()
        times = []
        try:
            for _ in range(repeats + 1):
                x, y = self.sampler.draw()
                start = time.perf_counter()
                self._loss(x.to(self.device), y.to(self.device)).backward()
                if self.device.type == "cuda":
                    torch.cuda.synchronize(self.device)
                times.append(time.perf_counter() - start)
        finally:
            self.generator.set_state(stream)
            self.optimiser.zero_grad(set_to_none=True)
        return min(times[1:])

    def measure_pass_seconds(self) -> float:
        """Seconds one whole-data pass takes here (a validation, or one prediction pass).

        Data read chunk by chunk (:class:`StreamedInput`) is never passed whole here: its
        logits alone would be the survey's size times the classes. One window of the
        sub-volume size is read and run instead, its time scaled to the survey's cells
        (an upper bound for a validation, which runs only the blocks holding held-back
        cells).
        """
        if isinstance(self.x, StreamedInput):
            return self._scaled_window_seconds()
        start = time.perf_counter()
        predict_logits(self.model.net, self.x, self.task.n_classes,
                       slice_axis=self.task.slice_axis, slice_index=self.task.slice_index,
                       device=self.device)
        self.model.net.train()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter() - start

    def _scaled_window_seconds(self) -> float:
        """Seconds to read and run one sub-volume-sized window, times the windows the
        (padded) grid holds."""
        size = self.sampler.size
        start = time.perf_counter()
        piece = self.x[(slice(None), slice(None), *(slice(0, n) for n in size))]
        predict_logits(self.model.net, piece, self.task.n_classes, device=self.device)
        self.model.net.train()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        seconds = time.perf_counter() - start
        return seconds * float(np.prod(self.x.shape[2:])) / float(np.prod(size))

    def _gradient_sync(self, last: bool) -> AbstractContextManager[Any]:
        """Average gradients over the ranks only after the last sub-volume of a step."""
        if last or not isinstance(self.trained, torch.nn.parallel.DistributedDataParallel):
            return nullcontext()
        return self.trained.no_sync()

    def _restore_last_good(self) -> None:
        copy_into(self.model.net, self._last_good)

    def validate(self) -> Metrics | None:
        """Scores on the held-back labels, with the averaged weights when averaging is on."""
        held = self.held_out()
        return None if held is None else held.metrics()

    def held_out(self) -> HeldOut | None:
        """The network's logits at the held-back labelled cells, with the averaged weights
        when averaging is on."""
        if self.val_labels is None:
            return None
        task = self.task
        if isinstance(self.x, StreamedInput):
            return self._held_out_streamed()
        with self._evaluated_weights() as net:
            logits = predict_logits(
                net, self.x, task.n_classes, slice_axis=task.slice_axis,
                slice_index=task.slice_index, device=self.device,
            )
        self.model.net.train()
        on_data = to_data_grid(logits, output_factor(self.design),
                               self.val_labels.shape)  # nearest, for a coarse output
        labelled = self.val_labels >= 0
        return HeldOut(torch.as_tensor(on_data[:, labelled]), self.val_labels[labelled],
                       scene_shift=self._scene_shift(torch.as_tensor(on_data)))

    def _scene_shift(self, logits: torch.Tensor) -> torch.Tensor | None:
        """Where the task maps with the scene's class mix, the shift to the mix EM finds in
        these whole-scene logits, as :func:`fhn_core.prediction.predict` finds it (one
        answer per column of an averaged axis); None where it keeps the training mix."""
        task = self.task
        if task.class_priors != "scene":
            return None
        if task.averaged_axis is not None:
            logits = logits.mean(1 + task.averaged_axis)
        prior = self.model.info.training_prior
        return prior_shift(prior, scene_prior(logits, prior))

    def _held_out_streamed(self) -> HeldOut:
        """Logits at the validation cells, from the blocks that hold them (blocks.logits_at):
        training windows with the receptive radius of context around them."""
        from .blocks import context_block, logits_at

        val = self.val_labels
        block = context_block(self.sampler.size, self.design, tuple(self.x.shape[2:]))
        with self._evaluated_weights() as net:
            logits = logits_at(net, self.x, val.cells, self.task.n_classes, block=block,
                               device=self.device)
        self.model.net.train()
        return HeldOut(torch.from_numpy(logits), np.asarray(val.classes))

    def _evaluated_weights(self) -> AbstractContextManager[torch.nn.Module]:
        net = self.model.net
        return self.average.applied(net) if self.average else nullcontext(net)

    def final_model(self) -> TrainedModel:
        """The model training hands out: the live weights, or a copy with the averaged ones."""
        if self.average is None or self.average.updates == 0:
            return self.model
        net = copy.deepcopy(self.model.net)
        copy_into(net, self.average.averaged())
        return TrainedModel(net, self.model.info)

    # --- the loop -------------------------------------------------------------------
    def run(
        self,
        callback: Callable[[Progress], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> TrainResult:
        try:
            return self._loop(callback, should_stop)
        except RuntimeError as err:
            if distributed.is_collective_failure(err, self.ranks):
                # DDP's reducer must go before the broken process group is taken down, or
                # its destructor can abort the process at exit instead of this message.
                self.trained = self.model.net
                raise distributed.lost_rank_error(err, self.ranks) from None
            raise

    def _loop(
        self,
        callback: Callable[[Progress], None] | None,
        should_stop: Callable[[], bool] | None,
    ) -> TrainResult:
        cfg = self.config
        start = time.perf_counter()
        self.model.net.train()
        validation: Metrics | None = None
        while self.iteration < cfg.last_iteration:
            outcome = self._step()
            if isinstance(outcome, str):
                return self._diverged(outcome, validation)
            self.iteration += 1
            if self.average:
                self.average.update(self.model.net)
            it = self.iteration
            record: dict[str, Any] = {"iteration": it, "loss": outcome,
                                      "learning_rate": cfg.learning_rate_at(it - 1)}
            last = it == cfg.last_iteration
            val = held = None
            if self.ranks.is_main and cfg.validate_every and (it % cfg.validate_every == 0
                                                              or last):
                held = self.held_out()
                val = validation = None if held is None else held.metrics()
                if val is not None:
                    record["validation"] = val.as_dict()
            self.history.append(record)
            if callback:
                callback(Progress(it, cfg.last_iteration, outcome, record["learning_rate"],
                                  time.perf_counter() - start,
                                  _peak_memory_mb(self.device), val, held))
            stop = distributed.any_rank(bool(should_stop and should_stop()), self.ranks)
            if self.writes and (stop or last or (cfg.checkpoint_every
                                                 and it % cfg.checkpoint_every == 0)):
                self.save()
            if stop:
                return self._result("stopped", f"stopped by request after {it} iterations",
                                    validation)
        return self._result("finished", f"finished {self.iteration} iterations", validation)

    def _diverged(self, what: str, validation: Metrics | None) -> TrainResult:
        self._restore_last_good()
        advice = "" if getattr(self, "_drift", None) == what else (
            f" Lower the learning rate (now {self.config.learning_rate:g}) or h (now "
            f"{self.design.h:g}), or check the data for NaN/inf values")
        message = (
            f"training stopped at iteration {self.iteration + 1}: {what}. The last good weights "
            f"(after iteration {self._last_good_iteration}) are kept.{advice}"
        )
        if self.writes:
            self.save()
        return self._result("diverged", message, validation)

    def _result(self, status: str, message: str, validation: Metrics | None) -> TrainResult:
        checkpoint = self.out_dir / self.checkpoint_name if self.out_dir else None
        model = self.final_model()
        # Rank 0 writes the run record; the other ranks' copies of the network are the same.
        fig3 = (trained_diagnostics(model.net, self.x_padded, self.sampler.size)
                if self.ranks.is_main and self.records_diagnostics else None)
        return TrainResult(model, status, message, self.iteration, self.history,
                           validation, checkpoint, fig3)

    # --- checkpoints ----------------------------------------------------------------
    @property
    def writes(self) -> bool:
        """Whether this process writes checkpoints: it has a folder and is rank 0."""
        return self.out_dir is not None and self.ranks.is_main

    def save(self) -> Path:
        if self.out_dir is None:
            raise FhnError("no output folder was given, so there is nowhere to save")
        self.out_dir.mkdir(parents=True, exist_ok=True)
        state = {"iteration": self.iteration, "config": asdict(self.config),
                 "history": self.history}
        extra = {}
        if self.average:
            extra, state["average_updates"] = self.average.state_tensors(), self.average.updates
        return save_checkpoint(self.out_dir / self.checkpoint_name, self.model, self.optimiser,
                               self.generator, state, extra)

    @classmethod
    def resume(
        cls, out_dir: str | Path, task: SegmentationTask, config: TrainConfig | None = None,
        ranks: Ranks | None = None, checkpoint_name: str = "checkpoint",
    ) -> Trainer:
        """Continue from ``out_dir/checkpoint`` (same task; ``config`` may extend iterations).

        With any number of ranks: every rank loads the same weights and optimiser state;
        rank 0 continues the saved sampler stream, the others start fresh ones, so only a
        one-process run repeats the uninterrupted loss sequence exactly.
        """
        model, tensors, state = load_checkpoint(Path(out_dir) / checkpoint_name)
        saved = TrainConfig.from_dict(state["config"])
        trainer = cls(task, model.design, config or saved, out_dir=out_dir,
                      class_colours=model.info.class_colours, ranks=ranks,
                      checkpoint_name=checkpoint_name)
        trainer.model.net.load_state_dict(model.net.state_dict())
        restore_optimiser(trainer.optimiser, tensors, state["param_groups"])
        rank = trainer.ranks.rank
        if rank == 0:
            trainer.generator.set_state(tensors["rng.sampler"])
        else:
            trainer.generator.manual_seed(sampler_seed(trainer.config.seed, rank)
                                          + state["iteration"])
        torch.set_rng_state(tensors["rng.torch"])
        trainer.model.info = model.info
        trainer.iteration, trainer.history = state["iteration"], list(state["history"])
        if trainer.average and state.get("average_updates"):
            trainer.average.load_state_tensors(tensors, state["average_updates"])
        return trainer
