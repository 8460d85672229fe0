"""The outer optimisers of a batch's members as one update on stacked (K, ...) tensors.

Each member's step is the one its own run's `OuterOptimConfig` makes (`outer_update` in
`sdw.distill.loop`): joint gradient-norm clip (as `torch.nn.utils.clip_grad_norm_`), then
torch's Adam or SGD with momentum, at the lr its own schedule gives. Here the clip, the step and
the finiteness checks are a few (K, ...) tensor operations for all members, and the losses,
gradient norms and checks of a step reach the host in one transfer instead of one per member
(on a GPU, each transfer waits for the device). Each member keeps its torch optimiser and lr
schedule: the schedule is stepped as in its own run (its lr is a Python number, no transfer), and
the optimiser holds the member's moments only when a checkpoint is written or read, so a
member's checkpoint is its own run's format.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from sdw.distill.outer_optim import OuterOptimConfig

CLIP_EPS = 1e-6
"""What `torch.nn.utils.clip_grad_norm_` adds to the norm before dividing."""


@dataclass
class BatchedStep:
    """What one batched outer step gives back, as Python numbers per member."""

    grad_norm: list[float]
    outer_loss: list[float]
    inner_loss: list[float]
    diverged: tuple[int, str] | None  # (member index, "outer loss" or "synthetic set")


class BatchedOuter:
    """Clip, check and step the synthetic sets `states` (K, N, obs) and `actions` (K, N, act)
    of K members in place; member k's torch optimiser and schedule are `optimizers[k]`,
    `schedules[k]`, built by its `OuterOptimConfig` over views `states[k]`, `actions[k]`."""

    def __init__(self, configs: Sequence[OuterOptimConfig],
                 optimizers: Sequence[torch.optim.Optimizer],
                 schedules: Sequence[torch.optim.lr_scheduler.LRScheduler],
                 states: torch.Tensor, actions: torch.Tensor) -> None:
        names = sorted({c.name for c in configs})
        if len(names) > 1:
            raise ValueError(f"a batch's members share the outer optimiser (outer_optim.name); "
                             f"these use {names}: run each optimiser in a batch of its own.")
        self.adam = names[0] == "adam"
        self.optimizers, self.schedules = list(optimizers), list(schedules)
        self.params = (states, actions)
        self.clip_norm = self._column([c.clip_norm if c.clip_norm is not None else math.inf
                                       for c in configs]).view(-1)
        self.beta1 = self._column([c.betas[0] for c in configs])
        self.beta2 = self._column([c.betas[1] for c in configs])
        self.eps = self._column([c.eps for c in configs])
        self.momentum = self._column([c.momentum for c in configs])
        self.momentum_zero = all(c.momentum == 0 for c in configs)
        self.steps = self._load()

    def _load(self) -> int:
        """The moments and step count of the members' torch optimisers (fresh or resumed)."""
        keys = ("exp_avg", "exp_avg_sq") if self.adam else ("momentum_buffer",)
        self.moments = [{key: torch.zeros_like(p) for key in keys} for p in self.params]
        steps = set()
        for k, optimizer in enumerate(self.optimizers):
            for g, group in enumerate(optimizer.param_groups):
                state = optimizer.state.get(group["params"][0], {})
                for key in keys:
                    if state.get(key) is not None:
                        self.moments[g][key][k].copy_(state[key])
                steps.add(int(state["step"]) if "step" in state else None)
        if self.adam and len(steps) > 1:
            raise ValueError(f"the members' Adam states are at different steps "
                             f"({sorted(steps, key=str)}); a batch steps its members together.")
        if not self.adam:
            return 0
        return next(iter(steps)) or 0

    def store(self, k: int) -> None:
        """Put member k's moments into its torch optimiser (before its checkpoint is saved)."""
        optimizer = self.optimizers[k]
        for g, group in enumerate(optimizer.param_groups):
            state = optimizer.state[group["params"][0]]
            if self.adam:
                state["step"] = torch.tensor(float(self.steps), dtype=torch.float32)
            elif group["momentum"] == 0:
                continue
            for key, moment in self.moments[g].items():
                state[key] = moment[k].clone()

    def step(self, d_states: torch.Tensor, d_actions: torch.Tensor, outer_loss: torch.Tensor,
             inner_loss: torch.Tensor) -> BatchedStep:
        """One outer step of every member from its meta-gradient (K, N, ...)."""
        norm = torch.sqrt(d_states.square().sum((1, 2)) + d_actions.square().sum((1, 2)))
        coef = (self.clip_norm / (norm + CLIP_EPS)).clamp(max=1.0).view(-1, 1, 1)
        grads = (d_states * coef, d_actions * coef)
        self.steps += 1
        for g, (param, grad) in enumerate(zip(self.params, grads)):
            lr = self._column([optimizer.param_groups[g]["lr"] for optimizer in self.optimizers])
            moments = self.moments[g]
            if self.adam:
                exp_avg, exp_avg_sq = moments["exp_avg"], moments["exp_avg_sq"]
                exp_avg.lerp_(grad, 1 - self.beta1)
                exp_avg_sq.mul_(self.beta2).add_((1 - self.beta2) * grad * grad)
                correction1 = 1 - self.beta1 ** self.steps
                correction2 = (1 - self.beta2 ** self.steps).sqrt()
                denominator = exp_avg_sq.sqrt() / correction2 + self.eps
                param.sub_(lr / correction1 * exp_avg / denominator)
            elif self.momentum_zero:
                param.sub_(lr * grad)
            else:
                buffer = moments["momentum_buffer"]
                buffer.mul_(self.momentum).add_(grad)
                param.sub_(lr * buffer)
        with warnings.catch_warnings():  # their optimisers' step() is this one, not theirs
            warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step")
            for schedule in self.schedules:
                schedule.step()
        kept = (torch.isfinite(outer_loss) & torch.isfinite(norm)).to(norm.dtype)
        finite_set = torch.isfinite(self.params[0].abs().sum((1, 2))
                                    + self.params[1].abs().sum((1, 2)))
        numbers = torch.stack([norm, outer_loss.to(norm.dtype), inner_loss.to(norm.dtype), kept,
                               finite_set.to(norm.dtype)]).tolist()  # the step's one transfer
        grad_norm, outer, inner, kept, finite_set = numbers
        diverged = next(((k, "outer loss") if not kept[k] else (k, "synthetic set")
                         for k in range(len(kept)) if not (kept[k] and finite_set[k])), None)
        return BatchedStep(grad_norm, outer, inner, diverged)

    def _column(self, values: Sequence[float]) -> torch.Tensor:
        """(K, 1, 1) on the sets' device, from one number per member."""
        return torch.tensor(values, dtype=self.params[0].dtype).to(self.params[0].device,
                                                                   non_blocking=True).view(-1, 1, 1)
