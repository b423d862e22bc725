"""Ensembles: members trained one after another, logits averaged, saved, resumed."""

import numpy as np
import pytest
import torch

from fhn_core.checkpoint import TrainedModel
from fhn_core.design import NetworkDesign, Segment
from fhn_core.ensemble import EnsembleTrainer, RunTime, member_seed
from fhn_core.errors import FhnError
from fhn_core.prediction import predict, predict_logits
from fhn_core.task import SegmentationTask, to_input
from fhn_core.training import TrainConfig, Trainer

DESIGN = NetworkDesign(4, 2, [Segment(0, 1, 4), Segment(1, 1, 6), Segment(0, 1, 4)])


def _map_task():
    rng = np.random.default_rng(0)
    truth = (np.arange(16)[None, :] >= 8).repeat(16, 0).astype(np.int64)
    data = np.stack([truth * 2.0 - 1, rng.standard_normal((16, 16))]).astype(np.float32)
    data += 0.3 * rng.standard_normal(data.shape).astype(np.float32)
    labels = np.full((16, 16), -1, np.int64)
    picks = rng.choice(256, 40, replace=False)
    labels.flat[picks] = truth.flat[picks]
    return SegmentationTask(data, labels, 2, class_names=["west", "east"]), truth


def _config(**changes):
    base = dict(iterations=4, learning_rate=5e-3, validate_every=0, validation_fraction=0.0,
                ensemble=3, seed=2, checkpoint_every=1)
    return TrainConfig(**{**base, **changes})


def test_an_ensemble_predicts_the_mean_of_its_members_logits(tmp_path):
    task, _ = _map_task()
    result = EnsembleTrainer(task, DESIGN, _config(), out_dir=tmp_path).run()
    model = result.model
    assert result.status == "finished" and len(model.networks) == 3
    assert result.iteration == 12 and model.info.ensemble == 3
    first = [p.detach() for p in model.networks[0].parameters()]
    second = [p.detach() for p in model.networks[1].parameters()]
    assert not all(torch.equal(a, b) for a, b in zip(first, second, strict=True))
    x = to_input(task.data, model.info.normalisation, model.design)
    for augment in (False, True):
        members = [predict_logits(net, x, 2, augment=augment) for net in model.networks]
        mean = torch.stack(members).mean(0)
        expected = torch.softmax(mean, 0).numpy()
        got = predict(model, task.data, augment=augment, device="cpu").probabilities
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
        assert not np.allclose(torch.softmax(members[0], 0).numpy(), expected, atol=1e-4)


def test_each_member_is_the_network_its_own_seed_trains():
    task, _ = _map_task()
    config = _config(ensemble=2)
    model = EnsembleTrainer(task, DESIGN, config).run().model
    alone = Trainer(task, DESIGN, _config(ensemble=1, seed=member_seed(2, 1))).run().model
    for a, b in zip(model.networks[1].parameters(), alone.net.parameters(), strict=True):
        assert torch.equal(a, b)


def test_the_model_folder_holds_every_member_and_loads_them(tmp_path):
    task, _ = _map_task()
    model = EnsembleTrainer(task, DESIGN, _config()).run().model
    folder = model.save(tmp_path / "model")
    assert sorted(p.name for p in folder.glob("*.safetensors")) == [
        "member-1.safetensors", "member-2.safetensors", "model.safetensors"]
    loaded = TrainedModel.load(folder)
    assert loaded.info.ensemble == 3
    np.testing.assert_array_equal(predict(loaded, task.data).probabilities,
                                  predict(model, task.data).probabilities)
    (folder / "member-2.safetensors").unlink()
    with pytest.raises(FhnError, match="member-2.safetensors is missing"):
        TrainedModel.load(folder)


def test_stopping_inside_a_member_and_resuming_gives_the_uninterrupted_ensemble(tmp_path):
    task, _ = _map_task()
    config = _config(validation_fraction=0.25, validate_every=2)
    full = EnsembleTrainer(task, DESIGN, config, out_dir=tmp_path / "full").run()
    calls = iter([False] * 5 + [True] + [False] * 50)  # stop in member 1, iteration 2
    first = EnsembleTrainer(task, DESIGN, config, out_dir=tmp_path / "cut").run(
        should_stop=lambda: next(calls))
    assert first.status == "stopped" and first.iteration == 6
    assert len(first.model.networks) == 2 and "member 2 of 3" in first.message
    assert (tmp_path / "cut" / "checkpoint-1" / "training.json").is_file()
    again = EnsembleTrainer(task, DESIGN, config, out_dir=tmp_path / "cut", resume=True)
    assert again.iteration == 6 and again.current == 1
    seen = []
    second = again.run(lambda p: seen.append((p.iteration, p.iterations)))
    assert seen[0] == (7, 12) and seen[-1] == (12, 12)
    assert second.status == "finished" and second.iteration == 12
    for net_a, net_b in zip(second.model.networks, full.model.networks, strict=True):
        for a, b in zip(net_a.parameters(), net_b.parameters(), strict=True):
            assert torch.equal(a, b)
    assert second.validation.as_dict() == full.validation.as_dict()


def test_members_share_one_validation_split():
    task, _ = _map_task()
    trainer = EnsembleTrainer(task, DESIGN, _config(validation_fraction=0.25))
    val = trainer.val_labels
    assert val is not None and (val >= 0).sum() >= 2
    assert not ((trainer.task.labels >= 0) & (val >= 0)).any()
    result = trainer.run()
    assert trainer.val_labels is val or np.array_equal(trainer.val_labels, val)
    assert result.validation is not None


def test_one_network_is_the_plain_trainer(tmp_path):
    task, _ = _map_task()
    config = _config(ensemble=1, validation_fraction=0.25, validate_every=2)
    single = EnsembleTrainer(task, DESIGN, config, out_dir=tmp_path / "a").run()
    plain = Trainer(task, DESIGN, config, out_dir=tmp_path / "b").run()
    assert [h["loss"] for h in single.history] == [h["loss"] for h in plain.history]
    assert single.model.members == [] and (tmp_path / "a" / "checkpoint").is_dir()


def test_the_run_time_adds_every_member_and_validation():
    cost = RunTime(members=3, iterations=100, step_seconds=0.5, validations=4,
                   pass_seconds=2.0, augment_passes=8)
    assert cost.training_seconds == 3 * (100 * 0.5 + 4 * 2.0)
    assert cost.prediction_seconds() == 3 * 2.0 and cost.prediction_seconds(True) == 48.0
    assert "2 min 54 s" in cost.summary() and "3 networks" in cost.summary()


def test_measuring_the_cost_leaves_the_run_unchanged():
    task, _ = _map_task()
    config = _config(ensemble=2)
    measured = EnsembleTrainer(task, DESIGN, config)
    cost = measured.measure()
    assert cost.step_seconds > 0 and cost.pass_seconds > 0 and cost.members == 2
    assert cost.augment_passes == 8  # a square map: 4 flips, each also transposed
    after = measured.run().history
    before = EnsembleTrainer(task, DESIGN, config).run().history
    assert [h["loss"] for h in after] == [h["loss"] for h in before]


def test_ensemble_size_must_be_a_whole_number():
    for bad in (0, 2.5, True):
        with pytest.raises(FhnError, match="ensemble must be a whole number"):
            TrainConfig(ensemble=bad)
