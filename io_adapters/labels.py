"""Sparse labels on a data grid: the label model, its file, train/validation splits, imports.

Model (DESIGN.md "Data model"): a :class:`LabelSet` holds an int16 array on the data's
spatial grid (seismic ``(iline, xline, samples)``, maps and hyperspectral ``(y, x)``)
with -1 = unlabelled and 0..K-1 = class index used by the network, a class table of
:class:`LabelClass` (name, colour), a uint8 provenance code per cell (:class:`Provenance`)
and an optional uint8 train/validation split (0 train, 1 validation).

In files that users exchange (rasters, SEG-Y label volumes, CSV/GeoJSON integer
classes, the saved .npz) the convention is 0 = no label and 1..K = classes.

Mutation: the :class:`LabelSet` class-table methods (``add_class``, ``rename_class``,
``recolour_class``, ``delete_class``, ``merge``) and the split functions change the
LabelSet *in place* (the app edits one LabelSet and saves it after every edit);
``copy`` and ``with_classes`` return new LabelSets and leave the original alone.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path

import numpy as np
import xarray as xr

from .atomic import atomic_output
from .errors import DataError
from .gridmatch import crs_equal, spatial_dims, spatial_shape, transform_equal
from .label_geometry import brush_index, check_radius, line_cells, paint_cells

__all__ = [
    "Provenance",
    "LabelClass",
    "LabelSet",
    "Borehole",
    "DEFAULT_COLOURS",
    "save_labels",
    "load_labels",
    "split_by_region",
    "map_to_cells",
    "import_label_raster",
    "import_points",
    "import_boreholes",
    "boreholes_from_rows",
    "save_boreholes",
    "load_boreholes",
    "import_mask_pair",
]

PathLike = str | os.PathLike[str]

FILE_FORMAT = "fhn-labels"
FILE_VERSION = 1

# Colour-blind-friendly defaults (Okabe-Ito, then Tableau) for new classes.
DEFAULT_COLOURS = (
    "#e69f00", "#56b4e9", "#009e73", "#f0e442", "#0072b2", "#d55e00", "#cc79a7",
    "#999999", "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
)
_COLOUR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")


class Provenance(IntEnum):
    """Where a labelled cell came from (the ``source`` array's codes)."""

    NONE = 0
    STROKE = 1
    TRANSECT = 2
    POINT = 3
    BOREHOLE = 4
    IMPORTED = 5


def default_colour(class_id: int) -> str:
    """The default colour of class ``class_id`` (cycles through :data:`DEFAULT_COLOURS`)."""
    return DEFAULT_COLOURS[class_id % len(DEFAULT_COLOURS)]


def _check_colour(colour: str) -> str:
    if not isinstance(colour, str) or not _COLOUR_RE.match(colour):
        raise DataError(f"colour {colour!r} is not of the form '#rrggbb'; e.g. '#1f77b4'")
    return colour.lower()


@dataclass
class LabelClass:
    """One class: ``id`` is the 0-based index the network uses, ``colour`` is '#rrggbb'."""

    id: int
    name: str
    colour: str

    def __post_init__(self) -> None:
        self.id = int(self.id)
        self.name = str(self.name).strip()
        if not self.name:
            raise DataError(f"class {self.id} has an empty name; give every class a name")
        self.colour = _check_colour(self.colour)


def _as_classes(classes: Sequence[LabelClass | str]) -> list[LabelClass]:
    """Number a class table 0..K-1; plain names get default colours."""
    out = []
    for i, c in enumerate(classes):
        if isinstance(c, LabelClass):
            out.append(LabelClass(i, c.name, c.colour))
        else:
            out.append(LabelClass(i, str(c), default_colour(i)))
    return out


@dataclass(eq=False)
class LabelSet:
    """Labels on a data grid, with class table, per-cell provenance and optional split.

    ``labels`` int16 (-1 unlabelled, 0..K-1), ``source`` uint8 :class:`Provenance` codes,
    ``split`` uint8 (0 train, 1 validation; None = no
    split yet), ``dims`` the names of the grid's spatial dims (e.g. ``("y", "x")``).
    Arrays are converted to those dtypes and checked on construction.
    """

    labels: np.ndarray
    classes: list[LabelClass]
    source: np.ndarray
    split: np.ndarray | None = None
    dims: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        labels = np.asarray(self.labels)
        if labels.dtype.kind not in "iu":
            raise DataError(f"labels must be an integer array; got dtype {labels.dtype}")
        self.classes = _as_classes(self.classes)
        k = len(self.classes)
        if labels.size and (labels.min() < -1 or labels.max() >= k):
            raise DataError(
                f"labels hold values {int(labels.min())}..{int(labels.max())} but the class "
                f"table has {k} classes (ids 0..{k - 1}, -1 unlabelled); add the missing classes"
            )
        self.labels = labels.astype(np.int16, copy=False)
        self.source = self._checked(self.source, "source", max_value=max(Provenance))
        if self.split is not None:
            self.split = self._checked(self.split, "split", max_value=1)
        self.dims = tuple(str(d) for d in self.dims)
        if self.dims and len(self.dims) != self.labels.ndim:
            raise DataError(f"dims {self.dims} do not match labels of shape {self.labels.shape}")

    def __eq__(self, other: object) -> bool:
        """Exact equality of arrays (values and dtypes), class table, split and dims."""
        if not isinstance(other, LabelSet):
            return NotImplemented

        def same(a: np.ndarray | None, b: np.ndarray | None) -> bool:
            if a is None or b is None:
                return a is None and b is None
            return a.dtype == b.dtype and np.array_equal(a, b)

        return (
            same(self.labels, other.labels)
            and same(self.source, other.source)
            and same(self.split, other.split)
            and self.classes == other.classes
            and self.dims == other.dims
        )

    __hash__ = None  # type: ignore[assignment]  # mutable

    def _checked(self, array: np.ndarray, what: str, max_value: int) -> np.ndarray:
        a = np.asarray(array)
        if a.shape != self.labels.shape:
            raise DataError(f"{what} array of shape {a.shape} != labels shape {self.labels.shape}")
        if a.size and (a.min() < 0 or a.max() > max_value):
            raise DataError(f"{what} values must lie in 0..{max_value}")
        return a.astype(np.uint8, copy=False)

    # ---------------------------------------------------------------- constructors
    @classmethod
    def empty(
        cls,
        shape: Sequence[int],
        classes: Sequence[LabelClass | str] = (),
        dims: Sequence[str] = (),
    ) -> LabelSet:
        """An unlabelled LabelSet of ``shape``; ``classes`` as LabelClass or plain names."""
        shape = tuple(int(n) for n in shape)
        return cls(
            np.full(shape, -1, dtype=np.int16),
            _as_classes(classes),
            np.zeros(shape, dtype=np.uint8),
            None,
            tuple(dims),
        )

    def copy(self) -> LabelSet:
        """A deep copy (arrays and class table)."""
        return LabelSet(
            self.labels.copy(),
            [LabelClass(c.id, c.name, c.colour) for c in self.classes],
            self.source.copy(),
            None if self.split is None else self.split.copy(),
            self.dims,
        )

    def with_classes(self, classes: Sequence[LabelClass | str]) -> LabelSet:
        """A copy with the class table replaced (renumbered 0..K-1; names get default colours).

        Raises :class:`DataError` if labels use an id beyond the new table.
        """
        out = self.copy()
        return LabelSet(out.labels, _as_classes(classes), out.source, out.split, out.dims)

    # ---------------------------------------------------------------- queries
    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of the label grid."""
        return tuple(self.labels.shape)

    @property
    def class_names(self) -> list[str]:
        """Class names in id order."""
        return [c.name for c in self.classes]

    def counts(self) -> dict[int, int]:
        """Number of labelled cells per class id (every class listed, zero included)."""
        valid = self.labels[self.labels >= 0].astype(np.int64)
        counts = np.bincount(valid, minlength=len(self.classes))
        return {c.id: int(counts[c.id]) for c in self.classes}

    def class_id(self, name: str) -> int:
        """The id of the class called ``name``; DataError listing the names otherwise."""
        for c in self.classes:
            if c.name == name:
                return c.id
        raise DataError(f"no class named {name!r}; classes are {self.class_names}")

    # ---------------------------------------------------------------- class table (in place)
    def add_class(self, name: str, colour: str | None = None) -> LabelClass:
        """Append a class (id K) in place and return it; names must be unique."""
        if name.strip() in self.class_names:
            raise DataError(f"a class named {name!r} exists already; choose another name")
        new = LabelClass(len(self.classes), name, colour or default_colour(len(self.classes)))
        self.classes.append(new)
        return new

    def _check_id(self, class_id: int) -> None:
        if not 0 <= class_id < len(self.classes):
            raise DataError(
                f"class id {class_id} does not exist; ids are 0..{len(self.classes) - 1}"
            )

    def rename_class(self, class_id: int, name: str) -> None:
        """Rename class ``class_id`` in place (names stay unique)."""
        self._check_id(class_id)
        if name.strip() in [c.name for c in self.classes if c.id != class_id]:
            raise DataError(f"a class named {name!r} exists already; choose another name")
        self.classes[class_id] = LabelClass(class_id, name, self.classes[class_id].colour)

    def recolour_class(self, class_id: int, colour: str) -> None:
        """Change the colour of class ``class_id`` in place."""
        self._check_id(class_id)
        self.classes[class_id] = LabelClass(class_id, self.classes[class_id].name, colour)

    def delete_class(self, class_id: int) -> int:
        """Delete a class in place: its cells become unlabelled, higher ids move down by one.

        Returns the number of cells that lost their label.
        """
        self._check_id(class_id)
        gone = self.labels == class_id
        n = int(np.count_nonzero(gone))
        self.labels[gone] = -1
        self.source[gone] = Provenance.NONE
        if self.split is not None:
            self.split[gone] = 0
        self.labels[self.labels > class_id] -= 1
        del self.classes[class_id]
        self.classes = _as_classes(self.classes)
        return n

    def merge(self, other: LabelSet, *, overwrite: bool = True) -> int:
        """Copy ``other``'s labelled cells into this set in place, matching classes by name.

        Classes of ``other`` missing here are added (with their colours). With
        ``overwrite=False`` cells labelled here keep their label. Returns cells changed.
        """
        if other.shape != self.shape:
            raise DataError(f"cannot merge labels of shape {other.shape} into {self.shape}")
        mapping = np.full(len(other.classes) + 1, -1, dtype=np.int16)
        for c in other.classes:
            if c.name not in self.class_names:
                self.add_class(c.name, c.colour)
            mapping[c.id] = self.class_id(c.name)
        take = other.labels >= 0
        if not overwrite:
            take &= self.labels < 0
        new = mapping[other.labels[take]]
        changed = int(np.count_nonzero(self.labels[take] != new))
        self.labels[take] = new
        self.source[take] = other.source[take]
        return changed


# --------------------------------------------------------------------------- file
def save_labels(path: PathLike, labelset: LabelSet) -> Path:
    """Write ``labelset`` to one compressed .npz, atomically; returns the path.

    Arrays: ``labels`` (int16, file convention 0 = no label, k+1 = class k), ``source``,
    ``split`` (when set); ``meta``: a 0-d unicode array holding JSON (class table, dims,
    format/version), so loading never needs pickle.
    """
    target = Path(path)
    meta = {
        "format": FILE_FORMAT,
        "version": FILE_VERSION,
        "encoding": "labels: 0 = no label, k+1 = class k",
        "classes": [{"id": c.id, "name": c.name, "colour": c.colour} for c in labelset.classes],
        "dims": list(labelset.dims),
        "shape": list(labelset.shape),
    }
    arrays: dict[str, np.ndarray] = {
        "labels": (labelset.labels.astype(np.int32) + 1).astype(np.int16),
        "source": np.asarray(labelset.source, dtype=np.uint8),
        "meta": np.array(json.dumps(meta)),
    }
    if labelset.split is not None:
        arrays["split"] = labelset.split.astype(np.uint8)
    with atomic_output(target) as tmp, open(tmp, "wb") as fh:
        # a file object, because savez would append ".npz" to the temporary name
        np.savez_compressed(fh, **arrays)
    return target


def load_labels(path: PathLike) -> LabelSet:
    """Read a LabelSet written by :func:`save_labels` (never unpickles)."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"label file {p} not found; save labels first or check the path")
    try:
        with np.load(p, allow_pickle=False) as npz:
            meta = json.loads(str(npz["meta"][()]))
            if meta.get("format") != FILE_FORMAT:
                raise ValueError(f"format is {meta.get('format')!r}")
            if int(meta.get("version", 0)) > FILE_VERSION:
                raise DataError(
                    f"label file {p} is version {meta['version']}, newer than this fhn "
                    f"(reads up to {FILE_VERSION}); update fhn"
                )
            labels = npz["labels"].astype(np.int16) - 1
            source = npz["source"]
            split = npz["split"] if "split" in npz.files else None
            classes = [LabelClass(c["id"], c["name"], c["colour"]) for c in meta["classes"]]
            dims = tuple(meta.get("dims", ()))
    except DataError:
        raise
    except Exception as err:  # zip, key, JSON, pickle-refusal errors all mean "not ours"
        raise DataError(
            f"{p} is not a readable fhn label file ({type(err).__name__}: {err}); "
            "choose a file saved by fhn, or import the labels from a raster or CSV instead"
        ) from err
    if [c.id for c in classes] != list(range(len(classes))):
        raise DataError(f"label file {p}: class ids are not 0..K-1; the file is damaged")
    return LabelSet(labels, classes, source, split, dims)


# --------------------------------------------------------------------------- splits
def _class_cells(labelset: LabelSet) -> list[np.ndarray]:
    flat = labelset.labels.ravel()
    return [np.flatnonzero(flat == c.id) for c in labelset.classes]


def split_by_region(labelset: LabelSet, axis: int | str, position: int) -> np.ndarray:
    """Validation = labelled cells with index >= ``position`` along ``axis`` (in place).

    ``axis`` is an axis number or a name in ``labelset.dims``; ``position`` a grid index.
    A class with >= 2 labels that would have none for training keeps its label nearest to
    the boundary for training. Sets and returns ``labelset.split``.
    """
    if isinstance(axis, str):
        if axis not in labelset.dims:
            raise DataError(f"axis {axis!r} is not one of the label dims {labelset.dims}")
        ax = labelset.dims.index(axis)
    else:
        ax = int(axis)
    if not 0 <= ax < labelset.labels.ndim:
        raise DataError(f"axis {axis} out of range for labels of shape {labelset.shape}")
    coord = np.indices(labelset.shape, sparse=True)[ax]
    split = np.broadcast_to(coord >= position, labelset.shape).astype(np.uint8)
    split[labelset.labels < 0] = 0
    along = np.broadcast_to(coord, labelset.shape).ravel()
    for cells in _class_cells(labelset):
        if len(cells) >= 2 and np.all(split.flat[cells] == 1):
            split.flat[cells[np.argmin(along[cells])]] = 0
    labelset.split = split
    return split


# --------------------------------------------------------------------------- grids
def _is_seismic(grid: xr.DataArray) -> bool:
    return "iline" in grid.dims and "xline" in grid.dims


def _horizontal_dims(grid: xr.DataArray) -> tuple[str, str]:
    dims = spatial_dims(grid)
    if _is_seismic(grid):
        return ("iline", "xline")
    if len(dims) != 2:
        raise DataError(f"cannot place labels on a grid with spatial dims {dims}")
    return dims[0], dims[1]


def _vertical_dim(grid: xr.DataArray) -> str | None:
    extra = [d for d in spatial_dims(grid) if d not in _horizontal_dims(grid)]
    return extra[0] if extra else None


def _new_labelset(grid: xr.DataArray, classes: Sequence[str]) -> LabelSet:
    return LabelSet.empty(spatial_shape(grid), classes, spatial_dims(grid))


def _to_grid_order(grid: xr.DataArray, cells: np.ndarray) -> np.ndarray:
    """Reorder cell columns from (horizontal 0, horizontal 1[, vertical]) to the grid's dims."""
    ours = [*_horizontal_dims(grid), *([_vertical_dim(grid)] if _vertical_dim(grid) else [])]
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
    if _is_seismic(grid):
        return _nearest_trace(grid, xs, ys)
    rows_n, cols_n = (grid.sizes[d] for d in _horizontal_dims(grid))
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


def _vertical_index(grid: xr.DataArray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest sample index of vertical values in the samples coord's unit."""
    vdim = _vertical_dim(grid)
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
class _ClassMapper:
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
_VERTICAL_NAMES = ("sample", "samples", "time", "twt", "depth", "z")


def _read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
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


def _number(row: dict[str, str], col: str, path: Path | str, line: int) -> float:
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


def _position_columns(header: Sequence[str], grid: xr.DataArray) -> str | None:
    """Which horizontal position columns the file has: 'xy', 'ilxl' or 'rowcol'."""
    cols = set(header)
    if _is_seismic(grid) and {"iline", "xline"} <= cols:
        return "ilxl"
    if {"x", "y"} <= cols:
        return "xy"
    if {"row", "col"} <= cols:
        return "rowcol"
    return None


def _place_horizontal(
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
        rows_n, cols_n = (grid.sizes[d] for d in _horizontal_dims(grid))
        i, j = np.round(a).astype(np.int64), np.round(b).astype(np.int64)
        inside = (i >= 0) & (i < rows_n) & (j >= 0) & (j < cols_n)
    cells = np.stack([i, j], axis=1).astype(np.int64)
    cells[~inside] = -1
    return cells, inside


def _grid_description(grid: xr.DataArray) -> str:
    dims = spatial_dims(grid)
    text = " x ".join(f"{grid.sizes[d]} {d}" for d in dims)
    if _is_seismic(grid):
        il, xl = grid.coords["iline"].values, grid.coords["xline"].values
        text += f" (inlines {il.min()}-{il.max()}, crosslines {xl.min()}-{xl.max()}"
        vdim = _vertical_dim(grid)
        if vdim in grid.coords:
            z = grid.coords[vdim].values
            text += f", {vdim} {z.min():g}-{z.max():g} {grid.attrs.get('vertical_unit', '')}"
        text += ")"
    elif "transform" in grid.attrs:
        a, _, c, _, e, f = tuple(grid.attrs["transform"])[:6]
        rows_n, cols_n = (grid.sizes[d] for d in _horizontal_dims(grid))
        xs, ys = sorted([c, c + a * cols_n]), sorted([f, f + e * rows_n])
        text += f" (x {xs[0]:g}..{xs[1]:g}, y {ys[0]:g}..{ys[1]:g})"
    return text


def _outside_error(path: Path, what: str, total: int, bad: list[str], grid: xr.DataArray) -> None:
    if bad:
        raise DataError(
            f"{path}: {len(bad)} of {total} {what} fall outside the data grid "
            f"{_grid_description(grid)}, e.g. {bad[0]}; check the coordinate columns and CRS "
            "or remove those rows"
        )


# --------------------------------------------------------------------------- imports
def import_points(
    path: PathLike,
    grid: xr.DataArray,
    class_names: Sequence[str] | None = None,
    *,
    radius: float = 0.0,
) -> LabelSet:
    """Labels from points and transects: CSV or GeoJSON, placed on ``grid``'s cells.

    CSV columns: ``x,y,class`` (map coordinates in the data's CRS), ``iline,xline,class``
    (seismic header numbers) or ``row,col,class`` (grid indices); 3D seismic also needs a
    vertical column (``sample``/``time``/``twt``/``depth``/``z``, in the samples coord's
    unit). GeoJSON: Point/MultiPoint (provenance POINT) and LineString/MultiLineString
    (rasterised along the line, provenance TRANSECT) features with a ``class`` property,
    coordinates (x, y[, z]) in the data's CRS. ``class`` values are names or 1-based
    numbers; ``class_names`` fixes the class table (else taken from the file). Each point
    paints a brush of ``radius`` cells. Later features overwrite earlier ones.
    Raises :class:`DataError` listing how many points fall outside the grid.
    """
    p = Path(path)
    radius = check_radius(radius, tuple(grid.shape), f"{p}: radius")
    if p.suffix.lower() in (".geojson", ".json"):
        return _import_geojson(p, grid, class_names, radius)
    return _import_points_csv(p, grid, class_names, radius)


def _import_points_csv(
    p: Path, grid: xr.DataArray, class_names: Sequence[str] | None, radius: float
) -> LabelSet:
    header, rows = _read_csv(p)
    kind = _position_columns(header, grid)
    vcol = next((c for c in _VERTICAL_NAMES if c in header), None)
    needs_vertical = _vertical_dim(grid) is not None
    cls_col = "class" if "class" in header else "label" if "label" in header else None
    if kind is None or cls_col is None or (needs_vertical and vcol is None):
        expected = "iline,xline,sample,class or x,y,sample,class" if needs_vertical else (
            "x,y,class or row,col,class"
        )
        raise DataError(
            f"{p}: columns {header} do not name a position and a class; "
            f"the header line should be: {expected}"
        )
    a_col, b_col = {"xy": ("x", "y"), "ilxl": ("iline", "xline"), "rowcol": ("row", "col")}[kind]
    if not rows:
        raise DataError(f"{p} has a header but no rows; add points or choose another file")
    a = np.array([_number(r, a_col, p, n + 2) for n, r in enumerate(rows)])
    b = np.array([_number(r, b_col, p, n + 2) for n, r in enumerate(rows)])
    cells, inside = _place_horizontal(grid, kind, a, b)
    if needs_vertical:
        assert vcol is not None
        z = np.array([_number(r, vcol, p, n + 2) for n, r in enumerate(rows)])
        zi, zin = _vertical_index(grid, z)
        cells = np.concatenate([cells, zi[:, None]], axis=1)
        inside &= zin
    cells = _to_grid_order(grid, cells)
    bad = [
        f"line {n + 2}: " + ", ".join(f"{c}={rows[n][c]}" for c in (a_col, b_col, vcol) if c)
        for n in np.flatnonzero(~inside)
    ]
    _outside_error(p, "points", len(rows), bad, grid)
    mapper = _ClassMapper([r[cls_col] for r in rows], class_names, p)
    ls = _new_labelset(grid, mapper.names)
    for n, (row, cell) in enumerate(zip(rows, cells, strict=True)):
        cid = mapper(row[cls_col], f"line {n + 2}")
        idx = brush_index([cell], radius, ls.shape)
        paint_cells(ls.labels, idx, cid, source=ls.source, provenance=Provenance.POINT)
    return ls


def _import_geojson(
    p: Path, grid: xr.DataArray, class_names: Sequence[str] | None, radius: float
) -> LabelSet:
    if not p.is_file():
        raise DataError(f"file {p} not found; check the path")
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(f"cannot read {p} as GeoJSON ({err}); export it again") from err
    features = doc.get("features", [doc]) if isinstance(doc, dict) else doc
    parts: list[tuple[str, list[list[float]], str, str]] = []  # (kind, coords, class, where)
    for n, feat in enumerate(features):
        geom = (feat or {}).get("geometry") or {}
        props = (feat or {}).get("properties") or {}
        value = props.get("class", props.get("label"))
        gtype, coords = geom.get("type"), geom.get("coordinates")
        where = f"feature {n}"
        if value is None or coords is None:
            raise DataError(
                f"{p}, {where}: needs a geometry and a 'class' property; add them"
            )
        if gtype == "Point":
            parts.append(("point", [coords], str(value), where))
        elif gtype == "MultiPoint":
            parts += [("point", [c], str(value), where) for c in coords]
        elif gtype == "LineString":
            parts.append(("line", coords, str(value), where))
        elif gtype == "MultiLineString":
            parts += [("line", c, str(value), where) for c in coords]
        else:
            raise DataError(
                f"{p}, {where}: geometry type {gtype!r} not supported; use Point, "
                "MultiPoint, LineString or MultiLineString"
            )
    if not parts:
        raise DataError(f"{p} has no features; add points or lines")
    needs_vertical = _vertical_dim(grid) is not None
    verts = [np.asarray(c, dtype=np.float64).reshape(-1, np.shape(c)[-1]) for _, c, _, _ in parts]
    flat = np.concatenate(verts)
    if needs_vertical and flat.shape[1] < 3:
        raise DataError(
            f"{p}: the data is a 3D volume, so every coordinate needs a third value "
            "(time/depth in the samples' unit); add z to the geometries"
        )
    cells, inside = map_to_cells(grid, flat[:, 0], flat[:, 1])
    if needs_vertical:
        zi, zin = _vertical_index(grid, flat[:, 2])
        cells = np.concatenate([cells, zi[:, None]], axis=1)
        inside &= zin
    cells = _to_grid_order(grid, cells)
    owners = np.repeat(np.arange(len(parts)), [len(v) for v in verts])
    bad = [
        f"{parts[owners[i]][3]} at ({', '.join(f'{v:g}' for v in flat[i])})"
        for i in np.flatnonzero(~inside)
    ]
    _outside_error(p, "coordinates", len(flat), bad, grid)
    mapper = _ClassMapper([v for _, _, v, _ in parts], class_names, p)
    ls = _new_labelset(grid, mapper.names)
    start = 0
    for (kind, _, value, where), v in zip(parts, verts, strict=True):
        vcells = cells[start : start + len(v)]
        start += len(v)
        cid = mapper(value, where)
        path_cells = line_cells(vcells) if kind == "line" else vcells
        prov = Provenance.TRANSECT if kind == "line" else Provenance.POINT
        idx = brush_index(path_cells, radius, ls.shape)
        paint_cells(ls.labels, idx, cid, source=ls.source, provenance=prov)
    return ls


@dataclass
class Borehole:
    """A well as the app draws it: grid position, map position and labelled intervals.

    ``position`` is the horizontal cell (row, col) = (iline index, xline index) for
    seismic; ``xy`` the map coordinates when given; ``intervals`` (top, base, class id)
    in the vertical unit of the data (empty on 2D maps, where a well labels a disk).
    """

    name: str
    position: tuple[int, int]
    xy: tuple[float, float] | None = None
    intervals: list[tuple[float, float, int]] = field(default_factory=list)


def import_boreholes(
    path: PathLike,
    grid: xr.DataArray,
    radius: float = 1.5,
    *,
    class_names: Sequence[str] | None = None,
) -> tuple[LabelSet, list[Borehole]]:
    """Labels along wells from a CSV of intervals; returns (labels, well table).

    Columns: ``well``, position ``x,y`` (map, data CRS) or ``iline,xline`` (seismic
    numbers) or ``row,col`` (indices), ``top``, ``base``, ``class`` (name or 1-based
    number); one row per interval. On seismic, samples with top <= value <= base (unit of
    the samples coord, e.g. ms) are labelled in every trace within ``radius`` traces of
    the well (provenance BOREHOLE). On a 2D map top/base are optional and each row labels
    the disk of ``radius`` cells around the well.
    """
    p = Path(path)
    header, rows = _read_csv(p)
    return _boreholes(header, rows, grid, radius, class_names, p)


def boreholes_from_rows(
    rows: Sequence[Mapping[str, object]],
    grid: xr.DataArray,
    radius: float = 1.5,
    *,
    class_names: Sequence[str] | None = None,
    origin: str = "the well table",
) -> tuple[LabelSet, list[Borehole]]:
    """:func:`import_boreholes` for interval rows typed in (e.g. a well added in the app).

    ``rows`` are mappings with the CSV's column names (``well``, a position pair, ``top``,
    ``base``, ``class``; any case) and string or number values. ``origin`` names the table
    in error messages, in place of the CSV's path.
    """
    header = list(dict.fromkeys(str(k).strip().lower() for row in rows for k in row))
    text_rows = [
        {str(k).strip().lower(): "" if v is None else str(v).strip() for k, v in row.items()}
        for row in rows
    ]
    return _boreholes(header, text_rows, grid, radius, class_names, origin)


def _boreholes(
    header: Sequence[str],
    rows: list[dict[str, str]],
    grid: xr.DataArray,
    radius: float,
    class_names: Sequence[str] | None,
    p: Path | str,
) -> tuple[LabelSet, list[Borehole]]:
    """The body of :func:`import_boreholes`; ``p`` names the table in messages."""
    hshape = tuple(grid.sizes[d] for d in _horizontal_dims(grid))
    radius = check_radius(radius, hshape, f"{p}: radius")
    vertical = _vertical_dim(grid) is not None
    kind = _position_columns(header, grid)
    pos_cols = {"xy": ["x", "y"], "ilxl": ["iline", "xline"], "rowcol": ["row", "col"]}.get(
        kind or "", ["iline", "xline"] if _is_seismic(grid) else ["x", "y"]
    )
    required = ["well", *pos_cols, *(["top", "base"] if vertical else []), "class"]
    missing = [c for c in required if c not in header]
    if missing:
        expected = ",".join(required)
        alt = " (or x,y instead of iline,xline)" if _is_seismic(grid) else ""
        raise DataError(
            f"{p}: missing column(s) {', '.join(missing)}; the header line should be: "
            f"{expected}{alt}"
        )
    if not rows:
        raise DataError(f"{p} has a header but no wells; add rows")
    assert kind is not None
    a = np.array([_number(r, pos_cols[0], p, n + 2) for n, r in enumerate(rows)])
    b = np.array([_number(r, pos_cols[1], p, n + 2) for n, r in enumerate(rows)])
    cells, inside = _place_horizontal(grid, kind, a, b)
    outside_wells = list(dict.fromkeys(r["well"] for r, ok in zip(rows, inside, strict=True)
                                       if not ok))
    if outside_wells:
        raise DataError(
            f"{p}: well(s) {', '.join(outside_wells)} lie outside the survey "
            f"{_grid_description(grid)}; check their coordinates (and the CRS) or remove them"
        )
    mapper = _ClassMapper([r["class"] for r in rows], class_names, p)
    ls = _new_labelset(grid, mapper.names)
    wells: dict[str, Borehole] = {}
    vdim = _vertical_dim(grid)
    zaxis = None
    if vdim is not None:
        zaxis = (np.asarray(grid.coords[vdim].values, dtype=np.float64)
                 if vdim in grid.coords else np.arange(grid.sizes[vdim], dtype=np.float64))
    for n, (row, cell) in enumerate(zip(rows, cells, strict=True)):
        where = f"line {n + 2} (well {row['well']})"
        cid = mapper(row["class"], where)
        well = wells.setdefault(
            row["well"],
            Borehole(row["well"], (int(cell[0]), int(cell[1])),
                     (float(a[n]), float(b[n])) if kind == "xy" else None),
        )
        disk = brush_index([cell], radius, hshape)
        if zaxis is None:
            paint_cells(ls.labels, disk, cid, source=ls.source, provenance=Provenance.BOREHOLE)
            continue
        top, base = sorted((_number(row, "top", p, n + 2), _number(row, "base", p, n + 2)))
        _check_no_overlap(well, top, base, p, where)
        zs = np.flatnonzero((zaxis >= top) & (zaxis <= base))
        step = float(np.median(np.abs(np.diff(zaxis)))) if len(zaxis) > 1 else 1.0
        if len(zs) == 0:
            mid = (top + base) / 2
            nearest = int(np.abs(zaxis - mid).argmin())
            if abs(zaxis[nearest] - mid) > step / 2 + (base - top) / 2:
                raise DataError(
                    f"{p}, {where}: interval {top:g}-{base:g} lies outside the samples "
                    f"{zaxis.min():g}-{zaxis.max():g} {grid.attrs.get('vertical_unit', '')}; "
                    "check the unit of top/base (ms or m)"
                )
            zs = np.array([nearest])
        ring = np.stack([np.repeat(disk[0], len(zs)), np.repeat(disk[1], len(zs)),
                         np.tile(zs, len(disk[0]))], axis=1)
        index = tuple(_to_grid_order(grid, ring).T)
        paint_cells(ls.labels, index, cid, source=ls.source, provenance=Provenance.BOREHOLE)
        well.intervals.append((top, base, cid))
    return ls, list(wells.values())


def _check_no_overlap(well: Borehole, top: float, base: float, p: Path | str, where: str) -> None:
    """Two intervals of one well that share more than a boundary would label the shared
    samples twice, the later row silently winning."""
    for other_top, other_base, _ in well.intervals:
        if top < other_base and other_top < base:
            raise DataError(
                f"{p}, {where}: interval {top:g}-{base:g} overlaps the interval "
                f"{other_top:g}-{other_base:g} of the same well; fix the tops and bases"
            )


BOREHOLE_FORMAT = "fhn-boreholes"


def save_boreholes(path: PathLike, wells: Sequence[Borehole]) -> Path:
    """Write a well table (name, grid position, map position, intervals) as JSON, atomically.

    Interval class ids refer to the class table of the labels saved beside it.
    """
    target = Path(path)
    doc = {
        "format": BOREHOLE_FORMAT,
        "version": FILE_VERSION,
        "wells": [
            {
                "name": w.name,
                "position": [int(w.position[0]), int(w.position[1])],
                "xy": None if w.xy is None else [float(w.xy[0]), float(w.xy[1])],
                "intervals": [[float(t), float(b), int(c)] for t, b, c in w.intervals],
            }
            for w in wells
        ],
    }
    with atomic_output(target) as tmp:
        tmp.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    return target


def load_boreholes(path: PathLike) -> list[Borehole]:
    """Read a well table written by :func:`save_boreholes`."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"well table {p} not found; import boreholes first or check the path")
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
        if doc.get("format") != BOREHOLE_FORMAT:
            raise ValueError(f"format is {doc.get('format')!r}")
        wells = [
            Borehole(
                str(w["name"]),
                (int(w["position"][0]), int(w["position"][1])),
                None if w.get("xy") is None else (float(w["xy"][0]), float(w["xy"][1])),
                [(float(t), float(b), int(c)) for t, b, c in w.get("intervals", [])],
            )
            for w in doc["wells"]
        ]
    except Exception as err:  # JSON, key and type errors all mean a damaged or foreign file
        raise DataError(
            f"{p} is not a readable fhn well table ({type(err).__name__}: {err}); "
            "import the borehole CSV again"
        ) from err
    return wells


def import_mask_pair(
    positive_path: PathLike,
    negative_path: PathLike,
    grid_shape: tuple[int, int],
    *,
    names: tuple[str, str] = ("changed", "unchanged"),
) -> LabelSet:
    """Two-class labels from two reference masks (white = member), e.g. change/unchanged.

    Class 0 is ``names[0]`` (cells white in ``positive_path``), class 1 ``names[1]``
    (white in ``negative_path``); images are read with Pillow (any mode, > 127 = member).
    A mask of another size, or a cell white in both, is a :class:`DataError`.
    """
    masks = []
    for mp in (Path(positive_path), Path(negative_path)):
        masks.append(_read_mask(mp, tuple(grid_shape)))
    both = masks[0] & masks[1]
    if both.any():
        r, c = np.argwhere(both)[0]
        raise DataError(
            f"{positive_path} and {negative_path} overlap in {int(both.sum())} pixels "
            f"(e.g. row {r}, col {c}); a pixel can be in one mask only — fix the masks"
        )
    ls = LabelSet.empty(grid_shape, names, ("y", "x"))
    for cid, mask in enumerate(masks):
        ls.labels[mask] = cid
        ls.source[mask] = Provenance.IMPORTED
    return ls


def _read_mask(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise DataError(f"mask image {path} not found; check the path")
    try:
        with Image.open(path) as img:
            grey = np.asarray(img.convert("L"))
    except (UnidentifiedImageError, OSError) as err:
        raise DataError(f"cannot read mask image {path} ({err}); save it as PNG/BMP/TIFF") from err
    if grey.shape != shape:
        raise DataError(
            f"mask {path} is {grey.shape[0]} x {grey.shape[1]} (rows x cols) but the data grid "
            f"is {shape[0]} x {shape[1]}; use a mask made for this image"
        )
    return grey > 127


# --------------------------------------------------------------------------- label rasters
def import_label_raster(
    path: PathLike,
    grid: xr.DataArray,
    *,
    class_names: Sequence[str] | None = None,
) -> LabelSet:
    """Labels from a class raster on the data's grid: GeoTIFF, .npy or SEG-Y label volume.

    File convention: 0 (or nodata) = no label, 1..K = classes (class names default to
    'class k'). GeoTIFF: one band, same shape as the grid and, when both carry them, the
    same CRS and transform. .npy: same shape (loaded without pickle). SEG-Y: the same
    inline, crossline and sample axes (byte locations taken from the grid's attrs).
    Anything on another grid is a :class:`DataError` naming both grids.
    Provenance IMPORTED.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"label file {p} not found; check the path")
    suffix = p.suffix.lower()
    expected = spatial_shape(grid)
    if suffix == ".npy":
        try:
            values = np.load(p, allow_pickle=False)
        except Exception as err:  # includes the refusal to unpickle object arrays
            raise DataError(f"cannot read {p} as a numeric .npy array ({err})") from err
        _same_shape(p, values.shape, expected, grid)
    elif suffix in (".tif", ".tiff"):
        values = _label_geotiff(p, grid, expected)
    elif suffix in (".sgy", ".segy"):
        values = _label_segy(p, grid, expected)
    else:
        raise DataError(
            f"{p}: unknown label raster type '{suffix}'; use .tif, .npy or .sgy "
            "(or import points/boreholes from CSV)"
        )
    return _labels_from_values(p, values, grid, class_names)


def _same_shape(
    p: Path, shape: tuple[int, ...], expected: tuple[int, ...], grid: xr.DataArray
) -> None:
    if tuple(shape) != tuple(expected):
        raise DataError(
            f"{p} has shape {tuple(shape)} but the data grid is {tuple(expected)} "
            f"({_grid_description(grid)}); export the labels on the data's grid"
        )


def _label_geotiff(p: Path, grid: xr.DataArray, expected: tuple[int, ...]) -> np.ndarray:
    from .geotiff import read_geotiff  # lazy: written alongside, and rasterio is heavy

    raster = read_geotiff(p)
    if raster.sizes.get("band", 1) != 1:
        raise DataError(f"{p} has {raster.sizes['band']} bands; a label raster needs one band")
    values = np.asarray(raster.values).reshape(raster.sizes["y"], raster.sizes["x"])
    _same_shape(p, values.shape, expected, grid)
    crs_l, crs_g = raster.attrs.get("crs"), grid.attrs.get("crs")
    if crs_l and crs_g:
        if not crs_equal(crs_l, crs_g):
            raise DataError(
                f"{p} is in another CRS than the data ({str(crs_l)[:60]}... vs "
                f"{str(crs_g)[:60]}...); reproject the labels onto the data's grid"
            )
        t_l, t_g = raster.attrs.get("transform"), grid.attrs.get("transform")
        if t_l is not None and t_g is not None and not transform_equal(t_l, t_g):
            raise DataError(
                f"{p} has transform {tuple(t_l)} but the data grid has {tuple(t_g)} "
                f"({_grid_description(grid)}); resample the labels onto the data's grid"
            )
    nodata = raster.attrs.get("nodata")
    if nodata is not None and np.isfinite(nodata):
        values = np.where(values == nodata, 0, values)
    return values


def _label_segy(p: Path, grid: xr.DataArray, expected: tuple[int, ...]) -> np.ndarray:
    from .segy import read_segy  # lazy: only seismic projects need segyio

    if not _is_seismic(grid):
        raise DataError(f"{p} is SEG-Y but the data is not seismic; use a .tif or .npy")
    il_byte = int(grid.attrs.get("iline_byte", 189))
    xl_byte = int(grid.attrs.get("xline_byte", 193))
    vol = read_segy(p, iline=il_byte, xline=xl_byte)
    for dim in ("iline", "xline", "samples"):
        a, b = vol.coords[dim].values, grid.coords[dim].values
        if a.shape != b.shape or not np.allclose(a, b):
            raise DataError(
                f"{p}: its {dim} axis ({a.min():g}..{a.max():g}, {len(a)} values) differs from "
                f"the data's ({b.min():g}..{b.max():g}, {len(b)}); export the labels on the "
                "seismic's grid"
            )
    return np.asarray(vol.transpose(*spatial_dims(grid)).values)


def _labels_from_values(
    p: Path, values: np.ndarray, grid: xr.DataArray, class_names: Sequence[str] | None
) -> LabelSet:
    v = np.asarray(values)
    if v.dtype.kind == "f":
        v = np.where(np.isfinite(v), v, 0)
        if not np.all(v == np.round(v)):
            raise DataError(f"{p} holds non-integer values; a label raster needs class numbers")
    if v.dtype.kind not in "iuf" or v.dtype.kind == "b":
        raise DataError(f"{p} has dtype {v.dtype}; a label raster needs integer class numbers")
    v = v.astype(np.int64)
    if v.size and v.min() < 0:
        raise DataError(f"{p} holds negative values; use 0 for no label and 1..K for classes")
    k = int(v.max()) if v.size else 0
    if class_names is not None:
        if len(class_names) < k:
            raise DataError(
                f"{p} uses classes up to {k} but only {len(class_names)} names were given"
            )
        names = list(class_names)
    else:
        names = [f"class {i}" for i in range(1, k + 1)]
    labels = (v - 1).astype(np.int16)
    source = np.where(labels >= 0, Provenance.IMPORTED, Provenance.NONE).astype(np.uint8)
    return LabelSet(labels, _as_classes(names), source, None, spatial_dims(grid))
