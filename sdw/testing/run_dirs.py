"""Run directories exactly as the run-directory contract (docs/report.md) describes, for report tests."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def evaluation(normalised: float | list[float]) -> dict:
    """An eval.json score block of 5 episodes per student: 3 students with this normalised mean,
    or one student per value of a list."""
    students = [float(x) for x in normalised] if isinstance(normalised, list) else [normalised] * 3
    mean = sum(students) / len(students)
    return {"normalised_mean": mean, "normalised_std": 1.0, "return_mean": 10 * mean,
            "return_std": 5.0, "students": len(students), "episodes": 5,
            "per_student": [{"normalised": x, "return": 10 * x} for x in students]}


def write_job(job: Path, *, method: str, dataset: str, seed: int, status: str,
              curve: list[tuple[int, float, float | None]],
              references: dict[str, float | list[float]],
              objective: str = "avpbc", weighting: str = "none", density: str = "knn",
              outer_optim: str = "paper", score: float | None = None, ess: float | None = None,
              error: str | None = None, overrides: list[str] | None = None,
              teacher_episodes: list[float] | None = None) -> Path:
    """One job directory; eval.json only when `score` is set. `curve`: (step, elapsed seconds,
    normalised score) of every periodic evaluation; `references`: random_subset, whole_data_bc
    and teacher scores (a list: one per student); `overrides` of nested keys
    (`synthetic.size=16`) also set them in .hydra/config.yaml, as Hydra does;
    `teacher_episodes`: the teacher reference's per-episode normalised scores."""
    (job / ".hydra").mkdir(parents=True)
    config = {"seed": seed, "outer_steps": 100, "device": "cpu", "threads": 1,
              "method": method, "dataset": {"dataset_id": dataset},
              "outer_optim": {"name": outer_optim, "lr": 0.1}, "inner_optim": {"name": "sgd", "steps": 100},
              "synthetic": {"size": 256},
              "eval": {"every": 50, "students": 3, "episodes": 5, "last_k": 2}}
    for override in overrides or []:
        key, value = override.lstrip("+").split("=", 1)
        if "." in key:
            *parents, leaf = key.split(".")
            node = config
            for parent in parents:
                node = node.setdefault(parent, {})
            node[leaf] = yaml.safe_load(value)
    (job / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    hydra = {"hydra": {"run": {"dir": "outputs/runs/${now:%Y-%m-%d}"},
                       "job": {"name": "${hydra.runtime.output_dir}"},
                       "runtime": {"choices": {
                           "dataset": dataset, "teacher": "td3bc", "density": density,
                           "weighting": weighting, "objective": objective,
                           "outer_optim": outer_optim, "eval": "standard", "logger": "local",
                           "hydra/launcher": "joblib", "hydra/sweeper": "basic"}}}}
    (job / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump(hydra))
    overrides = overrides or [f"dataset={dataset}", f"weighting={weighting}", f"seed={seed}"]
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    (job / "run.log").write_text("log\n")
    lines = []
    for step, elapsed, normalised in curve:
        lines.append({"type": "step", "step": step, "outer_loss": 1.0, "inner_loss": 0.5,
                      "grad_norm": 2.0, "seconds": 0.5, "elapsed": elapsed})
        lines.append({"type": "eval", "step": step, "elapsed": elapsed,
                      "normalised_mean": normalised, "normalised_std": 1.0,
                      "return_mean": 100.0, "return_std": 5.0, "students": 3, "episodes": 5})
    (job / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    weights = None if ess is None else {"ess_fraction": ess, "min": 0.01, "max": 20.0}
    teacher = evaluation(references["teacher"])["normalised_mean"]
    status_doc = {
        "status": status, "error": error, "git_commit": "abc1234",
        "started": "2026-11-30T18:00:00", "finished": None if status == "running" else
        "2026-11-30T18:05:00", "method": method,
        "dataset": {"name": dataset, "hash": "f00d", "transitions": 200_000},
        "teacher": {"algorithm": "td3bc", "normalised": teacher, "source": "cache"},
        "weights": weights,
        "timings": {"dataset": 1.0, "teacher": 2.0, "weights": 3.0, "distill": 50.0,
                    "evaluate": 10.0, "total": 66.0}}
    if status == "running":  # what `RunRecord.start` and `beat` write
        status_doc.update(pid=4242, host="node7", heartbeat="2026-11-30T18:05:00+00:00")
    (job / "status.json").write_text(json.dumps(status_doc))
    if weights is not None:
        (job / "weights.json").write_text(json.dumps(weights))
        (job / "weights.png").write_bytes(PNG_MAGIC)
    if score is not None:
        result = {"method": method, "dataset": dataset, "env_id": "Hopper-v4", "seed": seed,
                  "size": config["synthetic"]["size"], "outer_steps": 100,
                  "standard": evaluation(score + 1.0),
                  "last_k": {"k": 2, "steps": [50, 100], "normalised_mean": score},
                  "ensemble": None, "cross_architecture": {}, "cross_optimiser": {},
                  "references": {name: evaluation(value) for name, value in references.items()},
                  "weights": None if ess is None else {"ess_fraction": ess}}
        if teacher_episodes is not None:
            result["references"]["teacher"]["per_episode"] = list(teacher_episodes)
        (job / "eval.json").write_text(json.dumps(result))
    return job
