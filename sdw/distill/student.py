"""Students trained on a synthetic set, and their policies for evaluation rollouts."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from sdw.data.dataset import StateNormaliser
from sdw.distill.inner_optim import InnerOptimConfig
from sdw.distill.synthetic import SyntheticSet
from sdw.networks.actor import ActorConfig, build_actor


def train_student(synthetic: SyntheticSet, student: ActorConfig, optim: InnerOptimConfig,
                  steps: int | None = None, seed: int = 0,
                  device: str | torch.device = "cpu", batch_size: int | None = None,
                  callback: Callable[[int, nn.Module], None] | None = None) -> nn.Module:
    """A fresh student trained by BC on `synthetic`; returned in eval mode.

    One torch.optim optimiser lives through all `steps` (default `optim.steps`), so momentum and
    Adam moments carry over between steps. Initialisation and head noise come from one generator
    seeded with `seed`, in the order the distillation's inner loop draws them. Every step uses
    the whole set (the inner loop's full batch) unless `batch_size` is given: then each step
    draws that many pairs uniformly with replacement from the same generator, before the noise
    (minibatch BC on a large set, e.g. the whole dataset). `callback(step, actor)` runs after
    every update (step counted from 1); it must leave the actor's parameters as they are.
    """
    generator = torch.Generator(device).manual_seed(seed)
    actor = build_actor(student, synthetic.obs_dim, synthetic.act_dim, generator, device)
    optimizer = optim.torch_optimizer(actor.parameters())
    states = torch.as_tensor(synthetic.states, device=device)
    actions = torch.as_tensor(synthetic.actions, device=device)
    sampled = student.head == "tanh_gaussian" and student.sample_actions
    for step in range(1, (optim.steps if steps is None else steps) + 1):
        x, y = states, actions
        if batch_size is not None:
            idx = torch.randint(len(states), (batch_size,), generator=generator, device=device)
            x, y = states[idx], actions[idx]
        pred = actor(x, deterministic=not sampled, generator=generator)
        loss = ((pred - y) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if callback is not None:
            callback(step, actor)
    return actor.eval()


def student_policy(actors: nn.Module | Sequence[nn.Module],
                   device: str | torch.device = "cpu") -> Callable[[np.ndarray], np.ndarray]:
    """Deterministic actions max_action * tanh(mean) for normalised states, as `evaluate_policy`
    expects; a list of students acts as an ensemble (actions averaged, as in the paper)."""
    members = [actors] if isinstance(actors, nn.Module) else list(actors)

    @torch.no_grad()
    def act(states: np.ndarray) -> np.ndarray:
        s = torch.as_tensor(states, dtype=torch.float32, device=device)
        return torch.stack([m(s, deterministic=True) for m in members]).mean(0).cpu().numpy()

    return act


@dataclass
class SetPolicy:
    """A student trained on a synthetic set, acting on raw observations: `act(obs)` takes one
    observation (obs_dim,) or a batch (N, obs_dim) and returns deterministic actions."""

    actor: nn.Module
    normaliser: StateNormaliser
    device: torch.device

    @classmethod
    def train(cls, synthetic: SyntheticSet, seed: int = 0, device: str | torch.device = "cpu",
              student: ActorConfig | None = None,
              inner: InnerOptimConfig | None = None) -> SetPolicy:
        """Train one student with the recipe the set was distilled for (its config's `student`
        and `inner_optim`, as the distillation's inner loop and sdw-eval train it), or with the
        given ones."""
        recipe = synthetic.config
        if student is None or inner is None:
            missing = [k for k in ("student", "inner_optim") if k not in recipe]
            if missing:
                raise ValueError(f"the synthetic set carries no {' or '.join(missing)} recipe (it "
                                 "was not made by `distill`): pass student= and inner= "
                                 "(ActorConfig, InnerOptimConfig).")
        student = student or ActorConfig(**recipe["student"])
        inner = inner or InnerOptimConfig(**recipe["inner_optim"])
        actor = train_student(synthetic, student, inner, seed=seed, device=device)
        return cls(actor, synthetic.normaliser, torch.device(device))

    @torch.no_grad()
    def act(self, observations: np.ndarray) -> np.ndarray:
        obs = np.asarray(observations, dtype=np.float32)
        states = torch.as_tensor(self.normaliser(obs.reshape(-1, obs.shape[-1])), device=self.device)
        actions = self.actor(states, deterministic=True).cpu().numpy()
        return actions.reshape(*obs.shape[:-1], actions.shape[-1])
