"""Seismic attribute channels: the envelope's values, the channel names, the round trip."""

from __future__ import annotations

import numpy as np
import pytest

from app import attributes
from app.attributes import attributes_of, envelope, seismic_channels


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


@pytest.mark.parametrize("vertical", [False, True])
@pytest.mark.parametrize("env", [False, True])
def test_channel_names_say_which_attributes_were_used(vertical, env):
    cube = np.ones((2, 3, 8), np.float32)
    channels, names = seismic_channels(cube, np.arange(8) * 4.0, "ms",
                                       vertical_channel=vertical, envelope_channel=env)
    assert len(channels) == len(names) == 1 + vertical + env
    assert all(c.shape == cube.shape for c in channels)
    assert attributes_of(names) == {"vertical_channel": vertical, "envelope_channel": env}
    assert attributes_of(None) == {"vertical_channel": False, "envelope_channel": False}
