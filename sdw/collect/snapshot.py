"""Behaviour policies as plain numpy: SAC actor snapshots and the uniform random policy."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from sdw.atomic import atomic_write
from sdw.collect import exact

LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0
"""SB3's clamp of the SAC actor's log standard deviation."""


class Behaviour(Protocol):
    """A policy that acts on a batch of raw observations; `rng` None means deterministic."""

    def act(self, obs: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray: ...


@dataclass(frozen=True)
class UniformPolicy:
    """Actions drawn uniformly from the action box (D4RL's random level and R_min)."""

    low: np.ndarray
    high: np.ndarray

    def act(self, obs: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        if rng is None:
            raise ValueError("the uniform random policy needs an rng")
        return rng.uniform(self.low, self.high, size=(len(obs), len(self.low))).astype(np.float32)


@dataclass(frozen=True)
class ActorSnapshot:
    """A SAC actor (ReLU MLP -> mean and log std -> tanh squash -> action box), in numpy.

    `weights[i]` has shape (in, out). Sampling follows SB3: a = tanh(mu + std * eps), then the
    [-1, 1] action is rescaled to [low, high].
    """

    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...]
    mu: tuple[np.ndarray, np.ndarray]
    log_std: tuple[np.ndarray, np.ndarray]
    low: np.ndarray
    high: np.ndarray

    @property
    def obs_dim(self) -> int:
        return self.weights[0].shape[0]

    @property
    def act_dim(self) -> int:
        return self.mu[0].shape[1]

    def act(self, obs: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        """Actions for a batch of observations, bit-identical on every machine (sdw.collect.exact)."""
        h = np.asarray(obs, np.float32)
        for w, b in zip(self.weights, self.biases):
            h = np.maximum(exact.affine(h, w, b), np.float32(0.0))
        u = exact.affine(h, *self.mu)
        if rng is not None:
            log_std = np.clip(exact.affine(h, *self.log_std), LOG_STD_MIN, LOG_STD_MAX)
            u = u + exact.exp(log_std) * rng.standard_normal(u.shape).astype(np.float32)
        squashed = exact.tanh(u)
        return (self.low + 0.5 * (squashed + 1.0) * (self.high - self.low)).astype(np.float32)

    def deterministic(self, obs: np.ndarray) -> np.ndarray:
        return self.act(obs, None)

    @classmethod
    def from_sb3(cls, model) -> ActorSnapshot:
        """Copy the actor of an SB3 SAC model (ReLU MlpPolicy, Box action space)."""
        import torch.nn as nn

        actor = model.actor
        linears = [m for m in actor.latent_pi if isinstance(m, nn.Linear)]
        if any(not isinstance(m, (nn.Linear, nn.ReLU)) for m in actor.latent_pi):
            raise ValueError("only SAC actors built from Linear and ReLU layers can be snapshotted")

        def np_(t) -> np.ndarray:
            return t.detach().cpu().numpy().astype(np.float32)

        return cls(
            weights=tuple(np_(m.weight).T.copy() for m in linears),
            biases=tuple(np_(m.bias) for m in linears),
            mu=(np_(actor.mu.weight).T.copy(), np_(actor.mu.bias)),
            log_std=(np_(actor.log_std.weight).T.copy(), np_(actor.log_std.bias)),
            low=np.asarray(model.action_space.low, np.float32),
            high=np.asarray(model.action_space.high, np.float32),
        )

    def save(self, path: Path, dtype: str = "float32") -> None:
        """Write an .npz; `dtype` float16 halves the size (the zoo), float32 keeps it exact."""
        arrays = {"low": self.low, "high": self.high}
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            arrays[f"w{i}"], arrays[f"b{i}"] = w.astype(dtype), b.astype(dtype)
        arrays["mu_w"], arrays["mu_b"] = (a.astype(dtype) for a in self.mu)
        arrays["log_std_w"], arrays["log_std_b"] = (a.astype(dtype) for a in self.log_std)
        atomic_write(path, lambda f: np.savez(f, **arrays))

    @classmethod
    def load(cls, path: Path) -> ActorSnapshot:
        try:
            z = np.load(path)
        except (OSError, ValueError) as e:
            raise ValueError(f"cannot read actor snapshot {path}: {e}") from e
        n = sum(1 for k in z.files if k.startswith("w"))
        f32 = lambda k: z[k].astype(np.float32)  # noqa: E731
        return cls(
            weights=tuple(f32(f"w{i}") for i in range(n)),
            biases=tuple(f32(f"b{i}") for i in range(n)),
            mu=(f32("mu_w"), f32("mu_b")),
            log_std=(f32("log_std_w"), f32("log_std_b")),
            low=f32("low"),
            high=f32("high"),
        )
