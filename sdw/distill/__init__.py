"""Offline behaviour distillation: synthetic sets, objectives, the bi-level loop, students."""

from sdw.distill.inner_optim import InnerOptimConfig
from sdw.distill.loop import (DistillationDiverged, DistillationStopped, StateWeights, StepInfo,
                             checkpoint_step, distill)
from sdw.distill.objectives import ObjectiveConfig, avpbc_loss, dbc_loss, pbc_loss
from sdw.distill.outer_optim import OuterOptimConfig
from sdw.distill.student import SetPolicy, student_policy, train_student
from sdw.distill.synthetic import SyntheticConfig, SyntheticSet

__all__ = ["DistillationDiverged", "DistillationStopped", "InnerOptimConfig", "ObjectiveConfig", "OuterOptimConfig", "SetPolicy", "StateWeights", "StepInfo", "SyntheticConfig",
           "SyntheticSet", "avpbc_loss", "dbc_loss", "distill", "pbc_loss", "student_policy",
           "train_student", "checkpoint_step"]
