"""A small real dataset made on the spot: uniform-random actions in a gymnasium MuJoCo env."""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np

from sdw.atomic import atomic_write
from sdw.envs import make_env


def collect_random_transitions(env_id: str, steps: int, seed: int) -> dict[str, np.ndarray]:
    """`steps` transitions of a uniform-random policy, in D4RL layout (terminals, timeouts)."""
    env = make_env(env_id)
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    rows: dict[str, list] = {k: [] for k in ("observations", "actions", "rewards",
                                             "next_observations", "terminals", "timeouts")}
    for _ in range(steps):
        action = env.action_space.sample()
        nxt, reward, terminated, truncated, _ = env.step(action)
        for key, value in zip(rows, (obs, action, reward, nxt, terminated, truncated and not terminated)):
            rows[key].append(value)
        obs = env.reset()[0] if terminated or truncated else nxt
    env.close()
    dtypes = {"terminals": bool, "timeouts": bool}
    return {k: np.asarray(v, dtype=dtypes.get(k, np.float32)) for k, v in rows.items()}


def write_d4rl_hdf5(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> Path:
    """Write arrays in D4RL's HDF5 layout, atomically (a temp file renamed into place)."""
    def write(fh) -> None:
        with h5py.File(fh, "w") as f:
            for key, value in arrays.items():
                f.create_dataset(key, data=value)

    return atomic_write(Path(path), write)
