"""Streamed prediction: a Dask graph over overlapping blocks, written straight into Zarr.

For surveys that do not fit in memory (an ingested ``.zarr`` store, see
:mod:`io_adapters.zarr_store`). The graph has three kinds of task:

1. one per block of :func:`fhn_core.blocks.block_grid` (the blocks ``--block`` and
   ``--overlap`` give the in-memory prediction): read the block's window of the data
   (only the chunks it touches), run the network on it (:func:`fhn_core.blocks.block_logits`);
2. one per output chunk: average the logits of the blocks that cover it
   (:func:`fhn_core.blocks.blend`): bitwise the logits the in-memory prediction gets;
3. the same task turns the chunk's logits into classes, probabilities and the normalised
   entropy and writes them into their chunks of the output store.

The output is computed in slabs of 64 inlines (:func:`slabs_of`), one Dask
computation each, so the graph and the scheduler's state stay the size of a slab; the
logits of blocks on a slab's edge are handed to the next slab, not run twice (on a
cluster they stay on the workers, as futures, and the next slab starts before the last
one is waited for).
No process ever holds more than a few blocks and chunks, and the same graph runs on
the local threaded scheduler or, with ``scheduler="tcp://HOST:PORT"``, on the workers of
an existing ``dask.distributed`` cluster. Workers read the data store and the model
folder by path (a shared file system, as usual on a cluster) and load the model once per
process (:class:`BlockPredictor`). The output store is written as ``<store>.partial`` and
renamed when complete; :func:`export_store` then writes SEG-Y trace chunk by trace chunk
with the source's headers.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from fhn_core.errors import FhnError
from io_adapters.errors import DataError
from io_adapters.zarr_store import replace_store

PRODUCTS = ("classes", "probabilities", "entropy")
PARTIAL_SUFFIX = ".partial"
CONNECT_TIMEOUT = "20s"  # to reach a distributed scheduler before giving up
# inlines per Dask computation (slabs_of): a row of 64-cell chunks; the peak stays flat
SLAB_INLINES = 64

# Models already loaded in this process, by (folder, device): a worker loads each once.
_MODELS: dict[tuple[str, str], Any] = {}
_MODELS_LOCK = threading.Lock()
MODEL_LOADS = {"count": 0}  # how many times this process read a model folder (tests)


@dataclass(frozen=True)
class BlockPredictor:
    """What a worker needs to predict a block: the model folder, by path, and the device.

    Pickled into every block task (a few bytes); the model itself is loaded once per
    process and kept for the next run with the same weights.
    """

    model_dir: str
    device: str = "auto"  # resolved where the task runs: a GPU worker uses its GPU
    stamp: int = 0  # modification time of the weights: a retrained model is loaded anew

    def model(self):
        """(model, device) of this process, loaded on first use."""
        from fhn_core.checkpoint import TrainedModel
        from fhn_core.prediction import resolve_device

        key = (self.model_dir, self.device, self.stamp)
        with _MODELS_LOCK:
            if key not in _MODELS:
                _set_worker_threads()
                device = resolve_device(self.device)
                _MODELS[key] = (TrainedModel.load(self.model_dir, device=device), device)
                MODEL_LOADS["count"] += 1
            return _MODELS[key]

    def logits(self, piece: np.ndarray, take: tuple[np.ndarray, ...]) -> np.ndarray:
        from fhn_core.blocks import block_logits

        model, device = self.model()
        window = piece[np.ix_(np.arange(piece.shape[0]), *take)]
        return block_logits(model, window, device)


def _set_worker_threads() -> None:
    """On a distributed worker, torch gets as many threads as the worker has."""
    import torch

    try:
        from distributed import get_worker

        threads = get_worker().state.nthreads
    except (ImportError, ValueError):
        return  # not on a distributed worker: _run sets the threads of the local scheduler
    torch.set_num_threads(max(1, int(threads)))


# --------------------------------------------------------------------------- the data
def channels_of(da: xr.DataArray, channel_names: Sequence[str]):
    """The lazy channels-first Dask array (C, iline, xline, samples) a model expects
    (:func:`app.layout.streamed_channels` with the channels the model was trained on)."""
    from io_adapters.seismic_attributes import attributes_of

    from .layout import streamed_channels

    return streamed_channels(da, **attributes_of(channel_names))[0]


# --------------------------------------------------------------------------- the graph
def _chunk_regions(chunks: tuple[tuple[int, ...], ...]) -> list[tuple[slice, ...]]:
    import itertools

    edges = [np.cumsum((0, *c)) for c in chunks]
    return [tuple(slice(int(e[i]), int(e[i + 1])) for e, i in zip(edges, index, strict=True))
            for index in itertools.product(*(range(len(c)) for c in chunks))]


def _write_products(store: str, region: list[list[int]], windows: list[list[list[int]]],
                    logits: list[np.ndarray], n_classes: int, class_order: tuple[int, ...],
                    vertical_axis: int | None) -> int:
    """Blend one output chunk and write its classes, probabilities and entropy.

    Windows come as [start, stop] lists: plain data in the task, never mistaken for a task.
    """
    import torch
    import zarr

    from fhn_core.blocks import blend
    from fhn_core.prediction import probabilities_to_prediction

    def slices(bounds: list[list[int]]) -> tuple[slice, ...]:
        return tuple(slice(a, b) for a, b in bounds)

    cut = slices(region)
    blended = blend(cut, [(slices(w), x) for w, x in zip(windows, logits, strict=True)],
                    n_classes)
    prediction = probabilities_to_prediction(torch.from_numpy(blended), class_order,
                                             vertical_axis)
    root = zarr.open_group(store, mode="r+")
    root["classes"][cut] = prediction.classes
    root["probabilities"][(slice(None), *cut)] = prediction.probabilities
    root["entropy"][cut] = prediction.entropy
    return int(np.prod([b - a for a, b in region]))


def _block_task(predictor: BlockPredictor, grid, number: int, parts: list[np.ndarray],
                counts: list[int], origin: list[int]) -> np.ndarray:
    """Assemble the source chunks block ``number`` touches (C, *box) and run it on them.

    The cells of the block are worked out here rather than stored in the graph, which so
    stays a few hundred bytes per block whatever the block size.
    """
    from fhn_core.blocks import window_indices

    box = np.block(np.reshape(np.array(parts + [None], dtype=object)[:-1],
                              counts).tolist()) if len(parts) > 1 else parts[0]
    take = window_indices(grid, grid.window(number))
    return predictor.logits(box, tuple(t - o for t, o in zip(take, origin, strict=True)))


def slabs_of(chunks, inlines: int) -> list[list[tuple[int, tuple[slice, ...]]]]:
    """Output chunks (number, region) in slabs of whole chunk rows of at least ``inlines``.

    Each slab is one Dask computation: its graph and the scheduler's bookkeeping stay the
    size of a slab however long the survey, and a slab's memory is all given back before
    the next starts, except the logits of the blocks the next slab also needs, which are
    handed over rather than run again.
    """
    slabs: list[list[tuple[int, tuple[slice, ...]]]] = [[]]
    first = 0
    for number, region in enumerate(_chunk_regions(chunks)):  # the first axis slowest
        if region[0].start - first >= inlines and slabs[-1]:
            slabs.append([])
            first = region[0].start
        slabs[-1].append((number, region))
    return slabs


def build_graph(source, predictor: BlockPredictor, grid, store: Path,
                regions: list[tuple[int, tuple[slice, ...]]], n_classes: int,
                class_order: tuple[int, ...], vertical_axis: int | None,
                done: dict[int, np.ndarray] | None = None, keep: set[int] = frozenset()):
    """Write tasks for the output chunks ``regions``, each after the blocks that cover it.

    Built as a raw task graph over the source's own chunk keys: every chunk is read once
    and handed to all the blocks that touch it, and building the graph costs microseconds
    per block (slicing a Dask array per block costs milliseconds). ``done``: logits of
    blocks computed before (put in the graph as data, or as futures of a distributed
    cluster, which its scheduler resolves on the workers); ``keep``: blocks whose logits
    to return too. Returns (write tasks, {block: its logits task} for ``keep``).
    """
    import itertools

    from dask.base import tokenize
    from dask.delayed import Delayed
    from dask.highlevelgraph import HighLevelGraph

    from fhn_core.blocks import window_indices

    done = done or {}
    source = source.rechunk({0: -1})  # all channels of a cell in one chunk
    edges = [np.cumsum((0, *c)) for c in source.chunks[1:]]
    token = tokenize(source.name, predictor, grid, str(store), regions, class_order)
    block_name, write_name = f"fhn-block-{token}", f"fhn-write-{token}"
    layer: dict = {}
    covering = {number: grid.covering(region) for number, region in regions}
    needed = sorted(set().union(*covering.values()))
    for number in needed:
        if number in done:
            layer[(block_name, number)] = done[number]
            continue
        take = window_indices(grid, grid.window(number))
        spans = [range(int(np.searchsorted(e, t.min(), "right")) - 1,
                       int(np.searchsorted(e, t.max(), "right")))
                 for e, t in zip(edges, take, strict=True)]
        parts = [(source.name, 0, *index) for index in itertools.product(*spans)]
        origin = [int(e[s[0]]) for e, s in zip(edges, spans, strict=True)]
        layer[(block_name, number)] = (_block_task, predictor, grid, number, parts,
                                       [len(s) for s in spans], origin)
    writes = []
    for number, region in regions:
        blocks = covering[number]
        bounds = [[[w.start, w.stop] for w in grid.grid_window(grid.window(i))]
                  for i in blocks]
        layer[(write_name, number)] = (
            _write_products, str(store), [[r.start, r.stop] for r in region], bounds,
            [(block_name, i) for i in blocks], n_classes, class_order, vertical_axis)
        writes.append((write_name, number))
    graph = HighLevelGraph.from_collections(write_name, layer, dependencies=[source])
    kept = {i: Delayed((block_name, i), graph, layer=write_name) for i in needed if i in keep}
    return [Delayed(key, graph, layer=write_name) for key in writes], kept


# --------------------------------------------------------------------------- running
def predict_to_store(
    model_dir: str | Path,
    da: xr.DataArray,
    store: str | Path,
    *,
    block: int = 64,
    overlap: int | None = None,
    stratigraphic_order: bool = False,
    device: str = "auto",
    scheduler: str | None = None,
    workers: int | None = None,
    overwrite: bool = False,
    network_alone: bool = False,
    progress: Callable[[float], None] | None = None,
) -> Path:
    """Predict a (Dask-backed) seismic DataArray block by block into a Zarr store.

    A model whose map blends in its run's per-cell baseline (``info.baseline_weight``,
    fhn_core.blending) is refused unless ``network_alone``: the baseline is refitted on the
    whole survey in memory, which is what streaming avoids.

    ``block`` cells per block edge (rounded up to the design's multiple of 2^levels);
    ``overlap`` cells blocks share (default: the design's receptive radius, at most half a
    block). ``scheduler``: None for the local threaded scheduler with ``workers`` threads
    (default: all cores), or the address of a ``dask.distributed`` scheduler
    (``tcp://HOST:PORT``). The store holds ``classes`` (int16), ``probabilities``
    (class, iline, xline, samples; float32) and ``entropy`` with the source's coordinates
    and attrs (``source_path`` stays the SEG-Y, for exports). Returns the store's path.
    """
    from fhn_core.blocks import block_grid, receptive_radius
    from fhn_core.checkpoint import TrainedModel

    model_path = Path(model_dir).expanduser().resolve()
    model = TrainedModel.load(model_path)
    info = model.info
    if model.design.spatial_dims != 3 or info.slice_axis is not None \
            or info.averaged_axis is not None:
        raise DataError("streamed prediction applies 3D seismic models; this model is "
                        f"{model.design.spatial_dims}D, predict its data in memory")
    if stratigraphic_order and not (info.class_order and info.vertical_axis is not None):
        raise FhnError(
            "this model has no top-to-bottom class order; predict without the stratigraphic "
            "order"
        )
    if info.baseline_weight > 0 and not network_alone:
        raise DataError(
            f"the model in {model_path} blends the network with its run's per-cell baseline "
            f"(weight {info.baseline_weight:g}), which is refitted on the whole survey in "
            "memory; predict the SEG-Y in memory, or take the network alone (fhn predict "
            "--baseline-weight 0)"
        )
    if block < 1:
        raise DataError(f"block {block} must be a positive number of cells")
    if overlap is None:  # blocks advance by at least half a block (prediction._block_starts)
        overlap = min(receptive_radius(model.design), block // 2)
    overlap = int(overlap)
    if not 0 <= overlap < block:
        raise DataError(f"overlap {overlap} must be at least 0 and less than the block {block}")
    target = Path(store).expanduser().absolute()
    if target.exists() and not overwrite:
        raise DataError(f"{target} already exists; choose another store or overwrite it")
    source = channels_of(da, info.channel_names)
    if source.shape[0] != info.data_channels:
        raise DataError(f"the data give {source.shape[0]} channel(s), the model was trained on "
                        f"{info.data_channels}; apply it to the kind of data it was trained on")
    sizes = tuple(int(s) for s in source.shape[1:])
    grid = block_grid(sizes, model.design, block, overlap)
    chunks = source.chunks[1:]
    if stratigraphic_order:  # the order is kept down whole traces: one chunk per trace
        chunks = (*chunks[:2], (sizes[2],))
    partial = target.with_name(target.name + PARTIAL_SUFFIX)
    if partial.exists():
        shutil.rmtree(partial)
    order = tuple(info.class_order) if stratigraphic_order else ()
    vertical = info.vertical_axis if stratigraphic_order else None
    predictor = BlockPredictor(str(model_path), device,
                               (model_path / "model.safetensors").stat().st_mtime_ns)
    slabs = slabs_of(chunks, SLAB_INLINES)
    handed_over: dict[int, np.ndarray] = {}

    def graph_of(k: int):
        """Slab k's graph; the blocks slab k + 1 also needs come back as its logits."""
        later = set() if k + 1 == len(slabs) else set().union(
            *(grid.covering(region) for _, region in slabs[k + 1]))
        writes, kept = build_graph(source, predictor, grid, partial, slabs[k], info.n_classes,
                                   order, vertical, handed_over, later)

        def hand_over(logits: dict[int, np.ndarray]) -> None:
            handed_over.clear()
            handed_over.update(logits)

        return writes, kept, hand_over

    try:
        _create_output(partial, da, chunks, info)
        _run(graph_of, [len(slab) for slab in slabs], scheduler, workers,
             progress or (lambda _f: None))
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)  # a failed run leaves nothing behind
        raise
    replace_store(partial, target)
    return target


def _threads_per_task(workers: int | None) -> int:
    """Torch threads for each of the local scheduler's threads: the cores shared out."""
    cores = os.cpu_count() or 1
    return max(1, cores // (workers or cores))


def _create_output(partial: Path, da: xr.DataArray, chunks, info) -> None:
    """The output store's coordinates, attrs and empty chunked arrays (written by tasks)."""
    import dask.array as dsa

    dims = ("iline", "xline", "samples")
    shape = tuple(int(da.sizes[d]) for d in dims)
    k = info.n_classes
    coords = {name: c.variable for name, c in da.coords.items()
              if set(map(str, c.dims)) <= set(dims)}
    coords["class"] = ("class", np.arange(k))
    dataset = xr.Dataset(
        {
            "classes": (dims, dsa.zeros(shape, chunks=chunks, dtype=np.int16)),
            "probabilities": (("class", *dims),
                              dsa.zeros((k, *shape), chunks=((k,), *chunks), dtype=np.float32)),
            "entropy": (dims, dsa.zeros(shape, chunks=chunks, dtype=np.float32)),
        },
        coords=coords,
        attrs={key: v for key, v in da.attrs.items() if isinstance(v, str | int | float)},
    )
    dataset.attrs["fhn_format"] = "fhn-prediction-zarr-1"
    # names as JSON text: Zarr v3 has no specified fixed-length string type yet
    dataset.attrs["class_names"] = json.dumps(
        list(info.class_names) or [f"class {i}" for i in range(k)])
    dataset.attrs["class_colours"] = json.dumps(list(info.class_colours))
    plain = [c[0] for c in chunks]
    encoding = {
        "classes": {"chunks": plain, "compressors": None},
        "probabilities": {"chunks": [k, *plain], "compressors": None},
        "entropy": {"chunks": plain, "compressors": None},
    }
    dataset.to_zarr(partial, mode="w", compute=False, encoding=encoding, consolidated=False)


def _run(graph_of, sizes: list[int], scheduler: str | None, workers: int | None,
         progress: Callable[[float], None]) -> None:
    """Compute slab after slab, locally (threads) or on a distributed cluster.

    ``graph_of(k)`` gives slab k's writes, the block logits to keep and where to hand
    them over (their values locally, their futures on a cluster); ``sizes`` the number of
    writes of each slab (for the progress).
    """
    total = sum(sizes)
    done = 0

    def one_written() -> None:
        nonlocal done
        done += 1
        progress(done / total)

    progress(0.0)
    if scheduler is None:
        import dask
        import torch
        from dask.callbacks import Callback

        class _Progress(Callback):
            def _posttask(self, key, result, dsk, state, worker_id) -> None:
                if isinstance(key, tuple) and str(key[0]).startswith("fhn-write-"):
                    one_written()

        # each of the scheduler's threads runs torch: share the cores out between them
        previous = torch.get_num_threads()
        torch.set_num_threads(_threads_per_task(workers))
        try:
            with _Progress():
                for k in range(len(sizes)):
                    writes, kept, hand_over = graph_of(k)
                    _, logits = dask.compute(writes, kept, scheduler="threads",
                                             num_workers=workers)
                    hand_over(logits)
        finally:
            torch.set_num_threads(previous)
        return
    from distributed import Client, as_completed

    try:
        client = Client(scheduler, timeout=CONNECT_TIMEOUT, set_as_default=False)
    except (OSError, TimeoutError) as err:
        raise DataError(
            f"cannot reach the Dask scheduler at {scheduler} ({err}); start one with "
            "`dask scheduler` and workers with `dask worker ADDRESS`, or leave out --scheduler"
        ) from err
    def written(futures) -> None:
        # this client is not the default one (a caller's own stays theirs): name its loop
        for future in as_completed(futures, loop=client.loop):
            future.result()  # re-raises a worker's exception here
            one_written()

    with client:
        # The edge blocks' logits stay on the workers: the next slab's graph takes their
        # futures. Slab k + 1 is submitted before slab k is waited for, so the workers go
        # on from one slab to the next without waiting for the client.
        running = None
        for k in range(len(sizes)):
            writes, kept, hand_over = graph_of(k)
            futures = client.compute(writes)
            hand_over(dict(zip(kept, client.compute(list(kept.values())), strict=True)))
            if running is not None:
                written(running)
            running = futures
        if running is not None:
            written(running)


# --------------------------------------------------------------------------- exporting
def open_prediction(store: str | Path) -> xr.Dataset:
    """A prediction store written by :func:`predict_to_store`, lazily."""
    path = Path(store)
    try:
        dataset = xr.open_zarr(path, consolidated=False)
    except (OSError, ValueError, KeyError) as err:
        raise DataError(f"{path} could not be opened as a prediction store ({err})") from err
    if dataset.attrs.get("fhn_format") != "fhn-prediction-zarr-1":
        raise DataError(f"{path} is not a prediction store written by fhn predict")
    return dataset


def export_store(
    store: str | Path, path: str | Path, *, what: str = "classes", class_index: int | None = None
) -> Path:
    """Write one product of a prediction store as SEG-Y (source headers) or NetCDF, streamed.

    SEG-Y: every header of the source SEG-Y (its ``source_path``), written one chunk of
    traces at a time; "probabilities" writes the probability of the predicted class, or of
    class ``class_index``. NetCDF (.nc): the product with its coordinates, chunk by chunk.
    """
    from io_adapters.open_data import SEGY_SUFFIXES
    from io_adapters.segy import write_segy_like

    if what not in PRODUCTS:
        raise DataError(f"what={what!r} is not one of {', '.join(PRODUCTS)}")
    dataset = open_prediction(store)
    product = dataset[what]
    if what == "probabilities":
        k = product.sizes["class"]
        if class_index is None:
            product = product.max("class")
        elif 0 <= class_index < k:
            product = product.isel({"class": class_index})
        else:
            raise DataError(f"class {class_index} does not exist; classes are 0..{k - 1}")
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix in SEGY_SUFFIXES:
        source = Path(str(dataset.attrs.get("source_path", "")))
        if source.suffix.lower() not in SEGY_SUFFIXES or not source.is_file():
            raise DataError(
                f"{target}: SEG-Y export copies the headers of the source SEG-Y "
                f"{source or '(unknown)'}, which is not there; put it back or export as .nc"
            )
        return write_segy_like(source, product.astype(np.float32), target,
                               iline=int(dataset.attrs.get("iline_byte", 189)),
                               xline=int(dataset.attrs.get("xline_byte", 193)))
    if suffix == ".nc":
        from io_adapters.atomic import atomic_output

        product.attrs = dict(dataset.attrs, fhn_product=what)
        with atomic_output(target) as tmp:
            product.to_netcdf(tmp, engine="h5netcdf")
        return target
    raise DataError(
        f"{target}: a streamed prediction exports to .sgy/.segy or .nc (or stays in its "
        "Zarr store); choose one of those"
    )
