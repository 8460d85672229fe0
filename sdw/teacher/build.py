"""A teacher from its config group (`conf/teacher/`): the one call the app makes."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from sdw.data.dataset import OfflineDataset
from sdw.teacher.base import Teacher
from sdw.teacher.corl import load_corl_teacher
from sdw.teacher.offline_rl import OfflineRLConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CorlConfig:
    """A CORL checkpoint (e.g. the official OBD Cal-QL teachers) as the teacher."""

    path: str
    critic: str = "critic1"
    max_action: float = 1.0
    device: str = "cpu"
    trusted: bool = False


TeacherConfig = OfflineRLConfig | CorlConfig


def build_teacher(cfg: TeacherConfig, dataset: OfflineDataset,
                  cache_dir: str | Path | None) -> Teacher:
    """The teacher of `cfg` for `dataset`: loaded from a CORL checkpoint, or an offline-RL teacher
    found shipped or cached under `cache_dir` (keyed by the dataset's content hash), else trained."""
    if isinstance(cfg, CorlConfig):
        log.info("teacher: CORL checkpoint %s (%s)", cfg.path, cfg.critic)
        return load_corl_teacher(cfg.path, dataset, critic=cfg.critic, max_action=cfg.max_action,
                                 device=cfg.device, trusted=cfg.trusted)
    from sdw.teacher.train import train_teacher

    return train_teacher(dataset, cfg, cache_dir)
