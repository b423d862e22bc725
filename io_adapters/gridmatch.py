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


def stack_volumes(volumes: Sequence[xr.DataArray], names: Sequence[str],
                  files: Sequence[str] | None = None) -> xr.DataArray:
    """Several volumes of one survey (near/mid/far stacks, attributes, an inversion) as
    one DataArray with a ``band`` dim in front: (band, iline, xline, samples).

    They must share the geometry: the same inline and crossline numbers, the same sample
    times or depths and the same trace positions (cdp_x/cdp_y where present). The first
    volume's attributes (its source file, headers for export) are kept. A volume on
    another grid is a :class:`io_adapters.errors.DataError` naming what differs (and the
    volume by its file, from ``files``, or else its name).
    """
    from .errors import DataError

    if len(volumes) != len(names):
        raise ValueError("one name per volume")
    titles = list(files) if files is not None else list(names)
    first, first_name = volumes[0], titles[0]
    for vol, name in zip(volumes[1:], titles[1:], strict=True):
        for dim in ("iline", "xline", "samples"):
            a, b = np.asarray(first.coords[dim].values), np.asarray(vol.coords[dim].values)
            if a.shape != b.shape or not np.allclose(a, b):
                raise DataError(
                    f"{name} does not share the survey grid of {first_name}: its {dim} axis "
                    f"is {_axis_summary(b)}, not {_axis_summary(a)}. Volumes of one project "
                    "must be on the same grid; start a new project from this file instead"
                )
        for coord in ("cdp_x", "cdp_y"):
            if coord in first.coords and coord in vol.coords and not np.allclose(
                    first.coords[coord].values, vol.coords[coord].values, atol=0.5):
                raise DataError(
                    f"{name} has the same inline/crossline numbers as {first_name} but its "
                    f"traces lie elsewhere ({coord} differs); start a new project from this "
                    "file instead"
                )
    unit = str(first.attrs.get("vertical_unit", ""))
    for vol, name in zip(volumes[1:], titles[1:], strict=True):
        if str(vol.attrs.get("vertical_unit", unit)) != unit:
            raise DataError(f"{name} is in {vol.attrs.get('vertical_unit')} but {first_name} "
                            f"in {unit}; convert one of them first")
    stacked = xr.concat([v.drop_vars([c for c in v.coords if c not in first.coords],
                                     errors="ignore") for v in volumes],
                        dim="band", coords="minimal", compat="override",
                        combine_attrs="override")
    stacked = stacked.assign_coords(band=list(names))
    stacked.name = first.name
    return stacked.transpose("band", *first.dims)


def _axis_summary(values: np.ndarray) -> str:
    if values.size == 0:
        return "empty"
    return f"{values[0]:g} .. {values[-1]:g} ({values.size} values)"
