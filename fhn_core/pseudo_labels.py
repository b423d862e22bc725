"""Forest-guided training: dense pseudo-labels from the per-cell baseline, used beside the labels.

A user with a hundred labelled points gives a network a hundred gradient signals per
step, and a whole-scene step costs seconds to minutes on a CPU, so within a 15-minute
budget the network stays undertrained and scores below a per-cell random forest
(:mod:`fhn_core.baseline`) fitted in a second on the same points. The two are good at
different things: the forest classifies each cell well from its values alone but ignores
its neighbours (its map is speckled); the network sees context but needs many more
signals than the points give. The guide combines them (self-training / knowledge
distillation: Lee 2013, *Pseudo-label*; Hinton, Vinyals & Dean 2015, *Distilling the
knowledge in a neural network*; Xie et al. 2020, *Self-training with noisy student*):

1. **Teacher.** The forest is fitted on the training labels the network gets, and only
   those: inside cross-validation the fold's training cells (the Trainer is handed the
   fold's labels), so a fold's validation cells never reach the teacher and the
   cross-validated score stays honest. It is deterministic for the run's seed.
2. **Confident cells only.** Every unlabelled cell whose forest top-class probability is
   at least ``threshold`` gets that class as a pseudo-label; the rest stay unlabelled, and
   a cell the user labelled keeps the user's label (:func:`confident_cells`). Nodata cells
   get none.
3. **Lower weight.** The loss is the partial cross-entropy on the user's labels plus
   ``weight`` times the partial cross-entropy on the pseudo-labels in the window, each a
   mean over its own cells (so ``weight`` is the teacher's share, whatever the counts),
   with balanced class weights computed on each set (:func:`GuidedLoss`).
4. **Windows.** Dense targets fill every window, so training draws random sub-volumes
   (``TrainConfig.patch``) instead of the whole scene: a step costs about a second on a CPU
   instead of tens of seconds, and still carries thousands of signals.

The network then denoises the forest's map with spatial context where the forest is sure,
and learns the user's labels where it is not; whether that beats the network alone or the
forest is left to the auto recipe's cross-validation (:mod:`fhn_core.auto_recipe`), which
scores the guided candidate on the same spatial folds as the others.

**How the defaults were set** (the rule, written before any result was seen). A priori:
``threshold`` 0.7 (a clear majority of the trees), ``weight`` 0.5 (the user's labels count
twice as much as the teacher's), windows of 128 cells a side (the auto candidate's
``training.patch``; a cost choice, about a second a step on two CPU cores, not tuned).
On the western Taizhou proxies of ``benchmarks.taizhou_proxy`` (``--method guided``,
200 iterations, the auto recipe's iteration budget; points from one half of the western
half, scored on the other; the eastern half is never read), ten splits (seeds 0-4, both
proxies), a changed value replaces a default only if its mean kappa over the ten splits
is higher AND it is ahead on at least 6 of the 10 (the rule the proxies always used).
Values tried, one at a time against the defaults, in this order as the time allowed:
``threshold`` 0.9, ``weight`` 1.0, ``threshold`` 0.55. benchmarks/README.md lists what was
run and what it scored. The auto recipe then adopts the guided candidate or not by its
own cross-validation on the user's labels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from .errors import FhnError
from .losses import UNLABELLED, balanced_class_weights, partial_cross_entropy

GUIDES = ("none", "forest")
DEFAULT_THRESHOLD = 0.7   # forest top-class probability a pseudo-label needs
DEFAULT_WEIGHT = 0.5      # the pseudo-labels' loss relative to the user's labels'


def check_guide(guide: str, threshold: float, weight: float) -> None:
    """The guide settings are usable, else an FhnError naming the value and the fix."""
    if guide not in GUIDES:
        raise FhnError(f"guide must be one of {', '.join(GUIDES)} (none = the labels only), "
                       f"got {guide!r}")
    if not 0.0 < threshold <= 1.0:
        raise FhnError(f"guide_threshold must be in (0, 1] (the forest's top-class "
                       f"probability a pseudo-label needs), got {threshold}")
    if not weight > 0:
        raise FhnError(f"guide_weight must be positive (the pseudo-labels' share of the "
                       f"loss), got {weight}")


def confident_cells(probabilities: np.ndarray, labels: np.ndarray,
                    threshold: float) -> np.ndarray:
    """Pseudo-labels (class ids, -1 elsewhere) from per-cell probabilities (K, *grid).

    A cell gets the forest's top class where its probability reaches ``threshold`` and the
    user labelled nothing there; the user's labels are never overwritten.
    """
    if probabilities.shape[1:] != labels.shape:
        raise FhnError(f"probabilities {probabilities.shape[1:]} are not on the labels' grid "
                       f"{labels.shape}")
    top = probabilities.max(axis=0)
    pseudo = np.where(top >= threshold, probabilities.argmax(axis=0), UNLABELLED)
    return np.where(labels >= 0, UNLABELLED, pseudo).astype(np.int64)


def forest_pseudo_labels(data: np.ndarray, labels: np.ndarray, n_classes: int, *,
                         threshold: float = DEFAULT_THRESHOLD, seed: int = 0,
                         slice_axis: int | None = None) -> np.ndarray:
    """Pseudo-labels of the forest fitted on ``labels`` alone, applied to every cell of
    ``data`` (channels first, the network's input channels)."""
    from .baseline import cell_features, fit_forest, forest_probabilities

    features = cell_features(data, slice_axis)
    forest = fit_forest(features, labels, seed)
    proba = forest_probabilities(forest, features, n_classes)
    pseudo = confident_cells(proba.reshape(n_classes, *labels.shape), labels, threshold)
    nodata = ~np.isfinite(data).all(axis=0)  # the forest saw zeros there: no target
    if slice_axis is not None:
        nodata = nodata.any(axis=slice_axis)
    return np.where(nodata, UNLABELLED, pseudo)


def combine(labels: np.ndarray, pseudo: np.ndarray, n_classes: int) -> np.ndarray:
    """One grid the sampler draws windows from: user class k as k, pseudo class k as
    ``n_classes + k`` (so a window carries both, told apart by :func:`separate`)."""
    return np.where(labels >= 0, labels,
                    np.where(pseudo >= 0, pseudo + n_classes, UNLABELLED)).astype(np.int64)


def separate(y: torch.Tensor, n_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(user labels, pseudo-labels) of a window drawn from a :func:`combine` grid."""
    real = torch.where(y < n_classes, y, torch.full_like(y, UNLABELLED))
    pseudo = torch.where(y >= n_classes, y - n_classes, torch.full_like(y, UNLABELLED))
    return real, pseudo


@dataclass
class GuidedLoss:
    """Partial cross-entropy on the user's labels plus ``weight`` times that on the
    pseudo-labels; each term a (class-balanced) mean over its own cells, 0 without any."""

    n_classes: int
    weight: float
    pseudo_class_weights: torch.Tensor | None

    def __call__(self, scores: torch.Tensor, y: torch.Tensor,
                 to_output_grid: Callable[[torch.Tensor], torch.Tensor],
                 class_weights: torch.Tensor | None) -> torch.Tensor:
        real, pseudo = separate(y, self.n_classes)
        total = scores.sum() * 0.0  # keeps the graph when a window holds neither
        real = to_output_grid(real)
        if (real != UNLABELLED).any():
            total = total + partial_cross_entropy(scores, real, class_weights=class_weights)
        pseudo = to_output_grid(pseudo)
        if (pseudo != UNLABELLED).any():
            total = total + self.weight * partial_cross_entropy(
                scores, pseudo, class_weights=self.pseudo_class_weights)
        return total


@dataclass
class Guide:
    """What a guided Trainer samples from (``labels``) and how it scores a window."""

    labels: np.ndarray       # the combine() grid
    pseudo: np.ndarray       # the pseudo-labels alone (-1 elsewhere)
    loss: GuidedLoss

    @property
    def coverage(self) -> float:
        """Share of the grid's cells that carry a pseudo-label."""
        return float((self.pseudo >= 0).mean())


def forest_guide(data: np.ndarray, labels: np.ndarray, n_classes: int, *, threshold: float,
                 weight: float, seed: int, balanced: bool = True,
                 slice_axis: int | None = None) -> Guide:
    """The forest guide for training on ``labels`` (the training labels only)."""
    if not isinstance(data, np.ndarray) or not isinstance(labels, np.ndarray):
        raise FhnError("guide = \"forest\" needs the data and labels in memory; set "
                       "[training] guide = \"none\" for a survey read chunk by chunk")
    pseudo = forest_pseudo_labels(data, labels, n_classes, threshold=threshold, seed=seed,
                                  slice_axis=slice_axis)
    weights = None
    if balanced and (pseudo >= 0).any():
        weights = balanced_class_weights(torch.from_numpy(pseudo[pseudo >= 0]), n_classes)
    return Guide(combine(labels, pseudo, n_classes), pseudo,
                 GuidedLoss(n_classes, float(weight), weights))
