"""TD3+BC (Fujimoto & Gu, 2021): a lean, CPU-friendly implementation of CORL's `td3_bc.py`.

One step: the twin critics regress onto r + gamma * (1 - done) * min_i Q'_i(s', a') with
a' = clip(pi'(s') + clip(N(0, policy_noise^2), +-noise_clip), +-max_action); every
`policy_freq` steps the actor minimises -lambda * Q_1(s, pi(s)) + ||pi(s) - a||^2 with
lambda = alpha / mean|Q_1(s, pi(s))| (not differentiated), and the targets move by `tau`.
Beyond the shared speed-ups (`offline_rl`), the actor loss reads the critic through detached
weights, so its backward computes no critic weight gradients.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from sdw.data.dataset import OfflineDataset, StateNormaliser
from sdw.teacher.offline_rl import MLPEnsemble, OfflineRLConfig, OfflineTeacher, OfflineTrainer


@dataclass(frozen=True)
class TD3BCConfig(OfflineRLConfig):
    """TD3+BC hyper-parameters; defaults are the paper's / CORL's, except `steps`."""

    ALGORITHM: ClassVar[str] = "td3bc"
    IMPLEMENTATION_VERSION: ClassVar[int] = 1

    actor_lr: float = 3e-4
    critic_lr: float = 3e-4
    policy_noise: float = 0.2
    noise_clip: float = 0.5
    policy_freq: int = 2
    alpha: float = 2.5
    expl_noise: float = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.policy_freq < 1:
            raise ValueError(f"TD3BCConfig.policy_freq must be >= 1, got {self.policy_freq}.")


class DeterministicActor(nn.Module):
    """s -> max_action * tanh(MLP(s)), the TD3 actor."""

    def __init__(self, obs_dim: int, act_dim: int, hidden_dims: tuple[int, ...], max_action: float,
                 generator: torch.Generator) -> None:
        super().__init__()
        self.net = MLPEnsemble(1, obs_dim, hidden_dims, act_dim, generator)
        self.max_action = max_action

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        return self.max_action * torch.tanh(self.net(states)[0])


class TD3BCTeacher(OfflineTeacher):
    """A TD3+BC actor and twin critic behind the `Teacher` protocol.

    `act(s, deterministic=True)` is the actor's action; `act(s, deterministic=False)` adds TD3's
    Gaussian exploration noise N(0, (expl_noise * max_action)^2) and clips to [-max_action,
    max_action] (drawn from `generator`, else torch's global RNG). `q(s, a)` is critic 1, as the
    OBD code uses. States are normalised with `normaliser` (the qlearning-view statistics).
    """

    CONFIG = TD3BCConfig

    def __init__(self, obs_dim: int, act_dim: int, cfg: TD3BCConfig, normaliser: StateNormaliser,
                 generator: torch.Generator | None = None) -> None:
        super().__init__(obs_dim, act_dim, cfg, normaliser)
        g = generator if generator is not None else torch.Generator().manual_seed(cfg.seed)
        self.actor = DeterministicActor(obs_dim, act_dim, cfg.hidden_dims, self.max_action, g)
        self.critic = MLPEnsemble(2, obs_dim + act_dim, cfg.hidden_dims, 1, g)

    def act(self, states: torch.Tensor, deterministic: bool = True,
            generator: torch.Generator | None = None) -> torch.Tensor:
        actions = self.actor(states)
        if deterministic:
            return actions
        noise = torch.randn(actions.shape, generator=generator, device=actions.device,
                            dtype=actions.dtype)
        return (actions + self.cfg.expl_noise * self.max_action * noise).clamp(
            -self.max_action, self.max_action)

    def q(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return self.critic(torch.cat([states, actions], 1), members=slice(0, 1))[0, :, 0]


class TD3BCTrainer(OfflineTrainer):
    """TD3+BC training state; `step()` is one critic step (plus actor and targets every
    `policy_freq`). Statistics are recorded on actor steps."""

    TEACHER = TD3BCTeacher
    STAT_NAMES = ("critic_loss", "actor_loss", "bc_mse", "q_mean")

    def __init__(self, dataset: OfflineDataset, cfg: TD3BCConfig) -> None:
        super().__init__(dataset, cfg)
        self.optimizers = {"actor": self.adam(self.teacher.actor, cfg.actor_lr),
                           "critic": self.adam(self.teacher.critic, cfg.critic_lr)}
        self.online_params = list(self.teacher.parameters())
        self.target_params = list(self.target.parameters())

    def step(self) -> None:
        cfg, teacher, target = self.cfg, self.teacher, self.target
        s, a, r, s2, not_done = self.sample()
        max_action = teacher.max_action
        with torch.no_grad():
            noise = torch.randn(a.shape, generator=self.generator, device=self.device)
            noise = (noise * cfg.policy_noise * max_action).clamp(-cfg.noise_clip * max_action,
                                                                  cfg.noise_clip * max_action)
            a2 = (target.actor(s2) + noise).clamp(-max_action, max_action)
            q_next = target.critic(torch.cat([s2, a2], 1)).amin(0)
            q_target = r + not_done * cfg.discount * q_next
        q = teacher.critic(torch.cat([s, a], 1))
        critic_loss = (q - q_target).square().mean(dim=(1, 2)).sum()
        critic_opt, actor_opt = self.optimizers["critic"], self.optimizers["actor"]
        critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        critic_opt.step()
        self.step_count += 1
        if self.step_count % cfg.policy_freq:
            return
        pi = teacher.actor(s)
        q_pi = teacher.critic(torch.cat([s, pi], 1), members=slice(0, 1), detach=True)
        lmbda = cfg.alpha / q_pi.abs().mean().detach()
        bc_mse = (pi - a).square().mean()
        actor_loss = -lmbda * q_pi.mean() + bc_mse
        actor_opt.zero_grad(set_to_none=True)
        actor_loss.backward()
        actor_opt.step()
        with torch.no_grad():
            torch._foreach_lerp_(self.target_params, self.online_params, cfg.tau)
        self.record_stats(critic_loss, actor_loss, bc_mse, q.mean())
