"""Sparse points drawn from a dense reference, for benchmarks: ``fhn sample-points``.

A benchmark that gives the network "50 surveyed points per class" draws them from a
reference map (a mask pair, a class raster) inside a training region, seeded, and hands
them to ``fhn train`` as ``[labels] points = "points.csv"`` (radius 0: each point labels
its own cell). The draw: for each class in id order, ``per_class`` distinct cells chosen
uniformly (``numpy.random.default_rng(seed).choice`` without replacement) among that
class's cells in the region, listed in row-major order; the same seed gives the same
points. The CSV has ``row,col,class`` (cell indices from 0, class names), which
:func:`io_adapters.label_points.import_points` reads on the same grid.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .atomic import atomic_output
from .errors import DataError


def sample_per_class(labels: np.ndarray, per_class: int, seed: int,
                     region: np.ndarray | None = None) -> np.ndarray:
    """A label map (-1 elsewhere) with ``per_class`` cells of each class of ``labels``
    (ids >= 0) drawn inside ``region`` (a boolean mask; None: everywhere)."""
    if per_class < 1:
        raise DataError(f"--per-class {per_class}: draw at least one point per class")
    inside = labels if region is None else np.where(region, labels, -1)
    rng = np.random.default_rng(seed)
    drawn = np.full_like(labels, -1)
    for k in np.unique(labels[labels >= 0]):
        cells = np.nonzero(inside == k)
        if cells[0].size < per_class:
            raise DataError(f"class {int(k)} has {cells[0].size} cells in the region, fewer "
                            f"than --per-class {per_class}; draw fewer or widen the region")
        pick = rng.choice(cells[0].size, per_class, replace=False)
        drawn[tuple(c[pick] for c in cells)] = k
    return drawn


def write_points_csv(path: str | Path, labels: np.ndarray,
                     class_names: Sequence[str]) -> Path:
    """``row,col,class`` of every labelled cell of a 2D map (class names), written atomically.

    Grouped by class id, so that a reader taking the class table from the order the names
    first appear (no ``classes`` given) numbers them as here.
    """
    if labels.ndim != 2:
        raise DataError(f"points are written for 2D maps; this reference is {labels.ndim}D")
    target = Path(path)
    with atomic_output(target) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["row", "col", "class"])
        for k in np.unique(labels[labels >= 0]):
            rows, cols = np.nonzero(labels == k)
            for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
                writer.writerow([r, c, class_names[int(k)]])
    return target
