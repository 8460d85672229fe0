"""Minari datasets (hosted ones and the project's own local ones) as `OfflineDataset`s."""

from __future__ import annotations

import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

from sdw.data.dataset import DatasetMetadata, OfflineDataset
from sdw.data.errors import DatasetError
from sdw.data.scores import ReferenceScores
from sdw.data.validate import validate_arrays

DEFAULT_DOWNLOAD_TIMEOUT_S = 10.0
LOCAL_NAMESPACE = "sdw/"
"""Dataset ids the project's collector writes (`sdw/<env>/<level>-v0`); no remote holds them."""
BUILD_RECORD = "sdw_build.json"
"""Written into a local dataset's folder by `sdw-collect` once the dataset is complete and
verified (sdw/collect/minari_writer.py); a local dataset without it is treated as absent."""


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
    project's collector writes (`sdw/<env>/<level>-v0`). `download_timeout` bounds, in seconds,
    how long a download waits for the host to connect or answer any one request.
    """

    dataset_id: str
    download: bool = False
    env_id: str | None = None
    source: str = "minari"
    download_timeout: float = DEFAULT_DOWNLOAD_TIMEOUT_S

    def __post_init__(self) -> None:
        if not self.download_timeout > 0:
            raise DatasetError(f"download_timeout must be a positive number of seconds, got "
                               f"{self.download_timeout!r} (dataset {self.dataset_id!r}).")

    @property
    def dataset_name(self) -> str:
        return self.dataset_id

    def location(self) -> Path:
        return minari_data_path(self.dataset_id)

    def is_present(self) -> bool:
        return is_local(self.dataset_id) and not self.is_incomplete()

    def is_incomplete(self) -> bool:
        """A local dataset's files without the record `sdw-collect` writes once it is complete
        (an interrupted or older `sdw-collect` wrote them)."""
        return ((self.source == "local" or self.dataset_id.startswith(LOCAL_NAMESPACE))
                and is_local(self.dataset_id)
                and not (minari_root() / self.dataset_id / BUILD_RECORD).exists())

    def load(self) -> OfflineDataset:
        import minari

        dataset_id = self.dataset_id
        if not self.is_present():
            if self.source == "local" or dataset_id.startswith(LOCAL_NAMESPACE):
                parts = dataset_id.split("/")
                env, level = (parts[1], parts[2].removesuffix("-v0")) if len(parts) == 3 \
                    else ("<env>", "<level>")
                rebuild = f"sdw-collect mode=rebuild env={env} build.levels=[{level}]"
                if self.is_incomplete():
                    raise DatasetError(
                        f"local dataset {dataset_id!r} in {self.location()} is incomplete (no "
                        f"{BUILD_RECORD}: an interrupted or older sdw-collect wrote it): rebuild "
                        f"it offline with `{rebuild}` (docs/datasets.md)."
                    )
                raise DatasetError(
                    f"local dataset {dataset_id!r} is not in {self.location()}: rebuild it offline "
                    f"with `{rebuild}` (docs/datasets.md), or point "
                    "$MINARI_DATASETS_PATH at the directory that holds it."
                )
            if not self.download:
                raise DatasetError(
                    f"Minari dataset {dataset_id!r} is not in {self.location()}. "
                    f"Set `download: true` to fetch it, or run `minari download {dataset_id}` on a "
                    f"machine with network and copy the folder {dataset_id}/ into {minari_root()} "
                    "(or point $MINARI_DATASETS_PATH at it)."
                )
            _download(dataset_id, self.download_timeout)
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


def _download(dataset_id: str, timeout: float) -> None:
    """Fetch from Minari's remote; a host that is offline, unreachable or silent fails in seconds."""
    import minari

    how = (f"Fetch it on a machine with network (`minari download {dataset_id}`) and copy the "
           f"folder {dataset_id}/ into {minari_root()}.")
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on"):
        raise DatasetError(f"cannot download Minari dataset {dataset_id!r}: HF_HUB_OFFLINE is set. {how}")
    problem = endpoint_problem(os.environ.get("HF_ENDPOINT", "https://huggingface.co"), timeout)
    if problem is not None:
        raise DatasetError(f"cannot download Minari dataset {dataset_id!r}: {problem}. {how}")
    start = time.perf_counter()
    try:
        with bounded_hub_requests(timeout):
            minari.download_dataset(dataset_id)
    except Exception as e:
        raise DatasetError(
            f"downloading Minari dataset {dataset_id!r} failed after "
            f"{time.perf_counter() - start:.0f} s: {type(e).__name__}: {e} (each request may wait "
            f"download_timeout = {timeout:g} s for an answer). {how}"
        ) from e


def endpoint_problem(endpoint: str, timeout: float) -> str | None:
    """Why the hub at `endpoint` cannot serve a download, found within about `timeout` seconds;
    None when it answers with any HTTP response."""
    url = urlparse(endpoint)
    host = url.netloc or endpoint
    request = urllib.request.Request(f"{endpoint.rstrip('/')}/api/datasets?limit=1", method="HEAD")
    try:
        urllib.request.urlopen(request, timeout=timeout).close()
    except urllib.error.HTTPError:
        return None  # an HTTP error status is an answer: the host is there
    except urllib.error.URLError as e:
        if isinstance(e.reason, TimeoutError):
            return f"{host} did not accept a connection within {timeout:g} s (download_timeout)"
        return f"{host} is unreachable ({e.reason})"
    except TimeoutError:
        return (f"{host} accepted the connection but sent no answer within {timeout:g} s "
                "(download_timeout): the network or a proxy swallows the request")
    except OSError as e:
        return f"{host} is unreachable ({e})"
    return None


@contextmanager
def bounded_hub_requests(timeout: float) -> Iterator[None]:
    """Every huggingface_hub request waits at most `timeout` seconds to connect, send or read
    (huggingface_hub leaves some without any timeout)."""
    from huggingface_hub import get_session

    def bound(request) -> None:
        current = request.extensions.get("timeout") or {}
        request.extensions["timeout"] = {
            phase: timeout if current.get(phase) is None else min(current[phase], timeout)
            for phase in ("connect", "read", "write", "pool")}

    session = get_session()
    hooks = session.event_hooks
    session.event_hooks = {**hooks, "request": [*hooks.get("request", []), bound]}
    try:
        yield
    finally:
        session.event_hooks = hooks
