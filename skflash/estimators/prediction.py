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
from skflash.estimators.serving import eval_twin, traced_path


def model_outputs(estimator: Any, X: Any) -> np.ndarray:
    """The Task's postprocessed outputs for ``X`` (a Dask collection block by block: only
    the outputs are held whole)."""
    if type(X) is not np.ndarray and is_dask_collection(X):
        blocks = RowBlocks(X)
        loaded = (blocks.load(i)[0] for i in range(len(blocks)))
        parts = [model_outputs(estimator, block) for block in loaded if len(block)]
        return np.concatenate(parts) if parts else model_outputs(estimator, blocks.load(0)[0])
    table = estimator._table
    # A float array of the fitted width goes to the traced path before its values are
    # checked: the graph reports an infinity, and the full checks then say what is wrong.
    unchecked = table.as_given(estimator, X)
    if not unchecked:
        X = table.predict_rows(estimator, X)
    threads = threads_for_setting(
        estimator.num_threads, estimator._n_trainable, min(len(X), PREDICT_BATCH_SIZE)
    )
    task = estimator.task_
    if type(X) is np.ndarray and X.dtype.kind == "f" and 0 < len(X) <= PREDICT_BATCH_SIZE:
        path = traced_path(task, X.shape[1], task.dtype)
        answers = None if path is None else path.outputs(X, threads)
        if answers is not None:
            return answers
    if unchecked:
        X = table.predict_rows(estimator, X)
    outputs: np.ndarray | None = None
    start = 0
    # The outputs become numpy arrays at once, so inference mode (cheaper than no_grad
    # for each operation) is safe.
    with torch_threads(threads), torch.inference_mode():
        twin = eval_twin(task)
        for batch in task.predict_batches(X, batch_size=PREDICT_BATCH_SIZE, network=twin):
            if batch.dtype in (torch.float16, torch.bfloat16):
                batch = batch.float()  # numpy has no half precision types of torch's
            values = (batch if batch.device.type == "cpu" else batch.cpu()).numpy()
            if outputs is None:  # one array for all rows, filled batch by batch
                outputs = np.empty((len(X), *values.shape[1:]), dtype=X.dtype)
            outputs[start : start + len(values)] = values
            start += len(values)
    return outputs
