"""IQL (Kostrikov, Nair & Levine, 2021): a lean implementation of CORL's `iql.py`.

One step, in CORL's order: V(s) fits the `expectile` of min_i Q'_i(s, a) (target critics); the
twin critics regress onto r + gamma * (1 - done) * V(s') (V before this step's update); the
target critics move by `tau`; the Gaussian actor maximises
exp(beta * (min_i Q'_i(s, a) - V(s))) (clipped at `max_exp_adv`) * log pi(a|s), its learning
rate following a cosine schedule over `steps`. With `deterministic_actor` (CORL's
DeterministicPolicy, used on hopper medium and medium-replay) the actor is max_action *
tanh(MLP(s)) and minimises the same weights times its squared error to the data's action.
Rewards are scaled by 1000 / (max - min episode return) when `normalize_reward` (CORL does so on
hopper medium and medium-replay only).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from sdw.data.dataset import OfflineDataset, StateNormaliser
from sdw.teacher.offline_rl import MLPEnsemble, OfflineRLConfig, OfflineTeacher, OfflineTrainer

LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0
REWARD_HORIZON = 1000
"""CORL's `max_episode_steps` in the reward scale 1000 / (max return - min return)."""


@dataclass(frozen=True)
class IQLConfig(OfflineRLConfig):
    """IQL hyper-parameters; defaults are CORL's for most D4RL locomotion datasets, except
    `steps` (conf/teacher/iql-corl-*.yaml hold CORL's per-dataset exceptions)."""

    ALGORITHM: ClassVar[str] = "iql"
    IMPLEMENTATION_VERSION: ClassVar[int] = 1

    actor_lr: float = 3e-4
    critic_lr: float = 3e-4
    value_lr: float = 3e-4
    expectile: float = 0.7
    beta: float = 3.0
    max_exp_adv: float = 100.0
    normalize_reward: bool = False
    deterministic_actor: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 < self.expectile < 1.0:
            raise ValueError(f"IQLConfig.expectile must be in (0, 1), got {self.expectile}.")


class GaussianActor(nn.Module):
    """N(tanh(MLP(s)), diag(exp(log_std))^2) with a state-independent log_std, as CORL's IQL."""

    def __init__(self, obs_dim: int, act_dim: int, hidden_dims: tuple[int, ...],
                 generator: torch.Generator) -> None:
        super().__init__()
        self.net = MLPEnsemble(1, obs_dim, hidden_dims, act_dim, generator)
        self.log_std = nn.Parameter(torch.zeros(act_dim))

    def forward(self, states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean (B, act_dim) in [-1, 1] and log std (act_dim,)."""
        return torch.tanh(self.net(states)[0]), self.log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)

    def log_prob(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        mean, log_std = self(states)
        z = (actions - mean) * torch.exp(-log_std)
        return (-0.5 * z.square() - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)


class IQLTeacher(OfflineTeacher):
    """An IQL actor, twin critic and value net behind the `Teacher` protocol.

    `act(s, deterministic=True)` is max_action * the Gaussian's mean; `act(s, deterministic=False)`
    samples the Gaussian, scales by max_action and clips to [-max_action, max_action] (as CORL's
    `act` in training mode), except with a deterministic actor, whose action is never sampled
    (as CORL's DeterministicPolicy). `q(s, a)` is critic 1.
    """

    CONFIG = IQLConfig

    def __init__(self, obs_dim: int, act_dim: int, cfg: IQLConfig, normaliser: StateNormaliser,
                 generator: torch.Generator | None = None) -> None:
        super().__init__(obs_dim, act_dim, cfg, normaliser)
        g = generator if generator is not None else torch.Generator().manual_seed(cfg.seed)
        self.actor = GaussianActor(obs_dim, act_dim, cfg.hidden_dims, g)
        self.critic = MLPEnsemble(2, obs_dim + act_dim, cfg.hidden_dims, 1, g)
        self.value = MLPEnsemble(1, obs_dim, cfg.hidden_dims, 1, g)

    def act(self, states: torch.Tensor, deterministic: bool = True,
            generator: torch.Generator | None = None) -> torch.Tensor:
        mean, log_std = self.actor(states)
        if not deterministic and not self.cfg.deterministic_actor:
            noise = torch.randn(mean.shape, generator=generator, device=mean.device,
                                dtype=mean.dtype)
            mean = mean + torch.exp(log_std) * noise
        return (self.max_action * mean).clamp(-self.max_action, self.max_action)

    def q(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return self.critic(torch.cat([states, actions], 1), members=slice(0, 1))[0, :, 0]


def reward_scale(dataset: OfflineDataset) -> float:
    """CORL's locomotion reward scale: 1000 / (max - min episode return)."""
    returns = dataset.episode_returns()
    spread = float(np.max(returns) - np.min(returns))
    if spread <= 0:
        raise ValueError(f"dataset {dataset.metadata.name!r}: all episode returns are equal, so "
                         "the IQL reward scale is undefined; set normalize_reward: false.")
    return REWARD_HORIZON / spread


class IQLTrainer(OfflineTrainer):
    """IQL training state; `step()` updates V, both critics, the target critics and the actor."""

    TEACHER = IQLTeacher
    STAT_NAMES = ("value_loss", "critic_loss", "actor_loss", "adv_mean")

    def __init__(self, dataset: OfflineDataset, cfg: IQLConfig) -> None:
        super().__init__(dataset, cfg, reward_scale(dataset) if cfg.normalize_reward else 1.0)
        teacher = self.teacher
        self.optimizers = {"all": torch.optim.Adam([
            {"params": teacher.actor.parameters(), "lr": cfg.actor_lr},
            {"params": teacher.critic.parameters(), "lr": cfg.critic_lr},
            {"params": teacher.value.parameters(), "lr": cfg.value_lr},
        ], fused=True)}

        def cosine(t: int) -> float:
            return 0.5 * (1.0 + math.cos(math.pi * min(t, cfg.steps) / cfg.steps))

        self.schedulers = {"all": torch.optim.lr_scheduler.LambdaLR(
            self.optimizers["all"], [cosine, lambda t: 1.0, lambda t: 1.0])}
        self.online_critic = list(teacher.critic.parameters())
        self.target_critic = list(self.target.critic.parameters())

    def step(self) -> None:
        """The three losses touch disjoint parameters and none reads another's updated weights,
        so one backward and one Adam step over all of them equal CORL's three updates."""
        cfg, teacher = self.cfg, self.teacher
        s, a, r, s2, not_done = self.sample()
        sa = torch.cat([s, a], 1)
        with torch.no_grad():
            next_v = teacher.value(s2)[0]
            target_q = self.target.critic(sa).amin(0)
        adv = target_q - teacher.value(s)[0]
        value_loss = ((cfg.expectile - (adv < 0).float()).abs() * adv.square()).mean()
        q = teacher.critic(sa)
        critic_loss = (q - (r + not_done * cfg.discount * next_v)).square().mean(dim=(1, 2)).mean()
        weights = torch.exp(cfg.beta * adv.detach()).clamp(max=cfg.max_exp_adv)[:, 0]
        if cfg.deterministic_actor:
            error = (teacher.max_action * teacher.actor(s)[0] - a).square().sum(-1)
            actor_loss = (weights * error).mean()
        else:
            actor_loss = -(weights * teacher.actor.log_prob(s, a)).mean()

        optimizer = self.optimizers["all"]
        optimizer.zero_grad(set_to_none=True)
        (value_loss + critic_loss + actor_loss).backward()
        optimizer.step()
        self.schedulers["all"].step()
        with torch.no_grad():
            torch._foreach_lerp_(self.target_critic, self.online_critic, cfg.tau)
        self.step_count += 1
        self.record_stats(value_loss, critic_loss, actor_loss, adv.mean())
