"""Averaged weights: the bias-corrected moving average, its use in training and resume."""

import pytest
import torch
from torch import nn

from fhn_core.averaging import WeightAverage
from fhn_core.errors import FhnError
from fhn_core.training import TrainConfig, Trainer

from .test_training import DESIGN, _layered_task


def test_average_is_the_exponentially_weighted_mean_of_the_iterates():
    module = nn.Linear(3, 2)
    beta, iterates = 0.8, []
    average = WeightAverage(module, beta)
    for _ in range(5):
        with torch.no_grad():
            for p in module.parameters():
                p.copy_(torch.randn_like(p))
        iterates.append([p.detach().clone() for p in module.parameters()])
        average.update(module)
    weights = torch.tensor([beta ** (4 - t) for t in range(5)], dtype=torch.float64)
    weights /= weights.sum()
    for k, got in enumerate(average.averaged()):
        expected = sum(w * it[k].double() for w, it in zip(weights, iterates, strict=True))
        torch.testing.assert_close(got.double(), expected, rtol=1e-6, atol=1e-6)


def test_applied_swaps_the_average_in_and_the_live_weights_back_even_on_error():
    module = nn.Linear(2, 2)
    average = WeightAverage(module, 0.5)
    average.update(module)
    with torch.no_grad():
        module.weight.add_(1.0)
    live = [p.detach().clone() for p in module.parameters()]
    with pytest.raises(RuntimeError), average.applied(module):
        assert not torch.equal(module.weight, live[0])
        raise RuntimeError("inside")
    for p, q in zip(module.parameters(), live, strict=True):
        assert torch.equal(p, q)


def test_decay_outside_zero_one_is_refused():
    with pytest.raises(FhnError, match="average_decay"):
        TrainConfig(average_decay=1.0)
    with pytest.raises(FhnError, match="decay"):
        WeightAverage(nn.Linear(1, 1), -0.1)


def test_training_returns_the_averaged_weights_and_resume_continues_the_average(tmp_path):
    task, _ = _layered_task()
    config = TrainConfig(iterations=6, learning_rate=5e-3, validate_every=3, seed=1,
                         patch=(8, 8, None), average_decay=0.7)
    trainer = Trainer(task, DESIGN, config, out_dir=tmp_path / "full")
    full = trainer.run()
    averaged = list(trainer.average.averaged())
    for got, want in zip(full.model.net.parameters(), averaged, strict=True):
        assert torch.equal(got, want)
    live = list(trainer.model.net.parameters())
    assert not all(torch.equal(a, b) for a, b in zip(averaged, live, strict=True))

    stop_after = iter([False, True] + [False] * 10)
    Trainer(task, DESIGN, config, out_dir=tmp_path / "resumed").run(
        should_stop=lambda: next(stop_after))
    resumed = Trainer.resume(tmp_path / "resumed", task).run()
    for a, b in zip(resumed.model.net.parameters(), full.model.net.parameters(), strict=True):
        assert torch.equal(a, b)
    assert [h["validation"] for h in resumed.history if "validation" in h] == [
        h["validation"] for h in full.history if "validation" in h]
