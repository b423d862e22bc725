"""Seismic attribute channels: envelope and semblance values, the channel names, the round trip."""

from __future__ import annotations

import numpy as np
import pytest

from io_adapters import seismic_attributes as attributes
from io_adapters.seismic_attributes import (
    ATTRIBUTE_FLAGS,
    attributes_of,
    envelope,
    seismic_channels,
    semblance,
)


def test_envelope_of_a_modulated_cosine_is_its_amplitude():
    t = np.arange(512, dtype=np.float64)
    amplitude = 1.0 + 0.5 * np.sin(2 * np.pi * t / 512)  # slow, positive
    trace = amplitude * np.cos(2 * np.pi * t / 16 + 0.7)  # fast carrier, arbitrary phase
    got = envelope(trace[None, None, :])[0, 0]
    inner = slice(64, -64)  # the FFT's periodic edges are not a property of the trace
    assert np.abs(got[inner] - amplitude[inner]).max() < 0.02
    # Phase-independent: a quarter-period shift of the carrier gives the same envelope.
    shifted = amplitude * np.sin(2 * np.pi * t / 16 + 0.7)
    assert np.abs(envelope(shifted[None, :])[0][inner] - got[inner]).max() < 0.02


def test_envelope_works_slab_by_slab(monkeypatch):
    rng = np.random.default_rng(0)
    cube = rng.standard_normal((5, 7, 64)).astype(np.float32)
    whole = envelope(cube)
    monkeypatch.setattr(attributes, "_SLAB_SAMPLES", 3 * 64)  # 3 traces per slab
    assert np.array_equal(envelope(cube), whole)
    assert whole.dtype == np.float32 and (whole >= np.abs(cube) - 1e-5).all()


def test_semblance_tells_continuous_reflectors_from_chaos():
    rng = np.random.default_rng(1)
    trace = rng.standard_normal(64)
    layered = np.broadcast_to(trace, (9, 9, 64))  # every trace the same: flat reflectors
    chaos = rng.standard_normal((9, 9, 64))       # independent traces
    assert np.allclose(semblance(layered), 1.0, atol=1e-5)
    s = semblance(chaos)
    assert 0.0 <= s.min() and s.max() <= 1.0
    # independent traces: about 1/N for the N = 25 traces of the window
    assert abs(float(np.median(s)) - 1 / 25) < 0.03
    # A scale per trace (lateral brightening) lowers it only a little: it measures coherence.
    bright = layered * np.linspace(0.8, 1.2, 9)[:, None, None]
    assert semblance(bright).min() > 0.95


def test_semblance_works_slab_by_slab(monkeypatch):
    rng = np.random.default_rng(2)
    cube = rng.standard_normal((11, 6, 40)).astype(np.float32)
    cube[:, :, 10:30] += rng.standard_normal(20)  # a coherent band
    whole = semblance(cube)
    monkeypatch.setattr(attributes, "_SLAB_SAMPLES", 2 * 6 * 40)  # 2 inlines per slab
    np.testing.assert_allclose(semblance(cube), whole, atol=1e-6)


@pytest.mark.parametrize("flags", [(False, False, False), (True, False, True),
                                   (False, True, False), (True, True, True)])
def test_channel_names_say_which_attributes_were_used(flags):
    cube = np.ones((2, 3, 8), np.float32)
    wanted = dict(zip(ATTRIBUTE_FLAGS, flags, strict=True))
    channels, names = seismic_channels(cube, np.arange(8) * 4.0, "ms", **wanted)
    assert len(channels) == len(names) == 1 + sum(flags)
    assert all(c.shape == cube.shape for c in channels)
    assert attributes_of(names) == wanted
    assert not any(attributes_of(None).values())
