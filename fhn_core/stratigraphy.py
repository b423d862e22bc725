"""The law of superposition as an optional constraint on the predicted classes.

In a layered sequence that is not overturned or thrust-repeated, every unit lies below the
units deposited before it: along any vertical trace the classes appear in one fixed
top-to-bottom order, each at most once, with any of them possibly missing (eroded,
pinched out, cut by a normal fault or by an intrusion that reaches down to the bottom of
the trace). The network scores each cell on its own and knows nothing of this; where two
units look alike (a transparent shale and the quiet interior of a salt body, say) its
answer can flip back and forth down a trace.

This module does two things:

- :func:`superposition_order` reads the top-to-bottom order from the labels themselves
  (borehole intervals or painted sections: any trace with two or more classes labelled),
  taking the class table's order only where the labels do not decide;
- :func:`ordered_classes` picks, for every trace, the class sequence that follows that
  order and has the largest summed log-probability (a Viterbi pass over a monotone chain):
  the most probable interpretation that obeys superposition, not a smoothing.

It applies to data with a vertical (time or depth) axis only, and it is off unless asked
for: prediction keeps the network's own probabilities and entropy either way.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .errors import FhnError

# Viterbi back-pointers are one byte per class, sample and trace; traces are processed in
# chunks so a large volume needs at most about this many bytes of pointers at a time.
_POINTER_BYTES = 64 * 2**20


def _traces(labels: np.ndarray, vertical_axis: int) -> np.ndarray:
    """(*grid) -> (n_traces, n_vertical), the vertical axis last."""
    moved = np.moveaxis(labels, vertical_axis, -1)
    return moved.reshape(-1, moved.shape[-1])


def _name(c: int, class_names: Sequence[str]) -> str:
    return class_names[c] if c < len(class_names) else f"class {c}"


def superposition_order(
    labels: np.ndarray,
    vertical_axis: int,
    n_classes: int,
    class_names: Sequence[str] = (),
) -> tuple[int, ...]:
    """The classes from top to bottom, as the labelled traces show them.

    Class ``a`` is above class ``b`` when some trace has an ``a`` label above a ``b`` label.
    The order is a topological sort of that relation, the lower class id first where the
    labels leave a choice (so a class table listed top to bottom decides what no trace
    shows). Labels that put ``a`` both above and below ``b``, or classes in a cycle, have
    no such order: an FhnError names the classes.
    """
    if not 0 <= vertical_axis < labels.ndim:
        raise FhnError(f"vertical axis {vertical_axis} is not an axis of the labels "
                       f"{labels.shape}")
    traces = _traces(np.asarray(labels), vertical_axis)
    traces = traces[(traces >= 0).any(axis=1)]  # wells and sections: few of all traces
    n = traces.shape[1]
    first = np.full((n_classes, traces.shape[0]), np.inf)
    last = np.full((n_classes, traces.shape[0]), -np.inf)
    for c in range(n_classes):
        here = traces == c
        has = here.any(axis=1)
        first[c, has] = here.argmax(axis=1)[has]
        last[c, has] = (n - 1 - here[:, ::-1].argmax(axis=1))[has]
    above = np.array([(first[a][None, :] < last).any(axis=1) for a in range(n_classes)])
    np.fill_diagonal(above, False)
    both = np.argwhere(above & above.T)
    if both.size:
        a, b = (int(v) for v in both[0])
        raise FhnError(
            f"the labels put {_name(a, class_names)} both above and below "
            f"{_name(b, class_names)} (down one trace or in different traces), so they show "
            "no single top-to-bottom order; check those labels or predict without the "
            "stratigraphic order"
        )
    order: list[int] = []
    left = set(range(n_classes))
    while left:
        ready = [c for c in sorted(left) if not any(above[p, c] for p in left)]
        if not ready:
            names = ", ".join(_name(c, class_names) for c in sorted(left))
            raise FhnError(
                f"the labels put {names} above one another in a cycle, so they show no "
                "single top-to-bottom order; check those labels or predict without the "
                "stratigraphic order"
            )
        order.append(ready[0])
        left.remove(ready[0])
    return tuple(order)


def ordered_classes(
    logits: torch.Tensor, order: Sequence[int], vertical_axis: int
) -> np.ndarray:
    """The most probable class ids (*grid) that follow ``order`` down every trace.

    ``logits`` are (K, *grid) class scores; ``vertical_axis`` indexes the grid and points
    down. For each trace the result is the class sequence, non-decreasing in the rank
    ``order`` gives, that maximises the sum of the log-softmax scores over its samples
    (a Viterbi pass: at each sample the best score of rank ``r`` is the running maximum
    over ranks ``<= r`` one sample up, plus its own log-probability).
    """
    k = logits.shape[0]
    if sorted(order) != list(range(k)):
        raise FhnError(f"the stratigraphic order {tuple(order)} is not a permutation of the "
                       f"{k} classes; retrain the model to record it")
    log_p = torch.log_softmax(logits.float(), dim=0)[list(order)]
    per_trace = log_p.movedim(1 + vertical_axis, -1)           # (K, ..., n)
    moved_grid, n = tuple(per_trace.shape[1:]), per_trace.shape[-1]
    per_trace = per_trace.reshape(k, -1, n).permute(2, 1, 0)   # (n, traces, K)
    chunk = max(1, _POINTER_BYTES // max(1, n * k))
    class_of_rank = torch.tensor(list(order), dtype=torch.int16)
    classes = torch.cat([class_of_rank[_monotone_viterbi(per_trace[:, s:s + chunk])]
                         for s in range(0, per_trace.shape[1], chunk)], dim=1)  # (n, traces)
    return classes.T.reshape(moved_grid).movedim(-1, vertical_axis).numpy()


def _monotone_viterbi(log_p: torch.Tensor) -> torch.Tensor:
    """Best non-decreasing rank path (n, T) through log-probabilities (n, T, K)."""
    n, t, k = log_p.shape
    best = log_p[0].clone()
    came_from = torch.zeros((n, t, k), dtype=torch.uint8 if k <= 256 else torch.int16)
    for s in range(1, n):
        best, came_from[s] = torch.cummax(best, dim=1)
        best += log_p[s]
    path = torch.empty((n, t), dtype=torch.long)
    rank = best.argmax(dim=1)
    for s in range(n - 1, -1, -1):
        path[s] = rank
        rank = came_from[s].gather(1, rank[:, None]).squeeze(1).long()
    return path
