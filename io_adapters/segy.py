"""SEG-Y post-stack volumes in and out (segyio).

Reading returns an ``xarray.DataArray`` with dims ``(iline, xline, samples)`` whatever the
trace order of the file; writing copies every header of a source file so that a prediction
opens in OpendTect or Petrel exactly where the seismic was.

One read path serves regular, crossline-sorted and incomplete surveys: the file is opened
with ``ignore_geometry=True`` and the inline/crossline numbers of every trace are read
from the chosen header bytes, so the grid is built here rather than by segyio. That is
what lets missing traces be placed (``fill_missing``) and bad byte locations be reported
in words instead of segyio's "unable to find sorting".
"""

from __future__ import annotations

import hashlib
import math
import os
import struct
import textwrap
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import segyio
import xarray as xr

from .atomic import atomic_output
from .errors import DataError, warn_data, warn_non_finite

_TEXT_HEADER_BYTES = 3200
_FILE_HEADER_BYTES = 3600  # textual + binary header
_TRACE_HEADER_BYTES = 240
_COORD_SCALAR_BYTE = 71  # SourceGroupScalar, applies to CDP_X/CDP_Y too
_CDP_X_BYTE = 181
_CDP_Y_BYTE = 185

# bytes per sample for each SEG-Y format code (rev 2 table)
_BYTES_PER_SAMPLE = {1: 4, 2: 4, 3: 2, 4: 4, 5: 4, 6: 8, 7: 3, 8: 1, 9: 8, 10: 4, 11: 2,
                     12: 8, 15: 3, 16: 1}
_WRITE_FORMATS = {1: "IBM float", 5: "IEEE float"}

# traces per chunk are chosen so a chunk holds about this many samples (64 MB of float32)
_CHUNK_SAMPLES = 1 << 24

# below this fraction of live grid positions the header bytes almost surely are not
# inline/crossline numbers (e.g. trace sequence numbers give one trace per "inline")
_MIN_LIVE_FRACTION = 0.25

_HOW_TO_SET_BYTES = (
    "set the byte locations of the inline and crossline numbers with the iline=/xline= "
    "arguments (in the app: the inline/crossline byte-location fields); common pairs are "
    "189/193 (SEG-Y rev 1 standard), 9/21 and 5/21"
)


@dataclass(frozen=True)
class _Layout:
    """What the file's own header says about its size, checked against the file size."""

    endian: str
    data_format: int
    n_samples: int
    ext_headers: int
    n_traces: int


@dataclass(frozen=True)
class _Geometry:
    """The regular (iline, xline) grid and where each trace of the file sits on it."""

    ilines: np.ndarray
    xlines: np.ndarray
    il_idx: np.ndarray  # per trace, index into ilines
    xl_idx: np.ndarray  # per trace, index into xlines
    live: np.ndarray  # (n_iline, n_xline) bool, True where the file has a trace
    sorting: str  # "iline" when inline numbers change slowest in the file, else "xline"

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.ilines), len(self.xlines)


# ----------------------------------------------------------------------------- reading


def read_segy(
    path: str | Path,
    *,
    iline: int = 189,
    xline: int = 193,
    fill_missing: bool = False,
    progress: Callable[[float], None] | None = None,
    cache_dir: str | Path | None = None,
) -> xr.DataArray:
    """Read a post-stack 3D SEG-Y volume as a DataArray with dims (iline, xline, samples).

    Values are float32 (IBM/IEEE float and integer formats, big- or little-endian files).
    Coordinates: ``iline``/``xline`` numbers, ``samples`` (ms, including the delay), 2D
    ``cdp_x``/``cdp_y`` with the byte-71 scalar applied when the headers carry them, and a
    boolean ``live`` on (iline, xline) that is False where a missing trace was filled.

    Attrs: kind, vertical_unit ("ms"; SEG-Y rev 1 has no reliable depth flag), sample_interval,
    text_header, data_format, iline_byte, xline_byte, sorting ("iline"/"xline", the file's
    trace order), missing_traces, source_path.

    ``fill_missing`` places the traces of an incomplete survey on the full grid and fills the
    gaps with zeros; duplicate positions are always an error. ``progress`` is called with a
    fraction in [0, 1] at the start, after each chunk of traces and at the end.
    ``cache_dir`` keeps the cube as a .npy keyed by path, size and modification time; a read
    that hits the cache returns a read-only memory map.

    Raises DataError naming the file for anything that is not a readable regular survey.
    """
    src = Path(path).expanduser().resolve()
    iline, xline = _check_byte(iline, "iline"), _check_byte(xline, "xline")
    report = progress if progress is not None else _no_progress
    report(0.0)
    layout = _probe(src)
    with _open(src, layout) as f:
        geom = _geometry(f, src, iline, xline, allow_missing=fill_missing)
        shape = (*geom.shape, layout.n_samples)
        if cache_dir is None:
            values = np.zeros(shape, dtype=np.float32)
            _fill_cube(f, geom, values, report)
        else:
            values = _cached_cube(f, src, geom, shape, iline, xline, Path(cache_dir), report)
        coords = _coords(f, geom)
        attrs = _attrs(f, src, layout, geom, iline, xline)
    _warn_if_suspect(values, src, layout.data_format)
    report(1.0)
    return xr.DataArray(
        values, dims=("iline", "xline", "samples"), coords=coords, attrs=attrs, name="amplitude"
    )


# how many samples the plausibility checks look at (spread evenly over the cube)
_CHECK_SAMPLES = 1 << 18


def _warn_if_suspect(values: np.ndarray, src: Path, data_format: int) -> None:
    """DataWarning for samples that read but are wrong: NaN/inf, or IBM floats in a file
    whose header says IEEE (format 5)."""
    sample = np.asarray(values.reshape(-1)[:: max(1, values.size // _CHECK_SAMPLES)])
    warn_non_finite(sample, src, what="checked samples")
    if data_format == 5 and _looks_like_ibm(sample):
        ieee = sample[np.isfinite(sample)]
        ibm = _ibm_to_float(sample.view(np.uint32))
        warn_data(
            f"{src}: the binary header says IEEE floats (format 5) but the samples look like "
            f"IBM floats: read as IEEE they span {ieee.min():.4g} to {ieee.max():.4g}, as IBM "
            f"{ibm.min():.4g} to {ibm.max():.4g}; if the IBM range is the right one, set the "
            "format code (bytes 3225-3226) to 1 and read the file again"
        )


def _looks_like_ibm(sample: np.ndarray) -> bool:
    """IBM floats are normalised: the top hex digit of the fraction (bits 23-20) is never 0.
    Read as IEEE, those bits are the exponent's last bit and the mantissa's top three, which
    are all 0 for about 1 in 16 continuous values. No such value among many distinct ones
    means IBM; few distinct values (class maps, constants) prove nothing."""
    bits = sample.view(np.uint32)
    nonzero = bits[(bits & 0x7FFFFFFF) != 0]
    if nonzero.size < 1000 or np.unique(nonzero[:20000]).size < 256:
        return False
    return not np.any((nonzero >> 20) & 0xF == 0)


def _ibm_to_float(bits: np.ndarray) -> np.ndarray:
    """IBM System/360 single precision (sign, base-16 exponent - 64, 24-bit fraction)."""
    sign = np.where(bits >> 31, -1.0, 1.0)
    exponent = ((bits >> 24) & 0x7F).astype(np.int64) - 64
    fraction = (bits & 0xFFFFFF).astype(np.float64) / float(1 << 24)
    return sign * fraction * np.power(16.0, exponent)


def _no_progress(_fraction: float) -> None:
    return None


def _check_byte(byte: int, which: str) -> int:
    """The byte location must start a trace header field segyio knows."""
    known = {int(b) for b in segyio.tracefield.keys.values()}
    try:
        value = int(byte)
    except (TypeError, ValueError):
        value = None
    if value not in known:
        raise DataError(
            f"{which} byte {byte!r} is not the start of a SEG-Y trace header field; "
            f"use one of the standard field positions (189 and 193 for SEG-Y rev 1)"
        )
    return value


def _probe(src: Path) -> _Layout:
    """Check the binary header against the file size before segyio sees the file.

    segyio's own errors for these cases ("I/O operation failed") do not say what is
    wrong, and the byte order is decided here from the format code, which is a small
    number in the right byte order and a large one in the wrong.
    """
    if not src.is_file():
        raise DataError(f"{src} does not exist or is not a file; check the path")
    size = src.stat().st_size
    if size < _FILE_HEADER_BYTES:
        raise DataError(
            f"{src} is not a SEG-Y file (only {size} bytes; a SEG-Y file starts with a "
            f"{_FILE_HEADER_BYTES}-byte header); choose a SEG-Y file"
        )
    with src.open("rb") as fh:
        header = fh.read(_FILE_HEADER_BYTES)
    codes = {}
    for endian, mark in (("big", ">"), ("little", "<")):
        codes[endian] = struct.unpack_from(mark + "h", header, 3224)[0]
        if codes[endian] in _BYTES_PER_SAMPLE:
            break
    else:
        raise DataError(
            f"{src} is not a SEG-Y file (binary header format code {codes['big']} is not a "
            f"SEG-Y sample format); check that the file is SEG-Y and not SU, SEG-D or an archive"
        )
    fmt = codes[endian]
    n_samples = struct.unpack_from(mark + "H", header, 3220)[0]
    if n_samples == 0:
        # rev 2 keeps counts above 65535 in the extended sample count
        n_samples = max(struct.unpack_from(mark + "i", header, 3268)[0], 0)
    if n_samples == 0:
        raise DataError(
            f"{src} is not a SEG-Y file (binary header sample count 0); check that the file is "
            f"SEG-Y, or fix its binary header (bytes 3221-3222) with a SEG-Y editor"
        )
    ext_headers = struct.unpack_from(mark + "h", header, 3504)[0]
    if ext_headers < 0:
        raise DataError(
            f"{src} declares a variable number of extended text headers, which is not "
            f"supported; export it again with a fixed number of text headers"
        )
    header_bytes = _FILE_HEADER_BYTES + ext_headers * _TEXT_HEADER_BYTES
    trace_bytes = _TRACE_HEADER_BYTES + n_samples * _BYTES_PER_SAMPLE[fmt]
    data_bytes = size - header_bytes
    if data_bytes < trace_bytes:
        raise DataError(
            f"{src} is not a SEG-Y file or has no traces ({size} bytes, but the headers alone "
            f"take {header_bytes} and one trace of {n_samples} samples takes {trace_bytes})"
        )
    if data_bytes % trace_bytes:
        n_traces = math.ceil(data_bytes / trace_bytes)
        raise DataError(
            f"{src} is truncated: expected {header_bytes + n_traces * trace_bytes} bytes for "
            f"{n_traces} traces of {n_samples} samples, found {size} bytes; copy or download "
            f"the file again (or its binary header sample count is wrong)"
        )
    return _Layout(endian, fmt, n_samples, ext_headers, data_bytes // trace_bytes)


@contextmanager
def _open(src: Path, layout: _Layout, *, mmap: bool = True) -> Iterator[segyio.SegyFile]:
    """Open without geometry (built by _geometry), memory-mapped where the system allows.

    ``mmap=False`` for passes over files larger than memory: every page a map touches
    stays in the process's resident set until the file is closed.
    """
    try:
        f = segyio.open(str(src), "r", ignore_geometry=True, endian=layout.endian)
    except (RuntimeError, OSError, ValueError) as err:
        raise DataError(
            f"{src} could not be read as SEG-Y ({err}); check that the file is a complete "
            f"SEG-Y file"
        ) from err
    with f:
        if mmap:
            f.mmap()  # falls back to ordinary reads by itself when mapping fails
        if f.tracecount != layout.n_traces or len(f.samples) != layout.n_samples:
            raise DataError(
                f"{src} is not a consistent SEG-Y file (binary header says {layout.n_samples} "
                f"samples per trace, the traces hold {len(f.samples)}); check the file"
            )
        yield f


def _geometry(
    f: segyio.SegyFile, src: Path, iline: int, xline: int, *, allow_missing: bool
) -> _Geometry:
    """Put every trace on the grid of unique inline x crossline numbers, or say why not."""
    where = f"iline byte {iline} / xline byte {xline}"
    il_numbers = np.asarray(f.attributes(iline)[:], dtype=np.int64)
    xl_numbers = np.asarray(f.attributes(xline)[:], dtype=np.int64)
    ilines, il_idx = np.unique(il_numbers, return_inverse=True)
    xlines, xl_idx = np.unique(xl_numbers, return_inverse=True)
    n_traces, grid = f.tracecount, len(ilines) * len(xlines)
    counts = np.bincount(il_idx * len(xlines) + xl_idx, minlength=grid)
    duplicates = int(n_traces - np.count_nonzero(counts))
    if duplicates:
        raise DataError(
            f"{src}: {duplicates} of {n_traces} traces repeat an inline/crossline pair read at "
            f"{where}; the byte locations are probably wrong, or the file is pre-stack "
            f"(several traces per position), which is not supported; {_HOW_TO_SET_BYTES}"
        )
    missing = grid - n_traces
    if missing and n_traces < _MIN_LIVE_FRACTION * grid:
        raise DataError(
            f"{src}: the numbers read at {where} do not form an inline/crossline grid "
            f"({len(ilines)} inlines x {len(xlines)} crosslines, but only {n_traces} traces); "
            f"the byte locations are probably wrong; {_HOW_TO_SET_BYTES}"
        )
    if missing and not allow_missing:
        raise DataError(
            f"{src}: {missing} of {grid} inline/crossline positions have no trace ({where}). "
            f"If these byte locations are right, read with fill_missing=True (the app's 'fill "
            f"missing traces' option) to put dead (zero) traces there; otherwise "
            f"{_HOW_TO_SET_BYTES}"
        )
    live = (counts > 0).reshape(len(ilines), len(xlines))
    il_changes = np.count_nonzero(np.diff(il_idx))
    xl_changes = np.count_nonzero(np.diff(xl_idx))
    sorting = "iline" if il_changes <= xl_changes else "xline"
    return _Geometry(ilines, xlines, il_idx, xl_idx, live, sorting)


def _chunks(n_traces: int, n_samples: int) -> Iterator[tuple[int, int]]:
    step = max(1, _CHUNK_SAMPLES // max(n_samples, 1))
    for start in range(0, n_traces, step):
        yield start, min(n_traces, start + step)


def _fill_cube(
    f: segyio.SegyFile, geom: _Geometry, out: np.ndarray, report: Callable[[float], None]
) -> None:
    """Copy the traces chunk by chunk into their grid positions (any trace order)."""
    n = f.tracecount
    for start, stop in _chunks(n, out.shape[2]):
        out[geom.il_idx[start:stop], geom.xl_idx[start:stop]] = f.trace.raw[start:stop]
        report(stop / n)


def _cached_cube(
    f: segyio.SegyFile,
    src: Path,
    geom: _Geometry,
    shape: tuple[int, int, int],
    iline: int,
    xline: int,
    cache_dir: Path,
    report: Callable[[float], None],
) -> np.ndarray:
    """The cube from (or, first time, into) a .npy in cache_dir, as a read-only memory map."""
    stat = src.stat()
    key = hashlib.sha256(
        f"{src}|{stat.st_size}|{stat.st_mtime_ns}|{iline}|{xline}".encode()
    ).hexdigest()[:20]
    cache_file = cache_dir / f"{src.stem}-{key}.npy"
    if cache_file.is_file():
        try:
            cached = np.load(cache_file, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError):
            cached = None  # unreadable cache: rebuild it below
        if cached is not None and cached.shape == shape and cached.dtype == np.float32:
            return cached
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataError(
            f"cannot create the cache folder {cache_dir}: {err.strerror}; choose another "
            f"cache_dir or none"
        ) from err
    with atomic_output(cache_file) as tmp:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=shape)
        _fill_cube(f, geom, out, report)
        out.flush()
        del out  # closes the map before the rename
    return np.load(cache_file, mmap_mode="r", allow_pickle=False)


def _coords(f: segyio.SegyFile, geom: _Geometry) -> dict:
    coords: dict = {
        "iline": ("iline", geom.ilines.astype(np.int64)),
        "xline": ("xline", geom.xlines.astype(np.int64)),
        "samples": ("samples", np.asarray(f.samples, dtype=np.float64)),
        "live": (("iline", "xline"), geom.live),
    }
    x = np.asarray(f.attributes(_CDP_X_BYTE)[:], dtype=np.float64)
    y = np.asarray(f.attributes(_CDP_Y_BYTE)[:], dtype=np.float64)
    if np.any(x) or np.any(y):
        scalar = np.asarray(f.attributes(_COORD_SCALAR_BYTE)[:], dtype=np.float64)
        for name, raw in (("cdp_x", x), ("cdp_y", y)):
            grid = np.full(geom.shape, np.nan)
            grid[geom.il_idx, geom.xl_idx] = _apply_scalar(raw, scalar)
            coords[name] = (("iline", "xline"), grid)
    return coords


def _apply_scalar(raw: np.ndarray, scalar: np.ndarray) -> np.ndarray:
    """SEG-Y coordinate scalar: negative divides, positive multiplies, zero means 1."""
    divisor = np.where(scalar < 0, -scalar, 1.0)
    factor = np.where(scalar > 0, scalar, 1.0)
    return raw * factor / divisor


def _attrs(
    f: segyio.SegyFile, src: Path, layout: _Layout, geom: _Geometry, iline: int, xline: int
) -> dict:
    return {
        "kind": "seismic",
        "vertical_unit": "ms",
        "sample_interval": float(segyio.tools.dt(f, fallback_dt=4000.0)) / 1000.0,
        "text_header": _text_header(f),
        "data_format": int(layout.data_format),
        "iline_byte": int(iline),
        "xline_byte": int(xline),
        "sorting": geom.sorting,
        "missing_traces": int(geom.live.size - np.count_nonzero(geom.live)),
        "source_path": str(src),
    }


def _text_header(f: segyio.SegyFile) -> str:
    """All text headers as 80-character lines (segyio has already turned EBCDIC to ASCII)."""
    lines = []
    for i in range(1 + f.ext_headers):
        raw = bytes(f.text[i]).decode("ascii", errors="replace").replace("\x00", " ")
        lines += [raw[k : k + 80].rstrip() for k in range(0, len(raw), 80)]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- writing




def _check_write_format(sample_format: int) -> int:
    if sample_format not in _WRITE_FORMATS:
        choices = ", ".join(f"{k} ({v})" for k, v in _WRITE_FORMATS.items())
        raise DataError(f"sample_format {sample_format!r} cannot be written; use {choices}")
    return int(sample_format)


def write_segy_like(
    source: str | Path | xr.DataArray,
    values: np.ndarray | xr.DataArray,
    path: str | Path,
    *,
    sample_format: int = 5,
    iline: int | None = None,
    xline: int | None = None,
) -> Path:
    """Write ``values`` on the grid of ``source`` as a SEG-Y with all of source's headers.

    Text header(s), binary header and every trace header are copied and the traces keep
    the source's order (a crossline-sorted source stays crossline-sorted); only the sample
    format changes (5 = IEEE float, 1 = IBM float). ``values`` has the shape
    (n_iline, n_xline, n_samples) of ``read_segy(source, fill_missing=True)``; positions
    without a source trace are skipped. Dask-backed values are read one chunk of traces
    at a time, so an output larger than memory streams through. ``source`` may be the
    DataArray that read_segy returned (its source_path and byte locations are used).
    Returns the written path.
    """
    src, iline, xline = _source_of(source, iline, xline)
    fmt = _check_write_format(sample_format)
    data = _as_grid_array(values)
    layout = _probe(src)
    with _open(src, layout, mmap=False) as f:  # only headers are read, of any size of file
        geom = _geometry(f, src, iline, xline, allow_missing=True)
        expected = (*geom.shape, layout.n_samples)
        if data.shape != expected:
            raise DataError(
                f"values of shape {data.shape} do not fit the grid of {src}, which is "
                f"{expected} (inlines, crosslines, samples); predict on the whole volume"
            )
        spec = segyio.spec()
        spec.format = fmt
        spec.samples = np.asarray(f.samples)
        spec.tracecount = f.tracecount
        spec.ext_headers = f.ext_headers
        spec.endian = layout.endian
        spec.iline, spec.xline = iline, xline
        def traces(start: int, stop: int) -> np.ndarray:
            return _traces_at(data, geom.il_idx[start:stop], geom.xl_idx[start:stop])

        with atomic_output(path) as tmp:
            with segyio.create(str(tmp), spec) as dst:
                for i in range(1 + f.ext_headers):
                    dst.text[i] = f.text[i]
                dst.bin = f.bin
                dst.bin.update(format=fmt)
                if fmt != 5:  # IBM floats: segyio converts, one trace at a time
                    for start, stop in _chunks(f.tracecount, layout.n_samples):
                        dst.trace[start:stop] = np.ascontiguousarray(traces(start, stop),
                                                                     dtype=np.float32)
            # IEEE floats go in with the headers, a chunk of traces per write
            _copy_trace_headers(src, layout, tmp, traces if fmt == 5 else None)
    return Path(path)


def _copy_trace_headers(
    src: Path, layout: _Layout, dst: Path,
    samples: Callable[[int, int], np.ndarray] | None = None,
) -> None:
    """Copy all 240 bytes of every trace header verbatim from src into dst.

    Byte for byte through memory maps: exact (unassigned and vendor bytes included) and
    much faster than segyio's per-trace header dictionaries. Both files share the header
    layout and byte order; only the sample block size differs (dst holds 4-byte floats).
    With ``samples`` (traces start..stop as float32) the IEEE samples are written in the
    same pass, and ``dst`` (headers only so far) is first extended to its full size.
    """
    offset = _FILE_HEADER_BYTES + layout.ext_headers * _TEXT_HEADER_BYTES
    src_record = _record(layout.n_samples * _BYTES_PER_SAMPLE[layout.data_format])
    mark = ">" if layout.endian == "big" else "<"
    dst_record = np.dtype([("header", f"V{_TRACE_HEADER_BYTES}"),
                           ("samples", f"{mark}f4", (layout.n_samples,))])
    if samples is not None:
        os.truncate(dst, offset + layout.n_traces * dst_record.itemsize)
    # one chunk of traces mapped at a time: a map of the whole file would keep every page
    # it touched (all of them) resident until the end
    for start, stop in _chunks(layout.n_traces, layout.n_samples):
        shape = (stop - start,)
        source = np.memmap(src, dtype=src_record, mode="r", shape=shape,
                           offset=offset + start * src_record.itemsize)
        target = np.memmap(dst, dtype=dst_record, mode="r+", shape=shape,
                           offset=offset + start * dst_record.itemsize)
        target["header"] = source["header"]
        if samples is not None:
            target["samples"] = samples(start, stop)
        target.flush()
        del source, target  # unmap before the next chunk (and before the rename)


def _record(sample_bytes: int) -> np.dtype:
    """One trace as raw bytes: 240-byte header, then the samples."""
    return np.dtype([("header", f"V{_TRACE_HEADER_BYTES}"), ("samples", f"V{sample_bytes}")])


def _source_of(
    source: str | Path | xr.DataArray, iline: int | None, xline: int | None
) -> tuple[Path, int, int]:
    """Source file and byte locations, from a path or from read_segy's DataArray."""
    if isinstance(source, xr.DataArray):
        if "source_path" not in source.attrs:
            raise DataError(
                "the source DataArray has no 'source_path' attribute; pass the SEG-Y path or "
                "the DataArray that read_segy returned"
            )
        path = Path(source.attrs["source_path"])
        iline = source.attrs.get("iline_byte", 189) if iline is None else iline
        xline = source.attrs.get("xline_byte", 193) if xline is None else xline
    else:
        path = Path(source).expanduser().resolve()
    iline = 189 if iline is None else iline
    xline = 193 if xline is None else xline
    return path, _check_byte(iline, "iline"), _check_byte(xline, "xline")


def _as_grid_array(values: np.ndarray | xr.DataArray):
    """A numpy array, or a Dask array left lazy (read a trace chunk at a time)."""
    if isinstance(values, xr.DataArray):
        if set(values.dims) == {"iline", "xline", "samples"}:
            values = values.transpose("iline", "xline", "samples")
        values = values.data
    return values if hasattr(values, "dask") else np.asarray(values)


def _traces_at(data, il_idx: np.ndarray, xl_idx: np.ndarray) -> np.ndarray:
    """The traces at grid positions (il_idx, xl_idx), reading only their bounding box.

    Traces of a chunk of a sorted file lie on a few inlines (or crosslines), so a lazy
    (Dask) ``data`` is read a box of that size at a time, never whole.
    """
    i0, x0 = int(il_idx.min()), int(xl_idx.min())
    box = np.asarray(data[i0 : int(il_idx.max()) + 1, x0 : int(xl_idx.max()) + 1])
    return box[il_idx - i0, xl_idx - x0]


# ---------------------------------------------------------------------------- creating


def create_segy(
    path: str | Path,
    volume: np.ndarray,
    *,
    ilines: Sequence[int],
    xlines: Sequence[int],
    sample_interval_ms: float,
    cdp_x: np.ndarray | None = None,
    cdp_y: np.ndarray | None = None,
    text_header: str = "",
    sample_format: int = 5,
    delay_ms: float = 0.0,
) -> Path:
    """Create an inline-sorted 3D post-stack SEG-Y from a (n_iline, n_xline, n_samples) array.

    Trace headers get INLINE_3D (189), CROSSLINE_3D (193), CDP_X/CDP_Y (181/185) with a
    coordinate scalar in byte 71 (-100, i.e. cm, unless the coordinates are too large),
    TRACE_SAMPLE_COUNT, TRACE_SAMPLE_INTERVAL (microseconds) and DelayRecordingTime (whole
    ms); the binary header the interval, sample count and format (5 IEEE, 1 IBM). The
    40-line text header ("C 1 " ...) holds ``text_header``, wrapped at 76 characters.
    Returns the written path.
    """
    fmt = _check_write_format(sample_format)
    vol = np.asarray(volume)
    il = _axis_numbers(ilines, "ilines")
    xl = _axis_numbers(xlines, "xlines")
    if vol.ndim != 3 or vol.shape[:2] != (len(il), len(xl)) or vol.shape[2] < 1:
        raise DataError(
            f"volume of shape {vol.shape} does not match {len(il)} ilines x {len(xl)} xlines "
            f"x samples; pass a 3D array shaped (len(ilines), len(xlines), n_samples)"
        )
    interval_us, delay = _timing(sample_interval_ms, delay_ms)
    coords = _scaled_coords(cdp_x, cdp_y, vol.shape[:2])
    text = _make_text_header(text_header)

    n_il, n_xl, ns = vol.shape
    spec = segyio.spec()
    spec.format = fmt
    spec.samples = delay + np.arange(ns) * interval_us / 1000.0
    spec.tracecount = n_il * n_xl
    spec.iline, spec.xline = 189, 193
    with atomic_output(path) as tmp, segyio.create(str(tmp), spec) as dst:
        dst.text[0] = text
        bf = segyio.BinField
        dst.bin.update({
            bf.Interval: interval_us, bf.IntervalOriginal: interval_us,
            bf.Samples: ns, bf.SamplesOriginal: ns, bf.Format: fmt,
            bf.SortingCode: 4,  # SEG-Y code for horizontally stacked (post-stack) data
            bf.MeasurementSystem: 1 if coords else 0,  # 1 = metres
            bf.SEGYRevision: 1, bf.TraceFlag: 1,  # rev 1, fixed-length traces
        })
        for i in range(n_il):
            for j in range(n_xl):
                k = i * n_xl + j
                header = {
                    segyio.TraceField.TRACE_SEQUENCE_LINE: k + 1,
                    segyio.TraceField.TRACE_SEQUENCE_FILE: k + 1,
                    segyio.TraceField.TraceIdentificationCode: 1,
                    segyio.TraceField.INLINE_3D: int(il[i]),
                    segyio.TraceField.CROSSLINE_3D: int(xl[j]),
                    segyio.TraceField.TRACE_SAMPLE_COUNT: ns,
                    segyio.TraceField.TRACE_SAMPLE_INTERVAL: interval_us,
                    segyio.TraceField.DelayRecordingTime: delay,
                }
                if coords:
                    scalar, xs, ys = coords
                    header[segyio.TraceField.SourceGroupScalar] = scalar
                    header[segyio.TraceField.CDP_X] = int(xs[i, j])
                    header[segyio.TraceField.CDP_Y] = int(ys[i, j])
                dst.header[k] = header
            dst.trace[i * n_xl : (i + 1) * n_xl] = np.ascontiguousarray(vol[i], dtype=np.float32)
    return Path(path)


def _axis_numbers(numbers: Sequence[int], name: str) -> np.ndarray:
    arr = np.asarray(numbers)
    if arr.ndim != 1 or arr.size == 0 or not np.issubdtype(arr.dtype, np.integer):
        raise DataError(f"{name} must be a non-empty sequence of integers, got {numbers!r}")
    if len(np.unique(arr)) != arr.size:
        raise DataError(f"{name} contains repeated numbers; give each line its own number")
    if arr.min() < -(2**31) or arr.max() >= 2**31:
        raise DataError(f"{name} must fit in 32-bit SEG-Y header fields")
    return arr.astype(np.int64)


def _timing(sample_interval_ms: float, delay_ms: float) -> tuple[int, int]:
    """Sample interval in whole microseconds and delay in whole ms, as SEG-Y stores them."""
    interval_us = round(float(sample_interval_ms) * 1000.0)
    if not 0 < interval_us <= 65535:
        raise DataError(
            f"sample_interval_ms={sample_interval_ms} cannot be stored in SEG-Y (between "
            f"0.001 and 65.535 ms)"
        )
    delay = round(float(delay_ms))
    if abs(delay - float(delay_ms)) > 1e-9 or not -(2**15) <= delay < 2**15:
        raise DataError(
            f"delay_ms={delay_ms} cannot be stored in SEG-Y (a whole number of ms between "
            f"-32768 and 32767)"
        )
    return interval_us, delay


def _scaled_coords(
    cdp_x: np.ndarray | None, cdp_y: np.ndarray | None, shape: tuple[int, int]
) -> tuple[int, np.ndarray, np.ndarray] | None:
    """Integer header coordinates with the finest scalar (-100, -10, 1) that fits int32."""
    if cdp_x is None and cdp_y is None:
        return None
    if cdp_x is None or cdp_y is None:
        raise DataError("give both cdp_x and cdp_y, or neither")
    x, y = np.asarray(cdp_x, dtype=np.float64), np.asarray(cdp_y, dtype=np.float64)
    if x.shape != shape or y.shape != shape:
        raise DataError(
            f"cdp_x {x.shape} and cdp_y {y.shape} must have the shape (len(ilines), "
            f"len(xlines)) = {shape}"
        )
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise DataError("cdp_x and cdp_y must be finite numbers everywhere")
    largest = max(np.abs(x).max(), np.abs(y).max())
    for scalar, factor in ((-100, 100.0), (-10, 10.0), (1, 1.0)):
        if largest * factor < 2**31 - 1:
            return scalar, np.rint(x * factor), np.rint(y * factor)
    raise DataError(f"cdp coordinates up to {largest} do not fit in 32-bit SEG-Y headers")


def _make_text_header(text: str) -> bytes:
    """40 lines of 80 characters, "C 1 " to "C40 ", holding ``text`` wrapped at 76."""
    body: list[str] = []
    for line in text.encode("ascii", errors="replace").decode("ascii").splitlines():
        body += textwrap.wrap(line, 76) or [""]
    if len(body) > 40:
        raise DataError(
            f"text_header needs {len(body)} lines of 76 characters; SEG-Y has room for 40, "
            f"shorten it"
        )
    body += [""] * (40 - len(body))
    return "".join(f"C{n:>2} {line}".ljust(80) for n, line in enumerate(body, 1)).encode("ascii")
