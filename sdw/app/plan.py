"""`sdw-run --dry-run ...`: what a launch would do, before it does anything.

Every value is checked as the run checks it, no directory is made, and each job of the run or
sweep is listed as new, partial (step k of N), done, stale or running, with a cost estimated from
the step times already measured in the same sweep (docs/experiments.md, "A plan before the work").
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict

from sdw.app.fingerprint import differences, extendable, result_config
from sdw.app.record import EVAL, LOCK, METRICS, STATUS, read_json
from sdw.app.run import check_run_settings
from sdw.locks import held
from sdw.overrides import check_overrides, compose_each


@dataclass
class JobPlan:
    """One job: where it runs, what the launch would do there, and how many steps are left."""

    run_dir: Path
    state: str
    detail: str
    steps_left: int
    outer_steps: int


def fit_warnings(cfg: DictConfig) -> list[str]:
    """Evaluation settings that do not fit `outer_steps` (a one-point curve, a short table mean)."""
    steps, every, last_k = cfg.outer_steps, cfg.eval.every, cfg.eval.last_k
    evaluations = len({*range(every, steps + 1, every), steps} - {0}) if every else 1
    warnings = []
    if every and every > steps:
        warnings.append(f"eval.every={every} is more than outer_steps={steps}: the run is "
                        "evaluated once, at its last step (a one-point curve).")
    if evaluations < last_k:
        warnings.append(f"eval.last_k={last_k} but outer_steps={steps} gives {evaluations} "
                        f"evaluation(s): the table number averages {evaluations}, not {last_k}.")
    return warnings


def job_state(run_dir: Path, config: dict, outer_steps: int) -> tuple[str, str, int]:
    """(state, detail, outer steps left) of a job directory, read without changing it."""
    status = read_json(run_dir / STATUS)
    if status is None:
        return "new", "", outer_steps
    rows = []
    if (run_dir / METRICS).exists():
        for line in (run_dir / METRICS).read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except ValueError:
                break
    done_steps = max((r["step"] for r in rows if r.get("type") == "step"), default=0)
    if status.get("status") == "running" and held(run_dir / LOCK):
        return "running", f"step {done_steps} of {outer_steps}, {status.get('host')}", 0
    diff = differences(status["config"], config) if status.get("config") is not None else {}
    if diff:
        keys = ", ".join(diff)
        return "stale", f"other settings: {keys} (rerun=true runs it again)", outer_steps
    if status.get("status") == "done" and (run_dir / EVAL).exists():
        finished = (read_json(run_dir / EVAL) or {}).get("outer_steps", outer_steps)
        if finished == outer_steps or not extendable(config):
            return "done", "", 0
        if finished < outer_steps:
            return "partial", f"done at {finished}, extended to {outer_steps}", \
                outer_steps - finished
        return "stale", f"finished {finished} outer steps, not {outer_steps}", outer_steps
    return "partial", f"step {done_steps} of {outer_steps} ({status.get('status')})", \
        outer_steps - done_steps


def measured_seconds(roots: Sequence[Path]) -> tuple[float | None, float | None]:
    """(median seconds per outer step with its evaluations, median seconds of the final
    evaluation) over the finished jobs under `roots` (status.json timings), or None."""
    per_step, final = [], []
    for root in roots:
        for path in root.glob("*/" + STATUS) if root.exists() else ():
            status = read_json(path) or {}
            timings, evaluation = status.get("timings") or {}, read_json(path.parent / EVAL)
            if status.get("status") == "done" and evaluation and timings.get("distill"):
                per_step.append(timings["distill"] / max(evaluation.get("outer_steps") or 1, 1))
                final.append(timings.get("evaluate", 0.0))
    return ((statistics.median(per_step) if per_step else None),
            (statistics.median(final) if final else None))


@dataclass
class LaunchPlan:
    """The jobs of a launch, its warnings, the measured (seconds per step, seconds of the final
    evaluation) it is estimated with, and how many jobs run at a time."""

    jobs: list[JobPlan]
    warnings: list[str]
    seconds: tuple[float | None, float | None]
    parallel: int


def plan(config_name: str, overrides: Sequence[str], config_dirs: Sequence[str],
         multirun: bool) -> LaunchPlan:
    """What `sdw-run` with these overrides (and `-m` when `multirun`) would do."""
    cfg = check_overrides(config_name, overrides, config_dirs, hydra_node=True)
    multirun = multirun or cfg.hydra.mode == RunMode.MULTIRUN
    sweeper = OmegaConf.select(cfg, "hydra.sweeper._target_") or ""
    if multirun and not sweeper.endswith("BasicSweeper"):
        raise ValueError(f"the sweeper {sweeper} picks its jobs as it runs (an Optuna search "
                         f"of {OmegaConf.select(cfg, 'hydra.sweeper.n_trials')} trials): "
                         "there is no list of jobs to show before it starts.")
    if multirun:
        params = [f"{k}={v}" for k, v in (cfg.hydra.sweeper.params or {}).items()]
        parsed = OverridesParser.create().parse_overrides([*params, *overrides])
        jobs = [job for batch in BasicSweeper.split_arguments(parsed, None) for job in batch]
    else:
        jobs = [list(overrides)]
    configs = compose_each(config_name, jobs, config_dirs)
    plans, warnings, roots = [], [], set()
    for job_cfg in configs:
        hydra = job_cfg.hydra
        run_dir = (Path(hydra.sweep.dir) / hydra.sweep.subdir) if multirun else Path(hydra.run.dir)
        roots.add(run_dir.parent)
        with open_dict(job_cfg):
            del job_cfg["hydra"]
        check_run_settings(job_cfg)
        warnings += [w for w in fit_warnings(job_cfg) if w not in warnings]
        state, detail, left = job_state(run_dir, result_config(job_cfg), job_cfg.outer_steps)
        plans.append(JobPlan(run_dir, state, detail, left, job_cfg.outer_steps))
    parallel = (OmegaConf.select(cfg, "hydra.launcher.n_jobs") or 1) if multirun else 1
    return LaunchPlan(plans, warnings, measured_seconds(sorted(roots)), max(int(parallel), 1))


def describe_plan(launch: LaunchPlan) -> str:
    """The plan as printed: one line per job, the counts, the estimate and the warnings."""
    plans, parallel = launch.jobs, launch.parallel
    lines = [f"{p.state:8} {p.run_dir}" + (f"  ({p.detail})" if p.detail else "") for p in plans]
    counts: dict[str, int] = {}
    for p in plans:
        counts[p.state] = counts.get(p.state, 0) + 1
    lines.append(f"{len(plans)} job(s): " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    per_step, final = launch.seconds
    todo = [p for p in plans if p.state in ("new", "partial", "stale")]
    if per_step is None:
        lines.append("cost: no finished job of this sweep has measured its step time yet")
    elif todo:
        total = sum(p.steps_left * per_step + (final or 0.0) for p in todo)
        lines.append(f"cost: about {total / 3600:.1f} job-hours ({per_step:.2f} s per outer step "
                     f"and {final or 0:.0f} s of final evaluation, medians of this sweep's finished "
                     f"jobs), about {total / max(parallel, 1) / 3600:.1f} h with {parallel} at a time")
    lines += [f"warning: {w}" for w in launch.warnings]
    return "\n".join(lines)
