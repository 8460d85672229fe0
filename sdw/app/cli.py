"""`sdw-run` (also `python -m sdw`): the distill-then-evaluate Hydra app over `conf/run.yaml`."""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from sdw.app.plan import describe_plan, plan
from sdw.app.record import RunLocked, StaleRun
from sdw.app.run import check_run_settings, run
from sdw.app.signals import Interrupted
from sdw.config import config_dir
from sdw.hydra_app import config_dirs, launch, reported, split_argv, task
from sdw.locks import describe

log = logging.getLogger("sdw.run")


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="run")
@task
def _run_app(cfg: DictConfig) -> float | None:
    hydra_cfg = HydraConfig.get()
    run_dir = hydra_cfg.runtime.output_dir
    if os.environ.get("TQDM_DISABLE"):
        cfg.progress = False
    try:
        evaluation = run(cfg, Path(run_dir))
    except Interrupted as e:
        where = f" after outer step {e.step}" if e.step is not None else ""
        print(f"interrupted by {signal.Signals(e.signum).name}{where}; the checkpoint is saved in "
              f"{run_dir}: run the same command again to resume.", file=sys.stderr, flush=True)
        sys.exit(e.exit_code)
    except Exception as e:
        if hydra_cfg.mode != RunMode.MULTIRUN:
            raise
        if isinstance(e, RunLocked):
            log.warning("job %s skipped: it is running in %s", run_dir, describe(e.holder))
        elif isinstance(e, StaleRun):
            log.error("job %s is stale: %s", run_dir, e)
        else:
            log.error("job %s failed (%s: %s); the other jobs go on, status.json has the error",
                      run_dir, type(e).__name__, e)
        return None
    return evaluation["last_k"]["normalised_mean"]


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if "--dry-run" in args:
        with reported():
            print(dry_run([a for a in args if a != "--dry-run"]))
        return
    launch("run", _run_app, argv, validate=_before_launch)


def _before_launch(cfg: DictConfig, multirun: bool) -> None:
    """The run's own checks; for jobs run side by side, no progress bars (they would draw over
    each other on one line): their log lines (every evaluation, every reference student, the
    teacher's losses) say how far they are. Set here, before the launcher starts the jobs'
    processes, since tqdm reads TQDM_DISABLE when it is imported."""
    check_run_settings(cfg)
    if multirun and "BasicLauncher" not in str(OmegaConf.select(cfg, "hydra.launcher._target_")):
        os.environ["TQDM_DISABLE"] = "1"


def dry_run(args: Sequence[str]) -> str:
    """The plan of `sdw-run ARGS` (sdw.app.plan), checked exactly as the run checks it."""
    overrides, flags = split_argv(args)
    names = [v for f, v in zip(flags, flags[1:]) if f in ("-cn", "--config-name")]
    multirun = bool({"-m", "--multirun"} & set(flags))
    return describe_plan(plan(names[-1] if names else "run", overrides, config_dirs(flags),
                              multirun))
