"""What the offline-RL teachers (TD3+BC, IQL) share: config fields, ensembles, data, records.

Speed on CPU (docs/teachers.md): twin critics live in one `MLPEnsemble` (one batched matmul per
layer for the pair); the whole transition table is one in-memory tensor and a batch is one
`index_select`; optimisers are torch's fused Adam.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from sdw.data.dataset import OfflineDataset, StateNormaliser
from sdw.errors import UserError
from sdw.teacher.cache import (RECORD_FORMAT, RECORD_FORMAT_VERSION, atomic_torch_save,
                               config_hash, read_record)


class TeacherDivergedError(UserError):
    """Teacher training produced a NaN or inf loss or weight; the message names the likely cause."""


@dataclass(frozen=True)
class OfflineRLConfig:
    """Fields every offline-RL teacher has. Those in `RUN_FIELDS` do not change the trained
    weights and stay out of the cache key."""

    ALGORITHM: ClassVar[str] = ""
    IMPLEMENTATION_VERSION: ClassVar[int] = 1
    RUN_FIELDS: ClassVar[tuple[str, ...]] = ("device", "eval_every", "eval_episodes", "eval_seed",
                                             "log_every", "checkpoint_every")

    steps: int = 100_000
    batch_size: int = 256
    hidden_dims: tuple[int, ...] = (256, 256)
    discount: float = 0.99
    tau: float = 0.005
    max_action: float | None = None
    seed: int = 0
    device: str = "cpu"
    eval_every: int = 10_000
    eval_episodes: int = 10
    eval_seed: int = 1_000
    log_every: int = 1_000
    checkpoint_every: int = 5_000

    def __post_init__(self) -> None:
        name = type(self).__name__
        object.__setattr__(self, "hidden_dims", tuple(int(h) for h in self.hidden_dims))
        for field_name, low in (("steps", 1), ("batch_size", 1), ("log_every", 1),
                                ("eval_every", 0), ("eval_episodes", 0), ("checkpoint_every", 0)):
            if getattr(self, field_name) < low:
                raise ValueError(f"{name}.{field_name} must be >= {low}, got "
                                 f"{getattr(self, field_name)}.")
        if not self.hidden_dims:
            raise ValueError(f"{name}.hidden_dims needs at least one layer width.")
        if self.max_action is not None and self.max_action <= 0:
            raise ValueError(f"{name}.max_action must be > 0 or null, got {self.max_action}.")

    def to_dict(self) -> dict:
        return {**asdict(self), "hidden_dims": list(self.hidden_dims)}

    def training_fields(self) -> dict:
        """The fields that determine the trained weights (the cache key hashes these)."""
        return {k: v for k, v in self.to_dict().items() if k not in self.RUN_FIELDS}

    def cache_header(self, dataset_hash: str) -> dict:
        """What identifies a teacher: algorithm, code version, dataset and config hashes."""
        return {"algorithm": self.ALGORITHM, "implementation_version": self.IMPLEMENTATION_VERSION,
                "dataset_hash": dataset_hash, "config_hash": config_hash(self.training_fields())}

    @classmethod
    def from_mapping(cls, d: dict) -> OfflineRLConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known - {"_target_"})
        if unknown:
            raise ValueError(f"unknown {cls.__name__} field(s) {unknown}; known: {sorted(known)}.")
        return cls(**{k: v for k, v in d.items() if k in known})


def _uniform(shape: tuple[int, ...], bound: float, generator: torch.Generator) -> torch.Tensor:
    return torch.empty(shape).uniform_(-bound, bound, generator=generator)


class MLPEnsemble(nn.Module):
    """`n` independent ReLU MLPs of one shape, evaluated together with one batched matmul a layer.

    Layer k holds `weight_k` (n, in, out) and `bias_k` (n, 1, out), initialised like `nn.Linear`.
    """

    def __init__(self, n: int, in_dim: int, hidden_dims: tuple[int, ...], out_dim: int,
                 generator: torch.Generator) -> None:
        super().__init__()
        dims = (in_dim, *hidden_dims, out_dim)
        self.n_layers = len(dims) - 1
        for k, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:])):
            bound = 1.0 / math.sqrt(d_in)
            self.register_parameter(f"weight_{k}",
                                    nn.Parameter(_uniform((n, d_in, d_out), bound, generator)))
            self.register_parameter(f"bias_{k}",
                                    nn.Parameter(_uniform((n, 1, d_out), bound, generator)))

    def layers(self, members: slice | None = None,
               detach: bool = False) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(weight, bias) of every layer, of the `members` slice only when given."""
        out = []
        for k in range(self.n_layers):
            w, b = getattr(self, f"weight_{k}"), getattr(self, f"bias_{k}")
            if members is not None:
                w, b = w[members], b[members]
            out.append((w.detach(), b.detach()) if detach else (w, b))
        return out

    def forward(self, x: torch.Tensor, members: slice | None = None,
                detach: bool = False) -> torch.Tensor:
        """x (B, in) shared by all members -> (n_members, B, out)."""
        layers = self.layers(members, detach)
        h = x.expand(layers[0][0].shape[0], *x.shape)
        for k, (w, b) in enumerate(layers):
            h = torch.baddbmm(b, h, w)
            if k < len(layers) - 1:
                h = h.relu()
        return h


class OfflineTeacher(nn.Module):
    """Base of the trained teachers: normaliser, provenance, evaluation, history, save/load.

    Subclasses build their networks in `__init__(obs_dim, act_dim, cfg, normaliser, generator)`
    and implement `act` and `q` of the `Teacher` protocol. `provenance` names the dataset the
    teacher was trained on, `evaluation` holds its last rollout scores and `history` its log.
    """

    CONFIG: ClassVar[type[OfflineRLConfig]] = OfflineRLConfig

    def __init__(self, obs_dim: int, act_dim: int, cfg: OfflineRLConfig,
                 normaliser: StateNormaliser) -> None:
        super().__init__()
        if cfg.max_action is None:
            raise ValueError(f"{type(cfg).__name__}.max_action must be resolved (a number) to "
                             "build a teacher; train_teacher reads it from the env's action space.")
        self.cfg = cfg
        self.max_action = float(cfg.max_action)
        self.normaliser = normaliser
        self.obs_dim, self.act_dim = obs_dim, act_dim
        self.provenance: dict[str, str] = {}
        self.origin: str | None = None  # set by train_teacher: "shipped <file>", "cache <file>", "trained"
        self.evaluation: dict | None = None
        self.history: list[dict] = []

    def summary(self) -> dict:
        """The record without the weights (JSON-serialisable)."""
        return {**self.cfg.cache_header(self.provenance.get("dataset_hash", "")),
                "format": RECORD_FORMAT, "format_version": RECORD_FORMAT_VERSION,
                "provenance": dict(self.provenance), "config": self.cfg.to_dict(),
                "obs_dim": self.obs_dim, "act_dim": self.act_dim, "max_action": self.max_action,
                "normaliser": self.normaliser.to_dict(), "evaluation": self.evaluation,
                "history": list(self.history)}

    def record(self) -> dict:
        """Everything `from_record` needs: the summary plus a CPU state dict."""
        return {**self.summary(), "state_dict": {k: v.detach().cpu().clone()
                                                 for k, v in self.state_dict().items()}}

    @classmethod
    def from_record(cls, record: dict, device: torch.device | str = "cpu") -> OfflineTeacher:
        if record.get("algorithm") != cls.CONFIG.ALGORITHM:
            raise ValueError(f"teacher record is for algorithm {record.get('algorithm')!r}, "
                             f"not {cls.CONFIG.ALGORITHM!r}.")
        cfg = cls.CONFIG.from_mapping(record["config"])
        teacher = cls(record["obs_dim"], record["act_dim"], cfg,
                      StateNormaliser.from_dict(record["normaliser"]))
        teacher.load_state_dict(record["state_dict"])
        teacher.provenance = dict(record["provenance"])
        teacher.evaluation = record["evaluation"]
        teacher.history = list(record["history"])
        return teacher.to(device).eval().requires_grad_(False)

    def save(self, path: Path | str) -> None:
        """Write the teacher record atomically (read back with `load` or `load_teacher`)."""
        atomic_torch_save(self.record(), Path(path))

    @classmethod
    def load(cls, path: Path | str, device: torch.device | str = "cpu") -> OfflineTeacher:
        return cls.from_record(read_record(path), device)


def transition_table(dataset: OfflineDataset, normaliser: StateNormaliser,
                     device: torch.device | str, reward_scale: float = 1.0) -> torch.Tensor:
    """The qlearning view as one float32 tensor, rows [s_norm, a, r * scale, s'_norm, 1 - done]."""
    view = dataset.qlearning_view()
    table = np.concatenate([
        normaliser(view.observations),
        view.actions.astype(np.float32),
        (view.rewards.astype(np.float64) * reward_scale).astype(np.float32)[:, None],
        normaliser(view.next_observations),
        (1.0 - view.terminals.astype(np.float32))[:, None],
    ], axis=1)
    return torch.from_numpy(table).to(device)


class OfflineTrainer:
    """Base of the trainers: data, sampling generator, target copy, loss statistics, resume state.

    Subclasses set `optimizers` (name -> optimiser; schedulers go in `schedulers`) and implement
    `step()`, which must increment `step_count` and may call `record_stats`.
    """

    TEACHER: ClassVar[type[OfflineTeacher]] = OfflineTeacher
    STAT_NAMES: ClassVar[tuple[str, ...]] = ()

    def __init__(self, dataset: OfflineDataset, cfg: OfflineRLConfig,
                 reward_scale: float = 1.0) -> None:
        self.cfg = cfg
        self.device = torch.device(cfg.device)
        normaliser = dataset.state_normaliser()
        init_gen = torch.Generator().manual_seed(cfg.seed)
        self.teacher = self.TEACHER(dataset.obs_dim, dataset.act_dim, cfg, normaliser,
                                    init_gen).to(self.device)
        self.teacher.provenance = {"dataset_hash": dataset.content_hash,
                                   "dataset_name": dataset.metadata.name,
                                   "env_id": dataset.metadata.env_id}
        self.target = copy.deepcopy(self.teacher).requires_grad_(False)
        self.table = transition_table(dataset, normaliser, self.device, reward_scale)
        self.split = (dataset.obs_dim, dataset.act_dim, 1, dataset.obs_dim, 1)
        self.generator = torch.Generator(device=self.device).manual_seed(cfg.seed + 1)
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict[str, torch.optim.lr_scheduler.LRScheduler] = {}
        self.step_count = 0
        self.stat_sums = torch.zeros(len(self.STAT_NAMES), device=self.device)
        self.stat_count = 0

    def adam(self, module: nn.Module, lr: float) -> torch.optim.Adam:
        """Adam with torch's fused kernel (several times faster per step than foreach on CPU)."""
        return torch.optim.Adam(module.parameters(), lr=lr, fused=True)

    def sample(self) -> tuple[torch.Tensor, ...]:
        """A batch (s, a, r, s', 1 - done), each (B, dim), drawn uniformly with replacement."""
        idx = torch.randint(len(self.table), (self.cfg.batch_size,), generator=self.generator,
                            device=self.device)
        return self.table.index_select(0, idx).split(self.split, 1)

    def step(self) -> None:
        raise NotImplementedError

    def record_stats(self, *values: torch.Tensor) -> None:
        with torch.no_grad():
            self.stat_sums += torch.stack([v.detach().float() for v in values])
        self.stat_count += 1

    def pop_stats(self) -> dict[str, float]:
        """Means of the recorded losses since the last call."""
        values = (self.stat_sums / max(self.stat_count, 1)).tolist()
        self.stat_sums.zero_()
        self.stat_count = 0
        return dict(zip(self.STAT_NAMES, values))

    def check_finite(self, stats: Mapping[str, float] | None = None) -> None:
        """Raise `TeacherDivergedError` if a loss statistic in `stats` or a network weight is not finite."""
        bad = [name for name, value in (stats or {}).items() if not math.isfinite(value)]
        if not bad:
            with torch.no_grad():
                bad = [f"weights {name}" for name, p in self.teacher.named_parameters()
                       if not torch.isfinite(p).all()]
        if not bad:
            return
        cfg = self.cfg
        rates = [f for f in fields(cfg) if f.name.endswith("_lr")]
        current = ", ".join(f"{f.name}={getattr(cfg, f.name):g}" for f in rates)
        defaults = ", ".join(f"{f.name}={f.default:g}" for f in rates)
        raise TeacherDivergedError(
            f"{cfg.ALGORITHM} teacher training on {self.teacher.provenance['dataset_name']!r} "
            f"diverged by step {self.step_count} (not finite: {', '.join(bad[:3])}"
            f"{', ...' if len(bad) > 3 else ''}). The likely cause is a learning "
            f"rate too high for this data ({current}): lower it (defaults {defaults}), or look for "
            "extreme rewards or states in the dataset. Nothing of this run was cached."
        )

    def state_dict(self) -> dict:
        """Everything needed to resume bit for bit: networks, optimisers, generator, step, log."""
        return {
            "teacher": self.teacher.state_dict(),
            "target": self.target.state_dict(),
            "optimizers": {k: opt.state_dict() for k, opt in self.optimizers.items()},
            "schedulers": {k: s.state_dict() for k, s in self.schedulers.items()},
            "generator": self.generator.get_state(),
            "step": self.step_count,
            "history": list(self.teacher.history),
        }

    def load_state_dict(self, state: dict) -> None:
        self.teacher.load_state_dict(state["teacher"])
        self.target.load_state_dict(state["target"])
        for k, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][k])
        for k, sched in self.schedulers.items():
            sched.load_state_dict(state["schedulers"][k])
        self.generator.set_state(state["generator"])
        self.step_count = int(state["step"])
        self.teacher.history = list(state["history"])
