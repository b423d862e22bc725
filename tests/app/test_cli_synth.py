"""``fhn synth``: a synthetic survey of a style, and the run it writes goes through the product."""

from __future__ import annotations

import json
import tomllib

import numpy as np
import pytest

from app.cli import main
from assets.demo_survey import generate_demo_survey


def test_synth_writes_a_survey_that_trains_predicts_and_evaluates(tmp_path, capsys):
    out = tmp_path / "survey"
    assert main(["synth", str(out), "--style", "faulted", "--seed", "17",
                 "--shape", "32", "32", "48"]) == 0
    printed = capsys.readouterr().out
    assert "faulted:" in printed and "fhn train" in printed
    for name in ("faulted-17.sgy", "faulted-17_wells.csv", "faulted-17_units.npy",
                 "faulted-17_classes.json", "run.toml"):
        assert (out / name).is_file()
    reference = np.load(out / "faulted-17_units.npy")
    np.testing.assert_array_equal(
        reference, generate_demo_survey((32, 32, 48), seed=17, style="faulted").units)

    run = tomllib.loads((out / "run.toml").read_text(encoding="utf-8"))
    assert run["data"] == {"path": "faulted-17.sgy"}
    assert run["labels"]["classes"] == ["Overburden", "Upper reservoir", "Shale", "Basement"]
    assert run["labels"]["radius"] == 3.0  # the demo recipe's borehole radius
    assert "design" not in run and "training" not in run  # fhn train's defaults decide

    # a tiny design: the command line is under test here, not the network's accuracy
    tiny = ["--set", "training.recipe=\"fixed\"",  # a fixed run: the settings as given
            "--set", "design.spatial_dims=3", "--set", "design.in_channels=4",
            "--set", "design.segments=[[0, 1, 4], [1, 1, 4], [0, 1, 4]]"]
    assert main(["train", str(out / "run.toml"), *tiny, "--iterations", "1",
                 "--device", "cpu"]) == 0
    prediction = out / "prediction.npy"
    assert main(["predict", str(out / "run" / "model"), str(out / "faulted-17.sgy"),
                 "--out", str(prediction), "--stratigraphic-order", "--device", "cpu"]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(prediction), str(out / "faulted-17_units.npy")]) == 0
    report = capsys.readouterr().out
    assert f"{reference.size} reference cells, 4 classes" in report
    assert "mean IoU" in report


def test_synth_of_the_demo_style_is_the_demo_survey(tmp_path, capsys):
    assert main(["synth", str(tmp_path), "--shape", "32", "32", "48", "--seed", "1"]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "demo_units.npy"),
                                  generate_demo_survey((32, 32, 48), seed=1).units)
    classes = json.loads((tmp_path / "demo_classes.json").read_text(encoding="utf-8"))
    assert [c["name"] for c in classes][-1] == "Salt"


def test_synth_refuses_an_unknown_style(tmp_path, capsys):
    assert main(["synth", str(tmp_path), "--style", "volcanic"]) == 2
    assert "invalid choice: 'volcanic'" in capsys.readouterr().err


def test_a_seismic_auto_run_maps_the_mean_of_the_network_and_the_forest(tmp_path, capsys):
    """The auto recipe's seismic default (fhn_core.blending): the model carries the forest's
    weight, fhn predict writes the mean of the two models' probabilities, --baseline-weight 0
    the network alone, and streamed prediction refuses what it cannot blend."""
    out = tmp_path / "survey"
    assert main(["synth", str(out), "--style", "salt", "--seed", "5",
                 "--shape", "32", "32", "48"]) == 0
    small = ["--set", "training.iterations=2", "--set", "training.budget_minutes=0.5",
             "--set", "training.folds=2", "--device", "cpu"]
    assert main(["train", str(out / "run.toml"), *small]) == 0
    record = json.loads((out / "run" / "cross_validation.json").read_text(encoding="utf-8"))
    model = json.loads((out / "run" / "model" / "model.json").read_text(encoding="utf-8"))
    assert record["baseline_weight"] == model["baseline_weight"] == 0.5
    assert "mean of the network's class probabilities and the per-cell baseline's" in \
        record["why"]
    capsys.readouterr()

    survey = str(out / "salt-5.sgy")
    written = {}
    for name, extra in (("map", []), ("network", ["--baseline-weight", "0"]),
                        ("forest", ["--baseline"])):
        written[name] = tmp_path / f"{name}.npy"
        assert main(["predict", str(out / "run"), survey, "--out", str(written[name]),
                     "--what", "probabilities", "--device", "cpu", *extra]) == 0
    assert "the map is the mean of the network's" in capsys.readouterr().out
    blend, network, forest = (np.load(written[n]) for n in ("map", "network", "forest"))
    np.testing.assert_allclose(blend, 0.5 * (network + forest), rtol=1e-5, atol=1e-6)
    assert not np.allclose(blend, network, atol=1e-3)

    assert main(["predict", str(out / "run"), survey, "--out", str(tmp_path / "s.npy"),
                 "--store", str(tmp_path / "s.zarr"), "--device", "cpu"]) == 2
    assert "--baseline-weight 0" in capsys.readouterr().err

    # another survey: the forest is refitted from the run's stored training table, so the
    # blend holds there too
    other = tmp_path / "other"
    assert main(["synth", str(other), "--style", "salt", "--seed", "6",
                 "--shape", "32", "32", "40"]) == 0
    there = {}
    for name, extra in (("map", []), ("network", ["--baseline-weight", "0"]),
                        ("forest", ["--baseline"])):
        there[name] = tmp_path / f"other-{name}.npy"
        assert main(["predict", str(out / "run"), str(other / "salt-6.sgy"), "--out",
                     str(there[name]), "--what", "probabilities", "--device", "cpu",
                     *extra]) == 0
    blend, network, forest = (np.load(there[n]) for n in ("map", "network", "forest"))
    assert blend.shape[1:] == (32, 32, 40)
    np.testing.assert_allclose(blend, 0.5 * (network + forest), rtol=1e-5, atol=1e-6)

    # data with other channels cannot take the stored table
    from types import SimpleNamespace

    from app import auto_run
    from io_adapters.errors import DataError

    folder = auto_run.baseline_folder(out / "run" / "model")
    n_features = json.loads((folder / "baseline.json").read_text())["features"]
    fewer = SimpleNamespace(data=np.zeros((n_features - 1, 8, 8, 8), np.float32),
                            slice_axis=None)
    with pytest.raises(DataError, match=f"trained on {n_features} features per cell"):
        auto_run.baseline_prediction(folder, fewer)

    # a run written before the table was stored refits on its own grid only, and says so
    stored = out / "run" / "baseline" / "labels.npz"
    with np.load(stored) as old:
        kept = {k: old[k] for k in ("index", "classes", "grid")}
    np.savez(stored, **kept)
    capsys.readouterr()
    assert main(["predict", str(out / "run"), str(other / "salt-6.sgy"), "--out",
                 str(tmp_path / "o.npy"), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "grid" in err and "--baseline-weight 0" in err
    assert main(["predict", str(out / "run"), str(other / "salt-6.sgy"), "--out",
                 str(tmp_path / "o.npy"), "--baseline-weight", "0", "--device", "cpu"]) == 0
    assert main(["predict", str(out / "run"), survey, "--out", str(tmp_path / "m.npy"),
                 "--what", "probabilities", "--device", "cpu"]) == 0
    np.testing.assert_allclose(np.load(tmp_path / "m.npy"), np.load(written["map"]),
                               rtol=1e-5, atol=1e-6)  # the same trees either way
