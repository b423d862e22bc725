"""Prediction on a whole volume or map: in one chunk, or in overlapping blocks.

The invertible network keeps memory low enough that a whole volume usually goes through
in one chunk (``block=None``). Where it does not, the volume is cut into overlapping
blocks, the logits (not the probabilities) are averaged where blocks overlap, and the
softmax is taken once at the end. The result carries class ids, per-class probabilities
and the normalised entropy (0 = certain, 1 = uniform) as an uncertainty map.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from .checkpoint import TrainedModel
from .errors import FhnError
from .haar import crop_to, pad_to_multiple
from .losses import class_scores
from .network import HyperbolicNetwork
from .task import to_input


@dataclass(frozen=True)
class Prediction:
    classes: np.ndarray        # int16 class ids on the label grid
    probabilities: np.ndarray  # float32 (K, *grid)
    entropy: np.ndarray        # float32 in [0, 1] on the label grid


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
    device: torch.device | str = "cpu",
    progress: Callable[[float], None] | None = None,
) -> torch.Tensor:
    """Class logits (K, *grid) of a (1, C, *S) input, averaged over overlapping blocks."""
    levels = net.design.max_level
    x, sizes = pad_to_multiple(x, levels)
    spatial = tuple(x.shape[2:])
    m = 2**levels
    whole = block is None
    blocks = [
        s if whole or a == slice_axis else min(s, math.ceil(block / m) * m)
        for a, s in enumerate(spatial)
    ]
    starts = [_block_starts(s, b, overlap) for s, b in zip(spatial, blocks, strict=True)]
    grid = [s for a, s in enumerate(spatial) if a != slice_axis]
    total = torch.zeros(n_classes, *grid)
    count = torch.zeros(*grid)
    corners = list(itertools.product(*starts))
    net.eval()
    for i, corner in enumerate(corners):
        window = tuple(slice(c, c + b) for c, b in zip(corner, blocks, strict=True))
        out = net(x[(slice(None), slice(None), *window)].to(device))
        scores = class_scores(out, n_classes, slice_axis=None if slice_axis is None
                              else 2 + slice_axis, slice_index=slice_index)[0].float().cpu()
        grid_window = tuple(w for a, w in enumerate(window) if a != slice_axis)
        total[(slice(None), *grid_window)] += scores
        count[grid_window] += 1
        if progress:
            progress((i + 1) / len(corners))
    logits = total / count
    grid_sizes = tuple(s for a, s in enumerate(sizes) if a != slice_axis)
    return crop_to(logits.unsqueeze(0), grid_sizes)[0]


def probabilities_to_prediction(logits: torch.Tensor) -> Prediction:
    """Softmax once over averaged logits; class ids and normalised entropy."""
    p = torch.softmax(logits.float(), dim=0)
    k = p.shape[0]
    entropy = -(p * torch.log(p.clamp_min(1e-12))).sum(0) / max(math.log(k), 1e-12)
    return Prediction(
        classes=p.argmax(0).to(torch.int16).numpy(),
        probabilities=p.numpy().astype(np.float32),
        entropy=entropy.numpy().astype(np.float32),
    )


def predict(
    model: TrainedModel,
    data: np.ndarray,
    *,
    block: int | None = None,
    overlap: int = 16,
    device: str | torch.device = "auto",
    progress: Callable[[float], None] | None = None,
) -> Prediction:
    """Apply a trained model to channels-first data (C, *S) of the kind it was trained on."""
    info = model.info
    data = np.asarray(data, dtype=np.float32)
    if data.ndim != model.design.spatial_dims + 1:
        raise FhnError(
            f"the model is {model.design.spatial_dims}D and expects (C, *spatial) data, got "
            f"shape {data.shape}"
        )
    dev = resolve_device(device)
    x = to_input(data, info.normalisation, model.design)
    model.net.to(dev)
    logits = predict_logits(
        model.net, x, info.n_classes, block=block, overlap=overlap,
        slice_axis=info.slice_axis, slice_index=info.slice_index, device=dev, progress=progress,
    )
    return probabilities_to_prediction(logits)
