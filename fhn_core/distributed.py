"""Training on several processes (GPUs, or machines) with torch.distributed.

``torchrun --nproc-per-node N`` starts N copies of the same training; each copy (a rank)
builds the same task and network. :class:`~torch.nn.parallel.DistributedDataParallel`
broadcasts rank 0's initial weights, every rank draws its own sub-volumes, and after each
backward the gradients are averaged over the ranks, so N ranks with ``accumulate = a``
take the step one process would take with ``accumulate = N a`` over the same sub-volumes.

DDP's reducer listens on each parameter's gradient accumulator. The constant-memory
backward (:mod:`fhn_core.reversible`) reaches those accumulators because the parameters
are inputs of its autograd Function: their gradients are returned by the Function's
backward and accumulated by autograd like any other, so the reducer sees them.

Rank 0 alone validates, writes checkpoints, logs and the run record; every decision that
changes the control flow (a non-finite loss, a stop request) is agreed by all ranks first,
so no rank waits forever for one that has left the loop.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from .errors import FhnError

# How long a rank waits for the others in one collective before giving up. Validation on
# rank 0 of a large volume holds the others back, so this is generous.
DEFAULT_TIMEOUT_S = 1800.0


@dataclass(frozen=True)
class Ranks:
    """Where this process stands among the training processes (one process: rank 0 of 1)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0 writes checkpoints, logs and the run record."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1


def launched_by_torchrun() -> bool:
    """True in a process that torchrun (or a compatible launcher) started as one of several."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def start(device: str = "auto", timeout_s: float = DEFAULT_TIMEOUT_S) -> Ranks:
    """Join the process group torchrun described in the environment.

    NCCL where the ranks train on CUDA, gloo on the CPU. Each rank on a machine takes the
    GPU of its LOCAL_RANK.
    """
    env = os.environ
    missing = [k for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT") if k not in env]
    if missing:
        raise FhnError(
            f"distributed training needs {', '.join(missing)} in the environment; "
            "launch with torchrun --nproc-per-node N ..."
        )
    ranks = Ranks(int(env["RANK"]), int(env["WORLD_SIZE"]), int(env.get("LOCAL_RANK", "0")))
    use_cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if use_cuda:
        if torch.cuda.device_count() <= ranks.local_rank:
            raise FhnError(
                f"rank {ranks.rank} wants GPU {ranks.local_rank} but this machine has "
                f"{torch.cuda.device_count()}; start at most that many ranks per machine"
            )
        torch.cuda.set_device(ranks.local_rank)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo",
                                timeout=timedelta(seconds=timeout_s))
    return ranks


def stop(synchronise: bool = False) -> None:
    """Leave the process group (a no-op where none was joined).

    ``synchronise``: first wait until every rank is leaving (a run that ended well), so
    that no rank tears its connections down while rank 0 still writes and talks: a rank
    that left early was seen to abort at exit ("terminate called without an active
    exception"). Not after an error, where the other ranks may never arrive (torchrun ends
    them when one fails)."""
    if dist.is_initialized():
        if synchronise:
            dist.barrier()
        dist.destroy_process_group()


def rank_device(ranks: Ranks, device: torch.device) -> torch.device:
    """The device of this rank: its own GPU on a CUDA machine, the CPU otherwise."""
    if ranks.active and device.type == "cuda":
        return torch.device("cuda", ranks.local_rank)
    return device


def wrap(net: torch.nn.Module, ranks: Ranks) -> torch.nn.Module:
    """The module to run forward and backward through: DDP over ``net`` when several ranks train."""
    if not ranks.active:
        return net
    param = next(net.parameters())
    ids = [param.device.index] if param.device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(net, device_ids=ids)


def mean_over_ranks(values: list[float], ranks: Ranks) -> list[float]:
    """The average of each value over all ranks (the values themselves with one rank)."""
    if not ranks.active:
        return values
    t = torch.tensor(values, dtype=torch.float64)
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.all_reduce(t)
    return (t / ranks.world_size).cpu().tolist()


def any_rank(flag: bool, ranks: Ranks) -> bool:
    """True on every rank when ``flag`` is true on at least one (a stop, a failure)."""
    return mean_over_ranks([float(flag)], ranks)[0] > 0


def is_collective_failure(error: RuntimeError, ranks: Ranks) -> bool:
    """Whether ``error`` is a collective that failed because another rank went away.

    gloo reports a dead peer as a plain RuntimeError from its TCP transport, NCCL as a
    DistBackendError; both name the back end or the broken connection.
    """
    if not ranks.active:
        return False
    if isinstance(error, dist.DistError):
        return True
    text = str(error)
    return any(mark in text for mark in ("gloo", "NCCL", "Connection", "connection"))


@contextmanager
def held_by_rank_zero(
    make: Callable[[], AbstractContextManager[object]], ranks: Ranks
) -> Iterator[None]:
    """Hold ``make()`` (the run lock: one writer per folder) on rank 0 alone.

    Where rank 0 cannot take it, every rank leaves with an error instead of waiting for a
    rank 0 that will never train.
    """
    with ExitStack() as stack:
        failure: FhnError | None = None
        if ranks.is_main:
            try:
                stack.enter_context(make())
            except FhnError as err:
                failure = err
        if any_rank(failure is not None, ranks):
            raise failure or FhnError("rank 0 could not take the run lock; see its message")
        yield


class LostRankError(FhnError):
    """A collective failed because another rank died or stopped answering."""


def lost_rank_error(error: Exception, ranks: Ranks) -> LostRankError:
    """The message a rank gives when a collective fails: another rank has died or hung."""
    return LostRankError(
        f"rank {ranks.rank} of {ranks.world_size} lost contact with the other training "
        f"processes ({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}); "
        "one of them has died or stopped answering. The last checkpoint is kept: start the "
        "same torchrun command again with --resume (any number of ranks)"
    )


def leave_after_lost_rank(code: int) -> None:
    """End this process now, skipping the interpreter's teardown.

    Why: the threads of a gloo group whose peer died can abort the normal exit (SIGABRT,
    "terminate called without an active exception") after the message was printed, which
    replaces the exit code. The message is out, the checkpoint is on disk: nothing is lost.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
