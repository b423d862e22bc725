"""io_adapters.segy against real SEG-Y files (segyio test data) and copies made with segyio."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import segyio

from io_adapters.errors import DataError
from io_adapters.segy import create_segy, read_segy, write_segy_like


@pytest.fixture
def f3(shared_data: Path) -> Path:
    return shared_data / "segy" / "f3.sgy"


@pytest.fixture
def f3_cube(f3: Path) -> np.ndarray:
    with segyio.open(f3) as f:
        return segyio.tools.cube(f).astype(np.float32)


def _copy_traces(src: Path, dst: Path, order: np.ndarray, endian: str = "big") -> Path:
    """Write the traces ``order`` of src (headers and samples as they are) into a new file."""
    with segyio.open(src, ignore_geometry=True) as f:
        spec = segyio.spec()
        spec.format = f.bin[segyio.BinField.Format]
        spec.samples = f.samples
        spec.tracecount = len(order)
        spec.endian = endian
        with segyio.create(dst, spec) as out:
            out.text[0] = f.text[0]
            out.bin = f.bin
            for k, i in enumerate(order):
                out.header[k] = f.header[int(i)]
                out.trace[k] = f.trace[int(i)]
    return dst


def _folder_listing(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


# ----------------------------------------------------------------------------- reading


def test_f3_axes_attrs_and_values(f3: Path, f3_cube: np.ndarray) -> None:
    calls: list[float] = []
    da = read_segy(f3, progress=calls.append)

    assert da.dims == ("iline", "xline", "samples")
    assert da.name == "amplitude" and da.dtype == np.float32
    np.testing.assert_array_equal(da.iline, np.arange(111, 134))
    np.testing.assert_array_equal(da.xline, np.arange(875, 893))
    assert da.sizes["samples"] == 75
    np.testing.assert_allclose(np.diff(da.samples), 4.0)
    np.testing.assert_array_equal(da.values, f3_cube)

    assert da.attrs["kind"] == "seismic"
    assert da.attrs["vertical_unit"] == "ms"
    assert da.attrs["sample_interval"] == 4.0
    assert da.attrs["data_format"] == 3
    assert da.attrs["sorting"] == "iline"
    assert (da.attrs["iline_byte"], da.attrs["xline_byte"]) == (189, 193)
    assert da.attrs["source_path"] == str(f3.resolve())
    assert da.attrs["text_header"].startswith("C 1 Cropped F3")
    assert da.attrs["missing_traces"] == 0 and bool(da.live.all())

    assert calls[0] == 0.0 and calls[-1] == 1.0 and calls == sorted(calls)

    # CDP_X/CDP_Y carry scalar -10 in f3: header value / 10
    with segyio.open(f3) as f:
        h = f.header[f.tracecount - 1]
        scalar = h[segyio.TraceField.SourceGroupScalar]
        assert scalar == -10
        il, xl = h[segyio.TraceField.INLINE_3D], h[segyio.TraceField.CROSSLINE_3D]
        expected_x = h[segyio.TraceField.CDP_X] / 10
        expected_y = h[segyio.TraceField.CDP_Y] / 10
    assert float(da.cdp_x.sel(iline=il, xline=xl)) == pytest.approx(expected_x)
    assert float(da.cdp_y.sel(iline=il, xline=xl)) == pytest.approx(expected_y)


def test_small_ibm_float_equals_segyio(shared_data: Path) -> None:
    path = shared_data / "segy" / "small.sgy"
    da = read_segy(path)
    with segyio.open(path) as f:
        assert f.bin[segyio.BinField.Format] == 1
        np.testing.assert_array_equal(da.values, segyio.tools.cube(f))
        np.testing.assert_array_equal(da.iline, f.ilines)
        np.testing.assert_array_equal(da.xline, f.xlines)
        np.testing.assert_array_equal(da.samples, f.samples)
    assert da.attrs["data_format"] == 1
    assert "cdp_x" not in da.coords  # small.sgy has no coordinates in its headers


def test_crossline_sorted_gives_same_cube(f3: Path, f3_cube: np.ndarray, tmp_path: Path) -> None:
    n_il, n_xl = f3_cube.shape[:2]
    # f3 is inline-sorted: trace k = (k // n_xl, k % n_xl); visit crosslines slowest instead
    order = np.arange(n_il * n_xl).reshape(n_il, n_xl).T.ravel()
    xsorted = _copy_traces(f3, tmp_path / "xsorted.sgy", order)
    with segyio.open(xsorted) as f:
        assert f.sorting == segyio.TraceSortingFormat.CROSSLINE_SORTING

    da = read_segy(xsorted)
    assert da.attrs["sorting"] == "xline"
    np.testing.assert_array_equal(da.values, f3_cube)
    np.testing.assert_array_equal(da.cdp_x, read_segy(f3).cdp_x)

    # a prediction written like it stays crossline-sorted, header for header
    out = write_segy_like(da, da.values * 2, tmp_path / "pred.sgy")
    with segyio.open(xsorted) as src, segyio.open(out) as dst:
        assert dst.sorting == segyio.TraceSortingFormat.CROSSLINE_SORTING
        for i in range(src.tracecount):
            assert dict(dst.header[i]) == dict(src.header[i])
        # segyio's cube of a crossline-sorted file is (xline, iline, samples)
        np.testing.assert_array_equal(segyio.tools.cube(dst), (f3_cube * 2).transpose(1, 0, 2))


def test_little_endian(f3: Path, f3_cube: np.ndarray, tmp_path: Path) -> None:
    little = _copy_traces(f3, tmp_path / "little.sgy", np.arange(414), endian="little")
    with pytest.raises(RuntimeError):  # not readable as big-endian: it really is little
        segyio.open(little).close()
    da = read_segy(little)
    np.testing.assert_array_equal(da.values, f3_cube)
    np.testing.assert_array_equal(da.iline, np.arange(111, 134))

    out = write_segy_like(da, da.values + 1, tmp_path / "pred.sgy")
    with segyio.open(out, endian="little") as f:
        np.testing.assert_array_equal(segyio.tools.cube(f), f3_cube + 1)


def test_cache_dir_serves_second_read(f3: Path, tmp_path: Path) -> None:
    src = tmp_path / "f3.sgy"
    src.write_bytes(f3.read_bytes())
    cache = tmp_path / "cache"
    first = read_segy(src, cache_dir=cache)
    files = list(cache.glob("*.npy"))
    assert len(files) == 1 and _folder_listing(cache) == [files[0].name]

    second = read_segy(src, cache_dir=cache)
    np.testing.assert_array_equal(second.values, first.values)
    assert second.attrs == first.attrs

    # prove the values come from the .npy: mark it, read again, see the mark
    marked = np.load(files[0], mmap_mode="r+")
    marked[0, 0, 0] = 12345.0
    marked.flush()
    del marked
    assert float(read_segy(src, cache_dir=cache)[0, 0, 0]) == 12345.0
    assert float(read_segy(src)[0, 0, 0]) != 12345.0

    # a changed source (new mtime) is read again instead of served stale
    os.utime(src, ns=(src.stat().st_atime_ns, src.stat().st_mtime_ns + 10**9))
    assert float(read_segy(src, cache_dir=cache)[0, 0, 0]) != 12345.0


# ----------------------------------------------------------------------------- writing


def test_write_like_copies_every_header(f3: Path, tmp_path: Path) -> None:
    da = read_segy(f3)
    rng = np.random.default_rng(0)
    classes = rng.integers(0, 5, size=da.shape).astype(np.float32)
    out = write_segy_like(f3, classes, tmp_path / "pred.sgy")
    assert out == tmp_path / "pred.sgy"
    assert _folder_listing(tmp_path) == ["pred.sgy"]

    with segyio.open(f3) as src, segyio.open(out) as dst:
        assert dst.bin[segyio.BinField.Format] == 5
        assert dst.tracecount == src.tracecount
        assert dst.ext_headers == src.ext_headers
        for i in range(1 + src.ext_headers):
            assert dst.text[i] == src.text[i]
        src_bin, dst_bin = dict(src.bin), dict(dst.bin)
        assert dst_bin.pop(segyio.BinField.Format) == 5
        src_bin.pop(segyio.BinField.Format)
        assert dst_bin == src_bin
        for i in range(src.tracecount):
            assert dict(dst.header[i]) == dict(src.header[i])
        np.testing.assert_array_equal(dst.ilines, src.ilines)
        np.testing.assert_array_equal(dst.xlines, src.xlines)
        np.testing.assert_array_equal(dst.samples, src.samples)
        np.testing.assert_array_equal(segyio.tools.cube(dst), classes)
        assert dst.sorting == src.sorting


def test_write_like_ibm_from_dataarray(shared_data: Path, tmp_path: Path) -> None:
    da = read_segy(shared_data / "segy" / "small.sgy")
    probs = np.linspace(0, 1, da.size, dtype=np.float32).reshape(da.shape)
    out = write_segy_like(da, da.copy(data=probs), tmp_path / "probs.sgy", sample_format=1)
    with segyio.open(out) as f:
        assert f.bin[segyio.BinField.Format] == 1
        np.testing.assert_allclose(segyio.tools.cube(f), probs, rtol=1e-6, atol=1e-7)


def test_create_segy_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    ilines, xlines = [1000, 1002, 1004], [20, 21, 22, 23]
    volume = rng.normal(size=(3, 4, 30)).astype(np.float32)
    gx, gy = np.meshgrid(np.arange(4) * 12.5, np.arange(3) * 25.0)
    cdp_x, cdp_y = 612345.67 + gx, 6701234.89 + gy
    path = create_segy(
        tmp_path / "demo.sgy", volume, ilines=ilines, xlines=xlines, sample_interval_ms=2.0,
        cdp_x=cdp_x, cdp_y=cdp_y, text_header="Synthetic demo survey\nsecond line",
        delay_ms=100.0,
    )
    assert _folder_listing(tmp_path) == ["demo.sgy"]

    with segyio.open(path) as f:
        assert f.sorting == segyio.TraceSortingFormat.INLINE_SORTING
        np.testing.assert_array_equal(f.ilines, ilines)
        np.testing.assert_array_equal(f.xlines, xlines)
        np.testing.assert_allclose(f.samples, 100.0 + 2.0 * np.arange(30))
        np.testing.assert_array_equal(segyio.tools.cube(f), volume)
        assert f.bin[segyio.BinField.Interval] == 2000
        assert f.bin[segyio.BinField.Samples] == 30
        assert f.bin[segyio.BinField.Format] == 5
        h = f.header[5]  # inline 1002, crossline 21
        assert (h[segyio.TraceField.INLINE_3D], h[segyio.TraceField.CROSSLINE_3D]) == (1002, 21)
        assert h[segyio.TraceField.SourceGroupScalar] == -100
        assert h[segyio.TraceField.CDP_X] == round(cdp_x[1, 1] * 100)
        assert h[segyio.TraceField.TRACE_SAMPLE_INTERVAL] == 2000
        assert h[segyio.TraceField.DelayRecordingTime] == 100
        text = bytes(f.text[0]).decode("ascii")
        assert len(text) == 3200
        assert text.startswith("C 1 Synthetic demo survey")
        assert text[80:].startswith("C 2 second line") and text[39 * 80 :].startswith("C40 ")

    da = read_segy(path)
    np.testing.assert_allclose(da.cdp_x, cdp_x, atol=0.005)
    np.testing.assert_allclose(da.cdp_y, cdp_y, atol=0.005)
    np.testing.assert_array_equal(da.values, volume)


def test_create_segy_ibm_without_coordinates(tmp_path: Path) -> None:
    volume = np.arange(2 * 3 * 5, dtype=np.float32).reshape(2, 3, 5)
    path = create_segy(
        tmp_path / "ibm.sgy", volume, ilines=[1, 2], xlines=[5, 6, 7], sample_interval_ms=4,
        sample_format=1,
    )
    with segyio.open(path) as f:
        assert f.bin[segyio.BinField.Format] == 1
        np.testing.assert_array_equal(segyio.tools.cube(f), volume)
    assert "cdp_x" not in read_segy(path).coords


def test_create_segy_rejects_mismatched_volume(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"\(2, 3, 5\)"):
        create_segy(tmp_path / "x.sgy", np.zeros((2, 3, 5)), ilines=[1, 2, 3], xlines=[1, 2, 3],
                    sample_interval_ms=4)
    assert _folder_listing(tmp_path) == []


# ----------------------------------------------------------------------- missing traces


def test_fill_missing(f3: Path, f3_cube: np.ndarray, tmp_path: Path) -> None:
    dropped = [5, 100, 250]
    keep = np.setdiff1d(np.arange(414), dropped)
    holey = _copy_traces(f3, tmp_path / "holey.sgy", keep)

    with pytest.raises(DataError) as err:
        read_segy(holey)
    message = str(err.value)
    assert "holey.sgy" in message and "iline byte 189 / xline byte 193" in message
    assert "fill_missing=True" in message and "iline=" in message and "3 of 414" in message

    da = read_segy(holey, fill_missing=True)
    assert da.shape == f3_cube.shape
    assert da.attrs["missing_traces"] == 3
    live = np.ones(414, dtype=bool)
    live[dropped] = False
    np.testing.assert_array_equal(da.live.values.ravel(), live)
    expected = f3_cube.reshape(414, -1).copy()
    expected[dropped] = 0.0
    np.testing.assert_array_equal(da.values.reshape(414, -1), expected)
    assert np.isnan(da.cdp_x.values.ravel()[dropped]).all()

    # a prediction on the filled grid is written for the live traces only
    out = write_segy_like(da, da.values + 7, tmp_path / "pred.sgy")
    with segyio.open(holey, ignore_geometry=True) as src, \
            segyio.open(out, ignore_geometry=True) as dst:
        assert dst.tracecount == 411
        for i in range(src.tracecount):
            assert dict(dst.header[i]) == dict(src.header[i])
        np.testing.assert_array_equal(dst.trace.raw[:], src.trace.raw[:] + 7)


# ------------------------------------------------------------------------- bad input


def test_truncated_file(f3: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.sgy"
    cut.write_bytes(f3.read_bytes()[:100_000])
    pattern = r"cut\.sgy is truncated: expected \d+ bytes for \d+ traces"
    with pytest.raises(DataError, match=pattern):
        read_segy(cut)


@pytest.mark.parametrize(
    "content",
    [b"just some notes, not seismic\n" * 200, np.random.default_rng(3).bytes(5000), b"tiny"],
    ids=["text", "random-bytes", "tiny"],
)
def test_not_segy(tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "notes.sgy"
    bad.write_bytes(content)
    with pytest.raises(DataError, match=r"notes\.sgy is not a SEG-Y file"):
        read_segy(bad)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="nothere.sgy does not exist"):
        read_segy(tmp_path / "nothere.sgy")


@pytest.mark.parametrize(
    ("iline", "xline", "problem"),
    [(1, 5, "do not form an inline/crossline grid"), (13, 25, "repeat an inline/crossline pair")],
)
def test_wrong_byte_locations(f3: Path, iline: int, xline: int, problem: str) -> None:
    with pytest.raises(DataError) as err:
        read_segy(f3, iline=iline, xline=xline, fill_missing=True)
    message = str(err.value)
    assert "f3.sgy" in message and problem in message
    assert f"iline byte {iline} / xline byte {xline}" in message
    assert "iline=/xline=" in message


def test_byte_location_not_a_field(f3: Path) -> None:
    with pytest.raises(DataError, match="iline byte 190 is not the start"):
        read_segy(f3, iline=190)


def test_write_like_wrong_shape(f3: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        write_segy_like(f3, np.zeros((23, 18, 74), np.float32), tmp_path / "pred.sgy")
    assert "(23, 18, 74)" in str(err.value) and "(23, 18, 75)" in str(err.value)
    assert "f3.sgy" in str(err.value)
    assert _folder_listing(tmp_path) == []


def test_write_like_unwritable_paths(f3: Path, tmp_path: Path) -> None:
    values = np.zeros((23, 18, 75), np.float32)
    with pytest.raises(DataError, match="no_such_folder"):
        write_segy_like(f3, values, tmp_path / "no_such_folder" / "pred.sgy")
    folder = tmp_path / "a_folder"
    folder.mkdir()
    with pytest.raises(DataError, match="a_folder.*folder"):
        write_segy_like(f3, values, folder)
    with pytest.raises(DataError, match="no_such_folder"):
        create_segy(tmp_path / "no_such_folder" / "x.sgy", values, ilines=range(23),
                    xlines=range(18), sample_interval_ms=4)
    assert _folder_listing(tmp_path) == ["a_folder"]
    assert _folder_listing(folder) == []


def test_unsupported_sample_format(f3: Path, tmp_path: Path) -> None:
    """Only IEEE (5) and IBM (1) float are written; anything else is refused up front."""
    with pytest.raises(DataError, match="sample_format 3"):
        write_segy_like(f3, np.zeros((23, 18, 75)), tmp_path / "pred.sgy", sample_format=3)
    assert _folder_listing(tmp_path) == []
