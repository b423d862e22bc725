"""Where painted labels land: display pixels -> grid cells, brushes, slices, undo.

Pure numpy. The app draws on a scaled image of a 2D grid (a map, or an inline /
crossline / time slice of a 3D volume); this module maps what was drawn onto exact grid
cells and writes class ids into the label array (-1 = unlabelled) and a provenance code
into a parallel ``source`` array (codes as in :class:`io_adapters.labels.Provenance`:
0 none, 1 painted stroke, 2 transect, 3 point, 4 borehole interval, 5 imported).

Conventions: cells are (row, col) integer pairs, i.e. (axis 0, axis 1) of the 2D array;
display points are (x, y) with x to the right and y down, origin at the top-left corner
of the displayed image. Painting functions modify the arrays in place and return the
number of cells whose label or provenance changed; pass an :class:`UndoStack` to make
the edit undoable. A slice from :func:`slice_view` is a numpy *view*, so painting on it
writes straight into the 3D volume.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np

from .errors import DataError

__all__ = [
    "check_radius",
    "display_to_grid",
    "grid_to_display",
    "line_cells",
    "disk_offsets",
    "brush_index",
    "paint_cells",
    "paint_disk",
    "paint_polyline",
    "paint_points",
    "erase",
    "slice_view",
    "write_slice",
    "slice_to_volume_index",
    "UndoStack",
]

STROKE, TRANSECT, POINT = 1, 2, 3  # provenance codes used as defaults here

_AXIS_ALIASES = {
    0: ("iline", "inline", "il"),
    1: ("xline", "crossline", "xl"),
    2: ("samples", "sample", "time", "depth", "z", "twt"),
}


# --------------------------------------------------------------------------- display
def display_to_grid(
    points_xy_display: np.ndarray | Sequence[Sequence[float]],
    display_size: tuple[int, int],
    grid_shape: tuple[int, int],
    *,
    pixel_index: bool = True,
) -> np.ndarray:
    """Map display points (x, y) to integer grid cells (row, col), clipped to the grid.

    ``display_size`` is (width, height) of the displayed image, ``grid_shape`` (rows, cols)
    of the grid it shows. With ``pixel_index`` (default) the points are display pixel
    indices and stand for the pixel centres (index + 0.5); with ``pixel_index=False`` they
    are continuous positions (as a canvas reports for a stroke). Either way the result is
    the cell whose display footprint contains the point, whatever the scale factor (a
    point exactly on a footprint boundary goes to the cell farther from the middle, so
    corner pixels map to corner cells). Returns an int64 array of shape (..., 2).
    """
    pts = np.asarray(points_xy_display, dtype=np.float64)
    if pts.shape[-1:] != (2,):
        raise ValueError(f"display points must have shape (..., 2) as (x, y); got {pts.shape}")
    width, height = display_size
    rows, cols = grid_shape
    if min(width, height, rows, cols) <= 0:
        raise ValueError(f"display size {display_size} and grid shape {grid_shape} must be > 0")
    shift = 0.5 if pixel_index else 0.0
    col = _cell_along((pts[..., 0] + shift) * cols / width, cols)
    row = _cell_along((pts[..., 1] + shift) * rows / height, rows)
    return np.stack([row, col], axis=-1)


def _cell_along(u: np.ndarray, n: int) -> np.ndarray:
    """Cell index of continuous cell coordinate ``u`` (cell k spans [k, k+1)), clipped.

    A point exactly on a cell boundary (every pixel centre when the display is shrunk
    by 2) goes to the cell farther from the grid's middle, so the result is mirror
    symmetric and the corner pixels map to the corner cells.
    """
    cell = np.floor(u)
    on_boundary = (cell == u) & (u < n / 2)
    cell = np.where(on_boundary, cell - 1, cell)
    return np.clip(cell, 0, n - 1).astype(np.int64)


def grid_to_display(
    cells: np.ndarray | Sequence[Sequence[int]],
    display_size: tuple[int, int],
    grid_shape: tuple[int, int],
) -> np.ndarray:
    """Continuous display position (x, y) of the centre of each grid cell (row, col).

    The inverse of :func:`display_to_grid` with ``pixel_index=False``; use it to draw
    wells, points and cursors on the scaled image. Returns float64 of shape (..., 2).
    """
    c = np.asarray(cells, dtype=np.float64)
    width, height = display_size
    rows, cols = grid_shape
    x = (c[..., 1] + 0.5) * width / cols
    y = (c[..., 0] + 0.5) * height / rows
    return np.stack([x, y], axis=-1)


# --------------------------------------------------------------------------- shapes
def line_cells(points: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
    """Every cell on the polyline through ``points`` (n, d), as int64 (m, d), no gaps.

    Successive vertices are joined by sampling at most half a cell apart and rounding,
    so the cells form an 8-connected (26-connected in 3D) path; duplicates are removed
    while keeping the order along the line. A single point gives itself.
    """
    pts = np.atleast_2d(np.asarray(points, dtype=np.float64))
    if pts.size == 0:
        return np.zeros((0, pts.shape[-1] if pts.ndim == 2 else 2), dtype=np.int64)
    pieces = [pts[:1]]
    for start, stop in zip(pts[:-1], pts[1:], strict=True):
        steps = max(1, int(np.ceil(np.max(np.abs(stop - start)) * 2)))
        t = np.linspace(0.0, 1.0, steps + 1)[1:, None]
        pieces.append(start + t * (stop - start))
    # round half away from zero would bias; floor(x + 0.5) is consistent along the line
    cells = np.floor(np.concatenate(pieces) + 0.5).astype(np.int64)
    keep = np.ones(len(cells), dtype=bool)
    keep[1:] = np.any(cells[1:] != cells[:-1], axis=1)
    cells = cells[keep]
    _, first = np.unique(cells, axis=0, return_index=True)
    return cells[np.sort(first)]


def disk_offsets(radius: float, ndim: int = 2) -> np.ndarray:
    """Integer offsets (k, ndim) within Euclidean distance ``radius`` (0 gives the centre)."""
    r = int(np.floor(max(radius, 0.0)))
    axes = np.meshgrid(*[np.arange(-r, r + 1)] * ndim, indexing="ij")
    offsets = np.stack([a.ravel() for a in axes], axis=1)
    return offsets[np.sum(offsets.astype(np.float64) ** 2, axis=1) <= radius**2 + 1e-9]


def check_radius(radius: float, shape: Sequence[int], what: str = "brush radius") -> float:
    """``radius`` as a float, or :class:`DataError` when it is not a usable brush radius.

    NaN, inf and negative values are errors (a negative radius is not silently 0); so is a
    radius larger than the grid, which would cover all of it and ask for an offset table
    of (2r + 1)^ndim cells (1e6 in 2D: terabytes). ``what`` names the value in the message.
    """
    try:
        value = float(radius)
    except (TypeError, ValueError):
        raise DataError(f"{what} {radius!r} is not a number; give a radius in cells, e.g. 1.5"
                        ) from None
    if not np.isfinite(value) or value < 0:
        raise DataError(f"{what} {radius!r} is not a radius; give a finite number of cells "
                        ">= 0, e.g. 1.5")
    largest = max(shape, default=0)
    if value > largest:
        raise DataError(f"{what} {value:g} is larger than the grid ({' x '.join(map(str, shape))}"
                        f" cells); use at most {largest}")
    return value


def brush_index(
    cells: np.ndarray | Sequence[Sequence[int]], radius: float, shape: tuple[int, ...]
) -> tuple[np.ndarray, ...]:
    """Index tuple of the unique cells within ``radius`` of any of ``cells``, inside ``shape``.

    Raises :class:`DataError` for a radius :func:`check_radius` refuses."""
    radius = check_radius(radius, shape)
    c = np.asarray(cells, dtype=np.int64).reshape(-1, len(shape))
    if len(c) == 0:
        return tuple(np.zeros(0, dtype=np.int64) for _ in shape)
    offsets = disk_offsets(radius, len(shape))
    allc = (c[:, None, :] + offsets[None, :, :]).reshape(-1, len(shape))
    inside = np.all((allc >= 0) & (allc < np.asarray(shape)), axis=1)
    flat = np.unique(np.ravel_multi_index(tuple(allc[inside].T), shape))
    return np.unravel_index(flat, shape)


# --------------------------------------------------------------------------- painting
def paint_cells(
    labels: np.ndarray,
    index: tuple[np.ndarray, ...],
    class_id: int,
    *,
    source: np.ndarray | None = None,
    provenance: int = STROKE,
    undo: UndoStack | None = None,
) -> int:
    """Set ``labels[index] = class_id`` (and ``source[index] = provenance``) in place.

    ``class_id`` -1 erases (provenance forced to 0). Returns the number of cells whose
    label or provenance changed; records the previous values in ``undo`` when given and
    something changed.
    """
    if class_id < -1:
        raise ValueError(f"class id {class_id} is invalid; use -1 to erase or a class index")
    code = 0 if class_id == -1 else int(provenance)
    changed = labels[index] != class_id
    if source is not None:
        if source.shape != labels.shape:
            raise ValueError(f"source shape {source.shape} != labels shape {labels.shape}")
        changed |= source[index] != code
    n = int(np.count_nonzero(changed))
    if n == 0:
        return 0
    if undo is not None:
        undo.record([labels] if source is None else [labels, source], index)
    labels[index] = class_id
    if source is not None:
        source[index] = code
    return n


def paint_disk(
    labels: np.ndarray,
    centre: Sequence[int],
    radius: float,
    class_id: int,
    *,
    source: np.ndarray | None = None,
    provenance: int = STROKE,
    undo: UndoStack | None = None,
) -> int:
    """Paint every cell within ``radius`` cells of ``centre`` (clipped at the edges)."""
    index = brush_index([centre], radius, labels.shape)
    return paint_cells(labels, index, class_id, source=source, provenance=provenance, undo=undo)


def paint_polyline(
    labels: np.ndarray,
    cells_polyline: np.ndarray | Sequence[Sequence[float]],
    class_id: int,
    radius: float = 0.0,
    *,
    source: np.ndarray | None = None,
    provenance: int = STROKE,
    undo: UndoStack | None = None,
) -> int:
    """Paint a continuous line through the vertices (grid cells) with a brush ``radius``.

    Works for 2D arrays (strokes on a map or slice) and n-D arrays (a 3D transect).
    """
    index = brush_index(line_cells(cells_polyline), radius, labels.shape)
    return paint_cells(labels, index, class_id, source=source, provenance=provenance, undo=undo)


def paint_points(
    labels: np.ndarray,
    cells: np.ndarray | Sequence[Sequence[int]],
    class_id: int,
    radius: float = 0.0,
    *,
    source: np.ndarray | None = None,
    provenance: int = POINT,
    undo: UndoStack | None = None,
) -> int:
    """Paint separate cells (each with a brush ``radius``); no line between them."""
    index = brush_index(cells, radius, labels.shape)
    return paint_cells(labels, index, class_id, source=source, provenance=provenance, undo=undo)


def erase(
    labels: np.ndarray,
    cells_polyline: np.ndarray | Sequence[Sequence[float]],
    radius: float = 0.0,
    *,
    source: np.ndarray | None = None,
    undo: UndoStack | None = None,
) -> int:
    """Unlabel (-1, provenance 0) the cells along a polyline with a brush ``radius``."""
    return paint_polyline(labels, cells_polyline, -1, radius, source=source, undo=undo)


# --------------------------------------------------------------------------- slices
def _axis_number(axis: str | int, dims: Sequence[str] | None) -> int:
    if isinstance(axis, int | np.integer):
        if not 0 <= int(axis) < 3:
            raise ValueError(f"slice axis {axis} must be 0, 1 or 2")
        return int(axis)
    name = str(axis).lower()
    if dims is not None and name in [d.lower() for d in dims]:
        return [d.lower() for d in dims].index(name)
    for number, aliases in _AXIS_ALIASES.items():
        if name in aliases:
            return number
    raise ValueError(
        f"slice axis '{axis}' unknown; use 0/1/2 or one of {list(dims or ())} "
        "or inline/crossline/time"
    )


def slice_view(
    array3d: np.ndarray, axis: str | int, index: int, *, dims: Sequence[str] | None = None
) -> np.ndarray:
    """A writable 2D *view* of ``array3d`` at ``index`` along ``axis``.

    ``axis`` is 0/1/2, a name from ``dims``, or inline/crossline/time (axes 0/1/2 of a
    seismic (iline, xline, samples) volume). The remaining axes keep their order, so the
    slice's (row, col) are (xline, samples) for an inline, (iline, samples) for a
    crossline and (iline, xline) for a time slice. Painting on it writes into ``array3d``.
    """
    ax = _axis_number(axis, dims)
    if array3d.ndim != 3:
        raise ValueError(f"slice_view needs a 3D array; got shape {array3d.shape}")
    if not 0 <= index < array3d.shape[ax]:
        raise IndexError(f"slice index {index} outside 0..{array3d.shape[ax] - 1} on axis {ax}")
    key: list[int | slice] = [slice(None)] * 3
    key[ax] = int(index)
    return array3d[tuple(key)]


def write_slice(
    array3d: np.ndarray,
    axis: str | int,
    index: int,
    values: np.ndarray,
    *,
    dims: Sequence[str] | None = None,
) -> int:
    """Copy a 2D ``values`` array into the slice; returns the number of cells changed."""
    view = slice_view(array3d, axis, index, dims=dims)
    if values.shape != view.shape:
        raise ValueError(f"slice values of shape {values.shape}; the slice is {view.shape}")
    n = int(np.count_nonzero(view != values))
    view[...] = values
    return n


def slice_to_volume_index(
    shape3d: tuple[int, int, int],
    axis: str | int,
    index: int,
    cells2d: np.ndarray | Sequence[Sequence[int]],
    *,
    dims: Sequence[str] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The 3D indices of 2D slice cells (row, col) of the slice at ``index`` along ``axis``."""
    ax = _axis_number(axis, dims)
    c = np.asarray(cells2d, dtype=np.int64).reshape(-1, 2)
    others = [a for a in range(3) if a != ax]
    out: list[np.ndarray] = [np.empty(0)] * 3
    out[ax] = np.full(len(c), int(index), dtype=np.int64)
    out[others[0]], out[others[1]] = c[:, 0], c[:, 1]
    if len(c) and not all(
        (o.min() >= 0 and o.max() < n) for o, n in zip(out, shape3d, strict=True)
    ):
        raise IndexError(f"slice cells fall outside the volume of shape {shape3d}")
    return out[0], out[1], out[2]


# --------------------------------------------------------------------------- undo
_Record = tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...], list[np.ndarray]]


class UndoStack:
    """Undo for in-place edits: each edit keeps the previous values of the cells it changed.

    ``record(arrays, index)`` (called by the painting functions before they write) saves
    ``array[index]`` for each array; :meth:`undo` writes them back, restoring the last
    edit exactly. Inside ``with stack.grouped():`` all records form one edit (one brush
    stroke made of several calls). At most ``limit`` edits are kept; the oldest go first.
    The stack holds references to the arrays: clear it when the label arrays are replaced.
    """

    def __init__(self, limit: int = 100) -> None:
        self.limit = int(limit)
        self._edits: list[list[_Record]] = []
        self._group: list[_Record] | None = None

    def __len__(self) -> int:
        return len(self._edits)

    def record(self, arrays: Sequence[np.ndarray], index: tuple[np.ndarray, ...]) -> None:
        """Save the current values of ``arrays`` at ``index`` as (part of) one edit."""
        entry = (tuple(arrays), index, [a[index].copy() for a in arrays])
        if self._group is not None:
            self._group.append(entry)
        else:
            self._push([entry])

    def _push(self, entries: list[_Record]) -> None:
        if not entries:
            return
        self._edits.append(entries)
        del self._edits[: max(0, len(self._edits) - self.limit)]

    @contextmanager
    def grouped(self) -> Iterator[UndoStack]:
        """Make every record inside the block one edit (undone together)."""
        if self._group is not None:  # nested: the outer group collects everything
            yield self
            return
        self._group = []
        try:
            yield self
        finally:
            entries, self._group = self._group, None
            self._push(entries)

    def undo(self) -> int:
        """Restore the last edit; returns the cells restored, counted per record (0: nothing)."""
        if not self._edits:
            return 0
        entries = self._edits.pop()
        # reverse order: a cell touched twice in one group gets its oldest value back
        for arrays, index, olds in reversed(entries):
            for array, old in zip(arrays, olds, strict=True):
                array[index] = old
        return sum(len(index[0]) for _, index, _ in entries)

    def clear(self) -> None:
        """Forget every edit."""
        self._edits.clear()
