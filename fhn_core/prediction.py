"""Prediction on a whole volume or map: in one chunk, or in overlapping blocks.

The invertible network keeps memory low enough that a whole volume usually goes through
in one chunk (``block=None``). Where it does not, the volume is cut into overlapping
blocks, the logits (not the probabilities) are averaged where blocks overlap, and the
softmax is taken once at the end. The result carries class ids, per-class probabilities
and the normalised entropy (0 = certain, 1 = uniform) as an uncertainty map.

Test-time augmentation (``augment=True``) also averages the logits over the flips of the
horizontal axes and, where the first two have equal sizes, their transpose (8 transforms
of a square 2D map or of a 3D volume with square horizontal sections, 4 otherwise). The
vertical/time axis and the slice axis are never flipped: the axes allowed are those of
``sampler.free_axes``, the rule the training sampler uses. Why: the network is not
equivariant to these flips (its kernels are not symmetric), yet the sampler trains it on
randomly flipped and transposed windows, so its answer for one position is a random
variable over those transforms; averaging the logits over all of them is the matching
estimator, and the averaged prediction is exactly equivariant to the transforms.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch

from .blending import blended_logits, check_baseline_weight
from .checkpoint import TrainedModel
from .coarse import factor_between, output_factor, output_slice_index, to_data_grid
from .errors import FhnError
from .haar import crop_to, pad_to_multiple
from .losses import class_scores
from .network import HyperbolicNetwork
from .priors import check_class_priors, scene_prior, shift_to_prior
from .sampler import free_axes
from .stratigraphy import ordered_classes
from .task import to_input

# A horizontal transform: the spatial axes flipped, then the pair transposed (or None).
Transform = tuple[tuple[int, ...], tuple[int, int] | None]


@dataclass(frozen=True)
class Prediction:
    """Class ids and entropy on the label grid; probabilities on the network's output grid.

    For a design that ends coarser (section 3.4) the probabilities stay on that coarse grid
    as the network gave them (``output_factor`` times coarser per axis, the padding
    cropped); class ids and entropy are brought to the label grid by nearest neighbour.
    """

    classes: np.ndarray        # int16 class ids on the label grid
    probabilities: np.ndarray  # float32 (K, *output grid): the label grid unless coarser
    entropy: np.ndarray        # float32 in [0, 1] on the label grid
    scene_prior: np.ndarray | None = None  # (K,) the class mix re-estimated on the scene

    @property
    def output_factor(self) -> int:
        """How many times coarser the probabilities' grid is than the label grid (1: same)."""
        return factor_between(self.classes.shape, self.probabilities.shape[1:])


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """"auto" -> CUDA when available, else CPU; an explicit CUDA request must be possible."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise FhnError("CUDA was asked for but no CUDA GPU is available; use --device cpu")
    return dev


def _block_starts(size: int, block: int, overlap: int) -> list[int]:
    """Block origins along one axis; overlaps are capped at half a block so blocks advance."""
    if block >= size:
        return [0]
    step = block - min(overlap, block // 2)
    starts = list(range(0, size - block, step))
    return starts + [size - block]


def horizontal_transforms(
    spatial: tuple[int, ...], fixed_axes: tuple[int, ...] = (), slice_axis: int | None = None
) -> list[Transform]:
    """Every flip of the free axes, each with and without the transpose of the first two.

    The identity comes first. Free axes are ``sampler.free_axes`` (never the fixed
    vertical/time axis, never the slice axis); the transpose only where their sizes agree.
    """
    free = free_axes(len(spatial), fixed_axes, slice_axis)
    pairs: list[tuple[int, int] | None] = [None]
    if len(free) >= 2 and spatial[free[0]] == spatial[free[1]]:
        pairs.append((free[0], free[1]))
    flips = [
        tuple(a for a, on in zip(free, mask, strict=True) if on)
        for mask in itertools.product((False, True), repeat=len(free))
    ]
    return [(f, p) for p in pairs for f in flips]


def _apply(x: torch.Tensor, transform: Transform, first: int) -> torch.Tensor:
    """Flip then transpose; ``first`` is the tensor dimension of spatial axis 0."""
    flips, pair = transform
    if flips:
        x = x.flip([first + a for a in flips])
    if pair is not None:
        x = x.transpose(first + pair[0], first + pair[1])
    return x


def _undo(logits: torch.Tensor, transform: Transform, slice_axis: int | None) -> torch.Tensor:
    """The inverse transform on (K, *grid) logits, whose grid lacks the slice axis."""

    def grid_axis(a: int) -> int:
        return a - (slice_axis is not None and a > slice_axis)

    flips, pair = transform
    if pair is not None:
        logits = logits.transpose(1 + grid_axis(pair[0]), 1 + grid_axis(pair[1]))
    if flips:
        logits = logits.flip([1 + grid_axis(a) for a in flips])
    return logits


@torch.no_grad()
def predict_logits(
    net: HyperbolicNetwork,
    x: torch.Tensor,
    n_classes: int,
    *,
    block: int | None = None,
    overlap: int = 16,
    slice_axis: int | None = None,
    slice_index: int | None = None,
    fixed_axes: tuple[int, ...] = (),
    augment: bool = False,
    device: torch.device | str = "cpu",
    progress: Callable[[float], None] | None = None,
) -> torch.Tensor:
    """Class logits (K, *grid) of a (1, C, *S) input, averaged over overlapping blocks.

    With ``augment`` the logits are also averaged over the horizontal transforms
    (``horizontal_transforms``; ``fixed_axes`` and ``slice_axis`` are never touched): each
    transformed input goes through the same block machinery and its logits are transformed
    back before the average.
    """
    f = output_factor(net.design)
    sizes = tuple(x.shape[2:])
    if augment and f > 1:
        # A flip moves a volume's end to its start; padded to whole coarse cells first, the
        # flipped volume's coarse cells are the unflipped ones mirrored, so they line up.
        x, _ = pad_to_multiple(x, net.design.out_level)
    transforms = (
        horizontal_transforms(tuple(x.shape[2:]), fixed_axes, slice_axis)
        if augment else [((), None)]
    )
    total = torch.zeros(())
    for i, transform in enumerate(transforms):
        step = None
        if progress:
            def step(fraction: float, i: int = i) -> None:
                progress((i + fraction) / len(transforms))
        logits = _undo(
            _block_logits(net, _apply(x, transform, 2), n_classes, block, overlap,
                          slice_axis, slice_index, device, step),
            transform, slice_axis,
        )
        total = total + logits
    grid = tuple(math.ceil(s / f) for a, s in enumerate(sizes) if a != slice_axis)
    return crop_to(total / len(transforms), grid)


def _block_logits(
    net: HyperbolicNetwork,
    x: torch.Tensor,
    n_classes: int,
    block: int | None,
    overlap: int,
    slice_axis: int | None,
    slice_index: int | None,
    device: torch.device | str,
    progress: Callable[[float], None] | None,
) -> torch.Tensor:
    """Logits of one input, in one chunk or averaged over overlapping blocks.

    For a design that ends coarser (section 3.4) the logits are on its output grid, f =
    2^out_level times coarser: blocks start on multiples of f so that they share that grid.
    """
    levels = net.design.max_level
    x, sizes = pad_to_multiple(x, levels)
    spatial = tuple(x.shape[2:])
    m = 2**levels
    f = output_factor(net.design)
    whole = block is None
    blocks = [
        s if whole or a == slice_axis else min(s, math.ceil(block / m) * m)
        for a, s in enumerate(spatial)
    ]
    starts = [sorted({start // f * f for start in _block_starts(s, b, overlap)})
              for s, b in zip(spatial, blocks, strict=True)]
    grid = [s // f for a, s in enumerate(spatial) if a != slice_axis]
    total = torch.zeros(n_classes, *grid)
    count = torch.zeros(*grid)
    corners = list(itertools.product(*starts))
    net.eval()
    for i, corner in enumerate(corners):
        window = tuple(slice(c, c + b) for c, b in zip(corner, blocks, strict=True))
        out = net(x[(slice(None), slice(None), *window)].to(device))
        scores = class_scores(out, n_classes, slice_axis=None if slice_axis is None
                              else 2 + slice_axis, slice_index=output_slice_index(
                                  slice_index, net.design))[0].float().cpu()
        grid_window = tuple(slice(w.start // f, w.stop // f) for a, w in enumerate(window)
                            if a != slice_axis)
        total[(slice(None), *grid_window)] += scores
        count[grid_window] += 1
        if progress:
            progress((i + 1) / len(corners))
    logits = total / count
    grid_sizes = tuple(math.ceil(s / f) for a, s in enumerate(sizes) if a != slice_axis)
    return crop_to(logits.unsqueeze(0), grid_sizes)[0]


def probabilities_to_prediction(
    logits: torch.Tensor, class_order: tuple[int, ...] = (), vertical_axis: int | None = None
) -> Prediction:
    """Softmax once over averaged logits; class ids and normalised entropy.

    With a ``class_order`` (top to bottom along ``vertical_axis``) the class ids are the
    most probable ones that obey it down every trace (:func:`stratigraphy.ordered_classes`);
    probabilities and entropy stay the network's own.
    """
    p = torch.softmax(logits.float(), dim=0)
    k = p.shape[0]
    entropy = -(p * torch.log(p.clamp_min(1e-12))).sum(0) / max(math.log(k), 1e-12)
    if class_order and vertical_axis is not None:
        classes = ordered_classes(logits, class_order, vertical_axis)
    else:
        # max(0).indices: the same first maximum as argmax(0), ~10x faster over dim 0 on CPU
        classes = p.max(0).indices.to(torch.int16).numpy()
    return Prediction(
        classes=classes,
        probabilities=p.numpy().astype(np.float32),
        entropy=entropy.numpy().astype(np.float32),
    )


def model_logits(
    model: TrainedModel,
    x: torch.Tensor,
    *,
    block: int | None = None,
    overlap: int = 16,
    augment: bool = False,
    device: torch.device | str = "cpu",
    progress: Callable[[float], None] | None = None,
) -> torch.Tensor:
    """The model's class logits (K, *grid) for its (1, C, *S) input: the mean over its
    networks (one, or the members of an ensemble, :mod:`fhn_core.ensemble`) of
    :func:`predict_logits`, each with the same blocks and transforms."""
    info, nets = model.info, model.networks
    total = torch.zeros(())
    for m, net in enumerate(nets):
        step = None
        if progress:
            def step(f: float, m: int = m) -> None:
                progress((m + f) / len(nets))
        net.to(device)
        total = total + predict_logits(
            net, x, info.n_classes, block=block, overlap=overlap,
            slice_axis=info.slice_axis, slice_index=info.slice_index,
            fixed_axes=tuple(info.fixed_axes), augment=augment, device=device, progress=step,
        )
    return total / len(nets)


def predict(
    model: TrainedModel,
    data: np.ndarray,
    *,
    block: int | None = None,
    overlap: int = 16,
    augment: bool = False,
    stratigraphic_order: bool = False,
    class_priors: str | None = None,
    baseline_probabilities: np.ndarray | None = None,
    baseline_weight: float | None = None,
    device: str | torch.device = "auto",
    progress: Callable[[float], None] | None = None,
) -> Prediction:
    """Apply a trained model to channels-first data (C, *S) of the kind it was trained on.

    ``augment``: average the logits over the horizontal flips/transposes the model was
    trained with (its ``info.fixed_axes`` and slice axis stay as they are); 4-8x the time.
    A model labelled on every slice along an axis (``info.averaged_axis``) answers once
    per column of that axis: the mean of its slices' logits.
    ``stratigraphic_order``: class ids that keep the top-to-bottom order of the classes
    the training labels showed, down every trace (law of superposition; see
    :mod:`fhn_core.stratigraphy`); only for models trained on data with a vertical axis.
    ``class_priors``: "scene" re-estimates the class mix on this scene by EM and moves the
    posteriors to it (:mod:`fhn_core.priors`), "training" keeps the training loss's; None
    takes the model's default (``info.class_priors``).
    ``baseline_probabilities``: the run's per-cell baseline's (K, *grid) probabilities on
    this data, blended with the network's by ``baseline_weight`` before the class mix and
    the order are applied (:mod:`fhn_core.blending`); the weight None takes the model's
    (``info.baseline_weight``), 0 is the network alone.
    """
    info = model.info
    class_priors = check_class_priors(class_priors or info.class_priors)
    weight = check_baseline_weight(info.baseline_weight if baseline_weight is None
                                   else baseline_weight)
    if weight > 0 and baseline_probabilities is None:
        raise FhnError(
            f"this model predicts with its run's per-cell baseline (weight {weight:g}) and "
            "its probabilities were not given; give them, or set the baseline's weight to 0 "
            "for the network alone"
        )
    if stratigraphic_order and not (info.class_order and info.vertical_axis is not None):
        raise FhnError(
            "this model has no top-to-bottom class order: its data had no vertical axis or "
            "its labels put two classes above each other in different traces; predict "
            "without the stratigraphic order"
        )
    data = np.asarray(data, dtype=np.float32)
    if data.ndim != model.design.spatial_dims + 1:
        raise FhnError(
            f"the model is {model.design.spatial_dims}D and expects (C, *spatial) data, got "
            f"shape {data.shape}"
        )
    factor = output_factor(model.design)
    dev = resolve_device(device)
    x = to_input(data, info.normalisation, model.design)
    logits = model_logits(model, x, block=block, overlap=overlap, augment=augment, device=dev,
                          progress=progress)
    if info.averaged_axis is not None:  # labelled on every slice: one answer per column
        logits = logits.mean(1 + info.averaged_axis)
    if weight > 0:
        logits = blended_logits(logits, baseline_probabilities, weight)
    prior = None
    if class_priors == "scene":
        prior = scene_prior(logits, info.training_prior)
        logits = shift_to_prior(logits, info.training_prior, prior)
    order = tuple(info.class_order) if stratigraphic_order else ()
    prediction = probabilities_to_prediction(logits, order, info.vertical_axis)
    if factor > 1:
        grid = tuple(s for a, s in enumerate(data.shape[1:])
                     if a not in (info.slice_axis, info.averaged_axis))
        prediction = replace(prediction, classes=to_data_grid(prediction.classes, factor, grid),
                             entropy=to_data_grid(prediction.entropy, factor, grid))
    if prior is not None:
        prediction = replace(prediction, scene_prior=prior.numpy().astype(np.float32))
    return prediction
