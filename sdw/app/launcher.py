"""The `packed` Hydra launcher's work (the plugin class is hydra_plugins/sdw_packed_launcher,
where Hydra requires it): a sweep's jobs that differ only in their seed, one process each.

Hydra prepares every member as it prepares any job (its config, its run directory, its .hydra
files); then the members of a group run as one batch (`sdw.app.packed.run_packed`) in this
process, groups one after the other, or each group as one submitit job (one Slurm job runs a
cell's seeds). The pack's log lines go to every member's run.log (they name the run directory
where it matters).
"""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import (JobReturn, JobStatus, configure_log, filter_overrides, run_job,
                              setup_globals)
from hydra.types import HydraContext
from omegaconf import DictConfig, open_dict

from sdw.app.packed import PACK_KEY, run_packed
from sdw.app.signals import Interrupted

log = logging.getLogger("sdw.run")


def groups(job_overrides: Sequence[Sequence[str]], size: int) -> list[list[int]]:
    """Indices of the jobs packed together: same overrides but the seed, in sweep order, at
    most `size` per group."""
    by_rest: dict[tuple[str, ...], list[int]] = {}
    for i, overrides in enumerate(job_overrides):
        rest = tuple(o for o in overrides if o.split("=", 1)[0].lstrip("+~") != PACK_KEY)
        by_rest.setdefault(rest, []).append(i)
    return [ids[j: j + size] for ids in by_rest.values() for j in range(0, len(ids), size)]


def launch_packed(config: DictConfig, hydra_context: HydraContext,
                  job_overrides: Sequence[Sequence[str]], initial_job_idx: int, size: int,
                  executor: str | None = None, submitit: Mapping[str, Any] | None = None
                  ) -> list[JobReturn]:
    """Prepare every job as Hydra does, then run each group of seeds as one batch: one after the
    other in this process, or each as one submitit job (`executor` local or slurm, with the
    submitit parameters `submitit`)."""
    setup_globals()
    configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    sweep_dir = Path(str(config.hydra.sweep.dir))
    sweep_dir.mkdir(parents=True, exist_ok=True)
    packs = groups(job_overrides, size)
    log.info("Launching %d jobs packed into %d processes of up to %d seeds%s",
             len(job_overrides), len(packs), size, f" ({executor})" if executor else "")
    returns: dict[int, JobReturn] = {}
    prepared = []
    for pack in packs:
        members: list[tuple[DictConfig, Path]] = []

        def collect(cfg: DictConfig) -> None:
            members.append((cfg, Path(HydraConfig.get().runtime.output_dir)))

        for i in pack:
            idx = initial_job_idx + i
            log.info("\t#%d : %s", idx, " ".join(filter_overrides(job_overrides[i])))
            sweep_config = hydra_context.config_loader.load_sweep_config(
                config, list(job_overrides[i]))
            with open_dict(sweep_config):
                sweep_config.hydra.job.id = idx
                sweep_config.hydra.job.num = idx
            returns[i] = run_job(hydra_context=hydra_context, task_function=collect,
                                 config=sweep_config, job_dir_key="hydra.sweep.dir",
                                 job_subdir_key="hydra.sweep.subdir")
        prepared.append((pack, members))
    configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    if executor is None:
        outcomes = [(pack, _run(members)) for pack, members in prepared]
    else:
        import submitit as submitit_lib

        pool = submitit_lib.AutoExecutor(folder=sweep_dir / ".submitit", cluster=executor)
        pool.update_parameters(**dict(submitit or {}))
        jobs = [(pack, pool.submit(_run, members)) for pack, members in prepared]
        outcomes = [(pack, job.result()) for pack, job in jobs]
    for pack, scores in outcomes:
        for i, score in zip(pack, scores):
            returns[i].return_value = score
            returns[i].status = JobStatus.COMPLETED
    return [returns[i] for i in range(len(job_overrides))]


def _run(members: list[tuple[DictConfig, Path]]) -> list[float | None]:
    """The pack's scores (None for a member that failed or was skipped, as sdw-run's
    multirun jobs return), each member's run.log receiving the pack's log lines."""
    root = logging.getLogger()
    files = {Path(h.baseFilename).resolve() for h in root.handlers
             if isinstance(h, logging.FileHandler)}
    added = [logging.FileHandler(run_dir / "run.log") for _, run_dir in members
             if (run_dir / "run.log").resolve() not in files]
    for handler in added:
        handler.setFormatter(next((h.formatter for h in root.handlers if h.formatter), None))
        root.addHandler(handler)
    try:
        results = run_packed(members)
    except Interrupted as e:
        where = f" after outer step {e.step}" if e.step is not None else ""
        print(f"interrupted by {signal.Signals(e.signum).name}{where}; the checkpoints are saved "
              f"in {', '.join(str(d) for _, d in members)}: run the same command again to "
              "resume.", file=sys.stderr, flush=True)
        sys.exit(e.exit_code)
    except Exception as e:  # the whole pack: logged as sdw-run logs a failed multirun job
        log.error("packed jobs %s failed (%s: %s); status.json has the error",
                  ", ".join(str(d) for _, d in members), type(e).__name__, e)
        return [None] * len(members)
    finally:
        for handler in added:
            root.removeHandler(handler)
            handler.close()
    return [None if isinstance(result, BaseException)
            else result["last_k"]["normalised_mean"] for result in results]
