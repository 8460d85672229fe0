"""Minari datasets (hosted ones and the project's own local ones) as `OfflineDataset`s."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

from sdw.data.dataset import DatasetMetadata, OfflineDataset
from sdw.data.errors import DatasetError
from sdw.data.scores import ReferenceScores
from sdw.data.validate import validate_arrays

NETWORK_CHECK_TIMEOUT_S = 3.0
LOCAL_NAMESPACE = "sdw/"
"""Dataset ids the project's collector writes (`sdw/<env>/<level>-v0`); no remote holds them."""


def minari_root() -> Path:
    """Minari's local dataset directory: `$MINARI_DATASETS_PATH`, else `~/.minari/datasets`."""
    return Path(os.environ.get("MINARI_DATASETS_PATH", "~/.minari/datasets")).expanduser()


def minari_data_path(dataset_id: str) -> Path:
    return minari_root() / dataset_id / "data"


def is_local(dataset_id: str) -> bool:
    return (minari_data_path(dataset_id) / "metadata.json").exists()


@dataclass(frozen=True)
class MinariSource:
    """A Minari dataset in the local Minari directory; downloaded only when `download` is set.

    `source` labels where it came from: `minari` for hosted datasets, `local` for the ones the
    project's collector writes (`sdw/<env>/<level>-v0`).
    """

    dataset_id: str
    download: bool = False
    env_id: str | None = None
    source: str = "minari"

    @property
    def dataset_name(self) -> str:
        return self.dataset_id

    def location(self) -> Path:
        return minari_data_path(self.dataset_id)

    def is_present(self) -> bool:
        return is_local(self.dataset_id)

    def load(self) -> OfflineDataset:
        import minari

        dataset_id = self.dataset_id
        if not self.is_present():
            if self.source == "local" or dataset_id.startswith(LOCAL_NAMESPACE):
                env = dataset_id.split("/")[1] if dataset_id.count("/") == 2 else "<env>"
                raise DatasetError(
                    f"local dataset {dataset_id!r} is not in {self.location()}: rebuild it offline "
                    f"with `sdw-collect mode=rebuild env={env}` (docs/datasets.md), or point "
                    "$MINARI_DATASETS_PATH at the directory that holds it."
                )
            if not self.download:
                raise DatasetError(
                    f"Minari dataset {dataset_id!r} is not in {self.location()}. "
                    f"Set `download: true` to fetch it, or run `minari download {dataset_id}` on a "
                    f"machine with network and copy the folder {dataset_id}/ into {minari_root()} "
                    "(or point $MINARI_DATASETS_PATH at it)."
                )
            _download(dataset_id)
        try:
            ds = minari.MinariDataset(str(self.location()))
        except Exception as e:
            raise DatasetError(
                f"Minari dataset {dataset_id!r} at {self.location()} cannot be read ({e}); "
                "delete the folder and fetch or rebuild it."
            ) from e
        arrays = _episodes_to_arrays(ds)
        env_id = self.env_id or ds.spec.env_spec.id
        validate_arrays(arrays, origin=f"Minari dataset {dataset_id!r} ({self.location()})",
                        env_id=env_id)
        meta = ds.storage.metadata
        ref_min, ref_max = meta.get("ref_min_score"), meta.get("ref_max_score")
        if ref_min is not None and ref_max is not None:
            scores, reason = ReferenceScores(float(ref_min), float(ref_max), self.source), ""
        else:
            scores, reason = None, f"Minari dataset {dataset_id!r} has no ref_min_score/ref_max_score"
        metadata = DatasetMetadata(
            name=dataset_id, source=self.source, env_id=env_id, reference_scores=scores,
            missing_scores_reason=reason,
            extra={"path": str(self.location()),
                   "description": meta.get("description") or "",
                   "algorithm_name": meta.get("algorithm_name") or ""},
        )
        return OfflineDataset(metadata=metadata, **arrays)


def _episodes_to_arrays(ds) -> dict[str, np.ndarray]:
    obs, nxt, act, rew, term, trunc = [], [], [], [], [], []
    for ep in ds.iterate_episodes():
        if not isinstance(ep.observations, np.ndarray):
            raise DatasetError(
                f"Minari dataset {ds.spec.dataset_id!r} has structured (dict/tuple) observations; "
                "only flat Box observations are supported."
            )
        obs.append(ep.observations[:-1])
        nxt.append(ep.observations[1:])
        act.append(ep.actions)
        rew.append(ep.rewards)
        term.append(ep.terminations)
        trunc.append(ep.truncations & ~ep.terminations)
    return {
        "observations": np.concatenate(obs).astype(np.float32),
        "actions": np.concatenate(act).astype(np.float32),
        "rewards": np.concatenate(rew).astype(np.float32),
        "next_observations": np.concatenate(nxt).astype(np.float32),
        "terminals": np.concatenate(term).astype(bool),
        "timeouts": np.concatenate(trunc).astype(bool),
    }


def _download(dataset_id: str) -> None:
    """Fetch from Minari's remote, failing within seconds (not after retries) without network."""
    import minari

    how = (f"Fetch it on a machine with network (`minari download {dataset_id}`) and copy the "
           f"folder {dataset_id}/ into {minari_root()}.")
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on"):
        raise DatasetError(f"cannot download Minari dataset {dataset_id!r}: HF_HUB_OFFLINE is set. {how}")
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname
    try:
        socket.create_connection((host, 443), timeout=NETWORK_CHECK_TIMEOUT_S).close()
    except OSError as e:
        raise DatasetError(
            f"cannot download Minari dataset {dataset_id!r}: {host} is unreachable ({e}). {how}"
        ) from e
    try:
        minari.download_dataset(dataset_id)
    except Exception as e:
        raise DatasetError(f"downloading Minari dataset {dataset_id!r} failed: {e}. {how}") from e
