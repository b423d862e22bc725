"""Labels as a list of labelled cells, for grids too large for one label per cell.

A few wells on a survey of 2e9 cells label perhaps 1e5 of them; the dense label grid of
:mod:`fhn_core.task` (int64, -1 = :data:`~fhn_core.losses.UNLABELLED`) would take 16 GB.
:class:`SparseLabels` keeps the labelled cells only: their grid indices, in C (row-major)
order, and their class ids. Every use training makes of the dense grid has its sparse
counterpart here, in the same order: the labelled cells come out as ``np.nonzero`` lists
them, so a sampler drawing "the k-th labelled cell" draws the same cell from either form.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .errors import FhnError
from .losses import UNLABELLED


@dataclass(frozen=True, eq=False)
class SparseLabels:
    """Class ids at listed cells of a grid; every other cell unlabelled.

    ``cells`` (n, ndim) grid indices and ``classes`` (n,) ids >= 0. On construction the
    cells are sorted into C order, and a cell listed twice keeps its last class (as
    painting one label over another does).
    """

    shape: tuple[int, ...]
    cells: np.ndarray
    classes: np.ndarray

    def __post_init__(self) -> None:
        shape = tuple(int(n) for n in self.shape)
        cells = np.asarray(self.cells, dtype=np.int64).reshape(-1, len(shape))
        classes = np.asarray(self.classes).reshape(-1)
        if not np.issubdtype(classes.dtype, np.integer):
            raise FhnError(f"class ids must be integers, got {classes.dtype}")
        if len(cells) != len(classes):
            raise FhnError(f"{len(cells)} labelled cells but {len(classes)} class ids")
        if len(cells) and ((cells < 0).any() or (cells >= np.array(shape)).any()):
            bad = cells[((cells < 0) | (cells >= np.array(shape))).any(axis=1)][0]
            raise FhnError(f"labelled cell {tuple(int(c) for c in bad)} lies outside the grid "
                           f"{shape}; place labels on the data's grid")
        if len(classes) and classes.min() < 0:
            raise FhnError("sparse labels list labelled cells only: class ids must be >= 0")
        flat = np.ravel_multi_index(tuple(cells.T), shape) if len(cells) else np.empty(0, int)
        # the last of repeated cells wins: unique on the reversed list finds it first
        _, last = np.unique(flat[::-1], return_index=True)
        keep = len(flat) - 1 - last
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "cells", cells[keep])
        object.__setattr__(self, "classes", classes[keep].astype(np.int64))

    @classmethod
    def from_dense(cls, labels: np.ndarray) -> SparseLabels:
        """The labelled cells of a dense grid (-1 = unlabelled)."""
        labels = np.asarray(labels)
        cells = np.argwhere(labels != UNLABELLED)
        return cls(labels.shape, cells, labels[tuple(cells.T)])

    def __len__(self) -> int:
        return len(self.classes)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def dense(self) -> np.ndarray:
        """The whole grid, -1 where unlabelled (for grids that fit in memory)."""
        out = np.full(self.shape, UNLABELLED, dtype=np.int64)
        out[tuple(self.cells.T)] = self.classes
        return out

    def subset(self, keep: np.ndarray) -> SparseLabels:
        """The labels at the cells where ``keep`` (n,) is true."""
        return SparseLabels(self.shape, self.cells[keep], self.classes[keep])

    def on_grid(self, shape: Sequence[int]) -> SparseLabels:
        """The same cells on a larger grid (e.g. padded at the ends), the rest unlabelled."""
        return SparseLabels(tuple(shape), self.cells, self.classes)

    def inside(self, window: Sequence[slice]) -> np.ndarray:
        """(n,) whether each labelled cell lies in a window of slices (one per axis)."""
        mask = np.ones(len(self), dtype=bool)
        for axis, w in enumerate(window):
            mask &= (self.cells[:, axis] >= w.start) & (self.cells[:, axis] < w.stop)
        return mask

    def window(self, window: Sequence[slice]) -> np.ndarray:
        """The dense labels (int64) of a window of slices; the window may reach past the
        grid's end (those cells are unlabelled)."""
        out = np.full([w.stop - w.start for w in window], UNLABELLED, dtype=np.int64)
        here = self.inside(window)
        starts = np.array([w.start for w in window], dtype=np.int64)
        out[tuple((self.cells[here] - starts).T)] = self.classes[here]
        return out

    def labelled_traces(self, vertical_axis: int) -> np.ndarray:
        """(traces, cells down) dense labels of the traces that hold a label.

        A trace is a line of the grid along ``vertical_axis``; the few a set of wells
        labels are what a top-to-bottom class order is read from
        (:func:`fhn_core.stratigraphy.superposition_order`).
        """
        across = [a for a in range(self.ndim) if a != vertical_axis]
        if not across:
            return self.dense()[np.newaxis]
        keys, row = np.unique(self.cells[:, across], axis=0, return_inverse=True)
        out = np.full((len(keys), self.shape[vertical_axis]), UNLABELLED, dtype=np.int64)
        out[row.reshape(-1), self.cells[:, vertical_axis]] = self.classes
        return out
