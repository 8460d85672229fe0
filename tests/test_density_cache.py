"""Log-density cache: hit, miss on data or settings change, corrupt files rebuilt, atomic writes."""

import numpy as np
import pytest

from sdw.density import KNNDensity, state_log_density
from sdw.density.cache import LogDensityCache, cache_key
from sdw.testing.densities import dataset_of_states


class CountingKNN(KNNDensity):
    """kNN that counts its fits, to tell a cache hit from a recomputation."""

    fits = 0

    def fit(self, states):
        CountingKNN.fits += 1
        return super().fit(states)


@pytest.fixture
def dataset():
    return dataset_of_states(np.random.default_rng(0).standard_normal((500, 4)), episode_length=100)


@pytest.fixture(autouse=True)
def reset_count():
    CountingKNN.fits = 0


@pytest.fixture
def cache_dir(tmp_path):
    return tmp_path / "density-cache"


def cache_files(directory):
    """The cache's entries, without the `.locks` folder that guards their making."""
    return sorted(p.name for p in directory.iterdir() if p.name != ".locks")


def test_hit_after_miss(dataset, cache_dir):
    first = state_log_density(dataset, CountingKNN(k=5), cache_dir)
    assert CountingKNN.fits == 1 and len(first) == len(dataset.qlearning_view()) == 495
    second = state_log_density(dataset, CountingKNN(k=5, query_chunk=7), cache_dir)  # chunking is not a setting
    assert CountingKNN.fits == 1
    np.testing.assert_array_equal(first, second)
    assert len(cache_files(cache_dir)) == 1 and not any(n.startswith(".tmp") for n in cache_files(cache_dir))


def test_changed_settings_or_data_recompute(dataset, cache_dir):
    state_log_density(dataset, CountingKNN(k=5), cache_dir)
    state_log_density(dataset, CountingKNN(k=6), cache_dir)
    assert CountingKNN.fits == 2
    other = dataset_of_states(dataset.observations + 1e-3, episode_length=100)
    assert other.content_hash != dataset.content_hash
    state_log_density(other, CountingKNN(k=5), cache_dir)
    assert CountingKNN.fits == 3
    assert len(cache_files(cache_dir)) == 3
    state_log_density(dataset, CountingKNN(k=6), cache_dir)
    assert CountingKNN.fits == 3


@pytest.mark.parametrize("damage", ["garbage", "truncated", "wrong-key", "wrong-shape", "nan"])
def test_corrupt_cache_is_rebuilt_not_trusted(dataset, cache_dir, damage):
    good = state_log_density(dataset, CountingKNN(k=5), cache_dir)
    key = cache_key(dataset.content_hash, CountingKNN(k=5))
    cache = LogDensityCache(cache_dir)
    path = cache.path(key)
    if damage == "garbage":
        path.write_bytes(b"not an npz file")
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:100])
    elif damage == "wrong-key":
        cache.save(dict(key, dataset="0" * 16), good)
        cache.path(dict(key, dataset="0" * 16)).replace(path)
    elif damage == "wrong-shape":
        cache.save(key, good[:-1])
    else:
        cache.save(key, np.where(np.arange(len(good)) == 3, np.nan, good))
    with pytest.warns(UserWarning, match="failed to load .* rebuilding"):
        rebuilt = state_log_density(dataset, CountingKNN(k=5), cache_dir)
    assert CountingKNN.fits == 2
    np.testing.assert_array_equal(rebuilt, good)
    np.testing.assert_array_equal(cache.load(key, len(good)), good)  # the file was replaced by a good one


def test_failed_write_leaves_nothing(dataset, cache_dir, monkeypatch):
    def broken_savez(f, **arrays):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.warns(UserWarning, match="disk full.*returned but not cached"):
        values = state_log_density(dataset, CountingKNN(k=5), cache_dir)
    assert np.isfinite(values).all() and cache_files(cache_dir) == []


def test_no_cache_dir_means_no_files(dataset, cache_dir):
    state_log_density(dataset, CountingKNN(k=5), None)
    state_log_density(dataset, CountingKNN(k=5), None)
    assert CountingKNN.fits == 2 and not cache_dir.exists()


def test_unwritable_cache_is_reported_and_the_result_kept(dataset, tmp_path):
    (tmp_path / "file").write_text("not a directory")
    with pytest.warns(UserWarning) as caught:
        values = state_log_density(dataset, CountingKNN(k=5), tmp_path / "file" / "cache")
    (message,) = [str(w.message) for w in caught]
    assert "file is a file, not a directory" in message and "computed but not cached" in message
    np.testing.assert_array_equal(values, state_log_density(dataset, CountingKNN(k=5), None))


def test_unwritable_cache_warning_comes_before_the_fit(dataset, tmp_path, monkeypatch):
    (tmp_path / "file").write_text("not a directory")
    real_fit = CountingKNN.fit
    seen_at_fit = []

    def fit(self, states):
        seen_at_fit.append(len(caught))
        return real_fit(self, states)

    monkeypatch.setattr(CountingKNN, "fit", fit)
    with pytest.warns(UserWarning, match="cannot be written") as caught:
        state_log_density(dataset, CountingKNN(k=5), tmp_path / "file" / "cache")
    assert seen_at_fit == [1]

