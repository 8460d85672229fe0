"""How concentrated SDW's weights are on the local study datasets: ESS/N of w = p^-alpha (mean 1)
for a grid of exponents, with and without clipping, from the cached log densities.

    python scripts/weight_spread.py                       # kNN, the nine study datasets
    python scripts/weight_spread.py --density kde --datasets local-hopper-medium

Prints a Markdown table (docs/density.md quotes it). Log densities come from the same cache as
`sdw-run` (`$SDW_CACHE_DIR/density`, default outputs/cache/density), computed once per dataset.
"""

from __future__ import annotations

import argparse
import os

from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import DictConfig

from sdw.config import config_dir
from sdw.density import WeightingScheme, state_log_density
from sdw.density.diagnostics import effective_sample_fraction

STUDY = [f"local-{env}-{level}" for env in ("hopper", "halfcheetah", "walker2d")
         for level in ("medium", "medium-replay", "medium-expert")]
ALPHAS = (0.05, 0.1, 0.2, 0.5, 1.0)


def compose_study(dataset: str, density: str) -> DictConfig:
    """The `sdw-run` config of one dataset and density option, as the sweeps compose it."""
    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        return compose("run", overrides=[f"dataset={dataset}", f"density={density}"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=STUDY, help="dataset config names")
    parser.add_argument("--density", default="knn", help="conf/density option")
    parser.add_argument("--cache-dir", default=os.environ.get("SDW_CACHE_DIR", "outputs/cache"))
    args = parser.parse_args()
    schemes = [(f"alpha {a:g}", WeightingScheme("grid", alpha=a)) for a in ALPHAS]
    schemes += [(f"alpha {a:g}, clip q0.99", WeightingScheme("grid", alpha=a, clip_quantile=0.99))
                for a in (0.5, 1.0)]
    print(f"ESS/N of SDW weights (density {args.density}, mean 1 over D_off)\n")
    print("| dataset | states | " + " | ".join(name for name, _ in schemes) + " |")
    print("|---|---|" + "---|" * len(schemes))
    for name in args.datasets:
        cfg = compose_study(name, args.density)
        dataset = instantiate(cfg.dataset).load()
        log_density = state_log_density(dataset, instantiate(cfg.density),
                                        os.path.join(args.cache_dir, "density"))
        cells = [f"{effective_sample_fraction(s.log_weights(log_density)):.3f}" for _, s in schemes]
        print(f"| {name} | {len(log_density):,} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
