"""Random training sub-volumes that contain labels, with horizontal augmentation.

As in the paper's examples, each draw is a window (the whole volume when ``size`` is
None) placed so that it contains a labelled position, then randomly flipped and
transposed along the horizontal axes. Fixed axes (the vertical/time axis, a spectral
or time axis that carries the label slice) are never flipped or transposed: geology is
not symmetric under turning the section upside down.

The volume may also be read window by window (:class:`fhn_core.task.StreamedInput`) and
the labels listed cell by cell (:class:`fhn_core.sparse_labels.SparseLabels`): the draws
are the same, only each window is read when drawn.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from .errors import FhnError
from .losses import UNLABELLED
from .sparse_labels import SparseLabels


def free_axes(
    n_axes: int, fixed_axes: Iterable[int] = (), slice_axis: int | None = None
) -> list[int]:
    """The spatial axes (0-based) that may be flipped or transposed, in order.

    Every axis but the fixed ones (the vertical/time axis) and the slice axis that carries
    the label map (eq. 3.20). Where two or more are free, the first two are the pair that
    may be transposed (when their sizes are equal). Training augmentation and test-time
    averaging both ask this function, so they use the same symmetries.
    """
    fixed = set(fixed_axes) | ({slice_axis} if slice_axis is not None else set())
    return [a for a in range(n_axes) if a not in fixed]


class SubvolumeSampler:
    """Draws (x, labels) windows from padded tensors x (1, C, *S) and labels (1, *S_label).

    ``x`` may be anything sliced like that tensor (a StreamedInput), ``labels`` the
    SparseLabels of the padded label grid.

    Args:
        size: window size per spatial axis (None = the whole axis); multiples of ``multiple``.
        fixed_axes: spatial axes (0-based) never flipped or transposed.
        slice_axis: the spatial axis absent from the label grid (eq. 3.20), if any; it is
            always taken whole.
        generator: the source of randomness (its state is checkpointed for exact resume).
    """

    def __init__(
        self,
        x: torch.Tensor,
        labels: torch.Tensor | SparseLabels,
        *,
        size: tuple[int | None, ...] | None = None,
        fixed_axes: tuple[int, ...] = (),
        slice_axis: int | None = None,
        augment: bool = True,
        multiple: int = 1,
        generator: torch.Generator | None = None,
    ) -> None:
        self.x, self.labels, self.augment = x, labels, augment
        self.spatial = tuple(x.shape[2:])
        self.slice_axis = slice_axis
        self.fixed = set(fixed_axes) | ({slice_axis} if slice_axis is not None else set())
        self.generator = generator or torch.Generator().manual_seed(0)
        self.size = self._window(size, multiple)
        self.labelled = (torch.from_numpy(labels.cells) if isinstance(labels, SparseLabels)
                         else (labels[0] != UNLABELLED).nonzero())
        if len(self.labelled) == 0:
            raise FhnError("there are no training labels to sample sub-volumes around")

    def _window(self, size, multiple: int) -> tuple[int, ...]:
        if size is None:
            return self.spatial
        if len(size) != len(self.spatial):
            raise FhnError(f"sub-volume size {size} needs one entry per axis of {self.spatial}")
        out = []
        for axis, (s, full) in enumerate(zip(size, self.spatial, strict=True)):
            s = full if s is None or axis == self.slice_axis else min(int(s), full)
            if s % multiple:
                raise FhnError(
                    f"sub-volume size {s} on axis {axis} is not a multiple of {multiple} "
                    "(2^levels of the design); round it"
                )
            out.append(s)
        return tuple(out)

    def _label_axes(self) -> list[int | None]:
        """For each data spatial axis, the matching label axis (None for the slice axis)."""
        axes, k = [], 0
        for axis in range(len(self.spatial)):
            if axis == self.slice_axis:
                axes.append(None)
            else:
                axes.append(k)
                k += 1
        return axes

    def _randint(self, high: int) -> int:
        return int(torch.randint(high, (1,), generator=self.generator))

    def draw(self) -> tuple[torch.Tensor, torch.Tensor]:
        """One window containing a labelled position, randomly flipped/transposed."""
        centre = self.labelled[self._randint(len(self.labelled))]
        label_axes = self._label_axes()
        starts = []
        for axis, (s, full) in enumerate(zip(self.size, self.spatial, strict=True)):
            la = label_axes[axis]
            if la is None or s == full:
                starts.append(0)
                continue
            c = int(centre[la])
            lo, hi = max(0, c - s + 1), min(c, full - s)
            starts.append(lo + self._randint(hi - lo + 1))
        window = tuple(slice(a, a + s) for a, s in zip(starts, self.size, strict=True))
        x = self.x[(slice(None), slice(None), *window)]
        lab_window = tuple(w for w, la in zip(window, label_axes, strict=True) if la is not None)
        if isinstance(self.labels, SparseLabels):
            y = torch.from_numpy(self.labels.window(lab_window)).unsqueeze(0)
        else:
            y = self.labels[(slice(None), *lab_window)]
        return self._augmented(x, y) if self.augment else (x, y)

    def _augmented(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        label_axes = self._label_axes()
        free = free_axes(len(self.spatial), self.fixed)
        for axis in free:
            if self._randint(2):
                x = x.flip(2 + axis)
                y = y.flip(1 + label_axes[axis])
        if len(free) >= 2 and self._randint(2):
            a, b = free[0], free[1]
            if x.shape[2 + a] == x.shape[2 + b]:
                x = x.transpose(2 + a, 2 + b)
                y = y.transpose(1 + label_axes[a], 1 + label_axes[b])
        return x.contiguous(), y.contiguous()
