"""Teachers from CORL checkpoints: the format of the official OBD repository's Cal-QL teachers.

A CORL checkpoint is a `torch.save`d dict with (at least) `actor` (state_dict of
`TanhGaussianPolicy`: `base_network.{0,2,4,6}.*`, `log_std_multiplier.constant`,
`log_std_offset.constant`) and `critic1`, `critic2` (state_dicts of `FullyConnectedQFunction`:
`network.{0,2,...}.*`). Cal-QL/CQL checkpoints also hold pickled `Scalar` modules
(`sac_log_alpha`, `cql_log_alpha`) defined in the training script's `__main__`; they are read
with torch's restricted (`weights_only`) unpickler, the `Scalar` class mapped to sdw's own.
Layer sizes are read from the weights. The checkpoint carries no state statistics: the teacher
expects states normalised with the statistics of the qlearning view of the dataset it was trained
on (`dataset.state_normaliser()`), which the caller passes in.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import nn

from sdw.data.dataset import OfflineDataset, StateNormaliser
from sdw.networks.actor import TanhGaussianActor
from sdw.networks.critic import FullyConnectedQFunction
from sdw.networks.mlp import Scalar


class CorlTeacher:
    """A CORL tanh-Gaussian actor and one of its critics behind the `Teacher` protocol."""

    def __init__(self, actor: TanhGaussianActor, critic: FullyConnectedQFunction,
                 normaliser: StateNormaliser):
        self.actor, self.critic, self.normaliser = actor.eval(), critic.eval(), normaliser

    @torch.no_grad()
    def act(self, states: torch.Tensor, deterministic: bool = True) -> torch.Tensor:
        return self.actor(states, deterministic=deterministic)

    @torch.no_grad()
    def q(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return self.critic(states, actions)


def read_corl_checkpoint(path: str | Path, trusted: bool = False) -> dict:
    """The checkpoint dict on CPU. Only tensors, containers and CORL's `Scalar` are unpickled
    unless `trusted` (then any pickled object is, which runs code from the file)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"no CORL checkpoint at {path}. The official OBD teachers are laid out as "
            "<offline_policy_dir>/Cal-QL-<d4rl-name>/checkpoint.pt; point `path` at that file.")
    if trusted:
        return torch.load(path, map_location="cpu", weights_only=False)
    unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    others = [name for name in unsafe if not name.endswith(".Scalar")]
    if others:
        raise ValueError(f"{path} pickles objects other than tensors and CORL's Scalar "
                         f"({', '.join(others)}); if you trust the file, load it with "
                         "trusted=True.")
    scalars = [(Scalar, name) for name in unsafe]
    with torch.serialization.safe_globals(scalars):
        return torch.load(path, map_location="cpu", weights_only=True)


def _linear_sizes(state_dict: dict, prefix: str, path: Path, key: str) -> list[int]:
    """[in, hidden..., out] of an nn.Sequential of Linear layers (activations in between)."""
    pattern = re.compile(rf"^{re.escape(prefix)}\.(\d+)\.weight$")
    found = sorted((int(m.group(1)), state_dict[k]) for k in state_dict
                   if (m := pattern.match(k)))
    if not found:
        raise ValueError(f"{path}: `{key}` has no {prefix}.<i>.weight entries; keys are "
                         f"{sorted(state_dict)[:8]}... Is this a CORL checkpoint?")
    if [i for i, _ in found] != list(range(0, 2 * len(found), 2)):
        raise ValueError(f"{path}: `{key}` layers {[i for i, _ in found]} are not CORL's "
                         "Linear/ReLU alternation (0, 2, 4, ...).")
    return [found[0][1].shape[1]] + [w.shape[0] for _, w in found]


def load_corl_teacher(path: str | Path, dataset: OfflineDataset | None = None,
                      normaliser: StateNormaliser | None = None, critic: str = "critic1",
                      max_action: float = 1.0, device: str | torch.device = "cpu",
                      trusted: bool = False) -> CorlTeacher:
    """Load a CORL checkpoint's actor and `critic` (OBD uses `critic1`) as a teacher.

    States are normalised with `normaliser`, or else with `dataset.state_normaliser()` (the
    statistics of its qlearning view, as CORL computed them): pass the dataset the checkpoint
    was trained on.
    """
    if normaliser is None:
        if dataset is None:
            raise ValueError("load_corl_teacher needs the dataset the teacher was trained on (or "
                             "its normaliser): CORL checkpoints carry no state statistics.")
        normaliser = dataset.state_normaliser()
    path = Path(path)
    ckpt = read_corl_checkpoint(path, trusted)
    missing = [k for k in ("actor", critic) if k not in ckpt]
    if missing:
        raise ValueError(f"{path} has no {missing}; its keys are {sorted(ckpt)}. A CORL "
                         "checkpoint holds 'actor', 'critic1', 'critic2', ...")
    actor_sizes = _linear_sizes(ckpt["actor"], "base_network", path, "actor")
    critic_sizes = _linear_sizes(ckpt[critic], "network", path, critic)
    obs_dim, act_dim = actor_sizes[0], actor_sizes[-1] // 2
    if obs_dim != len(normaliser.mean):
        raise ValueError(f"{path}: the actor takes {obs_dim}-dimensional states but the "
                         f"normaliser has {len(normaliser.mean)} dimensions: wrong dataset?")
    if critic_sizes[0] != obs_dim + act_dim or critic_sizes[-1] != 1:
        raise ValueError(f"{path}: `{critic}` maps {critic_sizes[0]} -> {critic_sizes[-1]}; "
                         f"expected obs+act = {obs_dim + act_dim} -> 1.")
    actor = TanhGaussianActor(obs_dim, act_dim, max_action, tuple(actor_sizes[1:-1]))
    q_function = FullyConnectedQFunction(obs_dim, act_dim, tuple(critic_sizes[1:-1]))
    _load(actor, ckpt["actor"], path, "actor")
    _load(q_function, ckpt[critic], path, critic)
    return CorlTeacher(actor.to(device), q_function.to(device), normaliser)


def _load(module: nn.Module, state_dict: dict, path: Path, key: str) -> None:
    try:
        module.load_state_dict(state_dict)
    except RuntimeError as e:
        raise ValueError(f"{path}: `{key}` does not match CORL's layout: {e}") from e
