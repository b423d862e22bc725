"""The CLI on a tiny two-date scene: ensembles, points, regions and class names, end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tomli_w
from PIL import Image

from app.cli import main

SHAPE = (24, 24, 3)  # lines, samples, bands
TINY = {"in_channels": 6, "spatial_dims": 2, "segments": [[0, 1, 4], [1, 1, 6], [0, 1, 4]]}


def _write_envi(path: Path, cube: np.ndarray) -> Path:
    lines, samples, bands = cube.shape
    path.write_bytes(np.transpose(cube, (2, 0, 1)).astype("<f4").tobytes())
    header = path.with_suffix(".hdr")
    header.write_text(f"ENVI\nsamples = {samples}\nlines = {lines}\nbands = {bands}\n"
                      "header offset = 0\nfile type = ENVI Standard\ndata type = 4\n"
                      "interleave = bsq\nbyte order = 0\n")
    return header


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """Two dates with a changed square, the change / unchanged masks, the truth."""
    folder = tmp_path_factory.mktemp("scene")
    rng = np.random.default_rng(3)
    before = rng.normal(size=SHAPE).astype(np.float32)
    after = before + 0.1 * rng.normal(size=SHAPE).astype(np.float32)
    after[6:14, 4:12] += 3.0
    after[14:20, 16:22] -= 3.0
    truth = np.ones(SHAPE[:2], np.int64)       # 0 changed, 1 unchanged
    truth[6:14, 4:12] = truth[14:20, 16:22] = 0
    dates = [_write_envi(folder / "t1.img", before), _write_envi(folder / "t2.img", after)]
    for name, member in (("change.png", truth == 0), ("unchanged.png", truth == 1)):
        Image.fromarray((member * 255).astype(np.uint8)).save(folder / name)
    return folder, dates, truth


def _run_toml(folder: Path, dates, **training) -> Path:
    config = {
        "output": "run",
        "data": {"path": [str(d) for d in dates]},
        "labels": {"masks": ["change.png", "unchanged.png"]},
        "design": dict(TINY),
        "training": {"recipe": "fixed",  # a fixed run: the settings as given
                     "iterations": 3, "validate_every": 0, "validation_fraction": 0.0,
                     "checkpoint_every": 0, "device": "cpu", "learning_rate": 0.01,
                     **training},
    }
    path = folder / "run.toml"
    path.write_text(tomli_w.dumps(config))
    return path


def test_an_ensemble_run_trains_saves_and_predicts_every_member(scene, tmp_path, capsys):
    folder, dates, _ = scene
    config = _run_toml(folder, dates, ensemble=2)
    out = tmp_path / "run"
    assert main(["train", str(config), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "an ensemble of 2 networks" in printed
    assert "estimated time: about" in printed and "2 networks x (3 iterations" in printed
    info = json.loads((out / "model" / "model.json").read_text())
    assert info["ensemble"] == 2 and (out / "model" / "member-1.safetensors").is_file()
    assert (out / "checkpoint-1" / "training.json").is_file()
    # resuming a finished ensemble with more iterations continues both members
    assert main(["train", str(config), "--out", str(out), "--resume", "--iterations", "4",
                 "--no-estimate"]) == 0
    for name in ("checkpoint", "checkpoint-1"):
        assert json.loads((out / name / "training.json").read_text())["iteration"] == 4
    # two dates: labels drawn per class, so prediction re-estimates the scene's class mix
    assert info["class_priors"] == "scene" and info["training_prior"] == [0.5, 0.5]
    target = tmp_path / "classes.npy"
    capsys.readouterr()
    assert main(["predict", str(out), *map(str, dates), "--out", str(target),
                 "--device", "cpu"]) == 0
    assert np.load(target).shape == SHAPE[:2]
    assert "class mix re-estimated on the scene: change" in capsys.readouterr().out
    assert main(["predict", str(out), *map(str, dates), "--out", str(target),
                 "--device", "cpu", "--class-priors", "training"]) == 0
    assert "re-estimated" not in capsys.readouterr().out


def test_evaluate_takes_masks_points_a_region_and_the_models_class_names(scene, tmp_path,
                                                                          capsys):
    folder, _, truth = scene
    prediction = truth.copy()
    prediction[:, 12:][truth[:, 12:] == 0] = 1        # every change east of x = 12 missed
    np.save(tmp_path / "pred.npy", prediction)
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.json").write_text(json.dumps({"class_names": ["changed", "unchanged"]}))
    args = ["evaluate", str(tmp_path / "pred.npy"), "--masks", str(folder / "change.png"),
            str(folder / "unchanged.png"), "--model", str(model)]
    assert main([*args, "--region", "x < 12"]) == 0
    west = capsys.readouterr().out
    assert f"{24 * 12} reference cells in the region x < 12" in west
    assert "changed" in west and "class 0" not in west and "kappa 1.0000" in west
    assert main([*args, "--region", "x >= 12"]) == 0
    east = capsys.readouterr().out
    assert "kappa 0.0000" in east   # every scored change missed, every no-change right
    # points with radius 0: exactly the cells listed
    points = tmp_path / "points.csv"
    points.write_text("row,col,class\n7,5,changed\n15,17,changed\n0,0,unchanged\n")
    assert main(["evaluate", str(tmp_path / "pred.npy"), str(points), "--model",
                 str(model)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("3 reference cells, 2 classes")
    assert "overall accuracy 0.6667" in out   # (15, 17) is east of 12: missed


def test_evaluate_refuses_a_region_it_cannot_read(scene, tmp_path, capsys):
    _, _, truth = scene
    np.save(tmp_path / "pred.npy", truth)
    assert main(["evaluate", str(tmp_path / "pred.npy"), str(tmp_path / "pred.npy"),
                 "--region", "z > 3"]) == 2
    err = capsys.readouterr().err
    assert "no axis 'z'" in err and "Traceback" not in err
    assert main(["evaluate", str(tmp_path / "pred.npy")]) == 2
    assert "give the reference" in capsys.readouterr().err


def test_sample_points_draws_seeded_points_in_the_region_that_train_reads(scene, tmp_path,
                                                                          capsys):
    folder, dates, truth = scene
    points = tmp_path / "points.csv"
    args = ["sample-points", "--masks", str(folder / "change.png"),
            str(folder / "unchanged.png"), "--per-class", "5", "--region", "x < 12",
            "--seed", "4", "--out", str(points)]
    assert main(args) == 0
    assert "10 points (5 per class in x < 12, seed 4)" in capsys.readouterr().out
    rows = [line.split(",") for line in points.read_text().splitlines()[1:]]
    assert len(rows) == 10
    for r, c, name in rows:
        assert int(c) < 12 and name == ("changed" if truth[int(r), int(c)] == 0
                                        else "unchanged")
    first = points.read_text()
    assert main(args) == 0 and points.read_text() == first   # seeded
    # radius 0 by default: training labels exactly those ten cells
    from app.cli.run_config import read_labels
    from io_adapters.open_data import load_data

    labelset = read_labels({"points": str(points)}, load_data([*dates]), tmp_path)
    assert (labelset.labels >= 0).sum() == 10
    for r, c, name in rows:
        assert labelset.class_names[labelset.labels[int(r), int(c)]] == name
    with_radius = read_labels({"points": str(points), "radius": 1.0},
                               load_data([*dates]), tmp_path)
    assert (with_radius.labels >= 0).sum() > 10


def test_change_channels_and_every_slice_train_and_predict_end_to_end(scene, tmp_path,
                                                                       capsys):
    folder, dates, truth = scene
    config = {
        "output": str(tmp_path / "run"),
        "data": {"path": [str(d) for d in dates], "change_channels": True,
                 "every_slice": True},
        "labels": {"masks": [str(folder / "change.png"), str(folder / "unchanged.png")]},
        "design": {"in_channels": 6, "spatial_dims": 3, "zero_channels": 2,
                   "segments": [[0, 1, 4], [1, 1, 6], [0, 1, 4]]},
        "training": {"recipe": "fixed",  # a fixed run: the settings as given
                     "iterations": 2, "validate_every": 0, "validation_fraction": 0.0,
                     "checkpoint_every": 0, "device": "cpu", "patch": [0, 16, 16]},
    }
    path = tmp_path / "run.toml"
    path.write_text(tomli_w.dumps(config))
    assert main(["train", str(path), "--no-estimate"]) == 0
    info = json.loads((tmp_path / "run" / "model" / "model.json").read_text())
    assert info["channel_names"][2:] == ["t2 - t1", "||t2 - t1||"]
    assert info["averaged_axis"] == 0 and info["slice_axis"] is None
    target = tmp_path / "classes.npy"
    assert main(["predict", str(tmp_path / "run"), *map(str, dates), "--out", str(target),
                 "--device", "cpu", "--augment"]) == 0
    assert np.load(target).shape == SHAPE[:2]
    capsys.readouterr()
    config["data"]["change_channels"] = "yes"
    path.write_text(tomli_w.dumps(config))
    assert main(["train", str(path)]) == 2
    assert "change_channels must be true or false" in capsys.readouterr().err
