"""The SDW paper's misalignment experiment: BC students of each dataset, trained to a range of
loss levels (varied by training steps and by the size of their training set), scored by rollouts.

One BC run per (dataset, training-set size, seed) is evaluated at every checkpoint step: its loss
on the whole dataset (deterministic tanh(mean) actions, mean squared error over a fixed sample of
the dataset's pairs) and its normalised return. A student trained on a few hundred pairs (the
regime of OBD's synthetic sets) stays at a high whole-data loss, where the datasets' loss ranges
overlap; steps alone leave a diverse dataset's curve at higher loss than the others' throughout.
Each finished run is one JSON file, written atomically, so a rerun skips it.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from sdw.atomic import atomic_write
from sdw.data.dataset import OfflineDataset
from sdw.distill.inner_optim import InnerOptimConfig
from sdw.distill.loop import real_pairs
from sdw.distill.student import student_policy, train_student
from sdw.distill.synthetic import SyntheticSet
from sdw.errors import UserError
from sdw.evaluate.protocol import EvalProtocol
from sdw.networks.actor import ActorConfig

log = logging.getLogger("sdw.analyze")


@dataclass(frozen=True)
class MisalignmentConfig:
    """How the BC students are trained and scored (conf/analyze.yaml, `misalignment`)."""

    seeds: tuple[int, ...] = (0, 1, 2)
    checkpoints: tuple[int, ...] = (30, 100, 300, 1000, 3000)
    pairs: tuple[int | None, ...] = (None,)  # training-set sizes; None: the whole dataset
    batch_size: int = 256
    lr: float = 3e-4
    loss_samples: int = 50_000
    episodes: int = 10
    max_episode_steps: int | None = None
    eval_seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "seeds", tuple(int(s) for s in self.seeds))
        object.__setattr__(self, "checkpoints", tuple(int(c) for c in self.checkpoints))
        object.__setattr__(self, "pairs", tuple(None if n is None else int(n)
                                                for n in self.pairs))
        steps = self.checkpoints
        if not steps or steps[0] < 1 or any(b <= a for a, b in zip(steps, steps[1:])):
            raise ValueError(f"misalignment.checkpoints={list(steps)}: give increasing step "
                             f"counts >= 1, e.g. [50,100,300,1000].")
        if not self.seeds:
            raise ValueError("misalignment.seeds is empty: give at least one seed, e.g. [0,1,2].")
        sizes = self.pairs
        if not sizes or len(set(sizes)) < len(sizes) or any(n is not None and n < 1
                                                           for n in sizes):
            raise ValueError(f"misalignment.pairs={list(sizes)}: give distinct training-set "
                             f"sizes >= 1 or null (the whole dataset), e.g. [256,null].")
        for name in ("batch_size", "loss_samples", "episodes"):
            if getattr(self, name) < 1:
                raise ValueError(f"misalignment.{name} must be >= 1, got {getattr(self, name)}.")

    def settings(self, student: ActorConfig, pairs: int | None = None) -> dict:
        """What a result file of `pairs` training pairs must have been made with to be reused
        (seeds and the other sizes excepted; a whole-data run's settings name no size)."""
        own = {k: v for k, v in asdict(self).items() if k not in ("seeds", "pairs")}
        size = {} if pairs is None else {"pairs": pairs}
        return {**json.loads(json.dumps(own)), "student": student.to_dict(), **size}


@dataclass
class _Checkpoints:
    """Scores the student at the checkpoint steps while it trains."""

    cfg: MisalignmentConfig
    dataset: OfflineDataset
    bc_set: SyntheticSet
    states: torch.Tensor
    actions: torch.Tensor
    rows: list[dict] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)

    def __call__(self, step: int, actor: nn.Module) -> None:
        if step not in self.cfg.checkpoints:
            return
        with torch.no_grad():
            loss = float(((actor(self.states, deterministic=True) - self.actions) ** 2).mean())
        protocol = EvalProtocol(students=1, episodes=self.cfg.episodes, references=False,
                                max_episode_steps=self.cfg.max_episode_steps,
                                seed=self.cfg.eval_seed)
        scores = protocol.score([student_policy(actor)], self.bc_set.env_id,
                                self.bc_set.normaliser, self.dataset.metadata.reference_scores)
        self.rows.append({"step": step, "loss": loss, "normalised": scores["normalised_mean"],
                          "normalised_std": scores["normalised_std"],
                          "return_mean": scores["return_mean"],
                          "return_std": scores["return_std"],
                          "elapsed_s": round(time.perf_counter() - self.started, 2)})
        log.info("%s step %d: loss %.4f, %s", self.dataset.metadata.name, step, loss,
                 f"normalised {scores['normalised_mean']:.1f}"
                 if scores["normalised_mean"] is not None
                 else f"return {scores['return_mean']:.1f}")


def bc_run(dataset: OfflineDataset, student: ActorConfig, cfg: MisalignmentConfig,
           seed: int, pairs: int | None = None) -> list[dict]:
    """One BC student (Adam, minibatches) on the whole dataset or on `pairs` of its pairs drawn
    at random with `seed`, scored at every checkpoint step (loss on the whole dataset)."""
    normaliser = dataset.state_normaliser()
    states, actions = real_pairs(dataset, normaliser, torch.device("cpu"))
    meta = dataset.metadata
    train = (slice(None) if pairs is None else torch.from_numpy(
        np.random.default_rng(seed).choice(len(states), min(pairs, len(states)), replace=False)))
    bc_set = SyntheticSet(states[train].numpy(), actions[train].numpy(), normaliser, meta.env_id,
                          meta.name, dataset.content_hash,
                          "whole-data-bc" if pairs is None else f"bc-{pairs}-pairs")
    sample = np.random.default_rng(0).choice(len(states), min(cfg.loss_samples, len(states)),
                                             replace=False)
    scorer = _Checkpoints(cfg, dataset, bc_set, states[sample], actions[sample])
    adam = InnerOptimConfig(name="adam", lr=cfg.lr, steps=cfg.checkpoints[-1])
    train_student(bc_set, student, adam, seed=seed, batch_size=cfg.batch_size, callback=scorer)
    return scorer.rows


def result_path(out: Path, dataset_name: str, seed: int, pairs: int | None = None) -> Path:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", dataset_name).strip("_")
    size = "" if pairs is None else f"pairs{pairs}-"
    return out / "misalignment" / slug / f"{size}seed{seed}.json"


def load_result(path: Path, dataset: OfflineDataset, settings: dict) -> dict | None:
    """The finished result at `path` if it exists; an error if it was made otherwise."""
    if not path.exists():
        return None
    try:
        result = json.loads(path.read_text())
        made_with, made_from = result["settings"], result["dataset_hash"]
    except (ValueError, KeyError) as e:
        raise UserError(f"{path} is not a misalignment result ({e}); delete it and rerun.") \
            from None
    if made_from != dataset.content_hash or made_with != settings:
        what = ("dataset hash " + made_from if made_from != dataset.content_hash else
                "settings " + json.dumps(
                    {k: v for k, v in made_with.items() if settings.get(k) != v}))
        raise UserError(f"{path} was made with {what}, not this run's: choose another out= "
                        f"or delete the file to recompute it.")
    return result


def run_misalignment(datasets: Sequence[OfflineDataset], student: ActorConfig,
                     cfg: MisalignmentConfig, out: Path) -> list[dict]:
    """Every (dataset, training-set size, seed) result, computing only the missing ones
    (seed-major order, so an interrupted run has every dataset and size at the same number of
    seeds)."""
    results = []
    for seed in cfg.seeds:
        for pairs in cfg.pairs:
            settings = cfg.settings(student, pairs)
            for dataset in datasets:
                path = result_path(out, dataset.metadata.name, seed, pairs)
                result = load_result(path, dataset, settings)
                if result is None:
                    log.info("BC on %s (%s), seed %d: %d steps", dataset.metadata.name,
                             "whole dataset" if pairs is None else f"{pairs} pairs", seed,
                             cfg.checkpoints[-1])
                    result = {"dataset": dataset.metadata.name,
                              "dataset_hash": dataset.content_hash,
                              "env_id": dataset.metadata.env_id, "seed": seed,
                              "settings": settings,
                              "checkpoints": bc_run(dataset, student, cfg, seed, pairs)}
                    atomic_write(path, lambda f, r=result: json.dump(r, f, indent=1), mode="w")
                else:
                    log.info("%s exists: skipped", path)
                results.append(result)
    return results


def curves(results: Sequence[dict]) -> dict[str, list[dict]]:
    """Per dataset, per training-set size (`pairs`, None: the whole dataset; the whole dataset
    last) and checkpoint step: mean and spread over seeds of loss and score."""
    by_run: dict[str, dict[int | None, list[dict]]] = {}
    for r in results:
        by_run.setdefault(r["dataset"], {}).setdefault(r["settings"].get("pairs"), []).append(r)
    out = {}
    for name, sizes in by_run.items():
        out[name] = [row for pairs in sorted(sizes, key=_size_order)
                     for row in _rows(name, pairs, sizes[pairs])]
    return out


def _size_order(pairs: int | None) -> float:
    return math.inf if pairs is None else pairs


def _rows(name: str, pairs: int | None, runs: Sequence[dict]) -> list[dict]:
    rows = []
    for step in [c["step"] for c in runs[0]["checkpoints"]]:
        points = [c for r in runs for c in r["checkpoints"] if c["step"] == step]
        loss = np.array([p["loss"] for p in points])
        score = np.array([np.nan if p["normalised"] is None else p["normalised"]
                          for p in points])
        rows.append({"dataset": name, "pairs": pairs, "step": step, "seeds": len(points),
                     "loss_mean": float(loss.mean()), "loss_std": float(loss.std()),
                     "score_mean": float(score.mean()), "score_std": float(score.std()),
                     "score_min": float(score.min()), "score_max": float(score.max()),
                     "scores": score.tolist(), "losses": loss.tolist()})
    return rows


def largest_set(rows: Sequence[dict]) -> list[dict]:
    """The rows of the dataset's largest training set (the whole dataset when it was run)."""
    size = max((r.get("pairs") for r in rows), key=_size_order)
    return [r for r in rows if r.get("pairs") == size]


def score_at_loss(rows: Sequence[dict], loss: float) -> float:
    """The seed-mean score at `loss`, linear in log loss between the dataset's points (every
    checkpoint of every training-set size, ordered by loss)."""
    return _interpolate([r["loss_mean"] for r in rows], [r["score_mean"] for r in rows], loss)


def seed_scores_at_loss(rows: Sequence[dict], loss: float) -> list[float] | None:
    """Each seed's score at `loss`, from that seed's own points as `score_at_loss` does (held at
    its end value beyond its range); None when the rows carry no per-seed losses."""
    if not rows or any("losses" not in r or len(r["losses"]) != len(rows[0]["losses"])
                       for r in rows):
        return None
    return [_interpolate([r["losses"][i] for r in rows], [r["scores"][i] for r in rows], loss)
            for i in range(len(rows[0]["losses"]))]


def _interpolate(losses: Sequence[float], scores: Sequence[float], loss: float) -> float:
    pts = sorted(zip(np.log(losses), scores))
    return float(np.interp(np.log(loss), [p[0] for p in pts], [p[1] for p in pts]))


def orderings(table: dict[str, list[dict]]) -> dict:
    """The datasets ranked by score at the first and last checkpoint of their largest training
    set, and at the highest and lowest loss level every dataset reaches with any size
    (interpolated per seed, ranked by the seeds' mean; None when the loss ranges do not
    overlap); whether the best dataset changes between the two ends of either view."""

    def ranked(values: dict[str, float], rows: dict[str, dict] | None = None) -> list:
        """[name, score, std over seeds or None, seed scores or None], best first."""
        spread = {n: (r.get("score_std"), r.get("scores")) for n, r in (rows or {}).items()}
        return [[n, v, *spread.get(n, (None, None))]
                for n, v in sorted(values.items(), key=lambda kv: -kv[1])]

    result = {}
    for key, index in (("first_step", 0), ("last_step", -1)):
        at = {n: largest_set(rows)[index] for n, rows in table.items()}
        result[key] = {"step": next(iter(at.values()))["step"],
                       "ranking": ranked({n: r["score_mean"] for n, r in at.items()}, at)}
    high = min(max(r["loss_mean"] for r in rows) for rows in table.values())
    low = max(min(r["loss_mean"] for r in rows) for rows in table.values())
    for key, loss in (("high_loss", high), ("low_loss", low)):
        result[key] = None if low > high else {
            "loss": loss, "ranking": sorted((_at_loss(n, rows, loss) for n, rows in table.items()),
                                            key=lambda item: -item[1])}
    result["leader_changes"] = {
        "by_step": _leader(result["first_step"]) != _leader(result["last_step"]),
        "by_loss": None if low > high else
        _leader(result["high_loss"]) != _leader(result["low_loss"])}
    return result


def _at_loss(name: str, rows: Sequence[dict], loss: float) -> list:
    """[name, score, std over seeds, seed scores] at `loss` (std and seeds None without per-seed
    losses: the seed-mean curve interpolated)."""
    seeds = seed_scores_at_loss(rows, loss)
    if seeds is None:
        return [name, score_at_loss(rows, loss), None, None]
    return [name, float(np.mean(seeds)), float(np.std(seeds)), seeds]


def _leader(entry: dict) -> str:
    return entry["ranking"][0][0]
