"""Two-date layouts: change channels, and labels on every band slice averaged over bands."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

from app.layout import layout_for_model, to_channels_first
from app.training_task import build_task
from fhn_core.design import NetworkDesign, Segment
from fhn_core.prediction import predict, predict_logits
from fhn_core.task import to_input
from fhn_core.training import TrainConfig, Trainer
from io_adapters.errors import DataError
from io_adapters.labels import LabelSet


def _dates(seed=0, shape=(8, 10), bands=3):
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(*shape, bands, 2)).astype(np.float32)
    values[..., 1] *= np.array([1.0, 10.0, 100.0], np.float32)[:bands]
    return xr.DataArray(values, dims=("y", "x", "band", "time"),
                        coords={"band": [f"b{i}" for i in range(bands)],
                                "time": ["2000", "2003"]})


def _labels(shape=(8, 10)):
    labels = LabelSet.empty(shape, ["changed", "unchanged"], ("y", "x"))
    labels.labels[1, 2], labels.labels[5, 7], labels.labels[6, 1] = 0, 1, 1
    return labels


def test_2d_change_channels_are_the_differences_and_their_magnitude():
    da = _dates()
    plain = to_channels_first(da)
    layout = to_channels_first(da, change_channels=True)
    t1, t2 = da.values[..., 0].transpose(2, 0, 1), da.values[..., 1].transpose(2, 0, 1)
    assert layout.data.shape == (3 + 3 + 3 + 1, 8, 10)
    np.testing.assert_array_equal(layout.data[:6], plain.data)
    np.testing.assert_allclose(layout.data[6:9], t2 - t1, rtol=1e-6)
    np.testing.assert_allclose(layout.data[9], np.sqrt(((t2 - t1) ** 2).sum(0)), rtol=1e-5)
    assert layout.channel_names[6:] == ["t2 - t1 band b0", "t2 - t1 band b1",
                                        "t2 - t1 band b2", "||t2 - t1||"]


def test_3d_change_channels_standardise_each_band_over_both_dates():
    layout = to_channels_first(_dates(), spatial_dims=3, change_channels=True)
    assert layout.data.shape == (4, 3, 8, 10) and layout.slice_axis == 0
    both = layout.data[:2]
    np.testing.assert_allclose(both.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(both.std(axis=(0, 2, 3)), 1, rtol=1e-4)
    np.testing.assert_allclose(layout.data[2], layout.data[1] - layout.data[0], atol=1e-6)
    magnitude = np.sqrt((layout.data[2] ** 2).sum(0))
    for band in range(3):
        np.testing.assert_allclose(layout.data[3, band], magnitude, rtol=1e-5)


def test_change_channels_refuse_other_data():
    raster = xr.DataArray(np.zeros((3, 4, 4), np.float32), dims=("band", "y", "x"))
    with pytest.raises(DataError, match="change channels .* are for two dates"):
        to_channels_first(raster, change_channels=True)
    with pytest.raises(DataError, match="every band slice need a 3D design"):
        to_channels_first(_dates(), every_slice=True)


def test_every_slice_labels_each_band_and_prediction_averages_the_bands():
    da = _dates()
    layout = to_channels_first(da, spatial_dims=3, change_channels=True, every_slice=True)
    assert layout.slice_axis is None and layout.averaged_axis == 0
    assert layout.grid_shape == (8, 10)
    labelset = _labels()
    task = build_task(da, labelset, layout=layout)
    assert task.labels.shape == (3, 8, 10)
    for band in range(3):
        np.testing.assert_array_equal(task.labels[band], labelset.labels)
    design = NetworkDesign(4, 3, [Segment(0, 1, 4), Segment(1, 1, 4), Segment(0, 1, 4)])
    config = TrainConfig(iterations=2, validate_every=0, validation_fraction=0.0)
    model = Trainer(task, design, config).run().model
    assert model.info.averaged_axis == 0
    again = layout_for_model(da, model)   # prediction rebuilds the same layout
    np.testing.assert_array_equal(again.data, layout.data)
    assert again.averaged_axis == 0
    x = to_input(layout.data, model.info.normalisation, model.design)
    per_slice = predict_logits(model.net, x, 2, fixed_axes=(0,))
    assert per_slice.shape == (2, 3, 8, 10)
    expected = torch.softmax(per_slice.mean(1), 0).numpy()
    # the training mix: the model's default for two dates shifts to the scene's (priors)
    prediction = predict(model, layout.data, class_priors="training", device="cpu")
    assert prediction.classes.shape == (8, 10)
    np.testing.assert_allclose(prediction.probabilities, expected, rtol=1e-5, atol=1e-6)
