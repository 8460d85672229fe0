"""Exact meta-gradient of the outer objective with respect to the synthetic states and actions.

A fresh student theta_0 is trained for T full-batch steps on the synthetic set (X, A); the outer
objective H is evaluated on theta_T; dH/dX and dH/dA are obtained by back-propagation through
all T steps. Two implementations give the same numbers (a test holds them together):

- `analytic` (default): the forward pass keeps each step's activations and parameters; the
  reverse pass walks the steps backwards with the optimiser's adjoint and one hand-written
  Hessian-vector / mixed-derivative product per step (`AnalyticMLP.grad_jvp`). No autograd
  graph is built, nothing is recomputed; at the paper configuration it needs about a quarter
  less CPU time and memory than `unroll` (figures in docs/distillation.md).
- `unroll`: autograd through the whole inner loop with `create_graph=True`, on the student
  nn.Module via `torch.func.functional_call`. Works for any differentiable student; the reference.

Random draws (head noise of every inner step, then of the outer batch) come from `generator`
in the same order in both, so the same seed gives the same meta-gradient.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call

from sdw.distill.analytic_mlp import AnalyticMLP
from sdw.distill.inner_optim import FunctionalAdam, FunctionalSGD

OuterLoss = Callable[[torch.Tensor], torch.Tensor]
"""Maps the student's actions on the outer states, (B, act_dim), to the scalar objective H; for
K batched students (K, B, act_dim) to each member's H, (K,)."""

METHODS = ("analytic", "unroll")


@dataclass
class MetaGradient:
    """H(theta_T), the last inner BC loss, and dH/dX, dH/dA of the synthetic set."""

    outer_loss: torch.Tensor
    inner_loss: torch.Tensor
    states: torch.Tensor
    actions: torch.Tensor


def head_noise(generator: torch.Generator | Sequence[torch.Generator], n: int, act_dim: int,
               like: torch.Tensor, sampled: bool) -> torch.Tensor | None:
    """Standard normal noise of the tanh-Gaussian head for `n` states, or None when not sampling;
    with one generator per member (batched students), each member's (K, n, act_dim) from its
    own, as its own run would draw it."""
    if not sampled:
        return None
    if isinstance(generator, torch.Generator):
        return torch.randn((n, act_dim), generator=generator, device=like.device,
                           dtype=like.dtype)
    return torch.stack([torch.randn((n, act_dim), generator=g, device=like.device,
                                    dtype=like.dtype) for g in generator])


def meta_gradient_analytic(student: AnalyticMLP, optimizer: FunctionalSGD | FunctionalAdam,
                           steps: int, theta0: torch.Tensor, states: torch.Tensor,
                           actions: torch.Tensor, outer_states: torch.Tensor,
                           outer_loss: OuterLoss,
                           generator: torch.Generator | Sequence[torch.Generator]
                           ) -> MetaGradient:
    """Forward T inner steps keeping tapes, then walk them backwards (see module docstring).

    K independent students at once: theta0 (K, P), states (K, N, d), actions (K, N, a),
    outer_states (K, B, d), one generator per member; every result then has the member first.
    """
    theta, opt_state, tapes = theta0, optimizer.init(theta0), []
    with torch.no_grad():
        for t in range(steps):
            noise = head_noise(generator, states.shape[-2], student.act_dim, states,
                               student.sampled)
            inner_loss, grad, tape = student.bc_loss_and_grad(theta, states, actions, noise)
            theta, opt_state, record = optimizer.step(theta, grad, opt_state, t)
            tapes.append((tape, record))
        noise = head_noise(generator, outer_states.shape[-2], student.act_dim, outer_states,
                           student.sampled)
        y, outer_tape = student.forward(theta, outer_states, noise)
    with torch.enable_grad():
        y = y.requires_grad_()
        loss = outer_loss(y)
        (grad_y,) = torch.autograd.grad(loss.sum(), y)  # members independent: each its own
    with torch.no_grad():
        adj = optimizer.adjoint_start(student.backward(outer_tape, grad_y))
        d_states, d_actions = torch.zeros_like(states), torch.zeros_like(actions)
        for t in range(steps - 1, -1, -1):
            tape, record = tapes[t]
            grad_bar = optimizer.adjoint_step(adj, record, t)
            hv, dx, da = student.grad_jvp(tape, grad_bar)
            adj.theta += hv
            d_states += dx
            d_actions += da
            tapes[t] = None  # free this step's activations as soon as they are used
    return MetaGradient(loss.detach(), inner_loss, d_states, d_actions)


def _as_params(actor: nn.Module, flat: torch.Tensor) -> dict[str, torch.Tensor]:
    params, offset = {}, 0
    for name, p in actor.named_parameters():
        params[name] = flat[offset: offset + p.numel()].view(p.shape)
        offset += p.numel()
    return params


def meta_gradient_unroll(actor: nn.Module, sampled: bool,
                         optimizer: FunctionalSGD | FunctionalAdam, steps: int,
                         theta0: torch.Tensor, states: torch.Tensor, actions: torch.Tensor,
                         outer_states: torch.Tensor, outer_loss: OuterLoss,
                         generator: torch.Generator) -> MetaGradient:
    """Autograd through the whole inner loop (create_graph=True), then one backward pass."""
    act_dim = actions.shape[1]
    with torch.enable_grad():
        states = states.detach().requires_grad_()
        actions = actions.detach().requires_grad_()
        theta = theta0.detach().requires_grad_()
        opt_state = optimizer.init(theta)
        for t in range(steps):
            noise = head_noise(generator, len(states), act_dim, states, sampled)
            y = functional_call(actor, _as_params(actor, theta), (states,),
                                {"deterministic": not sampled, "noise": noise})
            inner_loss = ((y - actions) ** 2).mean()
            (grad,) = torch.autograd.grad(inner_loss, theta, create_graph=True)
            theta, opt_state, _ = optimizer.step(theta, grad, opt_state, t)
        noise = head_noise(generator, len(outer_states), act_dim, outer_states, sampled)
        y = functional_call(actor, _as_params(actor, theta), (outer_states,),
                            {"deterministic": not sampled, "noise": noise})
        loss = outer_loss(y)
        d_states, d_actions = torch.autograd.grad(loss, [states, actions])
    return MetaGradient(loss.detach(), inner_loss.detach(), d_states, d_actions)
