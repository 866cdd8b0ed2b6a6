"""Resolve optimizers and learning-rate schedulers given by name, class or instance."""

from __future__ import annotations

import inspect
from difflib import get_close_matches
from functools import cache
from typing import Any

import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler, ReduceLROnPlateau


@cache
def _classes(module: Any, base: type) -> dict[str, type]:
    return {
        name.lower(): obj
        for name, obj in vars(module).items()
        if inspect.isclass(obj)
        and issubclass(obj, base)
        and obj is not base
        and not name.startswith("_")
    }


def _by_name(kind: str, name: str, table: dict[str, type]) -> type:
    key = name.lower().replace("_", "")
    lookup = {k.replace("_", ""): v for k, v in table.items()}
    if key in lookup:
        return lookup[key]
    hint = get_close_matches(key, sorted(lookup), n=1)
    suggestion = f" Did you mean {hint[0]!r}?" if hint else ""
    raise ValueError(
        f"Unknown {kind} {name!r}.{suggestion} Choose one of {sorted(table)}, "
        "or pass the class itself."
    )


def optimizer_class(optimizer: str | type[Optimizer]) -> type[Optimizer]:
    """Return the optimizer class for a name such as ``"adam"`` or a class."""
    if isinstance(optimizer, str):
        return _by_name("optimizer", optimizer, _classes(torch.optim, Optimizer))
    if inspect.isclass(optimizer) and issubclass(optimizer, Optimizer):
        return optimizer
    raise TypeError(
        f"optimizer must be a name such as 'adam', a torch.optim.Optimizer subclass "
        f"or instance; got {optimizer!r}."
    )


def scheduler_class(scheduler: str | type) -> type:
    """Return the LR scheduler class for a name such as ``"steplr"`` or a class."""
    table = dict(_classes(torch.optim.lr_scheduler, LRScheduler))
    table["reducelronplateau"] = ReduceLROnPlateau
    if isinstance(scheduler, str):
        return _by_name("scheduler", scheduler, table)
    if inspect.isclass(scheduler) and issubclass(scheduler, (LRScheduler, ReduceLROnPlateau)):
        return scheduler
    raise TypeError(
        "scheduler must be a name such as 'steplr', an LR scheduler class or instance; "
        f"got {scheduler!r}."
    )
