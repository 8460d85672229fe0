"""The one shape of every dataset config (`conf/dataset/`): a name, or a path to your own data."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sdw.data.d4rl import D4RLSource
from sdw.data.dataset import OfflineDataset
from sdw.data.minari_source import DEFAULT_DOWNLOAD_TIMEOUT_S, LOCAL_NAMESPACE, MinariSource

DatasetSource = D4RLSource | MinariSource


@dataclass(frozen=True)
class DatasetConfig:
    """Which dataset to distil: `name` (D4RL name or Minari id), or `path`, which wins when given.

    `path` is a D4RL-layout .hdf5 file or a Minari dataset id, so `dataset.path=FILE.hdf5` on
    the command line distils your own data without a config file. The evaluation env comes from
    `env_id`, else from the D4RL (file) name or the Minari dataset's metadata. With `build`, a
    local dataset (`sdw/<env>/<level>-v0`) that is absent is built from the shipped policy zoo.
    """

    name: str | None = None
    path: str | None = None
    env_id: str | None = None
    download: bool = False
    build: bool = True
    download_timeout: float = DEFAULT_DOWNLOAD_TIMEOUT_S

    def source(self) -> DatasetSource:
        target = self.path or self.name
        if target is None:
            from sdw.data.errors import DatasetError

            raise DatasetError("the dataset config names no dataset: set dataset=<config name> "
                               "(sdw-data list), or dataset.path=<file.hdf5 or Minari id>.")
        if self.path is not None and (target.endswith((".hdf5", ".h5")) or Path(target).exists()):
            return D4RLSource(path=target, env_id=self.env_id)
        if "/" in target:
            source = "local" if target.startswith(LOCAL_NAMESPACE) else "minari"
            return MinariSource(dataset_id=target, download=self.download, env_id=self.env_id,
                                source=source, download_timeout=self.download_timeout)
        return D4RLSource(name=target, env_id=self.env_id)

    def load(self) -> OfflineDataset:
        """The dataset, which must be present (`sdw.collect.rebuild.load_or_build` builds an
        absent local one first when `build` is set)."""
        return self.source().load()
