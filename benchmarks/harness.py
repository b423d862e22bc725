"""The shared harness of the benchmarks: options, subprocess probes, tables, CSV, targets.

Every benchmark module builds configurations and hands them to this module, which

- runs one configuration in a FRESH Python subprocess (:func:`run_child`) so that the
  allocator, the oneDNN/cuDNN caches and the peak counters start from nothing, and
  reads back one JSON line;
- measures the peak memory of one training step (:func:`measure_step`, run in the child):
  ``torch.cuda.max_memory_allocated`` on a GPU, the growth of the peak resident set
  (``resource.getrusage(...).ru_maxrss``) on a CPU;
- prints tables, writes CSV files into ``benchmarks/results/`` and checks targets.

CPU peak memory, and why the child is started with ``MALLOC_MMAP_THRESHOLD_``. glibc moves
its mmap threshold up to the size of the largest block freed so far (up to 32 MB), after
which state-sized tensors come from the brk heap, whose freed chunks stay resident. The
peak RSS then measures what the allocator kept, not what the step needed: a first probe
(1 x 8 x 40^3, rank 4, depth 16) read 152 MB for per-layer checkpointing and for plain
autograd alike, against 33 MB and 49 MB once the threshold is fixed. Setting it (any of
the MALLOC_* tunables switches the dynamic threshold off) makes every block above 64 kB
an mmap that goes back to the kernel when freed, so RSS follows the live tensors. The
child also resets the kernel's high-water mark (``/proc/self/clear_refs``, value 5) after
its warm-up step; otherwise ``ru_maxrss`` would still hold the warm-up's peak.
"""

from __future__ import annotations

import argparse
import csv
import gc
import json
import math
import os
import platform
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = Path(__file__).resolve().parent / "results"
RESULT_PREFIX = "BENCH_RESULT "
MB = 1e6
GB = 1e9
# Exit status of a child that stopped itself because it went over its memory budget.
EXIT_OVER_BUDGET = 75
CPU_THREADS = 2
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0"}
MODES: tuple[str, ...] = ("invertible", "autograd", "checkpoint")
N_CLASSES = 2


# --- options ------------------------------------------------------------------------------
@dataclass(frozen=True)
class BenchOptions:
    """What every benchmark is told: sizes (quick or default), device, where to write."""

    quick: bool = False
    device: str = "cpu"
    threads: int = CPU_THREADS
    results_dir: Path = RESULTS_DIR
    budget_gb: float | None = None
    timeout_s: float = 1200.0

    @property
    def on_gpu(self) -> bool:
        return self.device.startswith("cuda")


def resolve_device(name: str) -> str:
    """``auto`` -> ``cuda`` when a GPU is visible, else ``cpu``; refuse cuda without one."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(f"--device {name}: no CUDA device is visible; use --device cpu")
    return name


def add_common_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options every benchmark (and run_all) accepts."""
    parser.add_argument("--quick", action="store_true", help="toy sizes (seconds, for a check)")
    parser.add_argument(
        "--device", default="auto", help="auto (cuda when available), cpu or cuda[:i]"
    )
    parser.add_argument(
        "--threads", type=int, default=CPU_THREADS, help="torch CPU threads in each child"
    )
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR, help="CSV folder")
    parser.add_argument(
        "--budget-gb",
        type=float,
        default=None,
        help="memory budget of the largest-input search (default: see largest_input)",
    )
    parser.add_argument(
        "--timeout", type=float, default=1200.0, help="seconds before a child is killed"
    )
    return parser


def options_from_args(ns: argparse.Namespace) -> BenchOptions:
    return BenchOptions(
        quick=ns.quick,
        device=resolve_device(ns.device),
        threads=ns.threads,
        results_dir=ns.results_dir,
        budget_gb=ns.budget_gb,
        timeout_s=ns.timeout,
    )


# --- results and targets ------------------------------------------------------------------
@dataclass(frozen=True)
class Column:
    """One table/CSV column: the row key, its header and a format for the table."""

    key: str
    header: str
    fmt: str = ""


@dataclass(frozen=True)
class Target:
    """A target of the issue, checked on measured figures: ``value op limit``."""

    name: str
    value: float | None
    op: str  # "<=" or ">="
    limit: float

    @property
    def passed(self) -> bool | None:
        if self.value is None or math.isnan(self.value):
            return None
        return self.value <= self.limit if self.op == "<=" else self.value >= self.limit

    def describe(self) -> str:
        verdict = {True: "PASS", False: "FAIL", None: "n/a "}[self.passed]
        shown = "not measured" if self.passed is None else f"{self.value:.3g}"
        return f"[{verdict}] {self.name}: {shown} (target {self.op} {self.limit:g})"


@dataclass
class BenchResult:
    """What one benchmark hands back: its table, its targets, notes for the reader."""

    name: str
    title: str
    columns: list[Column]
    rows: list[dict[str, Any]]
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


def format_value(value: Any, fmt: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if fmt and isinstance(value, int | float) and not isinstance(value, bool):
        return format(value, fmt)
    return str(value)


def format_table(columns: Sequence[Column], rows: Sequence[dict[str, Any]]) -> str:
    """A plain-text table (also valid Markdown) of ``rows`` under ``columns``."""
    cells = [[format_value(r.get(c.key), c.fmt) for c in columns] for r in rows]
    widths = [max([len(c.header)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    def line(items: Sequence[str]) -> str:
        return "| " + " | ".join(s.rjust(w) for s, w in zip(items, widths, strict=True)) + " |"
    out = [line([c.header for c in columns]), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(row) for row in cells]
    return "\n".join(out)


def write_csv(path: Path, columns: Sequence[Column], rows: Sequence[dict[str, Any]]) -> Path:
    """Write the rows (raw values, not formatted) to ``path``; temporary file, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow([c.key for c in columns])
        for r in rows:
            writer.writerow(["" if r.get(c.key) is None else r.get(c.key) for c in columns])
    tmp.replace(path)
    return path


def report(result: BenchResult, opts: BenchOptions) -> Path:
    """Print a benchmark's table, notes and targets; write its CSV. Returns the CSV path."""
    print(f"\n## {result.title}\n")
    print(format_table(result.columns, result.rows))
    for note in result.notes:
        print(f"  note: {note}")
    for t in result.targets:
        print(f"  {t.describe()}")
    suffix = "-quick" if opts.quick else ""
    path = write_csv(opts.results_dir / f"{result.name}{suffix}.csv", result.columns, result.rows)
    print(f"  ({result.seconds:.0f} s; CSV: {path})")
    return path


def ratio(a: float | None, b: float | None) -> float | None:
    """a / b, or None where either is missing."""
    if a is None or b is None or b == 0:
        return None
    return a / b


# --- machine description --------------------------------------------------------------------
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine_description(opts: BenchOptions) -> str:
    """The machine and the numeric settings, for the tables' header (and README)."""
    import torch

    parts = [
        f"torch {torch.__version__}",
        f"python {platform.python_version()}",
        f"CPU {cpu_model()} x {os.cpu_count()} (nproc), {opts.threads} torch threads/child",
    ]
    if opts.on_gpu:
        props = torch.cuda.get_device_properties(opts.device)
        parts += [
            f"GPU {props.name}, {props.total_memory / GB:.1f} GB",
            f"TF32 matmul={torch.backends.cuda.matmul.allow_tf32}, "
            f"TF32 cudnn={torch.backends.cudnn.allow_tf32}, "
            f"cudnn.benchmark={torch.backends.cudnn.benchmark}",
            f"bf16 supported={torch.cuda.is_bf16_supported()}, used=no "
            "(float32 states and kernels, no autocast)",
        ]
    else:
        parts.append(
            "float32; peak = growth of ru_maxrss over one step, glibc "
            + " ".join(f"{k}={v}" for k, v in MALLOC_ENV.items())
        )
    return "; ".join(parts)


# --- designs and inputs -----------------------------------------------------------------------
def u_design(
    in_channels: int, levels: int, depth: int, rank: int | None, spatial_dims: int = 3
) -> Any:
    """A U-shaped design: levels 0..L..0, ``depth`` layers spread over the 2L+1 segments.

    Every segment gets ``depth // (2L+1)`` layers and the coarsest one the remainder.
    ``rank=None`` means no block low rank: the rank equals the channel count at each
    level, i.e. a full C x C kernel.
    """
    from fhn_core import NetworkDesign, Segment

    path = list(range(levels + 1)) + list(range(levels - 1, -1, -1))
    if depth < len(path):
        raise ValueError(f"{levels} levels need at least {len(path)} layers, got {depth}")
    base, extra = divmod(depth, len(path))
    segments = []
    for i, level in enumerate(path):
        r = rank if rank is not None else in_channels * 2 ** (spatial_dims * level)
        segments.append(Segment(level, base + (extra if i == levels else 0), r))
    return NetworkDesign(in_channels, spatial_dims, tuple(segments))


def warmup_design(design: Any) -> Any:
    """The same levels and ranks with one layer per segment: primes every kernel shape."""
    from fhn_core import NetworkDesign, Segment

    segments = tuple(Segment(s.level, 1, s.rank) for s in design.segments)
    return NetworkDesign(
        design.in_channels, design.spatial_dims, segments, design.kernel_size, design.h
    )


def cpu_or_gpu_shape(opts: BenchOptions) -> tuple[int, ...]:
    """The input of the depth and step-time benchmarks: 1 x 8 x 64^3 on a GPU (the issue's
    example), 2 x 8 x 32^3 on a CPU.

    Why not 64^3 on a CPU: one depth-64 step there takes minutes on 2 shared cores, which
    alone would use up the 15 minutes the whole benchmark may take. Why a batch of 2 rather
    than 1 x 8 x 32^3: for N = 1, PyTorch's CPU convolution sends inputs with
    N * C * D * H <= 20480 to its im2col fallback (slow_conv3d), which needs a 27-state
    column buffer and a slower forward, whereas every larger input (and every real
    training cube) gets oneDNN. A batch of two 32^3 cubes gets oneDNN at a quarter of the
    64^3 cost.
    """
    if opts.on_gpu:
        return (1, 8, 64, 64, 64)
    return (2, 8, 32, 32, 32)


def state_bytes(shape: Sequence[int]) -> int:
    """Bytes of one float32 state tensor: the input's size (Haar keeps every state that size)."""
    return 4 * math.prod(shape)


def make_batch(shape: Sequence[int], device: str, seed: int = 0) -> tuple[Any, Any]:
    """A random input and sparse labels: vertical 'wells' every 8 traces, two classes."""
    import torch

    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=g)
    n, _, *sizes = shape
    labels = torch.full((n, *sizes), -1, dtype=torch.long)
    wells = (slice(None),) + tuple(slice(None, None, 8) for _ in sizes[:-1])
    depth_axis = torch.arange(sizes[-1])
    labels[wells] = (depth_axis >= sizes[-1] // 2).long()
    return x.to(device), labels.to(device)


def train_step(net: Any, x: Any, labels: Any) -> float:
    """One training step: forward, partial cross-entropy on the output state, backward."""
    from fhn_core import class_scores, partial_cross_entropy

    loss = partial_cross_entropy(class_scores(net(x), N_CLASSES), labels)
    loss.backward()
    return float(loss.detach())


def synchronize(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


# --- CPU memory helpers (run in the child) ------------------------------------------------
def _proc_status_kb(key: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def current_rss() -> int:
    """Resident bytes now (falls back to the peak where /proc is missing)."""
    kb = _proc_status_kb("VmRSS")
    return kb * 1024 if kb is not None else peak_rss()


def peak_rss() -> int:
    """Peak resident bytes of this process (Linux reports ru_maxrss in kB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def reset_peak_rss() -> bool:
    """Reset the kernel's high-water mark (Linux >= 4.0); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        return False
    return True


def _watch_rss(base: int, budget: int, interval: float = 0.005) -> None:
    """Stop the whole child as soon as its RSS grows past the budget (runs in a thread)."""
    while True:
        grown = current_rss() - base
        if grown > budget:
            emit({"status": "over_budget", "peak_bytes": grown, "method": "rss watchdog"})
            os._exit(EXIT_OVER_BUDGET)
        time.sleep(interval)


def _limit_address_space(budget: int) -> None:
    """A hard stop behind the watchdog: the address space may grow by 2 x budget + 1 GB."""
    vm_kb = _proc_status_kb("VmSize")
    if vm_kb is None:
        return
    soft = vm_kb * 1024 + 2 * budget + int(1 * GB)
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


# --- the measured step (run in the child) ------------------------------------------------------
def measure_step(args: dict[str, Any]) -> dict[str, Any]:
    """Peak memory and time of one training step of ``args['design']`` in ``args['mode']``.

    A warm-up step of the same design with one layer per segment, at the same input size
    and in the same mode, runs first so that the allocator and the convolution back ends
    are initialised for every shape; then the peak counters are reset and the measured
    step runs. Peak = high-water mark during the step minus the memory in use before it
    (the network's weights and the input already exist then; the gradients do not).
    With ``budget_bytes`` the step is stopped as soon as it grows past the budget.
    """
    import torch

    from fhn_core import HyperbolicNetwork, NetworkDesign

    device, mode = args["device"], args["mode"]
    design = NetworkDesign.from_dict(args["design"])
    shape = tuple(args["shape"])
    budget = args.get("budget_bytes")
    gpu = device.startswith("cuda")
    torch.manual_seed(0)
    x, labels = make_batch(shape, device)

    warm = HyperbolicNetwork(warmup_design(design), gradient_mode=mode).to(device)
    train_step(warm, x, labels)
    del warm
    gc.collect()
    net = HyperbolicNetwork(design, gradient_mode=mode).to(device)
    param_bytes = sum(p.numel() * p.element_size() for p in net.parameters())
    gc.collect()

    if gpu:
        synchronize(device)
        if budget is not None:
            total = torch.cuda.get_device_properties(device).total_memory
            torch.cuda.set_per_process_memory_fraction(min(1.0, budget / total), device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        method, peak_reset = "torch.cuda.max_memory_allocated", True
    else:
        peak_reset = reset_peak_rss()
        base = current_rss() if peak_reset else peak_rss()
        method = "ru_maxrss growth" + ("" if peak_reset else " (high-water mark not reset)")
        if budget is not None:
            _limit_address_space(budget)
            threading.Thread(target=_watch_rss, args=(base, budget), daemon=True).start()

    start = time.perf_counter()
    try:
        train_step(net, x, labels)
        synchronize(device)
    except (torch.OutOfMemoryError, MemoryError) as err:
        return {"status": "over_budget", "method": method, "error": str(err)[:200]}
    except RuntimeError as err:
        if "alloc" not in str(err).lower() and "memory" not in str(err).lower():
            raise
        return {"status": "over_budget", "method": method, "error": str(err)[:200]}
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated(device) if gpu else peak_rss()
    growth = peak - base
    status = "ok" if budget is None or growth <= budget else "over_budget"
    return {
        "status": status,
        "peak_bytes": growth,
        "step_s": seconds,
        "param_bytes": param_bytes,
        "method": method,
        "peak_reset": peak_reset,
    }


# --- the subprocess runner -----------------------------------------------------------------
def emit(payload: dict[str, Any]) -> None:
    """The child's answer: one line on stdout that the parent looks for."""
    sys.stdout.write(RESULT_PREFIX + json.dumps(payload) + "\n")
    sys.stdout.flush()


def _resolve(target: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    module_name, func_name = target.split(":")
    module = __import__(module_name, fromlist=[func_name])
    return getattr(module, func_name)


def child_main() -> int:
    """Entry point of a child: read {target, args, threads} as JSON on stdin, emit a result."""
    request = json.loads(sys.stdin.read())
    import torch

    torch.set_num_threads(int(request["threads"]))
    try:
        result = _resolve(request["target"])(request["args"])
    except Exception as err:  # the parent reports it; a benchmark run should go on
        emit({"status": "error", "error": f"{type(err).__name__}: {err}"[:500]})
        return 1
    emit(result)
    return 0


def run_child(
    target: str,
    args: dict[str, Any],
    opts: BenchOptions,
    *,
    tune_malloc: bool = False,
    timeout_s: float | None = None,
) -> dict[str, Any]:
    """Run ``target`` ("module:function") on ``args`` in a fresh Python process.

    ``tune_malloc`` fixes glibc's mmap threshold in the child (memory probes only: it
    makes every large allocation a fresh mmap, which costs page faults, so timing runs
    keep the default allocator a user would have).
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    # One OpenMP team of `threads`, so a child does not oversubscribe the machine.
    env["OMP_NUM_THREADS"] = str(opts.threads)
    if tune_malloc and not opts.on_gpu:
        env.update(MALLOC_ENV)
    request = json.dumps({"target": target, "args": args, "threads": opts.threads})
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.harness", "--child"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, so a timeout kills all of it
    )
    try:
        out, err = proc.communicate(request, timeout=timeout_s or opts.timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return {"status": "timeout", "error": f"killed after {timeout_s or opts.timeout_s:.0f} s"}
    for line in reversed(out.splitlines()):
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX):])
    if proc.returncode in (-signal.SIGKILL, 137):  # the kernel's OOM killer
        return {"status": "over_budget", "error": "killed (SIGKILL), probably out of memory"}
    return {"status": "error", "error": f"exit {proc.returncode}: {err.strip()[-500:]}"}


def probe_memory(
    design: Any,
    shape: Sequence[int],
    mode: str,
    opts: BenchOptions,
    budget_bytes: int | None = None,
) -> dict[str, Any]:
    """Peak memory of one training step in a fresh child (see :func:`measure_step`)."""
    args = {
        "design": design.to_dict(),
        "shape": list(shape),
        "mode": mode,
        "device": opts.device,
        "budget_bytes": budget_bytes,
    }
    return run_child("benchmarks.harness:measure_step", args, opts, tune_malloc=True)


def memory_row(result: dict[str, Any], shape: Sequence[int]) -> dict[str, Any]:
    """The common columns of a memory measurement: peak MB and peak in state tensors."""
    ok = result.get("status") == "ok"
    peak = result.get("peak_bytes") if ok else None
    return {
        "peak_mb": None if peak is None else peak / MB,
        "peak_states": None if peak is None else peak / state_bytes(shape),
        "step_s": result.get("step_s") if ok else None,
        "status": result.get("status", "error"),
    }


def describe_failure(label: str, result: dict[str, Any]) -> str | None:
    """A note line for a child that did not finish normally, else None."""
    if result.get("status") in ("ok", "over_budget"):
        return None
    return f"{label}: {result.get('status')} - {result.get('error', '')}"


def timed(fn: Callable[[], BenchResult]) -> BenchResult:
    """Run a benchmark body and record its wall time in the result."""
    start = time.perf_counter()
    result = fn()
    result.seconds = time.perf_counter() - start
    return result


def main_for(
    run: Callable[[BenchOptions], BenchResult], description: str, argv: list[str] | None
) -> int:
    """The `python -m benchmarks.<name>` entry point shared by every benchmark module."""
    parser = add_common_args(argparse.ArgumentParser(description=description))
    opts = options_from_args(parser.parse_args(argv))
    print(machine_description(opts))
    report(run(opts), opts)
    return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--child"]:
        raise SystemExit(child_main())
    raise SystemExit("benchmarks.harness is a library; run python -m benchmarks.run_all")
