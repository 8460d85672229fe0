"""A hand-made 10-row D4RL-layout file with known content, shared by the data-layer tests.

Episodes: rows 0-3 end in a timeout (mid-file), rows 4-6 in a terminal, rows 7-9 in a timeout at
the end of the file. observations[i, d] = i + d / 100, actions[i, d] = -i - d / 10, rewards[i] = i.
"""

from pathlib import Path

import h5py
import numpy as np

N, OBS_DIM, ACT_DIM = 10, 11, 3  # Hopper-v4 sizes


def known_arrays() -> dict[str, np.ndarray]:
    rows = np.arange(N, dtype=np.float32)[:, None]
    observations = rows + np.arange(OBS_DIM, dtype=np.float32) / 100
    terminals = np.zeros(N, bool)
    terminals[6] = True
    timeouts = np.zeros(N, bool)
    timeouts[[3, 9]] = True
    next_observations = observations + 0.5
    return {
        "observations": observations,
        "actions": -rows - np.arange(ACT_DIM, dtype=np.float32) / 10,
        "rewards": np.arange(N, dtype=np.float32),
        "next_observations": next_observations,
        "terminals": terminals,
        "timeouts": timeouts,
    }


def write_hdf5(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        for key, value in arrays.items():
            f.create_dataset(key, data=value)
        f.create_dataset("infos/qpos", data=np.zeros((len(value), 6)))
    return path
