"""``fhn train``: a run description -> a trained model (fixed or auto recipe, ensembles; Ctrl-C
stops with a checkpoint; under torchrun every rank runs it, rank 0 writes)."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.cli.common import (
    EXIT_DIVERGED,
    EXIT_OK,
    EXIT_STOPPED,
    LAYOUT_FLAGS,
    PROG,
    UserError,
    available_memory,
    print_error,
    write_json,
)
from app.cli.run_config import (
    design_dims,
    design_from_section,
    load_run_config,
    paths_in,
    project_data,
    read_labels,
    setting_flag,
)

if TYPE_CHECKING:  # torch-heavy modules are imported inside the commands
    from fhn_core.ensemble import EnsembleTrainer


class _StopFlag:
    """Ctrl-C sets the flag (training ends after the iteration, with a checkpoint);
    a second Ctrl-C interrupts at once."""

    def __init__(self) -> None:
        self.stop = False
        self._previous: Any = None

    def __call__(self) -> bool:
        return self.stop

    def _handle(self, signum, frame) -> None:
        if self.stop:
            raise KeyboardInterrupt
        self.stop = True
        print(f"\n{PROG}: stopping after this iteration (Ctrl-C again to abort)",
              file=sys.stderr)

    def __enter__(self) -> _StopFlag:
        try:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread (e.g. embedded): no handler, no stop
            self._previous = None
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def run_training(trainer: EnsembleTrainer, out: Path, names: list[str],
                 progress_log: Path | None = None) -> tuple[int, Any]:
    """Train with a tqdm bar; save the model; print the validation summary.

    Under torchrun only rank 0 shows progress and writes; the other ranks train silently.
    ``progress_log``: also write the progress there as JSON lines (app.train_log).
    """
    from tqdm import tqdm

    from app.train_log import ProgressLog

    if not trainer.ranks.is_main:
        with _StopFlag() as flag:
            result = trainer.run(None, flag)
        return {"diverged": EXIT_DIVERGED, "stopped": EXIT_STOPPED}.get(result.status,
                                                                          EXIT_OK), result
    log = ProgressLog(progress_log) if progress_log is not None else None
    if log is not None:
        log.start(trainer.ranks.world_size, str(trainer.device), trainer.iteration,
                  trainer.iterations, trainer.history)
    postfix: dict[str, str] = {}
    with tqdm(total=trainer.iterations, initial=trainer.iteration, desc="training", unit="it",
              dynamic_ncols=True) as bar, _StopFlag() as flag:

        def progress(p) -> None:
            postfix["loss"] = f"{p.loss:.4f}"
            if p.validation is not None:
                postfix["val mIoU"] = f"{p.validation.mean_iou:.3f}"
            bar.set_postfix(postfix, refresh=False)
            bar.update(1)
            if log is not None:
                log.iteration(p)

        result = trainer.run(progress, flag)
    model_dir = result.model.save(out / "model")
    print(result.message)
    if result.diagnostics is not None:
        write_json(out / "diagnostics.json", result.diagnostics.as_dict())
        print(f"trained network (paper Fig. 3): {result.diagnostics}")
    if result.validation is not None:
        print("\nvalidation (held-back labels):")
        print(result.validation.table(names))
    else:
        print("no validation labels, so no validation metrics")
    print(f"\ncheckpoint: {out / 'checkpoint'}\nmodel:      {model_dir}")
    if log is not None:
        log.end(result)
    if result.status == "diverged":
        print_error(result.message)
        return EXIT_DIVERGED, result
    if result.status == "stopped":
        print(f"resume with: {PROG} train CONFIG --resume", file=sys.stderr)
        return EXIT_STOPPED, result
    return EXIT_OK, result


def _check_memory(design, task, config, device: str, ignore: bool) -> None:
    """Refuse (before allocating) a run that does not fit: fhn_core's one memory policy."""
    from fhn_core.memory import GB
    from fhn_core.memory_check import check_memory

    where, free = available_memory(device)
    check = check_memory(design, task.spatial_shape, config.patch, free,
                         n_classes=task.n_classes, averaging=config.average_decay > 0,
                         streamed=task.streamed)
    if not check.fits and not ignore:
        raise UserError(
            f"the design does not fit: the run needs about {check.needed / GB:.2f} GB (held "
            f"{check.held_bytes / GB:.2f}, a training step {check.step_bytes / GB:.2f}, the "
            f"whole-volume validation/prediction {check.prediction_bytes / GB:.2f}) but "
            f"{where} has {free / GB:.2f} GB free; use a smaller patch, fewer channels or a "
            "smaller design, or --ignore-memory to try anyway"
        )


def warn_if_unstable(trainer: EnsembleTrainer) -> None:
    """Warn (and go on) when h breaks the leapfrog bound for the weights training starts from."""
    from fhn_core.stability import check_stability

    warning = check_stability(trainer.model.net).warning()
    if warning:
        print(f"{PROG}: warning: {warning}", file=sys.stderr)


def cmd_train(args: argparse.Namespace) -> int:
    command_started = time.perf_counter()  # the auto budget counts reading the data too
    from app import auto_run
    from fhn_core import distributed
    from fhn_core.ensemble import EnsembleTrainer
    from fhn_core.run_lock import RunLock
    from io_adapters.open_data import load_data
    from io_adapters.seismic_attributes import ATTRIBUTE_FLAGS

    config_path = Path(args.config)
    base = config_path.resolve().parent
    sets = list(args.set or [])
    for flag, key in (("iterations", "training.iterations"), ("device", "training.device"),
                      ("learning_rate", "training.learning_rate"), ("seed", "training.seed")):
        if getattr(args, flag) is not None:
            value = getattr(args, flag)
            sets.append(f"{key}={json.dumps(value)}")
    config = load_run_config(config_path, sets)
    data = dict(config.get("data", {}))
    flags = (*ATTRIBUTE_FLAGS, *LAYOUT_FLAGS)
    unknown = sorted(set(data) - {"path", "project", "kind", "options", *flags})
    if unknown or ("path" in data) == ("project" in data):
        raise UserError(
            "[data] needs path = \"...\" or project = \"...\" (and optionally kind, "
            f"options, {', '.join(flags)})"
            + (f"; unknown key(s) {unknown}" if unknown else "")
        )
    training = dict(config.get("training", {}))
    recipe = _recipe_settings(training)
    if args.out is not None:
        out = Path(args.out)
    elif "output" in config:
        out = paths_in(config["output"], base, "output")[0]
    else:
        out = base / "runs" / config_path.stem
    if "project" in data:
        da = project_data(data, base)
    else:
        da = load_data(paths_in(data["path"], base, "[data] path"), kind=data.get("kind"),
                       **dict(data.get("options", {})))
    design_spec = dict(config.get("design", {}))
    label_spec = dict(config.get("labels", {}))
    if not label_spec:
        raise UserError("the config has no [labels]; add [labels] path = \"...\"")
    labelset = read_labels(label_spec, da, base)
    val = None
    if "validation" in label_spec:
        radius = {"radius": label_spec["radius"]} if "radius" in label_spec else {}
        val = read_labels({"path": label_spec["validation"], **radius}, da, base,
                           class_names=labelset.class_names)
        if val.class_names != labelset.class_names:
            raise UserError(
                f"validation classes {val.class_names} differ from the training classes "
                f"{labelset.class_names}; use one class table"
            )

    def design_of(layout, n_classes: int, overrides: dict[str, Any]):
        return design_from_section({**design_spec, **overrides}, base, layout, n_classes)

    def checked(prepare):  # every candidate's design must fit, as a fixed run's
        def prepare_checked(candidate):
            prepared = prepare(candidate)
            _check_memory(prepared.design, prepared.task, prepared.config,
                          prepared.config.device, args.ignore_memory)
            return prepared
        return prepare_checked

    inputs = auto_run.RunInputs(
        da, labelset, design_of, flags={a: setting_flag(data, a) for a in flags},
        training=training, val_labels=val, spatial_dims=design_dims(design_spec, base))
    inputs.prepare = checked(inputs.prepare)  # type: ignore[method-assign]
    auto = recipe["recipe"] == "auto"
    if auto and distributed.launched_by_torchrun():
        raise UserError("recipe = \"auto\" runs in one process; under torchrun set "
                        "[training] recipe = \"fixed\" (or --set training.recipe=\"fixed\")")
    record_path = out / auto_run.RECORD_FILE
    if auto and args.resume:  # continue the final training the recipe started
        record = auto_run.read_record(record_path)
        if record is None:
            raise UserError(f"{record_path} not found: the auto recipe had not chosen yet; "
                            "train again without --resume")
        chosen = auto_run.Candidate(record["chosen"], record["overrides"])
        prepared = inputs.prepare(chosen)
        task = replace(prepared.task, baseline_weight=record.get("baseline_weight", 0.0))
        design = prepared.design
        train_config = auto_run.final_config_of(record)
    elif auto:
        task = design = train_config = None  # chosen below, under the run's lock
    else:
        prepared = inputs.prepare(auto_run.Candidate("as given", {}))
        task, design, train_config = prepared.task, prepared.design, prepared.config
    device = str(training.get("device", "auto"))
    ranks = distributed.start(device) if distributed.launched_by_torchrun() else None
    ended_well = False
    try:
        # One writer per output folder (the app's worker included); under torchrun, rank 0.
        with distributed.held_by_rank_zero(lambda: RunLock(out), ranks or distributed.Ranks()):
            choice = None
            timings: dict[str, float] = {}
            if auto and not args.resume:
                started = time.perf_counter()
                with _StopFlag() as flag:
                    choice, prepared, train_config = auto_run.choose_settings(
                        inputs, auto_run.fixed_keys(data, design_spec, training),
                        budget_minutes=max(0.01, recipe["budget_minutes"]
                                           - (started - command_started) / 60.0),
                        n_folds=recipe["folds"],
                        seed=int(training.get("seed", 0)), report=print, should_stop=flag)
                timings["cross_validation"] = time.perf_counter() - started
                task, design = prepared.task, prepared.design
                print(choice.reason)
                auto_run.write_record(record_path, choice, list(task.class_names), timings,
                                      train_config)
            trainer = EnsembleTrainer(task, design, train_config, out_dir=out,
                                      class_colours=[c.colour for c in labelset.classes],
                                      ranks=ranks, resume=args.resume)
            if trainer.ranks.is_main:
                if args.resume:
                    print(f"resuming from {out / 'checkpoint'} at iteration {trainer.iteration}")
                where = (f"{trainer.ranks.world_size} ranks" if trainer.ranks.active
                         else str(trainer.device))
                networks = (f"; an ensemble of {trainer.size} networks" if trainer.size > 1
                            else "")
                print(f"data {tuple(task.data.shape)}, {task.n_classes} classes, "
                      f"{task.n_labelled} labelled cells; design "
                      f"{design.name or 'from config'} ({design.n_layers} layers) on "
                      f"{where}{networks}" + ("; recipe auto, final training on all labels"
                                              if auto else "; recipe fixed"))
                warn_if_unstable(trainer)
                # DDP: no lone steps; auto measured its pace already
                if not args.no_estimate and not trainer.ranks.active and not auto:
                    print(f"estimated time: {trainer.measure().summary()}", flush=True)
            started = time.perf_counter()
            code, _ = run_training(trainer, out, list(task.class_names),
                                   Path(args.progress_log) if args.progress_log else None)
            timings["final_training"] = time.perf_counter() - started
            if choice is not None:
                auto_run.write_baseline_inputs(out / auto_run.BASELINE_DIR, task,
                                               int(training.get("seed", 0)))
                auto_run.write_record(record_path, choice, list(task.class_names), timings,
                                      train_config)
                _print_choice(choice, record_path)
        ended_well = True
    finally:
        distributed.stop(synchronise=ended_well)
    return code


def _recipe_settings(training: dict[str, Any]) -> dict[str, Any]:
    """Take the recipe's own keys out of [training]: recipe, budget_minutes, folds."""
    from app.auto_run import RECIPES
    from fhn_core.auto_recipe import DEFAULT_BUDGET_MINUTES

    recipe = training.pop("recipe", "auto")
    if recipe not in RECIPES:
        raise UserError(f"[training] recipe must be \"auto\" or \"fixed\", got {recipe!r}")
    budget = training.pop("budget_minutes", DEFAULT_BUDGET_MINUTES)
    folds = training.pop("folds", None)  # None: the recipe's number for the data kind
    if not isinstance(budget, int | float) or isinstance(budget, bool) or not budget > 0:
        raise UserError(f"[training] budget_minutes must be a positive number, got {budget!r}")
    if folds is not None and (not isinstance(folds, int) or isinstance(folds, bool)
                              or folds < 2):
        raise UserError(f"[training] folds must be a whole number >= 2, got {folds!r}")
    return {"recipe": recipe, "budget_minutes": float(budget), "folds": folds}


def _print_choice(choice, record_path: Path) -> None:
    print(f"\ncross-validated on spatial folds of the labels (not on training cells):\n"
          f"{choice.score_line()}")
    net = choice.chosen.scores
    if net is not None:
        print(f"network mean IoU {net.mean_iou:.2f} ± {net.mean_iou_sd:.2f}"
              + (f", baseline {choice.baseline.mean_iou:.2f} ± {choice.baseline.mean_iou_sd:.2f}"
                 if choice.baseline is not None else "")
              + (f", the map ({choice.map_label}) {choice.mapped.mean_iou:.2f} ± "
                 f"{choice.mapped.mean_iou_sd:.2f}" if choice.mapped is not None else ""))
    if choice.baseline_wins:
        print(f"{PROG}: note: {choice.text().splitlines()[-1]} Write it with "
              f"{PROG} predict MODEL DATA --out FILE --baseline")
    print(f"record: {record_path}")

