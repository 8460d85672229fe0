"""Toy problems for tests and benchmarks: random datasets and a linear teacher."""

from __future__ import annotations

import numpy as np
import torch

from sdw.data.dataset import DatasetMetadata, OfflineDataset, StateNormaliser


def random_dataset(n: int, obs_dim: int = 17, act_dim: int = 6, seed: int = 0,
                   episode_length: int = 1000, env_id: str = "HalfCheetah-v4",
                   name: str = "toy") -> OfflineDataset:
    """`n` transitions of Gaussian states and uniform actions in [-1, 1], in episodes that end by
    timeout every `episode_length` steps (sized like a D4RL locomotion file, no meaning)."""
    rng = np.random.default_rng(seed)
    obs = rng.standard_normal((n + 1, obs_dim), dtype=np.float32) * 2 + 1
    timeouts = np.zeros(n, dtype=bool)
    timeouts[episode_length - 1:: episode_length] = True
    return OfflineDataset(
        observations=obs[:-1], actions=rng.uniform(-1, 1, (n, act_dim)).astype(np.float32),
        rewards=rng.standard_normal(n, dtype=np.float32), next_observations=obs[1:],
        terminals=np.zeros(n, dtype=bool), timeouts=timeouts,
        metadata=DatasetMetadata(name=name, source="toy", env_id=env_id, reference_scores=None,
                                 missing_scores_reason="toy data"))


class LinearTeacher:
    """a*(s) = clip(s K, -1, 1) for normalised states; Q*(s, a) = q0 - ||a - a*(s)||^2.

    Sampled actions add Gaussian noise of standard deviation `noise` before the clip.
    """

    def __init__(self, gain: torch.Tensor, normaliser: StateNormaliser, q0: float = 10.0,
                 noise: float = 0.1):
        self.gain, self.normaliser, self.q0, self.noise = gain, normaliser, q0, noise

    def act(self, states: torch.Tensor, deterministic: bool = True) -> torch.Tensor:
        a = states @ self.gain.to(states)
        if not deterministic:
            a = a + self.noise * torch.randn_like(a)
        return a.clamp(-1, 1)

    def q(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return self.q0 - ((actions - self.act(states)) ** 2).sum(1)
