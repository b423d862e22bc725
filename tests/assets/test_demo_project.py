"""The demo project: demo SEG-Y as source, demo class table, borehole labels, idempotent."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np

from assets.demo_project import RECIPE_PATH, borehole_radius, ensure_demo_project
from io_adapters.boreholes import import_boreholes
from io_adapters.labels import Provenance
from io_adapters.project import Project

SMALL = (20, 18, 40)


def test_demo_project_built_from_the_survey(tmp_path: Path) -> None:
    folder = ensure_demo_project(tmp_path / "demo", shape=SMALL)
    project = Project.open(folder)
    assert [(s.path, s.kind) for s in project.sources] == [("data/demo.sgy", "segy")]
    grid = project.load_data()
    assert dict(grid.sizes) == {"iline": 20, "xline": 18, "samples": 40}
    labels = project.load_labels(grid)
    table = json.loads((folder / "data" / "demo_classes.json").read_text())
    assert [(c.name, c.colour) for c in labels.classes] == [(c["name"], c["colour"])
                                                            for c in table]
    # the labels are the wells' intervals, imported with the recipe's radius
    with open(RECIPE_PATH, "rb") as fh:
        radius = tomllib.load(fh)["labels"]["borehole_radius"]
    assert borehole_radius() == radius
    expected, wells = import_boreholes(folder / "data" / "demo_wells.csv", grid, radius=radius)
    names = labels.class_names
    remapped = np.where(expected.labels >= 0,
                        np.array([names.index(n) for n in expected.class_names] + [-1])
                        [expected.labels], -1)
    np.testing.assert_array_equal(labels.labels, remapped)
    assert np.count_nonzero(labels.labels >= 0) > 0
    assert np.all(labels.source[labels.labels >= 0] == Provenance.BOREHOLE)
    saved_wells = project.load_boreholes()
    assert [w.name for w in saved_wells] == [w.name for w in wells]
    for w in saved_wells:  # interval classes refer to the project's class table
        assert all(0 <= c < len(names) for _, _, c in w.intervals)


def test_demo_project_is_idempotent_and_completes_half_made(tmp_path: Path) -> None:
    folder = ensure_demo_project(tmp_path / "demo", shape=SMALL)
    labels_file = Project.open(folder).labels_path
    stamp = labels_file.stat().st_mtime_ns
    assert ensure_demo_project(folder, shape=SMALL) == folder
    assert labels_file.stat().st_mtime_ns == stamp  # left alone
    # a project without labels (an interrupted first start) is completed
    labels_file.unlink()
    ensure_demo_project(folder, shape=SMALL)
    project = Project.open(folder)
    assert project.has_labels() and len(project.sources) == 1
