"""Gradient steps per second of teacher training (TD3+BC, IQL): sdw's lean code vs d3rlpy.

Runs on synthetic arrays of a D4RL dataset's size (no data files needed); d3rlpy is measured only
when it is installed (`pip install d3rlpy==2.8.0`; 2.8.1 pins gymnasium 1.0). Prints the median
over `--repeats` timed blocks of `--steps` steps each, after `--warmup` untimed steps; the
implementations take turns block by block, so a change in machine load hits both alike.

    python scripts/bench_teacher.py --algo td3bc --env hopper --threads 1
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

from sdw.data.dataset import DatasetMetadata, OfflineDataset
from sdw.teacher.iql import IQLConfig, IQLTrainer
from sdw.teacher.td3bc import TD3BCConfig, TD3BCTrainer

SHAPES = {"hopper": (11, 3), "halfcheetah": (17, 6), "walker2d": (17, 6)}


def synthetic_dataset(env: str, size: int, seed: int = 0) -> OfflineDataset:
    """Random transitions in D4RL layout with 1000-step episodes ending in timeouts."""
    obs_dim, act_dim = SHAPES[env]
    rng = np.random.default_rng(seed)
    obs = rng.standard_normal((size + 1, obs_dim)).astype(np.float32)
    timeouts = np.zeros(size, dtype=bool)
    timeouts[999::1000] = True
    return OfflineDataset(
        observations=obs[:-1], actions=rng.uniform(-1, 1, (size, act_dim)).astype(np.float32),
        rewards=rng.standard_normal(size).astype(np.float32), next_observations=obs[1:],
        terminals=(rng.random(size) < 0.001) & ~timeouts, timeouts=timeouts,
        metadata=DatasetMetadata(f"synthetic-{env}", "synthetic", "none", None),
    )


def sdw_stepper(dataset: OfflineDataset, args: argparse.Namespace) -> Callable[[], None]:
    """sdw's trainer with its default (paper / CORL) hyper-parameters."""
    if args.algo == "td3bc":
        return TD3BCTrainer(dataset, TD3BCConfig(device=args.device, max_action=1.0)).step
    return IQLTrainer(dataset, IQLConfig(device=args.device, max_action=1.0)).step


def d3rlpy_stepper(dataset: OfflineDataset, args: argparse.Namespace) -> Callable[[], None]:
    """d3rlpy's implementation with the same hyper-parameters and state statistics."""
    import d3rlpy

    mdp = d3rlpy.dataset.MDPDataset(dataset.observations, dataset.actions, dataset.rewards,
                                    dataset.terminals, dataset.timeouts)
    norm = dataset.state_normaliser()  # d3rlpy adds its own eps = 1e-3 to std
    scaler = d3rlpy.preprocessing.StandardObservationScaler(mean=norm.mean, std=norm.std - 1e-3)
    config = {"td3bc": d3rlpy.algos.TD3PlusBCConfig, "iql": d3rlpy.algos.IQLConfig}[args.algo]
    algo = config(batch_size=256, observation_scaler=scaler).create(
        device="cuda:0" if args.device.startswith("cuda") else False)
    algo.build_with_dataset(mdp)
    return lambda: algo.update(mdp.sample_transition_batch(256))


def sdw_compiled_stepper(dataset: OfflineDataset, args: argparse.Namespace) -> Callable[[], None]:
    """sdw's step under torch.compile (the first warm-up step pays the compilation)."""
    return torch.compile(sdw_stepper(dataset, args))


STEPPERS = {"sdw": sdw_stepper, "sdw-compiled": sdw_compiled_stepper, "d3rlpy": d3rlpy_stepper}


def profile_sdw(dataset: OfflineDataset, args: argparse.Namespace) -> None:
    """Print torch.profiler's table of sdw's step, by self CPU time."""
    from torch.profiler import profile

    step = sdw_stepper(dataset, args)
    for _ in range(args.warmup):
        step()
    with profile() as prof:
        for _ in range(args.profile):
            step()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))


def interleaved_rates(steppers: dict[str, Callable[[], None]],
                      args: argparse.Namespace) -> dict[str, list[float]]:
    """Steps/s of each stepper over `repeats` blocks, the implementations taking turns."""
    for name, step in steppers.items():
        t0 = time.perf_counter()
        for _ in range(args.warmup):
            step()
        print(f"{name}: {args.warmup} warm-up steps took {time.perf_counter() - t0:.1f} s")
    rates: dict[str, list[float]] = {name: [] for name in steppers}
    for _ in range(args.repeats):
        for name, step in steppers.items():
            t0 = time.perf_counter()
            for _ in range(args.steps):
                step()
            rates[name].append(args.steps / (time.perf_counter() - t0))
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algo", choices=("td3bc", "iql"), default="td3bc")
    parser.add_argument("--env", choices=sorted(SHAPES), default="hopper")
    parser.add_argument("--size", type=int, default=1_000_000, help="transitions in the dataset")
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--steps", type=int, default=300, help="steps per timed block")
    parser.add_argument("--repeats", type=int, default=5, help="timed blocks (median reported)")
    parser.add_argument("--profile", type=int, default=0,
                        help="instead of timing, profile this many sdw steps (torch.profiler)")
    parser.add_argument("--impl", default="sdw,d3rlpy",
                        help=f"comma-separated implementations out of {','.join(STEPPERS)}")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dataset = synthetic_dataset(args.env, args.size)
    if args.profile:
        profile_sdw(dataset, args)
        return
    steppers = {}
    for name in args.impl.split(","):
        if name not in STEPPERS:
            parser.error(f"unknown implementation {name!r}; choose from {', '.join(STEPPERS)}")
        try:
            steppers[name] = STEPPERS[name](dataset, args)
        except ImportError as e:
            print(f"{name}: skipped ({e})")
    for name, rates in interleaved_rates(steppers, args).items():
        print(f"{name:7s} {args.algo} {args.env} ({args.size:,} transitions, "
              f"{args.threads} thread(s), {args.device}): median {statistics.median(rates):.1f} steps/s "
              f"(blocks: {', '.join(f'{r:.1f}' for r in rates)})")


if __name__ == "__main__":
    main()
