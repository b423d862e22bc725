"""What every ``fhn`` command shares: exit codes, the user-error type, one-line messages on
stderr, data warnings, free memory, JSON records and model folders."""

from __future__ import annotations

import json
import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from io_adapters.errors import DataWarning

PROG = "fhn"


EXIT_OK, EXIT_DIVERGED, EXIT_USAGE, EXIT_STOPPED = 0, 1, 2, 130


CONFIG_SECTIONS = ("data", "labels", "design", "training", "output")


LAYOUT_FLAGS = ("change_channels", "every_slice")  # [data] switches of app.layout


class UserError(Exception):
    """A problem with what the user gave; shown as one line, exit code 2."""


def print_line(text: str) -> None:
    """One line on stderr in one write: the processes of a several-GPU run share one log,
    and a line written in two pieces (text, then newline) can be cut by another's."""
    sys.stderr.write(" ".join(str(text).split()) + "\n")
    sys.stderr.flush()


def print_error(message: str) -> None:
    print_line(f"{PROG}: error: {message}")


@contextmanager
def data_warnings_on_stderr() -> Iterator[None]:
    """Show each DataWarning (data that reads but looks wrong) as one ``fhn: warning:`` line."""
    with warnings.catch_warnings():
        warnings.simplefilter("always", DataWarning)
        previous = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None) -> None:
            if issubclass(category, DataWarning):
                print_line(f"{PROG}: warning: {message}")
            else:
                previous(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        yield


def available_memory(device: str) -> tuple[str, float | None]:
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


def write_json(path: Path, record: dict[str, Any]) -> None:
    from io_adapters.atomic import atomic_output

    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(record, indent=1), encoding="utf-8")


def model_folder(path: Path) -> Path:
    from fhn_core.checkpoint import newest_complete

    for candidate in (path, path / "model", path / "checkpoint"):
        # a save killed between its renames leaves the complete copy under another name
        if (candidate / "model.json").is_file() or newest_complete(candidate):
            return candidate
    if not path.exists():
        raise UserError(f"model folder {path} not found; check the path")
    return path  # TrainedModel.load names what is missing

