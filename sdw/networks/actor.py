"""Actors: CORL's tanh-Gaussian policy (state_dict-compatible) and a deterministic tanh policy."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from sdw.networks.mlp import (ORTHOGONAL_GAIN, Scalar, Skips, build_mlp, check_activation,
                              check_skips, orthogonal_init_)

LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0
"""Clamp of the tanh-Gaussian log standard deviation (CORL)."""

HEADS = ("tanh_gaussian", "deterministic")


class TanhGaussianActor(nn.Module):
    """a = max_action * tanh(mean + std * eps); log_std = m * raw + c, clamped to [-20, 2].

    Parameter names match CORL's `TanhGaussianPolicy` (`base_network.*`,
    `log_std_multiplier.constant`, `log_std_offset.constant`), so CORL checkpoints load as they
    are. `deterministic=True` gives max_action * tanh(mean).
    """

    def __init__(self, obs_dim: int, act_dim: int, max_action: float = 1.0,
                 hidden_sizes: tuple[int, ...] = (256, 256, 256), activation: str = "relu",
                 residual: bool = False, skips: Skips = (), log_std_multiplier: float = 1.0,
                 log_std_offset: float = -1.0):
        super().__init__()
        self.act_dim = act_dim
        self.max_action = max_action
        self.base_network = build_mlp([obs_dim, *hidden_sizes, 2 * act_dim], activation, residual,
                                      skips)
        self.log_std_multiplier = Scalar(log_std_multiplier)
        self.log_std_offset = Scalar(log_std_offset)

    def mean_log_std(self, states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, raw = torch.split(self.base_network(states), self.act_dim, dim=-1)
        log_std = self.log_std_multiplier() * raw + self.log_std_offset()
        return mean, log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)

    def forward(self, states: torch.Tensor, deterministic: bool = False,
                noise: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """Actions for normalised `states`; `noise` (standard normal, like the actions) if given."""
        mean, log_std = self.mean_log_std(states)
        if deterministic:
            return self.max_action * torch.tanh(mean)
        if noise is None:
            noise = torch.randn(mean.shape, generator=generator, device=mean.device,
                                dtype=mean.dtype)
        return self.max_action * torch.tanh(mean + log_std.exp() * noise)


class DeterministicActor(nn.Module):
    """a = max_action * tanh(f(s)), with this package's MLP body and orthogonal init.

    Not OBD's `DetContPolicy` (hidden [400, 300], fan-in init, bias 0.1), which the official code
    uses with DBC only.
    """

    def __init__(self, obs_dim: int, act_dim: int, max_action: float = 1.0,
                 hidden_sizes: tuple[int, ...] = (256, 256, 256), activation: str = "relu",
                 residual: bool = False, skips: Skips = ()):
        super().__init__()
        self.act_dim = act_dim
        self.max_action = max_action
        self.base_network = build_mlp([obs_dim, *hidden_sizes, act_dim], activation, residual,
                                      skips)

    def forward(self, states: torch.Tensor, deterministic: bool = True,
                noise: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """Actions for normalised `states` (the arguments of the Gaussian actor are ignored)."""
        return self.max_action * torch.tanh(self.base_network(states))


@dataclass(frozen=True)
class ActorConfig:
    """Architecture and action sampling of a student (and of actors built from scratch)."""

    hidden_sizes: tuple[int, ...] = (256, 256, 256)
    activation: str = "relu"
    residual: bool = False
    skips: Skips = ()
    head: str = "tanh_gaussian"
    sample_actions: bool = True
    max_action: float = 1.0
    log_std_multiplier: float = 1.0
    log_std_offset: float = -1.0
    orthogonal_gain: float = ORTHOGONAL_GAIN
    name: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden_sizes", tuple(int(h) for h in self.hidden_sizes))
        object.__setattr__(self, "skips", tuple((int(i), int(j)) for i, j in self.skips))
        check_activation(self.activation)
        check_skips(self.skips, self.hidden_sizes)
        if self.residual and self.skips:
            raise ValueError(f"residual: true and skips: {[list(s) for s in self.skips]} both "
                             "given; residual already adds a skip at every layer, choose one.")
        if self.head not in HEADS:
            raise ValueError(f"unknown actor head {self.head!r}; choose one of {HEADS}.")
        if not self.hidden_sizes:
            raise ValueError("hidden_sizes is empty: a student needs at least one hidden layer.")
        if self.sample_actions and self.head == "deterministic":
            raise ValueError("head=deterministic cannot sample actions: set sample_actions: false.")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["hidden_sizes"] = list(self.hidden_sizes)
        d["skips"] = [list(skip) for skip in self.skips]
        return d


def build_actor(cfg: ActorConfig, obs_dim: int, act_dim: int,
                generator: torch.Generator | None = None,
                device: str | torch.device = "cpu") -> TanhGaussianActor | DeterministicActor:
    """A freshly (orthogonally) initialised actor; `generator` makes the draw reproducible."""
    common = dict(obs_dim=obs_dim, act_dim=act_dim, max_action=cfg.max_action,
                  hidden_sizes=cfg.hidden_sizes, activation=cfg.activation, residual=cfg.residual,
                  skips=cfg.skips)
    if cfg.head == "tanh_gaussian":
        actor: nn.Module = TanhGaussianActor(**common, log_std_multiplier=cfg.log_std_multiplier,
                                             log_std_offset=cfg.log_std_offset)
    else:
        actor = DeterministicActor(**common)
    actor = actor.to(device)
    orthogonal_init_(actor.base_network, cfg.orthogonal_gain, generator)
    return actor
