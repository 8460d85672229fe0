"""The outer optimiser: how the synthetic states and actions move along their meta-gradient."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

OPTIMISERS = ("sgd", "adam")
SCHEDULES = ("constant", "cosine")


@dataclass(frozen=True)
class OuterOptimConfig:
    """Optimiser, learning rates, schedule and gradient clip of the synthetic set (`conf/outer_optim/`).

    The defaults are `sdw-run`'s (conf/outer_optim/adam.yaml): Adam, lr 0.01, joint
    gradient-norm clip 2, constant lr. The paper's recipe is `PAPER_RECIPE` (SGD, lr 0.1,
    momentum 0.9; conf/outer_optim/paper.yaml).
    """

    name: str = "adam"
    lr: float = 0.01
    action_lr: float | None = None
    momentum: float = 0.9
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    clip_norm: float | None = 2.0
    schedule: str = "constant"
    min_lr_fraction: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "betas", tuple(self.betas))
        if self.name not in OPTIMISERS:
            raise ValueError(f"outer_optim.name={self.name!r} is not one of {OPTIMISERS}.")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"outer_optim.schedule={self.schedule!r} is not one of {SCHEDULES}.")
        for key in ("lr", "action_lr"):
            value = getattr(self, key)
            if value is not None and not value > 0:
                raise ValueError(f"outer_optim.{key}={value} must be positive.")
        if self.clip_norm is not None and not self.clip_norm > 0:
            raise ValueError(f"outer_optim.clip_norm={self.clip_norm} must be positive or null.")
        if not 0 <= self.min_lr_fraction <= 1:
            raise ValueError(f"outer_optim.min_lr_fraction={self.min_lr_fraction} must be in [0, 1].")

    def to_dict(self) -> dict:
        return asdict(self)

    def build(self, states: torch.Tensor, actions: torch.Tensor, total_steps: int
              ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
        """The optimiser over (states, actions), two parameter groups, and its lr schedule."""
        groups = [{"params": [states], "lr": self.lr},
                  {"params": [actions], "lr": self.action_lr or self.lr}]
        if self.name == "sgd":
            optimizer = torch.optim.SGD(groups, lr=self.lr, momentum=self.momentum)
        else:
            optimizer = torch.optim.Adam(groups, lr=self.lr, betas=self.betas, eps=self.eps)
        return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, self._factor(total_steps))

    def _factor(self, total_steps: int):
        if self.schedule == "constant":
            return _constant
        floor = self.min_lr_fraction
        return lambda step: floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(step, total_steps)
                                                                      / max(total_steps, 1)))

    def clip(self, states: torch.Tensor, actions: torch.Tensor) -> float:
        """Clip the joint gradient norm of (states, actions); returns the norm before clipping."""
        if self.clip_norm is None:
            return float(torch.linalg.vector_norm(torch.cat([states.grad.reshape(-1),
                                                             actions.grad.reshape(-1)])))
        return float(torch.nn.utils.clip_grad_norm_([states, actions], self.clip_norm))


def _constant(step: int) -> float:
    return 1.0


PAPER_RECIPE = OuterOptimConfig(name="sgd", lr=0.1, momentum=0.9, clip_norm=2.0)
"""The OBD paper's outer optimiser (conf/outer_optim/paper.yaml)."""
