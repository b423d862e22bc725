"""Outputs on a coarser grid (section 3.4), and the Haar route to more output channels (3.2).

An invertible network's output has as many elements as its input. A design with one
more coarsening than refinements (``out_level`` L > 0) ends on a grid 2^L times coarser
along every spatial axis, with 2^(d L) times the channels: the paper's hyperspectral
design (Table 2) and its seismic "geological model building" use case at lower resolution.

- Labels are coarsened as the paper does: each coarse cell takes the majority of the
  labelled fine cells in its 2^L block (:func:`fhn_core.losses.coarsen_labels`; for two
  classes with every cell labelled this is the mean-pool-and-round of the authors' example
  script). Blocks without labels stay unlabelled.
- An embedding slice (eq. 3.20) moves with the grid: index p becomes p // 2^L.
- Predictions are brought back to the data grid by nearest neighbour (each coarse cell
  fills its block; the padding is cropped) for class ids and for viewing; the class
  probabilities are kept as the network gave them, on the coarse grid, and exports say so.

The Haar route (section 3.2): when there are more classes than input channels, instead
of replicating channels, Haar-transform the input once before the network: information
preserving, 2^d times the channels, the grid 2x coarser. :func:`haar_route` turns a
design into that form: every segment one level (or more) up, so its first layer applies
the Haar analysis W to the starting pair (X, X) and the output is on the coarser grid.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import torch

from .design import NetworkDesign, Segment
from .errors import FhnError
from .losses import coarsen_labels


def output_factor(design: NetworkDesign) -> int:
    """How many times coarser the output grid is than the input's, per axis (1, 2, 4 ...)."""
    return 2**design.out_level


def output_slice_index(slice_index: int | None, design: NetworkDesign) -> int | None:
    """The embedding slice (eq. 3.20) on the output grid."""
    return None if slice_index is None else slice_index // output_factor(design)


def labels_on_output_grid(labels: torch.Tensor, design: NetworkDesign,
                          n_classes: int) -> torch.Tensor:
    """(N, *S) labels on the input grid -> the output grid (majority of labelled cells).

    S must be divisible by the output factor (training windows are multiples of
    2^max_level, which it divides).
    """
    return coarsen_labels(labels, design.out_level, n_classes)


def to_data_grid(values: np.ndarray | torch.Tensor, factor: int,
                 shape: Sequence[int]) -> np.ndarray:
    """Nearest-neighbour refinement of the last ``len(shape)`` axes by ``factor``, cropped
    to ``shape`` (the data grid): every coarse cell fills its factor^d block."""
    arr = values.numpy() if isinstance(values, torch.Tensor) else np.asarray(values)
    if factor == 1:
        return arr
    lead = arr.ndim - len(shape)
    for axis, size in enumerate(shape):
        ax = lead + axis
        if arr.shape[ax] * factor < size:
            raise FhnError(f"a grid of {arr.shape[ax]} cells refined {factor}x cannot cover "
                           f"{size} data cells")
        arr = np.repeat(arr, factor, axis=ax)
        arr = np.take(arr, np.arange(size), axis=ax)
    return arr


def factor_between(fine: Sequence[int], coarse: Sequence[int]) -> int:
    """The power-of-two factor that maps ``coarse`` back onto ``fine`` (1 when equal)."""
    factor = 1
    while any(math.ceil(f / factor) > c for f, c in zip(fine, coarse, strict=True)):
        factor *= 2
        if factor > max(fine):
            raise FhnError(f"grid {tuple(coarse)} is not a coarser version of {tuple(fine)}")
    return factor


def haar_route(design: NetworkDesign, data_channels: int, n_classes: int) -> NetworkDesign:
    """``design`` on the Haar route of section 3.2: ``in_channels`` = the data's channels
    (no replication) and every segment moved up as many levels as the output needs to have
    at least ``n_classes`` channels (at least one), so the input is Haar-transformed by the
    first layer and the output lies on a grid 2^levels coarser."""
    if data_channels < 1 or n_classes < 1:
        raise FhnError("the Haar route needs at least one data channel and one class")
    channels = data_channels + design.zero_channels
    shift = 1
    while channels * 2 ** (design.spatial_dims * (design.out_level + shift)) < n_classes:
        shift += 1
    first = design.segments[0]
    # levels change one Haar step at a time: one layer at each level on the way up
    lead = tuple(Segment(first.level + j, 1, first.rank) for j in range(1, shift))
    segments = lead + tuple(Segment(s.level + shift, s.layers, s.rank)
                            for s in design.segments)
    name = f"{design.name} (Haar route)" if design.name else "Haar route"
    return replace(design, in_channels=channels, segments=segments, name=name)
