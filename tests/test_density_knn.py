"""kNN density: log-space volume, exact against brute force, ranks a known mixture, approximate path."""

import math

import numpy as np
import pytest
from scipy.stats import spearmanr

from sdw.density import DensityError, KNNDensity
from sdw.density.knn import knn_log_density, log_unit_ball_volume
from sdw.testing.densities import GaussianMixture


def test_unit_ball_volume_in_log_space():
    assert math.exp(log_unit_ball_volume(2)) == pytest.approx(math.pi)
    assert math.exp(log_unit_ball_volume(3)) == pytest.approx(4 / 3 * math.pi)
    for dim in (17, 111, 1000):  # gamma(d/2 + 1) alone overflows float64 beyond d = 340
        assert math.isfinite(log_unit_ball_volume(dim))
    # 17 dims, tiny radius: r^17 underflows nothing because it is never formed
    assert np.isfinite(knn_log_density(np.array([math.log(1e-30)]), 10, 10**6, 17)).all()


def test_exact_knn_matches_brute_force():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 4))
    q = rng.standard_normal((20, 4))
    k = 5
    dist = np.sqrt(((q[:, None] - x[None]) ** 2).sum(-1))
    r_k = np.sort(dist, axis=1)[:, k - 1]
    expected = math.log(k) - math.log(300) - log_unit_ball_volume(4) - 4 * np.log(r_k)
    np.testing.assert_allclose(KNNDensity(k=k).fit(x).log_density(q), expected, rtol=1e-10)


def test_fitted_states_are_not_their_own_neighbour():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((200, 3))
    k = 4
    dist = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
    np.fill_diagonal(dist, np.inf)
    r_k = np.sort(dist, axis=1)[:, k - 1]
    expected = math.log(k) - math.log(199) - log_unit_ball_volume(3) - 3 * np.log(r_k)
    np.testing.assert_allclose(KNNDensity(k=k).fit(x).fitted_log_density(), expected, rtol=1e-10)


@pytest.fixture(scope="module")
def mixture_states():
    gm = GaussianMixture.random(2, 5, seed=1)
    x = gm.sample(4000, seed=2)
    return x, gm.log_density(x)


@pytest.mark.parametrize("approximate", [False, True], ids=["sklearn-exact", "faiss-ivf"])
def test_knn_ranks_true_mixture_density(mixture_states, approximate):
    x, truth = mixture_states
    knn = KNNDensity(k=10, exact_max_states=0 if approximate else 50_000, nlist=16, nprobe=4)
    log_p = knn.fit(x).fitted_log_density()
    assert knn.exact is not approximate
    assert spearmanr(log_p, truth).statistic >= 0.9


def test_duplicates_get_a_finite_density():
    x = np.repeat(np.random.default_rng(0).standard_normal((20, 17)), 15, axis=0)
    log_p = KNNDensity(k=5, min_distance=1e-4).fit(x).fitted_log_density()
    assert np.isfinite(log_p).all()
    assert log_p.max() == pytest.approx(knn_log_density(np.array([math.log(1e-4)]), 5, 299, 17)[0])


def test_too_few_states_or_neighbours_fail_clearly():
    with pytest.raises(DensityError, match="k=10 needs at least"):
        KNNDensity(k=10).fit(np.zeros((10, 2)))
    x = np.random.default_rng(0).standard_normal((400, 2))
    knn = KNNDensity(k=50, exact_max_states=0, nlist=100, nprobe=1).fit(x)
    with pytest.raises(DensityError, match="raise density.nprobe"):
        knn.fitted_log_density()


@pytest.mark.parametrize(("k", "n"), [(10, 10), (25, 12)])
def test_k_not_below_the_number_of_states_names_k_and_n(k, n):
    with pytest.raises(DensityError, match=rf"knn k={k} .* N={n}: set density.k below {n}"):
        KNNDensity(k=k).fit(np.random.default_rng(0).standard_normal((n, 3)))
