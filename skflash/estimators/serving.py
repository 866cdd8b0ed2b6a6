"""When a fitted model's small predict calls are answered by a traced graph, and the
eval-mode twin that answers the others.

The graph (:mod:`skflash.estimators.predict_graph`) is built when a model answers its
:data:`CALLS_BEFORE_TRACING`-th small call (tracing takes about 50 ms: a cross-validation
fold that predicts once or twice, or a check that predicts row by row, never pays for
it), only for a network the estimator built from skflash's own backbones, on the CPU,
and only if it gives bitwise the eager answers on a probe batch; otherwise predict stays
eager. It is kept on the Task (a copy or a pickle of the Task counts its calls again).
Weights changed in place are read by the graph; anything else done to the model (see
:mod:`skflash.estimators.model_watch`) has the call answered eagerly and the path traced
again after as many calls.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import torch
from torch import nn

from skflash.core.aliased import aliased
from skflash.core.backbones import is_built_in
from skflash.core.model import Task
from skflash.estimators import predict_graph
from skflash.estimators.model_watch import ModelWatch
from skflash.estimators.predict_graph import TracedPath

#: Small predict calls a fitted model answers eagerly before its path is traced.
CALLS_BEFORE_TRACING = 32
#: The Task attribute that holds its :class:`Serving` (small calls counted so far, then
#: the :class:`TracedPath` or a refusal). Absent: the Task's network is not one of
#: skflash's own (or it was not fitted by an estimator), and stays eager. An attribute,
#: not a weak mapping: a lookup there makes a weak reference to the Task on every call.
STATE = "_skflash_predict_path"
#: Held while a path is traced. Re-entrant: a predict run by a garbage-collector callback
#: during a trace may trace another model; made anew in a forked child.
_BUILDING = threading.RLock()


def _after_fork() -> None:
    global _BUILDING
    _BUILDING = threading.RLock()


os.register_at_fork(after_in_child=_after_fork)


class _Refused:
    """Tracing was tried and did not apply (the probe's answers differed, the tracer
    refused): predict stays eager until the :class:`ModelWatch` sees the model change."""

    __slots__ = ("watch",)

    def __init__(self, watch: ModelWatch) -> None:
        self.watch = watch


class Serving:
    """What serving holds for a Task: small calls counted so far (an int), its
    :class:`TracedPath`, or a refusal. One object for the Task's life, so that the Task's
    own attributes stay as its :class:`ModelWatch` saw them; a copied or pickled Task
    (``copy.deepcopy``, a spawned process) counts again."""

    __slots__ = ("state", "twin")

    def __init__(self) -> None:
        self.state: int | TracedPath | _Refused = 0
        self.twin: tuple[ModelWatch, nn.Module] | None = None

    def __reduce__(self) -> tuple:
        return Serving, ()


def traced_path(task: Task, width: int, dtype: torch.dtype) -> TracedPath | None:
    """The traced predict path of ``task`` for a small call, or None: eager for now."""
    serving = vars(task).get(STATE)
    if type(serving) is not Serving:  # not a network of skflash's own backbones
        return None
    state = serving.state
    kind = type(state)
    if kind is TracedPath:
        if state.watch.unchanged():
            return state
        serving.state = 1  # changed by hand: eager, and traced again later
        return None
    if kind is _Refused:
        if not state.watch.unchanged():
            serving.state = 1
        return None
    if state + 1 < CALLS_BEFORE_TRACING:
        serving.state = state + 1  # a lost count between threads only delays the trace
        return None
    with _BUILDING:
        if type(serving.state) is int:
            watch = ModelWatch(task)
            if not watch.applies():  # a hook, train mode, autocast: try again later
                serving.state = 0
                return None
            applies = predict_graph.applies(task, dtype)
            built = predict_graph.traced(task, width, dtype) if applies else None
            if built is None:
                serving.state = _Refused(watch)
            else:
                serving.state = TracedPath(*built, watch, width, dtype)
        state = serving.state
    return state if type(state) is TracedPath else None


def eval_twin(task: Task) -> nn.Module | None:
    """An eval-mode twin of the Task's network sharing its weights, for the eager path,
    kept while the model is what it was made from: predict never switches the modes of
    a network that a fit in another thread may be training. None: the Task is called
    itself (not a network of skflash's own; a hook or autocast that the twin would miss)."""
    serving = vars(task).get(STATE)
    if type(serving) is not Serving:
        return None
    kept = serving.twin
    if kept is not None and kept[0].unchanged():
        return kept[1]
    watch = ModelWatch(task)
    if not watch.applies():
        return None
    with torch.inference_mode(False):  # plain views: training changes them in place
        twin = aliased(task.model).eval()
    serving.twin = (watch, twin)
    return twin


def own_network(backbone: Any, task: Any) -> bool:
    """Whether an estimator with these ``backbone`` and ``task`` parameters builds its
    network from skflash's own backbones, whose steps a trace repeats whatever the
    values (a module or a registered backbone of the user's may branch on them)."""
    return task is None and isinstance(backbone, str) and is_built_in(backbone)


def reset(task: Task, traceable: bool) -> None:
    """Count ``task``'s small calls from now on (a fit's new Task, a loaded one) if its
    network is ``traceable`` (see :func:`own_network`); otherwise it stays eager. A path
    traced before a fit that continued the same Task (``partial_fit``, ``warm_start``:
    the optimizer changes the weights in place) is kept while the model is what it
    traced."""
    with _BUILDING:
        serving = vars(task).get(STATE)
        if not traceable:
            vars(task).pop(STATE, None)
        elif type(serving) is not Serving:
            vars(task)[STATE] = Serving()
        elif not (type(serving.state) is TracedPath and serving.state.watch.unchanged()):
            serving.state = 0
