"""Dataset names -> sources: the configs in `conf/dataset/`, D4RL file paths and Minari ids."""

from __future__ import annotations

import difflib
from pathlib import Path

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from sdw.config import config_dir
from sdw.data.dataset import OfflineDataset
from sdw.data.errors import DatasetError
from sdw.data.source import DatasetConfig, DatasetSource


def dataset_config_dir() -> Path:
    return config_dir() / "dataset"


def dataset_names() -> list[str]:
    """Names of every configured dataset (the files of `conf/dataset/`)."""
    return sorted(p.stem for p in dataset_config_dir().glob("*.yaml"))


def source_from_config(cfg: DictConfig | dict) -> DatasetSource:
    return instantiate(cfg).source()


def resolve_source(name: str) -> DatasetSource:
    """A configured name, a path to a D4RL-layout .hdf5 file, or a Minari dataset id."""
    config = dataset_config_dir() / f"{name}.yaml"
    if config.exists():
        return source_from_config(OmegaConf.load(config))
    if name.endswith((".hdf5", ".h5")) or ("/" in name and not Path(name).exists()):
        return DatasetConfig(path=name).source()
    close = difflib.get_close_matches(name, dataset_names(), n=5, cutoff=0.5)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise DatasetError(
        f"unknown dataset {name!r}.{hint} Known names are the files of {dataset_config_dir()} "
        "(`sdw-data list`); a path to a .hdf5 file or a Minari id (namespace/name-v0) works too."
    )


def load_dataset(name_or_cfg: str | DictConfig | dict) -> OfflineDataset:
    if isinstance(name_or_cfg, str):
        return resolve_source(name_or_cfg).load()
    return source_from_config(name_or_cfg).load()
