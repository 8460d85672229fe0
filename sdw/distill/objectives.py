"""Outer objectives H of OBD (DBC, PBC, Av-PBC), each with optional per-state weights (SDW).

All three are weighted means of a per-state squared error e_i = mean_j (pi(s_i)_j - target_ij)^2
(the mean over action dimensions, as `nn.MSELoss` in the official code):

    DBC     H = mean_i w_i e_i, target = the dataset action a_i
    PBC     H = mean_i w_i e_i, target = the teacher action a*_i ~ pi*(.|s_i)
    Av-PBC  H = mean_i c_i e_i, target = a*_i, c_i = w_i * beta * Q*(s_i, a*_i)  (compose=multiply)
                                              c_i = w_i                         (compose=replace)

w_i are the state weights (SDW's density weights); without them w_i = 1. Multiplying by a weight
of exactly 1 leaves every term bit-identical, so all-ones weights reproduce the vanilla values
exactly. Q* is not normalised and beta = 0.02, as in the paper.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
from tqdm.auto import tqdm

from sdw.teacher.base import Teacher

OBJECTIVES = ("dbc", "pbc", "avpbc")
COMPOSE = ("multiply", "replace")
TEACHER_ACTIONS = ("sampled", "deterministic")


def weighted_mse(pred: torch.Tensor, target: torch.Tensor,
                 weights: torch.Tensor | None = None) -> torch.Tensor:
    """mean_i w_i * mean_j (pred_ij - target_ij)^2; the plain mean when `weights` is None."""
    per_state = ((pred - target) ** 2).mean(dim=1)
    return per_state.mean() if weights is None else (per_state * weights).mean()


def dbc_loss(pred: torch.Tensor, actions: torch.Tensor,
             state_weights: torch.Tensor | None = None) -> torch.Tensor:
    """Data-based BC: regress the dataset's own actions."""
    return weighted_mse(pred, actions, state_weights)


def pbc_loss(pred: torch.Tensor, teacher_actions: torch.Tensor,
             state_weights: torch.Tensor | None = None) -> torch.Tensor:
    """Policy-based BC: regress the teacher's actions."""
    return weighted_mse(pred, teacher_actions, state_weights)


def avpbc_loss(pred: torch.Tensor, teacher_actions: torch.Tensor, teacher_q: torch.Tensor,
               beta: float = 0.02, state_weights: torch.Tensor | None = None,
               compose: str = "multiply") -> torch.Tensor:
    """Action-value weighted PBC: each state's error weighted by beta * Q*(s, a*).

    With state weights, `compose="multiply"` uses w(s) * beta * Q*(s, a*) and
    `compose="replace"` uses w(s) alone.
    """
    if compose not in COMPOSE:
        raise ValueError(f"unknown compose {compose!r}; choose one of {COMPOSE}.")
    q_weights = beta * teacher_q
    if state_weights is None:
        weights = q_weights
    elif compose == "multiply":
        weights = q_weights * state_weights
    else:
        weights = state_weights
    return weighted_mse(pred, teacher_actions, weights)


@dataclass(frozen=True)
class ObjectiveConfig:
    """Which outer objective, how its teacher targets are drawn, and the outer batch size."""

    name: str = "avpbc"
    beta: float = 0.02
    teacher_actions: str = "sampled"
    batch_size: int = 2560

    def __post_init__(self) -> None:
        for value, allowed, key in ((self.name, OBJECTIVES, "name"),
                                    (self.teacher_actions, TEACHER_ACTIONS, "teacher_actions")):
            if value not in allowed:
                raise ValueError(f"objective {key}={value!r} is not one of {allowed}.")
        if self.batch_size < 1:
            raise ValueError(f"objective batch_size must be >= 1, got {self.batch_size}.")

    @property
    def needs_teacher(self) -> bool:
        return self.name != "dbc"

    def to_dict(self) -> dict:
        return asdict(self)

    def loss(self, targets: torch.Tensor, teacher_q: torch.Tensor | None,
             state_weights: torch.Tensor | None,
             compose: str = "multiply") -> Callable[[torch.Tensor], torch.Tensor]:
        """H as a function of the student's actions on the outer batch.

        `compose` (the weighting config's switch) combines state weights with Av-PBC's Q weight.
        """
        if self.name == "dbc":
            return lambda pred: dbc_loss(pred, targets, state_weights)
        if self.name == "pbc":
            return lambda pred: pbc_loss(pred, targets, state_weights)
        return lambda pred: avpbc_loss(pred, targets, teacher_q, self.beta, state_weights, compose)


class OuterTargets:
    """Regression targets (and Q* for Av-PBC) of the real states of D_off.

    Deterministic teacher actions do not change between outer steps, so they and their Q* are
    computed once for the whole dataset (in chunks) and looked up per batch. Sampled teacher
    actions are drawn afresh for every batch, as in the paper, from torch's global RNG.
    """

    def __init__(self, cfg: ObjectiveConfig, states: torch.Tensor, actions: torch.Tensor,
                 teacher: Teacher | None, chunk: int = 65536, progress: bool = True):
        if cfg.needs_teacher and teacher is None:
            raise ValueError(f"objective {cfg.name!r} needs a teacher; pass one (or use dbc).")
        self.cfg, self.states, self.actions, self.teacher = cfg, states, actions, teacher
        self.table: tuple[torch.Tensor, torch.Tensor | None] | None = None
        if cfg.needs_teacher and cfg.teacher_actions == "deterministic":
            parts = [self._query(states[i: i + chunk], deterministic=True)
                     for i in tqdm(range(0, len(states), chunk), desc="teacher targets",
                                   disable=not progress or len(states) <= 4 * chunk)]
            q = torch.cat([p[1] for p in parts]) if cfg.name == "avpbc" else None
            self.table = (torch.cat([p[0] for p in parts]), q)

    @torch.no_grad()
    def _query(self, states: torch.Tensor, deterministic: bool
               ) -> tuple[torch.Tensor, torch.Tensor | None]:
        act = self.teacher.act(states, deterministic=deterministic)
        q = self.teacher.q(states, act).reshape(-1) if self.cfg.name == "avpbc" else None
        return act, q

    def __call__(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Targets (B, act_dim) and Q* (B,) or None, for the real states `indices`."""
        if not self.cfg.needs_teacher:
            return self.actions[indices], None
        if self.table is not None:
            act, q = self.table
            return act[indices], None if q is None else q[indices]
        return self._query(self.states[indices], deterministic=False)


def check_state_weights(weights: torch.Tensor, batch: int, device: torch.device) -> torch.Tensor:
    """A `state_weights` result as a (B,) float32 tensor on `device`, or a clear error."""
    weights = torch.as_tensor(weights).to(device=device, dtype=torch.float32)
    if weights.shape != (batch,):
        raise ValueError(f"state_weights returned shape {tuple(weights.shape)}; expected "
                         f"({batch},), one weight per sampled state.")
    if not torch.isfinite(weights).all():
        bad = int((~torch.isfinite(weights)).sum())
        raise ValueError(f"state_weights returned {bad} non-finite weights; compute them in log "
                         "space and clip them (see the weighting configs).")
    return weights

