"""A user's own Task under an estimator: ``FlashRegressor(task=MyTask, task__lr=...)``.

The Task keeps what it defines: its model, loss, optimizer, learning rate, scheduler,
metrics and ``step``. The estimator keeps what it owns: validation, scaling, encoding,
the Trainer, early stopping, history and pickling. What the estimator learns from the
data (the number of input features, of outputs or classes) goes to the constructor
argument that asks for it by name; ``task__<arg>`` parameters give the rest.
"""

from __future__ import annotations

import inspect
from typing import Any

from skflash.core.model import Task
from skflash.data.process import Postprocess
from skflash.estimators import routing
from skflash.lightning_namespaces import NAMESPACES

#: Constructor argument names that receive the number of input features.
INPUT_NAMES = ("num_inputs", "num_features", "n_inputs", "n_features", "in_features", "input_dim")
#: Names that receive the number of outputs (regression) or of classes (classification).
OUTPUT_NAMES = ("num_outputs", "n_outputs", "out_features", "output_dim")
CLASS_NAMES = ("num_classes", "n_classes")
#: Estimator parameters that a Task defines itself: with ``task=`` they stay at their
#: defaults (a value given for one is refused rather than silently ignored).
TASK_OWNED = (
    "backbone",
    "loss",
    "label_smoothing",
    "optimizer",
    "learning_rate",
    "weight_decay",
    "numeric_embedding",
    "n_ensemble",
)


def is_lightning_module(value: Any) -> bool:
    """Whether ``value`` is a LightningModule class or instance (a Task among them)."""
    cls = value if inspect.isclass(value) else type(value)
    return any(  # either Lightning package's LightningModule, neither imported here
        c.__name__ == "LightningModule" and c.__module__.startswith(NAMESPACES)
        for c in inspect.getmro(cls)
    )


def refuse_module_as_backbone(owner: str, backbone: Any) -> None:
    """A Task (or any LightningModule) given as ``backbone`` would be nested under a head
    with its optimizer and loss ignored: say where it goes instead."""
    if is_lightning_module(backbone):
        name = getattr(backbone, "__name__", type(backbone).__name__)
        raise TypeError(
            f"{owner}(backbone={name}) got a LightningModule: a Task brings its own model, "
            f"loss and optimizer, so pass its class as task={name}, with its constructor "
            "arguments as task__<arg> (e.g. task__learning_rate=0.01). backbone takes a "
            "plain nn.Module."
        )


def check_task_params(estimator: Any, params: dict[str, Any], defaults: dict[str, Any]) -> None:
    """Refuse estimator parameters that would be ignored beside ``task``."""
    owner = type(estimator).__name__
    name = params["task"].__name__
    for key in TASK_OWNED:
        if key == "n_ensemble" and params[key] == 1:
            continue  # no ensemble: as with the Task itself
        if key in params and key in defaults and _differs(params[key], defaults[key]):
            raise ValueError(
                f"{owner}(task={name}) got {key}={params[key]!r}, but the Task defines its "
                f"own model, loss and optimizer. Leave {key} at its default and pass what "
                f"{name} takes as task__<arg> (it accepts: {_accepted(params['task'])})."
            )
    for prefix in ("backbone__", "optimizer__"):
        routed = routing.routed(estimator, prefix)
        if routed:
            raise ValueError(
                f"{owner}(task={name}) got {prefix}{next(iter(routed))}: with a Task of your "
                "own, its arguments go in as task__<arg>."
            )
    routing.check_kwargs(params["task"], params["task_kwargs"], "task__")


def _differs(value: Any, default: Any) -> bool:
    return type(value) is not type(default) or value != default


def _accepted(task_cls: type) -> str:
    names = routing.accepted_arguments(task_cls)
    return "any keyword" if names is None else ", ".join(names) or "no arguments"


def learned_arguments(
    task_cls: type, n_inputs: int, n_outputs: int, classes: int | None
) -> dict[str, int]:
    """The data's sizes for the constructor arguments of ``task_cls`` that ask for them."""
    try:
        params = inspect.signature(task_cls).parameters
    except (TypeError, ValueError):
        params = {}
    sizes: dict[str, int] = {}
    for names, value in (
        (INPUT_NAMES, n_inputs),
        (OUTPUT_NAMES, n_outputs if classes is None else None),
        (CLASS_NAMES, classes),
    ):
        found = [n for n in names if n in params]
        if found and value is not None:
            sizes[found[0]] = value
    return sizes


def takes_outputs(task_cls: Any) -> bool:
    """Whether a Task class is told how many targets to predict (multi-output capable)."""
    try:
        params = inspect.signature(task_cls).parameters
    except (TypeError, ValueError):
        return False
    return any(n in params for n in OUTPUT_NAMES)


def build_task(
    params: dict[str, Any],
    n_inputs: int,
    n_outputs: int,
    classes: int | None,
    postprocess: Postprocess,
    owner: str,
) -> Task:
    """The user's Task, built with the data's sizes and the ``task__`` arguments; its
    Postprocess is the estimator's (which reads raw model outputs)."""
    task_cls = params["task"]
    learned = learned_arguments(task_cls, n_inputs, n_outputs, classes)
    for name, size in learned.items():
        given = params["task_kwargs"].get(name, size)
        if given != size:
            raise ValueError(
                f"{owner}(task={task_cls.__name__}) got task__{name}={given!r}, but the "
                f"data gives {name}={size}. The estimator passes {name} to the Task itself: "
                f"leave task__{name} out."
            )
    arguments = {**learned, **params["task_kwargs"]}
    try:
        task = task_cls(**arguments)
    except TypeError as error:
        raise TypeError(
            f"{owner} could not build {task_cls.__name__}(**{arguments}): {error}. The "
            f"estimator supplies the data's sizes to arguments named {list(INPUT_NAMES[:2])}"
            f", {list(OUTPUT_NAMES[:2])} or {list(CLASS_NAMES)}; pass any other required "
            "argument as task__<arg>."
        ) from error
    if not isinstance(task, Task):
        raise TypeError(f"task={task_cls.__name__} did not build a skflash Task.")
    task.postprocess = postprocess
    return task


def continue_arguments(task: Task, params: dict[str, Any]) -> dict[str, Any]:
    """A later fit (``warm_start``, ``partial_fit``) trains on with the Task's own
    optimizer settings; a ``task__learning_rate`` set since applies."""
    return {
        "optimizer": task.optimizer,
        "optimizer_kwargs": task.optimizer_kwargs,
        "learning_rate": params["task_kwargs"].get("learning_rate", task.learning_rate),
        "scheduler": task.scheduler,
        "scheduler_kwargs": task.scheduler_kwargs,
    }
