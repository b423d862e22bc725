"""The built-in demo survey: a synthetic 3D post-stack seismic cube with known geology.

The geology is built in "relative geologic time" (paleo-depth, in samples): a 1D stratigraphic
column of beds is laid down flat, then folded (smooth lateral undulation, domed over the salt),
then cut by two normal faults (a small graben), and finally intruded by a salt diapir. For every
voxel we compute its paleo-depth ``tau``; the stratigraphic unit and the acoustic impedance are
read from the 1D column at ``tau``. Reflectivity is the vertical derivative of log impedance,
convolved with a Ricker wavelet, plus band-limited noise.

Classes (top to bottom): 0 Overburden (medium-contrast layering), 1 Upper reservoir (strong
sand/shale alternation), 2 Shale (nearly transparent), 3 Basement (high-impedance thin beds),
and 4 Salt (intrusive, strong top, weak chaotic interior).

Everything is deterministic for a given shape and seed, pure numpy/scipy, and takes well under
a few seconds for the default 128^3 cube. :func:`build_demo_survey` writes it as SEG-Y plus the
ground truth, a borehole interval table and a class table; :func:`ensure_demo` does that once
into ``assets/generated/demo`` (git-ignored), which is where the app and the CLI look.

Run ``python -m assets.demo_survey [--out DIR] [--shape N N N] [--seed S]`` to build it by hand.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from io_adapters.atomic import atomic_output
from io_adapters.errors import DataError

__all__ = [
    "CLASS_COLOURS",
    "CLASS_NAMES",
    "DEFAULT_DEMO_DIR",
    "DemoFiles",
    "DemoSurvey",
    "build_demo_survey",
    "ensure_demo",
    "generate_demo_survey",
    "main",
]

CLASS_NAMES: tuple[str, ...] = ("Overburden", "Upper reservoir", "Shale", "Basement", "Salt")
CLASS_COLOURS: tuple[str, ...] = ("#f2c14e", "#e0632b", "#4f7cac", "#5b3f6e", "#3fbf7f")
SALT = 4

DEFAULT_DEMO_DIR: Path = Path(__file__).resolve().parent / "generated" / "demo"

# Bumped whenever the generator's output changes, so cached files on disk get rebuilt.
GENERATOR_VERSION = 2

RICKER_HZ = 30.0
SNR = 6.0  # RMS signal / RMS noise
TARGET_RMS = 1000.0  # amplitude scale of a typical float post-stack volume

# Survey geometry (a plausible North Sea style UTM grid).
FIRST_ILINE = 1000
FIRST_XLINE = 2000
ORIGIN_X = 605000.0
ORIGIN_Y = 6073000.0
BIN_M = 25.0
AZIMUTH_DEG = 30.0

# Unit tops in paleo-depth, as fractions of the number of samples.
UNIT_TOPS = (0.27, 0.50, 0.71)

_FILE_NAMES = {
    "segy": "demo.sgy",
    "units": "demo_units.npy",
    "wells": "demo_wells.csv",
    "classes": "demo_classes.json",
    "meta": "demo_meta.json",
}
WELL_COLUMNS = ("well", "iline", "xline", "x", "y", "top", "base", "class")


@dataclass(frozen=True, eq=False)
class DemoSurvey:
    """An in-memory synthetic survey (pure numpy).

    ``amplitude`` and ``units`` have dims (iline, xline, samples); ``cdp_x``/``cdp_y`` are
    (iline, xline) UTM coordinates in metres. ``wells`` has one row per borehole interval:
    ``well, iline, xline, x, y, top, base, class`` with ``top``/``base`` in ms and ``class`` the
    class name. Interval boundaries lie half-way between samples (except the first top and the
    last base, which are the first and last sample times), so each sample falls in exactly one
    interval whether a reader treats ``[top, base]`` as closed or half-open.
    """

    amplitude: np.ndarray
    units: np.ndarray
    ilines: np.ndarray
    xlines: np.ndarray
    samples_ms: np.ndarray
    cdp_x: np.ndarray
    cdp_y: np.ndarray
    class_names: tuple[str, ...]
    class_colours: tuple[str, ...]
    wells: list[dict]


@dataclass(frozen=True)
class DemoFiles:
    """Paths of a demo survey written by :func:`build_demo_survey`."""

    folder: Path
    segy: Path
    units: Path
    wells: Path
    classes: Path


# --------------------------------------------------------------------------- geology


def _check_shape(shape: Sequence[int]) -> tuple[int, int, int]:
    try:
        ni, nx, ns = (int(n) for n in shape)
    except (TypeError, ValueError) as err:
        raise DataError(
            f"demo survey shape {shape!r} is not three integers; give (n_iline, n_xline, "
            "n_samples), e.g. (128, 128, 128)"
        ) from err
    if ni < 16 or nx < 16 or ns < 32:
        raise DataError(
            f"demo survey shape {(ni, nx, ns)} is too small to hold the geology; use at least "
            "16 inlines, 16 crosslines and 32 samples"
        )
    return ni, nx, ns


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma) -> np.ndarray:
    """Gaussian-smoothed white noise rescaled to unit standard deviation."""
    field = ndimage.gaussian_filter(rng.standard_normal(shape), sigma, mode="reflect")
    return field / (field.std() + 1e-12)


def _stratigraphic_column(rng: np.random.Generator, ns: int, lo: float, hi: float, step: float):
    """Log impedance and unit id of a flat 1D column sampled every ``step`` on [lo, hi].

    Returns (tau grid, log-impedance trend, log-impedance deviation from the trend, unit id).
    Bed thicknesses are in samples (not fractions), so each unit keeps its seismic character
    relative to the wavelet whatever the cube's size.
    """
    tau = np.arange(lo, hi + step, step)
    tops = np.array(UNIT_TOPS) * ns
    unit = np.searchsorted(tops, tau, side="right").astype(np.int16)
    # Compaction trend, plus a step into the stiffer basement.
    trend = np.log(4.0e6) + 0.55 * np.clip(tau / ns, -0.5, 1.5) + 0.22 * (unit == 3)

    # (min, max) bed thickness in samples and how the bed impedances are drawn, per unit.
    def overburden(n):
        return rng.normal(0.0, 0.16, n)

    def reservoir(n):  # sand/shale alternation with strong contrasts
        signs = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
        return signs * rng.uniform(0.08, 0.15, n)

    def shale(n):  # nearly transparent
        return rng.normal(0.0, 0.012, n)

    def basement(n):  # thin beds: interference patterns
        return rng.normal(0.0, 0.06, n)

    recipes = [((4.0, 9.0), overburden), ((4.0, 8.0), reservoir), ((6.0, 12.0), shale),
               ((1.0, 2.5), basement)]
    dev = np.zeros_like(tau)
    bounds = np.concatenate([[lo], tops, [hi + step]])
    for u, ((tmin, tmax), draw) in enumerate(recipes):
        start, stop = bounds[u], bounds[u + 1]
        edges = [start]
        while edges[-1] < stop:
            edges.append(edges[-1] + rng.uniform(tmin, tmax))
        values = draw(len(edges) - 1)
        in_unit = (tau >= start) & (tau < stop)
        bed = np.clip(np.searchsorted(edges, tau[in_unit], side="right") - 1, 0, len(values) - 1)
        dev[in_unit] = values[bed]
    return tau, trend, dev, unit


def _fold_field(rng: np.random.Generator, u: np.ndarray, v: np.ndarray, ns: int) -> np.ndarray:
    """Smooth lateral undulation (samples): a few sinusoids plus two Gaussian bumps."""
    fold = np.zeros(np.broadcast_shapes(u.shape, v.shape))
    for amp in (0.06, 0.04, 0.025):
        angle = rng.uniform(0.0, np.pi)
        wavelength = rng.uniform(0.6, 1.3)
        phase = rng.uniform(0.0, 2.0 * np.pi)
        along = u * np.cos(angle) + v * np.sin(angle)
        fold += amp * ns * np.sin(2.0 * np.pi * along / wavelength + phase)
    for sign in (1.0, -1.0):
        cu, cv = rng.uniform(0.2, 0.8, 2)
        width = rng.uniform(0.15, 0.25)
        fold += sign * 0.04 * ns * np.exp(-((u - cu) ** 2 + (v - cv) ** 2) / (2 * width**2))
    return fold


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _geology(shape: tuple[int, int, int], rng: np.random.Generator):
    """Paleo-depth (in samples) of every voxel, the salt mask and its anti-aliased fraction."""
    ni, nx, ns = shape
    u = np.linspace(0.0, 1.0, ni)[:, None, None]
    v = np.linspace(0.0, 1.0, nx)[None, :, None]
    k = np.arange(ns, dtype=np.float64)[None, None, :]
    t = k / (ns - 1)

    # Salt diapir: a round-topped stock, slightly lobed in map view, widening with depth.
    cu = 0.5 + rng.uniform(-0.06, 0.06)
    cv = 0.70 + rng.uniform(-0.04, 0.04)
    radius = 0.14
    crest = 0.24 + rng.uniform(-0.03, 0.03)
    dome_height = 0.20
    du, dv = u - cu, v - cv
    dist = np.hypot(du, dv)  # (ni, nx, 1)
    theta = np.arctan2(dv, du)
    lobes = 1.0 + 0.10 * np.cos(2 * theta + rng.uniform(0, 2 * np.pi)) \
        + 0.05 * np.cos(3 * theta + rng.uniform(0, 2 * np.pi))
    widen = 0.8 + 0.45 * np.clip(t - crest, 0.0, 1.0)
    local_radius = radius * lobes * widen
    rho = dist / local_radius
    # Distance inside the salt, in grid cells, from its top (vertically) and its flank
    # (laterally); a one-cell linear ramp around zero gives an anti-aliased salt fraction
    # whose 0.5 level is the body's surface.
    below_top = (t - crest - dome_height * rho**2) * (ns - 1)
    inside_flank = (1.0 - rho) * local_radius * (min(ni, nx) - 1)
    salt_frac = np.clip(0.5 + np.minimum(below_top, inside_flank), 0.0, 1.0)
    salt = salt_frac > 0.5
    # Keep one face-connected body (grid discretisation can leave stray voxels at the rim).
    labels, n = ndimage.label(salt)
    if n > 1:
        sizes = ndimage.sum_labels(salt, labels, index=np.arange(1, n + 1))
        salt = labels == (1 + int(np.argmax(sizes)))
        salt_frac = np.where(salt, salt_frac, np.minimum(salt_frac, 0.5))

    # Folding, stronger at depth; layers dragged up around the salt with a rim syncline.
    depth_gain = 0.4 + 0.6 * t
    shift = _fold_field(rng, u, v, ns) * depth_gain
    drag = -0.09 * ns * np.exp(-((dist / (1.6 * radius)) ** 2))
    rim = 0.04 * ns * np.exp(-(((dist - 2.3 * radius) / (0.6 * radius)) ** 2))
    shift = shift + (drag + rim) * (0.3 + 0.7 * t)
    # Differential subsidence: units thicken gently towards high inlines.
    tau = (k - shift) * (1.0 + 0.08 * (u - 0.5))

    # Two normal faults striking roughly along the inline axis, dipping towards each other
    # (a graben). Throw dies out upwards (growth faults) and is applied after folding.
    for v0, dip_dir, throw in (
        (0.20 + rng.uniform(-0.03, 0.03), 1.0, max(4.0, 0.075 * ns)),
        (0.44 + rng.uniform(-0.03, 0.03), -1.0, 0.045 * ns),
    ):
        obliquity = rng.uniform(-0.08, 0.08)
        plane = dip_dir * (v - v0 - obliquity * (u - 0.5)) - 0.18 * (t - 0.5)
        hanging = plane > 0.0
        tau = tau - np.where(hanging, throw * _smoothstep((t - 0.05) / 0.3), 0.0)
    return tau, salt, salt_frac


def _ricker(freq_hz: float, dt_s: float) -> np.ndarray:
    half = int(np.ceil(1.5 / (freq_hz * dt_s)))
    tt = np.arange(-half, half + 1) * dt_s
    a = (np.pi * freq_hz * tt) ** 2
    wavelet = (1.0 - 2.0 * a) * np.exp(-a)
    # Truncation leaves a small DC component; removing it keeps every trace zero-mean.
    return wavelet - wavelet.mean()


# --------------------------------------------------------------------------- wells


def _well_positions(units: np.ndarray, n_wells: int, rng: np.random.Generator,
                    salt_wells: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """Vertical well locations: the salt wells first, the rest by farthest-point sampling.

    Candidates stay 12% away from the survey edges. If some class is still not penetrated,
    the last wells are moved onto traces that contain it (never a salt well).
    """
    ni, nx, _ = units.shape
    mi, mx = max(1, round(0.12 * ni)), max(1, round(0.12 * nx))
    ii, jj = np.meshgrid(np.arange(mi, ni - mi), np.arange(mx, nx - mx), indexing="ij")
    cand = np.stack([ii.ravel(), jj.ravel()], axis=1)
    scale = np.array([ni, nx], dtype=np.float64)
    jitter = rng.uniform(0.0, 0.02, len(cand))  # deterministic tie-breaking

    def distance_to(well: tuple[int, int]) -> np.ndarray:
        return np.hypot(*((cand - np.array(well, dtype=np.float64)) / scale).T)

    chosen = list(salt_wells)[:n_wells]
    nearest = np.full(len(cand), np.inf)
    for well in chosen:
        nearest = np.minimum(nearest, distance_to(well))
    while len(chosen) < n_wells:
        pick = int(np.argmax(nearest + jitter))
        chosen.append((int(cand[pick, 0]), int(cand[pick, 1])))
        nearest = np.minimum(nearest, distance_to(chosen[-1]))

    n_fixed = min(len(salt_wells), n_wells)
    replace_at = len(chosen) - 1  # never a salt well
    for cls in range(len(CLASS_NAMES)):
        if any((units[i, j] == cls).any() for i, j in chosen):
            continue
        has = np.flatnonzero((units[cand[:, 0], cand[:, 1]] == cls).any(axis=1))
        if has.size == 0 or replace_at < n_fixed:
            raise DataError(f"demo survey has no well through class {CLASS_NAMES[cls]}; "
                            "use a larger shape, more wells or another seed")
        pick = has[has.size // 2]
        chosen[replace_at] = (int(cand[pick, 0]), int(cand[pick, 1]))
        replace_at -= 1
    return chosen


def _well_intervals(units: np.ndarray, positions, ilines, xlines, samples_ms, cdp_x, cdp_y):
    """One row per run of equal class along each well's trace."""
    dt = float(samples_ms[1] - samples_ms[0])
    rows: list[dict] = []
    for n, (i, j) in enumerate(positions, start=1):
        trace = units[i, j]
        breaks = np.flatnonzero(np.diff(trace)) + 1
        starts = np.concatenate([[0], breaks])
        stops = np.concatenate([breaks, [len(trace)]])  # exclusive
        for a, b in zip(starts, stops, strict=True):
            top = float(samples_ms[a]) - (dt / 2 if a > 0 else 0.0)
            base = float(samples_ms[b - 1]) + (dt / 2 if b < len(trace) else 0.0)
            rows.append({
                "well": f"W-{n:02d}",
                "iline": int(ilines[i]),
                "xline": int(xlines[j]),
                "x": round(float(cdp_x[i, j]), 2),
                "y": round(float(cdp_y[i, j]), 2),
                "top": top,
                "base": base,
                "class": CLASS_NAMES[int(trace[a])],
            })
    return rows


# --------------------------------------------------------------------------- public API


def _grid(ni: int, nx: int) -> tuple[np.ndarray, np.ndarray]:
    """CDP coordinates of a 25 m bin grid rotated by AZIMUTH_DEG around the UTM origin."""
    az = np.deg2rad(AZIMUTH_DEG)
    i = np.arange(ni, dtype=np.float64)[:, None]
    j = np.arange(nx, dtype=np.float64)[None, :]
    # Crosslines advance along the azimuth, inlines perpendicular to it.
    cdp_x = ORIGIN_X + BIN_M * (j * np.sin(az) + i * np.cos(az))
    cdp_y = ORIGIN_Y + BIN_M * (j * np.cos(az) - i * np.sin(az))
    return cdp_x, cdp_y


def generate_demo_survey(
    shape: Sequence[int] = (128, 128, 128),
    *,
    seed: int = 0,
    sample_interval_ms: float = 4.0,
    n_wells: int = 9,
) -> DemoSurvey:
    """Generate the synthetic survey in memory: amplitude, ground truth, geometry and wells.

    ``shape`` is (n_iline, n_xline, n_samples); at least (16, 16, 32). The same shape, seed and
    sample interval always give identical arrays. Raises :class:`DataError` on a bad shape,
    sample interval or well count.
    """
    ni, nx, ns = _check_shape(shape)
    if not np.isfinite(sample_interval_ms) or not 0.5 <= sample_interval_ms <= 16.0:
        raise DataError(f"demo sample interval {sample_interval_ms} ms is outside 0.5..16 ms; "
                        "use e.g. 4.0")
    if not 2 <= int(n_wells) <= 50:
        raise DataError(f"demo well count {n_wells} is outside 2..50; use e.g. 9")
    rng = np.random.default_rng(seed)

    tau, salt, salt_frac = _geology((ni, nx, ns), rng)
    step = 0.25
    grid, trend, dev, unit_col = _stratigraphic_column(
        rng, ns, np.floor(tau.min()) - 2, np.ceil(tau.max()) + 2, step)
    # A slight smoothing of the column avoids aliasing the sharp bed edges onto the grid.
    dev = ndimage.gaussian_filter1d(dev, 0.5 / step)
    trend_s = ndimage.gaussian_filter1d(trend, 0.5 / step)
    units = unit_col[np.clip(np.rint((tau - grid[0]) / step).astype(np.int64), 0, len(grid) - 1)]

    # Bed contrasts brighten and dim laterally; a faint 3D field adds lateral variability.
    brightness = 1.0 + 0.25 * _smooth_noise(rng, (ni, nx), (ni / 8, nx / 8))[:, :, None]
    log_imp = np.interp(tau, grid, trend_s) + np.interp(tau, grid, dev) * brightness
    log_imp += 0.01 * _smooth_noise(rng, (ni, nx, ns), (4.0, 4.0, 2.0))

    # Salt: high, nearly constant impedance with a weak chaotic texture.
    salt_texture = _smooth_noise(rng, (ni, nx, ns), (1.5, 1.5, 1.0))
    # The fractional salt indicator keeps the dome's reflection from being stair-stepped.
    log_imp = log_imp + salt_frac * (np.log(9.7e6) + 0.012 * salt_texture - log_imp)
    units = np.where(salt, SALT, units).astype(np.int16)

    refl = np.zeros_like(log_imp)
    refl[:, :, 1:] = 0.5 * np.diff(log_imp, axis=2)
    wavelet = _ricker(RICKER_HZ, sample_interval_ms / 1000.0)
    signal = ndimage.convolve1d(refl, wavelet, axis=2, mode="constant")

    noise = ndimage.convolve1d(rng.standard_normal(signal.shape), wavelet, axis=2,
                               mode="constant")
    noise = ndimage.gaussian_filter(noise, (0.7, 0.7, 0.0))
    sig_rms = float(np.sqrt(np.mean(signal**2)))
    noise *= sig_rms / (SNR * float(np.sqrt(np.mean(noise**2))))
    amplitude = ((signal + noise) * (TARGET_RMS / sig_rms)).astype(np.float32)

    ilines = np.arange(FIRST_ILINE, FIRST_ILINE + ni, dtype=np.int32)
    xlines = np.arange(FIRST_XLINE, FIRST_XLINE + nx, dtype=np.int32)
    samples_ms = np.arange(ns, dtype=np.float64) * float(sample_interval_ms)
    cdp_x, cdp_y = _grid(ni, nx)

    positions = _well_positions(units, int(n_wells), rng, _salt_wells(salt))
    wells = _well_intervals(units, positions, ilines, xlines, samples_ms, cdp_x, cdp_y)
    return DemoSurvey(
        amplitude=amplitude, units=units, ilines=ilines, xlines=xlines, samples_ms=samples_ms,
        cdp_x=cdp_x, cdp_y=cdp_y, class_names=CLASS_NAMES, class_colours=CLASS_COLOURS,
        wells=wells,
    )


def _salt_wells(salt: np.ndarray) -> list[tuple[int, int]]:
    """(iline, xline) of two wells into the salt: one at its crest, one on its flank.

    The crest well meets the thickest salt column. The flank well is where exploration
    drills next to a diapir (traps against the salt): the trace nearest the crest whose salt
    column is 30-50% of the thickest, so it penetrates layers above and beside the salt
    before entering it. With a single salt well the network sees salt only at the crest
    and labels the lower salt column as the layers around it.
    """
    thickness = salt.sum(axis=2)
    crest = np.array(np.unravel_index(int(np.argmax(thickness)), thickness.shape))
    wells = [(int(crest[0]), int(crest[1]))]
    flank = np.argwhere((thickness > 0.3 * thickness.max()) & (thickness < 0.5 * thickness.max()))
    if flank.size:
        pick = flank[np.argmin(np.hypot(*(flank - crest).T))]
        wells.append((int(pick[0]), int(pick[1])))
    return wells


# --------------------------------------------------------------------------- files


def _text_header(survey: DemoSurvey, seed: int) -> str:
    ni, nx, ns = survey.amplitude.shape
    dt = float(survey.samples_ms[1] - survey.samples_ms[0])
    units = ", ".join(f"{i} {name}" for i, name in enumerate(survey.class_names))
    return "\n".join([
        "FHN SYNTHETIC DEMO SURVEY - NOT REAL DATA (assets/demo_survey.py)",
        f"GENERATOR VERSION {GENERATOR_VERSION}  SEED {seed}",
        f"3D POST-STACK, INLINE SORTED, {ni} INLINES {survey.ilines[0]}-{survey.ilines[-1]}, "
        f"{nx} CROSSLINES {survey.xlines[0]}-{survey.xlines[-1]}",
        f"{ns} SAMPLES AT {dt:g} MS, TWT {survey.samples_ms[0]:g}-{survey.samples_ms[-1]:g} MS",
        f"BINS {BIN_M:g} X {BIN_M:g} M, GRID ROTATED {AZIMUTH_DEG:g} DEG, ORIGIN "
        f"E {ORIGIN_X:.0f} N {ORIGIN_Y:.0f} (UTM, METRES)",
        "INLINE BYTE 189, CROSSLINE BYTE 193, CDP X/Y 181/185, COORD SCALAR BYTE 71",
        f"CLASSES: {units}",
        "GEOLOGY: FOLDED LAYERS, TWO NORMAL FAULTS (GRABEN), SALT DIAPIR",
        f"SEISMIC: DIFF(LOG IMPEDANCE) * RICKER {RICKER_HZ:g} HZ, NOISE SNR {SNR:g}, "
        "IEEE FLOAT",
        "GROUND TRUTH IN demo_units.npy, WELL TOPS IN demo_wells.csv",
    ])


def _meta(shape: tuple[int, int, int], seed: int) -> dict:
    return {"generator_version": GENERATOR_VERSION, "shape": list(shape), "seed": int(seed)}


def _is_current(paths: dict[str, Path], meta: dict) -> bool:
    """Whether every file exists and the recorded parameters match ``meta``."""
    if not all(p.is_file() for p in paths.values()):
        return False
    try:
        return json.loads(paths["meta"].read_text(encoding="utf-8")) == meta
    except (OSError, ValueError):
        return False


def build_demo_survey(
    folder: str | Path,
    *,
    shape: Sequence[int] = (128, 128, 128),
    seed: int = 0,
    overwrite: bool = False,
) -> DemoFiles:
    """Write the demo survey into ``folder`` and return the paths.

    Files: ``demo.sgy`` (IEEE float SEG-Y, inline/crossline at bytes 189/193, CDP X/Y at
    181/185), ``demo_units.npy`` (int16 ground truth), ``demo_wells.csv`` (well, iline, xline,
    x, y, top, base, class name; times in ms), ``demo_classes.json`` (id, name, colour) and
    ``demo_meta.json`` (shape, seed and generator version). When all files exist and were made
    with the same shape and seed, nothing is rewritten unless ``overwrite``. Each file is
    written atomically; the meta file is written last, so an interrupted build is redone.
    """
    # Imported here so that generating in memory never needs segyio.
    from io_adapters.segy import create_segy

    dims = _check_shape(shape)
    target = Path(folder).expanduser()
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataError(f"cannot create the demo folder {target}: {err.strerror or err}; "
                        "choose a folder you can write to") from err
    paths = {key: target / name for key, name in _FILE_NAMES.items()}
    files = DemoFiles(folder=target, segy=paths["segy"], units=paths["units"],
                      wells=paths["wells"], classes=paths["classes"])
    meta = _meta(dims, seed)
    if not overwrite and _is_current(paths, meta):
        return files

    survey = generate_demo_survey(dims, seed=seed)
    create_segy(
        paths["segy"], survey.amplitude, ilines=survey.ilines, xlines=survey.xlines,
        sample_interval_ms=float(survey.samples_ms[1] - survey.samples_ms[0]),
        cdp_x=survey.cdp_x, cdp_y=survey.cdp_y, text_header=_text_header(survey, seed),
        sample_format=5,
    )
    with atomic_output(paths["units"]) as tmp, open(tmp, "wb") as fh:
        np.save(fh, survey.units, allow_pickle=False)
    with atomic_output(paths["wells"]) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=WELL_COLUMNS)
        writer.writeheader()
        writer.writerows(survey.wells)
    classes = [{"id": i, "name": name, "colour": colour}
               for i, (name, colour) in enumerate(zip(CLASS_NAMES, CLASS_COLOURS, strict=True))]
    with atomic_output(paths["classes"]) as tmp:
        tmp.write_text(json.dumps(classes, indent=2) + "\n", encoding="utf-8")
    with atomic_output(paths["meta"]) as tmp:
        tmp.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return files


def ensure_demo(folder: str | Path | None = None) -> DemoFiles:
    """Build the default-size demo survey in ``folder`` (default DEFAULT_DEMO_DIR) if missing."""
    return build_demo_survey(DEFAULT_DEMO_DIR if folder is None else folder)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: build the demo survey and print where its files are."""
    parser = argparse.ArgumentParser(
        prog="python -m assets.demo_survey",
        description="Build the synthetic demo seismic survey (SEG-Y, ground truth, wells).",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_DEMO_DIR,
                        help=f"output folder (default: {DEFAULT_DEMO_DIR})")
    parser.add_argument("--shape", type=int, nargs=3, default=(128, 128, 128),
                        metavar=("N_ILINE", "N_XLINE", "N_SAMPLES"),
                        help="cube size (default: 128 128 128)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--overwrite", action="store_true",
                        help="rebuild even when the files are already there")
    args = parser.parse_args(argv)
    try:
        files = build_demo_survey(args.out, shape=tuple(args.shape), seed=args.seed,
                                  overwrite=args.overwrite)
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for label in ("segy", "units", "wells", "classes"):
        print(f"{label:8s} {getattr(files, label)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
