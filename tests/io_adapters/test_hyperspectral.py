"""Hyperspectral readers: real Taizhou ENVI pair, ENVI/MAT/NetCDF round trips, errors."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io
import xarray as xr

from io_adapters.errors import DataError
from io_adapters.hyperspectral import read_envi, read_mat, read_netcdf, stack_dates

TAIZHOU = "changedetection/taizhou"
ENVI_CODES = {"u1": 1, "i2": 2, "i4": 3, "f4": 4, "f8": 5, "u2": 12, "u4": 13, "i8": 14, "u8": 15}


def write_envi(
    folder: Path,
    name: str,
    cube: np.ndarray,
    *,
    interleave: str = "bsq",
    big_endian: bool = False,
    offset: int = 0,
    header_suffix: str = ".hdr",
    extra: str = "",
) -> Path:
    """Write cube (lines, samples, bands) as a raw ENVI file; return the data path."""
    lines, samples, bands = cube.shape
    dtype = cube.dtype.newbyteorder(">" if big_endian else "<")
    axes = {"bsq": (2, 0, 1), "bil": (0, 2, 1), "bip": (0, 1, 2)}[interleave]
    data = folder / name
    data.write_bytes(b"\0" * offset + np.transpose(cube, axes).astype(dtype).tobytes())
    header = (
        "ENVI\nDescription = {written by a test,\n  over two lines}\n"
        f"Samples = {samples}\nLINES = {lines}\nbands   = {bands}\n"
        f"header offset = {offset}\nfile type = ENVI Standard\n"
        f"data type = {ENVI_CODES[cube.dtype.str[1:]]}\ninterleave = {interleave}\n"
        f"byte order = {int(big_endian)}\n{extra}"
    )
    (folder / (name + header_suffix)).write_text(header)
    return data


def test_taizhou_pair_matches_raw_bytes(shared_data: Path) -> None:
    folder = shared_data / TAIZHOU
    for date in ("2000TM", "2003TM"):
        cube = read_envi(folder / date)
        raw = np.fromfile(folder / date, dtype=np.uint8).reshape(6, 400, 400)  # BSQ
        assert cube.dims == ("y", "x", "band")
        assert cube.shape == (400, 400, 6)
        assert cube.dtype == np.float32
        np.testing.assert_array_equal(cube.values, np.transpose(raw, (1, 2, 0)))
        np.testing.assert_allclose(
            cube["wavelength"].values, [0.4825, 0.565, 0.66, 0.825, 1.65, 2.22]
        )
        assert cube["wavelength"].attrs["units"] == "Micrometers"
        assert cube.attrs["kind"] == "hyperspectral"
        assert cube.attrs["transform"] == (30.0, 0.0, 203325.0, 0.0, -30.0, 3604935.0)
        assert "UTM zone 51N" in cube.attrs["crs"]
        assert cube.attrs["source_path"] == str(folder / date)


def test_taizhou_header_path_gives_same_cube(shared_data: Path) -> None:
    folder = shared_data / TAIZHOU
    by_header = read_envi(folder / "2000TM.HDR")
    by_data = read_envi(folder / "2000TM")
    np.testing.assert_array_equal(by_header.values, by_data.values)


def test_taizhou_stacked(shared_data: Path) -> None:
    folder = shared_data / TAIZHOU
    a, b = read_envi(folder / "2000TM"), read_envi(folder / "2003TM")
    stacked = stack_dates([a, b], times=["2000", "2003"])
    assert stacked.dims == ("y", "x", "band", "time")
    assert stacked.shape == (400, 400, 6, 2)
    np.testing.assert_array_equal(stacked.isel(time=0).values, a.values)
    np.testing.assert_array_equal(stacked.isel(time=1).values, b.values)
    assert list(stacked["time"].values) == ["2000", "2003"]
    assert stacked.attrs["source_paths"] == [a.attrs["source_path"], b.attrs["source_path"]]


@pytest.mark.parametrize(
    ("interleave", "dtype", "big_endian"),
    [
        ("bil", "i2", False),
        ("bip", "f4", True),
        ("bsq", "u2", True),
        ("bip", "f8", False),
        ("bil", "i4", True),
        ("bsq", "u8", False),
    ],
)
def test_envi_round_trip(tmp_path: Path, interleave: str, dtype: str, big_endian: bool) -> None:
    rng = np.random.default_rng(0)
    cube = rng.integers(0, 1000, size=(7, 5, 3)).astype(dtype)
    data = write_envi(tmp_path, "cube.img", cube, interleave=interleave, big_endian=big_endian,
                      offset=16, extra="wavelength units = nm\nwavelength = {400,\n 500, 600}\n")
    out = read_envi(data)
    assert out.shape == (7, 5, 3)
    np.testing.assert_array_equal(out.values, cube.astype(np.float32))
    np.testing.assert_array_equal(out["wavelength"].values, [400, 500, 600])
    assert "transform" not in out.attrs


def test_envi_header_named_stem_hdr_and_map_info(tmp_path: Path) -> None:
    cube = np.arange(24, dtype=np.uint8).reshape(2, 4, 3)
    extra = "map info = {UTM, 1.5, 1.5, 1000.0, 2000.0, 10.0, 10.0, 33, South, WGS-84}\n"
    # data scene.img with its header named scene.hdr (the <stem>.hdr convention)
    (tmp_path / "scene.img").write_bytes(np.transpose(cube, (2, 0, 1)).tobytes())
    header = tmp_path / "scene.hdr"
    text = "ENVI\nsamples = 4\nlines = 2\nbands = 3\ndata type = 1\ninterleave = bsq\n" + extra
    header.write_bytes(text.replace("\n", "\r\n").encode())  # Windows line ends
    out = read_envi(tmp_path / "scene.img")
    np.testing.assert_array_equal(out.values, cube)
    # tie point (1.5, 1.5) sits at the centre of the first pixel
    assert out.attrs["transform"] == (10.0, 0.0, 995.0, 0.0, -10.0, 2005.0)
    assert "UTM zone 33S" in out.attrs["crs"]
    np.testing.assert_array_equal(read_envi(header).values, cube)


def test_envi_truncated_data_file(tmp_path: Path) -> None:
    data = write_envi(tmp_path, "cube", np.ones((6, 6, 2), dtype=np.int16))
    data.write_bytes(data.read_bytes()[:-10])
    with pytest.raises(DataError, match="truncated") as err:
        read_envi(data)
    assert str(data) in str(err.value)


def test_envi_missing_and_garbled_header(tmp_path: Path) -> None:
    data = tmp_path / "lonely.raw"
    data.write_bytes(b"\0" * 8)
    with pytest.raises(DataError, match="no header"):
        read_envi(data)
    (tmp_path / "lonely.raw.hdr").write_text("not an envi header\nsamples = 2\n")
    with pytest.raises(DataError, match="not an ENVI header"):
        read_envi(data)
    (tmp_path / "lonely.raw.hdr").write_text("ENVI\nsamples = 2\nlines = 2\nwavelength = {1, 2\n")
    with pytest.raises(DataError, match="never closed"):
        read_envi(data)
    (tmp_path / "lonely.raw.hdr").write_text("ENVI\nsamples = 2\nlines = 2\nbands = 1\n")
    with pytest.raises(DataError, match="data type"):
        read_envi(data)


def _matlab_v73(path: Path, variables: dict[str, np.ndarray]) -> None:
    """Write an HDF5 file laid out as MATLAB -v7.3 does: arrays stored transposed."""
    with h5py.File(path, "w", userblock_size=512) as f:
        for name, value in variables.items():
            ds = f.create_dataset(name, data=np.ascontiguousarray(value.T))
            matlab_class = {"f8": "double", "u1": "uint8"}[value.dtype.str[1:]]
            ds.attrs["MATLAB_class"] = np.bytes_(matlab_class)
    with open(path, "r+b") as raw:  # MATLAB's 512-byte text preamble
        raw.write(b"MATLAB 7.3 MAT-file, written by a test".ljust(128, b" "))


def test_read_mat_v5_and_v73_agree(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    cube = rng.random((9, 8, 4))  # band axis is the smallest, last as MATLAB users store it
    scipy.io.savemat(tmp_path / "v5.mat", {"cube": cube, "gt": np.ones((9, 8))})
    _matlab_v73(tmp_path / "v73.mat", {"cube": cube, "gt": np.ones((9, 8), dtype=np.uint8)})
    v5 = read_mat(tmp_path / "v5.mat")
    v73 = read_mat(tmp_path / "v73.mat")
    for out in (v5, v73):
        assert out.dims == ("y", "x", "band")
        np.testing.assert_array_equal(out.values, cube.astype(np.float32))
        assert out.attrs["variable"] == "cube"


def test_read_mat_band_axis_and_choice(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    cube = rng.random((3, 10, 11))  # bands first
    small = rng.random((2, 2, 2))
    scipy.io.savemat(tmp_path / "a.mat", {"cube": cube, "small": small})
    out = read_mat(tmp_path / "a.mat")
    np.testing.assert_array_equal(out.values, np.moveaxis(cube, 0, -1).astype(np.float32))
    forced = read_mat(tmp_path / "a.mat", "cube", band_axis=2)
    np.testing.assert_array_equal(forced.values, cube.astype(np.float32))
    assert read_mat(tmp_path / "a.mat", "small").shape == (2, 2, 2)


def test_read_mat_ambiguous_or_missing(tmp_path: Path) -> None:
    scipy.io.savemat(tmp_path / "two.mat", {"a": np.ones((4, 4, 2)), "b": np.zeros((4, 4, 2))})
    with pytest.raises(DataError, match=r"a \(4, 4, 2\).*b \(4, 4, 2\)"):
        read_mat(tmp_path / "two.mat")
    scipy.io.savemat(tmp_path / "flat.mat", {"img": np.ones((4, 4))})
    with pytest.raises(DataError, match="img"):
        read_mat(tmp_path / "flat.mat")
    with pytest.raises(DataError, match="'nope'"):
        read_mat(tmp_path / "two.mat", "nope")


def test_netcdf_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    cube = rng.random((4, 6, 5)).astype(np.float32)  # stored as (wavelength, lat, lon)
    ds = xr.Dataset(
        {"reflectance": (("wavelength", "lat", "lon"), cube)},
        coords={
            "wavelength": [450.0, 550.0, 650.0, 750.0],
            "lat": np.linspace(10, 9.5, 6),
            "lon": np.linspace(20, 20.4, 5),
        },
    )
    ds["wavelength"].attrs["units"] = "nm"
    ds.to_netcdf(tmp_path / "cube.nc", engine="h5netcdf")
    out = read_netcdf(tmp_path / "cube.nc")
    assert out.dims == ("y", "x", "band")
    np.testing.assert_array_equal(out.values, np.transpose(cube, (1, 2, 0)))
    np.testing.assert_array_equal(out["wavelength"].values, [450, 550, 650, 750])
    assert out["wavelength"].attrs["units"] == "nm"
    assert out.attrs["variable"] == "reflectance"


def test_netcdf_unknown_dims(tmp_path: Path) -> None:
    xr.Dataset({"v": (("a", "b", "c"), np.zeros((2, 3, 4)))}).to_netcdf(
        tmp_path / "odd.nc", engine="h5netcdf"
    )
    with pytest.raises(DataError, match=r"\('a', 'b', 'c'\).*[Rr]ename"):
        read_netcdf(tmp_path / "odd.nc")


def test_stack_dates_mismatch_names_both_files(tmp_path: Path) -> None:
    cube = np.ones((4, 5, 2), dtype=np.uint8)
    mi = "map info = {UTM, 1, 1, {x}, 5000.0, 30, 30, 51, North, WGS-84}\n"
    a = read_envi(write_envi(tmp_path, "d1", cube, extra=mi.replace("{x}", "100.0")))
    b = read_envi(write_envi(tmp_path, "d2", cube, extra=mi.replace("{x}", "160.0")))
    with pytest.raises(DataError, match="transform") as err:
        stack_dates([a, b])
    assert "d1" in str(err.value) and "d2" in str(err.value)
    c = read_envi(write_envi(tmp_path, "d3", np.ones((4, 6, 2), dtype=np.uint8)))
    with pytest.raises(DataError, match=r"grid shape.*d1.*d3"):
        stack_dates([a, c])
    d = read_envi(write_envi(tmp_path, "d4", np.ones((4, 5, 3), dtype=np.uint8),
                              extra=mi.replace("{x}", "100.0")))
    with pytest.raises(DataError, match="band count"):
        stack_dates([a, d])


# ------------------------------------------------------------------------ lazy reading


@pytest.mark.parametrize(
    ("interleave", "dtype", "big_endian"),
    [("bsq", "f4", False), ("bil", "i2", True), ("bip", "u2", False), ("bsq", "f8", True),
     ("bip", "f4", True), ("bil", "u1", False)],
)
def test_envi_lazy_equals_eager(
    tmp_path: Path, monkeypatch, interleave: str, dtype: str, big_endian: bool
) -> None:
    import io_adapters.hyperspectral as hyperspectral

    # small chunks, so that the cube is put together from several windows
    monkeypatch.setattr(hyperspectral, "CHUNK_VALUES", 40)
    rng = np.random.default_rng(11)
    cube = rng.integers(0, 200, size=(13, 8, 5)).astype(dtype)
    extra = ("wavelength = {1, 2, 3, 4, 5}\nband names = {a, b, c, d, e}\n"
             "map info = {UTM, 1, 1, 1000.0, 2000.0, 10.0, 10.0, 33, North, WGS-84}\n")
    data = write_envi(tmp_path, "cube.img", cube, interleave=interleave,
                      big_endian=big_endian, offset=32, extra=extra)
    eager, lazy = read_envi(data), read_envi(data, lazy=True)
    assert eager.chunks is None and lazy.chunks is not None
    assert len(lazy.chunks[0]) > 1  # whole lines per chunk, several chunks
    assert lazy.chunks[2] == ((1,) * 5 if interleave == "bsq" else (5,))
    xr.testing.assert_identical(lazy.load(), eager)
    np.testing.assert_array_equal(eager.values, cube.astype(np.float32))
    band = lazy.isel(band=3, y=slice(2, 11), x=slice(1, 6)).values
    np.testing.assert_array_equal(band, cube[2:11, 1:6, 3].astype(np.float32))


def test_envi_lazy_default_by_size_and_sampled_nan_warning(tmp_path: Path, monkeypatch) -> None:
    import io_adapters.hyperspectral as hyperspectral
    from io_adapters import lazy
    from io_adapters.errors import DataWarning

    cube = np.ones((40, 30, 2), np.float32)
    cube[:, :, 1] = np.nan
    data = write_envi(tmp_path, "cube.img", cube)
    with pytest.warns(DataWarning, match="1,200 of 2,400 samples"):
        assert read_envi(data).chunks is None
    monkeypatch.setattr(lazy, "IN_MEMORY_BYTES", cube.nbytes - 1)
    monkeypatch.setattr(hyperspectral, "CHUNK_VALUES", 30)  # one line of one band: 80 chunks
    # the check reads 16 chunks spread over the cube, not all 80
    with pytest.warns(DataWarning, match=r"of 480 samples of a few chunks spread over"):
        assert read_envi(data).chunks is not None


def test_envi_lazy_window_reads_only_the_window(tmp_path: Path) -> None:
    """A 2048 x 2048 x 4 float32 BIP cube (64 MB): a window of one band reads the window."""
    import tracemalloc

    lines = samples = 2048
    data = tmp_path / "big.bip"
    with open(data, "wb") as f:  # written line by line: the test holds no 64 MB array
        for i in range(lines):
            row = np.arange(samples * 4, dtype="<f4").reshape(samples, 4) + i
            f.write(row.tobytes())
    (tmp_path / "big.bip.hdr").write_text(
        f"ENVI\nsamples = {samples}\nlines = {lines}\nbands = 4\ndata type = 4\n"
        "interleave = bip\nbyte order = 0\n")
    da = read_envi(data, lazy=True)
    assert da.isel(band=0, y=slice(0, 1), x=slice(0, 1)).values.size == 1  # warm-up
    tracemalloc.start()
    window = da.isel(band=2, y=slice(1000, 1300), x=slice(500, 800)).values
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rows, cols = np.meshgrid(np.arange(1000, 1300), np.arange(500, 800), indexing="ij")
    np.testing.assert_array_equal(window, (cols * 4 + 2 + rows).astype(np.float32))
    # the file is 64 MB, a chunk of whole lines 4 MB, the window 360 kB
    assert peak < 2 << 20, f"peak {peak / 2**20:.1f} MB"


@pytest.mark.parametrize("engine", ["h5netcdf", "scipy"])
def test_netcdf_lazy_equals_eager(tmp_path: Path, monkeypatch, engine: str) -> None:
    import io_adapters.hyperspectral as hyperspectral

    monkeypatch.setattr(hyperspectral, "CHUNK_VALUES", 100)
    rng = np.random.default_rng(5)
    cube = rng.random((4, 30, 7)).astype(np.float32)  # stored as (wavelength, lat, lon)
    ds = xr.Dataset(
        {"reflectance": (("wavelength", "lat", "lon"), cube)},
        coords={"wavelength": [450.0, 550.0, 650.0, 750.0], "lat": np.linspace(10, 9, 30),
                "lon": np.linspace(20, 20.6, 7)},
    )
    path = tmp_path / "cube.nc"
    encoding = {"reflectance": {"chunksizes": (4, 3, 7)}} if engine == "h5netcdf" else None
    ds.to_netcdf(path, engine=engine, encoding=encoding)
    eager, lazy = read_netcdf(path), read_netcdf(path, lazy=True)
    assert eager.chunks is None and lazy.chunks is not None
    rows = lazy.chunks[0]
    assert len(rows) > 1 and lazy.chunks[1:] == ((7,), (4,))
    if engine == "h5netcdf":  # whole chunks of the file's rows
        assert all(n % 3 == 0 for n in rows[:-1])
    xr.testing.assert_identical(lazy.load(), eager)
    np.testing.assert_array_equal(eager.values, np.transpose(cube, (1, 2, 0)))


def test_stack_dates_keeps_lazy_dates_lazy(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    first, second = (rng.integers(0, 99, size=(6, 5, 3)).astype("i2") for _ in range(2))
    paths = [write_envi(tmp_path, f"{name}.img", cube, interleave="bil")
             for name, cube in (("t1", first), ("t2", second))]
    eager = stack_dates([read_envi(p) for p in paths])
    lazy = stack_dates([read_envi(p, lazy=True) for p in paths])
    assert eager.chunks is None and lazy.chunks is not None
    xr.testing.assert_identical(lazy.compute(), eager)


def test_load_data_passes_lazy(tmp_path: Path) -> None:
    from io_adapters.open_data import load_data

    cube = np.arange(60, dtype=np.float32).reshape(4, 5, 3)
    data = write_envi(tmp_path, "cube.img", cube)
    assert load_data(data, lazy=True).chunks is not None
    assert load_data(data).chunks is None
    scipy.io.savemat(tmp_path / "cube.mat", {"cube": cube})
    with pytest.raises(DataError, match=r"\['lazy'\] do not apply to read_mat"):
        load_data(tmp_path / "cube.mat", lazy=True)
