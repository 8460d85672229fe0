"""Hydra's `packed` launcher (conf/hydra/launcher/packed.yaml): the plugin class only; the work
is sdw.app.launcher.launch_packed."""

from __future__ import annotations

from collections.abc import Sequence

from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from sdw.app.launcher import launch_packed


class PackedLauncher(Launcher):
    """Runs each group of seeds of a sweep cell as one batched distillation."""

    def __init__(self, size: int = 5, executor: str | None = None,
                 submitit: dict | None = None) -> None:
        if not isinstance(size, int) or size < 1:
            raise ValueError(f"hydra.launcher.size={size!r}: members per process, an integer >= 1")
        if executor not in (None, "local", "slurm"):
            raise ValueError(f"hydra.launcher.executor={executor!r}: null (this process), local "
                             "or slurm (one submitit job per pack)")
        self.size, self.executor, self.submitit = size, executor, submitit
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction,
              config: DictConfig) -> None:
        self.config, self.hydra_context = config, hydra_context

    def launch(self, job_overrides: Sequence[Sequence[str]],
               initial_job_idx: int) -> Sequence[JobReturn]:
        assert self.config is not None and self.hydra_context is not None
        return launch_packed(self.config, self.hydra_context, job_overrides, initial_job_idx,
                             self.size, self.executor, self.submitit)
