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

Geological styles (``style=``, :data:`STYLES`) make other surveys from the same recipe, for
checking that settings hold beyond the demo: ``"demo"`` (the default: exactly the survey above),
``"layered"`` (dipping, folded layers, no faults, no salt), ``"faulted"`` (three to six normal
faults of random strike, no salt), ``"salt"`` (a salt diapir of random size, at most two
faults), ``"thin-beds"`` (overburden and reservoir beds thinner than the wavelet's tuning
thickness, so their reflections interfere) and ``"random"`` (every choice drawn). Apart from
the demo's, a style's numbers (fault count and throws, regional dip, fold amplitude, bed
thickness, unit tops, wavelet frequency, signal-to-noise ratio) are drawn from the seed by
:func:`draw_style`; the result, a :class:`SurveyStyle`, is recorded with the files.

Everything is deterministic for a given shape, seed and style, pure numpy/scipy, and takes well
under a few seconds for the default 128^3 cube (it is built in memory, not streamed).
:func:`build_demo_survey` writes it as SEG-Y plus the ground truth, a borehole interval table
and a class table; :func:`ensure_demo` does that once into ``assets/generated/demo``
(git-ignored), which is where the app and the CLI look. ``fhn synth`` writes a survey of any
style, with a run description for ``fhn train``.

Run ``python -m assets.demo_survey [--out DIR] [--shape N N N] [--seed S] [--style NAME]`` to
build it by hand.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
from scipy import ndimage

from io_adapters.atomic import atomic_output
from io_adapters.errors import DataError

__all__ = [
    "CLASS_COLOURS",
    "CLASS_NAMES",
    "DEFAULT_DEMO_DIR",
    "DEMO_STYLE",
    "STYLES",
    "DemoFiles",
    "DemoSurvey",
    "SurveyStyle",
    "build_demo_survey",
    "draw_style",
    "ensure_demo",
    "generate_demo_survey",
    "main",
    "tuning_thickness_ms",
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
    "segy": "{name}.sgy",
    "units": "{name}_units.npy",
    "wells": "{name}_wells.csv",
    "classes": "{name}_classes.json",
    "meta": "{name}_meta.json",
}
WELL_COLUMNS = ("well", "iline", "xline", "x", "y", "top", "base", "class")


@dataclass(frozen=True)
class SurveyStyle:
    """The geology and acquisition of one synthetic survey (what :func:`draw_style` gives).

    Lengths are fractions of the number of samples (``ns``) unless said otherwise. The
    defaults are the demo survey's.
    """

    name: str = "demo"
    salt: bool = True                # a salt diapir intrudes the layers
    salt_radius: float = 0.14        # its radius at the crest, fraction of the survey width
    faults: int | None = None        # normal faults; None = the demo's graben (two faults)
    max_throw: float = 0.075         # largest fault throw (random faults: drawn up to it)
    fault_trend_deg: float = 0.0     # mean strike of random faults, from the inline axis
    dip: float = 0.0                 # regional dip: relief of the layers across the survey
    dip_azimuth_deg: float = 0.0     # direction of the dip, from the inline axis
    fold: float = 1.0                # amplitude of the folding, relative to the demo's
    bed_scale: float = 1.0           # bed thicknesses, relative to the demo's
    thin_scale: float = 1.0          # and again for the overburden and reservoir (thin beds)
    unit_tops: tuple[float, float, float] = UNIT_TOPS  # paleo-depth of the unit tops
    ricker_hz: float = RICKER_HZ     # peak frequency of the zero-phase Ricker wavelet
    snr: float = SNR                 # RMS signal / RMS noise

    def describe(self) -> str:
        """One line for headers and reports."""
        faults = ("graben (2 normal faults)" if self.faults is None
                  else f"{self.faults} fault{'' if self.faults == 1 else 's'}")
        salt = f"salt (radius {self.salt_radius:.2f})" if self.salt else "no salt"
        thin = f" (overburden/reservoir x{self.thin_scale:.2f})" if self.thin_scale != 1 else ""
        return (f"{self.name}: {faults}, {salt}, dip {self.dip:.2f}, fold x{self.fold:.2f}, "
                f"beds x{self.bed_scale:.2f}{thin}, Ricker {self.ricker_hz:.0f} Hz, "
                f"SNR {self.snr:.1f}")


DEMO_STYLE = SurveyStyle()
STYLES: tuple[str, ...] = ("demo", "layered", "faulted", "salt", "thin-beds", "random")
# The layered units whose beds the thin-beds style thins (overburden, upper reservoir).
THIN_UNITS = (0, 1)
_BED_THICKNESS = ((4.0, 9.0), (4.0, 8.0), (6.0, 12.0), (1.0, 2.5))  # samples, per layered unit


def tuning_thickness_ms(ricker_hz: float) -> float:
    """Two-way time below which a bed's top and base reflections merge (Kallweit & Wood 1982).

    For a Ricker wavelet of peak frequency f the tuning thickness is about 1 / (2.31 f).
    """
    return 1000.0 / (2.31 * ricker_hz)


def draw_style(name: str = "demo", seed: int = 0) -> SurveyStyle:
    """The :class:`SurveyStyle` of ``name`` with its numbers drawn from ``seed``.

    ``"demo"`` is always :data:`DEMO_STYLE`. The other styles draw from their own stream
    (seeded by ``seed`` and the style), so the same name and seed give the same style. Raises
    :class:`DataError` for an unknown name.
    """
    if name not in STYLES:
        raise DataError(f"unknown survey style {name!r}; use one of {', '.join(STYLES)}")
    if name == "demo":
        return DEMO_STYLE
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, STYLES.index(name), 0x5EC7])
    if name == "random":
        name_drawn = str(rng.choice(["layered", "faulted", "salt", "thin-beds"]))
        base = _style_of(name_drawn, rng)
        # then mix: salt or not and the fault count drawn independently of the style
        salt = bool(rng.random() < 0.5)
        return replace(base, name="random", salt=salt,
                       salt_radius=float(rng.uniform(0.10, 0.18)) if salt else base.salt_radius,
                       faults=int(rng.integers(0, 6)))
    return _style_of(name, rng)


def _style_of(name: str, rng: np.random.Generator) -> SurveyStyle:
    """A named style's numbers; the ranges shared by all styles first."""
    shared = {
        "name": name,
        "salt": False,
        "faults": 0,
        "max_throw": float(rng.uniform(0.04, 0.08)),
        "fault_trend_deg": float(rng.uniform(0.0, 180.0)),
        "dip": float(rng.uniform(0.0, 0.10)),
        "dip_azimuth_deg": float(rng.uniform(0.0, 360.0)),
        "fold": float(rng.uniform(0.6, 1.2)),
        "bed_scale": float(rng.uniform(0.85, 1.25)),
        "unit_tops": tuple(float(t + d) for t, d in
                           zip(UNIT_TOPS, rng.uniform(-0.03, 0.03, 3), strict=True)),
        "ricker_hz": float(rng.uniform(25.0, 35.0)),
        "snr": float(rng.uniform(4.0, 8.0)),
    }
    if name == "layered":
        shared["dip"] = float(rng.uniform(0.05, 0.15))
    elif name == "faulted":
        shared["faults"] = int(rng.integers(3, 7))
        shared["max_throw"] = float(rng.uniform(0.06, 0.10))
    elif name == "salt":
        shared["salt"] = True
        shared["salt_radius"] = float(rng.uniform(0.10, 0.18))
        shared["faults"] = int(rng.integers(0, 3))
    elif name == "thin-beds":
        shared["faults"] = int(rng.integers(0, 3))
        shared["ricker_hz"] = float(rng.uniform(25.0, 32.0))
        # the thickest bed of the thinned units stays below 90% of the tuning thickness
        tuning = tuning_thickness_ms(shared["ricker_hz"]) / 4.0  # samples at 4 ms
        thickest = max(_BED_THICKNESS[u][1] for u in THIN_UNITS) * shared["bed_scale"]
        shared["thin_scale"] = float(rng.uniform(0.6, 0.9)) * tuning / thickest
    return SurveyStyle(**shared)


@dataclass(frozen=True, eq=False)
class DemoSurvey:
    """An in-memory synthetic survey (pure numpy).

    ``amplitude`` and ``units`` have dims (iline, xline, samples); ``cdp_x``/``cdp_y`` are
    (iline, xline) UTM coordinates in metres. ``wells`` has one row per borehole interval:
    ``well, iline, xline, x, y, top, base, class`` with ``top``/``base`` in ms and ``class`` the
    class name. Interval boundaries lie half-way between samples (except the first top and
    the last base, which are the first and last sample times), so each sample falls in exactly
    one interval whether a reader treats ``[top, base]`` as closed or half-open. Without salt
    the class table ends before Salt. ``style`` is the geology it was made with;
    ``bed_thickness`` holds, per layered unit, the thickness (paleo-depth samples) of every
    bed of its stratigraphic column.
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
    style: SurveyStyle = DEMO_STYLE
    bed_thickness: tuple[np.ndarray, ...] = ()


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


def _bed_edges(rng: np.random.Generator, start: float, stop: float,
               thickness: tuple[float, float]) -> list[float]:
    """Bed boundaries from ``start`` past ``stop``, each bed ``thickness`` (min, max) thick."""
    edges = [start]
    while edges[-1] < stop:
        edges.append(edges[-1] + rng.uniform(*thickness))
    return edges


def _stratigraphic_column(rng: np.random.Generator, ns: int, lo: float, hi: float, step: float,
                          style: SurveyStyle = DEMO_STYLE):
    """Log impedance and unit id of a flat 1D column sampled every ``step`` on [lo, hi].

    Returns (tau grid, log-impedance trend, log-impedance deviation from the trend, unit id,
    bed boundaries per layered unit). Bed thicknesses are in samples (not fractions), so each
    unit keeps its seismic character relative to the wavelet whatever the cube's size.
    """
    tau = np.arange(lo, hi + step, step)
    tops = np.array(style.unit_tops) * ns
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

    draws = (overburden, reservoir, shale, basement)
    dev = np.zeros_like(tau)
    bounds = np.concatenate([[lo], tops, [hi + step]])
    all_edges = []
    for u, draw in enumerate(draws):
        start, stop = bounds[u], bounds[u + 1]
        scale = style.bed_scale * (style.thin_scale if u in THIN_UNITS else 1.0)
        tmin, tmax = _BED_THICKNESS[u]
        edges = _bed_edges(rng, start, stop, (tmin * scale, tmax * scale))
        values = draw(len(edges) - 1)
        in_unit = (tau >= start) & (tau < stop)
        bed = np.clip(np.searchsorted(edges, tau[in_unit], side="right") - 1, 0, len(values) - 1)
        dev[in_unit] = values[bed]
        all_edges.append(np.array(edges))
    return tau, trend, dev, unit, all_edges


def _fold_field(rng: np.random.Generator, u: np.ndarray, v: np.ndarray, ns: int,
                scale: float = 1.0) -> np.ndarray:
    """Smooth lateral undulation (samples): a few sinusoids plus two Gaussian bumps."""
    fold = np.zeros(np.broadcast_shapes(u.shape, v.shape))
    for amp in (0.06, 0.04, 0.025):
        angle = rng.uniform(0.0, np.pi)
        wavelength = rng.uniform(0.6, 1.3)
        phase = rng.uniform(0.0, 2.0 * np.pi)
        along = u * np.cos(angle) + v * np.sin(angle)
        fold += amp * scale * ns * np.sin(2.0 * np.pi * along / wavelength + phase)
    for sign in (1.0, -1.0):
        cu, cv = rng.uniform(0.2, 0.8, 2)
        width = rng.uniform(0.15, 0.25)
        fold += sign * 0.04 * scale * ns * np.exp(-((u - cu) ** 2 + (v - cv) ** 2)
                                                 / (2 * width**2))
    return fold


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


@dataclass(frozen=True)
class _Fault:
    """A normal fault: a plane through ``offset`` (across strike) at ``azimuth_deg`` from the
    inline axis, hanging wall on the ``side`` (+1/-1) it dips towards, ``throw`` in samples."""

    offset: float
    side: float
    throw: float
    obliquity: float
    azimuth_deg: float = 0.0


def _graben_faults(rng: np.random.Generator, ns: int) -> list[_Fault]:
    """The demo's two normal faults striking along the inline axis, dipping towards each
    other (a graben)."""
    positions = (0.20 + rng.uniform(-0.03, 0.03), 0.44 + rng.uniform(-0.03, 0.03))
    throws = (max(4.0, 0.075 * ns), 0.045 * ns)
    return [_Fault(offset, side, throw, rng.uniform(-0.08, 0.08))
            for offset, side, throw in zip(positions, (1.0, -1.0), throws, strict=True)]


def _random_faults(rng: np.random.Generator, ns: int, style: SurveyStyle) -> list[_Fault]:
    """``style.faults`` normal faults, strikes within 25 degrees of the style's trend (faults
    of one extensional phase are near-parallel), throws between 50% and 100% of the largest
    (at least 3 samples)."""
    faults = []
    for _ in range(int(style.faults or 0)):
        faults.append(_Fault(
            offset=float(rng.uniform(0.15, 0.85)),
            side=float(rng.choice([-1.0, 1.0])),
            throw=max(3.0, float(rng.uniform(0.5, 1.0)) * style.max_throw * ns),
            obliquity=float(rng.uniform(-0.08, 0.08)),
            azimuth_deg=style.fault_trend_deg + float(rng.uniform(-25.0, 25.0)),
        ))
    return faults


def _fault_plane(fault: _Fault, u: np.ndarray, v: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Signed distance-like value, > 0 in the hanging wall; the plane dips (0.18 per survey
    width of depth) towards ``fault.side``."""
    along, across = u, v
    if fault.azimuth_deg != 0.0:  # the demo's faults strike along the inline axis exactly
        a = np.deg2rad(fault.azimuth_deg)
        along = (u - 0.5) * np.cos(a) + (v - 0.5) * np.sin(a) + 0.5
        across = -(u - 0.5) * np.sin(a) + (v - 0.5) * np.cos(a) + 0.5
    return fault.side * (across - fault.offset - fault.obliquity * (along - 0.5)) \
        - 0.18 * (t - 0.5)


def _salt_body(rng: np.random.Generator, u, v, t, shape, radius: float):
    """A round-topped salt stock, slightly lobed in map view, widening with depth.

    Returns (salt mask, anti-aliased salt fraction, map distance from its centre).
    """
    ni, nx, ns = shape
    cu = 0.5 + rng.uniform(-0.06, 0.06)
    cv = 0.70 + rng.uniform(-0.04, 0.04)
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
    return salt, salt_frac, dist


def _geology(shape: tuple[int, int, int], rng: np.random.Generator,
             style: SurveyStyle = DEMO_STYLE):
    """Paleo-depth (in samples) of every voxel, the salt mask and its anti-aliased fraction
    (both None without salt)."""
    ni, nx, ns = shape
    u = np.linspace(0.0, 1.0, ni)[:, None, None]
    v = np.linspace(0.0, 1.0, nx)[None, :, None]
    k = np.arange(ns, dtype=np.float64)[None, None, :]
    t = k / (ns - 1)

    salt = salt_frac = None
    if style.salt:
        radius = style.salt_radius
        salt, salt_frac, dist = _salt_body(rng, u, v, t, shape, radius)

    # Folding, stronger at depth; layers dragged up around the salt with a rim syncline.
    depth_gain = 0.4 + 0.6 * t
    shift = _fold_field(rng, u, v, ns, style.fold) * depth_gain
    if salt is not None:
        drag = -0.09 * ns * np.exp(-((dist / (1.6 * radius)) ** 2))
        rim = 0.04 * ns * np.exp(-(((dist - 2.3 * radius) / (0.6 * radius)) ** 2))
        shift = shift + (drag + rim) * (0.3 + 0.7 * t)
    if style.dip:  # regional tilt, the same at every depth
        a = np.deg2rad(style.dip_azimuth_deg)
        shift = shift + style.dip * ns * ((u - 0.5) * np.cos(a) + (v - 0.5) * np.sin(a))
    # Differential subsidence: units thicken gently towards high inlines.
    tau = (k - shift) * (1.0 + 0.08 * (u - 0.5))

    # Normal faults, applied after folding. Throw dies out upwards (growth faults).
    faults = (_graben_faults(rng, ns) if style.faults is None
              else _random_faults(rng, ns, style))
    for fault in faults:
        hanging = _fault_plane(fault, u, v, t) > 0.0
        tau = tau - np.where(hanging, fault.throw * _smoothstep((t - 0.05) / 0.3), 0.0)
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
                    salt_wells: Sequence[tuple[int, int]],
                    n_classes: int = len(CLASS_NAMES)) -> list[tuple[int, int]]:
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
    for cls in range(n_classes):
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
    style: str | SurveyStyle = "demo",
) -> DemoSurvey:
    """Generate the synthetic survey in memory: amplitude, ground truth, geometry and wells.

    ``shape`` is (n_iline, n_xline, n_samples); at least (16, 16, 32). ``style`` is a name in
    :data:`STYLES` (its numbers drawn from ``seed`` by :func:`draw_style`) or a
    :class:`SurveyStyle`; the default is the demo survey. The same shape, seed, style and
    sample interval always give identical arrays. Raises :class:`DataError` on a bad shape,
    sample interval, well count or style.
    """
    ni, nx, ns = _check_shape(shape)
    style = style if isinstance(style, SurveyStyle) else draw_style(style, seed)
    if not np.isfinite(sample_interval_ms) or not 0.5 <= sample_interval_ms <= 16.0:
        raise DataError(f"demo sample interval {sample_interval_ms} ms is outside 0.5..16 ms; "
                        "use e.g. 4.0")
    if not 2 <= int(n_wells) <= 50:
        raise DataError(f"demo well count {n_wells} is outside 2..50; use e.g. 9")
    rng = np.random.default_rng(seed)

    tau, salt, salt_frac = _geology((ni, nx, ns), rng, style)
    step = 0.25
    grid, trend, dev, unit_col, bed_edges = _stratigraphic_column(
        rng, ns, np.floor(tau.min()) - 2, np.ceil(tau.max()) + 2, step, style)
    # A slight smoothing of the column avoids aliasing the sharp bed edges onto the grid.
    dev = ndimage.gaussian_filter1d(dev, 0.5 / step)
    trend_s = ndimage.gaussian_filter1d(trend, 0.5 / step)
    units = unit_col[np.clip(np.rint((tau - grid[0]) / step).astype(np.int64), 0, len(grid) - 1)]

    # Bed contrasts brighten and dim laterally; a faint 3D field adds lateral variability.
    brightness = 1.0 + 0.25 * _smooth_noise(rng, (ni, nx), (ni / 8, nx / 8))[:, :, None]
    log_imp = np.interp(tau, grid, trend_s) + np.interp(tau, grid, dev) * brightness
    log_imp += 0.01 * _smooth_noise(rng, (ni, nx, ns), (4.0, 4.0, 2.0))

    class_names, class_colours = CLASS_NAMES[:SALT], CLASS_COLOURS[:SALT]
    if salt is not None:
        # Salt: high, nearly constant impedance with a weak chaotic texture.
        salt_texture = _smooth_noise(rng, (ni, nx, ns), (1.5, 1.5, 1.0))
        # The fractional salt indicator keeps the dome's reflection from being stair-stepped.
        log_imp = log_imp + salt_frac * (np.log(9.7e6) + 0.012 * salt_texture - log_imp)
        units = np.where(salt, SALT, units)
        class_names, class_colours = CLASS_NAMES, CLASS_COLOURS
    units = units.astype(np.int16)

    # Convolutional model: reflectivity (Z2 - Z1) / (Z2 + Z1) ~ half the step in log Z.
    refl = np.zeros_like(log_imp)
    refl[:, :, 1:] = 0.5 * np.diff(log_imp, axis=2)
    wavelet = _ricker(style.ricker_hz, sample_interval_ms / 1000.0)
    signal = ndimage.convolve1d(refl, wavelet, axis=2, mode="constant")

    noise = ndimage.convolve1d(rng.standard_normal(signal.shape), wavelet, axis=2,
                               mode="constant")
    noise = ndimage.gaussian_filter(noise, (0.7, 0.7, 0.0))
    sig_rms = float(np.sqrt(np.mean(signal**2)))
    noise *= sig_rms / (style.snr * float(np.sqrt(np.mean(noise**2))))
    amplitude = ((signal + noise) * (TARGET_RMS / sig_rms)).astype(np.float32)

    ilines = np.arange(FIRST_ILINE, FIRST_ILINE + ni, dtype=np.int32)
    xlines = np.arange(FIRST_XLINE, FIRST_XLINE + nx, dtype=np.int32)
    samples_ms = np.arange(ns, dtype=np.float64) * float(sample_interval_ms)
    cdp_x, cdp_y = _grid(ni, nx)

    salt_wells = _salt_wells(salt) if salt is not None else []
    positions = _well_positions(units, int(n_wells), rng, salt_wells, len(class_names))
    wells = _well_intervals(units, positions, ilines, xlines, samples_ms, cdp_x, cdp_y)
    return DemoSurvey(
        amplitude=amplitude, units=units, ilines=ilines, xlines=xlines, samples_ms=samples_ms,
        cdp_x=cdp_x, cdp_y=cdp_y, class_names=class_names, class_colours=class_colours,
        wells=wells, style=style,
        bed_thickness=tuple(np.diff(edges) for edges in bed_edges),
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


def _text_header(survey: DemoSurvey, seed: int, name: str = "demo") -> str:
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
        _geology_line(survey.style),
        f"SEISMIC: DIFF(LOG IMPEDANCE) * RICKER {survey.style.ricker_hz:g} HZ, NOISE SNR "
        f"{survey.style.snr:g}, IEEE FLOAT",
        f"GROUND TRUTH IN {_FILE_NAMES['units'].format(name=name)}, WELL TOPS IN "
        f"{_FILE_NAMES['wells'].format(name=name)}",
    ])


def _geology_line(style: SurveyStyle) -> str:
    if style == DEMO_STYLE:
        return "GEOLOGY: FOLDED LAYERS, TWO NORMAL FAULTS (GRABEN), SALT DIAPIR"
    return f"GEOLOGY: STYLE {style.describe().upper()}"


def _meta(shape: tuple[int, int, int], seed: int, style: SurveyStyle = DEMO_STYLE) -> dict:
    meta = {"generator_version": GENERATOR_VERSION, "shape": list(shape), "seed": int(seed)}
    if style != DEMO_STYLE:  # the demo's record stays as it was, so its cache stays valid
        meta["style"] = {k: list(v) if isinstance(v, tuple) else v
                         for k, v in asdict(style).items()}
    return meta


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
    style: str | SurveyStyle = "demo",
    n_wells: int = 9,
    name: str = "demo",
    overwrite: bool = False,
) -> DemoFiles:
    """Write the demo survey (or one of another ``style``) into ``folder``; return the paths.

    Files (``name`` = "demo"): ``demo.sgy`` (IEEE float SEG-Y, inline/crossline at bytes
    189/193, CDP X/Y at 181/185), ``demo_units.npy`` (int16 ground truth), ``demo_wells.csv``
    (well, iline, xline, x, y, top, base, class name; times in ms), ``demo_classes.json`` (id,
    name, colour) and ``demo_meta.json`` (shape, seed, generator version and, for another
    style, the style's numbers). When all files exist and were made with the same parameters,
    nothing is rewritten unless ``overwrite``. Each file is written atomically; the meta file
    is written last, so an interrupted build is redone.
    """
    # Imported here so that generating in memory never needs segyio.
    from io_adapters.segy import create_segy

    dims = _check_shape(shape)
    if not name or any(c in name for c in '/\\:*?"<>|') or name.startswith("."):
        raise DataError(f"survey name {name!r} cannot be a file name; use letters, digits, "
                        "'-' or '_', e.g. faulted-17")
    resolved = style if isinstance(style, SurveyStyle) else draw_style(style, seed)
    target = Path(folder).expanduser()
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataError(f"cannot create the demo folder {target}: {err.strerror or err}; "
                        "choose a folder you can write to") from err
    paths = {key: target / pattern.format(name=name) for key, pattern in _FILE_NAMES.items()}
    files = DemoFiles(folder=target, segy=paths["segy"], units=paths["units"],
                      wells=paths["wells"], classes=paths["classes"])
    meta = _meta(dims, seed, resolved)
    if int(n_wells) != 9:
        meta["wells"] = int(n_wells)
    if not overwrite and _is_current(paths, meta):
        return files

    survey = generate_demo_survey(dims, seed=seed, style=resolved, n_wells=n_wells)
    create_segy(
        paths["segy"], survey.amplitude, ilines=survey.ilines, xlines=survey.xlines,
        sample_interval_ms=float(survey.samples_ms[1] - survey.samples_ms[0]),
        cdp_x=survey.cdp_x, cdp_y=survey.cdp_y, text_header=_text_header(survey, seed, name),
        sample_format=5,
    )
    with atomic_output(paths["units"]) as tmp, open(tmp, "wb") as fh:
        np.save(fh, survey.units, allow_pickle=False)
    with atomic_output(paths["wells"]) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=WELL_COLUMNS)
        writer.writeheader()
        writer.writerows(survey.wells)
    classes = [{"id": i, "name": cls, "colour": colour} for i, (cls, colour)
               in enumerate(zip(survey.class_names, survey.class_colours, strict=True))]
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
    parser.add_argument("--style", choices=STYLES, default="demo",
                        help="geological style (default: demo, the built-in survey)")
    parser.add_argument("--overwrite", action="store_true",
                        help="rebuild even when the files are already there")
    args = parser.parse_args(argv)
    try:
        files = build_demo_survey(args.out, shape=tuple(args.shape), seed=args.seed,
                                  style=args.style, overwrite=args.overwrite)
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for label in ("segy", "units", "wells", "classes"):
        print(f"{label:8s} {getattr(files, label)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
