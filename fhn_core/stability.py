"""When the leapfrog network can be trusted: the bound on h, and the drift of its backward.

Stability bound (checked before training). Linearised around a state, one layer of
eq. 2.6 is Y_{j+1} = 2 Y_j - Y_{j-1} - h^2 A Y_j with A = K^T D K, D the relu mask (0 or 1).
The leapfrog scheme is stable for a fixed A exactly when h^2 lambda_max(A) <= 4, and
lambda_max(A) <= lambda_max(K^T K) = ||K||_2^2, so each layer needs

    h <= 2 / ||K||_2,

||K||_2 being the operator norm of the convolution, computed per layer from its Fourier
symbol (:func:`kernel_lambda_max`; cheap at any channel count). Within the bound every
frozen, linearised step is stable (lambda_max(A) <= lambda_max(K^T K)); beyond it the
relu mask may still spare a layer, but nothing guarantees it, hence a warning, not a
refusal. Nor does the bound make the whole network safe: the layers differ and D changes
from step to step, so rounding errors can grow below it too (measured, 130 layers,
float32: h^2 lambda_max = 2.1 already rebuilds X
with an error of order 1). The drift guard below catches those cases as they happen.

Drift guard (after each backward). The constant-memory backward records how well it
rebuilt the input (:class:`fhn_core.reversible.ReconstructionMonitor`);
:func:`drift_problem` turns a flagged backward into the one-line message the trainer stops
with: the cause and the fixes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .design import NetworkDesign
from .layers import HyperbolicLayer
from .network import HyperbolicNetwork

LEAPFROG_LIMIT = 4.0  # h^2 lambda_max(K^T K) must stay at or below this


@dataclass(frozen=True)
class StabilityCheck:
    """The worst layer's h^2 lambda_max(K^T K) against the leapfrog limit 4."""

    h: float
    worst_layer: int
    worst_level: int
    lambda_max: float   # lambda_max(K^T K) of the worst layer
    layers: int

    @property
    def ratio(self) -> float:
        """h^2 lambda_max / 4: above 1 the scheme is unstable."""
        return self.h * self.h * self.lambda_max / LEAPFROG_LIMIT

    @property
    def h_max(self) -> float:
        """The largest h the bound allows for these weights."""
        return 2.0 / math.sqrt(self.lambda_max) if self.lambda_max > 0 else math.inf

    @property
    def stable(self) -> bool:
        return self.ratio <= 1.0

    def summary(self) -> str:
        return (f"h^2 lambda_max(K^T K) = {self.ratio * LEAPFROG_LIMIT:.3g} (limit 4) at layer "
                f"{self.worst_layer} (level {self.worst_level}); h = {self.h:g}, the bound "
                f"allows h <= {self.h_max:.3g}")

    def warning(self) -> str | None:
        """A one-line warning when the bound is broken, else None."""
        if self.stable:
            return None
        return (f"h = {self.h:g} breaks the leapfrog stability bound: {self.summary()}; the "
                "states and the rebuilt gradients will blow up. Use h <= "
                f"{self.h_max:.3g}, or fewer layers per level")


@torch.no_grad()
def kernel_lambda_max(layer: HyperbolicLayer, *, frequencies: int | None = None) -> float:
    """lambda_max(K^T K) of one layer's convolution, from its Fourier symbol.

    A stride-1 convolution is diagonalised by the Fourier transform: at frequency w it
    multiplies by the r x C matrix K^(w), so ||K||_2^2 = max_w lambda_max(K^(w) K^(w)^H),
    an r x r (or C x C) eigenvalue problem per frequency. The maximum is taken over
    ``frequencies`` per axis (default 8 in 2D; in 3D 6, or 4 from 1024 channels on, where
    the symbol is flatter and the work larger); sampled, it may fall short of the true peak
    by a few per cent (measured against 16 per axis, Glorot-initialised: 7 % for a
    4-channel 3D layer, 1-2 % at 96 and 768 channels, 1.1 % at 6144 channels with 4).
    """
    w = layer.weight.detach().float()
    d = layer.spatial_dims
    m = frequencies or (8 if d == 2 else 6 if layer.channels < 1024 else 4)
    dims = tuple(range(2, 2 + d))
    rank, channels = w.shape[:2]
    if rank > channels:  # the smaller Gram matrix has the same largest eigenvalue
        w = w.transpose(0, 1)
        rank, channels = channels, rank
    gram = None
    for start in range(0, channels, 1024):  # bounded memory at thousands of channels
        k = torch.fft.fftn(w[:, start:start + 1024], s=(m,) * d, dim=dims).reshape(rank, -1, m**d)
        part = torch.einsum("rcf,scf->frs", k, k.conj())
        gram = part if gram is None else gram + part
    return float(torch.linalg.eigvalsh(gram).max())


def check_stability(net: HyperbolicNetwork) -> StabilityCheck:
    """The leapfrog bound h <= 2 / ||K||_2 for every layer of ``net`` (its current weights)."""
    values = [kernel_lambda_max(layer) for layer in net.layers]
    worst = max(range(len(values)), key=values.__getitem__)
    levels = [spec.level for spec in net.design.layer_specs()]
    return StabilityCheck(net.design.h, worst, levels[worst], values[worst], len(values))


def drift_problem(net: HyperbolicNetwork) -> str | None:
    """The cause and fixes when the last constant-memory backward rebuilt X badly, else None."""
    monitor = net.reconstruction
    if monitor is None or not monitor.flagged:
        return None
    design = net.design
    most = max(s.layers for s in design.segments)
    return (
        f"the constant-memory backward rebuilt the input with a relative error of "
        f"{monitor.error:.3g} (tolerance {monitor.tolerance:g}), so its gradients are wrong "
        f"(float32 rounding grows through {design.n_layers} layers with weights this large). "
        f"Fixes: a smaller h (now {design.h:g}), fewer layers per level (now up to {most}), "
        "gradient_mode = \"checkpoint\" for this run (exact gradients, more memory), or "
        "float64 states"
    )


def initial_stability(design: NetworkDesign, *, seed: int = 0) -> StabilityCheck:
    """The bound for ``design`` with the weights training starts from (``seed``'s draw)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = HyperbolicNetwork(design)
    return check_stability(net)
