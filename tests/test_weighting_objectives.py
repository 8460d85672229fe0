"""SDW weights in the engine's objectives: equal weights give exactly vanilla OBD, given weights act exactly."""

import numpy as np
import pytest
import torch

from sdw.density import StateWeights, WeightingScheme, build_state_weights
from sdw.testing.densities import dataset_of_states
from sdw.distill.objectives import ObjectiveConfig, avpbc_loss, dbc_loss, pbc_loss

B, ACT = 64, 3


@pytest.fixture
def batch():
    gen = torch.Generator().manual_seed(0)
    pred = torch.randn(B, ACT, generator=gen)
    target = torch.randn(B, ACT, generator=gen)
    q = torch.rand(B, generator=gen) * 300
    indices = torch.randint(0, 1000, (B,), generator=gen)
    return pred, target, q, indices


@pytest.fixture
def density_weights():
    """Mean-1 inverse-density weights of 1000 states whose log densities span 30 nats."""
    log_density = np.random.default_rng(1).uniform(-20.0, 10.0, 1000)
    scheme = WeightingScheme(name="self-normalised", alpha=1.0)
    return StateWeights(scheme.log_weights(log_density), compose="multiply")


def per_state_error(pred, target):
    return ((pred - target) ** 2).mean(dim=1)


def test_equal_weights_give_exactly_the_vanilla_objective(batch, tmp_path):
    pred, target, q, indices = batch
    dataset = dataset_of_states(np.random.default_rng(0).standard_normal((1200, 4)), episode_length=600)
    ones, _ = build_state_weights(dataset, "knn", "none", tmp_path / "cache")
    w = ones(indices)
    assert torch.equal(dbc_loss(pred, target, w), dbc_loss(pred, target))
    assert torch.equal(pbc_loss(pred, target, w), pbc_loss(pred, target))
    assert torch.equal(avpbc_loss(pred, target, q, 0.02, w), avpbc_loss(pred, target, q, 0.02))
    for name in ("dbc", "pbc", "avpbc"):
        cfg = ObjectiveConfig(name=name)
        assert torch.equal(cfg.loss(target, q, w)(pred), cfg.loss(target, q, None)(pred))


def test_given_weights_change_the_objective_exactly_by_them(batch, density_weights):
    pred, target, q, indices = batch
    w = density_weights(indices)
    e = per_state_error(pred, target)
    torch.testing.assert_close(dbc_loss(pred, target, w), (w * e).mean(), rtol=0, atol=0)
    torch.testing.assert_close(pbc_loss(pred, target, w), (w * e).mean(), rtol=0, atol=0)
    torch.testing.assert_close(avpbc_loss(pred, target, q, 0.02, w, "multiply"), (w * 0.02 * q * e).mean(),
                               rtol=1e-6, atol=0)
    torch.testing.assert_close(avpbc_loss(pred, target, q, 0.02, w, "replace"), (w * e).mean(), rtol=0, atol=0)
    # each state's gradient is scaled by exactly its weight
    pred_w, pred_1 = pred.clone().requires_grad_(), pred.clone().requires_grad_()
    pbc_loss(pred_w, target, w).backward()
    pbc_loss(pred_1, target).backward()
    torch.testing.assert_close(pred_w.grad, w[:, None] * pred_1.grad, rtol=1e-6, atol=1e-12)


def test_weights_only_reweight_states(batch, density_weights):
    """Moving all weight onto one state makes the objective that state's error (x B / B)."""
    pred, target, _, _ = batch
    e = per_state_error(pred, target)
    for k in (0, 17, B - 1):
        one_hot = torch.zeros(B)
        one_hot[k] = B
        torch.testing.assert_close(dbc_loss(pred, target, one_hot), e[k], rtol=1e-6, atol=0)
    scaled = density_weights(torch.arange(B)) * 3.0
    torch.testing.assert_close(dbc_loss(pred, target, scaled),
                               3.0 * dbc_loss(pred, target, scaled / 3.0), rtol=1e-6, atol=0)


def test_per_batch_softmax_weights_in_the_objective(batch):
    pred, target, _, indices = batch
    log_density = np.random.default_rng(2).uniform(-100.0, 100.0, 1000)
    scheme = WeightingScheme(name="softmax", alpha=0.5, normalise="batch")
    weights = StateWeights(scheme.log_weights(log_density), per_batch=True)
    w = weights(indices)
    assert w.mean().item() == pytest.approx(1.0, rel=1e-5)
    torch.testing.assert_close(pbc_loss(pred, target, w), (w * per_state_error(pred, target)).mean(),
                               rtol=0, atol=0)
