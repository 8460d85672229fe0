"""From a dataset and two configs to the engine's `state_weights` callable: the one call to make."""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from sdw.atomic import unwritable_reason
from sdw.data.dataset import OfflineDataset
from sdw.density.base import DensityError, DensityEstimator
from sdw.density.cache import LogDensityCache, cache_key
from sdw.density.diagnostics import WeightDiagnostics, weight_diagnostics
from sdw.density.registry import make_estimator, make_weighting
from sdw.density.state_weights import StateWeights
from sdw.density.weighting import WeightingScheme
from sdw.locks import exclusive, lock_for

log = logging.getLogger(__name__)


def density_states(dataset: OfflineDataset) -> np.ndarray:
    """The states estimators are fitted on: the qlearning view, normalised with the dataset's statistics.

    Row i is the state the engine's index i refers to.
    """
    return dataset.state_normaliser()(dataset.qlearning_view().observations)


def state_log_density(
    dataset: OfflineDataset,
    estimator: DensityEstimator,
    cache_dir: str | os.PathLike | None,
) -> np.ndarray:
    """Log density of every state of the qlearning view, from the cache when it holds them.

    The cache is optional: one that cannot be written is reported before the estimate is computed,
    and a write that fails afterwards is reported; either way the log densities are returned.
    Jobs asking for the same uncached density at once fit it once (the others wait for the lock).
    """
    states = density_states(dataset)
    cache = LogDensityCache(cache_dir) if cache_dir is not None and estimator.cached else None
    key = cache_key(dataset.content_hash, estimator)
    if cache is not None:
        cached = cache.load(key, len(states))
        if cached is not None:
            log.info("density: cache hit %s", cache.path(key))
            return cached
        reason = unwritable_reason(cache.path(key))
        if reason is not None:
            warnings.warn(f"density cache {cache.directory} cannot be written ({reason}): the log "
                          "densities are computed but not cached. Set cache_dir to a writable "
                          "directory (or null).", stacklevel=2)
            cache = None
    if cache is None:
        return _fit(estimator, states)
    with exclusive(lock_for(cache.path(key)), what=f"the {estimator.name} density"):
        cached = cache.load(key, len(states))  # another job fitted it while this one waited
        if cached is not None:
            log.info("density: cache hit %s", cache.path(key))
            return cached
        values = _fit(estimator, states)
        try:
            log.info("density: cached at %s", cache.save(key, values))
        except OSError as e:
            warnings.warn(f"could not write the density cache file {cache.path(key)} ({e}); the "
                          "log densities are returned but not cached.", stacklevel=2)
    return values


def _fit(estimator: DensityEstimator, states: np.ndarray) -> np.ndarray:
    """The estimator's log density of every state, checked finite."""
    start = time.perf_counter()
    values = estimator.fit(states).fitted_log_density()
    log.info("density: %s on %d x %d states in %.1f s", estimator.name, *states.shape,
             time.perf_counter() - start)
    bad = ~np.isfinite(values)
    if bad.any():
        raise DensityError(f"density {estimator.name}: {int(bad.sum())} of {len(values)} log densities "
                           f"are not finite (first at state {int(np.flatnonzero(bad)[0])}).")
    return values


def build_state_weights(
    dataset: OfflineDataset,
    density: str | Mapping | DictConfig | DensityEstimator,
    weighting: str | Mapping | DictConfig | WeightingScheme,
    cache_dir: str | os.PathLike | None,
    *,
    q_values: np.ndarray | None = None,
    q_indices: np.ndarray | None = None,
    histogram_path: str | Path | None = None,
) -> tuple[StateWeights, WeightDiagnostics]:
    """The engine's `state_weights` callable for `dataset` and its diagnostics.

    `density` and `weighting` are config names (`kde`, `self-normalised`), configs with
    `_target_`, or built objects. A weighting with alpha = 0 (`none`) fits no estimator.
    `q_values` (optionally at qlearning-view `q_indices`) give the Spearman(w, Q*) diagnostic;
    `histogram_path` where to write the histogram PNG.
    """
    scheme = make_weighting(weighting)
    estimator = make_estimator(density) if scheme.uses_density else None
    if estimator is None:
        log_density = None
        log_weights = scheme.log_weights(np.zeros(len(dataset.qlearning_view())))
    else:
        log_density = state_log_density(dataset, estimator, cache_dir)
        log_weights = scheme.log_weights(log_density)
    weights = StateWeights(log_weights, per_batch=scheme.per_batch, compose=scheme.compose)
    diagnostics = weight_diagnostics(
        log_weights, scheme.name, estimator.name if estimator else None, log_density,
        q_values=q_values, q_indices=q_indices, histogram_path=histogram_path,
    )
    log.info("density: %s", diagnostics.summary())
    return weights, diagnostics
