"""Flow (zuko MAF): ranks a known mixture, stops early on held-out NLL, is reproducible."""

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from sdw.density import FlowDensity
from sdw.testing.densities import GaussianMixture

FAST = dict(batch_size=256, lr=3e-3, max_epochs=40, patience=4)



@pytest.fixture(scope="module")
def mixture():
    gm = GaussianMixture.random(2, 5, seed=1)
    return gm, gm.sample(4000, seed=2)


def test_flow_ranks_true_mixture_density(mixture):
    gm, x = mixture
    flow = FlowDensity(**FAST).fit(x)
    assert spearmanr(flow.fitted_log_density(), gm.log_density(x)).statistic >= 0.9
    held_out = gm.sample(1000, seed=3)
    assert spearmanr(flow.log_density(held_out), gm.log_density(held_out)).statistic >= 0.9


def test_early_stopping_keeps_best_epoch(mixture):
    _, x = mixture
    flow = FlowDensity(batch_size=64, lr=1e-2, max_epochs=60, patience=2, max_train_states=400).fit(x)
    assert len(flow.val_nll) < 60  # 360 training states overfit quickly, so it stopped
    assert len(flow.val_nll) - flow.best_epoch == 2
    rng = np.random.default_rng(0)
    used = rng.permutation(len(x))[:400]
    val = x[np.sort(used[:40])]
    assert -flow.log_density(val).mean() == pytest.approx(min(flow.val_nll), abs=1e-4)


def test_same_seed_same_density_and_global_rng_untouched(mixture):
    _, x = mixture
    small = dict(max_epochs=2, max_train_states=1000)
    torch.manual_seed(123)
    a = FlowDensity(**small).fit(x).log_density(x[:50])
    after_a = torch.rand(1)
    torch.manual_seed(123)
    b = FlowDensity(**small).fit(x).log_density(x[:50])
    np.testing.assert_array_equal(a, b)
    assert torch.rand(1) == after_a
