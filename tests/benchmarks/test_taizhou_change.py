"""Smoke test of the Taizhou benchmark's split (the benchmark itself runs by hand)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

# benchmarks/ is not an installed package: import it from the repository root.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.taizhou_change import (  # noqa: E402
    DEFAULT_METHOD,
    DESIGN,
    METHODS,
    POINTS_PER_CLASS,
    cached_logits_path,
    change_magnitude,
    combine_logits,
    member_logits,
    method_spec,
    network,
    split,
    timelapse_volume,
    with_level0_layers,
)


def test_split_trains_on_the_west_and_evaluates_every_eastern_label():
    rng = np.random.default_rng(5)
    ref = rng.choice([-1, 0, 1], size=(60, 80)).astype(np.int64)
    train, test = split(ref, seed=3)
    assert (train[:, 40:] == -1).all() and (test[:, :40] == -1).all()
    for k in (0, 1):
        assert (train == k).sum() == POINTS_PER_CLASS
    known = train >= 0
    assert (train[known] == ref[known]).all()
    np.testing.assert_array_equal(test[:, 40:], ref[:, 40:])
    again, _ = split(ref, seed=3)
    np.testing.assert_array_equal(train, again)   # seeded: the same points every run


def test_every_network_method_returns_a_class_map_of_the_scene():
    rng = np.random.default_rng(0)
    features = rng.standard_normal((18, 16, 16)).astype(np.float32)
    train = np.full((16, 16), -1, np.int64)
    train[2, 3], train[12, 9] = 0, 1
    for method in METHODS:
        classes = network(features, train, seed=0, iterations=2, method=method)
        assert classes.shape == (16, 16) and set(np.unique(classes)) <= {0, 1}


def test_a_cached_member_equals_the_trained_one_and_is_not_trained_again(tmp_path):
    flat = np.random.default_rng(4).standard_normal((18, 16, 16)).astype(np.float32)
    train = np.full((16, 16), -1, np.int64)
    train[2, 3], train[12, 9] = 0, 1
    args = (flat, train, DESIGN, {}, 0, 2, False)
    fresh = member_logits(*args)
    cached = member_logits(*args, cache=tmp_path)
    torch.testing.assert_close(cached, fresh, rtol=0, atol=0)   # CPU training is deterministic
    [kept] = tmp_path.glob("*.npy")
    np.save(kept, np.full((2, 16, 16), 7.0, np.float32))       # a hit reads, never retrains
    assert (member_logits(*args, cache=tmp_path) == 7.0).all()
    other_seed = (flat, train, DESIGN, {}, 1, 2, False)
    member_logits(*other_seed, cache=tmp_path)
    assert len(list(tmp_path.glob("*.npy"))) == 2


def test_the_cache_key_changes_with_anything_that_changes_the_logits(tmp_path):
    from fhn_core.training import TrainConfig

    data = np.zeros((18, 4, 4), np.float32)
    train = np.full((4, 4), -1, np.int64)
    config = TrainConfig(iterations=3, seed=0)
    key = (tmp_path, data, train, DESIGN, {}, config, True)
    same = cached_logits_path(*key)
    assert cached_logits_path(*key) == same
    other_data = data.copy()
    other_data[0, 0, 0] = 1.0
    variants = [(tmp_path, other_data, train, DESIGN, {}, config, True),
                (tmp_path, data, train, with_level0_layers(DESIGN, 2, 2), {}, config, True),
                (tmp_path, data, train, DESIGN, {"slice_index": 1}, config, True),
                (tmp_path, data, train, DESIGN, {}, TrainConfig(iterations=3, seed=1), True),
                (tmp_path, data, train, DESIGN, {},
                 TrainConfig(iterations=3, seed=0, learning_rate=2e-3), True),
                (tmp_path, data, train, DESIGN, {}, config, False)]
    paths = {cached_logits_path(*variant) for variant in variants}
    assert same not in paths and len(paths) == len(variants)


def test_balanced_weights_the_two_layouts_equally_not_each_network():
    flat = [torch.full((2, 1, 1), v) for v in (1.0, 2.0, 6.0)]
    timelapse = [torch.full((2, 1, 1), 10.0)]
    plain = METHODS["zeros+cva+mixed+timelapse+tta"]
    balanced = METHODS["zeros+cva+mixed+balanced-timelapse+tta"]
    assert combine_logits(flat + timelapse, plain)[0, 0, 0] == 19.0
    assert combine_logits(flat + timelapse, balanced)[0, 0, 0] == (3.0 + 10.0) / 2
    leaning = balanced._replace(timelapse_weight=0.75)
    assert combine_logits(flat + timelapse, leaning)[0, 0, 0] == 0.25 * 3.0 + 0.75 * 10.0


def test_change_magnitude_is_the_norm_of_the_differences_only():
    features = np.zeros((18, 2, 3), np.float32)
    features[:12] = 7.0                       # the dates themselves must not count
    features[12, 0, 1], features[15, 0, 1] = 3.0, -4.0
    mag = change_magnitude(features)
    assert mag.shape == (1, 2, 3)
    assert mag[0, 0, 1] == 5.0 and np.count_nonzero(mag) == 1


def test_the_timelapse_volume_puts_dates_in_channels_and_bands_on_an_axis():
    rng = np.random.default_rng(2)
    scale = np.array([1, 10, 100, 1, 5, 50], np.float32)[:, None, None]
    t1 = rng.standard_normal((6, 5, 7)).astype(np.float32) * scale + 3
    t2 = t1 + rng.standard_normal((6, 5, 7)).astype(np.float32) * scale
    volume = timelapse_volume(np.concatenate([t1, t2, t2 - t1]))
    assert volume.shape == (4, 6, 5, 7)
    both = volume[:2]                           # each band standardised over both dates
    np.testing.assert_allclose(both.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(both.std(axis=(0, 2, 3)), 1, rtol=1e-4)
    np.testing.assert_allclose(volume[2], volume[1] - volume[0], atol=1e-6)
    magnitude = np.sqrt((volume[2] ** 2).sum(0))
    for band in range(6):                       # one magnitude per pixel, on every band
        np.testing.assert_allclose(volume[3, band], magnitude, rtol=1e-5)


def test_the_fine_member_only_lengthens_the_level0_end_segments():
    fine = with_level0_layers(DESIGN, 4, 8)
    assert (fine.segments[0].layers, fine.segments[-1].layers) == (4, 8)
    assert fine.segments[0].level == fine.segments[-1].level == 0
    assert fine.segments[1:-1] == DESIGN.segments[1:-1]
    assert fine.n_layers == DESIGN.n_layers + 10


def test_the_proxies_never_read_the_eastern_half_and_mirror_the_split():
    from benchmarks.taizhou_proxy import CROP, proxy_split

    rng = np.random.default_rng(1)
    ref = rng.choice([-1, 0, 1], size=(30, 2 * CROP)).astype(np.int64)
    features = rng.standard_normal((18, 30, 2 * CROP)).astype(np.float32)
    other_east = features.copy()
    other_east[..., CROP:] = np.nan
    other_ref = ref.copy()
    other_ref[:, CROP:] = 1 - np.abs(ref[:, CROP:])
    half = CROP // 2
    for proxy in ("first", "mirrored"):
        crop, train, test = proxy_split(features, ref, 2, proxy)
        again = proxy_split(other_east, other_ref, 2, proxy)
        for a, b in zip((crop, train, test), again, strict=True):
            np.testing.assert_array_equal(a, b)     # x >= CROP changes nothing
        assert crop.shape == (18, 30, CROP)
        assert (train[:, half:] == -1).all() and (test[:, :half] == -1).all()
        seen = ref[:, :CROP] if proxy == "first" else ref[:, CROP - 1::-1]
        np.testing.assert_array_equal(test[:, half:], seen[:, half:])
        np.testing.assert_array_equal(crop[0], features[0, :, :CROP] if proxy == "first"
                                      else features[0, :, CROP - 1::-1])


def test_method_spec_replaces_only_the_time_lapse_weight():
    default, label = method_spec(DEFAULT_METHOD)
    assert default is METHODS[DEFAULT_METHOD] and label == DEFAULT_METHOD
    leaning, label = method_spec(DEFAULT_METHOD, 0.625)
    assert leaning == default._replace(timelapse_weight=0.625)
    assert "0.625" in label


def test_every_slice_labels_each_band_and_averages_the_bands(monkeypatch):
    import benchmarks.taizhou_change as taizhou

    features = np.random.default_rng(0).normal(size=(18, 8, 12)).astype(np.float32)
    train = np.full((8, 12), -1)
    train[1, 2], train[6, 9] = 0, 1
    seen = []

    def fake_member(data, labels, design, embedding, *args):
        seen.append((labels, embedding))
        if labels.ndim == 3:  # only the first three bands vote "changed"; their mean 2.5
            votes = torch.tensor([5.0, 5, 5, 0, 0, 0])[:, None, None].expand(6, 8, 12)
            return torch.stack([votes, torch.full_like(votes, 2.4)])
        return torch.zeros(2, 8, 12)

    monkeypatch.setattr(taizhou, "member_logits", fake_member)
    spec = METHODS["zeros+cva+mixed+balanced-everyslice+tta"]
    classes = taizhou.network(features, train, 0, 1, spec)
    labels, embedding = seen[-1]
    assert labels.shape == (6, 8, 12) and embedding == {"fixed_axes": (0,)}
    assert all((labels[b] == train).all() for b in range(6))
    assert (classes == 0).all()  # 2.5 > 2.4 only once the six bands are averaged


def test_fhn_sample_points_draws_the_benchmarks_own_split():
    from app.regions import region_mask
    from io_adapters.reference_points import sample_per_class

    rng = np.random.default_rng(5)
    ref = rng.choice([-1, 0, 1], size=(60, 80)).astype(np.int64)
    for seed in (0, 3):
        train, _ = split(ref, seed)
        drawn = sample_per_class(ref, POINTS_PER_CLASS, seed, region_mask("x < 40", ref.shape))
        np.testing.assert_array_equal(drawn, train)


def test_the_product_run_is_a_plain_run_toml_with_the_chosen_settings(tmp_path):
    from benchmarks.taizhou_product import run_config
    from fhn_core.design import NetworkDesign
    from fhn_core.training import TrainConfig

    config = run_config(tmp_path, tmp_path / "points.csv", 3, 4)
    assert config["data"]["change_channels"] and config["labels"]["points"].endswith(".csv")
    settings = dict(config["training"])
    assert settings.pop("recipe") == "fixed"  # these settings as given, not chosen by auto
    training = TrainConfig.from_dict(settings)
    assert (training.ensemble, training.seed, training.weight_decay) == (3, 4, 0.03)
    design = NetworkDesign.from_dict(config["design"], source="test")
    assert design.in_channels == 18 + 1 + 2 and design.zero_channels == 2
