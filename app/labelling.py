"""Label editing behind the "View & label" page, without streamlit.

Two pieces, both testable without a browser:

- :func:`strokes_from_canvas` reads the Fabric.js JSON that streamlit-drawable-canvas
  returns (freehand paths, lines, point circles, in canvas pixels) into
  :class:`Stroke` polylines in display coordinates;
- :class:`LabelEditor` holds a project's :class:`~io_adapters.labels.LabelSet`, the
  well table and an undo stack. Every edit (painting on a section, class table changes,
  borehole imports, splits, undo) goes through io_adapters' label geometry and is saved
  to the project folder at once, atomically, so nothing is lost on a reload or restart.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from io_adapters.boreholes import (
    Borehole,
    boreholes_from_rows,
    import_borehole_cells,
    import_boreholes,
)
from io_adapters.errors import DataError
from io_adapters.gridmatch import spatial_dims
from io_adapters.label_geometry import (
    UndoStack,
    display_to_grid,
    erase,
    paint_points,
    paint_polyline,
)
from io_adapters.labels import CellGrid, LabelCells, LabelSet, Provenance, split_by_region
from io_adapters.project import Project

from .views import View, display_to_slice_cells, label_section, section_shape

__all__ = [
    "Stroke",
    "TOOLS",
    "Tool",
    "strokes_from_canvas",
    "canvas_to_cells",
    "strokes_on_section",
    "LabelEditor",
    "CellLabelEditor",
    "editor_for",
]


@dataclass(frozen=True)
class Tool:
    """A painting tool: canvas drawing mode, what it writes and the provenance it records."""

    name: str
    canvas_mode: str
    provenance: int
    erases: bool = False
    paints: bool = True


TOOLS: dict[str, Tool] = {
    "brush": Tool("brush", "freedraw", int(Provenance.STROKE)),
    "line": Tool("line", "line", int(Provenance.TRANSECT)),
    "point": Tool("point", "point", int(Provenance.POINT)),
    "eraser": Tool("eraser", "freedraw", 0, erases=True),
    "inspect": Tool("inspect", "point", 0, paints=False),
}


@dataclass
class Stroke:
    """One drawn object as display points (x, y): a polyline ("path", "line") or "point"."""

    kind: str
    points: np.ndarray  # (n, 2) float64, continuous canvas coordinates


# Fabric's origin keywords as fractions of the object's box.
_ORIGIN = {"left": 0.0, "top": 0.0, "center": 0.5, "right": 1.0, "bottom": 1.0}


def _centre(obj: Mapping[str, Any], default_origin: str) -> tuple[np.ndarray, np.ndarray]:
    """Canvas position of an object's centre and its (sx, sy) scale.

    Fabric places an object by ``left``/``top`` at its origin point; the box it measures
    from includes the stroke width (unless strokeUniform) and the scale.
    """
    sx, sy = float(obj.get("scaleX", 1.0) or 1.0), float(obj.get("scaleY", 1.0) or 1.0)
    stroke = 0.0 if obj.get("strokeUniform") else float(obj.get("strokeWidth", 0.0) or 0.0)
    w = (float(obj.get("width", 0.0) or 0.0) + stroke) * sx
    h = (float(obj.get("height", 0.0) or 0.0) + stroke) * sy
    ox = _ORIGIN.get(str(obj.get("originX", default_origin)), 0.5)
    oy = _ORIGIN.get(str(obj.get("originY", default_origin)), 0.5)
    cx = float(obj.get("left", 0.0)) + (0.5 - ox) * w
    cy = float(obj.get("top", 0.0)) + (0.5 - oy) * h
    return np.array([cx, cy]), np.array([sx, sy])


def _rotate(v: np.ndarray, degrees: float) -> np.ndarray:
    if not degrees:
        return v
    t = np.deg2rad(degrees)
    rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    return v @ rot.T


def _path_points(path: Sequence[Sequence[Any]]) -> np.ndarray:
    """Points along an SVG-like path (M, L, Q, C, Z commands), curves sampled finely."""
    pts: list[tuple[float, float]] = []
    current = np.zeros(2)
    start = np.zeros(2)
    for seg in path:
        if not seg:
            continue
        cmd, args = str(seg[0]).upper(), [float(a) for a in seg[1:]]
        if cmd == "M" and len(args) >= 2:
            current = start = np.array(args[-2:])
            pts.append(tuple(current))
        elif cmd == "L" and len(args) >= 2:
            current = np.array(args[-2:])
            pts.append(tuple(current))
        elif cmd == "Q" and len(args) >= 4:
            c, end = np.array(args[0:2]), np.array(args[2:4])
            for t in (0.25, 0.5, 0.75, 1.0):
                p = (1 - t) ** 2 * current + 2 * (1 - t) * t * c + t**2 * end
                pts.append(tuple(p))
            current = end
        elif cmd == "C" and len(args) >= 6:
            c1, c2, end = np.array(args[0:2]), np.array(args[2:4]), np.array(args[4:6])
            for t in (0.25, 0.5, 0.75, 1.0):
                p = ((1 - t) ** 3 * current + 3 * (1 - t) ** 2 * t * c1
                     + 3 * (1 - t) * t**2 * c2 + t**3 * end)
                pts.append(tuple(p))
            current = end
        elif cmd == "Z":
            current = start
            pts.append(tuple(current))
    return np.array(pts, dtype=np.float64).reshape(-1, 2)


def strokes_from_canvas(json_data: Mapping[str, Any] | None) -> list[Stroke]:
    """The drawn objects of a drawable-canvas ``json_data`` as :class:`Stroke` polylines.

    ``Path`` (freehand) -> its sampled path; ``Line`` -> its two end points (Fabric stores
    them relative to the line's centre); ``Circle`` (point mode) -> its centre. Objects
    moved, scaled or rotated with the canvas's edit toggle are transformed back to canvas
    coordinates. Other object types are ignored.
    """
    if not json_data:
        return []
    version = str(json_data.get("version", "7"))
    # Fabric 6+ place new objects by their centre unless told otherwise
    default_origin = "left" if version[:1] in ("1", "2", "3", "4", "5") else "center"
    strokes: list[Stroke] = []
    for obj in json_data.get("objects", []) or []:
        if not isinstance(obj, Mapping):
            continue
        kind = str(obj.get("type", "")).lower()
        angle = float(obj.get("angle", 0.0) or 0.0)
        centre, scale = _centre(obj, default_origin)
        if kind == "path":
            raw = _path_points(obj.get("path") or [])
            if len(raw) == 0:
                continue
            # a path's own coordinates are canvas coordinates until the object is moved;
            # Fabric keeps them centred on pathOffset (the middle of the path's box)
            offset = (raw.min(axis=0) + raw.max(axis=0)) / 2
            moved = (np.any(np.abs(centre - offset) > 1.0) or np.any(scale != 1.0) or angle)
            pts = centre + _rotate((raw - offset) * scale, angle) if moved else raw
            strokes.append(Stroke("path", pts))
        elif kind == "line":
            ends = np.array([[obj.get("x1", 0.0), obj.get("y1", 0.0)],
                             [obj.get("x2", 0.0), obj.get("y2", 0.0)]], dtype=np.float64)
            strokes.append(Stroke("line", centre + _rotate(ends * scale, angle)))
        elif kind == "circle":
            strokes.append(Stroke("point", centre[None, :].copy()))
    return strokes


def strokes_on_section(
    strokes: Sequence[Stroke], offset: tuple[float, float], size: tuple[int, int]
) -> list[Stroke]:
    """Strokes drawn on a framed section (axes around it, :func:`app.views.frame_section`)
    in the section's own display pixels: moved by ``offset`` (left, top), points off the
    section (on the axes or the colour bar) left out, strokes with no point left dropped."""
    width, height = size
    out = []
    for stroke in strokes:
        pts = np.asarray(stroke.points, dtype=np.float64) - np.asarray(offset, dtype=np.float64)
        inside = ((pts[:, 0] >= -1) & (pts[:, 0] <= width + 1)
                  & (pts[:, 1] >= -1) & (pts[:, 1] <= height + 1))
        if inside.any():
            out.append(Stroke(stroke.kind, pts[inside]))
    return out


def canvas_to_cells(
    stroke: Stroke, display_size: tuple[int, int], view: View, label_shape: Sequence[int]
) -> np.ndarray:
    """The slice cells (row, col) under a stroke's points (in the slice's orientation).

    Display points go through :func:`io_adapters.label_geometry.display_to_grid` (continuous
    positions) onto the displayed section's cells, then to the slice's axis order.
    """
    disp_shape = section_shape(label_shape, view)
    cells = display_to_grid(stroke.points, display_size, disp_shape, pixel_index=False)
    return display_to_slice_cells(cells, view)


class LabelEditor:
    """A project's labels being edited: every change is saved to the project folder at once.

    Build it with the loaded data grid; it opens the saved labels (or an empty set on the
    grid) and the well table. ``undo`` reverses the last painting edit, borehole import or
    well addition (class table changes clear the undo history, since class ids move).
    """

    listed = False  # labels listed cell by cell (CellLabelEditor)

    def __init__(self, project: Project, grid: xr.DataArray) -> None:
        self.project = project
        self.grid = grid
        self.labels: LabelSet = project.load_labels(grid)
        self.wells: list[Borehole] = project.load_boreholes()
        self.undo_stack = UndoStack(limit=50)
        self.stamp = self.file_stamp()

    def file_stamp(self) -> tuple[int, int] | None:
        """(size, mtime_ns) of the label file on disk (None before the first save).

        Compared with :attr:`stamp` (the file as this editor last read or wrote it) to see
        whether someone else (another browser tab) saved labels in between.
        """
        try:
            stat = self.labels_file.stat()
        except OSError:
            return None
        return (stat.st_size, stat.st_mtime_ns)

    @property
    def labels_file(self) -> Path:
        """The file the labels are saved to."""
        return self.project.labels_path

    # ---------------------------------------------------------------- queries
    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of the label grid."""
        return self.labels.shape

    @property
    def colours(self) -> list[str]:
        """Class colours in id order."""
        return [c.colour for c in self.labels.classes]

    def counts_table(self) -> list[dict[str, Any]]:
        """One row per class: id, name, colour, labelled cells, of which training/validation."""
        counts = self.labels.counts()
        val = np.zeros(len(self.labels.classes), dtype=np.int64)
        if self.labels.split is not None:
            held = self.labels.labels[(self.labels.split == 1) & (self.labels.labels >= 0)]
            val = np.bincount(held.astype(np.int64), minlength=len(self.labels.classes))
        rows = []
        for c in self.labels.classes:
            n = counts[c.id]
            rows.append({"id": c.id, "class": c.name, "colour": c.colour, "labelled": n,
                         "training": n - int(val[c.id]), "validation": int(val[c.id])})
        return rows

    def training_labels(self) -> LabelSet | LabelCells:
        """The labels as training takes them (app.training_task.build_task)."""
        return self.labels

    def total(self) -> int:
        """Number of labelled cells."""
        return int(np.count_nonzero(self.labels.labels >= 0))

    # ---------------------------------------------------------------- saving
    def save(self) -> None:
        """Write labels and well table atomically to the project folder."""
        self.project.save_boreholes(self.wells)
        self.project.save_labels(self.labels)
        self.stamp = self.file_stamp()

    # ---------------------------------------------------------------- painting
    def paint(
        self,
        strokes: Sequence[Stroke],
        view: View,
        display_size: tuple[int, int],
        tool: str | Tool,
        class_id: int,
        radius: float = 0.0,
    ) -> int:
        """Paint (or erase) strokes drawn on ``view`` shown at ``display_size``; saves.

        Returns the number of cells changed (0: nothing saved). All strokes of one call
        are one undo step. ``radius`` is the brush radius in grid cells.
        """
        t = self._painting_tool(tool, strokes, class_id)
        if t is None:
            return 0
        labels2d = label_section(self.labels.labels, view)
        source2d = label_section(self.labels.source, view)
        with self.undo_stack.grouped():
            changed = self._draw(labels2d, source2d, strokes, view, display_size, t,
                                 class_id, radius, self.undo_stack)
        if changed:
            self._fix_split()
            self.save()
        return changed

    def _painting_tool(self, tool: str | Tool, strokes: Sequence[Stroke],
                       class_id: int) -> Tool | None:
        """The tool, None when it does not paint (or nothing was drawn); DataError when
        it paints with no class."""
        t = TOOLS[tool] if isinstance(tool, str) else tool
        if not t.paints or not strokes:
            return None
        if not t.erases and not 0 <= class_id < len(self.labels.classes):
            raise DataError("choose a class to paint with first (add one in the class table)")
        return t

    def _draw(self, labels2d: np.ndarray, source2d: np.ndarray, strokes: Sequence[Stroke],
              view: View, display_size: tuple[int, int], t: Tool, class_id: int,
              radius: float, undo: UndoStack | None = None) -> int:
        """Paint the strokes into a section's labels and provenance; cells changed."""
        changed = 0
        for stroke in strokes:
            cells = canvas_to_cells(stroke, display_size, view, self.shape)
            if len(cells) == 0:
                continue
            if t.erases:
                changed += erase(labels2d, cells, radius, source=source2d, undo=undo)
            elif stroke.kind == "point" or t.name == "point":
                changed += paint_points(labels2d, cells, class_id, radius, source=source2d,
                                        provenance=t.provenance, undo=undo)
            else:
                changed += paint_polyline(labels2d, cells, class_id, radius, source=source2d,
                                          provenance=t.provenance, undo=undo)
        return changed

    def _fix_split(self) -> None:
        # a cell that lost its label must not stay marked as validation
        if self.labels.split is not None:
            self.labels.split[self.labels.labels < 0] = 0

    def undo(self) -> int:
        """Undo the last edit and save; returns the cells restored (0: nothing to undo)."""
        n = self.undo_stack.undo()
        if n:
            self._fix_split()
            self.save()
        return n

    def can_undo(self) -> bool:
        """True when there is an edit to undo."""
        return len(self.undo_stack) > 0

    # ---------------------------------------------------------------- class table
    def add_class(self, name: str, colour: str | None = None) -> int:
        """Add a class (saved); returns its id."""
        new = self.labels.add_class(name, colour)
        self.save()
        return new.id

    def rename_class(self, class_id: int, name: str) -> None:
        """Rename a class (saved)."""
        self.labels.rename_class(class_id, name)
        self.save()

    def recolour_class(self, class_id: int, colour: str) -> None:
        """Change a class colour (saved)."""
        self.labels.recolour_class(class_id, colour)
        self.save()

    def delete_class(self, class_id: int) -> int:
        """Delete a class and its labels (saved); returns the cells unlabelled.

        Well intervals of the class are dropped and higher class ids move down, as in the
        label array. The undo history is cleared (the ids it holds no longer match).
        """
        n = self.labels.delete_class(class_id)
        for w in self.wells:
            w.intervals = [(t, b, c - 1 if c > class_id else c)
                           for t, b, c in w.intervals if c != class_id]
        self.undo_stack.clear()
        self.save()
        return n

    # ---------------------------------------------------------------- boreholes
    def _merge_wells(self, imported: LabelSet, wells: list[Borehole]) -> int:
        """Merge imported borehole labels (classes matched by name) and wells; saves."""
        changed_mask = imported.labels >= 0
        index = np.nonzero(changed_mask)
        with self.undo_stack.grouped():
            self.undo_stack.record([self.labels.labels, self.labels.source], index)
            n = self.labels.merge(imported)
        self._add_wells(imported, wells)
        self.save()
        return n

    def _add_wells(self, imported: LabelSet | LabelCells, wells: list[Borehole]) -> None:
        """Add imported wells to the table, their class ids those of this label set."""
        remap = {c.id: self.labels.class_id(c.name) for c in imported.classes}
        by_name = {w.name: w for w in self.wells}
        for w in wells:
            w.intervals = [(t, b, remap[c]) for t, b, c in w.intervals]
            by_name[w.name] = w  # a well imported again replaces the earlier entry
        self.wells = list(by_name.values())

    def import_boreholes(self, csv_path: str | os.PathLike[str], radius: float) -> int:
        """Import a CSV of well intervals (see io_adapters.boreholes.import_boreholes); saves.

        Classes named in the file that the table lacks are added. Returns cells changed.
        """
        read = import_borehole_cells if self.listed else import_boreholes
        imported, wells = read(csv_path, self.grid, radius=radius)
        return self._merge_wells(imported, wells)

    def add_borehole(
        self,
        name: str,
        position: Mapping[str, float],
        intervals: Sequence[tuple[float, float, str]],
        radius: float,
    ) -> int:
        """Add a well typed in: ``position`` {"iline", "xline"} or {"x", "y"} or {"row",
        "col"}; ``intervals`` (top, base, class name) — on maps top/base are ignored.

        Returns cells changed; saves.
        """
        if not str(name).strip():
            raise DataError("give the well a name")
        rows = [{"well": name, **position, "top": t, "base": b, "class": c}
                for t, b, c in intervals]
        if not rows:
            raise DataError(f"well {name}: add at least one interval (top, base, class)")
        imported, wells = boreholes_from_rows(rows, self.grid, radius,
                                              origin=f"well {name}", listed=self.listed)
        return self._merge_wells(imported, wells)

    def remove_well(self, name: str) -> None:
        """Forget a well's marker (its labels stay; erase them on the sections); saves."""
        self.wells = [w for w in self.wells if w.name != name]
        self.save()

    # ---------------------------------------------------------------- split
    def split_random(self, fraction: float, seed: int = 0) -> None:
        """Hold back ``fraction`` of each class at random for validation; saves.

        The split is fhn_core's (the one the trainer makes when given no validation labels),
        kept as the label set's validation mask.
        """
        from fhn_core.training import split_validation

        _, val = split_validation(self.labels.labels, fraction, seed)
        self.labels.split = (val >= 0).astype(np.uint8)
        self.save()

    def split_by_region(self, axis: int | str, position: int) -> None:
        """Validation = labels at index >= ``position`` along ``axis``; saves."""
        split_by_region(self.labels, axis, position)
        self.save()

    def clear_split(self) -> None:
        """Use every label for training; saves."""
        self.labels.split = None
        self.save()

    def split_axes(self) -> list[str]:
        """Names of the label grid's axes (for a split by region)."""
        return list(self.labels.dims or spatial_dims(self.grid))


# --------------------------------------------------------------------------- listed labels
class CellUndo:
    """Undo for :class:`CellLabelEditor`: the listed labels as they were before each edit
    (a list of cells is small, a copy per step is cheap), at most ``limit`` steps."""

    def __init__(self, labels: LabelCells, limit: int = 50) -> None:
        self.labels, self.limit = labels, limit
        self._steps: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def __len__(self) -> int:
        return len(self._steps)

    def keep(self) -> None:
        """Remember the labels as they are now (call before an edit)."""
        self._steps.append((self.labels.cells.copy(), self.labels.class_ids.copy(),
                            self.labels.source.copy()))
        del self._steps[:-self.limit]

    @contextmanager
    def grouped(self) -> Iterator[None]:
        """One undo step for an edit (its state before it)."""
        self.keep()
        yield

    def undo(self) -> int:
        """Restore the labels before the last edit; returns the cells that changed."""
        if not self._steps:
            return 0
        cells, ids, source = self._steps.pop()
        shape = self.labels.shape
        now = self.labels.listed_once()
        then = LabelCells(shape, self.labels.dims, cells, ids, [], source).listed_once()
        every = np.union1d(now[0], then[0])
        changed = int(np.count_nonzero(LabelCells.ids_at(now[0], now[1], every)
                                       != LabelCells.ids_at(then[0], then[1], every)))
        self.labels.cells, self.labels.class_ids, self.labels.source = cells, ids, source
        return changed

    def clear(self) -> None:
        self._steps.clear()


class CellLabelEditor(LabelEditor):
    """The label editor of a survey too large for a label grid
    (:meth:`Project.labels_as_cells`): the labels are a list of cells
    (:class:`~io_adapters.labels.LabelCells`, saved to the project's ``label_cells.npz``);
    painting builds only the section painted on, wells are listed cell by cell. What
    needs a grid of the survey's size is refused with the way out: the train/validation
    split (training holds back a random fraction of the cells instead).
    """

    listed = True

    def __init__(self, project: Project, grid: xr.DataArray) -> None:
        self.project = project
        self.grid = grid
        self.cells: LabelCells = project.load_label_cells(grid)
        self.wells = project.load_boreholes()
        self.undo_stack = CellUndo(self.cells)
        self.stamp = self.file_stamp()

    @property
    def labels(self) -> _CellLabels:  # type: ignore[override]
        """The labels as the pages read a LabelSet: class table, counts, a label grid
        built section by section (:class:`~io_adapters.labels.CellGrid`), no split."""
        return _CellLabels(self.cells)

    @property
    def labels_file(self) -> Path:
        return self.project.label_cells_path

    def training_labels(self) -> LabelCells:
        return self.cells

    def total(self) -> int:
        return sum(self.cells.counts().values())

    def save(self) -> None:
        self.project.save_boreholes(self.wells)
        self.project.save_label_cells(self.cells)
        self.stamp = self.file_stamp()

    def paint(self, strokes: Sequence[Stroke], view: View, display_size: tuple[int, int],
              tool: str | Tool, class_id: int, radius: float = 0.0) -> int:
        """As :meth:`LabelEditor.paint`, on the section built from the listed cells."""
        t = self._painting_tool(tool, strokes, class_id)
        if t is None:
            return 0
        key: list[int | slice] = [slice(None)] * len(self.shape)
        if view.axis is not None:
            key[view.axis] = view.index
        labels2d = np.array(self.cells.grid[tuple(key)])
        before = labels2d.copy()
        source2d = np.zeros(labels2d.shape, dtype=np.uint8)
        self._draw(labels2d, source2d, strokes, view, display_size, t, class_id, radius)
        changed = np.argwhere(labels2d != before)
        if not len(changed):
            return 0
        cells_nd = (changed if view.axis is None else
                    np.insert(changed, view.axis, view.index, axis=1))
        self.undo_stack.keep()
        n = self.cells.set_cells(cells_nd, labels2d[tuple(changed.T)],
                                 source2d[tuple(changed.T)])
        self.save()
        return n

    def _merge_wells(self, imported: LabelCells, wells: list[Borehole]) -> int:  # type: ignore[override]
        mapping = np.full(len(imported.classes), -1, dtype=np.int64)
        for c in imported.classes:
            if c.name not in self.cells.class_names:
                self.cells.add_class(c.name, c.colour)
            mapping[c.id] = self.cells.class_id(c.name)
        self.undo_stack.keep()
        n = self.cells.set_cells(imported.cells, mapping[imported.class_ids], imported.source)
        self._add_wells(imported, wells)
        self.save()
        return n

    def _no_split(self, *_args: Any, **_kwargs: Any) -> None:
        raise DataError(
            "a survey this large keeps its labels as a list of cells, without a "
            "train/validation split; training holds back a random fraction of the labelled "
            "cells for validation (the run's validation fraction)"
        )

    split_random = split_by_region = clear_split = _no_split


class _CellLabels:
    """What the pages read of a LabelSet, from listed labels: the class table and its
    edits, counts, shape and dims are the LabelCells'; ``labels`` its section-by-section
    grid; no split."""

    split = None

    def __init__(self, cells: LabelCells) -> None:
        self._cells = cells

    @property
    def labels(self) -> CellGrid:
        return self._cells.grid

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cells, name)


def editor_for(project: Project, grid: xr.DataArray) -> LabelEditor:
    """The label editor that suits the data: listed cells for a survey too large for a
    label grid, else a LabelSet."""
    editor = CellLabelEditor if project.labels_as_cells(grid) else LabelEditor
    return editor(project, grid)
