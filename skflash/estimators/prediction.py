"""Predictions of a fitted estimator: its table encoder, then the Task in batches.

No Trainer runs here: rows go through the Task's predict hooks and Postprocess batch by
batch, into one array in the input's dtype, whatever dtype the model trained in. A model
that answers many small calls answers them through its traced predict path instead (see
:mod:`skflash.estimators.serving`), with the same results.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from skflash.core.threads import threads_for_setting, torch_threads
from skflash.data.row_blocks import RowBlocks, is_dask_collection
from skflash.estimators.fit_plan import PREDICT_BATCH_SIZE
from skflash.estimators.serving import predict_graph


def model_outputs(estimator: Any, X: Any) -> np.ndarray:
    """The Task's postprocessed outputs for ``X`` (a Dask collection block by block: only
    the outputs are held whole)."""
    if is_dask_collection(X):
        blocks = RowBlocks(X)
        loaded = (blocks.load(i)[0] for i in range(len(blocks)))
        parts = [model_outputs(estimator, block) for block in loaded if len(block)]
        return np.concatenate(parts) if parts else model_outputs(estimator, blocks.load(0)[0])
    X = estimator._table.predict_rows(estimator, X)
    threads = threads_for_setting(
        estimator.num_threads, estimator._n_trainable, min(len(X), PREDICT_BATCH_SIZE)
    )
    task = estimator.task_
    if type(X) is np.ndarray and X.dtype.kind == "f" and 0 < len(X) <= PREDICT_BATCH_SIZE:
        own = isinstance(estimator.backbone, str) and getattr(estimator, "task", None) is None
        graph = predict_graph(task, X.shape[1], task.dtype, own)
        if graph is not None:
            return _traced_outputs(graph, X, task.dtype, threads)
    outputs: np.ndarray | None = None
    start = 0
    # The outputs become numpy arrays at once, so inference mode (cheaper than no_grad
    # for each operation) is safe.
    with torch_threads(threads), torch.inference_mode():
        for batch in task.predict_batches(X, batch_size=PREDICT_BATCH_SIZE):
            if batch.dtype in (torch.float16, torch.bfloat16):
                batch = batch.float()  # numpy has no half precision types of torch's
            values = (batch if batch.device.type == "cpu" else batch.cpu()).numpy()
            if outputs is None:  # one array for all rows, filled batch by batch
                outputs = np.empty((len(X), *values.shape[1:]), dtype=X.dtype)
            outputs[start : start + len(values)] = values
            start += len(values)
    return outputs


def _traced_outputs(graph: Any, X: np.ndarray, dtype: torch.dtype, threads: int | None) -> Any:
    """One batch of rows through the traced predict path, as the eager loop gives it."""
    shared = X.flags.writeable and min(X.strides) >= 0  # what torch can share
    x = torch.from_numpy(X if shared else X.copy())
    if x.dtype != dtype:  # each torch call from Python hands the interpreter lock around
        x = x.to(dtype)
    with torch_threads(threads):
        values = graph(x)  # needs no grad-mode context: the graph records no gradients
    if values.dtype in (torch.float16, torch.bfloat16):
        values = values.float()
    return values.numpy().astype(X.dtype, copy=False)
