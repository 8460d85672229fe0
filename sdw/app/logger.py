"""Metrics go to the run directory always, and to Weights & Biases when asked (`logger=wandb`)."""

from __future__ import annotations

import hashlib
import logging
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from sdw.app.record import METRICS, MetricsLog
from sdw.errors import UserError

log = logging.getLogger(__name__)
WANDB_MODES = ("disabled", "offline", "online")


@dataclass(frozen=True)
class LoggerConfig:
    """Where metrics are mirrored besides metrics.jsonl (`conf/logger/`)."""

    wandb: bool = False
    mode: str = "disabled"
    project: str = "sdw"
    entity: str | None = None
    group: str | None = None
    job_type: str | None = "distill"
    tags: tuple[str, ...] = ()
    init_timeout: float = 10.0

    def __post_init__(self) -> None:
        if self.mode not in WANDB_MODES:
            raise UserError(f"logger.mode={self.mode!r} is not one of {WANDB_MODES}.")


def wandb_run_id(run_dir: Path) -> str:
    """One wandb run per run directory: a relaunched job continues its own wandb run."""
    return hashlib.sha256(str(Path(run_dir).resolve()).encode()).hexdigest()[:16]


class RunLogger:
    """Appends rows to metrics.jsonl and mirrors them to wandb; `finish()` closes the mirror."""

    def __init__(self, cfg: LoggerConfig, run_dir: Path, name: str, config: dict,
                 tags: tuple[str, ...] = ()) -> None:
        self.metrics = MetricsLog(Path(run_dir) / METRICS)
        self.wandb = None
        if cfg.wandb and cfg.mode != "disabled":
            self.wandb = _start_wandb(cfg, Path(run_dir), name, config, tags)

    def log(self, row: dict) -> None:
        self.metrics.append(row)
        if self.wandb is not None:
            prefix = row.get("type", "metric")
            self.wandb.log({f"{prefix}/{k}": v for k, v in row.items()
                            if k not in ("type", "step") and isinstance(v, (int, float))},
                           step=int(row.get("step", 0)))

    def summary(self, values: dict) -> None:
        if self.wandb is not None:
            self.wandb.summary.update({k: v for k, v in values.items() if v is not None})

    def files(self, artefact: Path, images: dict[str, Path]) -> None:
        """The synthetic set as a wandb artifact (type `synthetic-set`) and PNGs as images."""
        if self.wandb is None:
            return
        import wandb

        artifact = wandb.Artifact(f"synthetic-{self.wandb.id}", type="synthetic-set")
        artifact.add_file(str(artefact))
        self.wandb.log_artifact(artifact)
        self.wandb.log({key: wandb.Image(str(path)) for key, path in images.items()
                        if path.exists()})

    def curve_png(self, path: Path, references: dict) -> Path:
        """The periodic evaluations' normalised score against outer step, with the references
        (random subset, whole-data BC, teacher) as horizontal lines, as a PNG at `path`."""
        if self.wandb is None:
            return path
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        evals = [r for r in self.metrics.rows() if r.get("type") == "eval"]
        fig, ax = plt.subplots(figsize=(5, 3.2))
        ax.plot([r["step"] for r in evals], [r.get("normalised_mean") for r in evals], "o-",
                label="synthetic set")
        for (name, ref), style in zip(references.items(), (":", "--", "-.")):
            if ref and ref.get("normalised_mean") is not None:
                ax.axhline(ref["normalised_mean"], linestyle=style, color="grey",
                           label=name.replace("_", " "))
        ax.set(xlabel="outer step", ylabel="normalised score")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        return path

    def finish(self, failed: bool = False) -> None:
        if self.wandb is not None:
            self.wandb.finish(exit_code=1 if failed else 0)
            self.wandb = None


def _check_reachable(url: str, timeout: float) -> None:
    """Fail within `timeout` seconds when the wandb server does not answer (wandb's own retries
    take much longer on a network that accepts connections and never answers)."""
    try:
        urllib.request.urlopen(url, timeout=timeout).close()
    except urllib.error.HTTPError:
        return  # it answered
    except (OSError, ValueError) as e:
        raise UserError(
            f"the wandb server {url} did not answer within logger.init_timeout={timeout} s "
            f"({e}). Check the network (or WANDB_BASE_URL), or log offline (logger.mode=offline, "
            "sync later with `wandb sync`) or locally only (logger=local).") from None


def _start_wandb(cfg: LoggerConfig, run_dir: Path, name: str, config: dict,
                 tags: tuple[str, ...]):
    import wandb

    if cfg.mode == "online":
        _check_reachable(os.environ.get("WANDB_BASE_URL") or wandb.Settings().base_url,
                         cfg.init_timeout)
    try:
        return wandb.init(project=cfg.project, entity=cfg.entity, group=cfg.group, name=name,
                          job_type=cfg.job_type, tags=[*cfg.tags, *tags],
                          id=wandb_run_id(run_dir), resume="allow", dir=str(run_dir),
                          mode=cfg.mode, config=config, reinit="create_new",
                          settings=wandb.Settings(
                              init_timeout=cfg.init_timeout, login_timeout=cfg.init_timeout,
                              x_graphql_timeout_seconds=cfg.init_timeout, x_graphql_retry_max=1))
    except Exception as e:  # wandb raises its own types for network and key problems
        raise UserError(
            f"wandb did not start within logger.init_timeout={cfg.init_timeout} s in mode "
            f"{cfg.mode!r} ({type(e).__name__}: {e}). Check the network and WANDB_API_KEY, or "
            "log offline (logger.mode=offline, sync later with `wandb sync`) or locally only "
            "(logger=local).") from e
