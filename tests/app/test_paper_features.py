"""The paper's diagnostics and stability bound through the product: fhn diagnose, the
warning in fhn train and on the Train page, the run record and the Results page."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import tomli_w
from streamlit.testing.v1 import AppTest

from app import jobs, runs
from app.cli import main
from assets.demo_project import ensure_demo_project
from fhn_core.design import NetworkDesign, Segment
from fhn_core.training import TrainConfig
from io_adapters.project import Project

PAGES = Path(__file__).resolve().parents[2] / "app" / "screens"
TRAIN, RESULTS = (str(PAGES / f"{p}.py") for p in ("train", "results"))
TINY = {"in_channels": 4, "spatial_dims": 3, "segments": [[0, 1, 4], [1, 1, 4], [0, 1, 4]]}
WAIT = 120.0


def test_diagnose_a_design_with_a_sweep_and_its_plot(tmp_path, capsys):
    design = tmp_path / "d.toml"
    design.write_text(tomli_w.dumps(TINY))
    png = tmp_path / "fig3.png"
    assert main(["diagnose", str(design), "--input-shape", "1", "4", "8", "8", "8",
                 "--sweep-h", "0.1", "0.5", "2", "--draws", "2", "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if line.strip()[:1].isdigit()]
    assert [float(r[0]) for r in rows] == [0.1, 0.5, 2.0]
    assert float(rows[2][1]) > float(rows[0][1])  # energy grows with h
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_diagnose_a_trained_model_and_bad_targets(tmp_path, capsys):
    from fhn_core.checkpoint import ModelInfo, TrainedModel
    from fhn_core.network import HyperbolicNetwork
    from fhn_core.task import Normalisation

    design = NetworkDesign.from_dict(TINY)
    info = ModelInfo(n_classes=2, data_channels=1, normalisation=Normalisation((0.0,), (1.0,)))
    TrainedModel(HyperbolicNetwork(design), info).save(tmp_path / "model")
    assert main(["diagnose", str(tmp_path), "--input-shape", "1", "4", "8", "8", "8"]) == 0
    out = capsys.readouterr().out
    assert "trained model" in out and "invertibility error" in out
    assert main(["diagnose", str(tmp_path / "nothing.toml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fhn: error: ") and "Traceback" not in err
    assert main(["diagnose", str(tmp_path), "--input-shape", "1", "4", "8", "8"]) == 2


def test_train_warns_when_h_breaks_the_bound_and_records_fig3(tmp_path, shared_data, capsys):
    (tmp_path / "wells.csv").write_text(
        "well,iline,xline,top,base,class\nA,115,880,4,120,upper\nA,115,880,124,300,lower\n")
    config = {"output": "run", "data": {"path": str(shared_data / "segy" / "f3.sgy")},
              "labels": {"path": "wells.csv", "radius": 1.0},
              "design": {**TINY, "h": 4.0},
              "training": {"recipe": "fixed",  # a fixed run: the settings as given
                           "iterations": 1, "validate_every": 0, "checkpoint_every": 0,
                           "device": "cpu", "validation_fraction": 0.0}}
    path = tmp_path / "run.toml"
    path.write_text(tomli_w.dumps(config))
    main(["train", str(path)])
    captured = capsys.readouterr()
    warning = [line for line in captured.err.splitlines() if line.startswith("fhn: warning:")]
    assert len(warning) == 1 and "leapfrog stability bound" in warning[0], captured.err
    config["design"]["h"] = 0.2
    path.write_text(tomli_w.dumps(config))
    assert main(["train", str(path)]) == 0
    captured = capsys.readouterr()
    assert "fhn: warning:" not in captured.err
    record = json.loads((tmp_path / "run" / "diagnostics.json").read_text())
    assert record["perturbation"] == 0.1 and record["invertibility_error"] < 1e-3
    assert "paper Fig. 3" in captured.out


# --------------------------------------------------------------------------- pages
@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_demo_project(tmp_path_factory.mktemp("paper") / "demo", shape=(16, 16, 32))


def _run(script: str) -> AppTest:
    at = AppTest.from_file(script, default_timeout=90).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_train_page_warns_about_h_past_the_bound(demo: Path) -> None:
    at = _run(TRAIN)
    at.selectbox(key="fhn-train-preset").set_value("quick").run()
    assert not any("leapfrog" in w.value for w in at.warning)
    [n for n in at.number_input if n.label == "h (step)"][0].set_value(2.0).run()
    assert any("leapfrog stability bound" in w.value for w in at.warning), \
        [w.value for w in at.warning]


def test_run_record_and_results_page_show_fig3(demo: Path) -> None:
    design = NetworkDesign(5, 3, (Segment(0, 1, 4), Segment(1, 1, 4), Segment(0, 1, 4)))
    job = jobs.registry().start(jobs.JobSpec(demo, design, TrainConfig(
        iterations=2, patch=(8, 8, None), validate_every=2)))
    assert job.wait(WAIT) and job.snapshot().status == "finished", job.snapshot().error
    info = runs.read_run(Project.open(demo), job.name)
    assert set(info.diagnostics) >= {"energy_growth", "stability", "stability_std",
                                      "invertibility_error"}
    at = _run(RESULTS)
    labels = {m.label: m.value for m in at.metric}
    assert labels["Energy growth"] == f"{info.diagnostics['energy_growth']:.3g}"
    assert labels["Invertibility error"] == f"{info.diagnostics['invertibility_error']:.2e}"
