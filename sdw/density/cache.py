"""On-disk cache of the log densities of D_off, keyed by dataset content hash and estimator settings."""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path

import numpy as np

from sdw.atomic import atomic_write
from sdw.density.base import DensityEstimator

CACHE_FORMAT = 1
"""Bump when the estimators change what they compute, so old cache files stop matching."""


def cache_key(dataset_hash: str, estimator: DensityEstimator) -> dict:
    """Everything the cached values depend on: the data, the state view and the estimator settings."""
    return {
        "format": CACHE_FORMAT,
        "dataset": dataset_hash,
        "states": "qlearning view, normalised with its own mean and std + 1e-3",
        "estimator": estimator.name,
        "class": f"{type(estimator).__module__}.{type(estimator).__qualname__}",
        "params": estimator.cache_params(),
    }


class LogDensityCache:
    """One .npz file per (dataset, estimator settings) in `directory`, written atomically."""

    def __init__(self, directory: str | os.PathLike) -> None:
        self.directory = Path(directory)

    def path(self, key: dict) -> Path:
        text = json.dumps(key, sort_keys=True)
        digest = hashlib.sha256(text.encode()).hexdigest()[:16]
        return self.directory / f"log-density-{key['dataset']}-{key['estimator']}-{digest}.npz"

    def load(self, key: dict, n_states: int) -> np.ndarray | None:
        """The cached log densities, or None when absent; a file that fails any check is reported and ignored."""
        path = self.path(key)
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as archive:
                stored_key = json.loads(str(archive["key"]))
                values = np.asarray(archive["log_density"])
            if stored_key != json.loads(json.dumps(key, sort_keys=True)):
                raise ValueError(f"it was written for another key ({stored_key})")
            if values.shape != (n_states,) or values.dtype != np.float64:
                raise ValueError(f"it holds {values.dtype} of shape {values.shape}, expected float64 ({n_states},)")
            if not np.isfinite(values).all():
                raise ValueError("it holds non-finite values")
        except Exception as err:  # noqa: BLE001 - any unreadable file is rebuilt, whatever broke it
            warnings.warn(f"density cache {path} failed to load ({err}); rebuilding it.", stacklevel=2)
            return None
        return values

    def save(self, key: dict, log_density: np.ndarray) -> Path:
        """Write to a temp file in the cache directory, then rename it over the final name."""
        return atomic_write(self.path(key), lambda f: np.savez(
            f, key=np.array(json.dumps(key, sort_keys=True)),
            log_density=np.asarray(log_density, dtype=np.float64)))
