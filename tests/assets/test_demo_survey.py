"""The synthetic demo survey: determinism, geology, seismic character, wells and files."""

from __future__ import annotations

import csv
import json
import os

import numpy as np
import pytest
import segyio
from scipy import ndimage

from assets.demo_survey import (
    CLASS_NAMES,
    DEFAULT_DEMO_DIR,
    DemoFiles,
    build_demo_survey,
    generate_demo_survey,
    main,
)
from io_adapters.errors import DataError

SHAPE = (32, 32, 48)
SALT = CLASS_NAMES.index("Salt")


@pytest.fixture(scope="module")
def survey():
    return generate_demo_survey(SHAPE, seed=0)


def _salt_traces(units: np.ndarray) -> np.ndarray:
    return (units == SALT).any(axis=2)


# ----------------------------------------------------------------------------- determinism


def test_same_seed_gives_identical_survey(survey):
    again = generate_demo_survey(SHAPE, seed=0)
    np.testing.assert_array_equal(again.amplitude, survey.amplitude)
    np.testing.assert_array_equal(again.units, survey.units)
    assert again.wells == survey.wells


def test_different_seed_gives_different_survey(survey):
    other = generate_demo_survey(SHAPE, seed=1)
    assert not np.array_equal(other.amplitude, survey.amplitude)
    assert not np.array_equal(other.units, survey.units)


# ----------------------------------------------------------------------------- geometry


def test_arrays_and_geometry(survey):
    ni, nx, ns = SHAPE
    assert survey.amplitude.shape == SHAPE and survey.amplitude.dtype == np.float32
    assert survey.units.shape == SHAPE and survey.units.dtype == np.int16
    np.testing.assert_array_equal(survey.ilines, np.arange(1000, 1000 + ni))
    np.testing.assert_array_equal(survey.xlines, np.arange(2000, 2000 + nx))
    np.testing.assert_allclose(survey.samples_ms, np.arange(ns) * 4.0)
    assert survey.cdp_x.shape == survey.cdp_y.shape == (ni, nx)
    assert survey.cdp_x.dtype == np.float64
    assert (survey.cdp_x[0, 0], survey.cdp_y[0, 0]) == (605000.0, 6073000.0)
    # 25 m bins along both axes, axes perpendicular and rotated 30 degrees from north/east.
    xy = np.stack([survey.cdp_x, survey.cdp_y], axis=-1)
    d_xl, d_il = xy[0, 1] - xy[0, 0], xy[1, 0] - xy[0, 0]
    np.testing.assert_allclose([np.hypot(*d_xl), np.hypot(*d_il)], [25.0, 25.0])
    assert abs(d_xl @ d_il) < 1e-6 * 25.0**2
    assert np.degrees(np.arctan2(d_xl[0], d_xl[1])) == pytest.approx(30.0)
    assert len(survey.class_names) == len(survey.class_colours) == 5
    assert all(len(c) == 7 and c.startswith("#") for c in survey.class_colours)
    assert len(set(survey.class_colours)) == 5


@pytest.mark.parametrize("shape", [(8, 32, 48), (32, 32, 10), (32, 32)])
def test_bad_shape_is_refused(shape):
    with pytest.raises(DataError, match="shape"):
        generate_demo_survey(shape)


# ----------------------------------------------------------------------------- geology


def test_all_classes_present(survey):
    assert set(np.unique(survey.units).tolist()) == set(range(5))


def test_units_stack_top_to_bottom_away_from_salt(survey):
    layered = survey.units[~_salt_traces(survey.units)]
    assert len(layered) > 0.7 * SHAPE[0] * SHAPE[1]
    assert (np.diff(layered, axis=1) >= 0).all()
    # Every layered unit is seen in most traces: the boundaries are laterally continuous.
    for cls in range(4):
        assert (layered == cls).any(axis=1).mean() > 0.9


def test_salt_is_one_body_cutting_across_layers(survey):
    salt = survey.units == SALT
    _, n_bodies = ndimage.label(salt)
    assert n_bodies == 1
    # Laterally beside the salt lie several different units: it cuts across the layering.
    rim = ndimage.binary_dilation(salt, structure=np.ones((3, 3, 1), bool)) & ~salt
    assert len(np.unique(survey.units[rim])) >= 3


def test_a_fault_offsets_the_horizons(survey):
    units = survey.units
    # Top of the Shale unit, in samples, on traces that do not touch the salt.
    top = np.argmax(units >= 2, axis=2).astype(float)
    ok = ~_salt_traces(units) & (units >= 2).any(axis=2)
    jump = np.abs(np.diff(top, axis=1))
    pair_ok = ok[:, 1:] & ok[:, :-1]
    jumps = jump[pair_ok]
    # The fold alone is gentle (typically no step between neighbours) ...
    assert np.median(jumps) <= 1.0
    # ... but there are steps of several samples, lined up along a fault across most inlines.
    assert jumps.max() >= 3
    assert ((jump >= 3) & pair_ok).any(axis=1).mean() >= 0.5


# ----------------------------------------------------------------------------- seismic


def test_amplitude_is_zero_mean_and_finite(survey):
    amp = survey.amplitude
    assert np.isfinite(amp).all()
    assert abs(float(amp.mean())) < 0.1 * float(amp.std())
    assert 100.0 < float(amp.std()) < 1e5


def test_dominant_frequency_is_seismic(survey):
    spectrum = np.abs(np.fft.rfft(survey.amplitude, axis=2)).mean(axis=(0, 1))
    freqs = np.fft.rfftfreq(SHAPE[2], d=0.004)
    assert 15.0 <= freqs[np.argmax(spectrum)] <= 40.0


def test_units_differ_in_seismic_character(survey):
    amp, units = survey.amplitude, survey.units

    def interior_rms(inner):
        return float(np.sqrt(np.mean(amp[inner] ** 2)))

    # Away from unit tops and bases, so a boundary reflection does not count.
    rms = [interior_rms(ndimage.binary_erosion(units == c, structure=np.ones((1, 1, 5), bool)))
           for c in range(4)]
    reservoir, shale = rms[1], rms[2]
    assert reservoir > 1.3 * shale  # strongly layered versus nearly transparent
    assert max(rms) > 1.5 * min(rms)
    # Salt interior, a few cells away from its top and flanks: low reflectivity.
    salt_core = ndimage.binary_erosion(units == SALT, iterations=3)
    assert salt_core.sum() > 50
    assert interior_rms(salt_core) < 0.6 * float(np.median(rms))

    # The top of the salt is a strong reflection.
    salt = units == SALT
    has_salt = salt.any(axis=2)
    top = np.argmax(salt, axis=2)[has_salt]
    traces = amp[has_salt]
    window = np.stack([traces[np.arange(len(top)), np.clip(top + d, 0, SHAPE[2] - 1)]
                       for d in range(-2, 3)], axis=1)
    assert np.median(np.abs(window).max(axis=1)) > 1.5 * float(amp.std())


# ----------------------------------------------------------------------------- wells


def _sample_classes(survey, well):
    t = survey.samples_ms
    return t, (t >= well["top"]) & (t <= well["base"])


def test_wells_cover_all_classes_and_match_ground_truth(survey):
    rows = survey.wells
    names = sorted({r["well"] for r in rows})
    assert len(names) == 9
    assert {r["class"] for r in rows} == set(CLASS_NAMES)
    il_index = {il: i for i, il in enumerate(survey.ilines)}
    xl_index = {xl: j for j, xl in enumerate(survey.xlines)}
    for name in names:
        intervals = [r for r in rows if r["well"] == name]
        assert len({(r["iline"], r["xline"], r["x"], r["y"]) for r in intervals}) == 1  # vertical
        i, j = il_index[intervals[0]["iline"]], xl_index[intervals[0]["xline"]]
        # Inside the survey and away from its edges.
        assert 2 <= i < SHAPE[0] - 2 and 2 <= j < SHAPE[1] - 2
        assert intervals[0]["x"] == pytest.approx(survey.cdp_x[i, j], abs=0.01)
        assert intervals[0]["y"] == pytest.approx(survey.cdp_y[i, j], abs=0.01)
        covered = np.zeros(SHAPE[2], int)
        for r in intervals:
            _, inside = _sample_classes(survey, r)
            assert inside.any() and r["top"] < r["base"]
            assert (survey.units[i, j, inside] == CLASS_NAMES.index(r["class"])).all()
            covered += inside
        assert (covered == 1).all()  # the intervals tile the trace exactly once
    # Two wells go into the salt: one at its crest, one on its flank through the layers.
    salt_wells = {r["well"] for r in rows if r["class"] == "Salt"}
    assert len(salt_wells) == 2
    flank = [{r["class"] for r in rows if r["well"] == w} for w in sorted(salt_wells)]
    assert any({"Upper reservoir", "Salt"} <= classes for classes in flank)


def test_well_count_is_a_parameter():
    rows = generate_demo_survey(SHAPE, seed=2, n_wells=6).wells
    assert len({r["well"] for r in rows}) == 6
    assert {r["class"] for r in rows} == set(CLASS_NAMES)


# ----------------------------------------------------------------------------- files


def _stat(files: DemoFiles):
    return {p: (os.stat(p).st_ino, os.stat(p).st_mtime_ns)
            for p in (files.segy, files.units, files.wells, files.classes)}


def test_build_writes_files_that_reopen(tmp_path, survey):
    files = build_demo_survey(tmp_path / "demo", shape=SHAPE, seed=0)
    assert files.folder == tmp_path / "demo"
    assert files.segy.name == "demo.sgy"

    with segyio.open(files.segy, iline=189, xline=193) as f:
        np.testing.assert_array_equal(f.ilines, survey.ilines)
        np.testing.assert_array_equal(f.xlines, survey.xlines)
        np.testing.assert_allclose(f.samples, survey.samples_ms)
        np.testing.assert_array_equal(segyio.tools.cube(f), survey.amplitude)
        scalar = f.header[0][segyio.TraceField.SourceGroupScalar]
        factor = 1.0 / abs(scalar) if scalar < 0 else float(scalar or 1)
        k = 5 * len(survey.xlines) + 7  # inline-sorted: trace (5, 7)
        assert f.header[k][segyio.TraceField.CDP_X] * factor == pytest.approx(
            survey.cdp_x[5, 7], abs=0.01)
        assert f.header[k][segyio.TraceField.CDP_Y] * factor == pytest.approx(
            survey.cdp_y[5, 7], abs=0.01)
        text = f.text[0].decode("ascii", errors="replace").upper()
        assert "SYNTHETIC" in text and "SEED 0" in text and "RICKER" in text

    units = np.load(files.units, allow_pickle=False)
    assert units.dtype == np.int16
    np.testing.assert_array_equal(units, survey.units)

    with open(files.wells, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        assert reader.fieldnames == ["well", "iline", "xline", "x", "y", "top", "base", "class"]
        rows = list(reader)
    assert len(rows) == len(survey.wells)
    for got, want in zip(rows, survey.wells, strict=True):
        assert got["well"] == want["well"] and got["class"] == want["class"]
        assert (int(got["iline"]), int(got["xline"])) == (want["iline"], want["xline"])
        for key in ("x", "y", "top", "base"):
            assert float(got[key]) == pytest.approx(want[key])

    classes = json.loads(files.classes.read_text(encoding="utf-8"))
    assert [c["id"] for c in classes] == list(range(5))
    assert tuple(c["name"] for c in classes) == survey.class_names
    assert tuple(c["colour"] for c in classes) == survey.class_colours


def test_build_skips_when_current_and_rebuilds_when_asked(tmp_path):
    folder = tmp_path / "demo"
    first = _stat(build_demo_survey(folder, shape=SHAPE, seed=0))
    assert _stat(build_demo_survey(folder, shape=SHAPE, seed=0)) == first

    rebuilt = _stat(build_demo_survey(folder, shape=SHAPE, seed=0, overwrite=True))
    assert all(rebuilt[p][0] != first[p][0] for p in first)  # atomic rename: new files

    files = build_demo_survey(folder, shape=SHAPE, seed=1)  # another seed: rebuilt
    assert all(_stat(files)[p][0] != rebuilt[p][0] for p in rebuilt)
    np.testing.assert_array_equal(np.load(files.units), generate_demo_survey(SHAPE, seed=1).units)


def test_build_redoes_an_incomplete_folder(tmp_path):
    files = build_demo_survey(tmp_path, shape=SHAPE, seed=0)
    files.wells.unlink()
    build_demo_survey(tmp_path, shape=SHAPE, seed=0)
    assert files.wells.is_file()


def test_command_line_builds_and_prints_paths(tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["--out", str(out), "--shape", "32", "32", "48", "--seed", "3"]) == 0
    printed = capsys.readouterr().out
    for name in ("demo.sgy", "demo_units.npy", "demo_wells.csv", "demo_classes.json"):
        assert str(out / name) in printed
        assert (out / name).is_file()
    np.testing.assert_array_equal(np.load(out / "demo_units.npy"),
                                  generate_demo_survey(SHAPE, seed=3).units)


def test_command_line_reports_bad_shape(tmp_path, capsys):
    assert main(["--out", str(tmp_path), "--shape", "4", "4", "4"]) == 2
    assert "shape" in capsys.readouterr().err


def test_default_folder_is_git_ignored_generated_dir():
    assert DEFAULT_DEMO_DIR.parts[-3:] == ("assets", "generated", "demo")
