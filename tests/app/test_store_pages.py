"""The app on an ingested survey store: it opens, and reads only the chunks it shows."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from io_adapters.project import Project
from io_adapters.segy import create_segy
from io_adapters.zarr_store import ingest_segy, open_segy_store, sampled_chunks

DATA_PAGE = str(Path(__file__).resolve().parents[2] / "app" / "screens" / "data.py")
SHAPE, CHUNKS = (24, 20, 16), (8, 8, 8)


@pytest.fixture()
def store_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    segy = create_segy(tmp_path / "s.sgy", rng.normal(size=SHAPE).astype(np.float32),
                       ilines=range(1, 25), xlines=range(1, 21), sample_interval_ms=4.0)
    store = ingest_segy(segy, tmp_path / "survey.zarr", chunks=CHUNKS)
    project = Project.create(tmp_path / "p", "store")
    project.add_source(str(store), "segy")
    monkeypatch.setenv("FHN_PROJECT", str(project.folder))
    return project.folder, store


def test_a_project_opens_a_survey_store_lazily(store_project) -> None:
    folder, store = store_project
    grid = Project.open(folder).load_data()
    assert hasattr(grid.data, "dask") and grid.dims == ("iline", "xline", "samples")
    np.testing.assert_array_equal(grid.values, open_segy_store(store).values)


def test_the_data_page_shows_a_store_reading_only_the_chunks_it_shows(store_project) -> None:
    _, store = store_project
    numblocks = tuple(-(-n // c) for n, c in zip(SHAPE, CHUNKS, strict=True))
    shown = {index for index in itertools.product(*map(range, numblocks))
             if index[0] == (SHAPE[0] // 2) // CHUNKS[0]}  # the middle inline's row
    needed = shown | set(sampled_chunks(numblocks))  # and the summary's sample
    broken = 0
    for index in itertools.product(*map(range, numblocks)):
        if index not in needed:  # any read of these fails
            (store / "amplitude" / "c").joinpath(*map(str, index)).write_bytes(b"broken")
            broken += 1
    assert broken > 0
    at = AppTest.from_file(DATA_PAGE, default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    table = at.table[0].value
    assert "of 16 chunks" in str(table.loc["Value range", "value"])
    assert "read chunk by chunk" in str(table.loc["Memory", "value"])


def test_the_viewer_reads_crosslines_and_time_slices_from_the_fast_copies(tmp_path) -> None:
    from app import views
    from io_adapters.segy import read_segy
    from io_adapters.zarr_store import add_fast_slices

    rng = np.random.default_rng(1)
    segy = create_segy(tmp_path / "s.sgy", rng.normal(size=SHAPE).astype(np.float32),
                       ilines=range(1, 25), xlines=range(1, 21), sample_interval_ms=4.0)
    store = add_fast_slices(ingest_segy(segy, tmp_path / "survey.zarr", chunks=CHUNKS))
    reference = read_segy(segy)
    numblocks = tuple(-(-n // c) for n, c in zip(SHAPE, CHUNKS, strict=True))
    for index in set(itertools.product(*map(range, numblocks))) - set(sampled_chunks(numblocks)):
        (store / "amplitude" / "c").joinpath(*map(str, index)).write_bytes(b"broken")
    grid = open_segy_store(store)  # as the project loader opens it
    settings = views.default_settings(grid)
    clip = views.clip_range(views.band_values(grid, 0), settings.percentile,
                            symmetric=settings.symmetric)
    for kind, index in (("crossline", 7), ("timeslice", 11)):
        view = views.make_view(grid, kind, index)
        np.testing.assert_array_equal(views.data_section(grid, view),
                                      views.data_section(reference, view))
        image, _ = views.render_section(grid, view, settings, [clip])
        assert image.ndim == 3
    with pytest.raises(ValueError, match="dtype"):  # an inline reads the (broken) 64^3 chunks
        views.data_section(grid, views.make_view(grid, "inline", 5))
