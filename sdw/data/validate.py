"""Checks every source runs on raw arrays before an `OfflineDataset` is built."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from sdw.data.errors import DatasetError
from sdw.envs import make_env


@lru_cache(maxsize=None)
def env_spaces(env_id: str) -> tuple[int, int]:
    """(observation size, action size) of a gymnasium env, read once per process."""
    try:
        env = make_env(env_id)
    except Exception as e:
        raise DatasetError(f"evaluation env {env_id!r} cannot be created: {e}") from e
    try:
        return int(np.prod(env.observation_space.shape)), int(np.prod(env.action_space.shape))
    finally:
        env.close()


VECTORS = ("observations", "next_observations", "actions")
"""Keys holding one row vector per transition: shape (N, dim)."""
SCALARS = ("rewards", "terminals", "timeouts")
"""Keys holding one value per transition: shape (N,) (readers flatten a (N, 1) column first)."""


def validate_arrays(arrays: dict[str, np.ndarray], origin: str, env_id: str | None) -> None:
    """Raise `DatasetError` naming `origin`, the key and the fix on the first problem found.

    Every array's full shape is checked: against the others (one row per transition, states and
    next states of one width) and, with `env_id`, against the env's observation and action sizes.
    """
    for key in SCALARS:
        if arrays[key].ndim != 1:
            raise DatasetError(
                f"{origin}: {key} must hold one value per transition, shape (N,) or (N, 1), got "
                f"shape {arrays[key].shape}. The file is inconsistent: regenerate or re-download it.")
    for key in VECTORS:
        if arrays[key].ndim != 2:
            raise DatasetError(f"{origin}: {key} must be 2-D (N, dim), got shape {arrays[key].shape}.")
    lengths = {k: len(v) for k, v in arrays.items()}
    if len(set(lengths.values())) != 1:
        raise DatasetError(
            f"{origin}: arrays have different lengths {lengths}; every key must have one row per "
            "transition. The file is inconsistent: regenerate or re-download it."
        )
    if lengths["observations"] == 0:
        raise DatasetError(f"{origin}: the dataset holds no transitions.")
    states, next_states = arrays["observations"].shape, arrays["next_observations"].shape
    if states[1] != next_states[1]:
        raise DatasetError(
            f"{origin}: observations are {states[1]}-dimensional but next_observations "
            f"{next_states[1]}-dimensional (shapes {states} and {next_states}); both hold states "
            "of the same env. The file is inconsistent: regenerate or re-download it.")
    for key, arr in arrays.items():
        if arr.dtype == bool:
            continue
        bad = ~np.isfinite(arr)
        if bad.any():
            rows = np.flatnonzero(bad.reshape(len(arr), -1).any(axis=1))
            raise DatasetError(
                f"{origin}: {key} has {int(bad.sum())} non-finite value(s) in {len(rows)} row(s), "
                f"the first at row {int(rows[0])}. Clean or drop those transitions before loading."
            )
    if env_id is None:
        return
    obs_dim, act_dim = env_spaces(env_id)
    if states[1] != obs_dim:
        raise DatasetError(
            f"{origin}: observations and next_observations have {states[1]} dimensions but the "
            f"evaluation env {env_id} observes {obs_dim}. Name the env the data was collected in: "
            "`sdw-run dataset.env_id=<env>` (`env_id:` in a dataset config, `--env` on sdw-data)."
        )
    if arrays["actions"].shape[1] != act_dim:
        raise DatasetError(
            f"{origin}: actions have {arrays['actions'].shape[1]} dimensions but the evaluation "
            f"env {env_id} takes {act_dim}. Name the env the data was collected in: "
            "`sdw-run dataset.env_id=<env>` (`env_id:` in a dataset config, `--env` on sdw-data)."
        )
