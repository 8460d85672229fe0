"""Behaviour-policy arithmetic that gives the same bits on every machine (sdw.collect.exact)."""

from __future__ import annotations

import math
import platform
import subprocess
import sys

import numpy as np
import pytest

from sdw.collect import exact
from sdw.collect.cli import ZOO_ROOT
from sdw.collect.libm import LIBM_TUNABLE
from sdw.collect.zoo import Zoo


def test_affine_is_the_exact_sum_rounded_once():
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((64, 40)) * 10).astype(np.float32)
    w = rng.standard_normal((40, 24)).astype(np.float16).astype(np.float32)
    b = rng.standard_normal(24).astype(np.float32)
    out = exact.affine(x, w, b)
    assert out.dtype == np.float32
    reference = np.array([[math.fsum([*(x[i].astype(np.float64) * w[:, j]).tolist(), float(b[j])])
                           for j in range(24)] for i in range(64)]).astype(np.float32)
    np.testing.assert_array_equal(out, reference)


def test_affine_cancellation_is_exact_where_float32_blas_is_not():
    """1e8 + 1 - 1e8: float32 products summed in float32 lose the 1; the exact sum keeps it."""
    x = np.float32([[1e8, 1.0, -1e8]])
    w = np.ones((3, 1), np.float32)
    assert exact.affine(x, w, np.zeros(1, np.float32))[0, 0] == 1.0


@pytest.mark.parametrize("name", ["affine", "exp", "tanh"])
def test_exact_fallback_gives_the_fast_path_bits(name, monkeypatch):
    """Forcing every element through the exact path (a huge error bound) changes no bit."""
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((32, 16)) * 3).astype(np.float32)
    w = rng.standard_normal((16, 8)).astype(np.float32)
    b = rng.standard_normal(8).astype(np.float32)
    call = {"affine": lambda: exact.affine(x, w, b), "exp": lambda: exact.exp(x),
            "tanh": lambda: exact.tanh(x)}[name]
    fast = call()
    monkeypatch.setattr(exact, "UNIT_ROUNDOFF", 1.0)
    monkeypatch.setattr(exact, "TRANSCENDENTAL_REL_BOUND", 1.0)
    np.testing.assert_array_equal(call(), fast)


def test_policy_rows_do_not_depend_on_the_batch():
    """A row's action is the same alone or in a batch of 16 (BLAS blocking can not change it)."""
    zoo = Zoo.load(ZOO_ROOT / "hopper")
    policy = zoo.snapshot(zoo.medium_step)
    obs = np.random.default_rng(2).standard_normal((16, policy.obs_dim)) * 2
    batch = policy.deterministic(obs)
    for i in range(16):
        np.testing.assert_array_equal(policy.deterministic(obs[i:i + 1])[0], batch[i])


@pytest.mark.skipif(not (sys.platform == "linux" and platform.machine() == "x86_64"
                         and platform.libc_ver()[0] == "glibc"), reason="x86-64 glibc only")
def test_sdw_collect_pins_libm_by_reexecuting():
    code = ("import os, sys; sys.argv = ['x']; from sdw.collect.libm import pin_libm; pin_libm(); "
            "print(os.environ.get('GLIBC_TUNABLES'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PATH": "/usr/bin:/bin"}).stdout.strip()
    assert out == LIBM_TUNABLE
