"""K students in one batched meta-gradient (sdw/distill/analytic_mlp.py with a member dimension),
and K distillations in one batched outer loop (sdw/distill/batched.py), give each member's own
sequential result."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from sdw.distill import ObjectiveConfig, OuterOptimConfig, SyntheticConfig, distill
from sdw.distill.analytic_mlp import AnalyticMLP
from sdw.distill.batched import Member, distill_batched
from sdw.distill.inner_optim import InnerOptimConfig
from sdw.distill.loop import DistillationDiverged
from sdw.distill.metagrad import meta_gradient_analytic
from sdw.networks import ActorConfig, build_actor
from sdw.testing.toy import LinearTeacher, random_dataset

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
@pytest.mark.parametrize("dtype, rtol", [(torch.float64, 1e-12), (torch.float32, 1e-4)])
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


# ---- the outer loop: K members distilled together, each equal to its own run of `distill`

def _loop_kwargs():
    return dict(objective=ObjectiveConfig("avpbc", batch_size=128),
                student=ActorConfig(hidden_sizes=(16, 16)), synthetic=SyntheticConfig(size=16),
                inner=InnerOptimConfig(steps=5), progress=False)


@pytest.fixture(scope="module")
def toy():
    dataset = random_dataset(2000, OBS, ACT, seed=0)
    gain = torch.randn(OBS, ACT, generator=torch.Generator().manual_seed(3))
    return dataset, LinearTeacher(gain, dataset.state_normaliser())


def _odd_weights(indices):
    return 0.5 + (indices % 2).float()


MEMBERS = [Member(seed=0), Member(seed=1, outer=OuterOptimConfig("adam", lr=0.003)),
           Member(seed=2, state_weights=_odd_weights),
           Member(seed=3, objective=ObjectiveConfig("avpbc", batch_size=128, beta=2.0))]


def _alone(dataset, teacher, member, steps, **extra):
    kwargs = {**_loop_kwargs(), **extra}
    if member.objective is not None:
        kwargs["objective"] = member.objective
    return distill(dataset, teacher, outer_steps=steps, seed=member.seed, outer=member.outer,
                   state_weights=member.state_weights, checkpoint=member.checkpoint, **kwargs)


def test_each_member_of_a_batched_distillation_equals_its_own_run(toy):
    dataset, teacher = toy  # sampled teacher actions: each member's global RNG is its own
    steps, seen = [], []
    members = [replace(m, callback=(lambda info: steps.append(info.step)) if k == 0 else None)
               for k, m in enumerate(MEMBERS)]
    batched = distill_batched(dataset, teacher, members, outer_steps=4, **_loop_kwargs())
    assert steps == [1, 2, 3, 4]
    for member, mine in zip(MEMBERS, batched):
        alone = _alone(dataset, teacher, member, 4)
        assert mine.config == alone.config  # same record: a report cannot tell them apart
        assert mine.info["outer_loss"] == pytest.approx(alone.info["outer_loss"], rel=1e-4)
        for a, b in ((mine.states, alone.states), (mine.actions, alone.actions)):
            assert np.abs(a - b).max() <= 1e-4 * np.abs(b).max(), member.seed
        seen.append(mine.states)
    assert not np.allclose(seen[0], seen[1]) and not np.allclose(seen[0], seen[2])


def test_a_batched_members_checkpoint_resumes_in_either_loop(toy, tmp_path):
    dataset, teacher = toy
    members = [replace(m, checkpoint=tmp_path / f"seed{m.seed}.pt") for m in MEMBERS[:2]]
    distill_batched(dataset, teacher, members, outer_steps=3, checkpoint_every=2, **_loop_kwargs())
    again = distill_batched(dataset, teacher, members, outer_steps=6, **_loop_kwargs())
    alone = _alone(dataset, teacher, members[1], 6)  # from seed1.pt, at step 3
    full = _alone(dataset, teacher, MEMBERS[1], 6)
    for result in (again[1], alone):
        assert np.abs(result.states - full.states).max() <= 1e-4 * np.abs(full.states).max()
    (tmp_path / "seed0.pt").unlink()
    with pytest.raises(ValueError, match="different outer steps"):
        distill_batched(dataset, teacher, members, outer_steps=7, **_loop_kwargs())


def test_a_member_with_another_objective_is_refused(toy):
    dataset, teacher = toy
    for other in (ObjectiveConfig("pbc"), ObjectiveConfig("avpbc", batch_size=128,
                                                          teacher_actions="deterministic")):
        with pytest.raises(ValueError, match="shares the objective"):
            distill_batched(dataset, teacher, [Member(0), Member(1, objective=other)],
                            outer_steps=1, **_loop_kwargs())


SGD_MEMBERS = [Member(seed=0, outer=OuterOptimConfig("sgd", lr=0.1, momentum=0.9)),
               Member(seed=1, outer=OuterOptimConfig("sgd", lr=0.05, momentum=0.5,
                                                     clip_norm=None, action_lr=0.2))]


def test_batched_sgd_members_equal_their_own_runs_and_resume_in_either_loop(toy, tmp_path):
    dataset, teacher = toy  # momentum, per-member lr, and one member without gradient clipping
    members = [replace(m, checkpoint=tmp_path / f"seed{m.seed}.pt") for m in SGD_MEMBERS]
    distill_batched(dataset, teacher, members, outer_steps=3, **_loop_kwargs())
    again = distill_batched(dataset, teacher, members, outer_steps=5, **_loop_kwargs())
    saved = torch.load(tmp_path / "seed1.pt", weights_only=True)
    assert saved["states"].untyped_storage().nbytes() == saved["states"].nbytes  # its own set only
    for k, member in enumerate(SGD_MEMBERS):
        later = _alone(dataset, teacher, members[k], 6)  # the sequential loop, from step 5
        for result, ref in ((again[k], _alone(dataset, teacher, member, 5)),
                            (later, _alone(dataset, teacher, member, 6))):
            for a, b in ((result.states, ref.states), (result.actions, ref.actions)):
                assert np.abs(a - b).max() <= 1e-4 * np.abs(b).max(), member.seed


def test_members_with_different_outer_optimisers_are_refused(toy):
    dataset, teacher = toy
    with pytest.raises(ValueError, match="share the outer optimiser"):
        distill_batched(dataset, teacher, [MEMBERS[0], SGD_MEMBERS[1]], outer_steps=1,
                        **_loop_kwargs())


def test_a_diverging_member_stops_the_batch_naming_its_checkpoint(toy, tmp_path):
    dataset, teacher = toy
    members = [replace(MEMBERS[0], checkpoint=tmp_path / "a.pt"),
               replace(MEMBERS[1], checkpoint=tmp_path / "b.pt",
                       outer=OuterOptimConfig("adam", lr=1e39, clip_norm=None))]
    with pytest.raises(DistillationDiverged, match="outer step 1: the synthetic set"):
        distill_batched(dataset, teacher, members, outer_steps=2, **_loop_kwargs())
