"""Regions of a label grid written as conditions on its cell indices: ``"x >= 400"``.

What ``fhn evaluate --region`` and ``fhn sample-points --region`` take, so that a
benchmark can train on one part of a scene and score another. A region is one or more
conditions joined by ``and``; each compares an axis with a whole number of cells::

    x >= 400                 # maps: x = column index, y = row index (0 = top row)
    x < 200 and y < 100
    iline >= 64              # volumes: iline, xline, sample indices (0-based)

Indices, not map or header coordinates: the same expression selects the same cells in a
prediction file, a mask image and a .npy array of one grid.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable

import numpy as np

from io_adapters.errors import DataError

AXES = {
    2: {"y": 0, "row": 0, "x": 1, "col": 1, "column": 1},
    3: {"iline": 0, "xline": 1, "sample": 2, "samples": 2},
}
_OPERATORS: dict[str, Callable[[np.ndarray, int], np.ndarray]] = {
    "<=": operator.le, ">=": operator.ge, "==": operator.eq, "!=": operator.ne,
    "<": operator.lt, ">": operator.gt,
}
_CONDITION = re.compile(r"^\s*([A-Za-z]+)\s*(<=|>=|==|!=|<|>)\s*(-?\d+)\s*$")


def region_mask(expression: str, shape: tuple[int, ...]) -> np.ndarray:
    """Boolean mask of the cells of a grid of ``shape`` that satisfy ``expression``.

    Raises :class:`DataError` naming the part it cannot read, the axes it knows for this
    grid and an example.
    """
    axes = AXES.get(len(shape))
    if axes is None:
        raise DataError(f"--region works on 2D maps and 3D volumes; this grid is {shape}")
    example = "x >= 400" if len(shape) == 2 else "iline >= 64"
    mask = np.ones(shape, dtype=bool)
    parts = re.split(r"\band\b", expression.strip())
    for part in parts:
        match = _CONDITION.match(part)
        if not match:
            raise DataError(
                f"--region {expression!r}: cannot read {part.strip()!r}; write conditions "
                f"like {example!r}, joined by 'and' (axes: {', '.join(axes)})")
        name, op, value = match.group(1).lower(), match.group(2), int(match.group(3))
        if name not in axes:
            raise DataError(f"--region {expression!r}: no axis {name!r} on a "
                            f"{len(shape)}D grid; use {', '.join(axes)}")
        axis = axes[name]
        index = np.arange(shape[axis]).reshape([-1 if a == axis else 1
                                                for a in range(len(shape))])
        mask &= _OPERATORS[op](index, value)
    if not mask.any():
        raise DataError(f"--region {expression!r} holds no cell of the {shape} grid; check "
                        "the numbers (cell indices from 0)")
    return mask
