"""Change channels of two dates of one scene: the differences t2 - t1 and their magnitude.

Change vector analysis, the classic change detector, thresholds ||t2 - t1||, the length of
the change vector over the bands. A network given the two dates as channels could form the
differences itself, but not cheaply their norm, and from a hundred labelled points it does
not learn to: on the Taizhou pair the magnitude as one more channel raised kappa on a
proxy split inside the training half on four of five seeds (benchmarks/README.md). So a
two-date layout may carry, after the dates' own bands, the per-band differences and the
magnitude (``change_channels`` in :func:`app.layout.to_channels_first`, ``[data]
change_channels = true`` in ``fhn train``). The channel names record it, so prediction
builds the same channels (:func:`has_change_channels`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .errors import DataError

MAGNITUDE_CHANNEL = "||t2 - t1||"
DIFFERENCE_CHANNEL = "t2 - t1"


def date_differences(cube: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(differences (band, y, x), magnitude (y, x)) of a (time, band, y, x) two-date cube.

    NaN (nodata) in either date stays NaN in both, so those cells stay unlabelled.
    """
    if cube.ndim != 4 or cube.shape[0] != 2:
        raise DataError(f"change channels need two dates of one scene, got {cube.shape[0]} "
                        "date(s); load two cubes or switch the change channels off")
    difference = (cube[1] - cube[0]).astype(np.float32)
    magnitude = np.sqrt((difference.astype(np.float64) ** 2).sum(0)).astype(np.float32)
    return difference, magnitude


def standardised_per_band(cube: np.ndarray) -> np.ndarray:
    """A (time, band, y, x) cube with each band standardised over both dates together.

    For the time-lapse layout, where a channel is a date across every band: the bands
    must share one scale before their differences are summed into a magnitude, and one
    mean and spread for both dates keeps t2 - t1's sign and size. The statistics are this
    scene's (finite values only), computed again for each scene a model is applied to.
    """
    out = np.empty_like(cube, dtype=np.float32)
    for b in range(cube.shape[1]):
        band = cube[:, b]
        finite = band[np.isfinite(band)]
        mean = float(finite.mean(dtype=np.float64)) if finite.size else 0.0
        std = float(finite.std(dtype=np.float64)) if finite.size else 1.0
        out[:, b] = (band - mean) / (std or 1.0)
    return out


def has_change_channels(channel_names: Sequence[str] | None) -> bool:
    """Whether a model trained on ``channel_names`` saw the change channels."""
    return MAGNITUDE_CHANNEL in [str(n) for n in channel_names or ()]
