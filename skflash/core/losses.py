"""Losses and metrics as named callables, and a loss weighted per sample.

A Task logs each loss and metric under a name (a dict key, else the lower-cased
function or class name), as Flash did.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch


def _callable_name(fn: Any) -> str:
    named = fn if inspect.isfunction(fn) or inspect.isclass(fn) else type(fn)
    return getattr(fn, "__name__", None) or named.__name__


def named_callables(value: Any, what: str) -> dict[str, Callable]:
    """Name each of one callable, a list or a dict: a dict key, else its lower-cased name."""
    if value is None:
        return {}
    if isinstance(value, Mapping):
        items = list(value.items())
    elif isinstance(value, Sequence) and not isinstance(value, str):
        items = [(_callable_name(fn).lower(), fn) for fn in value]
    else:
        items = [(_callable_name(value).lower(), value)]
    for name, fn in items:
        if not callable(fn):
            raise TypeError(f"Each {what} must be callable; {name!r} is {fn!r}.")
    names = [name for name, _ in items]
    if len(set(names)) != len(names):
        raise ValueError(f"Two {what} share a name in {names}; pass a dict to name them.")
    return dict(items)


def weighted_loss(
    fn: Callable, name: str, y_hat: Any, y: Any, weight: torch.Tensor
) -> torch.Tensor:
    try:
        per_element = fn(y_hat, y, reduction="none")
    except TypeError as error:
        raise TypeError(
            f"Loss {name!r} cannot weight samples: with sample weights a loss must accept "
            "reduction='none' and return one value per element."
        ) from error
    per_sample = per_element.reshape(len(weight), -1).mean(dim=1)
    return (per_sample * weight).sum() / weight.sum().clamp_min(torch.finfo(weight.dtype).tiny)
