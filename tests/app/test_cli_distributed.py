"""`fhn train` launched by torchrun: two ranks (gloo, loopback), rank 0 writes, resume in one."""

from __future__ import annotations

import json

import tomli_w

from app.cli import main
from tests.torchrun_support import report, torchrun

WELLS = """well,iline,xline,top,base,class
A,115,880,4,120,upper
A,115,880,124,300,lower
B,128,888,4,160,upper
B,128,888,164,300,middle
"""


def test_fhn_train_under_torchrun_trains_on_two_ranks_and_resumes_in_one(tmp_path, shared_data):
    (tmp_path / "wells.csv").write_text(WELLS)
    config = {
        "output": "run",
        "data": {"path": str(shared_data / "segy" / "f3.sgy")},
        "labels": {"path": "wells.csv", "radius": 1.0},
        "design": {"in_channels": 4, "spatial_dims": 3,
                   "segments": [[0, 1, 4], [1, 1, 4], [0, 1, 4]]},
        "training": {"recipe": "fixed",  # a fixed run: the settings as given
                     "iterations": 2, "validate_every": 2, "checkpoint_every": 1,
                     "device": "cpu", "patch": [16, 16, 0]},
    }
    run_toml = tmp_path / "run.toml"
    run_toml.write_text(tomli_w.dumps(config))
    done = torchrun(["-m", "app.cli", "train", str(run_toml)], cwd=tmp_path)
    assert done.returncode == 0, report(done)
    assert done.stdout.count("finished 2 iterations") == 1  # rank 0 alone reports
    assert "on 2 ranks" in done.stdout
    state = json.loads((tmp_path / "run" / "checkpoint" / "training.json").read_text())
    assert state["iteration"] == 2
    assert (tmp_path / "run" / "model" / "model.safetensors").is_file()
    # The two-rank checkpoint continues in one process.
    assert main(["train", str(run_toml), "--resume", "--iterations", "3"]) == 0
    state = json.loads((tmp_path / "run" / "checkpoint" / "training.json").read_text())
    assert state["iteration"] == 3
