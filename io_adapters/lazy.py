"""When a reader hands out a Dask-backed DataArray, and the Dask wrapping the readers share.

Every raster and cube reader (:mod:`io_adapters.geotiff`, :mod:`io_adapters.hyperspectral`)
builds its array the same way: a small picklable object that reads one window of the file
per call, wrapped by :func:`windowed` as a Dask array. A file larger than
:data:`IN_MEMORY_BYTES` stays lazy, read window by window as it is used; a smaller one is
loaded at once (:func:`finish`), through the same reads, in one chunk. Small files stay in
memory because the app and the CLI take a Dask-backed grid to mean "larger than memory"
(value ranges from a few chunks, the fixed recipe instead of cross-validation, labels kept
as a list of cells), which a map of a few MB must not trigger.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

__all__ = ["IN_MEMORY_BYTES", "LOCAL", "edge", "finish", "is_lazy", "spread_values", "unnamed",
           "windowed"]

# float32 bytes above which a reader keeps the data on disk; the whole of a smaller file
# is cheaper to hold than to read again for every view
IN_MEMORY_BYTES = 1 << 30
# values per chunk of a lazy array (4 MB of float32): a view of a window reads a few
CHUNK_VALUES = 1 << 20
# the scheduler readers compute with: this process's threads, never a ``dask.distributed``
# client a prediction may have set as default, whose workers need not see the file
LOCAL = "threads"


def is_lazy(n_values: int, lazy: bool | None) -> bool:
    """``lazy`` as asked, or by default: lazy when the values as float32 pass
    :data:`IN_MEMORY_BYTES`."""
    if lazy is None:
        return int(n_values) * 4 > IN_MEMORY_BYTES
    return bool(lazy)


def edge(block: int, size: int, target: int) -> int:
    """A chunk edge of about ``target`` cells along an axis of ``size`` cells, a whole
    number of the file's ``block`` (tile or strip) so that no block is read for two chunks."""
    block = max(1, min(int(block), int(size)))
    return int(min(size, max(block, (int(target) // block) * block)))


def windowed(source: Any, chunks: Sequence[int] | None):
    """A Dask array over ``source`` (``shape``, ``dtype``, ``__getitem__`` of slices and
    integers, ``__dask_tokenize__``), in ``chunks`` (None: one chunk, the whole array).

    Dask pushes a slice of the array into the reads, so a window of a large file reads
    only the window."""
    import dask.array as dsa

    shape = tuple(int(n) for n in source.shape)
    return dsa.from_array(source, chunks=shape if chunks is None else tuple(chunks),
                          meta=np.empty((0,) * len(shape), dtype=source.dtype))


def unnamed(values: Any, dims: Sequence[str]) -> xr.Variable:
    """``values`` as a Variable, to build a DataArray from: given a Dask array directly,
    xarray would name the DataArray after the Dask graph."""
    return xr.Variable(tuple(dims), values)


def finish(da: xr.DataArray, lazy: bool) -> xr.DataArray:
    """``da`` as it is when ``lazy``, else loaded into memory (by :data:`LOCAL`)."""
    return da if lazy else da.load(scheduler=LOCAL)


def spread_values(values: Any) -> np.ndarray:
    """All values of an array in memory; a few chunks spread over a Dask array (checks that
    warn about a file must not read all of a file larger than memory)."""
    if hasattr(values, "dask"):
        from .zarr_store import sample_values

        return sample_values(values)
    return np.asarray(values)
