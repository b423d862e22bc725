import pytest
import torch

from fhn_core.errors import FhnError
from fhn_core.haar import haar_analysis
from fhn_core.losses import (
    balanced_class_weights,
    class_scores,
    coarsen_labels,
    expand_channels,
    partial_cross_entropy,
)


def _sparse_labels(shape, n_classes, seed=0):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, n_classes, shape, generator=g)
    keep = torch.rand(shape, generator=g) < 0.2
    return torch.where(keep, labels, torch.full_like(labels, -1))


@pytest.mark.parametrize("weighted", [False, True])
def test_unlabelled_positions_do_not_matter(weighted):
    labels = _sparse_labels((2, 6, 6), 3)
    weights = balanced_class_weights(labels, 3) if weighted else None
    scores = torch.randn(2, 3, 6, 6, requires_grad=True)
    loss = partial_cross_entropy(scores, labels, class_weights=weights)
    (grad,) = torch.autograd.grad(loss, scores)
    changed = scores.detach().clone()
    unlabelled = (labels == -1).unsqueeze(1).expand_as(changed)
    changed[unlabelled] += 10 * torch.randn(int(unlabelled.sum()))
    changed.requires_grad_(True)
    loss2 = partial_cross_entropy(changed, labels, class_weights=weights)
    (grad2,) = torch.autograd.grad(loss2, changed)
    assert torch.equal(loss, loss2)
    assert torch.equal(grad, grad2)
    assert grad[unlabelled].abs().max() == 0 and grad.abs().max() > 0


def test_loss_equals_mean_over_labelled_positions():
    labels = _sparse_labels((1, 5, 7), 4, seed=1)
    scores = torch.randn(1, 4, 5, 7)
    mask = labels != -1
    logp = torch.log_softmax(scores, 1).movedim(1, -1)[mask]
    expected = -logp.gather(1, labels[mask].unsqueeze(1)).mean()
    assert torch.allclose(partial_cross_entropy(scores, labels), expected)


def test_class_weights_balance_counts():
    labels = torch.tensor([[0, 0, 0, 1, -1, -1]])
    w = balanced_class_weights(labels, 3)
    assert torch.allclose(w[:2] * torch.tensor([3.0, 1.0]), torch.full((2,), 2.0))
    assert w[2] == 0


def test_slice_embedding_for_3d_data_to_2d_map():
    out = torch.randn(1, 5, 6, 8, 8)  # (N, C, band, y, x)
    scores = class_scores(out, 2, slice_axis=2, slice_index=4)
    assert scores.shape == (1, 2, 8, 8)
    assert torch.equal(scores, out[:, :2, 4])


def test_coarse_labels_take_the_block_majority():
    labels = torch.full((1, 4, 4), -1)
    labels[0, 0, 0], labels[0, 0, 1], labels[0, 1, 1] = 2, 2, 1
    labels[0, 3, 3] = 0
    coarse = coarsen_labels(labels, 1, 3)
    assert coarse.tolist() == [[[2, -1], [-1, 0]]]


def test_channel_expansion():
    x = torch.randn(1, 2, 4, 4)
    assert torch.equal(expand_channels(x, 5)[:, 2:4], x)
    assert torch.equal(expand_channels(x, 5, "haar"), haar_analysis(x))
    with pytest.raises(FhnError, match="replicate"):
        expand_channels(x, 5, "zeros")


@pytest.mark.parametrize(
    "labels, message",
    [
        (torch.full((1, 4, 4), -1), "no labels"),
        (torch.full((1, 4, 4), 3), "class id 3"),
        (torch.full((1, 4, 4), -2), "label value -2"),
        (torch.zeros(1, 4, 5, dtype=torch.long), "not on the score grid"),
        (torch.zeros(1, 4, 4), "integer tensor"),
    ],
)
def test_bad_labels_are_refused(labels, message):
    with pytest.raises(FhnError, match=message):
        partial_cross_entropy(torch.randn(1, 3, 4, 4), labels)


def test_too_many_classes_for_the_channels():
    with pytest.raises(FhnError, match="expand"):
        class_scores(torch.randn(1, 2, 4, 4), 3)
