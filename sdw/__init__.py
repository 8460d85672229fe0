"""sdw: offline behaviour distillation (OBD) and State Density Weighted OBD (SDW)."""

__version__ = "0.1.0"
