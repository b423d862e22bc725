"""Will a training run fit? The one memory policy of the product (CLI, app, notebooks).

:mod:`fhn_core.memory` gives the paper's Table 1 for one input. A training run holds
more than one step's states, and this module counts what :class:`fhn_core.training.Trainer`
really keeps (float32, GB = 1e9 bytes):

- all the time: the whole input twice (the standardised volume and its padded copy the
  sampler draws from), the padded labels (int64), and the kernels
  ``KERNEL_COPIES`` times: the weights, their gradients, two optimiser moments (Adam; SGD
  keeps one), the copy of the weights cloned at every step to fall back on and the last
  good copy it replaces (one more with weight averaging);
- then the larger of
  - one training step on the sub-volume: ``memory._WORKSPACE_STATES`` input-sized
    tensors (measured, see memory.py), and
  - a pass over the whole volume without gradients, which validation makes every
    ``validate_every`` iterations and the final prediction once: the pair of states, one
    layer's workspace and the input (4 whole-input tensors), plus the class logits summed
    over blocks with their counts, and the probabilities, entropy and class ids made
    from them (2 K + 3 values per cell of the grid).

A *streamed* run (data read chunk by chunk, :mod:`fhn_core.chunked`) holds neither the
input nor a label grid, and validates one block at a time (a training window and the
receptive radius around it, :func:`fhn_core.blocks.context_block`); its
final prediction is a separate streamed step (app.streamed), not part of the run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from .design import NetworkDesign
from .memory import _WORKSPACE_STATES, BYTES_PER_VALUE, GB, MemoryEstimate, estimate_memory

# weights, gradients, 2 Adam moments, the per-step clone, the last-good copy
KERNEL_COPIES = 6
WHOLE_PASS_STATES = 4


def training_window(
    spatial_shape: Sequence[int], patch: Sequence[int | None] | None, levels: int
) -> tuple[int, ...]:
    """The sub-volume one training step sees: the patch (None/0 = whole axis), padded up
    to a multiple of 2^levels as the trainer pads it."""
    m = 2**levels
    patch = list(patch or [])
    window = []
    for a, s in enumerate(spatial_shape):
        p = patch[a] if a < len(patch) else None
        size = int(s) if not p else min(int(p), int(s))
        window.append(-(-size // m) * m)
    return tuple(window)


@dataclass(frozen=True)
class MemoryCheck:
    """What a run holds, next to what the device has free (``available`` None: unknown)."""

    training: MemoryEstimate    # Table 1 on the training window
    prediction: MemoryEstimate  # Table 1 on the whole (padded) input
    n_classes: int
    averaging: bool
    available: float | None
    streamed: bool = False      # data read window by window: no whole input held

    @property
    def kernel_copies(self) -> int:
        return KERNEL_COPIES + int(self.averaging)

    @property
    def held_bytes(self) -> int:
        """Held for the whole run: the input twice, the labels, the kernel copies."""
        kernels = self.kernel_copies * self.training.kernels_blr
        if self.streamed:
            return kernels
        voxels = math.prod(self.prediction.input_shape[2:])
        return 2 * self.prediction.input_bytes + 8 * voxels + kernels

    @property
    def step_bytes(self) -> int:
        """One training step's states and workspace on the sub-volume."""
        return _WORKSPACE_STATES * self.training.input_bytes

    @property
    def prediction_bytes(self) -> int:
        """A whole-volume pass without gradients (validation, the final prediction); a
        streamed run's is one block's."""
        voxels = math.prod(self.prediction.input_shape[2:])
        return (WHOLE_PASS_STATES * self.prediction.input_bytes
                + (2 * self.n_classes + 3) * voxels * BYTES_PER_VALUE)

    @property
    def training_bytes(self) -> int:
        """The peak while training steps run: held + one step."""
        return self.held_bytes + self.step_bytes

    @property
    def needed(self) -> int:
        return self.held_bytes + max(self.step_bytes, self.prediction_bytes)

    @property
    def fits(self) -> bool:
        return self.available is None or self.needed <= self.available

    def summary(self) -> str:
        need = f"about {self.needed / GB:.3f} GB"
        if self.available is None:
            return f"Needs {need}; the free memory of this device is unknown."
        verdict = "fits" if self.fits else "does NOT fit"
        return f"Needs {need}; {self.available / GB:.3f} GB available: {verdict}."

    def breakdown(self) -> str:
        """The parts of :attr:`needed`, one per line (for the CLI and the app)."""
        held = ("held all run (kernels x" if self.streamed else
                "held all run (input x2, labels, kernels x") + f"{self.kernel_copies})"
        whole = ("validation pass on one block" if self.streamed else
                 "whole-volume pass (validation, prediction)")
        return "\n".join([
            f"{held:<48}{self.held_bytes / GB:>10.3f} GB",
            f"{'one training step on ' + 'x'.join(map(str, self.training.input_shape)):<48}"
            f"{self.step_bytes / GB:>10.3f} GB",
            f"{whole:<48}{self.prediction_bytes / GB:>10.3f} GB",
            f"{'needed: held + the larger of the two':<48}{self.needed / GB:>10.3f} GB",
        ])


def check_memory(
    design: NetworkDesign,
    spatial_shape: Sequence[int],
    patch: Sequence[int | None] | None,
    available: float | None,
    *,
    n_classes: int = 2,
    averaging: bool = False,
    streamed: bool = False,
) -> MemoryCheck:
    """What a run of ``design`` on data of ``spatial_shape`` holds, against ``available``
    (``streamed``: data read window by window, validated block by block)."""
    window = training_window(spatial_shape, patch, design.max_level)
    full = training_window(spatial_shape, None, design.max_level)
    if streamed:  # validation predicts blocks of a window and its context (training.py)
        from .blocks import context_block

        full = context_block(window, design, full)
    return MemoryCheck(
        training=estimate_memory(design, (1, design.in_channels, *window)),
        prediction=estimate_memory(design, (1, design.in_channels, *full)),
        n_classes=int(n_classes), averaging=bool(averaging), available=available,
        streamed=bool(streamed),
    )
