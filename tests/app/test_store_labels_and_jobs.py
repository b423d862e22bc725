"""The app on a survey store too large for a label grid: labels kept as cells, training
from the Train page predicted block by block into Zarr, nothing of the survey's size held.

The store is small; ``LABEL_GRID_LIMIT`` is lowered so that it counts as large, and
``LabelSet.empty`` fails where a page or the job would allocate a label grid for it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from streamlit.testing.v1 import AppTest

import io_adapters.project as project_module
from app import jobs, runs
from app.labelling import CellLabelEditor, LabelEditor, Stroke, editor_for
from app.views import make_view
from io_adapters.errors import DataError
from io_adapters.labels import LabelSet
from io_adapters.project import Project
from io_adapters.segy import create_segy, read_segy
from io_adapters.zarr_store import ingest_segy

PAGES = Path(__file__).resolve().parents[2] / "app" / "screens"
SHAPE, CHUNKS = (24, 20, 32), (8, 8, 16)
WELLS = "\n".join(["well,iline,xline,top,base,class",
                   "A,4,5,0,60,upper", "A,4,5,64,124,lower",
                   "B,20,15,0,60,upper", "B,20,15,64,124,lower",
                   "C,12,10,0,60,upper", "C,12,10,64,124,lower"]) + "\n"
WAIT = 180.0


def _store_project(folder: Path) -> tuple[Project, Path]:
    """A layered survey (upper half quiet, lower half loud) ingested into a store, a
    project on it and a wells CSV."""
    rng = np.random.default_rng(3)
    values = rng.normal(scale=0.2, size=SHAPE).astype(np.float32)
    values[:, :, 16:] += np.sin(np.arange(16) * 1.3).astype(np.float32) * 3
    folder.mkdir(parents=True)
    segy = create_segy(folder / "s.sgy", values, ilines=range(1, SHAPE[0] + 1),
                       xlines=range(1, SHAPE[1] + 1), sample_interval_ms=4.0)
    store = ingest_segy(segy, folder / "survey.zarr", chunks=CHUNKS)
    project = Project.create(folder / "p", "store")
    project.add_source(str(store), "segy")
    (folder / "wells.csv").write_text(WELLS)
    return project, folder / "wells.csv"


@pytest.fixture()
def large(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test survey counts as too large for a label grid."""
    monkeypatch.setattr(project_module, "LABEL_GRID_LIMIT", 1000)


def _no_label_grid(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args, **_kwargs):
        raise AssertionError("a label grid of the survey's size was allocated")

    monkeypatch.setattr(LabelSet, "empty", classmethod(refuse))


def test_the_cell_editor_keeps_the_labels_a_label_grid_gets(tmp_path: Path, large) -> None:
    project, wells = _store_project(tmp_path / "cells")
    reference_project, _ = _store_project(tmp_path / "grid")
    grid = Project.open(project.folder).load_data()
    editor = editor_for(project, grid)
    assert isinstance(editor, CellLabelEditor)
    reference = LabelEditor(reference_project, grid)  # a label grid, for comparison
    crossline, tslice = make_view(grid, "crossline", 7), make_view(grid, "timeslice", 20)
    for e in (editor, reference):
        e.add_class("upper")
        e.import_boreholes(wells, 1.5)  # adds "lower"
        e.paint([Stroke("path", np.array([[2.5, 3.5], [20.5, 30.5]]))], crossline, (24, 32),
                "brush", 1, 1)
        e.paint([Stroke("point", np.array([[5.5, 5.5]]))], tslice, (20, 24), "point", 0, 1)
        e.paint([Stroke("path", np.array([[0.5, 4.5], [10.5, 4.5]]))], crossline, (24, 32),
                "eraser", -1, 0)
    assert editor.labels.class_names == reference.labels.class_names == ["upper", "lower"]
    assert editor.cells.grid[:, :, :].tolist() == reference.labels.labels.tolist()
    assert editor.counts_table() == reference.counts_table()
    assert editor.total() == reference.total() > 0
    assert [w.name for w in editor.wells] == [w.name for w in reference.wells]
    assert editor.undo() > 0 and reference.undo() > 0  # the eraser stroke comes back
    assert editor.cells.grid[:, :, :].tolist() == reference.labels.labels.tolist()
    # saved as cells: a new session sees the same labels; no label grid file
    again = editor_for(project, grid)
    assert again.cells.grid[:, :, :].tolist() == reference.labels.labels.tolist()
    assert project.label_cells_path.is_file() and not project.labels_path.exists()
    with pytest.raises(DataError, match="list of cells"):
        editor.split_random(0.2)
    # deleting a class: as on the label grid, wells included
    assert again.delete_class(0) == reference.delete_class(0) > 0
    assert again.cells.grid[:, :, :].tolist() == reference.labels.labels.tolist()
    assert [w.intervals for w in again.wells] == [w.intervals for w in reference.wells]


def test_label_wells_and_train_pages_on_cell_labels(tmp_path: Path, large,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    project, wells = _store_project(tmp_path / "p")
    editor_for(project, project.load_data()).import_boreholes(wells, 1.5)
    _no_label_grid(monkeypatch)
    monkeypatch.setenv("FHN_PROJECT", str(project.folder))
    for page in ("label", "wells", "train"):
        at = AppTest.from_file(str(PAGES / f"{page}.py"), default_timeout=90).run()
        assert not at.exception, (page, [e.value for e in at.exception])
        assert not at.error, (page, [e.value for e in at.error])
    assert at.toggle(key="fhn-train-envelope").disabled  # amplitude and time on a store
    assert not at.toggle(key="fhn-train-envelope").value


def test_the_train_page_on_a_store_predicts_block_by_block_into_zarr(
        tmp_path: Path, large, monkeypatch: pytest.MonkeyPatch) -> None:
    from app.streamed import open_prediction
    from fhn_core.checkpoint import TrainedModel
    from fhn_core.metrics import evaluate
    from fhn_core.prediction import predict

    project, wells = _store_project(tmp_path / "p")
    editor_for(project, project.load_data()).import_boreholes(wells, 1.5)
    _no_label_grid(monkeypatch)
    monkeypatch.setenv("FHN_PROJECT", str(project.folder))
    from distributed import LocalCluster

    at = AppTest.from_file(str(PAGES / "train.py"), default_timeout=90).run()
    at.selectbox(key="fhn-train-preset").set_value("quick").run()
    [n for n in at.number_input if n.label == "Iterations"][0].set_value(3)
    for axis in ("iline", "xline"):
        [n for n in at.number_input if n.label == axis][0].set_value(8)
    at.run()
    # the prediction runs on the workers of a Dask cluster named on the page
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                      dashboard_address=None) as cluster:
        at.text_input(key="fhn-train-scheduler").set_value(cluster.scheduler_address).run()
        at.button(key="fhn-train-start").click().run()
        assert not at.exception, [e.value for e in at.exception]
        job = jobs.registry().current()
        assert job is not None and job.wait(WAIT), "the job did not finish"
        assert job.snapshot().status == "finished", job.snapshot().error
        assert job.spec.scheduler == cluster.scheduler_address

    paths = runs.RunPaths.of(project, job.name)
    store = runs.prediction_store(project, job.name)
    assert store == paths.prediction_dir / "prediction.zarr"
    assert not (paths.prediction_dir / "classes.npy").exists()  # nothing in memory, whole
    # the streamed prediction is the in-memory one of the same model
    model = TrainedModel.load(paths.model_dir)
    from app.layout import to_channels_first

    grid = project.load_data().load()
    layout = to_channels_first(grid, spatial_dims=3, **{
        "vertical_channel": "vertical" in " ".join(model.info.channel_names)})
    expected = predict(model, layout.data, device="cpu")
    streamed = open_prediction(store)
    np.testing.assert_array_equal(streamed["classes"].values, expected.classes)
    # scored at the labelled cells
    cells = project.load_label_cells(grid)
    scores = runs.load_metrics(project, job.name)
    scored = scores["training"].n_labelled + (scores["validation"].n_labelled
                                               if scores["validation"] else 0)
    assert scored == len(cells.cells)
    every = evaluate(expected.classes[tuple(cells.cells.T)], cells.class_ids, 2)
    assert every.n_labelled == scored

    results = AppTest.from_file(str(PAGES / "results.py"), default_timeout=90).run()
    assert not results.exception, [e.value for e in results.exception]
    assert not results.error, [e.value for e in results.error]
    shown = [m.value for m in results.metric if m.label == "Mean IoU"]
    assert shown and shown[-1] == f"{scores['training'].mean_iou:.3f}"
    # the prediction and its uncertainty on a section, read from the store
    assert sum("data:image/png;base64," in m.value for m in results.markdown) == 2
    assert any(str(store) in i.value for i in results.info)

    # Export writes the store as SEG-Y with the source's headers, chunk by chunk
    export = AppTest.from_file(str(PAGES / "export.py"), default_timeout=90).run()
    assert export.radio(key="fhn-export-format").options == ["SEG-Y (.sgy)", "NetCDF (.nc)"]
    export.radio(key="fhn-export-format").set_value(".sgy")
    [b for b in export.button if b.label == "Export"][0].click().run()
    assert not export.error, [e.value for e in export.error]
    written = project.exports_dir / job.name / f"{job.name}-classes.sgy"
    back = read_segy(written)
    np.testing.assert_array_equal(back.values, expected.classes)
    np.testing.assert_array_equal(back.coords["iline"].values, grid.coords["iline"].values)

    # the 3D scene would hold the whole survey: the page says so instead
    view3d = AppTest.from_file(str(PAGES / "view3d.py"), default_timeout=90).run()
    assert not view3d.exception and not view3d.error
    assert any("whole volume in memory" in i.value for i in view3d.info)


def test_a_section_of_a_dask_backed_prediction_reads_only_the_chunks_it_crosses() -> None:
    import dask.array as darray

    from app.overlays import section_of

    read = []

    def chunk(block_id=None):
        read.append(tuple(block_id))
        return np.full((8, 8, 16), sum(block_id), dtype=np.int16)

    classes = darray.map_blocks(chunk, chunks=((8,) * 3, (8,) * 3, (16,) * 2),
                                dtype=np.int16, meta=np.empty((0, 0, 0), np.int16))
    grid = xr.DataArray(np.zeros((24, 24, 32)), dims=("iline", "xline", "samples"))
    section = section_of(classes, make_view(grid, "inline", 12))
    assert section.shape == (32, 24)  # samples down, crosslines across
    assert sorted(read) == sorted((1, j, k) for j in range(3) for k in range(2))
