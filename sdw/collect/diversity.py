"""State diversity of a dataset: mean k-nearest-neighbour distance in normalised state space."""

from __future__ import annotations

import numpy as np

from sdw.data.dataset import StateNormaliser


def mean_knn_distance(states: np.ndarray, normaliser: StateNormaliser, k: int = 10,
                      n_samples: int = 10_000, seed: int = 0) -> float:
    """Mean distance of each of `n_samples` sampled states to its k nearest other sampled states.

    Every dataset compared must use the same `normaliser`, `k` and `n_samples` (the distance
    shrinks as the sample grows); a larger value means states spread more widely.
    """
    from sklearn.neighbors import NearestNeighbors

    if len(states) <= k:
        raise ValueError(f"need more than k={k} states, got {len(states)}")
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(states), size=min(n_samples, len(states)), replace=False)
    x = normaliser(states[idx])
    dist, _ = NearestNeighbors(n_neighbors=k + 1).fit(x).kneighbors(x)
    return float(dist[:, 1:].mean())
