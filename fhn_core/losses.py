"""Partial cross-entropy and the label embeddings of sections 3.2-3.4.

An invertible network's output has as many elements as its input, so the class scores
are a chosen part of the output state Y_n:

- segmentation at full resolution: output channels 0..K-1
- 3D/4D data to a 2D map: those channels at slice p of a non-spatial axis (eq. 3.20)
- a coarser output grid: the design ends one level down and the labels live on the
  coarse grid (:func:`coarsen_labels`)                                    (section 3.4)
- more classes than channels: expand the input channels once, by replication or by a
  Haar analysis step, before the network (:func:`expand_channels`)        (section 3.2)

Only labelled positions enter the loss (eq. 3.19); -1 marks "unlabelled".
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .errors import FhnError
from .haar import haar_analysis

UNLABELLED = -1


def class_scores(
    output: torch.Tensor,
    n_classes: int,
    *,
    slice_axis: int | None = None,
    slice_index: int | None = None,
) -> torch.Tensor:
    """The class scores embedded in the output state: channels 0..n_classes-1.

    With ``slice_axis`` (a spatial axis of the output, counting N and C, e.g. 2 for the
    band axis of (N, C, band, y, x)) the scores are taken at ``slice_index`` p along it,
    which maps 3D/4D data onto a 2D label map (eq. 3.20).
    """
    channels = output.shape[1]
    if n_classes < 1:
        raise FhnError(f"n_classes must be at least 1, got {n_classes}")
    if n_classes > channels:
        raise FhnError(
            f"{n_classes} classes but the output state has only {channels} channels; expand "
            "the input channels (expand_channels, by replication or Haar) or end the design "
            "one level down"
        )
    scores = output[:, :n_classes]
    if slice_axis is None:
        return scores
    if not 2 <= slice_axis < output.dim():
        raise FhnError(f"slice_axis must be a spatial axis 2..{output.dim() - 1}, got {slice_axis}")
    size = output.shape[slice_axis]
    p = size // 2 if slice_index is None else slice_index
    if not 0 <= p < size:
        raise FhnError(f"slice_index {p} is outside the axis of length {size}")
    return scores.select(slice_axis, p)


def check_labels(labels: torch.Tensor, n_classes: int, grid: tuple[int, ...]) -> None:
    """Labels must be integers on the score grid, in -1..n_classes-1, with at least one set."""
    if labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise FhnError(f"labels must be an integer tensor (-1 = unlabelled), got {labels.dtype}")
    if tuple(labels.shape) != grid:
        raise FhnError(
            f"labels of shape {tuple(labels.shape)} are not on the score grid {grid}; labels "
            "must be on the data's grid (or the coarse grid when the design ends a level down)"
        )
    labelled = labels != UNLABELLED
    if not bool(labelled.any()):
        raise FhnError("there are no labels: paint or import at least one labelled position")
    lo, hi = int(labels[labelled].min()), int(labels[labelled].max())
    if lo < 0:
        raise FhnError(f"label value {lo} is invalid; use -1 for unlabelled and 0..K-1 for classes")
    if hi >= n_classes:
        raise FhnError(
            f"class id {hi} found in the labels but only {n_classes} class channel(s) are "
            "scored (ids 0..K-1); raise the number of classes or fix the label table"
        )


def partial_cross_entropy(
    scores: torch.Tensor,
    labels: torch.Tensor,
    *,
    class_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Cross-entropy over labelled positions only (eq. 3.19).

    ``scores`` (N, K, *S) are logits, ``labels`` (N, *S) hold class ids or -1. With
    ``class_weights`` (K,) the loss is the weighted mean over labelled positions, which
    keeps rare classes from being drowned by common ones in sparse labels.
    """
    check_labels(labels, scores.shape[1], (scores.shape[0], *scores.shape[2:]))
    weight = None if class_weights is None else class_weights.to(scores.device, torch.float32)
    return F.cross_entropy(
        scores.float(), labels.long(), weight=weight, ignore_index=UNLABELLED, reduction="mean"
    )


def balanced_class_weights(labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Inverse-frequency class weights (mean 1 over present classes); absent classes get 0."""
    labelled = labels[labels != UNLABELLED].long()
    counts = torch.bincount(labelled, minlength=n_classes)[:n_classes].float()
    present = counts > 0
    weights = torch.zeros(n_classes)
    weights[present] = counts[present].sum() / (present.sum() * counts[present])
    return weights


def coarsen_labels(labels: torch.Tensor, levels: int, n_classes: int) -> torch.Tensor:
    """Labels on the grid 2^levels coarser: the majority labelled class in each block.

    Blocks without any label stay -1. ``labels`` is (N, *S) with S divisible by 2^levels.
    """
    if levels == 0:
        return labels
    f = 2**levels
    dims = labels.dim() - 1
    pool = {2: F.avg_pool2d, 3: F.avg_pool3d}[dims]
    onehot = F.one_hot((labels + 1).long(), n_classes + 1).movedim(-1, 1).float()
    votes = pool(onehot, f)[:, 1:]
    best = votes.argmax(1)
    return torch.where(votes.amax(1) > 0, best, torch.full_like(best, UNLABELLED))


def expand_channels(x: torch.Tensor, n_channels: int, method: str = "replicate") -> torch.Tensor:
    """Give the input at least ``n_channels`` channels, once, before the network (section 3.2).

    ``"replicate"`` repeats the channels; ``"haar"`` applies Haar analysis steps, which
    multiply the channels by 2^d and are information preserving (the labels then live on
    the coarser grid).
    """
    c = x.shape[1]
    if n_channels <= c:
        return x
    if method == "replicate":
        return x.repeat(1, math.ceil(n_channels / c), *([1] * (x.dim() - 2)))[:, :n_channels]
    if method == "haar":
        while x.shape[1] < n_channels:
            x = haar_analysis(x)
        return x
    raise FhnError(f"channel expansion method must be 'replicate' or 'haar', got {method!r}")
