"""Sampler, training loop, checkpoints, resume, divergence, prediction."""

import numpy as np
import pytest
import torch

from fhn_core.checkpoint import TrainedModel
from fhn_core.design import NetworkDesign, Segment
from fhn_core.errors import FhnError
from fhn_core.metrics import evaluate
from fhn_core.prediction import predict
from fhn_core.sampler import SubvolumeSampler
from fhn_core.task import Normalisation, SegmentationTask, to_input
from fhn_core.training import TrainConfig, Trainer, split_validation, validation_split

DESIGN = NetworkDesign(4, 3, [Segment(0, 2, 4), Segment(1, 2, 6), Segment(0, 2, 4)])


def _layered_task(shape=(16, 16, 16), seed=0):
    """Three flat layers along the vertical (last) axis with distinct amplitudes; one well."""
    rng = np.random.default_rng(seed)
    depth = np.arange(shape[2])
    truth = np.broadcast_to(np.digitize(depth, [shape[2] // 3, 2 * shape[2] // 3]), shape)
    data = np.asarray([1.0, -1.0, 2.0])[truth] + 0.1 * rng.standard_normal(shape)
    labels = np.full(shape, -1, np.int16)
    labels[4:6, 4:6, :] = truth[4:6, 4:6, :]
    labels[10:12, 11:13, :] = truth[10:12, 11:13, :]
    return SegmentationTask(data[None].astype(np.float32), labels, 3, fixed_axes=(2,)), truth


def test_sampler_never_flips_the_vertical_axis_but_flips_horizontal_ones():
    shape = (8, 8, 8)
    grids = np.meshgrid(*[np.arange(s, dtype=np.float32) for s in shape], indexing="ij")
    x = torch.from_numpy(np.stack(grids))[None]  # channel a = coordinate along axis a
    labels = torch.zeros((1, *shape), dtype=torch.long)
    sampler = SubvolumeSampler(x, labels, size=(4, 4, None), fixed_axes=(2,),
                               generator=torch.Generator().manual_seed(1))
    flipped_horizontal = transposed = 0
    for _ in range(60):
        xs, ys = sampler.draw()
        assert xs.shape == (1, 3, 4, 4, 8) and ys.shape == (1, 4, 4, 8)
        vertical = xs[0, 2, 0, 0]
        assert torch.equal(vertical, torch.arange(8.0))  # never reversed, never swapped
        flipped_horizontal += bool(xs[0, 0, 0, 0, 0] > xs[0, 0, -1, 0, 0]) or bool(
            xs[0, 1, 0, 0, 0] > xs[0, 1, 0, -1, 0])
        transposed += bool(xs[0, 0, 0, 1, 0] != xs[0, 0, 0, 0, 0])
    assert flipped_horizontal > 10 and transposed > 10


def test_validation_split_keeps_a_training_label_per_class():
    labels = np.array([0, 0, 0, 0, 1, -1, 2, 2])
    train, val = split_validation(labels, 0.5, seed=0)
    for k in (0, 1, 2):
        assert (train == k).sum() >= 1
    assert np.array_equal(np.where(val >= 0, val, train), labels)
    assert ((train >= 0) & (val >= 0)).sum() == 0


def test_validation_split_rounds_per_class_and_keeps_single_labels():
    labels = np.full((10, 10), -1, dtype=np.int16)
    labels[0, :2] = 0  # 2 labels
    labels[1, 0] = 1  # 1 label
    labels[2:6, :] = 2  # 40 labels
    train, val = split_validation(labels, 0.5, seed=3)
    assert (val == 0).sum() == 1 and (val == 1).sum() == 0 and (val == 2).sum() == 20
    assert (train == 1).sum() == 1
    assert (split_validation(labels, 0.01, seed=3)[1] == 2).sum() == 1  # at least one
    with pytest.raises(FhnError, match="fraction"):
        split_validation(labels, 1.0, seed=0)


def test_validation_split_is_what_a_trainer_holds_back():
    """A process that did not train (the app scoring a run trained by torchrun's processes)
    holds back the cells the Trainer and an ensemble held back."""
    from dataclasses import replace

    from fhn_core.ensemble import EnsembleTrainer

    task, _ = _layered_task()
    for seed in (0, 5):
        config = TrainConfig(iterations=1, validation_fraction=0.3, seed=seed)
        train, val = validation_split(task, config)
        assert val is not None and (val >= 0).any() and not ((train >= 0) & (val >= 0)).any()
        assert np.array_equal(Trainer(task, DESIGN, config).val_labels, val)
        ensemble = EnsembleTrainer(task, DESIGN, replace(config, ensemble=2))
        assert np.array_equal(ensemble.val_labels, val)
    held = np.where(task.labels >= 0, task.labels, -1)
    given = replace(task, val_labels=held)
    assert np.array_equal(validation_split(given, config)[1], held)
    assert validation_split(task, TrainConfig(validation_fraction=0.0))[1] is None


def test_training_learns_layers_from_two_wells_and_checkpoints(tmp_path):
    task, truth = _layered_task()
    config = TrainConfig(iterations=40, learning_rate=1e-2, validate_every=20, seed=0)
    seen = []
    result = Trainer(task, DESIGN, config, out_dir=tmp_path).run(seen.append)
    assert result.status == "finished" and len(seen) == 40
    assert seen[-1].loss < 0.5 * seen[0].loss
    assert seen[19].validation is not None and seen[0].validation is None
    model = TrainedModel.load(tmp_path / "checkpoint")
    pred = predict(model, task.data)
    assert pred.probabilities.shape == (3, 16, 16, 16)
    assert np.allclose(pred.probabilities.sum(0), 1, atol=1e-5)
    assert ((0 <= pred.entropy) & (pred.entropy <= 1)).all()
    assert evaluate(pred.classes, truth, 3).mean_iou > 0.9
    # blockwise prediction with overlaps agrees with the one-chunk prediction
    blocks = predict(model, task.data, block=8, overlap=4)
    assert (blocks.classes == pred.classes).mean() > 0.95


def test_resume_repeats_the_uninterrupted_loss_sequence(tmp_path):
    task, _ = _layered_task()
    config = TrainConfig(iterations=8, learning_rate=5e-3, validate_every=0, seed=3,
                         patch=(8, 8, None), accumulate=2)
    full = Trainer(task, DESIGN, config, out_dir=tmp_path / "full").run()
    stop_after = iter([False, False, False, True] + [False] * 10)
    first = Trainer(task, DESIGN, config, out_dir=tmp_path / "resumed").run(
        should_stop=lambda: next(stop_after))
    assert first.status == "stopped" and first.iteration == 4
    second = Trainer.resume(tmp_path / "resumed", task).run()
    losses = [h["loss"] for h in second.history]
    assert losses == [h["loss"] for h in full.history]
    for a, b in zip(second.model.net.parameters(), full.model.net.parameters(), strict=True):
        assert torch.equal(a, b)


def test_too_large_learning_rate_stops_with_a_hint_and_a_usable_checkpoint(tmp_path):
    task, _ = _layered_task()
    config = TrainConfig(iterations=50, learning_rate=1e12, optimiser="sgd", schedule="constant",
                         validate_every=0)
    result = Trainer(task, DESIGN, config, out_dir=tmp_path).run()
    assert result.status == "diverged"
    assert "Lower the learning rate" in result.message and "iteration" in result.message
    model = TrainedModel.load(tmp_path / "checkpoint")
    assert all(torch.isfinite(p).all() for p in model.net.parameters())
    assert np.isfinite(predict(model, task.data).probabilities).all()


def test_nan_injected_into_the_data_stops_training(tmp_path):
    task, _ = _layered_task()
    trainer = Trainer(task, DESIGN, TrainConfig(iterations=20, validate_every=0), out_dir=tmp_path)

    def inject(progress):
        if progress.iteration == 3:
            trainer.sampler.x[..., 0] = float("nan")

    result = trainer.run(inject)
    assert result.status == "diverged" and result.iteration == 3
    assert "NaN" in result.message
    assert TrainedModel.load(tmp_path / "checkpoint").info.n_classes == 3


def test_the_wells_order_is_kept_with_the_model_and_enforced_on_request(tmp_path):
    from dataclasses import replace

    task, _ = _layered_task()
    task = replace(task, vertical_axis=2)
    config = TrainConfig(iterations=2, validate_every=0)
    Trainer(task, DESIGN, config).run().model.save(tmp_path / "model")
    model = TrainedModel.load(tmp_path / "model")
    assert model.info.class_order == [0, 1, 2] and model.info.vertical_axis == 2
    ordered = predict(model, task.data, stratigraphic_order=True)
    assert (np.diff(ordered.classes.astype(int), axis=2) >= 0).all()
    plain = predict(model, task.data)
    np.testing.assert_array_equal(ordered.probabilities, plain.probabilities)
    np.testing.assert_array_equal(plain.classes, plain.probabilities.argmax(0))

    # labels that put class 0 below class 1 in a second well: no order to keep
    flipped = task.labels.copy()
    flipped[10:12, 11:13, :6] = 1
    flipped[10:12, 11:13, 6:11] = 0
    contradicting = Trainer(replace(task, labels=flipped), DESIGN, config).model
    assert contradicting.info.class_order == []
    with pytest.raises(FhnError, match="no top-to-bottom class order"):
        predict(contradicting, task.data, stratigraphic_order=True)
    maps = Trainer(replace(task, vertical_axis=None), DESIGN, config).model
    with pytest.raises(FhnError, match="no vertical axis"):
        predict(maps, task.data, stratigraphic_order=True)


def test_task_and_design_mismatches_are_refused():
    task, _ = _layered_task()
    with pytest.raises(FhnError, match="not on the data's grid"):
        SegmentationTask(task.data, task.labels[:, :, :8], 3)
    with pytest.raises(FhnError, match="no labels"):
        SegmentationTask(task.data, np.full(task.labels.shape, -1), 3)
    with pytest.raises(FhnError, match="2D"):
        Trainer(task, NetworkDesign(4, 2, [Segment(0, 1, 2)]))
    with pytest.raises(FhnError, match="in_channels to at least 3"):
        Trainer(task, NetworkDesign(1, 3, [Segment(0, 1, 2)]))


def test_zero_channels_start_the_class_scores_at_zero_and_stay_with_the_model(tmp_path):
    task, truth = _layered_task()
    design = NetworkDesign(5, 3, [Segment(0, 2, 4), Segment(1, 2, 6), Segment(0, 2, 4)],
                           zero_channels=3)
    x = to_input(task.data, Normalisation.of(task.data), design)
    assert x.shape == (1, 5, 16, 16, 16)
    assert (x[:, :3] == 0).all()               # where the 3 class scores start
    assert torch.equal(x[:, 3], x[:, 4]) and x[:, 3].std() > 0.9   # the data, replicated
    config = TrainConfig(iterations=40, learning_rate=1e-2, validate_every=0, seed=0)
    Trainer(task, design, config, out_dir=tmp_path).run()
    model = TrainedModel.load(tmp_path / "checkpoint")
    assert model.design.zero_channels == 3
    assert evaluate(predict(model, task.data).classes, truth, 3).mean_iou > 0.9
    two_channels = SegmentationTask(np.concatenate([task.data, task.data]), task.labels, 3)
    with pytest.raises(FhnError, match="besides its 3 zero channel.*at least 5"):
        Trainer(two_channels, NetworkDesign(4, 3, [Segment(0, 1, 2)], zero_channels=3))


def test_model_folder_with_wrong_files_is_refused(tmp_path):
    with pytest.raises(FhnError, match="not a trained model folder"):
        TrainedModel.load(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"\x00" * 32)
    (tmp_path / "design.toml").write_text(DESIGN.to_toml())
    (tmp_path / "model.json").write_text("{}")
    with pytest.raises(FhnError):
        TrainedModel.load(tmp_path)


def test_block_origins_cover_the_axis_and_advance():
    from fhn_core.prediction import _block_starts

    assert _block_starts(100, 32, 8) == [0, 24, 48, 68]
    assert _block_starts(100, 16, 16) == [0, 8, 16, 24, 32, 40, 48, 56, 64, 72, 80, 84]
    assert _block_starts(10, 32, 8) == [0]
