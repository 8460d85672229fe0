"""Masked autoregressive flow (zuko) fitted by maximum likelihood on jittered states, with held-out early stopping."""

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


def student_t(df: torch.Tensor, loc: torch.Tensor, scale: torch.Tensor) -> torch.distributions.Distribution:
    """Independent Student-t distributions, one per dimension (a heavy-tailed flow base)."""
    return torch.distributions.Independent(torch.distributions.StudentT(df, loc, scale), 1)


class FlowDensity(DensityEstimator):
    """zuko MAF (`transforms` affine autoregressive layers, MADE of `hidden_features`).

    Trains on a random subsample of at most `max_train_states` fitted states, of which
    `val_fraction` is held out; stops when the held-out NLL (on the clean held-out states) has not
    improved for `patience` epochs and keeps the best epoch's parameters. `noise` adds fresh
    Gaussian jitter of that std to every training batch (so the flow fits the density smoothed at
    that scale: no point masses from states clipped at an observation bound, no infinitely thin
    structure); `base_df` replaces the Gaussian base by independent Student-t's with that many
    degrees of freedom, so a rare state far from the bulk in base space loses log density like
    log |z|, not z^2 / 2. `noise=0, base_df=None` is the plain MAF (the settings before issue 12).
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
        noise: float = 0.1,
        base_df: float | None = 3.0,
        eval_batch: int = 65_536,
        device: str = "cpu",
    ) -> None:
        super().__init__()
        if not 0 < val_fraction < 1:
            raise DensityError(f"flow val_fraction must be in (0, 1), got {val_fraction}.")
        if noise < 0:
            raise DensityError(f"flow noise must be >= 0 (std of the training jitter), got {noise}.")
        if base_df is not None and base_df <= 0:
            raise DensityError(f"flow base_df must be > 0 (Student-t degrees of freedom) or null, got {base_df}.")
        self.transforms = int(transforms)
        self.hidden_features = tuple(int(h) for h in hidden_features)
        self.batch_size = int(batch_size)
        self.lr = float(lr)
        self.max_epochs = int(max_epochs)
        self.patience = int(patience)
        self.val_fraction = float(val_fraction)
        self.max_train_states = int(max_train_states)
        self.seed = int(seed)
        self.noise = float(noise)
        self.base_df = None if base_df is None else float(base_df)
        self.eval_batch = int(eval_batch)
        self.device = torch.device(device)
        self._flow: zuko.flows.Flow | None = None
        self.val_nll: list[float] = []
        """Held-out negative log-likelihood (nats per state) after each epoch."""

    def cache_params(self) -> dict[str, Any]:
        return {"transforms": self.transforms, "hidden_features": list(self.hidden_features),
                "batch_size": self.batch_size, "lr": self.lr, "max_epochs": self.max_epochs,
                "patience": self.patience, "val_fraction": self.val_fraction,
                "max_train_states": self.max_train_states, "seed": self.seed, "noise": self.noise,
                "base_df": self.base_df}

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
        jitter = torch.Generator(device=self.device).manual_seed(self.seed + 1)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            flow = zuko.flows.MAF(dim, transforms=self.transforms, hidden_features=self.hidden_features)
            if self.base_df is not None:
                flow.base = zuko.flows.UnconditionalDistribution(
                    student_t, torch.full((dim,), self.base_df), torch.zeros(dim), torch.ones(dim), buffer=True)
        self._flow = flow.to(self.device)
        optimiser = torch.optim.Adam(self._flow.parameters(), lr=self.lr)
        best_state, bad_epochs, self.val_nll = None, 0, []
        for epoch in tqdm(range(self.max_epochs), desc="flow", unit="epoch", leave=False):
            self._flow.train()
            for batch in torch.randperm(len(train), generator=shuffle).split(self.batch_size):
                x = train[batch.to(self.device)]
                if self.noise > 0:
                    x = x + self.noise * torch.randn(x.shape, generator=jitter, device=self.device)
                loss = -self._flow().log_prob(x).mean()
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

    @torch.no_grad()
    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        """`n` states drawn from the fitted flow (float64, shape (n, D)); the global torch RNG is untouched."""
        self._check_fitted()
        with torch.random.fork_rng(devices=[] if self.device.type == "cpu" else [self.device]):
            torch.manual_seed(seed)
            return self._flow().sample((n,)).double().cpu().numpy()

    @torch.no_grad()
    def base_coordinates(self, states: np.ndarray) -> np.ndarray:
        """The states mapped into the flow's base space (z, shape (M, D)), where the base density scores them."""
        tensor = torch.as_tensor(self._query(states), dtype=torch.float32, device=self.device)
        transform = self._flow().transform
        return torch.cat([transform(chunk) for chunk in tensor.split(self.eval_batch)]).double().cpu().numpy()

    def _check_fitted(self) -> None:
        if self._flow is None:
            raise DensityError("FlowDensity is not fitted yet: call fit(states) first.")
