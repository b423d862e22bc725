"""The three properties of the paper's Fig. 3 (section 2.1), for a network on an input X.

- energy growth        ||g(X)|| / ||X||
- stability            ||g(X) - g(X + dX)|| / ||dX||, dX random with ||dX|| = 0.1 ||X||
                       (the paper's perturbation size), mean and standard deviation over
                       several draws of dX
- invertibility error  ||g^-1(g(X)) - X|| / ||X||, g^-1 run from the last pair (eq. 2.9)

Fig. 3 plots them over the time step h for the untrained seismic design (Table 3);
:func:`sweep_h` gives those curves: the same weights, h set on every layer in turn.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch

from .errors import FhnError
from .network import HyperbolicNetwork

PAPER_PERTURBATION = 0.1  # ||dX|| = 0.1 ||X||, as in the paper's Fig. 3


@dataclass(frozen=True)
class Diagnostics:
    energy_growth: float        # ||g(X)|| / ||X||
    stability: float            # mean over draws of ||g(X) - g(X + dX)|| / ||dX||
    stability_std: float        # standard deviation of that ratio over the draws
    invertibility_error: float  # ||g^-1(g(X)) - X|| / ||X||
    draws: int = 1
    perturbation: float = PAPER_PERTURBATION

    def __str__(self) -> str:
        return (
            f"energy growth {self.energy_growth:.4g}, stability {self.stability:.4g} "
            f"+- {self.stability_std:.2g} ({self.draws} draws, ||dX|| = "
            f"{self.perturbation:g} ||X||), invertibility error {self.invertibility_error:.3g}"
        )

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Diagnostics:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


@torch.no_grad()
def diagnostics(
    net: HyperbolicNetwork,
    x: torch.Tensor,
    *,
    perturbation: float = PAPER_PERTURBATION,
    draws: int = 5,
    seed: int = 0,
) -> Diagnostics:
    """Measure g on ``x`` (one forward, one inverse, ``draws`` perturbed forwards)."""
    if draws < 1:
        raise FhnError(f"draws must be at least 1, got {draws}")
    if not perturbation > 0:
        raise FhnError(f"perturbation must be positive, got {perturbation}")
    scale = float(x.norm())
    if scale == 0:
        raise FhnError("the input is all zeros; the ratios of Fig. 3 need a non-zero X")
    y_prev, y = net.forward_pair(x)
    recovered = net.inverse(y_prev, y)
    inverse_error = float((recovered - x).norm()) / scale
    del recovered, y_prev
    gen = torch.Generator(device="cpu").manual_seed(seed)
    ratios = []
    for _ in range(draws):
        noise = torch.randn(x.shape, generator=gen, dtype=x.dtype).to(x.device)
        dx = noise.mul_(perturbation * scale / float(noise.norm()))
        ratios.append(float((y - net(x + dx)).norm()) / float(dx.norm()))
    mean = sum(ratios) / draws
    std = math.sqrt(sum((r - mean) ** 2 for r in ratios) / draws)
    return Diagnostics(float(y.norm()) / scale, mean, std, inverse_error, draws, perturbation)


def sweep_h(
    net: HyperbolicNetwork,
    x: torch.Tensor,
    hs: Sequence[float],
    *,
    perturbation: float = PAPER_PERTURBATION,
    draws: int = 5,
    seed: int = 0,
) -> list[tuple[float, Diagnostics]]:
    """Fig. 3's curves: the diagnostics of ``net``'s weights with every layer's h set to each
    value of ``hs`` in turn (the network's own h is put back afterwards)."""
    own = [layer.h for layer in net.layers]
    out = []
    try:
        for h in hs:
            if not h > 0:
                raise FhnError(f"h values must be positive, got {h}")
            for layer in net.layers:
                layer.h = float(h)
            out.append((float(h), diagnostics(net, x, perturbation=perturbation, draws=draws,
                                              seed=seed)))
    finally:
        for layer, h in zip(net.layers, own, strict=True):
            layer.h = h
    return out


def central_window(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """The centred window of ``size`` of a (N, C, *S) tensor (the whole axis where larger)."""
    index = [slice(None), slice(None)]
    for s, full in zip(size, x.shape[2:], strict=True):
        start = max(0, (full - s) // 2)
        index.append(slice(start, start + min(s, full)))
    return x[tuple(index)]


def trained_diagnostics(
    net: HyperbolicNetwork, x: torch.Tensor, window: Sequence[int], *, draws: int = 3
) -> Diagnostics | None:
    """Fig. 3's properties of a trained network on the centred training-sized window of its
    (padded, standardised) training input: what a run records about the network it made.
    The window keeps the cost to a few training steps' worth of forwards. None where they
    cannot be measured: the window holds NaN/inf (a run stopped for that) or is all zeros.
    """
    patch = central_window(x, window).to(next(net.parameters()).device)
    if not torch.isfinite(patch).all() or not patch.any():
        return None
    return diagnostics(net, patch, draws=draws)
