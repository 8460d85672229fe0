"""Stage 1 of the report: every job directory (one holding `.hydra/config.yaml`) -> one row.

Reads what the run-directory contract (docs/report.md) allows to be there and tolerates what it
allows to be missing: a job without status.json is "incomplete", without eval.json it has no
scores, a null score stays empty, an unreadable file puts its reason into the `error` column.
"""

from __future__ import annotations

import csv
import difflib
import json
import logging
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from sdw.app.record import LOCK
from sdw.atomic import atomic_write
from sdw.errors import UserError
from sdw.locks import held

log = logging.getLogger("sdw.report")

REFERENCES = ("random_subset", "whole_data_bc", "teacher")
EVAL_ARTEFACT = ".eval.json"
"""How the files `sdw-eval` writes beside a synthetic set end (`synthetic.eval.json`)."""
# Columns every runs.csv has, in this order; group choices and then override keys not yet
# columns (`synthetic.size`) come after `ess_fraction`, timings (`time_<stage>`) after
# `last_elapsed`.
LEADING_COLUMNS = ("run_dir", "status", "error", "method", "dataset", "seed", "score",
                   "score_final", "score_final_std", *(f"ref_{r}" for r in REFERENCES),
                   "ess_fraction")
MIDDLE_COLUMNS = ("overrides", "outer_steps", "last_step", "last_eval_step", "last_elapsed")
TRAILING_COLUMNS = ("git_commit", "started", "finished", "weights_png", "poses_png", "rollout_gif",
                    "root")
FIXED_COLUMNS = LEADING_COLUMNS + MIDDLE_COLUMNS + TRAILING_COLUMNS


@dataclass
class Curve:
    """The periodic evaluations of one run (the `eval` lines of metrics.jsonl), in step order."""

    steps: list[int] = field(default_factory=list)
    elapsed: list[float | None] = field(default_factory=list)
    scores: list[float | None] = field(default_factory=list)


@dataclass
class Run:
    """One job: its runs.csv row, its evaluation curve, the directory it was found under, and
    each reference's per-student normalised scores (eval.json; not a runs.csv column), the
    map from its normalised scores to raw returns, (raw at 0, raw per point), read off the
    (normalised, return) pairs of its evaluations (None when they do not fix it), and its
    composed teacher config (.hydra/config.yaml; empty where not known), which tells whether
    two jobs imitated the same teacher."""

    row: dict[str, Any]
    curve: Curve
    root: Path
    references: dict[str, list[float]] = field(default_factory=dict)
    return_map: tuple[float, float] | None = None
    teacher: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, column: str) -> Any:
        return self.row.get(column)


def label(value: Any) -> str:
    """A row or column key as text (None -> "(none)")."""
    return "(none)" if value is None or value == "" else str(value)


def find_job_dirs(root: Path) -> list[Path]:
    """Every directory under `root` (itself included) that holds `.hydra/config.yaml`, sorted."""
    jobs = []
    for here, subdirs, _ in os.walk(root):
        if (Path(here) / ".hydra" / "config.yaml").is_file():
            jobs.append(Path(here))
            subdirs.clear()  # a job directory holds no further jobs
            continue
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
    return sorted(jobs)


def collect_runs(dirs: Sequence[str | Path]) -> list[Run]:
    """All jobs under the given sweep or run directories (each searched recursively), and the
    evaluations `sdw-eval` wrote (`*.eval.json`): merged into the job whose directory holds
    one, a row of their own elsewhere; a given path may also be one such file."""
    if not dirs:
        raise UserError("no directories to report on: give them as `sdw-report DIR...` or "
                        "`dirs=[DIR,...]`")
    runs: list[Run] = []
    seen: set[Path] = set()
    for d in dirs:
        root = Path(d)
        if root.is_file() and root.name.endswith(EVAL_ARTEFACT):
            if root.resolve() not in seen:
                seen.add(root.resolve())
                runs.append(read_eval_artefact(root, root.parent))
            continue
        if not root.is_dir():
            raise UserError(f"{root}: no such directory (give a sweep or run directory written "
                            f"by sdw-run, or an sdw-eval *{EVAL_ARTEFACT})")
        jobs = find_job_dirs(root)
        artefacts = find_eval_artefacts(root, jobs)
        if not jobs and not artefacts:
            raise UserError(f"{root}: no job directory (one holding .hydra/config.yaml) and no "
                            f"sdw-eval *{EVAL_ARTEFACT} below it; is this an sdw-run output "
                            f"directory?")
        for job in jobs:
            if job.resolve() in seen:  # a job under two given directories is read once
                continue
            seen.add(job.resolve())
            if is_run_job(job):
                runs.append(read_run(job, root))
            else:
                log.info("skipped %s: a Hydra job of another app (no status.json, no "
                         "outer_steps in .hydra/config.yaml)", job)
        for path in artefacts:
            if path.resolve() not in seen:
                seen.add(path.resolve())
                runs.append(read_eval_artefact(path, root))
    return _dataset_names_by_option(runs)


def find_eval_artefacts(root: Path, jobs: Sequence[Path]) -> list[Path]:
    """The `sdw-eval` outputs under `root` outside its job directories, sorted."""
    inside = {job.resolve() for job in jobs}
    return sorted(path for path in root.rglob(f"*{EVAL_ARTEFACT}")
                  if not any(p in inside for p in path.resolve().parents)
                  and not any(part.startswith(".") for part in path.relative_to(root).parts))


def _dataset_names_by_option(runs: list[Run]) -> list[Run]:
    """A job that stopped before its dataset loaded knows only its config option
    (`local-hopper-medium`): file it under the dataset name the jobs of the same option loaded
    (`sdw/hopper/medium-v0`), so one dataset never splits into two columns."""
    loaded = {run["dataset_choice"]: run["dataset"] for run in runs
              if run.row.get("dataset_choice") and run["dataset"] != run["dataset_choice"]}
    for run in runs:
        if run["dataset"] == run.row.get("dataset_choice") and run["dataset"] in loaded:
            run.row["dataset"] = loaded[run["dataset"]]
    return runs


def is_run_job(job: Path) -> bool:
    """An sdw-run job: it has status.json, or its config has outer_steps (killed before its
    status was written); other Hydra apps' jobs (sdw-collect's) have neither."""
    if (job / "status.json").is_file():
        return True
    config = _read_yaml(job / ".hydra" / "config.yaml", [])
    return isinstance(config, dict) and "outer_steps" in config


def protocol_scores(result: dict) -> dict[str, float | None]:
    """The scores of every other protocol eval.json holds: `score_ensemble` (OBD Table 3, with
    `ensemble_members`), `score_arch_<name>` and `score_optim_<name>` (Table 2), one column
    each."""
    scores: dict[str, float | None] = {}
    if isinstance(result.get("ensemble"), dict):
        scores["score_ensemble"] = _number(result["ensemble"].get("normalised_mean"))
        scores["ensemble_members"] = _number(result["ensemble"].get("members"))
    for kind, prefix in (("cross_architecture", "arch"), ("cross_optimiser", "optim")):
        for name, summary in (result.get(kind) or {}).items():
            scores[f"score_{prefix}_{name}"] = _number((summary or {}).get("normalised_mean"))
    return scores


PROTOCOL_KEYS = ("students", "episodes", "every", "last_k", "bc_students", "bc_steps",
                 "max_episode_steps", "seed")
"""The evaluation settings that make two runs' scores comparable (the `eval_protocol` column)."""


def _protocol(node: Any) -> str | None:
    """`students=5 episodes=10 every=50 last_k=2 ...`: a job's evaluation protocol, or None."""
    if not isinstance(node, dict):
        return None
    return " ".join(f"{k}={node[k]}" for k in PROTOCOL_KEYS if k in node) or None


def run_status(job: Path, status: dict) -> str:
    """status.json's status, except: `interrupted` for a `running` job no live process holds
    (killed, or its machine gone), `stale` for a finished job a later launch found to hold other
    settings than its config (docs/experiments.md), `incomplete` without a status."""
    value = status.get("status") or "incomplete"
    if value == "running" and not held(job / LOCK):
        return "interrupted"
    if value == "done" and status.get("stale"):
        return "stale"
    return value


def _status_note(job: Path, status: dict) -> str | None:
    """Why `run_status` changed the recorded status, for the `error` column."""
    value = run_status(job, status)
    if value == "interrupted" and status.get("status") == "running":
        return (f"process {status.get('pid', '?')} on {status.get('host', '?')} is gone (last "
                f"heartbeat {status.get('heartbeat') or status.get('started') or 'unknown'})")
    if value == "stale":
        return f"other settings were launched here: {', '.join(status['stale']['keys'])}"
    return None


def read_run(job: Path, root: Path) -> Run:
    """One job directory -> its row (see FIXED_COLUMNS) and evaluation curve."""
    problems: list[str] = []
    status = _read_json(job / "status.json", problems)
    result = _read_json(job / "eval.json", problems)
    config = _read_yaml(job / ".hydra" / "config.yaml", problems) or {}
    hydra_cfg = _read_yaml(job / ".hydra" / "hydra.yaml", problems) or {}
    overrides = _read_yaml(job / ".hydra" / "overrides.yaml", problems) or []
    curve, last_step = read_metrics(job / "metrics.jsonl", problems)

    status = status or {}
    result = result or {}
    choices = {group: value for group, value in
               (_get(hydra_cfg, "hydra", "runtime", "choices") or {}).items()
               if not str(group).startswith("hydra/")}
    row: dict[str, Any] = {
        "run_dir": str(job),
        "status": run_status(job, status),
        "error": status.get("error") or _status_note(job, status),
        "method": status.get("method") or result.get("method") or config.get("method"),
        "dataset": (_get(status, "dataset", "name") or result.get("dataset")
                    or choices.get("dataset")),
        "seed": _first(config.get("seed"), result.get("seed")),
        "score": _number(_get(result, "last_k", "normalised_mean")),
        **_evaluation_columns(result),
        "ess_fraction": _number(_first(_get(result, "weights", "ess_fraction"),
                                       _get(status, "weights", "ess_fraction"))),
    }
    for artefact in sorted(job.glob(f"*{EVAL_ARTEFACT}")):  # sdw-eval of this run's set
        extra = _read_json(artefact, problems) or {}
        for column, value in protocol_scores(extra).items():
            if row.get(column) is None:
                row[column] = value
    if row["ref_teacher"] is None:
        row["ref_teacher"] = _number(_get(status, "teacher", "normalised"))
    for group, value in choices.items():
        row[f"{group}_choice" if group in FIXED_COLUMNS else str(group)] = value
    for override in overrides:  # swept values (synthetic.size=64) as columns for tables
        key, sep, value = str(override).lstrip("+~").partition("=")
        if sep and key not in row and key not in FIXED_COLUMNS:
            row[key] = value
    row.update({
        "overrides": " ".join(str(o) for o in overrides),
        "outer_steps": _first(config.get("outer_steps"), result.get("outer_steps")),
        "eval_protocol": _protocol(config.get("eval")),
        "last_step": last_step,
        "last_eval_step": curve.steps[-1] if curve.steps else None,
        "last_elapsed": curve.elapsed[-1] if curve.elapsed else None,
    })
    for stage, seconds in (status.get("timings") or {}).items():
        row[f"time_{stage}"] = _number(seconds)
    weights_png = job / "weights.png"
    row.update({
        "git_commit": status.get("git_commit"),
        "started": status.get("started"),
        "finished": status.get("finished"),
        "weights_png": str(weights_png) if weights_png.is_file() else None,
        **pictures(job, ""),
        "root": str(root),
    })
    if problems:
        row["error"] = "; ".join(filter(None, [row["error"], *problems]))
    return Run(row=row, curve=curve, root=root, references=_reference_samples(result),
               return_map=_return_map(result), teacher=dict(config.get("teacher") or {}))


def read_eval_artefact(path: Path, root: Path) -> Run:
    """One `sdw-eval` output outside a job directory -> a row of its own (status `done`; its
    final scores, no `score`: sdw-eval has no periodic evaluations)."""
    problems: list[str] = []
    result = _read_json(path, problems) or {}
    row: dict[str, Any] = {
        "run_dir": str(path), "status": "done" if result else "incomplete",
        "error": "; ".join(problems) or None, "method": result.get("method"),
        "dataset": result.get("dataset"), "seed": result.get("seed"), "score": None,
        **_evaluation_columns(result), "ess_fraction": None, "overrides": "",
        "outer_steps": result.get("outer_steps"),
        "eval_protocol": _protocol(result.get("protocol")),
        "last_step": None, "last_eval_step": None, "last_elapsed": None, "git_commit": None,
        "started": None, "finished": None, "weights_png": None,
        **pictures(path.parent, path.name.removesuffix(EVAL_ARTEFACT) + "."), "root": str(root),
    }
    return Run(row=row, curve=Curve(), root=root, references=_reference_samples(result),
               return_map=_return_map(result))


def pictures(directory: Path, prefix: str) -> dict[str, str | None]:
    """`poses_png` and `rollout_gif`: the pictures sdw-run (`capture_video=true`, no prefix) or
    sdw-eval (`<set stem>.`) left in `directory`, else None; in a job directory an sdw-eval
    picture of its set counts when sdw-run made none."""
    found = {}
    for column, name in (("poses_png", "poses.png"), ("rollout_gif", "rollout.gif")):
        paths = [directory / f"{prefix}{name}"] + (
            sorted(directory.glob(f"*.{name}")) if not prefix else [])
        found[column] = next((str(p) for p in paths if p.is_file()), None)
    return found


def _evaluation_columns(result: dict) -> dict[str, Any]:
    """eval.json's final scores, every protocol's score and the references' means."""
    return {
        "score_final": _number(_get(result, "standard", "normalised_mean")),
        "score_final_std": _number(_get(result, "standard", "normalised_std")),
        **protocol_scores(result),
        **{f"ref_{r}": _number(_get(result, "references", r, "normalised_mean"))
           for r in REFERENCES},
    }


def _reference_samples(result: dict) -> dict[str, list[float]]:
    """Each reference's per-student normalised scores; the teacher's per-episode ones."""
    references = {r: [float(x["normalised"]) for x in students if x.get("normalised") is not None]
                  for r in REFERENCES
                  if (students := _get(result, "references", r, "per_student"))}
    episodes = _get(result, "references", "teacher", "per_episode") or []
    if episodes and all(e is not None for e in episodes):  # one policy: its episodes' spread
        references["teacher"] = [float(e) for e in episodes]
    return references


def _return_map(result: dict) -> tuple[float, float] | None:
    """(raw return at normalised 0, raw return per normalised point) from the two most distant
    (normalised, return) pairs of eval.json's students: normalisation is affine per dataset."""
    pairs = [(float(x["normalised"]), float(x["return"]))
             for r in REFERENCES for x in (_get(result, "references", r, "per_student") or [])
             if x.get("normalised") is not None and x.get("return") is not None]
    if len(pairs) < 2:
        return None
    (n0, r0), (n1, r1) = min(pairs), max(pairs)
    if n1 - n0 < 1e-6:
        return None
    slope = (r1 - r0) / (n1 - n0)
    return r0 - slope * n0, slope


def read_metrics(path: Path, problems: list[str]) -> tuple[Curve, int | None]:
    """The eval lines of metrics.jsonl as a curve, and the last outer step logged."""
    curve = Curve()
    if not path.is_file():
        return curve, None
    last_step = None
    bad = 0
    evals: dict[int, dict] = {}
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            step = int(entry["step"])
        except (ValueError, KeyError, TypeError):
            bad += 1  # a line cut short by a kill, for example
            continue
        if entry.get("type") == "step":
            last_step = step if last_step is None else max(last_step, step)
        elif entry.get("type") == "eval":
            evals[step] = entry  # a resumed run may log a step twice: the last one wins
    if bad:
        problems.append(f"{path.name}: {bad} unreadable line(s) skipped")
    for step in sorted(evals):
        curve.steps.append(step)
        curve.elapsed.append(_number(evals[step].get("elapsed")))
        curve.scores.append(_number(evals[step].get("normalised_mean")))
    return curve, last_step


def columns_of(runs: Iterable[Run]) -> list[str]:
    """runs.csv's columns: the fixed ones, group choices and override keys where they belong,
    timings after."""
    choices: list[str] = []
    timings: list[str] = []
    for run in runs:
        for column in run.row:
            if column in FIXED_COLUMNS:
                continue
            target = timings if column.startswith("time_") else choices
            if column not in target:
                target.append(column)
    return [*LEADING_COLUMNS, *choices, *MIDDLE_COLUMNS, *timings, *TRAILING_COLUMNS]


def check_columns(runs: Sequence[Run], columns: dict[str, str | None]) -> None:
    """Every config key's column (`{"table.rows": "method", ...}`, None skipped) is a runs.csv
    column of some run; otherwise a UserError naming the key and listing the columns."""
    known = {c for run in runs for c in run.row}
    for key, column in columns.items():
        if column is not None and column not in known:
            close = difflib.get_close_matches(column, sorted(known), n=3, cutoff=0.6)
            hint = f" Did you mean {' or '.join(f'{key}={c}' for c in close)}?" if close else ""
            raise UserError(f"{key}: no runs.csv column {column!r}.{hint} The columns are: "
                            f"{', '.join(sorted(known))}")


def status_counts(runs: Sequence[Run]) -> str:
    """`3 done, 1 failed`: how many runs have each status."""
    counts: dict[str, int] = {}
    for r in runs:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "none"


def write_runs_csv(runs: Sequence[Run], path: Path) -> Path:
    """One row per job; empty cells for values a job does not have."""
    columns = columns_of(runs)

    def write(f) -> None:
        writer = csv.DictWriter(f, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for run in runs:
            writer.writerow({c: "" if run.row.get(c) is None else run.row[c] for c in columns})

    return atomic_write(path, write, mode="w")


def _read_json(path: Path, problems: list[str]) -> dict | None:
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        problems.append(f"{path.name} unreadable ({e})")
        return None
    if not isinstance(value, dict):
        problems.append(f"{path.name} is not a JSON object")
        return None
    return value


def _read_yaml(path: Path, problems: list[str]) -> Any:
    """A YAML file as plain containers, interpolations left unresolved (Hydra's own are not
    resolvable outside Hydra)."""
    if not path.is_file():
        return None
    try:
        return OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    except Exception as e:  # noqa: BLE001 - any parse error becomes the row's error text
        problems.append(f"{path.parent.name}/{path.name} unreadable ({type(e).__name__}: {e})")
        return None


def _get(d: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(d, dict):
            return None
        d = d.get(key)
    return d


def _first(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


def _number(value: Any) -> float | None:
    """A finite float, or None for null, missing, non-numbers and NaN."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None
