"""k-th nearest neighbour density, in log space: exact (scikit-learn) or approximate (faiss IVF)."""

from __future__ import annotations

import math
from typing import Any

import faiss
import numpy as np
from scipy.special import gammaln
from sklearn.neighbors import NearestNeighbors
from tqdm import tqdm

from sdw.density.base import DensityError, DensityEstimator


def log_unit_ball_volume(dim: int) -> float:
    """log of pi^(d/2) / Gamma(d/2 + 1), the volume of the unit d-ball (finite for any d)."""
    return 0.5 * dim * math.log(math.pi) - float(gammaln(0.5 * dim + 1.0))


def knn_log_density(log_radius: np.ndarray, k: int, n: int, dim: int) -> np.ndarray:
    """log p = log k - log n - log V_d - d log r_k: the k-NN estimate k / (n V_d r_k^d), never exponentiated."""
    return math.log(k) - math.log(n) - log_unit_ball_volume(dim) - dim * log_radius


class KNNDensity(DensityEstimator):
    """Density from the distance to the k-th neighbour among the fitted states.

    Up to `exact_max_states` fitted states the neighbours are exact (scikit-learn); above, faiss
    IndexIVFFlat with `nlist` cells (default 4 sqrt(N)) of which `nprobe` are searched. Distances
    are floored at `min_distance` so duplicate states get a large finite density, not +inf.
    """

    name = "knn"

    def __init__(
        self,
        k: int = 10,
        exact_max_states: int = 50_000,
        nlist: int | None = None,
        nprobe: int = 16,
        min_distance: float = 1e-4,
        seed: int = 0,
        query_chunk: int = 65_536,
    ) -> None:
        super().__init__()
        if k < 1:
            raise DensityError(f"knn k must be at least 1, got {k}.")
        if not min_distance > 0:
            raise DensityError(f"knn min_distance must be positive, got {min_distance}.")
        self.k = int(k)
        self.exact_max_states = int(exact_max_states)
        self.nlist = None if nlist is None else int(nlist)
        self.nprobe = int(nprobe)
        self.min_distance = float(min_distance)
        self.seed = int(seed)
        self.query_chunk = int(query_chunk)

    def cache_params(self) -> dict[str, Any]:
        return {"k": self.k, "exact_max_states": self.exact_max_states, "nlist": self.nlist,
                "nprobe": self.nprobe, "min_distance": self.min_distance, "seed": self.seed}

    @property
    def exact(self) -> bool:
        return len(self.fitted_states) <= self.exact_max_states

    def fit(self, states: np.ndarray) -> KNNDensity:
        n = len(np.asarray(states))
        if n <= self.k:
            raise DensityError(
                f"knn k={self.k} needs at least k + 1 = {self.k + 1} states (each state's k-th "
                f"neighbour among the others), got N={n}: set density.k below {n} or fit on more "
                "states."
            )
        states = self._remember(states, min_states=self.k + 1)
        n, dim = states.shape
        if self.exact:
            self._index = NearestNeighbors(n_neighbors=self.k + 1).fit(states)
            return self
        data = np.ascontiguousarray(states, dtype=np.float32)
        nlist = self.nlist or max(1, int(4 * math.sqrt(n)))
        if nlist > n:
            raise DensityError(f"knn nlist={nlist} exceeds the {n} fitted states; lower density.nlist.")
        rng = np.random.default_rng(self.seed)
        train = data[rng.choice(n, size=min(n, 64 * nlist), replace=False)]
        self._index = faiss.IndexIVFFlat(faiss.IndexFlatL2(dim), dim, nlist)
        self._index.cp.seed = self.seed
        self._index.train(train)
        self._index.add(data)
        self._index.nprobe = min(self.nprobe, nlist)
        return self

    def _log_radius(self, states: np.ndarray, neighbours: int) -> np.ndarray:
        """log distance to the `neighbours`-th nearest fitted state, per query (floored at min_distance)."""
        if self.exact:
            dist, _ = self._index.kneighbors(states, n_neighbors=neighbours)
            radius = dist[:, -1]
        else:
            queries = np.ascontiguousarray(states, dtype=np.float32)
            starts = range(0, len(queries), self.query_chunk)
            radius = np.empty(len(queries), dtype=np.float64)
            for start in tqdm(starts, desc="knn", unit="chunk", disable=len(starts) < 4, leave=False):
                sq, found = self._index.search(queries[start:start + self.query_chunk], neighbours)
                if (found[:, -1] < 0).any():
                    raise DensityError(
                        f"faiss searched {self._index.nprobe} of {self._index.nlist} cells and found fewer "
                        f"than {neighbours} neighbours for some states; raise density.nprobe."
                    )
                radius[start:start + len(sq)] = np.sqrt(np.clip(sq[:, -1], 0.0, None))
        return np.log(np.maximum(radius, self.min_distance))

    def log_density(self, states: np.ndarray) -> np.ndarray:
        states = self._query(states)
        n, dim = self.fitted_states.shape
        return knn_log_density(self._log_radius(states, self.k), self.k, n, dim)

    def fitted_log_density(self) -> np.ndarray:
        """Leave-one-out: each fitted state's k-th neighbour among the other N - 1 states."""
        n, dim = self.fitted_states.shape
        log_radius = self._log_radius(self.fitted_states, self.k + 1)
        return knn_log_density(log_radius, self.k, n - 1, dim)
