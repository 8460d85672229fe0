"""K students in one batched meta-gradient (sdw/distill/analytic_mlp.py with a member dimension)
give each member's own sequential result."""

import pytest
import torch

from sdw.distill.analytic_mlp import AnalyticMLP
from sdw.distill.inner_optim import InnerOptimConfig
from sdw.distill.metagrad import meta_gradient_analytic
from sdw.networks import ActorConfig, build_actor

OBS, ACT, N, B, K = 5, 2, 12, 9, 3


def _members(cfg: ActorConfig, dtype: torch.dtype):
    """K members' initial parameters, synthetic sets, outer states, targets and Q weights."""
    thetas, sets = [], []
    for k in range(K):
        g = torch.Generator().manual_seed(k)
        actor = build_actor(cfg, OBS, ACT, g).to(dtype)
        thetas.append(torch.cat([p.detach().reshape(-1) for p in actor.parameters()]))
        sets.append([torch.randn(*shape, generator=g, dtype=dtype) for shape in
                     ((N, OBS), (N, ACT), (B, OBS), (B, ACT), (B,))])
    return torch.stack(thetas), [torch.stack(parts) for parts in zip(*sets)]


def _loss(target: torch.Tensor, q: torch.Tensor):
    """An Av-PBC-like outer objective: Q-weighted squared error, one value per member."""
    return lambda y: (q.abs() * ((y - target.tanh()) ** 2).mean(-1)).mean(-1)


@pytest.mark.parametrize("head, sampled", [("deterministic", False), ("tanh_gaussian", True)])
@pytest.mark.parametrize("optim", ["sgd", "adam"])
@pytest.mark.parametrize("dtype, rtol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
# rtol bounds |member - its own run| / |its own run| of each result: batched matrix products sum
# in another order than 2-D ones, so equal up to rounding, not bit for bit
def test_each_member_of_a_batch_equals_its_own_run(head, sampled, optim, dtype, rtol):
    cfg = ActorConfig(hidden_sizes=(16, 16), head=head, sample_actions=sampled)
    student = AnalyticMLP(cfg, OBS, ACT)
    optimiser = InnerOptimConfig(name=optim, lr=0.1 if optim == "sgd" else 1e-3).functional()
    theta0, (states, actions, outer, target, q) = _members(cfg, dtype)
    batched = meta_gradient_analytic(
        student, optimiser, 7, theta0, states, actions.tanh(), outer, _loss(target, q),
        [torch.Generator().manual_seed(100 + k) for k in range(K)])
    assert batched.outer_loss.shape == (K,) and batched.inner_loss.shape == (K,)
    for k in range(K):
        alone = meta_gradient_analytic(
            student, optimiser, 7, theta0[k], states[k], actions[k].tanh(), outer[k],
            _loss(target[k], q[k]), torch.Generator().manual_seed(100 + k))
        for mine, ref in ((batched.outer_loss[k], alone.outer_loss),
                          (batched.inner_loss[k], alone.inner_loss),
                          (batched.states[k], alone.states), (batched.actions[k], alone.actions)):
            assert float((mine - ref).norm()) <= rtol * float(ref.norm()), k
        assert alone.states.abs().max() > 0  # a gradient that can tell members apart
    assert not torch.allclose(batched.states[0], batched.states[1])
