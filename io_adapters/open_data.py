"""Open any data file fhn reads, by kind or extension, as an ``xarray.DataArray``.

The one entry point the CLI and the app use to read a survey, a map or a cube (and a class
map to score against): it picks the format's reader — :mod:`io_adapters.segy`,
:mod:`io_adapters.zarr_store`, :mod:`io_adapters.geotiff`, :mod:`io_adapters.hyperspectral`
— and passes it the user's options, naming the accepted ones when a key is wrong. Files
larger than memory come Dask-backed (:mod:`io_adapters.lazy`), with the same dims,
coordinates and attrs. The arrays follow DESIGN.md ("Data model"): seismic
``(iline, xline, samples)``, rasters ``(band, y, x)``, cubes ``(y, x, band)``, two dates
``(y, x, band, time)``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from .errors import DataError

__all__ = ["SUPPORTED_DATA", "load_data", "load_class_map", "class_map_dims"]

PathLike = str | Path

SEGY_SUFFIXES = (".sgy", ".segy")
ZARR_SUFFIXES = (".zarr",)  # a SEG-Y ingested by `fhn ingest` (io_adapters.zarr_store)
TIFF_SUFFIXES = (".tif", ".tiff")
MAT_SUFFIXES = (".mat",)
NETCDF_SUFFIXES = (".nc", ".nc4", ".cdf", ".h5", ".hdf5", ".he5")
ENVI_SUFFIXES = (".hdr", ".img", ".dat", ".raw", ".bsq", ".bil", ".bip")
SUPPORTED_DATA = (
    "SEG-Y (.sgy, .segy; or ingested into a .zarr store), GeoTIFF (.tif, .tiff; several "
    "files are stacked), ENVI (.hdr or "
    "its data file), MATLAB (.mat), NetCDF/HDF5 (.nc, .h5); two hyperspectral cubes are "
    "stacked as two dates"
)


def load_data(
    path: PathLike | Sequence[PathLike], *, kind: str | None = None, **options: Any
) -> xr.DataArray:
    """Read one data file (or several that form one dataset) as a DataArray.

    Dispatch by ``kind`` ("segy", "geotiff", "envi", "mat", "netcdf") or by extension:
    .sgy/.segy -> ``read_segy``; .zarr (an ingested survey) -> ``open_segy_store``, Dask-backed;
    .tif/.tiff -> ``read_geotiff`` (several paths ->
    ``stack_rasters``); ENVI .hdr or its data file, .mat, .nc/.h5 -> the hyperspectral
    readers; several hyperspectral paths -> ``stack_dates`` (y, x, band, time).
    ``options`` go to the reader (e.g. ``iline=9`` for SEG-Y, ``variable=`` for .mat/.nc,
    ``categorical=[...]`` for stacked rasters, ``times=[...]`` for dates, ``lazy=`` for
    GeoTIFF, ENVI and NetCDF). A raster or cube larger than
    :data:`io_adapters.lazy.IN_MEMORY_BYTES` comes Dask-backed, read window by window as it
    is used, like a survey store; a smaller one in memory (``lazy=True``/``False`` decides).
    Raises DataError for a missing file, an unknown type or an option the reader lacks.
    """
    paths = [Path(path)] if isinstance(path, str | Path) else [Path(p) for p in path]
    if not paths:
        raise DataError("no data file given; give the path of a SEG-Y, GeoTIFF or cube")
    for p in paths:
        if not p.exists():
            raise DataError(f"data file {p} not found; check the path")
    kinds = [_kind_of_file(p, kind) for p in paths]
    if len(set(kinds)) > 1:
        raise DataError(
            f"the files {[str(p) for p in paths]} are of different kinds {kinds}; load one "
            "kind of data at a time"
        )
    k = kinds[0]
    if k == "segy":
        if len(paths) > 1:
            raise DataError("give one SEG-Y volume at a time")
        from io_adapters.segy import read_segy

        return _call(read_segy, paths[0], options)
    if k == "zarr":
        if len(paths) > 1:
            raise DataError("give one survey store at a time")
        from io_adapters.zarr_store import open_segy_store

        return _call(open_segy_store, paths[0], options)
    if k == "geotiff":
        from io_adapters.geotiff import read_geotiff, stack_rasters

        if len(paths) == 1 and not set(options) - {"bands", "lazy"}:
            return _call(read_geotiff, paths[0], options)
        return _call(stack_rasters, paths, options)
    reader_options = {key: v for key, v in options.items() if key != "times"}
    cubes = [_read_cube(p, k, reader_options) for p in paths]
    if len(cubes) == 1:
        if "times" in options:
            raise DataError("times= needs two or more cubes (dates); give several paths")
        return cubes[0]
    from io_adapters.hyperspectral import stack_dates

    return stack_dates(cubes, options.get("times"))


_KIND_ALIASES = {
    "segy": "segy", "sgy": "segy", "seismic": "segy", "zarr": "zarr",
    "geotiff": "geotiff", "tif": "geotiff",
    "raster": "geotiff", "envi": "envi", "mat": "mat", "netcdf": "netcdf", "nc": "netcdf",
    "hdf5": "netcdf", "hyperspectral": "hyperspectral",
}


def _kind_of_file(p: Path, kind: str | None) -> str:
    """The reader for ``p``: the named kind, else by extension (ENVI: a header beside it)."""
    suffix = p.suffix.lower()
    if kind is not None:
        k = _KIND_ALIASES.get(kind.lower())
        if k is None:
            raise DataError(
                f"unknown data kind {kind!r}; use one of {', '.join(sorted(_KIND_ALIASES))}"
            )
        if k != "hyperspectral":
            return k
        return "mat" if suffix in MAT_SUFFIXES else (
            "netcdf" if suffix in NETCDF_SUFFIXES else "envi")
    if suffix in SEGY_SUFFIXES:
        return "segy"
    if suffix in ZARR_SUFFIXES:
        return "zarr"
    if suffix in TIFF_SUFFIXES:
        return "geotiff"
    if suffix in MAT_SUFFIXES:
        return "mat"
    if suffix in NETCDF_SUFFIXES:
        return "netcdf"
    if suffix in ENVI_SUFFIXES or _has_envi_header(p):
        return "envi"
    raise DataError(
        f"{p}: unknown data type '{suffix or 'no extension'}'; supported: {SUPPORTED_DATA}"
    )


def _has_envi_header(p: Path) -> bool:
    names = (p.name + ".hdr", p.name + ".HDR", p.stem + ".hdr", p.stem + ".HDR")
    return any((p.parent / n).is_file() for n in names)


def _read_cube(p: Path, kind: str, options: dict[str, Any]) -> xr.DataArray:
    from io_adapters.hyperspectral import read_envi, read_mat, read_netcdf

    reader = {"envi": read_envi, "mat": read_mat, "netcdf": read_netcdf}[kind]
    return _call(reader, p, options)


def _call(reader: Callable[..., xr.DataArray], first: Any, options: dict[str, Any]):
    """Call a reader with ``options``, naming the accepted ones when a key is wrong."""
    params = inspect.signature(reader).parameters
    accepted = [n for n, prm in list(params.items())[1:] if prm.kind is not prm.VAR_KEYWORD]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise DataError(
            f"option(s) {unknown} do not apply to {reader.__name__}; it accepts "
            f"{accepted or 'no options'}"
        )
    return reader(first, **options)


def class_map_dims(da: xr.DataArray) -> tuple[str, ...]:
    """The grid axes of a class map read as data: seismic (iline, xline, samples), else (y, x)."""
    dims = set(map(str, da.dims)) - {"band"}
    return ("iline", "xline", "samples") if {"iline", "xline", "samples"} <= dims else ("y", "x")


def load_class_map(path: PathLike, *, kind: str | None = None) -> np.ndarray:
    """A class map (prediction or reference) as int64 ids, -1 where unlabelled/nodata.

    .npy (ints, -1 unlabelled), .npz (a saved LabelSet), .nc (written by
    :func:`app.export.export_prediction`), or any data file :func:`load_data` reads (SEG-Y volume,
    one-band GeoTIFF: NaN/nodata -> -1). Values must be whole numbers. Grid axes follow
    :func:`class_map_dims` for SEG-Y/GeoTIFF and the file's own order otherwise.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p} not found; check the path")
    suffix = p.suffix.lower()
    if suffix == ".npy":
        try:
            values = np.load(p, allow_pickle=False)
        except Exception as err:  # includes the refusal to unpickle object arrays
            raise DataError(f"cannot read {p} as a numeric .npy array ({err})") from err
    elif suffix == ".npz":
        from .labels import load_labels

        values = load_labels(p).labels
    elif suffix == ".nc" and kind is None:
        try:
            with xr.open_dataarray(p, engine="h5netcdf") as arr:
                values = np.asarray(arr.values)
        except (OSError, ValueError) as err:
            raise DataError(f"cannot read {p} as a one-variable NetCDF class map ({err})") from err
    else:
        da = load_data(p, kind=kind)
        if "band" in da.dims:
            if da.sizes["band"] != 1:
                raise DataError(f"{p} has {da.sizes['band']} bands; a class map has one")
            da = da.isel(band=0)
        values = np.asarray(da.transpose(*class_map_dims(da)).values)
    return _as_class_ids(values, p)


def _as_class_ids(values: np.ndarray, p: Path) -> np.ndarray:
    v = np.asarray(values)
    if v.dtype.kind == "f":
        finite = np.isfinite(v)
        if not np.all(v[finite] == np.round(v[finite])):
            raise DataError(f"{p} holds non-integer values; it is not a class map")
        v = np.where(finite, v, -1)
    elif v.dtype.kind not in "iu":
        raise DataError(f"{p} has dtype {v.dtype}; a class map needs integer class ids")
    return v.astype(np.int64)
