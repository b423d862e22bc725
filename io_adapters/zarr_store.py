"""Chunked, lazy surveys: SEG-Y ingested once into a Zarr store, read back through Dask.

A SEG-Y file is read trace by trace; a survey of 10-500 GB does not fit in memory, and
random access to one inline of a crossline-sorted file touches every part of it. So a
survey is ingested once into a Zarr store (plain Zarr v3 written through xarray; why not
MDIO: see benchmarks/README.md, "Chunked surveys") and every later step reads the chunks
it needs. :func:`open_segy_store` hands out the same ``xarray.DataArray`` as
:func:`io_adapters.segy.read_segy` (dims ``(iline, xline, samples)``, the same
coordinates and attrs, ``source_path`` still the SEG-Y file so an export copies its
headers), only Dask-backed.

The ingest streams blocks of inlines: one block of ``chunks[0]`` inlines is in memory at a
time, so its peak memory does not grow with the number of inlines. It writes into
``<store>.partial`` with a record of the finished blocks (``fhn-ingest.json``, replaced
atomically after each block); an interrupted ingest called again with the same source and
options resumes from that record, ``restart=True`` starts over, and only a finished store
is renamed to its final name, so a store under the final name is always complete.

A crossline or a time slice of a 64^3-chunked survey reads a 64-cell-thick slab: 64 times
the cells it shows (856 MB for one crossline of an 8 GB survey, seconds). With
``fast_slices`` the ingest also writes two access-pattern copies of the amplitudes, as
MDIO's optional "fast crossline" and "fast time slice" copies do, in the store's
``fast_slices`` group: one whose chunks are one crossline thick, one whose chunks are one
sample thick (each ``chunks[0]`` inlines long, grouped in Zarr v3 shards of a block of
inlines, so the ingest writes whole shards and the store holds one file per shard, not
one per chunk). :func:`read_section` reads a crossline or time slice from the copy that
suits it: only the cells shown. The price is twice the survey's size on disk more.
:func:`add_fast_slices` writes the copies into a store ingested without them.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from .atomic import atomic_output
from .errors import DataError
from .segy import _attrs, _check_byte, _coords, _geometry, _open, _probe

RECORD_NAME = "fhn-ingest.json"
STORE_FORMAT = "fhn-segy-zarr-1"
PARTIAL_SUFFIX = ".partial"
FAST_SLICES = "fast_slices"  # the group of access-pattern copies in a store
# the copies, by the axis a section cuts: one crossline thick, one sample thick
_COPY_OF_AXIS = {1: "xline", 2: "samples"}

# cubes of 64 cells (1 MB of float32), as MDIO chunks 3D surveys: an inline, a crossline
# or a time slice each reads a 64-cell-thick slab, and a prediction block a few chunks
_CHUNK_EDGE = 64


def default_chunks(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Cells per chunk along each axis: cubes of 64 (whole axes where shorter)."""
    return tuple(min(_CHUNK_EDGE, int(n)) for n in shape)


def ingest_segy(
    source: str | Path,
    store: str | Path,
    *,
    iline: int = 189,
    xline: int = 193,
    fill_missing: bool = False,
    chunks: tuple[int, int, int] | None = None,
    restart: bool = False,
    overwrite: bool = False,
    fast_slices: bool = False,
    progress: Callable[[float], None] | None = None,
) -> Path:
    """Copy a post-stack SEG-Y into a chunked Zarr store; returns the store's path.

    ``chunks`` (inlines, crosslines, samples) per chunk (default 64 x 64 x 64); the
    ingest holds one block of ``chunks[0]`` inlines in memory at a time.
    ``iline``/``xline``/``fill_missing`` as for ``read_segy``. An earlier
    interrupted ingest of the same file with the same options is resumed (``restart``
    starts over); an existing finished store is a DataError unless ``overwrite``.
    ``fast_slices`` also writes the crossline and time-slice copies (module docstring).
    ``progress`` gets the fraction done in [0, 1] after each block of inlines.
    """
    src = Path(source).expanduser().resolve()
    target = Path(store).expanduser().absolute()
    iline, xline = _check_byte(iline, "iline"), _check_byte(xline, "xline")
    report = progress if progress is not None else _ignore
    if target.exists() and not overwrite:
        raise DataError(
            f"{target} already exists; choose another store name or ingest with overwrite "
            f"(fhn ingest --overwrite)"
        )
    if not target.parent.is_dir():
        raise DataError(f"cannot write {target}: folder {target.parent} does not exist")
    partial = target.with_name(target.name + PARTIAL_SUFFIX)
    layout = _probe(src)
    with _open(src, layout, mmap=False) as f:
        geom = _geometry(f, src, iline, xline, allow_missing=fill_missing)
        shape = (*geom.shape, layout.n_samples)
        chunk = _chunk_shape(shape, chunks)
        stat = src.stat()
        fingerprint = {
            "source": str(src), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
            "iline": iline, "xline": xline, "fill_missing": bool(fill_missing),
            "shape": list(shape), "chunks": list(chunk),
        }
        if fast_slices:  # (absent otherwise: a partial ingest from before still resumes)
            fingerprint["fast_slices"] = True
        done = _resume_point(partial, fingerprint, restart)
        if done is None:
            _create_skeleton(partial, f, src, layout, geom, iline, xline, shape, chunk)
            if fast_slices:
                _create_copies(partial / FAST_SLICES, shape, chunk[0])
            done = set()
            _write_record(partial, fingerprint, done)
        _copy_blocks(f, geom, partial, fingerprint, done, chunk[0], report)
    (partial / RECORD_NAME).unlink()
    replace_store(partial, target)
    report(1.0)
    return target


def _ignore(_fraction: float) -> None:
    return None


def _chunk_shape(
    shape: tuple[int, int, int], chunks: tuple[int, int, int] | None
) -> tuple[int, int, int]:
    if chunks is None:
        return default_chunks(shape)
    if len(chunks) != 3 or any(int(c) < 1 for c in chunks):
        raise DataError(
            f"chunks={chunks!r}: give three positive numbers, inlines, crosslines and samples "
            "per chunk"
        )
    return tuple(min(int(c), n) for c, n in zip(chunks, shape, strict=True))


def _resume_point(partial: Path, fingerprint: dict[str, Any], restart: bool) -> set[int] | None:
    """Finished blocks of an earlier ingest into ``partial``, or None to start afresh."""
    if not partial.exists():
        return None
    record = partial / RECORD_NAME
    try:
        saved = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        saved = None  # no or unreadable record: nothing in the folder can be trusted
    if restart or not isinstance(saved, dict) or saved.get("fingerprint") != fingerprint:
        shutil.rmtree(partial)
        return None
    return {int(b) for b in saved.get("done", [])}


def _write_record(partial: Path, fingerprint: dict[str, Any], done: set[int]) -> None:
    with atomic_output(partial / RECORD_NAME) as tmp:
        tmp.write_text(json.dumps({"fingerprint": fingerprint, "done": sorted(done)}),
                       encoding="utf-8")


def _create_skeleton(partial, f, src, layout, geom, iline, xline, shape, chunk) -> None:
    """Coordinates, attrs and an empty chunked amplitude array, as xarray writes them."""
    import dask.array as dsa

    attrs = _attrs(f, src, layout, geom, iline, xline)
    amplitude = xr.DataArray(
        dsa.zeros(shape, chunks=chunk, dtype=np.float32),
        dims=("iline", "xline", "samples"), coords=_coords(f, geom), attrs=attrs,
        name="amplitude",
    )
    dataset = amplitude.to_dataset()
    dataset.attrs["fhn_format"] = STORE_FORMAT
    # amplitudes compress poorly without loss; raw chunks keep ingest and reads CPU-cheap
    encoding = {"amplitude": {"chunks": chunk, "compressors": None}}
    try:
        dataset.to_zarr(partial, mode="w", compute=False, encoding=encoding,
                        consolidated=False)
    except OSError as err:
        raise DataError(f"cannot write {partial}: {err.strerror or err}") from err


def _inline_blocks(n_iline: int, per_block: int) -> Iterator[tuple[int, int, int]]:
    for number, start in enumerate(range(0, n_iline, per_block)):
        yield number, start, min(n_iline, start + per_block)


def _copy_blocks(f, geom, partial: Path, fingerprint, done: set[int], per_block: int,
                 report: Callable[[float], None]) -> None:
    """Read the traces of each unfinished block of inlines and write it as whole chunks."""
    import zarr

    amplitude = zarr.open_array(partial / "amplitude", mode="r+")
    copies = _open_copies(partial / FAST_SLICES, "r+")
    n_samples = amplitude.shape[2]
    blocks = list(_inline_blocks(len(geom.ilines), per_block))
    for number, first, last in blocks:
        if number in done:
            continue
        # a scan per block rather than one sort of all traces: no extra per-trace arrays
        traces = np.flatnonzero((geom.il_idx >= first) & (geom.il_idx < last))
        values = np.zeros((last - first, amplitude.shape[1], n_samples), dtype=np.float32)
        for run in np.split(traces, np.flatnonzero(np.diff(traces) != 1) + 1):
            if run.size:
                a, b = int(run[0]), int(run[-1]) + 1
                values[geom.il_idx[a:b] - first, geom.xl_idx[a:b]] = f.trace.raw[a:b]
        amplitude[first:last] = values
        for copy in copies:
            copy[first:last] = values  # whole shards
        done.add(number)
        _write_record(partial, fingerprint, done)
        report(len(done) / len(blocks))


def _create_copies(group: Path, shape: tuple[int, int, int], inlines: int) -> None:
    """The empty crossline and time-slice copies: chunks one cell thick along the axis
    they serve, ``inlines`` long, in shards of ``inlines`` whole inlines."""
    import zarr

    root = zarr.open_group(group, mode="w")
    for axis, name in _COPY_OF_AXIS.items():
        thin = tuple(1 if a == axis else (inlines if a == 0 else n)
                     for a, n in enumerate(shape))
        root.create_array(name, shape=shape, chunks=thin, shards=(inlines, *shape[1:]),
                          dtype=np.float32, compressors=None, fill_value=0.0)


def _open_copies(group: Path, mode: str) -> list[Any]:
    import zarr

    if not group.is_dir():
        return []
    return [zarr.open_array(group / name, mode=mode) for name in _COPY_OF_AXIS.values()]


def has_fast_slices(store: str | Path) -> bool:
    """True when the store holds the crossline and time-slice copies."""
    group = Path(store) / FAST_SLICES
    return all((group / name / "zarr.json").is_file() for name in _COPY_OF_AXIS.values())


def add_fast_slices(
    store: str | Path, progress: Callable[[float], None] | None = None
) -> Path:
    """Write the crossline and time-slice copies into a finished store, from its 64^3
    chunks, one block of inlines at a time (one block in memory). Written under a
    temporary name and renamed when complete: an interrupted run leaves no copies (run it
    again). Returns the store's path."""
    import zarr

    target = Path(store).expanduser().absolute()
    open_segy_store(target)  # a finished survey store, or a DataError naming the fix
    report = progress if progress is not None else _ignore
    amplitude = zarr.open_array(target / "amplitude", mode="r")
    inlines = int(amplitude.chunks[0])
    partial = target / (FAST_SLICES + PARTIAL_SUFFIX)
    _create_copies(partial, amplitude.shape, inlines)
    copies = _open_copies(partial, "r+")
    blocks = list(_inline_blocks(amplitude.shape[0], inlines))
    for number, first, last in blocks:
        values = amplitude[first:last]
        for copy in copies:
            copy[first:last] = values
        report((number + 1) / len(blocks))
    final = target / FAST_SLICES
    if final.exists():
        shutil.rmtree(final)
    os.replace(partial, final)
    return target


def read_section(grid: xr.DataArray, axis: int, index: int) -> np.ndarray | None:
    """The section of a store's survey at ``index`` along ``axis`` (1: a crossline,
    2: a time slice), read from the store's access-pattern copy: a 2D array of the other
    two axes, in their order. None when there is no copy to read (not a store, a store
    without copies, an inline, or a grid changed since it was opened): read the grid."""
    store = grid.encoding.get("fhn_store")
    name = _COPY_OF_AXIS.get(axis)
    if store is None or name is None or grid.dims != ("iline", "xline", "samples"):
        return None
    import zarr

    group = Path(store) / FAST_SLICES
    if not (group / name / "zarr.json").is_file():
        return None
    return section_of_copy(zarr.storage.LocalStore(group, read_only=True), name,
                           tuple(grid.shape), axis, index)


def section_of_copy(root: Any, name: str, shape: tuple[int, ...], axis: int,
                    index: int) -> np.ndarray | None:
    """The section at ``index`` along ``axis`` of copy ``name`` in the Zarr store ``root``
    (a group's store); None when the copy's shape is not ``shape``."""
    import zarr

    copy = zarr.open_array(root, path=name, mode="r", zarr_format=3)
    if tuple(copy.shape) != shape:
        return None
    key: list[int | slice] = [slice(None)] * 3
    key[axis] = int(index)
    return np.asarray(copy[tuple(key)])


def replace_store(partial: Path, target: Path) -> None:
    """Rename a finished store to its name; an old store there goes only after that."""
    old = target.with_name(target.name + ".old")
    if old.exists():
        shutil.rmtree(old)
    if target.exists():
        os.replace(target, old)
    os.replace(partial, target)
    if old.exists():
        shutil.rmtree(old)


def sampled_chunks(numblocks: tuple[int, ...], n_chunks: int = 16) -> list[tuple[int, ...]]:
    """Block indices of ``n_chunks`` chunks spread evenly over a chunked array."""
    total = int(np.prod(numblocks))
    picks = np.unique(np.linspace(0, total - 1, min(n_chunks, total)).round().astype(int))
    return [tuple(int(i) for i in np.unravel_index(p, numblocks)) for p in picks]


def sample_values(values: Any, n_chunks: int = 16) -> np.ndarray:
    """The values of a few chunks spread evenly over a Dask array (a survey larger than
    memory), flattened: enough for a value range or a percentile clip, read in well under
    a second whatever the survey's size."""
    return np.concatenate([np.asarray(values.blocks[index]).ravel()
                           for index in sampled_chunks(values.numblocks, n_chunks)])


def is_segy_store(path: str | Path) -> bool:
    """True for a folder that looks like a Zarr store (finished or not)."""
    p = Path(path)
    return p.is_dir() and ((p / "zarr.json").is_file() or (p / ".zgroup").is_file())


def open_segy_store(path: str | Path) -> xr.DataArray:
    """The ingested survey as a Dask-backed DataArray, like ``read_segy``'s.

    Only the coordinates are read now; amplitudes are read chunk by chunk when used.
    """
    store = Path(path).expanduser().absolute()
    if store.name.endswith(PARTIAL_SUFFIX) or (store / RECORD_NAME).exists():
        raise DataError(
            f"{store} is an unfinished ingest; run the ingest again to resume it "
            f"(fhn ingest SEGY {store.name.removesuffix(PARTIAL_SUFFIX)})"
        )
    if not is_segy_store(store):
        raise DataError(f"{store} is not a Zarr store; ingest a SEG-Y first (fhn ingest)")
    try:
        dataset = xr.open_zarr(store, chunks={}, consolidated=False)
    except (OSError, ValueError, KeyError) as err:
        raise DataError(f"{store} could not be opened as a Zarr store ({err})") from err
    if dataset.attrs.get("fhn_format") != STORE_FORMAT or "amplitude" not in dataset:
        raise DataError(
            f"{store} is not a survey store written by fhn ingest; ingest the SEG-Y again"
        )
    amplitude = dataset["amplitude"]
    small = [name for name in amplitude.coords if name not in amplitude.dims]
    amplitude = amplitude.assign_coords({name: amplitude.coords[name].load() for name in small})
    # where the viewer finds the access-pattern copies (read_section); encoding, not attrs:
    # it is not written into a product, and arithmetic on the grid drops it
    amplitude.encoding["fhn_store"] = str(store)
    return amplitude
