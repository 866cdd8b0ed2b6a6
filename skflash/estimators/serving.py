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
    """The Task's own forward on the CPU, with the estimator's Preprocess and Postprocess,
    in the dtype the Preprocess loads (a model cast by hand after its fit is fed rows
    scaled in another dtype): the path whose eager steps :class:`PredictPath` repeats."""
    return (
        type(task).forward is Task.forward
        and task.preprocess.dtype == dtype
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
    codes = task.preprocess.num_codes
    try:
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            # tracing's deprecation notice and its notes on skflash's own steps (constants
            # recorded), nothing else: filters are process-wide, and another thread may
            # be warning meanwhile
            warnings.filterwarnings("ignore", category=DeprecationWarning, module="torch.jit")
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning, module="skflash")
            path = PredictPath(task)
            graph = torch.jit.trace(path, torch.zeros(2, width, dtype=dtype), check_trace=False)
            probe = _probe(width, codes, dtype)
            expected = path(probe)  # the same module, run eagerly
            # torch optimizes a graph over its first calls: the answers after that count
            if not all(torch.equal(graph(probe), expected) for _ in range(3)):
                return None
    except Exception:  # anything the tracer refuses stays eager
        return None
    return graph


class _Traced:
    """A traced graph and what it was traced from: the network, its dtype and device, and
    its weights' storage and versions (torch counts each in-place change of a tensor;
    ``.to()``, ``.double()``... give the weights new storage). A weight replaced by a new
    ``Parameter`` object, or edited through ``.data``, is not seen (finding it would walk
    the network at every call): refit, or predict on more than 8,192 rows at a time."""

    def __init__(self, graph: Any, task: Task) -> None:
        self.graph = graph
        self.network = task.model
        self.weights = list(self.network.parameters())
        self.state = self.current(task)

    def current(self, task: Task) -> tuple:
        return (
            task.dtype,
            task.device,
            sum(weight._version for weight in self.weights),
            [weight.data_ptr() for weight in self.weights],
        )

    def fresh(self, task: Task) -> bool:
        return task.model is self.network and self.current(task) == self.state


def predict_graph(task: Task, width: int, dtype: torch.dtype, own_network: bool) -> Any:
    """The traced predict path of ``task`` for a small call, or None: eager for now.

    ``own_network``: the network is built by skflash from its registry (a backbone of the
    user's may branch on the values it sees, which a trace would fix to one branch).
    """
    if not own_network:
        return None
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
            state = None if graph is None else _Traced(graph, task)
            _GRAPHS[task] = state
    return None if state is None else state.graph


def forget(task: Task) -> None:
    """Drop what was traced or counted for ``task`` (its fit changes it)."""
    with _BUILDING:
        _GRAPHS.pop(task, None)
