"""Draws of one thread from a generator of its own (initial weights under threads)."""

from __future__ import annotations

import threading

import pytest
import torch
from torch import nn

from skflash.core.seeded_draws import SeededDraws


def _layers() -> nn.Module:
    return nn.Sequential(
        nn.Linear(5, 4), nn.Embedding(6, 3), nn.LayerNorm(4), nn.Conv1d(2, 2, 3), nn.LSTM(3, 2)
    )


def _draws() -> list[torch.Tensor]:
    return [
        torch.rand(3),
        torch.randn(2, 2),
        torch.randint(9, (4,)),
        torch.randperm(5),
        torch.empty(3).uniform_(-1, 1),
        torch.empty(3).normal_(),
        torch.empty(3).bernoulli_(0.5),
        torch.multinomial(torch.ones(4), 2),
        nn.init.trunc_normal_(torch.empty(3)),
        nn.init.orthogonal_(torch.empty(3, 3)),
        torch.randn_like(torch.empty(2)),
    ]


@pytest.mark.parametrize("make", [_layers, _draws])
def test_draws_are_those_of_the_global_generator_seeded_alike(make):
    torch.manual_seed(7)
    expected = make()
    torch.manual_seed(1234)  # the global generator elsewhere: not what the block draws from
    before = torch.get_rng_state()
    with SeededDraws(7):
        drawn = make()
    tensors = (
        (list(expected.parameters()), list(drawn.parameters()))
        if isinstance(expected, nn.Module)
        else (expected, drawn)
    )
    assert all(map(torch.equal, *tensors))
    assert torch.equal(torch.get_rng_state(), before)  # the global generator was not used


def test_other_threads_draw_from_the_global_generator():
    seen = []

    def draw() -> None:
        torch.manual_seed(3)
        seen.append(torch.rand(2))

    with SeededDraws(0):
        other = threading.Thread(target=draw)
        other.start()
        other.join()
    torch.manual_seed(3)
    assert torch.equal(seen[0], torch.rand(2))


def test_draws_on_other_devices_are_left_to_their_generators():
    with SeededDraws(0):
        meta = torch.empty(3, device="meta").uniform_()
        made = torch.rand(2, device="meta")
    assert meta.device.type == made.device.type == "meta"


def test_an_explicit_generator_is_kept():
    mine = torch.Generator().manual_seed(5)
    with SeededDraws(0):
        drawn = torch.rand(3, generator=mine)
    assert torch.equal(drawn, torch.rand(3, generator=torch.Generator().manual_seed(5)))
