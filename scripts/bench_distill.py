"""Seconds per outer step and peak memory of `sdw.distill.distill` on random halfcheetah-sized data.

    python scripts/bench_distill.py                       # paper + small config, |D_off| 200k, 2M
    python scripts/bench_distill.py --configs paper --sizes 200000 --methods analytic unroll
    python scripts/bench_distill.py --members 1 3 5 10 --pairs 256 64 16 --threads 1
    python scripts/bench_distill.py --members 1 3 5 10 --pairs 256 64 16 --threads 1 --loop

Each (config, |D_off|, method) runs in its own subprocess, so its peak memory (max RSS, or CUDA
max allocated) is its own; beside it: the RSS before `distill` (random dataset and teacher
built) and the largest RSS seen between outer steps. The teacher is a randomly initialised
CORL-sized actor (3 x 256) and critic (2 x 256), queried per batch as in the paper's sampled
Av-PBC. Reported: median wall seconds per outer step over the timed steps (after warm-up
steps), their min and max, process CPU seconds per timed step (all threads; with one thread a
measure of the work that the load of other jobs hardly changes), the one-off setup time
(dataset view, normalisation, init), the cost of the teacher targets (one sampled query per
outer batch, or a deterministic precomputation over D_off once), and the load average.

`--members`: the exact meta-gradient of K students at once (the batched engine's arithmetic,
sdw/distill/analytic_mlp.py with a member dimension) against the same K one after the other, in
one process, at the paper's student and inner loop with each `--pairs` synthetic size: median
seconds per member over `--repeats` repeats (after one warm-up), and their ratio. With `--loop`,
whole outer steps instead: `distill_batched` with K members (seeds 0..K-1) against K `distill`
runs, on random data of `--sizes[0]` states with the paper's sampled Av-PBC teacher queries:
median seconds per member and outer step over `--steps` timed steps (after `--warmup`).
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
from pathlib import Path

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
    from sdw.networks import ActorConfig

    if threads:
        torch.set_num_threads(threads)
    c = CONFIGS[config]
    dataset, teacher = _random_data(n, device)
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


def _random_data(n: int, device: str):
    """n random halfcheetah-shaped transitions and a randomly initialised CORL-sized teacher."""
    import torch

    from sdw.networks import FullyConnectedQFunction, TanhGaussianActor
    from sdw.teacher.corl import CorlTeacher
    from sdw.testing.toy import random_dataset

    dataset = random_dataset(n, 17, 6, seed=0, name=f"bench-{n}")
    torch.manual_seed(0)
    return dataset, CorlTeacher(TanhGaussianActor(17, 6).to(device),
                                FullyConnectedQFunction(17, 6).to(device),
                                dataset.state_normaliser())


def _member_row(pairs: int, k: int, times: dict) -> dict:
    """One row of --members: the times, their ratio and the load; printed as it is made."""
    row = {"pairs": pairs, "members": k, **times,
           "ratio": times["batched"] / times["sequential"], "load": os.getloadavg()[0]}
    print(f"{pairs:>6} {k:>8} {times['sequential']:>14.3f} {times['batched']:>11.3f} "
          f"{row['ratio']:>6.2f} {row['load']:>5.1f}", flush=True)
    return row


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


def members_rows(members: list[int], pairs: list[int], repeats: int, device: str) -> list[dict]:
    """Seconds per member of K meta-gradients sequential and batched, for each K and size."""
    import torch

    from sdw.distill.analytic_mlp import AnalyticMLP
    from sdw.distill.inner_optim import InnerOptimConfig
    from sdw.distill.metagrad import meta_gradient_analytic
    from sdw.networks import ActorConfig, build_actor

    c = CONFIGS["paper"]
    cfg = ActorConfig(hidden_sizes=c["hidden"])
    student = AnalyticMLP(cfg, 17, 6)
    optimiser = InnerOptimConfig(steps=c["inner_steps"]).functional()
    rows = []
    for n in pairs:
        for k in members:
            g = torch.Generator(device).manual_seed(0)
            theta = torch.stack([torch.cat([p.detach().reshape(-1) for p in build_actor(
                cfg, 17, 6, torch.Generator().manual_seed(i)).parameters()]) for i in range(k)])
            theta = theta.to(device)
            x, a, outer, target = (torch.randn(k, m, d, generator=g, device=device)
                                   for m, d in ((n, 17), (n, 6), (c["batch"], 17),
                                                (c["batch"], 6)))
            a, target = a.tanh(), target.tanh()

            def sequential() -> None:
                for i in range(k):
                    meta_gradient_analytic(
                        student, optimiser, c["inner_steps"], theta[i], x[i], a[i], outer[i],
                        lambda y, i=i: ((y - target[i]) ** 2).mean(),
                        torch.Generator(device).manual_seed(i))

            def batched() -> None:
                meta_gradient_analytic(
                    student, optimiser, c["inner_steps"], theta, x, a, outer,
                    lambda y: ((y - target) ** 2).mean((-2, -1)),
                    [torch.Generator(device).manual_seed(i) for i in range(k)])

            times = {}
            for name, run in (("sequential", sequential), ("batched", batched)):
                run()  # warm-up
                marks = []
                for _ in range(repeats):
                    if device.startswith("cuda"):
                        torch.cuda.synchronize()
                    t0 = time.perf_counter()
                    run()
                    if device.startswith("cuda"):
                        torch.cuda.synchronize()
                    marks.append((time.perf_counter() - t0) / k)
                times[name] = statistics.median(marks)
            rows.append(_member_row(n, k, times))
    return rows


def loop_rows(members: list[int], pairs: list[int], n: int, steps: int, warmup: int,
              device: str, sequential_cap: int | None = None) -> list[dict]:
    """Seconds per member and outer step of K distillations batched and one after the other
    (at most `sequential_cap` of the K run one after the other: each is alone either way)."""

    from sdw.distill import InnerOptimConfig, ObjectiveConfig, SyntheticConfig, distill
    from sdw.distill.batched import Member, distill_batched
    from sdw.networks import ActorConfig

    c = CONFIGS["paper"]
    dataset, teacher = _random_data(n, device)
    rows = []
    for size in pairs:
        shared = dict(objective=ObjectiveConfig("avpbc", batch_size=c["batch"]),
                      student=ActorConfig(hidden_sizes=c["hidden"]),
                      synthetic=SyntheticConfig(size), inner=InnerOptimConfig(steps=c["inner_steps"]),
                      outer_steps=warmup + steps, device=device, progress=False)
        for k in members:
            sequential: list[float] = []
            for seed in range(min(k, sequential_cap or k)):
                seconds: list[float] = []
                distill(dataset, teacher, seed=seed, callback=lambda i: seconds.append(i.seconds),
                        **shared)
                sequential += seconds[warmup:]
            batched: list[float] = []
            first = Member(0, callback=lambda i: batched.append(i.seconds))
            distill_batched(dataset, teacher, [first, *(Member(s) for s in range(1, k))], **shared)
            times = {"sequential": statistics.median(sequential),
                     "batched": statistics.median(batched[warmup:])}
            rows.append(_member_row(size, k, times))
    return rows


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
    p.add_argument("--members", nargs="+", type=int, default=None,
                   help="K values: time K meta-gradients batched against sequential instead")
    p.add_argument("--pairs", nargs="+", type=int, default=[256, 64, 16],
                   help="synthetic set sizes of --members")
    p.add_argument("--repeats", type=int, default=5, help="timed repeats of --members")
    p.add_argument("--loop", action="store_true",
                   help="with --members: whole outer steps (distill_batched against distill)")
    p.add_argument("--sequential-cap", type=int, default=None,
                   help="with --loop: time at most this many of the K runs one after the other")
    p.add_argument("--json", type=Path, default=None, help="also write --members' rows here")
    p.add_argument("--one", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.members:
        import torch

        if args.threads:
            torch.set_num_threads(args.threads)
        print(f"load average before: {os.getloadavg()}, torch threads: {torch.get_num_threads()}"
              f", device: {args.device}")
        what = "outer step" if args.loop else "meta-gradient"
        print(f"seconds per member and {what} (median):")
        print(f"{'pairs':>6} {'members':>8} {'sequential':>14} {'batched':>11} {'ratio':>6} "
              f"{'load':>5}")
        rows = (loop_rows(args.members, args.pairs, args.sizes[0], args.steps, args.warmup,
                          args.device, args.sequential_cap) if args.loop
                else members_rows(args.members, args.pairs, args.repeats, args.device))
        if args.json:
            args.json.write_text(json.dumps(rows, indent=1) + "\n")
        return
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
