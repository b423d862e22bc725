"""The drift guard of the constant-memory backward and the leapfrog bound on h."""

import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch

from fhn_core.design import PRESETS, NetworkDesign, Segment
from fhn_core.network import HyperbolicNetwork
from fhn_core.paper import EXAMPLES
from fhn_core.stability import check_stability, drift_problem
from fhn_core.task import SegmentationTask
from fhn_core.training import TrainConfig, Trainer

# The case the issue measured: 130 layers, weights 3x the initial scale, float32.
DRIFTING = NetworkDesign(4, 3, [Segment(0, 130, 8)])
DEMO = NetworkDesign.from_dict(
    tomllib.loads((Path(__file__).parents[2] / "assets" / "demo_recipe.toml").read_text())[
        "design"])


def _scaled(design, factor, seed=0):
    torch.manual_seed(seed)
    net = HyperbolicNetwork(design)
    with torch.no_grad():
        for layer in net.layers:
            layer.weight.mul_(factor)
    return net


def _backward(net, shape):
    x = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    out = net(x)
    (out[:, :2] ** 2).mean().backward()
    return net.reconstruction


def test_guard_fires_on_the_drifting_case():
    net = _scaled(DRIFTING, 3.0)
    monitor = _backward(net, (1, 4, 12, 12, 12))
    assert monitor.flagged and monitor.error > 0.1
    message = drift_problem(net)
    assert "relative error" in message and "checkpoint" in message and "smaller h" in message
    assert "\n" not in message


def test_guard_is_silent_at_the_initial_scale_of_the_same_depth():
    monitor = _backward(_scaled(DRIFTING, 1.0), (1, 4, 12, 12, 12))
    assert monitor.error is not None and monitor.error < 1e-4 and not monitor.flagged


# The presets as the app builds them for small data (in_channels = max(channels, classes)):
# the paper's layer counts, levels, ranks and h; the full-width ones are in
# benchmarks/drift_guard.py, too slow for a unit test on a shared 2-core machine.
@pytest.mark.parametrize("preset, shape", [
    ("seismic-3d", (1, 2, 16, 16, 16)),
    ("multi-raster-map", (1, 4, 16, 16)),
    ("hyperspectral-timelapse", (1, 4, 8, 8, 8)),
])
def test_guard_and_bound_are_silent_on_the_shipped_presets(preset, shape):
    assert preset in EXAMPLES
    net = _scaled(PRESETS[preset](in_channels=shape[1]), 1.0)
    monitor = _backward(net, shape)
    assert not monitor.flagged and drift_problem(net) is None
    assert check_stability(net).warning() is None


def _layered_task(shape=(16, 16, 16)):
    rng = np.random.default_rng(0)
    truth = np.broadcast_to(np.digitize(np.arange(shape[2]), [5, 11]), shape)
    data = np.asarray([1.0, -1.0, 2.0])[truth] + 0.1 * rng.standard_normal(shape)
    labels = np.full(shape, -1, np.int16)
    labels[4:6, 4:6, :] = truth[4:6, 4:6, :]
    return SegmentationTask(data[None].astype(np.float32), labels, 3, fixed_axes=(2,))


def test_demo_design_trains_without_the_guard_or_bound_firing():
    task = _layered_task()
    design = NetworkDesign(5, 3, DEMO.segments, h=DEMO.h)
    trainer = Trainer(task, design, TrainConfig(iterations=6, learning_rate=0.005,
                                                validate_every=0, class_weights="none"))
    assert check_stability(trainer.model.net).warning() is None
    result = trainer.run()
    assert result.status == "finished", result.message
    assert trainer.model.net.reconstruction.error < 1e-3


def test_trainer_stops_with_one_line_naming_cause_and_fixes():
    task = _layered_task()
    design = NetworkDesign(4, 3, DRIFTING.segments)
    trainer = Trainer(task, design, TrainConfig(iterations=3, validate_every=0))
    with torch.no_grad():
        for layer in trainer.model.net.layers:
            layer.weight.mul_(3.0)
    result = trainer.run()
    assert result.status == "diverged" and result.iteration == 0
    assert "rebuilt the input" in result.message and "checkpoint" in result.message
    assert "learning rate" not in result.message  # the drift's own fixes, not the generic ones
    assert not trainer.optimiser.state  # no step was taken on the wrong gradients


def test_checkpoint_mode_has_no_guard_to_trip():
    net = _scaled(DRIFTING, 3.0)
    net.gradient_mode = "checkpoint"
    monitor = _backward(net, (1, 4, 8, 8, 8))
    assert monitor.error is None and drift_problem(net) is None


def test_stability_bound_fires_for_a_large_h():
    net = _scaled(NetworkDesign(4, 3, [Segment(0, 3, 8)], h=3.0), 1.0)
    check = check_stability(net)
    assert not check.stable and check.h_max < 3.0
    assert "h <=" in check.warning()
    # the bound is h <= 2 / ||K||: at h_max the ratio is exactly 1
    assert check.ratio * (check.h_max / check.h) ** 2 == pytest.approx(1.0)


def test_fourier_estimate_is_the_norm_of_the_periodic_convolution():
    import torch.nn.functional as F

    from fhn_core.stability import kernel_lambda_max

    layer = HyperbolicNetwork(NetworkDesign(3, 2, [Segment(0, 1, 2)])).layers[0]
    m = 8
    eye = torch.eye(3 * m * m).reshape(-1, 3, m, m)
    with torch.no_grad():
        dense = F.conv2d(F.pad(eye, (1, 1, 1, 1), mode="circular"), layer.weight)
    exact = torch.linalg.matrix_norm(dense.reshape(eye.shape[0], -1), ord=2) ** 2
    assert kernel_lambda_max(layer, frequencies=m) == pytest.approx(float(exact), rel=1e-4)
