"""The one place where a loaded volume plus labels become network tensors.

The app, the command line and notebooks all hand numpy arrays to this module:

- ``data`` is channels-first, (C, *S): a seismic cube (1, iline, xline, samples), a raster
  stack (band, y, x), a two-date cube (time, band, y, x) ...; NaN marks nodata;
- ``labels`` hold class ids 0..K-1 and -1 for unlabelled, on the data's spatial grid S,
  or on S without ``slice_axis`` when 3D/4D data map to a 2D label map (eq. 3.20).

Preparation standardises each channel (statistics of finite values, stored with the
model so prediction uses the same), sets nodata to 0 (the channel mean) and removes
labels there, replicates channels up to the design's input channels (section 3.2) and
reflect-pads the spatial axes to a multiple of 2^levels (cropped back after prediction).

Surveys larger than memory come as a chunked array-like instead of numpy (a Dask or
Zarr array, :mod:`fhn_core.chunked`) with :class:`~fhn_core.sparse_labels.SparseLabels`:
the statistics are then gathered block by block, nodata is looked up at the labelled
cells only, and :class:`StreamedInput` stands for the padded network input, reading the
cells of each window the sampler draws.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from . import chunked
from .blending import check_baseline_weight
from .design import NetworkDesign
from .errors import FhnError
from .haar import padded_cells, padding_for
from .losses import UNLABELLED, expand_channels
from .priors import check_class_priors
from .sparse_labels import SparseLabels

Labels = np.ndarray | SparseLabels


@dataclass(frozen=True)
class Normalisation:
    """Per-channel mean and standard deviation of the training data."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def of(cls, data: np.ndarray) -> Normalisation:
        """Statistics of the finite values of each channel (block by block for chunked data)."""
        if chunked.is_chunked(data):
            return cls._of_chunked(data)
        means, stds = [], []
        for channel in data:
            finite = channel[np.isfinite(channel)]
            if finite.size == 0:
                raise FhnError("a data channel has no finite values (all nodata); remove it")
            means.append(float(finite.mean(dtype=np.float64)))
            stds.append(float(finite.std(dtype=np.float64)) or 1.0)
        return cls(tuple(means), tuple(stds))

    @classmethod
    def _of_chunked(cls, data) -> Normalisation:
        moments = chunked.finite_moments(data)
        if any(n == 0 for n, _, _ in moments):
            raise FhnError("a data channel has no finite values (all nodata); remove it")
        return cls(tuple(m for _, m, _ in moments),
                   tuple(float(np.sqrt(m2 / n)) or 1.0 for n, _, m2 in moments))

    def apply(self, data: np.ndarray) -> np.ndarray:
        if data.shape[0] != len(self.mean):
            raise FhnError(
                f"the data has {data.shape[0]} channel(s), the model was trained on "
                f"{len(self.mean)}; load the same kind of data the model was trained on"
            )
        shape = (-1,) + (1,) * (data.ndim - 1)
        out = (data - np.reshape(self.mean, shape)) / np.reshape(self.std, shape)
        return np.nan_to_num(out.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)


@dataclass
class SegmentationTask:
    """What to learn: data, sparse labels, how the class scores sit in the output.

    ``data`` numpy (or a chunked array-like, read window by window); ``labels`` and
    ``val_labels`` a dense grid or :class:`SparseLabels` on the label grid.
    """

    data: np.ndarray
    labels: Labels
    n_classes: int
    val_labels: Labels | None = None
    fixed_axes: tuple[int, ...] = ()  # spatial axes never flipped or transposed
    slice_axis: int | None = None     # spatial axis index of the embedding slice (eq. 3.20)
    slice_index: int | None = None
    vertical_axis: int | None = None  # label-grid axis pointing down (time or depth), if any
    # labels repeated on every slice along this spatial axis; prediction averages the logits
    # over it (the alternative to embedding them at one slice, eq. 3.20)
    averaged_axis: int | None = None
    class_names: list[str] = field(default_factory=list)
    channel_names: list[str] = field(default_factory=list)  # kept with the model
    # "scene" where the labels were drawn per class, not in the scene's proportions, so the
    # class mix prediction assumes is re-estimated on the scene (fhn_core.priors)
    class_priors: str = "training"
    # the weight of the per-cell baseline's probabilities in the prediction's mean with the
    # network's (fhn_core.blending.blended_logits); 0: the network alone
    baseline_weight: float = 0.0

    def __post_init__(self) -> None:
        if not chunked.is_chunked(self.data):
            self.data = np.asarray(self.data, dtype=np.float32)
        if not isinstance(self.labels, SparseLabels):
            self.labels = np.asarray(self.labels)
        if len(self.data.shape) not in (3, 4):
            raise FhnError(
                f"data must be channels-first (C, *spatial) with 2 or 3 spatial axes, got "
                f"shape {self.data.shape}; add a channel axis of length 1 for a single volume"
            )
        check_class_priors(self.class_priors)
        check_baseline_weight(self.baseline_weight)
        grid = self.label_grid
        for name, lab in (("labels", self.labels), ("validation labels", self.val_labels)):
            if lab is None:
                continue
            if tuple(lab.shape) != grid:
                raise FhnError(
                    f"{name} of shape {tuple(lab.shape)} are not on the data's grid {grid}; "
                    "import or paint labels on the same grid as the data"
                )
            ids = lab.classes if isinstance(lab, SparseLabels) else lab
            if not np.issubdtype(ids.dtype, np.integer):
                raise FhnError(f"{name} must be integers (-1 unlabelled), got {ids.dtype}")
            if ids.size and (ids.max() >= self.n_classes or ids.min() < UNLABELLED):
                raise FhnError(
                    f"{name} contain class id {int(ids.max())} or {int(ids.min())}, outside "
                    f"-1..{self.n_classes - 1}; check the class table"
                )
        if self.vertical_axis is not None and not 0 <= self.vertical_axis < len(grid):
            raise FhnError(f"vertical_axis {self.vertical_axis} is not an axis of the label "
                           f"grid {grid}")
        if isinstance(self.labels, SparseLabels) and self.slice_axis is not None:
            raise FhnError("labels listed cell by cell (SparseLabels) need data without an "
                           "embedding slice; give dense labels for this layout")
        if self.n_labelled == 0:
            raise FhnError("there are no labels: paint or import at least one labelled position")
        present = np.unique(labelled_classes(self.labels))
        if present.size < 2:
            only = int(present[0])
            name = self.class_names[only] if only < len(self.class_names) else f"class {only}"
            raise FhnError(
                f"the labels hold one class only ({name}); a network cannot learn to tell "
                "classes apart from one: label at least one more class"
            )

    @property
    def n_labelled(self) -> int:
        """How many cells carry a training label."""
        return int(labelled_classes(self.labels).size)

    @property
    def streamed(self) -> bool:
        """Whether the data are a chunked array-like, read window by window."""
        return chunked.is_chunked(self.data)

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape[1:])

    @property
    def label_grid(self) -> tuple[int, ...]:
        s = self.spatial_shape
        if self.slice_axis is None:
            return s
        if not 0 <= self.slice_axis < len(s):
            raise FhnError(f"slice_axis {self.slice_axis} is not a spatial axis of {s}")
        return s[: self.slice_axis] + s[self.slice_axis + 1 :]

    def valid_labels(self, labels: Labels) -> Labels:
        """Labels with nodata positions (NaN in any channel) removed."""
        if isinstance(labels, SparseLabels):
            if chunked.is_chunked(self.data):
                return labels.subset(chunked.finite_at(self.data, labels.cells))
            return labels.subset(np.isfinite(self.data[(slice(None), *labels.cells.T)])
                                 .all(axis=0))
        nodata = ~np.isfinite(self.data).all(axis=0)
        if self.slice_axis is not None:
            nodata = nodata.any(axis=self.slice_axis)
        return np.where(nodata, UNLABELLED, labels).astype(np.int64)


def labelled_classes(labels: Labels) -> np.ndarray:
    """The class ids of the labelled cells (C order)."""
    if isinstance(labels, SparseLabels):
        return labels.classes
    return labels[labels != UNLABELLED]


def check_design_fits(design: NetworkDesign, task: SegmentationTask) -> None:
    """The design must match the task's spatial dims, channels and number of classes."""
    if design.spatial_dims != len(task.spatial_shape):
        raise FhnError(
            f"the design is {design.spatial_dims}D but the data has {len(task.spatial_shape)} "
            f"spatial axes {task.spatial_shape}; choose a {len(task.spatial_shape)}D design"
        )
    room = design.in_channels - design.zero_channels
    if task.data.shape[0] > room:
        raise FhnError(
            f"the data has {task.data.shape[0]} channels but the design takes {room} "
            f"besides its {design.zero_channels} zero channel(s); set in_channels to at least "
            f"{task.data.shape[0] + design.zero_channels}"
        )
    if task.n_classes > design.out_channels:
        raise FhnError(
            f"{task.n_classes} classes but the design's output has {design.out_channels} "
            f"channels; set in_channels to at least {task.n_classes}, or take the Haar route "
            "(fhn_core.coarse.haar_route: a 2x coarser output with 2^d times the channels)"
        )
    factor = 2**design.out_level
    if factor > 1 and any(s < factor for s in task.label_grid):
        raise FhnError(
            f"the design's output is {factor}x coarser than the data, but the label grid "
            f"{task.label_grid} has an axis shorter than {factor} cells; end the design at a "
            "finer level"
        )


def to_input(data: np.ndarray, norm: Normalisation, design: NetworkDesign) -> torch.Tensor:
    """(C, *S) numpy -> standardised, channel-expanded (1, C', *S) float32 tensor.

    The data are replicated up to ``in_channels - zero_channels`` channels, behind the
    design's zero channels (where the class scores start, see :mod:`fhn_core.design`).
    """
    x = torch.from_numpy(norm.apply(data)).unsqueeze(0)
    x = expand_channels(x, design.in_channels - design.zero_channels, "replicate")
    if not design.zero_channels:
        return x
    zeros = x.new_zeros((1, design.zero_channels, *x.shape[2:]))
    return torch.cat([zeros, x], dim=1)


def pad_labels(labels: Labels, levels: int) -> torch.Tensor | SparseLabels:
    """(*S) labels -> (1, *S_padded) int64 tensor, the padding unlabelled.

    Sparse labels stay sparse, on the padded grid (the sampler reads their windows).
    """
    m = 2**levels
    if isinstance(labels, SparseLabels):
        return labels.on_grid([s + (-s) % m for s in labels.shape])
    pads = [(0, (-s) % m) for s in labels.shape]
    padded = np.pad(labels.astype(np.int64), pads, constant_values=UNLABELLED)
    return torch.from_numpy(padded).unsqueeze(0)


class StreamedInput:
    """The padded network input of chunked data, made window by window.

    Stands for ``pad_to_multiple(to_input(data, norm, design), design.max_level)``:
    ``shape`` is that tensor's, and ``x[:, :, *window]`` (a slice per spatial axis of the
    padded grid) reads only the window's cells from the data, reflected beyond the end
    as the padding reflects them, and standardises and expands them as :func:`to_input`
    does, so a window equals the same window of the in-memory tensor.
    """

    def __init__(self, data, norm: Normalisation, design: NetworkDesign) -> None:
        self.data, self.norm, self.design = data, norm, design
        self.sizes = tuple(int(n) for n in data.shape[1:])
        pads = padding_for(self.sizes, design.max_level)
        self.reflect = all(p < s for p, s in zip(pads, self.sizes, strict=True))
        padded = tuple(s + p for s, p in zip(self.sizes, pads, strict=True))
        self.shape = torch.Size((1, design.in_channels, *padded))

    def __getitem__(self, index: tuple[slice, ...]) -> torch.Tensor:
        if len(index) != 2 + len(self.sizes) or any(i != slice(None) for i in index[:2]):
            raise FhnError("a StreamedInput is read as x[:, :, *one slice per spatial axis]")
        cells = [np.asarray(padded_cells(*w.indices(p)[:2], s, self.reflect))
                 for w, p, s in zip(index[2:], self.shape[2:], self.sizes, strict=True)]
        box = tuple(slice(int(c.min()), int(c.max()) + 1) for c in cells)
        raw = chunked.read(self.data, (slice(None), *box))
        raw = raw[np.ix_(range(raw.shape[0]), *(c - b.start for c, b in zip(cells, box,
                                                                            strict=True)))]
        return to_input(raw, self.norm, self.design)
