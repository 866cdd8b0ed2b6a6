"""The fitted predict path as one traced graph, for models that answer many small calls.

Eager torch runs each operator of a predict (scaling, missing-value flags, every layer,
the target's units) as its own call from Python, and each call hands the interpreter lock
back and forth: on a 2-core machine two threads predicting one row at a time get half the
calls per second of one. Traced once, the whole path runs as one call that holds no lock,
so a second thread's checks run beside it, and a lone one-row call takes about a third of
the time.

The graph is built when a model answers its :data:`CALLS_BEFORE_TRACING`-th small call
(tracing takes about 50 ms: a cross-validation fold that predicts once or twice, or a
check that predicts row by row, never pays for it), only for the
estimator's own network on the CPU, and only if it gives bitwise the eager answers on a
probe batch; otherwise predict stays eager. It is kept beside the Task (never pickled),
forgotten at the next fit, and traced again if the network's weights are changed in place
or the network is replaced.
"""

from __future__ import annotations

import copy
import threading
import warnings
import weakref
from typing import Any

import torch
from torch import nn

from skflash.core.model import Task
from skflash.data.numpy_data import NumpyPreprocess
from skflash.data.numpy_postprocess import NumpyPostprocess
from skflash.tasks.classification import ClassificationPostprocess

#: The Postprocesses of the estimators' own Tasks, whose steps a trace repeats.
KNOWN_POSTPROCESSES = (NumpyPostprocess, ClassificationPostprocess)
#: Small predict calls a fitted model answers eagerly before its path is traced.
CALLS_BEFORE_TRACING = 32

#: Per Task: calls counted so far (an int), then the traced graph, or None once tracing
#: was found not to apply. Entries go with their Task.
_GRAPHS: weakref.WeakKeyDictionary[Task, Any] = weakref.WeakKeyDictionary()
_BUILDING = threading.Lock()


class PredictPath(nn.Module):
    """Scaling and missing values (the Preprocess), the Task's network, the target's units
    (the Postprocess): what an eager predict runs on each batch, as one module.

    The network is a copy whose parameters need no gradient, so the traced graph records
    nothing for autograd and is called without a grad-mode context (entering one costs
    two threads a handoff of the interpreter lock).
    """

    def __init__(self, task: Task) -> None:
        super().__init__()
        self.preprocess = task.preprocess
        self.postprocess = task.postprocess
        self.network = copy.deepcopy(task.model).requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.postprocess.per_batch_transform(
            self.network(self.preprocess.per_batch_transform(x))
        )


def _applies(task: Task, dtype: torch.dtype) -> bool:
    """The estimator's own network on the CPU, with the estimator's Preprocess and
    Postprocess: the path whose eager steps :class:`PredictPath` repeats."""
    return (
        type(task).forward is Task.forward
        and isinstance(task.model, nn.Module)
        and type(task.preprocess) is NumpyPreprocess
        and type(task.postprocess) in KNOWN_POSTPROCESSES
        and task.device.type == "cpu"
        and not any(module.training for module in task.modules())
        and dtype.is_floating_point
    )


def _probe(width: int, codes: int, dtype: torch.dtype) -> torch.Tensor:
    """Three rows of numbers, NaN and category codes, unlike the two rows traced."""
    generator = torch.Generator().manual_seed(0)
    numeric = torch.randn(3, width - codes, generator=generator, dtype=torch.float64)
    if numeric.numel():
        numeric[1, 0] = float("nan")
    category = torch.arange(3, dtype=torch.float64).repeat(codes, 1).T
    return torch.cat([numeric, category], dim=1).to(dtype)


def _traced(task: Task, width: int, dtype: torch.dtype) -> Any:
    """The traced :class:`PredictPath`, or None when it cannot be traced or gives other
    answers than the eager path on a probe batch."""
    path = PredictPath(task)
    codes = task.preprocess.num_codes
    try:
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            warnings.simplefilter("ignore")  # tracing's deprecation notice; shape hints
            sample = torch.zeros(2, width, dtype=dtype)
            graph = torch.jit.trace(path, sample, check_trace=False)
            probe = _probe(width, codes, dtype)
            expected = PredictPath(task)(probe)
            # torch optimizes a graph over its first calls: the answers after that count
            if not all(torch.equal(graph(probe), expected) for _ in range(3)):
                return None
    except Exception:  # anything the tracer refuses stays eager
        return None
    return graph


class _Traced:
    """A traced graph and what it was traced from: the network and its weights' versions
    (torch counts each in-place change of a tensor)."""

    def __init__(self, graph: Any, network: nn.Module) -> None:
        self.graph = graph
        self.network = network
        self.weights = list(network.parameters())
        self.version = self.current()

    def current(self) -> int:
        return sum(weight._version for weight in self.weights)

    def fresh(self, task: Task) -> bool:
        return task.model is self.network and self.current() == self.version


def predict_graph(task: Task, width: int, dtype: torch.dtype) -> Any:
    """The traced predict path of ``task`` for a small call, or None: eager for now."""
    state = _GRAPHS.get(task, 0)
    if isinstance(state, _Traced) and state.fresh(task):
        return state.graph
    if state is None:
        return None
    if isinstance(state, int) and state + 1 < CALLS_BEFORE_TRACING:
        _GRAPHS[task] = state + 1  # a lost count between threads only delays the trace
        return None
    with _BUILDING:
        state = _GRAPHS.get(task, 0)
        if not (isinstance(state, _Traced) and state.fresh(task)) and state is not None:
            graph = _traced(task, width, dtype) if _applies(task, dtype) else None
            state = None if graph is None else _Traced(graph, task.model)
            _GRAPHS[task] = state
    return None if state is None else state.graph


def forget(task: Task) -> None:
    """Drop what was traced or counted for ``task`` (its fit changes it)."""
    with _BUILDING:
        _GRAPHS.pop(task, None)
