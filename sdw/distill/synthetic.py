"""The synthetic set: its configuration, initialisation, and the artefact it is saved as.

Artefact format (one `.npz` file, readable with numpy alone, no pickle):

    states      float32 (N, obs_dim)  synthetic states, normalised: (s - state_mean) / state_std
    actions     float32 (N, act_dim)  synthetic actions, in the env's action scale (not clamped)
    state_mean  float32 (obs_dim,)    normalisation statistics of D_off (qlearning view; the std
    state_std   float32 (obs_dim,)    already includes the 1e-3 of the CORL convention)
    metadata    0-d unicode string    JSON: format, version, env_id, dataset {name, hash},
                                      method, config (everything that made the set), info
                                      (outer steps done, last losses, ...)

    >>> f = np.load("set.npz"); meta = json.loads(str(f["metadata"]))
    >>> raw_states = f["states"] * f["state_std"] + f["state_mean"]
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from sdw.atomic import atomic_write
from sdw.data.dataset import StateNormaliser

ARTEFACT_FORMAT = "sdw-synthetic-set"
ARTEFACT_VERSION = 1
INITS = ("real", "kmeans++", "random")


@dataclass(frozen=True)
class SyntheticConfig:
    """Size and initialisation of the synthetic set (its optimiser: `OuterOptimConfig`)."""

    size: int = 256
    init: str = "real"
    kmeans_subsample: int = 100_000

    def __post_init__(self) -> None:
        if self.init not in INITS:
            raise ValueError(f"unknown synthetic init {self.init!r}; choose one of {INITS}.")
        if self.size < 1:
            raise ValueError(f"synthetic size must be >= 1, got {self.size}.")

    def to_dict(self) -> dict:
        return asdict(self)


def initial_pairs(cfg: SyntheticConfig, states: torch.Tensor, actions: torch.Tensor,
                  generator: torch.Generator, max_action: float = 1.0
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Initial synthetic (states, actions) from the real, normalised (states, actions).

    real      `size` distinct random real pairs (the paper's default);
    kmeans++  the real pairs chosen by k-means++ seeding on the states (of a random subsample
              of at most `kmeans_subsample` states), which spreads them over the state space;
    random    states ~ N(0, I) in normalised space, actions ~ U(-max_action, max_action).
    """
    n = len(states)
    if cfg.init == "random":
        s = torch.randn((cfg.size, states.shape[1]), generator=generator, device=states.device)
        a = torch.rand((cfg.size, actions.shape[1]), generator=generator, device=states.device)
        return s, (2 * a - 1) * max_action
    if cfg.size > n:
        raise ValueError(f"synthetic size {cfg.size} exceeds the {n} real pairs of the dataset; "
                         "use a smaller size or init=random.")
    perm = torch.randperm(n, generator=generator, device=states.device)
    if cfg.init == "real":
        idx = perm[: cfg.size]
    else:
        from sklearn.cluster import kmeans_plusplus

        pool = perm[: min(n, cfg.kmeans_subsample)]
        seed = int(torch.randint(2**31 - 1, (1,), generator=generator, device=states.device))
        _, chosen = kmeans_plusplus(states[pool].cpu().double().numpy(), n_clusters=cfg.size,
                                    random_state=seed)
        idx = pool[torch.as_tensor(chosen, device=states.device)]
    return states[idx].clone(), actions[idx].clone()


@dataclass
class SyntheticSet:
    """A distilled set of (state, action) pairs and everything needed to use and trace it."""

    states: np.ndarray
    actions: np.ndarray
    normaliser: StateNormaliser
    env_id: str
    dataset_name: str
    dataset_hash: str
    method: str
    config: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.states = np.asarray(self.states, dtype=np.float32)
        self.actions = np.asarray(self.actions, dtype=np.float32)
        if self.states.ndim != 2 or self.actions.ndim != 2 or len(self.states) != len(self.actions):
            raise ValueError(f"synthetic states {self.states.shape} and actions "
                             f"{self.actions.shape} must be (N, obs_dim) and (N, act_dim).")
        if self.normaliser.mean.shape != (self.states.shape[1],):
            raise ValueError(f"normaliser has {self.normaliser.mean.shape} statistics for "
                             f"{self.states.shape[1]}-dimensional states.")

    def policy(self, seed: int = 0, device: str = "cpu"):
        """A student trained on this set with the recipe it was distilled for, acting on raw
        observations: `synthetic.policy().act(obs)` (sdw.distill.student.SetPolicy)."""
        from sdw.distill.student import SetPolicy  # student.py builds on this module

        return SetPolicy.train(self, seed=seed, device=device)

    def __len__(self) -> int:
        return len(self.states)

    @property
    def obs_dim(self) -> int:
        return self.states.shape[1]

    @property
    def act_dim(self) -> int:
        return self.actions.shape[1]

    def raw_states(self) -> np.ndarray:
        """States in the env's observation scale."""
        return self.states * self.normaliser.std + self.normaliser.mean

    def metadata(self) -> dict:
        return {"format": ARTEFACT_FORMAT, "version": ARTEFACT_VERSION, "env_id": self.env_id,
                "dataset": {"name": self.dataset_name, "hash": self.dataset_hash},
                "method": self.method, "config": self.config, "info": self.info}

    def save(self, path: str | Path) -> Path:
        """Write the artefact (atomically: a partial file never replaces a good one)."""
        return atomic_write(Path(path), lambda fh: np.savez(
            fh, states=self.states, actions=self.actions,
            state_mean=np.asarray(self.normaliser.mean, np.float32),
            state_std=np.asarray(self.normaliser.std, np.float32),
            metadata=np.array(json.dumps(self.metadata(), sort_keys=True))))

    @classmethod
    def load(cls, path: str | Path) -> SyntheticSet:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no synthetic set at {path}.")
        try:
            with np.load(path, allow_pickle=False) as f:
                arrays = {k: f[k] for k in ("states", "actions", "state_mean", "state_std",
                                            "metadata")}
        except (KeyError, ValueError, OSError) as e:
            raise ValueError(f"{path} is not a synthetic set artefact ({e}); it should be an .npz "
                             "with states, actions, state_mean, state_std and metadata.") from e
        meta = json.loads(str(arrays["metadata"]))
        if meta.get("format") != ARTEFACT_FORMAT or meta.get("version") != ARTEFACT_VERSION:
            raise ValueError(f"{path} has format {meta.get('format')!r} version "
                             f"{meta.get('version')!r}; expected {ARTEFACT_FORMAT!r} version "
                             f"{ARTEFACT_VERSION}.")
        return cls(states=arrays["states"], actions=arrays["actions"],
                   normaliser=StateNormaliser(arrays["state_mean"], arrays["state_std"]),
                   env_id=meta["env_id"], dataset_name=meta["dataset"]["name"],
                   dataset_hash=meta["dataset"]["hash"], method=meta["method"],
                   config=meta["config"], info=meta["info"])
