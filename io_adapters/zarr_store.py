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
    progress: Callable[[float], None] | None = None,
) -> Path:
    """Copy a post-stack SEG-Y into a chunked Zarr store; returns the store's path.

    ``chunks`` (inlines, crosslines, samples) per chunk (default 64 x 64 x 64); the
    ingest holds one block of ``chunks[0]`` inlines in memory at a time.
    ``iline``/``xline``/``fill_missing`` as for ``read_segy``. An earlier
    interrupted ingest of the same file with the same options is resumed (``restart``
    starts over); an existing finished store is a DataError unless ``overwrite``.
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
        done = _resume_point(partial, fingerprint, restart)
        if done is None:
            _create_skeleton(partial, f, src, layout, geom, iline, xline, shape, chunk)
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
        done.add(number)
        _write_record(partial, fingerprint, done)
        report(len(done) / len(blocks))


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
    return amplitude.assign_coords({name: amplitude.coords[name].load() for name in small})
