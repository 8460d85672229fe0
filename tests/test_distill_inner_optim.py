"""Inner optimisers: each really used, state kept across steps, distillation == evaluation."""

import numpy as np
import pytest
import torch

from sdw.data.dataset import StateNormaliser
from sdw.distill.analytic_mlp import AnalyticMLP
from sdw.distill.inner_optim import InnerOptimConfig
from sdw.distill.metagrad import head_noise
from sdw.distill.student import student_policy, train_student
from sdw.distill.synthetic import SyntheticSet
from sdw.networks import ActorConfig, build_actor

CONFIGS = [InnerOptimConfig("sgd", lr=0.1), InnerOptimConfig("sgd", lr=0.1, momentum=0.9),
           InnerOptimConfig("sgd", lr=0.1, momentum=0.5, weight_decay=0.01),
           InnerOptimConfig("adam", lr=0.01), InnerOptimConfig("adam", lr=0.01, weight_decay=0.1),
           InnerOptimConfig("adamw", lr=0.01, weight_decay=0.1)]
IDS = ["sgd", "sgd-momentum", "sgd-momentum-l2", "adam", "adam-l2", "adamw"]



def _synthetic(n=16, obs=5, act=2, seed=0) -> SyntheticSet:
    rng = np.random.default_rng(seed)
    return SyntheticSet(rng.standard_normal((n, obs)).astype(np.float32),
                        rng.uniform(-1, 1, (n, act)).astype(np.float32),
                        StateNormaliser(np.zeros(obs, np.float32), np.ones(obs, np.float32)),
                        "Hopper-v4", "toy", "0" * 16, "test")


def _functional_trajectory(cfg: InnerOptimConfig, student: ActorConfig, data: SyntheticSet,
                           seed: int, steps: int) -> torch.Tensor:
    """The inner loop as the distillation runs it (functional optimiser, analytic gradients)."""
    generator = torch.Generator().manual_seed(seed)
    actor = build_actor(student, data.obs_dim, data.act_dim, generator)
    theta = torch.cat([p.detach().reshape(-1) for p in actor.parameters()])
    mlp, opt = AnalyticMLP(student, data.obs_dim, data.act_dim), cfg.functional()
    x, a = torch.as_tensor(data.states), torch.as_tensor(data.actions)
    state = opt.init(theta)
    for t in range(steps):
        noise = head_noise(generator, len(x), data.act_dim, x, mlp.sampled)
        _, grad, _ = mlp.bc_loss_and_grad(theta, x, a, noise)
        theta, state, _ = opt.step(theta, grad, state, t)
    return theta


@pytest.mark.parametrize("cfg", CONFIGS, ids=IDS)
def test_distillation_inner_loop_trains_exactly_like_the_evaluation_student(cfg):
    """The functional optimiser reproduces torch.optim's trajectory (same init, same noise)."""
    student, data = ActorConfig(hidden_sizes=(32, 32)), _synthetic()
    inner = _functional_trajectory(cfg, student, data, seed=3, steps=25)
    evaluated = train_student(data, student, cfg, steps=25, seed=3)
    reference = torch.cat([p.detach().reshape(-1) for p in evaluated.parameters()])
    torch.testing.assert_close(inner, reference, rtol=1e-5, atol=1e-6)


def test_each_optimiser_is_really_used():
    """Different optimisers give different students (the official `optimier` typo made Adam and
    AdamW silently run SGD)."""
    student, data = ActorConfig(hidden_sizes=(16,)), _synthetic()
    finals = {name: _functional_trajectory(cfg, student, data, seed=0, steps=10)
              for name, cfg in zip(IDS, CONFIGS)}
    names = list(finals)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert not torch.allclose(finals[a], finals[b]), (a, b)
    torch_opts = {c.name: type(c.torch_optimizer([torch.zeros(1, requires_grad=True)]))
                  for c in CONFIGS}
    assert torch_opts == {"sgd": torch.optim.SGD, "adam": torch.optim.Adam,
                          "adamw": torch.optim.AdamW}


@pytest.mark.parametrize("name", ["optimier", "adan", "SGDm", "rmsprop"])
def test_unknown_optimiser_names_fail_loudly(name):
    with pytest.raises(ValueError, match="unknown inner optimiser"):
        InnerOptimConfig(name)


def test_momentum_is_kept_across_steps():
    """SGD with momentum differs from the same optimiser rebuilt every step (the official
    evaluators reset momentum that way), and matches a hand-rolled heavy-ball update."""
    student, data = ActorConfig(hidden_sizes=(16,), head="deterministic",
                                sample_actions=False), _synthetic()
    cfg = InnerOptimConfig("sgd", lr=0.1, momentum=0.9)
    kept = train_student(data, student, cfg, steps=10, seed=1)

    reset = build_actor(student, data.obs_dim, data.act_dim, torch.Generator().manual_seed(1))
    x, a = torch.as_tensor(data.states), torch.as_tensor(data.actions)
    for _ in range(10):
        opt = cfg.torch_optimizer(reset.parameters())  # the bug: a new optimiser per step
        loss = ((reset(x) - a) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    kept_params = torch.cat([p.detach().reshape(-1) for p in kept.parameters()])
    reset_params = torch.cat([p.detach().reshape(-1) for p in reset.parameters()])
    assert not torch.allclose(kept_params, reset_params, atol=1e-4)

    heavy_ball = build_actor(student, data.obs_dim, data.act_dim, torch.Generator().manual_seed(1))
    params = list(heavy_ball.parameters())
    velocity = [torch.zeros_like(p) for p in params]
    for _ in range(10):
        loss = ((heavy_ball(x) - a) ** 2).mean()
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for p, v, g in zip(params, velocity, grads):
                v.mul_(0.9).add_(g)
                p.sub_(0.1 * v)
    ball_params = torch.cat([p.detach().reshape(-1) for p in params])
    torch.testing.assert_close(kept_params, ball_params, rtol=1e-5, atol=1e-6)


def test_student_policy_averages_an_ensemble_deterministically():
    student, data = ActorConfig(hidden_sizes=(16,)), _synthetic()
    members = [train_student(data, student, InnerOptimConfig(steps=5), seed=s) for s in (0, 1)]
    states = np.random.default_rng(0).standard_normal((4, data.obs_dim)).astype(np.float32)
    with torch.no_grad():
        expected = torch.stack([m(torch.as_tensor(states), deterministic=True)
                                for m in members]).mean(0).numpy()
    np.testing.assert_allclose(student_policy(members)(states), expected)
    np.testing.assert_array_equal(student_policy(members[0])(states),
                                  student_policy(members[0])(states))
