"""The memory estimate (Table 1) and the measured memory of a training step vs depth."""

import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fhn_core.design import NetworkDesign, Segment, seismic_table3
from fhn_core.errors import FhnError
from fhn_core.memory import estimate_memory


def test_estimate_follows_table1_formulas():
    design = NetworkDesign(2, 3, [Segment(0, 3, 4), Segment(1, 2, 8)], kernel_size=3)
    est = estimate_memory(design, (1, 2, 16, 16, 16))
    n = 2 * 16**3
    assert est.input_bytes == 4 * n
    assert est.states_invertible == 3 * 4 * n
    assert est.states_plain == 5 * 4 * n
    assert est.kernels_blr == 4 * 27 * (3 * 4 * 2 + 2 * 8 * 16)
    assert est.kernels_full == 4 * 27 * (3 * 2 * 2 + 2 * 16 * 16)
    assert est.invertible_blr == est.states_invertible + est.kernels_blr
    assert "invertible + BLR" in est.table()


def test_table3_design_blr_removes_the_kernel_explosion():
    est = estimate_memory(seismic_table3(), (1, 12, 248, 248, 248))
    assert est.kernels_full > 100 * est.kernels_blr
    assert est.states_plain == 10 * est.states_invertible  # 30 layers vs 3 states
    assert est.fits(1e12) and not est.fits(1e6)


def test_estimate_rejects_mismatched_shapes():
    with pytest.raises(FhnError, match="channel"):
        estimate_memory(seismic_table3(), (1, 3, 8, 8, 8))
    with pytest.raises(FhnError, match="3D design"):
        estimate_memory(seismic_table3(), (1, 12, 8, 8))


_STEP = textwrap.dedent(
    """
    import sys, torch
    from fhn_core.design import NetworkDesign, Segment
    from fhn_core.network import HyperbolicNetwork
    from fhn_core.losses import class_scores, partial_cross_entropy

    def status_kb(key):
        for line in open("/proc/self/status"):
            if line.startswith(key + ":"):
                return int(line.split()[1])

    torch.set_num_threads(1)
    mode = sys.argv[2]
    depth, batch, edge, rank, coarsened = (int(a) for a in sys.argv[1:2] + sys.argv[3:])
    x = torch.randn(batch, 8, edge, edge, edge)
    labels = torch.randint(0, 2, (batch, edge, edge, edge))
    def step(n_layers):
        segments = [Segment(0, n_layers, rank)]
        if coarsened:  # one Haar coarsening after the first layer, a refinement before the last
            segments = [Segment(0, 1, rank), Segment(1, n_layers - 2, rank), Segment(0, 1, rank)]
        net = HyperbolicNetwork(NetworkDesign(8, 3, segments), gradient_mode=mode)
        partial_cross_entropy(class_scores(net(x), 2), labels).backward()
    step(3)  # warm-up: allocator, kernels and every layer shape's workspace
    # ru_maxrss survives exec (a child of a large pytest process inherits its peak);
    # VmHWM belongs to this process and "5" in clear_refs resets it to the current RSS.
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    before = status_kb("VmRSS")
    step(depth)
    print((status_kb("VmHWM") - before) / 1024)
    """
)


# Large blocks go straight back to the OS, so the high-water mark shows live tensors, not
# memory glibc keeps cached after a free.
_MALLOC = {"MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0"}


def _peak_growth_mb(
    depth: int, mode: str, batch: int = 1, edge: int = 40, rank: int = 4, coarsened: bool = False
) -> float:
    """Peak memory growth (MiB) of one training step of 8-channel cubes, in a fresh child."""
    args = [str(a) for a in (depth, mode, batch, edge, rank, int(coarsened))]
    out = subprocess.run(
        [sys.executable, "-c", _STEP, *args], capture_output=True, text=True,
        check=True, env={**os.environ, **_MALLOC},
    )
    return float(out.stdout.strip())


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")
def test_training_step_memory_is_flat_in_depth():
    """Measured peak memory of one step: constant in depth, unlike plain autograd.

    The peak includes the convolution workspace of one layer (the same at any depth), so
    depths are compared with each other: 12 more layers may add at most 2 states to the
    invertible network's peak, and must add at least 12 states to plain autograd's.
    """
    state_mb = 8 * 40**3 * 4 / 2**20
    inv_shallow, inv_deep = _peak_growth_mb(4, "invertible"), _peak_growth_mb(16, "invertible")
    plain_shallow, plain_deep = _peak_growth_mb(4, "autograd"), _peak_growth_mb(16, "autograd")
    assert inv_deep - inv_shallow <= 2 * state_mb, (inv_shallow, inv_deep)
    assert plain_deep - plain_shallow >= 12 * state_mb, (plain_shallow, plain_deep)


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")
def test_invertible_step_peak_is_a_few_states():
    """The invertible step's own peak: the pair, its gradients and one layer's workspace.

    2 x 8 x 32^3 (oneDNN convolutions, rank = channels at level 0, so the relu output is a
    whole state too) with a Haar coarsening and refinement. Measured about 8.4 states; the
    earlier implementation, which kept autograd's graph of f and stacked Haar temporaries,
    needed 18. The bound leaves room for allocator noise, not for another state-sized copy
    per layer.
    """
    shape = (2, 8, 32, 32, 32)
    state_mb = 4 * math.prod(shape) / 2**20
    peak = _peak_growth_mb(8, "invertible", batch=2, edge=32, rank=8, coarsened=True)
    assert peak <= 9.5 * state_mb, peak / state_mb
    # and the estimate the app checks before training covers it, with the input itself
    design = NetworkDesign(8, 3, [Segment(0, 1, 8), Segment(1, 6, 8), Segment(0, 1, 8)])
    assert estimate_memory(design, shape).training_peak >= (peak + state_mb) * 2**20
