"""Export of class probabilities that live on a coarser grid than the data (section 3.4).

A design with one more coarsening than refinements predicts on a grid ``f`` = 2^L times
coarser per axis. Class ids and entropy are brought back to the data grid (nearest) and
export like any other prediction; the probabilities are kept as the network gave them,
so their export says which grid they are on:

- .nc: dims ``<dim>_coarse``; each coordinate is the mean of the data coordinates its
  cell covers; attrs ``fhn_grid`` (in words), ``fhn_output_factor`` and the source's attrs;
- .npy: the (K, *coarse) array, and beside it ``<name>.grid.json`` with the same facts;
- GeoTIFF: one band per class on the coarse grid, georeferenced: the same CRS and origin,
  pixels ``f`` times larger (each covers the data pixels it was computed from), so QGIS
  overlays it on the source; the grid statement is the metadata item ``FHN_GRID``;
- SEG-Y: a new coarse survey (a SEG-Y holds one volume: the probability of the predicted
  class, or of class ``class_index``). Trace ``(I, J)`` carries the inline and crossline
  numbers of the first data line of its block and the CDP X/Y of the block's centre
  (from the survey's affine grid, fitted to the source's trace coordinates); the sample
  interval is ``f`` times the data's and the first sample sits at the centre of the first
  block of samples. The text header states the grid.

Only the cells that cover data are written (the network's padding is cropped).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from app.export import class_probability
from fhn_core.prediction import Prediction
from io_adapters.atomic import atomic_output
from io_adapters.errors import DataError


def grid_statement(factor: int, dims: Sequence[str], coarse: Sequence[int],
                   fine: Sequence[int]) -> str:
    return (f"network output grid, {factor}x coarser than the data grid along "
            f"{', '.join(dims)}: {tuple(coarse)} cells for the data's {tuple(fine)}; coarse "
            f"cell i covers data cells {factor}i .. {factor}i+{factor - 1}")


def export_coarse_probabilities(
    prediction: Prediction, da: xr.DataArray, target: Path, dims: Sequence[str],
    class_names: Sequence[str], class_index: int | None = None,
) -> Path:
    """Write ``prediction.probabilities`` on their own (coarser) grid, saying so."""
    factor = prediction.output_factor
    fine = tuple(int(s) for s in prediction.classes.shape)
    covering = tuple(math.ceil(s / factor) for s in fine)
    values = np.asarray(prediction.probabilities, dtype=np.float32)
    values = values[(slice(None), *(slice(0, n) for n in covering))]
    coarse = tuple(int(s) for s in values.shape[1:])
    statement = grid_statement(factor, dims, coarse, fine)
    suffix = target.suffix.lower()
    if suffix in (".tif", ".tiff"):
        return _coarse_geotiff(values, da, target, factor, statement, class_names)
    if suffix in (".sgy", ".segy"):
        # one volume per file: the confidence (probability of the predicted class) or
        # the chosen class's probability
        volume = (values.max(axis=0) if class_index is None
                  else class_probability(values, class_index))
        return _coarse_segy(volume, da, target, factor, statement)
    if suffix == ".npy":
        with atomic_output(target) as tmp, open(tmp, "wb") as fh:
            np.save(fh, values, allow_pickle=False)
        sidecar = target.with_suffix(".grid.json")
        with atomic_output(sidecar) as tmp:
            tmp.write_text(json.dumps({"grid": statement, "output_factor": factor,
                                       "dims": ["class", *dims], "shape": list(values.shape),
                                       "data_grid_shape": list(fine),
                                       "class_names": list(class_names)}, indent=1),
                           encoding="utf-8")
        return target
    if suffix == ".nc":
        coords: dict[str, tuple] = {"class": ("class", np.arange(values.shape[0])),
                                    "class_name": ("class", np.asarray(class_names, dtype=str))}
        out_dims = ["class"]
        for dim, n in zip(dims, coarse, strict=True):
            name = f"{dim}_coarse"
            out_dims.append(name)
            if dim in da.coords and da.coords[dim].ndim == 1 and np.issubdtype(
                    da.coords[dim].dtype, np.number):
                fine_values = np.asarray(da.coords[dim].values, dtype=np.float64)
                coords[name] = (name, np.asarray([fine_values[i * factor:(i + 1) * factor]
                                                  .mean() for i in range(n)]))
        attrs = {"fhn_product": "probabilities", "fhn_grid": statement,
                 "fhn_output_factor": factor, "class_names": json.dumps(list(class_names))}
        arr = xr.DataArray(values, dims=out_dims, coords=coords, attrs=attrs,
                           name="probabilities")
        with atomic_output(target) as tmp:
            arr.to_netcdf(tmp, engine="h5netcdf")
        return target
    raise DataError(
        f"{target}: cannot export probabilities to '{suffix or 'no extension'}'; use .nc, "
        ".npy, .tif (maps) or .sgy (seismic)"
    )


def _coarse_geotiff(values: np.ndarray, da: xr.DataArray, target: Path, factor: int,
                    statement: str, class_names: Sequence[str]) -> Path:
    from io_adapters.geotiff import write_geotiff

    transform = da.attrs.get("transform")
    if transform is None or "y" not in da.dims or "x" not in da.dims:
        raise DataError(f"{target}: GeoTIFF export needs map data with a georeferenced y, x "
                        "grid; export these probabilities as .nc or .npy")
    a, b, c, d, e, f = (float(v) for v in tuple(transform)[:6])
    # the same origin, pixels `factor` times larger: coarse pixel (i, j) covers data pixels
    # factor*i .. factor*i + factor - 1 (rows and columns)
    coarse_grid = xr.DataArray(
        np.zeros(values.shape[1:], dtype=np.float32), dims=("y", "x"),
        attrs={**da.attrs, "transform": (a * factor, b * factor, c, d * factor, e * factor, f)})
    return write_geotiff(target, values, coarse_grid, band_names=list(class_names),
                         tags={"FHN_GRID": statement, "FHN_OUTPUT_FACTOR": str(factor),
                               "FHN_PRODUCT": "probabilities"})


def _coarse_segy(volume: np.ndarray, da: xr.DataArray, target: Path, factor: int,
                 statement: str) -> Path:
    from io_adapters.segy import create_segy

    if not {"iline", "xline", "samples"} <= set(map(str, da.dims)):
        raise DataError(f"{target}: SEG-Y export needs seismic data; export these "
                        "probabilities as .nc or .npy")
    ilines = np.asarray(da.coords["iline"].values)[::factor]
    xlines = np.asarray(da.coords["xline"].values)[::factor]
    samples = np.asarray(da.coords["samples"].values, dtype=np.float64)
    step = float(samples[1] - samples[0]) if len(samples) > 1 else 1.0
    centre = samples[0] + (factor - 1) * step / 2
    first = centre if float(centre).is_integer() else float(samples[0])
    where = "the centre" if first == centre else "the top"
    cdp = _block_centres(da, factor, volume.shape[:2])
    text = (f"fhn class probabilities (confidence) on the {statement}. Inline/crossline "
            f"numbers: the first data line of each block; CDP X/Y: the block's centre; "
            f"sample times: {where} of each block of {factor} samples. Source: "
            f"{da.attrs.get('source_path', 'unknown')}")
    return create_segy(target, volume, ilines=ilines.astype(np.int64),
                       xlines=xlines.astype(np.int64), sample_interval_ms=step * factor,
                       delay_ms=first, text_header=text,
                       **({"cdp_x": cdp[0], "cdp_y": cdp[1]} if cdp else {}))


def _block_centres(da: xr.DataArray, factor: int,
                   shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray] | None:
    """CDP X/Y at the centre of each factor x factor block of traces, or None without them.

    A 3D survey's bins form an affine grid, so x and y are fitted as a + b i + c j over the
    traces that exist (missing traces and padding have no coordinates of their own).
    """
    if "cdp_x" not in da.coords or "cdp_y" not in da.coords:
        return None
    x = np.asarray(da.coords["cdp_x"].transpose("iline", "xline").values, dtype=np.float64)
    y = np.asarray(da.coords["cdp_y"].transpose("iline", "xline").values, dtype=np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3:
        return None
    i, j = np.nonzero(ok)
    design = np.stack([np.ones_like(i), i, j], axis=1).astype(np.float64)
    (cx, *_), (cy, *_) = (np.linalg.lstsq(design, v[ok], rcond=None) for v in (x, y))
    ci, cj = np.meshgrid(np.arange(shape[0]) * factor + (factor - 1) / 2,
                         np.arange(shape[1]) * factor + (factor - 1) / 2, indexing="ij")
    return tuple(c[0] + c[1] * ci + c[2] * cj for c in (cx, cy))
