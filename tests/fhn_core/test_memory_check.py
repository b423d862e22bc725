"""The one memory policy: what a training run holds, counted as the Trainer holds it."""

import math

from fhn_core.design import NetworkDesign, Segment
from fhn_core.memory import BYTES_PER_VALUE, estimate_memory
from fhn_core.memory_check import KERNEL_COPIES, check_memory

DESIGN = NetworkDesign(4, 3, (Segment(0, 2, 8), Segment(1, 2, 16), Segment(0, 2, 8)))


def test_counts_the_kernel_copies_the_trainer_keeps():
    plain = check_memory(DESIGN, (32, 32, 32), (16, 16, None), None)
    averaged = check_memory(DESIGN, (32, 32, 32), (16, 16, None), None, averaging=True)
    kernels = estimate_memory(DESIGN, (1, 4, 32, 32, 32)).kernels_blr
    # weights, gradients, two Adam moments, the per-step clone and the last-good copy
    assert KERNEL_COPIES == 6
    assert averaged.held_bytes - plain.held_bytes == kernels
    whole_input = 4 * 32**3 * BYTES_PER_VALUE
    assert plain.held_bytes == 2 * whole_input + 8 * 32**3 + 6 * kernels


def test_a_small_patch_on_a_large_volume_is_limited_by_the_whole_volume_pass():
    check = check_memory(DESIGN, (256, 256, 64), (16, 16, 16), 1e12, n_classes=5)
    voxels = 256 * 256 * 64
    assert check.prediction_bytes == 4 * (4 * voxels * 4) + (2 * 5 + 3) * voxels * 4
    assert check.prediction_bytes > check.step_bytes
    assert check.needed == check.held_bytes + check.prediction_bytes
    # what the old policy counted: one training step only
    old = estimate_memory(DESIGN, (1, 4, 16, 16, 16)).training_peak
    assert check.needed > 10 * old
    assert not check_memory(DESIGN, (256, 256, 64), (16, 16, 16), old * 2).fits
    assert math.isclose(check.training_bytes, check.held_bytes + check.step_bytes)
    assert "whole-volume pass" in check.breakdown()
