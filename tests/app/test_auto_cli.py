"""`fhn train` with the auto recipe (the default) on a tiny map: the cross-validated record,
the baseline beside the network, `fhn predict --baseline` on the source grid; and the
settings the user fixed kept."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np
import pytest
import rasterio
import tomli_w
from rasterio.transform import Affine

from app.cli import main


def _scene(folder: Path, seed: int = 0, shape=(32, 32)) -> tuple[Path, Path, np.ndarray]:
    """A 2-band GeoTIFF whose first band tells two classes apart, and sparse point labels
    (.npy: 0 none, 1..2 classes)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    truth = ((np.sin(xx / 5.0) + np.cos(yy / 7.0)) > 0).astype(np.int64)
    bands = np.stack([truth * 2.0 - 1.0 + 0.3 * rng.standard_normal(shape),
                      rng.standard_normal(shape)]).astype(np.float32)
    tif = folder / "scene.tif"
    with rasterio.open(tif, "w", driver="GTiff", width=shape[1], height=shape[0], count=2,
                       dtype="float32", crs="EPSG:32633",
                       transform=Affine(30, 0, 500000, 0, -30, 4000000)) as dst:
        dst.write(bands)
    labels = np.zeros(shape, dtype=np.int16)
    ys, xs = rng.integers(0, shape[0], 120), rng.integers(0, shape[1], 120)
    labels[ys, xs] = truth[ys, xs] + 1
    np.save(folder / "labels.npy", labels)
    return tif, folder / "labels.npy", truth


def _run_toml(folder: Path, training: dict, design: dict | None = None) -> Path:
    config = {"output": "run", "data": {"path": "scene.tif"},
              "labels": {"path": "labels.npy", "classes": ["water", "land"]},
              "training": {"device": "cpu", "learning_rate": 0.02, "checkpoint_every": 0,
                           **training}}
    if design is not None:
        config["design"] = design
    path = folder / "run.toml"
    path.write_text(tomli_w.dumps(config))
    return path


def test_auto_is_the_default_and_writes_the_cross_validated_record(tmp_path, capsys):
    tif, _, truth = _scene(tmp_path)
    toml = _run_toml(tmp_path, {"iterations": 8, "folds": 2, "budget_minutes": 10,
                                "ensemble": 1}, design={"layers_per_level": 1})
    assert main(["train", str(toml)]) == 0
    out = capsys.readouterr().out
    assert "cross-validated on spatial folds" in out
    assert "network kappa" in out and "baseline" in out and "(2 spatial folds" in out
    record = json.loads((tmp_path / "run" / "cross_validation.json").read_text())
    assert record["recipe"] == "auto" and record["folds"]["n_folds"] == 2
    assert record["iterations"] == 8 and record["iterations_chosen"] is False  # user fixed
    assert set(record["network"]["class_iou"]) == {"water", "land"}
    assert len(record["network"]["fold_kappa"]) == 2
    assert record["baseline"]["kappa"] > 0.5  # band 1 tells the classes apart
    assert record["baseline_wins"] == (record["baseline"]["kappa"] > record["network"]["kappa"])
    # the user gave a design and one network: only the forest guide is open for a map
    assert [c["overrides"] for c in record["candidates"]] == [
        {}, {"training.guide": "forest", "training.patch": [128, 128]}]
    assert {"cross_validation", "final_training"} <= set(record["timings_seconds"])
    assert (tmp_path / "run" / "model" / "model.json").is_file()

    written = tmp_path / "baseline.tif"
    assert main(["predict", str(tmp_path / "run"), str(tif), "--out", str(written),
                 "--baseline"]) == 0
    with rasterio.open(written) as src, rasterio.open(tif) as ref:
        classes = src.read(1)
        assert src.transform == ref.transform and src.crs == ref.crs
    assert (classes == truth).mean() > 0.85
    again = tmp_path / "again.tif"  # refitted from the stored cells and seed: the same map
    assert main(["predict", str(tmp_path / "run" / "model"), str(tif), "--out", str(again),
                 "--baseline"]) == 0
    with rasterio.open(again) as src:
        assert np.array_equal(src.read(1), classes)


def test_a_fixed_run_trains_the_settings_as_given_and_has_no_baseline(tmp_path, capsys):
    tif, _, _ = _scene(tmp_path, seed=1)
    toml = _run_toml(tmp_path, {"iterations": 2, "recipe": "fixed"},
                     design={"layers_per_level": [1, 2], "rank": 4})
    assert main(["train", str(toml)]) == 0
    assert "recipe fixed" in capsys.readouterr().out
    design = tomllib.loads((tmp_path / "run" / "model" / "design.toml").read_text())
    assert design["segments"] == [[0, 1, 4], [1, 2, 4], [0, 1, 4]]
    assert not (tmp_path / "run" / "cross_validation.json").exists()
    assert main(["predict", str(tmp_path / "run"), str(tif), "--out",
                 str(tmp_path / "b.tif"), "--baseline"]) == 2
    assert "train with recipe = \"auto\"" in capsys.readouterr().err


@pytest.mark.parametrize("bad", ["recipe = \"best\"", "budget_minutes = 0", "folds = 1"])
def test_bad_recipe_settings_are_one_line_errors(tmp_path, capsys, bad):
    _scene(tmp_path, seed=2)
    toml = _run_toml(tmp_path, {"iterations": 2})
    key, _, value = bad.partition(" = ")
    assert main(["train", str(toml), "--set", f"training.{key}={value}"]) == 2
    err = capsys.readouterr().err
    assert err.count("fhn: error:") == 1 and key in err


def test_auto_on_two_dates_scores_the_forest_guided_candidate_and_keeps_its_settings(
        tmp_path, capsys):
    """A tiny two-date scene: the guided candidate (the dates' first) is scored on the
    spatial folds and, alone within a tiny budget, adopted; its guide and window reach the
    final training, the record that --resume reads, and the map."""
    from app.auto_run import final_config_of
    from tests.app.test_cli_change import _write_envi

    rng = np.random.default_rng(5)
    before = rng.normal(size=(32, 32, 3)).astype(np.float32)
    after = before + 0.1 * rng.normal(size=before.shape).astype(np.float32)
    truth = np.ones((32, 32), np.int64)  # 0 changed, 1 unchanged
    truth[4:14, 6:20] = truth[20:30, 18:28] = 0
    after[truth == 0] += 2.5
    dates = [_write_envi(tmp_path / "t1.img", before), _write_envi(tmp_path / "t2.img", after)]
    points = np.zeros((32, 32), np.int16)
    ys, xs = rng.integers(0, 32, 90), rng.integers(0, 32, 90)
    points[ys, xs] = truth[ys, xs] + 1
    np.save(tmp_path / "points.npy", points)
    config = {"output": "run", "data": {"path": [str(d) for d in dates]},
              "labels": {"path": "points.npy", "classes": ["changed", "unchanged"]},
              "training": {"device": "cpu", "learning_rate": 0.02, "checkpoint_every": 0,
                           "iterations": 6, "folds": 2, "budget_minutes": 0.001}}
    (tmp_path / "run.toml").write_text(tomli_w.dumps(config))
    assert main(["train", str(tmp_path / "run.toml")]) == 0
    record = json.loads((tmp_path / "run" / "cross_validation.json").read_text())
    guided = record["candidates"][0]
    assert guided["name"] == "change channels, forest-guided" and guided["status"] == "scored"
    assert len(guided["score"]["fold_kappa"]) == 2
    assert [c["status"] for c in record["candidates"][1:]] == ["skipped"] * 4
    assert record["chosen"] == guided["name"]
    assert record["overrides"]["training.guide"] == "forest"
    # the map of two dates takes the scene's class mix, and is scored as such
    assert record["map_label"] == "the scene's class mix" and record["baseline_weight"] == 0
    assert len(record["map"]["fold_kappa"]) == 2
    assert "the map (the scene's class mix)" in record["score_line"]
    assert "the map (the scene's class mix)" in capsys.readouterr().out
    final = final_config_of(record)  # what --resume continues with
    assert final.guide == "forest" and final.patch == (128, 128)
    assert (final.guide_threshold, final.guide_weight) == (0.7, 0.5)
    out = tmp_path / "map.npy"
    assert main(["predict", str(tmp_path / "run"), *map(str, dates), "--out", str(out)]) == 0
    assert (np.load(out) == truth).mean() > 0.7
    capsys.readouterr()


def test_a_fixed_run_takes_the_guide_from_the_run_toml(tmp_path, capsys):
    tif, _, truth = _scene(tmp_path, seed=3)
    toml = _run_toml(tmp_path, {"iterations": 30, "recipe": "fixed", "guide": "forest",
                                "guide_threshold": 0.8, "guide_weight": 0.3,
                                "patch": [16, 16], "validation_fraction": 0.0},
                     design={"layers_per_level": 1})
    assert main(["train", str(toml)]) == 0
    out = tmp_path / "map.tif"
    assert main(["predict", str(tmp_path / "run"), str(tif), "--out", str(out)]) == 0
    with rasterio.open(out) as src:
        assert (src.read(1) == truth).mean() > 0.8
    bad = _run_toml(tmp_path, {"iterations": 2, "recipe": "fixed", "guide": "teacher"})
    assert main(["train", str(bad)]) == 2
    assert "guide must be one of" in capsys.readouterr().err
