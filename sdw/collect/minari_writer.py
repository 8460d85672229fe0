"""Writing collected episodes as a local Minari dataset, atomically (with reference scores).

Minari writes a dataset in place, metadata first; a crash halfway leaves a folder that looks
present and cannot be read. Here each dataset is written into a staging folder under
`$MINARI_DATASETS_PATH/.sdw-staging/`, read back through the data layer and checked, marked
complete (`sdw_build.json`, which the data layer requires of local datasets), and only then
swapped with the previous one in a single rename (Linux `renameat2(RENAME_EXCHANGE)`). A kill at
any moment leaves the previous complete dataset or the new one in place; staging folders of
dead processes are removed by the next write.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from sdw.atomic import atomic_write
from sdw.collect.rollout import Episode
from sdw.data.minari_source import BUILD_RECORD, MinariSource, minari_root

STAGING = ".sdw-staging"
"""Folder of `$MINARI_DATASETS_PATH` holding datasets being written (one subfolder per write)."""
NAMESPACE_METADATA = "namespace_metadata.json"


@contextlib.contextmanager
def _minari_root(root: Path) -> Iterator[None]:
    """Point Minari (and the data layer) at `root` for the duration of the block."""
    old = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(root)
    try:
        yield
    finally:
        if old is None:
            del os.environ["MINARI_DATASETS_PATH"]
        else:
            os.environ["MINARI_DATASETS_PATH"] = old


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_dead_staging(root: Path) -> None:
    """Delete staging folders left by processes that no longer run (killed writes)."""
    for d in (root / STAGING).glob("*-*"):
        pid = d.name.split("-", 1)[0]
        if pid.isdigit() and not _pid_alive(int(pid)):
            shutil.rmtree(d, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths in one atomic step; False where the OS cannot (then not swapped)."""
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(err, f"cannot swap {a} and {b}: {os.strerror(err)}")


def swap_in(staged: Path, target: Path) -> None:
    """Put the complete folder `staged` at `target`; the previous `target` is deleted."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        os.rename(staged, target)
        return
    if _exchange(staged, target):
        shutil.rmtree(staged)  # now the previous dataset
        return
    old = target.with_name(f".{target.name}.old-{os.getpid()}")  # no atomic swap on this system
    os.rename(target, old)
    os.rename(staged, target)
    shutil.rmtree(old)


def _ensure_namespaces(root: Path, dataset_id: str) -> None:
    """The namespace metadata Minari keeps beside datasets (`{}`), where it is missing."""
    parts = dataset_id.split("/")[:-1]
    for depth in range(1, len(parts) + 1):
        path = root.joinpath(*parts[:depth], NAMESPACE_METADATA)
        if not path.exists():
            atomic_write(path, lambda f: f.write("{}"), "w")


def _create(dataset_id: str, env_id: str, episodes: list[Episode], ref_min: float,
            ref_max: float, ref_episodes: int, description: str) -> None:
    import minari
    from minari.data_collector.episode_buffer import EpisodeBuffer

    buffers = [
        EpisodeBuffer(
            id=i, seed=ep.seed,
            observations=np.asarray(ep.observations),
            actions=np.asarray(ep.actions, np.float32),
            rewards=np.asarray(ep.rewards),
            terminations=np.r_[np.zeros(len(ep) - 1, bool), ep.terminated],
            truncations=np.r_[np.zeros(len(ep) - 1, bool), ep.truncated],
            infos={},
        )
        for i, ep in enumerate(episodes)
    ]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is set to None", category=UserWarning)
        minari.create_dataset_from_buffers(
            dataset_id, buffers, env=env_id, eval_env=env_id, author="sdw-collect",
            algorithm_name="sdw-collect (stable-baselines3 SAC)", ref_min_score=ref_min,
            ref_max_score=ref_max, num_episodes_average_score=ref_episodes,
            description=description, data_format="hdf5",
        )


def _verify(dataset_id: str, env_id: str, episodes: list[Episode]) -> str:
    """Read the staged dataset back through the data layer; its content hash if it holds
    exactly the collected episodes."""
    ds = MinariSource(dataset_id, env_id=env_id).load()
    lengths = np.diff(np.r_[0, ds.episode_ends])
    expected = np.array([len(e) for e in episodes])
    if not np.array_equal(lengths, expected) or not np.allclose(
            ds.episode_returns(), [e.total_return for e in episodes], rtol=1e-5, atol=1e-3):
        raise RuntimeError(f"dataset {dataset_id} read back from its staging folder does not "
                           "hold the collected episodes; nothing was replaced.")
    return ds.content_hash


def write_minari_dataset(dataset_id: str, env_id: str, episodes: list[Episode],
                         ref_min: float, ref_max: float, ref_episodes: int,
                         description: str, provenance: dict | None = None) -> dict:
    """Replace `dataset_id` in `$MINARI_DATASETS_PATH` with `episodes` (hdf5), atomically.

    Returns the build record written beside the data (content hash, transitions, episodes,
    mean return and `provenance`).
    """
    root = minari_root()
    (root / STAGING).mkdir(parents=True, exist_ok=True)
    remove_dead_staging(root)
    staging = Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=root / STAGING))
    staged = staging / dataset_id
    record = {"dataset_id": dataset_id, "transitions": sum(len(e) for e in episodes),
              "episodes": len(episodes),
              "mean_return": float(np.mean([e.total_return for e in episodes])),
              **(provenance or {})}

    def write_record() -> None:
        atomic_write(staged / BUILD_RECORD,
                     lambda f: f.write(json.dumps(record, indent=1, sort_keys=True) + "\n"), "w")

    try:
        with _minari_root(staging):
            _create(dataset_id, env_id, episodes, ref_min, ref_max, ref_episodes, description)
            write_record()  # the staged copy is invisible until swapped in
            record["content_hash"] = _verify(dataset_id, env_id, episodes)
        write_record()
        _ensure_namespaces(root, dataset_id)
        swap_in(staged, root / dataset_id)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return record
