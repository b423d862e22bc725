"""Diagnostics of section 2.1: energy growth, stability and invertibility error of g."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .network import HyperbolicNetwork


@dataclass(frozen=True)
class Diagnostics:
    energy_growth: float        # ||g(X)|| / ||X||
    stability: float            # ||g(X) - g(X + dX)|| / ||dX||
    invertibility_error: float  # ||g^-1(g(X)) - X|| / ||X||

    def __str__(self) -> str:
        return (
            f"energy growth {self.energy_growth:.4g}, stability {self.stability:.4g}, "
            f"invertibility error {self.invertibility_error:.3g}"
        )


@torch.no_grad()
def diagnostics(
    net: HyperbolicNetwork, x: torch.Tensor, *, perturbation: float = 1e-3, seed: int = 0
) -> Diagnostics:
    """Measure g on ``x``: a random perturbation of relative size ``perturbation`` probes
    stability; the inverse from the final pair probes invertibility."""
    y_prev, y = net.forward_pair(x)
    recovered = net.inverse(y_prev, y)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    noise = torch.randn(x.shape, generator=gen, dtype=x.dtype).to(x.device)
    dx = noise * (perturbation * x.norm() / noise.norm())
    y_perturbed = net(x + dx)
    return Diagnostics(
        energy_growth=float(y.norm() / x.norm()),
        stability=float((y - y_perturbed).norm() / dx.norm()),
        invertibility_error=float((recovered - x).norm() / x.norm()),
    )
