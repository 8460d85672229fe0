"""sdw: offline behaviour distillation (OBD) and State Density Weighted OBD (SDW)."""

import os

# OpenMP reads its wait policy once, when torch loads it, so it is set here, before any sdw module
# imports torch. With the default (spinning) policy, two torch threads on a machine where any
# other process runs are several times slower per outer step (docs/experiments.md, "Threads");
# PASSIVE costs some speed when the machine is idle. A value the user exported is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
