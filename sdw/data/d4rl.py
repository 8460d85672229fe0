"""D4RL HDF5 files read with h5py (neither d4rl nor mujoco-py is needed)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from sdw.data.dataset import DatasetMetadata, OfflineDataset
from sdw.data.errors import DatasetError
from sdw.data.scores import d4rl_scores_for_env
from sdw.data.validate import SCALARS, validate_arrays

REQUIRED_KEYS = ("observations", "actions", "rewards", "terminals")
DERIVABLE_KEYS = ("next_observations", "timeouts")
"""Keys a file may lack: derived as D4RL's own `qlearning_dataset` does (`complete_arrays`)."""
D4RL_ENVS = {"hopper": "Hopper-v4", "halfcheetah": "HalfCheetah-v4", "walker2d": "Walker2d-v4"}
"""D4RL-v2 locomotion data evaluates on the gymnasium v4 envs (Walker2d-v5 changed friction)."""

log = logging.getLogger(__name__)


def d4rl_dataset_dir() -> Path:
    """Where d4rl itself stores downloads: `$D4RL_DATASET_DIR`, else `~/.d4rl/datasets`."""
    return Path(os.environ.get("D4RL_DATASET_DIR", "~/.d4rl/datasets")).expanduser()


def d4rl_file_name(name: str) -> str:
    """D4RL's own file name for a dataset name: `hopper-medium-replay-v2` -> `hopper_medium_replay-v2.hdf5`."""
    env, rest = name.split("-", 1)
    level, version = rest.rsplit("-", 1)
    return f"{env}_{level.replace('-', '_')}-{version}.hdf5"


def env_of(name: str) -> str:
    """The gymnasium env a D4RL locomotion dataset is evaluated on."""
    prefix = name.split("-", 1)[0]
    if prefix not in D4RL_ENVS:
        raise DatasetError(
            f"cannot tell the evaluation env of dataset {name!r}: its name does not start with one "
            f"of {sorted(D4RL_ENVS)}. Give the env explicitly: `sdw-run dataset.env_id=Hopper-v4` "
            "(`env_id: Hopper-v4` in a dataset config, `--env Hopper-v4` on sdw-data), or name "
            "the file <env>_<level>.hdf5 (e.g. hopper_random-mine.hdf5)."
        )
    return D4RL_ENVS[prefix]


@dataclass(frozen=True)
class D4RLSource:
    """A D4RL-layout HDF5 file, by explicit `path` or by D4RL `name` in the d4rl directory."""

    name: str | None = None
    path: str | None = None
    env_id: str | None = None

    def __post_init__(self) -> None:
        if self.path is None and self.name is None:
            raise DatasetError("a D4RL source needs a dataset name (e.g. hopper-medium-v2) or a path.")

    @property
    def dataset_name(self) -> str:
        return self.name or Path(self.path).stem.replace("_", "-")

    def location(self) -> Path:
        if self.path is not None:
            return Path(self.path).expanduser()
        return d4rl_dataset_dir() / d4rl_file_name(self.name)

    def is_present(self) -> bool:
        return self.location().exists()

    def load(self) -> OfflineDataset:
        path = self.location()
        if not path.exists():
            if self.path is not None:
                raise DatasetError(f"D4RL file not found: {path} (dataset {self.dataset_name!r}).")
            raise DatasetError(
                f"D4RL dataset {self.name!r} not found: expected the file {path} "
                f"(D4RL file name {d4rl_file_name(self.name)!r} in $D4RL_DATASET_DIR or "
                "~/.d4rl/datasets). Download it where the network allows and copy it there, "
                "or set `path:`."
            )
        if path.is_dir():
            inside = sorted(p.name for p in path.glob("*.hdf5"))
            raise DatasetError(
                f"{path} is a directory, not an HDF5 file: pass the .hdf5 file itself"
                + (f" (the directory holds {', '.join(inside[:5])})." if inside
                   else " (the directory holds no .hdf5 file).")
            )
        env_id = self.env_id or env_of(self.dataset_name)
        arrays = complete_arrays(_read_hdf5(path), env_id, str(path))
        validate_arrays(arrays, origin=str(path), env_id=env_id)
        scores = d4rl_scores_for_env(env_id)
        metadata = DatasetMetadata(
            name=self.dataset_name, source="d4rl", env_id=env_id, reference_scores=scores,
            missing_scores_reason="" if scores else f"no D4RL reference scores for env {env_id!r}",
            extra={"path": str(path)},
        )
        return OfflineDataset(metadata=metadata, **arrays)


def _read_hdf5(path: Path) -> dict[str, np.ndarray]:
    try:
        with h5py.File(path, "r") as f:
            missing = [k for k in REQUIRED_KEYS if k not in f]
            if missing:
                raise DatasetError(
                    f"{path} is missing the key(s) {missing}; a D4RL-v2 file holds "
                    f"{list(REQUIRED_KEYS)}, and {list(DERIVABLE_KEYS)} or not (found "
                    f"{sorted(f.keys())})."
                )
            keys = [k for k in (*REQUIRED_KEYS, *DERIVABLE_KEYS) if k in f]
            not_arrays = [k for k in keys if not isinstance(f[k], h5py.Dataset)]
            if not_arrays:
                raise DatasetError(f"{path}: {not_arrays} are HDF5 groups, not arrays; a D4RL-v2 "
                                   "file holds each key as one array with a row per transition.")
            arrays = {k: f[k][()] for k in keys}
        not_numeric = {k: str(v.dtype) for k, v in arrays.items()
                       if not (np.issubdtype(v.dtype, np.number) or v.dtype == bool)}
        if not_numeric:
            raise DatasetError(f"{path}: key(s) with non-numeric dtype {not_numeric}; every D4RL "
                               "key holds numbers (terminals and timeouts may be bool).")
    except DatasetError:
        raise
    except (OSError, KeyError, ValueError) as e:
        reason = " ".join(str(e).split())
        raise DatasetError(
            f"{path} is not a readable HDF5 file ({reason}); it is probably truncated or corrupt: "
            "delete it and download it again (or regenerate it)."
        ) from e
    dtypes = {"rewards": np.float32, "terminals": bool, "timeouts": bool}
    return {key: _column(value).astype(dtypes[key], copy=False) if key in SCALARS else
            value.astype(np.float32, copy=False) for key, value in arrays.items()}


def complete_arrays(arrays: dict[str, np.ndarray], env_id: str, origin: str) -> dict[str, np.ndarray]:
    """`arrays` with the keys of DERIVABLE_KEYS a file lacks, as D4RL's `qlearning_dataset` reads
    such a file: a time limit where an episode reaches the env's `max_episode_steps` (its last
    row then drops out of the qlearning view), the next observation from the following row."""
    import gymnasium

    arrays = dict(arrays)
    n = len(arrays["observations"])
    if "timeouts" not in arrays:
        limit = gymnasium.spec(env_id).max_episode_steps or n
        timeouts, step = np.zeros(n, bool), 0
        for i, terminal in enumerate(arrays["terminals"].reshape(-1)[:n]):
            timeouts[i] = step == limit - 1 and not terminal
            step = 0 if terminal or timeouts[i] else step + 1
        arrays["timeouts"] = timeouts
        log.warning("%s has no timeouts: an episode ends after %d steps of %s, as D4RL's "
                    "qlearning_dataset reads such a file", origin, limit, env_id)
    if "next_observations" not in arrays:
        following = np.concatenate([arrays["observations"][1:], arrays["observations"][-1:]])
        arrays["next_observations"] = following
        log.warning("%s has no next_observations: each is the following row's observation, as "
                    "D4RL's qlearning_dataset takes it", origin)
    return arrays


def _column(values: np.ndarray) -> np.ndarray:
    """A per-transition key as (N,): a (N, 1) column is flattened, other shapes are left for
    `validate_arrays` to name."""
    return values[:, 0] if values.ndim == 2 and values.shape[1] == 1 else values
