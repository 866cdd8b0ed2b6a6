"""Resolve optimizers and learning-rate schedulers given by name, class or instance."""

from __future__ import annotations

import copy
import functools
import inspect
from dataclasses import dataclass
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


# ---------------------------------------------------------------------- estimator defaults
#: The per-step shrink of the weights that AdamW's defaults give (lr 1e-3 x decay 1.0):
#: ``weight_decay="auto"`` keeps it for every optimizer that decays weights decoupled.
SHRINK_PER_STEP = 1e-3


@dataclass(frozen=True)
class OptimizerRecipe:
    """How the estimators drive one optimizer by default.

    ``decay`` says how its ``weight_decay`` works: ``"decoupled"`` (the weights shrink
    by ``lr * weight_decay`` each step, as in AdamW), ``"switch"`` (decoupled once
    ``decoupled_weight_decay=True`` is passed: Adam, NAdam, RAdam), ``"coupled"`` (an
    L2 penalty added to the gradient, which adaptive optimizers rescale per weight: a
    strength that suits one dataset ruins another) or ``"none"`` (no such argument).
    """

    learning_rate: float
    decay: str
    #: The rate's multiple for the 1024-row batches of a large table (measured for the
    #: Adam family; others keep their rate).
    large_batch_factor: float = 1.0


#: Chosen by measurement (3-fold CV on diabetes, friedman1, breast_cancer and digits, the
#: estimators' other defaults, learning rates from 1e-3 to 1): with its rate below and
#: ``weight_decay="auto"`` every optimizer scores within about 0.03 of AdamW's defaults.
RECIPES: dict[str, OptimizerRecipe] = {
    "adamw": OptimizerRecipe(1e-3, "decoupled", large_batch_factor=10.0),
    "adam": OptimizerRecipe(1e-3, "switch", large_batch_factor=10.0),
    "nadam": OptimizerRecipe(1e-3, "switch", large_batch_factor=10.0),
    "radam": OptimizerRecipe(3e-3, "switch"),
    "adamax": OptimizerRecipe(3e-3, "coupled"),
    "adafactor": OptimizerRecipe(1e-2, "decoupled"),
    "adagrad": OptimizerRecipe(1e-2, "coupled"),
    "rmsprop": OptimizerRecipe(1e-3, "coupled"),
    "rprop": OptimizerRecipe(1e-3, "none"),
    "sgd": OptimizerRecipe(0.1, "coupled"),
    "asgd": OptimizerRecipe(0.1, "coupled"),
    "adadelta": OptimizerRecipe(1.0, "coupled"),
}

#: Optimizers the estimators cannot drive, and why.
UNSUPPORTED = {
    "lbfgs": (
        "LBFGS is a full-batch method: on mini-batches its curvature estimates diverge. "
        "Use a mini-batch optimizer such as 'adamw', or LBFGS in a custom Task."
    ),
    "sparseadam": (
        "SparseAdam needs sparse gradients (from nn.Embedding(sparse=True)), which the "
        "estimators' networks do not produce. Use 'adam' or 'adamw'."
    ),
    "muon": (
        "Muon only optimizes 2-D weight matrices and leaves biases to another optimizer; "
        "the estimators train every parameter with one. Use 'adamw', or Muon in a "
        "custom Task with two optimizers."
    ),
}


def recipe(cls: type[Optimizer]) -> OptimizerRecipe:
    """The recipe of a torch optimizer class, or one derived from its signature."""
    for klass in cls.__mro__:
        found = RECIPES.get(klass.__name__.lower())
        if found is not None:
            return found
    params = inspect.signature(cls).parameters
    lr = params.get("lr")
    default = lr.default if lr is not None and isinstance(lr.default, float) else 1e-3
    if "decoupled_weight_decay" in params:
        decay = "switch"
    elif "weight_decay" in params:
        decay = "coupled"
    else:
        decay = "none"
    return OptimizerRecipe(default, decay)


def check_supported(cls: type[Optimizer]) -> None:
    """Raise ValueError for an optimizer the estimators cannot train with."""
    reason = UNSUPPORTED.get(cls.__name__.lower())
    if reason is not None:
        raise ValueError(f"optimizer {cls.__name__!r} is not supported here. {reason}")


def weight_decay_kwargs(
    cls: type[Optimizer], weight_decay: float | str, learning_rate: float, strength: float = 1.0
) -> dict[str, Any]:
    """The optimizer arguments for ``weight_decay`` (a number, or ``"auto"``).

    ``"auto"`` shrinks the weights by ``strength`` times :data:`SHRINK_PER_STEP` per step
    where the decay is decoupled (``weight_decay = strength * SHRINK_PER_STEP /
    learning_rate``, switching it on for Adam-like optimizers), and is off where it would
    be an L2 penalty. A number is the optimizer's own ``weight_decay`` argument, with
    torch's meaning.
    """
    kind = recipe(cls).decay
    if weight_decay == "auto":
        shrink = strength * SHRINK_PER_STEP / learning_rate
        if kind == "decoupled":
            return {"weight_decay": shrink}
        if kind == "switch":
            return {
                "weight_decay": shrink,
                "decoupled_weight_decay": True,
            }
        return {}
    if kind == "none":
        if weight_decay:
            raise ValueError(
                f"{cls.__name__} has no weight decay: use weight_decay='auto' or 0 with it."
            )
        return {}
    return {"weight_decay": float(weight_decay)} if weight_decay else {}


#: The precision whose weights, gradients and optimizer state are all float16.
FLOAT16_WEIGHTS = "16-true"
#: ``eps`` for optimizers that divide by a root mean square, under ``"16-true"``: a
#: gradient below 2.4e-4 has a square that float16 rounds to 0, and the default eps
#: (1e-8, itself 0 in float16) then lets such a gradient take a step thousands of times
#: the rate. An eps of 1e-4 bounds it at about twice the rate. Measured on diabetes (30
#: epochs, seeds 0-3): train R² -0.62, 0.52, 0.56, 0.52 with torch's eps; 0.53-0.54 with
#: this one.
FLOAT16_EPS = 1e-4


def precision_kwargs(cls: type[Optimizer], precision: Any) -> dict[str, Any]:
    """The optimizer arguments that ``precision`` needs: under ``"16-true"``,
    :data:`FLOAT16_EPS` for an optimizer whose default ``eps`` is a number below it."""
    if str(precision) != FLOAT16_WEIGHTS:
        return {}
    try:
        eps = inspect.signature(cls.__init__).parameters.get("eps")
    except (TypeError, ValueError):
        return {}
    default = None if eps is None else eps.default
    if isinstance(default, float) and default < FLOAT16_EPS:
        return {"eps": FLOAT16_EPS}
    return {}


def resume_state(optimizer: Optimizer, state: dict[str, Any]) -> None:
    """Load the per-parameter state (moments, step counts) of ``state`` into ``optimizer``.

    The hyperparameters (learning rate, weight decay...) stay the new optimizer's own. A
    copy is loaded: loading shares the tensors, and the saved state must survive a
    continued fit that fails.
    """
    state = copy.deepcopy(state)
    saved_groups = state["param_groups"]
    if len(saved_groups) != len(optimizer.param_groups):
        raise ValueError("The saved optimizer state has a different number of parameter groups.")
    state["param_groups"] = [
        {**{k: v for k, v in group.items() if k != "params"}, "params": saved["params"]}
        for group, saved in zip(optimizer.param_groups, saved_groups, strict=True)
    ]
    optimizer.load_state_dict(state)


@functools.lru_cache(maxsize=64)
def _takes_fused(cls: type) -> bool:
    return "fused" in inspect.signature(cls).parameters


def fused_if_possible(cls: type[Optimizer], params: list, kwargs: dict[str, Any]) -> Optimizer:
    """Build the optimizer with its fused implementation when it has one for these parameters.

    One kernel updates every parameter instead of a Python loop over them, which is a
    quarter of a small model's step time on a CPU. An explicit ``fused`` or ``foreach``
    in ``kwargs`` is respected.
    """
    if _takes_fused(cls) and "fused" not in kwargs and "foreach" not in kwargs and params:
        try:
            return cls(params, fused=True, **kwargs)
        except (RuntimeError, ValueError, TypeError):
            pass  # e.g. a device or dtype without a fused kernel
    return cls(params, **kwargs)
