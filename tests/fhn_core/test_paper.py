"""The presets are the paper's designs: Table 1 recomputed from them, figure by figure."""

import pytest

from app.cli import main
from fhn_core.memory import GB, estimate_memory
from fhn_core.paper import EXAMPLES, agreement, table1_comparison


@pytest.mark.parametrize("preset", sorted(EXAMPLES))
def test_each_preset_reproduces_its_table1_row(preset):
    rows = table1_comparison(EXAMPLES[preset])
    assert len(rows) == 4
    for row in rows:
        assert row.agrees, f"{preset} {row.quantity}: {row.estimate_gb:.4f} vs {row.paper}"
        if len(row.paper.replace(".", "").lstrip("0")) >= 3:
            assert row.relative_error <= 0.01, (preset, row)


def test_the_paper_designs_have_the_layer_counts_table1_implies():
    seismic = EXAMPLES["seismic-3d"].design()
    per_level = {}
    for spec in seismic.layer_specs():
        per_level[spec.level] = per_level.get(spec.level, 0) + 1
    assert seismic.n_layers == 30 and per_level == {0: 8, 1: 6, 2: 6, 3: 10}
    aquifer = EXAMPLES["multi-raster-map"].design()
    coarsest = sum(s.layers for s in aquifer.segments if s.level == aquifer.max_level)
    assert aquifer.n_layers == 38 and coarsest == 17 and aquifer.channels_at(3) == 7168
    hyper = EXAMPLES["hyperspectral-timelapse"].design()
    assert hyper.n_layers == 18 and hyper.out_level == 1  # output on a 2x coarser grid


def test_agreement_fails_a_wrong_figure():
    assert not agreement("x", 2.30, "2.19").agrees
    assert not agreement("x", 0.13, "0.12").agrees
    assert agreement("x", 0.118, "0.12").rule == "same at printed precision"


def test_non_invertible_full_kernels_row_comes_first():
    example = EXAMPLES["seismic-3d"]
    est = estimate_memory(example.design(), example.input_shape)
    first = est.rows()[0]
    assert first[0] == "non-invertible, no BLR"
    assert first[3] == pytest.approx((est.states_plain + est.kernels_full) / GB)
    assert first[3] == pytest.approx(21.96 + 41.16, rel=0.01)


def test_fhn_estimate_prints_the_paper_rows(capsys):
    for preset, example in EXAMPLES.items():
        assert main(["estimate", preset, "--device", "cpu"]) == 0
        out = capsys.readouterr().out
        assert "DIFFERS" not in out
        for printed in example.table1:
            assert f" {printed} " in out
        assert "non-invertible, no BLR" in out


def test_fhn_estimate_needs_a_shape_for_other_designs(capsys, tmp_path):
    design = EXAMPLES["seismic-3d"].design()
    path = design.save(tmp_path / "d.toml")
    assert main(["estimate", str(path)]) == 2
    assert "--input-shape" in capsys.readouterr().err
