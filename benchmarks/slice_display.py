"""How long a section of a survey store, or the map of a large raster, takes to display.

    python -m benchmarks.slice_display SURVEY.zarr [--repeat 3]
    python -m benchmarks.slice_display BIG.tif [--write-geotiff 5x8192] [--in-memory]

Opens the store as the app's project loader does (Dask-backed, nothing read), then for
the middle inline, crossline and time slice times what the viewer does to show one:
read the section (only the chunks it crosses), render it with the clip range of the
sampled chunks, and frame it with axes and a colour bar. The first read of each section
is cold for the process (the operating system's page cache may still hold the chunks:
run it after the store was written, as an interpreter would, or drop the caches first).
Target (issue 22): a slice of the 8 GB survey in under 2 s. A store with the crossline and
time-slice copies (``fhn ingest --fast-slices``, also on an existing store) shows those
slices from the copies, as the viewer does; the first line says which the store has.

Any other data file (a GeoTIFF, an ENVI or NetCDF cube) is opened with ``load_data`` as
the CLI does, Dask-backed when larger than memory, and its map view (band 1) timed the same
way; ``--in-memory`` reads it whole first, as before issue 22, for comparison.
``--write-geotiff BANDSxSIDE`` first writes a tiled float32 GeoTIFF of that many bands of
SIDE x SIDE pixels to the path (one row of tiles at a time; the file is kept).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def open_grid(path: Path, in_memory: bool = False):
    """The data as the app opens it: a survey store, or any file ``load_data`` reads."""
    if path.suffix.lower() == ".zarr":
        from io_adapters.zarr_store import open_segy_store

        return open_segy_store(path)
    from io_adapters.open_data import load_data

    return load_data(path, lazy=False) if in_memory else load_data(path)


def display_seconds(store: Path, kind: str, in_memory: bool = False) -> float:
    """Seconds to open the data and read, render and frame the middle section of ``kind``."""
    from app import views

    start = time.perf_counter()
    grid = open_grid(store, in_memory)
    kinds = {k.name: k for k in views.view_kinds(grid)}
    axis = kinds[kind].axis
    view = views.make_view(grid, kind, 0 if axis is None else grid.sizes[grid.dims[axis]] // 2)
    settings = views.default_settings(grid)
    clip = views.clip_range(views.band_values(grid, 0), settings.percentile,
                            symmetric=settings.symmetric)
    image, _ = views.render_section(grid, view, settings, [clip])
    views.frame_section(image, grid, view, views.data_colourbar(grid, settings, [clip]))
    return time.perf_counter() - start


def write_geotiff(path: Path, bands: int, side: int) -> None:
    """A tiled float32 GeoTIFF of ``bands`` x ``side`` x ``side`` smooth values with noise,
    written one row of 256 x 256 tiles at a time."""
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    rng = np.random.default_rng(0)
    profile = dict(driver="GTiff", width=side, height=side, count=bands, dtype="float32",
                   crs="EPSG:32618", transform=from_origin(500_000, 4_000_000, 10.0, 10.0),
                   tiled=True, blockxsize=256, blockysize=256, BIGTIFF="IF_SAFER")
    x = np.arange(side, dtype=np.float32) / side
    with rasterio.open(path, "w", **profile) as dst:
        for top in range(0, side, 256):
            rows = min(256, side - top)
            y = (np.arange(top, top + rows, dtype=np.float32) / side)[:, None]
            for b in range(bands):
                values = np.sin(6 * (b + 1) * (x[None] + y)) + rng.standard_normal(
                    (rows, side), dtype=np.float32) * 0.1
                dst.write(values.astype(np.float32), b + 1, window=Window(0, top, side, rows))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store", type=Path, help="a survey store (.zarr) or a data file")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--in-memory", action="store_true",
                        help="a data file: read it whole first (as before issue 22)")
    parser.add_argument("--write-geotiff", metavar="BANDSxSIDE",
                        help="write a tiled float32 GeoTIFF of this size to the path first")
    ns = parser.parse_args(argv)
    if ns.write_geotiff:
        bands, side = (int(v) for v in ns.write_geotiff.lower().split("x"))
        start = time.perf_counter()
        write_geotiff(ns.store, bands, side)
        print(f"wrote {ns.store} in {time.perf_counter() - start:.1f} s")
    if ns.store.suffix.lower() != ".zarr":
        from app import views

        grid = open_grid(ns.store, ns.in_memory)
        backing = "Dask-backed" if grid.chunks is not None else "in memory"
        print(f"{ns.store}: {dict(grid.sizes)}, {grid.nbytes / 1e9:.2f} GB as float32, "
              f"{backing}")
        kinds = [k.name for k in views.view_kinds(grid)]
        del grid  # each display opens the file again: one copy in memory at a time
        for kind in kinds:
            times = [display_seconds(ns.store, kind, ns.in_memory) for _ in range(ns.repeat)]
            print(f"{kind:<10} first {times[0]:.2f} s, then {min(times[1:] or times):.2f} s")
        return 0
    from io_adapters.zarr_store import has_fast_slices, open_segy_store

    grid = open_segy_store(ns.store)
    copies = "with" if has_fast_slices(ns.store) else "without"
    print(f"{ns.store}: {dict(grid.sizes)}, {grid.nbytes / 1e9:.2f} GB, {copies} the "
          "crossline and time-slice copies")
    for kind in ("inline", "crossline", "timeslice"):
        times = [display_seconds(ns.store, kind) for _ in range(ns.repeat)]
        print(f"{kind:<10} first {times[0]:.2f} s, then {min(times[1:] or times):.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
