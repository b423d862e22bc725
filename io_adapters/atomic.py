"""Atomic writes: a file is either the old version or the complete new one, never half.

Everything io_adapters writes goes through :func:`atomic_output`, which hands out a
temporary path in the destination's folder (same file system, so the final
``os.replace`` is atomic) and renames it only when the writer finished without error.
A process killed mid-write leaves its ``.<name>.*.part`` behind; the next successful
write of the same file removes such leftovers once they are :data:`STALE_PART_SECONDS` old
(a younger one may belong to a writer still at work).
"""

from __future__ import annotations

import glob
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import DataError

STALE_PART_SECONDS = 300.0


@contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` on success.

    On any exception the temporary file is removed and ``path`` is left untouched.
    Raises :class:`DataError` when the destination folder is missing or not writable.
    """
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise DataError(f"cannot write {target}: folder {folder} does not exist; create it first")
    if target.is_dir():
        raise DataError(f"cannot write {target}: it is a folder; give a file name")
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=folder)
    except OSError as err:
        raise DataError(
            f"cannot write {target}: {err.strerror}; choose a folder you can write to"
        ) from err
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        # mkstemp makes the file private (0600); give it the usual umask-based mode.
        os.chmod(tmp, 0o666 & ~_current_umask())
        os.replace(tmp, target)
        _remove_stale_parts(target)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise DataError(f"cannot write {target}: {err.strerror or err}") from err
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _remove_stale_parts(target: Path) -> None:
    cutoff = time.time() - STALE_PART_SECONDS
    for part in target.parent.glob(f".{glob.escape(target.name)}.*.part"):
        try:
            if part.is_file() and part.stat().st_mtime < cutoff:
                part.unlink()
        except OSError:  # gone already, or not ours to delete: leave it
            continue


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
