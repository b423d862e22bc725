"""NetworkDesign: a network described the way the paper's Tables 2 and 3 describe one.

A design is a list of segments (level, number of layers, block rank). The level is the
number of Haar coarsenings applied to the input at that point: a state at level l in d
spatial dimensions has ``in_channels * 2^(d l)`` channels and spatial sizes ``S / 2^l``.
The first layer of a segment whose level differs from the level before it (the input is
at level 0) starts with one Haar analysis (level up) or synthesis (level down) applied to
both incoming states (eq. 2.9 with W or W^T).

The class scores are output channels 0..K-1, so they start out as whatever
the input holds there: by default the first data channels, replicated up to
``in_channels``. ``zero_channels`` = K instead puts K channels of zeros in front of the
data (``in_channels`` counts them): the scores then start at zero rather than at, say,
the first band's reflectance, and the layers build all of them.

TOML form::

    in_channels = 12
    spatial_dims = 3
    kernel_size = 3
    h = 0.2              # default: the paper does not state h; the authors' scripts: h^2 = 0.04
    zero_channels = 0    # optional: channels of zeros in front of the data (see above)
    segments = [[0, 2, 8], [1, 3, 16], [2, 3, 32], [3, 10, 32], [2, 3, 32], [1, 3, 16], [0, 6, 8]]
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
        raise FhnError(f"h must be positive (the default is 0.2), got {design.h}")
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
    """The 3D seismic design of the paper's Table 3: 30 layers over 4 levels, ranks 8/16/32.

    Levels 0-1-2-3-2-1-0 with 2/3/3/10/3/3/6 layers; block ranks 8/16/32/32/32/16/8.
    The layer counts per level are the ones that reproduce the paper's Table 1 seismic
    row with 12 input channels on 248^3 (states 2.19 / 21.96 GB, kernels 41.16 / 0.23 GB;
    checked in tests/fhn_core/test_paper.py): 10 layers at the coarsest level give the
    41.16 GB of full 6144 x 6144 x 27 kernels, which 6 there (the earlier preset) could
    not (24.98 GB). The same per-layer sequence is the ``architecture`` of the authors'
    public example script (PetersBas/FHN_Examples, SemanticSegmentationF3_3D_interpolation.jl),
    which runs it on 4 replicated channels rather than Table 1's 12. (Table 3's own text
    was not at hand when this was written: the counts rest on Table 1 and that script,
    which agree.)
    """
    return NetworkDesign(
        in_channels=in_channels,
        spatial_dims=3,
        segments=(
            Segment(0, 2, 8), Segment(1, 3, 16), Segment(2, 3, 32), Segment(3, 10, 32),
            Segment(2, 3, 32), Segment(1, 3, 16), Segment(0, 6, 8),
        ),
        name="seismic 3D (Table 3)",
    )


def hyperspectral_timelapse(in_channels: int = 16) -> NetworkDesign:
    """The hyperspectral time-lapse design of the paper's Table 2: 18 layers, rank 16.

    6 layers at level 0, then one Haar coarsening and 12 layers at level 1; there is no
    refinement, so the output is on a grid 2x coarser than the input (section 3.4: one
    more coarsening than refinements, the labels live on the coarse grid). With 16 input
    channels on 368 x 288 x 184 this reproduces Table 1's hyperspectral row (states 3.7 /
    22.5 GB, kernels 0.02 / 0.003 GB); the 6 + 12 split is the one that gives the 0.02 GB
    of full kernels (12 layers at 128 channels), and it is the ``architecture`` of the
    authors' public script TimeLapseHyperspectral_ResolutionChange.jl (PetersBas/FHN_Examples).
    The input size is the one that gives Table 1's state figures with 16 channels; Table
    2's own text was not at hand to check it against.
    """
    return NetworkDesign(
        in_channels=in_channels,
        spatial_dims=3,
        segments=(Segment(0, 6, 16), Segment(1, 12, 16)),
        name="hyperspectral time-lapse (Table 2)",
    )


def aquifer_map(in_channels: int = 112) -> NetworkDesign:
    """The 2D aquifer-mapping design of the paper's Table 2: 38 layers, 112 -> 7168 channels.

    Levels 0-1-2-3-2-1-0 with 4/4/3/17/3/3/4 layers, block rank 24 throughout.

    Ambiguity, written down: Table 1's aquifer row (states 1.66 / 21.02 GB, kernels
    32.19 / 0.12 GB on 112 x 848 x 1456) needs 38 layers (21.02 / 0.553 GB per state)
    with 17 of them at the coarsest level (each full 7168 x 7168 x 9 kernel is 1.85 GB;
    16 give 29.6 GB, 18 give 33.3 GB) and 6 at level 2. Table 1 does not fix how the
    remaining 15 split between levels 1 and 0: 7 + 8 gives 32.193 GB, 6 + 9 gives 32.186
    GB, both printed as 32.19; 7 + 8 is taken. Nor does any memory figure depend on how a
    level's layers split between the coarsening and the refining side (Table 1 is a sum
    over layers), so that split (4/4/3 down, 3/3/4 up) is a choice, not the paper's. With
    rank 24 the BLR kernels are 0.118 GB (Table 1 prints 0.12). The earlier preset
    (5/5/5/9/5/5/5, 39 layers) gave 21.57 and 17.88 GB, not Table 1. Table 2's own text
    was not at hand when this was written; everything above is derived from Table 1.
    """
    return NetworkDesign(
        in_channels=in_channels,
        spatial_dims=2,
        segments=(
            Segment(0, 4, 24), Segment(1, 4, 24), Segment(2, 3, 24), Segment(3, 17, 24),
            Segment(2, 3, 24), Segment(1, 3, 24), Segment(0, 4, 24),
        ),
        name="aquifer map (Table 2)",
    )


PRESETS = {
    "seismic-3d": seismic_table3,
    "hyperspectral-timelapse": hyperspectral_timelapse,
    "multi-raster-map": aquifer_map,
}
