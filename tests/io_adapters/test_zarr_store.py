"""io_adapters.zarr_store: SEG-Y made with segyio, ingested, read back lazily and compared."""

from __future__ import annotations

from pathlib import Path

import dask.array as dsa
import numpy as np
import pytest
import segyio
import xarray as xr
import zarr
from zarr.abc.store import SuffixByteRequest

from io_adapters.errors import DataError
from io_adapters.segy import create_segy, read_segy
from io_adapters.zarr_store import (
    FAST_SLICES,
    RECORD_NAME,
    add_fast_slices,
    has_fast_slices,
    ingest_segy,
    open_segy_store,
    read_section,
    section_of_copy,
)


class Interrupt(Exception):
    """Stands for Ctrl-C or a crash in the middle of an ingest."""


def _survey(path: Path, shape=(9, 7, 20), seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    n_il, n_xl, _ = shape
    il, xl = np.meshgrid(np.arange(n_il), np.arange(n_xl), indexing="ij")
    return create_segy(
        path, rng.normal(size=shape).astype(np.float32), ilines=range(100, 100 + n_il),
        xlines=range(300, 300 + 2 * n_xl, 2), sample_interval_ms=2.0, delay_ms=10.0,
        cdp_x=500_000.0 + 12.5 * il + 3.0 * xl, cdp_y=6_000_000.0 + 12.5 * xl,
        text_header="fhn zarr ingest test survey",
    )


def _crossline_sorted(src: Path, dst: Path, drop: int | None = None) -> Path:
    """Same traces (headers and samples) written crossline by crossline, one optionally left out."""
    with segyio.open(src, ignore_geometry=True) as f:
        il = f.attributes(segyio.TraceField.INLINE_3D)[:]
        xl = f.attributes(segyio.TraceField.CROSSLINE_3D)[:]
        order = [int(i) for i in np.lexsort((il, xl)) if i != drop]
        spec = segyio.spec()
        spec.format, spec.samples, spec.tracecount = 5, f.samples, len(order)
        with segyio.create(dst, spec) as out:
            out.text[0], out.bin = f.text[0], f.bin
            for k, i in enumerate(order):
                out.header[k] = f.header[i]
                out.trace[k] = f.trace[i]
    return dst


def _assert_same_as_reader(store: Path, segy: Path, **options) -> xr.DataArray:
    lazy = open_segy_store(store)
    assert isinstance(lazy.data, dsa.Array)  # nothing read yet but coordinates
    xr.testing.assert_identical(lazy.compute(), read_segy(segy, **options))
    return lazy


def test_ingest_equals_in_memory_reader(tmp_path: Path) -> None:
    segy = _survey(tmp_path / "survey.sgy")
    fractions: list[float] = []
    store = ingest_segy(segy, tmp_path / "survey.zarr", chunks=(4, 3, 8),
                        progress=fractions.append)
    lazy = _assert_same_as_reader(store, segy)
    assert lazy.data.chunksize == (4, 3, 8)
    assert {"cdp_x", "cdp_y", "live"} <= set(lazy.coords)
    assert lazy.attrs["source_path"] == str(segy.resolve())  # exports copy its headers
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and len(fractions) >= 3
    assert not (tmp_path / "survey.zarr.partial").exists()
    default = open_segy_store(ingest_segy(segy, tmp_path / "default.zarr"))
    assert default.data.chunksize == (9, 7, 20)  # 64-cell cubes, cut to this small survey


def test_crossline_sorted_and_incomplete_surveys(tmp_path: Path) -> None:
    segy = _survey(tmp_path / "survey.sgy")
    sorted_by_xline = _crossline_sorted(segy, tmp_path / "xl.sgy")
    lazy = _assert_same_as_reader(ingest_segy(sorted_by_xline, tmp_path / "xl.zarr",
                                              chunks=(2, 2, 8)), sorted_by_xline)
    assert lazy.attrs["sorting"] == "xline"

    holed = _crossline_sorted(segy, tmp_path / "holed.sgy", drop=10)
    with pytest.raises(DataError, match="fill_missing"):
        ingest_segy(holed, tmp_path / "holed.zarr")
    assert not (tmp_path / "holed.zarr").exists()
    lazy = _assert_same_as_reader(ingest_segy(holed, tmp_path / "holed.zarr", fill_missing=True,
                                              chunks=(4, 4, 20)), holed, fill_missing=True)
    assert int((~lazy.live).sum()) == 1


def _interrupt_after(blocks: int):
    calls = []

    def progress(fraction: float) -> None:
        calls.append(fraction)
        if len(calls) == blocks:
            raise Interrupt

    return progress


def _chunk_bytes(store: Path) -> dict[str, bytes]:
    return {str(p.relative_to(store)): p.read_bytes()
            for p in sorted((store / "amplitude").rglob("*")) if p.is_file()}


def test_interrupted_ingest_resumes_to_the_identical_store(tmp_path: Path) -> None:
    segy = _survey(tmp_path / "survey.sgy", shape=(10, 6, 12))
    reference = ingest_segy(segy, tmp_path / "reference.zarr", chunks=(2, 3, 12))

    store = tmp_path / "resumed.zarr"
    with pytest.raises(Interrupt):
        ingest_segy(segy, store, chunks=(2, 3, 12), progress=_interrupt_after(2))
    partial = tmp_path / "resumed.zarr.partial"
    assert not store.exists() and (partial / RECORD_NAME).is_file()
    with pytest.raises(DataError, match="unfinished ingest"):
        open_segy_store(partial)

    fractions: list[float] = []
    ingest_segy(segy, store, chunks=(2, 3, 12), progress=fractions.append)
    assert fractions[0] == pytest.approx(3 / 5)  # blocks 1 and 2 were not read again
    assert _chunk_bytes(store) == _chunk_bytes(reference)
    _assert_same_as_reader(store, segy)


def test_restart_and_changed_options_start_over(tmp_path: Path) -> None:
    segy = _survey(tmp_path / "survey.sgy", shape=(8, 5, 10))
    store = tmp_path / "s.zarr"
    with pytest.raises(Interrupt):
        ingest_segy(segy, store, chunks=(2, 5, 10), progress=_interrupt_after(3))
    fractions: list[float] = []
    # other chunks than the interrupted run: its blocks cannot be reused
    ingest_segy(segy, store, chunks=(4, 5, 10), progress=fractions.append)
    assert fractions[0] == pytest.approx(1 / 2)
    _assert_same_as_reader(store, segy)

    with pytest.raises(DataError, match="already exists"):
        ingest_segy(segy, store)
    with pytest.raises(Interrupt):
        ingest_segy(segy, store, overwrite=True, progress=_interrupt_after(1))
    _assert_same_as_reader(store, segy)  # the finished store is untouched by the failed run
    fractions.clear()
    ingest_segy(segy, store, overwrite=True, restart=True, chunks=(4, 5, 10),
                progress=fractions.append)
    assert fractions[0] == pytest.approx(1 / 2)
    _assert_same_as_reader(store, segy)


def test_f3_ingest(shared_data: Path, tmp_path: Path) -> None:
    f3 = shared_data / "segy" / "f3.sgy"
    lazy = _assert_same_as_reader(ingest_segy(f3, tmp_path / "f3.zarr", chunks=(5, 7, 75)), f3)
    assert lazy.sizes == {"iline": 23, "xline": 18, "samples": 75}


def test_bad_inputs_name_the_problem(tmp_path: Path) -> None:
    segy = _survey(tmp_path / "survey.sgy", shape=(3, 3, 4))
    with pytest.raises(DataError, match="chunks"):
        ingest_segy(segy, tmp_path / "a.zarr", chunks=(0, 2, 2))
    with pytest.raises(DataError, match="does not exist"):
        ingest_segy(segy, tmp_path / "missing" / "a.zarr")
    with pytest.raises(DataError, match="not a Zarr store"):
        open_segy_store(tmp_path)
    not_segy = tmp_path / "x.sgy"
    not_segy.write_bytes(b"\0" * 100)
    with pytest.raises(DataError, match="not a SEG-Y file"):
        ingest_segy(not_segy, tmp_path / "x.zarr")


class _CountingStore(zarr.storage.LocalStore):
    """A local store that records what each read fetched: (key, kind, bytes)."""

    reads: list[tuple[str, str, int]]

    async def get(self, key, prototype, byte_range=None):
        buffer = await super().get(key, prototype, byte_range)
        kind = "index" if isinstance(byte_range, SuffixByteRequest) else "data"
        if not key.endswith("zarr.json"):
            self.reads.append((key, kind, 0 if buffer is None else len(buffer)))
        return buffer


def test_fast_slice_copies_give_the_sections_of_the_plain_store(tmp_path: Path) -> None:
    shape = (10, 6, 12)
    segy = _survey(tmp_path / "survey.sgy", shape=shape)
    reference = read_segy(segy).values
    fast = ingest_segy(segy, tmp_path / "fast.zarr", chunks=(4, 3, 5), fast_slices=True)
    plain = ingest_segy(segy, tmp_path / "plain.zarr", chunks=(4, 3, 5))
    assert has_fast_slices(fast) and not has_fast_slices(plain)
    _assert_same_as_reader(fast, segy)  # the copies change nothing of the survey
    grid = open_segy_store(fast)
    for j in range(shape[1]):
        np.testing.assert_array_equal(read_section(grid, 1, j), reference[:, j, :])
    for k in range(shape[2]):
        np.testing.assert_array_equal(read_section(grid, 2, k), reference[:, :, k])
    assert read_section(grid, 0, 3) is None  # inlines read the 64^3 chunks
    assert read_section(open_segy_store(plain), 1, 2) is None
    assert read_section(grid.isel(iline=slice(2, 8)), 1, 2) is None  # a cropped grid
    assert read_section(grid * 2.0, 1, 2) is None  # arithmetic drops the store

    # the copies added to a store ingested without them are the ingest's, byte for byte
    add_fast_slices(plain)
    assert has_fast_slices(plain) and not (plain / (FAST_SLICES + ".partial")).exists()
    for name in ("xline", "samples"):
        written = {str(p.relative_to(plain)): p.read_bytes()
                   for p in sorted((plain / FAST_SLICES / name / "c").rglob("*")) if p.is_file()}
        assert written == {str(p.relative_to(fast)): p.read_bytes() for p in
                           sorted((fast / FAST_SLICES / name / "c").rglob("*")) if p.is_file()}
        assert len(written) == 3  # one shard per block of 4 inlines


def test_a_section_from_its_copy_reads_only_the_cells_shown(tmp_path: Path) -> None:
    shape = (10, 6, 12)
    segy = _survey(tmp_path / "survey.sgy", shape=shape)
    store = ingest_segy(segy, tmp_path / "s.zarr", chunks=(4, 3, 5), fast_slices=True)
    reference = read_segy(segy).values
    for axis, name in ((1, "xline"), (2, "samples")):
        counting = _CountingStore(store / FAST_SLICES, read_only=True)
        counting.reads = []
        section = section_of_copy(counting, name, shape, axis, 4)
        np.testing.assert_array_equal(np.take(reference, 4, axis=axis), section)
        keys = {key for key, _, _ in counting.reads}
        assert all(key.startswith(f"{name}/c/") for key in keys), keys
        assert len(keys) == 3  # one shard per block of 4 inlines
        data = sum(n for _, kind, n in counting.reads if kind == "data")
        # the cells shown, nothing more (the last chunk padded from 2 to 4 inlines)
        assert data == section.nbytes // shape[0] * 12


def test_fast_slices_through_the_cli(tmp_path: Path) -> None:
    from app.cli import main

    segy = _survey(tmp_path / "survey.sgy", shape=(6, 5, 8))
    store = tmp_path / "s.zarr"
    assert main(["ingest", str(segy), str(store), "--chunks", "2", "2", "4"]) == 0
    assert not has_fast_slices(store)
    assert main(["ingest", str(segy), str(store), "--fast-slices"]) == 0  # added to it
    np.testing.assert_array_equal(read_section(open_segy_store(store), 2, 5),
                                  read_segy(segy).values[:, :, 5])
