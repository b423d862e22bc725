import pytest
import torch

from fhn_core.errors import FhnError
from fhn_core.haar import crop_to, haar_analysis, haar_synthesis, pad_to_multiple

SHAPES = [(2, 3, 8, 6), (2, 2, 4, 6, 8)]


@pytest.mark.parametrize("shape", SHAPES, ids=["2d", "3d"])
def test_norm_preserved_and_inverse_exact(shape):
    x = torch.randn(shape, dtype=torch.float64)
    y = haar_analysis(x)
    d = len(shape) - 2
    assert y.shape == (shape[0], shape[1] * 2**d, *(s // 2 for s in shape[2:]))
    assert torch.allclose(y.norm(), x.norm(), rtol=1e-14)
    assert torch.allclose(haar_synthesis(y), x, atol=1e-14)
    assert torch.allclose(haar_analysis(haar_synthesis(y)), y, atol=1e-14)


@pytest.mark.parametrize("shape", SHAPES, ids=["2d", "3d"])
def test_adjoint_dot_product(shape):
    x = torch.randn(shape, dtype=torch.float64)
    y = torch.randn(haar_analysis(x).shape, dtype=torch.float64)
    lhs = (haar_analysis(x) * y).sum()
    rhs = (x * haar_synthesis(y)).sum()
    assert abs(lhs - rhs) <= 1e-12 * abs(lhs)


def test_subband_order_2d():
    # A constant image has only a low-pass band; a row-alternating image only HL (s=2).
    x = torch.ones(1, 1, 4, 4)
    y = haar_analysis(x)
    assert torch.allclose(y[:, 0], torch.full((1, 2, 2), 2.0))
    assert y[:, 1:].abs().max() == 0
    rows = torch.tensor([1.0, -1.0, 1.0, -1.0]).view(1, 1, 4, 1).expand(1, 1, 4, 4)
    y = haar_analysis(rows.contiguous())
    assert y[:, [0, 1, 3]].abs().max() == 0 and y[:, 2].abs().min() > 0


def test_channel_major_layout_keeps_lowpass_first():
    x = torch.randn(1, 3, 4, 4, 4)
    y = haar_analysis(x)
    for c in range(3):  # low pass of channel c = block mean * sqrt(8)
        block_mean = torch.nn.functional.avg_pool3d(x[:, c : c + 1], 2)[:, 0]
        assert torch.allclose(y[:, c], block_mean * 8**0.5, atol=1e-5)


def test_pad_and_crop_round_trip():
    x = torch.randn(1, 2, 13, 7, 10)
    padded, sizes = pad_to_multiple(x, 2)
    assert tuple(padded.shape[2:]) == (16, 8, 12)
    assert torch.equal(crop_to(padded, sizes), x)
    tiny = torch.randn(1, 1, 3, 5)  # too short to reflect: replicate instead of failing
    padded, sizes = pad_to_multiple(tiny, 3)
    assert tuple(padded.shape[2:]) == (8, 8) and torch.equal(crop_to(padded, sizes), tiny)


def test_odd_size_is_refused():
    with pytest.raises(FhnError, match="pad_to_multiple"):
        haar_analysis(torch.randn(1, 1, 5, 4))


@pytest.mark.parametrize("shape", SHAPES, ids=["2d", "3d"])
def test_gradients_are_the_adjoint_transforms(shape):
    """Autograd through W gives W^T of the incoming gradient, and through W^T gives W."""
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    g = torch.randn(haar_analysis(x).shape, dtype=torch.float64)
    haar_analysis(x).backward(g)
    assert torch.allclose(x.grad, haar_synthesis(g), atol=1e-14)
    y = g.clone().requires_grad_(True)
    h = torch.randn(shape, dtype=torch.float64)
    haar_synthesis(y).backward(h)
    assert torch.allclose(y.grad, haar_analysis(h), atol=1e-14)
    assert torch.autograd.gradcheck(haar_analysis, (x.detach()[:1, :1].requires_grad_(),))


def test_strided_input_and_fresh_output():
    """A permuted (non-contiguous) input is transformed like its contiguous copy, untouched."""
    x = torch.randn(2, 6, 4, 8, dtype=torch.float64).transpose(2, 3)
    before = x.clone()
    y = haar_analysis(x)
    assert torch.equal(x, before)
    assert torch.equal(y, haar_analysis(x.contiguous()))
    assert y.data_ptr() != x.data_ptr()
