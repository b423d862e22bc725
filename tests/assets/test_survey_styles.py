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

# sha256 of amplitude, units, cdp x/y, sample times and the well rows, recorded from the
# generator before styles existed (commit 2ffbf30) for the same calls.
BEFORE_STYLES = {
    ((32, 32, 48), 0): "a4c1a090a50d035b034aa81bd0c4250125f2c82e77ea0762b83405e8df1813e5",
    ((32, 32, 48), 1): "55b53d3868d8fda00a68f95b7c51cf3f6bffa6c5ddd8f70a0ee44985a03a7e3d",
    ((16, 17, 32), 3): "ce24800a4e5c8b4cbd641fdedcb68adfe63c87f57e24f5a3f1d9e4419d64d006",
}


def _digest(survey) -> str:
    h = hashlib.sha256()
    for array in (survey.amplitude, survey.units, survey.cdp_x, survey.cdp_y,
                  survey.samples_ms):
        h.update(array.tobytes())
    h.update(json.dumps(survey.wells, sort_keys=True).encode())
    return h.hexdigest()


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
def test_the_default_survey_is_byte_for_byte_what_it_was(shape, seed):
    assert _digest(generate_demo_survey(shape, seed=seed)) == BEFORE_STYLES[(shape, seed)]
    assert _digest(generate_demo_survey(shape, seed=seed, style="demo")) == \
        BEFORE_STYLES[(shape, seed)]


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
