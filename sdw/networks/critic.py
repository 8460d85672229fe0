"""CORL's `FullyConnectedQFunction`: Q(s, a) from the concatenation (s, a), keys `network.*`."""

from __future__ import annotations

import torch
from torch import nn

from sdw.networks.mlp import build_mlp


class FullyConnectedQFunction(nn.Module):
    """(obs + act) -> hidden ReLU layers -> 1; `forward` returns shape (B,)."""

    def __init__(self, obs_dim: int, act_dim: int, hidden_sizes: tuple[int, ...] = (256, 256),
                 activation: str = "relu"):
        super().__init__()
        self.network = build_mlp([obs_dim + act_dim, *hidden_sizes, 1], activation)

    def forward(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return self.network(torch.cat([states, actions], dim=-1)).squeeze(-1)
