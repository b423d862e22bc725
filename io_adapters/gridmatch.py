"""Comparing the georeferencing of two grids: CRS, affine transform, spatial dims.

Used wherever two files must lie on the same grid (two dates of a scene, a label
raster and its data). CRS strings are compared by meaning through rasterio when it
can parse them (two WKT spellings of UTM 51N are the same CRS), by text otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

# Dims that are not part of the spatial grid labels live on.
NON_SPATIAL_DIMS = ("band", "time")


def crs_equal(a: str | None, b: str | None) -> bool:
    """True when two CRS descriptions (WKT, ``EPSG:n``, PROJ string, text) mean the same CRS."""
    if a is None or b is None:
        return a is None and b is None
    if str(a).strip() == str(b).strip():
        return True
    try:
        from rasterio.crs import CRS  # lazy: rasterio is slow to import

        return bool(CRS.from_user_input(str(a)) == CRS.from_user_input(str(b)))
    except Exception:  # unparsable descriptive strings: the text comparison above decided
        return False


def transform_equal(
    a: Sequence[float] | None, b: Sequence[float] | None, *, rel_tol: float = 1e-6
) -> bool:
    """True when two 6-tuple affine transforms (a..f) agree to ``rel_tol`` of the pixel size."""
    if a is None or b is None:
        return a is None and b is None
    ta = np.asarray(tuple(a)[:6], dtype=float)
    tb = np.asarray(tuple(b)[:6], dtype=float)
    if ta.shape != (6,) or tb.shape != (6,):
        return False
    pixel = max(abs(ta[0]), abs(ta[1]), abs(ta[3]), abs(ta[4]), 1e-12)
    return bool(np.all(np.abs(ta - tb) <= rel_tol * pixel))


def spatial_dims(grid: xr.DataArray) -> tuple[str, ...]:
    """The dims labels are painted on: seismic (iline, xline, samples), rasters (y, x)."""
    return tuple(str(d) for d in grid.dims if d not in NON_SPATIAL_DIMS)


def spatial_shape(grid: xr.DataArray) -> tuple[int, ...]:
    """Sizes of :func:`spatial_dims`, in the grid's own dim order."""
    return tuple(int(grid.sizes[d]) for d in spatial_dims(grid))
