"""Seconds per outer step of the paper configuration, idle and beside other busy processes.

    python scripts/bench_threads.py [--busy 1] [--steps 5] [--active-steps 2]

For each setting (2 threads with OpenMP's spinning wait policy, 2 threads with
OMP_WAIT_POLICY=PASSIVE, which sdw sets unless the user exported a policy, and 1 thread) it runs
`scripts/bench_distill.py`'s paper configuration (200k states, `analytic`) once on the idle machine
and once with `--busy` other processes spinning on a core each, in the same invocation, and prints
the median seconds per outer step of each. The spinning setting under load runs `--active-steps`
timed steps only: beside heavier load than one spinner it can take tens of seconds per step.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).with_name("bench_distill.py")
SETTINGS = (("2 threads, OMP_WAIT_POLICY=ACTIVE", 2, "ACTIVE"),
            ("2 threads, OMP_WAIT_POLICY=PASSIVE (sdw's default)", 2, "PASSIVE"),
            ("1 thread", 1, "PASSIVE"))


def median_step(threads: int, policy: str, steps: int) -> float:
    env = {**os.environ, "OMP_WAIT_POLICY": policy}
    out = subprocess.run([sys.executable, str(BENCH), "--one", "paper,200000,analytic",
                          "--threads", str(threads), "--steps", str(steps), "--warmup", "1"],
                         env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])["median_s"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--busy", type=int, default=1, help="other spinning processes for 'loaded'")
    p.add_argument("--steps", type=int, default=5, help="timed outer steps per measurement")
    p.add_argument("--active-steps", type=int, default=2,
                   help="timed steps of the spinning policy under load")
    args = p.parse_args()
    print(f"cpus: {os.cpu_count()}, load average before: {os.getloadavg()[0]:.2f}")
    print("| setting | idle s / step | loaded s / step | loaded / idle |\n|---|---|---|---|")
    for title, threads, policy in SETTINGS:
        idle = median_step(threads, policy, args.steps)
        spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
                    for _ in range(args.busy)]
        try:
            steps = args.active_steps if policy == "ACTIVE" else args.steps
            loaded = median_step(threads, policy, steps)
        finally:
            for s in spinners:
                s.kill()
        print(f"| {title} | {idle:.2f} | {loaded:.2f} | {loaded / idle:.1f}x |", flush=True)


if __name__ == "__main__":
    main()
