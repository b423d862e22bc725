"""From loaded data and labels to what fhn_core trains: a SegmentationTask and a design.

:func:`build_task` puts a :class:`~io_adapters.labels.LabelSet` on a
:class:`~app.layout.DataLayout` (validation from the label split or a second label set);
:func:`default_design` proposes a small network when the user gives none. Labels listed
cell by cell (:class:`~io_adapters.labels.LabelCells`, wells on a survey store) and any
labels on a survey read chunk by chunk become fhn_core's SparseLabels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from fhn_core.chunked import is_chunked
from fhn_core.design import PRESETS, NetworkDesign, Segment
from fhn_core.sparse_labels import SparseLabels
from fhn_core.task import SegmentationTask
from io_adapters.errors import DataError
from io_adapters.labels import LabelCells, LabelSet

from .layout import DataLayout, to_channels_first

__all__ = ["build_task", "default_design"]


def _labels_on_grid(
    labels: LabelSet | np.ndarray, layout: DataLayout, what: str, source: str
) -> np.ndarray:
    """Label array in the layout's grid order; DataError naming both shapes otherwise."""
    arr = labels.labels if isinstance(labels, LabelSet) else np.asarray(labels)
    dims = labels.dims if isinstance(labels, LabelSet) else ()
    if dims and set(dims) == set(layout.grid_dims) and tuple(dims) != layout.grid_dims:
        arr = np.transpose(arr, [dims.index(d) for d in layout.grid_dims])
    if tuple(arr.shape) != layout.grid_shape:
        raise DataError(
            f"{what} of shape {tuple(arr.shape)} are not on the grid of {source}, which is "
            f"{layout.grid_shape} {layout.grid_dims}; import or paint the labels on this "
            "data's grid"
        )
    if not np.issubdtype(arr.dtype, np.integer):
        raise DataError(f"{what} must hold integer class ids (-1 unlabelled), got {arr.dtype}")
    return arr.astype(np.int64)


def _listed_on_grid(
    labels: LabelCells | LabelSet | np.ndarray, layout: DataLayout, what: str, source: str
) -> SparseLabels:
    """Labels as SparseLabels on the layout's grid (columns in its dim order)."""
    if not isinstance(labels, LabelCells):
        return SparseLabels.from_dense(_labels_on_grid(labels, layout, what, source))
    dims, shape = tuple(labels.dims), tuple(labels.shape)
    if set(dims) == set(layout.grid_dims):
        order = [dims.index(d) for d in layout.grid_dims]
        dims, shape = layout.grid_dims, tuple(shape[i] for i in order)
    if dims != layout.grid_dims or shape != layout.grid_shape:
        raise DataError(
            f"{what} on the grid {labels.shape} {labels.dims} are not on the grid of {source}, "
            f"which is {layout.grid_shape} {layout.grid_dims}; import the labels on this "
            "data's grid"
        )
    cells = labels.cells[:, order] if len(labels.cells) else labels.cells
    return SparseLabels(shape, cells, labels.class_ids)


def _on_every_slice(labels: np.ndarray, layout: DataLayout) -> np.ndarray:
    """Label-grid labels repeated along the layout's averaged axis (every band slice)."""
    axis = layout.averaged_axis
    assert axis is not None
    size = layout.data.shape[1 + axis]
    return np.repeat(np.expand_dims(labels, axis), size, axis=axis)


def build_task(
    da: xr.DataArray,
    labelset: LabelSet | LabelCells,
    *,
    val_labels: LabelSet | LabelCells | np.ndarray | None = None,
    layout: DataLayout | None = None,
) -> SegmentationTask:
    """A SegmentationTask from loaded data and its labels (class names from the LabelSet).

    Validation labels: ``val_labels`` when given; else the LabelSet's ``split`` (cells with
    split 1 are held back for validation, the rest train); else none, and the trainer
    holds back a random fraction. ``layout`` defaults to :func:`to_channels_first` (da).
    Labels on another grid are a DataError naming both shapes. LabelCells, and every label
    on a layout read chunk by chunk, go to fhn_core as SparseLabels.
    """
    layout = layout or to_channels_first(da)
    source = str(da.attrs.get("source_path", "the data"))
    if isinstance(labelset, LabelCells):
        labels = _listed_on_grid(labelset, layout, "labels", source)
        val = (None if val_labels is None else
               _listed_on_grid(val_labels, layout, "validation labels", source))
        return _task(layout, labelset, labels, val)
    labels = _labels_on_grid(labelset, layout, "labels", source)
    val = None
    if val_labels is not None:
        val = _labels_on_grid(val_labels, layout, "validation labels", source)
    elif labelset.split is not None:
        split = _labels_on_grid(labelset.split.astype(np.int16), layout, "split", source)
        held = (split == 1) & (labels >= 0)
        if held.any():
            val = np.where(held, labels, -1)
            labels = np.where(held, -1, labels)
    if layout.averaged_axis is not None:  # the same labels on every slice of that axis
        labels = _on_every_slice(labels, layout)
        val = None if val is None else _on_every_slice(val, layout)
    if is_chunked(layout.data):  # a survey read chunk by chunk: fhn_core takes listed cells
        labels = SparseLabels.from_dense(labels)
        val = None if val is None else SparseLabels.from_dense(val)
    return _task(layout, labelset, labels, val)


def _task(layout: DataLayout, labelset: LabelSet | LabelCells, labels, val) -> SegmentationTask:
    return SegmentationTask(
        data=layout.data, labels=labels, n_classes=len(labelset.classes), val_labels=val,
        fixed_axes=layout.fixed_axes, slice_axis=layout.slice_axis,
        slice_index=layout.slice_index, vertical_axis=layout.vertical_axis,
        averaged_axis=layout.averaged_axis,
        class_names=list(labelset.class_names),
        channel_names=list(layout.channel_names),
        class_priors=class_priors_for(layout.kind),
    )


def class_priors_for(kind: str) -> str:
    """The class mix a model of this data kind predicts with by default.

    Two dates: "scene". Their labels are surveyed points, drawn in equal numbers per class
    rather than in the scene's proportions, so the mix is re-estimated on the scene
    (fhn_core.priors); adopted on the western Taizhou proxies, benchmarks/README.md. Other
    kinds keep the training mix (on seismic the re-estimate lost 0.22 mean IoU on a salt
    survey whose over-confident salt cells pull it up).
    """
    return "scene" if kind == "dates" else "training"


# The keys of a run's [design] (and of an auto candidate's design.*) that size the default
# design rather than replace it.
DEFAULT_DESIGN_KEYS = ("layers_per_level", "rank")
DEFAULT_LEVELS = 2


def default_design(
    layout: DataLayout, n_classes: int, preset: str | None = None,
    layers_per_level: int | Sequence[int] = 2, rank: int | None = None,
) -> NetworkDesign:
    """A design for this data when the user gives none: a small U-shaped network.

    ``in_channels = max(C, n_classes)`` (the input is replicated up to it, section 3.2).
    Without ``preset``: ``layers_per_level`` layers at each of DEFAULT_LEVELS + 1 levels
    (two by default; the auto recipe's design-size candidates change it), or a list of
    layer counts, one per level from the finest (as many levels as it has entries), on the
    way down and the same on the way back up; deepest levels are dropped where the smallest
    axis is short, so the coarsest grid keeps >= 8 cells a side. Ranks 8, 16, 32, ...
    doubling with the level (eq. 3.17), or ``rank`` at every level. With ``preset`` (a name
    in fhn_core.design.PRESETS) that design, with the in_channels above.
    """
    channels = max(int(layout.data.shape[0]), int(n_classes))
    dims = layout.data.ndim - 1
    if preset is not None:
        if preset not in PRESETS:
            raise DataError(f"unknown design preset {preset!r}; presets: {', '.join(PRESETS)}")
        design = PRESETS[preset](in_channels=channels)
        if design.spatial_dims != dims:
            raise DataError(
                f"preset {preset!r} is {design.spatial_dims}D but this {layout.kind} data is "
                f"laid out for a {dims}D design; choose a {dims}D preset or design"
            )
        return design
    per_level = ([layers_per_level] * (DEFAULT_LEVELS + 1) if _is_count(layers_per_level)
                 else list(layers_per_level))
    if not per_level or not all(_is_count(n) and 1 <= n <= 64 for n in per_level):
        raise DataError("[design] layers_per_level must be a whole number 1..64 or a list of "
                        f"them (one per level), got {layers_per_level!r}")
    if rank is not None and not (_is_count(rank) and 1 <= rank <= 1024):
        raise DataError(f"[design] rank must be a whole number 1..1024, got {rank!r}")
    sizes = [s for a, s in enumerate(layout.data.shape[1:]) if a != layout.slice_axis]
    deepest = max(0, min(len(per_level) - 1, int(math.log2(max(min(sizes), 1) / 8))))
    down = [Segment(level, per_level[level], rank or 8 * 2**level)
            for level in range(deepest + 1)]
    segments = down + down[-2::-1]
    sized = [] if layers_per_level == 2 else [
        f"{layers_per_level} layers per level" if _is_count(layers_per_level)
        else f"layers {'/'.join(map(str, per_level))} per level"]
    sized += [f"rank {rank}"] if rank is not None else []
    name = f"fhn default ({', '.join([f'{dims}D', *sized])})"
    return NetworkDesign(channels, dims, tuple(segments), name=name)


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
