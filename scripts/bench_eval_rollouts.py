"""Time one evaluation's rollouts: every student's episodes in one loop vs one loop per student.

    python scripts/bench_eval_rollouts.py --students 5 --episodes 10 --max-steps 1000
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from sdw.distill.student import student_policy
from sdw.evaluate.rollout import evaluate_policy, rollout_policies
from sdw.networks.actor import ActorConfig, build_actor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="Hopper-v4")
    parser.add_argument("--students", type=int, default=5)
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--max-steps", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    obs_dim, act_dim = {"Hopper-v4": (11, 3), "HalfCheetah-v4": (17, 6),
                        "Walker2d-v4": (17, 6)}[args.env]
    # small random students: a plain untrained 3x256 actor (HalfCheetah never terminates early)
    acts = [student_policy(build_actor(ActorConfig(), obs_dim, act_dim,
                                       torch.Generator().manual_seed(i)).eval())
            for i in range(args.students)]
    timings = {"joint": [], "per student": []}
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        joint, lengths = rollout_policies(acts, args.env, args.episodes, 0,
                                          max_episode_steps=args.max_steps)
        timings["joint"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        separate = [evaluate_policy(a, args.env, args.episodes, 0,
                                    max_episode_steps=args.max_steps).returns for a in acts]
        timings["per student"].append(time.perf_counter() - t0)
        assert np.allclose(joint, np.stack(separate))
    steps = int(lengths.sum())
    for name, values in timings.items():
        print(f"{name:12s} median {np.median(values):.2f} s for {steps} env steps "
              f"({steps / np.median(values):.0f} steps/s)")


if __name__ == "__main__":
    main()
