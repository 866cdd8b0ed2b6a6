"""The hidden layers' dropout: torch's semantics, a cheaper mask on the CPU."""

from __future__ import annotations

import pickle

import pytest
import torch
from torch import nn

from skflash.core.dropout import Dropout, keep_mask, seed_layers


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_the_mask_drops_the_rate_and_keeps_the_mean(p, dtype):
    torch.manual_seed(0)
    mask = keep_mask(torch.Size((400, 500)), p, dtype)
    assert mask.shape == (400, 500) and mask.dtype == dtype
    dropped = (mask == 0).double().mean().item()
    assert dropped == pytest.approx(p, abs=0.005)
    kept = mask[mask != 0].double()
    assert torch.allclose(kept, torch.full_like(kept, 1 / (1 - p)), rtol=1e-2)
    assert mask.double().mean().item() == pytest.approx(1.0, abs=0.02)


def test_masks_follow_torchs_seed_and_differ_between_calls():
    layer = Dropout(0.5).train()
    x = torch.ones(64, 32)
    torch.manual_seed(3)
    first, second = layer(x), layer(x)
    torch.manual_seed(3)
    assert torch.equal(layer(x), first)
    assert not torch.equal(first, second)


def test_gradients_pass_through_the_kept_entries_only():
    layer = Dropout(0.3).train()
    x = torch.randn(50, 20, requires_grad=True)
    out = layer(x)
    out.sum().backward()
    kept = out.detach() != 0
    assert torch.allclose(x.grad[kept], torch.full_like(x.grad[kept], 1 / 0.7))
    assert (x.grad[~kept] == 0).all()


def test_eval_mode_and_the_edge_rates_are_torchs():
    x = torch.randn(10, 4)
    assert torch.equal(Dropout(0.5).eval()(x), x)
    assert torch.equal(Dropout(0.0).train()(x), x)
    assert (Dropout(1.0).train()(x) == 0).all()
    layer = Dropout(0.25)
    assert isinstance(layer, nn.Dropout) and repr(layer) == repr(nn.Dropout(0.25))
    assert not layer.state_dict()
    assert pickle.loads(pickle.dumps(layer)).p == 0.25


def test_seeded_layers_draw_their_own_streams_whatever_torchs_seed():
    network = nn.Sequential(Dropout(0.5), nn.Linear(8, 8), Dropout(0.5)).train()
    x = torch.ones(32, 8)
    seed_layers(network, 7)
    torch.manual_seed(0)
    first = network[0](x)
    seed_layers(network, 7)
    torch.manual_seed(1)  # the global generator plays no part
    assert torch.equal(network[0](x), first)
    assert not torch.equal(network[2](x), first)  # the second layer has its own stream
    twin = pickle.loads(pickle.dumps(network))
    assert twin[0].generator is None  # a generator is not pickled; the next fit seeds one
    assert twin[0](x).shape == x.shape
