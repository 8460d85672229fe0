"""sdw: offline behaviour distillation (OBD) and State Density Weighted OBD (SDW)."""

import os
import sys

# OpenMP reads its wait policy once, when torch loads it, so it is set here, before any sdw module
# imports torch. With the default (spinning) policy, two torch threads on a machine where any
# other process runs are several times slower per outer step (docs/experiments.md, "Threads");
# PASSIVE costs some speed when the machine is idle. A value the user exported is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# MuJoCo picks its OpenGL backend when it is imported; EGL renders without a display (the CPU
# machines here have none, and GLFW / OSMesa failed on them), for sdw's pictures
# (sdw/evaluate/pictures.py). A value the user exported is kept.
if sys.platform.startswith("linux"):
    os.environ.setdefault("MUJOCO_GL", "egl")

__version__ = "0.1.0"
