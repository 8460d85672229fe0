"""Outer batch sampler: passes over the data, no reshuffle per step."""

from unittest import mock

import torch

from sdw.distill.sampler import OuterBatchSampler


def test_one_pass_uses_every_state_once_and_shuffles_once():
    sampler = OuterBatchSampler(10_000, 100, torch.Generator().manual_seed(0))
    with mock.patch("torch.randperm", wraps=torch.randperm) as randperm:
        batches = [sampler() for _ in range(100)]
    assert randperm.call_count == 1  # not once per step, as the official DataLoader did
    seen = torch.cat(batches)
    assert torch.equal(seen.sort().values, torch.arange(10_000))
    assert not torch.equal(seen, torch.arange(10_000))


def test_batches_span_pass_boundaries_and_small_datasets():
    sampler = OuterBatchSampler(7, 5, torch.Generator().manual_seed(0))
    batches = [sampler() for _ in range(7)]  # 35 draws = 5 passes over 7 states
    assert all(len(b) == 5 for b in batches)
    counts = torch.bincount(torch.cat(batches), minlength=7)
    assert torch.all(counts == 5)


def test_sampler_state_resumes_the_same_stream():
    a = OuterBatchSampler(50, 8, torch.Generator().manual_seed(1))
    for _ in range(3):
        a()
    b = OuterBatchSampler(50, 8, torch.Generator().manual_seed(99))
    b.load_state_dict(a.state_dict())
    for _ in range(10):
        assert torch.equal(a(), b())
