"""A readable summary of a loaded dataset: dims, coordinates, geometry, values, memory.

What the app's "Open data" page and the command line show after loading, so a user can
check at a glance that the survey or map is the one they meant: sizes per dim, the range
and step of each axis, the CRS (or the seismic survey's corner coordinates), the value
range over finite values and the memory the array takes. Pure numpy/xarray.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from .gridmatch import spatial_dims, spatial_shape

__all__ = ["DataSummary", "summarize", "format_bytes"]


@dataclass
class DataSummary:
    """What :func:`summarize` found; ``rows`` is the (field, value) table to display."""

    kind: str
    dims: dict[str, int]
    grid_shape: tuple[int, ...]
    value_min: float
    value_max: float
    finite_fraction: float
    nbytes: int
    rows: list[tuple[str, str]] = field(default_factory=list)


def format_bytes(n: float) -> str:
    """Bytes as B/kB/MB/GB/TB (powers of 1000, as everywhere in fhn)."""
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000.0
    return f"{n:.1f} TB"


def _kind(data: xr.DataArray) -> str:
    kind = str(data.attrs.get("kind", ""))
    if "iline" in data.dims and "xline" in data.dims:
        return "seismic"
    return kind or "raster"


def _num(v: float) -> str:
    """Map coordinates in full (605000.0, not 6.05e+05); small numbers as %g."""
    return f"{v:.1f}" if abs(v) >= 1e5 else f"{v:g}"


def _axis_text(values: np.ndarray, unit: str = "") -> str:
    """'first .. last (step s, n values)' for a numeric axis, the values for a short list."""
    n = len(values)
    suffix = f" {unit}" if unit else ""
    if n == 0:
        return "empty"
    if values.dtype.kind not in "iuf":
        shown = ", ".join(str(v) for v in values[:4])
        return shown + (f", ... ({n} values)" if n > 4 else "")
    first, last = float(values[0]), float(values[-1])
    if n == 1:
        return f"{_num(first)}{suffix}"
    steps = np.diff(values.astype(np.float64))
    step = float(np.median(steps))
    regular = np.allclose(steps, step, rtol=1e-6, atol=1e-9)
    step_text = f"step {step:g}" if regular else f"irregular, median step {step:g}"
    return f"{_num(first)} .. {_num(last)}{suffix} ({step_text}, {n} values)"


def _crs_text(crs: object) -> str:
    text = str(crs)
    try:
        from rasterio.crs import CRS  # lazy: rasterio is slow to import

        parsed = CRS.from_user_input(text)
        epsg = parsed.to_epsg()
        name = parsed.to_dict().get("proj", "") if epsg is None else ""
        wkt_name = text.split('"')[1] if text.count('"') >= 2 else ""
        label = wkt_name or name
        return f"EPSG:{epsg} ({label})" if epsg and label else (f"EPSG:{epsg}" if epsg else label)
    except Exception:  # descriptive strings rasterio cannot parse are shown shortened
        return text if len(text) <= 80 else text[:77] + "..."


def _value_range(values: np.ndarray) -> tuple[float, float, float]:
    """(min, max, fraction finite) over finite values; NaNs (nodata) are left out."""
    a = np.asarray(values)
    if a.size == 0:
        return float("nan"), float("nan"), 0.0
    if a.dtype.kind == "f":
        finite = np.isfinite(a)
        count = int(np.count_nonzero(finite))
        if count == 0:
            return float("nan"), float("nan"), 0.0
        if count == a.size:
            return float(a.min()), float(a.max()), 1.0
        return float(a[finite].min()), float(a[finite].max()), count / a.size
    return float(a.min()), float(a.max()), 1.0


def summarize(data: xr.DataArray) -> DataSummary:
    """Summarise a loaded dataset (seismic, raster stack or hyperspectral cube).

    Rows: kind, dims and sizes, the label grid, one row per dim coordinate, survey
    geometry (trace coordinates of the corners, sample interval) or map geometry (CRS,
    pixel size, extent), band names or wavelengths, dates, value range, dtype, memory.
    """
    kind = _kind(data)
    dims = {str(d): int(data.sizes[d]) for d in data.dims}
    sampled = hasattr(data.data, "dask")  # a survey larger than memory: a few chunks
    if sampled:
        from .zarr_store import sample_values

        vmin, vmax, finite = _value_range(sample_values(data.data))
    else:
        vmin, vmax, finite = _value_range(np.asarray(data.values))
    rows: list[tuple[str, str]] = [
        ("Kind", kind),
        ("Dimensions", " x ".join(f"{n} {d}" for d, n in dims.items())),
        ("Label grid", " x ".join(f"{data.sizes[d]} {d}" for d in spatial_dims(data))),
    ]
    unit = str(data.attrs.get("vertical_unit", ""))
    for dim in data.dims:
        if dim in data.coords and data.coords[dim].ndim == 1:
            axis_unit = unit if dim == "samples" else ""
            rows.append((f"{dim} axis", _axis_text(np.asarray(data.coords[dim].values),
                                                   axis_unit)))
    if kind == "seismic":
        rows += _seismic_rows(data)
    else:
        rows += _map_rows(data)
    if "wavelength" in data.coords:
        wl = np.asarray(data.coords["wavelength"].values, dtype=np.float64)
        wl_unit = str(data.coords["wavelength"].attrs.get("units", ""))
        rows.append(("Wavelengths", f"{np.nanmin(wl):g} .. {np.nanmax(wl):g} {wl_unit}".strip()))
    if finite == 0.0:
        rows.append(("Value range", "no finite values"))
    elif sampled:
        rows.append(("Value range", f"{vmin:.6g} .. {vmax:.6g} (of 16 chunks spread over "
                                    "the survey)"))
    else:
        rng = f"{vmin:.6g} .. {vmax:.6g}"
        if finite < 1.0:
            rng += f" ({100 * (1 - finite):.1f} % nodata)"
        rows.append(("Value range", rng))
    rows.append(("Data type", str(data.dtype)))
    rows.append(("Memory", format_bytes(data.nbytes)
                 + (" on disk, read chunk by chunk" if sampled else "")))
    many = data.attrs.get("sources") or data.attrs.get("source_paths") or ()
    source = ", ".join(str(s) for s in many) or data.attrs.get("source_path")
    if source:
        rows.append(("Source", str(source)))
    return DataSummary(kind, dims, spatial_shape(data), vmin, vmax, finite, int(data.nbytes),
                       rows)


def _seismic_rows(data: xr.DataArray) -> list[tuple[str, str]]:
    rows = []
    if "sample_interval" in data.attrs:
        interval = float(data.attrs["sample_interval"])
        rows.append(("Sample interval", f"{interval:g} {data.attrs.get('vertical_unit', '')}"))
    if "cdp_x" in data.coords and "cdp_y" in data.coords:
        cx = np.asarray(data.coords["cdp_x"].transpose("iline", "xline").values, dtype=np.float64)
        cy = np.asarray(data.coords["cdp_y"].transpose("iline", "xline").values, dtype=np.float64)
        il = np.asarray(data.coords["iline"].values)
        xl = np.asarray(data.coords["xline"].values)
        for i, j in ((0, 0), (0, -1), (-1, 0), (-1, -1)):
            rows.append((f"Corner IL {il[i]} / XL {xl[j]}",
                         f"X {cx[i, j]:.1f}, Y {cy[i, j]:.1f}"))
        if cx.shape[0] > 1 and cx.shape[1] > 1:
            d_il = float(np.hypot(cx[1, 0] - cx[0, 0], cy[1, 0] - cy[0, 0]))
            d_xl = float(np.hypot(cx[0, 1] - cx[0, 0], cy[0, 1] - cy[0, 0]))
            rows.append(("Bin size", f"{d_il:.2f} between inlines, {d_xl:.2f} between "
                                     "crosslines (CDP units)"))
    else:
        rows.append(("Trace coordinates", "no CDP X/Y in the trace headers"))
    missing = int(data.attrs.get("missing_traces", 0) or 0)
    if missing:
        rows.append(("Missing traces", f"{missing} (filled with zeros)"))
    if "sorting" in data.attrs:
        rows.append(("Trace order", f"{data.attrs['sorting']}-sorted"))
    return rows


def _map_rows(data: xr.DataArray) -> list[tuple[str, str]]:
    rows = []
    crs = data.attrs.get("crs")
    rows.append(("CRS", _crs_text(crs) if crs else "none (not georeferenced)"))
    transform = data.attrs.get("transform")
    if transform is not None:
        a, b, c, d, e, f = (float(v) for v in tuple(transform)[:6])
        ny = data.sizes.get("y", 0)
        nx = data.sizes.get("x", 0)
        xs = sorted([c, c + a * nx + b * ny])
        ys = sorted([f, f + d * nx + e * ny])
        rows.append(("Pixel size", f"{abs(a):g} x {abs(e):g}" + (" (rotated)" if b or d else "")))
        rows.append(("Extent", f"x {_num(xs[0])} .. {_num(xs[1])}, "
                               f"y {_num(ys[0])} .. {_num(ys[1])}"))
    return rows
