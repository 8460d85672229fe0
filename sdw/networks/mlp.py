"""MLP bodies shared by actors and critics: plain (CORL's `nn.Sequential` layout) or with skips."""

from __future__ import annotations

import math

import torch
from torch import nn

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU}
"""Activation names accepted by every network config."""

ORTHOGONAL_GAIN = math.sqrt(2.0)
"""CORL's gain for orthogonal initialisation (biases are zero)."""


def check_activation(name: str) -> None:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}.")


class Scalar(nn.Module):
    """One learnable number stored as `constant` (CORL's name, so checkpoints load as they are)."""

    def __init__(self, init_value: float):
        super().__init__()
        self.constant = nn.Parameter(torch.tensor(init_value, dtype=torch.float32))

    def forward(self) -> torch.Tensor:
        return self.constant


Skips = tuple[tuple[int, int], ...]
"""Skip connections (from, to) between hidden layers, numbered from 1."""


def check_skips(skips: Skips, hidden_sizes: list[int] | tuple[int, ...]) -> None:
    """Refuse skips that do not join two hidden layers of equal width, or two into one layer."""
    targets = [j for _, j in skips]
    if len(set(targets)) != len(targets):
        raise ValueError(f"skips {list(map(list, skips))} join two skips into one hidden layer; "
                         "give each layer at most one incoming skip.")
    for i, j in skips:
        if not 1 <= i < j <= len(hidden_sizes):
            raise ValueError(f"skip [{i}, {j}] must join hidden layers 1 <= from < to <= "
                             f"{len(hidden_sizes)} (hidden layers are numbered from 1).")
        if hidden_sizes[i - 1] != hidden_sizes[j - 1]:
            raise ValueError(f"skip [{i}, {j}] joins hidden layers of widths "
                             f"{hidden_sizes[i - 1]} and {hidden_sizes[j - 1]}; they must match.")


class ResidualMLP(nn.Module):
    """Hidden layers h_j = f(W_j h_{j-1} + b_j) (+ h_i for a skip (i, j)), linear output.

    Hidden layers are numbered from 1 (h_0 is the input); each skip (i, j) with 1 <= i < j adds
    the output of hidden layer i to that of hidden layer j, after its activation.
    """

    def __init__(self, sizes: list[int], activation: str, skips: Skips):
        super().__init__()
        check_activation(activation)
        check_skips(skips, sizes[1:-1])
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.activation = ACTIVATIONS[activation]()
        self.skip_sources = {j: i for i, j in skips}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = [x]
        for j, layer in enumerate(self.layers[:-1], start=1):
            h = self.activation(layer(hidden[-1]))
            if j in self.skip_sources:
                h = hidden[self.skip_sources[j]] + h
            hidden.append(h)
        return self.layers[-1](hidden[-1])


def has_skip(layer_index: int, in_features: int, out_features: int) -> bool:
    """Whether hidden layer `layer_index` (0-based) of a `residual` MLP adds its input back."""
    return layer_index > 0 and in_features == out_features


def residual_skips(hidden_sizes: list[int] | tuple[int, ...]) -> Skips:
    """The skips of `residual=True`: every hidden layer adds its input where the widths match."""
    return tuple((j, j + 1) for j in range(1, len(hidden_sizes))
                 if has_skip(j, hidden_sizes[j - 1], hidden_sizes[j]))


def build_mlp(sizes: list[int], activation: str = "relu", residual: bool = False,
              skips: Skips = ()) -> nn.Module:
    """Linear layers `sizes[0] -> ... -> sizes[-1]` with `activation` between them.

    `residual` adds every hidden layer's input back where the widths match (`residual_skips`);
    `skips` adds the given (from, to) skips instead.
    """
    check_activation(activation)
    if len(sizes) < 2:
        raise ValueError(f"an MLP needs at least input and output sizes, got {sizes}.")
    if residual and skips:
        raise ValueError("give either residual=True or explicit skips, not both.")
    if residual or skips:
        return ResidualMLP(sizes, activation, skips or residual_skips(sizes[1:-1]))
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-2], sizes[1:-1]):
        layers += [nn.Linear(a, b), ACTIVATIONS[activation]()]
    layers.append(nn.Linear(sizes[-2], sizes[-1]))
    return nn.Sequential(*layers)


def linear_layers(body: nn.Module) -> list[nn.Linear]:
    """The linear layers of an MLP body, input to output."""
    return [m for m in body.modules() if isinstance(m, nn.Linear)]


@torch.no_grad()
def orthogonal_init_(body: nn.Module, gain: float = ORTHOGONAL_GAIN,
                     generator: torch.Generator | None = None) -> None:
    """CORL's `orthogonal_init=True`: orthogonal weights with `gain`, zero biases, every layer."""
    for layer in linear_layers(body):
        nn.init.orthogonal_(layer.weight, gain=gain, generator=generator)
        layer.bias.zero_()
