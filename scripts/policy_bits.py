"""Hash the actions the collector's behaviour policies take on a fixed batch of observations.

Run it under different thread counts, OPENBLAS_CORETYPE or NPY_DISABLE_CPU_FEATURES: the
`exact` hashes must not change; the `float32` ones (the plain numpy forward the collector used
before, kept here only for the comparison) may. docs/datasets.md quotes its output.

    python scripts/policy_bits.py [--env halfcheetah] [--batch 16] [--rows 200000]
"""

from __future__ import annotations

import argparse
import hashlib

import numpy as np

from sdw.collect import exact
from sdw.collect.cli import ZOO_ROOT
from sdw.collect.snapshot import LOG_STD_MAX, LOG_STD_MIN, ActorSnapshot
from sdw.collect.zoo import Zoo


def float32_forward(snap: ActorSnapshot, obs: np.ndarray, rng: np.random.Generator | None
                    ) -> np.ndarray:
    """The collector's policy forward before the exact arithmetic (BLAS sgemm, SIMD exp/tanh)."""
    h = np.asarray(obs, np.float32)
    for w, b in zip(snap.weights, snap.biases):
        h = np.maximum(h @ w + b, 0.0)
    u = h @ snap.mu[0] + snap.mu[1]
    if rng is not None:
        log_std = np.clip(h @ snap.log_std[0] + snap.log_std[1], LOG_STD_MIN, LOG_STD_MAX)
        u = u + np.exp(log_std) * rng.standard_normal(u.shape).astype(np.float32)
    return (snap.low + 0.5 * (np.tanh(u) + 1.0) * (snap.high - snap.low)).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="halfcheetah")
    parser.add_argument("--batch", type=int, default=16, help="rows per policy call (n_envs)")
    parser.add_argument("--rows", type=int, default=200_000, help="observations in total")
    args = parser.parse_args()
    flagged = [0, 0]
    round_or_flag = exact._round_or_flag

    def counting(y: np.ndarray, bound: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out, mask = round_or_flag(y, bound)
        flagged[0] += int(mask.sum())
        flagged[1] += mask.size
        return out, mask

    exact._round_or_flag = counting
    zoo = Zoo.load(ZOO_ROOT / args.env)
    snap = zoo.snapshot(zoo.medium_step)
    obs = np.random.default_rng(0).standard_normal((args.rows, snap.obs_dim)) * 3.0
    for name, forward in (("exact", lambda o, r: snap.act(o, r)), ("float32", lambda o, r:
                                                                   float32_forward(snap, o, r))):
        for mode in ("deterministic", "sampled"):
            rng = np.random.default_rng(1) if mode == "sampled" else None
            h = hashlib.sha256()
            for start in range(0, args.rows, args.batch):
                h.update(forward(obs[start:start + args.batch], rng).tobytes())
            print(f"{name:8s} {mode:13s} {h.hexdigest()[:16]}")
    print(f"exact path: {flagged[0]:,} of {flagged[1]:,} float32 results recomputed exactly")


if __name__ == "__main__":
    main()
