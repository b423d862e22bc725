"""The symmetric block-low-rank hyperbolic layer: one leapfrog step of the telegraph equation.

A layer maps a pair of states (Y_prev, Y_curr) to (Y_curr, Y_next):

1. an optional change of resolution applied to BOTH incoming states,
   W = Haar analysis (coarsen) or W^T = Haar synthesis (refine);
2. Y_next = 2 Y_curr - Y_prev - h^2 K^T relu(K Y_curr + b)                      (eq. 2.6)

K is a convolution from C channels to r channels, the block-low-rank layer of eq. 3.17:
its kernel has r x C x k^d entries instead of C x C x k^d, so the rank r, not the channel
count, sets the cost. K^T is the exact adjoint: for stride 1 and "same" padding, the
transposed convolution equals a convolution with the kernel's channel axes swapped and
its taps flipped, which CPU backends run several times faster at high channel counts.
The symmetric form K^T relu(K .) makes the step conservative (stable), and the
step can be run backwards without inverting relu (eq. 2.9):

    Y_prev = 2 Y_curr - Y_next - h^2 K^T relu(K Y_curr + b), then W^T (or W) on both states.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .haar import haar_analysis, haar_synthesis

State = tuple[torch.Tensor, torch.Tensor]

_CONV = {2: F.conv2d, 3: F.conv3d}


def cpu_axis_order(x: torch.Tensor) -> tuple[int, ...] | None:
    """A permutation putting a 3D CPU tensor's largest spatial axes first; None to keep it.

    Why: PyTorch runs a batch-1 3D convolution on the CPU with oneDNN only when
    C x D x H > 20480, and otherwise on an im2col path that is 5-10x slower and allocates
    a column buffer of k^3 states. A 64 x 64 x 128 training patch of a 5-channel volume
    falls below that line, the same patch laid out as 128 x 64 x 64 does not. A
    convolution commutes with permuting the spatial axes of input and kernel together,
    so the result is the same, only computed faster.
    """
    if x.dim() != 5 or x.device.type != "cpu":
        return None
    sizes = x.shape[2:]
    order = sorted(range(3), key=lambda a: -sizes[a])
    return None if order == [0, 1, 2] else (0, 1, *(2 + a for a in order))


def inverse_order(order: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(order.index(i) for i in range(len(order)))


def convolve(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, padding: int
) -> torch.Tensor:
    """A stride-1 convolution of ``x`` (N, C, *S) with ``weight``, in the fastest axis order."""
    conv = _CONV[x.dim() - 2]
    order = cpu_axis_order(x)
    if order is None:
        return conv(x, weight, bias, padding=padding)
    out = conv(x.permute(order), weight.permute(order), bias, padding=padding)
    return out.permute(inverse_order(order))


class HyperbolicLayer(nn.Module):
    """One invertible leapfrog layer with a block-low-rank symmetric kernel (eqs. 2.6, 3.17).

    Args:
        channels: C, the channels of the states AFTER the resolution change.
        rank: r, the block rank (output channels of K); independent of C.
        spatial_dims: 2 or 3.
        kernel_size: odd k.
        h: the time step; h^2 scales the update (default 0.2: the paper does not state h,
            the authors' example scripts use h^2 = 0.2^2).
        change: +1 to coarsen both states first (W), -1 to refine (W^T), 0 for none.
    """

    def __init__(
        self,
        channels: int,
        rank: int,
        spatial_dims: int = 3,
        kernel_size: int = 3,
        h: float = 0.2,
        change: int = 0,
    ) -> None:
        super().__init__()
        self.channels, self.rank, self.spatial_dims = channels, rank, spatial_dims
        self.kernel_size, self.h, self.change = kernel_size, h, change
        self.weight = nn.Parameter(torch.empty(rank, channels, *([kernel_size] * spatial_dims)))
        self.bias = nn.Parameter(torch.zeros(rank))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Glorot-uniform K (fan-in C k^d, fan-out r k^d) and zero bias (DESIGN.md)."""
        receptive = self.kernel_size**self.spatial_dims
        bound = math.sqrt(6.0 / ((self.channels + self.rank) * receptive))
        with torch.no_grad():
            self.weight.uniform_(-bound, bound)
            self.bias.zero_()

    # --- the pieces of eq. 2.6 ----------------------------------------------------
    @property
    def padding(self) -> int:
        """"Same" padding of the odd kernel: every convolution keeps the spatial size."""
        return self.kernel_size // 2

    def adjoint_weight(self) -> torch.Tensor:
        """The kernel of K^T as a convolution: channel axes swapped, taps flipped."""
        return self.weight.transpose(0, 1).flip(tuple(range(2, 2 + self.spatial_dims)))

    def kernel(self, y: torch.Tensor, with_bias: bool = False) -> torch.Tensor:
        """K Y (+ b): the C -> r convolution of eq. 3.17."""
        return convolve(y, self.weight, self.bias if with_bias else None, self.padding)

    def adjoint(self, z: torch.Tensor) -> torch.Tensor:
        """K^T Z: the exact adjoint of :meth:`kernel` (without bias), r -> C channels."""
        return convolve(z, self.adjoint_weight(), None, self.padding)

    def activation(self, y: torch.Tensor) -> torch.Tensor:
        """Z = relu(K Y + b). In place on the convolution's output, which nothing else needs."""
        return torch.relu_(self.kernel(y, with_bias=True))

    def residual(self, y: torch.Tensor) -> torch.Tensor:
        """f(Y) = K^T relu(K Y + b): the only non-linear, parameter-dependent part."""
        return self.adjoint(self.activation(y))

    def combine_(
        self, f: torch.Tensor, y_curr: torch.Tensor, y_other: torch.Tensor
    ) -> torch.Tensor:
        """2 Y_curr - Y_other - h^2 f, written into f's memory (f is used up).

        With Y_other = Y_prev this is Y_next (eq. 2.6); with Y_other = Y_next it is Y_prev
        (eq. 2.9). Reusing f's buffer saves a state-sized tensor per step. Under autocast f
        comes out of the convolution in low precision; the state it becomes must not.
        """
        if f.dtype != y_curr.dtype:
            f = f.to(y_curr.dtype)
        return f.mul_(-(self.h * self.h)).add_(y_curr, alpha=2.0).sub_(y_other)

    def advance(self, y_other: torch.Tensor, y_curr: torch.Tensor) -> torch.Tensor:
        """One leapfrog step at the layer's resolution: Y_next from (Y_prev, Y_curr), eq. 2.6.

        The same formula steps backwards: ``advance(y_next, y_curr)`` is Y_prev (eq. 2.9).
        """
        return self.combine_(self.residual(y_curr), y_curr, y_other)

    def resample(self, y: torch.Tensor) -> torch.Tensor:
        """Apply the layer's change of resolution (W, W^T or identity) to one state."""
        if self.change > 0:
            return haar_analysis(y)
        if self.change < 0:
            return haar_synthesis(y)
        return y

    def unresample(self, y: torch.Tensor) -> torch.Tensor:
        """The inverse of :meth:`resample` (W^T W = I, so the adjoint is the inverse)."""
        if self.change > 0:
            return haar_synthesis(y)
        if self.change < 0:
            return haar_analysis(y)
        return y

    # --- the layer as a map on state pairs ----------------------------------------
    def forward(self, y_prev: torch.Tensor, y_curr: torch.Tensor) -> State:
        """(Y_prev, Y_curr) -> (Y_curr, Y_next), after the change of resolution."""
        y_prev, y_curr = self.resample(y_prev), self.resample(y_curr)
        return y_curr, self.advance(y_prev, y_curr)

    def inverse(self, y_curr: torch.Tensor, y_next: torch.Tensor) -> State:
        """(Y_curr, Y_next) -> (Y_prev, Y_curr): eq. 2.9, exact up to rounding."""
        y_prev = self.advance(y_next, y_curr)
        return self.unresample(y_prev), self.unresample(y_curr)

    def extra_repr(self) -> str:
        change = {1: ", coarsen", -1: ", refine", 0: ""}[self.change]
        return (
            f"channels={self.channels}, rank={self.rank}, {self.spatial_dims}D, "
            f"k={self.kernel_size}, h={self.h}{change}"
        )
