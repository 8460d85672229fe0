"""Write docs/datasets.md and docs/datasets-training-curves.png from the local suite.

Reads the policy zoo (sdw/collect/zoo/<env>/manifest.json), the local Minari datasets
sdw/<env>/<level>-v0 in $MINARI_DATASETS_PATH and, when present, the build reports
outputs/collect/<env>/build_report.json; the prose is scripts/datasets_doc_template.md. The
published hashes table comes from sdw/collect/published.json; `--publish` first rewrites that
file from the build records (`sdw_build.json`) of the local datasets, which must have been built
with the default settings from the shipped zoos (`sdw-collect mode=rebuild env=<env>`).

    python scripts/make_datasets_doc.py [--publish]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from sdw.atomic import atomic_write
from sdw.collect.build import LEVELS, dataset_id
from sdw.collect.cli import ZOO_ROOT
from sdw.collect.diversity import mean_knn_distance
from sdw.collect.published import PUBLISHED, load_published
from sdw.collect.zoo import Zoo
from sdw.data.dataset import StateNormaliser
from sdw.data.minari_source import BUILD_RECORD, MinariSource, minari_root
from sdw.data.registry import load_dataset

ENVS = ("hopper", "halfcheetah", "walker2d")
REPO = Path(__file__).resolve().parent.parent
TEMPLATE = Path(__file__).with_name("datasets_doc_template.md")
CURVES_PNG = "datasets-training-curves.png"


def dataset_table(env: str, k: int, n_samples: int) -> tuple[str, str]:
    """(markdown table of the env's local datasets, sentence on medium-replay's diversity)."""
    data = {lv: load_dataset(f"local-{env}-{lv}") for lv in LEVELS
            if MinariSource(dataset_id(env, lv), source="local").is_present()}
    if not data:
        return f"No local {env} dataset in the Minari directory.\n", ""
    normaliser = StateNormaliser.fit(np.concatenate([d.observations for d in data.values()]))
    rows = ["| dataset | transitions | episodes | mean return | normalised | state diversity |",
            "|---|---:|---:|---:|---:|---:|"]
    diversity = {}
    for level, ds in data.items():
        returns = ds.episode_returns(complete_only=True)
        diversity[level] = mean_knn_distance(ds.observations, normaliser, k=k,
                                             n_samples=n_samples)
        norm = ds.normalised_score(returns.mean())
        rows.append(f"| `{dataset_id(env, level)}` | {len(ds):,} | {len(ds.episode_ends):,} | "
                    f"{returns.mean():.1f} | {'n/a' if norm is None else f'{norm:.1f}'} | "
                    f"{diversity[level]:.3f} |")
    scores = next(iter(data.values())).metadata.reference_scores
    if scores is not None:
        rows.append(f"\nReference scores stored in the datasets: R_min = {scores.min:.1f}, "
                    f"R_max = {scores.max:.1f}.")
    return "\n".join(rows) + "\n", diversity_verdict(env, diversity)


def diversity_verdict(env: str, diversity: dict[str, float]) -> str:
    if not {"medium-replay", "medium", "medium-expert"} <= diversity.keys():
        return ""
    mr = diversity["medium-replay"]
    more = [lv for lv in ("medium", "medium-expert") if mr > diversity[lv]]
    less = [lv for lv in ("medium", "medium-expert") if mr <= diversity[lv]]
    if not less:
        return (f"{env}: medium-replay is more diverse ({mr:.3f}) than medium "
                f"({diversity['medium']:.3f}) and medium-expert ({diversity['medium-expert']:.3f}),"
                " as in D4RL.")
    said = f" but more than {', '.join(more)}" if more else ""
    return (f"{env}: medium-replay ({mr:.3f}) is **not** more diverse than {', '.join(less)} "
            f"({', '.join(f'{diversity[lv]:.3f}' for lv in less)}){said}, unlike D4RL.")


def training_table(zoos: dict[str, Zoo]) -> str:
    rows = ["| env | steps trained | SAC steps/s | medium: step, eval return, training time | "
            "expert: step, eval return | best |",
            "|---|---:|---:|---|---|---:|"]
    for env, zoo in zoos.items():
        last, med, exp = zoo.curve[-1], zoo.record(zoo.medium_step), zoo.record(zoo.expert_step)
        rate = last.step / last.train_seconds if last.train_seconds else float("nan")
        rows.append(f"| {env} | {last.step:,} | {rate:.0f} | {med.step:,}, {med.eval_return:.0f}, "
                    f"{med.train_seconds / 60:.0f} min | {exp.step:,}, {exp.eval_return:.0f} | "
                    f"{max(r.eval_return for r in zoo.curve):.0f} |")
    return "\n".join(rows) + "\n"


def speed_table(outputs: Path) -> str:
    rows = ["| env | dataset | transitions | collection steps/s |", "|---|---|---:|---:|"]
    totals = []
    for env in ENVS:
        path = outputs / env / "build_report.json"
        if not path.exists():
            continue
        report = json.loads(path.read_text())
        for lv in report["levels"]:
            rows.append(f"| {env} | `{lv['dataset_id']}` | {lv['transitions']:,} | "
                        f"{lv['steps_per_second']:.0f} |")
        stepped = sum(lv["transitions"] for lv in report["levels"]
                      if not lv["dataset_id"].endswith("/medium-expert-v0"))
        totals.append(f"- {env} ({report['mode']}, seed {report['seed']}): "
                      f"{report['transitions_written']:,} transitions written ({stepped:,} env "
                      f"steps collected) in {report['seconds_total']:.0f} s, "
                      f"{stepped / report['seconds_total']:.0f} env steps/s including reference "
                      "scores and writing.")
    if not totals:
        return "No build report in outputs/collect/ yet.\n"
    return "\n".join(rows) + "\n\nWhole builds:\n\n" + "\n".join(totals) + "\n"


PUBLISHED_FIELDS = ("content_hash", "transitions", "episodes", "mean_return", "ref_min_score",
                    "ref_max_score", "seed", "build", "zoo_hash", "environment")


def publish(envs: list[str], path: Path) -> dict:
    """Write `path` (sdw/collect/published.json) from the build records of the local datasets."""
    published = load_published(path)
    for env in envs:
        for level in LEVELS:
            did = dataset_id(env, level)
            record_path = minari_root() / did / BUILD_RECORD
            record = json.loads(record_path.read_text()) if record_path.exists() else {}
            missing = [k for k in PUBLISHED_FIELDS if k not in record]
            if missing:
                print(f"not published: {did} ({record_path} lacks {missing}; rebuild the env)")
                continue
            if (record["seed"], record["build"]["n_envs"]) != (0, 16) or \
                    record["zoo_hash"] != Zoo.load(ZOO_ROOT / env).content_hash():
                print(f"not published: {did} was not built with the defaults from the shipped zoo")
                continue
            published["datasets"][did] = {k: record[k] for k in PUBLISHED_FIELDS}
    published["about"] = ("Content hashes of the local datasets as `sdw-collect mode=rebuild "
                          "env=<env>` writes them with the default settings from the shipped "
                          "zoos (docs/datasets.md). Written by scripts/make_datasets_doc.py "
                          "--publish.")
    published["datasets"] = dict(sorted(published["datasets"].items()))
    atomic_write(path, lambda f: f.write(json.dumps(published, indent=1, sort_keys=True) + "\n"),
                 "w")
    print(f"wrote {path} ({len(published['datasets'])} datasets)")
    return published


def hash_table(published: dict) -> str:
    """Markdown table of the published hashes, with the zoo hashes and versions they were built with."""
    entries = published["datasets"]
    if not entries:
        return "No published hashes yet (`python scripts/make_datasets_doc.py --publish`).\n"
    rows = ["| dataset | content hash | transitions | episodes | mean return | zoo |",
            "|---|---|---:|---:|---:|---|"]
    for did, e in entries.items():
        rows.append(f"| `{did}` | `{e['content_hash']}` | {e['transitions']:,} | "
                    f"{e['episodes']:,} | {e['mean_return']:.1f} | `{e['zoo_hash']}` |")
    environments = {json.dumps(e["environment"], sort_keys=True) for e in entries.values()}
    built_with = "; ".join(", ".join(f"{k} {v}" for k, v in json.loads(env).items())
                           for env in sorted(environments))
    return "\n".join(rows) + f"\n\nBuilt with {built_with}.\n"


def plot_curves(zoos: dict[str, Zoo], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(zoos), figsize=(5 * len(zoos), 3.6), squeeze=False)
    for ax, (env, zoo) in zip(axes[0], zoos.items()):
        steps = np.array([r.step for r in zoo.curve])
        ret = np.array([r.eval_return for r in zoo.curve])
        std = np.array([r.eval_std for r in zoo.curve])
        ax.plot(steps, ret, label="deterministic eval return")
        ax.fill_between(steps, ret - std, ret + std, alpha=0.25)
        for step, name, colour in ((zoo.medium_step, "medium", "tab:orange"),
                                   (zoo.expert_step, "expert", "tab:green")):
            ax.axvline(step, color=colour, ls="--", label=f"{name} (step {step:,})")
        ax.set(title=f"{zoo.env_id} (SB3 SAC)", xlabel="env steps", ylabel="return")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", nargs="+", default=list(ENVS), choices=ENVS)
    parser.add_argument("--docs", type=Path, default=REPO / "docs", help="output folder")
    parser.add_argument("--outputs", type=Path, default=REPO / "outputs" / "collect",
                        help="where the build reports are")
    parser.add_argument("--zoo-root", type=Path, default=ZOO_ROOT, help="policy zoos, one per env")
    parser.add_argument("--knn-k", type=int, default=10, help="neighbours of the diversity statistic")
    parser.add_argument("--knn-samples", type=int, default=10_000,
                        help="states sampled per dataset for the diversity statistic")
    parser.add_argument("--publish", action="store_true",
                        help=f"first rewrite {PUBLISHED.relative_to(REPO)} from the local datasets")
    args = parser.parse_args()
    published = publish(args.envs, PUBLISHED) if args.publish else load_published(PUBLISHED)

    zoos = {env: Zoo.load(args.zoo_root / env) for env in args.envs
            if (args.zoo_root / env / "manifest.json").exists()}
    sections, verdicts = [], []
    for env in args.envs:
        table, verdict = dataset_table(env, args.knn_k, args.knn_samples)
        sections.append(f"### {env}\n\n{table}")
        verdicts += [verdict] if verdict else []
    args.docs.mkdir(parents=True, exist_ok=True)
    if zoos:
        plot_curves(zoos, args.docs / CURVES_PNG)
    text = TEMPLATE.read_text().format(
        datasets="\n".join(sections),
        diversity="\n".join(f"- {v}" for v in verdicts) or "- No environment has all levels yet.",
        knn_k=args.knn_k, knn_samples=args.knn_samples,
        training=training_table(zoos) if zoos else "No policy zoo yet.\n",
        curves=f"![training curves]({CURVES_PNG})" if zoos else "",
        speeds=speed_table(args.outputs),
        missing=", ".join(env for env in ENVS if env not in zoos) or "none",
        hashes=hash_table(published),
    )
    (args.docs / "datasets.md").write_text(text)
    print(f"wrote {args.docs / 'datasets.md'}")


if __name__ == "__main__":
    main()
