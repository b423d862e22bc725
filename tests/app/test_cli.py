"""The fhn command line, in process (main([...])) and once as a real subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import tomllib
from pathlib import Path

import numpy as np
import pytest
import segyio
import tomli_w
from PIL import Image

from app.cli import main
from app.demo import RECIPE_PATH
from app.layout import layout_for_model
from io_adapters.labels import LabelSet, save_labels
from io_adapters.open_data import load_class_map

REPO = Path(__file__).resolve().parents[2]
# Tiny on purpose: the CLI is under test here, not the network's accuracy.
TINY_DESIGN = {"in_channels": 4, "spatial_dims": 3,
               "segments": [[0, 1, 4], [1, 1, 4], [0, 1, 4]]}
WELLS = """well,iline,xline,top,base,class
A,115,880,4,120,upper
A,115,880,124,300,lower
B,128,888,4,160,upper
B,128,888,164,300,middle
"""


def _config(tmp_path: Path, shared_data: Path, **changes) -> Path:
    (tmp_path / "wells.csv").write_text(WELLS)
    config = {
        "output": "run",
        "data": {"path": str(shared_data / "segy" / "f3.sgy")},
        "labels": {"path": "wells.csv", "radius": 1.0},
        "design": dict(TINY_DESIGN),
        "training": {"recipe": "fixed",  # a fixed run: the settings as given
                     "iterations": 2, "validate_every": 2, "checkpoint_every": 0,
                     "device": "cpu", "validation_fraction": 0.2},
    }
    for key, value in changes.items():
        section, _, name = key.partition("__")
        if name:
            config[section][name] = value
        else:
            config[section] = value
    path = tmp_path / "run.toml"
    path.write_text(tomli_w.dumps(config))
    return path


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("fhn: error: ")]
    assert len(errors) == 1, err
    assert "Traceback" not in err
    return errors[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, shared_data):
    """One tiny training run on f3.sgy with borehole labels, shared by the tests below."""
    folder = tmp_path_factory.mktemp("train")
    data = {"path": str(shared_data / "segy" / "f3.sgy"), "vertical_channel": True,
            "envelope_channel": True, "semblance_channel": True}
    config = _config(folder, shared_data, data=data)
    code = main(["train", str(config), "--set", "training.learning_rate=0.005"])
    return folder, code


# --------------------------------------------------------------------------- estimate
def test_estimate_prints_the_three_rows_and_the_verdict(capsys):
    assert main(["estimate", "seismic-3d", "--input-shape", "1", "12", "248", "248", "248",
                 "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    for row in ("invertible + BLR", "invertible, no BLR", "non-invertible + BLR"):
        assert row in out
    assert "fits" in out.lower()
    assert main(["estimate", "seismic-3d", "--input-shape", "1", "12", "4096", "4096", "4096",
                 "--device", "cpu"]) == 0
    assert "DOES NOT FIT" in capsys.readouterr().out


def test_estimate_reads_a_design_file(tmp_path, capsys):
    design = tmp_path / "d.toml"
    design.write_text(tomli_w.dumps(TINY_DESIGN))
    assert main(["estimate", str(design), "--input-shape", "1", "4", "32", "32", "32",
                 "--device", "cpu"]) == 0
    assert "3 layers" in capsys.readouterr().out
    assert main(["estimate", str(design), "--input-shape", "1", "5", "32", "32", "32"]) == 2
    assert "channel" in _one_error_line(capsys.readouterr().err)


# --------------------------------------------------------------------------- train
def test_train_writes_checkpoint_model_and_metrics(trained, capsys):
    folder, code = trained
    assert code == 0
    run = folder / "run"
    state = json.loads((run / "checkpoint" / "training.json").read_text())
    assert state["iteration"] == 2
    assert state["config"]["learning_rate"] == 0.005  # from --set
    info = json.loads((run / "model" / "model.json").read_text())
    assert info["class_names"] == ["upper", "lower", "middle"]
    # [data] asked for both attribute channels; `fhn predict` rebuilds them from these names
    assert info["channel_names"][0] == "amplitude"
    assert info["channel_names"][2:] == ["envelope", "semblance"]
    assert (run / "model" / "model.safetensors").is_file()


def test_train_prints_validation_table(tmp_path, shared_data, capsys):
    config = _config(tmp_path, shared_data, training__iterations=1)
    assert main(["train", str(config), "--out", str(tmp_path / "elsewhere")]) == 0
    out = capsys.readouterr().out
    assert "validation" in out and "kappa" in out and "upper" in out
    assert (tmp_path / "elsewhere" / "model" / "model.json").is_file()


def test_ctrl_c_stops_with_a_checkpoint_and_resume_continues(tmp_path, shared_data, capsys):
    config = _config(tmp_path, shared_data, training__iterations=100000,
                     training__validate_every=0)
    default = signal.getsignal(signal.SIGINT)

    def interrupt() -> None:  # once the CLI's handler is in place, press Ctrl-C
        deadline = time.monotonic() + 60
        while signal.getsignal(signal.SIGINT) is default and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.3)
        os.kill(os.getpid(), signal.SIGINT)

    thread = threading.Thread(target=interrupt)
    thread.start()
    code = main(["train", str(config)])
    thread.join()
    assert code == 130
    assert signal.getsignal(signal.SIGINT) is default  # handler restored
    state = json.loads((tmp_path / "run" / "checkpoint" / "training.json").read_text())
    done = state["iteration"]
    assert 1 <= done < 100000
    assert (tmp_path / "run" / "model" / "model.json").is_file()
    capsys.readouterr()
    assert main(["train", str(config), "--resume", "--iterations", str(done + 1)]) == 0
    assert "resuming" in capsys.readouterr().out
    state = json.loads((tmp_path / "run" / "checkpoint" / "training.json").read_text())
    assert state["iteration"] == done + 1


# --------------------------------------------------------------------------- predict/evaluate
def test_predict_writes_segy_on_the_source_grid(trained, shared_data, tmp_path, capsys):
    folder, _ = trained
    source = shared_data / "segy" / "f3.sgy"
    out = tmp_path / "classes.sgy"
    assert main(["predict", str(folder / "run"), str(source), "--out", str(out),
                 "--device", "cpu"]) == 0
    with segyio.open(source) as src, segyio.open(out) as dst:
        np.testing.assert_array_equal(dst.ilines, src.ilines)
        np.testing.assert_array_equal(dst.xlines, src.xlines)
        np.testing.assert_array_equal(dst.samples, src.samples)
        for i in (0, src.tracecount - 1):
            assert dict(dst.header[i]) == dict(src.header[i])
        values = segyio.tools.cube(dst)
    assert set(np.unique(values)) <= {0.0, 1.0, 2.0}
    entropy = tmp_path / "entropy.npy"
    assert main(["predict", str(folder / "run" / "model"), str(source), "--out",
                 str(entropy), "--what", "entropy", "--block", "16", "--device", "cpu"]) == 0
    e = np.load(entropy)
    assert e.shape == (23, 18, 75) and 0 <= e.min() and e.max() <= 1


def test_predict_augment_averages_over_flips(trained, shared_data, tmp_path, capsys):
    from fhn_core.checkpoint import TrainedModel
    from fhn_core.prediction import predict
    from io_adapters.segy import read_segy

    folder, _ = trained
    source = shared_data / "segy" / "f3.sgy"
    out = tmp_path / "probabilities.npy"
    assert main(["predict", str(folder / "run"), str(source), "--out", str(out),
                 "--what", "probabilities", "--augment", "--device", "cpu"]) == 0
    model = TrainedModel.load(folder / "run" / "model")
    layout = layout_for_model(read_segy(source), model)
    want = predict(model, layout.data, augment=True, device="cpu").probabilities
    plain = predict(model, layout.data, device="cpu").probabilities
    np.testing.assert_allclose(np.load(out), want, atol=1e-6)
    assert np.abs(want - plain).max() > 1e-4  # the flag changed what was computed


def test_predict_keeps_the_wells_order_down_every_trace(trained, shared_data, tmp_path):
    folder, _ = trained
    model = json.loads((folder / "run" / "model" / "model.json").read_text())
    names = model["class_names"]
    # both wells have "upper" on top; "lower" and "middle" never meet, so table order
    assert [names[c] for c in model["class_order"]][0] == "upper"
    out = tmp_path / "classes.npy"
    assert main(["predict", str(folder / "run"), str(shared_data / "segy" / "f3.sgy"),
                 "--out", str(out), "--stratigraphic-order", "--device", "cpu"]) == 0
    rank = np.argsort(model["class_order"])[np.load(out).astype(int)]
    assert (np.diff(rank, axis=2) >= 0).all()   # (iline, xline, samples): never back up


def test_evaluate_prints_kappa_and_writes_an_error_map(trained, shared_data, tmp_path, capsys):
    folder, _ = trained
    pred = tmp_path / "classes.sgy"
    assert main(["predict", str(folder / "run"), str(shared_data / "segy" / "f3.sgy"),
                 "--out", str(pred), "--device", "cpu"]) == 0
    classes = load_class_map(pred)
    reference = classes.copy()
    reference[:, :, :10] = -1                          # unlabelled: not scored
    reference[0] = (reference[0] + 1) % 3              # one inline wrong where labelled
    np.save(tmp_path / "ref.npy", reference)
    capsys.readouterr()
    png = tmp_path / "errors.png"
    assert main(["evaluate", str(pred), str(tmp_path / "ref.npy"), "--classes", "3",
                 "--error-map", str(png)]) == 0
    out = capsys.readouterr().out
    assert "kappa" in out and "mean IoU" in out
    scored = reference >= 0
    expected = (classes[scored] == reference[scored]).mean()
    assert f"overall accuracy {expected:.4f}" in out
    with Image.open(png) as img:
        assert img.format == "PNG" and img.size[0] > 100


# --------------------------------------------------------------------------- user errors
def test_missing_file_is_one_clear_line(tmp_path, shared_data, capsys):
    assert main(["train", str(tmp_path / "nope.toml")]) == 2
    assert "nope.toml" in _one_error_line(capsys.readouterr().err)
    config = _config(tmp_path, shared_data, data={"path": str(tmp_path / "gone.sgy")})
    assert main(["train", str(config)]) == 2
    assert "gone.sgy" in _one_error_line(capsys.readouterr().err)
    assert main(["evaluate", str(tmp_path / "a.npy"), str(tmp_path / "b.npy")]) == 2
    assert "a.npy" in _one_error_line(capsys.readouterr().err)


def test_design_that_does_not_fit_the_data(tmp_path, shared_data, capsys):
    flat = dict(TINY_DESIGN, spatial_dims=2)
    assert main(["train", str(_config(tmp_path, shared_data, design=flat))]) == 2
    assert "2D" in _one_error_line(capsys.readouterr().err)
    narrow = dict(TINY_DESIGN, in_channels=1)  # 3 classes need 3 output channels
    assert main(["train", str(_config(tmp_path, shared_data, design=narrow))]) == 2
    assert "in_channels" in _one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "run" / "checkpoint").exists()


def test_labels_on_another_grid(tmp_path, shared_data, capsys):
    other = LabelSet.empty((20, 18, 75), ["a", "b"])
    other.labels[0, 0, :5] = 1
    save_labels(tmp_path / "other.npz", other)
    config = _config(tmp_path, shared_data, labels={"path": "other.npz"})
    assert main(["train", str(config)]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "(20, 18, 75)" in line and "(23, 18, 75)" in line


def test_bad_set_and_usage_errors_exit_2(tmp_path, shared_data, capsys):
    config = _config(tmp_path, shared_data)
    assert main(["train", str(config), "--set", "training.no_such_thing=1"]) == 2
    assert "no_such_thing" in _one_error_line(capsys.readouterr().err)
    assert main(["train", str(config), "--set", "nonsense"]) == 2
    assert main(["estimate"]) == 2  # argparse: missing arguments
    assert main(["--help"]) == 0
    assert "estimate" in capsys.readouterr().out


def test_real_process_exit_code_and_no_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "predict", str(tmp_path / "no-model"),
         str(tmp_path / "no-data.sgy"), "--out", str(tmp_path / "x.sgy")],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert "no-model" in _one_error_line(result.stderr)


# --------------------------------------------------------------------------- demo
def test_demo_trains_and_scores_against_the_ground_truth(tmp_path, capsys):
    recipe = tomllib.loads(RECIPE_PATH.read_text(encoding="utf-8"))
    recipe["design"] = dict(recipe["design"], segments=[[0, 1, 4], [1, 1, 4], [0, 1, 4]])
    tiny = tmp_path / "recipe.toml"
    tiny.write_text(tomli_w.dumps(recipe))
    code = main(["demo", "--shape", "32", "32", "48", "--iterations", "1", "--device", "cpu",
                 "--demo-dir", str(tmp_path / "survey"), "--out", str(tmp_path / "out"),
                 "--recipe", str(tiny)])
    assert code == 0
    out = capsys.readouterr().out
    assert "against the full ground truth" in out and "Salt" in out
    assert out.count("kappa") == 2  # the network alone, and with the order kept
    assert "(Overburden > Upper reservoir > Shale > Basement > Salt)" in out
    assert (tmp_path / "survey" / "demo.sgy").is_file()
    assert (tmp_path / "out" / "model" / "model.json").is_file()
