"""The `none` estimator: the same log density (0) for every state, so every weight is equal."""

from __future__ import annotations

from typing import Any

import numpy as np

from sdw.density.base import DensityEstimator


class ConstantDensity(DensityEstimator):
    """log p(s) = 0 everywhere; any weighting of it is uniform (plain OBD)."""

    name = "none"
    cached = False

    def cache_params(self) -> dict[str, Any]:
        return {}

    def fit(self, states: np.ndarray) -> ConstantDensity:
        self._remember(states, min_states=1)
        return self

    def log_density(self, states: np.ndarray) -> np.ndarray:
        return np.zeros(len(self._query(states)), dtype=np.float64)
