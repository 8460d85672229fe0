"""What the distillation engine needs of a teacher: actions a*(s) and values Q*(s, a)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

from sdw.data.dataset import StateNormaliser


@runtime_checkable
class Teacher(Protocol):
    """A near-optimal policy pi* and its critic Q*, learnt offline on one dataset.

    States passed in are already normalised with `normaliser` (the statistics of the dataset's
    qlearning view); actions are in the env's scale.
    """

    normaliser: StateNormaliser

    def act(self, states: torch.Tensor, deterministic: bool = True) -> torch.Tensor:
        """a* ~ pi*(.|s) (sampled) or its mode (deterministic), shape (B, act_dim)."""
        ...

    def q(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Q*(s, a), shape (B,)."""
        ...
