"""KDE: equal to scipy.stats.gaussian_kde on small data; the subsampled estimate tracks the exact one."""

import numpy as np
import pytest
from scipy.stats import gaussian_kde

from sdw.density import DensityError, KDEDensity
from sdw.density.kde import bandwidth_factor
from sdw.testing.densities import GaussianMixture


@pytest.fixture(scope="module")
def states():
    return GaussianMixture.random(2, 3, seed=0).sample(600, seed=1)


@pytest.mark.parametrize("bandwidth", ["scott", "silverman", 0.3])
def test_kde_equals_scipy(states, bandwidth):
    queries = GaussianMixture.random(2, 3, seed=0).sample(200, seed=2)
    scipy_kde = gaussian_kde(states.T, bw_method=bandwidth)
    kde = KDEDensity(bandwidth=bandwidth).fit(states)
    assert kde.factor == pytest.approx(scipy_kde.factor, rel=1e-12)
    # relative to 1e-5 on the density is 1e-5 absolute on the log density
    np.testing.assert_allclose(kde.log_density(queries), scipy_kde.logpdf(queries.T), rtol=0, atol=1e-5)
    np.testing.assert_allclose(kde.fitted_log_density(), scipy_kde.logpdf(states.T), rtol=0, atol=1e-5)


def test_subsample_with_all_references_equals_exact(states):
    """The self-kernel correction of fitted_log_density reduces to the exact KDE when m = N."""
    exact = KDEDensity().fit(states).fitted_log_density()
    sub = KDEDensity(exact_max_states=0, reference_size=len(states)).fit(states)
    assert not sub.exact
    np.testing.assert_allclose(sub.fitted_log_density(), exact, atol=1e-4)


def test_subsample_does_not_credit_references_with_their_own_kernel():
    """States chosen as kernel centres must not get a density boost from their own kernel at 1/m."""
    x = GaussianMixture.random(2, 8, seed=3).sample(4000, seed=4)
    exact = KDEDensity(bandwidth=0.3).fit(x).fitted_log_density()
    sub = KDEDensity(bandwidth=0.3, exact_max_states=0, reference_size=400, seed=0).fit(x)
    err = sub.fitted_log_density() - exact
    members = np.zeros(len(x), bool)
    members[sub._ref_idx] = True
    naive = sub.log_density(x) - exact  # counts a reference's own kernel at weight 1/m
    assert abs(np.median(err[members]) - np.median(err[~members])) < 0.5
    assert np.median(naive[members]) - np.median(naive[~members]) > 2.0


def test_bandwidth_rules_and_errors():
    assert bandwidth_factor("scott", 1000, 2) == pytest.approx(1000 ** (-1 / 6))
    assert bandwidth_factor("silverman", 1000, 2) == pytest.approx((1000 * 4 / 4) ** (-1 / 6))
    assert bandwidth_factor("0.25", 10, 2) == 0.25
    for bad in ("scot", -1.0, 0):
        with pytest.raises(DensityError, match="bandwidth"):
            bandwidth_factor(bad, 10, 2)


def test_bad_input_is_named():
    kde = KDEDensity().fit(np.random.default_rng(0).standard_normal((50, 3)))
    with pytest.raises(DensityError, match="2 dimensions but the estimator was fitted on 3"):
        kde.log_density(np.zeros((4, 2)))
    with pytest.raises(DensityError, match="NaN or inf .* row 1"):
        KDEDensity().fit(np.array([[0.0, 1.0], [np.nan, 0.0], [1.0, 1.0]]))
    with pytest.raises(DensityError, match="not fitted"):
        KDEDensity().fitted_log_density()
