"""Prediction one block at a time, for volumes that never sit in memory whole.

:func:`fhn_core.prediction.predict_logits` walks a grid of overlapping blocks over a
volume held in memory. This module cuts the same walk into independent pieces so that a
scheduler outside fhn_core (Dask, see :mod:`app.streamed`) can run them anywhere, in any
order, reading only each block's window of the data:

- :func:`block_grid` the blocks (the same origins, sizes and end padding as
  ``predict_logits`` with ``block=``/``overlap=``), and :func:`window_indices` which cells
  of the unpadded data fill each block (reflect or replicate padding at the far ends,
  as :func:`fhn_core.haar.pad_to_multiple` does);
- :func:`block_logits` the class logits of one block's window;
- :func:`blend` the average of the logits of the blocks covering one region, summed in
  the grid's block order, so its logits come out bitwise equal to the in-memory ones;
- :func:`logits_at` the blended logits at a list of cells only, from the blocks that
  cover them (validation on a survey larger than memory).

The overlap that makes blocks agree with the whole-volume answer is the network's
receptive field (:func:`receptive_radius`): a layer (2.6) applies K then K^T, two
convolutions of radius ``kernel_size // 2`` at its level, i.e. ``2^level`` cells each.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import torch

from .checkpoint import TrainedModel
from .design import NetworkDesign
from .haar import padded_cells, padding_for
from .losses import class_scores
from .prediction import _block_starts
from .task import to_input

Window = tuple[slice, ...]


def receptive_radius(design: NetworkDesign) -> int:
    """Cells either side of an output cell that can change it (an upper bound).

    Each layer of eq. (2.6) convolves with K and K^T: 2 * (kernel_size // 2) cells at its
    level, 2^level input cells per cell; a Haar change of level mixes aligned groups of
    2^level cells, which adds at most 2^max_level - 1.
    """
    half = design.kernel_size // 2
    reach = sum(2 * half * 2**spec.level for spec in design.layer_specs())
    return reach + 2**design.max_level - 1


def context_block(
    window: tuple[int, ...], design: NetworkDesign, sizes: tuple[int, ...]
) -> tuple[int, ...]:
    """A training window grown by the receptive radius on both sides (a multiple of
    2^levels, at most ``sizes``): the block validation on a survey read chunk by chunk
    predicts, so that a cell in its middle sees all the context the network can use."""
    reach, m = 2 * receptive_radius(design), 2**design.max_level
    return tuple(min(int(s), -(-(int(w) + reach) // m) * m)
                 for w, s in zip(window, sizes, strict=True))


@dataclass(frozen=True)
class BlockGrid:
    """Overlapping blocks over a volume padded at its far ends to a multiple of 2^levels."""

    sizes: tuple[int, ...]   # spatial sizes of the data
    padded: tuple[int, ...]  # ... after padding
    block: tuple[int, ...]   # block size per spatial axis
    starts: tuple[tuple[int, ...], ...]  # block origins along each spatial axis
    reflect: bool            # reflect padding (else edge replication, for very short axes)
    slice_axis: int | None   # spatial axis the class scores are taken at, dropped in the grid

    @property
    def corners(self) -> list[tuple[int, ...]]:
        """Block origins in the order predict_logits visits them (the product of starts)."""
        return list(itertools.product(*self.starts))

    def windows(self) -> list[Window]:
        return [self.window(i) for i in range(math.prod(len(s) for s in self.starts))]

    def window(self, number: int) -> Window:
        """The padded-grid window of block ``number`` (in :attr:`corners` order)."""
        index = np.unravel_index(number, [len(s) for s in self.starts])
        return tuple(slice(s[i], s[i] + b)
                     for s, i, b in zip(self.starts, index, self.block, strict=True))

    def covering(self, region: Window) -> list[int]:
        """Indices (into :meth:`windows`) of the blocks that overlap a label-grid region."""
        axes = [a for a in range(len(self.sizes)) if a != self.slice_axis]
        ranges = [range(len(s)) for s in self.starts]
        for a, r in zip(axes, region, strict=True):
            ranges[a] = [i for i, c in enumerate(self.starts[a])
                         if c < r.stop and r.start < c + self.block[a]]
        counts = [len(s) for s in self.starts]
        return [int(np.ravel_multi_index(index, counts)) for index in itertools.product(*ranges)]

    def grid_window(self, window: Window) -> Window:
        """A block's window on the label grid (without the slice axis)."""
        return tuple(w for a, w in enumerate(window) if a != self.slice_axis)


def block_grid(
    sizes: tuple[int, ...],
    design: NetworkDesign,
    block: int | tuple[int, ...],
    overlap: int,
    slice_axis: int | None = None,
) -> BlockGrid:
    """The blocks ``predict_logits(..., block=block, overlap=overlap)`` runs on ``sizes``
    (``block`` one size for every axis, or one per axis)."""
    levels = design.max_level
    pads = padding_for(tuple(sizes), levels)
    padded = tuple(s + p for s, p in zip(sizes, pads, strict=True))
    m = 2**levels
    per_axis = (block,) * len(padded) if isinstance(block, int) else tuple(block)
    blocks = tuple(
        s if a == slice_axis else min(s, math.ceil(b / m) * m)
        for a, (s, b) in enumerate(zip(padded, per_axis, strict=True))
    )
    starts = tuple(tuple(_block_starts(s, b, overlap)) for s, b in zip(padded, blocks,
                                                                        strict=True))
    reflect = all(p < s for p, s in zip(pads, sizes, strict=True))
    return BlockGrid(tuple(sizes), padded, blocks, starts, reflect, slice_axis)


def window_indices(grid: BlockGrid, window: Window) -> tuple[np.ndarray, ...]:
    """Per spatial axis, the data index of every cell of a padded block window.

    Beyond the data's end, cell ``size + j`` is data cell ``size - 2 - j`` (reflection,
    as ``torch.nn.functional.pad(mode="reflect")``) or ``size - 1`` (replication).
    """
    return tuple(np.asarray(padded_cells(w.start, w.stop, size, grid.reflect), dtype=np.int64)
                 for w, size in zip(window, grid.sizes, strict=True))


@torch.no_grad()
def block_logits(
    model: TrainedModel, window: np.ndarray, device: torch.device | str = "cpu"
) -> np.ndarray:
    """Class logits (K, *grid window) of one block's raw data window (C, *window).

    The window is standardised with the model's statistics and expanded to its input
    channels as the whole volume would be (:func:`fhn_core.task.to_input`); an ensemble's
    logits are the mean of its members', as in :func:`fhn_core.prediction.model_logits`.
    """
    info = model.info
    x = to_input(np.asarray(window, dtype=np.float32), info.normalisation, model.design).to(device)
    slice_axis = None if info.slice_axis is None else 2 + info.slice_axis
    total = torch.zeros(())
    for net in model.networks:  # an ensemble: the mean of its members' logits
        net.eval()
        total = total + class_scores(net(x), info.n_classes, slice_axis=slice_axis,
                                     slice_index=info.slice_index)[0].float().cpu()
    return (total / len(model.networks)).numpy()


def blend(
    region: Window, covering: list[tuple[Window, np.ndarray]], n_classes: int
) -> np.ndarray:
    """Average logits (K, *region) over the blocks covering ``region`` of the label grid.

    ``covering`` lists (block window on the label grid, see :meth:`BlockGrid.grid_window`;
    block logits) in the grid's block order, so every cell adds the same numbers in the
    same order as ``predict_logits``.
    """
    shape = tuple(r.stop - r.start for r in region)
    total = np.zeros((n_classes, *shape), dtype=np.float32)
    count = np.zeros(shape, dtype=np.float32)
    for window, logits in covering:
        inside = [(max(w.start, r.start), min(w.stop, r.stop))
                  for w, r in zip(window, region, strict=True)]
        if any(lo >= hi for lo, hi in inside):
            continue
        dst = tuple(slice(lo - r.start, hi - r.start)
                    for (lo, hi), r in zip(inside, region, strict=True))
        src = tuple(slice(lo - w.start, hi - w.start)
                    for (lo, hi), w in zip(inside, window, strict=True))
        total[(slice(None), *dst)] += logits[(slice(None), *src)]
        count[dst] += 1
    return total / count


@torch.no_grad()
def logits_at(
    net: torch.nn.Module,
    x,
    cells: np.ndarray,
    n_classes: int,
    *,
    block: tuple[int, ...],
    overlap: int | None = None,
    device: torch.device | str = "cpu",
) -> np.ndarray:
    """Class logits (K, n) at the (n, d) cells of the data grid, blended over blocks.

    ``x`` is the padded network input (a tensor or a :class:`fhn_core.task.StreamedInput`,
    read one block window at a time). Only the blocks of :func:`block_grid` that hold one
    of the cells run, in the grid's order, and each cell averages the blocks covering it
    as a whole-grid blockwise prediction would: the cost follows the labels, not the
    volume. ``overlap`` defaults to the receptive radius, at most half a block.
    """
    design = net.design
    sizes = tuple(int(s) for s in x.shape[2:])  # padded already: the grid pads nothing more
    if overlap is None:
        overlap = min(receptive_radius(design), min(block) // 2)
    grid = block_grid(sizes, design, tuple(block), overlap)
    total = np.zeros((n_classes, len(cells)), dtype=np.float32)
    count = np.zeros(len(cells), dtype=np.float32)
    net.eval()
    for number in _blocks_holding(grid, cells):
        window = grid.window(number)
        inside = np.all([(cells[:, a] >= w.start) & (cells[:, a] < w.stop)
                         for a, w in enumerate(window)], axis=0)
        out = net(x[(slice(None), slice(None), *window)].to(device))
        scores = class_scores(out, n_classes)[0].float().cpu().numpy()
        local = cells[inside] - np.array([w.start for w in window])
        total[:, inside] += scores[(slice(None), *local.T)]
        count[inside] += 1
    return total / count


def _blocks_holding(grid: BlockGrid, cells: np.ndarray) -> list[int]:
    """The numbers of the blocks that contain at least one of the cells, in grid order."""
    first, last = [], []
    for axis, (starts, size) in enumerate(zip(grid.starts, grid.block, strict=True)):
        origins = np.asarray(starts)
        first.append(np.searchsorted(origins + size, cells[:, axis], "right"))
        last.append(np.searchsorted(origins, cells[:, axis], "right"))
    spans = np.unique(np.stack(first + last, axis=1), axis=0)
    d, counts = len(grid.starts), [len(s) for s in grid.starts]
    found = set()
    for span in spans:
        ranges = [range(int(span[a]), int(span[d + a])) for a in range(d)]
        found.update(int(np.ravel_multi_index(i, counts)) for i in itertools.product(*ranges))
    return sorted(found)
