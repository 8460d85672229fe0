"""Hand-written derivatives of the behaviour-cloning loss of an MLP student, for fast exact BPTT.

The student's parameters live in one flat vector (the order of `actor.parameters()`: W_1, b_1,
..., W_L, b_L, then log_std multiplier m and offset c for the tanh-Gaussian head), so inner
optimisers work on a single tensor. Three passes are provided:

- `forward`: actions Y(theta, X, eps) and a tape of what the other passes need;
- `backward`: dL/dtheta for any dL/dY (the BC gradient, and the outer objective's gradient);
- `grad_jvp`: the directional derivative, in parameter direction v, of the BC gradient with
  respect to theta (the Hessian-vector product H v) and with respect to the synthetic states and
  actions (the mixed second derivatives). This is forward-mode differentiation of the backward
  pass (Pearlmutter's R-operator), written out layer by layer.

Shapes: X (B, obs_dim), Y (B, act_dim); weights W_l have nn.Linear's (out, in) layout. K
independent students run as one (sdw/distill/batched.py) with a leading member dimension
everywhere: theta (K, P), X (K, B, obs_dim), Y (K, B, act_dim), losses (K,); each 2-D matrix
product becomes its batched one (bmm / baddbmm) and each sum over a sample a sum per member, so
the 2-D path runs exactly the operations it always ran.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sdw.networks.actor import LOG_STD_MAX, LOG_STD_MIN, ActorConfig
from sdw.networks.mlp import has_skip


def _affine(bias: torch.Tensor, h: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """bias + h w^T, per member when h is (K, B, in)."""
    if h.dim() == 2:
        return torch.addmm(bias, h, w.t())
    return torch.baddbmm(bias.unsqueeze(-2), h, w.transpose(-1, -2))


def _add_product_(out: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """out += a b in place, per member for 3-D tensors."""
    return out.addmm_(a, b) if out.dim() == 2 else out.baddbmm_(a, b)


def _product(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """a b (into `out` when given), per member for 3-D tensors."""
    return torch.mm(a, b, out=out) if a.dim() == 2 else torch.bmm(a, b, out=out)


def _t(x: torch.Tensor) -> torch.Tensor:
    """The transpose of a matrix, or of each member's matrix."""
    return x.t() if x.dim() == 2 else x.transpose(-1, -2)


def _total(x: torch.Tensor) -> torch.Tensor:
    """The sum over a (B, d) sample: a scalar, or one per member for (K, B, d)."""
    return x.sum() if x.dim() == 2 else x.sum((-2, -1))


def _per_sample(scalar: torch.Tensor) -> torch.Tensor:
    """A head scalar (0-d, or (K,) per member) broadcastable against (K, B, d) samples."""
    return scalar if scalar.dim() == 0 else scalar.view(-1, 1, 1)


@dataclass
class Tape:
    """Activations and gradients of one forward/backward pass, kept for `grad_jvp`."""

    theta: torch.Tensor
    inputs: list[torch.Tensor]          # input of every linear layer (X, h_1, ..., h_{L-1})
    fprime: list[torch.Tensor]          # f'(z) of every hidden layer (ReLU: f(z) itself)
    fsecond: list[torch.Tensor | None]  # f''(z) of every hidden layer (None for ReLU: it is 0)
    tanh_u: torch.Tensor                # tanh of the pre-squash action u
    noise: torch.Tensor | None          # eps of the sampled head
    sigma: torch.Tensor | None          # exp(clamped log_std)
    in_range: torch.Tensor | None       # 1 where log_std is inside the clamp, else 0
    raw_log_std: torch.Tensor | None    # the network's raw log_std output r
    grad_y: torch.Tensor | None = None  # dL/dY
    grad_u: torch.Tensor | None = None  # dL/du
    grad_logstd: torch.Tensor | None = None  # dL/d(log_std) before the clamp
    grad_z: list[torch.Tensor] | None = None   # dL/dz of every linear layer (output last)
    grad_h: list[torch.Tensor] | None = None   # dL/dh of every hidden layer (non-ReLU only)


class AnalyticMLP:
    """The student MLP of an `ActorConfig` as functions of a flat parameter vector."""

    def __init__(self, cfg: ActorConfig, obs_dim: int, act_dim: int):
        self.cfg = cfg
        self.act_dim = act_dim
        self.gaussian = cfg.head == "tanh_gaussian"
        self.sampled = self.gaussian and cfg.sample_actions
        out_dim = 2 * act_dim if self.gaussian else act_dim
        self.sizes = [obs_dim, *cfg.hidden_sizes, out_dim]
        self.skips = [cfg.residual and has_skip(i, a, b)
                      for i, (a, b) in enumerate(zip(self.sizes[:-2], self.sizes[1:-1]))]
        self.relu = cfg.activation == "relu"  # f'' = 0: no z_dot or dL/dh needed after f'
        # dL/dh of a hidden layer is needed after its f'-product by a skip or by f''
        self.keeps_grad_h = [skip or not self.relu for skip in self.skips]
        self.shapes: list[tuple[int, ...]] = []
        for a, b in zip(self.sizes[:-1], self.sizes[1:]):
            self.shapes += [(b, a), (b,)]
        if self.gaussian:
            self.shapes += [(), ()]
        self.numels = [torch.Size(s).numel() for s in self.shapes]

    # ----------------------------------------------------------------- parameters

    def split(self, flat: torch.Tensor) -> list[torch.Tensor]:
        """Views of `flat` (P,) or (K, P) in the order of `actor.parameters()`, each member's
        along the leading dimension."""
        lead = flat.shape[:-1]
        return [part.view((*lead, *shape))
                for part, shape in zip(flat.split(self.numels, dim=-1), self.shapes)]

    def _layers(self, flat: torch.Tensor):
        views = self.split(flat)
        n = len(self.sizes) - 1
        weights, biases = views[0: 2 * n: 2], views[1: 2 * n: 2]
        scalars = ([_per_sample(v) for v in views[2 * n:]] if self.gaussian else [None, None])
        return weights, biases, scalars[0], scalars[1]

    def _activation(self, z: torch.Tensor):
        """f(z), what `_times_fprime` needs to apply f'(z), and f''(z) (None where it is 0).

        Overwrites `z` (a fresh pre-activation nobody else holds). For ReLU the activation
        itself stands for f'(z) (f'(z) = 1 exactly where f(z) > 0), so no mask is materialised.
        """
        name = self.cfg.activation
        if name == "relu":
            h = z.relu_()
            return h, h, None
        if name == "tanh":
            h = z.tanh_()
            fp = 1 - h * h
            return h, fp, -2 * h * fp
        neg = (z <= 0).to(z.dtype)  # elu, alpha = 1
        h = torch.nn.functional.elu_(z)
        fpp = neg * (h + 1)
        return h, (1 - neg) + fpp, fpp

    def _times_fprime(self, x: torch.Tensor, fprime: torch.Tensor, inplace: bool) -> torch.Tensor:
        """x * f'(z), with `fprime` as returned by `_activation`; overwrites x when `inplace`.

        In place saves an allocation per layer and step, a sizeable part of the elementwise
        cost of the BPTT passes on CPU.
        """
        if self.relu:
            if inplace:
                return torch.ops.aten.threshold_backward.grad_input(x, fprime, 0, grad_input=x)
            return torch.ops.aten.threshold_backward(x, fprime, 0)
        return x.mul_(fprime) if inplace else x * fprime

    # ----------------------------------------------------------------- passes

    def forward(self, theta: torch.Tensor, states: torch.Tensor,
                noise: torch.Tensor | None) -> tuple[torch.Tensor, Tape]:
        """Student actions for `states` (with head noise `noise` when sampling) and the tape."""
        if self.cfg.skips:
            raise ValueError(
                f"the analytic meta-gradient does not implement explicit skips (student skips: "
                f"{[list(k) for k in self.cfg.skips]}); distil this student with "
                "meta_gradient='unroll', or use residual: true (a skip at every layer).")
        weights, biases, m, c = self._layers(theta)
        inputs, fprime, fsecond = [states], [], []
        h = states
        for i, (w, b) in enumerate(zip(weights[:-1], biases[:-1])):
            a, fp, fpp = self._activation(_affine(b, h, w))
            h = h + a if self.skips[i] else a
            inputs.append(h)
            fprime.append(fp)
            fsecond.append(fpp)
        out = _affine(biases[-1], h, weights[-1])
        sigma = in_range = raw = None
        if self.sampled:
            mean, raw = out[..., : self.act_dim], out[..., self.act_dim:]
            log_std = m * raw + c
            in_range = ((log_std >= LOG_STD_MIN) & (log_std <= LOG_STD_MAX)).to(out.dtype)
            sigma = log_std.clamp(LOG_STD_MIN, LOG_STD_MAX).exp()
            u = mean + sigma * noise
        else:
            u = out[..., : self.act_dim]
        tanh_u = torch.tanh(u)
        tape = Tape(theta, inputs, fprime, fsecond, tanh_u, noise if self.sampled else None,
                    sigma, in_range, raw)
        return self.cfg.max_action * tanh_u, tape

    def backward(self, tape: Tape, grad_y: torch.Tensor) -> torch.Tensor:
        """dL/dtheta (flat) for the upstream gradient `grad_y` = dL/dY; completes the tape."""
        weights, _, m, _ = self._layers(tape.theta)
        grad = torch.empty_like(tape.theta)
        g_weights, g_biases, g_m, g_c = self._layers(grad)
        t = tape.tanh_u
        grad_u = grad_y * (self.cfg.max_action * (1 - t * t))
        tape.grad_y, tape.grad_u = grad_y, grad_u
        if self.sampled:
            grad_logstd = grad_u * tape.noise * tape.sigma * tape.in_range
            tape.grad_logstd = grad_logstd
            g_z = torch.cat([grad_u, m * grad_logstd], dim=-1)
            g_m.copy_(_total(grad_logstd * tape.raw_log_std).view_as(g_m))
            g_c.copy_(_total(grad_logstd).view_as(g_c))
        elif self.gaussian:
            g_z = torch.cat([grad_u, torch.zeros_like(grad_u)], dim=-1)
            g_m.zero_()
            g_c.zero_()
        else:
            g_z = grad_u
        grad_z: list[torch.Tensor] = [g_z]
        grad_h: list[torch.Tensor] = []
        grad_h_next = None  # gradient w.r.t. the next layer's input, for residual skips
        for layer in range(len(weights) - 1, -1, -1):
            _product(_t(g_z), tape.inputs[layer], out=g_weights[layer])
            torch.sum(g_z, -2, out=g_biases[layer])
            if layer == 0:
                break
            g_h = g_z @ weights[layer]
            if layer < len(weights) - 1 and self.skips[layer]:
                g_h = g_h + grad_h_next
            grad_h_next = g_h
            grad_h.append(g_h)
            g_z = self._times_fprime(g_h, tape.fprime[layer - 1],
                                     inplace=not self.keeps_grad_h[layer - 1])
            grad_z.append(g_z)
        tape.grad_z = grad_z[::-1]
        tape.grad_h = None if self.relu else grad_h[::-1]
        return grad

    def bc_loss_and_grad(self, theta: torch.Tensor, states: torch.Tensor, actions: torch.Tensor,
                         noise: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, Tape]:
        """Inner BC loss mean((Y - actions)^2) (one per member), its flat gradient, the tape."""
        y, tape = self.forward(theta, states, noise)
        diff = y - actions
        count = diff.shape[-2] * diff.shape[-1]
        loss = (diff * diff).mean() if diff.dim() == 2 else (diff * diff).mean((-2, -1))
        grad = self.backward(tape, diff * (2.0 / count))
        return loss, grad, tape

    def grad_jvp(self, tape: Tape, v: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(H v, d/dX <g, v>, d/dA <g, v>) for the BC gradient g of the tape's step.

        H is the Hessian of the BC loss in theta; the other two are the mixed second derivatives
        with respect to the synthetic states X and actions A, contracted with v.
        """
        weights, _, m, _ = self._layers(tape.theta)
        v_weights, v_biases, v_m, v_c = self._layers(v)
        out = torch.empty_like(v)
        o_weights, o_biases, o_m, o_c = self._layers(out)
        n_layers = len(weights)
        # tangent forward pass: z_dot, h_dot of every layer
        h_dot = None
        z_dots: list[torch.Tensor] = []
        h_dots: list[torch.Tensor | None] = [None]
        for layer in range(n_layers):
            z_dot = _affine(v_biases[layer], tape.inputs[layer], v_weights[layer])
            if h_dot is not None:
                _add_product_(z_dot, h_dot, _t(weights[layer]))
            if layer == n_layers - 1:
                break
            z_dots.append(z_dot)
            a_dot = self._times_fprime(z_dot, tape.fprime[layer], inplace=self.relu)
            h_dot = a_dot + h_dot if self.skips[layer] else a_dot
            h_dots.append(h_dot)
        # tangent of the head and of the loss gradient at the output
        t, scale = tape.tanh_u, self.cfg.max_action
        if self.sampled:
            raw_dot = z_dot[..., self.act_dim:]
            sigma_dot = tape.sigma * tape.in_range * (v_m * tape.raw_log_std + m * raw_dot + v_c)
            u_dot = z_dot[..., : self.act_dim] + sigma_dot * tape.noise
        else:
            u_dot = z_dot[..., : self.act_dim]
        t_dot = (1 - t * t) * u_dot
        y_dot = scale * t_dot
        grad_y_dot = y_dot * (2.0 / (y_dot.shape[-2] * y_dot.shape[-1]))
        grad_u_dot = (grad_y_dot * (scale * (1 - t * t))
                      - tape.grad_y * (2 * scale) * t * t_dot)
        if self.sampled:
            grad_logstd_dot = tape.in_range * tape.noise * (
                grad_u_dot * tape.sigma + tape.grad_u * sigma_dot)
            g_z_dot = torch.cat([grad_u_dot, v_m * tape.grad_logstd + m * grad_logstd_dot], -1)
            o_m.copy_(_total(grad_logstd_dot * tape.raw_log_std + tape.grad_logstd * raw_dot)
                      .view_as(o_m))
            o_c.copy_(_total(grad_logstd_dot).view_as(o_c))
        elif self.gaussian:
            g_z_dot = torch.cat([grad_u_dot, torch.zeros_like(grad_u_dot)], dim=-1)
            o_m.zero_()
            o_c.zero_()
        else:
            g_z_dot = grad_u_dot
        # tangent backward pass
        g_h_dot_next = None
        for layer in range(n_layers - 1, -1, -1):
            g_z = tape.grad_z[layer]
            _product(_t(g_z_dot), tape.inputs[layer], out=o_weights[layer])
            if h_dots[layer] is not None:
                _add_product_(o_weights[layer], _t(g_z), h_dots[layer])
            torch.sum(g_z_dot, -2, out=o_biases[layer])
            g_in_dot = _add_product_(_product(g_z_dot, weights[layer]), g_z, v_weights[layer])
            if layer == 0:
                return out, g_in_dot, -grad_y_dot
            hidden = layer - 1
            if layer < n_layers - 1 and self.skips[layer]:
                g_in_dot = g_in_dot + g_h_dot_next
            g_h_dot_next = g_in_dot
            g_z_dot = self._times_fprime(g_in_dot, tape.fprime[hidden],
                                         inplace=not self.skips[hidden])
            if tape.fsecond[hidden] is not None:
                g_z_dot = g_z_dot + tape.grad_h[hidden] * tape.fsecond[hidden] * z_dots[hidden]
        raise AssertionError("unreachable")
