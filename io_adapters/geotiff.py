"""GeoTIFF rasters in and out (rasterio): maps, DEMs, satellite bands, categorical maps.

A raster is a float32 ``xarray.DataArray`` with dims ``(band, y, x)``, pixel-centre map
coordinates and attrs ``crs`` (WKT) and ``transform`` (affine a..f). Nodata and masked
pixels are NaN, so the nodata number can never reach the network as if it were data.
A raster larger than memory is read window by window through Dask (whole blocks of the
file per chunk, one band per chunk), a smaller one at once (:mod:`io_adapters.lazy`).

Several rasters are put on one reference grid by :func:`stack_rasters`; predictions go
back out with :func:`write_geotiff` on the grid they were made on, with a colour table
so QGIS shows the classes in their colours.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import xarray as xr
from rasterio.crs import CRS
from rasterio.errors import RasterioError
from rasterio.transform import Affine
from rasterio.warp import Resampling, reproject
from rasterio.windows import Window

from .atomic import atomic_output
from .errors import DataError, warn_data
from .lazy import CHUNK_VALUES, LOCAL, edge, finish, is_lazy, unnamed, windowed

_TILE = 256  # GeoTIFF tile edge used whenever the raster is at least this large
_MAX_CLASSES = 255  # more distinct values than this in a "categorical" map is a mistake


# ----------------------------------------------------------------------------- reading


def read_geotiff(
    path: str | Path, *, bands: Sequence[int] | None = None, lazy: bool | None = None
) -> xr.DataArray:
    """Read a GeoTIFF (or any raster GDAL reads) as float32 with dims (band, y, x).

    Coordinates: ``band`` (1-based band numbers), ``y`` and ``x`` (pixel centres in map
    units). Attrs: kind="raster", crs (WKT or None), transform (a, b, c, d, e, f),
    nodata (the file's value or None), source_path, and descriptions / colorinterp
    when the file has them. Nodata and masked pixels are NaN.

    ``lazy`` (default: only for rasters over :data:`io_adapters.lazy.IN_MEMORY_BYTES`)
    gives a Dask-backed array read by windows of whole file blocks, one band per chunk,
    so a view of one band or one window reads only that; otherwise the values are read
    now, in memory.
    """
    src = Path(path).expanduser().resolve()
    with _open_raster(src) as ds:
        band_list = _check_bands(bands, ds.count, src)
        keep_lazy = is_lazy(len(band_list) * ds.height * ds.width, lazy)
        values = _band_windows(src, band_list, ds.height, ds.width,
                               _window_chunks(ds, keep_lazy))
        attrs = _grid_attrs(ds.crs, ds.transform, src)
        attrs["nodata"] = None if ds.nodata is None else float(ds.nodata)
        picked = [b - 1 for b in band_list]
        descriptions = [ds.descriptions[i] for i in picked]
        if any(descriptions):
            attrs["descriptions"] = tuple(d or "" for d in descriptions)
        attrs["colorinterp"] = tuple(ds.colorinterp[i].name for i in picked)
        coords = {"band": ("band", np.asarray(band_list, dtype=np.int64))}
        coords.update(_pixel_centres(ds.transform, ds.height, ds.width, src))
    da = xr.DataArray(unnamed(values, ("band", "y", "x")), coords=coords, attrs=attrs)
    return finish(da, keep_lazy)


class _RasterWindows:
    """Bands of a raster file as an array Dask reads by windows (``__getitem__`` of slices
    and integers): each read opens the file, reads one window masked (NaN where invalid,
    float32) and closes it, so a chunk costs only its window and the object pickles (a
    path, not an open dataset) for a process or cluster scheduler."""

    ndim = 3
    dtype = np.dtype(np.float32)

    def __init__(self, src: Path, bands: Sequence[int], height: int, width: int):
        self.src, self.bands = src, tuple(int(b) for b in bands)
        self.shape = (len(self.bands), int(height), int(width))
        stat = src.stat()
        self._token = (str(src), stat.st_size, stat.st_mtime_ns, self.bands)

    def __dask_tokenize__(self) -> tuple:
        return self._token

    def __getitem__(self, key: Any) -> np.ndarray:
        key = key if isinstance(key, tuple) else (key,)
        key = key + (slice(None),) * (self.ndim - len(key))
        spans, picks = [], []
        for k, n in zip(key, self.shape, strict=True):
            if isinstance(k, (int, np.integer)):
                i = range(n)[int(k)]
                spans.append((i, i + 1))
                picks.append(0)
            elif isinstance(k, slice) and (k.step or 1) > 0:
                start, stop, step = k.indices(n)
                spans.append((start, max(start, stop)))
                picks.append(slice(None, None, step))
            else:  # an index array: read the whole axis, then pick
                spans.append((0, n))
                picks.append(k)
        (b0, b1), (r0, r1), (c0, c1) = spans
        if b1 <= b0 or r1 <= r0 or c1 <= c0:
            return np.empty((b1 - b0, r1 - r0, c1 - c0), np.float32)[tuple(picks)]
        with _open_raster(self.src) as ds:
            window = Window(c0, r0, c1 - c0, r1 - r0)
            values = _read_masked(ds, list(self.bands[b0:b1]), window)
        return values[tuple(picks)]


def _window_chunks(ds: rasterio.DatasetReader, lazy: bool) -> tuple[int, int, int] | None:
    """Chunks of a lazy raster: one band and about a million pixels, whole blocks (tiles or
    strips) of the file each; None (one chunk in all) when it is read now."""
    if not lazy:
        return None
    block_h, block_w = ds.block_shapes[0]
    if block_w >= ds.width:  # strips: whole rows
        return 1, edge(block_h, ds.height, CHUNK_VALUES // max(1, ds.width)), ds.width
    side = int(CHUNK_VALUES ** 0.5)
    return 1, edge(block_h, ds.height, side), edge(block_w, ds.width, side)


def _band_windows(src: Path, bands: Sequence[int], height: int, width: int,
                  chunks: tuple[int, int, int] | None):
    """The bands as a Dask array reading ``src`` by windows (all bands in one chunk when
    ``chunks`` is None)."""
    if chunks is not None:
        chunks = (1, min(chunks[1], height), min(chunks[2], width))
    return windowed(_RasterWindows(src, bands, height, width), chunks)


@contextmanager
def _open_raster(src: Path) -> Iterator[rasterio.DatasetReader]:
    if not src.is_file():
        raise DataError(f"{src} does not exist or is not a file; check the path")
    try:
        ds = rasterio.open(src)
    except RasterioError as err:
        raise DataError(
            f"{src} is not a raster GDAL can read ({err}); choose a GeoTIFF or convert the file "
            f"with gdal_translate"
        ) from err
    with ds:
        yield ds


def _check_bands(bands: Sequence[int] | None, count: int, src: Path) -> list[int]:
    if bands is None:
        return list(range(1, count + 1))
    chosen = [int(b) for b in bands]
    wrong = [b for b in chosen if not 1 <= b <= count]
    if wrong or not chosen:
        raise DataError(
            f"bands {list(bands)} do not exist in {src}, which has bands 1..{count}; "
            f"band numbers start at 1"
        )
    return chosen


def _read_masked(
    ds: rasterio.DatasetReader, bands: list[int], window: Window | None = None
) -> np.ndarray:
    """Bands as float32 with NaN wherever GDAL's mask (nodata, alpha, mask band) says invalid."""
    data = ds.read(bands, window=window, masked=True)
    return np.ma.filled(data.astype(np.float32), np.nan)


def _grid_attrs(crs: CRS | None, transform: Affine, src: Path) -> dict[str, Any]:
    return {
        "kind": "raster",
        "crs": crs.to_wkt() if crs else None,
        "transform": tuple(float(v) for v in tuple(transform)[:6]),
        "source_path": str(src),
    }


def _pixel_centres(transform: Affine, height: int, width: int, src: Path) -> dict:
    if transform.b != 0 or transform.d != 0:
        raise DataError(
            f"{src} has a rotated geotransform, which is not supported; make it north-up with "
            f"gdalwarp first"
        )
    x = transform.c + transform.a * (np.arange(width) + 0.5)
    y = transform.f + transform.e * (np.arange(height) + 0.5)
    return {"y": ("y", y), "x": ("x", x)}


# ---------------------------------------------------------------------------- stacking


@dataclass(frozen=True)
class _Grid:
    """The reference grid every raster of a stack is resampled onto."""

    crs: CRS | None
    transform: Affine
    height: int
    width: int
    path: Path

    def same_as(self, ds: rasterio.DatasetReader) -> bool:
        return (
            ds.crs == self.crs
            and ds.transform.almost_equals(self.transform)
            and (ds.height, ds.width) == (self.height, self.width)
        )


def stack_rasters(
    paths: Sequence[str | Path],
    *,
    reference: int | str | Path = 0,
    categorical: Sequence[bool] | None = None,
    one_hot: bool = True,
    lazy: bool | None = None,
) -> xr.DataArray:
    """Put several rasters on one reference grid as one (band, y, x) float32 DataArray.

    ``reference`` is an index into ``paths`` or the path of a raster whose CRS, transform
    and shape define the grid. Continuous rasters are resampled bilinearly, categorical
    ones (``categorical[i]`` True) by nearest neighbour and, with ``one_hot``, turned into
    one 0/1 channel per class found in the source raster. Band names: "shade.tif:1",
    "geology.tif:class=3" (multi-band categorical: "geology.tif:2:class=3"). Nodata and
    areas outside a raster's footprint are NaN in all of that raster's channels.

    ``lazy`` as for :func:`read_geotiff` (by default: when the stack passes
    :data:`io_adapters.lazy.IN_MEMORY_BYTES`). Bands on the reference grid are then read by
    windows when used; a band that has to be resampled is resampled now, in memory, one
    band at a time (the warp needs the whole band).
    """
    sources = [Path(p).expanduser().resolve() for p in paths]
    if not sources:
        raise DataError("no rasters to stack; give at least one GeoTIFF")
    flags = _categorical_flags(categorical, len(sources))
    ref_path = _reference_path(reference, sources)
    grid = _reference_grid(ref_path)
    needs_crs = len(sources) > 1 or ref_path != sources[0]
    names = _short_names(sources)
    bands_in_all = sum(_band_count(src) for src in sources)
    keep_lazy = is_lazy(bands_in_all * grid.height * grid.width, lazy)
    with _open_raster(grid.path) as ds:
        chunks = _window_chunks(ds, keep_lazy)

    channels: list[Any] = []
    labels: list[str] = []
    for src, is_categorical, name in zip(sources, flags, names, strict=True):
        with _open_raster(src) as ds:
            if needs_crs and (ds.crs is None or grid.crs is None):
                missing = src if ds.crs is None else grid.path
                raise DataError(_no_crs_message(missing))
            if len(sources) > 1 and min(ds.width, ds.height) < 2:
                effect = (f"as the reference grid it shrinks every map of the stack to "
                          f"{ds.width} x {ds.height} pixels; choose another reference"
                          if src == grid.path else
                          f"on the {grid.width} x {grid.height} grid of {grid.path.name} its "
                          "few values are stretched over every pixel; check that it is the "
                          "map you meant")
                warn_data(f"{src} is a {ds.width} x {ds.height} raster: {effect}")
            on_grid = grid.same_as(ds)
            for band in range(1, ds.count + 1):
                if on_grid:  # read by windows when the channel is used
                    source = warped = _band_windows(src, [band], ds.height, ds.width,
                                                    chunks)[0]
                else:  # the warp needs the whole band: one band in memory at a time
                    source = _read_masked(ds, [band])[0]
                    kind = Resampling.nearest if is_categorical else Resampling.bilinear
                    warped = _to_grid(source, ds, grid, kind)
                    if np.isfinite(source).any() and not np.isfinite(warped).any():
                        warn_data(f"{src} does not overlap the reference grid of "
                                  f"{grid.path.name} (bounds "
                                  f"{tuple(round(v, 3) for v in ds.bounds)}, CRS {ds.crs}); "
                                  "its channels are all nodata: check its CRS and extent, or "
                                  "leave it out")
                prefix = f"{name}:{band}" if ds.count > 1 else name
                if is_categorical and one_hot:
                    values = _classes(source, src)
                    band_channels = _one_hot(warped, values)
                    labels.extend(f"{prefix}:class={_class_label(v)}" for v in values)
                else:
                    band_channels = [warped]
                    labels.append(f"{name}:{band}")
                channels.extend(c if on_grid else _dask(c, chunks) for c in band_channels)

    attrs = _grid_attrs(grid.crs, grid.transform, grid.path)
    attrs.update(nodata=None, sources=tuple(str(s) for s in sources))
    coords: dict = {"band": ("band", np.asarray(labels, dtype=object))}
    coords.update(_pixel_centres(grid.transform, grid.height, grid.width, grid.path))
    import dask.array as dsa

    da = xr.DataArray(unnamed(dsa.stack(channels), ("band", "y", "x")), coords=coords,
                      attrs=attrs)
    return finish(da, keep_lazy)


def _band_count(src: Path) -> int:
    with _open_raster(src) as ds:
        return int(ds.count)


def _dask(values: np.ndarray, chunks: tuple[int, int, int] | None):
    """A band resampled in memory as a Dask array chunked like the other channels."""
    import dask.array as dsa

    return dsa.from_array(values, chunks=values.shape if chunks is None else chunks[1:])


def _one_hot(warped: Any, values: np.ndarray) -> list[Any]:
    """One 0/1 channel per class value (NaN where the map has none), lazy if ``warped`` is."""
    nan = np.isnan(warped)
    return [np.where(nan, np.float32(np.nan), (warped == value).astype(np.float32))
            for value in values]


def _classes(source: Any, src: Path) -> np.ndarray:
    """The class values of a categorical band, refusing what is clearly a continuous field.

    A Dask-backed band is reduced chunk by chunk (the unique values of each chunk, then
    of those), never read whole."""
    if hasattr(source, "dask"):
        import dask.array as dsa

        found = np.asarray(dsa.unique(source).compute(scheduler=LOCAL))
    else:
        found = np.unique(source)
    values = found[np.isfinite(found)]
    if len(values) > _MAX_CLASSES:
        raise DataError(
            f"{src} has {len(values)} distinct values, too many for a categorical map "
            f"(at most {_MAX_CLASSES}); mark it as continuous instead"
        )
    return values


def _class_label(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _categorical_flags(categorical: Sequence[bool] | None, n: int) -> list[bool]:
    if categorical is None:
        return [False] * n
    flags = [bool(c) for c in categorical]
    if len(flags) != n:
        raise DataError(
            f"categorical has {len(flags)} entries for {n} rasters; give one True/False per raster"
        )
    return flags


def _reference_path(reference: int | str | Path, sources: list[Path]) -> Path:
    if isinstance(reference, (str, Path)):
        return Path(reference).expanduser().resolve()
    index = int(reference)
    if not -len(sources) <= index < len(sources):
        raise DataError(
            f"reference={reference} is not one of the {len(sources)} rasters; give an index "
            f"from 0 to {len(sources) - 1} or a raster path"
        )
    return sources[index]


def _reference_grid(path: Path) -> _Grid:
    with _open_raster(path) as ds:
        return _Grid(ds.crs, ds.transform, ds.height, ds.width, path)


def _no_crs_message(path: Path) -> str:
    return (
        f"{path} has no coordinate reference system, so it cannot be placed on a common grid; "
        f"assign its CRS first (e.g. gdal_edit.py -a_srs EPSG:32618 {path.name}, or in QGIS: "
        f"Raster > Projections > Assign Projection)"
    )


def _short_names(sources: list[Path]) -> list[str]:
    """File names as band prefixes; the parent folder is added where names repeat."""
    counts: dict[str, int] = {}
    for s in sources:
        counts[s.name] = counts.get(s.name, 0) + 1
    return [s.name if counts[s.name] == 1 else f"{s.parent.name}/{s.name}" for s in sources]


def _to_grid(source: np.ndarray, ds: rasterio.DatasetReader, grid: _Grid, kind: Resampling):
    """One band (NaN = invalid) resampled onto the reference grid; NaN outside its footprint."""
    out = np.full((grid.height, grid.width), np.nan, dtype=np.float32)
    reproject(
        source=source,
        destination=out,
        src_transform=ds.transform,
        src_crs=ds.crs,
        src_nodata=np.nan,
        dst_transform=grid.transform,
        dst_crs=grid.crs,
        dst_nodata=np.nan,
        resampling=kind,
    )
    return out


# ----------------------------------------------------------------------------- writing


def raster_profile(da: xr.DataArray, *, dtype: str, count: int, nodata: Any) -> dict:
    """A rasterio profile for a tiled, deflate-compressed GeoTIFF on ``da``'s grid.

    ``da`` needs attrs ``transform`` (a..f) and ``crs`` (WKT, or None) and dims y and x.
    Tiles are 256 x 256 when the raster is at least that large in both directions.
    """
    if da.attrs.get("transform") is None or "y" not in da.dims or "x" not in da.dims:
        raise DataError(
            f"{da.attrs.get('source_path', 'the data')} has no map grid (attrs 'transform' and "
            f"dims y, x), so it cannot be written as GeoTIFF; load a georeferenced file"
        )
    height, width = int(da.sizes["y"]), int(da.sizes["x"])
    crs = da.attrs.get("crs")
    profile = {
        "driver": "GTiff",
        "dtype": dtype,
        "count": int(count),
        "width": width,
        "height": height,
        "crs": CRS.from_user_input(crs) if crs else None,
        "transform": Affine(*da.attrs["transform"][:6]),
        "compress": "deflate",
        "nodata": nodata,
        "BIGTIFF": "IF_SAFER",  # files over 4 GB need BigTIFF; GDAL decides when
    }
    if width >= _TILE and height >= _TILE:
        profile.update(tiled=True, blockxsize=_TILE, blockysize=_TILE)
    return profile


def write_geotiff(
    path: str | Path,
    values: np.ndarray,
    like: xr.DataArray,
    *,
    nodata: Any = None,
    colormap: dict[int, tuple[int, int, int]] | None = None,
    band_names: Sequence[str] | None = None,
    tags: dict[str, str] | None = None,
) -> Path:
    """Write (y, x) or (band, y, x) values on ``like``'s grid as a tiled, compressed GeoTIFF.

    Integer class maps become uint8 with nodata 255 (int16 with nodata -1 when classes
    exceed 254; uint16 with nodata 65535 when a colormap is given, since GeoTIFF colour
    tables need unsigned bands), with ``colormap`` ({class: (r, g, b)}) embedded in band 1.
    Float values become float32 with NaN nodata. Pixels where ``like`` is NaN in every band
    get the nodata value. ``tags`` go into the dataset's metadata (GDAL metadata items,
    shown by ``gdalinfo`` and QGIS's layer properties). Returns the written path.
    """
    arr = np.asarray(values)
    if arr.ndim == 2:
        arr = arr[np.newaxis]
    grid_shape = (int(like.sizes.get("y", -1)), int(like.sizes.get("x", -1)))
    if arr.ndim != 3 or arr.shape[1:] != grid_shape:
        raise DataError(
            f"values of shape {np.shape(values)} do not fit the grid of "
            f"{like.attrs.get('source_path', 'the data')}, which is {grid_shape} (y, x); "
            f"give (y, x) or (band, y, x) values on that grid"
        )
    names = _check_band_names(band_names, arr.shape[0])
    out, dtype, nodata = _encode(arr, nodata, colormap is not None)
    invalid = _invalid_pixels(like)
    if invalid is not None and nodata is not None:
        out[:, invalid] = nodata
    profile = raster_profile(like, dtype=dtype, count=out.shape[0], nodata=nodata)
    with _writing(path) as tmp, rasterio.open(tmp, "w", **profile) as dst:
        dst.write(out)
        if colormap is not None:
            dst.write_colormap(1, _check_colormap(colormap))
        for i, name in enumerate(names, 1):
            dst.set_band_description(i, name)
        if tags:
            dst.update_tags(**{str(k): str(v) for k, v in tags.items()})
    return Path(path)


def _encode(arr: np.ndarray, nodata: Any, paletted: bool) -> tuple[np.ndarray, str, Any]:
    """Output array, its GeoTIFF dtype and nodata value (defaults for class maps and floats)."""
    if np.issubdtype(arr.dtype, np.bool_) or np.issubdtype(arr.dtype, np.integer):
        lo, hi = (int(arr.min()), int(arr.max())) if arr.size else (0, 0)
        if nodata is not None:
            lo, hi = min(lo, int(nodata)), max(hi, int(nodata))
        if nodata is None and 0 <= lo and hi < 255:
            dtype, nodata = "uint8", 255
        elif nodata is None and paletted and 0 <= lo and hi < 65535:
            dtype, nodata = "uint16", 65535
        elif nodata is None:
            dtype, nodata = ("int16" if hi <= 32767 and lo >= -32767 else "int32"), -1
        else:
            dtype = _smallest_int_dtype(lo, hi, paletted)
        return arr.astype(dtype), dtype, nodata
    out = arr.astype(np.float32)
    if nodata is None:
        return out, "float32", float("nan")
    out[np.isnan(out)] = nodata
    return out, "float32", float(nodata)


def _smallest_int_dtype(lo: int, hi: int, paletted: bool) -> str:
    candidates = ["uint8", "uint16"] if paletted else ["uint8", "int16", "uint16", "int32"]
    for name in candidates:
        info = np.iinfo(name)
        if info.min <= lo and hi <= info.max:
            return name
    what = "a colour table (unsigned 8 or 16 bit)" if paletted else "a GeoTIFF integer band"
    raise DataError(f"class values and nodata between {lo} and {hi} do not fit {what}")


def _invalid_pixels(like: xr.DataArray) -> np.ndarray | None:
    """(y, x) mask of pixels where ``like`` has no valid value in any band."""
    if not np.issubdtype(like.dtype, np.floating):
        return None
    others = [d for d in like.dims if d not in ("y", "x")]
    nan = like.isnull()
    if others:
        nan = nan.all(dim=others)
    return np.asarray(nan.transpose("y", "x").values)


def _check_band_names(band_names: Sequence[str] | None, count: int) -> list[str]:
    if band_names is None:
        return []
    names = [str(n) for n in band_names]
    if len(names) != count:
        raise DataError(f"{len(names)} band_names for {count} bands; give one name per band")
    return names


def _check_colormap(colormap: dict[int, tuple[int, int, int]]) -> dict[int, tuple[int, ...]]:
    table = {}
    for value, colour in colormap.items():
        rgb = tuple(int(c) for c in colour)
        if len(rgb) not in (3, 4) or not all(0 <= c <= 255 for c in rgb):
            raise DataError(
                f"colour {colour!r} for class {value} is not an (r, g, b) triple of 0..255"
            )
        table[int(value)] = rgb
    return table


@contextmanager
def _writing(path: str | Path) -> Iterator[Path]:
    """atomic_output, with GDAL write failures also turned into a DataError naming the file."""
    try:
        with atomic_output(path) as tmp:
            yield tmp
    except RasterioError as err:
        raise DataError(f"cannot write {path}: {err}; choose a folder you can write to") from err

