"""Project folders: create, add sources, save/reopen labels, damaged or missing projects."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest

from io_adapters.errors import DataError
from io_adapters.labels import LabelSet, Provenance
from io_adapters.project import PROJECT_FILE, Project

TAIZHOU = "changedetection/taizhou"


def write_small_envi(folder: Path) -> np.ndarray:
    """A 5 x 4 x 3 uint8 BSQ ENVI file at folder/data/cube (+ cube.hdr)."""
    cube = np.arange(60, dtype=np.uint8).reshape(5, 4, 3)
    (folder / "data").mkdir(parents=True, exist_ok=True)
    (folder / "data" / "cube").write_bytes(np.transpose(cube, (2, 0, 1)).tobytes())
    (folder / "data" / "cube.hdr").write_text(
        "ENVI\nsamples = 4\nlines = 5\nbands = 3\ndata type = 1\ninterleave = bsq\n"
        "byte order = 0\nheader offset = 0\n"
    )
    return cube


def test_create_makes_folders_and_toml(tmp_path: Path) -> None:
    project = Project.create(tmp_path / "p", "survey A")
    for sub in ("labels", "models", "predictions", "exports"):
        assert (tmp_path / "p" / sub).is_dir()
    doc = tomllib.loads((tmp_path / "p" / PROJECT_FILE).read_text())
    assert doc["name"] == "survey A" and doc["sources"] == []
    assert doc["labels"] == "labels/labels.npz" and doc["created"]
    assert project.models_dir == tmp_path / "p" / "models"
    assert project.predictions_dir == tmp_path / "p" / "predictions"
    with pytest.raises(DataError, match="already holds a project"):
        Project.create(tmp_path / "p", "again")


def test_small_envi_source_labels_reopen(tmp_path: Path) -> None:
    folder = tmp_path / "proj"
    project = Project.create(folder, "small")
    cube = write_small_envi(folder)
    project.add_source("data/cube.hdr", "hyperspectral")  # relative to the project folder
    data = project.load_data()
    np.testing.assert_array_equal(data.values, cube)

    empty = project.load_labels()
    assert empty.shape == (5, 4) and empty.dims == ("y", "x") and empty.classes == []
    labels = LabelSet.empty((5, 4), ["water", "land"], ("y", "x"))
    labels.labels[1, 2], labels.labels[4, 0] = 0, 1
    labels.source[1, 2] = labels.source[4, 0] = Provenance.STROKE
    project.save_labels(labels)

    reopened = Project.open(folder)
    assert reopened.name == "small"
    assert reopened.sources == project.sources
    assert reopened.sources[0].path == "data/cube.hdr"
    back = reopened.load_labels(grid=reopened.load_data())
    np.testing.assert_array_equal(back.labels, labels.labels)
    np.testing.assert_array_equal(back.source, labels.source)
    assert back.classes == labels.classes


def test_taizhou_pair_as_two_dates(tmp_path: Path, shared_data: Path) -> None:
    project = Project.create(tmp_path / "tz", "Taizhou")
    for year in ("2000", "2003"):
        project.add_source(shared_data / TAIZHOU / f"{year}TM", "hyperspectral", time=year)
    reopened = Project.open(tmp_path / "tz")
    assert reopened.sources[1].options == {"time": "2003"}
    assert Path(reopened.sources[0].path).is_absolute()
    data = reopened.load_data()
    assert data.dims == ("y", "x", "band", "time")
    assert data.shape == (400, 400, 6, 2)
    assert list(data["time"].values) == ["2000", "2003"]
    assert reopened.load_labels(grid=data).shape == (400, 400)


def test_seismic_source(tmp_path: Path, shared_data: Path) -> None:
    project = Project.create(tmp_path / "f3", "F3")
    project.add_source(shared_data / "segy" / "f3.sgy", "segy", iline=189, xline=193)
    data = Project.open(tmp_path / "f3").load_data()
    assert data.dims == ("iline", "xline", "samples") and data.shape == (23, 18, 75)
    assert project.load_labels(grid=data).dims == ("iline", "xline", "samples")
    # a second volume must share the survey grid (several volumes are input channels)
    project.add_source(shared_data / "segy" / "small.sgy", "segy")
    with pytest.raises(DataError, match="small.sgy does not share the survey grid of f3"):
        project.load_data()
    project.remove_source(1)
    with pytest.raises(DataError, match="separate project"):
        project.add_source(shared_data / TAIZHOU / "2000TM", "hyperspectral")


def test_add_source_errors(tmp_path: Path) -> None:
    project = Project.create(tmp_path / "p", "p")
    write_small_envi(tmp_path / "p")
    with pytest.raises(DataError, match="unknown"):
        project.add_source("data/cube", "lidar")
    with pytest.raises(DataError, match=r"\['iline'\] do not apply"):
        project.add_source("data/cube", "hyperspectral", iline=189)
    with pytest.raises(DataError, match="not found.*project folder"):
        project.add_source("data/nothing.hdr", "hyperspectral")
    with pytest.raises(DataError, match="no data yet"):
        project.load_data()
    assert Project.open(tmp_path / "p").sources == []


def test_missing_and_corrupt_project(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="create a project first"):
        Project.open(tmp_path)
    Project.create(tmp_path / "p", "p")
    toml_path = tmp_path / "p" / PROJECT_FILE
    toml_path.write_text('name = "p"\nsources = [\n')  # cut off mid-file
    with pytest.raises(DataError, match="not valid TOML") as err:
        Project.open(tmp_path / "p")
    assert str(toml_path) in str(err.value)
    toml_path.write_text('name = "p"\n[[sources]]\npath = "x"\nkind = "movie"\n')
    with pytest.raises(DataError, match="kind 'movie'"):
        Project.open(tmp_path / "p")


def test_save_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tomli_w

    project = Project.create(tmp_path / "p", "p")
    before = project.project_file.read_bytes()

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(tomli_w, "dump", boom)
    project.name = "renamed"
    with pytest.raises(RuntimeError, match="disk full"):
        project.save()
    assert project.project_file.read_bytes() == before
    assert sorted(p.name for p in (tmp_path / "p").iterdir() if p.is_file()) == [PROJECT_FILE]


def test_geotiff_and_mat_sources(tmp_path: Path, shared_data: Path) -> None:
    import scipy.io

    maps = Project.create(tmp_path / "maps", "maps")
    maps.add_source(shared_data / "geotiff" / "RGB.byte.tif", "geotiff", categorical=False)
    data = Project.open(tmp_path / "maps").load_data()
    assert data.dims == ("band", "y", "x") and data.shape == (3, 718, 791)
    assert maps.load_labels(grid=data).shape == (718, 791)

    cube = np.random.default_rng(0).random((6, 5, 4))
    scipy.io.savemat(tmp_path / "cube.mat", {"refl": cube})
    hyper = Project.create(tmp_path / "hyper", "hyper")
    hyper.add_source(tmp_path / "cube.mat", "hyperspectral", variable="refl", band_axis=None)
    assert hyper.sources[0].options == {"variable": "refl"}  # None options left out
    loaded = Project.open(tmp_path / "hyper").load_data()
    np.testing.assert_array_equal(loaded.values, cube.astype(np.float32))


def test_store_file_keeps_uploads_in_data_folder(tmp_path: Path) -> None:
    project = Project.create(tmp_path / "p", "uploads")
    rel = project.store_file("cube.hdr", b"ENVI\n")
    assert rel == "data/cube.hdr"
    assert (tmp_path / "p" / "data" / "cube.hdr").read_bytes() == b"ENVI\n"
    assert project.store_file("cube.hdr", b"ENVI 2\n") == rel  # replaced
    assert project.resolve(rel).read_bytes() == b"ENVI 2\n"
    for bad in ("../escape.sgy", "sub/dir.tif", "", ".."):
        with pytest.raises(DataError, match="plain file name"):
            project.store_file(bad, b"x")
    assert not (tmp_path / "escape.sgy").exists()


def test_guess_kind_from_suffix() -> None:
    from io_adapters.project import guess_kind

    assert guess_kind("a/b/survey.SGY") == "segy" and guess_kind("x.segy") == "segy"
    assert guess_kind("dem.tif") == "geotiff" and guess_kind("DEM.TIFF") == "geotiff"
    for name in ("2000TM.HDR", "2000TM", "cube.img", "pavia.mat", "scene.nc", "scene.h5"):
        assert guess_kind(name) == "hyperspectral", name
    with pytest.raises(DataError, match="cannot tell the kind of notes.docx"):
        guess_kind("notes.docx")


def test_boreholes_saved_beside_labels(tmp_path: Path) -> None:
    from io_adapters.boreholes import Borehole

    project = Project.create(tmp_path / "p", "wells")
    assert project.load_boreholes() == []
    wells = [Borehole("W-1", (2, 3), None, [(0.0, 10.0, 1)])]
    path = project.save_boreholes(wells)
    assert path == tmp_path / "p" / "labels" / "boreholes.json"
    assert Project.open(tmp_path / "p").load_boreholes() == wells
