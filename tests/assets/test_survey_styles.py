"""Geological styles of the synthetic survey: the demo unchanged, each style what it claims."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from scipy import ndimage

from assets.demo_survey import (
    CLASS_NAMES,
    DEMO_STYLE,
    STYLES,
    THIN_UNITS,
    SurveyStyle,
    build_demo_survey,
    draw_style,
    generate_demo_survey,
    tuning_thickness_ms,
)
from io_adapters.errors import DataError

SHAPE = (32, 32, 48)
SALT = CLASS_NAMES.index("Salt")
SHALE = CLASS_NAMES.index("Shale")
SEEDS = range(4)

# What the generator made before styles existed (its code at commit 2ffbf30), for the same
# calls: the sha256 of units, cdp x/y, sample times and the well rows, and three sums of the
# amplitudes (plain, squared, against a seeded +-1 pattern). The amplitudes are compared
# within a tolerance, not byte for byte: a machine's floating-point library moves their last
# bits (the byte digest of 2ffbf30's own output differed between two machines), while any
# change to the generator moves the sums by orders of magnitude more. Re-recorded
# 2026-12-08 by running 2ffbf30's generator.
BEFORE_STYLES = {
    ((32, 32, 48), 0): ("e87c587d8ef07d4c325b2de870cc5ad86eeec3d557809940beefd509e02e0db0",
                        (1362594.98, 5.10756147e10, -81691.158)),
    ((32, 32, 48), 1): ("373139075574f14d2713d288726be7c7d884bc43e81952f219738c0d871af85d",
                        (1133624.41, 5.05350552e10, 300530.58)),
    ((16, 17, 32), 3): ("a7d2b91c0254f371440c25bee4e53912c2c8a64d429fe090813b69866610ff3d",
                        (271555.78, 8.96830992e9, -57504.7748)),
}


def _digest(survey) -> str:
    """sha256 of everything but the amplitudes (exact in any floating-point library)."""
    h = hashlib.sha256()
    for array in (survey.units, survey.cdp_x, survey.cdp_y, survey.samples_ms):
        h.update(array.tobytes())
    h.update(json.dumps(survey.wells, sort_keys=True).encode())
    return h.hexdigest()


def _assert_amplitudes_match(survey, sums: tuple[float, float, float]) -> None:
    a = survey.amplitude.astype(np.float64)
    signs = np.random.default_rng(0).choice([-1.0, 1.0], size=a.shape)
    tolerance = 1e-4 * float(np.abs(a).sum())  # last-bit noise is ~1e-6 of it
    np.testing.assert_allclose(a.sum(), sums[0], rtol=0, atol=tolerance)
    np.testing.assert_allclose((a * a).sum(), sums[1], rtol=1e-4)
    np.testing.assert_allclose((a * signs).sum(), sums[2], rtol=0, atol=tolerance)


def _horizon_steps(units: np.ndarray) -> np.ndarray:
    """Steps (samples) of the top of the Shale between neighbouring traces, both axes,
    on traces that do not meet salt."""
    top = np.argmax(units >= SHALE, axis=2).astype(float)
    ok = (units >= SHALE).any(axis=2) & ~(units == SALT).any(axis=2)
    along_il = np.abs(np.diff(top, axis=0))[ok[1:] & ok[:-1]]
    along_xl = np.abs(np.diff(top, axis=1))[ok[:, 1:] & ok[:, :-1]]
    return np.concatenate([along_il, along_xl])


# ----------------------------------------------------------------------------- the demo


@pytest.mark.parametrize(("shape", "seed"), list(BEFORE_STYLES))
def test_the_default_survey_is_what_it_was_before_styles(shape, seed):
    digest, sums = BEFORE_STYLES[(shape, seed)]
    for survey in (generate_demo_survey(shape, seed=seed),
                   generate_demo_survey(shape, seed=seed, style="demo")):
        assert _digest(survey) == digest
        _assert_amplitudes_match(survey, sums)
    other = generate_demo_survey(shape, seed=seed + 10)  # the check can fail
    with pytest.raises(AssertionError):
        _assert_amplitudes_match(other, sums)


def test_the_demo_files_record_what_they_did_before(tmp_path):
    files = build_demo_survey(tmp_path, shape=SHAPE, seed=0)
    meta = json.loads((tmp_path / "demo_meta.json").read_text(encoding="utf-8"))
    assert meta == {"generator_version": 2, "shape": list(SHAPE), "seed": 0}  # cache stays
    assert files.segy.name == "demo.sgy"
    assert len(json.loads(files.classes.read_text(encoding="utf-8"))) == 5


def test_demo_style_is_the_default_whatever_the_seed():
    assert draw_style("demo", 17) == DEMO_STYLE == SurveyStyle()


# ----------------------------------------------------------------------------- seeds


@pytest.mark.parametrize("style", STYLES[1:])
def test_same_seed_same_survey_and_another_seed_another(style):
    a = generate_demo_survey(SHAPE, seed=11, style=style)
    b = generate_demo_survey(SHAPE, seed=11, style=style)
    c = generate_demo_survey(SHAPE, seed=12, style=style)
    assert _digest(a) == _digest(b) and a.style == b.style
    assert _digest(a) != _digest(c)
    assert not np.array_equal(a.units, c.units)


def test_styles_differ_for_one_seed():
    digests = {_digest(generate_demo_survey(SHAPE, seed=5, style=s)) for s in STYLES}
    assert len(digests) == len(STYLES)


def test_an_unknown_style_names_the_known_ones():
    with pytest.raises(DataError, match="layered, faulted, salt, thin-beds"):
        draw_style("volcanic", 0)
    with pytest.raises(DataError, match="unknown survey style"):
        generate_demo_survey(SHAPE, style="volcanic")


# ----------------------------------------------------------------------------- what each
# style claims


@pytest.mark.parametrize("seed", SEEDS)
def test_layered_has_continuous_horizons_no_salt_and_a_regional_dip(seed):
    survey = generate_demo_survey(SHAPE, seed=seed, style="layered")
    assert not (survey.units == SALT).any() and SALT >= len(survey.class_names)
    assert _horizon_steps(survey.units).max() <= 2  # no fault offsets a horizon
    assert survey.style.dip >= 0.05 and survey.style.faults == 0
    # units stack top to bottom down every trace
    assert (np.diff(survey.units, axis=2) >= 0).all()


@pytest.mark.parametrize("seed", SEEDS)
def test_faulted_offsets_the_horizons(seed):
    survey = generate_demo_survey(SHAPE, seed=seed, style="faulted")
    assert survey.style.faults >= 3 and not (survey.units == SALT).any()
    steps = _horizon_steps(survey.units)
    assert np.median(steps) <= 1.0     # the folds alone are gentle ...
    assert (steps >= 3).sum() >= 20    # ... the faults put steps of several samples


@pytest.mark.parametrize("seed", SEEDS)
def test_salt_style_has_one_salt_body_cutting_the_layers(seed):
    survey = generate_demo_survey(SHAPE, seed=seed, style="salt")
    salt = survey.units == SALT
    assert salt.sum() > 500
    assert ndimage.label(salt)[1] == 1
    rim = ndimage.binary_dilation(salt, structure=np.ones((3, 3, 1), bool)) & ~salt
    assert len(np.unique(survey.units[rim])) >= 3
    assert survey.class_names == CLASS_NAMES
    assert "Salt" in {row["class"] for row in survey.wells}  # a well reaches it


@pytest.mark.parametrize("style", ["layered", "faulted", "thin-beds"])
def test_salt_free_styles_have_no_salt_class(style):
    survey = generate_demo_survey(SHAPE, seed=3, style=style)
    assert not (survey.units == SALT).any()
    assert survey.class_names == CLASS_NAMES[:SALT]
    assert {row["class"] for row in survey.wells} == set(CLASS_NAMES[:SALT])


@pytest.mark.parametrize("seed", SEEDS)
def test_thin_beds_are_thinner_than_the_tuning_thickness(seed):
    survey = generate_demo_survey(SHAPE, seed=seed, style="thin-beds")
    dt_ms = float(survey.samples_ms[1] - survey.samples_ms[0])
    tuning = tuning_thickness_ms(survey.style.ricker_hz) / dt_ms  # in samples
    for unit in THIN_UNITS:
        assert survey.bed_thickness[unit].max() < tuning
    # the demo's overburden and reservoir beds are resolved: most above the tuning thickness
    demo = generate_demo_survey(SHAPE, seed=seed)
    demo_tuning = tuning_thickness_ms(demo.style.ricker_hz) / dt_ms
    assert all(np.median(demo.bed_thickness[u]) > demo_tuning for u in THIN_UNITS)


def test_tuning_thickness_of_a_30_hz_ricker():
    assert tuning_thickness_ms(30.0) == pytest.approx(14.43, abs=0.01)


@pytest.mark.parametrize("style", STYLES[1:])
def test_every_style_gives_wells_through_every_class_and_seismic_character(style):
    survey = generate_demo_survey(SHAPE, seed=7, style=style)
    assert len({row["well"] for row in survey.wells}) == 9
    assert {row["class"] for row in survey.wells} == set(survey.class_names)
    assert set(np.unique(survey.units).tolist()) == set(range(len(survey.class_names)))
    amp = survey.amplitude
    assert np.isfinite(amp).all() and abs(float(amp.mean())) < 0.1 * float(amp.std())
    spectrum = np.abs(np.fft.rfft(amp, axis=2)).mean(axis=(0, 1))
    peak_hz = np.fft.rfftfreq(SHAPE[2], d=0.004)[np.argmax(spectrum)]
    assert 15.0 <= peak_hz <= 45.0


def test_a_style_object_is_used_as_given():
    style = SurveyStyle(name="custom", salt=False, faults=1, max_throw=0.1, snr=3.0)
    survey = generate_demo_survey(SHAPE, seed=2, style=style)
    assert survey.style is style
    assert not (survey.units == SALT).any()


def test_a_styled_build_records_its_style_and_skips_when_current(tmp_path):
    files = build_demo_survey(tmp_path, shape=SHAPE, seed=4, style="faulted", name="f4")
    assert files.segy.name == "f4.sgy" and files.units.name == "f4_units.npy"
    meta = json.loads((tmp_path / "f4_meta.json").read_text(encoding="utf-8"))
    assert meta["style"]["name"] == "faulted" and meta["style"]["faults"] >= 3
    classes = json.loads(files.classes.read_text(encoding="utf-8"))
    assert [c["name"] for c in classes] == list(CLASS_NAMES[:SALT])
    mtime = files.segy.stat().st_mtime_ns
    build_demo_survey(tmp_path, shape=SHAPE, seed=4, style="faulted", name="f4")
    assert files.segy.stat().st_mtime_ns == mtime
    build_demo_survey(tmp_path, shape=SHAPE, seed=4, style="layered", name="f4")
    assert files.segy.stat().st_mtime_ns != mtime  # another style: rebuilt
    np.testing.assert_array_equal(
        np.load(files.units), generate_demo_survey(SHAPE, seed=4, style="layered").units)


def test_a_bad_file_name_is_refused(tmp_path):
    with pytest.raises(DataError, match="file name"):
        build_demo_survey(tmp_path, shape=SHAPE, name="a/b")
