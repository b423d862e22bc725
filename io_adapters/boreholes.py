"""Boreholes: labels along wells from interval tables, and the well table's own file.

A well is a horizontal position and a list of (top, base, class) intervals in the data's
vertical unit; on seismic each interval labels the samples between top and base in the
traces within a radius of the well, on a 2D map a well labels a disk. The well table is
kept beside the labels (``save_boreholes``) so the app can draw and edit the wells.

On a survey too large for a label array per cell (a Zarr store of billions of cells)
:func:`import_borehole_cells` gives the same labels as :class:`LabelCells`, the labelled
cells listed: a few wells never allocate the survey's grid.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr

from .atomic import atomic_output
from .errors import DataError
from .gridmatch import spatial_dims, spatial_shape
from .label_geometry import brush_index, check_radius, paint_cells
from .label_placement import (
    ClassMapper,
    csv_number,
    empty_labels_on,
    grid_description,
    horizontal_dims,
    is_seismic,
    place_horizontal,
    position_columns,
    read_csv,
    to_grid_order,
    vertical_dim,
)
from .labels import FILE_VERSION, LabelCells, LabelSet, Provenance

__all__ = [
    "Borehole", "import_boreholes", "import_borehole_cells", "boreholes_from_rows",
    "save_boreholes", "load_boreholes",
]

PathLike = str | os.PathLike[str]


@dataclass
class Borehole:
    """A well as the app draws it: grid position, map position and labelled intervals.

    ``position`` is the horizontal cell (row, col) = (iline index, xline index) for
    seismic; ``xy`` the map coordinates when given; ``intervals`` (top, base, class id)
    in the vertical unit of the data (empty on 2D maps, where a well labels a disk).
    """

    name: str
    position: tuple[int, int]
    xy: tuple[float, float] | None = None
    intervals: list[tuple[float, float, int]] = field(default_factory=list)


def import_boreholes(
    path: PathLike,
    grid: xr.DataArray,
    radius: float = 1.5,
    *,
    class_names: Sequence[str] | None = None,
) -> tuple[LabelSet, list[Borehole]]:
    """Labels along wells from a CSV of intervals; returns (labels, well table).

    Columns: ``well``, position ``x,y`` (map, data CRS) or ``iline,xline`` (seismic
    numbers) or ``row,col`` (indices), ``top``, ``base``, ``class`` (name or 1-based
    number); one row per interval. On seismic, samples with top <= value <= base (unit of
    the samples coord, e.g. ms) are labelled in every trace within ``radius`` traces of
    the well (provenance BOREHOLE). On a 2D map top/base are optional and each row labels
    the disk of ``radius`` cells around the well.
    """
    p = Path(path)
    header, rows = read_csv(p)
    return _boreholes(header, rows, grid, radius, class_names, p)


def import_borehole_cells(
    path: PathLike,
    grid: xr.DataArray,
    radius: float = 1.5,
    *,
    class_names: Sequence[str] | None = None,
) -> tuple[LabelCells, list[Borehole]]:
    """:func:`import_boreholes` as a list of labelled cells, for grids too large for a
    LabelSet: the same cells and classes, the survey's grid never allocated (only its
    coordinates are read)."""
    p = Path(path)
    header, rows = read_csv(p)
    return _boreholes(header, rows, grid, radius, class_names, p, listed=True)


def boreholes_from_rows(
    rows: Sequence[Mapping[str, object]],
    grid: xr.DataArray,
    radius: float = 1.5,
    *,
    class_names: Sequence[str] | None = None,
    origin: str = "the well table",
    listed: bool = False,
) -> tuple[LabelSet | LabelCells, list[Borehole]]:
    """:func:`import_boreholes` for interval rows typed in (e.g. a well added in the app).

    ``rows`` are mappings with the CSV's column names (``well``, a position pair, ``top``,
    ``base``, ``class``; any case) and string or number values. ``origin`` names the table
    in error messages, in place of the CSV's path. ``listed``: as LabelCells (as
    :func:`import_borehole_cells`), for grids too large for a LabelSet.
    """
    header = list(dict.fromkeys(str(k).strip().lower() for row in rows for k in row))
    text_rows = [
        {str(k).strip().lower(): "" if v is None else str(v).strip() for k, v in row.items()}
        for row in rows
    ]
    return _boreholes(header, text_rows, grid, radius, class_names, origin, listed)


def _boreholes(
    header: Sequence[str],
    rows: list[dict[str, str]],
    grid: xr.DataArray,
    radius: float,
    class_names: Sequence[str] | None,
    p: Path | str,
    listed: bool = False,
) -> tuple[LabelSet | LabelCells, list[Borehole]]:
    """The body of :func:`import_boreholes` (``listed``: of :func:`import_borehole_cells`);
    ``p`` names the table in messages."""
    hshape = tuple(grid.sizes[d] for d in horizontal_dims(grid))
    radius = check_radius(radius, hshape, f"{p}: radius")
    vertical = vertical_dim(grid) is not None
    kind = position_columns(header, grid)
    pos_cols = {"xy": ["x", "y"], "ilxl": ["iline", "xline"], "rowcol": ["row", "col"]}.get(
        kind or "", ["iline", "xline"] if is_seismic(grid) else ["x", "y"]
    )
    required = ["well", *pos_cols, *(["top", "base"] if vertical else []), "class"]
    missing = [c for c in required if c not in header]
    if missing:
        expected = ",".join(required)
        alt = " (or x,y instead of iline,xline)" if is_seismic(grid) else ""
        raise DataError(
            f"{p}: missing column(s) {', '.join(missing)}; the header line should be: "
            f"{expected}{alt}"
        )
    if not rows:
        raise DataError(f"{p} has a header but no wells; add rows")
    assert kind is not None
    a = np.array([csv_number(r, pos_cols[0], p, n + 2) for n, r in enumerate(rows)])
    b = np.array([csv_number(r, pos_cols[1], p, n + 2) for n, r in enumerate(rows)])
    cells, inside = place_horizontal(grid, kind, a, b)
    outside_wells = list(dict.fromkeys(r["well"] for r, ok in zip(rows, inside, strict=True)
                                       if not ok))
    if outside_wells:
        raise DataError(
            f"{p}: well(s) {', '.join(outside_wells)} lie outside the survey "
            f"{grid_description(grid)}; check their coordinates (and the CRS) or remove them"
        )
    mapper = ClassMapper([r["class"] for r in rows], class_names, p)
    strokes: list[tuple[tuple[np.ndarray, ...], int]] = []  # (cells, class), in row order
    wells: dict[str, Borehole] = {}
    vdim = vertical_dim(grid)
    zaxis = None
    if vdim is not None:
        zaxis = (np.asarray(grid.coords[vdim].values, dtype=np.float64)
                 if vdim in grid.coords else np.arange(grid.sizes[vdim], dtype=np.float64))
    for n, (row, cell) in enumerate(zip(rows, cells, strict=True)):
        where = f"line {n + 2} (well {row['well']})"
        cid = mapper(row["class"], where)
        well = wells.setdefault(
            row["well"],
            Borehole(row["well"], (int(cell[0]), int(cell[1])),
                     (float(a[n]), float(b[n])) if kind == "xy" else None),
        )
        disk = brush_index([cell], radius, hshape)
        if zaxis is None:
            strokes.append((disk, cid))
            continue
        top, base = sorted((csv_number(row, "top", p, n + 2), csv_number(row, "base", p, n + 2)))
        _check_no_overlap(well, top, base, p, where)
        zs = np.flatnonzero((zaxis >= top) & (zaxis <= base))
        step = float(np.median(np.abs(np.diff(zaxis)))) if len(zaxis) > 1 else 1.0
        if len(zs) == 0:
            mid = (top + base) / 2
            nearest = int(np.abs(zaxis - mid).argmin())
            if abs(zaxis[nearest] - mid) > step / 2 + (base - top) / 2:
                raise DataError(
                    f"{p}, {where}: interval {top:g}-{base:g} lies outside the samples "
                    f"{zaxis.min():g}-{zaxis.max():g} {grid.attrs.get('vertical_unit', '')}; "
                    "check the unit of top/base (ms or m)"
                )
            zs = np.array([nearest])
        ring = np.stack([np.repeat(disk[0], len(zs)), np.repeat(disk[1], len(zs)),
                         np.tile(zs, len(disk[0]))], axis=1)
        strokes.append((tuple(to_grid_order(grid, ring).T), cid))
        well.intervals.append((top, base, cid))
    return _painted(strokes, grid, mapper.names, listed), list(wells.values())


def _painted(strokes: list[tuple[tuple[np.ndarray, ...], int]], grid: xr.DataArray,
             names: Sequence[str], listed: bool) -> LabelSet | LabelCells:
    """The wells' labels, painted in row order: into a LabelSet, or listed as LabelCells."""
    if listed:
        cells = [np.stack(index, axis=1) for index, _ in strokes]
        ids = [np.full(len(c), cid) for c, (_, cid) in zip(cells, strokes, strict=True)]
        flat = np.concatenate(cells)
        return LabelCells(spatial_shape(grid), spatial_dims(grid), flat, np.concatenate(ids),
                          list(names), np.full(len(flat), Provenance.BOREHOLE))
    ls = empty_labels_on(grid, names)
    for index, cid in strokes:
        paint_cells(ls.labels, index, cid, source=ls.source, provenance=Provenance.BOREHOLE)
    return ls


def _check_no_overlap(well: Borehole, top: float, base: float, p: Path | str, where: str) -> None:
    """Two intervals of one well that share more than a boundary would label the shared
    samples twice, the later row silently winning."""
    for other_top, other_base, _ in well.intervals:
        if top < other_base and other_top < base:
            raise DataError(
                f"{p}, {where}: interval {top:g}-{base:g} overlaps the interval "
                f"{other_top:g}-{other_base:g} of the same well; fix the tops and bases"
            )


BOREHOLE_FORMAT = "fhn-boreholes"


def save_boreholes(path: PathLike, wells: Sequence[Borehole]) -> Path:
    """Write a well table (name, grid position, map position, intervals) as JSON, atomically.

    Interval class ids refer to the class table of the labels saved beside it.
    """
    target = Path(path)
    doc = {
        "format": BOREHOLE_FORMAT,
        "version": FILE_VERSION,
        "wells": [
            {
                "name": w.name,
                "position": [int(w.position[0]), int(w.position[1])],
                "xy": None if w.xy is None else [float(w.xy[0]), float(w.xy[1])],
                "intervals": [[float(t), float(b), int(c)] for t, b, c in w.intervals],
            }
            for w in wells
        ],
    }
    with atomic_output(target) as tmp:
        tmp.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    return target


def load_boreholes(path: PathLike) -> list[Borehole]:
    """Read a well table written by :func:`save_boreholes`."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"well table {p} not found; import boreholes first or check the path")
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
        if doc.get("format") != BOREHOLE_FORMAT:
            raise ValueError(f"format is {doc.get('format')!r}")
        wells = [
            Borehole(
                str(w["name"]),
                (int(w["position"][0]), int(w["position"][1])),
                None if w.get("xy") is None else (float(w["xy"][0]), float(w["xy"][1])),
                [(float(t), float(b), int(c)) for t, b, c in w.get("intervals", [])],
            )
            for w in doc["wells"]
        ]
    except Exception as err:  # JSON, key and type errors all mean a damaged or foreign file
        raise DataError(
            f"{p} is not a readable fhn well table ({type(err).__name__}: {err}); "
            "import the borehole CSV again"
        ) from err
    return wells
