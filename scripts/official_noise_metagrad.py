"""How far the official OBD reverse pass is from the exact meta-gradient, because it re-samples
the tanh-Gaussian student's head noise when it re-evaluates each inner step backwards.

Both reverse passes below are the official `bptt_efficient_backward` for SGD (lr, no momentum,
the paper's inner recipe): walk the stored parameters w_T-1 ... w_0 backwards, re-evaluate the
BC loss at w_t and take its Hessian-vector and mixed products with v = -lr dH/dw_t+1. With the
forward step's noise this is exact (checked against `meta_gradient_unroll`, cosine 1); with
fresh noise, as the official code draws it, it is not. Prints the cosine and norm ratio of
(dH/dX, dH/dA) against the exact one, per seed.

    python scripts/official_noise_metagrad.py --config small --seeds 5
    python scripts/official_noise_metagrad.py --config paper --seeds 3
"""

from __future__ import annotations

import argparse

import torch
from torch.func import functional_call

from sdw.distill.inner_optim import InnerOptimConfig
from sdw.distill.metagrad import meta_gradient_unroll
from sdw.networks.actor import ActorConfig, build_actor

CONFIGS = {  # hidden sizes, synthetic pairs, inner steps, outer states
    "small": ((64, 64), 32, 20, 256),
    "paper": ((256, 256, 256), 256, 100, 2560),
}
OBS_DIM, ACT_DIM, LR = 17, 6, 0.1


def params_of(actor, theta):
    out, i = {}, 0
    for name, p in actor.named_parameters():
        out[name] = theta[i:i + p.numel()].view_as(p)
        i += p.numel()
    return out


def bc_loss(actor, theta, states, actions, noise):
    y = functional_call(actor, params_of(actor, theta), (states,), {"noise": noise})
    return ((y - actions) ** 2).mean()


def reverse_pass(actor, thetas, noises, states, actions, grad_theta_t, generator, resample):
    """The official reverse pass for SGD without momentum; fresh head noise when `resample`."""
    states = states.detach().requires_grad_()
    actions = actions.detach().requires_grad_()
    d_states, d_actions = torch.zeros_like(states), torch.zeros_like(actions)
    d_theta = grad_theta_t.clone()
    for theta, noise in zip(reversed(thetas), reversed(noises)):
        if resample:
            noise = torch.randn(noise.shape, generator=generator)
        theta = theta.detach().requires_grad_()
        (g,) = torch.autograd.grad(bc_loss(actor, theta, states, actions, noise), theta,
                                   create_graph=True)
        hx, ha, hw = torch.autograd.grad(g, [states, actions, theta], -LR * d_theta)
        d_states += hx
        d_actions += ha
        d_theta += hw
    return torch.cat([d_states.flatten(), d_actions.flatten()])


def compare(config: str, seed: int) -> dict:
    hidden, pairs, steps, batch = CONFIGS[config]
    torch.manual_seed(seed)
    student = ActorConfig(hidden_sizes=hidden)
    states, actions = torch.randn(pairs, OBS_DIM), torch.rand(pairs, ACT_DIM) * 2 - 1
    outer_states = torch.randn(batch, OBS_DIM)
    targets = torch.tanh(outer_states @ torch.randn(OBS_DIM, ACT_DIM) * 0.3)
    actor = build_actor(student, OBS_DIM, ACT_DIM, torch.Generator().manual_seed(seed))
    theta0 = torch.cat([p.detach().flatten() for p in actor.parameters()])

    def outer_loss(y):
        return ((y - targets) ** 2).mean()

    exact = meta_gradient_unroll(actor, True, InnerOptimConfig(lr=LR, steps=steps).functional(),
                                 steps, theta0, states, actions, outer_states, outer_loss,
                                 torch.Generator().manual_seed(seed + 100))
    exact = torch.cat([exact.states.flatten(), exact.actions.flatten()])

    # the same forward as meta_gradient_unroll (same generator, same draws), parameters stored
    generator = torch.Generator().manual_seed(seed + 100)
    theta, thetas, noises = theta0.clone(), [], []
    for _ in range(steps):
        noise = torch.randn((pairs, ACT_DIM), generator=generator)
        theta_req = theta.detach().requires_grad_()
        (g,) = torch.autograd.grad(bc_loss(actor, theta_req, states, actions, noise), theta_req)
        thetas.append(theta)
        noises.append(noise)
        theta = theta - LR * g
    outer_noise = torch.randn((batch, ACT_DIM), generator=generator)
    theta_req = theta.detach().requires_grad_()
    y = functional_call(actor, params_of(actor, theta_req), (outer_states,), {"noise": outer_noise})
    (grad_theta_t,) = torch.autograd.grad(outer_loss(y), theta_req)

    result = {}
    for name, resample in (("forward noise", False), ("re-sampled noise", True)):
        g = reverse_pass(actor, thetas, noises, states, actions, grad_theta_t,
                         torch.Generator().manual_seed(seed + 200), resample)
        result[name] = (float(torch.nn.functional.cosine_similarity(g, exact, dim=0)),
                        float(g.norm() / exact.norm()))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", choices=sorted(CONFIGS), default="small")
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    hidden, pairs, steps, batch = CONFIGS[args.config]
    print(f"{args.config}: student {hidden}, {pairs} pairs, {steps} SGD steps (lr {LR}), "
          f"{batch} outer states; cosine / norm ratio against the exact meta-gradient")
    for seed in range(args.seeds):
        r = compare(args.config, seed)
        print(f"seed {seed}: " + "; ".join(f"{k}: cos {c:.4f}, norm x{n:.3f}"
                                          for k, (c, n) in r.items()))


if __name__ == "__main__":
    main()
