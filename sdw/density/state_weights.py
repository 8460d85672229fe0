"""`StateWeights`: the callable the distillation engine asks for the weights of an outer batch."""

from __future__ import annotations

import numpy as np
import torch

from sdw.density.base import DensityError


class StateWeights:
    """state_weights(indices) -> weights of the qlearning-view states at `indices`, on their device.

    Built from the log weight of every D_off state (`WeightingScheme.log_weights`). Globally
    normalised weights are looked up; with `per_batch`, the batch's log weights go through
    B * softmax, so every batch has mean weight 1. Tables are made once per device.
    """

    def __init__(self, log_weights: np.ndarray, per_batch: bool = False, compose: str = "multiply") -> None:
        self.log_weights = np.asarray(log_weights, dtype=np.float64)
        self.per_batch = per_batch
        self.compose = compose
        self._tables: dict[torch.device, torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self.log_weights)

    @property
    def weights(self) -> np.ndarray:
        """Weight of every D_off state (for `per_batch`, before each batch is renormalised)."""
        return np.exp(self.log_weights)

    def _table(self, device: torch.device) -> torch.Tensor:
        if device not in self._tables:
            values = self.log_weights if self.per_batch else self.weights
            self._tables[device] = torch.as_tensor(values, dtype=torch.float32, device=device)
        return self._tables[device]

    def __call__(self, indices: torch.Tensor) -> torch.Tensor:
        if indices.dtype not in (torch.int64, torch.int32) or indices.ndim != 1:
            raise DensityError(f"state_weights expects a 1-D LongTensor of state indices, got "
                               f"{indices.dtype} of shape {tuple(indices.shape)}.")
        if len(indices) and (int(indices.min()) < 0 or int(indices.max()) >= len(self)):
            raise DensityError(f"state_weights: indices must be in [0, {len(self)}) (the qlearning view of "
                               f"D_off), got range [{int(indices.min())}, {int(indices.max())}].")
        values = self._table(indices.device)[indices]
        if self.per_batch:
            return torch.softmax(values, dim=0) * len(values)
        return values
