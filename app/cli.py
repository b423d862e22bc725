"""The ``fhn`` command line: estimate, train, predict, ingest, evaluate, diagnose, demo, synth.

Every subcommand has ``--help``. Exit codes: 0 success; 2 bad input (one line on stderr,
``fhn: error: <message>``, never a traceback; argparse usage errors too); 1 training
diverged (the last good weights are saved); 130 training stopped by Ctrl-C (a checkpoint
is saved; ``fhn train CONFIG --resume`` continues it). Data that reads but looks wrong
(io_adapters' DataWarning) prints one ``fhn: warning: <message>`` line each and the command
goes on. ``fhn train`` and ``fhn demo`` lock their output folder (fhn_core.run_lock): a
second run on it ends with exit code 2, naming the pid of the run that holds it.

``fhn train`` reads a TOML run description::

    output = "runs/f3"                 # checkpoints and the model go here

    [data]
    path = "f3.sgy"                    # or a list: two ENVI cubes (dates), several GeoTIFFs
    # project = "my-survey"            # instead of path: an app project folder's data, as
                                       #   the app loads it (every source, its options)
    kind = "segy"                      # optional; else by extension
    options = { iline = 189 }          # optional reader options
    vertical_channel = true            # seismic: add sample time/depth as a channel
    envelope_channel = true            # seismic: add the envelope (instantaneous amplitude)
    semblance_channel = true           # seismic: add the semblance (trace coherence)
    change_channels = true             # two dates: add t2 - t1 per band and ||t2 - t1||
    every_slice = true                 # 3D over bands: labels on every band slice, logits
                                       #   averaged over the bands (else one slice, eq. 3.20)

    [labels]
    path = "wells.csv"                 # .npz LabelSet (or listed label cells, kind =
                                       #   "labelcells"), label raster (.tif/.npy/.sgy),
    radius = 1.5                       #   boreholes/points CSV, points GeoJSON; radius in
                                       #   cells (boreholes 1.5, points 0 unless given)
    classes = ["sand", "shale"]        # optional class names (order = ids)
    # masks = ["change.bmp", "unchanged.bmp"]   # instead of path: two-mask reference
    # points = "points.csv"            # instead of path: x,y,class or row,col,class
    #                                  #   (CSV or GeoJSON; fhn sample-points writes one)
    # validation = "val.npz"                    # optional held-back labels

    [design]                           # preset = "seismic-3d", or file = "design.toml",
    spatial_dims = 3                   #   or the design keys inline; omitted: a small
    in_channels = 4                    #   default design for the data
    segments = [[0, 2, 8], [1, 2, 16], [0, 2, 8]]
    # channel_expansion = "haar"       # more classes than channels (section 3.2): Haar-
                                       #   transform the input, output 2x coarser (3.4)

    [training]                         # any fhn_core.training.TrainConfig field, and
    recipe = "auto"                    #   auto (default): channels, design size and
                                       #   iterations left open are chosen by spatially
                                       #   blocked cross-validation; "fixed": as given
    budget_minutes = 15                # auto: the time it may spend (default 15)
    folds = 5                          # auto: spatial folds (default 5)
    iterations = 200                   # auto: the most iterations; set = not chosen
    learning_rate = 0.005
    ensemble = 1                       # N networks (seeds seed, seed + 1000, ...) trained
                                       #   one after another, their logits averaged

The auto recipe writes OUTPUT/cross_validation.json (what it chose and why, the network's
and a per-cell random forest's cross-validated scores) and OUTPUT/baseline/ (what refits
the forest: ``fhn predict MODEL DATA --out F --baseline``). Relative paths are relative to
the TOML file. ``--set section.key=value`` overrides any
key (the value is read as TOML, else taken as text); ``--iterations``, ``--device``,
``--learning-rate``, ``--seed`` and ``--out`` are shortcuts for the common ones. Before
training starts, the run's time is estimated from one timed step and one whole-data pass
(``--no-estimate`` skips it). ``--progress-log FILE`` writes the run's progress as JSON
lines for a program watching it (:mod:`app.train_log`; the app's multi-process training).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
import tomllib
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fhn_core.errors import FhnError
from io_adapters.errors import DataError, DataWarning

if TYPE_CHECKING:  # torch-heavy modules are imported inside the commands
    from fhn_core.ensemble import EnsembleTrainer

PROG = "fhn"
EXIT_OK, EXIT_DIVERGED, EXIT_USAGE, EXIT_STOPPED = 0, 1, 2, 130
CONFIG_SECTIONS = ("data", "labels", "design", "training", "output")
LAYOUT_FLAGS = ("change_channels", "every_slice")  # [data] switches of app.layout


class UserError(Exception):
    """A problem with what the user gave; shown as one line, exit code 2."""


# --------------------------------------------------------------------------- helpers
def _err(message: str) -> None:
    print(f"{PROG}: error: {' '.join(str(message).split())}", file=sys.stderr)


@contextmanager
def _data_warnings_on_stderr() -> Iterator[None]:
    """Show each DataWarning (data that reads but looks wrong) as one ``fhn: warning:`` line."""
    with warnings.catch_warnings():
        warnings.simplefilter("always", DataWarning)
        previous = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None) -> None:
            if issubclass(category, DataWarning):
                text = " ".join(str(message).split())
                print(f"{PROG}: warning: {text}", file=sys.stderr)
            else:
                previous(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        yield


def _available_memory(device: str) -> tuple[str, float | None]:
    """(device description, free bytes) for 'cpu', 'cuda' or 'auto'."""
    import torch

    from fhn_core.prediction import resolve_device

    dev = resolve_device(device)
    if dev.type == "cuda" and dev.index is None and "LOCAL_RANK" in os.environ:
        # under torchrun, before the rank has joined: its own GPU, not GPU 0 for every rank
        dev = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    if dev.type == "cuda":
        free, _total = torch.cuda.mem_get_info(dev)
        return f"cuda ({torch.cuda.get_device_name(dev)})", float(free)
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return "cpu", float(line.split()[1]) * 1024
    except OSError:
        pass
    return "cpu", None


def _load_design_arg(text: str, in_channels: int | None = None):
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


def _paths(value: Any, base: Path, what: str) -> list[Path]:
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(v, str) and v for v in items):
        raise UserError(f"{what} must be a path or a list of paths, got {value!r}")
    return [p if p.is_absolute() else base / p for p in (Path(v).expanduser() for v in items)]


# --------------------------------------------------------------------------- labels
def _read_labels(spec: dict[str, Any], da, base: Path, class_names=None):
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
        masks = _paths(spec["masks"], base, "[labels] masks")
        if len(masks) != 2:
            raise UserError("[labels] masks needs two images: [member, non-member]")
        from app.layout import grid_of

        kwargs = {"names": tuple(names)} if names else {}
        return import_mask_pair(masks[0], masks[1], grid_of(da)[1], **kwargs)
    if "path" not in spec:
        raise UserError("[labels] needs path = \"...\" (or masks = [...]); see fhn train --help")
    path = _paths(spec["path"], base, "[labels] path")[0]
    if not path.is_file():
        raise UserError(f"label file {path} not found; check the path")
    kind = spec.get("kind") or _label_kind(path)
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


def _project_data(data: dict[str, Any], base: Path):
    """The data of an app project folder, loaded as the app loads it (every source with its
    own options, several volumes stacked)."""
    from io_adapters.project import Project

    extra = sorted({"kind", "options"} & set(data))
    if extra:
        raise UserError(f"[data] project = ... takes its sources' kinds and options from the "
                        f"project; leave out {', '.join(extra)}")
    return Project.open(_paths(data["project"], base, "[data] project")[0]).load_data()


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


def _flag(section: dict[str, Any], key: str) -> bool:
    value = section.get(key, False)
    if not isinstance(value, bool):
        raise UserError(f"[data] {key} must be true or false, got {value!r}")
    return value


def _label_kind(path: Path) -> str:
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


# --------------------------------------------------------------------------- design
def _design_from_section(spec: dict[str, Any], base: Path, layout, n_classes: int):

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
    from app.training_task import default_design
    from fhn_core.design import NetworkDesign

    if not spec:
        return default_design(layout, n_classes)
    if "layers_per_level" in spec:  # the default design, deeper or shallower
        if set(spec) != {"layers_per_level"}:
            raise UserError("[design] layers_per_level sizes the default design and stands "
                            f"alone; got {sorted(spec)}")
        return default_design(layout, n_classes, layers_per_level=int(spec["layers_per_level"]))
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
        path = _paths(spec["file"], base, "[design] file")[0]
        return NetworkDesign.load(path)
    return NetworkDesign.from_dict(spec, source="[design]")


def _design_dims(spec: dict[str, Any], base: Path) -> int | None:
    """The spatial dims the [design] asks for (picks the data layout), None = natural."""
    from fhn_core.design import PRESETS, NetworkDesign

    if "preset" in spec:
        if spec["preset"] not in PRESETS:
            raise UserError(
                f"unknown design preset {spec['preset']!r}; presets: {', '.join(PRESETS)}"
            )
        return PRESETS[spec["preset"]]().spatial_dims
    if "file" in spec:
        return NetworkDesign.load(_paths(spec["file"], base, "[design] file")[0]).spatial_dims
    dims = spec.get("spatial_dims")
    return int(dims) if isinstance(dims, int) else None


# --------------------------------------------------------------------------- training
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


def _run_training(trainer: EnsembleTrainer, out: Path, names: list[str],
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
        _write_json(out / "diagnostics.json", result.diagnostics.as_dict())
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
        _err(result.message)
        return EXIT_DIVERGED, result
    if result.status == "stopped":
        print(f"resume with: {PROG} train CONFIG --resume", file=sys.stderr)
        return EXIT_STOPPED, result
    return EXIT_OK, result


def _check_memory(design, task, config, device: str, ignore: bool) -> None:
    """Refuse (before allocating) a run that does not fit: fhn_core's one memory policy."""
    from fhn_core.memory import GB
    from fhn_core.memory_check import check_memory

    where, free = _available_memory(device)
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


def _write_json(path: Path, record: dict[str, Any]) -> None:
    from io_adapters.atomic import atomic_output

    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(record, indent=1), encoding="utf-8")


def _warn_if_unstable(trainer: EnsembleTrainer) -> None:
    """Warn (and go on) when h breaks the leapfrog bound for the weights training starts from."""
    from fhn_core.stability import check_stability

    warning = check_stability(trainer.model.net).warning()
    if warning:
        print(f"{PROG}: warning: {warning}", file=sys.stderr)


# --------------------------------------------------------------------------- commands
def cmd_estimate(args: argparse.Namespace) -> int:
    from fhn_core.memory import GB, estimate_memory
    from fhn_core.memory_check import check_memory
    from fhn_core.paper import EXAMPLES, comparison_table

    example = EXAMPLES.get(args.design)
    if args.input_shape is None and example is None:
        raise UserError("--input-shape is needed for a design that is not one of the paper's "
                        f"examples ({', '.join(EXAMPLES)}), e.g. --input-shape 1 12 248 248 248")
    shape = tuple(args.input_shape or example.input_shape)
    if len(shape) < 4:
        raise UserError("--input-shape needs N C and 2 or 3 spatial sizes, e.g. 1 12 248 248 248")
    design = _load_design_arg(args.design, in_channels=shape[1])
    estimate = estimate_memory(design, shape)
    title = design.name or args.design
    print(f"design: {title}, {design.n_layers} layers; input {shape}")
    print(estimate.table())
    if example is not None and shape == example.input_shape:
        print(f"\nthe paper's Table 1 for {example.title}, input {shape}:")
        print(comparison_table(example))
    where, free = _available_memory(args.device)
    check = check_memory(design, shape[2:], None, free)
    print(f"\ntraining on this whole input (fhn_core.memory_check):\n{check.breakdown()}")
    need = check.needed / GB
    if free is None:
        print(f"device {where}: available memory unknown; training needs about {need:.3f} GB")
    elif check.fits:
        print(f"device {where}: {free / GB:.3f} GB available; training needs {need:.3f} GB: "
              "fits")
    else:
        print(f"device {where}: {free / GB:.3f} GB available; training needs {need:.3f} GB: "
              "DOES NOT FIT (use a smaller input, fewer channels or a smaller design)")
    return EXIT_OK


def cmd_train(args: argparse.Namespace) -> int:
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
        out = _paths(config["output"], base, "output")[0]
    else:
        out = base / "runs" / config_path.stem
    if "project" in data:
        da = _project_data(data, base)
    else:
        da = load_data(_paths(data["path"], base, "[data] path"), kind=data.get("kind"),
                       **dict(data.get("options", {})))
    design_spec = dict(config.get("design", {}))
    label_spec = dict(config.get("labels", {}))
    if not label_spec:
        raise UserError("the config has no [labels]; add [labels] path = \"...\"")
    labelset = _read_labels(label_spec, da, base)
    val = None
    if "validation" in label_spec:
        radius = {"radius": label_spec["radius"]} if "radius" in label_spec else {}
        val = _read_labels({"path": label_spec["validation"], **radius}, da, base,
                           class_names=labelset.class_names)
        if val.class_names != labelset.class_names:
            raise UserError(
                f"validation classes {val.class_names} differ from the training classes "
                f"{labelset.class_names}; use one class table"
            )

    def design_of(layout, n_classes: int, overrides: dict[str, Any]):
        return _design_from_section({**design_spec, **overrides}, base, layout, n_classes)

    def checked(prepare):  # every candidate's design must fit, as a fixed run's
        def prepare_checked(candidate):
            prepared = prepare(candidate)
            _check_memory(prepared.design, prepared.task, prepared.config,
                          prepared.config.device, args.ignore_memory)
            return prepared
        return prepare_checked

    inputs = auto_run.RunInputs(
        da, labelset, design_of, flags={a: _flag(data, a) for a in flags},
        training=training, val_labels=val, spatial_dims=_design_dims(design_spec, base))
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
        task, design = prepared.task, prepared.design
        train_config = auto_run.final_config_of(record)
    elif auto:
        task = design = train_config = None  # chosen below, under the run's lock
    else:
        prepared = inputs.prepare(auto_run.Candidate("as given", {}))
        task, design, train_config = prepared.task, prepared.design, prepared.config
    device = str(training.get("device", "auto"))
    ranks = distributed.start(device) if distributed.launched_by_torchrun() else None
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
                        budget_minutes=recipe["budget_minutes"], n_folds=recipe["folds"],
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
                _warn_if_unstable(trainer)
                # DDP: no lone steps; auto measured its pace already
                if not args.no_estimate and not trainer.ranks.active and not auto:
                    print(f"estimated time: {trainer.measure().summary()}", flush=True)
            started = time.perf_counter()
            code, _ = _run_training(trainer, out, list(task.class_names),
                                    Path(args.progress_log) if args.progress_log else None)
            timings["final_training"] = time.perf_counter() - started
            if choice is not None:
                auto_run.write_baseline_inputs(out / auto_run.BASELINE_DIR,
                                               task.valid_labels(task.labels),
                                               int(training.get("seed", 0)), task.n_classes)
                auto_run.write_record(record_path, choice, list(task.class_names), timings,
                                      train_config)
                _print_choice(choice, record_path)
    finally:
        distributed.stop()
    return code


def _recipe_settings(training: dict[str, Any]) -> dict[str, Any]:
    """Take the recipe's own keys out of [training]: recipe, budget_minutes, folds."""
    from app.auto_run import RECIPES
    from fhn_core.auto_recipe import DEFAULT_BUDGET_MINUTES, DEFAULT_FOLDS

    recipe = training.pop("recipe", "auto")
    if recipe not in RECIPES:
        raise UserError(f"[training] recipe must be \"auto\" or \"fixed\", got {recipe!r}")
    budget = training.pop("budget_minutes", DEFAULT_BUDGET_MINUTES)
    folds = training.pop("folds", DEFAULT_FOLDS)
    if not isinstance(budget, int | float) or isinstance(budget, bool) or not budget > 0:
        raise UserError(f"[training] budget_minutes must be a positive number, got {budget!r}")
    if not isinstance(folds, int) or isinstance(folds, bool) or folds < 2:
        raise UserError(f"[training] folds must be a whole number >= 2, got {folds!r}")
    return {"recipe": recipe, "budget_minutes": float(budget), "folds": folds}


def _print_choice(choice, record_path: Path) -> None:
    print(f"\ncross-validated on spatial folds of the labels (not on training cells):\n"
          f"{choice.score_line()}")
    net = choice.chosen.scores
    if net is not None:
        print(f"network mean IoU {net.mean_iou:.2f} ± {net.mean_iou_sd:.2f}"
              + (f", baseline {choice.baseline.mean_iou:.2f} ± {choice.baseline.mean_iou_sd:.2f}"
                 if choice.baseline is not None else ""))
    if choice.baseline_wins:
        print(f"{PROG}: note: {choice.text().splitlines()[-1]} Write it with "
              f"{PROG} predict MODEL DATA --out FILE --baseline")
    print(f"record: {record_path}")


def _model_folder(path: Path) -> Path:
    from fhn_core.checkpoint import newest_complete

    for candidate in (path, path / "model", path / "checkpoint"):
        # a save killed between its renames leaves the complete copy under another name
        if (candidate / "model.json").is_file() or newest_complete(candidate):
            return candidate
    if not path.exists():
        raise UserError(f"model folder {path} not found; check the path")
    return path  # TrainedModel.load names what is missing


def cmd_predict(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from app.export import export_prediction
    from app.layout import layout_for_model
    from fhn_core.checkpoint import TrainedModel
    from fhn_core.prediction import predict
    from io_adapters.open_data import load_data

    streamed = args.scheduler or args.store or any(Path(p).suffix.lower() == ".zarr"
                                                   for p in args.data)
    if streamed and args.baseline:
        raise UserError("--baseline predicts in memory; leave out --scheduler/--store, or "
                        "give the SEG-Y instead of the .zarr store")
    if streamed:
        return _predict_streamed(args)
    model = TrainedModel.load(_model_folder(Path(args.model)))
    paths = [Path(p) for p in args.data]
    da = load_data(paths if len(paths) > 1 else paths[0], kind=args.kind)
    layout = layout_for_model(da, model)
    if layout.slice_axis != model.info.slice_axis:
        raise UserError(
            f"the model embeds labels at spatial axis {model.info.slice_axis} but this data's "
            f"layout has {layout.slice_axis}; apply the model to the kind of data it was "
            "trained on"
        )
    info = model.info
    if layout.data.shape[0] != info.data_channels:
        raise UserError(
            f"{', '.join(map(str, paths))} give(s) {layout.data.shape[0]} channel(s) but the "
            f"model was trained on {info.data_channels}; apply it to the kind of data it was "
            "trained on"
        )
    table = list(zip(info.class_names or [f"class {i}" for i in range(info.n_classes)],
                     info.class_colours or [""] * info.n_classes, strict=False))
    class_index = None
    if args.class_ is not None:
        names = [n for n, _ in table]
        if args.class_ in names:
            class_index = names.index(args.class_)
        elif args.class_.isdigit():
            class_index = int(args.class_)
        else:
            raise UserError(f"--class {args.class_!r} is not a class; classes are {names}")
    if args.block is not None and args.block < 1:
        raise UserError(f"--block {args.block} must be a positive number of cells")
    overlap = args.overlap if args.overlap is not None else min(16, (args.block or 0) // 4)
    if args.block is not None and not 0 <= overlap < args.block:
        # fhn_core steps blocks by (block - overlap), at least 1: one block per cell otherwise
        raise UserError(f"--overlap {overlap} must be at least 0 and less than --block")
    if args.baseline and (args.augment or args.stratigraphic_order):
        raise UserError("--baseline predicts each cell alone: leave out --augment and "
                        "--stratigraphic-order")
    with tqdm(total=100, desc="predicting", unit="%", dynamic_ncols=True) as bar:

        def progress(fraction: float) -> None:
            bar.update(round(fraction * 100) - bar.n)

        if args.baseline:
            from app import auto_run

            folder = auto_run.baseline_folder(_model_folder(Path(args.model)))
            prediction = auto_run.baseline_prediction(folder, layout, progress)
        else:
            prediction = predict(model, layout.data, block=args.block, overlap=overlap,
                                 augment=args.augment,
                                 stratigraphic_order=args.stratigraphic_order,
                                 device=args.device, progress=progress)
    written = export_prediction(prediction, da, Path(args.out), what=args.what,
                                         class_table=table, class_index=class_index)
    grid = "the data grid"
    if prediction.output_factor > 1:
        grid = (f"the data grid (brought back by nearest from the {prediction.output_factor}x "
                "coarser output grid)" if args.what != "probabilities" else
                f"the network's output grid, {prediction.output_factor}x coarser than the data")
    who = "the per-cell baseline's " if args.baseline else ""
    print(f"{who}{args.what} written to {written}, on {grid}")
    return EXIT_OK


def _predict_streamed(args: argparse.Namespace) -> int:
    """Predict block by block on Dask into a Zarr store, then export from it (app.streamed)."""
    from tqdm import tqdm

    from app import streamed
    from io_adapters.open_data import load_data

    if len(args.data) != 1:
        raise UserError("streamed prediction takes one survey (a .zarr store or a SEG-Y)")
    if args.augment:
        raise UserError("--augment is not available with --scheduler/--store/.zarr data; "
                        "leave it out (or predict in memory)")
    out = Path(args.out)
    store = out if out.suffix.lower() == ".zarr" else Path(args.store or out.with_suffix(".zarr"))
    da = load_data(Path(args.data[0]), kind=args.kind)
    where = args.scheduler or "local threads"
    with tqdm(total=100, desc=f"predicting ({where})", unit="%", dynamic_ncols=True) as bar:

        def progress(fraction: float) -> None:
            bar.update(round(fraction * 100) - bar.n)

        streamed.predict_to_store(
            _model_folder(Path(args.model)), da, store, block=args.block or 64,
            overlap=args.overlap, stratigraphic_order=args.stratigraphic_order,
            device=args.device, scheduler=args.scheduler,
            workers=args.workers, overwrite=True, progress=progress)
    print(f"classes, probabilities and entropy written to {store}")
    if store != out:
        names = json.loads(streamed.open_prediction(store).attrs["class_names"])
        class_index = None
        if args.class_ is not None:
            if args.class_ not in names and not args.class_.isdigit():
                raise UserError(f"--class {args.class_!r} is not a class; classes are {names}")
            class_index = names.index(args.class_) if args.class_ in names else int(args.class_)
        written = streamed.export_store(store, out, what=args.what, class_index=class_index)
        print(f"{args.what} written to {written}")
    return EXIT_OK


def cmd_ingest(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from io_adapters.zarr_store import add_fast_slices, ingest_segy, is_segy_store

    adding = args.fast_slices and not args.overwrite and is_segy_store(args.store) \
        and not args.restart
    with tqdm(total=100, desc="fast slices" if adding else "ingesting", unit="%",
              dynamic_ncols=True) as bar:

        def progress(fraction: float) -> None:
            bar.update(round(fraction * 100) - bar.n)

        if adding:  # an existing store: the copies come from its chunks, not the SEG-Y
            store = add_fast_slices(args.store, progress=progress)
        else:
            store = ingest_segy(args.segy, args.store, iline=args.iline, xline=args.xline,
                                fill_missing=args.fill_missing, chunks=args.chunks,
                                restart=args.restart, overwrite=args.overwrite,
                                fast_slices=args.fast_slices, progress=progress)
    print(f"crossline and time-slice copies written into {store}" if adding
          else f"{args.segy} ingested into {store}")
    return EXIT_OK


def cmd_evaluate(args: argparse.Namespace) -> int:
    import numpy as np

    from fhn_core.metrics import error_map, evaluate
    from io_adapters.open_data import load_class_map

    pred = load_class_map(args.prediction)
    names = _class_names_for(args)
    ref, ref_names = _reference(args, pred.shape, names)
    names = names or ref_names
    if pred.shape != ref.shape:
        raise UserError(
            f"the prediction {args.prediction} has shape {pred.shape} but the reference "
            f"{args.reference or 'labels'} has {ref.shape}; compare maps on the same grid"
        )
    if args.region is not None:
        from app.regions import region_mask

        ref = np.where(region_mask(args.region, ref.shape), ref, -1)
    known = ref >= 0
    if args.classes is not None:
        n_classes = int(args.classes)
    else:
        n_classes = max(int(max(pred[known].max(initial=0), ref.max(initial=0))) + 1,
                        len(names))
    if known.any() and pred[known].min() < 0:
        raise UserError(f"{args.prediction} has no class at cells the reference labels")
    metrics = evaluate(pred, ref, n_classes)
    where = f" in the region {args.region}" if args.region else ""
    print(f"{int(known.sum())} reference cells{where}, {n_classes} classes")
    print(metrics.table(names[:n_classes] if len(names) >= n_classes else None))
    if args.error_map is not None:
        _write_error_map(Path(args.error_map), np.asarray(error_map(pred, ref)))
        print(f"error map written to {args.error_map}")
    return EXIT_OK


def _class_names_for(args: argparse.Namespace) -> list[str]:
    """The class table to print: the model's (--model), else the prediction file's (.nc)."""
    if args.model is not None:
        folder = _model_folder(Path(args.model))
        try:
            info = json.loads((folder / "model.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise UserError(f"cannot read the class table of {folder} ({err}); give a model "
                            "folder written by fhn train") from err
        return [str(n) for n in info.get("class_names", [])]
    if Path(args.prediction).suffix.lower() == ".nc":
        import xarray as xr

        try:
            with xr.open_dataarray(args.prediction, engine="h5netcdf") as arr:
                return [str(n) for n in json.loads(arr.attrs.get("class_names", "[]"))]
        except (OSError, ValueError):
            return []
    return []


def _reference(args: argparse.Namespace, shape: tuple[int, ...],
               names: list[str]) -> tuple[Any, list[str]]:
    """The reference labels on the prediction's grid, in one of training's label forms, and
    the class names they carry: a class map (ids 0..K-1, -1 unlabelled), a mask pair, or
    points (CSV/GeoJSON, ``--radius`` cells, 0 by default) placed on the grid of ``--data``
    or, without it, of the prediction file."""
    from io_adapters.open_data import load_class_map, load_data

    given = [form for form, value in (("REFERENCE", args.reference), ("--masks", args.masks))
             if value]
    if len(given) != 1:
        raise UserError("give the reference as one of: a class map or points file "
                        "(REFERENCE), or --masks MEMBER NON_MEMBER")
    if args.masks:
        spec: dict[str, Any] = {"masks": list(args.masks)}
    elif _label_kind(Path(args.reference)) in ("points",):
        spec = {"path": args.reference, "radius": args.radius}
    else:
        if args.radius != 0.0:
            raise UserError("--radius is for points; a class map is used cell for cell")
        return load_class_map(args.reference), []
    if args.data:
        paths = [Path(p) for p in args.data]
        grid = load_data(paths if len(paths) > 1 else paths[0])
    else:
        grid = _grid_of_prediction(Path(args.prediction), shape)
    labelset = _read_labels(spec, grid, Path.cwd(), class_names=names or None)
    return labelset.labels.astype("int64"), list(labelset.class_names)


def _grid_of_prediction(path: Path, shape: tuple[int, ...]):
    """The prediction's own grid (with its georeferencing where the file has one)."""
    import numpy as np
    import xarray as xr

    from io_adapters.open_data import load_data

    if path.suffix.lower() in (".tif", ".tiff", ".sgy", ".segy"):
        return load_data(path)
    if len(shape) != 2:
        raise UserError(f"{path} holds no grid coordinates; give the data it was predicted "
                        "from with --data")
    return xr.DataArray(np.zeros(shape, np.float32), dims=("y", "x"))


def cmd_sample_points(args: argparse.Namespace) -> int:
    from app.regions import region_mask
    from io_adapters.reference_points import sample_per_class, write_points_csv

    labels, names = _dense_reference(args)
    region = region_mask(args.region, labels.shape) if args.region else None
    drawn = sample_per_class(labels, args.per_class, args.seed, region)
    if args.classes:
        names = list(args.classes)
    if len(names) < int(labels.max()) + 1:
        names = [*names, *(f"class {k + 1}" for k in range(len(names), int(labels.max()) + 1))]
    written = write_points_csv(Path(args.out), drawn, names)
    where = f" in {args.region}" if args.region else ""
    print(f"{int((drawn >= 0).sum())} points ({args.per_class} per class{where}, seed "
          f"{args.seed}) written to {written}; train on them with [labels] points = "
          f"\"{written}\"")
    return EXIT_OK


def _dense_reference(args: argparse.Namespace) -> tuple[Any, list[str]]:
    """A reference to draw points from: a mask pair or a class map, and its class names."""
    from io_adapters.open_data import load_class_map

    if bool(args.reference) == bool(args.masks):
        raise UserError("give the reference as a class map (REFERENCE) or --masks MEMBER "
                        "NON_MEMBER")
    if args.reference:
        if Path(args.reference).suffix.lower() == ".npz":
            from io_adapters.labels import load_labels

            labelset = load_labels(args.reference)
            return labelset.labels.astype("int64"), list(labelset.class_names)
        return load_class_map(args.reference), []
    from PIL import Image

    from io_adapters.label_rasters import import_mask_pair

    first = Path(args.masks[0])
    if not first.is_file():
        raise UserError(f"mask image {first} not found; check the path")
    with Image.open(first) as img:
        shape = (img.height, img.width)
    labelset = import_mask_pair(args.masks[0], args.masks[1], shape)
    return labelset.labels.astype("int64"), list(labelset.class_names)


def _write_error_map(path: Path, errors) -> None:
    """PNG of right (green) / wrong (red) / unlabelled (grey); 3D: the middle inline."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import ListedColormap
    from matplotlib.figure import Figure

    from io_adapters.atomic import atomic_output

    if errors.ndim not in (2, 3):
        raise UserError(f"an error-map image needs 2D or 3D class maps, these are "
                        f"{errors.ndim}D; leave out --error-map")
    title, xlabel, ylabel = "error map", "column", "row"
    if errors.ndim == 3:
        middle = errors.shape[0] // 2
        errors = errors[middle].T  # (samples, xline): time down the page
        title = f"error map, middle inline (index {middle})"
        xlabel, ylabel = "crossline index", "sample index"
    fig = Figure(figsize=(6, 5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    cmap = ListedColormap(["#bbbbbb", "#2ca02c", "#d62728"])
    ax.imshow(errors.astype(np.int8) + 1, cmap=cmap, vmin=0, vmax=2, interpolation="nearest",
              aspect="auto")
    wrong = int((errors == 1).sum())
    scored = int((errors >= 0).sum())
    ax.set_title(f"{title}\n{wrong} of {scored} scored cells wrong (red), right (green), "
                 "unlabelled (grey)", fontsize=9)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)


def cmd_diagnose(args: argparse.Namespace) -> int:
    from app import diagnose
    from fhn_core.diagnostics import diagnostics, sweep_h

    net, title = diagnose.network_of(args.target, seed=args.seed)
    shape = tuple(args.input_shape or diagnose.default_input_shape(net.design))
    if len(shape) != net.design.spatial_dims + 2:
        raise UserError(f"--input-shape needs N C and {net.design.spatial_dims} spatial sizes "
                        f"for this {net.design.spatial_dims}D network, got {list(shape)}")
    x = diagnose.noise_input(shape, args.seed)  # the network validates it (sizes, channels)
    print(f"{title}: {net.design.n_layers} layers, h = {net.design.h:g}; X = standard normal "
          f"noise {shape}")
    if args.sweep_h is None:
        result = diagnostics(net, x, perturbation=args.perturbation, draws=args.draws,
                             seed=args.seed)
        print(diagnose.table([(net.design.h, result)]))
        return EXIT_OK
    hs = args.sweep_h or list(diagnose.DEFAULT_SWEEP)
    rows = sweep_h(net, x, hs, perturbation=args.perturbation, draws=args.draws, seed=args.seed)
    print(diagnose.table(rows))
    if args.plot:
        diagnose.plot_sweep(rows, Path(args.plot), f"Fig. 3 properties, {title}, X {shape}")
        print(f"plot written to {args.plot}")
    return EXIT_OK


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
        _warn_if_unstable(trainer)
        print(f"demo survey {files.segy} {task.spatial_shape}; {int((task.labels >= 0).sum())} "
              f"cells labelled from the wells; {design.n_layers} layers, {config.iterations} "
              f"iterations on {trainer.device}")
        code, result = _run_training(trainer, out, names)
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


# --------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Segment seismic volumes, maps and hyperspectral cubes from sparse labels "
                    "with a fully invertible hyperbolic network.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    device_help = "cpu, cuda or auto (default: auto = CUDA when available)"

    p = sub.add_parser("estimate", help="memory a design needs (Table 1) and whether it fits",
                       description="Print the memory estimate of a design (paper Table 1) and "
                                   "whether training fits the device's free memory.")
    p.add_argument("design", metavar="DESIGN", help="design TOML file or preset name")
    p.add_argument("--input-shape", type=int, nargs="+",
                   metavar="N", help="N C and the spatial sizes, e.g. 1 12 248 248 248 "
                                     "(default for a paper preset: the paper's input, and its "
                                     "Table 1 figures are printed beside ours)")
    p.add_argument("--device", default="auto", help=device_help)
    p.set_defaults(func=cmd_estimate)

    p = sub.add_parser("train", help="train on data + labels described by a TOML file",
                       description=__doc__.split("\n\n", 2)[2].replace("``", ""),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", metavar="CONFIG", help="run description (TOML)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a config key, e.g. training.learning_rate=0.005 (repeatable)")
    p.add_argument("--iterations", type=int, help="training iterations")
    p.add_argument("--learning-rate", type=float, dest="learning_rate", help="learning rate")
    p.add_argument("--seed", type=int, help="random seed")
    p.add_argument("--device", help=device_help)
    p.add_argument("--out", help="output folder (checkpoint/ and model/ go there)")
    p.add_argument("--resume", action="store_true",
                   help="continue from the checkpoint in the output folder")
    p.add_argument("--ignore-memory", action="store_true",
                   help="train even when the memory estimate says it does not fit")
    p.add_argument("--no-estimate", action="store_true",
                   help="skip timing a training step and a whole-data pass to print the "
                        "run's estimated time before it starts")
    p.add_argument("--progress-log", metavar="FILE",
                   help="write the progress as JSON lines to FILE (rank 0 under torchrun)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("predict", help="apply a trained model and export the result",
                       description="Apply a trained model to data and write the prediction on "
                                   "the data's grid (.sgy with the source's headers, .tif with "
                                   "its georeferencing, .npy, .nc).")
    p.add_argument("model", metavar="MODEL", help="model folder (or a training output folder)")
    p.add_argument("data", metavar="DATA", nargs="+",
                   help="data file(s) of the kind the model was trained on")
    p.add_argument("--out", required=True, help="output file: .sgy, .segy, .tif, .npy or .nc")
    p.add_argument("--what", choices=("classes", "probabilities", "entropy"), default="classes",
                   help="what to write (default: classes)")
    p.add_argument("--class", dest="class_", metavar="CLASS",
                   help="with --what probabilities and SEG-Y: the class whose probability to "
                        "write (default: the probability of the predicted class)")
    p.add_argument("--block", type=int, help="predict in overlapping blocks of this size")
    p.add_argument("--overlap", type=int,
                   help="cells blocks overlap by (default: a quarter of --block, at most 16)")
    p.add_argument("--augment", action="store_true",
                   help="average over the horizontal flips and transposes the network was "
                        "trained with (test-time augmentation; 4-8x the time)")
    p.add_argument("--stratigraphic-order", action="store_true",
                   help="keep the classes in the top-to-bottom order the training labels "
                        "showed, down every trace (law of superposition; seismic only)")
    p.add_argument("--baseline", action="store_true",
                   help="write the run's per-cell baseline (random forest, refitted from the "
                        "run's labels and seed) instead of the network; runs trained with "
                        "the auto recipe")
    p.add_argument("--kind", help="data kind when the extension does not tell")
    p.add_argument("--device", default="auto", help=device_help)
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="run on a dask.distributed cluster, e.g. tcp://10.0.0.5:8786 (streamed "
                        "prediction; the workers need the data and model paths)")
    p.add_argument("--store", metavar="ZARR",
                   help="streamed prediction: write classes, probabilities and entropy into "
                        "this Zarr store (default: --out with .zarr; .zarr data always stream)")
    p.add_argument("--workers", type=int, metavar="N",
                   help="streamed prediction without --scheduler: local threads (default: cores)")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("ingest", help="copy a SEG-Y into a chunked Zarr store (for large surveys)",
                       description="Copy a post-stack SEG-Y into a chunked Zarr store, a block of "
                                   "inlines at a time. An interrupted ingest resumes when run "
                                   "again; the store gets its name only when complete. Give the "
                                   "store instead of the SEG-Y to predict or train.")
    p.add_argument("segy", metavar="SEGY", help="the SEG-Y file")
    p.add_argument("store", metavar="STORE", help="the Zarr store to write, e.g. survey.zarr")
    p.add_argument("--iline", type=int, default=189, help="inline number byte (default 189)")
    p.add_argument("--xline", type=int, default=193, help="crossline number byte (default 193)")
    p.add_argument("--fill-missing", action="store_true",
                   help="put dead (zero) traces where the survey has none")
    p.add_argument("--chunks", type=int, nargs=3, metavar=("N_ILINE", "N_XLINE", "N_SAMPLE"),
                   help="cells per chunk along each axis (default: 64 64 64)")
    p.add_argument("--restart", action="store_true",
                   help="start over instead of resuming an interrupted ingest")
    p.add_argument("--overwrite", action="store_true", help="replace an existing store")
    p.add_argument("--fast-slices", action="store_true",
                   help="also write crossline- and time-slice-ordered copies (twice the store's "
                        "size more) so the viewer shows those slices as fast as inlines; on an "
                        "existing store, add them to it")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("evaluate", help="score a prediction against a reference",
                       description="Per-class IoU and accuracy, mean IoU, overall accuracy and "
                                   "Cohen's kappa. Both maps hold class ids 0..K-1 (-1 or "
                                   "nodata = unlabelled): .npy, .npz label file, .nc, SEG-Y "
                                   "or one-band GeoTIFF.")
    p.add_argument("prediction", metavar="PREDICTION")
    p.add_argument("reference", metavar="REFERENCE", nargs="?",
                   help="class map, or points (.csv/.geojson: x,y,class or row,col,class, "
                        "as for training); or give --masks")
    p.add_argument("--masks", nargs=2, metavar=("MEMBER", "NON_MEMBER"),
                   help="the reference as two mask images (white = member), as [labels] "
                        "masks in training")
    p.add_argument("--radius", type=float, default=0.0,
                   help="points: cells around each point that count (default 0: the point)")
    p.add_argument("--data", nargs="+", metavar="DATA",
                   help="points in map coordinates: the data the prediction was made from "
                        "(default: the prediction file's own grid)")
    p.add_argument("--region", metavar="EXPR",
                   help="score only these cells, e.g. \"x >= 400\" or \"x < 200 and y < 100\" "
                        "(cell indices; x = column, y = row; volumes: iline, xline, sample)")
    p.add_argument("--model", metavar="MODEL",
                   help="the model folder whose class table names the classes (default: "
                        "the prediction's own, else the reference's)")
    p.add_argument("--classes", type=int, metavar="K",
                   help="number of classes (default: largest id + 1)")
    p.add_argument("--error-map", metavar="PNG", help="write an error-map image")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("sample-points", help="draw sparse points per class from a reference",
                       description="Draw N labelled points per class from a dense reference "
                                   "(a class map or a mask pair), seeded, inside a region, and "
                                   "write them as row,col,class CSV for [labels] points = "
                                   "... (how a benchmark gives the network a few surveyed "
                                   "points).")
    p.add_argument("reference", metavar="REFERENCE", nargs="?",
                   help="class map (.npy ids 0..K-1, -1 unlabelled; .npz label set; .nc; "
                        "one-band GeoTIFF)")
    p.add_argument("--masks", nargs=2, metavar=("MEMBER", "NON_MEMBER"),
                   help="the reference as two mask images (classes changed, unchanged)")
    p.add_argument("--per-class", type=int, required=True, metavar="N",
                   help="points drawn per class")
    p.add_argument("--region", metavar="EXPR",
                   help="draw only here, e.g. \"x < 200\" (cell indices; x = column, y = row)")
    p.add_argument("--seed", type=int, default=0, help="seed of the draw (default 0)")
    p.add_argument("--classes", nargs="+", metavar="NAME",
                   help="class names to write (default: the reference's, else class 1 ...)")
    p.add_argument("--out", required=True, help="the CSV to write")
    p.set_defaults(func=cmd_sample_points)

    p = sub.add_parser("diagnose", help="the paper's Fig. 3 properties of a design or model",
                       description="Energy growth ||g(X)||/||X||, stability ||g(X)-g(X+dX)||/"
                                   "||dX|| with ||dX|| = 0.1 ||X|| (mean and std over draws) "
                                   "and invertibility error ||g^-1(g(X))-X||/||X|| (paper "
                                   "section 2.1, Fig. 3), on standard normal X.")
    p.add_argument("target", metavar="DESIGN|MODEL",
                   help="design TOML, preset name (untrained weights) or model folder")
    p.add_argument("--input-shape", type=int, nargs="+", metavar="N",
                   help="N C and the spatial sizes (default: 1 C 32 ...)")
    p.add_argument("--sweep-h", type=float, nargs="*", metavar="H",
                   help="measure over these h values (the same weights); alone: "
                        "0.05 0.1 0.2 0.3 0.4 0.5 0.6 0.8 1.0")
    p.add_argument("--plot", metavar="PNG", help="with --sweep-h: write Fig. 3's curves here")
    p.add_argument("--draws", type=int, default=5, help="perturbations drawn (default 5)")
    p.add_argument("--perturbation", type=float, default=0.1,
                   help="||dX|| / ||X|| (default 0.1, the paper's)")
    p.add_argument("--seed", type=int, default=0, help="seed of the weights and of X")
    p.set_defaults(func=cmd_diagnose)

    p = sub.add_parser("demo", help="train on the built-in synthetic survey",
                       description="Build the synthetic demo survey if missing, train on its "
                                   "borehole labels with assets/demo_recipe.toml and score "
                                   "the result against the full ground truth.")
    p.add_argument("--iterations", type=int, help="training iterations (default: the recipe's)")
    p.add_argument("--out", default="fhn-demo", help="output folder (default: ./fhn-demo)")
    p.add_argument("--shape", type=int, nargs=3, metavar=("N_ILINE", "N_XLINE", "N_SAMPLES"),
                   help="survey size (default 128 128 128)")
    p.add_argument("--demo-dir", help="where the demo survey is built (default: a cache "
                                      "folder under assets/generated)")
    p.add_argument("--recipe", help="a recipe TOML instead of assets/demo_recipe.toml")
    p.add_argument("--device", help=device_help)
    p.set_defaults(func=cmd_demo)

    from assets.demo_survey import STYLES

    p = sub.add_parser("synth", help="write a synthetic survey of a geological style",
                       description="Write a synthetic 3D survey (SEG-Y), its wells (CSV), the "
                                   "reference volume (.npy, every cell's unit) and a run.toml "
                                   "for fhn train. Styles: demo (the built-in survey), "
                                   "layered, faulted, salt, thin-beds, random; a style's "
                                   "numbers (faults, dip, beds, wavelet, noise) are drawn from "
                                   "the seed.")
    p.add_argument("out", metavar="OUT", help="output folder")
    p.add_argument("--style", choices=STYLES, default="demo", help="geological style "
                                                                  "(default: demo)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--shape", type=int, nargs=3, default=(128, 128, 128),
                   metavar=("N_ILINE", "N_XLINE", "N_SAMPLES"),
                   help="survey size (default 128 128 128)")
    p.add_argument("--wells", type=int, default=9, help="number of wells (default 9)")
    p.add_argument("--name", help="file name stem (default: STYLE-SEED)")
    p.add_argument("--overwrite", action="store_true",
                   help="rebuild even when the files are already there")
    p.set_defaults(func=cmd_synth)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``fhn`` command line; returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) and usage errors (2)
        return int(exc.code or 0)
    from fhn_core.distributed import LostRankError, leave_after_lost_rank

    try:
        with _data_warnings_on_stderr():
            return int(args.func(args))
    except LostRankError as err:  # under torchrun only: another rank died
        _err(str(err))
        leave_after_lost_rank(EXIT_USAGE)
    except (UserError, DataError, FhnError) as err:
        _err(str(err))
    except (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError) as err:
        what = f"{err.strerror}: {err.filename}" if err.filename else str(err)
        _err(f"{what}; check the path")
    except KeyboardInterrupt:
        _err("interrupted")
        return EXIT_STOPPED
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
