"""Is the flow's state density over-peaked, or are the states it scores lowest true outliers?

    python scripts/flow_diagnosis.py    # local-hopper-medium, local-walker2d-medium, local-halfcheetah-medium
    python scripts/flow_diagnosis.py --datasets local-hopper-medium --no-kde --variants noise=0.03 base_df=3
    python scripts/flow_diagnosis.py --step-cost    # training cost per epoch, before vs after, interleaved

For each dataset it prints Markdown tables (docs/density.md quotes them): the states gymnasium
clipped to the observation bound (joint velocities at exactly +-10), the log-density spread,
held-out NLL and ESS/N of SDW weights w = p^-alpha (mean 1) for the flow before the fix (the
settings in BEFORE) and after it (conf/density/flow.yaml), with kNN and KDE beside them, where the
flow's extremes lie, and the flow's held-out NLL per epoch. `--variants` adds flows with the
before-settings plus the given changes (`key=value[,key=value]`, values as in YAML) as further rows.

"Below own p0.1" is the share of D_off states whose flow log density is below the 0.1 % quantile
of the log densities of 20,000 samples drawn from the flow itself: about 0.001 for a flow whose
tails match the data, far more when it gives real states densities it would almost never sample.
kNN and KDE log densities come from the density cache (`$SDW_CACHE_DIR/density`, default
outputs/cache/density); the flows are fitted here (their per-epoch held-out NLL is not cached).
Run with one torch thread: `OMP_NUM_THREADS=1 nice -n 10 python scripts/flow_diagnosis.py`.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
import yaml
from hydra.utils import instantiate
from scipy.stats import rankdata, spearmanr

from sdw.density import FlowDensity, WeightingScheme, density_states, make_estimator, state_log_density
from sdw.density.diagnostics import effective_sample_fraction
from weight_spread import compose_study

DATASETS = ["local-hopper-medium", "local-walker2d-medium", "local-halfcheetah-medium"]
ALPHAS = (1.0, 0.5, 0.2, 0.1)
OBSERVATION_BOUND = 10.0
"""gymnasium's Hopper and Walker2d observations hold np.clip(qvel, -10, 10)."""
BEFORE = {"noise": 0.0, "base_df": None}
"""The flow settings before the fix (everything else as in conf/density/flow.yaml)."""
MODEL_SAMPLES = 20_000


def parse_variant(text: str) -> dict:
    """`noise=0.1,base_df=3` -> {"noise": 0.1, "base_df": 3}."""
    pairs = [item.split("=", 1) for item in text.split(",")]
    if any(len(pair) != 2 for pair in pairs):
        raise SystemExit(f"--variants {text!r}: expected key=value[,key=value], e.g. noise=0.1,base_df=3")
    return {key.strip(): yaml.safe_load(value) for key, value in pairs}


def on_bound(raw_states: np.ndarray) -> np.ndarray:
    """(N, D) mask of observation values exactly on the +-10 bound."""
    return np.abs(raw_states) == OBSERVATION_BOUND


def ess_cells(log_density: np.ndarray) -> list[str]:
    return [f"{effective_sample_fraction(WeightingScheme('grid', alpha=a).log_weights(log_density)):.3f}"
            for a in ALPHAS]


def below_own_quantile(flow: FlowDensity, log_density: np.ndarray) -> float:
    """Share of states whose log density is below the 0.1 % quantile of the flow's own samples'."""
    own = flow.log_density(flow.sample(MODEL_SAMPLES))
    return float(np.mean(log_density < np.quantile(own, 1e-3)))


def spread_row(dataset: str, label: str, log_density: np.ndarray, knn: np.ndarray, atoms: np.ndarray,
               flow: FlowDensity | None) -> str:
    q = np.quantile(log_density, [0.0, 0.01, 0.5, 0.99, 1.0])
    fit = (f"{flow.val_nll[flow.best_epoch - 1]:.2f} | {len(flow.val_nll)} ({flow.best_epoch}) | "
           f"{below_own_quantile(flow, log_density):.4f}") if flow else "| |"
    off = ~atoms
    rho = (f"{spearmanr(log_density, knn).statistic:.3f} / "
           + (f"{spearmanr(log_density[off], knn[off]).statistic:.3f}" if atoms.any() else "same"))
    return (f"| {dataset} | {label} | " + " | ".join(f"{v:.1f}" for v in q) + f" | {q[4] - q[0]:.0f} | "
            f"{fit} | {rho} | " + " | ".join(ess_cells(log_density)) + " |")


def extremes_row(dataset: str, label: str, log_density: np.ndarray, knn: np.ndarray, atoms: np.ndarray,
                 states: np.ndarray, flow: FlowDensity | None) -> str:
    """On-bound share among the 1 % highest / lowest; kNN's percentile and the flow's base |z| of the 100 lowest."""
    order = np.argsort(log_density)
    tail = max(1, len(order) // 100)
    knn_pct = 100 * (rankdata(knn) - 1) / (len(knn) - 1)
    z = "| |"
    if flow is not None:
        largest = np.abs(flow.base_coordinates(states)).max(axis=1)
        z = f"{np.median(largest):.1f} | {np.median(largest[order[:100]]):.1f} |"
    return (f"| {dataset} | {label} | {atoms.mean():.3f} | {atoms[order[-tail:]].mean():.3f} | "
            f"{atoms[order[:tail]].mean():.3f} | {np.median(knn_pct[order[:100]]):.1f} | "
            f"{np.max(knn_pct[order[:100]]):.1f} | {z}")


def step_cost(repeats: int = 5, n: int = 50_000, dim: int = 17) -> None:
    """Seconds per epoch of the flow before and after the fix, fitted alternately on the same Gaussian states."""
    states = np.random.default_rng(0).standard_normal((n, dim))
    seconds: dict[str, list[float]] = {"before": [], "after": []}
    for _ in range(repeats):
        for label, settings in (("before", BEFORE), ("after", {})):
            flow = FlowDensity(max_epochs=2, patience=10, **settings)
            start = time.perf_counter()
            flow.fit(states)
            seconds[label].append((time.perf_counter() - start) / len(flow.val_nll))
    print(f"flow seconds per epoch on {n:,} x {dim} states (batch 1024, 1 torch thread, load "
          f"{os.getloadavg()[0]:.1f}):")
    for label, values in seconds.items():
        print(f"  {label}: median {np.median(values):.2f} s (" + " / ".join(f"{v:.2f}" for v in values) + ")")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=DATASETS, help="dataset config names")
    parser.add_argument("--cache-dir", default=os.environ.get("SDW_CACHE_DIR", "outputs/cache"))
    parser.add_argument("--no-kde", action="store_true", help="skip the KDE rows (minutes per dataset)")
    parser.add_argument("--variants", nargs="*", default=[], metavar="KEY=VALUE[,KEY=VALUE]",
                        help="further flows: the before-settings with these changes")
    parser.add_argument("--step-cost", action="store_true", help="only time an epoch before vs after")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.step_cost:
        step_cost()
        return
    flows = [("flow before", BEFORE), ("flow after", {})]
    flows += [(f"flow before + {text}", {**BEFORE, **parse_variant(text)}) for text in args.variants]
    cache = os.path.join(args.cache_dir, "density")
    bound, spread, extremes, curves = [], [], [], []
    for name in args.datasets:
        cfg = compose_study(name, "flow")
        dataset = instantiate(cfg.dataset).load()
        states = density_states(dataset)
        atoms_by_dim = on_bound(dataset.qlearning_view().observations)
        atoms = atoms_by_dim.any(axis=1)
        dims = ", ".join(f"{d}: {c:,}" for d, c in enumerate(atoms_by_dim.sum(axis=0)) if c)
        bound.append(f"| {name} | {len(states):,} x {states.shape[1]} | {atoms.sum():,} ({atoms.mean():.1%}) | "
                     f"{dims or 'none'} |")
        knn = state_log_density(dataset, make_estimator("knn"), cache)
        estimates = [("knn", knn, None)]
        if not args.no_kde:
            estimates.append(("kde (Scott)", state_log_density(dataset, make_estimator("kde"), cache), None))
        for label, overrides in flows:
            flow = instantiate(cfg.density, **overrides)
            start = time.perf_counter()
            log_density = flow.fit(states).fitted_log_density()
            label = f"{label} ({time.perf_counter() - start:.0f} s)"
            estimates.append((label, log_density, flow))
            curves.append(f"| {name} | {label} | " + " ".join(f"{v:.2f}" for v in flow.val_nll) + " |")
        for label, log_density, flow in estimates:
            spread.append(spread_row(name, label, log_density, knn, atoms, flow))
            extremes.append(extremes_row(name, label, log_density, knn, atoms, states, flow))
        print(f"done {name}", flush=True)

    print("\n### States on the observation bound (raw |value| = 10)\n")
    print("| dataset | states x dims | states with a value on the bound | per dimension (index: states) |")
    print("|---|---|---|---|")
    print("\n".join(bound))
    print("\n### Log density (nats, normalised states), held-out NLL and ESS/N of w = p^-alpha (mean 1)\n")
    print("| dataset | estimator | min | p1 | median | p99 | max | span | held-out NLL | epochs (best) | "
          "below own p0.1 | Spearman with kNN (all / off-bound) | "
          + " | ".join(f"ESS/N alpha {a:g}" for a in ALPHAS) + " |")
    print("|---|---|" + "---|" * (13 + len(ALPHAS) - 4))
    print("\n".join(spread))
    print("\n### Where the extremes are\n")
    print("| dataset | estimator | on-bound share of all states | of the 1 % highest | of the 1 % lowest | "
          "kNN percentile of the 100 lowest: median | max | flow base max_i abs(z_i): median, all states | "
          "median, 100 lowest |")
    print("|---|---|---|---|---|---|---|---|---|")
    print("\n".join(extremes))
    print("\n### Flow held-out NLL per epoch (nats per state, clean held-out states)\n")
    print("| dataset | flow | held-out NLL after each epoch |")
    print("|---|---|---|")
    print("\n".join(curves))


if __name__ == "__main__":
    main()
