"""Pinning glibc's libm to one code path, so MuJoCo simulates the same bits on every x86-64 CPU.

MuJoCo calls libm's sin, cos, exp, pow, atan2, ... every step, and glibc picks their
implementation per CPU: an FMA build where the CPU has FMA and AVX2, an SSE2 build elsewhere.
The two differ in the last bit for some inputs, and a chaotic simulation turns that into a
different dataset (measured: docs/datasets.md, "Bit-identical rebuilds"). The SSE2 build runs
on every x86-64 CPU, so `sdw-collect` re-executes itself once with glibc told to ignore FMA.
"""

from __future__ import annotations

import os
import platform
import sys

LIBM_TUNABLE = "glibc.cpu.hwcaps=-AVX2,-FMA,-FMA4"
"""GLIBC_TUNABLES entry that makes glibc select its SSE2 (no FMA) libm routines."""


def needs_pinning() -> bool:
    """True on x86-64 glibc Linux when GLIBC_TUNABLES does not already pin libm."""
    return (sys.platform == "linux" and platform.machine() in ("x86_64", "AMD64")
            and platform.libc_ver()[0] == "glibc"
            and LIBM_TUNABLE not in os.environ.get("GLIBC_TUNABLES", ""))


def pin_libm() -> None:
    """Re-execute this process with libm pinned (glibc reads the setting only at start-up)."""
    if not needs_pinning():
        return
    current = os.environ.get("GLIBC_TUNABLES", "")
    env = {**os.environ, "GLIBC_TUNABLES": ":".join(t for t in (current, LIBM_TUNABLE) if t)}
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)
