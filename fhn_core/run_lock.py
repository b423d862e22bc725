"""One writer per training run folder: an OS lock on ``<folder>/.fhn-run.lock``.

Two trainings writing one folder would replace each other's checkpoints and model. The
lock is ``fcntl.flock`` on an open file, so the kernel drops it when the holder exits in
any way (``kill -9`` included): a stale lock cannot outlive its process. The holder
writes its pid into the file so the refused run can say who holds it. The ``fhn train``
command and the app's background worker both take it around loading, training and saving.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from .errors import FhnError

LOCK_NAME = ".fhn-run.lock"


class RunLock:
    """Context manager holding the run lock of ``folder`` (created if missing).

    Raises :class:`FhnError` naming the holder's pid when another process (or another
    thread of this one) holds it.
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self._fd: int | None = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()

    def acquire(self) -> RunLock:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise FhnError(f"cannot lock the run folder {self.folder}: {err.strerror}; "
                           "choose a folder you can write to") from err
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise FhnError(
                f"{self.folder} is in use by another training run (pid {holder}); wait for it "
                "to finish or stop it, or choose another output folder"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)  # the file stays: deleting it would race a new holder
            os.close(self._fd)  # closing releases the flock
            self._fd = None
