"""Training runs in a project folder: their files, designs, memory checks and exports.

No streamlit here: the Train, Results, 3D view and Export pages ask this module, and the
background worker (:mod:`app.jobs`) writes what it reads. A run called ``NAME`` lives in

- ``models/NAME/``: ``run.json`` (design, settings, status, history, class table),
  ``checkpoint/`` (resumable, from :class:`fhn_core.training.Trainer`) and ``model/``
  (:meth:`fhn_core.checkpoint.TrainedModel.save`: safetensors + design TOML + model.json);
- ``predictions/NAME/``: ``classes.npy``, ``probabilities.npy``, ``entropy.npy`` on the
  label grid, the ``training_labels.npy`` / ``validation_labels.npy`` the run used, and
  ``metrics.json`` (written last: a run has a prediction once it exists); a run of the
  auto recipe also ``baseline/`` with the per-cell baseline's three arrays (the forest
  itself is never stored, see :mod:`app.auto_run`);
- ``exports/NAME/``: files written for other software (SEG-Y, GeoTIFF, .npy, .nc, the
  zipped model), see :func:`export_run` and :func:`zip_model`.

Every file is written atomically (temporary file, then rename).
"""

from __future__ import annotations

import functools
import json
import math
import re
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from app.demo import demo_recipe
from app.export import export_prediction
from app.layout import DataLayout, grid_of, to_channels_first
from app.training_task import default_design
from fhn_core.design import PRESETS, NetworkDesign, Segment
from fhn_core.errors import FhnError
from fhn_core.metrics import Metrics, metrics_from_confusion
from fhn_core.prediction import Prediction
from fhn_core.training import TrainConfig
from io_adapters.atomic import atomic_output
from io_adapters.errors import DataError
from io_adapters.open_data import load_class_map
from io_adapters.project import Project

__all__ = [
    "ACTIVE",
    "FORMAT_TITLES",
    "RUN_FILE",
    "METRICS_FILE",
    "RunPaths",
    "RunInfo",
    "LayoutShape",
    "Device",
    "DESIGN_CHOICES",
    "new_run_name",
    "list_runs",
    "read_run",
    "write_run",
    "save_prediction",
    "save_streamed_metrics",
    "prediction_store",
    "STORE_NAME",
    "load_prediction",
    "streamed_prediction",
    "save_baseline_prediction",
    "has_baseline",
    "SOURCES",
    "load_split_labels",
    "load_metrics",
    "last_validation",
    "metrics_from_json",
    "metrics_rows",
    "cross_validation_rows",
    "layout_shapes",
    "design_choices",
    "segment_rows",
    "design_from_rows",
    "devices",
    "ALL_GPUS",
    "cpu_ranks",
    "processes_of",
    "rank_device_of",
    "device_summary",
    "free_memory",
    "find_reference",
    "load_reference",
    "export_formats",
    "export_run",
    "zip_model",
    "exported_files",
    "estimate_run_time",
]

RUN_FILE = "run.json"
METRICS_FILE = "metrics.json"
ACTIVE = ("preparing", "training", "predicting")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


# --------------------------------------------------------------------------- files of a run
@dataclass(frozen=True)
class RunPaths:
    """Where the files of run ``name`` of a project live (see the module docstring)."""

    name: str
    run_dir: Path
    prediction_dir: Path
    export_dir: Path

    @classmethod
    def of(cls, project: Project, name: str) -> RunPaths:
        if not _NAME.match(name):
            raise DataError(f"{name!r} is not a run name; use letters, digits, '.', '_', '-'")
        return cls(name, project.models_dir / name, project.predictions_dir / name,
                   project.exports_dir / name)

    @property
    def run_file(self) -> Path:
        return self.run_dir / RUN_FILE

    @property
    def checkpoint_dir(self) -> Path:
        return self.run_dir / "checkpoint"

    @property
    def model_dir(self) -> Path:
        return self.run_dir / "model"

    @property
    def metrics_file(self) -> Path:
        return self.prediction_dir / METRICS_FILE


@dataclass
class RunInfo:
    """What ``run.json`` records about one run, plus which of its files exist."""

    name: str
    status: str = "unknown"
    message: str = ""
    created: str = ""
    finished: str = ""
    iteration: int = 0
    iterations: int = 0
    device: str = ""
    design: dict[str, Any] | None = None
    config: dict[str, Any] | None = None
    class_names: list[str] | None = None
    class_colours: list[str] | None = None
    channel_names: list[str] | None = None
    grid_dims: list[str] | None = None
    grid_shape: list[int] | None = None
    history: list[dict[str, Any]] | None = None
    diagnostics: dict[str, Any] | None = None  # Fig. 3's properties of the trained network
    recipe: str = "fixed"                      # "auto": settings chosen by cross-validation
    cross_validation: dict[str, Any] | None = None  # the auto recipe's record (auto_run)
    error: str = ""
    ranks: int = 1                             # training processes (torch.distributed)
    has_model: bool = False
    has_checkpoint: bool = False
    has_prediction: bool = False

    @property
    def title(self) -> str:
        """One line for pickers: name, status, validation mIoU of the last validation."""
        val = last_validation(self.history or [])
        score = f", val mIoU {val:.3f}" if val is not None else ""
        return f"{self.name} ({self.status}{score})"


def last_validation(history: Sequence[Mapping[str, Any]]) -> float | None:
    """The mean IoU of the last validation in a training history, if any."""
    for record in reversed(history):
        val = record.get("validation")
        if isinstance(val, Mapping) and val.get("mean_iou") is not None:
            return float(val["mean_iou"])
        if record.get("val_miou") is not None:
            return float(record["val_miou"])
    return None


def new_run_name(project: Project, now: datetime | None = None) -> str:
    """``run-YYYYmmdd-HHMMSS`` (with ``-2``, ``-3``... when that folder exists)."""
    base = (now or datetime.now()).strftime("run-%Y%m%d-%H%M%S")
    name, n = base, 1
    while (project.models_dir / name).exists() or (project.predictions_dir / name).exists():
        n += 1
        name = f"{base}-{n}"
    return name


def write_run(paths: RunPaths, info: RunInfo) -> Path:
    """Write ``run.json`` atomically (the file flags are recomputed on reading)."""
    paths.run_dir.mkdir(parents=True, exist_ok=True)
    record = {k: v for k, v in asdict(info).items() if not k.startswith("has_")}
    with atomic_output(paths.run_file) as tmp:
        tmp.write_text(json.dumps(record, indent=1, default=_json_value), encoding="utf-8")
    return paths.run_file


def _json_value(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def read_run(project: Project, name: str) -> RunInfo:
    """The run's record; a folder without a readable run.json gives status 'unknown'."""
    paths = RunPaths.of(project, name)
    info = RunInfo(name)
    if paths.run_file.is_file():
        try:
            record = json.loads(paths.run_file.read_text(encoding="utf-8"))
            known = {k: v for k, v in record.items() if k in RunInfo.__dataclass_fields__}
            info = RunInfo(**{**known, "name": name})
        except (OSError, ValueError, TypeError):
            info = RunInfo(name, status="unreadable",
                           message=f"{paths.run_file} is damaged; delete the run folder")
    info.has_model = (paths.model_dir / "model.safetensors").is_file()
    info.has_checkpoint = (paths.checkpoint_dir / "training.json").is_file()
    info.has_prediction = paths.metrics_file.is_file()
    return info


def list_runs(project: Project) -> list[RunInfo]:
    """Every run of the project (a folder under models/ or predictions/), newest first."""
    names: set[str] = set()
    for folder in (project.models_dir, project.predictions_dir):
        if folder.is_dir():
            names |= {p.name for p in folder.iterdir() if p.is_dir() and _NAME.match(p.name)
                      and not p.name.endswith((".part", ".old"))}
    runs = [read_run(project, n) for n in names]
    return sorted(runs, key=lambda r: (r.created, r.name), reverse=True)


# --------------------------------------------------------------------------- predictions
def _save_npy(path: Path, values: np.ndarray) -> None:
    with atomic_output(path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, np.ascontiguousarray(values), allow_pickle=False)


def save_prediction(
    paths: RunPaths,
    prediction: Prediction,
    training_labels: np.ndarray,
    validation_labels: np.ndarray | None,
    metrics: Mapping[str, Metrics | None],
) -> Path:
    """Write the prediction, the label split it was trained with and its metrics.

    ``metrics`` maps a name ("validation", "training") to Metrics (None: not available).
    metrics.json is written last, so its presence means the prediction is complete.
    """
    paths.prediction_dir.mkdir(parents=True, exist_ok=True)
    paths.metrics_file.unlink(missing_ok=True)
    _save_npy(paths.prediction_dir / "classes.npy", prediction.classes.astype(np.int16))
    _save_npy(paths.prediction_dir / "probabilities.npy",
              prediction.probabilities.astype(np.float32))
    _save_npy(paths.prediction_dir / "entropy.npy", prediction.entropy.astype(np.float32))
    _save_npy(paths.prediction_dir / "training_labels.npy", training_labels.astype(np.int16))
    if validation_labels is not None:
        _save_npy(paths.prediction_dir / "validation_labels.npy",
                  validation_labels.astype(np.int16))
    return _save_metrics(paths, metrics)


STORE_NAME = "prediction.zarr"  # a streamed prediction (a survey store), in prediction_dir


def prediction_store(project: Project, name: str) -> Path | None:
    """The Zarr store of a run predicted block by block (a survey store), else None."""
    store = RunPaths.of(project, name).prediction_dir / STORE_NAME
    return store if store.is_dir() else None


def save_streamed_metrics(paths: RunPaths, metrics: Mapping[str, Metrics | None]) -> Path:
    """The metrics of a run whose prediction went into ``prediction_dir/prediction.zarr``
    (app.streamed): written last, as for :func:`save_prediction`."""
    return _save_metrics(paths, metrics)


def _save_metrics(paths: RunPaths, metrics: Mapping[str, Metrics | None]) -> Path:
    doc = {name: (None if m is None else {**m.as_dict(), "confusion": m.confusion.tolist()})
           for name, m in metrics.items()}
    with atomic_output(paths.metrics_file) as tmp:
        tmp.write_text(json.dumps(doc, indent=1), encoding="utf-8")
    return paths.prediction_dir


def _load_npy(path: Path, mmap: bool) -> np.ndarray:
    if not path.is_file():
        raise DataError(f"{path} is missing; train the run again to predict")
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise DataError(f"{path} is damaged ({err}); train the run again") from err


BASELINE = "baseline"
SOURCES = ("network", BASELINE)


def save_baseline_prediction(paths: RunPaths, prediction: Prediction) -> Path:
    """The per-cell baseline's prediction of the run's data, beside the network's."""
    folder = paths.prediction_dir / BASELINE
    folder.mkdir(parents=True, exist_ok=True)
    _save_npy(folder / "classes.npy", prediction.classes.astype(np.int16))
    _save_npy(folder / "probabilities.npy", prediction.probabilities.astype(np.float32))
    _save_npy(folder / "entropy.npy", prediction.entropy.astype(np.float32))
    return folder


def source_titles(record: Mapping[str, Any] | None) -> dict[str, str]:
    """What each of SOURCES is called for a run whose auto-recipe record is ``record``: the
    network's map names what it adds to the network (a blend, the scene's class mix)."""
    record = record or {}
    network = "the network"
    if record.get("baseline_weight"):
        network = "the network with the per-cell baseline (mean)"
    elif record.get("map_label"):
        network = f"the network ({record['map_label']})"
    return {"network": network, BASELINE: "the per-cell baseline (random forest)"}


def has_baseline(project: Project, name: str) -> bool:
    """Whether the run stored a baseline prediction (runs of the auto recipe)."""
    return (RunPaths.of(project, name).prediction_dir / BASELINE / "entropy.npy").is_file()


def load_prediction(project: Project, name: str, *, mmap: bool = True,
                    source: str = "network") -> Prediction:
    """The run's prediction (arrays memory-mapped unless ``mmap`` is False); ``source``
    "baseline" gives the per-cell baseline's instead of the network's."""
    if source not in SOURCES:
        raise DataError(f"prediction source {source!r} is not one of {', '.join(SOURCES)}")
    folder = RunPaths.of(project, name).prediction_dir
    if source == BASELINE:
        folder = folder / BASELINE
    store = prediction_store(project, name)
    if store is not None and source != BASELINE:
        return streamed_prediction(store)
    return Prediction(
        classes=_load_npy(folder / "classes.npy", mmap),
        probabilities=_load_npy(folder / "probabilities.npy", mmap),
        entropy=_load_npy(folder / "entropy.npy", mmap),
    )


def streamed_prediction(store: Path) -> Prediction:
    """A prediction store's products as Dask arrays: a section of them reads only the
    chunks it crosses, so the pages can show a survey's prediction of any size."""
    from app.streamed import open_prediction

    dataset = open_prediction(store)
    return Prediction(classes=dataset["classes"].data,
                      probabilities=dataset["probabilities"].data,
                      entropy=dataset["entropy"].data)


def load_split_labels(project: Project, name: str) -> tuple[np.ndarray, np.ndarray | None]:
    """(training labels, validation labels or None) the run was trained and scored with."""
    folder = RunPaths.of(project, name).prediction_dir
    train = _load_npy(folder / "training_labels.npy", False).astype(np.int64)
    val_path = folder / "validation_labels.npy"
    val = _load_npy(val_path, False).astype(np.int64) if val_path.is_file() else None
    return train, val


def load_metrics(project: Project, name: str) -> dict[str, Metrics | None]:
    """The run's metrics.json as Metrics per name ("validation", "training")."""
    path = RunPaths.of(project, name).metrics_file
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise DataError(f"{path} is missing or damaged ({err}); train the run again") from err
    return {k: (None if v is None else metrics_from_json(v)) for k, v in doc.items()}


def metrics_from_json(doc: Mapping[str, Any]) -> Metrics:
    """Metrics rebuilt from the confusion matrix stored in metrics.json."""
    return metrics_from_confusion(np.asarray(doc["confusion"], dtype=np.int64))


def metrics_rows(metrics: Metrics, class_names: Sequence[str]) -> list[dict[str, Any]]:
    """One row per class: class, IoU, accuracy (recall), reference cells, predicted cells."""
    rows = []
    for i in range(len(metrics.iou)):
        name = class_names[i] if i < len(class_names) else f"class {i}"
        rows.append({
            "class": name,
            "IoU": _nan_none(metrics.iou[i]),
            "accuracy": _nan_none(metrics.class_accuracy[i]),
            "reference cells": int(metrics.confusion[i].sum()),
            "predicted cells": int(metrics.confusion[:, i].sum()),
        })
    return rows


def map_scores(record: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """The map's own cross-validated scores in an auto-recipe record ({} where the map is
    the network's) and what it adds to the network, e.g. "the scene's class mix"."""
    scores = record.get("map") or record.get("blend") or {}  # "blend": session 27's records
    return scores, record.get("map_label") or ("their mean" if scores else "")


def cross_validation_rows(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per class: the network's and the baseline's cross-validated IoU (mean and sd), and
    the map's where the record scores it apart from the network's."""
    shown = {"network": record.get("network") or {}, "baseline": record.get("baseline") or {},
             "map": map_scores(record)[0]}
    rows = []
    for name in (shown["network"].get("class_iou") or {}):
        row: dict[str, Any] = {"class": name}
        for who, scores in shown.items():
            if scores:
                row[f"{who} IoU"] = (scores.get("class_iou") or {}).get(name)
                row[f"{who} ±"] = (scores.get("class_iou_sd") or {}).get(name)
        rows.append(row)
    return rows


def _nan_none(value: float) -> float | None:
    return None if not np.isfinite(value) else round(float(value), 4)


# --------------------------------------------------------------------------- layouts
@dataclass(frozen=True)
class LayoutShape:
    """How the data looks to a 2D or 3D design, without converting it (see app.layout)."""

    spatial_dims: int
    channels: int
    spatial_shape: tuple[int, ...]
    grid_shape: tuple[int, ...]
    kind: str
    axis_names: tuple[str, ...]
    slice_axis: int | None


def layout_shapes(da: xr.DataArray) -> dict[int, LayoutShape]:
    """The layouts the data can take, by number of spatial dims (2 and/or 3).

    Worked out on a 2-cell corner of the data's grid (every band and date kept: they are
    the channels), so nothing large is copied.
    """
    from io_adapters.gridmatch import spatial_dims

    corner = da.isel({d: slice(0, 2) for d in spatial_dims(da)})
    out: dict[int, LayoutShape] = {}
    for dims in (2, 3):
        try:
            layout = to_channels_first(corner, spatial_dims=dims)
        except DataError:
            continue
        spatial = tuple(int(da.sizes[n]) for n in layout.spatial_dims)
        grid = tuple(s for a, s in enumerate(spatial) if a != layout.slice_axis)
        out[dims] = LayoutShape(dims, int(layout.data.shape[0]), spatial, grid, layout.kind,
                                layout.spatial_dims, layout.slice_axis)
    if not out:
        raise DataError(f"{da.attrs.get('source_path', 'the data')} fits neither a 2D nor a "
                        "3D design")
    return out


# --------------------------------------------------------------------------- designs
DESIGN_CHOICES: dict[str, str] = {
    "default": "Small default for this data",
    "quick": "Quick check (3 layers: runs in seconds, learns little)",
    "demo": "Demo recipe (assets/demo_recipe.toml)",
    "seismic-3d": "Seismic 3D (paper, Table 3)",
    "hyperspectral-timelapse": "Hyperspectral time-lapse (paper)",
    "multi-raster-map": "Multi-raster map (paper)",
}


def design_choices(
    da: xr.DataArray, n_classes: int
) -> dict[str, tuple[NetworkDesign, TrainConfig | None]]:
    """The designs offered for this data: key -> (design, suggested settings or None).

    Every design takes ``max(channels, n_classes)`` input channels (section 3.2) and has
    as many spatial dims as a layout of this data; presets that do not fit are left out.
    """
    shapes = layout_shapes(da)
    out: dict[str, tuple[NetworkDesign, TrainConfig | None]] = {}
    natural = 3 if 3 in shapes and shapes[3].kind == "seismic" else min(shapes)
    base = shapes[natural]
    # default_design sizes its levels from the data's shape only: no need to convert it
    shaped = DataLayout(
        np.broadcast_to(np.float32(0), (base.channels, *base.spatial_shape)), (),
        base.axis_names, (), base.kind, base.slice_axis)
    out["default"] = (default_design(shaped, n_classes), None)
    channels = {d: max(s.channels, int(n_classes), 1) for d, s in shapes.items()}
    quick = (Segment(0, 1, 4), Segment(1, 1, 4), Segment(0, 1, 4))
    out["quick"] = (NetworkDesign(channels[natural], natural, quick, name="quick check"),
                    TrainConfig(iterations=10, learning_rate=0.01, validate_every=5))
    try:
        demo = demo_recipe()
    except DataError:
        demo = None
    if demo is not None and demo.design.spatial_dims in shapes:
        out["demo"] = (replace(demo.design, in_channels=channels[demo.design.spatial_dims]),
                       demo.config)
    for key, make in PRESETS.items():
        design = make()
        if design.spatial_dims in shapes:
            out[key] = (make(in_channels=channels[design.spatial_dims]), None)
    return out


def segment_rows(design: NetworkDesign) -> list[dict[str, int]]:
    """The design's segments as rows {level, layers, rank} for an editable table."""
    return [{"level": s.level, "layers": s.layers, "rank": s.rank} for s in design.segments]


def design_from_rows(
    rows: Sequence[Mapping[str, Any]],
    *,
    in_channels: int,
    spatial_dims: int,
    kernel_size: int = 3,
    h: float = 0.2,
    zero_channels: int = 0,
    name: str = "",
) -> NetworkDesign:
    """A NetworkDesign from table rows; empty rows are skipped, bad values are an FhnError.

    ``in_channels`` counts the data channels (replicated up to it); ``zero_channels``
    come on top of them (see :mod:`fhn_core.design`).
    """
    segments = []
    for i, row in enumerate(rows):
        values = [row.get(k) for k in ("level", "layers", "rank")]
        if all(v is None or (isinstance(v, float) and math.isnan(v)) for v in values):
            continue
        try:
            level, layers, rank = (int(v) for v in values)
        except (TypeError, ValueError) as err:
            raise FhnError(f"segment {i + 1}: level, layers and rank must be whole numbers, "
                           f"got {values}") from err
        segments.append(Segment(level, layers, rank))
    return NetworkDesign(int(in_channels) + int(zero_channels), int(spatial_dims),
                         tuple(segments), kernel_size=int(kernel_size), h=float(h),
                         zero_channels=int(zero_channels), name=name)


# --------------------------------------------------------------------------- memory
@dataclass(frozen=True)
class Device:
    """A device training can run on: ``key`` for TrainConfig.device, a label, free bytes."""

    key: str
    label: str
    free_bytes: float | None
    total_bytes: float | None


def _meminfo(field: str) -> float | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return float(line.split()[1]) * 1024
    except OSError:
        pass
    return None


# A device key naming several training processes, one per GPU or per share of the CPU
# (app.distributed_job launches them with torchrun). Neither is a torch device string, so
# code that hands one to torch without asking processes_of fails loudly instead of
# training in one process.
ALL_GPUS = "cuda:all"
_CPU_RANKS = re.compile(r"^cpu-ranks:(\d+)$")


def cpu_ranks(n: int) -> str:
    """The key of ``n`` training processes on the CPU (gloo): for machines without GPUs, and
    for testing the multi-process path anywhere."""
    return f"cpu-ranks:{int(n)}"


def processes_of(key: str) -> int:
    """How many training processes device ``key`` means: 1 for a single device, the GPU
    count for :data:`ALL_GPUS`, N for :func:`cpu_ranks` (N). DataError when too few."""
    if key == ALL_GPUS:
        import torch

        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n < 2:
            raise DataError(f"device {key!r} trains one process per GPU but this machine has "
                            f"{n} GPU(s); choose a single GPU or the CPU")
        return n
    match = _CPU_RANKS.match(key)
    if match is None:
        return 1
    n = int(match.group(1))
    if n < 2:
        raise DataError(f"device {key!r} needs at least 2 processes; choose the CPU for one")
    return n


def rank_device_of(key: str) -> str:
    """The torch device one process of ``key`` trains on ("cuda": each its own GPU, chosen by
    its local rank; "cpu"); ``key`` itself for a single device."""
    if key == ALL_GPUS:
        return "cuda"
    return "cpu" if _CPU_RANKS.match(key) else key


def free_memory(key: str) -> tuple[float | None, float | None]:
    """(free, total) bytes of a device: CUDA from the driver, CPU from /proc/meminfo.

    Several processes: what one of them has (each holds its own copy of the data and the
    network): the least free GPU for :data:`ALL_GPUS`, the CPU's memory shared by the
    processes for :func:`cpu_ranks`.
    """
    if key == ALL_GPUS:
        per_gpu = [free_memory(f"cuda:{i}") for i in range(processes_of(key))]
        return min(per_gpu, key=lambda ft: ft[0] or 0.0)
    n = processes_of(key)
    if key.startswith("cuda"):
        import torch

        free, total = torch.cuda.mem_get_info(torch.device(key))
        return float(free), float(total)
    free, total = _meminfo("MemAvailable"), _meminfo("MemTotal")
    return (None if free is None else free / n), (None if total is None else total / n)


def devices() -> list[Device]:
    """CUDA GPUs first (when present; with two or more, all of them as one choice: one
    training process per GPU), then the CPU.

    Several processes on the CPU (:func:`cpu_ranks`) are not offered: on one machine they
    share the same cores, so they train no faster than one process using all of them.
    """
    import torch

    out = []
    if torch.cuda.is_available():
        count = torch.cuda.device_count()
        for i in range(count):
            key = f"cuda:{i}"
            free, total = free_memory(key)
            out.append(Device(key, f"GPU {i}: {torch.cuda.get_device_name(i)}", free, total))
        if count >= 2:
            free, total = free_memory(ALL_GPUS)
            out.append(Device(ALL_GPUS, f"All GPUs ({count}): one training process each",
                              free, total))
    free, total = free_memory("cpu")
    out.append(Device("cpu", f"CPU ({_cpu_count()} cores)", free, total))
    return out


def device_summary(key: str) -> str | None:
    """What training on ``key`` does when it means several processes (else None), in words
    for the Train page."""
    n = processes_of(key)
    if n == 1:
        return None
    each = "one per GPU" if key == ALL_GPUS else "sharing the CPU's cores"
    return (f"Trains in {n} processes, {each}, started by torchrun (the same training as "
            f"`torchrun --nproc-per-node {n} ... fhn train`): each process draws its own "
            "sub-volumes and the gradients are averaged over the processes after every step, "
            f"so one step learns from {n} sub-volumes. Each process loads the data itself; "
            "the first one validates and saves. The fixed recipe only (auto cross-validates "
            "in one process).")


def _cpu_count() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


# --------------------------------------------------------------------------- reference
def find_reference(project: Project) -> Path | None:
    """A full reference class map that came with the data: the demo's ground truth
    (``demo_units.npy`` beside the demo SEG-Y), else None."""
    for source in project.sources:
        candidate = project.resolve(source.path).parent / "demo_units.npy"
        if candidate.is_file():
            return candidate
    return None


def load_reference(path: str | Path, grid_shape: Sequence[int]) -> np.ndarray:
    """A reference class map (any file :func:`app.load_class_map` reads) on the
    data's grid; DataError naming both shapes otherwise."""
    ref = load_class_map(Path(path).expanduser())
    if tuple(ref.shape) != tuple(grid_shape):
        raise DataError(f"the reference {path} has shape {tuple(ref.shape)} but the data grid "
                        f"is {tuple(grid_shape)}; load a reference on the same grid")
    return ref


# --------------------------------------------------------------------------- export
FORMAT_TITLES = {".sgy": "SEG-Y", ".tif": "GeoTIFF", ".npy": "NumPy", ".nc": "NetCDF"}


STREAMED_FORMATS = (".sgy", ".nc")  # what app.streamed.export_store writes chunk by chunk


def export_formats(da: xr.DataArray, *, streamed: bool = False) -> list[str]:
    """File types a prediction on this data can be written as (SEG-Y needs a SEG-Y source,
    GeoTIFF needs a georeferenced map; a prediction store, ``streamed``, is written
    chunk by chunk as SEG-Y or NetCDF only)."""
    dims, _ = grid_of(da)
    out = []
    if dims == ("iline", "xline", "samples") and "source_path" in da.attrs:
        out.append(".sgy")
    if streamed:
        return [*out, ".nc"]
    if dims == ("y", "x") and da.attrs.get("transform") is not None:
        out.append(".tif")
    return [*out, ".npy", ".nc"]


def export_run(
    project: Project, name: str, da: xr.DataArray, what: str, suffix: str,
    source: str = "network",
) -> Path:
    """Write product ``what`` ("classes", "probabilities", "entropy") of run ``name`` as
    ``exports/NAME/NAME-WHAT.SUFFIX`` on the data's grid (see export_prediction); with
    ``source`` "baseline" the per-cell baseline's, as ``NAME-baseline-WHAT.SUFFIX``."""
    paths = RunPaths.of(project, name)
    info = read_run(project, name)
    paths.export_dir.mkdir(parents=True, exist_ok=True)
    tag = "-baseline" if source == BASELINE else ""
    target = paths.export_dir / f"{name}{tag}-{what}{suffix}"
    store = prediction_store(project, name)
    if store is not None and source != BASELINE:
        if suffix not in STREAMED_FORMATS:
            raise DataError(f"run {name} was predicted block by block into {store}; export "
                            f"it as {' or '.join(STREAMED_FORMATS)} (written chunk by chunk)")
        from app.streamed import export_store

        return export_store(store, target, what=what)
    prediction = load_prediction(project, name, source=source)
    table = list(zip(info.class_names or [], info.class_colours or [], strict=False))
    return export_prediction(prediction, da, target, what=what,
                                      class_table=table or None)


def zip_model(project: Project, name: str) -> Path:
    """``exports/NAME/NAME-model.zip`` of the trained model folder (safetensors, design
    TOML, model.json), written atomically."""
    paths = RunPaths.of(project, name)
    files = [paths.model_dir / f for f in ("model.safetensors", "design.toml", "model.json")]
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise DataError(f"run {name} has no complete model ({', '.join(missing)} missing in "
                        f"{paths.model_dir}); train it first")
    paths.export_dir.mkdir(parents=True, exist_ok=True)
    target = paths.export_dir / f"{name}-model.zip"
    with atomic_output(target) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in files:
            zf.write(f, f"{name}/{f.name}")
    return target


def exported_files(project: Project, name: str) -> list[Path]:
    """The files in ``exports/NAME/`` (not temporary ones), by name."""
    folder = RunPaths.of(project, name).export_dir
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


# --------------------------------------------------------------------------- stability
def stability_warning(design: NetworkDesign, seed: int = 0) -> str | None:
    """The leapfrog-bound warning for ``design`` with the weights training starts from, or None.

    Cached per design and seed: the page reruns on every click, the check takes seconds for
    the paper's widest designs.
    """
    return _stability_warning(design.to_toml(), int(seed))


@functools.lru_cache(maxsize=16)
def _stability_warning(design_toml: str, seed: int) -> str | None:
    from fhn_core.stability import initial_stability

    return initial_stability(NetworkDesign.from_toml(design_toml), seed=seed).warning()


# --------------------------------------------------------------------------- run time
def estimate_run_time(
    data: xr.DataArray, labelset: Any, design: NetworkDesign, config: TrainConfig,
    **inputs: bool,
) -> Any:
    """What training ``design`` with ``config`` on the data and labels will cost here
    (:class:`fhn_core.ensemble.RunTime`): one training step and one whole-data pass timed on
    the device, times the iterations, validations and networks of the run.

    ``inputs`` are the layout's channel switches (``vertical_channel`` ...), as for a job.
    Takes about one validation's time; the Train page calls it on request. Several training
    processes are timed as one of them: each takes its step in the same time, together
    they see more sub-volumes per step.
    """
    from app.training_task import build_task
    from fhn_core.ensemble import EnsembleTrainer

    layout = to_channels_first(data, spatial_dims=design.spatial_dims, **inputs)
    task = build_task(data, labelset, layout=layout)
    one = replace(config, device=rank_device_of(config.device))
    return EnsembleTrainer(task, design, one).measure()
