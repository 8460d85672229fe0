"""K distillations of the same shapes advanced together: one batched meta-gradient per outer step.

Each member is the run `sdw.distill.loop.distill` would make with its own seed, outer optimiser,
objective values (beta) and state weights: its own generators, outer-batch sampler, synthetic
set, teacher targets, outer optimiser, checkpoint and torch global RNG state (swapped in around
everything of the member that may draw from it, its callback included: a periodic evaluation
that draws from the global RNG shifts the member's later draws exactly as in its own run).
What is batched is what costs: the inner training and its exact backward pass through
`AnalyticMLP` with a member dimension (one (K, ...) matrix product where a single run has one
(...) product). Deterministic teacher targets are one table all members share; sampled ones are
drawn per member from its own RNG stream. The members' synthetic sets are one (K, N, ...) tensor,
and their outer steps (clip, Adam or SGD, checks) one update of it (`BatchedOuter`), whose
numbers reach the host once per step. A member's checkpoint is the sequential run's format, so
either loop resumes it. Results equal each member's own run up to float
rounding (tests/test_distill_batched.py): the batched products sum in another order.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from sdw.data.dataset import OfflineDataset, StateNormaliser
from sdw.distill.analytic_mlp import AnalyticMLP
from sdw.distill.inner_optim import InnerOptimConfig
from sdw.distill.loop import (DistillationStopped, StateWeights, StepInfo, checkpoint_due,
                              check_normaliser, diverged, flat_parameters, load_checkpoint,
                              real_pairs, resume, run_config, save_checkpoint, synthetic_set)
from sdw.distill.batched_outer import BatchedOuter
from sdw.distill.metagrad import meta_gradient_analytic
from sdw.distill.objectives import ObjectiveConfig, OuterTargets, check_state_weights
from sdw.distill.outer_optim import OuterOptimConfig
from sdw.distill.sampler import OuterBatchSampler
from sdw.distill.synthetic import SyntheticConfig, SyntheticSet, initial_pairs
from sdw.networks.actor import ActorConfig, build_actor
from sdw.teacher.base import Teacher


@dataclass
class Member:
    """What one member of a batch may set: its seed and the settings that differ only in value."""

    seed: int
    outer: OuterOptimConfig = OuterOptimConfig()
    objective: ObjectiveConfig | None = None  # None: the batch's (name, batch size, teacher
    # actions must match it; values such as beta may differ)
    state_weights: StateWeights | None = None
    method: str | None = None
    callback: Callable[[StepInfo], None] | None = None
    checkpoint: str | Path | None = None


class _Run:
    """One member's state between outer steps."""

    def __init__(self, member: Member, objective: ObjectiveConfig, config: dict,
                 real_states: torch.Tensor, real_actions: torch.Tensor,
                 synthetic: SyntheticConfig, student: ActorConfig, device: torch.device) -> None:
        self.member, self.objective, self.config, self.device = member, objective, config, device
        self.method = member.method or objective.name
        self.compose = getattr(member.state_weights, "compose", "multiply")
        with self.global_rng(fresh=True):
            self.generator = torch.Generator(device).manual_seed(member.seed)
            self.sampler = OuterBatchSampler(len(real_states), objective.batch_size,
                                             torch.Generator(device).manual_seed(member.seed + 1),
                                             device)
            self.states, self.actions = initial_pairs(synthetic, real_states, real_actions,
                                                      self.generator, student.max_action)
        self.start, self.seconds = 0, []
        self.last = {"outer_loss": float("nan"), "inner_loss": float("nan")}

    def attach(self, states: torch.Tensor, actions: torch.Tensor, outer_steps: int) -> None:
        """Make this member's synthetic set the views `states`, `actions` of the batch's set
        (filled with its initial pairs), build its outer optimiser on them and resume it."""
        states.copy_(self.states)
        actions.copy_(self.actions)
        self.states, self.actions = states, actions
        where = self.member.checkpoint
        self.optimizer, self.schedule = self.member.outer.build(states, actions, outer_steps)
        state = load_checkpoint(where) if where is not None else None
        if state is not None:
            with self.global_rng():
                self.start = resume(state, Path(where), self.config, states, actions,
                                    self.optimizer, self.schedule, self.sampler, self.generator,
                                    self.device)

    @contextlib.contextmanager
    def global_rng(self, fresh: bool = False) -> Iterator[None]:
        """torch's global RNG as this member's own run would have it (seeded with its seed when
        `fresh`); its state is kept for the member's next use."""
        cuda = self.device.type == "cuda"
        if fresh:
            torch.manual_seed(self.member.seed)
        else:
            torch.set_rng_state(self.rng)
            if cuda:
                torch.cuda.set_rng_state(self.cuda_rng, self.device)
        try:
            yield
        finally:
            self.rng = torch.get_rng_state()
            if cuda:
                self.cuda_rng = torch.cuda.get_rng_state(self.device)

    def checkpoint(self, step: int) -> None:
        with self.global_rng():
            save_checkpoint(Path(self.member.checkpoint), step, self.config, self.states.clone(),
                            self.actions.clone(), self.optimizer, self.schedule, self.sampler,
                            self.generator, self.device)


def distill_batched(dataset: OfflineDataset, teacher: Teacher | None, members: Sequence[Member],
                    *, objective: ObjectiveConfig, student: ActorConfig,
                    synthetic: SyntheticConfig, inner: InnerOptimConfig, outer_steps: int,
                    device: str | torch.device = "cpu", checkpoint_every: int = 500,
                    stop: Callable[[], bool] | None = None,
                    progress: bool = True) -> list[SyntheticSet]:
    """Distil `dataset` once per member, all members advancing together; one synthetic set per
    member, each as `distill` returns it for that member's settings (analytic meta-gradient).

    Members with checkpoints resume from them and must all be at the same outer step (a packed
    job saves its members together). A member's `seconds` per step is the batched step's wall
    clock over the number of members. `stop()` and divergence act on the whole batch.
    """
    if not members:
        raise ValueError("distill_batched needs at least one member.")
    device = torch.device(device)
    normaliser = dataset.state_normaliser()
    check_normaliser(teacher, normaliser, dataset.metadata.name)
    real_states, real_actions = real_pairs(dataset, normaliser, device)
    obs_dim, act_dim = real_states.shape[1], real_actions.shape[1]
    runs = []
    for member in members:
        mine = member.objective or objective
        shared = ("name", "batch_size", "teacher_actions")
        if any(getattr(mine, k) != getattr(objective, k) for k in shared):
            raise ValueError(
                f"member seed={member.seed} has objective {mine.name!r} (batch size "
                f"{mine.batch_size}, {mine.teacher_actions} teacher actions); a batch shares the "
                f"objective, its batch size and its teacher actions ({objective.name!r}, "
                f"{objective.batch_size}, {objective.teacher_actions}): run it in a batch of its "
                "own.")
        config = run_config(dataset, mine, student, synthetic, inner, member.outer, outer_steps,
                            member.seed, "analytic", member.state_weights, device)
        runs.append(_Run(member, mine, config, real_states, real_actions, synthetic, student,
                         device))
    states = torch.empty(len(runs), *runs[0].states.shape, device=device)
    actions = torch.empty(len(runs), *runs[0].actions.shape, device=device)
    for k, run in enumerate(runs):
        run.attach(states[k], actions[k], outer_steps)
    start = runs[0].start
    if any(r.start != start for r in runs):
        steps = ", ".join(f"seed {r.member.seed}: {r.start}" for r in runs)
        raise ValueError(f"the members' checkpoints are at different outer steps ({steps}); a "
                         "batch resumes together: run the members behind on their own first, or "
                         "delete their checkpoints.")
    outer = BatchedOuter([r.member.outer for r in runs], [r.optimizer for r in runs],
                         [r.schedule for r in runs], states, actions)
    targets = OuterTargets(objective, real_states, real_actions, teacher, progress=progress)
    analytic = AnalyticMLP(student, obs_dim, act_dim)
    inner_optimizer = inner.functional()

    bar = tqdm(range(start, outer_steps), initial=start, total=outer_steps,
               desc=f"distill x{len(runs)}", disable=not progress)
    for step in bar:
        t0 = time.perf_counter()
        outer_states, losses, thetas = [], [], []
        for run in runs:
            with run.global_rng():
                indices = run.sampler()
                goal, teacher_q = targets(indices)
                weights = (check_state_weights(run.member.state_weights(indices), len(indices),
                                               device)
                           if run.member.state_weights is not None else None)
                losses.append(run.objective.loss(goal, teacher_q, weights, run.compose))
                thetas.append(flat_parameters(build_actor(student, obs_dim, act_dim,
                                                          run.generator, device)))
            outer_states.append(real_states[indices])
        result = meta_gradient_analytic(
            analytic, inner_optimizer, inner.steps, torch.stack(thetas), states, actions,
            torch.stack(outer_states),
            lambda y: torch.stack([loss(y[k]) for k, loss in enumerate(losses)]),
            [r.generator for r in runs])
        done = outer.step(result.states, result.actions, result.outer_loss, result.inner_loss)
        if done.diverged is not None:
            k, what = done.diverged
            raise diverged(step + 1, done.grad_norm[k], runs[k].member.checkpoint, what)
        seconds = (time.perf_counter() - t0) / len(runs)
        stopping = stop is not None and stop() and step + 1 < outer_steps
        for k, run in enumerate(runs):
            run.seconds.append(seconds)
            run.last = {"outer_loss": done.outer_loss[k], "inner_loss": done.inner_loss[k]}
            if run.member.callback is not None:  # its draws (evaluations) are the member's own
                with run.global_rng():
                    run.member.callback(StepInfo(step + 1, run.last["outer_loss"],
                                                 run.last["inner_loss"], done.grad_norm[k],
                                                 seconds, _snapshot(run, normaliser, dataset)))
            if run.member.checkpoint is not None and checkpoint_due(
                    step + 1, checkpoint_every, outer_steps, stopping):
                outer.store(k)
                run.checkpoint(step + 1)
        if step % 10 == 0:
            bar.set_postfix(H=f"{statistics.fmean(done.outer_loss):.4g}")
        if stopping:
            raise DistillationStopped(step + 1, runs[0].member.checkpoint)

    return [_snapshot(run, normaliser, dataset)(
        {"outer_steps": outer_steps, **run.last, "members": len(runs),
         "median_seconds_per_step": statistics.median(run.seconds) if run.seconds else None})
        for run in runs]


def _snapshot(run: _Run, normaliser: StateNormaliser, dataset: OfflineDataset
              ) -> Callable[..., SyntheticSet]:
    return lambda info=None: synthetic_set(run.states, run.actions, normaliser, dataset,
                                           run.method, run.config, info)
