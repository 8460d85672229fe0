"""Time and check the density estimators on N x D states from a Gaussian mixture with a known density.

For each estimator: wall time (and process CPU time) of fit + log density of every fitted state + self-normalised weights
(median over --repeats), Spearman correlation with the true log density, and the error of the
approximations against their exact counterparts on --check states (kNN: faiss IVF vs exact
neighbours; KDE: reference subsample vs the exact KDE over all N states, same bandwidth).

    nice -n 10 python scripts/bench_density.py --n 1000000 --dim 17 --repeats 3 --estimators knn flow kde
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time

import faiss
import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from scipy.stats import spearmanr

from sdw.config import config_dir
from sdw.data.dataset import StateNormaliser
from sdw.density import KDEDensity, KNNDensity, make_estimator, make_weighting
from sdw.density.knn import knn_log_density
from sdw.testing.densities import GaussianMixture


def load() -> str:
    return "load %.2f %.2f %.2f" % os.getloadavg()


def estimator_config(name: str, overrides: list[str]) -> DictConfig:
    """conf/density/<name>.yaml with the `name.key=value` overrides that concern it."""
    own = [item.split(".", 1)[1] for item in overrides if item.startswith(name + ".")]
    return OmegaConf.merge(OmegaConf.load(config_dir() / "density" / f"{name}.yaml"), OmegaConf.from_dotlist(own))


def timed_weights(cfg: DictConfig, states: np.ndarray) -> tuple[float, float, np.ndarray, object]:
    """Wall and CPU seconds of fit + fitted log density + self-normalised weights, the log densities, the estimator."""
    estimator = make_estimator(cfg)
    start, cpu = time.perf_counter(), time.process_time()
    log_density = estimator.fit(states).fitted_log_density()
    make_weighting("self-normalised").log_weights(log_density)
    return time.perf_counter() - start, time.process_time() - cpu, log_density, estimator


def error_summary(approx: np.ndarray, exact: np.ndarray) -> str:
    err = np.abs(approx - exact)
    return (f"|log p error| median {np.median(err):.3f}, p90 {np.quantile(err, 0.9):.3f}, max {err.max():.3f} nats; "
            f"Spearman {spearmanr(approx, exact).statistic:.4f}")


def check_knn(estimator: KNNDensity, states: np.ndarray, log_density: np.ndarray, n_check: int) -> str:
    """faiss IVF (as fitted) against exact leave-one-out neighbours (faiss flat) on the first n_check states."""
    if estimator.exact:
        return "exact (scikit-learn), nothing approximated"
    flat = faiss.IndexFlatL2(states.shape[1])
    flat.add(np.ascontiguousarray(states, dtype=np.float32))
    sq, _ = flat.search(np.ascontiguousarray(states[:n_check], dtype=np.float32), estimator.k + 1)
    log_radius = np.log(np.maximum(np.sqrt(np.clip(sq[:, -1], 0, None)), estimator.min_distance))
    exact = knn_log_density(log_radius, estimator.k, len(states) - 1, states.shape[1])
    return f"IVF nlist {estimator._index.nlist} nprobe {estimator._index.nprobe} vs exact: " + \
        error_summary(log_density[:n_check], exact)


def check_kde(estimator: KDEDensity, states: np.ndarray, log_density: np.ndarray, n_check: int) -> str:
    """Reference subsample against the exact KDE over all N states (same bandwidth) on n_check states."""
    if estimator.exact:
        return "exact, nothing approximated"
    exact = KDEDensity(bandwidth=estimator.factor, exact_max_states=len(states)).fit(states)
    exact_values = exact.log_density(states[:n_check])
    return (f"{len(estimator._ref_idx)} references of {len(states)} (factor {estimator.factor:.3f}) vs exact: "
            + error_summary(log_density[:n_check], exact_values))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000, help="number of states")
    parser.add_argument("--dim", type=int, default=17, help="state dimension")
    parser.add_argument("--components", type=int, default=8, help="mixture components")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per estimator (median reported)")
    parser.add_argument("--estimators", nargs="+", default=["knn", "flow", "kde"], help="conf/density names")
    parser.add_argument("--check", type=int, default=2000, help="states checked against the exact computation")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--set", nargs="*", default=[], metavar="NAME.KEY=VALUE",
                        help="override estimator settings, e.g. kde.reference_size=5000 knn.nprobe=8")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    mixture = GaussianMixture.random(args.components, args.dim, seed=0)
    raw = mixture.sample(args.n, seed=1)
    truth = mixture.log_density(raw)
    states = StateNormaliser.fit(raw.astype(np.float32))(raw.astype(np.float32))
    # the density of the normalised states differs from the raw one by a constant: ranks are unchanged
    print(f"{args.n} x {args.dim} states, {args.components}-component mixture, torch threads {args.threads}, "
          f"cpu count {os.cpu_count()}, {load()}", flush=True)
    for name in args.estimators:
        cfg = estimator_config(name, args.set)
        changed = [item for item in args.set if item.startswith(name + ".")]
        if changed:
            print(f"{name} with {' '.join(changed)}", flush=True)
        times = []
        for repeat in range(args.repeats):
            seconds, cpu, log_density, estimator = timed_weights(cfg, states)
            times.append(seconds)
            print(f"  {name} run {repeat + 1}: {seconds:.1f} s wall, {cpu:.1f} s CPU ({load()})", flush=True)
        extra = ""
        if isinstance(estimator, KNNDensity):
            extra = check_knn(estimator, states, log_density, args.check)
        elif isinstance(estimator, KDEDensity):
            kernels = args.n * len(estimator._ref_idx)
            extra = f"{kernels:.2e} kernel evaluations; " + check_kde(estimator, states, log_density, args.check)
        elif hasattr(estimator, "val_nll"):
            extra = (f"{len(estimator.val_nll)} epochs (best {estimator.best_epoch}), held-out NLL "
                     f"{min(estimator.val_nll):.3f}")
        rho = spearmanr(log_density, truth).statistic
        print(f"{name}: median {statistics.median(times):.1f} s over {len(times)} runs for weights of "
              f"{args.n} states; Spearman with true log density {rho:.4f}; {extra}", flush=True)
        if math.isnan(rho):
            raise SystemExit(f"{name}: log densities are constant or broken")


if __name__ == "__main__":
    main()
