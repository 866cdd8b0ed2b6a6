"""Predict served from threads: calls per second of one fitted model called from 1, 2 and 8
threads at once, against one thread, with a plain torch module and scikit-learn's MLP
pipeline measured the same way in the same run.

Every configuration runs in rounds, interleaved (1 thread, 2 threads, 8 threads, then
again), and the median round is reported: the machine may be shared.
"""

from __future__ import annotations

import functools
import statistics
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from sklearn.datasets import load_diabetes
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skflash import FlashRegressor
from skflash.core.threads import torch_threads

FLASH = "FlashRegressor"
THREADS = (1, 2, 8)


def calls_per_second(predict: Callable[[], Any], threads: int, calls: int) -> float:
    """Calls per second of ``predict`` run ``calls`` times by each of ``threads`` threads,
    all started together."""
    start = threading.Barrier(threads + 1)

    def work() -> None:
        start.wait()
        for _ in range(calls):
            predict()

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    start.wait()
    began = time.perf_counter()
    for worker in workers:
        worker.join()
    return threads * calls / (time.perf_counter() - began)


def _plain_torch(reg: FlashRegressor) -> Callable[[np.ndarray], Any]:
    """The fitted network called by hand, as a torch user serves one (no checks)."""
    network = reg.task_.model.eval()
    dtype = next(network.parameters()).dtype

    def predict(rows: np.ndarray) -> np.ndarray:
        with torch_threads(1), torch.inference_mode():  # one intra-op thread, as skflash
            return network(torch.as_tensor(rows, dtype=dtype)).numpy()

    return predict


def diabetes_models() -> tuple[np.ndarray, FlashRegressor, Any]:
    """Diabetes' X, FlashRegressor and StandardScaler + MLPRegressor fitted on it."""
    X, y = load_diabetes(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        flash = FlashRegressor(max_epochs=5, random_state=0).fit(X, y)
        pipeline = make_pipeline(StandardScaler(), MLPRegressor(max_iter=5, random_state=0))
        pipeline.fit(X, y)
    return X, flash, pipeline


def run(quick: bool) -> list[dict[str, Any]]:
    calls, rounds = (100, 2) if quick else (1500, 5)
    X, flash, pipeline = diabetes_models()
    plain = _plain_torch(flash)
    tools = {
        FLASH: flash.predict,
        "plain torch module (no checks)": plain,
        "StandardScaler + MLPRegressor": pipeline.predict,
    }
    rows = []
    for n_rows in (1, 100):
        batch = np.ascontiguousarray(X[:n_rows])
        measured: dict[tuple[str, int], list[float]] = {}
        for _ in range(rounds):
            for name, predict in tools.items():
                for threads in THREADS:
                    call = functools.partial(predict, batch)
                    rate = calls_per_second(call, threads, calls // threads)
                    measured.setdefault((name, threads), []).append(rate)
        for (name, threads), rates in measured.items():
            rate = statistics.median(rates)
            single = statistics.median(measured[(name, 1)])
            rows.append(
                {
                    "workload": f"threaded predict: {n_rows}-row calls (diabetes)",
                    "tool": f"{name}, {threads} thread{'s' if threads > 1 else ''}",
                    "time_s": 1.0 / rate,
                    "throughput": rate * n_rows,  # rows/s; the note gives calls/s
                    "note": f"{rate / single:.2f}x one thread's calls/s",
                }
            )
    return rows


if __name__ == "__main__":
    for row in run(quick=False):
        calls = 1 / row["time_s"]
        print(f"{row['workload']:<40} {row['tool']:<45} {calls:>9.0f} calls/s  {row['note']}")
