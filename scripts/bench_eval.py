"""Time the parts of an evaluation: training a student, whole-data BC steps, and the rollouts:
one loop per student (`evaluate_policy`, what the protocols use) vs every student's episodes in
one loop (`joint_rollouts` below, the alternative measured).

    python scripts/bench_eval.py --env HalfCheetah-v4 --students 5 --episodes 10
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from sdw.data.dataset import StateNormaliser
from sdw.distill.inner_optim import InnerOptimConfig
from sdw.distill.student import student_policy, train_student
from sdw.distill.synthetic import SyntheticSet
from sdw.envs import make_env
from sdw.networks.actor import ActorConfig, build_actor
from sdw.rollout import evaluate_policy

DIMS = {"Hopper-v4": (11, 3), "HalfCheetah-v4": (17, 6), "Walker2d-v4": (17, 6)}


def random_set(env: str, n: int) -> SyntheticSet:
    obs_dim, act_dim = DIMS[env]
    rng = np.random.default_rng(0)
    normaliser = StateNormaliser(np.zeros(obs_dim, np.float32), np.ones(obs_dim, np.float32))
    return SyntheticSet(rng.normal(size=(n, obs_dim)), rng.uniform(-1, 1, (n, act_dim)),
                        normaliser, env, "random", "none", "bench")


def joint_rollouts(acts, env_id: str, n_episodes: int, max_steps: int) -> np.ndarray:
    """Returns (len(acts), n_episodes) with every policy's episodes stepped in one loop."""
    n = len(acts) * n_episodes
    envs = [make_env(env_id, max_episode_steps=max_steps) for _ in range(n)]
    obs = np.stack([env.reset(seed=k % n_episodes)[0] for k, env in enumerate(envs)])
    returns, active = np.zeros(n), np.ones(n, dtype=bool)
    while active.any():
        for p, act in enumerate(acts):
            idx = p * n_episodes + np.flatnonzero(active[p * n_episodes:(p + 1) * n_episodes])
            if len(idx):
                actions = act(obs[idx].astype(np.float32))
                for row, k in enumerate(idx):
                    obs[k], reward, terminated, truncated, _ = envs[k].step(actions[row])
                    returns[k] += reward
                    active[k] = not (terminated or truncated)
    for env in envs:
        env.close()
    return returns.reshape(len(acts), n_episodes)


def median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="HalfCheetah-v4", choices=sorted(DIMS))
    parser.add_argument("--students", type=int, default=5)
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--max-steps", type=int, default=1000)
    parser.add_argument("--bc-steps", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"{args.env}, 1 torch thread, load average {os.getloadavg()[0]:.1f}")

    synthetic, student = random_set(args.env, 256), ActorConfig()
    t = median_seconds(lambda: train_student(synthetic, student, InnerOptimConfig()), args.repeats)
    print(f"paper student (3x256, 100 SGD steps on 256 pairs): {t:.3f} s")
    whole = random_set(args.env, 200_000)
    adam = InnerOptimConfig(name="adam", lr=3e-4, steps=args.bc_steps)
    t = median_seconds(lambda: train_student(whole, student, adam, batch_size=256), 1)
    print(f"whole-data BC (200k pairs, batch 256): {1000 * t / args.bc_steps:.2f} ms per step")

    # untrained 3x256 students: HalfCheetah never terminates early, so every episode is full
    obs_dim, act_dim = DIMS[args.env]
    acts = [student_policy(build_actor(student, obs_dim, act_dim,
                                       torch.Generator().manual_seed(i)).eval())
            for i in range(args.students)]
    per_student = [evaluate_policy(a, args.env, args.episodes, 0,
                                   max_episode_steps=args.max_steps) for a in acts]
    assert np.allclose(np.stack([r.returns for r in per_student]),
                       joint_rollouts(acts, args.env, args.episodes, args.max_steps))
    steps = int(sum(r.lengths.sum() for r in per_student))
    loops = {
        "per student": lambda: [evaluate_policy(a, args.env, args.episodes, 0,
                                                max_episode_steps=args.max_steps) for a in acts],
        "joint": lambda: joint_rollouts(acts, args.env, args.episodes, args.max_steps)}
    times: dict[str, list[float]] = {name: [] for name in loops}
    for _ in range(args.repeats):  # interleaved, so a change of machine load hits both alike
        for name, fn in loops.items():
            times[name].append(median_seconds(fn, 1))
    for name, values in times.items():
        t = float(np.median(values))
        print(f"rollouts, {name:11s}: {t:.2f} s for {args.students} x {args.episodes} episodes, "
              f"{steps} env steps ({steps / t:.0f} steps/s)")

if __name__ == "__main__":
    main()
