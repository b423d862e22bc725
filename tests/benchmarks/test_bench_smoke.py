"""Smoke tests of the benchmark harness at toy sizes (the benchmarks themselves run by hand)."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import pytest

# benchmarks/ is not an installed package: import it from the repository root.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.harness import (  # noqa: E402
    Column,
    Target,
    format_table,
    make_batch,
    u_design,
    warmup_design,
    write_csv,
)
from benchmarks.largest_input import bytes_per_voxel, search_largest  # noqa: E402


def test_u_design_spreads_depth_and_puts_the_remainder_at_the_coarsest_level():
    design = u_design(8, 3, 32, 8)
    assert [s.level for s in design.segments] == [0, 1, 2, 3, 2, 1, 0]
    assert [s.layers for s in design.segments] == [4, 4, 4, 8, 4, 4, 4]
    assert design.n_layers == 32


def test_u_design_without_blr_uses_the_channel_count_as_rank():
    design = u_design(2, 2, 10, None)
    assert [s.rank for s in design.segments] == [2, 16, 128, 16, 2]


def test_warmup_design_keeps_levels_and_ranks_with_one_layer_each():
    design = warmup_design(u_design(8, 3, 32, 8))
    assert [s.layers for s in design.segments] == [1] * 7
    assert [s.level for s in design.segments] == [0, 1, 2, 3, 2, 1, 0]


def test_make_batch_labels_are_sparse_and_two_classes():
    x, labels = make_batch((1, 2, 16, 16, 16), "cpu")
    assert tuple(x.shape) == (1, 2, 16, 16, 16)
    labelled = labels[labels >= 0]
    assert 0 < labelled.numel() < labels.numel() // 10
    assert set(labelled.unique().tolist()) == {0, 1}


def test_search_finds_the_largest_fitting_edge_by_bisection():
    # A fake probe whose peak is a + b E^3: edges up to 88 fit a budget of 100 units.
    def peak(edge: int) -> float:
        return 10 + 90 * (edge / 88) ** 3

    calls: list[int] = []

    def probe(edge: int) -> tuple[bool, float | None]:
        calls.append(edge)
        p = peak(edge)
        return (True, p) if p <= 100 else (False, None)

    best, fail, history = search_largest(probe, 100, start=16, unit=8)
    assert (best, fail) == (88, 96)
    assert len(calls) == len(set(calls)) == len(history) <= 10
    assert all(e % 8 == 0 for e in calls)


def test_search_reports_zero_when_nothing_fits():
    best, fail, _ = search_largest(lambda e: (False, None), 100, start=32, unit=8)
    assert (best, fail) == (0, 8)


def test_targets_compare_in_the_right_direction():
    assert Target("a", 1.1, "<=", 1.15).passed is True
    assert Target("b", 3.9, ">=", 4.0).passed is False
    assert Target("c", None, "<=", 1.0).passed is None


def test_table_and_csv_hold_the_rows(tmp_path):
    columns = [Column("mode", "mode"), Column("peak_mb", "peak MB", ".1f")]
    rows = [{"mode": "invertible", "peak_mb": 12.345}, {"mode": "autograd", "peak_mb": None}]
    table = format_table(columns, rows)
    assert "12.3" in table and "invertible" in table and " - |" in table
    path = write_csv(tmp_path / "t.csv", columns, rows)
    with path.open() as fh:
        read = list(csv.reader(fh))
    assert read == [["mode", "peak_mb"], ["invertible", "12.345"], ["autograd", ""]]


def test_u_design_refuses_too_few_layers():
    with pytest.raises(ValueError):
        u_design(8, 3, 6, 8)  # three coarsenings need 7 segments


def test_bytes_per_voxel_is_the_slope_of_peak_against_edge_cubed():
    points = [(e, 1e6 + 40.0 * e**3) for e in (32, 40, 56)]
    assert bytes_per_voxel(points) == pytest.approx(40.0)
    assert bytes_per_voxel(points[:1]) is None
