"""The fitted predict path traced as one graph, and the calls it answers.

Eager torch runs each operator of a predict (scaling, missing-value flags, every layer,
the target's units) as its own call from Python, and each call hands the interpreter lock
back and forth: on a 2-core machine two threads predicting one row at a time get half the
calls per second of one. Traced once, the whole path runs as one call that holds no lock,
so a second thread's Python runs beside it. Each thread copies its rows into an input
tensor of its own and the graph writes the answers into an output tensor of its own
(both kept for the next small call), and reports whether the rows hold an infinity: a
call makes no tensor from Python and checks no value itself. A lone one-row call takes
about half the time of the eager path.

A path is traced only if it gives bitwise the eager answers on a probe batch (when, and
for which models, is :mod:`skflash.estimators.serving`'s decision). The graph reads the
network's weights where they are. torch keeps each traced module's compiled code for the
life of the process (about 0.3-1.2 MB), so a process traces at most :data:`MAX_TRACES`
paths; later models answer eagerly.
"""

from __future__ import annotations

import copy
import sys
import threading
from typing import Any

import numpy as np
import torch
from torch import nn

from skflash.core.aliased import aliased
from skflash.core.model import Task
from skflash.core.threads import torch_threads
from skflash.data.numpy_data import NumpyPreprocess
from skflash.data.numpy_postprocess import NumpyPostprocess
from skflash.estimators.model_watch import ModelWatch
from skflash.estimators.quiet import quiet_lightning
from skflash.tasks.classification import ClassificationPostprocess

#: The Postprocesses of the estimators' own Tasks, whose steps a trace repeats.
KNOWN_POSTPROCESSES = (NumpyPostprocess, ClassificationPostprocess)
#: Model dtypes a trace serves: rows are copied in, and answers read out, by numpy (whose
#: casts round as torch's do). Half-precision models load their rows in float32 (a
#: Preprocess dtype other than the model's) and stay eager.
NUMPY_DTYPES = (torch.float32, torch.float64)
#: Calls of up to this many rows keep their thread's buffers for the next call.
KEPT_ROWS = 256

#: Traced paths a process builds at most (each leaves its compiled code with torch).
MAX_TRACES = 100
#: torch's tracer is not supported from Python 3.14 on.
TRACEABLE_PYTHON = sys.version_info < (3, 14)

#: Traces built so far, and whether each architecture's graph was found to read its
#: weights where they are (the trial trace of :func:`traced`, made once per architecture).
_traces = 0
_reads_live_weights: dict[tuple, bool] = {}


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
        self.network = aliased(network).eval()  # predict runs every layer in eval mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.postprocess.per_batch_transform(
            self.network(self.preprocess.per_batch_transform(x))
        )

    def into(self, rows: torch.Tensor, out: torch.Tensor, infinite: torch.Tensor) -> torch.Tensor:
        """The answers for ``rows`` written into ``out``; ``infinite`` set to whether the
        rows hold an infinity."""
        infinite.copy_(rows.isinf().any())
        return out.copy_(self(rows))


def applies(task: Task, dtype: torch.dtype) -> bool:
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


def _architecture(network: nn.Module, dtype: torch.dtype) -> tuple:
    """What decides whether a graph of ``network`` reads its weights where they are."""
    layers = tuple((name, type(module)) for name, module in network.named_modules())
    shapes = tuple(tuple(weight.shape) for weight in network.parameters())
    return layers, shapes, dtype


def _reads_weights_live(task: Task, probe: torch.Tensor) -> bool:
    """Whether a graph over a copy of the network follows the copy's weights changed in
    place: torch may fold into a constant what a graph computes from its weights alone."""
    scratch = copy.deepcopy(task.model)
    trial = _trace(task, scratch, probe.shape[1], probe.dtype)
    if not _answers_as_eager(trial, probe):
        return False
    for tensor in (*scratch.parameters(), *scratch.buffers()):
        if tensor.is_floating_point():
            tensor.mul_(-0.5).add_(0.125)
    return _answers_as_eager(trial, probe)


def traced(task: Task, width: int, dtype: torch.dtype) -> Any:
    """The traced predict path of ``task`` and the shape of an answer, or None when it
    cannot be traced or gives other answers than the eager path on a probe batch.

    The traced method is called as it is, without the module's Python call. It reads the
    network's own weights at each call, unless torch computed a value from them once: the
    first network of each architecture is traced twice, once over a copy whose weights
    are then changed in place and must show the change, or predict stays eager.

    torch's notices about its tracer (deprecated; a trace that may not generalize) are
    silenced for this thread alone (:func:`~skflash.estimators.quiet.quiet_lightning`):
    they speak of skflash's use of the tracer, and the probe checks the trace.
    """
    global _traces
    if not TRACEABLE_PYTHON or _traces >= MAX_TRACES:
        return None
    probe = _probe(width, task.preprocess.num_codes, dtype)
    try:
        with quiet_lightning(), torch.inference_mode(False), torch.no_grad():
            architecture = _architecture(task.model, dtype)
            if architecture not in _reads_live_weights:
                _traces += 1
                _reads_live_weights[architecture] = _reads_weights_live(task, probe)
            if not _reads_live_weights[architecture]:
                return None
            _traces += 1
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


def _held_in_cpp(tensors: list[torch.Tensor]) -> Any:
    """A reference to each of ``tensors`` held by torch itself (its C++ list type), or
    None where this torch has none: the graph's run then hands the lock over more often."""
    try:
        return torch.ScriptList(tensors)
    except Exception:
        return None


class _Buffers:
    """One thread's input and output tensors for calls of one number of rows, and the
    numpy arrays that share their memory.

    The tensors are also held by torch itself (:func:`_held_in_cpp`). A run of the graph
    takes a reference to each input and drops it before returning; the last reference
    torch holds to a tensor that a Python object owns is dropped under the interpreter
    lock, so without the second one each call took the lock back three times, and a
    second thread predicting meanwhile held it each time: two threads answered 0.6-0.7x
    the one-row calls of one. Held, the run takes the lock back once, when it returns.
    """

    __slots__ = (
        "held",
        "infinite",
        "infinite_array",
        "n_rows",
        "out",
        "out_array",
        "rows",
        "rows_array",
    )

    def __init__(self, n_rows: int, width: int, tail: tuple, dtype: torch.dtype) -> None:
        self.n_rows = n_rows
        # plain tensors even if the caller is in inference mode: the graph writes to them
        # in place, which torch refuses for inference tensors outside that mode
        with torch.inference_mode(False):
            self.rows = torch.empty(n_rows, width, dtype=dtype)
            self.out = torch.empty(n_rows, *tail, dtype=dtype)
            self.infinite = torch.zeros((), dtype=torch.bool)
        self.held = _held_in_cpp([self.rows, self.out, self.infinite])
        self.rows_array = self.rows.numpy()
        self.out_array = self.out.numpy()
        self.infinite_array = self.infinite.numpy()


class TracedPath:
    """A traced predict path, a :class:`ModelWatch` of what it was traced from, and each
    calling thread's buffers.

    The graph reads the network's weights where they are: what is changed in them in
    place shows in the answers. Anything else changed in the model (the watch sees it)
    has the call answered eagerly, and the path is traced again after as many small
    calls as the first time.

    A call copies the rows into its thread's input tensor and the graph writes the answers
    into its output tensor, both made once and reused: torch calls from Python that make
    tensors or arrays (``torch.from_numpy``, ``Tensor.numpy``) hand the interpreter lock
    around, and a second thread then waits for it. Only the graph's run lets go of it,
    once (see :class:`_Buffers`).
    """

    __slots__ = ("_threads", "dtype", "graph", "tail", "watch", "width")

    def __init__(self, graph: Any, tail: tuple, watch: ModelWatch, width: int, dtype: Any) -> None:
        self.graph = graph
        self.tail = tail
        self.watch = watch
        self.width = width
        self.dtype = dtype
        self._threads = threading.local()

    def outputs(self, X: np.ndarray, threads: int | None) -> np.ndarray | None:
        """The answers for the float rows ``X`` in ``X``'s dtype, as the eager loop gives
        them; None if ``X`` holds an infinity in the model's dtype (the graph reports it,
        so that rows are checked for one without a call of their own)."""
        local = vars(self._threads)
        # taken while in use: a call made meanwhile on this thread (by a garbage-collector
        # callback, a signal handler) makes buffers of its own
        kept = local.pop("buffers", None)
        buffers = kept
        if kept is None or kept.n_rows != len(X):
            buffers = _Buffers(len(X), self.width, self.tail, self.dtype)
        if X.dtype == buffers.rows_array.dtype:
            np.copyto(buffers.rows_array, X)
        else:
            with np.errstate(over="ignore"):  # too large for float32: infinite, as torch casts
                np.copyto(buffers.rows_array, X)
        with torch_threads(threads):
            # no grad-mode context: the graph records no gradients
            self.graph(buffers.rows, buffers.out, buffers.infinite)
        answers = None if buffers.infinite_array else buffers.out_array.astype(X.dtype)
        if len(X) <= KEPT_ROWS or kept is not None:
            local["buffers"] = buffers if len(X) <= KEPT_ROWS else kept
        return answers
