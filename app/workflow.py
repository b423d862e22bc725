"""Files in, files out: the one place the CLI and the app turn data into a training task.

The pieces, in the order a run uses them:

- :func:`load_data` reads a SEG-Y, GeoTIFF(s) or hyperspectral cube(s) into an
  ``xarray.DataArray`` with the conventions of DESIGN.md ("Data model");
- :func:`to_channels_first` lays it out as the (C, *S) float32 array fhn_core trains on;
- :func:`build_task` adds a :class:`~io_adapters.labels.LabelSet` and makes a
  :class:`~fhn_core.task.SegmentationTask`; :func:`default_design` proposes a small network;
- :func:`export_prediction` writes a prediction back on the source's grid (SEG-Y with the
  source's headers, GeoTIFF with its georeferencing and a colour table, .npy, NetCDF);
- :func:`demo_recipe` and :func:`demo_task` build the built-in demo from
  ``assets/demo_recipe.toml`` and the synthetic survey.

Layouts (channels first, spatial axes after; the label grid is what labels live on):

==========================  ===========================  ==================  ===========
data dims                   2D design (default)          3D design           label grid
==========================  ===========================  ==================  ===========
seismic (iline,xline,samp)  --                           (1, il, xl, s)      (il, xl, s)
raster (band, y, x)         (band, y, x)                 --                  (y, x)
hyperspectral (y, x, band)  (band, y, x)                 (1, band, y, x)     (y, x)
two dates (y,x,band,time)   (time*band, y, x)            (time, band, y, x)  (y, x)
==========================  ===========================  ==================  ===========

Two-date channel order (2D): channel ``t * n_band + b`` is band b of date t, i.e. all bands
of the first date, then all bands of the second, so one date's spectrum stays contiguous
and a model trained on (2000, 2003) applies to any later pair in the same order.
In the 3D layouts the band axis is a spatial axis the labels are embedded in at its middle
slice (eq. 3.20); it is never flipped. The seismic vertical axis is never flipped either.
"""

from __future__ import annotations

import inspect
import json
import math
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from fhn_core.design import PRESETS, NetworkDesign, Segment
from fhn_core.errors import FhnError
from fhn_core.prediction import Prediction
from fhn_core.task import SegmentationTask
from fhn_core.training import TrainConfig
from io_adapters.atomic import atomic_output
from io_adapters.errors import DataError
from io_adapters.labels import LabelClass, LabelSet, default_colour, import_boreholes
from io_adapters.seismic_attributes import ATTRIBUTE_FLAGS, attributes_of, seismic_channels

__all__ = [
    "DataLayout",
    "DemoRecipe",
    "SUPPORTED_DATA",
    "build_task",
    "class_table_of",
    "default_design",
    "demo_recipe",
    "demo_task",
    "export_prediction",
    "grid_of",
    "load_class_map",
    "load_data",
    "read_class_table",
    "to_channels_first",
]

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
EXPORT_SUFFIXES = (".sgy", ".segy", ".tif", ".tiff", ".npy", ".nc")
WHAT = ("classes", "probabilities", "entropy")

RECIPE_PATH = Path(__file__).resolve().parents[1] / "assets" / "demo_recipe.toml"


# --------------------------------------------------------------------------- loading
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
    ``categorical=[...]`` for stacked rasters, ``times=[...]`` for dates).
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

        if len(paths) == 1 and not set(options) - {"bands"}:
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


# --------------------------------------------------------------------------- layout
@dataclass
class DataLayout:
    """A dataset as fhn_core sees it: channels-first data plus how its axes are used.

    ``data`` (C, *S) float32 (NaN = nodata); ``spatial_dims`` the names of S;
    ``grid_dims`` the names of the label grid (S without the slice axis);
    ``fixed_axes`` spatial axes never flipped or transposed (vertical or spectral axis);
    ``slice_axis``/``slice_index`` where labels are embedded (eq. 3.20), if anywhere;
    ``channel_names`` one description per channel; ``kind`` seismic/raster/hyperspectral/dates;
    ``vertical_axis`` the grid axis pointing down (seismic samples), None for maps.
    """

    data: np.ndarray
    fixed_axes: tuple[int, ...]
    spatial_dims: tuple[str, ...]
    grid_dims: tuple[str, ...]
    kind: str
    slice_axis: int | None = None
    slice_index: int | None = None
    channel_names: list[str] = field(default_factory=list)
    vertical_axis: int | None = None

    @property
    def grid_shape(self) -> tuple[int, ...]:
        s = self.data.shape[1:]
        return tuple(n for a, n in enumerate(s) if a != self.slice_axis)


def _kind_of_data(da: xr.DataArray) -> str:
    dims = set(map(str, da.dims))
    if {"iline", "xline", "samples"} == dims - {"band"}:  # band: several volumes
        return "seismic"
    if {"y", "x", "band", "time"} == dims:
        return "dates"
    if {"y", "x", "band"} == dims:
        return "raster" if str(da.dims[0]) == "band" else "hyperspectral"
    if {"y", "x"} == dims:
        return "map"
    raise DataError(
        f"{da.attrs.get('source_path', 'the data')} has dims {tuple(da.dims)}; expected "
        "(iline, xline, samples), (band, y, x), (y, x, band) or (y, x, band, time)"
    )


def grid_of(da: xr.DataArray) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """The label grid of ``da`` (dims, shape) without converting the data."""
    dims = ("iline", "xline", "samples") if _kind_of_data(da) == "seismic" else ("y", "x")
    return dims, tuple(int(da.sizes[d]) for d in dims)


def to_channels_first(
    da: xr.DataArray,
    *,
    spatial_dims: int | None = None,
    vertical_channel: bool = False,
    envelope_channel: bool = False,
    semblance_channel: bool = False,
) -> DataLayout:
    """Lay ``da`` out as (C, *S) float32 for a 2D or 3D design (see the module's table).

    ``spatial_dims`` None picks the natural layout: 3 for seismic, 2 for everything else.
    3 on hyperspectral data treats the band axis as a spatial axis and embeds the labels
    at its middle slice (eq. 3.20). A layout the data cannot take is a DataError.

    ``vertical_channel`` adds the sample time or depth of seismic data as an input channel,
    ``envelope_channel`` its envelope (instantaneous amplitude), ``semblance_channel`` its
    semblance (trace-to-trace coherence); see :mod:`io_adapters.seismic_attributes` for why
    these help a network trained from a few wells.
    """
    kind = _kind_of_data(da)
    natural = 3 if kind == "seismic" else 2
    d = natural if spatial_dims is None else int(spatial_dims)
    name = da.attrs.get("source_path", "the data")
    possible = {"seismic": (3,), "raster": (2,), "map": (2,)}.get(kind, (2, 3))
    if d not in possible:
        raise DataError(
            f"{name} is {kind} data {dict(da.sizes)}, which a {d}D design cannot take; use a "
            f"{' or '.join(f'{p}D' for p in possible)} design"
        )
    if (vertical_channel or envelope_channel or semblance_channel) and kind != "seismic":
        raise DataError(f"{name} is {kind} data: the vertical-coordinate, envelope and "
                        "semblance channels are for seismic; switch them off")
    if kind == "seismic":
        dims = ("iline", "xline", "samples")
        volumes = ([da.isel(band=i) for i in range(da.sizes["band"])] if "band" in da.dims
                   else [da])
        cube = _float32(volumes[0].transpose(*dims))
        channels, names = seismic_channels(
            cube, da.coords["samples"].values, da.attrs.get("vertical_unit", "ms"),
            vertical_channel=vertical_channel, envelope_channel=envelope_channel,
            semblance_channel=semblance_channel)
        if len(volumes) > 1:  # the other volumes of the survey follow the first one
            names[0] = str(da.coords["band"].values[0])
            channels[1:1] = [_float32(v.transpose(*dims)) for v in volumes[1:]]
            names[1:1] = [str(b) for b in da.coords["band"].values[1:]]
        # The vertical (time/depth) axis is never flipped: geology has an up and a down.
        return DataLayout(np.stack(channels), (2,), dims, dims, kind, channel_names=names,
                          vertical_axis=2)
    if kind == "map":
        return DataLayout(_float32(da.transpose("y", "x"))[np.newaxis], (), ("y", "x"),
                          ("y", "x"), kind, channel_names=[str(da.name or "value")])
    bands = [str(b) for b in da.coords["band"].values] if "band" in da.coords else [
        str(i + 1) for i in range(da.sizes["band"])]
    if kind == "dates":
        times = [str(t) for t in da.coords["time"].values] if "time" in da.coords else [
            f"t{i}" for i in range(da.sizes["time"])]
        cube = _float32(da.transpose("time", "band", "y", "x"))
        if d == 3:
            return DataLayout(cube, (0,), ("band", "y", "x"), ("y", "x"), kind, 0,
                              cube.shape[1] // 2, channel_names=times)
        t, b = cube.shape[:2]
        names = [f"{times[i]} band {bands[j]}" for i in range(t) for j in range(b)]
        return DataLayout(cube.reshape(t * b, *cube.shape[2:]), (), ("y", "x"), ("y", "x"),
                          kind, channel_names=names)
    cube = _float32(da.transpose("band", "y", "x"))
    if d == 3:
        return DataLayout(cube[np.newaxis], (0,), ("band", "y", "x"), ("y", "x"), kind, 0,
                          cube.shape[0] // 2, channel_names=["spectrum"])
    return DataLayout(cube, (), ("y", "x"), ("y", "x"), kind,
                      channel_names=[f"band {b}" for b in bands])


def layout_for_model(da: xr.DataArray, model: Any) -> DataLayout:
    """The layout a trained model expects: its design's dims and the channels it saw."""
    return to_channels_first(da, spatial_dims=model.design.spatial_dims,
                             **attributes_of(model.info.channel_names))


def _float32(da: xr.DataArray) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(da.values), dtype=np.float32)


# --------------------------------------------------------------------------- task
def _labels_on_grid(
    labels: LabelSet | np.ndarray, layout: DataLayout, what: str, source: str
) -> np.ndarray:
    """Label array in the layout's grid order; DataError naming both shapes otherwise."""
    arr = labels.labels if isinstance(labels, LabelSet) else np.asarray(labels)
    dims = labels.dims if isinstance(labels, LabelSet) else ()
    if dims and set(dims) == set(layout.grid_dims) and tuple(dims) != layout.grid_dims:
        arr = np.transpose(arr, [dims.index(d) for d in layout.grid_dims])
    if tuple(arr.shape) != layout.grid_shape:
        raise DataError(
            f"{what} of shape {tuple(arr.shape)} are not on the grid of {source}, which is "
            f"{layout.grid_shape} {layout.grid_dims}; import or paint the labels on this "
            "data's grid"
        )
    if not np.issubdtype(arr.dtype, np.integer):
        raise DataError(f"{what} must hold integer class ids (-1 unlabelled), got {arr.dtype}")
    return arr.astype(np.int64)


def build_task(
    da: xr.DataArray,
    labelset: LabelSet,
    *,
    val_labels: LabelSet | np.ndarray | None = None,
    layout: DataLayout | None = None,
) -> SegmentationTask:
    """A SegmentationTask from loaded data and its labels (class names from the LabelSet).

    Validation labels: ``val_labels`` when given; else the LabelSet's ``split`` (cells with
    split 1 are held back for validation, the rest train); else none, and the trainer
    holds back a random fraction. ``layout`` defaults to :func:`to_channels_first` (da).
    Labels on another grid are a DataError naming both shapes.
    """
    layout = layout or to_channels_first(da)
    source = str(da.attrs.get("source_path", "the data"))
    labels = _labels_on_grid(labelset, layout, "labels", source)
    val = None
    if val_labels is not None:
        val = _labels_on_grid(val_labels, layout, "validation labels", source)
    elif labelset.split is not None:
        split = _labels_on_grid(labelset.split.astype(np.int16), layout, "split", source)
        held = (split == 1) & (labels >= 0)
        if held.any():
            val = np.where(held, labels, -1)
            labels = np.where(held, -1, labels)
    return SegmentationTask(
        data=layout.data, labels=labels, n_classes=len(labelset.classes), val_labels=val,
        fixed_axes=layout.fixed_axes, slice_axis=layout.slice_axis,
        slice_index=layout.slice_index, vertical_axis=layout.vertical_axis,
        class_names=list(labelset.class_names),
        channel_names=list(layout.channel_names),
    )


def default_design(
    layout: DataLayout, n_classes: int, preset: str | None = None
) -> NetworkDesign:
    """A design for this data when the user gives none: a small U-shaped network.

    ``in_channels = max(C, n_classes)`` (the input is replicated up to it, section 3.2).
    Without ``preset``: two layers per level, down to at most two Haar levels (fewer when
    the smallest axis is short, so the coarsest grid keeps >= 8 cells a side), ranks 8, 16,
    32 (eq. 3.17). With ``preset`` (a name in fhn_core.design.PRESETS) that design, with
    the in_channels above.
    """
    channels = max(int(layout.data.shape[0]), int(n_classes))
    dims = layout.data.ndim - 1
    if preset is not None:
        if preset not in PRESETS:
            raise DataError(f"unknown design preset {preset!r}; presets: {', '.join(PRESETS)}")
        design = PRESETS[preset](in_channels=channels)
        if design.spatial_dims != dims:
            raise DataError(
                f"preset {preset!r} is {design.spatial_dims}D but this {layout.kind} data is "
                f"laid out for a {dims}D design; choose a {dims}D preset or design"
            )
        return design
    sizes = [s for a, s in enumerate(layout.data.shape[1:]) if a != layout.slice_axis]
    levels = max(0, min(2, int(math.log2(max(min(sizes), 1) / 8))))
    ranks = [8 * 2**level for level in range(levels + 1)]
    down = [Segment(level, 2, ranks[level]) for level in range(levels + 1)]
    segments = down + down[-2::-1]
    return NetworkDesign(channels, dims, tuple(segments), name=f"fhn default ({dims}D)")


# --------------------------------------------------------------------------- export
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
                                           [name for name, _ in table])
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
    if class_index is None:
        return p
    if not 0 <= class_index < p.shape[0]:
        raise DataError(f"class {class_index} does not exist; classes are 0..{p.shape[0] - 1}")
    return p[class_index]


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


def load_class_map(path: PathLike, *, kind: str | None = None) -> np.ndarray:
    """A class map (prediction or reference) as int64 ids, -1 where unlabelled/nodata.

    .npy (ints, -1 unlabelled), .npz (a saved LabelSet), .nc (written by
    :func:`export_prediction`), or any data file :func:`load_data` reads (SEG-Y volume,
    one-band GeoTIFF: NaN/nodata -> -1). Values must be whole numbers. Grid axes follow
    :func:`grid_of` for SEG-Y/GeoTIFF and the file's own order otherwise.
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
        from io_adapters.labels import load_labels

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
        values = np.asarray(da.transpose(*grid_of(da)[0]).values)
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


# --------------------------------------------------------------------------- demo
@dataclass(frozen=True)
class DemoRecipe:
    """The demo's tuned settings (assets/demo_recipe.toml): what `fhn demo` and the app use."""

    design: NetworkDesign
    config: TrainConfig
    borehole_radius: float        # traces around each well that get the well's labels
    vertical_channel: bool        # the sample time as an input channel
    envelope_channel: bool        # the envelope (instantaneous amplitude) as an input channel
    semblance_channel: bool       # the semblance (trace coherence) as an input channel
    augment: bool = False         # predict with test-time augmentation (flips/transposes)
    stratigraphic_order: bool = False  # keep the wells' top-to-bottom order of the units


def demo_recipe(path: PathLike | None = None) -> DemoRecipe:
    """The recipe in ``path`` (default assets/demo_recipe.toml).

    ``patch`` entries of 0 mean "the whole axis" (None in TrainConfig).
    """
    p = Path(path) if path is not None else RECIPE_PATH
    try:
        recipe = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise DataError(f"demo recipe {p} not found; restore assets/demo_recipe.toml") from err
    except tomllib.TOMLDecodeError as err:
        raise DataError(f"demo recipe {p} is not valid TOML: {err}") from err
    design = NetworkDesign.from_dict(recipe.get("design", {}), source=str(p))
    training = dict(recipe.get("training", {}))
    if training.get("patch") is not None:
        training["patch"] = tuple(None if int(v) == 0 else int(v) for v in training["patch"])
    return DemoRecipe(
        design=design,
        config=TrainConfig.from_dict(training),
        borehole_radius=float(recipe.get("labels", {}).get("borehole_radius", 1.5)),
        **{flag: bool(recipe.get("data", {}).get(flag, False)) for flag in ATTRIBUTE_FLAGS},
        augment=bool(recipe.get("prediction", {}).get("augment", False)),
        stratigraphic_order=bool(recipe.get("prediction", {}).get("stratigraphic_order", False)),
    )


def read_class_table(path: PathLike) -> list[LabelClass]:
    """Class table from a JSON list of {id, name, colour} (the demo's demo_classes.json)."""
    p = Path(path)
    try:
        entries = json.loads(p.read_text(encoding="utf-8"))
        entries = sorted(entries, key=lambda e: int(e["id"]))
        return [LabelClass(i, e["name"], e.get("colour") or default_colour(i))
                for i, e in enumerate(entries)]
    except FileNotFoundError as err:
        raise DataError(f"class table {p} not found; rebuild the demo survey") from err
    except (ValueError, KeyError, TypeError) as err:
        raise DataError(f"class table {p} is not a JSON list of {{id, name, colour}}") from err


def demo_folder(shape: Sequence[int] | None) -> Path:
    """Where the demo survey of ``shape`` is cached (default shape: DEFAULT_DEMO_DIR)."""
    from assets.demo_survey import DEFAULT_DEMO_DIR

    if shape is None or tuple(int(s) for s in shape) == (128, 128, 128):
        return DEFAULT_DEMO_DIR
    ni, nx, ns = (int(s) for s in shape)
    return DEFAULT_DEMO_DIR.parent / f"demo-{ni}x{nx}x{ns}"


def demo_task(
    shape: Sequence[int] | None = None,
    *,
    folder: PathLike | None = None,
    recipe: DemoRecipe | None = None,
    radius: float | None = None,
) -> tuple[SegmentationTask, np.ndarray, Any]:
    """The demo as a training task: (task, ground-truth units, DemoFiles).

    Builds the synthetic survey if it is missing (default 128^3 in assets/generated/demo;
    another ``shape`` in a cache folder beside it, or in ``folder``), reads the SEG-Y,
    labels the traces around each well from the wells CSV and returns the ground truth
    (iline, xline, samples) to score against. The borehole radius and the vertical channel
    come from ``recipe`` (default: assets/demo_recipe.toml); ``radius`` overrides the radius.
    """
    from assets.demo_survey import build_demo_survey
    from io_adapters.segy import read_segy

    recipe = recipe or demo_recipe()
    target = Path(folder) if folder is not None else demo_folder(shape)
    files = build_demo_survey(target, shape=tuple(shape) if shape else (128, 128, 128))
    classes = read_class_table(files.classes)
    da = read_segy(files.segy)
    labelset, _wells = import_boreholes(
        files.wells, da, recipe.borehole_radius if radius is None else radius,
        class_names=[c.name for c in classes])
    labelset = LabelSet(labelset.labels, classes, labelset.source, labelset.split,
                        labelset.dims)
    units = np.load(files.units, allow_pickle=False)
    layout = to_channels_first(da, **{flag: getattr(recipe, flag) for flag in ATTRIBUTE_FLAGS})
    try:
        task = build_task(da, labelset, layout=layout)
    except FhnError as err:  # e.g. wells outside a very small custom survey
        raise DataError(f"the demo survey in {target} gives no usable task: {err}") from err
    return task, units, files
