"""What a continued fit (``warm_start=True``, ``partial_fit``) may change: the training
settings, not what built the model, and not the Lightning package it was built on."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from skflash.lightning_namespaces import task_namespace


def check_same_namespace(task: Any, namespace: str) -> None:
    """Refuse to continue training a Task with objects of the other Lightning package."""
    if task_namespace(task) != namespace:
        raise ValueError(
            f"This model was trained with {task_namespace(task)} and is given {namespace} "
            "objects now; one Trainer cannot mix the two. Continue training with objects "
            f"of {task_namespace(task)} (or none), or fit a new model (warm_start=False)."
        )


#: Parameters that build the model (its network, loss and input encoding): a
#: continued fit (``warm_start=True``, ``partial_fit``) trains the fitted model on, so
#: a change to one of them is refused rather than ignored.
MODEL_SETTINGS = (
    "backbone",
    "backbone_kwargs",
    "n_ensemble",
    "numeric_embedding",
    "task",
    "task_kwargs",
    "loss",
    "categorical_features",
    "discrete_features",
    "standardize_inputs",
    "standardize_target",
)


def _same_setting(first: Any, now: Any) -> bool:
    if isinstance(first, torch.nn.Module) or isinstance(now, torch.nn.Module):
        # a module is copied by the fit and by pickling: the same layers and sizes
        return type(first) is type(now) and str(first) == str(now)
    try:
        return bool(np.array_equal(first, now) if hasattr(first, "shape") else first == now)
    except Exception:  # values that do not compare (arrays of objects, ...)
        return first is now


def check_same_model(estimator: Any, params: dict[str, Any]) -> None:
    """Refuse a continued fit whose parameters would build another model than the
    fitted one (the first fit's settings are compared as the user gave them)."""
    first = vars(estimator).get("_model_settings")
    if first is None:  # saved by a version that did not keep them
        return
    changed = [k for k in first if k in params and not _same_setting(first[k], params[k])]
    if changed:
        what = ", ".join(f"{k} from {first[k]!r} to {params[k]!r}" for k in changed)
        raise ValueError(
            "A continued fit (warm_start=True or partial_fit) trains the fitted model on, "
            f"but what built it has changed: {what}. Set "
            f"{'it' if len(changed) == 1 else 'them'} back, or fit a new model "
            "(warm_start=False)."
        )
