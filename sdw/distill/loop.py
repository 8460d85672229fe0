"""The bi-level loop of offline behaviour distillation, top to bottom in `distill`."""

from __future__ import annotations

import logging
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from sdw.atomic import atomic_write
from sdw.data.dataset import OfflineDataset, StateNormaliser
from sdw.distill.analytic_mlp import AnalyticMLP
from sdw.distill.inner_optim import InnerOptimConfig
from sdw.distill.metagrad import METHODS, meta_gradient_analytic, meta_gradient_unroll
from sdw.distill.objectives import ObjectiveConfig, OuterTargets, check_state_weights
from sdw.distill.outer_optim import OuterOptimConfig
from sdw.distill.sampler import OuterBatchSampler
from sdw.distill.synthetic import SyntheticConfig, SyntheticSet, initial_pairs
from sdw.networks.actor import ActorConfig, build_actor
from sdw.teacher.base import Teacher

log = logging.getLogger(__name__)

StateWeights = Callable[[torch.Tensor], torch.Tensor]
"""indices (B,) into the qlearning view of D_off, on the distillation device -> weights (B,)."""


@dataclass
class StepInfo:
    """What one outer step did; `snapshot()` gives the synthetic set as it is now."""

    step: int
    outer_loss: float
    inner_loss: float
    grad_norm: float
    seconds: float
    snapshot: Callable[[], SyntheticSet]


def check_normaliser(teacher: Teacher | None, normaliser: StateNormaliser, dataset: str) -> None:
    """Refuse a teacher whose state statistics differ from the dataset's (a silent bug else)."""
    if teacher is None:
        return
    theirs = teacher.normaliser
    if not (np.allclose(theirs.mean, normaliser.mean, rtol=1e-5, atol=1e-6)
            and np.allclose(theirs.std, normaliser.std, rtol=1e-5, atol=1e-6)):
        worst = float(np.max(np.abs(theirs.mean - normaliser.mean)))
        raise ValueError(
            f"the teacher's state normalisation differs from that of {dataset!r} (largest mean "
            f"difference {worst:.3g}); the teacher would see differently scaled states than the "
            "ones it was trained on. Load the teacher with `dataset.state_normaliser()` (the "
            "statistics of the qlearning view), or distil the dataset it was trained on.")


def real_pairs(dataset: OfflineDataset, normaliser: StateNormaliser,
               device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised states and actions of the qlearning view (the rest of the view is dropped)."""
    view = dataset.qlearning_view()
    return (torch.as_tensor(normaliser(view.observations), device=device),
            torch.as_tensor(view.actions, dtype=torch.float32, device=device))


def run_config(dataset: OfflineDataset, objective: ObjectiveConfig, student: ActorConfig,
               synthetic: SyntheticConfig, inner: InnerOptimConfig, outer: OuterOptimConfig,
               outer_steps: int, seed: int, meta_gradient: str,
               state_weights: StateWeights | None, device: torch.device) -> dict:
    """What a distillation's checkpoint and artefact record of its configuration."""
    return {"dataset": {"name": dataset.metadata.name, "hash": dataset.content_hash},
            "objective": objective.to_dict(), "student": student.to_dict(),
            "synthetic": synthetic.to_dict(), "inner_optim": inner.to_dict(),
            "outer_optim": outer.to_dict(), "outer_steps": outer_steps, "seed": seed,
            "meta_gradient": meta_gradient, "state_weights": state_weights is not None,
            "compose": getattr(state_weights, "compose", "multiply"), "device": str(device)}


def synthetic_set(states: torch.Tensor, actions: torch.Tensor, normaliser: StateNormaliser,
                  dataset: OfflineDataset, method: str, config: dict,
                  info: dict | None = None) -> SyntheticSet:
    """The synthetic set as it is now, copied to the CPU."""
    return SyntheticSet(states.detach().cpu().numpy().copy(), actions.detach().cpu().numpy().copy(),
                        normaliser, dataset.metadata.env_id, dataset.metadata.name,
                        dataset.content_hash, method, config, info or {})


def flat_parameters(actor: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in actor.parameters()])


def distill(dataset: OfflineDataset, teacher: Teacher | None, *, objective: ObjectiveConfig,
            student: ActorConfig, synthetic: SyntheticConfig, inner: InnerOptimConfig,
            outer_steps: int, outer: OuterOptimConfig = OuterOptimConfig(), seed: int = 0, device: str | torch.device = "cpu",
            meta_gradient: str = "analytic", state_weights: StateWeights | None = None,
            method: str | None = None, callback: Callable[[StepInfo], None] | None = None,
            checkpoint: str | Path | None = None, checkpoint_every: int = 500,
            stop: Callable[[], bool] | None = None, progress: bool = True) -> SyntheticSet:
    """Distil `dataset` (its qlearning view, states normalised) into a synthetic set.

    Each outer step: draw an outer batch of real states; train a fresh student for
    `inner.steps` full-batch steps on the synthetic set; evaluate the objective H on the batch;
    back-propagate exactly through the inner steps; clip the gradient of (states, actions)
    jointly to `outer.clip_norm`; take one step of the outer optimiser on them (default: sdw-run's
    Adam, lr 0.01; the paper's SGD lr 0.1, momentum 0.9 is `outer_optim.PAPER_RECIPE`).

    `state_weights(indices)` (SDW) returns one weight per sampled state. `method` names the
    result in the artefact (default: the objective's name). With `checkpoint`, the run's state
    is saved there every `checkpoint_every` steps and a run started with an existing
    checkpoint of the same configuration resumes from it (a damaged one is set aside, with a
    warning, for the one before it or a fresh start). When `stop()` turns true after an outer
    step, the state is saved to `checkpoint` and `DistillationStopped` raised. torch's global RNG is seeded with
    `seed` (teachers draw sampled actions from it). A non-finite loss, gradient or synthetic set
    stops the run with `DistillationDiverged`; the last checkpoint (all finite) is kept.
    """
    if meta_gradient not in METHODS:
        raise ValueError(f"unknown meta_gradient {meta_gradient!r}; choose one of {METHODS}.")
    compose = getattr(state_weights, "compose", "multiply")
    device = torch.device(device)
    # ---- real data: the qlearning view, states normalised with its own statistics
    normaliser = dataset.state_normaliser()
    check_normaliser(teacher, normaliser, dataset.metadata.name)
    real_states, real_actions = real_pairs(dataset, normaliser, device)
    obs_dim, act_dim = real_states.shape[1], real_actions.shape[1]
    config = run_config(dataset, objective, student, synthetic, inner, outer, outer_steps, seed,
                        meta_gradient, state_weights, device)
    method = method or objective.name

    # ---- random streams, synthetic set, outer optimiser, teacher targets
    torch.manual_seed(seed)
    generator = torch.Generator(device).manual_seed(seed)
    sampler = OuterBatchSampler(len(real_states), objective.batch_size,
                                torch.Generator(device).manual_seed(seed + 1), device)
    syn_states, syn_actions = initial_pairs(synthetic, real_states, real_actions, generator,
                                            student.max_action)
    syn_states.requires_grad_()
    syn_actions.requires_grad_()
    outer_optimizer, schedule = outer.build(syn_states, syn_actions, outer_steps)
    targets = OuterTargets(objective, real_states, real_actions, teacher, progress=progress)
    analytic = AnalyticMLP(student, obs_dim, act_dim)
    inner_optimizer = inner.functional()
    sampled = analytic.sampled

    def snapshot(info: dict | None = None) -> SyntheticSet:
        return synthetic_set(syn_states, syn_actions, normaliser, dataset, method, config, info)

    start = 0
    state = load_checkpoint(checkpoint) if checkpoint is not None else None
    if state is not None:
        start = resume(state, Path(checkpoint), config, syn_states, syn_actions,
                        outer_optimizer, schedule, sampler, generator, device)

    # ---- the bi-level loop
    seconds, last = [], {"outer_loss": float("nan"), "inner_loss": float("nan")}
    bar = tqdm(range(start, outer_steps), initial=start, total=outer_steps, desc="distill",
               disable=not progress)
    for step in bar:
        t0 = time.perf_counter()
        indices = sampler()
        goal, teacher_q = targets(indices)
        weights = (check_state_weights(state_weights(indices), len(indices), device)
                   if state_weights is not None else None)
        outer_loss = objective.loss(goal, teacher_q, weights, compose)
        actor = build_actor(student, obs_dim, act_dim, generator, device)
        theta0 = flat_parameters(actor)
        if meta_gradient == "analytic":
            result = meta_gradient_analytic(analytic, inner_optimizer, inner.steps, theta0,
                                            syn_states.detach(), syn_actions.detach(),
                                            real_states[indices], outer_loss, generator)
        else:
            result = meta_gradient_unroll(actor, sampled, inner_optimizer, inner.steps, theta0,
                                          syn_states.detach(), syn_actions.detach(),
                                          real_states[indices], outer_loss, generator)
        grad_norm = outer_update(step + 1, result.states, result.actions, result.outer_loss,
                                 syn_states, syn_actions, outer, outer_optimizer, schedule,
                                 checkpoint)

        seconds.append(time.perf_counter() - t0)
        last = {"outer_loss": float(result.outer_loss), "inner_loss": float(result.inner_loss)}
        if step % 10 == 0:
            bar.set_postfix(H=f"{last['outer_loss']:.4g}", bc=f"{last['inner_loss']:.3g}")
        if callback is not None:
            callback(StepInfo(step + 1, last["outer_loss"], last["inner_loss"], grad_norm,
                              seconds[-1], snapshot))
        stopping = stop is not None and stop() and step + 1 < outer_steps
        if checkpoint is not None and checkpoint_due(step + 1, checkpoint_every, outer_steps,
                                                     stopping):
            save_checkpoint(Path(checkpoint), step + 1, config, syn_states, syn_actions,
                             outer_optimizer, schedule, sampler, generator, device)
        if stopping:
            raise DistillationStopped(step + 1, checkpoint)

    return snapshot({"outer_steps": outer_steps, **last,
                     "median_seconds_per_step": statistics.median(seconds) if seconds else None})


def outer_update(step: int, d_states: torch.Tensor, d_actions: torch.Tensor,
                 outer_loss: torch.Tensor, states: torch.Tensor, actions: torch.Tensor,
                 outer: OuterOptimConfig, optimizer: torch.optim.Optimizer,
                 schedule: torch.optim.lr_scheduler.LRScheduler,
                 checkpoint: str | Path | None) -> float:
    """One outer step on the synthetic set from its meta-gradient: clip, check, step the
    optimiser and its schedule, check the set; returns the gradient norm before clipping."""
    states.grad, actions.grad = d_states, d_actions
    grad_norm = outer.clip(states, actions)
    check_finite(step, outer_loss, grad_norm, checkpoint)
    optimizer.step()
    schedule.step()
    check_finite(step, states.detach().abs().sum() + actions.detach().abs().sum(), grad_norm,
                 checkpoint, what="synthetic set")
    return grad_norm


def checkpoint_due(step: int, every: int, outer_steps: int, stopping: bool) -> bool:
    """Whether outer step `step` (1-based) saves a checkpoint: every `every`, the last, a stop."""
    return step % every == 0 or step == outer_steps or stopping


class DistillationDiverged(RuntimeError):
    """The outer loss, its gradient or the synthetic set became non-finite."""


class DistillationStopped(RuntimeError):
    """`stop()` asked the loop to stop; `step` outer steps are saved in `checkpoint`."""

    def __init__(self, step: int, checkpoint: str | Path | None) -> None:
        self.step, self.checkpoint = step, checkpoint
        saved = f"saved in {checkpoint}" if checkpoint is not None else "not saved (no checkpoint)"
        super().__init__(f"distillation stopped after outer step {step}, {saved}")


def check_finite(step: int, value: torch.Tensor | float, grad_norm: float,
                  checkpoint: str | Path | None, what: str = "outer loss") -> None:
    if not (math.isfinite(float(value)) and math.isfinite(grad_norm)):
        raise diverged(step, grad_norm, checkpoint, what)


def diverged(step: int, grad_norm: float, checkpoint: str | Path | None,
             what: str) -> DistillationDiverged:
    """The error of a run whose `what` ("outer loss" or "synthetic set") is not finite."""
    kept = (f"the last good checkpoint is kept at {checkpoint}" if checkpoint is not None
            and Path(checkpoint).exists() else "no checkpoint was written yet")
    return DistillationDiverged(
        f"distillation diverged at outer step {step}: the {what} or its gradient norm is not "
        f"finite (gradient norm {grad_norm}); {kept}. Lower the outer learning rate "
        "(outer_optim.lr), keep gradient clipping (outer_optim.clip_norm), or check the teacher's "
        "Q values (objective avpbc multiplies by them).")


def previous_checkpoint(path: str | Path) -> Path:
    """Where the checkpoint before the current one is kept (`checkpoint.prev.pt`)."""
    path = Path(path)
    return path.with_name(f"{path.stem}.prev{path.suffix}")


def load_checkpoint(path: str | Path) -> dict | None:
    """The checkpoint at `path`, or None when there is none.

    One that cannot be read (cut short, overwritten) is renamed to `<name>.damaged` with a
    warning, and the one before it (`previous_checkpoint`) takes its place when it reads; else
    None, and the run starts afresh.
    """
    path = Path(path)
    if not path.exists():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # any unreadable file is set aside the same way
        damaged = path.with_name(path.name + ".damaged")
        path.replace(damaged)
        previous = previous_checkpoint(path)
        try:
            state = torch.load(previous, map_location="cpu", weights_only=True)
        except Exception:
            log.warning("checkpoint %s cannot be read (%s: %s); set aside as %s, and no earlier "
                        "checkpoint reads: the distillation starts afresh", path, type(e).__name__,
                        e, damaged)
            return None
        previous.replace(path)
        log.warning("checkpoint %s cannot be read (%s: %s); set aside as %s, resuming from the "
                    "one before it (outer step %d)", path, type(e).__name__, e, damaged,
                    state["step"])
        return state


def checkpoint_step(path: str | Path) -> int:
    """Outer steps done by the distillation checkpoint at `path` (0 when there is none; a
    damaged one is handled as by `load_checkpoint`)."""
    state = load_checkpoint(path)
    return 0 if state is None else int(state["step"])


def _rng_states(generator: torch.Generator, device: torch.device) -> dict:
    states = {"generator": generator.get_state(), "torch": torch.get_rng_state()}
    if device.type == "cuda":
        states["cuda"] = torch.cuda.get_rng_state(device)
    return states


def save_checkpoint(path: Path, step: int, config: dict, syn_states: torch.Tensor,
                     syn_actions: torch.Tensor, optimizer: torch.optim.Optimizer,
                     schedule: torch.optim.lr_scheduler.LRScheduler, sampler: OuterBatchSampler,
                     generator: torch.Generator, device: torch.device) -> None:
    state = {"step": step, "config": config, "states": syn_states.detach().cpu(),
             "actions": syn_actions.detach().cpu(), "optimizer": optimizer.state_dict(),
             "schedule": schedule.state_dict(), "sampler": sampler.state_dict(),
             "rng": _rng_states(generator, device)}
    if path.exists():
        path.replace(previous_checkpoint(path))
    atomic_write(path, lambda f: torch.save(state, f))


def resume(state: dict, path: Path, config: dict, syn_states: torch.Tensor,
            syn_actions: torch.Tensor, optimizer: torch.optim.Optimizer,
            schedule: torch.optim.lr_scheduler.LRScheduler, sampler: OuterBatchSampler,
            generator: torch.Generator, device: torch.device) -> int:
    """Restore checkpoint `state` (read from `path`) of this configuration; returns the number
    of steps it had done.

    Only `outer_steps` may differ, so a finished run can be extended, unless the outer lr
    follows a schedule over `outer_steps`.
    """
    extendable = config["outer_optim"]["schedule"] == "constant"
    keys = sorted(k for k in config if not (extendable and k == "outer_steps")
                  and state["config"].get(k) != config[k])
    if keys:
        raise ValueError(f"checkpoint {path} belongs to a run with different settings ({keys}); "
                         "delete it or pass another checkpoint path.")
    with torch.no_grad():
        syn_states.copy_(state["states"])
        syn_actions.copy_(state["actions"])
    optimizer.load_state_dict(state["optimizer"])
    schedule.load_state_dict(state["schedule"])
    sampler.load_state_dict(state["sampler"])
    generator.set_state(state["rng"]["generator"])
    torch.set_rng_state(state["rng"]["torch"])
    if "cuda" in state["rng"]:
        torch.cuda.set_rng_state(state["rng"]["cuda"], device)
    return int(state["step"])
