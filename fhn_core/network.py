"""HyperbolicNetwork: the fully invertible network g built from a NetworkDesign.

g maps X to the output state Y_n through the leapfrog recursion (eq. 2.6) started from
Y_1 = Y_2 = X, with Haar changes of resolution between segments. The output has as many
elements as X; its shape is the one the final level implies. g^-1 needs the last PAIR
(Y_{n-1}, Y_n), not Y_n alone (eq. 2.9).

How gradients are computed is a separate, switchable mechanism (``gradient_mode``):

- ``"invertible"`` (default): states rebuilt backwards, memory constant in depth
  (:mod:`fhn_core.reversible`);
- ``"autograd"``: plain autograd, every state stored (memory grows with depth);
- ``"checkpoint"``: ``torch.utils.checkpoint`` per layer, the usual PyTorch alternative.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from .design import NetworkDesign
from .errors import FhnError
from .layers import HyperbolicLayer, State
from .reversible import ReconstructionMonitor, reversible_forward, run_layers

GradientMode = Literal["invertible", "autograd", "checkpoint"]
GRADIENT_MODES: tuple[str, ...] = ("invertible", "autograd", "checkpoint")


def as_state(t: torch.Tensor) -> torch.Tensor:
    """States stay in float32 (or float64) even under autocast: reversal error grows otherwise."""
    return t if t.dtype in (torch.float32, torch.float64) else t.float()


class HyperbolicNetwork(nn.Module):
    """The fully invertible hyperbolic network of a :class:`NetworkDesign`."""

    def __init__(self, design: NetworkDesign, *, gradient_mode: GradientMode = "invertible"):
        super().__init__()
        self.design = design
        self.gradient_mode = gradient_mode
        # The drift guard: what the last constant-memory backward measured (reversible.py);
        # None switches it off (benchmarks/drift_guard.py times it both ways).
        self.reconstruction: ReconstructionMonitor | None = ReconstructionMonitor()
        self.layers = nn.ModuleList(
            HyperbolicLayer(
                spec.channels, spec.rank, design.spatial_dims, design.kernel_size, design.h,
                spec.change,
            )
            for spec in design.layer_specs()
        )

    @property
    def gradient_mode(self) -> str:
        return self._gradient_mode

    @gradient_mode.setter
    def gradient_mode(self, mode: str) -> None:
        if mode not in GRADIENT_MODES:
            raise FhnError(f"gradient_mode must be one of {GRADIENT_MODES}, got {mode!r}")
        self._gradient_mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Y_n = g(X): the output state."""
        return self.forward_pair(x)[1]

    def forward_pair(self, x: torch.Tensor) -> State:
        """The last pair of states (Y_{n-1}, Y_n); pass it to :meth:`inverse` to recover X."""
        x = self._checked(x)
        if self.gradient_mode == "invertible" and torch.is_grad_enabled():
            return reversible_forward(list(self.layers), x, self.reconstruction)
        if self.gradient_mode == "checkpoint" and torch.is_grad_enabled():
            pair = (x, x)
            for layer in self.layers:
                pair = checkpoint(layer, *pair, use_reentrant=False)
            return pair
        return run_layers(self.layers, x)

    @torch.no_grad()
    def inverse(self, y_prev: torch.Tensor, y_curr: torch.Tensor) -> torch.Tensor:
        """X = g^-1(Y_{n-1}, Y_n), layer by layer through eq. 2.9."""
        pair = (as_state(y_prev), as_state(y_curr))
        for layer in reversed(self.layers):
            pair = layer.inverse(*pair)
        return pair[1]

    def _checked(self, x: torch.Tensor) -> torch.Tensor:
        """Validate the input against the design; states are kept in float32 (or float64)."""
        d = self.design
        if x.dim() != d.spatial_dims + 2:
            raise FhnError(
                f"the design is {d.spatial_dims}D, so the input must be (N, C"
                f"{', D' if d.spatial_dims == 3 else ''}, H, W); got shape {tuple(x.shape)}"
            )
        if x.shape[1] != d.in_channels:
            raise FhnError(
                f"the design expects {d.in_channels} input channel(s), the input has "
                f"{x.shape[1]}; change in_channels or expand the input's channels"
            )
        m = 2**d.max_level
        if any(s % m for s in x.shape[2:]):
            raise FhnError(
                f"spatial sizes {tuple(x.shape[2:])} are not divisible by 2^{d.max_level} = {m} "
                f"(the design coarsens {d.max_level} time(s)); pad with "
                "fhn_core.haar.pad_to_multiple(x, levels) and crop the output back"
            )
        if not torch.isfinite(x).all():
            raise FhnError(
                "the input contains NaN or inf values; fill or mask them (e.g. nodata) "
                "before training or prediction"
            )
        return as_state(x)

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
