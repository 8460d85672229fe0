"""`sdw-analyze DATASET... [key=value ...]`: state diversity and quality of datasets, and the
misalignment experiment (Hydra app over conf/analyze.yaml).

Bare arguments become `datasets=[...]` (conf/dataset names, .hdf5 paths or Minari ids).
Writes into `out`: metrics.md / metrics.csv, and misalignment.md / .csv / .png with one JSON
per (dataset, seed) under misalignment/ (a rerun skips the finished ones).
"""

from __future__ import annotations

import csv
import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path

import hydra
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from sdw.analyze.metrics import COLUMNS, MetricsConfig, dataset_metrics
from sdw.analyze.misalignment import MisalignmentConfig, curves, orderings, run_misalignment
from sdw.analyze.plot import plot_misalignment
from sdw.atomic import atomic_write
from sdw.config import config_dir
from sdw.data.registry import load_dataset
from sdw.errors import UserError
from sdw.hydra_app import launch, task

log = logging.getLogger("sdw.analyze")
PARTS = ("metrics", "misalignment")
DECIMALS = {"knn_distance": 3, "coverage": 3, "log_volume": 2}
"""Digits of the metrics table's float columns (others: 1)."""
CURVE_COLUMNS = ("dataset", "pairs", "step", "seeds", "loss_mean", "loss_std", "score_mean",
                 "score_std", "score_min", "score_max")


def run(cfg: DictConfig) -> dict:
    """Check the config, load the datasets, run the chosen parts; return what was written."""
    parts = list(cfg.parts)
    unknown = [p for p in parts if p not in PARTS]
    if unknown or not parts:
        raise UserError(f"parts={parts}: choose one or more of {', '.join(PARTS)}, "
                        f"e.g. parts=[metrics].")
    names = [cfg.datasets] if isinstance(cfg.datasets, str) else list(cfg.datasets or [])
    if not names:
        raise UserError("no datasets: sdw-analyze local-hopper-medium local-hopper-medium-replay "
                        "... or datasets=[NAME,...] (conf/dataset names, .hdf5 paths, Minari ids)")
    metrics_cfg = MetricsConfig(**OmegaConf.to_container(cfg.metrics))
    misalignment_cfg = MisalignmentConfig(**OmegaConf.to_container(cfg.misalignment))
    student = instantiate(cfg.student)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    datasets = [load_dataset(n) for n in names]
    out = Path(cfg.out)
    written = {}
    if "metrics" in parts:
        started = time.perf_counter()
        rows = dataset_metrics(datasets, metrics_cfg)
        written["metrics"] = _write_metrics(rows, metrics_cfg, out, time.perf_counter() - started)
    if "misalignment" in parts:
        results = run_misalignment(datasets, student, misalignment_cfg, out)
        written["misalignment"] = _write_misalignment(results, misalignment_cfg, out)
    return written


def _fmt(value, decimals: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.{decimals}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _markdown(header: Sequence[str], rows: Sequence[Sequence], decimals: Sequence[int]) -> str:
    """A Markdown table; column j's floats with decimals[j] digits."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(_fmt(v, d) for v, d in zip(row, decimals))
                               + " |" for row in rows])


def _write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence]) -> None:
    atomic_write(path, lambda f: csv.writer(f, lineterminator="\n").writerows(
        [list(header)] + [["" if v is None else v for v in row] for row in rows]), mode="w")


def _write_text(path: Path, text: str) -> Path:
    return atomic_write(path, lambda f: f.write(text), mode="w")


def _write_metrics(rows: list[dict], cfg: MetricsConfig, out: Path, seconds: float) -> Path:
    _write_csv(out / "metrics.csv", list(COLUMNS), [[r[k] for k in COLUMNS] for r in rows])
    table = _markdown(list(COLUMNS.values()), [[r[k] for k in COLUMNS] for r in rows],
                      [DECIMALS.get(k, 1) for k in COLUMNS])
    text = "\n".join([
        "# State diversity and quality", "",
        f"Per env, states normalised by the pooled mean / std of that env's datasets here. "
        f"kNN distance: mean distance of {cfg.samples:,} sampled states to their {cfg.knn_k} "
        f"nearest neighbours among them. Coverage: fraction of the {cfg.bins} x {cfg.bins} cells "
        f"of the env's top-2 principal-axes grid holding one of those states. Log-volume: "
        f"0.5 log det of their covariance. RTG (norm.): normalised score of a {cfg.horizon}-step "
        f"episode at the states' mean discounted reward rate (gamma {cfg.gamma}). Episode "
        f"return: mean over complete episodes; state's episode return: mean over states.", "",
        table, "", f"Computed in {seconds:.0f} s of wall clock.", ""])
    print(table)
    return _write_text(out / "metrics.md", text)


def _ranking(entry: dict | None) -> str:
    if entry is None:
        return "n/a: the curves' loss ranges do not overlap (see the table)"
    return " > ".join(f"{name} {score:.1f}" + ("" if std is None else f" ± {std:.1f}")
                      for name, score, std, *_ in entry["ranking"])


def _yes_no(value: bool | None) -> str:
    return "n/a" if value is None else "yes" if value else "no"


def _write_misalignment(results: list[dict], cfg: MisalignmentConfig, out: Path) -> Path:
    table = curves(results)
    rows = [[("all" if r[k] is None else r[k]) if k == "pairs" else r[k] for k in CURVE_COLUMNS]
            for lines in table.values() for r in lines]
    _write_csv(out / "misalignment.csv", CURVE_COLUMNS, rows)
    png = plot_misalignment(table, out / "misalignment.png")
    order = orderings(table)
    _write_text(out / "orderings.json", json.dumps(order, indent=1))
    minutes = sum(r["checkpoints"][-1]["elapsed_s"] for r in results) / 60

    sizes = ", ".join("the whole dataset" if n is None else f"{n:,} pairs" for n in cfg.pairs)

    def loss_at(key: str) -> str:
        return _fmt(order[key]["loss"], 4) if order[key] else "none"

    text = "\n".join([
        "# Misalignment: BC return against training loss", "",
        f"BC students (Adam lr {cfg.lr}, batch {cfg.batch_size}) on each dataset, trained on "
        f"{sizes} (pairs: the training-set size, drawn at random per seed; all: the whole "
        f"dataset), seeds {list(cfg.seeds)}, scored at steps {list(cfg.checkpoints)}: loss = MSE "
        f"of tanh(mean) actions on {cfg.loss_samples:,} fixed pairs of the whole dataset, return "
        f"= {cfg.episodes} episodes, normalised with the dataset's reference scores. Mean (std) "
        f"over seeds. The step views use each dataset's largest training set; the loss views "
        f"pool every size's checkpoints.", "",
        "## Orderings", "",
        f"- at the highest loss every curve reaches ({loss_at('high_loss')}): "
        f"{_ranking(order['high_loss'])}",
        f"- at the lowest loss every curve reaches ({loss_at('low_loss')}): "
        f"{_ranking(order['low_loss'])}",
        f"- at the first checkpoint (step {order['first_step']['step']}): "
        f"{_ranking(order['first_step'])}",
        f"- at the last checkpoint (step {order['last_step']['step']}): "
        f"{_ranking(order['last_step'])}",
        f"- the best dataset changes from the first to the last checkpoint: "
        f"{_yes_no(order['leader_changes']['by_step'])}; from the highest to the lowest common "
        f"loss: {_yes_no(order['leader_changes']['by_loss'])} (± the std over seeds: a lead "
        f"smaller than it is a tie)",
        "", "## Table", "",
        _markdown(["dataset", "pairs", "step", "seeds", "loss", "± std", "normalised return",
                   "± std", "min", "max"], rows, [0, 0, 0, 0, 4, 4, 1, 1, 1, 1]), "",
        f"![misalignment]({png.name})", "",
        f"BC training and evaluation wall clock summed over the {len(results)} runs: "
        f"{minutes:.1f} min.",
        ""])
    print(text)
    return _write_text(out / "misalignment.md", text)


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="analyze")
@task
def _analyze_app(cfg: DictConfig) -> None:
    run(cfg)


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point; `argv` (without the program name) for tests."""
    launch("analyze", _analyze_app, argv, positional="datasets")


if __name__ == "__main__":
    main()
