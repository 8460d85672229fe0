"""`sdw-teacher`: train a teacher on a dataset, or find it shipped / cached (Hydra app)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import hydra
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from sdw.atomic import unwritable_reason
from sdw.collect.rebuild import load_or_build
from sdw.config import config_dir
from sdw.errors import UserError
from sdw.hydra_app import launch, task
from sdw.teacher.build import build_teacher

log = logging.getLogger("sdw.teacher")


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="train_teacher")
@task
def _teacher_app(cfg: DictConfig) -> None:
    torch.set_num_threads(cfg.threads)
    out = Path(cfg.out) if cfg.out else None
    reason = unwritable_reason(out) if out is not None else None
    if reason:
        raise UserError(f"out={out} cannot be written ({reason}); choose a writable out=PATH.")
    dataset = load_or_build(instantiate(cfg.dataset))
    teacher = build_teacher(instantiate(cfg.teacher), dataset, Path(cfg.paths.cache_dir) / "teachers")
    if out is not None:
        teacher.save(out)
        log.info("teacher saved to %s", out)
    evaluation = getattr(teacher, "evaluation", None)
    print(f"{type(teacher).__name__} for {dataset.metadata.name} ({dataset.content_hash}): "
          f"{evaluation['summary'] if evaluation else 'not evaluated'}")


def main(argv: Sequence[str] | None = None) -> None:
    launch("train_teacher", _teacher_app, argv)
