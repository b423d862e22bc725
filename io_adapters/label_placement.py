"""Where a label from a file lands on the data grid.

Every label import (points, boreholes) names positions in one of three ways — map
coordinates ``x, y`` in the data's CRS, seismic header numbers ``iline, xline``, or grid
indices ``row, col`` — plus, on a 3D volume, a vertical value in the samples' unit; and
classes by name or 1-based number. This module turns those into grid cells and class ids,
and words the error when a position falls outside the grid. The grid is an
``xarray.DataArray`` with named spatial dims (seismic ``iline, xline, samples``; maps
``y, x``).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from .errors import DataError
from .gridmatch import spatial_dims, spatial_shape
from .labels import LabelSet


def is_seismic(grid: xr.DataArray) -> bool:
    return "iline" in grid.dims and "xline" in grid.dims


def horizontal_dims(grid: xr.DataArray) -> tuple[str, str]:
    dims = spatial_dims(grid)
    if is_seismic(grid):
        return ("iline", "xline")
    if len(dims) != 2:
        raise DataError(f"cannot place labels on a grid with spatial dims {dims}")
    return dims[0], dims[1]


def vertical_dim(grid: xr.DataArray) -> str | None:
    extra = [d for d in spatial_dims(grid) if d not in horizontal_dims(grid)]
    return extra[0] if extra else None


def empty_labels_on(grid: xr.DataArray, classes: Sequence[str]) -> LabelSet:
    return LabelSet.empty(spatial_shape(grid), classes, spatial_dims(grid))


def to_grid_order(grid: xr.DataArray, cells: np.ndarray) -> np.ndarray:
    """Reorder cell columns from (horizontal 0, horizontal 1[, vertical]) to the grid's dims."""
    ours = [*horizontal_dims(grid), *([vertical_dim(grid)] if vertical_dim(grid) else [])]
    return cells[:, [ours.index(d) for d in spatial_dims(grid)]]


def map_to_cells(
    grid: xr.DataArray, x: np.ndarray | Sequence[float], y: np.ndarray | Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    """Map coordinates (in the data's CRS) -> nearest horizontal grid cell.

    Rasters use attrs ``transform`` (the cell containing the point); seismic uses the
    nearest trace by ``cdp_x``/``cdp_y`` (inside when within one trace spacing). Returns
    (cells (n, 2) int64 as (row, col) = (iline index, xline index) for seismic, inside
    (n,) bool); cells outside are -1. DataError when the grid has no georeferencing.
    """
    xs = np.asarray(x, dtype=np.float64).ravel()
    ys = np.asarray(y, dtype=np.float64).ravel()
    if is_seismic(grid):
        return _nearest_trace(grid, xs, ys)
    rows_n, cols_n = (grid.sizes[d] for d in horizontal_dims(grid))
    transform = grid.attrs.get("transform")
    if transform is None:
        raise DataError(
            "the data has no map transform, so x/y coordinates cannot be placed; "
            "give row/col columns (grid indices) instead"
        )
    a, b, c, d, e, f = (float(v) for v in tuple(transform)[:6])
    det = a * e - b * d
    if det == 0:
        raise DataError(f"the data's transform {tuple(transform)} is singular; check the file")
    col_f = (e * (xs - c) - b * (ys - f)) / det
    row_f = (-d * (xs - c) + a * (ys - f)) / det
    cells = np.stack([np.floor(row_f), np.floor(col_f)], axis=1).astype(np.int64)
    inside = (cells[:, 0] >= 0) & (cells[:, 0] < rows_n) & (cells[:, 1] >= 0)
    inside &= cells[:, 1] < cols_n
    cells[~inside] = -1
    return cells, inside


def _nearest_trace(grid: xr.DataArray, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, ...]:
    if "cdp_x" not in grid.coords or "cdp_y" not in grid.coords:
        raise DataError(
            "the seismic has no CDP_X/CDP_Y trace coordinates, so map x/y cannot be placed; "
            "give iline/xline columns instead"
        )
    from scipy.spatial import cKDTree

    cx = np.asarray(grid.coords["cdp_x"].transpose("iline", "xline").values, dtype=np.float64)
    cy = np.asarray(grid.coords["cdp_y"].transpose("iline", "xline").values, dtype=np.float64)
    ok = np.isfinite(cx) & np.isfinite(cy)
    il_idx, xl_idx = np.nonzero(ok)
    pts = np.stack([cx[ok], cy[ok]], axis=1)
    tree = cKDTree(pts)
    if len(pts) > 1:
        spacing = float(np.median(tree.query(pts, k=2)[0][:, 1]))
    else:
        spacing = np.inf
    dist, nearest = tree.query(np.stack([xs, ys], axis=1))
    inside = dist <= spacing * (1 + 1e-9)
    cells = np.stack([il_idx[nearest], xl_idx[nearest]], axis=1).astype(np.int64)
    cells[~inside] = -1
    return cells, inside


def _lookup(values: np.ndarray, axis_coords: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of each value in a coordinate axis (exact match), and whether it was found."""
    order = np.argsort(axis_coords)
    pos = np.searchsorted(axis_coords[order], values)
    pos = np.clip(pos, 0, len(order) - 1)
    found = axis_coords[order][pos] == values
    return np.where(found, order[pos], -1), found


def vertical_index(grid: xr.DataArray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest sample index of vertical values in the samples coord's unit."""
    vdim = vertical_dim(grid)
    assert vdim is not None
    if vdim in grid.coords:
        axis = np.asarray(grid.coords[vdim].values, dtype=np.float64)
    else:
        axis = np.arange(grid.sizes[vdim], dtype=np.float64)
    step = float(np.median(np.abs(np.diff(axis)))) if len(axis) > 1 else 1.0
    order = np.argsort(axis)
    ordered = axis[order]
    # nearest neighbour by bisection: compare the two candidates around each value
    right = np.clip(np.searchsorted(ordered, z), 0, len(ordered) - 1)
    left = np.clip(right - 1, 0, len(ordered) - 1)
    pick = np.where(np.abs(ordered[left] - z) <= np.abs(ordered[right] - z), left, right)
    idx = order[pick]
    inside = np.abs(axis[idx] - z) <= step / 2 + 1e-9
    return np.where(inside, idx, -1), inside


# --------------------------------------------------------------------------- classes in files
class ClassMapper:
    """Turns class values from a file (names or 1-based integers) into class ids."""

    def __init__(
        self, values: Sequence[str], class_names: Sequence[str] | None, path: Path | str
    ):
        self.path = path
        vals = [v.strip() for v in values]
        if class_names is not None:
            self.names = [str(n) for n in class_names]
        elif vals and all(_is_int(v) for v in vals):
            top = max(int(float(v)) for v in vals)
            self.names = [f"class {k}" for k in range(1, top + 1)]
        else:
            self.names = list(dict.fromkeys(v for v in vals if not _is_int(v)))
            ints = [int(float(v)) for v in vals if _is_int(v)]
            if ints:  # mixed names and numbers: numbers refer to 1-based positions
                self.names += [f"class {k}" for k in range(len(self.names) + 1, max(ints) + 1)]

    def __call__(self, value: str, where: str) -> int:
        v = value.strip()
        if v in self.names:
            return self.names.index(v)
        if _is_int(v) and 1 <= int(float(v)) <= len(self.names):
            return int(float(v)) - 1
        raise DataError(
            f"{self.path}, {where}: class {v!r} is not one of {self.names} nor a number "
            f"1..{len(self.names)} (0 means no label in files); fix the value or class_names"
        )


def _is_int(v: str) -> bool:
    try:
        f = float(v)
    except ValueError:
        return False
    return f == int(f)


# --------------------------------------------------------------------------- CSV helpers
VERTICAL_NAMES = ("sample", "samples", "time", "twt", "depth", "z")


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    if not path.is_file():
        raise DataError(f"file {path} not found; check the path")
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = [h.strip().lower() for h in (reader.fieldnames or [])]
            rows = [
                {str(k).strip().lower(): (v or "").strip() for k, v in row.items() if k}
                for row in reader
            ]
    except (UnicodeDecodeError, csv.Error) as err:
        raise DataError(f"cannot read {path} as CSV ({err}); save it as UTF-8 CSV") from err
    return header, rows


def csv_number(row: dict[str, str], col: str, path: Path | str, line: int) -> float:
    try:
        value = float(row[col])
    except (ValueError, KeyError):
        raise DataError(
            f"{path}, line {line}: column '{col}' = {row.get(col)!r} is not a number; fix it"
        ) from None
    if not np.isfinite(value):
        raise DataError(
            f"{path}, line {line}: column '{col}' = {row[col]!r} is not a finite number; fix it"
        )
    return value


def position_columns(header: Sequence[str], grid: xr.DataArray) -> str | None:
    """Which horizontal position columns the file has: 'xy', 'ilxl' or 'rowcol'."""
    cols = set(header)
    if is_seismic(grid) and {"iline", "xline"} <= cols:
        return "ilxl"
    if {"x", "y"} <= cols:
        return "xy"
    if {"row", "col"} <= cols:
        return "rowcol"
    return None


def place_horizontal(
    grid: xr.DataArray, kind: str, a: np.ndarray, b: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Horizontal cells from (x, y), (iline, xline) numbers or (row, col) indices."""
    if kind == "xy":
        return map_to_cells(grid, a, b)
    if kind == "ilxl":
        i, fi = _lookup(a, np.asarray(grid.coords["iline"].values, dtype=np.float64))
        j, fj = _lookup(b, np.asarray(grid.coords["xline"].values, dtype=np.float64))
        inside = fi & fj
    else:
        rows_n, cols_n = (grid.sizes[d] for d in horizontal_dims(grid))
        i, j = np.round(a).astype(np.int64), np.round(b).astype(np.int64)
        inside = (i >= 0) & (i < rows_n) & (j >= 0) & (j < cols_n)
    cells = np.stack([i, j], axis=1).astype(np.int64)
    cells[~inside] = -1
    return cells, inside


def grid_description(grid: xr.DataArray) -> str:
    dims = spatial_dims(grid)
    text = " x ".join(f"{grid.sizes[d]} {d}" for d in dims)
    if is_seismic(grid):
        il, xl = grid.coords["iline"].values, grid.coords["xline"].values
        text += f" (inlines {il.min()}-{il.max()}, crosslines {xl.min()}-{xl.max()}"
        vdim = vertical_dim(grid)
        if vdim in grid.coords:
            z = grid.coords[vdim].values
            text += f", {vdim} {z.min():g}-{z.max():g} {grid.attrs.get('vertical_unit', '')}"
        text += ")"
    elif "transform" in grid.attrs:
        a, _, c, _, e, f = tuple(grid.attrs["transform"])[:6]
        rows_n, cols_n = (grid.sizes[d] for d in horizontal_dims(grid))
        xs, ys = sorted([c, c + a * cols_n]), sorted([f, f + e * rows_n])
        text += f" (x {xs[0]:g}..{xs[1]:g}, y {ys[0]:g}..{ys[1]:g})"
    return text


def raise_if_outside(path: Path, what: str, total: int, bad: list[str], grid: xr.DataArray) -> None:
    if bad:
        raise DataError(
            f"{path}: {len(bad)} of {total} {what} fall outside the data grid "
            f"{grid_description(grid)}, e.g. {bad[0]}; check the coordinate columns and CRS "
            "or remove those rows"
        )
