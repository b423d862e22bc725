"""Training from an ingested survey store: wells as listed cells, windows read as drawn."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from app.layout import to_channels_first
from app.training_task import build_task
from fhn_core.checkpoint import TrainedModel
from fhn_core.sparse_labels import SparseLabels
from io_adapters.boreholes import import_borehole_cells, import_boreholes
from io_adapters.errors import DataError
from io_adapters.segy import create_segy, read_segy
from io_adapters.zarr_store import ingest_segy, open_segy_store

WELLS = (  # B's disk overlaps A's with another class: the later row wins, as when painted
    "well,iline,xline,top,base,class\n"
    "A,104,205,0,36,upper\nA,104,205,40,76,lower\n"
    "B,106,206,0,20,lower\nB,106,206,24,76,upper\n"
    "C,117,215,0,44,upper\nC,117,215,48,76,lower\n"
)


@pytest.fixture(scope="module")
def survey(tmp_path_factory) -> dict:
    """A layered SEG-Y of 20 x 18 x 20 samples, its store and a wells CSV."""
    tmp = tmp_path_factory.mktemp("store-training")
    rng = np.random.default_rng(0)
    depth = np.arange(20)[None, None, :] + 0.2 * np.arange(20)[:, None, None]
    volume = np.where(depth < 10, 1.0, -1.0) + 0.2 * rng.standard_normal((20, 18, 20))
    segy = create_segy(tmp / "s.sgy", volume.astype(np.float32), ilines=range(100, 120),
                       xlines=range(200, 218), sample_interval_ms=4.0)
    store = ingest_segy(segy, tmp / "s.zarr", chunks=(8, 8, 8))
    wells = tmp / "wells.csv"
    wells.write_text(WELLS)
    return {"tmp": tmp, "segy": segy, "store": store, "wells": wells}


def test_wells_listed_on_a_store_equal_the_labels_painted_in_memory(survey):
    painted, _ = import_boreholes(survey["wells"], read_segy(survey["segy"]), 2.0)
    listed, wells = import_borehole_cells(survey["wells"], open_segy_store(survey["store"]), 2.0)
    assert [w.name for w in wells] == ["A", "B", "C"]
    assert listed.class_names == painted.class_names and listed.dims == painted.dims
    sparse = SparseLabels(listed.shape, listed.cells, listed.class_ids)
    assert len(listed.cells) > len(sparse)  # overlapping disks listed twice ...
    np.testing.assert_array_equal(sparse.dense(), painted.labels)  # ... painted once

    da = open_segy_store(survey["store"])
    task = build_task(da, listed, layout=to_channels_first(da))
    assert task.streamed and isinstance(task.labels, SparseLabels)
    assert task.n_labelled == int((painted.labels >= 0).sum())
    with pytest.raises(DataError, match="envelope and semblance"):
        to_channels_first(da, envelope_channel=True)


def _run(survey: dict, data: Path, name: str, capsys) -> tuple[TrainedModel, str]:
    import tomli_w

    from app.cli import main

    config = {"output": name, "data": {"path": str(data), "vertical_channel": True},
              "labels": {"path": str(survey["wells"]), "radius": 2.0},
              "design": {"in_channels": 4, "spatial_dims": 3,
                         "segments": [[0, 1, 4], [1, 2, 6], [0, 1, 4]]},
              "training": {"recipe": "fixed", "iterations": 3, "patch": [8, 8, 0],
                           "validate_every": 3,
                           "validation_fraction": 0.25, "checkpoint_every": 0,
                           "device": "cpu", "seed": 4, "learning_rate": 0.01}}
    toml = survey["tmp"] / f"{name}.toml"
    toml.write_text(tomli_w.dumps(config))
    capsys.readouterr()
    assert main(["train", str(toml)]) == 0
    printed = capsys.readouterr().out
    return TrainedModel.load(survey["tmp"] / name / "model"), printed


def test_fhn_train_on_the_store_equals_training_on_the_segy_in_memory(survey, capsys):
    in_memory, printed_memory = _run(survey, survey["segy"], "memory", capsys)
    streamed, printed_streamed = _run(survey, survey["store"], "store", capsys)
    for a, b in zip(in_memory.net.parameters(), streamed.net.parameters(), strict=True):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(streamed.info.normalisation.mean,
                               in_memory.info.normalisation.mean, rtol=1e-9)
    assert streamed.info.class_order == in_memory.info.class_order  # [] here: B is upside down

    def validation(text: str) -> str:
        return text[text.index("validation (held-back labels)"):text.index("checkpoint:")]

    assert validation(printed_streamed) == validation(printed_memory)
