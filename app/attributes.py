"""Seismic attributes that join the amplitude as extra input channels.

Interpreters rarely classify on amplitude alone: with labels from a few wells the network
has to tell units apart away from the wells by their seismic character. Two attributes
carry most of that character for the units a post-stack section shows:

- the vertical coordinate (two-way time or depth): units are stacked, and a convolution
  alone cannot tell where in the section it is;
- the envelope (instantaneous amplitude, Taner et al. 1979), |x + i H(x)| along each trace
  with H the Hilbert transform: reflection strength independent of the wavelet's phase, so
  a transparent unit (shale, salt) differs from a bright or thinly bedded one by a smooth
  level rather than by oscillations the network has to rectify itself.

The channel names recorded with a model say which attributes it was trained on, so
prediction and "continue a run" rebuild the same inputs (:func:`attributes_of`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.signal import hilbert

VERTICAL_CHANNEL = "vertical coordinate"
ENVELOPE_CHANNEL = "envelope"

# Traces are transformed in slabs of about this many samples, so a large volume never
# needs its complex analytic signal (16 bytes a sample) all at once.
_SLAB_SAMPLES = 1 << 24


def envelope(cube: np.ndarray) -> np.ndarray:
    """Instantaneous amplitude of every trace of ``cube`` (..., samples), as float32."""
    cube = np.asarray(cube, dtype=np.float32)
    out = np.empty(cube.shape, dtype=np.float32)
    flat, flat_out = cube.reshape(-1, cube.shape[-1]), out.reshape(-1, cube.shape[-1])
    step = max(1, _SLAB_SAMPLES // max(1, cube.shape[-1]))
    for start in range(0, flat.shape[0], step):
        flat_out[start:start + step] = np.abs(hilbert(flat[start:start + step], axis=-1))
    return out


def seismic_channels(
    cube: np.ndarray,
    samples: np.ndarray,
    vertical_unit: str,
    *,
    vertical_channel: bool = False,
    envelope_channel: bool = False,
) -> tuple[list[np.ndarray], list[str]]:
    """The input channels of a seismic cube (iline, xline, samples) and their names."""
    channels, names = [cube], ["amplitude"]
    if vertical_channel:
        channels.append(np.broadcast_to(np.asarray(samples, np.float32), cube.shape))
        names.append(f"{VERTICAL_CHANNEL} ({vertical_unit})")
    if envelope_channel:
        channels.append(envelope(cube))
        names.append(ENVELOPE_CHANNEL)
    return channels, names


def attributes_of(channel_names: Sequence[str] | None) -> dict[str, bool]:
    """Which attribute channels a model trained on ``channel_names`` saw, as keyword flags."""
    names = [str(n) for n in channel_names or ()]
    return {
        "vertical_channel": any(n.startswith(VERTICAL_CHANNEL) for n in names),
        "envelope_channel": ENVELOPE_CHANNEL in names,
    }
