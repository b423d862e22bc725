"""Export of class probabilities that live on a coarser grid than the data (section 3.4).

A design with one more coarsening than refinements predicts on a grid ``f`` = 2^L times
coarser per axis. Class ids and entropy are brought back to the data grid (nearest) and
export like any other prediction; the probabilities are kept as the network gave them,
so their export says which grid they are on:

- .nc: dims ``<dim>_coarse``; each coordinate is the mean of the data coordinates its
  cell covers; attrs ``fhn_grid`` (in words), ``fhn_output_factor`` and the source's attrs;
- .npy: the (K, *coarse) array, and beside it ``<name>.grid.json`` with the same facts;
- SEG-Y and GeoTIFF carry the source's own geometry, which a coarser grid does not have:
  a DataError names the formats that can hold it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import xarray as xr

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
    class_names: Sequence[str],
) -> Path:
    """Write ``prediction.probabilities`` on their own (coarser) grid, saying so."""
    factor = prediction.output_factor
    values = np.asarray(prediction.probabilities, dtype=np.float32)
    fine = tuple(int(s) for s in prediction.classes.shape)
    coarse = tuple(int(s) for s in values.shape[1:])
    statement = grid_statement(factor, dims, coarse, fine)
    suffix = target.suffix.lower()
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
        f"{target}: these probabilities are on the network's output grid, {factor}x coarser "
        f"than the data, which {suffix} cannot hold with the source's geometry; export them "
        "as .nc or .npy (both say which grid they are on), or export classes or entropy "
        "(brought back to the data grid) in this format"
    )
