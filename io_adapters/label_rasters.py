"""Labels from whole rasters: a class raster or volume on the data's grid, or a mask pair.

In these files 0 (or nodata) is no label and 1..K are classes; a reference given as two
masks (white = member, e.g. changed / unchanged) becomes two classes.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from .errors import DataError
from .gridmatch import crs_equal, spatial_dims, spatial_shape, transform_equal
from .label_placement import grid_description, is_seismic
from .labels import LabelSet, Provenance

__all__ = ["import_label_raster", "import_mask_pair"]

PathLike = str | os.PathLike[str]


def import_label_raster(
    path: PathLike,
    grid: xr.DataArray,
    *,
    class_names: Sequence[str] | None = None,
) -> LabelSet:
    """Labels from a class raster on the data's grid: GeoTIFF, .npy or SEG-Y label volume.

    File convention: 0 (or nodata) = no label, 1..K = classes (class names default to
    'class k'). GeoTIFF: one band, same shape as the grid and, when both carry them, the
    same CRS and transform. .npy: same shape (loaded without pickle). SEG-Y: the same
    inline, crossline and sample axes (byte locations taken from the grid's attrs).
    Anything on another grid is a :class:`DataError` naming both grids.
    Provenance IMPORTED.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"label file {p} not found; check the path")
    suffix = p.suffix.lower()
    expected = spatial_shape(grid)
    if suffix == ".npy":
        try:
            values = np.load(p, allow_pickle=False)
        except Exception as err:  # includes the refusal to unpickle object arrays
            raise DataError(f"cannot read {p} as a numeric .npy array ({err})") from err
        _same_shape(p, values.shape, expected, grid)
    elif suffix in (".tif", ".tiff"):
        values = _label_geotiff(p, grid, expected)
    elif suffix in (".sgy", ".segy"):
        values = _label_segy(p, grid, expected)
    else:
        raise DataError(
            f"{p}: unknown label raster type '{suffix}'; use .tif, .npy or .sgy "
            "(or import points/boreholes from CSV)"
        )
    return _labels_from_values(p, values, grid, class_names)


def _same_shape(
    p: Path, shape: tuple[int, ...], expected: tuple[int, ...], grid: xr.DataArray
) -> None:
    if tuple(shape) != tuple(expected):
        raise DataError(
            f"{p} has shape {tuple(shape)} but the data grid is {tuple(expected)} "
            f"({grid_description(grid)}); export the labels on the data's grid"
        )


def _label_geotiff(p: Path, grid: xr.DataArray, expected: tuple[int, ...]) -> np.ndarray:
    from .geotiff import read_geotiff  # lazy: written alongside, and rasterio is heavy

    raster = read_geotiff(p)
    if raster.sizes.get("band", 1) != 1:
        raise DataError(f"{p} has {raster.sizes['band']} bands; a label raster needs one band")
    values = np.asarray(raster.values).reshape(raster.sizes["y"], raster.sizes["x"])
    _same_shape(p, values.shape, expected, grid)
    crs_l, crs_g = raster.attrs.get("crs"), grid.attrs.get("crs")
    if crs_l and crs_g:
        if not crs_equal(crs_l, crs_g):
            raise DataError(
                f"{p} is in another CRS than the data ({str(crs_l)[:60]}... vs "
                f"{str(crs_g)[:60]}...); reproject the labels onto the data's grid"
            )
        t_l, t_g = raster.attrs.get("transform"), grid.attrs.get("transform")
        if t_l is not None and t_g is not None and not transform_equal(t_l, t_g):
            raise DataError(
                f"{p} has transform {tuple(t_l)} but the data grid has {tuple(t_g)} "
                f"({grid_description(grid)}); resample the labels onto the data's grid"
            )
    nodata = raster.attrs.get("nodata")
    if nodata is not None and np.isfinite(nodata):
        values = np.where(values == nodata, 0, values)
    return values


def _label_segy(p: Path, grid: xr.DataArray, expected: tuple[int, ...]) -> np.ndarray:
    from .segy import read_segy  # lazy: only seismic projects need segyio

    if not is_seismic(grid):
        raise DataError(f"{p} is SEG-Y but the data is not seismic; use a .tif or .npy")
    il_byte = int(grid.attrs.get("iline_byte", 189))
    xl_byte = int(grid.attrs.get("xline_byte", 193))
    vol = read_segy(p, iline=il_byte, xline=xl_byte)
    for dim in ("iline", "xline", "samples"):
        a, b = vol.coords[dim].values, grid.coords[dim].values
        if a.shape != b.shape or not np.allclose(a, b):
            raise DataError(
                f"{p}: its {dim} axis ({a.min():g}..{a.max():g}, {len(a)} values) differs from "
                f"the data's ({b.min():g}..{b.max():g}, {len(b)}); export the labels on the "
                "seismic's grid"
            )
    return np.asarray(vol.transpose(*spatial_dims(grid)).values)


def _labels_from_values(
    p: Path, values: np.ndarray, grid: xr.DataArray, class_names: Sequence[str] | None
) -> LabelSet:
    v = np.asarray(values)
    if v.dtype.kind == "f":
        v = np.where(np.isfinite(v), v, 0)
        if not np.all(v == np.round(v)):
            raise DataError(f"{p} holds non-integer values; a label raster needs class numbers")
    if v.dtype.kind not in "iuf" or v.dtype.kind == "b":
        raise DataError(f"{p} has dtype {v.dtype}; a label raster needs integer class numbers")
    v = v.astype(np.int64)
    if v.size and v.min() < 0:
        raise DataError(f"{p} holds negative values; use 0 for no label and 1..K for classes")
    k = int(v.max()) if v.size else 0
    if class_names is not None:
        if len(class_names) < k:
            raise DataError(
                f"{p} uses classes up to {k} but only {len(class_names)} names were given"
            )
        names = list(class_names)
    else:
        names = [f"class {i}" for i in range(1, k + 1)]
    labels = (v - 1).astype(np.int16)
    source = np.where(labels >= 0, Provenance.IMPORTED, Provenance.NONE).astype(np.uint8)
    return LabelSet(labels, list(names), source, None, spatial_dims(grid))


def import_mask_pair(
    positive_path: PathLike,
    negative_path: PathLike,
    grid_shape: tuple[int, int],
    *,
    names: tuple[str, str] = ("changed", "unchanged"),
) -> LabelSet:
    """Two-class labels from two reference masks (white = member), e.g. change/unchanged.

    Class 0 is ``names[0]`` (cells white in ``positive_path``), class 1 ``names[1]``
    (white in ``negative_path``); images are read with Pillow (any mode, > 127 = member).
    A mask of another size, or a cell white in both, is a :class:`DataError`.
    """
    masks = []
    for mp in (Path(positive_path), Path(negative_path)):
        masks.append(_read_mask(mp, tuple(grid_shape)))
    both = masks[0] & masks[1]
    if both.any():
        r, c = np.argwhere(both)[0]
        raise DataError(
            f"{positive_path} and {negative_path} overlap in {int(both.sum())} pixels "
            f"(e.g. row {r}, col {c}); a pixel can be in one mask only — fix the masks"
        )
    ls = LabelSet.empty(grid_shape, names, ("y", "x"))
    for cid, mask in enumerate(masks):
        ls.labels[mask] = cid
        ls.source[mask] = Provenance.IMPORTED
    return ls


def _read_mask(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise DataError(f"mask image {path} not found; check the path")
    try:
        with Image.open(path) as img:
            grey = np.asarray(img.convert("L"))
    except (UnidentifiedImageError, OSError) as err:
        raise DataError(f"cannot read mask image {path} ({err}); save it as PNG/BMP/TIFF") from err
    if grey.shape != shape:
        raise DataError(
            f"mask {path} is {grey.shape[0]} x {grey.shape[1]} (rows x cols) but the data grid "
            f"is {shape[0]} x {shape[1]}; use a mask made for this image"
        )
    return grey > 127
