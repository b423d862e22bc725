"""Memory estimate of a design for an input shape (the paper's Table 1), before training.

Counted in float32 (4 bytes), GB = 1e9 bytes:

- states, invertible network: 3 x the input tensor (the last pair plus one layer's
  rebuilt state; Haar keeps every state the input's size);
- states, non-invertible equivalent: number of layers x the input tensor;
- kernels with BLR: sum over layers of r_l x C_l x k^d (eq. 3.17);
- kernels without BLR: sum over layers of C_l x C_l x k^d (a full C -> C convolution).

The estimate is a pure function of the design and the input shape, so the app and the
command line can refuse a design that cannot fit before anything is allocated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .design import NetworkDesign
from .errors import FhnError

BYTES_PER_VALUE = 4
GB = 1e9
# Training holds, per kernel value, the value, its gradient and two Adam moments.
_OPTIMISER_COPIES = 4
# Peak of one invertible training step, in input-sized tensors. Measured (CPU, oneDNN
# convolutions, benchmarks.largest_input and tests/fhn_core/test_memory.py): the step grows
# by 8.0-8.4 states beyond the input: the pair and its two gradients, autograd's gradient of
# Y_n, the relu output (a whole state where r = C) and one convolution's output plus its
# layout copy. Add the input itself and a margin for the labels and the allocator.
_WORKSPACE_STATES = 10


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes of states and kernels for one design and input shape (float32)."""

    input_shape: tuple[int, ...]
    n_layers: int
    input_bytes: int
    states_invertible: int
    states_plain: int
    kernels_blr: int
    kernels_full: int

    @property
    def invertible_blr(self) -> int:
        """This product: invertible states + BLR kernels."""
        return self.states_invertible + self.kernels_blr

    @property
    def invertible_full(self) -> int:
        """Invertible, but full C x C kernels (no BLR)."""
        return self.states_invertible + self.kernels_full

    @property
    def plain_full(self) -> int:
        """Non-invertible equivalent with full kernels: the first row of the paper's Table 1."""
        return self.states_plain + self.kernels_full

    @property
    def plain_blr(self) -> int:
        """Non-invertible equivalent (every state stored) with BLR kernels."""
        return self.states_plain + self.kernels_blr

    @property
    def training_peak(self) -> int:
        """A conservative peak for one invertible training step (optimiser and workspace).

        One step only; what a whole run holds (validation, copies of the weights) is
        :mod:`fhn_core.memory_check`, the policy the CLI and the app apply.
        """
        return _WORKSPACE_STATES * self.input_bytes + _OPTIMISER_COPIES * self.kernels_blr

    def fits(self, available_bytes: float) -> bool:
        return self.training_peak <= available_bytes

    def rows(self) -> list[tuple[str, float, float, float]]:
        """(network, states GB, kernels GB, total GB) as in Table 1 (its first row first)."""
        return [
            ("non-invertible, no BLR", self.states_plain / GB, self.kernels_full / GB,
             self.plain_full / GB),
            ("invertible + BLR", self.states_invertible / GB, self.kernels_blr / GB,
             self.invertible_blr / GB),
            ("invertible, no BLR", self.states_invertible / GB, self.kernels_full / GB,
             self.invertible_full / GB),
            ("non-invertible + BLR", self.states_plain / GB, self.kernels_blr / GB,
             self.plain_blr / GB),
        ]

    def table(self) -> str:
        lines = [f"{'network':<22}{'states GB':>12}{'kernels GB':>12}{'total GB':>12}"]
        for name, states, kernels, total in self.rows():
            lines.append(f"{name:<22}{states:>12.3f}{kernels:>12.3f}{total:>12.3f}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


def estimate_memory(design: NetworkDesign, input_shape: tuple[int, ...]) -> MemoryEstimate:
    """Table 1 of the paper for ``design`` on an input of ``input_shape`` = (N, C, *S)."""
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != design.spatial_dims + 2:
        raise FhnError(
            f"input shape {shape} does not match the {design.spatial_dims}D design; give "
            "(N, C, *spatial sizes)"
        )
    if shape[1] != design.in_channels:
        raise FhnError(
            f"input shape has {shape[1]} channel(s) but the design expects {design.in_channels}"
        )
    if min(shape) < 1:
        raise FhnError(f"input shape {shape} has an empty axis")
    input_bytes = math.prod(shape) * BYTES_PER_VALUE
    taps = design.kernel_size**design.spatial_dims
    specs = list(design.layer_specs())
    return MemoryEstimate(
        input_shape=shape,
        n_layers=len(specs),
        input_bytes=input_bytes,
        states_invertible=3 * input_bytes,
        states_plain=len(specs) * input_bytes,
        kernels_blr=sum(s.rank * s.channels * taps for s in specs) * BYTES_PER_VALUE,
        kernels_full=sum(s.channels * s.channels * taps for s in specs) * BYTES_PER_VALUE,
    )
