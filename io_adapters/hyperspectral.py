"""Hyperspectral and multi-date image cubes: ENVI, MATLAB .mat, NetCDF/HDF5.

Every reader returns an ``xarray.DataArray`` of float32 with dims ``("y", "x", "band")``
(DESIGN.md "Data model"), wavelengths as a ``wavelength`` coordinate on ``band`` when the
file has them, and attrs ``kind="hyperspectral"`` and ``source_path``. Georeferenced
inputs also carry attrs ``crs`` (WKT) and ``transform`` (6-tuple affine a..f, rasterio
order: x = a*col + b*row + c, y = d*col + e*row + f). :func:`stack_dates` puts several
acquisitions of one scene on a new last dim ``time``. ENVI and NetCDF cubes larger than
memory are Dask-backed, read when used (:mod:`io_adapters.lazy`); MATLAB files are read
whole (scipy reads them so).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from .errors import DataError, warn_data, warn_non_finite
from .gridmatch import crs_equal, transform_equal
from .lazy import CHUNK_VALUES, LOCAL, edge, is_lazy, spread_values, unnamed, windowed

__all__ = ["read_envi", "read_mat", "read_netcdf", "stack_dates", "parse_envi_header"]

PathLike = str | os.PathLike[str]

# ENVI "data type" codes -> numpy dtypes (byte order applied later).
ENVI_DTYPES: dict[int, np.dtype] = {
    1: np.dtype("u1"),
    2: np.dtype("i2"),
    3: np.dtype("i4"),
    4: np.dtype("f4"),
    5: np.dtype("f8"),
    6: np.dtype("c8"),
    9: np.dtype("c16"),
    12: np.dtype("u2"),
    13: np.dtype("u4"),
    14: np.dtype("i8"),
    15: np.dtype("u8"),
}

# Raw array axis order on disk for each interleave, as (lines, samples, bands) letters.
_INTERLEAVE_SHAPES = {"bsq": "bls", "bil": "lbs", "bip": "lsb"}
_DATA_SUFFIXES = ("", ".img", ".dat", ".raw", ".bsq", ".bil", ".bip", ".IMG", ".DAT", ".RAW")


# --------------------------------------------------------------------------- ENVI
def parse_envi_header(header_path: PathLike) -> dict[str, str]:
    """Parse an ENVI ``.hdr`` file into ``{lower-case key: raw value}``.

    Keys are case-insensitive (whitespace collapsed); a value in braces may span lines
    and is returned with its braces stripped. Raises :class:`DataError` when the file
    does not start with ``ENVI`` or a brace is never closed.
    """
    path = Path(header_path)
    try:
        text = path.read_text(encoding="latin-1")
    except OSError as err:
        raise DataError(f"cannot read ENVI header {path}: {err.strerror}") from err
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if not lines or lines[0].strip().upper() != "ENVI":
        raise DataError(
            f"{path} is not an ENVI header (first line must be 'ENVI'); "
            "point to the .hdr file written with the data"
        )
    header: dict[str, str] = {}
    i = 1
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line.strip() or line.lstrip().startswith(";") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        key = " ".join(key.split()).lower()
        value = value.strip()
        if value.startswith("{"):
            start_line = i
            while "}" not in value:
                if i >= len(lines):
                    raise DataError(
                        f"ENVI header {path}: the value of '{key}' opened with '{{' on line "
                        f"{start_line} is never closed; repair or re-export the header"
                    )
                value += "\n" + lines[i]
                i += 1
            value = value[1 : value.rindex("}")].strip()
        header[key] = value
    return header


def _split_list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",")]


def _header_int(header: dict[str, str], key: str, path: Path, default: int | None = None) -> int:
    raw = header.get(key)
    if raw is None:
        if default is not None:
            return default
        raise DataError(
            f"ENVI header {path} has no '{key}' entry; it needs samples, lines, bands, "
            "data type and interleave"
        )
    try:
        return int(float(raw))
    except ValueError:
        raise DataError(
            f"ENVI header {path}: '{key} = {raw}' is not a number; fix the header"
        ) from None


def _find_envi_pair(path: PathLike) -> tuple[Path, Path]:
    """Return (header, data) paths given either one of them."""
    given = Path(path)
    if given.suffix.lower() == ".hdr":
        header = given
        stem = given.with_suffix("")
        candidates = [stem.with_name(stem.name + s) for s in _DATA_SUFFIXES]
        data = next((c for c in candidates if c.is_file()), None)
        if not header.is_file():
            raise DataError(f"ENVI header {header} not found; check the path")
        if data is None:
            raise DataError(
                f"ENVI header {header}: no data file beside it (looked for {stem.name} "
                "with no extension, .img, .dat, .raw, .bsq, .bil, .bip); put the data "
                "file next to the header"
            )
        return header, data
    data = given
    if not data.is_file():
        raise DataError(f"ENVI data file {data} not found; check the path")
    candidates = [
        data.with_name(data.name + ".hdr"),
        data.with_name(data.name + ".HDR"),
        data.with_suffix(".hdr"),
        data.with_suffix(".HDR"),
    ]
    header_found = next((c for c in candidates if c.is_file()), None)
    if header_found is None:
        raise DataError(
            f"ENVI data file {data} has no header beside it (looked for "
            f"{data.name}.hdr and {data.stem}.hdr); the .hdr file is needed to read it"
        )
    return header_found, data


def _envi_transform(map_info: str, path: Path) -> tuple[float, ...] | None:
    """Affine (a..f) from an ENVI ``map info`` value; GDAL's reading of the tie point.

    The reference pixel is 1-based with (1, 1) the upper-left corner of the first pixel.
    """
    items = _split_list(map_info)
    try:
        ref_x, ref_y, easting, northing, size_x, size_y = (float(v) for v in items[1:7])
    except (ValueError, IndexError):
        raise DataError(
            f"ENVI header {path}: cannot read 'map info = {{{map_info}}}' (need projection, "
            "reference pixel x/y, easting, northing, pixel size x/y); fix or remove it"
        ) from None
    rotation = 0.0
    for item in items:
        if item.lower().replace(" ", "").startswith("rotation="):
            rotation = float(item.split("=", 1)[1])
    # ENVI rotation is counter-clockwise, in degrees (as GDAL reads it).
    cos_r, sin_r = math.cos(math.radians(rotation)), math.sin(math.radians(rotation))
    a, b = cos_r * size_x, sin_r * size_y
    d, e = sin_r * size_x, -cos_r * size_y
    c = easting - (ref_x - 1) * a - (ref_y - 1) * b
    f = northing - (ref_x - 1) * d - (ref_y - 1) * e
    return (a, b, c, d, e, f)


def _envi_crs(header: dict[str, str]) -> str | None:
    """A WKT CRS from ``map info`` (UTM + WGS-84 -> EPSG) or ``coordinate system string``.

    Falls back to a descriptive string when rasterio cannot build the WKT.
    """
    items = _split_list(header.get("map info", ""))
    descriptive = None
    epsg = None
    if items and items[0].strip().upper() == "UTM" and len(items) >= 10:
        zone, hemi, datum = items[7], items[8].title(), items[9]
        descriptive = f"UTM zone {zone} {hemi} {datum}"
        if datum.upper().replace("-", "").replace(" ", "") == "WGS84" and zone.isdigit():
            epsg = (32600 if hemi.startswith("N") else 32700) + int(zone)
    try:
        from rasterio.crs import CRS  # lazy: only georeferenced files need it

        if epsg is not None:
            return str(CRS.from_epsg(epsg).to_wkt())
        if header.get("coordinate system string"):
            return str(CRS.from_wkt(header["coordinate system string"]).to_wkt())
    except Exception:
        pass  # keep the descriptive text below; a CRS we cannot parse is still worth showing
    if header.get("coordinate system string"):
        return header["coordinate system string"]
    if descriptive is not None:
        return descriptive
    if items and items[0]:
        return f"{items[0]} (from ENVI map info)"
    return None


def _centre_coords(transform: Sequence[float], rows: int, cols: int) -> dict[str, Any]:
    """x/y pixel-centre coordinates for a north-up transform (none for rotated grids)."""
    a, b, c, d, e, f = transform
    if b != 0 or d != 0:
        return {}
    return {
        "y": ("y", f + e * (np.arange(rows) + 0.5)),
        "x": ("x", c + a * (np.arange(cols) + 0.5)),
    }


def read_envi(header_path_or_data_path: PathLike, *, lazy: bool | None = None) -> xr.DataArray:
    """Read an ENVI image (header + raw data) as float32 DataArray ``(y, x, band)``.

    Accepts the header (``<data>.hdr``, ``<data>.HDR`` or ``<stem>.hdr``) or the data file.
    Honours interleave (bsq/bil/bip), data type codes 1, 2, 3, 4, 5, 12, 13, 14, 15,
    ``byte order`` and ``header offset``. Wavelengths become coordinate ``wavelength``
    (attr ``units``), ``band names`` coordinate ``band_name``; ``map info`` becomes attrs
    ``crs`` and ``transform``; ``data ignore value`` attr ``nodata``.
    Raises :class:`DataError` for a missing/garbled header or a data file of the wrong size.

    ``lazy`` (default: only for cubes over :data:`io_adapters.lazy.IN_MEMORY_BYTES`) gives
    a Dask-backed array over a memory map of the file, in chunks of whole lines (one band
    per chunk for BSQ), so a view reads only what it shows; the NaN and byte-order checks
    then look at a few chunks spread over the cube. Otherwise the cube is read now.
    """
    header_path, data_path = _find_envi_pair(header_path_or_data_path)
    header = parse_envi_header(header_path)
    samples = _header_int(header, "samples", header_path)
    lines = _header_int(header, "lines", header_path)
    bands = _header_int(header, "bands", header_path, default=1)
    code = _header_int(header, "data type", header_path)
    offset = _header_int(header, "header offset", header_path, default=0)
    byte_order = _header_int(header, "byte order", header_path, default=0)
    interleave = header.get("interleave", "bsq").strip().lower()
    if code not in ENVI_DTYPES or code in (6, 9):
        raise DataError(
            f"ENVI header {header_path}: data type {code} is not supported; supported codes "
            "are 1, 2, 3, 4, 5, 12, 13, 14, 15 (integers and reals); convert the file"
        )
    if interleave not in _INTERLEAVE_SHAPES:
        raise DataError(
            f"ENVI header {header_path}: interleave '{interleave}' unknown; use bsq, bil or bip"
        )
    if min(samples, lines, bands) <= 0:
        raise DataError(
            f"ENVI header {header_path}: samples={samples}, lines={lines}, bands={bands} "
            "must all be positive"
        )
    dtype = ENVI_DTYPES[code].newbyteorder(">" if byte_order == 1 else "<")
    expected = offset + samples * lines * bands * dtype.itemsize
    actual = data_path.stat().st_size
    if actual != expected:
        what = "truncated" if actual < expected else "larger than the header describes"
        raise DataError(
            f"ENVI data file {data_path} is {actual} bytes but its header {header_path.name} "
            f"describes {expected} bytes (offset {offset} + {lines} lines x {samples} samples "
            f"x {bands} bands x {dtype.itemsize} bytes): the file is {what}; re-copy the "
            "data file or fix the header"
        )
    keep_lazy = is_lazy(lines * samples * bands, lazy)
    chunks = None
    if keep_lazy:  # whole lines, which lie together on disk in every interleave
        per_line = samples if interleave == "bsq" else samples * bands
        chunks = (min(lines, max(1, CHUNK_VALUES // per_line)), samples,
                  1 if interleave == "bsq" else bands)
    cube = windowed(_EnviFile(data_path, dtype, offset, _INTERLEAVE_SHAPES[interleave],
                              {"l": lines, "s": samples, "b": bands}), chunks)
    if not keep_lazy:
        cube = cube.compute(scheduler=LOCAL)
    checked = spread_values(cube)
    warn_non_finite(checked, data_path, "samples" if checked.size == cube.size
                    else "samples of a few chunks spread over the cube")
    if dtype.kind == "f":
        _warn_if_misread_floats(checked, data_path, header_path)

    coords: dict[str, Any] = {}
    attrs: dict[str, Any] = {"kind": "hyperspectral", "source_path": str(data_path)}
    if "wavelength" in header:
        try:
            wl = np.array([float(v) for v in _split_list(header["wavelength"])])
        except ValueError:
            raise DataError(
                f"ENVI header {header_path}: the wavelength list is not numeric; fix it"
            ) from None
        if wl.size == bands:
            coords["wavelength"] = xr.Variable(
                "band", wl, attrs={"units": header.get("wavelength units", "unknown")}
            )
    if "band names" in header:
        names = _split_list(header["band names"])
        if len(names) == bands:
            coords["band_name"] = ("band", names)
    if "map info" in header:
        transform = _envi_transform(header["map info"], header_path)
        attrs["transform"] = transform
        coords.update(_centre_coords(transform, lines, samples))
        crs = _envi_crs(header)
        if crs is not None:
            attrs["crs"] = crs
    if "data ignore value" in header:
        try:
            attrs["nodata"] = float(header["data ignore value"])
        except ValueError:
            pass  # a non-numeric ignore value means nothing for float data
    if "description" in header:
        attrs["description"] = " ".join(header["description"].split())
    return xr.DataArray(unnamed(cube, ("y", "x", "band")), coords=coords, attrs=attrs)


class _EnviFile:
    """An ENVI data file as a float32 (lines, samples, bands) array that Dask reads by
    windows (``__getitem__`` of slices and integers): each read maps the file, copies the
    window out in (y, x, band) order and lets the map go, so the object pickles (a path)
    and a chunk costs only its window. ``order`` is the on-disk axis order ("bls" for BSQ,
    "lbs" for BIL, "lsb" for BIP), ``dtype`` the file's, byte order included."""

    ndim = 3
    dtype = np.dtype(np.float32)

    def __init__(self, path: Path, dtype: np.dtype, offset: int, order: str,
                 sizes: dict[str, int]):
        self.path, self.file_dtype, self.offset, self.order = path, dtype, offset, order
        self.disk_shape = tuple(sizes[k] for k in order)
        self.shape = (sizes["l"], sizes["s"], sizes["b"])
        stat = path.stat()
        self._token = (str(path), stat.st_size, stat.st_mtime_ns, dtype.str, offset, order)

    def __dask_tokenize__(self) -> tuple:
        return self._token

    def __getitem__(self, key: Any) -> np.ndarray:
        key = key if isinstance(key, tuple) else (key,)
        by_axis = dict(zip("lsb", key + (slice(None),) * (self.ndim - len(key)), strict=True))
        raw = np.memmap(self.path, dtype=self.file_dtype, mode="r", offset=self.offset,
                        shape=self.disk_shape)
        part = raw[tuple(by_axis[k] for k in self.order)]
        kept = [k for k in self.order if not isinstance(by_axis[k], (int, np.integer))]
        wanted = [k for k in "lsb" if k in kept]
        # a copy, in native float32: nothing returned keeps the file mapped
        return np.array(np.transpose(part, [kept.index(k) for k in wanted]),
                        dtype=np.float32, order="C")


# --------------------------------------------------------------------------- MATLAB
_MATLAB_NUMERIC = {
    "double", "single", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64",
    "uint64", "logical",
}


def _pick_variable(
    candidates: dict[str, tuple[int, ...]],
    path: Path,
    variable: str | None,
    want: str,
    others: Sequence[str] = (),
) -> str:
    """Choose ``variable`` or the single largest candidate; DataError listing them otherwise."""
    listing = ", ".join(f"{k} {v}" for k, v in candidates.items()) or "none"
    if others:
        listing += "; other variables: " + ", ".join(others)
    if variable is not None:
        if variable not in candidates:
            raise DataError(
                f"{path}: variable '{variable}' is not a {want} (candidates: {listing}); "
                "pass one of those names"
            )
        return variable
    if not candidates:
        raise DataError(f"{path} holds no {want} (variables found: {listing}); check the file")
    sizes = {k: math.prod(v) for k, v in candidates.items()}
    biggest = max(sizes.values())
    best = [k for k, s in sizes.items() if s == biggest]
    if len(best) > 1:
        raise DataError(
            f"{path}: several {want}s of the same size ({listing}); "
            "pass variable=<name> to choose one"
        )
    return best[0]


def _band_last(cube: np.ndarray, band_axis: int | None, path: Path) -> np.ndarray:
    """Move the band axis (given, else the smallest; ties go to the later axis) last."""
    if band_axis is None:
        smallest = min(cube.shape)
        band_axis = max(i for i, n in enumerate(cube.shape) if n == smallest)
    if not -cube.ndim <= band_axis < cube.ndim:
        raise DataError(f"{path}: band_axis={band_axis} but the cube has shape {cube.shape}")
    return np.moveaxis(cube, band_axis, -1)


def _read_mat_v73(path: Path, variable: str | None) -> tuple[str, np.ndarray]:
    import h5py

    with h5py.File(path, "r") as f:
        candidates: dict[str, tuple[int, ...]] = {}
        others: list[str] = []
        for name, obj in f.items():
            if not isinstance(obj, h5py.Dataset) or name.startswith("#"):
                continue
            cls = obj.attrs.get("MATLAB_class", b"")
            cls = cls.decode() if isinstance(cls, bytes) else str(cls)
            numeric = cls in _MATLAB_NUMERIC or (not cls and obj.dtype.kind in "biuf")
            # MATLAB writes column-major arrays, so HDF5 sees the axes reversed.
            shape = tuple(reversed(obj.shape))
            if numeric and len(shape) == 3:
                candidates[name] = shape
            else:
                others.append(f"{name} {shape} {cls or obj.dtype}")
        name = _pick_variable(candidates, path, variable, "3D numeric array", others)
        data = f[name][()]
    return name, np.asarray(data).transpose()


def _warn_if_misread_floats(cube: np.ndarray, data_path: Path, header_path: Path) -> None:
    """Float data read with the wrong data type or byte order land at absurd magnitudes
    (integers read as floats are subnormal; swapped bytes scatter the exponents)."""
    values = cube.reshape(-1)[:: max(1, cube.size // (1 << 18))]
    values = values[np.isfinite(values) & (values != 0)]
    if values.size < 100:
        return
    size = np.abs(values)
    share = float(np.mean((size < np.finfo(np.float32).tiny) | (size > 1e30)))
    if share > 0.01:
        warn_data(f"{data_path}: {share:.0%} of the values are below 1e-38 or above 1e30 in "
                  "magnitude, which measurements never are; the data type or byte order in "
                  f"{header_path.name} is probably wrong")


def read_mat(
    path: PathLike, variable: str | None = None, *, band_axis: int | None = None
) -> xr.DataArray:
    """Read a 3D cube from a MATLAB file (v5 via scipy, v7.3/HDF5 via h5py) as ``(y, x, band)``.

    ``variable`` defaults to the single largest 3D numeric variable; the band axis is the
    smallest axis unless ``band_axis`` (an axis of the array as MATLAB sees it) is given.
    v7.3 arrays are transposed back to MATLAB's axis order. Returns float32.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"MATLAB file {p} not found; check the path")
    import h5py

    if h5py.is_hdf5(p):
        name, cube = _read_mat_v73(p, variable)
    else:
        import scipy.io

        try:
            contents = scipy.io.loadmat(p)
        except Exception as err:  # scipy raises several types for a bad file
            raise DataError(
                f"cannot read {p} as a MATLAB .mat file ({err}); save it from MATLAB with "
                "save(..., '-v7') or '-v7.3'"
            ) from err
        candidates: dict[str, tuple[int, ...]] = {}
        others: list[str] = []
        for key, value in contents.items():
            if key.startswith("__"):
                continue
            if isinstance(value, np.ndarray) and value.ndim == 3 and value.dtype.kind in "biuf":
                candidates[key] = value.shape
            else:
                others.append(f"{key} {getattr(value, 'shape', ())}")
        name = _pick_variable(candidates, p, variable, "3D numeric array", others)
        cube = contents[name]
    cube = np.ascontiguousarray(_band_last(cube, band_axis, p), dtype=np.float32)
    warn_non_finite(cube, p)
    return xr.DataArray(
        cube,
        dims=("y", "x", "band"),
        attrs={"kind": "hyperspectral", "source_path": str(p), "variable": name},
    )


# --------------------------------------------------------------------------- NetCDF
_DIM_ALIASES = {
    "y": {"y", "lat", "latitude", "row", "rows", "line", "lines", "northing"},
    "x": {"x", "lon", "long", "longitude", "col", "cols", "column", "columns", "easting"},
    "band": {"band", "bands", "wavelength", "wavelengths", "channel", "channels", "spectral"},
    "time": {"time", "date", "dates", "t"},
}


def _canonical_dims(dims: Sequence[str], path: Path, variable: str) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for dim in dims:
        target = next((k for k, names in _DIM_ALIASES.items() if dim.lower() in names), None)
        if target is None or target in mapping.values():
            break
        mapping[dim] = target
    ok = len(mapping) == len(dims) and {"y", "x", "band"} <= set(mapping.values())
    if not ok:
        raise DataError(
            f"{path}: variable '{variable}' has dims {tuple(dims)}; cannot tell which is y, x "
            "and band. Rename them to y (or lat/row), x (or lon/col), band (or wavelength/"
            "channel) and optionally time, e.g. ds.rename({...}) in xarray"
        )
    return mapping


def _open_netcdf(path: Path) -> xr.Dataset:
    errors = []
    for engine in ("h5netcdf", "scipy"):  # scipy reads classic NetCDF-3
        try:
            return xr.open_dataset(path, engine=engine)
        except Exception as err:  # each engine rejects foreign files in its own way
            errors.append(f"{engine}: {err}")
    raise DataError(
        f"cannot read {path} as NetCDF/HDF5 ({'; '.join(errors)}); "
        "check that it is a NetCDF-4, HDF5 or NetCDF-3 file"
    )


def read_netcdf(
    path: PathLike, variable: str | None = None, *, lazy: bool | None = None
) -> xr.DataArray:
    """Read a cube from NetCDF-4/HDF5 (xarray, engine h5netcdf) as ``(y, x, band[, time])``.

    Dims are recognised by name (lat/latitude/y/row -> y, lon/longitude/x/col -> x,
    band/wavelength/channel -> band, time/date -> time); anything else is a
    :class:`DataError` listing the dims found. ``variable`` defaults to the single largest
    3D or 4D data variable. A ``wavelength`` dim's values become the ``wavelength`` coord.

    ``lazy`` (default: only for cubes over :data:`io_adapters.lazy.IN_MEMORY_BYTES`) gives
    a Dask-backed array read through xarray's own chunking: chunks of whole rows (y), a
    whole number of the file's chunks where it has them (NetCDF-4/HDF5). Otherwise the
    cube is read now.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"NetCDF file {p} not found; check the path")
    ds = _open_netcdf(p)
    try:
        candidates: dict[str, tuple[int, ...]] = {}
        others: list[str] = []
        for key, value in ds.data_vars.items():
            if value.ndim in (3, 4) and value.dtype.kind in "biuf":
                candidates[str(key)] = tuple(value.shape)
            else:
                others.append(f"{key} {value.dims}")
        name = _pick_variable(candidates, p, variable, "3D/4D numeric variable", others)
        da = ds[name]
        mapping = _canonical_dims([str(d) for d in da.dims], p, name)
        wavelength = None
        band_dim = next(d for d, t in mapping.items() if t == "band")
        if band_dim.lower().startswith("wavelength") and band_dim in da.coords:
            wavelength = da.coords[band_dim]
        grid_mapping = da.attrs.get("grid_mapping")
        gm_attrs = dict(ds[grid_mapping].attrs) if grid_mapping in ds.variables else {}
        if is_lazy(da.size, lazy):  # read when used; xarray opens the file again for it
            da = da.chunk(_row_chunks(da, next(d for d, t in mapping.items() if t == "y")))
        else:
            da = da.load()
    finally:
        ds.close()
    if wavelength is not None:
        da = da.drop_vars(band_dim)
    da = da.rename(mapping)
    order = [d for d in ("y", "x", "band", "time") if d in da.dims]
    da = da.transpose(*order).astype(np.float32)
    if wavelength is not None:
        da = da.assign_coords(
            wavelength=xr.Variable("band", wavelength.values, attrs=dict(wavelength.attrs))
        )
    attrs: dict[str, Any] = {
        k: v for k, v in da.attrs.items() if k not in ("grid_mapping", "_FillValue")
    }
    attrs.update({"kind": "hyperspectral", "source_path": str(p), "variable": name})
    crs = gm_attrs.get("crs_wkt") or gm_attrs.get("spatial_ref") or da.attrs.get("crs")
    if isinstance(crs, str) and crs:
        attrs["crs"] = crs
    transform = _netcdf_transform(gm_attrs, da)
    if transform is not None:
        attrs["transform"] = transform
    da.attrs = attrs
    return da


def _row_chunks(da: xr.DataArray, y_dim: str) -> dict[str, int]:
    """Chunks of about :data:`io_adapters.lazy.CHUNK_VALUES` values: whole rows along
    ``y_dim``, a whole number of the file's own chunks of rows, every other dim whole."""
    disk = da.encoding.get("chunksizes") or (1,) * da.ndim
    block = dict(zip(map(str, da.dims), disk, strict=True))[y_dim]
    n_rows = int(da.sizes[y_dim])
    per_row = max(1, int(da.size) // n_rows)
    rows = edge(block, n_rows, CHUNK_VALUES // per_row)
    return {str(d): (rows if d == y_dim else -1) for d in da.dims}


def _netcdf_transform(gm_attrs: dict[str, Any], da: xr.DataArray) -> tuple[float, ...] | None:
    """Affine from a GDAL ``GeoTransform`` attr, else from regular 1D x/y centre coords."""
    gt = gm_attrs.get("GeoTransform")
    if isinstance(gt, str):
        try:
            c, a, b, f, d, e = (float(v) for v in gt.split())
            return (a, b, c, d, e, f)
        except ValueError:
            return None
    if "x" in da.coords and "y" in da.coords and da.sizes["x"] > 1 and da.sizes["y"] > 1:
        x = np.asarray(da.coords["x"].values, dtype=float)
        y = np.asarray(da.coords["y"].values, dtype=float)
        dx, dy = np.diff(x), np.diff(y)
        if x.ndim == 1 and y.ndim == 1 and np.allclose(dx, dx[0]) and np.allclose(dy, dy[0]):
            return (dx[0], 0.0, x[0] - dx[0] / 2, 0.0, dy[0], y[0] - dy[0] / 2)
    return None


# --------------------------------------------------------------------------- dates
def stack_dates(
    cubes: Sequence[xr.DataArray], times: Sequence[str] | None = None
) -> xr.DataArray:
    """Stack acquisitions of one scene along a new last dim ``time`` -> ``(y, x, band, time)``.

    Checks that every cube has dims (y, x, band), the same shape and band count, and (when
    both carry them) the same transform and CRS; a mismatch is a :class:`DataError` naming
    both files (attrs ``source_path``) and the property that differs. ``times`` label the
    dates (default: the file names). Coordinates that differ between dates (band names)
    are dropped; attrs are the first cube's, plus ``source_paths`` and ``kind``.
    """
    if len(cubes) == 0:
        raise DataError("stack_dates needs at least one cube; load the dates first")
    names = [str(c.attrs.get("source_path", f"cube #{i}")) for i, c in enumerate(cubes)]
    if times is None:
        times = [
            Path(c.attrs["source_path"]).name if "source_path" in c.attrs else f"t{i}"
            for i, c in enumerate(cubes)
        ]
    if len(times) != len(cubes):
        raise DataError(f"stack_dates: {len(times)} times given for {len(cubes)} cubes")
    first = cubes[0]
    for i, cube in enumerate(cubes):
        if tuple(cube.dims) != ("y", "x", "band"):
            raise DataError(
                f"{names[i]}: dims {tuple(cube.dims)}, expected ('y', 'x', 'band'); "
                "load each date with read_envi/read_mat/read_netcdf"
            )
    for i, cube in enumerate(cubes[1:], start=1):
        _check_same_scene(first, cube, names[0], names[i])
    if any(hasattr(c.data, "dask") for c in cubes):  # dates larger than memory: still lazy
        import dask.array as dsa

        data = dsa.stack([dsa.asarray(c.data).astype(np.float32) for c in cubes], axis=-1)
    else:
        data = np.stack([np.asarray(c.values, dtype=np.float32) for c in cubes], axis=-1)
    coords: dict[str, Any] = {}
    for key, coord in first.coords.items():
        if all(key in c.coords and np.array_equal(c.coords[key].values, coord.values)
               for c in cubes[1:]):
            coords[str(key)] = coord.variable
    coords["time"] = ("time", [str(t) for t in times])
    attrs = dict(first.attrs)
    attrs["kind"] = "hyperspectral"
    attrs["source_paths"] = names
    return xr.DataArray(unnamed(data, ("y", "x", "band", "time")), coords=coords, attrs=attrs)


def _check_same_scene(a: xr.DataArray, b: xr.DataArray, name_a: str, name_b: str) -> None:
    def fail(prop: str, va: Any, vb: Any) -> None:
        raise DataError(
            f"cannot stack dates: {prop} differs between {name_a} ({va}) and {name_b} ({vb}); "
            "resample both dates onto the same grid first"
        )

    if (a.sizes["y"], a.sizes["x"]) != (b.sizes["y"], b.sizes["x"]):
        fail("grid shape (y, x)", (a.sizes["y"], a.sizes["x"]), (b.sizes["y"], b.sizes["x"]))
    if a.sizes["band"] != b.sizes["band"]:
        fail("band count", a.sizes["band"], b.sizes["band"])
    ta, tb = a.attrs.get("transform"), b.attrs.get("transform")
    if ta is not None and tb is not None and not transform_equal(ta, tb):
        fail("transform", tuple(ta), tuple(tb))
    ca, cb = a.attrs.get("crs"), b.attrs.get("crs")
    if ca is not None and cb is not None and not crs_equal(ca, cb):
        fail("CRS", str(ca)[:80], str(cb)[:80])
