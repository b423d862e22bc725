"""The progress of ``fhn train`` as JSON lines, for a program watching it from outside.

``fhn train RUN.toml --progress-log FILE`` (rank 0 alone under torchrun) writes one JSON
object per line:

- ``{"event": "start", "ranks": N, "device": ..., "iteration": i, "iterations": n,
  "history": [...]}`` when training starts (``history``: what a resumed run had done);
- ``{"event": "iteration", "iteration": i, "iterations": n, "loss": ..., "learning_rate":
  ..., "elapsed": s, "peak_memory_mb": ..., "val_miou": x | null}`` after each iteration;
- ``{"event": "end", "status": "finished" | "stopped" | "diverged", "message": ...,
  "iteration": i, "history": [...], "diagnostics": {...} | null}`` once the model is saved.

The app's multi-process job (:mod:`app.distributed_job`) reads it while the processes run.
The file is appended to line by line rather than replaced atomically: a reader polls it
while it grows, and skips a last line that is not complete yet.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

__all__ = ["ProgressLog", "LogReader"]


def _number(value: float) -> float | None:
    """JSON has no NaN or inf: a non-finite loss is written as null."""
    value = float(value)
    return value if math.isfinite(value) else None


class ProgressLog:
    """Writes the events of one training run to ``path`` (a new file per run)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("", encoding="utf-8")

    def _write(self, record: dict[str, Any]) -> None:
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, default=_plain) + "\n")
            fh.flush()

    def start(self, ranks: int, device: str, iteration: int, iterations: int,
              history: list[dict[str, Any]]) -> None:
        self._write({"event": "start", "ranks": int(ranks), "device": device,
                     "iteration": int(iteration), "iterations": int(iterations),
                     "history": history})

    def iteration(self, progress: Any) -> None:
        """One :class:`fhn_core.training.Progress`."""
        val = progress.validation
        self._write({"event": "iteration", "iteration": int(progress.iteration),
                     "iterations": int(progress.iterations), "loss": _number(progress.loss),
                     "learning_rate": float(progress.learning_rate),
                     "elapsed": float(progress.elapsed),
                     "peak_memory_mb": float(progress.peak_memory_mb),
                     "val_miou": None if val is None else _number(val.mean_iou)})

    def end(self, result: Any) -> None:
        """The :class:`fhn_core.training.TrainResult` whose model was just saved."""
        diagnostics = result.diagnostics.as_dict() if result.diagnostics is not None else None
        self._write({"event": "end", "status": result.status, "message": result.message,
                     "iteration": int(result.iteration), "history": result.history,
                     "diagnostics": diagnostics})


def _plain(value: Any) -> Any:
    """Numbers of numpy/torch (history records hold some) as Python numbers."""
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    return str(value)


class LogReader:
    """Reads the events appended to a progress log since the last call."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._offset = 0

    def new_events(self) -> list[dict[str, Any]]:
        """The complete lines written since the last call, parsed (none while the file is
        missing; a line that is not a JSON object is skipped)."""
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self._offset)
                chunk = fh.read()
        except FileNotFoundError:
            return []
        end = chunk.rfind(b"\n")
        if end < 0:
            return []
        self._offset += end + 1
        events = []
        for line in chunk[:end].decode("utf-8", "replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                events.append(record)
        return events
