"""Averaged weights: an exponential moving average of the parameters beside training.

Stochastic steps on a few sparse labels leave the last iterate noisy: the score of the
final weights swings by a few points of IoU from one iteration to the next. The
exponentially weighted average of the iterates (Polyak averaging)

    m_t = beta m_{t-1} + (1 - beta) theta_t,   m_0 = 0,   theta_avg_t = m_t / (1 - beta^t)

smooths that noise; the division removes the bias towards m_0 = 0 (as Adam does for its
moments), so early averages are a proper weighted mean of the iterates seen so far.

Averaging is kept apart from the network and the optimiser: the optimiser steps the live
weights as always, and any weights define an invertible network (eq. 2.9 holds for every
K and b), so the averaged weights are a valid model for validation and prediction.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from .errors import FhnError


class WeightAverage:
    """Bias-corrected exponential moving average of a module's parameters.

    Args:
        module: the network whose parameters are averaged (its parameter order is kept).
        decay: beta in [0, 1); the average spans about 1 / (1 - beta) iterations.
    """

    def __init__(self, module: nn.Module, decay: float) -> None:
        if not 0 <= decay < 1:
            raise FhnError(f"the weight-average decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.updates = 0
        self._sums = [torch.zeros_like(p, requires_grad=False) for p in module.parameters()]

    @torch.no_grad()
    def update(self, module: nn.Module) -> None:
        """m_t = beta m_{t-1} + (1 - beta) theta_t, after an optimiser step."""
        for m, p in zip(self._sums, module.parameters(), strict=True):
            m.mul_(self.decay).add_(p.detach(), alpha=1 - self.decay)
        self.updates += 1

    def averaged(self) -> list[torch.Tensor]:
        """theta_avg_t = m_t / (1 - beta^t), one tensor per parameter."""
        if self.updates == 0:
            raise FhnError("no weights have been averaged yet (train at least one iteration)")
        correction = 1 - self.decay**self.updates
        return [m / correction for m in self._sums]

    @contextmanager
    def applied(self, module: nn.Module) -> Iterator[nn.Module]:
        """Run ``module`` with the averaged weights inside the block, the live ones after."""
        live = [p.detach().clone() for p in module.parameters()]
        copy_into(module, self.averaged())
        try:
            yield module
        finally:
            copy_into(module, live)

    # --- checkpoints ------------------------------------------------------------------
    def state_tensors(self) -> dict[str, torch.Tensor]:
        """The running sums as named tensors (for a safetensors checkpoint)."""
        return {f"average.{i}": m.detach().cpu().contiguous() for i, m in enumerate(self._sums)}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor], updates: int) -> None:
        """Restore the sums written by :meth:`state_tensors` and the update count."""
        for i, m in enumerate(self._sums):
            key = f"average.{i}"
            if key not in tensors:
                raise FhnError(f"the checkpoint has no {key}: it was saved without averaging")
            m.copy_(tensors[key])
        self.updates = int(updates)


@torch.no_grad()
def copy_into(module: nn.Module, weights: list[torch.Tensor]) -> None:
    """Overwrite the module's parameters, in order, with ``weights``."""
    for p, w in zip(module.parameters(), weights, strict=True):
        p.copy_(w)
