"""MLP bodies shared by actors and critics: plain (CORL's `nn.Sequential` layout) or residual."""

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


class ResidualMLP(nn.Module):
    """h_1 = f(W_1 x + b_1); h_l = h_{l-1} + f(W_l h_{l-1} + b_l) where widths match; linear output.

    A hidden layer whose input and output widths differ (the first one, or a change of width)
    has no skip connection.
    """

    def __init__(self, sizes: list[int], activation: str):
        super().__init__()
        check_activation(activation)
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.activation = ACTIVATIONS[activation]()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers[:-1]):
            h = self.activation(layer(x))
            x = x + h if has_skip(i, layer.in_features, layer.out_features) else h
        return self.layers[-1](x)


def has_skip(layer_index: int, in_features: int, out_features: int) -> bool:
    """Whether hidden layer `layer_index` (0-based) of a residual MLP adds its input back."""
    return layer_index > 0 and in_features == out_features


def build_mlp(sizes: list[int], activation: str = "relu", residual: bool = False) -> nn.Module:
    """Linear layers `sizes[0] -> ... -> sizes[-1]` with `activation` between them."""
    check_activation(activation)
    if len(sizes) < 2:
        raise ValueError(f"an MLP needs at least input and output sizes, got {sizes}.")
    if residual:
        return ResidualMLP(sizes, activation)
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
