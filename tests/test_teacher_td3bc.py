"""TD3+BC teacher: learning behaviour, Teacher protocol, save/load, cache, resume, evaluation."""

from __future__ import annotations

import json
import warnings
from dataclasses import fields, replace
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from sdw.config import config_dir
from sdw.data.dataset import DatasetMetadata, OfflineDataset
from sdw.data.scores import D4RL_REFERENCE_SCORES
from sdw.teacher import train as train_module
from sdw.teacher.base import Teacher
from sdw.teacher.build import build_teacher
from sdw.teacher.cache import TeacherCache, config_hash
from sdw.teacher.offline_rl import MLPEnsemble, TeacherDivergedError
from sdw.teacher.td3bc import TD3BCConfig, TD3BCTeacher, TD3BCTrainer
from sdw.teacher.train import train_teacher

SMALL = TD3BCConfig(steps=300, hidden_dims=(64, 64), max_action=1.0, eval_every=0,
                    eval_episodes=0, log_every=100, checkpoint_every=0)


def linear_dataset(n: int = 3000, seed: int = 0) -> OfflineDataset:
    """States N(0, I) in 4-D, actions 0.8 tanh(W s) in 2-D, reward s_0 + a_0, 100-step episodes."""
    rng = np.random.default_rng(seed)
    obs = rng.standard_normal((n + 1, 4)).astype(np.float32) * [1.0, 2.0, 0.5, 3.0] + 1.0
    obs = obs.astype(np.float32)
    actions = (0.8 * np.tanh(obs[:-1] @ rng.standard_normal((4, 2)))).astype(np.float32)
    timeouts = np.zeros(n, dtype=bool)
    timeouts[99::100] = True
    return OfflineDataset(
        observations=obs[:-1], actions=actions,
        rewards=(obs[:-1, 0] + actions[:, 0]).astype(np.float32),
        next_observations=obs[1:], terminals=np.zeros(n, dtype=bool), timeouts=timeouts,
        metadata=DatasetMetadata("tiny-linear", "test", "none", None),
    )


def hopper_random_dataset(n: int = 2000, seed: int = 0) -> OfflineDataset:
    """A random-action rollout in Hopper-v4, in D4RL layout."""
    env = gym.make("Hopper-v4")
    rng = np.random.default_rng(seed)
    columns: dict[str, list] = {k: [] for k in ("obs", "act", "rew", "next", "term", "trunc")}
    obs, _ = env.reset(seed=seed)
    for _ in range(n):
        act = rng.uniform(-1, 1, 3).astype(np.float32)
        nxt, rew, term, trunc, _ = env.step(act)
        for k, v in zip(columns, (obs, act, rew, nxt, term, trunc)):
            columns[k].append(v)
        obs = env.reset()[0] if term or trunc else nxt
    env.close()
    arr = {k: np.asarray(v) for k, v in columns.items()}
    return OfflineDataset(
        observations=arr["obs"].astype(np.float32), actions=arr["act"],
        rewards=arr["rew"].astype(np.float32), next_observations=arr["next"].astype(np.float32),
        terminals=arr["term"], timeouts=arr["trunc"],
        metadata=DatasetMetadata("hopper-random-test", "test", "Hopper-v4",
                                 D4RL_REFERENCE_SCORES["hopper"]),
    )


@pytest.fixture(scope="module")
def dataset() -> OfflineDataset:
    return linear_dataset()


def data_tensors(dataset: OfflineDataset) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    view = dataset.qlearning_view()
    states = torch.as_tensor(dataset.state_normaliser()(view.observations))
    return states, torch.as_tensor(view.actions), torch.as_tensor(view.rewards)


def bc_mse(teacher: TD3BCTeacher, dataset: OfflineDataset) -> float:
    states, actions, _ = data_tensors(dataset)
    with torch.no_grad():
        return float((teacher.act(states) - actions).square().mean())


def trained(dataset: OfflineDataset, cfg: TD3BCConfig) -> TD3BCTrainer:
    trainer = TD3BCTrainer(dataset, cfg)
    for _ in range(cfg.steps):
        trainer.step()
    return trainer


def assert_same_weights(a: TD3BCTeacher, b: TD3BCTeacher) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k].cpu(), sb[k].cpu()), k


# --- learning behaviour -----------------------------------------------------------------------

def test_bc_term_dominates_with_tiny_alpha_actor_reproduces_dataset_actions(dataset):
    cfg = replace(SMALL, steps=600, alpha=1e-4, policy_freq=1)
    trainer = TD3BCTrainer(dataset, cfg)
    before = bc_mse(trainer.teacher, dataset)
    for _ in range(cfg.steps):
        trainer.step()
    after = bc_mse(trainer.teacher, dataset)
    assert after < before / 20, (before, after)


def test_critics_regress_reward_when_discount_is_zero(dataset):
    trainer = trained(dataset, replace(SMALL, steps=500, discount=0.0))
    states, actions, rewards = data_tensors(dataset)
    with torch.no_grad():
        q = trainer.teacher.critic(torch.cat([states, actions], 1))[:, :, 0]
    for member in q:  # both critics learnt r(s, a)
        assert float((member - rewards).square().mean()) < 0.05 * float(rewards.var())


def test_q_term_moves_actor_towards_higher_value(dataset):
    """Reward s_0 + a_0: with a large alpha the actor raises a_0 above the data's actions."""
    _, actions, _ = data_tensors(dataset)
    states = data_tensors(dataset)[0]
    means = {}
    for alpha in (1e-4, 50.0):
        teacher = trained(dataset, replace(SMALL, steps=600, alpha=alpha, discount=0.0)).teacher
        with torch.no_grad():
            means[alpha] = float(teacher.act(states)[:, 0].mean())
    data_mean = float(actions[:, 0].mean())
    assert abs(means[1e-4] - data_mean) < 0.1
    assert means[50.0] > data_mean + 0.3, (means, data_mean)


def test_training_log_records_losses(dataset):
    trainer = TD3BCTrainer(dataset, SMALL)
    for _ in range(200):
        trainer.step()
    stats = trainer.pop_stats()
    assert set(stats) == set(TD3BCTrainer.STAT_NAMES)
    assert all(np.isfinite(v) for v in stats.values())
    assert trainer.pop_stats()["critic_loss"] == 0.0  # reset after popping


def member_params(ensemble: MLPEnsemble, m: int) -> list[torch.Tensor]:
    """Member m of an ensemble as separate leaf tensors [W_0, b_0, W_1, ...] (W: in x out)."""
    return [t[m].detach().clone().requires_grad_() for w_b in ensemble.layers() for t in w_b]


def mlp(params: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    for k in range(0, len(params), 2):
        x = x @ params[k] + params[k + 1]
        x = x.relu() if k < len(params) - 2 else x
    return x


def test_step_matches_a_literal_transcription_of_corl(dataset):
    """CORL's td3_bc.py `train`, written out with separate critics and optimisers."""
    cfg = replace(SMALL, policy_freq=2, alpha=2.5)
    trainer = TD3BCTrainer(dataset, cfg)
    g = torch.Generator().set_state(trainer.generator.get_state())
    actor = member_params(trainer.teacher.actor.net, 0)
    critics = [member_params(trainer.teacher.critic, m) for m in range(2)]
    actor_t = [p.detach().clone() for p in actor]
    critics_t = [[p.detach().clone() for p in c] for c in critics]
    actor_opt = torch.optim.Adam(actor, lr=cfg.actor_lr)
    critic_opts = [torch.optim.Adam(c, lr=cfg.critic_lr) for c in critics]
    table, split = trainer.table, trainer.split
    for it in range(1, 7):
        idx = torch.randint(len(table), (cfg.batch_size,), generator=g)
        state, action, reward, next_state, not_done = table[idx].split(split, 1)
        with torch.no_grad():
            noise = (torch.randn(action.shape, generator=g) * cfg.policy_noise).clamp(
                -cfg.noise_clip, cfg.noise_clip)
            next_action = (torch.tanh(mlp(actor_t, next_state)) + noise).clamp(-1, 1)
            nsa = torch.cat([next_state, next_action], 1)
            target_q = torch.min(mlp(critics_t[0], nsa), mlp(critics_t[1], nsa))
            target_q = reward + not_done * cfg.discount * target_q
        sa = torch.cat([state, action], 1)
        critic_loss = sum(torch.nn.functional.mse_loss(mlp(c, sa), target_q) for c in critics)
        for opt in critic_opts:
            opt.zero_grad()
        critic_loss.backward()
        for opt in critic_opts:
            opt.step()
        if it % cfg.policy_freq == 0:
            pi = torch.tanh(mlp(actor, state))
            q = mlp(critics[0], torch.cat([state, pi], 1))
            actor_loss = -cfg.alpha / q.abs().mean().detach() * q.mean() + \
                torch.nn.functional.mse_loss(pi, action)
            actor_opt.zero_grad()
            actor_loss.backward()
            actor_opt.step()
            with torch.no_grad():
                for online, target in zip([actor, *critics], [actor_t, *critics_t]):
                    for p, tp in zip(online, target):
                        tp.mul_(1 - cfg.tau).add_(cfg.tau * p)
        trainer.step()
    for m, c in enumerate(critics):
        for p, q in zip(c, member_params(trainer.teacher.critic, m)):
            torch.testing.assert_close(q, p, rtol=1e-4, atol=1e-6)
    for p, q in zip(actor, member_params(trainer.teacher.actor.net, 0)):
        torch.testing.assert_close(q, p, rtol=1e-4, atol=1e-6)
    for p, q in zip(critics_t[1], member_params(trainer.target.critic, 1)):
        torch.testing.assert_close(q, p, rtol=1e-4, atol=1e-6)


# --- Teacher protocol ---------------------------------------------------------------------------

def test_ensemble_members_equal_plain_mlps():
    ens = MLPEnsemble(2, 5, (7, 3), 2, torch.Generator().manual_seed(0))
    x = torch.randn(9, 5)
    out = ens(x)
    for m in range(2):
        h = x
        for k in range(ens.n_layers):
            h = h @ getattr(ens, f"weight_{k}")[m] + getattr(ens, f"bias_{k}")[m, 0]
            h = h.relu() if k < ens.n_layers - 1 else h
        torch.testing.assert_close(out[m], h)
    torch.testing.assert_close(ens(x, members=slice(1, 2), detach=True)[0], out[1])


def test_teacher_protocol_act_and_q(dataset):
    teacher = trained(dataset, replace(SMALL, steps=50)).teacher
    assert isinstance(teacher, Teacher)
    states, actions, _ = data_tensors(dataset)
    teacher.requires_grad_(False)
    det = teacher.act(states, deterministic=True)
    assert det.shape == actions.shape and det.abs().max() <= 1.0
    g = torch.Generator().manual_seed(0)
    sampled = teacher.act(states, deterministic=False, generator=g)
    assert sampled.abs().max() <= 1.0
    inside = (det.abs() < 0.5).all(1)  # far from the bounds, the noise is not clipped
    noise = (sampled - det)[inside]
    assert abs(float(noise.std()) - SMALL.expl_noise) < 0.01 and abs(float(noise.mean())) < 0.01
    q = teacher.q(states, actions)
    assert q.shape == (len(states),)
    torch.testing.assert_close(q, teacher.critic(torch.cat([states, actions], 1))[0, :, 0])


# --- save / load --------------------------------------------------------------------------------

def test_saved_teacher_reloads_with_identical_actions_and_q(dataset, tmp_path):
    teacher = trained(dataset, replace(SMALL, steps=100)).teacher
    teacher.history = [{"step": 100, "critic_loss": 1.0}]
    teacher.save(tmp_path / "t.pt")
    loaded = TD3BCTeacher.load(tmp_path / "t.pt")
    states, actions, _ = data_tensors(dataset)
    assert torch.equal(loaded.act(states), teacher.act(states))
    assert torch.equal(loaded.q(states, actions), teacher.q(states, actions))
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert torch.equal(loaded.act(states, False, g1), teacher.act(states, False, g2))
    np.testing.assert_array_equal(loaded.normaliser.mean, dataset.state_normaliser().mean)
    np.testing.assert_array_equal(loaded.normaliser.std, dataset.state_normaliser().std)
    assert loaded.cfg == teacher.cfg and loaded.history == teacher.history
    assert loaded.provenance["dataset_hash"] == dataset.content_hash
    assert not any(p.requires_grad for p in loaded.parameters())


def test_load_rejects_foreign_file(tmp_path):
    torch.save({"actor": {}}, tmp_path / "x.pt")
    with pytest.raises(ValueError, match="not an sdw teacher file"):
        TD3BCTeacher.load(tmp_path / "x.pt")


# --- cache --------------------------------------------------------------------------------------

def forbid_training(monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("trained although the cache holds this teacher")
    monkeypatch.setattr(train_module, "TD3BCTrainer", boom)


def test_cache_hit_returns_identical_weights_without_training(dataset, tmp_path, monkeypatch):
    first = train_teacher(dataset, SMALL, tmp_path)
    entries = list((tmp_path / "td3bc").glob("*.pt"))
    assert len(entries) == 1 and entries[0].with_suffix(".json").exists()
    forbid_training(monkeypatch)
    second = train_teacher(dataset, replace(SMALL, log_every=7, eval_every=5), tmp_path)
    assert_same_weights(first, second)


def test_config_change_retrains(dataset, tmp_path):
    first = train_teacher(dataset, SMALL, tmp_path)
    second = train_teacher(dataset, replace(SMALL, seed=1), tmp_path)
    assert len(list((tmp_path / "td3bc").glob("*.pt"))) == 2
    assert not torch.equal(first.actor.net.weight_0, second.actor.net.weight_0)


def test_dataset_change_retrains(dataset, tmp_path):
    train_teacher(dataset, SMALL, tmp_path)
    train_teacher(linear_dataset(seed=1), SMALL, tmp_path)
    assert len(list((tmp_path / "td3bc").glob("*.pt"))) == 2


def test_run_fields_stay_out_of_the_cache_key():
    run_only = replace(SMALL, device="cuda", eval_every=3, log_every=1, checkpoint_every=9)
    key = config_hash(SMALL.training_fields())
    assert key == config_hash(run_only.training_fields())
    assert key != config_hash(replace(SMALL, tau=0.01).training_fields())


def cache_entry(tmp_path: Path) -> Path:
    (entry,) = [p for p in (tmp_path / "td3bc").glob("*.pt") if not p.name.endswith(".partial.pt")]
    return entry


@pytest.mark.parametrize("damage", ["truncate", "garbage", "wrong_key"])
def test_corrupt_cache_file_is_retrained_with_a_warning(dataset, tmp_path, damage):
    first = train_teacher(dataset, SMALL, tmp_path)
    entry = cache_entry(tmp_path)
    if damage == "truncate":
        entry.write_bytes(entry.read_bytes()[:1000])
    elif damage == "garbage":
        entry.write_bytes(b"not a torch file")
    else:  # a valid record of another config under this key
        other = train_teacher(dataset, replace(SMALL, seed=5), None)
        other.provenance["dataset_hash"] = dataset.content_hash
        other.save(entry)
    with pytest.warns(UserWarning, match="retraining"):
        second = train_teacher(dataset, SMALL, tmp_path)
    assert_same_weights(first, second)  # retrained (deterministic), and the entry is valid again
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert_same_weights(first, train_teacher(dataset, SMALL, tmp_path))


def test_interrupted_training_resumes_to_the_same_weights(dataset, tmp_path, monkeypatch):
    cfg = replace(SMALL, steps=200, checkpoint_every=100)
    reference = train_teacher(dataset, cfg, None)

    real_step = TD3BCTrainer.step

    def interrupted_step(self):
        if self.step_count == 150:
            raise KeyboardInterrupt
        real_step(self)

    monkeypatch.setattr(TD3BCTrainer, "step", interrupted_step)
    with pytest.raises(KeyboardInterrupt):
        train_teacher(dataset, cfg, tmp_path)
    partial = list((tmp_path / "td3bc").glob("*.partial.pt"))
    assert len(partial) == 1
    monkeypatch.setattr(TD3BCTrainer, "step", real_step)
    resumed = train_teacher(dataset, cfg, tmp_path)
    assert_same_weights(reference, resumed)
    assert not partial[0].exists()


# --- evaluation ---------------------------------------------------------------------------------

def test_teacher_is_evaluated_and_the_score_is_cached(tmp_path, monkeypatch):
    data = hopper_random_dataset()
    cfg = replace(SMALL, steps=100, max_action=None, eval_episodes=2, eval_seed=7)
    teacher = train_teacher(data, cfg, tmp_path)
    ev = teacher.evaluation
    assert ev["episodes"] == 2 and len(ev["returns"]) == 2 and ev["step"] == 100
    assert ev["normalised_mean"] == pytest.approx(
        D4RL_REFERENCE_SCORES["hopper"].normalise(np.mean(ev["returns"])))
    summary = json.loads(cache_entry(tmp_path).with_suffix(".json").read_text())
    assert summary["evaluation"]["normalised_mean"] == ev["normalised_mean"]
    assert summary["max_action"] == 1.0  # read from Hopper-v4's action space
    forbid_training(monkeypatch)
    monkeypatch.setattr(train_module, "evaluate_teacher",
                        lambda *a, **k: pytest.fail("re-evaluated"))
    assert train_teacher(data, cfg, tmp_path).evaluation == ev


# --- configuration ------------------------------------------------------------------------------

def test_yaml_documents_every_field_and_builds_a_teacher(dataset, tmp_path):
    path = config_dir() / "teacher" / "td3bc.yaml"
    node = OmegaConf.load(path)
    node.device = "cpu"
    names = {f.name for f in fields(TD3BCConfig)}
    assert set(node) - {"_target_"} == names
    for line in path.read_text().splitlines():
        if line.split(":")[0] in names:
            assert "#" in line, f"undocumented field: {line}"
    small = OmegaConf.merge(node, {"steps": 20, "hidden_dims": [8], "max_action": 1.0,
                                   "eval_episodes": 0})
    teacher = build_teacher(instantiate(small), dataset, tmp_path)
    assert isinstance(teacher, TD3BCTeacher) and cache_entry(tmp_path).exists()


def test_bad_config_is_rejected_with_the_field_name(dataset):
    with pytest.raises(ValueError, match="stpes"):
        train_teacher(dataset, {"stpes": 10}, None)
    with pytest.raises(ValueError, match="batch_size"):
        TD3BCConfig(batch_size=0)
    with pytest.raises(ValueError, match="max_action"):
        train_teacher(dataset, replace(SMALL, max_action=None), None)  # env "none" does not exist


def test_cache_ignores_missing_entry(tmp_path):
    assert TeacherCache(tmp_path).load(tmp_path / "nope.pt", {}) is None


def cache_files(root: Path) -> list[Path]:
    """The cache's files, without the locks that guard their making (`.locks/`)."""
    return sorted(p for p in root.rglob("*") if p.is_file() and p.parent.name != ".locks")


@pytest.mark.parametrize(("checkpoint_every", "found_by"), [(0, "critic_loss"), (50, "weights")])
def test_diverged_training_is_an_error_and_caches_nothing(dataset, tmp_path, checkpoint_every,
                                                           found_by):
    cfg = replace(SMALL, actor_lr=1e30, critic_lr=1e30, checkpoint_every=checkpoint_every)
    cache = tmp_path / "cache"
    with pytest.raises(TeacherDivergedError) as e:
        train_teacher(dataset, cfg, cache)
    message = str(e.value)
    step = checkpoint_every or SMALL.log_every
    assert f"diverged by step {step} (not finite: {found_by}" in message
    assert "actor_lr=1e+30, critic_lr=1e+30" in message and "defaults actor_lr=0.0003" in message
    assert "'tiny-linear'" in message and "\n" not in message
    assert cache_files(cache) == []


def test_divergence_removes_the_checkpoint_of_the_run(dataset, tmp_path, monkeypatch):
    cfg = replace(SMALL, steps=300, checkpoint_every=100)
    real_step = TD3BCTrainer.step

    def poisoned_after_150(self):
        real_step(self)
        if self.step_count == 150:
            with torch.no_grad():
                self.teacher.critic.weight_0.fill_(float("nan"))

    monkeypatch.setattr(TD3BCTrainer, "step", poisoned_after_150)
    partials = []
    real_stop = train_module._stop_if_diverged

    def watch(trainer, cache, entry, stats=None):
        partials.extend(cache.root.rglob("*.partial.pt"))
        real_stop(trainer, cache, entry, stats)

    monkeypatch.setattr(train_module, "_stop_if_diverged", watch)
    with pytest.raises(TeacherDivergedError, match=r"by step 200 \(not finite: critic_loss"):
        train_teacher(dataset, cfg, tmp_path / "cache")
    assert partials, "the finite checkpoint at step 100 was written"
    assert cache_files(tmp_path / "cache") == []


def test_unwritable_cache_is_reported_before_training_and_the_teacher_kept(dataset, tmp_path,
                                                                             monkeypatch):
    (tmp_path / "file").write_text("not a directory")
    steps_after_warning = []
    real_step = TD3BCTrainer.step

    def step(self):
        steps_after_warning.append(len(caught))
        real_step(self)

    monkeypatch.setattr(TD3BCTrainer, "step", step)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        teacher = train_teacher(dataset, SMALL, tmp_path / "file" / "cache")
    (warning,) = [w for w in caught if "teacher cache" in str(w.message)]
    assert "file is a file, not a directory" in str(warning.message)
    assert "trained but not cached" in str(warning.message)
    assert steps_after_warning[0] == 1 and len(steps_after_warning) == SMALL.steps
    assert isinstance(teacher, TD3BCTeacher)
    assert all(torch.isfinite(p).all() for p in teacher.parameters())


def test_failed_cache_write_after_training_warns_and_returns_the_teacher(dataset, tmp_path,
                                                                         monkeypatch):
    def disk_full(self, path, record, summary):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(TeacherCache, "save", disk_full)
    with pytest.warns(UserWarning, match="No space left on device.*returns its teacher"):
        teacher = train_teacher(dataset, SMALL, tmp_path / "cache")
    assert_same_weights(teacher, train_teacher(dataset, SMALL, None))


def test_read_only_cache_hit_that_needs_a_new_evaluation_keeps_the_teacher(dataset, tmp_path,
                                                                          monkeypatch):
    first = train_teacher(dataset, SMALL, tmp_path)
    evaluation = {"episodes": 1, "seed": SMALL.eval_seed, "summary": "stub"}
    def read_only(self, path, record, summary):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(train_module, "evaluate_teacher", lambda *a, **k: dict(evaluation))
    monkeypatch.setattr(TeacherCache, "save", read_only)
    forbid_training(monkeypatch)
    with pytest.warns(UserWarning, match="Permission denied.*returns its teacher"):
        second = train_teacher(dataset, replace(SMALL, eval_episodes=1), tmp_path)
    assert_same_weights(first, second)
    assert second.evaluation == {**evaluation, "step": SMALL.steps}


def test_a_teacher_that_must_be_trained_says_so_with_an_estimate(dataset, tmp_path, caplog):
    cfg = replace(SMALL, steps=700, checkpoint_every=5000)
    with caplog.at_level("WARNING", logger="sdw.teacher.train"):
        train_teacher(dataset, cfg, tmp_path / "cache")
    announced, estimate = [r.getMessage() for r in caplog.records][:2]
    assert announced.startswith(f"no shipped or cached td3bc teacher for {dataset.metadata.name}: "
                                "training one now for 700 steps (teacher.steps= to change; a "
                                "checkpoint every 5000 steps")
    assert "steps/s here, about" in estimate and "min to go" in estimate
