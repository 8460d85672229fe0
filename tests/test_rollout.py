"""Rollouts: returns equal a plain gymnasium loop; normalised score x 100 uses the reference scores."""

import numpy as np
import pytest

from sdw.data.dataset import StateNormaliser
from sdw.data.scores import ReferenceScores
from sdw.envs import make_env
from sdw.rollout import evaluate_policy


def linear_policy(obs: np.ndarray) -> np.ndarray:
    return np.tanh(obs[:, :3] * 0.5)


def plain_loop(seed: int, max_steps: int) -> float:
    env = make_env("Hopper-v4", max_episode_steps=max_steps)
    obs, _ = env.reset(seed=seed)
    total, done = 0.0, False
    while not done:
        obs, reward, terminated, truncated, _ = env.step(linear_policy(obs[None].astype(np.float32))[0])
        total += reward
        done = terminated or truncated
    return total


def test_returns_match_a_plain_loop_and_scores_normalise():
    scores = ReferenceScores(0.0, 200.0, "test")
    result = evaluate_policy(linear_policy, "Hopper-v4", n_episodes=3, seed=7,
                             reference_scores=scores, max_episode_steps=60)
    expected = [plain_loop(7 + i, 60) for i in range(3)]
    np.testing.assert_allclose(result.returns, expected, rtol=1e-5)
    assert result.normalised_mean == pytest.approx(100 * np.mean(expected) / 200, rel=1e-5)
    assert (result.lengths <= 60).all()


def test_normaliser_is_applied_and_missing_scores_explained():
    seen = []

    def policy(obs):
        seen.append(obs.copy())
        return np.zeros((len(obs), 3))

    normaliser = StateNormaliser(np.full(11, 1.0, np.float32), np.full(11, 2.0, np.float32))
    result = evaluate_policy(policy, "Hopper-v4", n_episodes=1, seed=0, normaliser=normaliser,
                             max_episode_steps=5)
    raw = make_env("Hopper-v4").reset(seed=0)[0]
    np.testing.assert_allclose(seen[0][0], (raw - 1.0) / 2.0, rtol=1e-5)
    assert result.normalised_mean is None and "no reference scores" in result.summary()
