"""A prediction written back on the source's grid: SEG-Y, GeoTIFF, .npy or NetCDF.

SEG-Y keeps every header of the source file, GeoTIFF its georeferencing and a colour table,
NetCDF its coordinates; outputs on a coarser grid (section 3.4) go through
:mod:`app.coarse_export`. Everything is written atomically.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from fhn_core.prediction import Prediction
from io_adapters.atomic import atomic_output
from io_adapters.errors import DataError
from io_adapters.labels import LabelClass, default_colour
from io_adapters.open_data import SEGY_SUFFIXES, TIFF_SUFFIXES

from .layout import grid_of

__all__ = ["EXPORT_SUFFIXES", "WHAT", "class_table_of", "export_prediction"]

PathLike = str | Path

EXPORT_SUFFIXES = (".sgy", ".segy", ".tif", ".tiff", ".npy", ".nc")
WHAT = ("classes", "probabilities", "entropy")


def class_table_of(
    table: Sequence[LabelClass | tuple[str, str] | dict[str, Any] | str] | None, n: int
) -> list[tuple[str, str]]:
    """(name, '#rrggbb') per class from LabelClasses, (name, colour) pairs, dicts or names."""
    out: list[tuple[str, str]] = []
    for i, entry in enumerate(table or []):
        if isinstance(entry, LabelClass):
            out.append((entry.name, entry.colour))
        elif isinstance(entry, dict):
            out.append((str(entry.get("name", f"class {i}")),
                        str(entry.get("colour") or default_colour(i))))
        elif isinstance(entry, str):
            out.append((entry, default_colour(i)))
        else:
            name, colour = entry
            out.append((str(name), str(colour or default_colour(i))))
    out += [(f"class {i}", default_colour(i)) for i in range(len(out), n)]
    return out[:n] if n else out


def export_prediction(
    prediction: Prediction,
    da: xr.DataArray,
    path: PathLike,
    *,
    what: str = "classes",
    class_table: Sequence[Any] | None = None,
    class_index: int | None = None,
) -> Path:
    """Write one product of ``prediction`` on ``da``'s grid; the format follows the extension.

    ``what``: "classes" (ids 0..K-1), "probabilities" (K values per cell) or "entropy"
    (normalised, 0 certain .. 1 uniform).

    - .sgy/.segy: ``write_segy_like`` with every header of ``da``'s source file; values are
      IEEE floats (class ids as 0.0, 1.0, ...). A SEG-Y holds one volume, so
      "probabilities" writes the probability of the predicted class (a confidence volume),
      or of class ``class_index`` when given;
    - .tif/.tiff: ``write_geotiff`` on ``da``'s georeferencing; classes as a paletted band
      coloured from ``class_table``, probabilities as one band per class (named);
    - .npy: the array (classes int16, probabilities (K, *grid) float32), grid axes in the
      order of :func:`grid_of`;
    - .nc: NetCDF-4 (h5netcdf) with the source's coordinates and georeferencing attrs.

    Written atomically. A prediction on another grid is a DataError naming both shapes.
    """
    if what not in WHAT:
        raise DataError(f"what={what!r} is not one of {', '.join(WHAT)}")
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in EXPORT_SUFFIXES:
        raise DataError(
            f"{target}: cannot export to '{suffix or 'no extension'}'; use .sgy/.segy (seismic), "
            ".tif (maps), .npy or .nc"
        )
    dims, shape = grid_of(da)
    source = da.attrs.get("source_path", "the data")
    if tuple(prediction.classes.shape) != shape:
        raise DataError(
            f"the prediction's grid {tuple(prediction.classes.shape)} is not the grid of "
            f"{source}, {shape} {dims}; predict on this data before exporting it"
        )
    k = int(prediction.probabilities.shape[0])
    table = class_table_of(class_table, k)
    if what == "probabilities" and prediction.output_factor > 1:  # a coarse output (3.4)
        from app.coarse_export import export_coarse_probabilities

        return export_coarse_probabilities(prediction, da, target, dims,
                                           [name for name, _ in table], class_index)
    values = _product(prediction, what, class_index if suffix in SEGY_SUFFIXES else None)
    if suffix in SEGY_SUFFIXES:
        return _export_segy(values, what, da, target, dims)
    if suffix in TIFF_SUFFIXES:
        return _export_geotiff(values, what, da, target, table)
    if suffix == ".npy":
        with atomic_output(target) as tmp, open(tmp, "wb") as fh:
            np.save(fh, values, allow_pickle=False)
        return target
    return _export_netcdf(values, what, da, target, dims, table)


def _product(prediction: Prediction, what: str, class_index: int | None) -> np.ndarray:
    if what == "classes":
        return prediction.classes
    if what == "entropy":
        return prediction.entropy
    p = prediction.probabilities
    return p if class_index is None else class_probability(p, class_index)


def class_probability(probabilities: np.ndarray, class_index: int) -> np.ndarray:
    """One class's probabilities from the (class, ...) stack, the class checked."""
    if not 0 <= class_index < probabilities.shape[0]:
        raise DataError(f"class {class_index} does not exist; classes are "
                        f"0..{probabilities.shape[0] - 1}")
    return probabilities[class_index]


def _export_segy(values, what, da, target, dims) -> Path:
    from io_adapters.segy import write_segy_like

    if dims != ("iline", "xline", "samples") or "source_path" not in da.attrs:
        raise DataError(
            f"{target}: SEG-Y export needs seismic data read from a SEG-Y file; export this "
            "prediction as .tif, .npy or .nc"
        )
    if what == "probabilities" and values.ndim == 4:
        values = values.max(axis=0)  # confidence: probability of the predicted class
    volume = xr.DataArray(values.astype(np.float32), dims=dims)
    return write_segy_like(da, volume, target)


def _export_geotiff(values, what, da, target, table) -> Path:
    from io_adapters.geotiff import write_geotiff

    if "y" not in da.dims or "x" not in da.dims:
        raise DataError(
            f"{target}: GeoTIFF export needs map data with dims y and x; this data has "
            f"{tuple(da.dims)}, export it as .sgy, .npy or .nc"
        )
    if what == "classes":
        colours = {i: _rgb(colour) for i, (_, colour) in enumerate(table)}
        return write_geotiff(target, values.astype(np.int16), da, colormap=colours,
                             band_names=["class"])
    names = [name for name, _ in table] if values.ndim == 3 else [what]
    return write_geotiff(target, values.astype(np.float32), da, band_names=names)


def _rgb(colour: str) -> tuple[int, int, int]:
    c = colour.lstrip("#")
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)


def _export_netcdf(values, what, da, target, dims, table) -> Path:
    coords = {
        str(name): coord.variable for name, coord in da.coords.items()
        if set(map(str, coord.dims)) <= set(dims)
    }
    names = [name for name, _ in table]
    out_dims: tuple[str, ...] = dims
    if values.ndim == len(dims) + 1:
        out_dims = ("class", *dims)
        coords["class"] = ("class", np.arange(values.shape[0]))
        coords["class_name"] = ("class", np.asarray(names, dtype=str))
    attrs = _netcdf_attrs(da.attrs)
    attrs["fhn_product"] = what
    attrs["class_names"] = json.dumps(names)
    if what == "classes":
        # CF flags: lets Panoply/QGIS show names instead of numbers
        attrs["flag_values"] = np.arange(len(names), dtype=np.int16)
        attrs["flag_meanings"] = " ".join(n.replace(" ", "_") for n in names)
    arr = xr.DataArray(values, dims=out_dims, coords=coords, attrs=attrs, name=what)
    with atomic_output(target) as tmp:
        arr.to_netcdf(tmp, engine="h5netcdf")
    return target


def _netcdf_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    """Attrs NetCDF can store: None dropped, bools as ints, nested values as JSON text."""
    out: dict[str, Any] = {}
    for key, value in attrs.items():
        if value is None:
            continue
        if isinstance(value, bool):
            out[key] = int(value)
        elif isinstance(value, str | int | float | np.number):
            out[key] = value
        elif isinstance(value, list | tuple) and value and all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in value
        ):
            out[key] = np.asarray(value)
        else:
            out[key] = json.dumps(value, default=str)
    return out
