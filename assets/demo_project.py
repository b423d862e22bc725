"""The demo project: the synthetic survey as an fhn project, with the borehole labels.

``make run`` and the app open this project when no other is given: a project folder
(default ``projects/demo``, git-ignored) whose data source is the demo SEG-Y, whose class
table is the demo's (names and colours from ``demo_classes.json``) and whose labels are
the borehole intervals of ``demo_wells.csv`` imported with the radius of
``[labels] borehole_radius`` in ``assets/demo_recipe.toml``. The well table is saved
too, so the app draws the wells on maps and sections.

Run ``python -m assets.demo_project [--folder DIR]`` to build it by hand.
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path

from assets.demo_survey import build_demo_survey, ensure_demo
from io_adapters.boreholes import import_boreholes
from io_adapters.errors import DataError
from io_adapters.labels import LabelClass, LabelSet
from io_adapters.project import Project

__all__ = ["DEFAULT_PROJECT_DIR", "RECIPE_PATH", "borehole_radius", "ensure_demo_project", "main"]

REPO_ROOT: Path = Path(__file__).resolve().parent.parent
DEFAULT_PROJECT_DIR: Path = REPO_ROOT / "projects" / "demo"
RECIPE_PATH: Path = Path(__file__).resolve().parent / "demo_recipe.toml"
PROJECT_NAME = "Demo survey"


def borehole_radius(recipe: str | Path = RECIPE_PATH) -> float:
    """``[labels] borehole_radius`` of the demo recipe (traces around each well)."""
    path = Path(recipe)
    try:
        with open(path, "rb") as fh:
            doc = tomllib.load(fh)
        return float(doc["labels"]["borehole_radius"])
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as err:
        raise DataError(
            f"cannot read [labels] borehole_radius from {path} ({type(err).__name__}: {err}); "
            "restore the file from the repository"
        ) from err


def _read_classes(path: Path) -> list[LabelClass]:
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
        return [LabelClass(int(c["id"]), str(c["name"]), str(c["colour"])) for c in entries]
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise DataError(
            f"cannot read the demo class table {path} ({err}); rebuild the demo with "
            "'python -m assets.demo_survey --overwrite'"
        ) from err


def ensure_demo_project(
    folder: str | Path | None = None,
    *,
    shape: Sequence[int] | None = None,
    seed: int = 0,
) -> Path:
    """Make the demo project in ``folder`` (default :data:`DEFAULT_PROJECT_DIR`) if needed.

    With ``shape`` None the default demo survey (``assets/generated/demo``) is the data
    source; with a ``shape`` (small cubes for tests) a survey of that shape is built in
    ``folder/data`` and referenced by a relative path, so the folder can be copied.
    Idempotent: a project that exists and has labels is left alone (the survey files are
    rebuilt if they went missing); a half-made one is completed. Returns the folder.
    """
    root = Path(DEFAULT_PROJECT_DIR if folder is None else folder).expanduser().resolve()
    if shape is None:
        files = ensure_demo()
        segy_path = str(files.segy)
    else:
        files = build_demo_survey(root / "data", shape=shape, seed=seed)
        segy_path = "data/" + files.segy.name
    if (root / "project.toml").is_file():
        project = Project.open(root)
        if project.has_labels():
            return root
    else:
        project = Project.create(root, PROJECT_NAME)
    if not project.sources:
        project.add_source(segy_path, "segy")
    grid = project.load_data()
    labels, wells = import_boreholes(files.wells, grid, radius=borehole_radius())
    classes = _read_classes(files.classes)
    # the CSV names only the classes its wells meet; order and colours come from the table
    full = LabelSet.empty(labels.shape, classes, labels.dims)
    full.merge(labels)
    remap = {old.id: full.class_id(old.name) for old in labels.classes}
    for well in wells:
        well.intervals = [(top, base, remap[cid]) for top, base, cid in well.intervals]
    project.save_boreholes(wells)
    project.save_labels(full)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: build the demo project and print its folder."""
    parser = argparse.ArgumentParser(
        prog="python -m assets.demo_project",
        description="Build the demo project (demo survey + borehole labels).",
    )
    parser.add_argument("--folder", type=Path, default=DEFAULT_PROJECT_DIR,
                        help=f"project folder (default: {DEFAULT_PROJECT_DIR})")
    args = parser.parse_args(argv)
    try:
        folder = ensure_demo_project(args.folder)
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
