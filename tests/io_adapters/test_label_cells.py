"""io_adapters.labels.LabelCells as an editable label model: the same labels as a LabelSet."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from io_adapters.errors import DataError
from io_adapters.labels import (
    LabelCells,
    LabelSet,
    Provenance,
    load_label_cells,
    save_label_cells,
)

SHAPE = (6, 5, 7)


def _random_edits(seed: int, n: int = 12):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        cells = np.stack([rng.integers(0, s, 9) for s in SHAPE], axis=1)
        yield cells, int(rng.integers(-1, 3)), int(rng.integers(1, 5))


def test_edits_leave_the_labels_a_labelset_gets() -> None:
    dense = LabelSet.empty(SHAPE, ["a", "b", "c"], ("iline", "xline", "samples"))
    listed = LabelCells.empty(SHAPE, ("iline", "xline", "samples"), ["a", "b", "c"])
    for cells, class_id, provenance in _random_edits(0):
        index = tuple(cells.T)
        before = dense.labels.copy()
        dense.labels[index] = class_id
        dense.source[index] = provenance if class_id >= 0 else Provenance.NONE
        changed = listed.set_cells(cells, class_id, provenance)
        assert changed == int(np.count_nonzero(before != dense.labels))
    assert listed.grid[:, :, :].tolist() == dense.labels.tolist()
    assert listed.counts() == dense.counts()
    # a section and a cell, built from the list alone
    np.testing.assert_array_equal(listed.grid[:, 3, :], dense.labels[:, 3, :])
    np.testing.assert_array_equal(listed.grid[2], dense.labels[2])
    np.testing.assert_array_equal(listed.grid[1:4, :, 5], dense.labels[1:4, :, 5])
    assert listed.grid[1, 2, 3] == dense.labels[1, 2, 3]
    flat = np.ravel_multi_index(tuple(listed.cells.T), SHAPE)
    assert (np.diff(flat) > 0).all()  # each cell once, in C order
    labelled = dense.labels[tuple(listed.cells.T)]
    np.testing.assert_array_equal(listed.class_ids, labelled)
    np.testing.assert_array_equal(listed.source, dense.source[tuple(listed.cells.T)])

    # deleting a class: its cells unlabelled, higher ids down by one, as a LabelSet does
    assert listed.delete_class(1) == dense.delete_class(1)
    assert listed.grid[:, :, :].tolist() == dense.labels.tolist()
    assert listed.class_names == dense.class_names == ["a", "c"]
    assert LabelCells.of(dense).grid[:, :, :].tolist() == dense.labels.tolist()


def test_the_file_round_trips_and_refuses_what_is_not_one(tmp_path: Path) -> None:
    listed = LabelCells.empty(SHAPE, ("iline", "xline", "samples"), ["a", "b"])
    for cells, class_id, provenance in _random_edits(1, 6):
        listed.set_cells(cells, min(class_id, 1), provenance)
    listed.recolour_class(1, "#123456")
    path = save_label_cells(tmp_path / "cells.npz", listed)
    back = load_label_cells(path)
    assert (back.shape, back.dims, back.classes) == (listed.shape, listed.dims, listed.classes)
    np.testing.assert_array_equal(back.cells, listed.cells)
    np.testing.assert_array_equal(back.class_ids, listed.class_ids)
    np.testing.assert_array_equal(back.source, listed.source)
    from io_adapters.labels import save_labels

    dense = save_labels(tmp_path / "dense.npz", LabelSet.empty(SHAPE, ["a"]))
    with pytest.raises(DataError, match="dense.npz is not a readable fhn label file"):
        load_label_cells(dense)
    with pytest.raises(DataError, match="not found"):
        load_label_cells(tmp_path / "none.npz")
