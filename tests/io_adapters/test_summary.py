"""Dataset summaries: seismic survey geometry, map CRS and extent, values, memory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from io_adapters.summary import format_bytes, summarize


def test_seismic_summary_f3(shared_data: Path) -> None:
    from io_adapters.segy import read_segy

    data = read_segy(shared_data / "segy" / "f3.sgy")
    info = summarize(data)
    rows = dict(info.rows)
    assert info.kind == "seismic" and info.grid_shape == (23, 18, 75)
    assert rows["Dimensions"] == "23 iline x 18 xline x 75 samples"
    assert rows["iline axis"] == "111 .. 133 (step 1, 23 values)"
    assert rows["xline axis"] == "875 .. 892 (step 1, 18 values)"
    t = data.samples.values
    assert rows["samples axis"] == f"{t[0]:g} .. {t[-1]:g} ms (step 4, 75 values)"
    assert rows["Sample interval"] == "4 ms"
    corner = [k for k in rows if k.startswith("Corner IL 111 / XL 875")]
    cx, cy = float(data.cdp_x[0, 0]), float(data.cdp_y[0, 0])
    assert rows[corner[0]] == f"X {cx:.1f}, Y {cy:.1f}"
    values = data.values
    assert (info.value_min, info.value_max) == (float(values.min()), float(values.max()))
    assert info.nbytes == values.nbytes == 23 * 18 * 75 * 4
    assert rows["Memory"] == format_bytes(values.nbytes)


def test_raster_summary_with_nodata(shared_data: Path) -> None:
    from io_adapters.geotiff import read_geotiff

    data = read_geotiff(shared_data / "geotiff" / "RGB.byte.tif")
    info = summarize(data)
    rows = dict(info.rows)
    assert rows["CRS"].startswith("EPSG:32618")
    assert rows["Label grid"] == "718 y x 791 x"
    finite = data.values[np.isfinite(data.values)]
    assert info.value_min == float(finite.min()) and info.value_max == float(finite.max())
    assert "% nodata" in rows["Value range"] and 0 < info.finite_fraction < 1
    assert rows["Extent"] == "x 101985.0 .. 339315.0, y 2611485.0 .. 2826915.0"


def test_cube_without_georeferencing() -> None:
    data = xr.DataArray(np.full((3, 4, 5), np.nan, dtype=np.float32), dims=("y", "x", "band"),
                        coords={"wavelength": ("band", [400.0, 500, 600, 700, 800])},
                        attrs={"kind": "hyperspectral"})
    rows = dict(summarize(data).rows)
    assert rows["CRS"] == "none (not georeferenced)"
    assert rows["Value range"] == "no finite values"
    assert rows["Wavelengths"] == "400 .. 800"
    assert format_bytes(999) == "999 B" and format_bytes(1_500_000) == "1.5 MB"
    assert format_bytes(2.5e12) == "2.5 TB"
