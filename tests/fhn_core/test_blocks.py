"""fhn_core.blocks: block-by-block prediction equals the in-memory blocked prediction."""

import numpy as np
import pytest
import torch

from fhn_core.blocks import (
    blend,
    block_grid,
    block_logits,
    receptive_radius,
    window_indices,
)
from fhn_core.checkpoint import ModelInfo, TrainedModel
from fhn_core.design import NetworkDesign, Segment
from fhn_core.haar import pad_to_multiple
from fhn_core.network import HyperbolicNetwork
from fhn_core.prediction import predict_logits
from fhn_core.task import Normalisation, to_input

DESIGN = NetworkDesign(3, 3, [Segment(0, 1, 4), Segment(1, 2, 6), Segment(0, 1, 4)])


def _model(design: NetworkDesign = DESIGN, seed: int = 0) -> TrainedModel:
    torch.manual_seed(seed)
    net = HyperbolicNetwork(design)
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0.0, 0.5)
    info = ModelInfo(n_classes=2, data_channels=1, normalisation=Normalisation((0.5,), (2.0,)))
    return TrainedModel(net, info)


def test_receptive_radius_bounds_what_one_cell_changes():
    model = _model()
    radius = receptive_radius(DESIGN)
    # two layers of radius 2 at level 0, two at level 1 (4 cells each), Haar groups of 2
    assert radius == 2 * 2 + 2 * 4 + 1
    x = torch.randn(1, 3, 32, 32, 32)
    bumped = x.clone()
    bumped[0, :, 16, 16, 16] += 10.0
    with torch.no_grad():
        change = (model.net(bumped) - model.net(x)).abs().amax(dim=(0, 1))
    moved = torch.nonzero(change > 0)
    assert moved.numel()  # the bump does reach the output
    assert int((moved - 16).abs().max()) <= radius


@pytest.mark.parametrize("sizes,block,overlap", [((21, 19, 30), 12, 4), ((9, 16, 7), 8, 3)])
def test_blocks_blended_per_region_equal_the_in_memory_blocks(sizes, block, overlap):
    model = _model()
    data = np.random.default_rng(1).normal(size=(1, *sizes)).astype(np.float32)
    expected = predict_logits(model.net, to_input(data, model.info.normalisation, DESIGN), 2,
                              block=block, overlap=overlap).numpy()

    grid = block_grid(sizes, DESIGN, block, overlap)
    covering = []
    for window in grid.windows():
        take = window_indices(grid, window)
        covering.append((grid.grid_window(window),
                         block_logits(model, data[np.ix_([0], *take)])))
    # any cut of the grid into regions gives the same numbers, bit for bit
    cut = [s // 2 for s in sizes]
    for corner in np.ndindex(2, 2, 2):
        region = tuple(slice(0, c) if half == 0 else slice(c, s)
                       for half, c, s in zip(corner, cut, sizes, strict=True))
        got = blend(region, covering, 2)
        np.testing.assert_array_equal(got, expected[(slice(None), *region)])


@pytest.mark.parametrize("sizes,reflect", [((2, 8, 6), False), ((6, 9, 11), True)])
def test_window_indices_pad_like_pad_to_multiple(sizes, reflect):
    """Reflection, or edge replication where an axis is shorter than its padding."""
    design = NetworkDesign(1, 3, [Segment(0, 1, 1), Segment(1, 1, 1), Segment(2, 1, 1)])
    grid = block_grid(sizes, design, 64, 0)
    cube = torch.arange(float(np.prod(sizes))).reshape(1, 1, *sizes)
    padded, _ = pad_to_multiple(cube, design.max_level)
    assert grid.padded == tuple(padded.shape[2:]) and len(grid.windows()) == 1
    assert grid.reflect is reflect
    take = window_indices(grid, grid.windows()[0])
    np.testing.assert_array_equal(cube[0, 0].numpy()[np.ix_(*take)], padded[0, 0].numpy())
