"""The built-in demo: its recipe (assets/demo_recipe.toml) and its training task.

``fhn demo`` and the app's demo project build the synthetic survey of :mod:`assets.demo_survey`,
label the traces around its wells and train with the recipe's tuned settings.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fhn_core.design import NetworkDesign
from fhn_core.errors import FhnError
from fhn_core.task import SegmentationTask
from fhn_core.training import TrainConfig
from io_adapters.boreholes import import_boreholes
from io_adapters.errors import DataError
from io_adapters.labels import LabelClass, LabelSet, default_colour
from io_adapters.seismic_attributes import ATTRIBUTE_FLAGS

from .layout import to_channels_first
from .training_task import build_task

__all__ = [
    "DemoRecipe", "RECIPE_PATH", "demo_folder", "demo_recipe", "demo_task", "read_class_table",
]

PathLike = str | Path

RECIPE_PATH = Path(__file__).resolve().parents[1] / "assets" / "demo_recipe.toml"


@dataclass(frozen=True)
class DemoRecipe:
    """The demo's tuned settings (assets/demo_recipe.toml): what `fhn demo` and the app use."""

    design: NetworkDesign
    config: TrainConfig
    borehole_radius: float        # traces around each well that get the well's labels
    vertical_channel: bool        # the sample time as an input channel
    envelope_channel: bool        # the envelope (instantaneous amplitude) as an input channel
    semblance_channel: bool       # the semblance (trace coherence) as an input channel
    augment: bool = False         # predict with test-time augmentation (flips/transposes)
    stratigraphic_order: bool = False  # keep the wells' top-to-bottom order of the units


def demo_recipe(path: PathLike | None = None) -> DemoRecipe:
    """The recipe in ``path`` (default assets/demo_recipe.toml).

    ``patch`` entries of 0 mean "the whole axis" (None in TrainConfig).
    """
    p = Path(path) if path is not None else RECIPE_PATH
    try:
        recipe = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise DataError(f"demo recipe {p} not found; restore assets/demo_recipe.toml") from err
    except tomllib.TOMLDecodeError as err:
        raise DataError(f"demo recipe {p} is not valid TOML: {err}") from err
    design = NetworkDesign.from_dict(recipe.get("design", {}), source=str(p))
    training = dict(recipe.get("training", {}))
    if training.get("patch") is not None:
        training["patch"] = tuple(None if int(v) == 0 else int(v) for v in training["patch"])
    return DemoRecipe(
        design=design,
        config=TrainConfig.from_dict(training),
        borehole_radius=float(recipe.get("labels", {}).get("borehole_radius", 1.5)),
        **{flag: bool(recipe.get("data", {}).get(flag, False)) for flag in ATTRIBUTE_FLAGS},
        augment=bool(recipe.get("prediction", {}).get("augment", False)),
        stratigraphic_order=bool(recipe.get("prediction", {}).get("stratigraphic_order", False)),
    )


def read_class_table(path: PathLike) -> list[LabelClass]:
    """Class table from a JSON list of {id, name, colour} (the demo's demo_classes.json)."""
    p = Path(path)
    try:
        entries = json.loads(p.read_text(encoding="utf-8"))
        entries = sorted(entries, key=lambda e: int(e["id"]))
        return [LabelClass(i, e["name"], e.get("colour") or default_colour(i))
                for i, e in enumerate(entries)]
    except FileNotFoundError as err:
        raise DataError(f"class table {p} not found; rebuild the demo survey") from err
    except (ValueError, KeyError, TypeError) as err:
        raise DataError(f"class table {p} is not a JSON list of {{id, name, colour}}") from err


def demo_folder(shape: Sequence[int] | None) -> Path:
    """Where the demo survey of ``shape`` is cached (default shape: DEFAULT_DEMO_DIR)."""
    from assets.demo_survey import DEFAULT_DEMO_DIR

    if shape is None or tuple(int(s) for s in shape) == (128, 128, 128):
        return DEFAULT_DEMO_DIR
    ni, nx, ns = (int(s) for s in shape)
    return DEFAULT_DEMO_DIR.parent / f"demo-{ni}x{nx}x{ns}"


def demo_task(
    shape: Sequence[int] | None = None,
    *,
    folder: PathLike | None = None,
    recipe: DemoRecipe | None = None,
    radius: float | None = None,
) -> tuple[SegmentationTask, np.ndarray, Any]:
    """The demo as a training task: (task, ground-truth units, DemoFiles).

    Builds the synthetic survey if it is missing (default 128^3 in assets/generated/demo;
    another ``shape`` in a cache folder beside it, or in ``folder``), reads the SEG-Y,
    labels the traces around each well from the wells CSV and returns the ground truth
    (iline, xline, samples) to score against. The borehole radius and the vertical channel
    come from ``recipe`` (default: assets/demo_recipe.toml); ``radius`` overrides the radius.
    """
    from assets.demo_survey import build_demo_survey
    from io_adapters.segy import read_segy

    recipe = recipe or demo_recipe()
    target = Path(folder) if folder is not None else demo_folder(shape)
    files = build_demo_survey(target, shape=tuple(shape) if shape else (128, 128, 128))
    classes = read_class_table(files.classes)
    da = read_segy(files.segy)
    labelset, _wells = import_boreholes(
        files.wells, da, recipe.borehole_radius if radius is None else radius,
        class_names=[c.name for c in classes])
    labelset = LabelSet(labelset.labels, classes, labelset.source, labelset.split,
                        labelset.dims)
    units = np.load(files.units, allow_pickle=False)
    layout = to_channels_first(da, **{flag: getattr(recipe, flag) for flag in ATTRIBUTE_FLAGS})
    try:
        task = build_task(da, labelset, layout=layout)
    except FhnError as err:  # e.g. wells outside a very small custom survey
        raise DataError(f"the demo survey in {target} gives no usable task: {err}") from err
    return task, units, files
