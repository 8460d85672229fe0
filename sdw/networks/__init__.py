"""Policy and value networks: students, and the CORL-compatible teacher actor and critic."""

from sdw.networks.actor import (ActorConfig, DeterministicActor, TanhGaussianActor, build_actor)
from sdw.networks.critic import FullyConnectedQFunction
from sdw.networks.mlp import Scalar, build_mlp, linear_layers, orthogonal_init_

__all__ = ["ActorConfig", "DeterministicActor", "FullyConnectedQFunction", "Scalar",
           "TanhGaussianActor", "build_actor", "build_mlp", "linear_layers", "orthogonal_init_"]
