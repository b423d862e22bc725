"""Streamed prediction over an ingested survey: threads and a 2-worker LocalCluster."""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import segyio
import torch
import xarray as xr

from app import streamed
from app.layout import layout_for_model
from fhn_core.blocks import block_grid
from fhn_core.checkpoint import ModelInfo, TrainedModel
from fhn_core.design import NetworkDesign, Segment
from fhn_core.network import HyperbolicNetwork
from fhn_core.prediction import predict
from fhn_core.task import Normalisation
from io_adapters.errors import DataError
from io_adapters.segy import create_segy, read_segy
from io_adapters.zarr_store import ingest_segy, open_segy_store

REPO = Path(__file__).resolve().parents[2]
DESIGN = NetworkDesign(4, 3, [Segment(0, 1, 4), Segment(1, 2, 8), Segment(0, 1, 4)])
BLOCK, OVERLAP = 12, 4


@pytest.fixture(scope="module")
def survey(tmp_path_factory) -> dict:
    """A small SEG-Y, its ingested store and a model (amplitude + time channels) on disk."""
    tmp = tmp_path_factory.mktemp("streamed")
    torch.manual_seed(0)
    net = HyperbolicNetwork(DESIGN)
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0.0, 0.5)
    info = ModelInfo(
        n_classes=3, data_channels=2, normalisation=Normalisation((0.0, 50.0), (1.0, 30.0)),
        class_names=["sand", "shale", "salt"], class_colours=["#ffff00", "#808080", "#ffffff"],
        channel_names=["amplitude", "vertical coordinate (ms)"], fixed_axes=(2,),
        vertical_axis=2, class_order=[1, 0, 2])
    model_dir = TrainedModel(net, info).save(tmp / "model")
    rng = np.random.default_rng(0)
    segy = create_segy(tmp / "s.sgy", rng.normal(size=(21, 19, 30)).astype(np.float32),
                       ilines=range(1, 22), xlines=range(1, 20), sample_interval_ms=4.0)
    store = ingest_segy(segy, tmp / "s.zarr", chunks=(8, 5, 16))
    model = TrainedModel.load(model_dir)
    data = layout_for_model(read_segy(segy), model).data
    return {"tmp": tmp, "model_dir": model_dir, "model": model, "segy": segy, "store": store,
            "data": data}


def _in_memory(survey: dict, **options):
    return predict(survey["model"], survey["data"], block=BLOCK, overlap=OVERLAP, device="cpu",
                   **options)


def test_streamed_prediction_equals_the_in_memory_one(survey, monkeypatch):
    fractions: list[float] = []
    store = streamed.predict_to_store(
        survey["model_dir"], open_segy_store(survey["store"]), survey["tmp"] / "p.zarr",
        block=BLOCK, overlap=OVERLAP, workers=2, progress=fractions.append)
    expected = _in_memory(survey)
    result = xr.open_zarr(store, consolidated=False)
    np.testing.assert_array_equal(result["classes"].values, expected.classes)
    np.testing.assert_allclose(result["probabilities"].values, expected.probabilities, atol=1e-6)
    np.testing.assert_allclose(result["entropy"].values, expected.entropy, atol=1e-6)
    assert result["classes"].dims == ("iline", "xline", "samples")
    assert result["probabilities"].chunks[1:] == open_segy_store(survey["store"]).chunks
    np.testing.assert_array_equal(result["iline"], np.arange(1, 22))
    assert result.attrs["source_path"] == str(survey["segy"].resolve())
    assert fractions[0] == 0.0 and fractions[-1] == 1.0 and fractions == sorted(fractions)
    assert not (survey["tmp"] / "p.zarr.partial").exists()

    # in slabs of one chunk row, edge blocks handed over (each block runs once): the same
    monkeypatch.setattr(streamed, "SLAB_INLINES", 1)
    runs = []
    logits = streamed.BlockPredictor.logits
    monkeypatch.setattr(streamed.BlockPredictor, "logits",
                        lambda self, *a: runs.append(1) or logits(self, *a))
    sliced = streamed.predict_to_store(
        survey["model_dir"], open_segy_store(survey["store"]), survey["tmp"] / "slabs.zarr",
        block=BLOCK, overlap=OVERLAP)
    assert len(streamed.slabs_of(open_segy_store(survey["store"]).chunks, 1)) == 3
    assert len(runs) == len(block_grid((21, 19, 30), DESIGN, BLOCK, OVERLAP).corners)
    for name in ("classes", "probabilities", "entropy"):
        np.testing.assert_array_equal(xr.open_zarr(sliced, consolidated=False)[name].values,
                                      result[name].values)

    # the stratigraphic order works per trace, and output chunks hold whole traces
    ordered = streamed.predict_to_store(
        survey["model_dir"], open_segy_store(survey["store"]), survey["tmp"] / "o.zarr",
        block=BLOCK, overlap=OVERLAP, stratigraphic_order=True)
    ordered = xr.open_zarr(ordered, consolidated=False)
    assert ordered["classes"].chunks[2] == (30,)
    np.testing.assert_array_equal(ordered["classes"].values,
                                  _in_memory(survey, stratigraphic_order=True).classes)


@pytest.mark.timeout(240)  # a cluster that cannot start fails the test instead of hanging
def test_two_worker_local_cluster_gives_the_same_classes(survey, monkeypatch):
    distributed = pytest.importorskip("distributed")
    # worker processes must import this tree's app package, whatever the installed one is
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]))
    monkeypatch.setattr(streamed, "SLAB_INLINES", 1)  # three slabs, edge blocks handed over
    # Spawned worker processes re-run the parent's __main__ from its file; after an AppTest
    # in this process that is a page script (results.py), which fails outside streamlit.
    # fhn predict's __main__ is the command itself; here the workers get a bare one.
    monkeypatch.setitem(sys.modules, "__main__", types.ModuleType("__main__"))
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None,
                                  memory_limit="1GiB") as cluster, \
            distributed.Client(cluster, set_as_default=False) as client:
        # not the default client: predict_to_store must work with its own alone
        store = streamed.predict_to_store(
            survey["model_dir"], open_segy_store(survey["store"]), survey["tmp"] / "d.zarr",
            block=BLOCK, overlap=OVERLAP, scheduler=cluster.scheduler_address)
        loads = client.run(lambda: streamed.MODEL_LOADS["count"])
    result = xr.open_zarr(store, consolidated=False)
    np.testing.assert_array_equal(result["classes"].values, _in_memory(survey).classes)
    assert len(loads) == 2 and max(loads.values()) == 1  # each worker read the model once
    assert sum(loads.values()) >= 1


def test_export_writes_segy_with_the_source_headers(survey):
    store = streamed.predict_to_store(
        survey["model_dir"], open_segy_store(survey["store"]), survey["tmp"] / "e.zarr",
        block=BLOCK, overlap=OVERLAP)
    expected = _in_memory(survey)
    out = streamed.export_store(store, survey["tmp"] / "classes.sgy", what="classes")
    back = read_segy(out)
    np.testing.assert_array_equal(back.values, expected.classes.astype(np.float32))
    with segyio.open(out, ignore_geometry=True) as f, \
            segyio.open(survey["segy"], ignore_geometry=True) as g:
        assert f.header[7] == g.header[7]
        assert f.text[0] == g.text[0]
    out = streamed.export_store(store, survey["tmp"] / "conf.sgy", what="probabilities")
    np.testing.assert_allclose(read_segy(out).values, expected.probabilities.max(0), atol=1e-6)
    out = streamed.export_store(store, survey["tmp"] / "salt.sgy", what="probabilities",
                                class_index=2)
    np.testing.assert_allclose(read_segy(out).values, expected.probabilities[2], atol=1e-6)


def test_refusals_name_the_fix(survey, tmp_path, monkeypatch):
    monkeypatch.setattr(streamed, "CONNECT_TIMEOUT", "1s")
    da = open_segy_store(survey["store"])
    with pytest.raises(DataError, match="already exists"):
        streamed.predict_to_store(survey["model_dir"], da, survey["store"])
    with pytest.raises(DataError, match="overlap"):
        streamed.predict_to_store(survey["model_dir"], da, tmp_path / "x.zarr", block=8,
                                  overlap=8)
    with pytest.raises(DataError, match="Dask scheduler"):
        streamed.predict_to_store(survey["model_dir"], da, tmp_path / "y.zarr",
                                  scheduler="tcp://127.0.0.1:9")
    assert not (tmp_path / "y.zarr").exists() and not (tmp_path / "y.zarr.partial").exists()


def test_cli_ingest_then_predict_a_store_to_segy(survey, tmp_path, capsys):
    from app.cli import main

    store = tmp_path / "survey.zarr"
    assert main(["ingest", str(survey["segy"]), str(store), "--chunks", "8", "5", "16"]) == 0
    xr.testing.assert_identical(open_segy_store(store).compute(), read_segy(survey["segy"]))
    assert main(["ingest", str(survey["segy"]), str(store)]) == 2
    assert "already exists" in capsys.readouterr().err

    out = tmp_path / "salt.sgy"
    assert main(["predict", str(survey["model_dir"]), str(store), "--out", str(out),
                 "--what", "probabilities", "--class", "salt", "--block", str(BLOCK),
                 "--overlap", str(OVERLAP), "--workers", "2"]) == 0
    expected = _in_memory(survey)
    np.testing.assert_allclose(read_segy(out).values, expected.probabilities[2], atol=1e-6)
    products = xr.open_zarr(tmp_path / "salt.zarr", consolidated=False)
    np.testing.assert_array_equal(products["classes"].values, expected.classes)

    capsys.readouterr()
    assert main(["predict", str(survey["model_dir"]), str(store), "--out", str(out),
                 "--augment"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fhn: error: --augment") and err.count("\n") == 1


def test_viewer_reads_only_the_slab_of_the_section(tmp_path):
    from app.views import band_values, clip_range, data_section, make_view

    rng = np.random.default_rng(3)
    volume = rng.normal(size=(12, 10, 8)).astype(np.float32)
    segy = create_segy(tmp_path / "v.sgy", volume, ilines=range(12), xlines=range(10),
                       sample_interval_ms=4.0)
    store = ingest_segy(segy, tmp_path / "v.zarr", chunks=(4, 10, 8))
    # spoil every chunk but the first inline slab: a read of any of them fails
    chunk_files = sorted(p for p in (store / "amplitude" / "c").rglob("*") if p.is_file())
    assert len(chunk_files) == 3
    for path in chunk_files[1:]:
        path.write_bytes(b"not a chunk")
    grid = open_segy_store(store)

    section = data_section(grid, make_view(grid, "inline", 2))
    np.testing.assert_array_equal(section, volume[2].T)  # samples down the screen
    with pytest.raises(Exception):  # noqa: B017  (whatever zarr raises for a bad chunk)
        data_section(grid, make_view(grid, "inline", 5))
    assert np.isfinite(clip_range(band_values(open_segy_store(
        ingest_segy(segy, tmp_path / "w.zarr", chunks=(4, 5, 8))), 0))).all()


def test_f3_ingest_train_predict_export_by_the_cli(shared_data, tmp_path, capsys):
    """The whole path on a real survey: ingest, train on the store, stream the prediction."""
    import tomli_w

    from app.cli import main

    f3 = shared_data / "segy" / "f3.sgy"
    store = tmp_path / "f3.zarr"
    assert main(["ingest", str(f3), str(store)]) == 0
    (tmp_path / "wells.csv").write_text(
        "well,iline,xline,top,base,class\nA,115,880,4,120,upper\nA,115,880,124,300,lower\n"
        "B,128,888,4,160,upper\nB,128,888,164,300,middle\n")
    config = {"output": "run", "data": {"path": str(store), "vertical_channel": True},
              "labels": {"path": "wells.csv", "radius": 1.0},
              "design": {"in_channels": 4, "spatial_dims": 3,
                         "segments": [[0, 1, 4], [1, 1, 4], [0, 1, 4]]},
              "training": {"recipe": "fixed",  # a fixed run: the settings as given
                           "iterations": 2, "checkpoint_every": 0, "device": "cpu",
                           "validation_fraction": 0.0}}
    (tmp_path / "run.toml").write_text(tomli_w.dumps(config))
    assert main(["train", str(tmp_path / "run.toml")]) == 0
    model_dir = tmp_path / "run" / "model"

    out = tmp_path / "units.sgy"
    assert main(["predict", str(model_dir), str(store), "--out", str(out), "--block", "16",
                 "--overlap", "4"]) == 0
    model = TrainedModel.load(model_dir)
    expected = predict(model, layout_for_model(read_segy(f3), model).data, block=16,
                       overlap=4, device="cpu")
    np.testing.assert_array_equal(read_segy(out).values, expected.classes.astype(np.float32))
