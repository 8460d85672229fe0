"""Outer batches of real states, drawn without reshuffling the whole dataset every step."""

from __future__ import annotations

import torch


class OuterBatchSampler:
    """Consecutive slices of a random permutation of the N real states, re-drawn once per pass.

    Within a pass every state is used once; a new permutation is drawn only when the current
    one is used up (every N / batch_size steps), so the cost per step is O(batch_size), not
    O(N). (The official code built a new shuffling DataLoader over all of D_off every step.)
    """

    def __init__(self, n: int, batch_size: int, generator: torch.Generator,
                 device: str | torch.device = "cpu"):
        if n < 1:
            raise ValueError("the dataset has no states to sample an outer batch from.")
        self.n, self.batch_size, self.generator = n, batch_size, generator
        self.device = torch.device(device)
        self.permutation = torch.empty(0, dtype=torch.long, device=self.device)
        self.position = 0

    def __call__(self) -> torch.Tensor:
        """Indices (batch_size,) of the next outer batch (a pass boundary may fall inside it)."""
        parts, needed = [], self.batch_size
        while needed:
            if self.position == len(self.permutation):
                self.permutation = torch.randperm(self.n, generator=self.generator,
                                                  device=self.device)
                self.position = 0
            take = min(needed, len(self.permutation) - self.position)
            parts.append(self.permutation[self.position: self.position + take])
            self.position += take
            needed -= take
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def state_dict(self) -> dict:
        return {"permutation": self.permutation.cpu(), "position": self.position,
                "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.permutation = state["permutation"].to(self.device)
        self.position = int(state["position"])
        self.generator.set_state(state["generator"])
