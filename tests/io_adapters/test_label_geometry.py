"""Painting geometry: display scaling, brushes, slices of a 3D volume, undo."""

from __future__ import annotations

import numpy as np
import pytest

from io_adapters.label_geometry import (
    UndoStack,
    disk_offsets,
    display_to_grid,
    erase,
    grid_to_display,
    line_cells,
    paint_disk,
    paint_points,
    paint_polyline,
    slice_to_volume_index,
    slice_view,
    write_slice,
)

GRID = (40, 30)  # rows, cols


def display_size(scale: float) -> tuple[int, int]:
    return round(GRID[1] * scale), round(GRID[0] * scale)


@pytest.mark.parametrize("scale", [1, 2, 3.7, 0.5])
def test_display_corners_and_centres(scale: float) -> None:
    w, h = display_size(scale)
    corners = display_to_grid([[0, 0], [w - 1, 0], [0, h - 1], [w - 1, h - 1]], (w, h), GRID)
    np.testing.assert_array_equal(corners, [[0, 0], [0, 29], [39, 0], [39, 29]])
    # the display's centre line falls in the middle cells
    centre = display_to_grid([[w / 2, h / 2]], (w, h), GRID, pixel_index=False)
    np.testing.assert_array_equal(centre, [[20, 15]])
    # points beyond the image clip to the edge cells
    np.testing.assert_array_equal(
        display_to_grid([[-5, -5], [w + 9, h + 9]], (w, h), GRID), [[0, 0], [39, 29]]
    )


@pytest.mark.parametrize("scale", [1, 2, 3.7, 0.5])
def test_grid_display_round_trip_is_identity(scale: float) -> None:
    w, h = display_size(scale)
    rows, cols = np.meshgrid(np.arange(GRID[0]), np.arange(GRID[1]), indexing="ij")
    cells = np.stack([rows.ravel(), cols.ravel()], axis=1)
    centres = grid_to_display(cells, (w, h), GRID)
    np.testing.assert_array_equal(
        display_to_grid(centres, (w, h), GRID, pixel_index=False), cells
    )
    if scale >= 1:  # the display pixel under a cell centre maps back to that cell
        pixels = np.floor(centres).astype(int)
        np.testing.assert_array_equal(display_to_grid(pixels, (w, h), GRID), cells)


def test_display_footprint_exact_at_scale_2() -> None:
    # display pixels 0,1 -> cell 0; 2,3 -> cell 1 ...
    xs = np.arange(8)
    cells = display_to_grid(np.stack([xs, np.zeros(8)], axis=1), (60, 80), GRID)
    np.testing.assert_array_equal(cells[:, 1], [0, 0, 1, 1, 2, 2, 3, 3])


def test_line_cells_is_connected() -> None:
    cells = line_cells([[0, 0], [3, 10], [9, 2]])
    steps = np.abs(np.diff(cells, axis=0))
    assert steps.max() == 1  # no gaps, 8-connected
    np.testing.assert_array_equal(cells[0], [0, 0])
    np.testing.assert_array_equal(cells[-1], [9, 2])
    assert {(3, 10)} <= {tuple(c) for c in cells}


def test_disk_offsets() -> None:
    assert len(disk_offsets(0)) == 1
    assert len(disk_offsets(1)) == 5
    assert len(disk_offsets(1.5)) == 9
    assert len(disk_offsets(1, ndim=3)) == 7


def test_paint_disk_and_provenance() -> None:
    labels = np.full((10, 10), -1, dtype=np.int16)
    source = np.zeros((10, 10), dtype=np.uint8)
    assert paint_disk(labels, (5, 5), 2, 1, source=source) == 13
    assert paint_disk(labels, (5, 5), 2, 1, source=source) == 0  # nothing new
    assert np.count_nonzero(source == 1) == 13
    # clipped at the corner: quarter disk of radius 2 = 6 cells
    assert paint_disk(labels, (0, 0), 2, 0, source=source) == 6
    assert labels[0, 0] == 0 and labels[5, 5] == 1


def test_paint_polyline_continuous_with_radius() -> None:
    labels = np.full((20, 20), -1, dtype=np.int16)
    source = np.zeros_like(labels, dtype=np.uint8)
    n = paint_polyline(labels, [[2, 2], [2, 17]], 3, radius=1, source=source, provenance=2)
    assert n == 16 * 3 + 2  # a 3-wide band plus the two end caps
    assert np.all(labels[1:4, 2:18] == 3)
    assert set(np.unique(source)) == {0, 2}
    diag = np.full((20, 20), -1, dtype=np.int16)
    paint_polyline(diag, [[0, 0], [19, 19]], 0)
    assert np.all(np.diag(diag) == 0) and np.count_nonzero(diag == 0) == 20


def test_paint_points_and_erase() -> None:
    labels = np.full((8, 8), -1, dtype=np.int16)
    source = np.zeros_like(labels, dtype=np.uint8)
    assert paint_points(labels, [[1, 1], [6, 6]], 2, source=source) == 2
    assert source[1, 1] == 3
    assert erase(labels, [[1, 1], [6, 6]], source=source) == 2
    assert np.all(labels == -1) and np.all(source == 0)


@pytest.mark.parametrize(("axis", "index"), [("inline", 2), ("crossline", 4), ("time", 7)])
def test_painting_on_slices_lands_on_those_3d_cells(axis: str, index: int) -> None:
    volume = np.full((5, 6, 9), -1, dtype=np.int16)
    source = np.zeros(volume.shape, dtype=np.uint8)
    view = slice_view(volume, axis, index)
    sview = slice_view(source, axis, index)
    painted = paint_polyline(view, [[0, 0], [3, 4]], 1, source=sview)
    assert painted > 0
    cells2d = np.argwhere(view == 1)
    expected = slice_to_volume_index(volume.shape, axis, index, cells2d)
    got = np.nonzero(volume == 1)
    assert sorted(zip(*got, strict=True)) == sorted(zip(*expected, strict=True))
    ax = {"inline": 0, "crossline": 1, "time": 2}[axis]
    assert np.all(np.nonzero(volume == 1)[ax] == index)
    assert np.count_nonzero(source) == painted


def test_write_slice_and_named_dims() -> None:
    volume = np.zeros((3, 4, 5), dtype=np.int16)
    values = np.arange(15, dtype=np.int16).reshape(3, 5)
    assert write_slice(volume, "xline", 2, values, dims=("iline", "xline", "samples")) == 14
    np.testing.assert_array_equal(volume[:, 2, :], values)
    assert np.count_nonzero(volume) == 14
    with pytest.raises(IndexError):
        slice_view(volume, 0, 3)


def test_undo_restores_last_edit_exactly() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(-1, 3, size=(15, 15)).astype(np.int16)
    source = rng.integers(0, 5, size=(15, 15)).astype(np.uint8)
    before = labels.copy(), source.copy()
    undo = UndoStack()
    paint_disk(labels, (7, 7), 3, 2, source=source, undo=undo)
    middle = labels.copy(), source.copy()
    with undo.grouped():
        paint_polyline(labels, [[0, 0], [14, 14]], 0, 1, source=source, undo=undo)
        erase(labels, [[0, 14], [14, 0]], 1, source=source, undo=undo)
    assert len(undo) == 2
    assert undo.undo() > 0
    np.testing.assert_array_equal(labels, middle[0])
    np.testing.assert_array_equal(source, middle[1])
    undo.undo()
    np.testing.assert_array_equal(labels, before[0])
    np.testing.assert_array_equal(source, before[1])
    assert undo.undo() == 0


def test_undo_limit_and_no_op_edits() -> None:
    labels = np.full((5, 5), -1, dtype=np.int16)
    undo = UndoStack(limit=2)
    for cls in range(4):
        paint_points(labels, [[0, 0]], cls, undo=undo)
    paint_points(labels, [[0, 0]], 3, undo=undo)  # no change: not an edit
    assert len(undo) == 2
    undo.undo()
    assert labels[0, 0] == 2
