"""Crash safety of checkpoint and model saves: a crash injected at every step of a save.

Every file write, fsync, rename and delete of a save is a numbered step; the test saves
again with a crash at step k for every k (a torn file where the step writes one, a half
deleted folder where it deletes one) and checks that loading then finds the newest
complete copy, and that the next save leaves one clean folder.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch

from fhn_core import checkpoint as ckpt
from fhn_core.checkpoint import (
    ModelInfo,
    TrainedModel,
    load_checkpoint,
    newest_complete,
    save_checkpoint,
)
from fhn_core.design import NetworkDesign, Segment
from fhn_core.errors import FhnError
from fhn_core.network import HyperbolicNetwork
from fhn_core.task import Normalisation

DESIGN = NetworkDesign(2, 2, [Segment(0, 1, 2)])


class Crash(BaseException):
    """A kill: not an Exception, so no cleanup code runs on the way out."""


def _model() -> TrainedModel:
    info = ModelInfo(n_classes=2, data_channels=1, normalisation=Normalisation((0.0,), (1.0,)))
    return TrainedModel(HyperbolicNetwork(DESIGN), info)


def _save(folder: Path, model: TrainedModel, iteration: int) -> None:
    optimiser = torch.optim.Adam(model.net.parameters())
    save_checkpoint(folder, model, optimiser, torch.Generator(), {"iteration": iteration})


class StepCounter:
    """Wraps the save's file operations; raises Crash at step ``crash_at`` (None: never)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, crash_at: int | None) -> None:
        self.step, self.crash_at, self.marker_step = 0, crash_at, -1
        real_save, real_json, real_text = ckpt.save_file, ckpt._write_json, Path.write_text
        real_rename, real_rmtree = os.rename, shutil.rmtree

        def write(real):
            def wrapped(*args, **kwargs):
                path = Path(args[1] if real is real_save else args[0])
                if path.name == ckpt.COMPLETE_MARKER:
                    self.marker_step = self.step
                if self._crash_now():
                    real(*args, **kwargs)
                    with open(path, "r+b") as fh:  # torn: half the bytes reached the disk
                        fh.truncate(path.stat().st_size // 2)
                    raise Crash
                return real(*args, **kwargs)
            return wrapped

        def plain(real):
            def wrapped(*args, **kwargs):
                if self._crash_now():
                    raise Crash
                return real(*args, **kwargs)
            return wrapped

        def rmtree(path, *args, **kwargs):
            if self._crash_now():  # half deleted: one file gone, then the kill
                files = sorted(p for p in Path(path).rglob("*") if p.is_file())
                if files:
                    files[0].unlink()
                raise Crash
            return real_rmtree(path, *args, **kwargs)

        monkeypatch.setattr(ckpt, "save_file", write(real_save))
        monkeypatch.setattr(ckpt, "_write_json", write(real_json))
        monkeypatch.setattr(Path, "write_text", write(real_text))
        # fsync is a step where the crash can come, but not performed: without a power cut
        # it changes nothing a test can observe, and it makes the hundreds of saves slow
        monkeypatch.setattr(os, "fsync", plain(lambda fd: None))
        monkeypatch.setattr(os, "rename", plain(real_rename))
        monkeypatch.setattr(shutil, "rmtree", rmtree)

    def _crash_now(self) -> bool:
        self.step += 1
        return self.step - 1 == self.crash_at


def _crashed_save(monkeypatch, folder: Path, iteration: int, crash_at: int) -> bool | None:
    """Save with a crash at step ``crash_at``: None if the save finished (no such step),
    else whether the new copy was complete (its marker written in full) when it crashed."""
    with monkeypatch.context() as m:
        counter = StepCounter(m, crash_at)
        try:
            _save(folder, _model(), iteration)
        except Crash:
            return 0 <= counter.marker_step < crash_at
    return None


def _iteration(folder: Path) -> int:
    return load_checkpoint(folder)[2]["iteration"]


def _fresh(root: Path, name: str) -> Path:
    folder = root / name / "checkpoint"
    folder.parent.mkdir()
    return folder


def test_a_crash_at_any_step_of_a_save_leaves_the_newest_complete_copy(tmp_path, monkeypatch):
    """Crash the save of iteration 2 at step k, then the save of iteration 3 at step j
    (every k, every j), over a checkpoint of iteration 1."""
    first = 0
    while True:
        folder = _fresh(tmp_path, f"{first}")
        _save(folder, _model(), 1)
        complete = _crashed_save(monkeypatch, folder, 2, first)
        if complete is None:
            break
        state = sorted(p.name for p in folder.parent.iterdir())
        expected = 2 if complete else 1
        assert _iteration(folder) == expected, (first, state)
        second = 0
        while True:
            again = _fresh(tmp_path, f"{first}-{second}")
            shutil.copytree(folder.parent, again.parent, dirs_exist_ok=True)
            complete_again = _crashed_save(monkeypatch, again, 3, second)
            if complete_again is None:
                break
            assert _iteration(again) == (3 if complete_again else expected), (first, second)
            second += 1
        # the next save recovers: one clean folder, no .old, no parts
        _save(folder, _model(), 4)
        assert _iteration(folder) == 4
        assert sorted(p.name for p in folder.parent.iterdir()) == ["checkpoint"], state
        first += 1
    assert first >= 14  # 6 writes (5 files + marker), 7 fsyncs, 2 renames, a delete


def test_a_crash_during_the_first_save_is_a_clean_error_not_a_torn_read(tmp_path, monkeypatch):
    crash_at = 0
    while (complete := _crashed_save(monkeypatch, _fresh(tmp_path, str(crash_at)), 1,
                                     crash_at)) is not None:
        folder = tmp_path / str(crash_at) / "checkpoint"
        if complete:
            assert _iteration(folder) == 1
        else:
            with pytest.raises(FhnError, match="holds no training checkpoint"):
                load_checkpoint(folder)
        crash_at += 1
    assert crash_at >= 12


def test_a_kill_during_the_final_model_save_keeps_a_loadable_model(tmp_path, monkeypatch):
    first, second = _model(), _model()
    first.info.class_names, second.info.class_names = ["old", "x"], ["new", "x"]
    (tmp_path / "count").mkdir()
    first.save(tmp_path / "count" / "model")
    with monkeypatch.context() as m:
        counter = StepCounter(m, None)
        second.save(tmp_path / "count" / "model")
    for crash_at in range(counter.step):
        folder = tmp_path / str(crash_at) / "model"
        folder.parent.mkdir()
        first.save(folder)
        with monkeypatch.context() as m:
            StepCounter(m, crash_at)
            try:
                second.save(folder)
            except Crash:
                pass
        loaded = TrainedModel.load(folder)
        assert loaded.info.class_names in (["old", "x"], ["new", "x"])
        for a, b in zip(loaded.net.parameters(),
                        (first if loaded.info.class_names[0] == "old" else second)
                        .net.parameters(), strict=True):
            assert torch.equal(a, b)


def test_stale_parts_of_dead_processes_are_removed_and_live_ones_kept(tmp_path):
    folder = tmp_path / "checkpoint"
    _save(folder, _model(), 1)
    dead = tmp_path / "checkpoint.999999999.abc.part"    # no such pid
    live = tmp_path / f"checkpoint.{os.getppid()}.abc.part"  # our parent: alive
    legacy = tmp_path / "checkpoint.part"                 # the fixed name of old versions
    for part in (dead, live, legacy):
        part.mkdir()
    _save(folder, _model(), 2)
    assert not dead.exists() and not legacy.exists() and live.exists()
    assert newest_complete(folder, ckpt.CHECKPOINT_FILES) == folder


def test_two_saves_never_share_a_temporary_name(tmp_path):
    folder = tmp_path / "checkpoint"
    with ckpt._swapped_folder(folder) as a, ckpt._swapped_folder(folder) as b:
        assert a != b and a.name.startswith(f"checkpoint.{os.getpid()}.")
        (a / "x").write_text("a")
        (b / "x").write_text("b")
    assert (folder / "x").read_text() == "a"  # the outer save finished last
