"""Fig. 3's three properties: energy growth, stability over draws, invertibility error."""

import pytest
import torch

from fhn_core.design import NetworkDesign, Segment
from fhn_core.diagnostics import (
    PAPER_PERTURBATION,
    Diagnostics,
    central_window,
    diagnostics,
    sweep_h,
)
from fhn_core.errors import FhnError
from fhn_core.network import HyperbolicNetwork

DESIGN = NetworkDesign(4, 3, [Segment(0, 2, 4), Segment(1, 2, 8), Segment(0, 2, 4)])


def _net(design=DESIGN, dtype=torch.float64):
    torch.manual_seed(0)
    return HyperbolicNetwork(design).to(dtype)


def test_the_three_properties_match_their_definitions():
    net = _net()
    x = torch.randn(1, 4, 8, 8, 8, dtype=torch.float64)
    d = diagnostics(net, x, draws=4, seed=3)
    assert d.perturbation == PAPER_PERTURBATION == 0.1 and d.draws == 4
    with torch.no_grad():
        y = net(x)
    assert d.energy_growth == pytest.approx(float(y.norm() / x.norm()))
    assert d.invertibility_error < 1e-12  # float64: exact up to rounding
    # the stability ratios are drawn with ||dX|| = 0.1 ||X||: recompute the first draw
    gen = torch.Generator().manual_seed(3)
    noise = torch.randn(x.shape, generator=gen, dtype=x.dtype)
    dx = noise * (0.1 * x.norm() / noise.norm())
    with torch.no_grad():
        first = float((y - net(x + dx)).norm() / dx.norm())
    assert d.stability_std > 0  # different draws give different ratios
    assert abs(first - d.stability) <= 3 * d.stability_std + 1e-12


def test_sweep_over_h_grows_with_h_and_restores_the_networks_h():
    net = _net()
    x = torch.randn(1, 4, 8, 8, 8, dtype=torch.float64)
    rows = sweep_h(net, x, [0.1, 1.0, 3.0], draws=2)
    assert [h for h, _ in rows] == [0.1, 1.0, 3.0]
    growth = [d.energy_growth for _, d in rows]
    assert growth[0] < growth[1] < growth[2]
    assert all(layer.h == DESIGN.h for layer in net.layers)
    with pytest.raises(FhnError, match="positive"):
        sweep_h(net, x, [0.0])


def test_record_round_trip_and_window():
    d = Diagnostics(1.0, 2.0, 0.1, 1e-6, 3, 0.1)
    assert Diagnostics.from_dict({**d.as_dict(), "extra": 1}) == d
    x = torch.arange(2 * 10 * 6, dtype=torch.float32).reshape(1, 2, 10, 6)
    w = central_window(x, (4, 8))
    assert w.shape == (1, 2, 4, 6) and torch.equal(w, x[:, :, 3:7, :])
    with pytest.raises(FhnError, match="zeros"):
        diagnostics(_net(), torch.zeros(1, 4, 8, 8, 8, dtype=torch.float64))
