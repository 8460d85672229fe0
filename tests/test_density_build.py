"""build_state_weights: dataset + configs -> the engine's state_weights callable and diagnostics."""

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from scipy.stats import spearmanr

from sdw.config import config_dir
from sdw.density import (DensityError, StateWeights, build_state_weights, density_states, make_estimator,
                         make_weighting)
from sdw.density.diagnostics import effective_sample_fraction, weight_diagnostics
from sdw.density.registry import group_names
from sdw.testing.densities import GaussianMixture, dataset_of_states


@pytest.fixture(scope="module")
def mixture_dataset():
    gm = GaussianMixture.random(2, 5, seed=1)
    raw = gm.sample(3000, seed=2) * 3.0 + 7.0  # raw scale: the estimators see normalised states
    return gm, dataset_of_states(raw, episode_length=500)


def test_every_density_config_builds():
    names = group_names("density")
    assert set(names) == {"kde", "knn", "flow", "none"}
    for name in names:
        assert make_estimator(name).name == name
    with pytest.raises(DensityError, match="no density config 'kdee'.*kde"):
        make_estimator("kdee")


@pytest.mark.parametrize("group", ["density", "weighting"])
def test_configs_compose_with_hydra_and_build_through_the_registry(group):
    """(That every field is documented is checked for every group in tests/test_configs.py.)"""
    for name in group_names(group):
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            cfg = compose(overrides=[f"+{group}={name}"])
        built = (make_estimator if group == "density" else make_weighting)(cfg[group])
        assert built.name == name
        lines = (config_dir() / group / f"{name}.yaml").read_text().splitlines()
        assert lines[0].startswith("# "), f"{group}/{name}.yaml: no description line"


def test_density_states_are_the_normalised_qlearning_view(mixture_dataset):
    _, dataset = mixture_dataset
    states = density_states(dataset)
    view = dataset.qlearning_view()
    assert len(states) == len(view) == 3000 - 6
    np.testing.assert_allclose(states, dataset.state_normaliser()(view.observations))
    assert np.abs(states.mean(0)).max() < 1e-4 and np.abs(states.std(0) - 1).max() < 1e-2


def test_knn_self_normalised_end_to_end(mixture_dataset, tmp_path):
    gm, dataset = mixture_dataset
    view = dataset.qlearning_view()
    truth = gm.log_density((view.observations - 7.0) / 3.0)
    q_values = -truth  # a Q* that grows with rarity
    weights, diag = build_state_weights(dataset, "knn", "self-normalised", tmp_path / "cache",
                                        q_values=q_values, histogram_path=tmp_path / "w.png")
    assert isinstance(weights, StateWeights) and weights.compose == "multiply" and len(weights) == len(view)
    assert weights.weights.mean() == pytest.approx(1.0)
    assert spearmanr(np.log(weights.weights), -truth).statistic >= 0.9
    idx = torch.tensor([0, 5, 17, 2000])
    np.testing.assert_allclose(weights(idx).numpy(), weights.weights[idx.numpy()], rtol=1e-6)
    assert diag.estimator == "knn" and diag.weighting == "self-normalised" and diag.n_states == len(view)
    assert diag.weight_min <= diag.weight_median <= diag.weight_max
    assert 0 < diag.ess_fraction < 1
    assert diag.q_spearman >= 0.9
    assert (tmp_path / "w.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert diag.to_dict()["density/ess_fraction"] == diag.ess_fraction
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1


def test_none_weighting_fits_nothing_and_returns_ones(mixture_dataset, tmp_path):
    _, dataset = mixture_dataset
    broken = {"_target_": "sdw.density.kde.KDEDensity", "bandwidth": "not-a-rule"}  # never built
    weights, diag = build_state_weights(dataset, broken, "none", tmp_path / "cache")
    assert torch.equal(weights(torch.arange(len(weights))), torch.ones(len(weights)))
    assert diag.estimator is None and diag.ess_fraction == pytest.approx(1.0)
    assert diag.q_spearman is None and not (tmp_path / "cache").exists()


def test_none_density_gives_equal_weights(mixture_dataset, tmp_path):
    _, dataset = mixture_dataset
    weights, _ = build_state_weights(dataset, "none", "softmax", tmp_path / "cache")
    w = weights(torch.arange(100))
    torch.testing.assert_close(w, torch.ones(100))
    assert not (tmp_path / "cache").exists()  # nothing worth caching


def test_diagnostics_values():
    lw = np.log(np.array([1.0, 1.0, 2.0, 4.0]))
    lw -= np.log(np.exp(lw).mean())
    w = np.exp(lw)
    diag = weight_diagnostics(lw, "x", q_values=np.array([3.0, 1.0]), q_indices=np.array([3, 0]))
    assert diag.weight_max == pytest.approx(w.max()) and diag.weight_median == pytest.approx(np.median(w))
    assert diag.ess_fraction == pytest.approx(w.sum() ** 2 / (4 * (w**2).sum()))
    assert effective_sample_fraction(np.zeros(7)) == pytest.approx(1.0)
    assert diag.q_spearman == pytest.approx(1.0)
    with pytest.raises(DensityError, match="2 Q\\* values for 4 states"):
        weight_diagnostics(lw, "x", q_values=np.array([3.0, 1.0]))


@pytest.mark.slow
@pytest.mark.parametrize("density", ["knn", "flow"])
def test_large_17d_defaults_rank_the_true_density(density, tmp_path, request):
    """The default configs on 120k x 17 states (faiss IVF path, flow on a subsample)."""
    gm = GaussianMixture.random(8, 17, seed=0)
    raw = gm.sample(120_000, seed=1)
    dataset = dataset_of_states(raw)
    truth = gm.log_density(dataset.qlearning_view().observations.astype(np.float64))
    weights, _ = build_state_weights(dataset, density, "self-normalised", tmp_path / "cache")
    assert spearmanr(weights.log_weights, -truth).statistic >= 0.9
    assert weights.weights.mean() == pytest.approx(1.0) and np.isfinite(weights.weights).all()
