import pytest

from fhn_core.design import NetworkDesign, Segment, seismic_table3
from fhn_core.errors import FhnError


def test_table3_design_shape():
    d = seismic_table3()
    assert d.n_layers == 30 and d.max_level == 3 and d.in_channels == 12
    assert {s.rank for s in d.segments} == {8, 16, 32}
    changes = [s.change for s in d.layer_specs()]
    assert changes.count(1) == 3 and changes.count(-1) == 3
    assert d.channels_at(3) == 12 * 8**3


def test_toml_round_trip(tmp_path):
    d = NetworkDesign(2, 3, [Segment(0, 2, 4), Segment(1, 3, 8)], kernel_size=5, h=0.1)
    path = d.save(tmp_path / "design.toml")
    text = path.read_text()
    assert "segments = [" in text and "in_channels = 2" in text
    assert NetworkDesign.load(path) == d
    assert d.output_shape((1, 2, 8, 8, 8)) == (1, 16, 4, 4, 4)
    assert "zero_channels" not in text  # written only when used
    zeros = NetworkDesign(5, 2, [Segment(0, 2, 4)], zero_channels=3)
    assert "zero_channels = 3" in zeros.to_toml()
    assert NetworkDesign.load(zeros.save(tmp_path / "zeros.toml")) == zeros


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(segments=[(0, 2, 4), (2, 2, 4)]), "jumps from level 0 to 2"),
        (dict(segments=[(0, 2, 0)]), "rank must be at least 1"),
        (dict(segments=[(-1, 2, 4)]), "level must be 0 or more"),
        (dict(segments=[(0, 0, 4)]), "at least 1 layer"),
        (dict(segments=[]), "at least one segment"),
        (dict(segments=[(0, 2, 4)], kernel_size=4), "kernel_size must be odd"),
        (dict(segments=[(0, 2, 4)], spatial_dims=1), "spatial_dims must be 2 or 3"),
        (dict(segments=[(0, 2, 4)], h=0.0), "h must be positive"),
        (dict(segments=[(0, 2, 4)], zero_channels=1), "leave room for the data"),
        (dict(segments=[(0, 2, 4)], zero_channels=-1), "zero_channels must be at least 0"),
    ],
)
def test_invalid_designs_are_refused(kwargs, message):
    args = dict(in_channels=1, spatial_dims=2) | kwargs
    with pytest.raises(FhnError, match=message):
        NetworkDesign(**args)


def test_bad_toml_names_the_problem(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("in_channels = 1\nsegments = [[0, 2]]\n")
    with pytest.raises(FhnError, match="spatial_dims"):
        NetworkDesign.load(bad)
    bad.write_text("in_channels = 1\nspatial_dims = 2\nsegments = [[0, 'a', 3]]\n")
    with pytest.raises(FhnError, match=r"\[level, layers, rank\]"):
        NetworkDesign.load(bad)
    with pytest.raises(FhnError, match="not found"):
        NetworkDesign.load(tmp_path / "missing.toml")
