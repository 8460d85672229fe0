"""Known ground truth for checking the estimators: a Gaussian mixture, and a dataset made of given states."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from sdw.data.dataset import DatasetMetadata, OfflineDataset


@dataclass(frozen=True)
class GaussianMixture:
    """Mixture of full-covariance Gaussians: `weights` (K,), `means` (K, D), `covariances` (K, D, D)."""

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray

    @classmethod
    def random(cls, n_components: int, dim: int, seed: int, separation: float = 3.0) -> GaussianMixture:
        """Random means `separation` apart on average, random correlated covariances, unequal weights."""
        rng = np.random.default_rng(seed)
        means = rng.standard_normal((n_components, dim)) * separation / np.sqrt(2.0)
        factors = rng.standard_normal((n_components, dim, dim)) / np.sqrt(dim)
        covariances = factors @ factors.transpose(0, 2, 1) + 0.3 * np.eye(dim)
        weights = rng.dirichlet(np.full(n_components, 5.0))
        return cls(weights, means, covariances)

    def sample(self, n: int, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        component = rng.choice(len(self.weights), size=n, p=self.weights)
        out = np.empty((n, self.means.shape[1]))
        for c in range(len(self.weights)):
            rows = np.flatnonzero(component == c)
            out[rows] = rng.multivariate_normal(self.means[c], self.covariances[c], size=len(rows))
        return out

    def log_density(self, states: np.ndarray) -> np.ndarray:
        parts = [np.log(w) + multivariate_normal(m, c).logpdf(states)
                 for w, m, c in zip(self.weights, self.means, self.covariances)]
        return logsumexp(np.stack(parts), axis=0)


def dataset_of_states(states: np.ndarray, name: str = "synthetic", episode_length: int = 1000) -> OfflineDataset:
    """An `OfflineDataset` whose observations are `states` (zero actions and rewards, episodes end in timeouts).

    Its qlearning view drops the last row of every episode, as d4rl does.
    """
    states = np.asarray(states, dtype=np.float32)
    n = len(states)
    timeouts = np.zeros(n, dtype=bool)
    timeouts[episode_length - 1::episode_length] = True
    return OfflineDataset(
        observations=states,
        actions=np.zeros((n, 1), np.float32),
        rewards=np.zeros(n, np.float32),
        next_observations=np.roll(states, -1, axis=0),
        terminals=np.zeros(n, dtype=bool),
        timeouts=timeouts,
        metadata=DatasetMetadata(name=name, source="synthetic", env_id="none", reference_scores=None,
                                 missing_scores_reason="synthetic states"),
    )
