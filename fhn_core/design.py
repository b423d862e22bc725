"""NetworkDesign: a network described the way the paper's Tables 2 and 3 describe one.

A design is a list of segments (level, number of layers, block rank). The level is the
number of Haar coarsenings applied to the input at that point: a state at level l in d
spatial dimensions has ``in_channels * 2^(d l)`` channels and spatial sizes ``S / 2^l``.
The first layer of a segment whose level differs from the level before it (the input is
at level 0) starts with one Haar analysis (level up) or synthesis (level down) applied to
both incoming states (eq. 2.9 with W or W^T).

The class scores are output channels 0..K-1 (section 3.2), so they start out as whatever
the input holds there: by default the first data channels, replicated up to
``in_channels``. ``zero_channels`` = K instead puts K channels of zeros in front of the
data (``in_channels`` counts them): the scores then start at zero rather than at, say,
the first band's reflectance, and the layers build all of them.

TOML form::

    in_channels = 12
    spatial_dims = 3
    kernel_size = 3
    h = 0.2
    zero_channels = 0    # optional: channels of zeros in front of the data (see above)
    segments = [[0, 4, 8], [1, 4, 16], [2, 4, 32], [3, 6, 32], [2, 4, 32], [1, 4, 16], [0, 4, 8]]
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from .errors import FhnError


@dataclass(frozen=True)
class Segment:
    """``layers`` consecutive layers at Haar ``level`` with block rank ``rank`` (eq. 3.17)."""

    level: int
    layers: int
    rank: int


@dataclass(frozen=True)
class LayerSpec:
    """One layer as the network builds it: its level, the change that opens it, its rank."""

    index: int
    level: int
    change: int  # +1 coarsen (W), -1 refine (W^T), 0 none
    channels: int
    rank: int


@dataclass(frozen=True)
class NetworkDesign:
    """The architecture of a fully invertible hyperbolic network (paper Tables 2-3)."""

    in_channels: int
    spatial_dims: int
    segments: tuple[Segment, ...]
    kernel_size: int = 3
    h: float = 0.2
    zero_channels: int = 0
    name: str = ""
    notes: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        segs = tuple(s if isinstance(s, Segment) else Segment(*s) for s in self.segments)
        object.__setattr__(self, "segments", segs)
        _validate(self)

    # --- derived quantities -------------------------------------------------------
    @property
    def n_layers(self) -> int:
        return sum(s.layers for s in self.segments)

    @property
    def max_level(self) -> int:
        return max(s.level for s in self.segments)

    @property
    def out_level(self) -> int:
        """The level of the output state Y_n (0 = the input's resolution)."""
        return self.segments[-1].level

    def channels_at(self, level: int) -> int:
        return self.in_channels * 2 ** (self.spatial_dims * level)

    @property
    def out_channels(self) -> int:
        return self.channels_at(self.out_level)

    def layer_specs(self) -> Iterator[LayerSpec]:
        """Every layer in order, with the resolution change its first step applies."""
        level, index = 0, 0
        for seg in self.segments:
            for i in range(seg.layers):
                change = seg.level - level if i == 0 else 0
                yield LayerSpec(index, seg.level, change, self.channels_at(seg.level), seg.rank)
                level, index = seg.level, index + 1

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Shape of Y_n for an input (N, C, *S) whose sizes are divisible by 2^max_level."""
        n, _, *sizes = input_shape
        f = 2**self.out_level
        return (n, self.out_channels, *(s // f for s in sizes))

    # --- TOML ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "in_channels": self.in_channels,
            "spatial_dims": self.spatial_dims,
            "kernel_size": self.kernel_size,
            "h": self.h,
            "segments": [[s.level, s.layers, s.rank] for s in self.segments],
        }
        if self.zero_channels:
            out["zero_channels"] = self.zero_channels
        if self.name:
            out["name"] = self.name
        if self.notes:
            out["notes"] = dict(self.notes)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "design") -> NetworkDesign:
        required = ("in_channels", "spatial_dims", "segments")
        missing = [k for k in required if k not in data]
        if missing:
            raise FhnError(
                f"{source}: missing key(s) {', '.join(missing)}; a design needs "
                "in_channels, spatial_dims and segments = [[level, layers, rank], ...]"
            )
        known = {"in_channels", "spatial_dims", "kernel_size", "h", "segments", "zero_channels",
                 "name", "notes"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise FhnError(f"{source}: unknown key(s) {', '.join(unknown)}; known: {sorted(known)}")
        try:
            segments = tuple(Segment(*map(int, s)) for s in data["segments"])
        except (TypeError, ValueError) as err:
            raise FhnError(
                f"{source}: segments must be a list of [level, layers, rank] integer triples, "
                f"got {data['segments']!r}"
            ) from err
        return cls(
            in_channels=_as_int(data["in_channels"], "in_channels", source),
            spatial_dims=_as_int(data["spatial_dims"], "spatial_dims", source),
            segments=segments,
            kernel_size=_as_int(data.get("kernel_size", 3), "kernel_size", source),
            h=float(data.get("h", 0.2)),
            zero_channels=_as_int(data.get("zero_channels", 0), "zero_channels", source),
            name=str(data.get("name", "")),
            notes=dict(data.get("notes", {})),
        )

    def to_toml(self) -> str:
        return tomli_w.dumps(self.to_dict())

    @classmethod
    def from_toml(cls, text: str, *, source: str = "design") -> NetworkDesign:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as err:
            raise FhnError(f"{source} is not valid TOML: {err}") from err
        return cls.from_dict(data, source=source)

    def save(self, path: str | Path) -> Path:
        """Write the design as TOML (temporary file, then rename)."""
        path = Path(path)
        tmp = path.with_name(f".{path.name}.part")
        tmp.write_text(self.to_toml(), encoding="utf-8")
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> NetworkDesign:
        path = Path(path)
        if not path.is_file():
            raise FhnError(f"design file {path} not found; check the path")
        return cls.from_toml(path.read_text(encoding="utf-8"), source=str(path))


def _as_int(value: Any, key: str, source: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise FhnError(f"{source}: {key} must be an integer, got {value!r}")
    return value


def _validate(design: NetworkDesign) -> None:
    """Reject designs the network cannot build, with the fix in the message."""
    if design.spatial_dims not in (2, 3):
        raise FhnError(f"spatial_dims must be 2 or 3, got {design.spatial_dims}")
    if design.in_channels < 1:
        raise FhnError(f"in_channels must be at least 1, got {design.in_channels}")
    if not 0 <= design.zero_channels < design.in_channels:
        raise FhnError(
            f"zero_channels must be at least 0 and leave room for the data in the "
            f"{design.in_channels} input channels, got {design.zero_channels}"
        )
    if design.kernel_size < 1 or design.kernel_size % 2 == 0:
        raise FhnError(
            f"kernel_size must be odd (1, 3, 5, ...) so K^T is the exact adjoint at the same "
            f"size, got {design.kernel_size}"
        )
    if not design.h > 0:
        raise FhnError(f"h must be positive (the paper uses 0.2), got {design.h}")
    if not design.segments:
        raise FhnError("a design needs at least one segment [level, layers, rank]")
    previous = 0
    for i, seg in enumerate(design.segments):
        where = f"segment {i} {[seg.level, seg.layers, seg.rank]}"
        if seg.level < 0:
            raise FhnError(f"{where}: level must be 0 or more")
        if seg.layers < 1:
            raise FhnError(f"{where}: a segment needs at least 1 layer")
        if seg.rank < 1:
            raise FhnError(f"{where}: block rank must be at least 1")
        if abs(seg.level - previous) > 1:
            raise FhnError(
                f"{where}: jumps from level {previous} to {seg.level}; levels may change by one "
                "Haar step between segments, insert a segment at the level in between"
            )
        previous = seg.level


def seismic_table3(in_channels: int = 12) -> NetworkDesign:
    """The 3D seismic design after the paper's Table 3: 30 layers over 4 levels, ranks 8/16/32."""
    return NetworkDesign(
        in_channels=in_channels,
        spatial_dims=3,
        segments=(
            Segment(0, 4, 8), Segment(1, 4, 16), Segment(2, 4, 32), Segment(3, 6, 32),
            Segment(2, 4, 32), Segment(1, 4, 16), Segment(0, 4, 8),
        ),
        name="seismic 3D (Table 3)",
    )


def hyperspectral_timelapse(in_channels: int = 16) -> NetworkDesign:
    """Hyperspectral time-lapse design after the paper: 18 layers, one coarsening, rank 16."""
    return NetworkDesign(
        in_channels=in_channels,
        spatial_dims=3,
        segments=(Segment(0, 6, 16), Segment(1, 6, 16), Segment(0, 6, 16)),
        name="hyperspectral time-lapse",
    )


def aquifer_map(in_channels: int = 112) -> NetworkDesign:
    """Multi-raster map design after the paper: 39 layers, 2D, channels 112 -> 7168, rank 24."""
    return NetworkDesign(
        in_channels=in_channels,
        spatial_dims=2,
        segments=(
            Segment(0, 5, 24), Segment(1, 5, 24), Segment(2, 5, 24), Segment(3, 9, 24),
            Segment(2, 5, 24), Segment(1, 5, 24), Segment(0, 5, 24),
        ),
        name="aquifer map",
    )


PRESETS = {
    "seismic-3d": seismic_table3,
    "hyperspectral-timelapse": hyperspectral_timelapse,
    "multi-raster-map": aquifer_map,
}
