"""Launching two ranks with the real torchrun on loopback, for the distributed tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rank_env() -> dict[str, str]:
    """The environment of a rank: the repository importable, one thread, loopback only."""
    return dict(os.environ, OMP_NUM_THREADS="1", MASTER_ADDR="127.0.0.1",
                MASTER_PORT=str(free_port()),
                PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))


def torchrun(args: list[str], *, cwd: Path | None = None, ranks: int = 2,
             timeout: float = 300) -> subprocess.CompletedProcess:
    """``torchrun --nproc-per-node RANKS ARGS`` on 127.0.0.1.

    The port is free when chosen but another process may take it before torchrun binds it
    (other test runs on the machine); only then is the launch tried again, on a new port.
    """
    for _ in range(3):
        env = rank_env()
        done = subprocess.run(
            [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1",
             "--nproc-per-node", str(ranks), "--master-addr", "127.0.0.1",
             "--master-port", env["MASTER_PORT"], *args],
            cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
        )
        if done.returncode == 0 or "address already in use" not in done.stderr.lower():
            return done
    return done


def report(done: subprocess.CompletedProcess) -> str:
    """What a failed launch printed, for the assertion message."""
    return f"exit {done.returncode}\nstdout:\n{done.stdout[-2000:]}\nstderr:\n{done.stderr[-4000:]}"
