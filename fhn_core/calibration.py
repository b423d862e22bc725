"""Calibrated posteriors from held-out logits: a temperature and a bias per class.

EM's re-estimate of the scene's class mix (:mod:`fhn_core.priors`) takes the network's
posterior p(k | x) at its word: it is the maximum-likelihood mix only when the posteriors
are calibrated under the training prior. Alexandari, Kundaje & Shrikumar (2020, "Maximum
likelihood with bias-corrected calibration is hard-to-beat at label shift adaptation",
ICML) found EM hard to beat once the logits z are first calibrated on held-out cells by a
temperature T and a bias b per class (BCTS):

    p_cal(k | x) = softmax(z / T + b)_k,

T and b maximising the likelihood of the held-out cells' classes; the calibrated posteriors
then carry the held-out cells' class frequencies as their prior. With a hundred points a
network may separate them all, where the likelihood grows without bound as T shrinks;
standard normal priors on log T and on b (a maximum a posteriori fit) keep the answer
finite and near "no change" when the cells say little.

The held-out cells are the auto recipe's out-of-fold cells (:class:`HeldOut` of each
fold, :func:`fhn_core.auto_recipe.train_fold`): every labelled cell scored once by the fold
network that did not train on it. **Measured, not adopted** (session 26, rules written
before the runs; benchmarks/README.md "EM from calibrated posteriors"): on the western
Taizhou proxies EM from calibrated posteriors was behind plain EM on 10 of the first 12
splits (the fitted T ranged over 0.6-1.8 from 100 points), and on the development salt
survey it found the true salt share (4 %) but put it in the wrong cells (mean IoU 0.744 ->
0.690). Prediction therefore uses no calibration; :func:`fit_calibration` serves the
benchmark that measured it (``benchmarks.taizhou_proxy --method calibrated``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .errors import FhnError
from .metrics import Metrics, evaluate
from .priors import label_prior

MAX_HELD_OUT_CELLS = 20_000   # per validation: plenty for two parameters a class
FIT_ITERATIONS = 100


@dataclass(frozen=True)
class HeldOut:
    """Logits (K, n) of a network at n held-out labelled cells and their classes (n,).

    ``positions``: which of the fold's held-out cells (in their flat order on the label
    grid) these are, after :meth:`thinned`; None: all of them, in that order.
    ``scene_shift``: where the task maps with the scene's class mix, the per-class logit
    shift (K,) to the mix EM estimated from this network's posteriors over the whole scene
    (:func:`fhn_core.priors.prior_shift`), so that the map's score can be taken at these
    cells; None where it keeps the training mix.
    """

    logits: torch.Tensor
    classes: np.ndarray
    positions: np.ndarray | None = None
    scene_shift: torch.Tensor | None = None

    def metrics(self) -> Metrics:
        return evaluate(self.logits.argmax(0).numpy(), self.classes, self.logits.shape[0])

    def thinned(self, most: int = MAX_HELD_OUT_CELLS, seed: int = 0) -> HeldOut:
        """At most ``most`` of the cells, drawn without replacement (a dense mask can hold
        millions; the calibration needs a few thousand)."""
        n = self.classes.size
        if n <= most:
            return self
        keep = np.sort(np.random.default_rng(seed).choice(n, most, replace=False))
        positions = keep if self.positions is None else self.positions[keep]
        return HeldOut(self.logits[:, torch.from_numpy(keep)], self.classes[keep], positions,
                       self.scene_shift)

    @staticmethod
    def pooled(parts: Sequence[HeldOut]) -> HeldOut:
        """One set of the cells of several folds (each scored by its own fold's network;
        their scene shifts differ, so none is kept)."""
        if not parts:
            raise FhnError("no held-out cells to pool: nothing was validated")
        return HeldOut(torch.cat([p.logits for p in parts], dim=1),
                       np.concatenate([p.classes for p in parts]))


@dataclass(frozen=True)
class Calibration:
    """``softmax(z / temperature + bias)`` is calibrated under ``prior`` (the class
    frequencies of the cells it was fitted on)."""

    temperature: float
    bias: tuple[float, ...]
    prior: tuple[float, ...]
    cells: int = 0

    def __post_init__(self) -> None:
        if not (np.isfinite(self.temperature) and self.temperature > 0):
            raise FhnError(f"a calibration temperature must be positive, got {self.temperature}")
        if len(self.bias) != len(self.prior) or not all(p > 0 for p in self.prior):
            raise FhnError(f"a calibration needs one bias and one positive prior share per "
                           f"class, got bias {list(self.bias)} and prior {list(self.prior)}")

    def apply(self, logits: torch.Tensor) -> torch.Tensor:
        """Calibrated logits of (K, *grid) logits."""
        bias = torch.tensor(self.bias, dtype=logits.dtype, device=logits.device)
        return logits / self.temperature + bias.reshape(-1, *([1] * (logits.dim() - 1)))

    def text(self) -> str:
        return (f"temperature {self.temperature:.2f}, bias "
                f"{', '.join(f'{b:+.2f}' for b in self.bias)} ({self.cells} held-out cells)")

    def as_dict(self) -> dict[str, Any]:
        return {"temperature": self.temperature, "bias": list(self.bias),
                "prior": list(self.prior), "cells": self.cells}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Calibration:
        try:
            return cls(float(data["temperature"]), tuple(float(b) for b in data["bias"]),
                       tuple(float(p) for p in data["prior"]), int(data.get("cells", 0)))
        except (KeyError, TypeError, ValueError) as err:
            raise FhnError(f"a calibration needs temperature, bias and prior, got "
                           f"{dict(data)} ({err}); train the model again") from err


def fit_calibration(held: HeldOut, n_classes: int) -> Calibration:
    """BCTS by maximum a posteriori: T and b maximising the held-out cells' likelihood,
    with standard normal priors on log T and on each b_k (module docstring)."""
    classes = np.asarray(held.classes)
    if held.logits.shape != (n_classes, classes.size) or classes.size == 0:
        raise FhnError(f"calibration needs (K={n_classes}, n) held-out logits for n > 0 "
                       f"cells, got {tuple(held.logits.shape)} for {classes.size} cells")
    z = held.logits.detach().double().T           # (n, K)
    y = torch.from_numpy(classes.astype(np.int64))
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(n_classes, dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.LBFGS([log_t, bias], max_iter=FIT_ITERATIONS,
                                  line_search_fn="strong_wolfe")

    def objective() -> torch.Tensor:
        optimiser.zero_grad()
        nll = torch.nn.functional.cross_entropy(z * torch.exp(-log_t) + bias, y,
                                                reduction="sum")
        loss = nll + 0.5 * (log_t ** 2 + (bias ** 2).sum())
        loss.backward()
        return loss

    optimiser.step(objective)
    prior = label_prior(torch.from_numpy(np.bincount(classes, minlength=n_classes)))
    return Calibration(float(torch.exp(log_t.detach())), tuple(float(b) for b in bias.detach()),
                       tuple(float(p) for p in prior), int(classes.size))
