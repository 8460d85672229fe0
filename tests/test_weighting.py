"""Weighting schemes: finite weights with the promised mean and bounds, even for densities spanning 200 nats."""

import math

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from sdw.config import config_dir
from sdw.density import DensityError, StateWeights, WeightingScheme, make_weighting
from sdw.density.registry import group_names

N = 10_000


@pytest.fixture(scope="module")
def log_density():
    """Log densities spanning 200 nats (-150 .. 50), shuffled, with a heavy tail of rare states."""
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.uniform(-150, 50, N - 2), [-150.0, 50.0]])
    return rng.permutation(values)


def weights_of(scheme: WeightingScheme, log_density: np.ndarray) -> StateWeights:
    return StateWeights(scheme.log_weights(log_density), scheme.per_batch, scheme.compose)


def test_every_config_builds():
    names = group_names("weighting")
    assert {"none", "inverse", "tempered", "self-normalised", "clipped", "softmax"} <= set(names)
    for name in names:
        scheme = make_weighting(name)
        assert scheme.name == name
        assert scheme.compose == "multiply"


@pytest.mark.parametrize("name", ["self-normalised", "tempered", "clipped"])
def test_dataset_normalised_schemes_have_mean_one(log_density, name):
    scheme = make_weighting(name)
    sw = weights_of(scheme, log_density)
    table = sw(torch.arange(N))
    assert table.dtype == torch.float32 and torch.isfinite(table).all()
    assert sw.weights.mean() == pytest.approx(1.0, rel=1e-12)
    assert table.double().mean().item() == pytest.approx(1.0, rel=1e-5)
    assert (table >= 0).all() and table.max() <= N
    # ratios are those of p^-alpha (where unclipped)
    i, j = np.argsort(log_density)[[N // 2, N // 2 + 1]]
    assert sw.log_weights[i] - sw.log_weights[j] == pytest.approx(-scheme.alpha * (log_density[i] - log_density[j]))


def test_tempering_flattens(log_density):
    full = weights_of(make_weighting("self-normalised"), log_density)
    tempered = weights_of(make_weighting("tempered"), log_density)
    spread = lambda sw: np.ptp(sw.log_weights)  # noqa: E731
    assert spread(tempered) == pytest.approx(0.5 * spread(full))


def test_quantile_clip_bound(log_density):
    scheme = make_weighting("clipped")
    lw = scheme.log_weights(log_density)
    raw = -log_density
    cap = np.quantile(raw, 0.99, method="inverted_cdf")
    clipped = raw > cap
    assert 0.005 < clipped.mean() <= 0.01
    assert np.allclose(lw[clipped], lw.max())  # every clipped state sits at the cap
    assert np.sum(lw == lw.max()) >= clipped.sum()
    assert np.exp(lw).mean() == pytest.approx(1.0)


def test_max_ratio_clip_bound(log_density):
    scheme = WeightingScheme(name="r", alpha=1.0, clip_max_ratio=100.0)
    w = np.exp(scheme.log_weights(log_density))
    median = np.quantile(w, 0.5, method="inverted_cdf")
    assert w.max() <= 100.0 * median * (1 + 1e-9)
    assert w.max() >= 100.0 * median * (1 - 1e-9)  # the bound is reached (200 nats need clipping)
    assert w.mean() == pytest.approx(1.0)


def test_softmax_batches_have_mean_one(log_density):
    sw = weights_of(make_weighting("softmax"), log_density)
    assert sw.per_batch
    gen = torch.Generator().manual_seed(0)
    for _ in range(20):
        idx = torch.randint(0, N, (256,), generator=gen)
        w = sw(idx)
        assert torch.isfinite(w).all() and (w >= 0).all() and w.max() <= 256
        assert w.double().mean().item() == pytest.approx(1.0, rel=1e-5)
        lw = -log_density[idx.numpy()]
        expected = 256 * np.exp(lw - lw.max()) / np.exp(lw - lw.max()).sum()
        np.testing.assert_allclose(w.numpy(), expected, rtol=1e-4, atol=1e-30)


def test_softmax_alpha_is_the_inverse_temperature(log_density):
    """conf/weighting/softmax.yaml with alpha = 1 / T: w_i = B softmax_i(-log p_i / T) within a batch."""
    cfg = OmegaConf.merge(OmegaConf.load(config_dir() / "weighting" / "softmax.yaml"), {"alpha": 0.25})
    sw = weights_of(make_weighting(cfg), log_density)
    idx = torch.arange(256)
    lw = -0.25 * log_density[:256]
    expected = 256 * np.exp(lw - lw.max()) / np.exp(lw - lw.max()).sum()
    np.testing.assert_allclose(sw(idx).numpy(), expected, rtol=1e-4, atol=1e-30)


def test_none_is_exactly_one(log_density):
    sw = weights_of(make_weighting("none"), log_density)
    assert not make_weighting("none").uses_density
    assert torch.equal(sw(torch.arange(N)), torch.ones(N))


def test_literal_inverse_is_exact_or_refuses_overflow(log_density):
    scheme = make_weighting("inverse")
    small = np.linspace(-20.0, 5.0, 100)
    np.testing.assert_allclose(np.exp(scheme.log_weights(small)), 1.0 / np.exp(small), rtol=1e-12)
    with pytest.raises(DensityError, match="beyond float32.*self-normalised"):
        scheme.log_weights(log_density)


def test_bad_settings_and_input_are_named():
    with pytest.raises(DensityError, match="normalise='mean'"):
        WeightingScheme(normalise="mean")
    with pytest.raises(DensityError, match="compose='add'"):
        WeightingScheme(compose="add")
    with pytest.raises(DensityError, match="clip_quantile"):
        WeightingScheme(clip_quantile=1.5)
    with pytest.raises(DensityError, match="not finite .* state 2"):
        WeightingScheme(alpha=1.0).log_weights(np.array([0.0, 1.0, -math.inf]))
    with pytest.raises(DensityError, match="no weighting config 'tempred'.*tempered"):
        make_weighting("tempred")


@pytest.mark.parametrize("alpha", [-1.0, -0.01])
def test_negative_alpha_is_refused_because_it_favours_dense_states(alpha):
    with pytest.raises(DensityError, match=rf"alpha={alpha} is negative.*favour dense states"):
        WeightingScheme(name="tempered", alpha=alpha)
    cfg = {"_target_": "sdw.density.weighting.WeightingScheme", "name": "mine", "alpha": alpha}
    with pytest.raises(DensityError, match="weighting 'mine': alpha="):
        make_weighting(cfg)


def test_state_weights_checks_indices():
    sw = StateWeights(np.zeros(10))
    assert sw(torch.tensor([0, 9])).shape == (2,)
    with pytest.raises(DensityError, match=r"\[0, 10\)"):
        sw(torch.tensor([3, 10]))
    with pytest.raises(DensityError, match="LongTensor"):
        sw(torch.tensor([0.0, 1.0]))


def test_target_ess_picks_the_exponent_that_keeps_that_effective_sample_size():
    from sdw.density.diagnostics import effective_sample_fraction

    log_density = np.random.default_rng(0).normal(0.0, 3.0, 20_000)
    scheme = WeightingScheme("t", alpha=1.0, target_ess=0.5)
    alpha = scheme.exponent_for_target(log_density)
    assert 0 < alpha < 1
    assert effective_sample_fraction(scheme.log_weights(log_density)) == pytest.approx(0.5, abs=1e-6)
    fixed = WeightingScheme("f", alpha=alpha)
    np.testing.assert_allclose(scheme.log_weights(log_density), fixed.log_weights(log_density))
    loose = WeightingScheme("l", alpha=0.01, target_ess=0.5)  # the cap already keeps ESS/N > 0.5
    assert loose.exponent_for_target(log_density) == 0.01
    with pytest.raises(DensityError, match="target_ess must be in"):
        WeightingScheme("bad", alpha=1.0, target_ess=1.5)
