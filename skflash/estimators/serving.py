"""The fitted predict path as one traced graph, for models that answer many small calls.

Eager torch runs each operator of a predict (scaling, missing-value flags, every layer,
the target's units) as its own call from Python, and each call hands the interpreter lock
back and forth: on a 2-core machine two threads predicting one row at a time get half the
calls per second of one. Traced once, the whole path runs as one call that holds no lock,
so a second thread's Python runs beside it. Each thread copies its rows into an input
tensor of its own and the graph writes the answers into an output tensor of its own
(both kept for the next small call), and reports whether the rows hold an infinity: a
call makes no tensor from Python and checks no value itself. A lone one-row call takes
about half the time of the eager path.

The graph is built when a model answers its :data:`CALLS_BEFORE_TRACING`-th small call
(tracing takes about 50 ms: a cross-validation fold that predicts once or twice, or a
check that predicts row by row, never pays for it), only for the
estimator's own network on the CPU, and only if it gives bitwise the eager answers on a
probe batch; otherwise predict stays eager. It is kept on the Task (a copy or a pickle
of the Task counts its calls again), forgotten at the next fit, and traced again if the
network is replaced, cast or moved (a cast the trace does not apply to leaves predict
eager until the next fit); weights changed in place are read by the graph.
"""

from __future__ import annotations

import copy
import threading
import warnings
from typing import Any

import numpy as np
import torch
from torch import nn

from skflash.core.model import Task
from skflash.core.threads import torch_threads
from skflash.data.numpy_data import NumpyPreprocess
from skflash.data.numpy_postprocess import NumpyPostprocess
from skflash.tasks.classification import ClassificationPostprocess

#: The Postprocesses of the estimators' own Tasks, whose steps a trace repeats.
KNOWN_POSTPROCESSES = (NumpyPostprocess, ClassificationPostprocess)
#: Small predict calls a fitted model answers eagerly before its path is traced.
CALLS_BEFORE_TRACING = 32
#: Model dtypes a trace serves: rows are copied in, and answers read out, by numpy (whose
#: casts round as torch's do). Half-precision models load their rows in float32 (a
#: Preprocess dtype other than the model's) and stay eager.
NUMPY_DTYPES = (torch.float32, torch.float64)
#: Calls of up to this many rows keep their thread's buffers for the next call.
KEPT_ROWS = 256

#: The Task attribute that holds its small calls counted so far (an int), then its
#: :class:`TracedPath`, or None once tracing was found not to apply. An attribute, not a
#: weak mapping: a lookup there makes a weak reference to the Task on every call.
STATE = "_skflash_predict_path"
_BUILDING = threading.Lock()


class PredictPath(nn.Module):
    """Scaling and missing values (the Preprocess), the Task's network, the target's units
    (the Postprocess): what an eager predict runs on each batch, as one module.

    The network is :func:`aliased` from ``network``: the traced graph reads the weights
    where they are (what is changed in them in place shows in its answers), records
    nothing for autograd and is called without a grad-mode context (entering one costs
    two threads a handoff of the interpreter lock).
    """

    def __init__(self, task: Task, network: nn.Module) -> None:
        super().__init__()
        self.preprocess = task.preprocess
        self.postprocess = task.postprocess
        self.network = aliased(network)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.postprocess.per_batch_transform(
            self.network(self.preprocess.per_batch_transform(x))
        )

    def into(self, rows: torch.Tensor, out: torch.Tensor, infinite: torch.Tensor) -> torch.Tensor:
        """The answers for ``rows`` written into ``out``; ``infinite`` set to whether the
        rows hold an infinity."""
        infinite.copy_(rows.isinf().any())
        return out.copy_(self(rows))


def aliased(network: nn.Module) -> nn.Module:
    """A copy of ``network`` whose weights and buffers share their storage with
    ``network``'s and need no gradient."""
    shared: dict[int, Any] = {
        id(weight): nn.Parameter(weight.detach(), requires_grad=False)
        for weight in network.parameters()
    }
    shared.update((id(buffer), buffer.detach()) for buffer in network.buffers())
    return copy.deepcopy(network, memo=shared)


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
        and dtype in NUMPY_DTYPES
    )


def _probe(width: int, codes: int, dtype: torch.dtype) -> torch.Tensor:
    """Three rows of numbers, NaN and category codes, unlike the two rows traced."""
    generator = torch.Generator().manual_seed(0)
    numeric = torch.randn(3, width - codes, generator=generator, dtype=torch.float64)
    if numeric.numel():
        numeric[1, 0] = float("nan")
    category = torch.arange(3, dtype=torch.float64).repeat(codes, 1).T
    return torch.cat([numeric, category], dim=1).to(dtype)


def _trace(task: Task, network: nn.Module, width: int, dtype: torch.dtype) -> tuple:
    """:class:`PredictPath` over ``network``, and its :meth:`~PredictPath.into` traced.

    The module is traced, not a function: torch keeps every traced function, and the
    tensors it holds as constants, for the life of the process; a traced module holds the
    weights as attributes and goes with its last reference.
    """
    path = PredictPath(task, network)
    rows = torch.zeros(2, width, dtype=dtype)
    tail = tuple(path(rows).shape[1:])
    out, infinite = torch.empty(2, *tail, dtype=dtype), torch.zeros((), dtype=torch.bool)
    traced = torch.jit.trace_module(path, {"into": (rows, out, infinite)}, check_trace=False)
    return path, traced.into, tail


def _answers_as_eager(traced: tuple, probe: torch.Tensor) -> bool:
    """Whether the graph gives bitwise the eager answers on ``probe`` (no infinity)."""
    path, graph, tail = traced
    expected = path(probe)
    out = torch.empty(len(probe), *tail, dtype=probe.dtype)
    infinite = torch.ones((), dtype=torch.bool)
    # torch optimizes a graph over its first calls: the answers after that count
    return all(torch.equal(graph(probe, out, infinite), expected) for _ in range(3)) and not (
        infinite
    )


def _traced(task: Task, width: int, dtype: torch.dtype) -> Any:
    """The traced predict path of ``task`` and the shape of an answer, or None when it
    cannot be traced or gives other answers than the eager path on a probe batch.

    The traced method is called as it is, without the module's Python call. It reads the
    network's own weights at each call, unless torch computed a value from them once
    (a graph may fold what depends on its weights alone): a first trace, over a copy of
    the network whose weights are then changed in place, must follow the change, or
    predict stays eager.
    """
    codes = task.preprocess.num_codes
    try:
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            # tracing's deprecation notice and its notes on skflash's own steps (constants
            # recorded), nothing else: filters are process-wide, and another thread may
            # be warning meanwhile
            warnings.filterwarnings("ignore", category=DeprecationWarning, module="torch.jit")
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning, module="skflash")
            probe = _probe(width, codes, dtype)
            scratch = copy.deepcopy(task.model)
            trial = _trace(task, scratch, width, dtype)
            if not _answers_as_eager(trial, probe):
                return None
            for tensor in (*scratch.parameters(), *scratch.buffers()):
                if tensor.is_floating_point():
                    tensor.mul_(-0.5).add_(0.125)
            if not _answers_as_eager(trial, probe):
                return None
            traced = _trace(task, task.model, width, dtype)
            _, graph, tail = traced
            if not _answers_as_eager(traced, probe):
                return None
            out, infinite = torch.empty(3, *tail, dtype=dtype), torch.zeros((), dtype=torch.bool)
            graph(probe.index_fill(1, torch.tensor([0]), float("inf")), out, infinite)
            if not infinite:
                return None
    except Exception:  # anything the tracer refuses stays eager
        return None
    return graph, tail


class _Buffers:
    """One thread's input and output tensors for calls of one number of rows, and the
    numpy arrays that share their memory."""

    __slots__ = ("infinite", "infinite_array", "n_rows", "out", "out_array", "rows", "rows_array")

    def __init__(self, n_rows: int, width: int, tail: tuple, dtype: torch.dtype) -> None:
        self.n_rows = n_rows
        # plain tensors even if the caller is in inference mode: the graph writes to them
        # in place, which torch refuses for inference tensors outside that mode
        with torch.inference_mode(False):
            self.rows = torch.empty(n_rows, width, dtype=dtype)
            self.out = torch.empty(n_rows, *tail, dtype=dtype)
            self.infinite = torch.zeros((), dtype=torch.bool)
        self.rows_array = self.rows.numpy()
        self.out_array = self.out.numpy()
        self.infinite_array = self.infinite.numpy()


class TracedPath:
    """A traced predict path, what it was traced from, and each calling thread's buffers.

    What it was traced from: the network, and the storage of its weights, which the graph
    reads at each call (what is changed in them in place shows in the answers; ``.to()``,
    ``.double()``... give the weights new storage, and the path is traced again). A weight
    replaced by a new ``Parameter`` object, or given new storage through ``.data``, is not
    seen (finding it would walk the network at every call): refit, or predict on more
    than 8,192 rows at a time.

    A call copies the rows into its thread's input tensor and the graph writes the answers
    into its output tensor, both made once and reused: torch calls from Python that make
    tensors or arrays (``torch.from_numpy``, ``Tensor.numpy``) hand the interpreter lock
    around, and a second thread then waits for it. Only the graph's run lets go of it.
    """

    def __init__(self, graph: Any, tail: tuple, task: Task, width: int) -> None:
        self.graph = graph
        self.tail = tail
        self.width = width
        self.dtype = task.dtype
        self.network = task.model
        self.first = next(iter(self.network.parameters()), None)
        self.state = self.current()
        self._threads = threading.local()

    def current(self) -> int:
        """Where the first weight's values are: a cast or a move of the network
        (``.double()``, ``.to(device)``) gives every weight new storage."""
        return 0 if self.first is None else self.first.data_ptr()

    def __reduce__(self) -> tuple:
        # a copied or pickled Task (``copy.deepcopy``, a spawned process) counts again
        return int, ()

    def fresh(self, task: Task) -> bool:
        # the module registry, not ``task.model``: that lookup fails over to
        # nn.Module.__getattr__ through an AttributeError, on every call
        return task._modules.get("model") is self.network and self.current() == self.state

    def outputs(self, X: np.ndarray, threads: int | None) -> np.ndarray | None:
        """The answers for the float rows ``X`` in ``X``'s dtype, as the eager loop gives
        them; None if ``X`` holds an infinity in the model's dtype (the graph reports it,
        so that rows are checked for one without a call of their own)."""
        buffers = getattr(self._threads, "buffers", None)
        if buffers is None or buffers.n_rows != len(X):
            buffers = _Buffers(len(X), self.width, self.tail, self.dtype)
            if len(X) <= KEPT_ROWS:
                self._threads.buffers = buffers
        if X.dtype == buffers.rows_array.dtype:
            np.copyto(buffers.rows_array, X)
        else:
            with np.errstate(over="ignore"):  # too large for float32: infinite, as torch casts
                np.copyto(buffers.rows_array, X)
        with torch_threads(threads):
            # no grad-mode context: the graph records no gradients
            self.graph(buffers.rows, buffers.out, buffers.infinite)
        return None if buffers.infinite_array else buffers.out_array.astype(X.dtype)


def traced_path(task: Task, width: int, dtype: torch.dtype, own_network: bool) -> TracedPath | None:
    """The traced predict path of ``task`` for a small call, or None: eager for now.

    ``own_network``: the network is built by skflash from its registry (a backbone of the
    user's may branch on the values it sees, which a trace would fix to one branch).
    """
    if not own_network:
        return None
    state = vars(task).get(STATE, 0)
    if type(state) is TracedPath and state.fresh(task):
        return state
    if state is None:
        return None
    if isinstance(state, int) and state + 1 < CALLS_BEFORE_TRACING:
        vars(task)[STATE] = state + 1  # a lost count between threads only delays the trace
        return None
    with _BUILDING:
        state = vars(task).get(STATE, 0)
        if not (isinstance(state, TracedPath) and state.fresh(task)) and state is not None:
            traced = _traced(task, width, dtype) if _applies(task, dtype) else None
            state = None if traced is None else TracedPath(*traced, task, width)
            vars(task)[STATE] = state
    return state


def forget(task: Task) -> None:
    """Drop what was traced or counted for ``task`` (its fit changes it)."""
    with _BUILDING:
        vars(task).pop(STATE, None)
