"""IQL teacher: learning behaviour, Teacher protocol, save/load, cache, resume."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from test_teacher_td3bc import (assert_same_weights, bc_mse, data_tensors, forbid_training,
                                linear_dataset, member_params, mlp)

from sdw.config import config_dir
from sdw.teacher.base import Teacher
from sdw.teacher.build import build_teacher
from sdw.teacher.iql import IQLConfig, IQLTeacher, IQLTrainer, reward_scale
from sdw.teacher.offline_rl import TeacherDivergedError
from sdw.teacher.train import load_teacher, train_teacher


SMALL = IQLConfig(steps=300, hidden_dims=(64, 64), max_action=1.0, eval_every=0, eval_episodes=0,
                  log_every=100, checkpoint_every=0)


@pytest.fixture(scope="module")
def dataset():
    return linear_dataset()


def run(dataset, cfg: IQLConfig) -> IQLTrainer:
    trainer = IQLTrainer(dataset, cfg)
    for _ in range(cfg.steps):
        trainer.step()
    return trainer


def test_uniform_weights_make_the_actor_clone_the_data(dataset):
    """beta = 0: every advantage weight is 1, so the actor is maximum-likelihood BC."""
    trainer = IQLTrainer(dataset, replace(SMALL, steps=600, beta=0.0))
    before = bc_mse(trainer.teacher, dataset)
    for _ in range(600):
        trainer.step()
    assert bc_mse(trainer.teacher, dataset) < before / 20


def test_the_deterministic_actor_clones_the_data_by_weighted_squared_error(dataset):
    """CORL's DeterministicPolicy (hopper medium, medium-replay): beta = 0 makes it plain MSE BC;
    its actions are never sampled."""
    cfg = replace(SMALL, steps=600, beta=0.0, deterministic_actor=True)
    trainer = IQLTrainer(dataset, cfg)
    before = bc_mse(trainer.teacher, dataset)
    states, actions, _ = data_tensors(dataset)
    trainer.step()
    stats = trainer.pop_stats()
    with torch.no_grad():  # the first step's actor loss was the (unweighted) squared error
        trainer_fresh = IQLTrainer(dataset, cfg)
        error = (trainer_fresh.teacher.actor(states)[0] - actions).square().sum(-1).mean()
    assert stats["actor_loss"] > 0 and stats["actor_loss"] == pytest.approx(float(error), rel=0.5)
    for _ in range(599):
        trainer.step()
    teacher = trainer.teacher
    assert bc_mse(teacher, dataset) < before / 20
    sampled = teacher.act(states, deterministic=False, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(sampled, teacher.act(states))


def test_corl_per_dataset_configs_set_corls_exceptions():
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(str(config_dir()), version_base=None):
        defaults = compose("train_teacher", ["teacher=iql"]).teacher
        medium = compose("train_teacher", ["teacher=iql-corl-hopper-medium"]).teacher
        expert = compose("train_teacher", ["teacher=iql-corl-hopper-medium-expert"]).teacher
    assert (defaults.normalize_reward, defaults.deterministic_actor, defaults.tau,
            defaults.beta, defaults.expectile) == (False, False, 0.005, 3.0, 0.7)
    assert (medium.normalize_reward, medium.deterministic_actor, medium.tau) == (True, True, 0.001)
    assert (medium.beta, medium.expectile) == (3.0, 0.7)
    assert (expert.beta, expert.expectile, expert.normalize_reward) == (6.0, 0.5, False)


def test_value_fits_the_expectile_of_the_reward_when_discount_is_zero(dataset):
    """discount 0: Q -> r. The data's action is a function of the state, so the expectile of
    Q(s, a) over the data's actions at s is Q(s, a(s)) itself: V -> min_i Q'_i(s, a(s))."""
    cfg = replace(SMALL, steps=800, discount=0.0, tau=0.05, expectile=0.9, normalize_reward=False)
    trainer = run(dataset, cfg)
    states, actions, rewards = data_tensors(dataset)
    with torch.no_grad():
        q = trainer.teacher.critic(torch.cat([states, actions], 1))[:, :, 0]
        v = trainer.teacher.value(states)[0, :, 0]
    assert float((q[0] - rewards).square().mean()) < 0.05 * float(rewards.var())
    assert float((v - q.amin(0)).square().mean()) < 0.05 * float(rewards.var())


def test_step_matches_a_literal_transcription_of_corl(dataset):
    """CORL's iql.py `train` (V, then Q and its target, then the actor with its cosine schedule),
    written out with three optimisers, against sdw's single fused step."""
    cfg = replace(SMALL, steps=8)
    trainer = IQLTrainer(dataset, cfg)
    g = torch.Generator().set_state(trainer.generator.get_state())
    teacher = trainer.teacher
    actor = member_params(teacher.actor.net, 0)
    log_std = teacher.actor.log_std.detach().clone().requires_grad_()
    critics = [member_params(teacher.critic, m) for m in range(2)]
    critics_t = [[p.detach().clone() for p in c] for c in critics]
    value = member_params(teacher.value, 0)
    v_opt = torch.optim.Adam(value, lr=cfg.value_lr)
    q_opt = torch.optim.Adam([p for c in critics for p in c], lr=cfg.critic_lr)
    actor_opt = torch.optim.Adam([*actor, log_std], lr=cfg.actor_lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(actor_opt, cfg.steps)
    for _ in range(cfg.steps):
        idx = torch.randint(len(trainer.table), (cfg.batch_size,), generator=g)
        obs, act, rew, next_obs, not_done = trainer.table[idx].split(trainer.split, 1)
        sa = torch.cat([obs, act], 1)
        with torch.no_grad():
            next_v = mlp(value, next_obs)
            target_q = torch.min(mlp(critics_t[0], sa), mlp(critics_t[1], sa))
        adv = target_q - mlp(value, obs)
        v_loss = torch.mean(torch.abs(cfg.expectile - (adv < 0).float()) * adv ** 2)
        v_opt.zero_grad()
        v_loss.backward()
        v_opt.step()
        targets = rew + not_done * cfg.discount * next_v
        q_loss = sum(torch.nn.functional.mse_loss(mlp(c, sa), targets) for c in critics) / 2
        q_opt.zero_grad()
        q_loss.backward()
        q_opt.step()
        with torch.no_grad():
            for c, ct in zip(critics, critics_t):
                for p, tp in zip(c, ct):
                    tp.mul_(1 - cfg.tau).add_(cfg.tau * p)
        exp_adv = torch.exp(cfg.beta * adv.detach()).clamp(max=cfg.max_exp_adv)
        dist = torch.distributions.Normal(torch.tanh(mlp(actor, obs)),
                                          log_std.clamp(-20, 2).exp())
        policy_loss = torch.mean(exp_adv[:, 0] * -dist.log_prob(act).sum(-1))
        actor_opt.zero_grad()
        policy_loss.backward()
        actor_opt.step()
        schedule.step()
        trainer.step()
    for ref, ours in [(actor, member_params(teacher.actor.net, 0)),
                      (value, member_params(teacher.value, 0)),
                      (critics[1], member_params(teacher.critic, 1)),
                      (critics_t[0], member_params(trainer.target.critic, 0))]:
        for p, q in zip(ref, ours):
            torch.testing.assert_close(q, p, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(teacher.actor.log_std.detach(), log_std.detach(),
                               rtol=1e-4, atol=1e-6)
    assert trainer.optimizers["all"].param_groups[0]["lr"] == pytest.approx(
        actor_opt.param_groups[0]["lr"], abs=1e-12)


def test_log_prob_is_the_gaussian_log_density(dataset):
    teacher = IQLTrainer(dataset, SMALL).teacher
    states, actions, _ = data_tensors(dataset)
    with torch.no_grad():
        teacher.actor.log_std.copy_(torch.tensor([-0.5, 0.3]))
        mean, log_std = teacher.actor(states)
        expected = torch.distributions.Normal(mean, log_std.exp()).log_prob(actions).sum(-1)
        torch.testing.assert_close(teacher.actor.log_prob(states, actions), expected)


def test_teacher_protocol(dataset):
    teacher = run(dataset, replace(SMALL, steps=50)).teacher.requires_grad_(False)
    assert isinstance(teacher, Teacher)
    states, actions, _ = data_tensors(dataset)
    det = teacher.act(states)
    mean, log_std = teacher.actor(states)
    torch.testing.assert_close(det, mean.clamp(-1, 1))
    sampled = teacher.act(states, deterministic=False, generator=torch.Generator().manual_seed(0))
    assert sampled.abs().max() <= 1.0 and not torch.equal(sampled, det)
    q = teacher.q(states, actions)
    torch.testing.assert_close(q, teacher.critic(torch.cat([states, actions], 1))[0, :, 0])


def test_save_load_cache_and_resume(dataset, tmp_path, monkeypatch):
    cfg = replace(SMALL, steps=200, checkpoint_every=100)
    reference = train_teacher(dataset, cfg, None)

    real_step = IQLTrainer.step

    def interrupted(self):
        if self.step_count == 150:
            raise KeyboardInterrupt
        real_step(self)

    monkeypatch.setattr(IQLTrainer, "step", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train_teacher(dataset, cfg, tmp_path)
    monkeypatch.setattr(IQLTrainer, "step", real_step)
    resumed = train_teacher(dataset, cfg, tmp_path)  # resumes at 100, incl. the lr schedule
    assert_same_weights(reference, resumed)

    (entry,) = (tmp_path / "iql").glob("*.pt")
    loaded = load_teacher(entry)
    assert isinstance(loaded, IQLTeacher)
    states, actions, _ = data_tensors(dataset)
    assert torch.equal(loaded.act(states), resumed.act(states))
    assert torch.equal(loaded.q(states, actions), resumed.q(states, actions))

    forbid_training(monkeypatch)
    assert_same_weights(resumed, train_teacher(dataset, cfg, tmp_path))


def test_yaml_builds_an_iql_teacher(dataset, tmp_path):
    node = OmegaConf.load(config_dir() / "teacher" / "iql.yaml")
    small = OmegaConf.merge(node, {"device": "cpu", "steps": 20, "hidden_dims": [8],
                                   "max_action": 1.0, "eval_episodes": 0})
    teacher = build_teacher(instantiate(small), dataset, tmp_path)
    assert isinstance(teacher, IQLTeacher)
    assert len(list((tmp_path / "iql").glob("*.pt"))) == 1


def test_reward_scale_needs_distinct_returns(dataset):
    assert reward_scale(dataset) == pytest.approx(
        1000 / np.ptp(dataset.episode_returns()))
    flat = replace(dataset, rewards=np.ones_like(dataset.rewards))
    with pytest.raises(ValueError, match="normalize_reward"):
        reward_scale(flat)


def test_diverged_training_is_an_error_and_caches_nothing(dataset, tmp_path):
    cfg = replace(SMALL, actor_lr=1e30, critic_lr=1e30, value_lr=1e30, checkpoint_every=50)
    with pytest.raises(TeacherDivergedError) as e:
        train_teacher(dataset, cfg, tmp_path / "cache")
    assert "iql teacher training on 'tiny-linear' diverged by step 50" in str(e.value)
    assert "actor_lr=1e+30, critic_lr=1e+30, value_lr=1e+30" in str(e.value)
    # nothing but the lock that kept other jobs from training the same teacher meanwhile
    assert [p for p in (tmp_path / "cache").rglob("*") if p.is_file()
            and p.parent.name != ".locks"] == []
