"""The run description (TOML) of ``fhn train``: read with its ``--set`` overrides, and its
[labels] and [design] sections turned into labels and a design for the data."""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from app.cli.common import CONFIG_SECTIONS, UserError


def load_design_arg(text: str, in_channels: int | None = None):
    """A design from a TOML path or a preset name (presets take ``in_channels``)."""
    from fhn_core.design import PRESETS, NetworkDesign

    if text in PRESETS:
        return PRESETS[text]() if in_channels is None else PRESETS[text](in_channels=in_channels)
    path = Path(text)
    if path.suffix.lower() == ".toml" or path.exists():
        if not path.is_file():
            raise UserError(f"design file {path} not found; check the path")
        return NetworkDesign.load(path)
    raise UserError(
        f"{text!r} is neither a design TOML file nor a preset; presets: {', '.join(PRESETS)}"
    )


def _parse_value(text: str) -> Any:
    """A --set value: TOML (numbers, booleans, arrays, quoted strings), else plain text."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _apply_set(config: dict[str, Any], assignment: str) -> None:
    key, sep, value = assignment.partition("=")
    parts = [p.strip() for p in key.strip().split(".")]
    if not sep or not all(parts):
        raise UserError(f"--set {assignment!r} is not of the form section.key=value")
    if parts[0] not in CONFIG_SECTIONS:
        raise UserError(
            f"--set {assignment!r}: unknown section {parts[0]!r}; use one of "
            f"{', '.join(CONFIG_SECTIONS)}"
        )
    node = config
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise UserError(f"--set {assignment!r}: {part!r} is a value, not a section")
        node = child
    node[parts[-1]] = _parse_value(value.strip())


def load_run_config(path: Path, sets: Sequence[str] = ()) -> dict[str, Any]:
    """The TOML run description with ``--set`` overrides applied."""
    if not path.is_file():
        raise UserError(f"config file {path} not found; check the path")
    try:
        config = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise UserError(f"config file {path} is not valid TOML: {err}") from err
    for assignment in sets:
        _apply_set(config, assignment)
    unknown = sorted(set(config) - set(CONFIG_SECTIONS))
    if unknown:
        raise UserError(
            f"{path}: unknown key(s) {unknown}; a run config has {', '.join(CONFIG_SECTIONS)}"
        )
    for section in ("data", "labels", "design", "training"):
        if not isinstance(config.get(section, {}), dict):
            raise UserError(f"{path}: [{section}] must be a table of settings")
    return config


def paths_in(value: Any, base: Path, what: str) -> list[Path]:
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(v, str) and v for v in items):
        raise UserError(f"{what} must be a path or a list of paths, got {value!r}")
    return [p if p.is_absolute() else base / p for p in (Path(v).expanduser() for v in items)]


def read_labels(spec: dict[str, Any], da, base: Path, class_names=None):
    """A LabelSet from the [labels] section (or its validation entry); wells on a survey
    store come as LabelCells (the survey's grid is never allocated)."""
    from io_adapters.boreholes import import_borehole_cells, import_boreholes
    from io_adapters.label_points import import_points
    from io_adapters.label_rasters import import_label_raster, import_mask_pair
    from io_adapters.labels import load_labels

    known = {"path", "points", "kind", "radius", "classes", "masks", "validation"}
    unknown = sorted(set(spec) - known)
    if unknown:
        raise UserError(f"[labels]: unknown key(s) {unknown}; known: {sorted(known)}")
    forms = [key for key in ("path", "points", "masks") if key in spec]
    if len(forms) > 1:
        raise UserError(f"[labels] has {' and '.join(forms)}; give one of path, points or "
                        "masks")
    if "points" in spec:
        if spec.get("kind", "points") != "points":
            raise UserError(f"[labels] points = ... are points; leave out kind = "
                            f"{spec['kind']!r}")
        spec = {**{k: v for k, v in spec.items() if k != "points"}, "path": spec["points"],
                "kind": "points"}
    names = class_names or spec.get("classes")
    if "masks" in spec:
        masks = paths_in(spec["masks"], base, "[labels] masks")
        if len(masks) != 2:
            raise UserError("[labels] masks needs two images: [member, non-member]")
        from app.layout import grid_of

        kwargs = {"names": tuple(names)} if names else {}
        return import_mask_pair(masks[0], masks[1], grid_of(da)[1], **kwargs)
    if "path" not in spec:
        raise UserError("[labels] needs path = \"...\" (or masks = [...]); see fhn train --help")
    path = paths_in(spec["path"], base, "[labels] path")[0]
    if not path.is_file():
        raise UserError(f"label file {path} not found; check the path")
    kind = spec.get("kind") or label_kind(path)
    # a point labels its own cell unless asked otherwise; a borehole a small brush around it
    # (checked where it is used, label_geometry.check_radius)
    radius = spec.get("radius", 0.0 if kind == "points" else 1.5)
    if kind == "labelset":
        labelset = load_labels(path)
        return labelset.with_classes(names) if names else labelset
    if kind == "labelcells":  # a survey too large for a label grid (the app writes these)
        from io_adapters.labels import load_label_cells

        cells = load_label_cells(path)
        if names and list(names) != list(cells.class_names):
            raise UserError(f"{path} names its classes {list(cells.class_names)}; listed label "
                            "cells keep their class table, so leave out [labels] classes")
        return cells if da.chunks is not None else _on_a_label_grid(cells)
    if kind == "boreholes":
        wells = import_borehole_cells if da.chunks is not None else import_boreholes
        return wells(path, da, radius, class_names=names)[0]
    if kind == "points":
        return import_points(path, da, names, radius=radius)
    if kind == "raster":
        return import_label_raster(path, da, class_names=names)
    raise UserError(
        f"[labels] kind {kind!r} unknown; use labelset, labelcells, boreholes, points, "
        "raster or masks"
    )


def project_data(data: dict[str, Any], base: Path):
    """The data of an app project folder, loaded as the app loads it (every source with its
    own options, several volumes stacked)."""
    from io_adapters.project import Project

    extra = sorted({"kind", "options"} & set(data))
    if extra:
        raise UserError(f"[data] project = ... takes its sources' kinds and options from the "
                        f"project; leave out {', '.join(extra)}")
    return Project.open(paths_in(data["project"], base, "[data] project")[0]).load_data()


def _on_a_label_grid(cells):
    """Listed label cells as a LabelSet: data held in memory trains and validates on a label
    grid (cells stay listed only for a survey read chunk by chunk)."""
    import numpy as np

    from io_adapters.labels import LabelSet

    flat, ids, source = cells.listed_once()
    labels = np.full(cells.shape, -1, dtype=np.int16)
    provenance = np.zeros(cells.shape, dtype=np.uint8)
    labels.flat[flat], provenance.flat[flat] = ids, source
    return LabelSet(labels, list(cells.classes), provenance, None, tuple(cells.dims))


def setting_flag(section: dict[str, Any], key: str) -> bool:
    value = section.get(key, False)
    if not isinstance(value, bool):
        raise UserError(f"[data] {key} must be true or false, got {value!r}")
    return value


def label_kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return "labelset"
    if suffix in (".geojson", ".json"):
        return "points"
    if suffix == ".csv":
        try:
            header = path.read_text(encoding="utf-8-sig").splitlines()[:1]
        except UnicodeDecodeError as err:
            raise UserError(f"cannot read {path} as text ({err.reason} at byte {err.start}); "
                            "save it as UTF-8 CSV") from None
        columns = {c.strip().lower() for c in (header[0].split(",") if header else [])}
        return "boreholes" if {"well", "top", "base"} <= columns else "points"
    return "raster"


def design_from_section(spec: dict[str, Any], base: Path, layout, n_classes: int):

    spec = dict(spec)
    expansion = spec.pop("channel_expansion", "replicate")
    if expansion not in ("replicate", "haar"):
        raise UserError(f"[design] channel_expansion must be \"replicate\" or \"haar\", got "
                        f"{expansion!r}")
    design = _design_of(spec, base, layout, n_classes)
    if expansion == "haar":  # section 3.2: a coarser output with 2^d times the channels
        from fhn_core.coarse import haar_route

        design = haar_route(design, int(layout.data.shape[0]), n_classes)
    return design


def _design_of(spec: dict[str, Any], base: Path, layout, n_classes: int):
    from app.training_task import DEFAULT_DESIGN_KEYS, default_design
    from fhn_core.design import NetworkDesign

    if not spec:
        return default_design(layout, n_classes)
    if set(spec) & set(DEFAULT_DESIGN_KEYS):  # the default design, sized otherwise
        if not set(spec) <= set(DEFAULT_DESIGN_KEYS):
            raise UserError(f"[design] {', '.join(DEFAULT_DESIGN_KEYS)} size the default design "
                            f"and stand alone; got {sorted(spec)}")
        return default_design(layout, n_classes, **spec)
    if "preset" in spec:
        extra = sorted(set(spec) - {"preset", "in_channels"})
        if extra:
            raise UserError(f"[design] preset= takes only in_channels besides; got {extra}")
        design = default_design(layout, n_classes, preset=str(spec["preset"]))
        if "in_channels" in spec:
            design = replace(design, in_channels=int(spec["in_channels"]))
        return design
    if "file" in spec:
        if set(spec) != {"file"}:
            raise UserError("[design] file= stands alone; put the design's keys in that file")
        path = paths_in(spec["file"], base, "[design] file")[0]
        return NetworkDesign.load(path)
    return NetworkDesign.from_dict(spec, source="[design]")


def design_dims(spec: dict[str, Any], base: Path) -> int | None:
    """The spatial dims the [design] asks for (picks the data layout), None = natural."""
    from fhn_core.design import PRESETS, NetworkDesign

    if "preset" in spec:
        if spec["preset"] not in PRESETS:
            raise UserError(
                f"unknown design preset {spec['preset']!r}; presets: {', '.join(PRESETS)}"
            )
        return PRESETS[spec["preset"]]().spatial_dims
    if "file" in spec:
        return NetworkDesign.load(paths_in(spec["file"], base, "[design] file")[0]).spatial_dims
    dims = spec.get("spatial_dims")
    return int(dims) if isinstance(dims, int) else None

