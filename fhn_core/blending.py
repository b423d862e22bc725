"""The network and the per-cell baseline together: the weighted mean of their probabilities.

Two unlike models trained on the same labels err in different places: the network, which
sees each cell's neighbourhood, paints smooth bodies but can carry a wrong class far along
a continuous reflector; the per-cell forest (:mod:`fhn_core.baseline`) sees each cell
alone, is noisy, but keeps a cell's own evidence. Averaging the class probabilities of
unlike members is the plainest combination of classifiers (Kittler, Hatef, Duin & Matas
1998, *On combining classifiers*, IEEE TPAMI 20, the mean rule; Breiman 1996 on why
averaging helps when the members' errors differ).

The prediction decides from the blended probabilities

    p(c | x) = (1 - w) softmax(z(x))_c + w q_c(x),

``z`` the network's logits (averaged over its members and flips, eq. 3.19's scores), ``q``
the forest's class probabilities, ``w`` the baseline's weight; the class mix, the
stratigraphic order and the entropy are then taken from ``log p`` as they would be from the
network's logits alone. ``w = 0`` is the network alone.

Where it is the default: the auto recipe's seismic runs predict with ``w = 1/2``
(:data:`fhn_core.auto_recipe.BASELINE_WEIGHTS`), adopted by a rule written before the
measurement on the development surveys of ``benchmarks.seismic_generalisation``
(benchmarks/README.md, session 27); on the five test surveys, scored once afterwards, it
was neutral (mean IoU 0.859 against the network alone's 0.858 on the same models). Other
kinds keep the network alone.
"""

from __future__ import annotations

import numpy as np
import torch

from .errors import FhnError

PROBABILITY_FLOOR = 1e-12  # log(0) of a class both members rule out stays finite


def check_baseline_weight(weight: float) -> float:
    """``weight`` if it is a number in [0, 1], else an error naming it."""
    if isinstance(weight, bool) or not isinstance(weight, int | float) or not 0 <= weight <= 1:
        raise FhnError(f"the baseline's weight must be a number from 0 (the network alone) to "
                       f"1 (the baseline alone), got {weight!r}")
    return float(weight)


def blended_logits(logits: torch.Tensor, baseline_probabilities: np.ndarray | torch.Tensor,
                   weight: float) -> torch.Tensor:
    """``log((1 - w) softmax(logits) + w q)``: (K, *grid) scores of the blended probabilities.

    ``logits`` the network's (K, *grid) class scores, ``baseline_probabilities`` the
    baseline's (K, *grid) probabilities on the same grid.
    """
    weight = check_baseline_weight(weight)
    q = torch.as_tensor(np.asarray(baseline_probabilities, dtype=np.float32))
    if tuple(q.shape) != tuple(logits.shape):
        raise FhnError(f"the baseline's probabilities {tuple(q.shape)} are not on the "
                       f"network's output grid {tuple(logits.shape)}; predict the baseline on "
                       "the same data")
    p = (1.0 - weight) * torch.softmax(logits.float(), dim=0) + weight * q
    return torch.log(p.clamp_min(PROBABILITY_FLOOR))
