"""Outputs on a coarser grid (section 3.4) and the Haar route (section 3.2), end to end."""

import numpy as np
import pytest
import torch

from fhn_core.coarse import (
    factor_between,
    haar_route,
    labels_on_output_grid,
    output_slice_index,
    to_data_grid,
)
from fhn_core.design import PRESETS, NetworkDesign, Segment
from fhn_core.errors import FhnError
from fhn_core.prediction import predict
from fhn_core.task import SegmentationTask
from fhn_core.training import TrainConfig, Trainer

COARSE = NetworkDesign(4, 3, [Segment(0, 1, 4), Segment(1, 2, 8)])  # ends one level down


def _layered(shape=(16, 16, 16)):
    rng = np.random.default_rng(0)
    truth = np.broadcast_to(np.digitize(np.arange(shape[2]), [6, 12]), shape)
    data = np.asarray([1.0, -1.0, 2.0])[truth] + 0.1 * rng.standard_normal(shape)
    labels = np.full(shape, -1, np.int16)
    labels[4:6, 4:6, :] = truth[4:6, 4:6, :]
    labels[10:12, 10:12, :] = truth[10:12, 10:12, :]
    return SegmentationTask(data[None].astype(np.float32), labels, 3, fixed_axes=(2,)), truth


def test_labels_are_coarsened_by_majority_of_labelled_cells():
    labels = torch.full((1, 4, 4), -1)
    labels[0, 0, 0:2] = torch.tensor([1, 1])
    labels[0, 1, 0] = 0                     # block (0, 0): 1, 1, 0 -> 1
    labels[0, 2:4, 2:4] = 2                 # block (1, 1): all 2
    coarse = labels_on_output_grid(labels, NetworkDesign(3, 2, [Segment(1, 1, 2)]), 3)
    assert coarse.tolist() == [[[1, -1], [-1, 2]]]
    assert output_slice_index(5, COARSE) == 2 and output_slice_index(None, COARSE) is None


def test_nearest_refinement_fills_blocks_and_crops():
    coarse = np.arange(8).reshape(2, 4)
    fine = to_data_grid(coarse, 2, (3, 7))
    assert fine.shape == (3, 7) and fine[0, 0] == fine[1, 1] == 0 and fine[2, 6] == 7
    assert factor_between((3, 7), (2, 4)) == 2 and factor_between((5, 5), (5, 5)) == 1


def test_coarse_design_trains_and_predicts_back_on_the_data_grid():
    task, truth = _layered()
    trainer = Trainer(task, COARSE, TrainConfig(iterations=30, learning_rate=0.02,
                                                validate_every=0, seed=1))
    result = trainer.run()
    assert result.status == "finished"
    prediction = predict(result.model, task.data, device="cpu")
    assert prediction.classes.shape == (16, 16, 16)        # the data grid
    assert prediction.probabilities.shape == (3, 8, 8, 8)  # the output grid, kept as is
    assert prediction.output_factor == 2
    coarse_ids = prediction.probabilities.argmax(0)
    np.testing.assert_array_equal(prediction.classes, to_data_grid(coarse_ids, 2, (16, 16, 16)))
    assert prediction.entropy.shape == (16, 16, 16)
    # it learned the layers (scored against the truth coarsened the same way)
    coarse_truth = labels_on_output_grid(torch.from_numpy(truth.copy())[None], COARSE, 3)[0]
    assert (coarse_ids == coarse_truth.numpy()).mean() > 0.8


def test_coarse_output_with_an_embedding_slice():
    rng = np.random.default_rng(1)
    data = rng.standard_normal((2, 8, 16, 16)).astype(np.float32)  # (dates, band, y, x)
    labels = np.full((16, 16), -1, np.int16)
    labels[:, :8], labels[:, 8:] = 0, 1
    data[0, :, :, 8:] += 2.0
    task = SegmentationTask(data, labels, 2, slice_axis=0, slice_index=5, fixed_axes=(0,))
    design = PRESETS["hyperspectral-timelapse"](in_channels=2)
    trainer = Trainer(task, NetworkDesign(2, 3, [Segment(0, 1, 4), Segment(1, 1, 4)]),
                      TrainConfig(iterations=2, validation_fraction=0.3, validate_every=2))
    result = trainer.run()
    assert result.validation is not None  # scored on the data grid
    prediction = predict(result.model, data, device="cpu")
    assert prediction.classes.shape == (16, 16) and prediction.probabilities.shape == (2, 8, 8)
    assert design.out_level == 1


def test_haar_route_gives_enough_output_channels_and_trains():
    base = NetworkDesign(1, 2, [Segment(0, 1, 4), Segment(1, 1, 4), Segment(0, 1, 4)])
    route = haar_route(base, data_channels=1, n_classes=5)  # 1 channel: 4 at level 1 < 5
    assert route.in_channels == 1 and route.out_level == 2 and route.out_channels == 16
    assert [s.level for s in route.segments] == [1, 2, 3, 2]
    assert haar_route(base, 3, 5).out_level == 1
    rng = np.random.default_rng(0)
    data = rng.standard_normal((1, 32, 32)).astype(np.float32)
    labels = np.full((32, 32), -1, np.int16)
    labels[::5, ::3] = rng.integers(0, 5, labels[::5, ::3].shape)
    task = SegmentationTask(data, labels, 5)
    with pytest.raises(FhnError, match="Haar route"):
        Trainer(task, base, TrainConfig(iterations=1))
    result = Trainer(task, route, TrainConfig(iterations=2, validate_every=0)).run()
    assert predict(result.model, data, device="cpu").classes.shape == (32, 32)


def test_flips_with_a_coarse_output_on_sizes_that_are_not_whole_coarse_cells():
    """15 cells along a flipped axis: padded to whole coarse cells before the flips, the
    flipped coarse cells line up with the unflipped ones and augmentation works."""
    task, _ = _layered((16, 15, 16))
    result = Trainer(task, COARSE, TrainConfig(iterations=1, validate_every=0)).run()
    plain = predict(result.model, task.data, device="cpu")
    flipped = predict(result.model, task.data, augment=True, device="cpu")
    assert flipped.classes.shape == (16, 15, 16) and flipped.probabilities.shape == (3, 8, 8, 8)
    np.testing.assert_allclose(flipped.probabilities.sum(0), 1.0, atol=1e-5)
    assert not np.allclose(flipped.probabilities, plain.probabilities)  # flips were averaged
