"""Collecting whole episodes from behaviour policies in several environments side by side."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from sdw.collect.snapshot import Behaviour
from sdw.envs import make_env

PolicySchedule = Callable[[int], Behaviour]
"""Maps the number of transitions collected so far to the policy acting now."""


@dataclass
class Episode:
    """One episode: observations has one row more than actions (the final observation)."""

    seed: int
    observations: list[np.ndarray] = field(default_factory=list)
    actions: list[np.ndarray] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    terminated: bool = False
    truncated: bool = False

    def __len__(self) -> int:
        return len(self.rewards)

    @property
    def total_return(self) -> float:
        return float(np.sum(self.rewards))


def collect_episodes(env_id: str, schedule: PolicySchedule, n_transitions: int, seed: int,
                     n_envs: int = 16, desc: str = "collect") -> list[Episode]:
    """Complete episodes until at least `n_transitions` transitions, deterministic for `seed`.

    `n_envs` environments step together (one batched policy call per step); no new episode
    starts once the collected and running transitions reach `n_transitions`, and the running
    ones are completed. Episodes are returned in the order they ended.
    """
    if n_transitions <= 0 or n_envs <= 0:
        raise ValueError(f"n_transitions ({n_transitions}) and n_envs ({n_envs}) must be positive")
    seeds = np.random.SeedSequence(seed)
    action_rng = np.random.default_rng(seeds.spawn(1)[0])
    reset_rng = np.random.default_rng(seeds.spawn(1)[0])
    envs = [make_env(env_id, disable_env_checker=True) for _ in range(n_envs)]
    running: list[Episode | None] = [None] * n_envs
    obs = [np.empty(0)] * n_envs
    done: list[Episode] = []
    counted = 0

    def start(i: int) -> None:
        ep_seed = int(reset_rng.integers(2**31 - 1))
        obs[i] = envs[i].reset(seed=ep_seed)[0]
        running[i] = Episode(seed=ep_seed, observations=[obs[i]])

    try:
        for i in range(n_envs):
            start(i)
        with tqdm(total=n_transitions, desc=desc, unit="step", mininterval=5, leave=False) as bar:
            while any(ep is not None for ep in running):
                idx = [i for i, ep in enumerate(running) if ep is not None]
                actions = schedule(counted).act(np.stack([obs[i] for i in idx]), action_rng)
                for row, i in enumerate(idx):
                    ep = running[i]
                    obs[i], reward, terminated, truncated, _ = envs[i].step(actions[row])
                    ep.observations.append(obs[i])
                    ep.actions.append(actions[row])
                    ep.rewards.append(float(reward))
                    counted += 1
                    if terminated or truncated:
                        ep.terminated, ep.truncated = bool(terminated), bool(truncated and not terminated)
                        done.append(ep)
                        running[i] = None
                        if counted < n_transitions:
                            start(i)
                bar.update(min(len(idx), max(0, n_transitions - bar.n)))
                if counted >= n_transitions:
                    n_running = sum(ep is not None for ep in running)
                    bar.set_postfix_str(f"completing {n_running} episodes")
    finally:
        for env in envs:
            env.close()
    return done
