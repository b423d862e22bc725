"""The scene's class mix, re-estimated from the network's own posteriors.

A network's posterior p(k | x) carries the class prior its training loss implied: uniform
when the classes are weighted to balance (eq. 3.19 with balanced weights), the label
frequencies otherwise. Where the user's labels were drawn in equal numbers per class (50
surveyed points of "change" and 50 of "no change", say), that prior is a property of the
sampling, not of the scene, and every decision near the boundary leans towards the rarer
class. Bayes' rule moves a posterior to another prior q by

    p_q(k | x) = p(k | x) q_k / pi_k  /  sum_j p(j | x) q_j / pi_j,

with pi the training prior. The scene's q is unknown, but it is the mean of the adjusted
posteriors over the scene: EM alternates the two (Saerens, Latinne & Decaestecker 2002,
"Adjusting the outputs of a classifier to new a priori probabilities", Neural Computation
14(1)), starting from q = pi. In logits the adjustment is a constant shift per class,
log q_k - log pi_k, so it is applied to the averaged logits before the softmax.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .errors import FhnError

# What a prediction may assume of the scene's class mix: the training loss's, or re-estimated.
CLASS_PRIORS = ("training", "scene")
EM_ITERATIONS = 100
EM_TOLERANCE = 1e-6
SMALLEST_PRIOR = 1e-6  # keeps log q finite where EM drives a class out of the scene


def check_class_priors(value: str) -> str:
    """``value`` if it is one of CLASS_PRIORS, else an FhnError naming the choices."""
    if value not in CLASS_PRIORS:
        raise FhnError(f"class priors {value!r} is not one of {list(CLASS_PRIORS)}: "
                       "'training' keeps the class mix of the training loss, 'scene' "
                       "re-estimates it on the predicted scene")
    return value


def uniform_prior(n_classes: int) -> list[float]:
    """The prior of a class-balanced loss: every class equally likely."""
    return [1.0 / n_classes] * n_classes


def label_prior(class_counts: torch.Tensor) -> list[float]:
    """The prior of an unweighted loss: the labelled cells' class frequencies."""
    counts = class_counts.double().clamp_min(0)
    return (counts / counts.sum()).clamp_min(SMALLEST_PRIOR).tolist()


def scene_prior(
    logits: torch.Tensor,
    training_prior: list[float],
    *,
    iterations: int = EM_ITERATIONS,
    tolerance: float = EM_TOLERANCE,
) -> torch.Tensor:
    """The scene's class prior q (K,) by EM over the posteriors of logits (K, *grid).

    NaN logits (cells outside the data) take no part.
    """
    pi = _checked(training_prior, logits.shape[0])
    flat = logits.detach().double().reshape(logits.shape[0], -1)
    flat = flat[:, torch.isfinite(flat).all(0)]
    if flat.shape[1] == 0:
        raise FhnError("no cell has a finite prediction: the class mix of an empty scene "
                       "cannot be estimated; predict with the training prior")
    q = pi.clone()
    for _ in range(iterations):
        adjusted = torch.softmax(flat + (q.log() - pi.log())[:, None], dim=0)
        new_q = adjusted.mean(1).clamp_min(SMALLEST_PRIOR)
        new_q = new_q / new_q.sum()
        if (new_q - q).abs().max() < tolerance:
            return new_q
        q = new_q
    return q


def prior_shift(training_prior: list[float], prior: torch.Tensor) -> torch.Tensor:
    """The per-class logit shift log q_k - log pi_k (K,) that moves posteriors from the
    training prior pi to ``prior`` q (Bayes' rule in the module docstring)."""
    pi = _checked(training_prior, prior.shape[0])
    return prior.double().log() - pi.log()


def shift_to_prior(logits: torch.Tensor, training_prior: list[float],
                   prior: torch.Tensor) -> torch.Tensor:
    """Logits whose softmax is the posterior under ``prior`` instead of the training prior."""
    if prior.shape[0] != logits.shape[0]:
        raise FhnError(f"a class mix of {prior.shape[0]} classes cannot move logits of "
                       f"{logits.shape[0]} classes")
    shift = prior_shift(training_prior, prior).to(logits.dtype)
    return logits + shift.reshape(-1, *([1] * (logits.dim() - 1)))


def mix_text(prior: Sequence[float], class_names: Sequence[str]) -> str:
    """A class mix as "change 23 %, unchanged 77 %" (class ids where names are missing)."""
    names = [*class_names, *(f"class {k}" for k in range(len(class_names), len(prior)))]
    return ", ".join(f"{name} {100 * float(share):.0f} %"
                     for name, share in zip(names[:len(prior)], prior, strict=True))


def _checked(prior: list[float], n_classes: int) -> torch.Tensor:
    pi = torch.tensor(prior, dtype=torch.float64)
    if pi.shape != (n_classes,) or not bool((pi > 0).all()):
        raise FhnError(f"a training prior needs {n_classes} positive class shares, got "
                       f"{prior}; retrain the model with this version of fhn")
    return pi / pi.sum()
