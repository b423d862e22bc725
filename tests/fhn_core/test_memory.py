"""The memory estimate (Table 1) and the measured memory of a training step vs depth."""

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
    depth, mode = int(sys.argv[1]), sys.argv[2]
    x = torch.randn(1, 8, 40, 40, 40)
    labels = torch.randint(0, 2, (1, 40, 40, 40))
    def step(n_layers):
        net = HyperbolicNetwork(NetworkDesign(8, 3, [Segment(0, n_layers, 4)]), gradient_mode=mode)
        partial_cross_entropy(class_scores(net(x), 2), labels).backward()
    step(1)  # warm-up: allocator, kernels and one layer's workspace
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


def _peak_growth_mb(depth: int, mode: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", _STEP, str(depth), mode], capture_output=True, text=True,
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
