"""Routed parameters: ``task__<arg>``, ``backbone__<arg>``, ``optimizer__<arg>`` and
``trainer__<arg>``.

They are ordinary estimator parameters to scikit-learn (``get_params``, ``set_params``,
``clone``, grids), kept in the estimator's private ``_routed`` mapping under the names
given.
"""

from __future__ import annotations

import functools
import inspect
from difflib import get_close_matches
from typing import Any

import numpy as np

PREFIXES = ("task__", "backbone__", "optimizer__", "trainer__")


def is_routed(name: str) -> bool:
    return name.startswith(PREFIXES) and len(name) > len(name.split("__", 1)[0]) + 2


#: Names users bring from other libraries (skorch, Keras, plain PyTorch).
ALIASES = {
    "lr": "learning_rate",
    "epochs": "max_epochs",
    "n_epochs": "max_epochs",
    "max_iter": "max_epochs",
    "module": "backbone",
    "model": "backbone",
    "criterion": "loss",
    "loss_fn": "loss",
    "seed": "random_state",
    "device": "accelerator",
}


def refuse_unknown(owner: str, name: str, params: list[str], kind: type = TypeError) -> None:
    """Raise ``kind`` (TypeError, as Python does for a constructor; ValueError from
    ``set_params``, as scikit-learn does) for a keyword that is neither a parameter nor
    routed, naming the closest parameter."""
    hint = [ALIASES[name]] if ALIASES.get(name) in params else get_close_matches(name, params, n=1)
    suggestion = f" Did you mean {hint[0]!r}?" if hint else ""
    raise kind(
        f"{owner} got an unexpected keyword argument {name!r}.{suggestion} "
        f"Arguments for a Task of your own, the backbone, optimizer or Lightning Trainer go "
        f"in as "
        f"{', '.join(p + '<arg>' for p in PREFIXES)}."
    )


def plain(value: Any) -> Any:
    """numpy scalars (also inside tuples and lists) as the Python numbers torch expects."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, list) or (isinstance(value, tuple) and not hasattr(value, "_fields")):
        return type(value)(plain(v) for v in value)
    return value


def routed(estimator: Any, prefix: str) -> dict[str, Any]:
    """The routed parameters under ``prefix`` (e.g. ``"trainer__"``), prefix removed,
    numpy scalars as Python numbers."""
    return {
        key[len(prefix) :]: plain(value)
        for key, value in routed_params(estimator).items()
        if key.startswith(prefix)
    }


def routed_params(estimator: Any) -> dict[str, Any]:
    return dict(getattr(estimator, "_routed", {}))


@functools.lru_cache(maxsize=256)
def accepted_arguments(target: Any) -> tuple[str, ...] | None:
    """The keyword arguments ``target`` takes, or None when it takes any (cached)."""
    try:
        params = inspect.signature(target).parameters
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return None
    return tuple(n for n, p in params.items() if p.kind is not p.VAR_POSITIONAL and n != "self")


def check_kwargs(
    target: Any, kwargs: dict[str, Any], prefix: str, own: tuple[str, ...] = ()
) -> None:
    """Raise ValueError naming the closest argument when ``target`` does not take a kwarg.

    ``own`` names arguments the estimator sets from parameters of its own: a suggestion
    of one of them points to that parameter instead.
    """
    accepted = accepted_arguments(target)
    if accepted is None:
        return
    for key in kwargs:
        if key not in accepted:
            hint = get_close_matches(key, accepted, n=1)
            suggestion = f" Did you mean {prefix}{hint[0]}?" if hint else ""
            if hint and hint[0] in own:
                suggestion = f" Did you mean the estimator's own parameter {hint[0]!r}?"
            name = getattr(target, "__qualname__", repr(target))
            raise ValueError(
                f"{prefix}{key} is not an argument of {name}.{suggestion} "
                f"It accepts: {sorted(accepted)}."
            )
