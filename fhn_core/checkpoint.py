"""Trained models and training checkpoints on disk, without pickle.

A model folder holds ``model.safetensors`` (weights), ``design.toml`` (the architecture)
and ``model.json`` (classes, normalisation, label embedding); an ensemble of N networks
(``ModelInfo.ensemble``, :mod:`fhn_core.ensemble`) adds ``member-1.safetensors`` ...
``member-{N-1}.safetensors``, the other members' weights for the same design. A training
checkpoint adds ``training.safetensors`` (optimiser tensors, RNG state) and
``training.json`` (iteration, configuration, history, optimiser hyper-parameters), so
training resumes exactly.
Folders are written beside the target (``<name>.<pid>.<random>.part``), fsynced, and
swapped in whole, so a crash never leaves a half-written checkpoint. The swap renames the
current copy to ``<name>.old`` before moving the new one in; a crash between the two
renames leaves no ``<name>`` but two complete copies, so loading takes the newest complete
copy among ``<name>``, ``<name>.old`` and the ``.part`` folders (:func:`newest_complete`).
Parts left by killed processes are removed after the next successful save. Loading reads
tensors and JSON only, never arbitrary objects.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from .design import NetworkDesign
from .errors import FhnError
from .network import HyperbolicNetwork
from .task import Normalisation

MODEL_FILES = ("model.safetensors", "design.toml", "model.json")
CHECKPOINT_FILES = (*MODEL_FILES, "training.safetensors", "training.json")
COMPLETE_MARKER = ".complete"  # written last by a save: the copy is whole


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
    ensemble: int = 1  # networks whose logits prediction averages (member weight files)
    averaged_axis: int | None = None  # spatial axis the logits are averaged over (every slice)
    # The class prior the training loss implied ([] = unknown: a model from before it was
    # kept), and the one prediction uses by default: "training", or "scene" (re-estimated
    # on the predicted scene, fhn_core.priors).
    training_prior: list[float] = field(default_factory=list)
    class_priors: str = "training"
    # The weight of the run's per-cell baseline in the prediction's mean of probabilities
    # (fhn_core.blending.blended_logits); 0: the network alone (older models).
    baseline_weight: float = 0.0

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


def member_file(member: int) -> str:
    """The weight file of ensemble member ``member`` (0: ``model.safetensors``)."""
    return "model.safetensors" if member == 0 else f"member-{member}.safetensors"


@dataclass
class TrainedModel:
    """A network with everything needed to apply it to new data of the same kind.

    ``members`` are the further networks of an ensemble (the same design, other
    initialisations): prediction averages the logits of :attr:`networks`.
    """

    net: HyperbolicNetwork
    info: ModelInfo
    members: list[HyperbolicNetwork] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.info.ensemble != 1 + len(self.members):
            self.info = replace(self.info, ensemble=1 + len(self.members))

    @property
    def design(self) -> NetworkDesign:
        return self.net.design

    @property
    def networks(self) -> list[HyperbolicNetwork]:
        """Every network of the model: ``net`` first, then the other ensemble members."""
        return [self.net, *self.members]

    def save(self, folder: str | Path) -> Path:
        """Write the model folder atomically (weights, design, info)."""
        with _swapped_folder(Path(folder)) as tmp:
            self.write_into(tmp)
        return Path(folder)

    def write_into(self, folder: Path) -> None:
        for member, net in enumerate(self.networks):
            if net.design != self.design:
                raise FhnError("the members of an ensemble must share one design")
            weights = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
            save_file(weights, str(folder / member_file(member)))
        (folder / "design.toml").write_text(self.design.to_toml(), encoding="utf-8")
        _write_json(folder / "model.json", self.info.to_json())

    @classmethod
    def load(cls, folder: str | Path, *, device: str | torch.device = "cpu") -> TrainedModel:
        folder = newest_complete(Path(folder), MODEL_FILES) or Path(folder)
        missing = [name for name in MODEL_FILES if not (folder / name).is_file()]
        if missing:
            raise FhnError(
                f"{folder} is not a trained model folder (missing {', '.join(missing)}); "
                "point to a folder written by training or export"
            )
        design = NetworkDesign.load(folder / "design.toml")
        info_file = folder / "model.json"
        info = ModelInfo.from_json(_read_json(info_file), source=str(info_file))
        if not isinstance(info.ensemble, int) or info.ensemble < 1:
            raise FhnError(f"{info_file}: ensemble must be a whole number >= 1, got "
                           f"{info.ensemble!r}; the file is damaged")
        nets = [_load_network(folder, member, design).to(device)
                for member in range(info.ensemble)]
        return cls(nets[0], info, nets[1:])


def _load_network(folder: Path, member: int, design: NetworkDesign) -> HyperbolicNetwork:
    path = folder / member_file(member)
    if not path.is_file():
        raise FhnError(f"{path} is missing: model.json lists an ensemble with this member; "
                       "copy the whole model folder")
    net = HyperbolicNetwork(design)
    try:
        net.load_state_dict(_load_tensors(path))
    except RuntimeError as err:
        raise FhnError(
            f"{path} does not match {folder / 'design.toml'}: "
            f"{str(err).splitlines()[0]}; the files come from different models"
        ) from err
    return net


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
    folder = newest_complete(Path(folder), CHECKPOINT_FILES) or Path(folder)
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
def newest_complete(folder: Path, files: tuple[str, ...] = MODEL_FILES) -> Path | None:
    """The newest complete copy of ``folder`` (itself, its ``.old`` or a ``.part``), or None.

    A copy is complete when its ``.complete`` marker (written last, after every file was
    flushed to disk) parses, it holds every one of ``files`` and its tensor files pass
    their header/size check. Newest = the latest marker, so a finished ``.part`` that a
    crash kept from being renamed wins over the copy it was about to replace. None for
    folders written before the marker existed (the caller then reads ``folder`` as is).
    """
    best: tuple[int, Path] | None = None
    for candidate in _copies_of(folder):
        written = _completed_at(candidate, files)
        if written is not None and (best is None or written > best[0]):
            best = (written, candidate)
    return best[1] if best else None


def _copies_of(folder: Path) -> list[Path]:
    parent = folder.parent
    if not folder.name:
        return [folder]
    parts = sorted(parent.glob(f"{folder.name}.*.part")) if parent.is_dir() else []
    return [folder, folder.with_name(folder.name + ".old"), *parts]


def _completed_at(folder: Path, files: tuple[str, ...]) -> int | None:
    try:
        written = int(json.loads((folder / COMPLETE_MARKER).read_text("utf-8"))["written_ns"])
        if not all((folder / name).is_file() for name in files):
            return None
        for name in files:  # a torn tensor file fails its header/size check
            if name.endswith(".safetensors"):
                with safe_open(str(folder / name), "pt"):
                    pass
        return written
    except (OSError, ValueError, KeyError, TypeError, SafetensorError):
        return None
    except RuntimeError as err:  # safetensors' own "unable to open file": the writer renamed
        if "unable to open file" in str(err):  # or removed this copy while we looked at it
            return None
        raise


_WRITING: set[Path] = set()  # .part folders this process is writing now


class _swapped_folder:
    """Context manager: write into a unique ``<folder>.<pid>.<random>.part``, then swap it in.

    Each step of the swap leaves at least one complete copy (see :func:`newest_complete`):
    the new copy's files are fsynced, then its ``.complete`` marker is written and fsynced,
    before ``.old`` is deleted; the folder entries are fsynced after the renames. An
    exception inside the block removes the part; a kill leaves it for the next successful
    save to remove.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def __enter__(self) -> Path:
        if not self.folder.parent.is_dir():
            raise FhnError(f"cannot write {self.folder}: its folder does not exist")
        # unique per process and save; mkdir (not mkdtemp) keeps the umask's permissions
        name = f"{self.folder.name}.{os.getpid()}.{secrets.token_hex(4)}.part"
        self.tmp = self.folder.with_name(name)
        self.tmp.mkdir()
        _WRITING.add(self.tmp)
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is not None:
                if issubclass(exc_type, Exception):
                    shutil.rmtree(self.tmp, ignore_errors=True)
                return
            self._swap()
        finally:
            _WRITING.discard(self.tmp)

    def _swap(self) -> None:
        folder, parent = self.folder, self.folder.parent
        for path in sorted(self.tmp.iterdir()):
            _fsync(path)
        marker = self.tmp / COMPLETE_MARKER
        _write_json(marker, {"written_ns": time.time_ns()})
        _fsync(marker)
        _fsync(self.tmp)
        old = folder.with_name(folder.name + ".old")
        if old.exists():  # the new copy is complete on disk, so .old is not needed
            shutil.rmtree(old)
        if folder.exists():
            os.rename(folder, old)
        os.rename(self.tmp, folder)
        _fsync(parent)
        shutil.rmtree(old, ignore_errors=True)
        _remove_stale_parts(folder)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_stale_parts(folder: Path) -> None:
    """Delete ``.part`` copies of ``folder`` whose writer is gone (killed mid-save), and the
    fixed-name ``<folder>.part`` that earlier versions wrote."""
    shutil.rmtree(folder.with_name(folder.name + ".part"), ignore_errors=True)
    for part in folder.parent.glob(f"{folder.name}.*.part"):
        pid = part.name[len(folder.name) + 1:].split(".", 1)[0]
        if part in _WRITING or (pid.isdigit() and int(pid) != os.getpid()
                                and _process_alive(int(pid))):
            continue
        shutil.rmtree(part, ignore_errors=True)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


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
