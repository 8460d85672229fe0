"""State densities of D_off and the SDW state weights built from them (issue 5)."""

from sdw.density.base import DensityError, DensityEstimator
from sdw.density.build import build_state_weights, density_states, state_log_density
from sdw.density.constant import ConstantDensity
from sdw.density.diagnostics import WeightDiagnostics, weight_diagnostics
from sdw.density.flow import FlowDensity
from sdw.density.kde import KDEDensity
from sdw.density.knn import KNNDensity
from sdw.density.registry import make_estimator, make_weighting
from sdw.density.state_weights import StateWeights
from sdw.density.weighting import WeightingScheme

__all__ = [
    "ConstantDensity", "DensityError", "DensityEstimator", "FlowDensity", "KDEDensity", "KNNDensity",
    "StateWeights", "WeightDiagnostics", "WeightingScheme", "build_state_weights", "density_states",
    "make_estimator", "make_weighting", "state_log_density", "weight_diagnostics",
]
