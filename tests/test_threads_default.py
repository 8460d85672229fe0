"""The OpenMP wait policy and the MuJoCo rendering backend every entry point runs with
(docs/experiments.md, "Threads"; docs/report.md, "Pictures")."""

import os
import subprocess
import sys

import pytest

PROBE = ("import os, sys; import sdw.app.cli; assert 'torch' in sys.modules; "
         "print(os.environ.get('OMP_WAIT_POLICY'))")


def probe(policy: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if policy is not None:
        env["OMP_WAIT_POLICY"] = policy
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True,
                         check=True)
    return out.stdout.strip()


def test_passive_is_set_before_torch_loads_when_the_user_set_nothing() -> None:
    assert probe(None) == "PASSIVE"


@pytest.mark.parametrize("policy", ["ACTIVE", "passive"])
def test_a_policy_the_user_exported_is_kept(policy: str) -> None:
    assert probe(policy) == policy


@pytest.mark.parametrize("backend, expected", [(None, "egl"), ("osmesa", "osmesa")])
def test_mujoco_renders_headless_through_egl_unless_the_user_chose(backend, expected) -> None:
    env = {k: v for k, v in os.environ.items() if k != "MUJOCO_GL"}
    if backend is not None:
        env["MUJOCO_GL"] = backend
    out = subprocess.run([sys.executable, "-c", "import os, sdw; print(os.environ['MUJOCO_GL'])"],
                         env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == expected
