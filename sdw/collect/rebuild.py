"""Build one absent local dataset from the shipped zoo, as `sdw-collect mode=rebuild` would, once
however many jobs ask for it at the same time."""

from __future__ import annotations

import logging
import subprocess
import sys

from sdw.data.dataset import OfflineDataset
from sdw.data.errors import DatasetError
from sdw.data.minari_source import MinariSource, minari_root
from sdw.data.source import DatasetConfig
from sdw.locks import exclusive, lock_for

log = logging.getLogger(__name__)


def rebuild_local(dataset_id: str) -> None:
    """Run `sdw-collect mode=rebuild env=<env> build.levels=[<level>]` for `sdw/<env>/<level>-v0`.

    A separate process, so it runs from inside another Hydra app; each level is seeded on its
    own, so the data are the same bytes as those of a full rebuild.
    """
    parts = dataset_id.split("/")
    if len(parts) != 3 or not parts[2].endswith("-v0"):
        raise DatasetError(f"{dataset_id!r} is not a local dataset id (sdw/<env>/<level>-v0).")
    env, level = parts[1], parts[2].removesuffix("-v0")
    command = [sys.executable, "-c", "from sdw.collect.cli import main; main()", "mode=rebuild",
               f"env={env}", f"build.levels=[{level}]", f"run_dir=outputs/collect/{env}"]
    log.info("%s is not built yet: building it from the shipped zoo (sdw-collect mode=rebuild "
             "env=%s build.levels=[%s], a few minutes)", dataset_id, env, level)
    if subprocess.run(command).returncode != 0:
        raise DatasetError(f"building {dataset_id!r} from the shipped zoo failed (output above); "
                           f"run `sdw-collect mode=rebuild env={env}` to see why.")


def load_or_build(config: DatasetConfig) -> OfflineDataset:
    """`config.load()`, building an absent local dataset first when `config.build` is set.

    The build holds a lock in the Minari root (`.locks/sdw__<env>__<level>-v0.lock`): a second
    job asking for the same dataset meanwhile waits for it and then loads what it built.
    """
    source = config.source()
    if config.build and isinstance(source, MinariSource) and source.source == "local" \
            and not source.is_present():
        lock = lock_for(minari_root() / source.dataset_id.replace("/", "__"))
        with exclusive(lock, what=f"the dataset {source.dataset_id}"):
            if not source.is_present():
                rebuild_local(source.dataset_id)
    return source.load()
