"""Seconds per outer step and peak memory of `sdw.distill.distill` on random halfcheetah-sized data.

    python scripts/bench_distill.py                       # paper + small config, |D_off| 200k, 2M
    python scripts/bench_distill.py --configs paper --sizes 200000 --methods analytic unroll

Each (config, |D_off|, method) runs in its own subprocess, so its peak memory (max RSS, or CUDA
max allocated) is its own; beside it: the RSS before `distill` (random dataset and teacher
built) and the largest RSS seen between outer steps. The teacher is a randomly initialised
CORL-sized actor (3 x 256) and critic (2 x 256), queried per batch as in the paper's sampled
Av-PBC. Reported: median wall seconds per outer step over the timed steps (after warm-up
steps), their min and max, process CPU seconds per timed step (all threads; with one thread a
measure of the work that the load of other jobs hardly changes), the one-off setup time
(dataset view, normalisation, init), the cost of the teacher targets (one sampled query per
outer batch, or a deterministic precomputation over D_off once), and the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

CONFIGS = {
    # the paper: 3x256 tanh-Gaussian student, 256 pairs, 100 inner steps, 2,560 outer states
    "paper": dict(hidden=(256, 256, 256), size=256, inner_steps=100, batch=2560),
    "small": dict(hidden=(64, 64), size=64, inner_steps=20, batch=512),
}


COLUMNS = [  # title, width, result key, format
    ("config", 7, "config", ""), ("|D_off|", 9, "n", ""), ("method", 9, "method", ""),
    ("thr", 3, "threads", ""), ("median s/step", 13, "median_s", ".3f"),
    ("min", 6, "min_s", ".3f"), ("max", 6, "max_s", ".3f"), ("CPU s/step", 10, "cpu_s", ".3f"),
    ("setup s", 8, "setup_s", ".1f"), ("peak MB", 8, "peak_mb", ".0f"),
    ("RSS before MB", 13, "rss_before_mb", ".0f"), ("RSS loop MB", 11, "rss_loop_mb", ".0f"),
    ("teacher ms/batch", 16, "teacher_batch_ms", ".1f"),
    ("precompute s", 12, "precompute_s", ".1f"), ("load", 5, "load", ".1f")]


def run_one(config: str, n: int, method: str, steps: int, warmup: int, threads: int | None,
            device: str) -> dict:
    import torch

    from sdw.distill import InnerOptimConfig, ObjectiveConfig, SyntheticConfig, distill
    from sdw.testing.toy import random_dataset
    from sdw.networks import ActorConfig, FullyConnectedQFunction, TanhGaussianActor
    from sdw.teacher.corl import CorlTeacher

    if threads:
        torch.set_num_threads(threads)
    c = CONFIGS[config]
    dataset = random_dataset(n, 17, 6, seed=0, name=f"bench-{n}")
    torch.manual_seed(0)
    teacher = CorlTeacher(TanhGaussianActor(17, 6).to(device),
                          FullyConnectedQFunction(17, 6).to(device), dataset.state_normaliser())
    rss_before = _current_rss_mb()
    teacher_batch_ms, precompute_s = _teacher_costs(dataset, teacher, c["batch"], device)
    seconds, cpu_marks, rss_loop = [], [], []

    def record(info):
        seconds.append(info.seconds)
        cpu_marks.append(time.process_time())
        rss_loop.append(_current_rss_mb())

    t0 = time.perf_counter()
    distill(dataset, teacher, objective=ObjectiveConfig("avpbc", batch_size=c["batch"]),
            student=ActorConfig(hidden_sizes=c["hidden"]), synthetic=SyntheticConfig(c["size"]),
            inner=InnerOptimConfig(steps=c["inner_steps"]), outer_steps=warmup + steps, seed=0,
            device=device, meta_gradient=method, callback=record, progress=False)
    total = time.perf_counter() - t0
    timed = seconds[warmup:]
    peak = (torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda")
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return {"config": config, "n": n, "method": method, "threads": torch.get_num_threads(),
            "median_s": statistics.median(timed), "min_s": min(timed), "max_s": max(timed),
            "cpu_s": (cpu_marks[-1] - cpu_marks[warmup - 1]) / steps,
            "setup_s": total - sum(seconds), "peak_mb": peak, "rss_before_mb": rss_before,
            "rss_loop_mb": max(rss_loop),
            "teacher_batch_ms": teacher_batch_ms, "precompute_s": precompute_s,
            "load": os.getloadavg()[0]}


def _teacher_costs(dataset, teacher, batch: int, device: str) -> tuple[float, float]:
    """Median ms of one sampled teacher query (a*, Q*) for an outer batch, and seconds to
    precompute deterministic a*, Q* for the whole dataset once."""
    import torch

    from sdw.distill import ObjectiveConfig
    from sdw.distill.loop import real_pairs
    from sdw.distill.objectives import OuterTargets

    states, actions = real_pairs(dataset, dataset.state_normaliser(), torch.device(device))
    sampled = OuterTargets(ObjectiveConfig("avpbc", teacher_actions="sampled"), states, actions,
                           teacher)
    times = []
    for i in range(12):
        idx = torch.randint(len(states), (batch,), device=device)
        t0 = time.perf_counter()
        sampled(idx)
        times.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    OuterTargets(ObjectiveConfig("avpbc", teacher_actions="deterministic"), states, actions,
                 teacher, progress=False)
    return 1000 * statistics.median(times[2:]), time.perf_counter() - t0


def _current_rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    p.add_argument("--sizes", nargs="+", type=int, default=[200_000, 2_000_000])
    p.add_argument("--methods", nargs="+", default=["analytic"], choices=["analytic", "unroll"])
    p.add_argument("--steps", type=int, default=10, help="timed outer steps per run")
    p.add_argument("--warmup", type=int, default=2, help="untimed outer steps first (>= 1)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--omp-wait-policy", choices=["passive", "active"], default=None,
                   help="OMP_WAIT_POLICY of the runs (default: inherited, else sdw's PASSIVE); "
                        "passive helps a lot when other jobs share the cores")
    p.add_argument("--device", default="cpu")
    p.add_argument("--one", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        config, n, method = args.one.split(",")
        print(json.dumps(run_one(config, int(n), method, args.steps, args.warmup, args.threads,
                                 args.device)))
        return
    policy = args.omp_wait_policy or os.environ.get("OMP_WAIT_POLICY", "PASSIVE (sdw's default)")
    print(f"load average before: {os.getloadavg()}, cpus: {os.cpu_count()}, "
          f"OMP_WAIT_POLICY: {policy}")
    print(" ".join(f"{title:>{width}}" for title, width, _, _ in COLUMNS))
    for config in args.configs:
        for n in args.sizes:
            for method in args.methods:
                cmd = [sys.executable, __file__, "--one", f"{config},{n},{method}",
                       "--steps", str(args.steps), "--warmup", str(args.warmup),
                       "--device", args.device]
                if args.threads:
                    cmd += ["--threads", str(args.threads)]
                env = dict(os.environ)
                if args.omp_wait_policy:
                    env["OMP_WAIT_POLICY"] = args.omp_wait_policy.upper()
                out = subprocess.run(cmd, check=True, capture_output=True, text=True,
                                     env=env).stdout
                r = json.loads(out.strip().splitlines()[-1])
                print(" ".join(f"{r[key]:>{width}{fmt}}" for _, width, key, fmt in COLUMNS),
                      flush=True)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
