"""Labels from points and transects: CSV rows and GeoJSON features placed on the grid."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from .errors import DataError
from .label_geometry import brush_index, check_radius, line_cells, paint_cells
from .label_placement import (
    VERTICAL_NAMES,
    ClassMapper,
    csv_number,
    empty_labels_on,
    map_to_cells,
    place_horizontal,
    position_columns,
    raise_if_outside,
    read_csv,
    to_grid_order,
    vertical_dim,
    vertical_index,
)
from .labels import LabelSet, Provenance

__all__ = ["import_points"]

PathLike = str | os.PathLike[str]


def import_points(
    path: PathLike,
    grid: xr.DataArray,
    class_names: Sequence[str] | None = None,
    *,
    radius: float = 0.0,
) -> LabelSet:
    """Labels from points and transects: CSV or GeoJSON, placed on ``grid``'s cells.

    CSV columns: ``x,y,class`` (map coordinates in the data's CRS), ``iline,xline,class``
    (seismic header numbers) or ``row,col,class`` (grid indices); 3D seismic also needs a
    vertical column (``sample``/``time``/``twt``/``depth``/``z``, in the samples coord's
    unit). GeoJSON: Point/MultiPoint (provenance POINT) and LineString/MultiLineString
    (rasterised along the line, provenance TRANSECT) features with a ``class`` property,
    coordinates (x, y[, z]) in the data's CRS. ``class`` values are names or 1-based
    numbers; ``class_names`` fixes the class table (else taken from the file). Each point
    paints a brush of ``radius`` cells. Later features overwrite earlier ones.
    Raises :class:`DataError` listing how many points fall outside the grid.
    """
    p = Path(path)
    radius = check_radius(radius, tuple(grid.shape), f"{p}: radius")
    if p.suffix.lower() in (".geojson", ".json"):
        return _import_geojson(p, grid, class_names, radius)
    return _import_points_csv(p, grid, class_names, radius)


def _import_points_csv(
    p: Path, grid: xr.DataArray, class_names: Sequence[str] | None, radius: float
) -> LabelSet:
    header, rows = read_csv(p)
    kind = position_columns(header, grid)
    vcol = next((c for c in VERTICAL_NAMES if c in header), None)
    needs_vertical = vertical_dim(grid) is not None
    cls_col = "class" if "class" in header else "label" if "label" in header else None
    if kind is None or cls_col is None or (needs_vertical and vcol is None):
        expected = "iline,xline,sample,class or x,y,sample,class" if needs_vertical else (
            "x,y,class or row,col,class"
        )
        raise DataError(
            f"{p}: columns {header} do not name a position and a class; "
            f"the header line should be: {expected}"
        )
    a_col, b_col = {"xy": ("x", "y"), "ilxl": ("iline", "xline"), "rowcol": ("row", "col")}[kind]
    if not rows:
        raise DataError(f"{p} has a header but no rows; add points or choose another file")
    a = np.array([csv_number(r, a_col, p, n + 2) for n, r in enumerate(rows)])
    b = np.array([csv_number(r, b_col, p, n + 2) for n, r in enumerate(rows)])
    cells, inside = place_horizontal(grid, kind, a, b)
    if needs_vertical:
        assert vcol is not None
        z = np.array([csv_number(r, vcol, p, n + 2) for n, r in enumerate(rows)])
        zi, zin = vertical_index(grid, z)
        cells = np.concatenate([cells, zi[:, None]], axis=1)
        inside &= zin
    cells = to_grid_order(grid, cells)
    bad = [
        f"line {n + 2}: " + ", ".join(f"{c}={rows[n][c]}" for c in (a_col, b_col, vcol) if c)
        for n in np.flatnonzero(~inside)
    ]
    raise_if_outside(p, "points", len(rows), bad, grid)
    mapper = ClassMapper([r[cls_col] for r in rows], class_names, p)
    ls = empty_labels_on(grid, mapper.names)
    for n, (row, cell) in enumerate(zip(rows, cells, strict=True)):
        cid = mapper(row[cls_col], f"line {n + 2}")
        idx = brush_index([cell], radius, ls.shape)
        paint_cells(ls.labels, idx, cid, source=ls.source, provenance=Provenance.POINT)
    return ls


def _import_geojson(
    p: Path, grid: xr.DataArray, class_names: Sequence[str] | None, radius: float
) -> LabelSet:
    if not p.is_file():
        raise DataError(f"file {p} not found; check the path")
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(f"cannot read {p} as GeoJSON ({err}); export it again") from err
    features = doc.get("features", [doc]) if isinstance(doc, dict) else doc
    parts: list[tuple[str, list[list[float]], str, str]] = []  # (kind, coords, class, where)
    for n, feat in enumerate(features):
        geom = (feat or {}).get("geometry") or {}
        props = (feat or {}).get("properties") or {}
        value = props.get("class", props.get("label"))
        gtype, coords = geom.get("type"), geom.get("coordinates")
        where = f"feature {n}"
        if value is None or coords is None:
            raise DataError(
                f"{p}, {where}: needs a geometry and a 'class' property; add them"
            )
        if gtype == "Point":
            parts.append(("point", [coords], str(value), where))
        elif gtype == "MultiPoint":
            parts += [("point", [c], str(value), where) for c in coords]
        elif gtype == "LineString":
            parts.append(("line", coords, str(value), where))
        elif gtype == "MultiLineString":
            parts += [("line", c, str(value), where) for c in coords]
        else:
            raise DataError(
                f"{p}, {where}: geometry type {gtype!r} not supported; use Point, "
                "MultiPoint, LineString or MultiLineString"
            )
    if not parts:
        raise DataError(f"{p} has no features; add points or lines")
    needs_vertical = vertical_dim(grid) is not None
    verts = [np.asarray(c, dtype=np.float64).reshape(-1, np.shape(c)[-1]) for _, c, _, _ in parts]
    flat = np.concatenate(verts)
    if needs_vertical and flat.shape[1] < 3:
        raise DataError(
            f"{p}: the data is a 3D volume, so every coordinate needs a third value "
            "(time/depth in the samples' unit); add z to the geometries"
        )
    cells, inside = map_to_cells(grid, flat[:, 0], flat[:, 1])
    if needs_vertical:
        zi, zin = vertical_index(grid, flat[:, 2])
        cells = np.concatenate([cells, zi[:, None]], axis=1)
        inside &= zin
    cells = to_grid_order(grid, cells)
    owners = np.repeat(np.arange(len(parts)), [len(v) for v in verts])
    bad = [
        f"{parts[owners[i]][3]} at ({', '.join(f'{v:g}' for v in flat[i])})"
        for i in np.flatnonzero(~inside)
    ]
    raise_if_outside(p, "coordinates", len(flat), bad, grid)
    mapper = ClassMapper([v for _, _, v, _ in parts], class_names, p)
    ls = empty_labels_on(grid, mapper.names)
    start = 0
    for (kind, _, value, where), v in zip(parts, verts, strict=True):
        vcells = cells[start : start + len(v)]
        start += len(v)
        cid = mapper(value, where)
        path_cells = line_cells(vcells) if kind == "line" else vcells
        prov = Provenance.TRANSECT if kind == "line" else Provenance.POINT
        idx = brush_index(path_cells, radius, ls.shape)
        paint_cells(ls.labels, idx, cid, source=ls.source, provenance=prov)
    return ls
