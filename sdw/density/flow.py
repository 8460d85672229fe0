"""Masked autoregressive flow (zuko) fitted by maximum likelihood with held-out early stopping."""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import zuko
from tqdm import tqdm

from sdw.density.base import DensityError, DensityEstimator


class FlowDensity(DensityEstimator):
    """zuko MAF (`transforms` affine autoregressive layers, MADE of `hidden_features`).

    Trains on a random subsample of at most `max_train_states` fitted states, of which
    `val_fraction` is held out; stops when the held-out NLL has not improved for `patience`
    epochs and keeps the best epoch's parameters.
    """

    name = "flow"

    def __init__(
        self,
        transforms: int = 3,
        hidden_features: Sequence[int] = (64, 64),
        batch_size: int = 1024,
        lr: float = 3e-3,
        max_epochs: int = 30,
        patience: int = 3,
        val_fraction: float = 0.1,
        max_train_states: int = 200_000,
        seed: int = 0,
        eval_batch: int = 65_536,
        device: str = "cpu",
    ) -> None:
        super().__init__()
        if not 0 < val_fraction < 1:
            raise DensityError(f"flow val_fraction must be in (0, 1), got {val_fraction}.")
        self.transforms = int(transforms)
        self.hidden_features = tuple(int(h) for h in hidden_features)
        self.batch_size = int(batch_size)
        self.lr = float(lr)
        self.max_epochs = int(max_epochs)
        self.patience = int(patience)
        self.val_fraction = float(val_fraction)
        self.max_train_states = int(max_train_states)
        self.seed = int(seed)
        self.eval_batch = int(eval_batch)
        self.device = torch.device(device)
        self.val_nll: list[float] = []
        """Held-out negative log-likelihood (nats per state) after each epoch."""

    def cache_params(self) -> dict[str, Any]:
        return {"transforms": self.transforms, "hidden_features": list(self.hidden_features),
                "batch_size": self.batch_size, "lr": self.lr, "max_epochs": self.max_epochs,
                "patience": self.patience, "val_fraction": self.val_fraction,
                "max_train_states": self.max_train_states, "seed": self.seed}

    @property
    def best_epoch(self) -> int:
        return int(np.argmin(self.val_nll)) + 1

    def fit(self, states: np.ndarray) -> FlowDensity:
        states = self._remember(states, min_states=4)
        n, dim = states.shape
        rng = np.random.default_rng(self.seed)
        used = rng.permutation(n)[: min(n, self.max_train_states)]
        n_val = max(1, int(round(self.val_fraction * len(used))))
        val = torch.as_tensor(states[np.sort(used[:n_val])], dtype=torch.float32, device=self.device)
        train = torch.as_tensor(states[np.sort(used[n_val:])], dtype=torch.float32, device=self.device)
        shuffle = torch.Generator().manual_seed(self.seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            flow = zuko.flows.MAF(dim, transforms=self.transforms, hidden_features=self.hidden_features)
        self._flow = flow.to(self.device)
        optimiser = torch.optim.Adam(self._flow.parameters(), lr=self.lr)
        best_state, bad_epochs, self.val_nll = None, 0, []
        for epoch in tqdm(range(self.max_epochs), desc="flow", unit="epoch", leave=False):
            self._flow.train()
            for batch in torch.randperm(len(train), generator=shuffle).split(self.batch_size):
                loss = -self._flow().log_prob(train[batch.to(self.device)]).mean()
                if not torch.isfinite(loss):
                    raise DensityError(f"flow training diverged at epoch {epoch + 1} (loss {loss.item()}); "
                                       "lower density.lr.")
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
            self.val_nll.append(float(-self._log_prob(val).mean()))
            if not math.isfinite(self.val_nll[-1]):
                raise DensityError(f"flow held-out NLL is {self.val_nll[-1]} at epoch {epoch + 1}; "
                                   "lower density.lr.")
            if self.val_nll[-1] < min(self.val_nll[:-1], default=math.inf):
                best_state, bad_epochs = copy.deepcopy(self._flow.state_dict()), 0
            else:
                bad_epochs += 1
                if bad_epochs >= self.patience:
                    break
        self._flow.load_state_dict(best_state)
        self._flow.eval()
        return self

    @torch.no_grad()
    def _log_prob(self, states: torch.Tensor) -> torch.Tensor:
        self._flow.eval()
        dist = self._flow()
        return torch.cat([dist.log_prob(chunk) for chunk in states.split(self.eval_batch)])

    def log_density(self, states: np.ndarray) -> np.ndarray:
        states = self._query(states)
        tensor = torch.as_tensor(states, dtype=torch.float32, device=self.device)
        return self._log_prob(tensor).double().cpu().numpy()
