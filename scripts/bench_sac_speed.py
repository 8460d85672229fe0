"""SB3 SAC training speed (env steps/s after learning_starts) for a few CPU settings.

    /work/venv/bin/python scripts/bench_sac_speed.py --steps 2000 --repeats 3

Prints the median over `--repeats` runs of each setting (1 torch thread unless --threads).
"""

from __future__ import annotations

import argparse
import statistics
import time


def steps_per_second(env_id: str, net: list[int], batch: int, train_freq: int, gradient_steps: int,
                     steps: int, seed: int) -> float:
    import gymnasium as gym
    from stable_baselines3 import SAC

    model = SAC("MlpPolicy", gym.make(env_id), policy_kwargs={"net_arch": net},
                batch_size=batch, train_freq=train_freq, gradient_steps=gradient_steps,
                learning_starts=500, seed=seed, device="cpu", verbose=0)
    model.learn(600)
    t = time.perf_counter()
    model.learn(steps, reset_num_timesteps=False)
    return steps / (time.perf_counter() - t)


SETTINGS = {
    "256x256 batch 256": ([256, 256], 256, 1, 1),
    "256x256 batch 128": ([256, 256], 128, 1, 1),
    "128x128 batch 256": ([128, 128], 256, 1, 1),
    "64x64 batch 256": ([64, 64], 256, 1, 1),
}


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="Hopper-v4")
    parser.add_argument("--steps", type=int, default=2000, help="timed env steps per run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--only", nargs="*", choices=list(SETTINGS), help="settings to run")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for name in args.only or SETTINGS:
        net, batch, freq, grads = SETTINGS[name]
        rates = [steps_per_second(args.env, net, batch, freq, grads, args.steps, seed)
                 for seed in range(args.repeats)]
        print(f"{args.env} SAC {name}, {args.threads} thread(s): median "
              f"{statistics.median(rates):.1f} env steps/s over {args.repeats} runs "
              f"({', '.join(f'{r:.1f}' for r in rates)})", flush=True)


if __name__ == "__main__":
    main()
