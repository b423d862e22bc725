"""Sparse labels on a data grid: the label model, its file and train/validation splits.

Model (DESIGN.md "Data model"): a :class:`LabelSet` holds an int16 array on the data's
spatial grid (seismic ``(iline, xline, samples)``, maps and hyperspectral ``(y, x)``)
with -1 = unlabelled and 0..K-1 = class index used by the network, a class table of
:class:`LabelClass` (name, colour), a uint8 provenance code per cell (:class:`Provenance`)
and an optional uint8 train/validation split (0 train, 1 validation). On a survey too
large for an array per cell (a Zarr store of billions of cells) the labels of a few
wells come as :class:`LabelCells` instead: the labelled cells listed with their classes.

In files that users exchange (rasters, SEG-Y label volumes, CSV/GeoJSON integer
classes, the saved .npz) the convention is 0 = no label and 1..K = classes.

Mutation: the :class:`LabelSet` class-table methods (``add_class``, ``rename_class``,
``recolour_class``, ``delete_class``, ``merge``) and the split functions change the
LabelSet *in place* (the app edits one LabelSet and saves it after every edit);
``copy`` and ``with_classes`` return new LabelSets and leave the original alone.

Labels come in from the user's files through the sibling modules: ``label_points`` (CSV
and GeoJSON points and transects), ``boreholes`` (well intervals), ``label_rasters``
(class rasters and volumes, reference mask pairs); ``label_placement`` puts coordinates,
header numbers and file class values onto the grid for all of them, and
``label_geometry`` paints brushes and lines.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_output
from .errors import DataError

__all__ = [
    "Provenance",
    "LabelClass",
    "LabelSet",
    "LabelCells",
    "CellGrid",
    "DEFAULT_COLOURS",
    "FILE_VERSION",
    "default_colour",
    "save_labels",
    "load_labels",
    "save_label_cells",
    "load_label_cells",
    "split_by_region",
]

PathLike = str | os.PathLike[str]

FILE_FORMAT = "fhn-labels"
CELLS_FORMAT = "fhn-label-cells"  # labels listed cell by cell (save_label_cells)
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


class _ClassTable:
    """The class table of a label model (``classes``, a list of :class:`LabelClass`
    numbered 0..K-1): queries and the in-place edits that do not touch labelled cells."""

    classes: list[LabelClass]

    @property
    def class_names(self) -> list[str]:
        """Class names in id order."""
        return [c.name for c in self.classes]

    def class_id(self, name: str) -> int:
        """The id of the class called ``name``; DataError listing the names otherwise."""
        for c in self.classes:
            if c.name == name:
                return c.id
        raise DataError(f"no class named {name!r}; classes are {self.class_names}")

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


@dataclass(eq=False)
class LabelSet(_ClassTable):
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

    def counts(self) -> dict[int, int]:
        """Number of labelled cells per class id (every class listed, zero included)."""
        valid = self.labels[self.labels >= 0].astype(np.int64)
        counts = np.bincount(valid, minlength=len(self.classes))
        return {c.id: int(counts[c.id]) for c in self.classes}

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


@dataclass
class LabelCells(_ClassTable):
    """Labels listed cell by cell, for grids too large for a :class:`LabelSet`.

    ``cells`` (n, ndim) int64 grid indices in the order ``dims`` and ``class_ids`` (n,),
    in painting order: where a cell is listed twice, the later entry is its label, as
    painting the same cells into a LabelSet would leave it. ``source`` (n,) uint8
    :class:`Provenance` codes (default: imported). The edits (:meth:`set_cells`,
    :meth:`delete_class`) keep every cell once, in C order. :attr:`grid` shows them as a
    read-only label grid that builds only the part it is indexed with (a section).
    """

    shape: tuple[int, ...]
    dims: tuple[str, ...]
    cells: np.ndarray
    class_ids: np.ndarray
    classes: list[LabelClass]
    source: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.shape = tuple(int(n) for n in self.shape)
        self.dims = tuple(str(d) for d in self.dims)
        self.classes = _as_classes(self.classes)
        self.cells = np.asarray(self.cells, dtype=np.int64).reshape(-1, len(self.shape))
        self.class_ids = np.asarray(self.class_ids, dtype=np.int64).reshape(-1)
        if len(self.cells) != len(self.class_ids):
            raise DataError(f"{len(self.cells)} labelled cells but {len(self.class_ids)} "
                            "class ids")
        self.source = (np.full(len(self.cells), Provenance.IMPORTED, dtype=np.uint8)
                       if self.source is None else np.asarray(self.source, dtype=np.uint8))

    @classmethod
    def empty(cls, shape: Sequence[int], dims: Sequence[str] = (),
              classes: Sequence[LabelClass | str] = ()) -> LabelCells:
        """No labelled cell on a grid of ``shape``."""
        return cls(tuple(shape), tuple(dims), np.empty((0, len(shape)), np.int64),
                   np.empty(0, np.int64), list(classes))

    @classmethod
    def of(cls, labelset: LabelSet) -> LabelCells:
        """The labelled cells of a LabelSet (its split is not kept)."""
        cells = np.argwhere(labelset.labels >= 0)
        index = tuple(cells.T)
        return cls(labelset.shape, labelset.dims, cells, labelset.labels[index],
                   list(labelset.classes), labelset.source[index])

    def counts(self) -> dict[int, int]:
        """Number of labelled cells per class id (every class listed, zero included)."""
        counts = np.bincount(self.listed_once()[1], minlength=len(self.classes))
        return {c.id: int(counts[c.id]) for c in self.classes}

    def listed_once(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(flat C-order index, class id, source) of each labelled cell once, sorted."""
        flat = (np.ravel_multi_index(tuple(self.cells.T), self.shape) if len(self.cells)
                else np.empty(0, np.int64))
        _, last = np.unique(flat[::-1], return_index=True)  # the last entry of a cell wins
        keep = len(flat) - 1 - last
        return flat[keep], self.class_ids[keep], self.source[keep]

    def set_cells(self, cells: np.ndarray, class_ids: np.ndarray, source: np.ndarray) -> int:
        """Label ``cells`` (n, ndim) with ``class_ids`` (-1 unlabels) in place; returns
        the cells whose label changed."""
        flat, ids, src = self.listed_once()
        cells = np.asarray(cells, dtype=np.int64).reshape(-1, len(self.shape))
        new_flat = np.ravel_multi_index(tuple(cells.T), self.shape)
        new_ids = np.broadcast_to(np.asarray(class_ids, dtype=np.int64), new_flat.shape)
        new_src = np.broadcast_to(np.asarray(source, dtype=np.uint8), new_flat.shape)
        _, last = np.unique(new_flat[::-1], return_index=True)  # a cell listed twice: last
        once = len(new_flat) - 1 - last
        new_flat, new_ids, new_src = new_flat[once], new_ids[once], new_src[once]
        before = self.ids_at(flat, ids, new_flat)
        changed = int(np.count_nonzero(before != new_ids))
        flat = np.concatenate([flat, new_flat])
        ids, src = np.concatenate([ids, new_ids]), np.concatenate([src, new_src])
        _, last = np.unique(flat[::-1], return_index=True)
        keep = len(flat) - 1 - last
        keep = keep[ids[keep] >= 0]
        self.cells = np.stack(np.unravel_index(flat[keep], self.shape), axis=1).astype(np.int64)
        self.class_ids, self.source = ids[keep], src[keep]
        return changed

    @staticmethod
    def ids_at(flat: np.ndarray, ids: np.ndarray, where: np.ndarray) -> np.ndarray:
        """Class ids (-1 unlabelled) at flat indices ``where``, ``flat`` sorted and unique."""
        pos = np.searchsorted(flat, where)
        inside = pos < len(flat)
        found = np.zeros(len(where), dtype=bool)
        found[inside] = flat[pos[inside]] == where[inside]
        out = np.full(len(where), -1, dtype=np.int64)
        out[found] = ids[pos[found]]
        return out

    def delete_class(self, class_id: int) -> int:
        """Delete a class in place: its cells become unlabelled, higher ids move down by
        one. Returns the number of cells that lost their label."""
        self._check_id(class_id)
        flat, ids, src = self.listed_once()
        gone = ids == class_id
        keep = ~gone
        self.cells = np.stack(np.unravel_index(flat[keep], self.shape), axis=1).astype(np.int64)
        self.class_ids = np.where(ids[keep] > class_id, ids[keep] - 1, ids[keep])
        self.source = src[keep]
        del self.classes[class_id]
        self.classes = _as_classes(self.classes)
        return int(np.count_nonzero(gone))

    @property
    def grid(self) -> CellGrid:
        """The labels as a read-only grid (-1 unlabelled): indexing it builds only what it
        selects, e.g. one section."""
        return CellGrid(self)


class CellGrid:
    """:class:`LabelCells` seen as an int16 label grid, read-only: ``grid[key]`` with an
    int or a slice (step 1) per axis builds that part from the listed cells (a section of
    a survey, a single cell), never the whole grid unless asked for it."""

    dtype = np.dtype(np.int16)

    def __init__(self, labels: LabelCells) -> None:
        self._labels = labels
        self.shape = labels.shape
        self.ndim = len(labels.shape)

    def __getitem__(self, key: Any) -> np.ndarray | np.int16:
        key = key if isinstance(key, tuple) else (key,)
        key = key + (slice(None),) * (self.ndim - len(key))
        if len(key) != self.ndim:
            raise IndexError(f"{len(key)} indices for a grid of {self.ndim} axes")
        flat, ids, _ = self._labels.listed_once()
        cells = np.stack(np.unravel_index(flat, self.shape), axis=1) if len(flat) else \
            np.empty((0, self.ndim), np.int64)
        inside = np.ones(len(cells), dtype=bool)
        starts, out_shape = [], []
        for axis, (k, n) in enumerate(zip(key, self.shape, strict=True)):
            if isinstance(k, slice):
                start, stop, step = k.indices(n)
                if step != 1:
                    raise IndexError("a label grid of listed cells takes slices of step 1")
                stop = max(start, stop)
                starts.append(start)
                out_shape.append(stop - start)
                inside &= (cells[:, axis] >= start) & (cells[:, axis] < stop)
            else:
                index = int(k) + n if int(k) < 0 else int(k)
                if not 0 <= index < n:
                    raise IndexError(f"index {k} is out of bounds for axis {axis} of size {n}")
                inside &= cells[:, axis] == index
        if len(out_shape) == 0:  # one cell (listed at most once)
            return np.int16(ids[inside][0] if inside.any() else -1)
        kept = [a for a, k in enumerate(key) if isinstance(k, slice)]
        out = np.full(out_shape, -1, dtype=np.int16)
        local = cells[inside][:, kept] - np.array(starts, dtype=np.int64)
        out[tuple(local.T)] = ids[inside]
        return out


# --------------------------------------------------------------------------- file
def save_labels(path: PathLike, labelset: LabelSet) -> Path:
    """Write ``labelset`` to one compressed .npz, atomically; returns the path.

    Arrays: ``labels`` (int16, file convention 0 = no label, k+1 = class k), ``source``,
    ``split`` (when set); ``meta``: a 0-d unicode array holding JSON (class table, dims,
    format/version), so loading never needs pickle.
    """
    arrays: dict[str, np.ndarray] = {
        "labels": (labelset.labels.astype(np.int32) + 1).astype(np.int16),
        "source": np.asarray(labelset.source, dtype=np.uint8),
    }
    if labelset.split is not None:
        arrays["split"] = labelset.split.astype(np.uint8)
    return _write_npz(Path(path), FILE_FORMAT, labelset, arrays,
                      encoding="labels: 0 = no label, k+1 = class k")


def save_label_cells(path: PathLike, labels: LabelCells) -> Path:
    """Write listed labels to one compressed .npz, atomically; returns the path.

    Arrays: ``cells`` (n, ndim) int64 grid indices, each cell once, in C order;
    ``class_ids`` (int16, 0..K-1); ``source``; ``meta`` as for :func:`save_labels`.
    """
    flat, ids, source = labels.listed_once()
    cells = np.stack(np.unravel_index(flat, labels.shape), axis=1).astype(np.int64)
    arrays = {"cells": cells.reshape(-1, len(labels.shape)),
              "class_ids": ids.astype(np.int16), "source": source.astype(np.uint8)}
    return _write_npz(Path(path), CELLS_FORMAT, labels, arrays,
                      encoding="cells: grid indices; class_ids: class k")


def _write_npz(target: Path, form: str, labels: LabelSet | LabelCells,
               arrays: dict[str, np.ndarray], encoding: str) -> Path:
    meta = {
        "format": form,
        "version": FILE_VERSION,
        "encoding": encoding,
        "classes": [{"id": c.id, "name": c.name, "colour": c.colour} for c in labels.classes],
        "dims": list(labels.dims),
        "shape": list(labels.shape),
    }
    with atomic_output(target) as tmp, open(tmp, "wb") as fh:
        # a file object, because savez would append ".npz" to the temporary name
        np.savez_compressed(fh, **arrays, meta=np.array(json.dumps(meta)))
    return target


def load_labels(path: PathLike) -> LabelSet:
    """Read a LabelSet written by :func:`save_labels` (never unpickles)."""
    def build(npz: Any, classes: list[LabelClass], meta: dict[str, Any]) -> LabelSet:
        split = npz["split"] if "split" in npz.files else None
        return LabelSet(npz["labels"].astype(np.int16) - 1, classes, npz["source"], split,
                        tuple(meta.get("dims", ())))

    return _read_npz(Path(path), FILE_FORMAT, build)


def load_label_cells(path: PathLike) -> LabelCells:
    """Read listed labels written by :func:`save_label_cells` (never unpickles)."""
    def build(npz: Any, classes: list[LabelClass], meta: dict[str, Any]) -> LabelCells:
        labels = LabelCells(tuple(meta["shape"]), tuple(meta.get("dims", ())), npz["cells"],
                            npz["class_ids"], classes, npz["source"])
        if len(labels.class_ids) and not 0 <= labels.class_ids.min() <= \
                labels.class_ids.max() < len(classes):
            raise ValueError("class ids outside the class table")
        return labels

    return _read_npz(Path(path), CELLS_FORMAT, build)


def _read_npz(p: Path, form: str, build: Any) -> Any:
    """``build(npz, classes, meta)`` of an fhn label .npz of format ``form``; DataError
    naming the file when it is missing, newer or not such a file."""
    if not p.is_file():
        raise DataError(f"label file {p} not found; save labels first or check the path")
    try:
        with np.load(p, allow_pickle=False) as npz:
            meta = json.loads(str(npz["meta"][()]))
            if meta.get("format") != form:
                raise ValueError(f"format is {meta.get('format')!r}")
            if int(meta.get("version", 0)) > FILE_VERSION:
                raise DataError(
                    f"label file {p} is version {meta['version']}, newer than this fhn "
                    f"(reads up to {FILE_VERSION}); update fhn"
                )
            classes = [LabelClass(c["id"], c["name"], c["colour"]) for c in meta["classes"]]
            if [c.id for c in classes] != list(range(len(classes))):
                raise DataError(f"label file {p}: class ids are not 0..K-1; the file is damaged")
            return build(npz, classes, meta)
    except DataError:
        raise
    except Exception as err:  # zip, key, JSON, pickle-refusal errors all mean "not ours"
        raise DataError(
            f"{p} is not a readable fhn label file ({type(err).__name__}: {err}); "
            "choose a file saved by fhn, or import the labels from a raster or CSV instead"
        ) from err


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
