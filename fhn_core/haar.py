"""Orthonormal Haar analysis and synthesis: the network's invertible change of resolution.

One analysis step (the operator W of the layer, DESIGN.md step 1) halves every spatial
axis and multiplies the channels by 2^d (4 in 2D, 8 in 3D). It is the separable
one-level Haar wavelet transform: along each spatial axis, neighbouring samples
(e, o) become (e + o) / sqrt(2) (low pass) and (e - o) / sqrt(2) (high pass). Because
that 2 x 2 butterfly is orthogonal and symmetric, W^T W = I, norms are preserved and
synthesis (W^T) applies the same butterflies and undoes the reshuffle.

Both transforms are written for memory, since the invertible backward applies them to
four states in a row: the first butterfly writes straight into the output's sub-band
layout and the others work in place there, so a transform needs its output plus half of
it. They are autograd Functions whose gradient is the other transform (W^T is the
adjoint of W).

Sub-band channel order (fixed; the loss and label embeddings rely on it).
Output channel ``s * C + c`` holds sub-band ``s`` of input channel ``c``, so the first C
channels are the low-pass (LL / LLL) approximation of all input channels. The
sub-band index ``s`` is a binary number with one bit per spatial axis, the first spatial
axis being the most significant bit, and bit value 0 = low pass, 1 = high pass:

- 2D, axes (H, W):    s = 0 LL, 1 LH, 2 HL, 3 HH   (first letter = axis H)
- 3D, axes (D, H, W): s = 0 LLL, 1 LLH, 2 LHL, 3 LHH, 4 HLL, 5 HLH, 6 HHL, 7 HHH
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .errors import FhnError

_INV_SQRT2 = 1.0 / math.sqrt(2.0)


def _spatial_dims(x: torch.Tensor) -> int:
    d = x.dim() - 2
    if d not in (2, 3):
        raise FhnError(
            f"Haar transform needs a (N, C, H, W) or (N, C, D, H, W) tensor, got shape "
            f"{tuple(x.shape)}; add the batch and channel axes"
        )
    return d


def _paired(x: torch.Tensor) -> torch.Tensor:
    """View (N, C, S1, .., Sd) as (N, C, S1/2, 2, .., Sd/2, 2): axes split in (coarse, pair)."""
    n, c, *sizes = x.shape
    split = [n, c]
    for s in sizes:
        split += [s // 2, 2]
    return x.contiguous().view(split)


def _banded(y: torch.Tensor, d: int) -> torch.Tensor:
    """View (N, 2^d C, S1, .., Sd) with the index layout of :func:`_paired`'s result.

    The sub-band channel s * C + c is split into d bits of s (first axis most significant)
    and c, and each bit is moved next to its spatial axis: (N, C, S1, 2, .., Sd, 2).
    """
    n, cb, *sizes = y.shape
    banded = y.contiguous().view(n, *([2] * d), cb // 2**d, *sizes)
    order = [0, d + 1]
    for i in range(d):
        order += [d + 2 + i, 1 + i]
    return banded.permute(order)


def _butterflies(src: torch.Tensor, dst: torch.Tensor, d: int) -> None:
    """dst = the orthonormal 2-point Haar butterfly of src along every pair axis.

    ``src`` and ``dst`` are views of the same shape (N, C, S1, 2, .., Sd, 2) over different
    memory. Neighbours (e, o) become ((e + o), (e - o)) / sqrt(2) on each axis. Memory: the
    first axis writes straight into ``dst``, the others work in place in ``dst`` with one
    half-size temporary, so a transform needs its output plus half of it, not the several
    state-sized temporaries of stacking.
    """
    pair_axes = [3 + 2 * i for i in range(d)]
    first, *rest = pair_axes
    even, odd = src.select(first, 0), src.select(first, 1)
    torch.add(even, odd, out=dst.select(first, 0))
    torch.sub(even, odd, out=dst.select(first, 1))
    for axis in rest:
        even, odd = dst.select(axis, 0), dst.select(axis, 1)
        diff = even - odd
        even.add_(odd)
        odd.copy_(diff)
        del diff
    dst.mul_(_INV_SQRT2**d)


def _analysis(x: torch.Tensor) -> torch.Tensor:
    d = x.dim() - 2
    n, c, *sizes = x.shape
    y = x.new_empty(n, (2**d) * c, *(s // 2 for s in sizes))
    _butterflies(_paired(x), _banded(y, d), d)
    return y


def _synthesis(y: torch.Tensor) -> torch.Tensor:
    d = y.dim() - 2
    n, cb, *sizes = y.shape
    x = y.new_empty(n, cb // 2**d, *(2 * s for s in sizes))
    _butterflies(_banded(y, d), _paired(x), d)
    return x


class _Analysis(torch.autograd.Function):
    """W with its gradient: W is orthonormal, so the adjoint W^T is the synthesis."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        return _analysis(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return _Synthesis.apply(grad)


class _Synthesis(torch.autograd.Function):
    """W^T with its gradient W (the adjoint of W^T)."""

    @staticmethod
    def forward(ctx, y: torch.Tensor) -> torch.Tensor:
        return _synthesis(y)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return _Analysis.apply(grad)


def haar_analysis(x: torch.Tensor) -> torch.Tensor:
    """W: one level of orthonormal Haar analysis (coarsen), 2D or 3D.

    (N, C, *S) -> (N, 2^d C, *S/2). Every spatial size must be even.
    """
    _spatial_dims(x)
    sizes = x.shape[2:]
    if any(s % 2 for s in sizes):
        raise FhnError(
            f"Haar analysis needs even spatial sizes, got {tuple(sizes)}; "
            "pad the input with pad_to_multiple() first"
        )
    return _Analysis.apply(x)


def haar_synthesis(y: torch.Tensor) -> torch.Tensor:
    """W^T: one level of orthonormal Haar synthesis (refine), the exact inverse of analysis.

    (N, 2^d C, *S) -> (N, C, *2S).
    """
    d = _spatial_dims(y)
    cb = y.shape[1]
    if cb % (2**d):
        raise FhnError(
            f"Haar synthesis needs a channel count divisible by {2**d}, got {cb}; "
            "refine only states that were coarsened"
        )
    return _Synthesis.apply(y)


def padding_for(sizes: tuple[int, ...], levels: int) -> tuple[int, ...]:
    """How many samples each spatial axis needs at its end to be divisible by 2^levels."""
    m = 2**levels
    return tuple((-s) % m for s in sizes)


def padded_cells(start: int, stop: int, size: int, reflect: bool = True) -> list[int] | range:
    """The data cells behind cells ``start:stop`` of an axis padded at its end.

    Cell ``size + j`` beyond the end is data cell ``size - 2 - j`` (reflection, as
    :func:`pad_to_multiple` pads) or ``size - 1`` (edge replication).
    """
    if stop <= size:
        return range(start, stop)
    beyond = [2 * (size - 1) - c if reflect else size - 1 for c in range(max(start, size), stop)]
    return [*range(start, min(stop, size)), *beyond]


def pad_to_multiple(x: torch.Tensor, levels: int) -> tuple[torch.Tensor, tuple[int, ...]]:
    """Reflect-pad the end of every spatial axis to a multiple of 2^levels.

    Returns the padded tensor and the original spatial sizes, for :func:`crop_to`.
    Reflection (not zeros) keeps the padded border looking like data to the
    convolutions. Falls back to edge replication where an axis is too short to reflect.
    """
    sizes = tuple(x.shape[2:])
    pads = padding_for(sizes, levels)
    if not any(pads):
        return x, sizes
    spec: list[int] = []
    for p in reversed(pads):  # F.pad lists the last axis first
        spec += [0, p]
    fits = all(p < s for p, s in zip(pads, sizes, strict=True))
    mode = "reflect" if fits else "replicate"
    return F.pad(x, spec, mode=mode), sizes


def crop_to(x: torch.Tensor, sizes: tuple[int, ...]) -> torch.Tensor:
    """Undo :func:`pad_to_multiple`: keep the first ``sizes`` samples of each spatial axis."""
    return x[(..., *(slice(0, s) for s in sizes))]
