"""Prediction: test-time augmentation over the horizontal flips and transposes."""

import numpy as np
import pytest
import torch

from fhn_core.checkpoint import ModelInfo, TrainedModel
from fhn_core.design import NetworkDesign, Segment
from fhn_core.losses import class_scores
from fhn_core.network import HyperbolicNetwork
from fhn_core.prediction import horizontal_transforms, predict, predict_logits
from fhn_core.task import Normalisation

DESIGN_2D = NetworkDesign(3, 2, [Segment(0, 1, 4), Segment(1, 2, 6), Segment(0, 1, 4)])


def _random_net(design: NetworkDesign, seed: int = 0) -> HyperbolicNetwork:
    torch.manual_seed(seed)
    net = HyperbolicNetwork(design)
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0.0, 0.5)  # large enough that the output depends on the kernels
    return net


@pytest.mark.parametrize("shape", [(8, 8), (8, 16)])
def test_augmented_prediction_of_a_flipped_map_is_the_flipped_prediction(shape):
    net = _random_net(DESIGN_2D)
    x = torch.randn(1, 3, *shape)
    plain = predict_logits(net, x, 2)
    aug = predict_logits(net, x, 2, augment=True)
    symmetries = [lambda t, d: t.flip(d), lambda t, d: t.flip(d + 1),
                  lambda t, d: t.flip([d, d + 1])]
    if shape[0] == shape[1]:
        symmetries.append(lambda t, d: t.transpose(d, d + 1))
    for g in symmetries:
        # g acts on (1, C, y, x) from dimension 2 and on (K, y, x) logits from dimension 1
        torch.testing.assert_close(predict_logits(net, g(x, 2), 2, augment=True), g(aug, 1),
                                   rtol=1e-5, atol=1e-5)
        assert not torch.allclose(predict_logits(net, g(x, 2), 2), g(plain, 1), atol=1e-3)


def test_a_square_map_has_eight_transforms_a_rectangle_four():
    assert len(horizontal_transforms((8, 8))) == 8
    assert len(horizontal_transforms((8, 16))) == 4
    assert len(horizontal_transforms((8, 8, 16), fixed_axes=(2,))) == 8
    assert horizontal_transforms((8, 8))[0] == ((), None)  # the identity first


def test_augment_never_flips_the_vertical_axis_of_a_3d_model():
    # Kernels symmetric under horizontal flips and transposes but not under a vertical flip:
    # the net is exactly equivariant to every horizontal transform, so averaging over them
    # must give its plain answer, while a vertical flip would change the depth profile.
    net = _random_net(NetworkDesign(2, 3, [Segment(0, 3, 3)]), seed=1)
    with torch.no_grad():
        for layer in net.layers:
            w = layer.weight
            w.copy_((w + w.flip(2)) / 2)
            w.copy_((w + w.flip(3)) / 2)
            w.copy_((w + w.transpose(2, 3)) / 2)
    data = np.random.default_rng(0).standard_normal((2, 8, 8, 12)).astype(np.float32)
    info = ModelInfo(n_classes=2, data_channels=2, normalisation=Normalisation((0.0, 0.0),
                     (1.0, 1.0)), fixed_axes=(2,))
    model = TrainedModel(net, info)
    plain = predict(model, data, device="cpu").probabilities
    aug = predict(model, data, augment=True, device="cpu").probabilities
    np.testing.assert_allclose(aug, plain, rtol=1e-5, atol=1e-6)
    # the counterfactual: with the vertical axis flipped too, the answer would differ
    x = torch.from_numpy(data)[None]
    upside_down = predict_logits(net, x.flip(4), 2).flip(3)
    assert not torch.allclose(upside_down, predict_logits(net, x, 2), atol=1e-3)


def test_without_augment_prediction_is_the_plain_forward_pass():
    net = _random_net(DESIGN_2D, seed=2)
    x = torch.randn(1, 3, 8, 16)
    expected = class_scores(net.eval()(x), 2)[0]
    torch.testing.assert_close(predict_logits(net, x, 2), expected, rtol=0, atol=0)
    torch.testing.assert_close(predict_logits(net, x, 2, augment=False), expected,
                               rtol=0, atol=0)
