"""State diversity and state quality of datasets, compared within one environment.

Diversity is measured in one normalised state space per environment (the pooled mean / std of
all compared datasets of that env), never each dataset's own, which would wash diversity out.
Every statistic that depends on the number of states uses the same fixed sample size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter

from sdw.collect.diversity import mean_knn_distance
from sdw.data.dataset import OfflineDataset, StateNormaliser


@dataclass(frozen=True)
class MetricsConfig:
    """Settings of the diversity and quality statistics (conf/analyze.yaml, `metrics`)."""

    knn_k: int = 10
    samples: int = 10_000
    bins: int = 20
    gamma: float = 0.99
    horizon: int = 1000
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("knn_k", "samples", "bins", "horizon"):
            if getattr(self, name) < 1:
                raise ValueError(f"metrics.{name} must be >= 1, got {getattr(self, name)}.")
        if not 0 <= self.gamma < 1:
            raise ValueError(f"metrics.gamma must be in [0, 1), got {self.gamma}.")


@dataclass(frozen=True)
class Projection:
    """A fixed 2-D grid over the top two principal axes of an env's pooled normalised states."""

    axes: np.ndarray
    low: np.ndarray
    high: np.ndarray
    bins: int

    @classmethod
    def fit(cls, normalised: np.ndarray, bins: int) -> Projection:
        """Axes from the SVD of the centred states; grid edges at the 0.5 / 99.5 percentiles."""
        centred = normalised - normalised.mean(0)
        axes = np.linalg.svd(centred, full_matrices=False)[2][:2].T
        projected = normalised @ axes
        low, high = np.percentile(projected, [0.5, 99.5], axis=0)
        return cls(axes, low, high, bins)

    def occupied_fraction(self, normalised: np.ndarray) -> float:
        """Fraction of the bins x bins cells holding at least one state (outside: edge cells)."""
        cells = (normalised @ self.axes - self.low) / (self.high - self.low) * self.bins
        cells = np.clip(cells.astype(np.int64), 0, self.bins - 1)
        return len(np.unique(cells[:, 0] * self.bins + cells[:, 1])) / self.bins ** 2


def discounted_return_to_go(rewards: np.ndarray, episode_ends: np.ndarray,
                            gamma: float) -> np.ndarray:
    """G_t = sum_k gamma^k r_{t+k} within each episode (`episode_ends`: exclusive ends).

    An episode cut by a timeout or the end of the data gets no bootstrap: its last states' G is
    the reward left in the data.
    """
    out = np.empty(len(rewards), dtype=np.float64)
    start = 0
    for end in episode_ends:
        reverse = rewards[start:end][::-1].astype(np.float64)
        out[start:end] = lfilter([1.0], [1.0, -gamma], reverse)[::-1]
        start = end
    return out


def log_volume(normalised: np.ndarray) -> float:
    """0.5 log det of the covariance: a Gaussian's entropy up to a constant (a volume proxy)."""
    sign, logdet = np.linalg.slogdet(np.cov(normalised, rowvar=False))
    return float(0.5 * logdet) if sign > 0 else float("-inf")


def _sample(states: np.ndarray, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return states[rng.choice(len(states), size=min(n, len(states)), replace=False)]


def dataset_metrics(datasets: Sequence[OfflineDataset], cfg: MetricsConfig) -> list[dict]:
    """One row of diversity and quality statistics per dataset, in the given order.

    Datasets are grouped by evaluation env; each group shares one normaliser (pooled statistics
    of its datasets' states) and one coverage grid.
    """
    rows: dict[int, dict] = {}
    for env_id in dict.fromkeys(d.metadata.env_id for d in datasets):
        group = [(i, d) for i, d in enumerate(datasets) if d.metadata.env_id == env_id]
        pooled = np.concatenate([d.observations for _, d in group])
        normaliser = StateNormaliser.fit(pooled)
        grid = Projection.fit(normaliser(_sample(pooled, 10 * cfg.samples, cfg.seed)), cfg.bins)
        for i, dataset in group:
            sample = normaliser(_sample(dataset.observations, cfg.samples, cfg.seed))
            rows[i] = {
                "dataset": dataset.metadata.name, "env_id": env_id,
                "transitions": len(dataset), "episodes": len(dataset.episode_ends),
                "knn_distance": mean_knn_distance(dataset.observations, normaliser,
                                                  k=cfg.knn_k, n_samples=cfg.samples,
                                                  seed=cfg.seed),
                "coverage": grid.occupied_fraction(sample),
                "log_volume": log_volume(sample),
                **quality(dataset, cfg)}
    return [rows[i] for i in range(len(datasets))]


def quality(dataset: OfflineDataset, cfg: MetricsConfig) -> dict:
    """Mean discounted return-to-go of the states, and episode returns, raw and normalised.

    The normalised return-to-go is the normalised score of a `horizon`-step episode earning the
    state's discounted reward rate (1 - gamma) G throughout; None without reference scores.
    """
    rtg = discounted_return_to_go(dataset.rewards, dataset.episode_ends, cfg.gamma)
    returns = dataset.episode_returns(complete_only=True)
    if len(returns) == 0:  # no complete episode: the unfinished one stands in
        returns = dataset.episode_returns()
    per_state = np.repeat(dataset.episode_returns(), np.diff(dataset.episode_ends, prepend=0))
    rate_return = (1 - cfg.gamma) * cfg.horizon * rtg.mean()
    normalise = dataset.normalised_score
    scored = dataset.metadata.reference_scores is not None
    return {
        "rtg_mean": float(rtg.mean()),
        "rtg_normalised": float(normalise(rate_return)) if scored else None,
        "return_mean": float(returns.mean()),
        "return_normalised": float(normalise(returns.mean())) if scored else None,
        "state_return_normalised": float(normalise(per_state.mean())) if scored else None,
    }


COLUMNS = {"dataset": "dataset", "transitions": "transitions", "episodes": "episodes",
           "knn_distance": "kNN distance", "coverage": "coverage", "log_volume": "log-volume",
           "rtg_normalised": "RTG (norm.)", "return_normalised": "episode return (norm.)",
           "state_return_normalised": "state's episode return (norm.)",
           "rtg_mean": "RTG (raw)", "return_mean": "episode return (raw)"}
"""Table columns (key -> Markdown header), in order."""
