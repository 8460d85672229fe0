"""The one interface every state density estimator implements, and its input checks."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from sdw.errors import UserError


class DensityError(UserError, ValueError):
    """A density estimator or weighting got input it cannot use; the message says how to fix it."""


def check_states(states: np.ndarray, what: str, dim: int | None = None) -> np.ndarray:
    """`states` as a finite float array of shape (N, dim), or a DensityError naming the problem."""
    states = np.asarray(states)
    if states.ndim != 2:
        raise DensityError(f"{what}: expected states of shape (N, state_dim), got shape {states.shape}.")
    if dim is not None and states.shape[1] != dim:
        raise DensityError(
            f"{what}: states have {states.shape[1]} dimensions but the estimator was fitted on {dim}."
        )
    if not np.issubdtype(states.dtype, np.floating):
        states = states.astype(np.float64)
    bad = ~np.isfinite(states).all(axis=1)
    if bad.any():
        raise DensityError(
            f"{what}: {int(bad.sum())} states hold NaN or inf (first at row {int(np.flatnonzero(bad)[0])}); "
            "clean the dataset before estimating its density."
        )
    return states


class DensityEstimator(ABC):
    """Fit on the normalised states of D_off; return the log density of any states.

    `fitted_log_density()` scores the fitted states themselves. It differs from
    `log_density(fitted states)` where a state would otherwise count itself: kNN skips the state
    as its own neighbour, the subsampled KDE weights its own kernel by 1/N as the exact KDE does.
    """

    name: str = "base"
    cached: bool = True
    """Whether the log densities of D_off are worth caching on disk (False for the constant one)."""

    def __init__(self) -> None:
        self._fitted: np.ndarray | None = None

    @abstractmethod
    def fit(self, states: np.ndarray) -> DensityEstimator:
        """Fit on (N, D) normalised states; returns self."""

    @abstractmethod
    def log_density(self, states: np.ndarray) -> np.ndarray:
        """Log density (float64, shape (M,)) of (M, D) normalised states."""

    @abstractmethod
    def cache_params(self) -> dict[str, Any]:
        """The settings that change the log densities (not device or chunk sizes): the cache key."""

    def fitted_log_density(self) -> np.ndarray:
        """Log density of every fitted state (float64, shape (N,))."""
        return self.log_density(self.fitted_states)

    @property
    def fitted_states(self) -> np.ndarray:
        if self._fitted is None:
            raise DensityError(f"{type(self).__name__} is not fitted yet: call fit(states) first.")
        return self._fitted

    @property
    def dim(self) -> int:
        return self.fitted_states.shape[1]

    def _remember(self, states: np.ndarray, min_states: int = 2) -> np.ndarray:
        """Check and keep the fitted states (by reference, no copy)."""
        states = check_states(states, f"{type(self).__name__}.fit")
        if len(states) < min_states:
            raise DensityError(
                f"{type(self).__name__}.fit needs at least {min_states} states, got {len(states)}."
            )
        self._fitted = states
        return states

    def _query(self, states: np.ndarray) -> np.ndarray:
        return check_states(states, f"{type(self).__name__}.log_density", self.dim)
