"""``fhn demo`` and ``fhn synth``: the built-in demo, and synthetic surveys of other styles
with their wells and run descriptions."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.cli.common import EXIT_OK, PROG
from app.cli.train import run_training, warn_if_unstable

if TYPE_CHECKING:  # torch-heavy modules are imported inside the commands
    pass


def cmd_demo(args: argparse.Namespace) -> int:
    from app.demo import demo_recipe, demo_task, read_class_table
    from fhn_core.ensemble import EnsembleTrainer
    from fhn_core.metrics import evaluate
    from fhn_core.prediction import predict
    from fhn_core.run_lock import RunLock

    recipe = demo_recipe(args.recipe)
    design, config = recipe.design, recipe.config
    shape = tuple(args.shape) if args.shape else None
    print("building the demo survey (once) ...")
    task, units, files = demo_task(shape, folder=args.demo_dir, recipe=recipe)
    classes = read_class_table(files.classes)
    changes: dict[str, Any] = {}
    if args.iterations is not None:
        changes["iterations"] = args.iterations  # validation runs at the last one anyway
    if args.device is not None:
        changes["device"] = args.device
    config = replace(config, **changes)
    out = Path(args.out)
    names = [c.name for c in classes]
    with RunLock(out):  # one writer per output folder, as for fhn train
        trainer = EnsembleTrainer(task, design, config, out_dir=out,
                                  class_colours=[c.colour for c in classes])
        warn_if_unstable(trainer)
        print(f"demo survey {files.segy} {task.spatial_shape}; {int((task.labels >= 0).sum())} "
              f"cells labelled from the wells; {design.n_layers} layers, {config.iterations} "
              f"iterations on {trainer.device}")
        code, result = run_training(trainer, out, names)
    prediction = predict(result.model, task.data, augment=recipe.augment,
                         stratigraphic_order=recipe.stratigraphic_order, device=trainer.device)
    full = evaluate(prediction.classes, units, task.n_classes)
    if recipe.stratigraphic_order:
        alone = evaluate(prediction.probabilities.argmax(0), units, task.n_classes)
        print(f"\nthe network alone (most probable class per cell): mean IoU "
              f"{alone.mean_iou:.4f}, OA {alone.overall_accuracy:.4f}, kappa {alone.kappa:.4f}")
        order = " > ".join(names[c] for c in result.model.info.class_order)
        print(f"with the stratigraphic order the wells show ({order}):")
    print("\nagainst the full ground truth (every cell of the survey):")
    print(full.table(names))
    return code


def synth_run_description(files, class_names: Sequence[str], radius: float,
                          comment: str) -> str:
    """The run TOML ``fhn synth`` writes beside a synthetic survey: data, wells and classes.

    No [design] or [training]: ``fhn train`` chooses them (its default). Paths are relative
    to the TOML's folder, which is the survey's.
    """
    names = ", ".join(json.dumps(n) for n in class_names)
    return "\n".join([
        f"# {comment}",
        "# fhn train run.toml; add [design] and [training] to choose the settings yourself",
        'output = "run"',
        "",
        "[data]",
        f"path = {json.dumps(files.segy.name)}",
        "",
        "[labels]",
        f"path = {json.dumps(files.wells.name)}",
        f"radius = {radius:g}             # traces around each well that get its labels",
        f"classes = [{names}]",
        "",
    ])


def cmd_synth(args: argparse.Namespace) -> int:
    from assets.demo_project import borehole_radius
    from assets.demo_survey import build_demo_survey, draw_style
    from io_adapters.atomic import atomic_output

    style = draw_style(args.style, args.seed)
    name = args.name or (f"{args.style}-{args.seed}" if args.style != "demo" else "demo")
    out = Path(args.out)
    files = build_demo_survey(out, shape=tuple(args.shape), seed=args.seed, style=style,
                              n_wells=args.wells, name=name, overwrite=args.overwrite)
    classes = [c["name"] for c in json.loads(files.classes.read_text(encoding="utf-8"))]
    run_toml = out / "run.toml"
    comment = (f"fhn synth --style {args.style} --seed {args.seed} --shape "
               f"{' '.join(map(str, args.shape))}: {style.describe()}")
    with atomic_output(run_toml) as tmp:
        tmp.write_text(synth_run_description(files, classes, borehole_radius(), comment),
                       encoding="utf-8")
    print(f"synthetic survey ({style.describe()})")
    for label, path in (("seismic", files.segy), ("wells", files.wells),
                        ("reference", files.units), ("classes", files.classes),
                        ("run", run_toml)):
        print(f"{label:10s}{path}")
    print(f"\nnext: {PROG} train {run_toml}\n"
          f"      {PROG} predict {out / 'run' / 'model'} {files.segy} --out "
          f"{out / 'prediction.npy'} --stratigraphic-order\n"
          f"      {PROG} evaluate {out / 'prediction.npy'} {files.units}")
    return EXIT_OK

