"""Segmentation metrics: confusion matrix, IoU, overall accuracy, Cohen's kappa, error map.

Reference cells equal to -1 (unlabelled) are ignored everywhere, so the same functions
score a prediction against sparse validation labels or against a full reference.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import FhnError


def confusion_matrix(pred: np.ndarray, ref: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts C[i, j] of reference class i predicted as class j (int64, n_classes^2)."""
    pred, ref = np.asarray(pred), np.asarray(ref)
    if pred.shape != ref.shape:
        raise FhnError(
            f"prediction {pred.shape} and reference {ref.shape} are on different grids; "
            "evaluate a prediction against labels on the same grid"
        )
    known = ref >= 0
    r, p = ref[known].astype(np.int64), pred[known].astype(np.int64)
    if r.size and (r.max() >= n_classes or p.min() < 0 or p.max() >= n_classes):
        raise FhnError(
            f"class ids outside 0..{n_classes - 1} (reference max {r.max()}, prediction "
            f"range {p.min()}..{p.max()}); check the number of classes"
        )
    return np.bincount(r * n_classes + p, minlength=n_classes**2).reshape(n_classes, n_classes)


@dataclass(frozen=True)
class Metrics:
    """Scores of one prediction against one reference."""

    confusion: np.ndarray
    iou: np.ndarray             # per class; NaN where the class is in neither map
    mean_iou: float             # over classes present in reference or prediction
    overall_accuracy: float
    kappa: float
    class_accuracy: np.ndarray  # recall per reference class; NaN where absent

    @property
    def n_labelled(self) -> int:
        return int(self.confusion.sum())

    def as_dict(self) -> dict[str, float | list[float]]:
        return {
            "mean_iou": self.mean_iou,
            "overall_accuracy": self.overall_accuracy,
            "kappa": self.kappa,
            "iou": [float(v) for v in self.iou],
            "class_accuracy": [float(v) for v in self.class_accuracy],
            "n_labelled": self.n_labelled,
        }

    def table(self, class_names: list[str] | None = None) -> str:
        names = class_names or [f"class {i}" for i in range(len(self.iou))]
        lines = [f"{'class':<20}{'IoU':>8}{'accuracy':>10}{'cells':>10}"]
        for i, name in enumerate(names):
            lines.append(
                f"{name:<20}{self.iou[i]:>8.3f}{self.class_accuracy[i]:>10.3f}"
                f"{int(self.confusion[i].sum()):>10d}"
            )
        lines.append(f"mean IoU {self.mean_iou:.4f}  overall accuracy "
                     f"{self.overall_accuracy:.4f}  kappa {self.kappa:.4f}")
        return "\n".join(lines)


def metrics_from_confusion(confusion: np.ndarray) -> Metrics:
    """IoU = TP / (TP + FP + FN); kappa = (p_o - p_e) / (1 - p_e)."""
    c = confusion.astype(np.float64)
    total = c.sum()
    if total == 0:
        raise FhnError("no labelled reference cells to evaluate; the reference is all -1")
    tp = np.diag(c)
    union = c.sum(0) + c.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, tp / union, np.nan)
        class_accuracy = np.where(c.sum(1) > 0, tp / c.sum(1), np.nan)
    p_o = tp.sum() / total
    p_e = float((c.sum(0) * c.sum(1)).sum() / total**2)
    kappa = 1.0 if p_e >= 1.0 else (p_o - p_e) / (1.0 - p_e)
    return Metrics(confusion, iou, float(np.nanmean(iou)), float(p_o), float(kappa),
                   class_accuracy)


def evaluate(pred: np.ndarray, ref: np.ndarray, n_classes: int) -> Metrics:
    """All metrics of ``pred`` against ``ref`` (-1 in ``ref`` = not evaluated)."""
    return metrics_from_confusion(confusion_matrix(pred, ref, n_classes))


def error_map(pred: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """int8 map: 1 wrong, 0 right, -1 where the reference has no label."""
    pred, ref = np.asarray(pred), np.asarray(ref)
    if pred.shape != ref.shape:
        raise FhnError(f"prediction {pred.shape} and reference {ref.shape} differ in shape")
    out = (pred != ref).astype(np.int8)
    out[ref < 0] = -1
    return out
