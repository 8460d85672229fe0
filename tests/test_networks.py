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


OFFICIAL = {f"official_mlp{n}": n - 1 for n in range(2, 7)}
"""OBD's `<n>layer_mlp` has n linear layers, so n - 1 hidden ones."""


def _student(option: str) -> ActorConfig:
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    from sdw.config import config_dir

    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return instantiate(compose(overrides=[f"+student={option}"]).student)


@pytest.mark.parametrize("option, hidden", OFFICIAL.items())
def test_official_mlps_have_n_linear_layers(option, hidden):
    cfg = _student(option)
    actor = build_actor(cfg, 11, 3, torch.Generator().manual_seed(0))
    layers = linear_layers(actor.base_network)
    assert len(layers) == hidden + 1
    assert [tuple(layer.weight.shape) for layer in layers] == (
        [(256, 11)] + [(256, 256)] * (hidden - 1) + [(6, 256)])
    assert isinstance(actor, TanhGaussianActor) and cfg.sample_actions and not cfg.skips


def test_official_mlp4_is_the_papers_student():
    assert _student("official_mlp4") == _student("mlp3x256")


def test_official_resmlp_skips_from_layer_one_to_after_layer_three():
    cfg = _student("official_resmlp")
    assert cfg.hidden_sizes == (256, 256, 256) and cfg.skips == ((1, 3),) and not cfg.residual
    actor = build_actor(cfg, 11, 3, torch.Generator().manual_seed(0))
    w = linear_layers(actor.base_network)
    assert len(w) == 4
    s = torch.randn(5, 11)
    h1 = torch.relu(s @ w[0].weight.T + w[0].bias)
    h2 = torch.relu(h1 @ w[1].weight.T + w[1].bias)
    h3 = torch.relu(h2 @ w[2].weight.T + w[2].bias) + h1
    out = h3 @ w[3].weight.T + w[3].bias
    torch.testing.assert_close(actor(s, deterministic=True), torch.tanh(out[:, :3]))


def test_residual_flag_is_bit_identical_to_its_explicit_skips():
    kwargs = dict(hidden_sizes=(8, 8, 8), head="deterministic", sample_actions=False)
    flag = build_actor(ActorConfig(residual=True, **kwargs), 3, 2, torch.Generator().manual_seed(1))
    explicit = build_actor(ActorConfig(skips=((1, 2), (2, 3)), **kwargs), 3, 2,
                           torch.Generator().manual_seed(1))
    s = torch.randn(4, 3)
    assert torch.equal(flag(s), explicit(s))


def test_plain_student_is_unchanged_by_the_skips_field():
    """mlp3x256 is still CORL's nn.Sequential, drawn in the same order from the generator."""
    actor = build_actor(ActorConfig(), 11, 3, torch.Generator().manual_seed(0))
    reference = TanhGaussianActor(11, 3)
    gen = torch.Generator().manual_seed(0)
    for layer in linear_layers(reference.base_network):
        torch.nn.init.orthogonal_(layer.weight, gain=math.sqrt(2), generator=gen)
        torch.nn.init.zeros_(layer.bias)
    assert list(actor.state_dict()) == list(reference.state_dict())
    for a, b in zip(actor.state_dict().values(), reference.state_dict().values()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("skips, message", [
    (((0, 2),), "1 <= from < to"),
    (((2, 2),), "1 <= from < to"),
    (((1, 4),), "1 <= from < to"),
    (((1, 3), (2, 3)), "at most one incoming skip"),
])
def test_bad_skips_are_refused(skips, message):
    with pytest.raises(ValueError, match=message):
        ActorConfig(hidden_sizes=(8, 8, 8), skips=skips)


def test_skips_of_unequal_widths_and_with_residual_are_refused():
    with pytest.raises(ValueError, match="widths 8 and 16"):
        ActorConfig(hidden_sizes=(8, 4, 16), skips=((1, 3),))
    with pytest.raises(ValueError, match="choose one"):
        ActorConfig(hidden_sizes=(8, 8, 8), residual=True, skips=((1, 3),))


def test_analytic_meta_gradient_refuses_explicit_skips_clearly():
    from sdw.distill.analytic_mlp import AnalyticMLP

    cfg = ActorConfig(hidden_sizes=(8, 8, 8), skips=((1, 3),))
    analytic = AnalyticMLP(cfg, 3, 2)
    theta = torch.zeros(sum(analytic.numels))
    with pytest.raises(ValueError, match="meta_gradient='unroll'"):
        analytic.forward(theta, torch.zeros(4, 3), torch.zeros(4, 2))
