"""The device-dependent paths: on a CUDA device (marked `cuda`, skipped without one;
scripts/gpu_check.sh runs them on a GPU machine) the batched meta-gradient, a distillation and
its resume, sdw-run; on the CPU the refusal of a missing device and the checkpoint's CUDA RNG
branch, with torch.cuda's calls stood in for."""

import pytest
import torch

from sdw.distill import InnerOptimConfig, ObjectiveConfig, SyntheticConfig, distill
from sdw.distill.analytic_mlp import AnalyticMLP
from sdw.distill.metagrad import meta_gradient_analytic
from sdw.networks import ActorConfig, FullyConnectedQFunction, TanhGaussianActor, build_actor
from sdw.teacher.corl import CorlTeacher
from sdw.testing.toy import random_dataset

cuda_only = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


@pytest.mark.cuda
@cuda_only
def test_the_batched_meta_gradient_on_cuda_equals_the_cpu_one():
    cfg = ActorConfig(hidden_sizes=(32, 32))
    student = AnalyticMLP(cfg, 5, 2)
    optimiser = InnerOptimConfig(name="adam", lr=1e-3).functional()
    g = torch.Generator().manual_seed(0)
    theta = torch.stack([torch.cat([p.detach().reshape(-1) for p in build_actor(
        cfg, 5, 2, torch.Generator().manual_seed(k)).parameters()]) for k in range(3)]).double()
    x, a, outer, target = (torch.randn(3, n, d, generator=g, dtype=torch.float64)
                           for n, d in ((8, 5), (8, 2), (16, 5), (16, 2)))
    results = {}
    for device in ("cpu", "cuda"):
        tensors = [t.to(device) for t in (theta, x, a.tanh(), outer, target.tanh())]
        results[device] = meta_gradient_analytic(
            student, optimiser, 5, *tensors[:4], lambda y, t=tensors[4]: ((y - t) ** 2).mean(
                (-2, -1)), [torch.Generator(device).manual_seed(k) for k in range(3)])
    for name in ("outer_loss", "states", "actions"):
        mine, ref = getattr(results["cuda"], name).cpu(), getattr(results["cpu"], name)
        assert float((mine - ref).norm()) <= 1e-10 * float(ref.norm()), name


def _distill(tmp_path, steps: int, stop=None):
    dataset = random_dataset(3000, 17, 6, seed=0, name="cuda-toy")
    torch.manual_seed(0)
    teacher = CorlTeacher(TanhGaussianActor(17, 6).cuda(), FullyConnectedQFunction(17, 6).cuda(),
                          dataset.state_normaliser())
    return distill(dataset, teacher, objective=ObjectiveConfig("avpbc", batch_size=64),
                   student=ActorConfig(hidden_sizes=(32, 32)), synthetic=SyntheticConfig(16),
                   inner=InnerOptimConfig(steps=5), outer_steps=steps, seed=0, device="cuda",
                   checkpoint=tmp_path / "checkpoint.pt", checkpoint_every=2, stop=stop,
                   progress=False)


@pytest.mark.cuda
@cuda_only
def test_a_cuda_distillation_resumes_to_the_same_bits(tmp_path):
    from sdw.distill import DistillationStopped

    whole = _distill(tmp_path / "whole", 6)
    calls = iter(range(100))
    with pytest.raises(DistillationStopped):
        _distill(tmp_path / "cut", 6, stop=lambda: next(calls) == 2)  # stops after step 3
    resumed = _distill(tmp_path / "cut", 6)
    assert (resumed.states == whole.states).all() and (resumed.actions == whole.actions).all()


@pytest.mark.cuda
@cuda_only
def test_sdw_run_on_cuda_end_to_end(tmp_path):
    import json

    from run_cli import TINY, sdw_run
    from sdw.data.example import collect_random_transitions, write_d4rl_hdf5

    data = tmp_path / "hopper_random-tiny.hdf5"
    write_d4rl_hdf5(data, collect_random_transitions("Hopper-v4", 2000, seed=0))
    result = sdw_run([f"dataset.path={data}", "outer_steps=2", *TINY, "device=cuda"], tmp_path,
                     tmp_path / "cache")
    assert result.returncode == 0, result.stdout
    (job,) = [p.parent for p in (tmp_path / "runs").glob("*/*/eval.json")]
    assert json.loads((job / "eval.json").read_text())["standard"]["normalised_mean"] is not None


# The same device-dependent paths, exercised on the CPU (run everywhere: not marked cuda).

@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present: the real tests run")
def test_device_cuda_without_a_device_is_refused_by_name():
    from omegaconf import OmegaConf

    from sdw.app.run import check_run_settings
    from sdw.errors import UserError

    cfg = OmegaConf.create({"seed": 0, "outer_steps": 1, "checkpoint_every": 1, "threads": None,
                            "device": "cuda"})
    with pytest.raises(UserError, match="device=cuda but torch sees no CUDA device"):
        check_run_settings(cfg)


def test_a_checkpoint_carries_and_restores_the_cuda_rng_state(tmp_path, monkeypatch):
    """The CUDA branch of the checkpoint, with torch.cuda's RNG calls stood in for on the CPU."""
    from sdw.distill import loop
    from sdw.distill.outer_optim import OuterOptimConfig
    from sdw.distill.sampler import OuterBatchSampler

    calls = []
    monkeypatch.setattr(torch.cuda, "get_rng_state", lambda device: torch.tensor([7, 8, 9]))
    monkeypatch.setattr(torch.cuda, "set_rng_state",
                        lambda state, device: calls.append((state.tolist(), device)))
    cuda = torch.device("cuda")
    generator = torch.Generator().manual_seed(0)
    states, actions = torch.zeros(4, 3, requires_grad=True), torch.zeros(4, 2, requires_grad=True)
    optimiser, schedule = OuterOptimConfig().build(states, actions, 10)
    sampler = OuterBatchSampler(100, 8, torch.Generator().manual_seed(1), torch.device("cpu"))
    config = {"outer_optim": OuterOptimConfig().to_dict(), "outer_steps": 10}
    path = tmp_path / "checkpoint.pt"
    loop.save_checkpoint(path, 3, config, states, actions, optimiser, schedule, sampler,
                         generator, cuda)
    saved = torch.load(path, weights_only=True)
    assert saved["rng"]["cuda"].tolist() == [7, 8, 9]
    step = loop.resume(saved, path, config, states, actions, optimiser, schedule, sampler,
                       generator, cuda)
    assert step == 3 and calls == [([7, 8, 9], cuda)]


def test_a_batch_member_keeps_its_own_cuda_rng_state(monkeypatch):
    """The CUDA branch of a batch member's global RNG swap, torch.cuda's calls stood in for."""
    from types import SimpleNamespace

    from sdw.distill.batched import Member, _Run

    calls, states = [], iter([torch.tensor([1, 2]), torch.tensor([3, 4])])
    monkeypatch.setattr(torch.cuda, "get_rng_state", lambda device: next(states))
    monkeypatch.setattr(torch.cuda, "set_rng_state",
                        lambda state, device: calls.append((state.tolist(), device)))
    member = SimpleNamespace(member=Member(seed=5), device=torch.device("cuda"))
    with _Run.global_rng(member, fresh=True):
        first = torch.rand(1)
    assert member.cuda_rng.tolist() == [1, 2] and calls == []
    torch.manual_seed(99)  # another member's draws in between
    with _Run.global_rng(member):
        second = torch.rand(1)
    assert calls == [([1, 2], torch.device("cuda"))] and member.cuda_rng.tolist() == [3, 4]
    torch.manual_seed(5)
    assert torch.equal(torch.rand(2), torch.cat([first, second]))  # one stream, as its own run
