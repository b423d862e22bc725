import os
import stat
import time

import pytest

from io_adapters.atomic import STALE_PART_SECONDS, atomic_output
from io_adapters.errors import DataError


def test_success_replaces_with_normal_permissions(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with atomic_output(target) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new"
    assert stat.S_IMODE(os.stat(target).st_mode) & 0o044  # readable by group/others
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_failure_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_output(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("writer failed")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


@pytest.mark.parametrize("name", ["missing/out.txt", "."])
def test_unwritable_targets_raise_data_error(tmp_path, name):
    with pytest.raises(DataError, match="cannot write"), atomic_output(tmp_path / name):
        pass


def test_leftover_parts_of_killed_writers_are_removed_once_stale(tmp_path):
    target = tmp_path / "labels.npz"
    stale = [tmp_path / f".labels.npz.{tag}.part" for tag in ("k1", "k2")]
    young = tmp_path / ".labels.npz.live.part"  # a writer still at work, maybe
    other = tmp_path / ".other.npz.k3.part"     # another file's: not ours to judge
    for part in (*stale, young, other):
        part.write_bytes(b"")
    old = time.time() - STALE_PART_SECONDS - 60
    for part in (*stale, other):
        os.utime(part, (old, old))
    with atomic_output(target) as tmp:
        tmp.write_bytes(b"data")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [target.name, young.name, other.name])
