"""Creating the gymnasium MuJoCo envs the datasets are evaluated on."""

from __future__ import annotations

import warnings

import gymnasium as gym


def make_env(env_id: str, **kwargs) -> gym.Env:
    """`gym.make`, without the v4 deprecation warning: D4RL-v2 data is evaluated on the v4 envs
    on purpose (Walker2d-v5 changed the foot friction)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is out of date.*")
        return gym.make(env_id, **kwargs)
