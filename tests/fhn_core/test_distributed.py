"""Training on two ranks with torch.distributed (gloo on loopback, CPU), launched by torchrun.

The property that matters: DDP's gradient averaging reaches the parameters through the
constant-memory backward, so two ranks take exactly the step one process takes over both
ranks' sub-volumes. Also: a rank that dies ends the others with a clear message (no hang),
and a checkpoint written by two ranks resumes in one.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from fhn_core.design import NetworkDesign, Segment
from fhn_core.task import SegmentationTask
from fhn_core.training import TrainConfig, Trainer
from tests.torchrun_support import rank_env, report, torchrun

DESIGN = NetworkDesign(3, 3, [Segment(0, 2, 4), Segment(1, 2, 6), Segment(0, 2, 4)])
CONFIG = dict(iterations=1, optimiser="sgd", learning_rate=0.05, momentum=0.0,
              patch=(8, 8, None), validate_every=0, checkpoint_every=0, seed=0, device="cpu")

# One rank's training: the task from task.npz, CONFIG with the given iterations; records
# the sub-volumes it drew and the parameters and gradients it ended with.
WORKER = """
import json, os, sys
import numpy as np, torch
from safetensors.torch import save_file
from fhn_core import distributed
from fhn_core.design import NetworkDesign
from fhn_core.errors import FhnError
from fhn_core.task import SegmentationTask
from fhn_core.training import TrainConfig, Trainer
from tests.torchrun_support import rank_env, report, torchrun

folder, iterations, die_after = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
arrays = np.load(os.path.join(folder, "task.npz"), allow_pickle=False)
task = SegmentationTask(arrays["data"], arrays["labels"], 3, fixed_axes=(2,))
design = NetworkDesign.from_toml(open(os.path.join(folder, "design.toml")).read())
config = TrainConfig(**{**json.load(open(os.path.join(folder, "config.json"))),
                        "iterations": iterations})
ranks = distributed.start("cpu", timeout_s=60)
trainer = Trainer(task, design, config, out_dir=os.path.join(folder, "run"), ranks=ranks)
draws, draw = [], trainer.sampler.draw
def recording():
    xy = draw()
    draws.append(xy)
    return xy
trainer.sampler.draw = recording
def progress(p):
    if ranks.rank == 1 and p.iteration == die_after:
        os._exit(3)
try:
    trainer.run(progress)
except FhnError as err:
    print(f"fhn: error: {err}", file=sys.stderr)
    distributed.leave_after_lost_rank(2)  # as the fhn command does
net = trainer.model.net
out = {f"x{i}": x for i, (x, _) in enumerate(draws)}
out |= {f"y{i}": y for i, (_, y) in enumerate(draws)}
out |= {f"param.{n}": p.detach() for n, p in net.named_parameters()}
out |= {f"grad.{n}": p.grad for n, p in net.named_parameters()}
save_file({k: v.contiguous() for k, v in out.items()},
          os.path.join(folder, f"rank{ranks.rank}.safetensors"))
distributed.stop()
"""


def _task() -> SegmentationTask:
    rng = np.random.default_rng(0)
    shape = (16, 16, 16)
    truth = np.broadcast_to(np.digitize(np.arange(16), [5, 11]), shape)
    data = np.asarray([1.0, -1.0, 2.0])[truth] + 0.3 * rng.standard_normal(shape)
    labels = np.full(shape, -1, np.int16)
    labels[2:4, 2:4, :] = truth[2:4, 2:4, :]
    labels[12:14, 11:13, :] = truth[12:14, 11:13, :]
    return SegmentationTask(data[None].astype(np.float32), labels, 3, fixed_axes=(2,))


def _prepare(folder: Path) -> SegmentationTask:
    import json

    task = _task()
    np.savez(folder / "task.npz", data=task.data, labels=task.labels)
    (folder / "design.toml").write_text(DESIGN.to_toml())
    (folder / "config.json").write_text(json.dumps(CONFIG))
    (folder / "worker.py").write_text(WORKER)
    return task


def _torchrun(folder: Path, iterations: int) -> subprocess.CompletedProcess:
    return torchrun([str(folder / "worker.py"), str(folder), str(iterations), "0"])


@pytest.fixture(scope="module")
def two_rank_step(tmp_path_factory) -> tuple[Path, SegmentationTask]:
    """One iteration of two ranks under torchrun, with a checkpoint (one launch, ~15 s)."""
    folder = tmp_path_factory.mktemp("ddp")
    task = _prepare(folder)
    done = _torchrun(folder, iterations=1)
    assert done.returncode == 0, report(done)
    return folder, task


def test_two_ranks_take_the_step_one_process_takes_over_both_sub_volumes(two_rank_step):
    folder, task = two_rank_step
    ranks = [load_file(folder / f"rank{r}.safetensors") for r in (0, 1)]
    assert not torch.equal(ranks[0]["x0"], ranks[1]["x0"])  # each rank drew its own
    # One process, accumulate = 2, fed rank 0's then rank 1's sub-volume.
    single = Trainer(task, DESIGN, TrainConfig(**{**CONFIG, "accumulate": 2}))
    feed = iter([(r["x0"], r["y0"]) for r in ranks])
    single.sampler.draw = lambda: next(feed)
    assert single.run().status == "finished"
    for name, p in single.model.net.named_parameters():
        for r in ranks:
            torch.testing.assert_close(r[f"grad.{name}"], p.grad, rtol=1e-5, atol=1e-7)
            torch.testing.assert_close(r[f"param.{name}"], p.detach(), rtol=1e-6, atol=1e-7)


def test_a_checkpoint_of_two_ranks_resumes_in_one_process(two_rank_step):
    folder, task = two_rank_step
    assert not (folder / "run" / "rank1").exists()
    resumed = Trainer.resume(folder / "run", task, TrainConfig(**{**CONFIG, "iterations": 2}))
    assert resumed.iteration == 1
    rank0 = load_file(folder / "rank0.safetensors")
    for name, p in resumed.model.net.named_parameters():
        assert torch.equal(p.detach(), rank0[f"param.{name}"])
    result = resumed.run()
    assert result.status == "finished" and result.iteration == 2


def test_a_rank_that_dies_ends_the_other_with_a_clear_message(tmp_path):
    """Started without torchrun (which would kill the survivor itself): the survivor must
    notice at its next collective and leave with a one-line error, not hang."""
    _prepare(tmp_path)
    env = rank_env()
    procs = [
        subprocess.Popen(
            [sys.executable, str(tmp_path / "worker.py"), str(tmp_path), "5", "1"],
            env=dict(env, RANK=str(r), LOCAL_RANK=str(r), WORLD_SIZE="2"),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for r in (0, 1)
    ]
    try:
        outs = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert procs[1].returncode == 3
    assert procs[0].returncode == 2, outs[0][1][-2000:]
    assert "lost contact with the other training processes" in outs[0][1]
    assert "--resume" in outs[0][1]


def test_one_process_is_not_distributed():
    """Without torchrun nothing changes: no process group, the network itself runs."""
    trainer = Trainer(_task(), DESIGN, TrainConfig(**CONFIG))
    assert not trainer.ranks.active and trainer.trained is trainer.model.net
    assert not torch.distributed.is_initialized()
