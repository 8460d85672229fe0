"""Synthetic set artefact (format, round trip) and initialisations."""

import json

import numpy as np
import pytest
import torch

from sdw.data.dataset import StateNormaliser
from sdw.distill.synthetic import SyntheticConfig, SyntheticSet, initial_pairs


def _set(seed=0) -> SyntheticSet:
    rng = np.random.default_rng(seed)
    return SyntheticSet(
        states=rng.standard_normal((256, 17)).astype(np.float32) * 1e3,
        actions=rng.standard_normal((256, 6)).astype(np.float32),
        normaliser=StateNormaliser(rng.standard_normal(17).astype(np.float32),
                                   rng.uniform(0.1, 3, 17).astype(np.float32)),
        env_id="HalfCheetah-v4", dataset_name="halfcheetah-medium-v2",
        dataset_hash="0123456789abcdef", method="avpbc",
        config={"objective": {"name": "avpbc", "beta": 0.02}, "seed": 3, "lr": 0.1 + 0.2},
        info={"outer_steps": 10, "outer_loss": 1.2345678901234567})


def test_saved_synthetic_set_reloads_bit_identically(tmp_path):
    original = _set()
    path = original.save(tmp_path / "sub" / "set.npz")
    loaded = SyntheticSet.load(path)
    for name in ("states", "actions"):
        a, b = getattr(original, name), getattr(loaded, name)
        assert a.dtype == b.dtype == np.float32 and a.tobytes() == b.tobytes()
    assert original.normaliser.mean.tobytes() == loaded.normaliser.mean.tobytes()
    assert original.normaliser.std.tobytes() == loaded.normaliser.std.tobytes()
    assert loaded.metadata() == original.metadata()
    again = loaded.save(tmp_path / "again.npz")
    with np.load(path) as f, np.load(again) as g:
        assert all(f[k].tobytes() == g[k].tobytes() for k in f.files)


def test_artefact_is_readable_with_numpy_alone(tmp_path):
    original = _set()
    path = original.save(tmp_path / "set.npz")
    with np.load(path, allow_pickle=False) as f:
        meta = json.loads(str(f["metadata"]))
        raw = f["states"] * f["state_std"] + f["state_mean"]
    assert meta["format"] == "sdw-synthetic-set" and meta["version"] == 1
    assert meta["dataset"] == {"name": "halfcheetah-medium-v2", "hash": "0123456789abcdef"}
    assert meta["env_id"] == "HalfCheetah-v4" and meta["method"] == "avpbc"
    np.testing.assert_array_equal(raw, original.raw_states())
    assert not list(tmp_path.glob("*.tmp"))


def test_loading_a_foreign_file_names_it(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, x=np.zeros(3))
    with pytest.raises(ValueError, match="other.npz is not a synthetic set"):
        SyntheticSet.load(path)
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        SyntheticSet.load(tmp_path / "missing.npz")


def _real(n=2000):
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, 5, generator=g), torch.rand(n, 2, generator=g) * 2 - 1


def _rows_of(rows: torch.Tensor, table: torch.Tensor) -> bool:
    return bool((rows[:, None, :] == table[None]).all(-1).any(1).all())


def test_real_init_picks_distinct_real_pairs():
    states, actions = _real()
    s, a = initial_pairs(SyntheticConfig(size=64), states, actions,
                         torch.Generator().manual_seed(1))
    pairs = torch.cat([states, actions], 1)
    assert _rows_of(torch.cat([s, a], 1), pairs)
    assert len(torch.unique(s, dim=0)) == 64


def test_kmeanspp_init_picks_real_pairs_spread_over_the_states():
    states, actions = _real()
    cfg = SyntheticConfig(size=32, init="kmeans++", kmeans_subsample=1000)
    s, a = initial_pairs(cfg, states, actions, torch.Generator().manual_seed(1))
    assert _rows_of(torch.cat([s, a], 1), torch.cat([states, actions], 1))
    random_s, _ = initial_pairs(SyntheticConfig(size=32), states, actions,
                                torch.Generator().manual_seed(1))

    def min_gap(x):
        d = torch.cdist(x, x) + torch.eye(len(x)) * 1e9
        return d.min(1).values.mean()

    assert min_gap(s) > min_gap(random_s)


def test_random_init_is_noise_in_normalised_space():
    states, actions = _real()
    s, a = initial_pairs(SyntheticConfig(size=4000, init="random"), states, actions,
                         torch.Generator().manual_seed(1), max_action=2.0)
    assert s.shape == (4000, 5) and abs(float(s.std()) - 1) < 0.05
    assert float(a.min()) >= -2 and float(a.max()) <= 2 and float(a.abs().max()) > 1.9


def test_bad_synthetic_configs_fail():
    with pytest.raises(ValueError, match="unknown synthetic init"):
        SyntheticConfig(init="xavier")
    with pytest.raises(ValueError, match="exceeds the 2000 real pairs"):
        initial_pairs(SyntheticConfig(size=3000), *_real(), torch.Generator())
