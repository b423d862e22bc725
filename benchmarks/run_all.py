"""Run every benchmark (or some) and print their tables, CSVs and the targets summary.

    python -m benchmarks.run_all                 # default sizes (make bench)
    python -m benchmarks.run_all --quick         # toy sizes, a minute or two
    python -m benchmarks.run_all --only step_time --only memory_depth --device cuda

Each benchmark writes ``benchmarks/results/<name>.csv``; this script also writes
``targets.csv`` and ``latest.md`` (all tables as Markdown, for benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime

from . import (
    estimates,
    largest_input,
    memory_depth,
    memory_levels,
    prediction_throughput,
    step_time,
)
from .harness import (
    BenchOptions,
    BenchResult,
    Column,
    add_common_args,
    format_table,
    machine_description,
    options_from_args,
    report,
    write_csv,
)

# Prediction last: it depends on the prediction engine, the others only on the network.
BENCHMARKS: dict[str, Callable[[BenchOptions], BenchResult]] = {
    estimates.NAME: estimates.run,
    memory_depth.NAME: memory_depth.run,
    memory_levels.NAME: memory_levels.run,
    step_time.NAME: step_time.run,
    largest_input.NAME: largest_input.run,
    prediction_throughput.NAME: prediction_throughput.run,
}
TARGET_COLUMNS = [
    Column("benchmark", "benchmark"),
    Column("target", "target"),
    Column("value", "measured", ".3g"),
    Column("limit", "target"),
    Column("verdict", "verdict"),
]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = add_common_args(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    parser.add_argument(
        "--only",
        action="append",
        choices=sorted(BENCHMARKS),
        help="run only this benchmark (repeat for several)",
    )
    return parser.parse_args(argv)


def markdown(header: str, results: list[BenchResult], target_rows: list[dict]) -> str:
    """All tables as one Markdown document."""
    parts = [header]
    for r in results:
        parts.append(f"### {r.title}\n\n{format_table(r.columns, r.rows)}\n")
        parts += [f"- {n}" for n in r.notes]
        parts.append(f"- wall time {r.seconds:.0f} s\n")
    if target_rows:
        parts.append(f"### Targets\n\n{format_table(TARGET_COLUMNS, target_rows)}\n")
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    ns = parse_args(argv)
    opts = options_from_args(ns)
    names = ns.only or list(BENCHMARKS)
    start = time.perf_counter()
    machine = machine_description(opts)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"fhn benchmarks, {stamp}{' (--quick)' if opts.quick else ''}\n{machine}")
    results: list[BenchResult] = []
    for name in names:
        result = BENCHMARKS[name](opts)
        report(result, opts)
        results.append(result)
    target_rows = [
        {"benchmark": r.name, "target": t.name, "value": t.value, "limit": f"{t.op} {t.limit:g}",
         "verdict": {True: "pass", False: "FAIL", None: "not measured"}[t.passed]}
        for r in results for t in r.targets
    ]
    total = time.perf_counter() - start
    print("\n## Targets\n")
    print(format_table(TARGET_COLUMNS, target_rows) if target_rows else "(none in this run)")
    print(f"\nall benchmarks: {total / 60:.1f} min")
    suffix = "-quick" if opts.quick else ""
    write_csv(opts.results_dir / f"targets{suffix}.csv", TARGET_COLUMNS, target_rows)
    header = (f"Run {stamp}{' (--quick)' if opts.quick else ''}, {total / 60:.1f} min in all.\n"
              f"Machine: {machine}\n")
    md = opts.results_dir / f"latest{suffix}.md"
    md.write_text(markdown(header, results, target_rows), encoding="utf-8")
    print(f"tables as Markdown: {md}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
