"""Seismic attributes that join the amplitude as extra input channels.

Interpreters rarely classify on amplitude alone: with labels from a few wells the network
has to tell units apart away from the wells by their seismic character. Three standard
attributes carry most of that character for the units a post-stack section shows:

- the vertical coordinate (two-way time or depth): units are stacked, and a convolution
  alone cannot tell where in the section it is;
- the envelope (instantaneous amplitude, Taner et al. 1979), |x + i H(x)| along each trace
  with H the Hilbert transform: reflection strength independent of the wavelet's phase, so
  a transparent unit (shale, salt) differs from a bright or thinly bedded one by a smooth
  level rather than by oscillations the network has to rectify itself;
- semblance (Marfurt et al. 1998), the coherence of neighbouring traces in a small window:
  near 1 where reflectors continue laterally (bedded units, even a quiet shale), low in a
  chaotic or noise-dominated body (salt, intrusions) — the attribute interpreters use to
  outline salt, since a salt interior and a transparent shale have the same envelope.

The channel names recorded with a model say which attributes it was trained on, so
prediction and "continue a run" rebuild the same inputs (:func:`attributes_of`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage
from scipy.signal import hilbert

VERTICAL_CHANNEL = "vertical coordinate"
ENVELOPE_CHANNEL = "envelope"
SEMBLANCE_CHANNEL = "semblance"
# The keyword flags of :func:`seismic_channels` (and of the layouts and jobs that pass them on).
ATTRIBUTE_FLAGS = ("vertical_channel", "envelope_channel", "semblance_channel")

# Semblance window: 5 x 5 traces (two bins either side) and 17 samples (eight either side),
# long enough to average over a few wavelet periods at 4 ms.
SEMBLANCE_TRACES = 2
SEMBLANCE_SAMPLES = 8

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


def semblance(
    cube: np.ndarray, traces: int = SEMBLANCE_TRACES, samples: int = SEMBLANCE_SAMPLES
) -> np.ndarray:
    """Semblance of ``cube`` (iline, xline, samples) in a (2t+1)^2-trace, (2s+1)-sample window.

    S = sum_t (sum_j a_j(t))^2 / (N sum_t sum_j a_j(t)^2) over the N traces j of the window
    and its samples t: 1 for identical traces, about 1/N for independent ones. Windows are
    reflected at the survey's edges. Computed in slabs of inlines (with a halo of ``traces``
    inlines), so the float64 work arrays never hold the whole volume.
    """
    cube = np.asarray(cube)
    out = np.empty(cube.shape, dtype=np.float32)
    n_il = cube.shape[0]
    step = max(1, _SLAB_SAMPLES // max(1, cube[0].size))
    for start in range(0, n_il, step):
        stop = min(n_il, start + step)
        lo, hi = max(0, start - traces), min(n_il, stop + traces)
        out[start:stop] = _semblance_of(cube, lo, hi, traces, samples)[start - lo:stop - lo]
    return out


def _semblance_of(cube: np.ndarray, lo: int, hi: int, traces: int, samples: int) -> np.ndarray:
    """Semblance of inlines lo..hi, exact wherever the window stays inside them or the survey."""
    # Pad with the survey's own reflected inlines where the slab meets an edge, and with
    # the neighbouring inlines elsewhere: then a plain filter sees what the whole cube would.
    idx = np.arange(lo - traces, hi + traces)
    idx = np.where(idx < 0, -idx - 1, idx)
    idx = np.where(idx >= cube.shape[0], 2 * cube.shape[0] - idx - 1, idx)
    a = cube[idx].astype(np.float64)
    window = (1, 2 * traces + 1, 1)
    mean = ndimage.uniform_filter1d(ndimage.uniform_filter(a, window), 2 * traces + 1, axis=0)
    power = ndimage.uniform_filter1d(ndimage.uniform_filter(a * a, window), 2 * traces + 1,
                                     axis=0)
    num = ndimage.uniform_filter1d(mean * mean, 2 * samples + 1, axis=2)
    den = ndimage.uniform_filter1d(power, 2 * samples + 1, axis=2)
    s = num / np.maximum(den, np.finfo(np.float64).tiny)
    return np.clip(s[traces:traces + hi - lo], 0.0, 1.0).astype(np.float32)


def seismic_channels(
    cube: np.ndarray,
    samples: np.ndarray,
    vertical_unit: str,
    *,
    vertical_channel: bool = False,
    envelope_channel: bool = False,
    semblance_channel: bool = False,
) -> tuple[list[np.ndarray], list[str]]:
    """The input channels of a seismic cube (iline, xline, samples) and their names."""
    channels, names = [cube], ["amplitude"]
    if vertical_channel:
        channels.append(np.broadcast_to(np.asarray(samples, np.float32), cube.shape))
        names.append(f"{VERTICAL_CHANNEL} ({vertical_unit})")
    if envelope_channel:
        channels.append(envelope(cube))
        names.append(ENVELOPE_CHANNEL)
    if semblance_channel:
        channels.append(semblance(cube))
        names.append(SEMBLANCE_CHANNEL)
    return channels, names


def attributes_of(channel_names: Sequence[str] | None) -> dict[str, bool]:
    """Which attribute channels a model trained on ``channel_names`` saw, as keyword flags."""
    names = [str(n) for n in channel_names or ()]
    return {
        "vertical_channel": any(n.startswith(VERTICAL_CHANNEL) for n in names),
        "envelope_channel": ENVELOPE_CHANNEL in names,
        "semblance_channel": SEMBLANCE_CHANNEL in names,
    }
