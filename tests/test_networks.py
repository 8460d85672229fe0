"""Actors and critics: CORL-compatible names, heads, residual variant, initialisation."""

import math

import pytest
import torch

from sdw.networks import (ActorConfig, DeterministicActor, FullyConnectedQFunction,
                          TanhGaussianActor, build_actor, linear_layers)


def test_tanh_gaussian_actor_has_corl_state_dict_keys():
    actor = TanhGaussianActor(17, 6)
    assert list(actor.state_dict()) == [
        "base_network.0.weight", "base_network.0.bias", "base_network.2.weight",
        "base_network.2.bias", "base_network.4.weight", "base_network.4.bias",
        "base_network.6.weight", "base_network.6.bias", "log_std_multiplier.constant",
        "log_std_offset.constant"]
    assert actor.state_dict()["base_network.6.weight"].shape == (12, 256)
    assert actor.log_std_multiplier.constant.item() == 1.0
    assert actor.log_std_offset.constant.item() == -1.0


def test_critic_has_corl_state_dict_keys_and_flat_output():
    critic = FullyConnectedQFunction(17, 6)
    assert list(critic.state_dict()) == [
        "network.0.weight", "network.0.bias", "network.2.weight", "network.2.bias",
        "network.4.weight", "network.4.bias"]
    assert critic(torch.zeros(5, 17), torch.zeros(5, 6)).shape == (5,)


def test_tanh_gaussian_actions_follow_the_formula():
    torch.manual_seed(0)
    actor = TanhGaussianActor(3, 2, max_action=2.0, hidden_sizes=(8,))
    s, eps = torch.randn(4, 3), torch.randn(4, 2)
    out = actor.base_network(s)
    mean, raw = out[:, :2], out[:, 2:]
    log_std = (actor.log_std_multiplier.constant * raw
               + actor.log_std_offset.constant).clamp(-20, 2)
    torch.testing.assert_close(actor(s, noise=eps), 2.0 * torch.tanh(mean + log_std.exp() * eps))
    torch.testing.assert_close(actor(s, deterministic=True), 2.0 * torch.tanh(mean))


def test_log_std_is_clamped():
    actor = TanhGaussianActor(3, 2, hidden_sizes=(8,), log_std_offset=50.0)
    _, log_std = actor.mean_log_std(torch.randn(4, 3))
    assert torch.all(log_std == 2.0)


def test_deterministic_actor_ignores_noise():
    actor = DeterministicActor(3, 2, max_action=1.5, hidden_sizes=(8,))
    s = torch.randn(4, 3)
    torch.testing.assert_close(actor(s, noise=torch.randn(4, 2)),
                               1.5 * torch.tanh(actor.base_network(s)))


def test_residual_mlp_adds_skip_connections_where_widths_match():
    cfg = ActorConfig(hidden_sizes=(8, 8, 8), residual=True, head="deterministic",
                      sample_actions=False)
    actor = build_actor(cfg, 3, 2, torch.Generator().manual_seed(0))
    w = linear_layers(actor.base_network)
    s = torch.randn(4, 3)
    h1 = torch.relu(w[0](s))
    h2 = h1 + torch.relu(w[1](h1))
    h3 = h2 + torch.relu(w[2](h2))
    torch.testing.assert_close(actor(s), torch.tanh(w[3](h3)))


def test_build_actor_is_orthogonal_and_reproducible():
    cfg = ActorConfig(hidden_sizes=(16, 16))
    a = build_actor(cfg, 5, 2, torch.Generator().manual_seed(3))
    b = build_actor(cfg, 5, 2, torch.Generator().manual_seed(3))
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    square = linear_layers(a.base_network)[1]
    torch.testing.assert_close(square.weight @ square.weight.T, 2.0 * torch.eye(16),
                               atol=1e-5, rtol=0)
    assert all(torch.all(layer.bias == 0) for layer in linear_layers(a.base_network))
    assert math.isclose(cfg.orthogonal_gain, math.sqrt(2))


@pytest.mark.parametrize("kwargs, message", [
    ({"activation": "swish"}, "unknown activation"),
    ({"head": "gaussian"}, "unknown actor head"),
    ({"head": "deterministic", "sample_actions": True}, "cannot sample"),
    ({"hidden_sizes": ()}, "at least one hidden layer"),
])
def test_actor_config_rejects_bad_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ActorConfig(**kwargs)
