"""Trained models and training checkpoints on disk, without pickle.

A model folder holds ``model.safetensors`` (weights), ``design.toml`` (the architecture)
and ``model.json`` (classes, normalisation, label embedding). A training checkpoint adds
``training.safetensors`` (optimiser tensors, RNG state) and ``training.json`` (iteration,
configuration, history, optimiser hyper-parameters), so training resumes exactly.
Folders are written beside the target and swapped in whole, so a crash never leaves a
half-written checkpoint; loading reads tensors and JSON only, never arbitrary objects.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .design import NetworkDesign
from .errors import FhnError
from .network import HyperbolicNetwork
from .task import Normalisation

MODEL_FILES = ("model.safetensors", "design.toml", "model.json")


@dataclass
class ModelInfo:
    """What prediction needs besides the weights: classes, scaling, label embedding."""

    n_classes: int
    data_channels: int
    normalisation: Normalisation
    class_names: list[str] = field(default_factory=list)
    class_colours: list[str] = field(default_factory=list)
    channel_names: list[str] = field(default_factory=list)
    fixed_axes: tuple[int, ...] = ()
    slice_axis: int | None = None
    slice_index: int | None = None
    vertical_axis: int | None = None  # label-grid axis pointing down (time or depth)
    class_order: list[int] = field(default_factory=list)  # top to bottom; [] = none known

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any], *, source: str = "model.json") -> ModelInfo:
        data = dict(data)
        try:
            norm = data.pop("normalisation")
            return cls(
                normalisation=Normalisation(tuple(norm["mean"]), tuple(norm["std"])),
                fixed_axes=tuple(data.pop("fixed_axes", ())),
                **data,
            )
        except (KeyError, TypeError) as err:
            raise FhnError(
                f"{source} is incomplete or from another program ({err}); re-export the model"
            ) from err


@dataclass
class TrainedModel:
    """A network with everything needed to apply it to new data of the same kind."""

    net: HyperbolicNetwork
    info: ModelInfo

    @property
    def design(self) -> NetworkDesign:
        return self.net.design

    def save(self, folder: str | Path) -> Path:
        """Write the model folder atomically (weights, design, info)."""
        with _swapped_folder(Path(folder)) as tmp:
            self.write_into(tmp)
        return Path(folder)

    def write_into(self, folder: Path) -> None:
        weights = {k: v.detach().cpu().contiguous() for k, v in self.net.state_dict().items()}
        save_file(weights, str(folder / "model.safetensors"))
        (folder / "design.toml").write_text(self.design.to_toml(), encoding="utf-8")
        _write_json(folder / "model.json", self.info.to_json())

    @classmethod
    def load(cls, folder: str | Path, *, device: str | torch.device = "cpu") -> TrainedModel:
        folder = Path(folder)
        missing = [name for name in MODEL_FILES if not (folder / name).is_file()]
        if missing:
            raise FhnError(
                f"{folder} is not a trained model folder (missing {', '.join(missing)}); "
                "point to a folder written by training or export"
            )
        design = NetworkDesign.load(folder / "design.toml")
        info_file = folder / "model.json"
        info = ModelInfo.from_json(_read_json(info_file), source=str(info_file))
        net = HyperbolicNetwork(design)
        weights = _load_tensors(folder / "model.safetensors")
        try:
            net.load_state_dict(weights)
        except RuntimeError as err:
            raise FhnError(
                f"{folder / 'model.safetensors'} does not match {folder / 'design.toml'}: "
                f"{str(err).splitlines()[0]}; the files come from different models"
            ) from err
        return cls(net.to(device), info)


# --- training checkpoints -----------------------------------------------------------
def save_checkpoint(
    folder: str | Path,
    model: TrainedModel,
    optimiser: torch.optim.Optimizer,
    generator: torch.Generator,
    state: dict[str, Any],
    extra: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Write model + optimiser + RNG + ``extra`` tensors + ``state`` (JSON) into ``folder``
    atomically."""
    tensors, groups = _flatten_optimiser(optimiser)
    tensors.update(extra or {})
    tensors["rng.sampler"] = generator.get_state()
    tensors["rng.torch"] = torch.get_rng_state()
    with _swapped_folder(Path(folder)) as tmp:
        model.write_into(tmp)
        save_file(tensors, str(tmp / "training.safetensors"))
        _write_json(tmp / "training.json", {**state, "param_groups": groups})
    return Path(folder)


def load_checkpoint(
    folder: str | Path,
) -> tuple[TrainedModel, dict[str, torch.Tensor], dict[str, Any]]:
    """(model, optimiser/RNG tensors, training state) from a checkpoint folder."""
    folder = Path(folder)
    if not (folder / "training.json").is_file():
        raise FhnError(f"{folder} holds no training checkpoint (training.json is missing)")
    model = TrainedModel.load(folder)
    return model, _load_tensors(folder / "training.safetensors"), _read_json(
        folder / "training.json"
    )


def restore_optimiser(
    optimiser: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], groups: list[dict]
) -> None:
    """Rebuild an optimiser's state_dict from flat tensors plus JSON hyper-parameters."""
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    optimiser.load_state_dict({"state": state, "param_groups": groups})


def _flatten_optimiser(optimiser: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list]:
    sd = optimiser.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    for index, entries in sd["state"].items():
        for name, value in entries.items():
            tensor = value if torch.is_tensor(value) else torch.tensor(value)
            tensors[f"optim.{index}.{name}"] = tensor.detach().cpu().contiguous()
    return tensors, sd["param_groups"]


# --- small file helpers ---------------------------------------------------------------
class _swapped_folder:
    """Context manager: write into ``<folder>.part``, then replace ``folder`` with it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.tmp = folder.with_name(folder.name + ".part")

    def __enter__(self) -> Path:
        if not self.folder.parent.is_dir():
            raise FhnError(f"cannot write {self.folder}: its folder does not exist")
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp.mkdir()
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return
        old = self.folder.with_name(self.folder.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if self.folder.exists():
            self.folder.rename(old)
        self.tmp.rename(self.folder)
        shutil.rmtree(old, ignore_errors=True)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, default=_json_default), encoding="utf-8")


def _json_default(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"cannot store {type(value).__name__} in a checkpoint")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise FhnError(f"{path} is unreadable or not JSON ({err}); the file is damaged") from err


def _load_tensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except (OSError, SafetensorError) as err:
        raise FhnError(f"{path} is not a valid safetensors file ({err})") from err
