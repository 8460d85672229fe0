"""Writing collected episodes as a local Minari dataset (with reference scores)."""

from __future__ import annotations

import shutil
import warnings

import numpy as np

from sdw.collect.rollout import Episode
from sdw.data.minari_source import minari_root


def write_minari_dataset(dataset_id: str, env_id: str, episodes: list[Episode],
                         ref_min: float, ref_max: float, ref_episodes: int,
                         description: str) -> None:
    """Replace `dataset_id` in `$MINARI_DATASETS_PATH` with `episodes` (hdf5 storage)."""
    import minari
    from minari.data_collector.episode_buffer import EpisodeBuffer

    shutil.rmtree(minari_root() / dataset_id, ignore_errors=True)
    buffers = [
        EpisodeBuffer(
            id=i, seed=ep.seed,
            observations=np.asarray(ep.observations),
            actions=np.asarray(ep.actions, np.float32),
            rewards=np.asarray(ep.rewards),
            terminations=np.r_[np.zeros(len(ep) - 1, bool), ep.terminated],
            truncations=np.r_[np.zeros(len(ep) - 1, bool), ep.truncated],
            infos={},
        )
        for i, ep in enumerate(episodes)
    ]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is set to None", category=UserWarning)
        minari.create_dataset_from_buffers(
            dataset_id, buffers, env=env_id, eval_env=env_id, author="sdw-collect",
            algorithm_name="sdw-collect (stable-baselines3 SAC)", ref_min_score=ref_min,
            ref_max_score=ref_max, num_episodes_average_score=ref_episodes,
            description=description, data_format="hdf5",
        )
