"""`run_packed(jobs)`: sweep jobs that differ only in their seed, distilled in one process.

Each member keeps the run directory its own job would have (status.json, metrics.jsonl,
synthetic.npz, eval.json, checkpoint, resume), and its results equal that job's up to float
rounding: the dataset, teacher and references are loaded once, the state weights and the
periodic and final evaluations are each member's own, and the outer loop is
`sdw.distill.batched.distill_batched`. A member already done is left as it is; one locked by
another process or holding other settings is skipped with its error; the others run together.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig

from sdw.app.fingerprint import result_config
from sdw.app.logger import RunLogger
from sdw.app.record import CHECKPOINT, RunRecord
from sdw.app.run import (check_run_settings, close_failed, evaluate, finished_evaluation,
                         load_dataset, load_teacher, make_logger, method_label, mirror_result,
                         parts, state_weights, step_logger)
from sdw.app.signals import Interrupted, stop_on_signals
from sdw.distill import DistillationStopped
from sdw.distill.batched import Member, distill_batched

log = logging.getLogger("sdw.run")

PACK_KEY = "seed"
"""The key a packed job's members differ in; every other setting they share."""


@dataclass
class _Job:
    cfg: DictConfig
    run_dir: Path
    record: RunRecord
    method: str = ""
    logger: RunLogger | None = None


def pack_key(cfg: DictConfig) -> str:
    """What members of one pack must share: the resolved configuration without the seed."""
    config = result_config(cfg)
    return repr(sorted((k, repr(v)) for k, v in config.items() if k != PACK_KEY))


def run_packed(jobs: Sequence[tuple[DictConfig, Path]]) -> list[dict | BaseException]:
    """Run `jobs` (config, run directory) as one batch; per job its eval.json document, or the
    exception that stopped it. Jobs that differ in more than the seed are refused."""
    if len({pack_key(cfg) for cfg, _ in jobs}) > 1:
        raise ValueError("packed jobs must differ only in their seed; these differ in more "
                         "(pack them by seed only, or run them one by one).")
    results: list[dict | BaseException | None] = [None] * len(jobs)
    with contextlib.ExitStack() as stack:
        stop = stack.enter_context(stop_on_signals())
        active: list[tuple[int, _Job]] = []
        for i, (cfg, run_dir) in enumerate(jobs):
            check_run_settings(cfg)
            record = RunRecord(run_dir)
            try:
                stack.enter_context(record.lock())
                results[i] = finished_evaluation(record, cfg, run_dir)
            except Exception as e:  # locked or stale: this member only
                log.error("packed job %s skipped: %s", run_dir, e)
                results[i] = e
                continue
            if results[i] is None:
                active.append((i, _Job(cfg, Path(run_dir), record)))
        if active:
            for i, evaluation in _run_members([job for _, job in active], stop):
                results[active[i][0]] = evaluation
    return results


def _run_members(jobs: list[_Job], stop) -> list[tuple[int, dict | BaseException]]:
    """The shared work once, the batched distillation, each member's evaluation."""
    for job in jobs:
        job.method = method_label(job.cfg)
        job.record.start(job.method, result_config(job.cfg))
        job.logger = make_logger(job.cfg, job.run_dir, job.method)
    try:
        cfg = jobs[0].cfg
        torch.set_num_threads(cfg.threads or os.cpu_count() or 1)
        p = parts(cfg)
        records = [job.record for job in jobs]
        dataset = load_dataset(cfg, records)
        teacher = load_teacher(cfg, p, dataset, records)
        members, bars = [], []
        for job in jobs:
            weights = state_weights(job.cfg, p, dataset, job.record, job.run_dir)
            _, on_step, bar = step_logger(job.cfg, p, dataset, job.run_dir, job.logger,
                                          job.method, job.record)
            bars.append(bar)
            members.append(Member(seed=job.cfg.seed, outer=p.outer, state_weights=weights,
                                  method=job.method, callback=on_step,
                                  checkpoint=job.run_dir / CHECKPOINT))
        with contextlib.ExitStack() as timing:
            for job in jobs:
                timing.enter_context(job.record.stage("distill"))
            try:
                with stop.deferring():
                    sets = distill_batched(dataset, teacher, members, objective=p.objective,
                                           student=p.student, synthetic=p.synthetic,
                                           inner=p.inner, outer_steps=cfg.outer_steps,
                                           device=cfg.device,
                                           checkpoint_every=cfg.checkpoint_every, stop=stop,
                                           progress=False)
            except DistillationStopped as e:
                raise Interrupted(stop.signum, e.step) from None
            finally:
                for bar in bars:
                    bar.close()
        if stop():
            raise Interrupted(stop.signum, cfg.outer_steps)
    except BaseException as e:
        for job in jobs:
            close_failed(job.record, job.logger, e)
        raise
    out: list[tuple[int, dict | BaseException]] = []
    for i, (job, synthetic) in enumerate(zip(jobs, sets)):
        try:
            evaluation = evaluate(job.cfg, p, dataset, teacher, synthetic, job.run_dir,
                                  job.logger, job.method, job.record)
        except Exception as e:  # this member's evaluation only
            close_failed(job.record, job.logger, e)
            out.append((i, e))
            continue
        job.record.finish(evaluation)
        mirror_result(job.logger, evaluation, job.record, job.run_dir)
        job.logger.finish()
        out.append((i, evaluation))
    return out
