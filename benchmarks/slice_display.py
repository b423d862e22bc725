"""How long a section of an ingested survey store takes to display, as the viewer draws it.

    python -m benchmarks.slice_display SURVEY.zarr [--repeat 3]

Opens the store as the app's project loader does (Dask-backed, nothing read), then for
the middle inline, crossline and time slice times what the viewer does to show one:
read the section (only the chunks it crosses), render it with the clip range of the
sampled chunks, and frame it with axes and a colour bar. The first read of each section
is cold for the process (the operating system's page cache may still hold the chunks:
run it after the store was written, as an interpreter would, or drop the caches first).
Target (issue 22): a slice of the 8 GB survey in under 2 s. A store with the crossline and
time-slice copies (``fhn ingest --fast-slices``, also on an existing store) shows those
slices from the copies, as the viewer does; the first line says which the store has.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def display_seconds(store: Path, kind: str) -> float:
    """Seconds to read, render and frame the middle section of ``kind`` of the store."""
    from app import views
    from io_adapters.zarr_store import open_segy_store

    start = time.perf_counter()
    grid = open_segy_store(store)
    axis = {"inline": 0, "crossline": 1, "timeslice": 2}[kind]
    view = views.make_view(grid, kind, grid.sizes[grid.dims[axis]] // 2)
    settings = views.default_settings(grid)
    clip = views.clip_range(views.band_values(grid, 0), settings.percentile,
                            symmetric=settings.symmetric)
    image, _ = views.render_section(grid, view, settings, [clip])
    views.frame_section(image, grid, view, views.data_colourbar(grid, settings, [clip]))
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store", type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    ns = parser.parse_args(argv)
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
