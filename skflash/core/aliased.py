"""A network's twin that shares its weights, for predicting while the network trains.

Switching a network to eval mode for a predict and back afterwards, as Lightning's
predict does, changes the modules themselves: a fit running in another thread would take
its steps in eval mode, and a predict running beside another would be switched back to
train mode half-way. A twin in eval mode reads the same weights and leaves the network's
modes alone.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from torch import nn


def aliased(network: nn.Module) -> nn.Module:
    """A copy of ``network`` whose weights and buffers share their storage with
    ``network``'s and need no gradient."""
    shared: dict[int, Any] = {
        id(weight): nn.Parameter(weight.detach(), requires_grad=False)
        for weight in network.parameters()
    }
    shared.update((id(buffer), buffer.detach()) for buffer in network.buffers())
    return copy.deepcopy(network, memo=shared)


def eval_forward(
    task: nn.Module, twin: nn.Module | None = None
) -> tuple[Callable, list[nn.Module]]:
    """What a predict of ``task`` calls on each batch to run every layer in eval mode, and
    the modules switched to eval mode for it, to switch back to train mode afterwards.

    ``twin``, an eval-mode twin of the model kept by the caller, is called when given:
    the estimators keep one for their own networks, which a fit in another thread may
    switch to train mode at any moment. Otherwise the Task is called itself, its modules
    in train mode switched to eval mode for the call, as Lightning's predict does (a twin
    made for each call would cost a copy of the model, and not every model can be
    copied).
    """
    if twin is not None:
        return twin, []
    training = [module for module in task.modules() if module.training]
    for module in training:
        module.training = False
    return task, training
