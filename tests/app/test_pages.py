"""The app's pages under streamlit's AppTest: the demo opens, errors are messages, edits stay.

Every test works on its own copy of a small demo project (FHN_PROJECT points at it), and
checks what matters on disk: the project folder after the page ran.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from app.views import fit_display_size, make_view, section_shape
from assets.demo_project import ensure_demo_project
from io_adapters.label_geometry import grid_to_display
from io_adapters.labels import load_labels
from io_adapters.project import Project

APP = Path(__file__).resolve().parents[2] / "app"
MAIN = str(APP / "main.py")
DATA_PAGE = str(APP / "screens" / "data.py")
LABEL_PAGE = str(APP / "screens" / "label.py")
WELLS_PAGE = str(APP / "screens" / "wells.py")
SHAPE = (20, 18, 40)
TIMEOUT = 60


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_demo_project(tmp_path_factory.mktemp("template") / "demo", shape=SHAPE)


def run(script: str) -> AppTest:
    at = AppTest.from_file(script, default_timeout=TIMEOUT).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def metric_total(at: AppTest) -> int:
    (metric,) = [m for m in at.metric if m.label == "Labelled cells"]
    return int(str(metric.value).replace(",", ""))


def saved_total(folder: Path) -> int:
    return int(np.count_nonzero(load_labels(Project.open(folder).labels_path).labels >= 0))


def test_demo_opens(demo: Path) -> None:
    at = run(MAIN)
    assert not at.error, [e.value for e in at.error]
    assert metric_total(at) == saved_total(demo) > 0
    assert "Demo survey" in [m.value.strip("*") for m in at.sidebar.markdown]
    assert [r.options for r in at.radio if r.key == "fhn_class"][0] == [
        "Overburden", "Upper reservoir", "Shale", "Basement", "Salt"]


@pytest.mark.parametrize("page", [DATA_PAGE, LABEL_PAGE, WELLS_PAGE])
def test_each_page_runs(demo: Path, page: str) -> None:
    at = run(page)
    assert not at.error, [e.value for e in at.error]


def test_invalid_file_shows_error_not_traceback(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    project = Project.create(tmp_path / "empty", "empty")
    monkeypatch.setenv("FHN_PROJECT", str(project.folder))
    bad = tmp_path / "broken.sgy"
    bad.write_bytes(b"this is not a SEG-Y file" * 200)
    at = run(DATA_PAGE)
    at.text_area(key="fhn-add-paths").input(str(bad))
    [b for b in at.button if b.label == "Add to project"][0].click()
    at.run()
    assert not at.exception
    assert any("broken.sgy" in e.value for e in at.error), [e.value for e in at.error]
    assert Project.open(project.folder).sources == []  # the bad file was taken out again
    # a project whose data went bad: the label page says so instead of failing
    toml = project.folder / "project.toml"
    text = toml.read_text().replace("sources = []\n", "")
    toml.write_text(text + f'\n[[sources]]\npath = "{bad}"\nkind = "segy"\n')
    at = run(LABEL_PAGE)
    assert any("broken.sgy" in e.value for e in at.error)


def _unlabelled_cell(folder: Path) -> tuple[int, int, int]:
    """An unlabelled (iline, xline, sample) on the inline the label page opens on."""
    project = Project.open(folder)
    labels = load_labels(project.labels_path).labels
    il = project.load_boreholes()[0].position[0]
    xl, s = np.argwhere(labels[il] < 0)[len(np.argwhere(labels[il] < 0)) // 2]
    return il, int(xl), int(s)


def _point_on_inline(folder: Path, xl: int, s: int) -> dict:
    """Canvas JSON of one point-tool click at the centre of (xline, sample) on the inline."""
    project = Project.open(folder)
    grid = project.load_data()
    view = make_view(grid, "inline", 0)
    disp = section_shape(SHAPE, view)
    size = fit_display_size(disp, 900, 620)  # the page's default display size
    x, y = grid_to_display(np.array([[s, xl]]), size, disp)[0]
    return {"version": "7.4.0", "objects": [
        {"type": "Circle", "originX": "center", "originY": "center", "left": float(x),
         "top": float(y), "radius": 3, "width": 6, "height": 6}]}


def test_injected_label_edit_is_saved_and_survives_a_restart(demo: Path) -> None:
    il, xl, s = _unlabelled_cell(demo)
    before = saved_total(demo)
    at = run(LABEL_PAGE)
    at.radio(key="fhn_class").set_value(4)  # Salt
    at.slider(key="fhn_radius").set_value(0)
    at.session_state["fhn_canvas_inject"] = _point_on_inline(demo, xl, s)
    at.run()
    assert not at.exception and not at.error
    saved = load_labels(Project.open(demo).labels_path)
    assert saved.labels[il, xl, s] == 4
    assert saved_total(demo) == before + 1
    assert metric_total(at) == before + 1
    # a new session (page reload, server restart) finds the label on disk
    fresh = run(LABEL_PAGE)
    assert metric_total(fresh) == before + 1
    # undo in the first session restores the file
    [b for b in at.button if b.key == "fhn_undo"][0].click()
    at.run()
    assert saved_total(demo) == before
    assert load_labels(Project.open(demo).labels_path).labels[il, xl, s] == -1


def test_class_table_edits_persist(demo: Path) -> None:
    at = run(LABEL_PAGE)
    at.text_input(key="fhn-cls-name-0-0").input("Sea-floor sediments")
    at.run()
    at.color_picker(key="fhn-cls-colour-1-0").pick("#123456")
    at.run()
    at.text_input(key="fhn-cls-new-name").input("Channel sand")
    [b for b in at.button if b.label == "Add class"][0].click()
    at.run()
    assert not at.exception and not at.error
    saved = load_labels(Project.open(demo).labels_path)
    assert saved.class_names == ["Sea-floor sediments", "Upper reservoir", "Shale",
                                 "Basement", "Salt", "Channel sand"]
    assert saved.classes[1].colour == "#123456"
    shale_cells = saved.counts()[2]
    total = saved_total(demo)
    # delete asks first; only the confirmation deletes
    at.button(key="fhn-cls-del-2-0").click()
    at.run()
    assert len(load_labels(Project.open(demo).labels_path).classes) == 6
    at.button(key="fhn-cls-del-yes").click()
    at.run()
    saved = load_labels(Project.open(demo).labels_path)
    assert saved.class_names == ["Sea-floor sediments", "Upper reservoir", "Basement", "Salt",
                                 "Channel sand"]
    assert saved_total(demo) == total - shale_cells
    fresh = run(LABEL_PAGE)
    assert fresh.radio(key="fhn_class").options == saved.class_names


def test_wells_page_imports_csv_and_splits(demo: Path, tmp_path: Path) -> None:
    grid = Project.open(demo).load_data()
    il, xl = int(grid.iline[3]), int(grid.xline[15])
    (tmp_path / "new.csv").write_text(f"well,iline,xline,top,base,class\n"
                                      f"N-1,{il},{xl},0,40,Gas sand\n")
    at = run(WELLS_PAGE)
    at.text_input(key="fhn-well-csv-path").input(str(tmp_path / "new.csv"))
    [b for b in at.button if b.label == "Import wells"][0].click()
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    project = Project.open(demo)
    saved = load_labels(project.labels_path)
    assert "Gas sand" in saved.class_names
    assert saved.labels[3, 15, 0] == saved.class_id("Gas sand")
    assert "N-1" in [w.name for w in project.load_boreholes()]
    at.button(key="fhn-split-random").click()
    at.run()
    saved = load_labels(project.labels_path)
    assert saved.split is not None and 0 < int(saved.split.sum()) < saved_total(demo)
    bad = tmp_path / "bad.csv"
    bad.write_text("well,iline,xline,top,class\nX,1,2,3,Salt\n")
    at.text_input(key="fhn-well-csv-path").input(str(bad))
    [b for b in at.button if b.label == "Import wells"][0].click()
    at.run()
    assert not at.exception and any("missing column" in e.value for e in at.error)
