"""Spatially blocked cross-validation on sparse labels.

Labelled cells that lie next to each other look alike (spatial autocorrelation), so a
random split of them into training and validation measures how well a model interpolates
between its own training cells, not how well it maps the rest of the data: the random
20 % validation of a few painted strokes can say kappa 0.9 for a model that scores 0.25
away from them. Blocked cross-validation (Roberts et al. 2017, *Cross-validation
strategies for data with temporal, spatial, hierarchical, or phylogenetic structure*,
Ecography 40) validates on whole regions instead:

1. **Blocks.** The label grid's horizontal axes (every axis but the vertical one: traces
   stay whole in seismic; maps are tiled in y and x) are cut into square blocks of side
   ``s`` cells, aligned on the labelled cells' bounding box. ``s`` comes from the grid and
   the spread of the labels (:func:`block_side`): the largest power-of-two fraction of the
   labelled extent that still leaves at least ``BLOCKS_PER_FOLD`` non-empty blocks per
   fold, but never below twice the median size of a patch of touching labelled cells (a
   well with its radius, a brush dab; so a patch is rarely cut) nor below
   ``MIN_BLOCK_SIDE`` cells. Sparse wells or points far apart get about one block each, a
   densely painted area is cut into regions.
2. **Folds.** Blocks go to ``k`` folds whole (:func:`assign_blocks`): in a seeded random
   order, blocks holding much of a rare class first, each to the fold where it evens out
   every class's share of validation cells best. So each class is validated in as many
   folds as it has blocks (every fold when it has at least ``k``), and each labelled cell
   is validated in exactly one fold.
3. **Buffer.** In fold ``f`` the validation cells are those of fold ``f``'s blocks; the
   training cells are all others except those within ``buffer`` cells (along the horizontal
   axes, Chebyshev distance) of a validation cell, so no training cell neighbours a
   validation cell across a block edge (:meth:`SpatialFolds.split`).

The score of a model is then the mean (and the spread) over the folds of its score on
each fold's validation cells, having trained on that fold's training cells.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .errors import FhnError
from .losses import UNLABELLED
from .metrics import Metrics

BLOCKS_PER_FOLD = 3   # non-empty blocks wanted per fold (more: finer, better class balance)
MIN_BLOCK_SIDE = 4    # cells; a smaller block is a neighbourhood, not a region
DEFAULT_BUFFER = 2    # cells between training and validation along the horizontal axes


@dataclass(frozen=True)
class SpatialFolds:
    """A partition of the labelled cells of one label grid into ``n_folds`` folds of blocks.

    ``fold`` holds, on the label grid, the fold whose validation set holds each labelled cell
    (-1 where unlabelled); ``block`` the block index of each labelled cell (-1 unlabelled);
    ``fold_of_block`` the fold of each block; ``side`` the block side in cells along
    ``block_axes`` (the other axis, if any, is vertical and never cut).
    """

    fold: np.ndarray
    block: np.ndarray
    fold_of_block: np.ndarray
    side: int
    block_axes: tuple[int, ...]
    buffer: int
    seed: int

    @property
    def n_folds(self) -> int:
        return int(self.fold_of_block.max()) + 1

    @property
    def n_blocks(self) -> int:
        return int(self.fold_of_block.size)

    def split(self, labels: np.ndarray, fold: int) -> tuple[np.ndarray, np.ndarray]:
        """(training, validation) labels of ``fold``; -1 elsewhere.

        Validation: the labelled cells of the fold's blocks. Training: every other labelled
        cell farther than ``buffer`` cells from all of them along the horizontal axes.
        """
        if not 0 <= fold < self.n_folds:
            raise FhnError(f"fold {fold} does not exist; there are {self.n_folds} folds")
        if labels.shape != self.fold.shape:
            raise FhnError(f"labels {labels.shape} are not on the folds' grid {self.fold.shape}")
        held = self.fold == fold
        validation = np.where(held, labels, UNLABELLED)
        near = _dilate(held, self.buffer, self.block_axes)
        training = np.where(near | (self.fold < 0), UNLABELLED, labels)
        return training, validation

    def summary(self) -> str:
        cells = [int((self.fold == f).sum()) for f in range(self.n_folds)]
        return (f"{self.n_folds} spatial folds of {self.n_blocks} blocks ({self.side} cells a "
                f"side), validation cells per fold {cells}, buffer {self.buffer}")

    def as_dict(self) -> dict[str, object]:
        return {"n_folds": self.n_folds, "n_blocks": self.n_blocks, "block_side": self.side,
                "block_axes": list(self.block_axes), "buffer": self.buffer, "seed": self.seed,
                "validation_cells": [int((self.fold == f).sum()) for f in range(self.n_folds)]}


def _dilate(mask: np.ndarray, radius: int, axes: tuple[int, ...]) -> np.ndarray:
    """Cells within ``radius`` (Chebyshev, along ``axes`` only) of a True cell."""
    if radius <= 0:
        return mask
    size = [2 * radius + 1 if a in axes else 1 for a in range(mask.ndim)]
    return ndimage.maximum_filter(mask.astype(np.uint8), size=size, mode="constant") > 0


def horizontal_axes(ndim: int, vertical_axis: int | None) -> tuple[int, ...]:
    """The axes blocks cut: all but the vertical one (time or depth) of the label grid."""
    return tuple(a for a in range(ndim) if a != vertical_axis)


def block_index(labelled: np.ndarray, axes: tuple[int, ...], side: int) -> np.ndarray:
    """Block id (0.. in raster order of the non-empty blocks) of each labelled cell, else -1.

    Blocks are ``side`` cells a side along ``axes``, aligned on the labelled cells'
    bounding box; along the other axes a block spans the whole grid.
    """
    where = np.nonzero(labelled)
    if not where[0].size:
        raise FhnError("there are no labelled cells to cross-validate")
    coords = [(where[a] - where[a].min()) // side for a in axes]
    _, ids = np.unique(np.stack(coords, axis=1), axis=0, return_inverse=True)
    out = np.full(labelled.shape, -1, dtype=np.int64)
    out[where] = ids.reshape(-1)
    return out


def block_side(labelled: np.ndarray, axes: tuple[int, ...], n_folds: int) -> int:
    """The block side from the grid and the spread of the labels (see the module's step 1).

    Starts at half the labelled extent (the largest horizontal side of the labels'
    bounding box) and halves while fewer than ``BLOCKS_PER_FOLD * n_folds`` blocks hold
    labels, down to ``MIN_BLOCK_SIDE``.
    """
    where = np.nonzero(labelled)
    extent = max(int(where[a].max() - where[a].min()) + 1 for a in axes)
    side = max(MIN_BLOCK_SIDE, extent // 2)
    smallest = min(side, max(MIN_BLOCK_SIDE, 2 * patch_size(labelled, axes)))
    wanted = BLOCKS_PER_FOLD * n_folds
    while side > smallest:
        if int(block_index(labelled, axes, side).max()) + 1 >= wanted:
            break
        side = max(smallest, side // 2)
    return side


def patch_size(labelled: np.ndarray, axes: tuple[int, ...]) -> int:
    """Median horizontal extent (cells, largest axis) of the patches of touching labels."""
    seen = labelled.any(axis=tuple(a for a in range(labelled.ndim) if a not in axes))
    patches, n = ndimage.label(seen, structure=np.ones((3,) * seen.ndim, dtype=bool))
    sizes = [max(s.stop - s.start for s in box) for box in ndimage.find_objects(patches)]
    return int(np.median(sizes)) if n else 1


def assign_blocks(counts: np.ndarray, n_folds: int, seed: int) -> np.ndarray:
    """Fold of each block from its labelled cells per class, ``counts`` (blocks, classes).

    Greedy balancing: blocks in order of their largest share of one class's cells (largest
    first; ties in a seeded random order); each goes to the fold whose resulting shares of
    every class stay closest to 1 / n_folds (least sum of squared shares), fewest cells
    first on ties. Every fold gets at least one block.
    """
    n_blocks = counts.shape[0]
    if n_blocks < n_folds:
        raise FhnError(f"{n_blocks} blocks cannot fill {n_folds} folds")
    rng = np.random.default_rng(seed)
    totals = np.maximum(counts.sum(axis=0), 1).astype(np.float64)
    shares = counts / totals
    shuffled = rng.permutation(n_blocks)
    order = shuffled[np.argsort(-shares[shuffled].max(axis=1), kind="stable")]
    fold_shares = np.zeros((n_folds, counts.shape[1]))
    fold_cells = np.zeros(n_folds)
    fold_of = np.full(n_blocks, -1, dtype=np.int64)
    for rank, b in enumerate(order):
        empty = np.flatnonzero(fold_cells == 0)
        if len(order) - rank <= empty.size:  # as many blocks left as empty folds: fill them
            f = int(empty[0])
        else:
            cost = ((fold_shares + shares[b]) ** 2).sum(axis=1) - (fold_shares**2).sum(axis=1)
            f = int(np.lexsort((fold_cells, cost))[0])
        fold_of[b] = f
        fold_shares[f] += shares[b]
        fold_cells[f] += counts[b].sum()
    return fold_of


def spatial_folds(
    labels: np.ndarray,
    n_folds: int = 5,
    *,
    vertical_axis: int | None = None,
    seed: int = 0,
    side: int | None = None,
    buffer: int = DEFAULT_BUFFER,
) -> SpatialFolds:
    """Blocked folds of the labelled cells of ``labels`` (class ids, -1 unlabelled).

    ``n_folds`` is lowered to the number of non-empty blocks when there are fewer (at least
    2 are needed); ``side`` overrides :func:`block_side`.
    """
    labels = np.asarray(labels)
    labelled = labels >= 0
    if n_folds < 2:
        raise FhnError(f"cross-validation needs at least 2 folds, got {n_folds}")
    axes = horizontal_axes(labels.ndim, vertical_axis)
    if not labelled.any():
        raise FhnError("there are no labelled cells to cross-validate; label some first")
    side = int(side) if side is not None else block_side(labelled, axes, n_folds)
    if side < 1:
        raise FhnError(f"block side {side} must be at least 1 cell")
    block = block_index(labelled, axes, side)
    n_blocks = int(block.max()) + 1
    if n_blocks < 2:
        raise FhnError(
            f"the labels fit in one {side}-cell block, so no region can be held out to "
            "cross-validate; label at least two places apart"
        )
    n_folds = min(n_folds, n_blocks)
    n_classes = int(labels.max()) + 1
    counts = np.zeros((n_blocks, n_classes), dtype=np.int64)
    np.add.at(counts, (block[labelled], labels[labelled]), 1)
    fold_of = assign_blocks(counts, n_folds, seed)
    fold = np.where(labelled, fold_of[np.maximum(block, 0)], -1)
    return SpatialFolds(fold, block, fold_of, side, axes, int(buffer), int(seed))


@dataclass(frozen=True)
class FoldScores:
    """One model's scores over the folds: kappa, mean IoU and per-class IoU, mean ± sd.

    ``sd`` is the sample standard deviation over folds (ddof 1); a class absent from a fold
    (neither in its validation cells nor predicted there) does not count in that class's mean.
    """

    folds: tuple[Metrics, ...]

    @property
    def kappas(self) -> np.ndarray:
        return np.array([m.kappa for m in self.folds])

    @property
    def kappa(self) -> float:
        return float(self.kappas.mean())

    @property
    def kappa_sd(self) -> float:
        return _sd(self.kappas)

    @property
    def mean_iou(self) -> float:
        return float(np.mean([m.mean_iou for m in self.folds]))

    @property
    def mean_iou_sd(self) -> float:
        return _sd(np.array([m.mean_iou for m in self.folds]))

    @property
    def class_iou(self) -> tuple[np.ndarray, np.ndarray]:
        """(mean, sd) of each class's IoU over the folds where it is present (NaN: none)."""
        table = np.array([m.iou for m in self.folds], dtype=np.float64)
        means, sds = [], []
        for column in table.T:
            present = column[np.isfinite(column)]
            means.append(float(present.mean()) if present.size else np.nan)
            sds.append(_sd(present) if present.size else np.nan)
        return np.array(means), np.array(sds)

    def line(self, what: str = "kappa") -> str:
        if what == "kappa":
            return f"kappa {self.kappa:.2f} ± {self.kappa_sd:.2f}"
        return f"mean IoU {self.mean_iou:.2f} ± {self.mean_iou_sd:.2f}"

    def as_dict(self, class_names: list[str] | None = None) -> dict[str, object]:
        iou, iou_sd = self.class_iou
        names = class_names or [f"class {i}" for i in range(iou.size)]
        return {
            "kappa": self.kappa, "kappa_sd": self.kappa_sd,
            "mean_iou": self.mean_iou, "mean_iou_sd": self.mean_iou_sd,
            "class_iou": {n: _finite(v) for n, v in zip(names, iou, strict=False)},
            "class_iou_sd": {n: _finite(v) for n, v in zip(names, iou_sd, strict=False)},
            "fold_kappa": [float(k) for k in self.kappas],
            "fold_mean_iou": [float(m.mean_iou) for m in self.folds],
            "n_folds": len(self.folds),
        }


def _sd(values: np.ndarray) -> float:
    return float(values.std(ddof=1)) if values.size > 1 else 0.0


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None
