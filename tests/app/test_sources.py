"""Adding data from the app: by path (kind guessed), by upload (ENVI pairs), rollback on error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.sources import add_paths, add_uploads, create_project, open_project
from io_adapters.errors import DataError
from io_adapters.project import Project

TAIZHOU = "changedetection/taizhou"


def test_two_date_pair_by_path_with_dates(tmp_path: Path, shared_data: Path) -> None:
    project = create_project(str(tmp_path / "tz"), "")
    assert project.name == "tz"
    folder = shared_data / TAIZHOU
    added = add_paths(project, [str(folder / "2000TM.HDR"), f"  {folder / '2003TM.HDR'}  "],
                      "auto", {"time": "2000, 2003", "iline": 9})
    assert added == ["2000TM.HDR", "2003TM.HDR"]
    reopened = Project.open(tmp_path / "tz")
    assert [(s.kind, s.options) for s in reopened.sources] == [
        ("hyperspectral", {"time": "2000"}), ("hyperspectral", {"time": "2003"})]
    data = reopened.load_data()
    assert data.dims == ("y", "x", "band", "time") and list(data.time.values) == ["2000", "2003"]


def test_envi_upload_adds_the_header_only(tmp_path: Path, shared_data: Path) -> None:
    project = Project.create(tmp_path / "up", "up")
    folder = shared_data / TAIZHOU
    uploads = [(name, (folder / name).read_bytes()) for name in ("2000TM", "2000TM.HDR")]
    assert add_uploads(project, uploads) == ["2000TM.HDR"]
    assert [s.path for s in project.sources] == ["data/2000TM.HDR"]
    original = Project.open(tmp_path / "up").load_data()
    from io_adapters.hyperspectral import read_envi

    np.testing.assert_array_equal(original.values, read_envi(folder / "2000TM.HDR").values)


def test_bad_file_is_taken_out_again(tmp_path: Path, shared_data: Path) -> None:
    project = Project.create(tmp_path / "p", "p")
    add_paths(project, [str(shared_data / "geotiff" / "shade.tif")], "geotiff")
    bad = tmp_path / "broken.tif"
    bad.write_bytes(b"not a tiff at all")
    with pytest.raises(DataError, match="broken.tif"):
        add_paths(project, [str(bad)])
    assert [Path(s.path).name for s in Project.open(project.folder).sources] == ["shade.tif"]
    with pytest.raises(DataError, match="cannot tell the kind"):
        add_paths(project, [str(tmp_path / "notes.docx")])
    with pytest.raises(DataError, match="at least one file"):
        add_paths(project, [])
    with pytest.raises(DataError, match="choose one or more files"):
        add_uploads(project, [])


def test_open_and_create_need_a_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="give the folder"):
        open_project("  ")
    with pytest.raises(DataError, match="give a folder"):
        create_project("")
    with pytest.raises(DataError, match="full path"):
        create_project("relative/folder")
    with pytest.raises(DataError, match="not an fhn project"):
        open_project(str(tmp_path))
