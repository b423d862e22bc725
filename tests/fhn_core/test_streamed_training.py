"""Training on data read window by window (a chunked array) with labels listed cell by cell."""

import dask.array as dsa
import numpy as np
import pytest
import torch

from fhn_core import chunked
from fhn_core.blocks import block_grid, logits_at
from fhn_core.design import NetworkDesign, Segment
from fhn_core.errors import FhnError
from fhn_core.haar import pad_to_multiple
from fhn_core.network import HyperbolicNetwork
from fhn_core.prediction import predict_logits
from fhn_core.sparse_labels import SparseLabels
from fhn_core.task import Normalisation, SegmentationTask, StreamedInput, to_input
from fhn_core.training import TrainConfig, Trainer, _class_order, split_validation

DESIGN = NetworkDesign(4, 3, [Segment(0, 2, 4), Segment(1, 2, 6), Segment(0, 2, 4)])


class CountingArray:
    """A chunked array-like over numpy that records the cells of every read."""

    def __init__(self, values: np.ndarray, chunks: tuple[int, ...]) -> None:
        self.values, self.chunks = values, chunks
        self.shape, self.dtype = values.shape, values.dtype
        self.reads: list[int] = []

    def __getitem__(self, index):
        out = self.values[index]
        self.reads.append(out.size)
        return out


def _layered(shape=(22, 18, 20), seed=0):
    """Three dipping layers with noise and a NaN corner; labels along three wells."""
    rng = np.random.default_rng(seed)
    depth = np.arange(shape[2])[None, None, :] + 0.3 * np.arange(shape[0])[:, None, None]
    truth = np.broadcast_to(np.digitize(depth, [8, 15]), shape)
    data = (np.asarray([1.0, -1.0, 2.0])[truth] + 0.1 * rng.standard_normal(shape))[None]
    data = data.astype(np.float32)
    data[0, -2:, -2:, :3] = np.nan  # nodata under one well's top
    labels = np.full(shape, -1, np.int64)
    for i, j in ((3, 4), (12, 9), (20, 16)):
        labels[i - 1:i + 1, j - 1:j + 1, :] = truth[i - 1:i + 1, j - 1:j + 1, :]
    return data, labels


def test_sparse_labels_give_back_the_dense_grid_windows_and_traces():
    _, labels = _layered()
    sparse = SparseLabels.from_dense(labels)
    assert np.array_equal(sparse.dense(), labels)
    assert np.array_equal(sparse.cells, np.argwhere(labels >= 0))  # np.nonzero's order
    window = (slice(10, 26), slice(4, 12), slice(0, 24))  # reaches past the end
    padded = np.pad(labels, [(0, 4), (0, 0), (0, 4)], constant_values=-1)
    assert np.array_equal(sparse.on_grid(padded.shape).window(window), padded[window])
    traces = sparse.labelled_traces(2)
    assert traces.shape == (12, 20) and (traces >= 0).all()
    shuffled = np.random.default_rng(1).permutation(len(sparse))
    again = SparseLabels(labels.shape, sparse.cells[shuffled], sparse.classes[shuffled])
    assert np.array_equal(again.cells, sparse.cells)  # sorted back into C order
    painted = SparseLabels((4, 4), [[1, 1], [0, 2], [1, 1]], [0, 1, 2])
    assert painted.dense()[1, 1] == 2 and len(painted) == 2  # the last one painted wins
    with pytest.raises(FhnError, match=r"\(4, 0\) lies outside the grid \(4, 4\)"):
        SparseLabels((4, 4), [[4, 0]], [0])


def test_sparse_split_holds_back_the_cells_the_dense_split_does():
    _, labels = _layered()
    train, val = split_validation(labels, 0.3, seed=5)
    s_train, s_val = split_validation(SparseLabels.from_dense(labels), 0.3, seed=5)
    assert np.array_equal(s_train.dense(), train) and np.array_equal(s_val.dense(), val)


def test_statistics_of_chunks_equal_those_of_the_whole_array():
    data, _ = _layered()
    data = np.concatenate([data, 3 * data + 1])
    lazy = CountingArray(data, (2, 8, 8, 8))
    whole, blocks = Normalisation.of(data), Normalisation.of(lazy)
    np.testing.assert_allclose(blocks.mean, whole.mean, rtol=1e-12)
    np.testing.assert_allclose(blocks.std, whole.std, rtol=1e-12)
    assert max(lazy.reads) <= chunked.BLOCK_CELLS and sum(lazy.reads) == data.size
    windows = list(chunked.blocks((100, 70, 33), (16, 16, 16), cells=16 * 70 * 33))
    assert windows[0] == (slice(0, 16), slice(0, 70), slice(0, 33)) and len(windows) == 7


def test_streamed_input_windows_equal_the_padded_tensor():
    data, _ = _layered()
    norm = Normalisation.of(data)
    whole, _ = pad_to_multiple(to_input(data, norm, DESIGN), DESIGN.max_level)
    streamed = StreamedInput(dsa.from_array(data, chunks=(1, 8, 8, 8)), norm, DESIGN)
    assert streamed.shape == whole.shape
    for window in [(slice(0, 8), slice(2, 18), slice(4, 20)),
                   (slice(16, 24), slice(10, 18), slice(12, 20)),  # the reflected end
                   (slice(None), slice(None), slice(None))]:
        index = (slice(None), slice(None), *window)
        assert torch.equal(streamed[index], whole[index])


def test_training_from_a_chunked_array_and_sparse_labels_equals_training_in_memory():
    data, labels = _layered()
    lazy = CountingArray(data, (1, 8, 8, 8))
    config = TrainConfig(iterations=4, patch=(8, 8, None), validate_every=2,
                         validation_fraction=0.25, learning_rate=5e-3, seed=3)
    dense = SegmentationTask(data, labels, 3, fixed_axes=(2,), vertical_axis=2)
    sparse = SegmentationTask(lazy, SparseLabels.from_dense(labels), 3, fixed_axes=(2,),
                              vertical_axis=2)
    assert sparse.streamed and sparse.n_labelled == dense.n_labelled
    assert _class_order(sparse) == _class_order(dense) == [0, 1, 2]
    a = Trainer(dense, DESIGN, config).run()
    lazy.reads.clear()
    trainer = Trainer(sparse, DESIGN, config)
    statistics = len(lazy.reads)
    b = trainer.run()
    losses = [[h["loss"] for h in r.history] for r in (a, b)]
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-5)
    for p, q in zip(a.model.net.parameters(), b.model.net.parameters(), strict=True):
        torch.testing.assert_close(q, p, rtol=1e-4, atol=1e-6)
    # validation on the held-back cells alone scores what the whole-volume pass scores
    assert b.validation.as_dict() == a.validation.as_dict()
    # reads: the drawn sub-volumes, and the whole (small) volume at the two validations,
    # where a training window grown by the receptive radius covers it all
    drawn, whole = 8 * 8 * 20, data.size
    assert set(lazy.reads[statistics:]) == {drawn, whole}
    assert lazy.reads[statistics:].count(whole) == 2


def test_logits_at_cells_equal_the_blockwise_prediction_there():
    data, labels = _layered(shape=(30, 26, 20))
    torch.manual_seed(0)
    net = HyperbolicNetwork(DESIGN)
    norm = Normalisation.of(data)
    x = to_input(data, norm, DESIGN)
    whole = predict_logits(net, x, 3, block=12, overlap=4).numpy()
    cells = np.argwhere(labels >= 0)
    lazy = CountingArray(data, (1, 8, 8, 8))
    at = logits_at(net, StreamedInput(lazy, norm, DESIGN), cells, 3, block=(12, 12, 12),
                   overlap=4)
    np.testing.assert_allclose(at, whole[(slice(None), *cells.T)], rtol=1e-5, atol=1e-5)
    windows = block_grid((30, 26, 20), DESIGN, 12, 4).windows()
    holding = [w for w in windows if SparseLabels.from_dense(labels).inside(w).any()]
    assert len(lazy.reads) == len(holding) < len(windows)  # only blocks holding a well run


def test_a_chunked_survey_refuses_a_coarse_output_design():
    data, labels = _layered()
    coarse = NetworkDesign(4, 3, [Segment(0, 1, 4), Segment(1, 1, 4)])  # ends a level down
    task = SegmentationTask(dsa.from_array(data, chunks=(1, 8, 8, 8)),
                            SparseLabels.from_dense(labels), 3, fixed_axes=(2,))
    with pytest.raises(FhnError, match="output is on the data grid"):
        Trainer(task, coarse, TrainConfig(iterations=1, patch=(8, 8, None)))


def test_the_time_estimate_of_a_chunked_survey_reads_one_window_not_the_survey():
    data, labels = _layered()
    lazy = CountingArray(data, (1, 8, 8, 8))
    task = SegmentationTask(lazy, SparseLabels.from_dense(labels), 3, fixed_axes=(2,),
                            vertical_axis=2)
    trainer = Trainer(task, DESIGN, TrainConfig(iterations=1, patch=(8, 8, None)))
    lazy.reads.clear()
    seconds = trainer.measure_pass_seconds()
    assert lazy.reads == [8 * 8 * 20]  # one sub-volume-sized window, nothing more
    assert seconds > 0
