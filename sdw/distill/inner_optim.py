"""Inner optimisers of the student: SGD (+momentum), Adam, AdamW.

Each exists twice on purpose, and a test holds the two together: `torch_optimizer` builds the
real `torch.optim` optimiser used to train evaluation students, and `functional` gives a
pure-function copy on a flat parameter vector used inside the bi-level loop, with a
hand-written adjoint for exact back-propagation through the inner steps. The functional update
reproduces torch.optim's arithmetic (same operations in the same order), so a student trained
inside distillation and one trained for evaluation follow the same trajectory. Optimiser state
(momentum, Adam moments) persists over all inner steps: it is never reset between steps.
"""

from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass, field

import torch

OPTIMIZERS = ("sgd", "adam", "adamw")


@dataclass(frozen=True)
class InnerOptimConfig:
    """How a student is trained on the synthetic set: optimiser, its settings, number of steps."""

    name: str = "sgd"
    lr: float = 0.1
    steps: int = 100
    momentum: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", str(self.name).lower())
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))
        if self.name not in OPTIMIZERS:
            close = difflib.get_close_matches(self.name, OPTIMIZERS, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"unknown inner optimiser {self.name!r}; choose one of "
                             f"{OPTIMIZERS}.{hint}")
        if self.momentum and self.name != "sgd":
            raise ValueError(f"momentum={self.momentum} is an SGD setting; {self.name} uses betas.")
        if self.lr <= 0 or self.steps < 1:
            raise ValueError(f"inner optimiser needs lr > 0 and steps >= 1, got lr={self.lr}, "
                             f"steps={self.steps}.")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["betas"] = list(self.betas)
        return d

    def torch_optimizer(self, params) -> torch.optim.Optimizer:
        """The torch.optim optimiser this config describes (create it once per student)."""
        if self.name == "sgd":
            return torch.optim.SGD(params, lr=self.lr, momentum=self.momentum,
                                   weight_decay=self.weight_decay)
        cls = torch.optim.Adam if self.name == "adam" else torch.optim.AdamW
        return cls(params, lr=self.lr, betas=self.betas, eps=self.eps,
                   weight_decay=self.weight_decay)

    def functional(self) -> FunctionalSGD | FunctionalAdam:
        if self.name == "sgd":
            return FunctionalSGD(self.lr, self.momentum, self.weight_decay)
        return FunctionalAdam(self.lr, self.betas, self.eps, self.weight_decay,
                              decoupled=self.name == "adamw")


@dataclass
class Adjoint:
    """Adjoints (gradients of the outer loss) of theta and of the optimiser state."""

    theta: torch.Tensor
    state: dict[str, torch.Tensor] = field(default_factory=dict)


class FunctionalSGD:
    """torch.optim.SGD (dampening 0, no Nesterov) as theta_{t+1} = step(theta_t, g_t, state)."""

    def __init__(self, lr: float, momentum: float = 0.0, weight_decay: float = 0.0):
        self.lr, self.momentum, self.weight_decay = lr, momentum, weight_decay

    def init(self, theta: torch.Tensor) -> dict[str, torch.Tensor]:
        return {}

    def step(self, theta: torch.Tensor, grad: torch.Tensor, state: dict[str, torch.Tensor],
             t: int) -> tuple[torch.Tensor, dict[str, torch.Tensor], dict]:
        """One update; returns the new theta, the new state and what the adjoint needs."""
        if self.weight_decay:
            grad = grad.add(theta, alpha=self.weight_decay)
        if self.momentum:
            grad = grad if t == 0 else state["buf"].mul(self.momentum).add(grad)
            state = {"buf": grad}
        return theta.add(grad, alpha=-self.lr), state, {}

    def adjoint_start(self, theta_bar: torch.Tensor) -> Adjoint:
        return Adjoint(theta_bar.clone(), {"buf": torch.zeros_like(theta_bar)})

    def adjoint_step(self, adj: Adjoint, record: dict, t: int) -> torch.Tensor:
        """Walk step t backwards: return the adjoint of g_t and update `adj` to step t.

        The caller adds the second-order term (d g_t / d theta)^T g_bar to `adj.theta`.
        """
        buf_bar = adj.state["buf"].add(adj.theta, alpha=-self.lr)
        if self.weight_decay:
            adj.theta.add_(buf_bar, alpha=self.weight_decay)
        adj.state["buf"] = buf_bar.mul(self.momentum)
        return buf_bar


def _sqrt(v: torch.Tensor) -> torch.Tensor:
    """sqrt(v) with derivative 0 instead of inf at v = 0, so autograd through Adam stays finite."""
    positive = v > 0
    return torch.where(positive, v, 1.0).sqrt() * positive


class FunctionalAdam:
    """torch.optim.Adam, or AdamW when `decoupled`, on a flat parameter vector."""

    def __init__(self, lr: float, betas: tuple[float, float], eps: float, weight_decay: float,
                 decoupled: bool):
        self.lr, self.eps, self.weight_decay, self.decoupled = lr, eps, weight_decay, decoupled
        self.beta1, self.beta2 = betas

    def init(self, theta: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"m": torch.zeros_like(theta), "v": torch.zeros_like(theta)}

    def _corrections(self, t: int) -> tuple[float, float]:
        """Step size lr / (1 - beta1^k) and sqrt(1 - beta2^k) for the k = t + 1-th update."""
        return self.lr / (1 - self.beta1 ** (t + 1)), (1 - self.beta2 ** (t + 1)) ** 0.5

    def step(self, theta: torch.Tensor, grad: torch.Tensor, state: dict[str, torch.Tensor],
             t: int) -> tuple[torch.Tensor, dict[str, torch.Tensor], dict]:
        if self.decoupled:
            theta = theta.mul(1 - self.lr * self.weight_decay)
        elif self.weight_decay:
            grad = grad.add(theta, alpha=self.weight_decay)
        m = state["m"].lerp(grad, 1 - self.beta1)
        v = state["v"].mul(self.beta2).addcmul(grad, grad, value=1 - self.beta2)
        step_size, bc2_sqrt = self._corrections(t)
        denom = (_sqrt(v) / bc2_sqrt).add(self.eps)
        return theta.addcdiv(m, denom, value=-step_size), {"m": m, "v": v}, {
            "grad": grad, "m": m, "v": v}

    def adjoint_start(self, theta_bar: torch.Tensor) -> Adjoint:
        zeros = torch.zeros_like(theta_bar)
        return Adjoint(theta_bar.clone(), {"m": zeros, "v": zeros.clone()})

    def adjoint_step(self, adj: Adjoint, record: dict, t: int) -> torch.Tensor:
        step_size, bc2_sqrt = self._corrections(t)
        grad, m, v = record["grad"], record["m"], record["v"]
        root = v.sqrt()
        denom = (root / bc2_sqrt).add(self.eps)
        u_bar = adj.theta * (-step_size / denom)          # adjoint of m (through m / denom)
        m_bar = adj.state["m"] + u_bar
        denom_bar = -u_bar * m / denom
        # d sqrt(v)/dv = 1 / (2 sqrt(v)); where v = 0 the gradient was 0 at every step so far,
        # and the term is multiplied by that zero gradient below: drop it instead of 0 * inf.
        v_bar = adj.state["v"] + torch.where(root > 0, denom_bar / (2 * bc2_sqrt * root), 0.0)
        grad_bar = (1 - self.beta1) * m_bar + (2 * (1 - self.beta2)) * grad * v_bar
        adj.state["m"] = self.beta1 * m_bar
        adj.state["v"] = self.beta2 * v_bar
        if self.decoupled:
            adj.theta.mul_(1 - self.lr * self.weight_decay)
        elif self.weight_decay:
            adj.theta.add_(grad_bar, alpha=self.weight_decay)
        return grad_bar
