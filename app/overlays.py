"""Prediction products as section overlays for :func:`app.views.render_section`.

Pure numpy (no streamlit): each function cuts the section a :class:`app.views.View`
shows out of a label-grid array and returns an RGBA image at grid resolution in display
orientation, the form ``render_section(..., extra_overlays=[...])`` blends under the
labels. Colours: classes from the class table; errors green (right) / red (wrong),
transparent where not evaluated; uncertainty with the magma colour map.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .views import View, colourize, hex_to_rgb, label_overlay, label_section, to_display

__all__ = ["section_of", "class_overlay", "error_overlay", "entropy_overlay",
           "ERROR_RIGHT", "ERROR_WRONG", "error_counts"]

ERROR_RIGHT = "#2ca02c"
ERROR_WRONG = "#d62728"


def section_of(values: np.ndarray, view: View) -> np.ndarray:
    """The section of a label-grid array on screen, in display orientation."""
    # cut before converting: a Dask-backed prediction reads only the chunks it crosses
    return to_display(np.asarray(label_section(values, view)), view)


def class_overlay(classes: np.ndarray, view: View, colours: Sequence[str],
                  alpha: float = 0.55) -> np.ndarray:
    """Predicted classes in their class colours."""
    return label_overlay(section_of(classes, view).astype(np.int64), colours, alpha=alpha)


def error_overlay(errors: np.ndarray, view: View, alpha: float = 0.8) -> np.ndarray:
    """An error map (1 wrong, 0 right, -1 not evaluated) as green/red, transparent at -1."""
    section = section_of(errors, view)
    out = np.zeros((*section.shape, 4), dtype=np.uint8)
    a = int(round(255 * alpha))
    out[section == 0] = (*hex_to_rgb(ERROR_RIGHT), a)
    out[section == 1] = (*hex_to_rgb(ERROR_WRONG), a)
    return out


def entropy_overlay(entropy: np.ndarray, view: View, alpha: float = 0.75) -> np.ndarray:
    """Normalised entropy (0 certain .. 1 uniform) with the magma colour map."""
    section = section_of(entropy, view).astype(np.float32)
    rgb = colourize(section, "magma", 0.0, 1.0)
    alpha_channel = np.full((*section.shape, 1), int(round(255 * alpha)), dtype=np.uint8)
    return np.concatenate([rgb, alpha_channel], axis=-1)


def error_counts(errors: np.ndarray) -> tuple[int, int]:
    """(right, wrong) cells of an error map."""
    e = np.asarray(errors)
    return int((e == 0).sum()), int((e == 1).sum())
