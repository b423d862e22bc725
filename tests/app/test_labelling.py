"""Canvas strokes -> labels, and the label editor's saving, undo, classes, wells, splits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from app.labelling import LabelEditor, Stroke, strokes_from_canvas
from app.views import make_view
from io_adapters.boreholes import load_boreholes
from io_adapters.errors import DataError
from io_adapters.labels import LabelSet, Provenance, load_labels
from io_adapters.project import Project
from io_adapters.segy import create_segy

SHAPE = (8, 10, 12)  # iline, xline, samples


@pytest.fixture()
def project(tmp_path: Path) -> tuple[Project, xr.DataArray]:
    """A small SEG-Y project with two classes and no labels yet."""
    values = np.random.default_rng(1).standard_normal(SHAPE).astype(np.float32)
    create_segy(tmp_path / "cube.sgy", values, ilines=np.arange(100, 108),
                xlines=np.arange(300, 310), sample_interval_ms=4.0)
    proj = Project.create(tmp_path / "proj", "test")
    proj.add_source(str(tmp_path / "cube.sgy"), "segy")
    grid = proj.load_data()
    proj.save_labels(LabelSet.empty(SHAPE, ["sand", "shale"], ("iline", "xline", "samples")))
    return proj, grid


# --------------------------------------------------------------------------- canvas JSON
def test_freehand_path_line_and_point() -> None:
    data = {
        "version": "7.4.0",
        "objects": [
            {"type": "Path", "originX": "left", "originY": "top", "left": 9, "top": 19,
             "width": 20, "height": 10, "strokeWidth": 2, "scaleX": 1, "scaleY": 1,
             "path": [["M", 10, 20], ["Q", 10, 20, 20, 25], ["L", 30, 30]]},
            {"type": "Line", "originX": "center", "originY": "center", "left": 50, "top": 40,
             "width": 20, "height": 10, "strokeWidth": 4, "x1": -10, "y1": 5, "x2": 10,
             "y2": -5},
            {"type": "Circle", "originX": "center", "originY": "center", "left": 7, "top": 8,
             "radius": 3, "width": 6, "height": 6},
            {"type": "Rect", "left": 0, "top": 0, "width": 5, "height": 5},
        ],
    }
    path, line, point = strokes_from_canvas(data)
    assert path.kind == "path"
    np.testing.assert_allclose(path.points[0], [10, 20])
    np.testing.assert_allclose(path.points[-1], [30, 30])
    np.testing.assert_allclose(path.points[4], [20, 25])  # end of the Q segment
    assert line.kind == "line"
    np.testing.assert_allclose(line.points, [[40, 45], [60, 35]])
    assert point.kind == "point"
    np.testing.assert_allclose(point.points, [[7, 8]])
    assert strokes_from_canvas(None) == [] and strokes_from_canvas({"objects": []}) == []


def test_left_top_origin_and_moved_objects() -> None:
    # a point circle placed by its top-left corner (stroke included in the box)
    circle = {"type": "Circle", "originX": "left", "originY": "top", "left": 10, "top": 20,
              "width": 6, "height": 6, "radius": 3, "strokeWidth": 2}
    (point,) = strokes_from_canvas({"version": "7.4.0", "objects": [circle]})
    np.testing.assert_allclose(point.points, [[14, 24]])
    # a freehand path moved 30 px right with the edit toggle: its points move with it
    path = {"type": "Path", "originX": "center", "originY": "center", "left": 50, "top": 25,
            "width": 20, "height": 10, "path": [["M", 10, 20], ["L", 30, 30]]}
    (moved,) = strokes_from_canvas({"version": "7.4.0", "objects": [path]})
    np.testing.assert_allclose(moved.points, [[40, 20], [60, 30]])


# --------------------------------------------------------------------------- painting
def test_paint_on_inline_maps_display_to_cells_and_saves(project) -> None:
    proj, grid = project
    editor = LabelEditor(proj, grid)
    view = make_view(grid, "inline", 3)  # display: rows = 12 samples, cols = 10 xlines
    display = (100, 240)  # 10 px per xline, 20 px per sample
    # a horizontal stroke at sample 5 from xline index 2 to 6 (display x 25..65)
    stroke = Stroke("path", np.array([[25.0, 110.0], [65.0, 110.0]]))
    n = editor.paint([stroke], view, display, "brush", class_id=1, radius=0)
    assert n == 5
    saved = load_labels(proj.labels_path)
    expected = np.full(SHAPE, -1, dtype=np.int16)
    expected[3, 2:7, 5] = 1
    np.testing.assert_array_equal(saved.labels, expected)
    assert np.all(saved.source[3, 2:7, 5] == Provenance.STROKE)
    # the same stroke again changes nothing and saves nothing new
    before = proj.labels_path.stat().st_mtime_ns
    assert editor.paint([stroke], view, display, "brush", 1, 0) == 0
    assert proj.labels_path.stat().st_mtime_ns == before


def test_line_point_eraser_and_undo(project) -> None:
    proj, grid = project
    editor = LabelEditor(proj, grid)
    tslice = make_view(grid, "timeslice", 4)  # display rows = ilines (8), cols = xlines (10)
    display = (10, 8)  # one pixel per cell
    line = Stroke("line", np.array([[0.5, 0.5], [9.5, 0.5]]))
    assert editor.paint([line], tslice, display, "line", 0, 0) == 10
    assert np.all(editor.labels.source[0, :, 4] == Provenance.TRANSECT)
    point = Stroke("point", np.array([[5.5, 5.5]]))
    assert editor.paint([point], tslice, display, "point", 1, radius=1) == 5  # a plus shape
    assert editor.labels.labels[5, 5, 4] == 1 and editor.labels.labels[4, 5, 4] == 1
    assert editor.labels.source[5, 5, 4] == Provenance.POINT
    eraser = Stroke("path", np.array([[0.5, 0.5], [4.5, 0.5]]))
    assert editor.paint([eraser], tslice, display, "eraser", -1, 0) == 5
    assert editor.total() == 5 + 5
    assert editor.paint([point], tslice, display, "inspect", 0, 0) == 0  # reads, no paint
    assert editor.undo() == 5  # the eraser stroke
    assert editor.total() == 15
    assert load_labels(proj.labels_path).labels[0, 0, 4] == 0  # the undo was saved
    editor.undo()
    editor.undo()
    assert editor.total() == 0 and not editor.can_undo()
    with pytest.raises(DataError, match="choose a class"):
        editor.paint([point], tslice, display, "brush", 7, 0)


# --------------------------------------------------------------------------- classes
def test_class_table_changes_are_saved(project) -> None:
    proj, grid = project
    editor = LabelEditor(proj, grid)
    editor.labels.labels[0, 0, :] = 1
    editor.save()
    cid = editor.add_class("salt", "#00ff00")
    editor.rename_class(0, "channel sand")
    editor.recolour_class(1, "#123456")
    saved = load_labels(proj.labels_path)
    assert saved.class_names == ["channel sand", "shale", "salt"] and cid == 2
    assert saved.classes[1].colour == "#123456"
    with pytest.raises(DataError, match="exists already"):
        editor.add_class("salt")
    assert editor.delete_class(1) == SHAPE[2]
    saved = load_labels(proj.labels_path)
    assert saved.class_names == ["channel sand", "salt"] and saved.counts() == {0: 0, 1: 0}


# --------------------------------------------------------------------------- wells
def test_borehole_import_merges_classes_and_saves_wells(project, tmp_path: Path) -> None:
    proj, grid = project
    editor = LabelEditor(proj, grid)
    (tmp_path / "wells.csv").write_text(
        "well,iline,xline,top,base,class\n"
        "W1,102,304,0,12,shale\n"
        "W1,102,304,16,44,salt\n"
    )
    n = editor.import_boreholes(tmp_path / "wells.csv", radius=0)
    assert n == 12  # one trace, samples 0..11
    assert editor.labels.class_names == ["sand", "shale", "salt"]
    assert np.all(editor.labels.labels[2, 4, :4] == 1) and np.all(editor.labels.labels[2, 4, 4:]
                                                                    == 2)
    wells = load_boreholes(proj.boreholes_path)
    assert [w.name for w in wells] == ["W1"] and wells[0].position == (2, 4)
    assert [c for _, _, c in wells[0].intervals] == [1, 2]  # ids of the project's table
    # a well typed in, by map-free inline/crossline numbers
    n = editor.add_borehole("W2", {"iline": 107, "xline": 300}, [(0.0, 8.0, "sand")], 1.0)
    assert n == 3 * 3  # (iline 7, xline 0) + 2 neighbours inside the grid, 0-8 ms: 3 samples
    assert [w.name for w in load_boreholes(proj.boreholes_path)] == ["W1", "W2"]
    editor.undo()
    assert editor.labels.labels[7, 0, 0] == -1
    # deleting a class drops its intervals and renumbers the rest
    editor.delete_class(1)
    assert editor.wells[0].intervals == [(16.0, 44.0, 1)]
    with pytest.raises(DataError, match="outside the survey"):
        editor.add_borehole("far", {"iline": 999, "xline": 300}, [(0.0, 8.0, "sand")], 1.0)


# --------------------------------------------------------------------------- split
def test_split_is_saved_and_counted(project) -> None:
    proj, grid = project
    editor = LabelEditor(proj, grid)
    editor.labels.labels[:, 0, 0] = 0
    editor.labels.labels[:, 1, 0] = 1
    editor.split_by_region("iline", 6)
    table = {r["class"]: r for r in editor.counts_table()}
    assert table["sand"]["validation"] == 2 and table["sand"]["training"] == 6
    assert load_labels(proj.labels_path).split is not None
    editor.split_random(0.25, seed=3)
    assert sum(r["validation"] for r in editor.counts_table()) == 4
    editor.clear_split()
    assert load_labels(proj.labels_path).split is None
