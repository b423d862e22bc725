"""Smoke test of the seismic generalisation benchmark (the benchmark itself runs by hand)."""

from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path

import pytest

# benchmarks/ is not an installed package: import it from the repository root.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.seismic_generalisation import (  # noqa: E402
    DEMO_RECIPE,
    DEVELOPMENT_SURVEYS,
    TEST_SURVEYS,
    in_process_runner,
    parse_survey,
    recipe_run_toml,
    run_survey,
)

TINY_RECIPE = """
[data]
vertical_channel = true

[labels]
borehole_radius = 2.0

[design]
in_channels = 4
spatial_dims = 3
segments = [[0, 1, 4], [1, 1, 4], [0, 1, 4]]

[training]
iterations = 1
patch = [16, 16, 0]
"""


def test_the_test_surveys_are_five_styles_apart_from_development_and_the_demo():
    assert len(TEST_SURVEYS) == 5 and len({s for s, _ in TEST_SURVEYS}) == 5
    seeds = {seed for _, seed in TEST_SURVEYS}
    assert not seeds & {seed for _, seed in DEVELOPMENT_SURVEYS}
    assert not seeds & {0, 1, 2}  # the demo's seeds


def test_survey_names_parse():
    assert parse_survey("thin-beds-9104") == ("thin-beds", 9104)
    with pytest.raises(argparse.ArgumentTypeError, match="STYLE-SEED"):
        parse_survey("thin-beds")


def test_the_demo_recipe_becomes_a_run_description(tmp_path):
    run = tmp_path / "run.toml"
    run.write_text('output = "run"\n[data]\npath = "s.sgy"\n[labels]\npath = "w.csv"\n'
                   'radius = 1.0\nclasses = ["a", "b"]\n', encoding="utf-8")
    merged = tomllib.loads(recipe_run_toml(run, DEMO_RECIPE).read_text(encoding="utf-8"))
    recipe = tomllib.loads(DEMO_RECIPE.read_text(encoding="utf-8"))
    assert merged["data"] == {"path": "s.sgy", **recipe["data"]}
    assert merged["design"] == recipe["design"]
    assert merged["training"] == {**recipe["training"], "recipe": "fixed"}
    assert merged["labels"]["radius"] == recipe["labels"]["borehole_radius"]
    assert merged["labels"]["classes"] == ["a", "b"] and "prediction" not in merged


def test_one_survey_goes_through_synth_train_predict_and_evaluate(tmp_path):
    recipe = tmp_path / "tiny.toml"
    recipe.write_text(TINY_RECIPE, encoding="utf-8")
    row = run_survey("faulted", 102, tmp_path / "work", recipe=str(recipe), shape=(32, 32, 48),
                     threads=1, device="cpu", runner=in_process_runner, log=lambda _: None)
    assert row["status"] == "ok", row
    assert 0.0 <= row["mean_iou"] <= 1.0
    assert len(row["per_class"].split()) == 4  # no salt in a faulted survey
    assert row["labelled"] > 0 and "faults" in row["geology"]
    folder = tmp_path / "work" / "faulted-102"
    # the logs stay, the survey, model and prediction are removed
    assert sorted(p.name for p in folder.iterdir()) == [
        "evaluate.log", "predict.log", "synth.log", "train.log"]
