"""`sdw-run` (also `python -m sdw`): the distill-then-evaluate Hydra app over `conf/run.yaml`."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from sdw.app.hydra_app import launch, task
from sdw.app.run import run
from sdw.config import config_dir

log = logging.getLogger("sdw.run")


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="run")
@task
def _run_app(cfg: DictConfig) -> float | None:
    hydra_cfg = HydraConfig.get()
    try:
        evaluation = run(cfg, Path(hydra_cfg.runtime.output_dir))
    except Exception as e:
        if hydra_cfg.mode != RunMode.MULTIRUN:
            raise
        log.error("job %s failed (%s: %s); the other jobs go on, status.json has the error",
                  hydra_cfg.runtime.output_dir, type(e).__name__, e)
        return None
    return evaluation["last_k"]["normalised_mean"]


def main(argv: Sequence[str] | None = None) -> None:
    launch("run", _run_app, argv)
