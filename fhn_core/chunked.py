"""Reading a chunked array window by window: volumes that never sit in memory whole.

fhn_core knows no file format. Data too large for memory reach it as a *chunked
array-like*: any object with ``shape``, ``dtype``, ``chunks`` (a Dask or Zarr array, an
h5py dataset) whose slicing reads only the cells asked for; ``numpy.asarray`` of a slice
gives the values. Training on such data (:mod:`fhn_core.task`) reads the windows it
draws, and the statistics and checks that need every cell go through the array in
blocks of whole chunks (:func:`blocks`), one block in memory at a time.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

# cells of one block read at a time, per channel (64 MiB of float32 with one channel)
BLOCK_CELLS = 2**24


def is_chunked(data: Any) -> bool:
    """True for a chunked array-like (read window by window), False for in-memory arrays."""
    return not isinstance(data, np.ndarray) and getattr(data, "chunks", None) is not None


def read(data: Any, index: tuple[slice, ...]) -> np.ndarray:
    """The values of ``data[index]`` as float32 numpy."""
    return np.asarray(data[index], dtype=np.float32)


def chunk_shape(data: Any) -> tuple[int, ...]:
    """Cells per chunk along each axis (the largest chunk where chunks differ, as Dask's)."""
    return tuple(int(max(c)) if isinstance(c, tuple) else int(c) for c in data.chunks)


def blocks(shape: Sequence[int], chunks: Sequence[int],
           cells: int = BLOCK_CELLS) -> Iterator[tuple[slice, ...]]:
    """Windows covering ``shape`` in C order, each a box of whole chunks of about ``cells``.

    A block grows from one chunk along the last axes first (the contiguous ones) while it
    stays within ``cells``, so reading it touches few, whole chunks.
    """
    block = [min(int(c), int(n)) for c, n in zip(chunks, shape, strict=True)]
    for axis in reversed(range(len(block))):
        most = cells // (math.prod(block) // block[axis])
        if most >= int(shape[axis]):
            block[axis] = int(shape[axis])
        else:
            block[axis] = max(block[axis], most // block[axis] * block[axis])
    starts = [range(0, int(n), b) for n, b in zip(shape, block, strict=True)]
    for corner in itertools.product(*starts):
        yield tuple(slice(c, min(c + b, int(n)))
                    for c, b, n in zip(corner, block, shape, strict=True))


def finite_moments(data: Any) -> list[tuple[int, float, float]]:
    """Per channel of (C, *S) data: (count, mean, sum of squared deviations) of its finite
    values, one block at a time.

    Blocks are merged with Chan, Golub & LeVeque's pairwise update, which keeps the
    precision of a two-pass mean and variance: mean += d n_b / n, M2 += M2_b + d^2 n_a n_b / n
    with d the difference of the block's mean and the running mean.
    """
    channels = int(data.shape[0])
    chunks = (channels, *chunk_shape(data)[1:])
    moments = [(0, 0.0, 0.0)] * channels
    for window in blocks(data.shape[1:], chunks[1:], BLOCK_CELLS // max(channels, 1)):
        values = read(data, (slice(None), *window))
        for c in range(channels):
            finite = values[c][np.isfinite(values[c])].astype(np.float64)
            if finite.size:
                mean = float(finite.mean())
                block = (finite.size, mean, float(((finite - mean) ** 2).sum()))
                moments[c] = _merged(moments[c], block)
    return moments


def _merged(a: tuple[int, float, float], b: tuple[int, float, float]) -> tuple[int, float, float]:
    n = a[0] + b[0]
    delta = b[1] - a[1]
    return n, a[1] + delta * b[0] / n, a[2] + b[2] + delta * delta * a[0] * b[0] / n


def finite_at(data: Any, cells: np.ndarray, group: int = 64) -> np.ndarray:
    """(n,) whether every channel of (C, *S) data is finite at each of the (n, d) cells.

    Cells are grouped by the ``group``-cell box they fall in and each group's bounding
    box is read once: labels along a few wells cost a few small reads.
    """
    ok = np.ones(len(cells), dtype=bool)
    if not len(cells):
        return ok
    _, which = np.unique(cells // group, axis=0, return_inverse=True)
    which = which.reshape(-1)
    order = np.argsort(which, kind="stable")
    bounds = np.flatnonzero(np.diff(which[order])) + 1
    for members in np.split(order, bounds):
        here = cells[members]
        low, high = here.min(axis=0), here.max(axis=0) + 1
        box = read(data, (slice(None), *(slice(int(a), int(b)) for a, b in zip(low, high,
                                                                               strict=True))))
        local = tuple((here - low).T)
        ok[members] = np.isfinite(box[(slice(None), *local)]).all(axis=0)
    return ok
