"""`run(cfg)`: one distill-then-evaluate job, top to bottom: dataset -> teacher -> state weights ->
distillation with periodic evaluation -> final evaluation. Everything lands in the run directory."""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from tqdm.auto import tqdm

from sdw.app.fingerprint import result_config
from sdw.app.logger import RunLogger
from sdw.app.record import (CHECKPOINT, CURVE_PNG, EVAL, SYNTHETIC, WEIGHTS_JSON, WEIGHTS_PNG,
                            RunRecord, write_json)
from sdw.app.signals import Interrupted, StopRequest, stop_on_signals
from sdw.collect.rebuild import load_or_build
from sdw.data.dataset import OfflineDataset
from sdw.density import build_state_weights
from sdw.distill import DistillationStopped, StepInfo, SyntheticSet, checkpoint_step, distill
from sdw.errors import UserError
from sdw.evaluate.pictures import POSES, capture
from sdw.evaluate.protocol import EvalProtocol, last_k_mean
from sdw.evaluate.references import reference_evaluations
from sdw.teacher.build import build_teacher

log = logging.getLogger("sdw.run")

OBJECTIVE_LABELS = {"dbc": "DBC", "pbc": "PBC", "avpbc": "Av-PBC"}


def method_label(cfg: DictConfig) -> str:
    """`cfg.method`, else DBC / PBC / Av-PBC, and SDW-<density> when states are weighted."""
    if cfg.method:
        return str(cfg.method)
    label = OBJECTIVE_LABELS.get(cfg.objective.name, cfg.objective.name)
    if not instantiate(cfg.weighting).uses_density:
        return label
    density = instantiate(cfg.density).name
    return f"SDW-{density}" + ("" if cfg.objective.name == "avpbc" else f" ({label})")


def check_run_settings(cfg: DictConfig) -> None:
    """The top-level keys, checked before any work (a typo'd value fails here, named)."""
    for key, low in (("seed", 0), ("outer_steps", 0), ("checkpoint_every", 1)):
        value = cfg[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise UserError(f"{key}={value!r} must be an integer >= {low} (e.g. {key}=1).")
    if cfg.threads is not None and (not isinstance(cfg.threads, int) or cfg.threads < 1):
        raise UserError(f"threads={cfg.threads!r} must be a positive integer or null (all cores).")
    try:
        torch.device(cfg.device)
    except (RuntimeError, TypeError) as e:
        raise UserError(f"device={cfg.device!r} is not a torch device ({e}); use cpu, cuda or "
                        "cuda:<index>.") from None
    if torch.device(cfg.device).type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device={cfg.device} but torch sees no CUDA device on this machine; use "
                        "device=cpu or install a CUDA build of torch.")


def run(cfg: DictConfig, run_dir: Path) -> dict:
    """Distil and evaluate as `cfg` says, in `run_dir`; returns the eval.json document.

    One process at a time runs a directory (RunLocked for the second). A finished run of the
    same settings is not run again; an unfinished one resumes from its checkpoint; one of other
    settings is refused (StaleRun) unless `cfg.rerun`. SIGINT / SIGTERM save a checkpoint, mark
    the run interrupted and raise `Interrupted`.
    """
    check_run_settings(cfg)
    config = result_config(cfg)
    record = RunRecord(run_dir)
    with record.lock(), stop_on_signals() as stop:
        finished = finished_evaluation(record, cfg, run_dir)
        if finished is not None:
            return finished
        method = method_label(cfg)
        record.start(method, config)
        logger = make_logger(cfg, run_dir, method)
        try:
            evaluation = _run(cfg, run_dir, record, logger, method, stop)
        except BaseException as e:
            close_failed(record, logger, e)
            raise
        record.finish(evaluation)
    mirror_result(logger, evaluation, record, run_dir)
    logger.finish()
    return evaluation


def finished_evaluation(record: RunRecord, cfg: DictConfig, run_dir: Path) -> dict | None:
    """The eval.json of a run already done with these settings, else None (a finished run to be
    extended loses its eval.json); StaleRun for other settings (RunRecord.check)."""
    plan = record.check(result_config(cfg), cfg.outer_steps, bool(cfg.rerun))
    if plan == "done":
        # Printed, not logged: Hydra's file handler would append it to the finished (and
        # usually committed) run.log every time a sweep is relaunched.
        print(f"already done: {run_dir / EVAL} (rerun=true runs it again)", flush=True)
        return record.evaluation()
    if plan == "extend":
        log.info("extending the finished run in %s to %d outer steps", run_dir, cfg.outer_steps)
        (run_dir / EVAL).unlink()
    return None


def close_failed(record: RunRecord, logger: RunLogger | None, error: BaseException) -> None:
    """Mark the run interrupted (a signal) or failed, and close its wandb mirror as failed."""
    if isinstance(error, Interrupted):
        record.interrupt(signal.Signals(error.signum).name, error.step)
    else:
        record.fail(error)
    if logger is not None:
        logger.finish(failed=True)


def make_logger(cfg: DictConfig, run_dir: Path, method: str) -> RunLogger:
    """metrics.jsonl of the run, mirrored to wandb as `<name>/<run dir>` where configured."""
    dataset_tag = cfg.dataset.name or Path(str(cfg.dataset.path)).name
    return RunLogger(instantiate(cfg.logger), run_dir, f"{cfg.name}/{run_dir.name}",
                     OmegaConf.to_container(cfg, resolve=True), (method, str(dataset_tag)))


def mirror_result(logger: RunLogger, evaluation: dict, record: RunRecord, run_dir: Path) -> None:
    """The run's summary, synthetic set and pictures for the wandb mirror (a no-op without it)."""
    refs = evaluation["references"] or {}
    logger.summary({"score": evaluation["last_k"]["normalised_mean"],
                    "score_final": evaluation["standard"].get("normalised_mean"),
                    **{f"ref/{k}": (v or {}).get("normalised_mean") for k, v in refs.items()},
                    "ess_fraction": (evaluation.get("weights") or {}).get("ess_fraction"),
                    "teacher/normalised": (record.status.get("teacher") or {}).get("normalised")})
    logger.files(run_dir / SYNTHETIC, {"weights/histogram": run_dir / WEIGHTS_PNG,
                                       "eval/curve": logger.curve_png(run_dir / CURVE_PNG, refs),
                                       "synthetic/poses": run_dir / POSES})


@dataclass
class Parts:
    """The instantiated configuration of a run, dataset apart."""

    objective: Any
    synthetic: Any
    student: Any
    inner: Any
    outer: Any
    protocol: EvalProtocol
    weighting: Any
    cache: Path
    references: Path


def parts(cfg: DictConfig) -> Parts:
    return Parts(instantiate(cfg.objective), instantiate(cfg.synthetic), instantiate(cfg.student),
                 instantiate(cfg.inner_optim), instantiate(cfg.outer_optim),
                 instantiate(cfg.eval), instantiate(cfg.weighting), Path(cfg.paths.cache_dir),
                 Path(cfg.paths.references_dir))


def load_dataset(cfg: DictConfig, records: Sequence[RunRecord]) -> OfflineDataset:
    """The run's dataset (built first where it is the project's own and absent)."""
    start = time.perf_counter()
    dataset = load_or_build(instantiate(cfg.dataset))
    for record in records:
        record.add_time("dataset", time.perf_counter() - start)
        record.update(dataset={"name": dataset.metadata.name, "hash": dataset.content_hash,
                               "transitions": len(dataset.qlearning_view())})
    log.info("dataset %s: %d transitions (%s)", dataset.metadata.name,
             len(dataset.qlearning_view()), dataset.content_hash)
    return dataset


def load_teacher(cfg: DictConfig, p: Parts, dataset: OfflineDataset,
                 records: Sequence[RunRecord]):
    """The teacher, when the objective or the references need one (else None)."""
    if not (p.objective.needs_teacher or p.protocol.references):
        return None
    start = time.perf_counter()
    teacher = build_teacher(instantiate(cfg.teacher), dataset, p.cache / "teachers")
    evaluation = getattr(teacher, "evaluation", None) or {}
    for record in records:
        record.add_time("teacher", time.perf_counter() - start)
        record.update(teacher={"kind": type(teacher).__name__,
                               "normalised": evaluation.get("normalised_mean"),
                               "origin": getattr(teacher, "origin", None)})
    return teacher


def state_weights(cfg: DictConfig, p: Parts, dataset: OfflineDataset, record: RunRecord,
                  run_dir: Path):
    """SDW's state weights, their diagnostics in the run directory (None without a density)."""
    if not p.weighting.uses_density:
        return None
    with record.stage("weights"):
        weights, diagnostics = build_state_weights(
            dataset, instantiate(cfg.density), p.weighting, p.cache / "density",
            histogram_path=run_dir / WEIGHTS_PNG)
    write_json(run_dir / WEIGHTS_JSON, diagnostics.to_dict(prefix=""))
    record.update(weights={"ess_fraction": diagnostics.ess_fraction})
    return weights


def _run(cfg: DictConfig, run_dir: Path, record: RunRecord, logger: RunLogger,
         method: str, stop: StopRequest) -> dict:
    torch.set_num_threads(cfg.threads or os.cpu_count() or 1)
    p = parts(cfg)
    dataset = load_dataset(cfg, [record])
    teacher = load_teacher(cfg, p, dataset, [record])
    weights = state_weights(cfg, p, dataset, record, run_dir)
    with record.stage("distill"):
        synthetic = _distill(cfg, dataset, teacher, p, weights, run_dir, logger, method, record,
                             stop)
    return evaluate(cfg, p, dataset, teacher, synthetic, run_dir, logger, method, record)


def evaluate(cfg: DictConfig, p: Parts, dataset: OfflineDataset, teacher,
             synthetic: SyntheticSet, run_dir: Path, logger: RunLogger, method: str,
             record: RunRecord) -> dict:
    """Save the synthetic set, evaluate it with the references and the pictures asked for;
    returns the eval.json document."""
    synthetic.save(run_dir / SYNTHETIC)
    with record.stage("evaluate"):
        scores = dataset.metadata.reference_scores
        final = p.protocol.final(synthetic, p.student, p.inner, scores, cfg.device)
        references = reference_evaluations(dataset, teacher, p.protocol, p.student, p.inner,
                                           p.synthetic.size, p.references, cfg.device)
    if cfg.capture_video:
        with record.stage("pictures"):
            _capture(synthetic, p.student, p.inner, teacher, run_dir, cfg)
    evals = [(r["step"], r) for r in logger.metrics.rows() if r.get("type") == "eval"]
    evaluation = {
        "method": method, "dataset": dataset.metadata.name, "env_id": dataset.metadata.env_id,
        "seed": cfg.seed, "size": p.synthetic.size, "outer_steps": cfg.outer_steps, **final,
        "last_k": last_k_mean(evals, p.protocol.last_k), "references": references,
        "weights": record.status.get("weights")}
    _print_result(evaluation)
    return evaluation


def _capture(synthetic: SyntheticSet, student, inner, teacher, run_dir: Path,
             cfg: DictConfig) -> None:
    """The run's pictures; a failure to render (no OpenGL backend) is logged, never fatal:
    the distillation and its evaluation are worth more than its pictures."""
    try:
        capture(synthetic, student, inner, teacher, run_dir, seed=cfg.seed, device=cfg.device)
    except Exception as e:  # any rendering failure: the run's results stand without pictures
        log.warning("capture_video: no pictures (%s: %s); the run's results are kept. Headless "
                    "Linux needs EGL (MUJOCO_GL=egl) or OSMesa (MUJOCO_GL=osmesa); "
                    "`sdw-eval %s capture_video=true` tries again.", type(e).__name__, e, run_dir)


def step_logger(cfg: DictConfig, p: Parts, dataset: OfflineDataset, run_dir: Path,
                logger: RunLogger, method: str, record: RunRecord
                ) -> tuple[int, Callable[[StepInfo], None], tqdm]:
    """Where the run resumes (its checkpoint's step; later metrics rows dropped), and the
    per-step callback: metrics row, evaluation every `eval.every` steps, heartbeat, progress."""
    checkpoint = run_dir / CHECKPOINT
    start = checkpoint_step(checkpoint)
    rows = logger.metrics.keep_until(start)
    elapsed = max((r.get("elapsed", 0.0) for r in rows), default=0.0)
    evals = [r for r in rows if r.get("type") == "eval"]
    last_score = evals[-1].get("normalised_mean") if evals else None
    if start:
        log.info("resuming from %s at outer step %d", checkpoint, start)
    bar = tqdm(total=cfg.outer_steps, initial=start, desc=method, unit="step",
               disable=not cfg.progress)
    scores = dataset.metadata.reference_scores

    def on_step(info: StepInfo) -> None:
        nonlocal elapsed, last_score
        elapsed += info.seconds
        logger.log({"type": "step", "step": info.step, "outer_loss": info.outer_loss,
                    "inner_loss": info.inner_loss, "grad_norm": info.grad_norm,
                    "seconds": info.seconds, "elapsed": elapsed})
        if (p.protocol.every and info.step % p.protocol.every == 0) or info.step == cfg.outer_steps:
            t0 = time.perf_counter()
            result = p.protocol.periodic(info.snapshot(), p.student, p.inner, scores, cfg.device)
            last_score = result.get("normalised_mean")
            logger.log({"type": "eval", "step": info.step, "elapsed": elapsed, **result})
            log.info("%s outer step %d: normalised %s (evaluated in %.1f s)", run_dir.name,
                     info.step, _fmt(last_score), time.perf_counter() - t0)
        bar.set_postfix(H=f"{info.outer_loss:.4g}", score=_fmt(last_score), refresh=False)
        bar.update(1)
        record.beat()

    return start, on_step, bar


def _distill(cfg: DictConfig, dataset: OfflineDataset, teacher, p: Parts, weights,
             run_dir: Path, logger: RunLogger, method: str, record: RunRecord,
             stop: StopRequest) -> SyntheticSet:
    """The bi-level loop with a progress bar, metrics per step, evaluation every K steps and a
    heartbeat; a signal is deferred to the end of the outer step it arrives in."""
    _, on_step, bar = step_logger(cfg, p, dataset, run_dir, logger, method, record)
    try:
        with stop.deferring():
            synthetic = distill(dataset, teacher, objective=p.objective, student=p.student,
                                synthetic=p.synthetic, inner=p.inner, outer=p.outer,
                                outer_steps=cfg.outer_steps, seed=cfg.seed, device=cfg.device,
                                state_weights=weights, method=method, callback=on_step,
                                checkpoint=run_dir / CHECKPOINT,
                                checkpoint_every=cfg.checkpoint_every, stop=stop, progress=False)
    except DistillationStopped as e:
        raise Interrupted(stop.signum, e.step) from None
    finally:
        bar.close()
    if stop():  # the signal came in the last step: its checkpoint holds the whole run
        raise Interrupted(stop.signum, cfg.outer_steps)
    return synthetic


def _fmt(score: float | None) -> str:
    return "n/a" if score is None else f"{score:.1f}"


def _print_result(evaluation: dict) -> None:
    refs = evaluation["references"] or {}
    parts = [f"{evaluation['method']} {_fmt(evaluation['last_k']['normalised_mean'])} "
             f"(final {_fmt(evaluation['standard'].get('normalised_mean'))})"]
    for key, label in (("random_subset", "random subset"), ("whole_data_bc", "BC on all data"),
                       ("teacher", "teacher")):
        if refs.get(key):
            parts.append(f"{label} {_fmt(refs[key].get('normalised_mean'))}")
    log.info("%s on %s, normalised score: %s", evaluation["method"], evaluation["dataset"],
             "; ".join(parts))
