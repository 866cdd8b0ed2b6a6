"""The benchmark workloads. Each returns result rows; times are medians of interleaved runs."""

from __future__ import annotations

import copy
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, make_friedman1
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import r2_score
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

from benchmarks import out_of_core, peers, tabular, threaded_predict
from skflash import FlashClassifier, FlashRegressor
from skflash.core.threads import torch_threads

Row = dict[str, Any]
FLASH = "FlashRegressor"


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def _interleaved(tools: dict[str, Callable[[], Any]], repeats: int) -> dict[str, tuple[float, Any]]:
    """Run every tool once per round, ``repeats`` rounds; the median time and last result."""
    times: dict[str, list[float]] = {name: [] for name in tools}
    results: dict[str, Any] = {}
    for _ in range(repeats):
        for name, fn in tools.items():
            elapsed, results[name] = _timed(fn)
            times[name].append(elapsed)
    return {name: (statistics.median(times[name]), results[name]) for name in tools}


def _lean_flash(**kwargs: Any) -> FlashRegressor:
    """FlashRegressor doing exactly the peers' work: one network, plain Adam, no scaling,
    no schedule, no dropout."""
    if kwargs.get("backbone", "mlp") == "mlp":
        kwargs = {"backbone__dropout": 0.0, **kwargs}
    params = dict(
        optimizer="adam",
        n_ensemble=1,
        weight_decay=0.0,
        lr_schedule=None,
        standardize_inputs=False,
        standardize_target=False,
        random_state=0,
    )
    params.update(kwargs)
    return FlashRegressor(**params)


def _with_ratios(rows: list[Row], higher_is_better: bool = False, flash: str = FLASH) -> list[Row]:
    flash = next(r for r in rows if r["tool"] == flash)
    key = "throughput" if higher_is_better else "time_s"
    for row in rows:
        if row.get(key) and flash.get(key):
            row["ratio_to_flash"] = row[key] / flash[key]
    return rows


def tutorial(quick: bool) -> list[Row]:
    """Diabetes, nn.Linear(10, 1), batch 64, Adam; 1000 epochs (30 in quick mode)."""
    X, y = load_diabetes(return_X_y=True)
    X, y = X.astype(np.float32), y.astype(np.float32)
    epochs, repeats = (30, 1) if quick else (1000, 5)
    models: dict[str, Any] = {}

    def flash():
        models[FLASH] = _lean_flash(backbone="linear", batch_size=64, max_epochs=epochs).fit(X, y)
        return r2_score(y, models[FLASH].predict(X))

    def hand():
        torch.manual_seed(0)
        model = peers.hand_loop(nn.Linear(10, 1), X, y, epochs, 64)
        return r2_score(y, peers.predict(model, X))

    def skorch():
        net = peers.skorch_regressor(nn.Linear, epochs, 64, in_features=10, out_features=1)
        net.fit(X, y.reshape(-1, 1))
        return r2_score(y, net.predict(X).reshape(-1))

    def lightning():
        torch.manual_seed(0)
        model = peers.plain_lightning(nn.Linear(10, 1), X, y, epochs, 64)
        return r2_score(y, peers.predict(model, X))

    def linear():
        return LinearRegression().fit(X, y).score(X, y)

    tools = {
        FLASH: flash,
        "hand-written loop": hand,
        "skorch": skorch,
        "Lightning Trainer + DataLoader": lightning,
        "LinearRegression": linear,
    }
    measured = _interleaved(tools, repeats)
    rows = [
        {
            "workload": f"tutorial: diabetes, Linear(10,1), {epochs} epochs, batch 64, Adam",
            "tool": name,
            "quality": r2,
            "metric": "train R2",
            "time_s": t,
        }
        for name, (t, r2) in measured.items()
    ]
    return _with_ratios(rows)


def _cross_validated(
    workload: str,
    datasets: dict[str, tuple],
    tools: dict[str, Callable[[], Any]],
    metric: str,
    flash: str,
) -> list[Row]:
    """5-fold shuffled CV score and total time of each tool on each dataset."""
    cv = KFold(5, shuffle=True, random_state=0)
    rows: list[Row] = []
    for name, (X, y) in datasets.items():
        block = []
        for tool, make in tools.items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                elapsed, scores = _timed(
                    lambda make=make, X=X, y=y: cross_val_score(make(), X, y, cv=cv)
                )
            block.append(
                {
                    "workload": f"{workload}: {name}",
                    "tool": tool,
                    "quality": float(np.mean(scores)),
                    "metric": metric,
                    "time_s": elapsed,
                }
            )
        rows += _with_ratios(block, flash=flash)
    return rows


def defaults(quick: bool) -> list[Row]:
    """Regressors with their defaults (MLP behind a StandardScaler), 5-fold CV R²."""
    datasets = {"diabetes": load_diabetes(return_X_y=True)}
    if not quick:
        datasets["friedman1(5000, noise=1.0)"] = make_friedman1(5000, noise=1.0, random_state=0)
    tools = {
        FLASH: lambda: FlashRegressor(random_state=0),
        "LinearRegression": LinearRegression,
        "StandardScaler + MLPRegressor": lambda: make_pipeline(
            StandardScaler(), MLPRegressor(random_state=0)
        ),
    }
    return _cross_validated("defaults", datasets, tools, "5-fold CV R2", FLASH)


def classification(quick: bool) -> list[Row]:
    """FlashClassifier defaults vs a scaled LogisticRegression, 5-fold CV accuracy."""
    datasets = {"breast_cancer": load_breast_cancer(return_X_y=True)}
    if not quick:
        datasets["digits"] = load_digits(return_X_y=True)
    tools = {
        "FlashClassifier": lambda: FlashClassifier(random_state=0),
        "StandardScaler + LogisticRegression": lambda: make_pipeline(
            StandardScaler(), LogisticRegression(max_iter=1000)
        ),
    }
    return _cross_validated(
        "classification defaults", datasets, tools, "5-fold CV accuracy", "FlashClassifier"
    )


def large_flash(epochs: int, **kwargs: Any) -> FlashRegressor:
    """The large workload's FlashRegressor: MLP 128-128, ReLU, batch 256, the peers' work."""
    return _lean_flash(
        backbone="mlp",
        backbone__hidden_sizes=(128, 128),
        backbone__activation="relu",
        batch_size=256,
        max_epochs=epochs,
        **kwargs,
    )


def large(quick: bool) -> list[Row]:
    """Throughput: 200k x 50 float32, MLP 128-128, batch 256, Adam (20k rows in quick mode)."""
    n, epochs, repeats = (20_000, 1, 1) if quick else (200_000, 2, 3)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 50)).astype(np.float32)
    y = (np.sin(X[:, 0]) + X[:, 1] * X[:, 2] + 0.1 * rng.normal(size=n)).astype(np.float32)

    def flash():
        return large_flash(epochs).fit(X, y).score(X[:20000], y[:20000])

    def hand():
        torch.manual_seed(0)
        model = peers.hand_loop(peers.mlp(50, (128, 128)), X, y, epochs, 256)
        return r2_score(y[:20000], peers.predict(model, X[:20000]))

    def permute_once():
        torch.manual_seed(0)
        model = peers.hand_loop(peers.mlp(50, (128, 128)), X, y, epochs, 256, permute_once=True)
        return r2_score(y[:20000], peers.predict(model, X[:20000]))

    def flash_scaled():
        reg = large_flash(1, standardize_inputs=True, standardize_target=True)
        return reg.fit(X, y).score(X[:20000], y[:20000])

    def permute_once_scaled():
        # the scaling people write by hand: statistics, then scaled copies of X and y
        torch.manual_seed(0)
        mean, scale, y_mean, y_scale = X.mean(0), X.std(0), y.mean(), y.std()
        Xs, ys = (X - mean) / scale, (y - y_mean) / y_scale
        model = peers.hand_loop(peers.mlp(50, (128, 128)), Xs, ys, 1, 256, permute_once=True)
        predicted = peers.predict(model, (X[:20000] - mean) / scale) * y_scale + y_mean
        return r2_score(y[:20000], predicted)

    def permute_once_unscaled():
        torch.manual_seed(0)
        model = peers.hand_loop(peers.mlp(50, (128, 128)), X, y, 1, 256, permute_once=True)
        return r2_score(y[:20000], peers.predict(model, X[:20000]))

    def skorch():
        net = peers.skorch_regressor(peers.MLPModule, epochs, 256, n_in=50, hidden=(128, 128))
        net.fit(X, y.reshape(-1, 1))
        return r2_score(y[:20000], net.predict(X[:20000]).reshape(-1))

    tools = {
        FLASH: flash,
        "hand-written loop": hand,
        "hand-written loop, permute once": permute_once,
        "skorch": skorch,
    }
    measured = _interleaved(tools, repeats)
    rows = _with_ratios(
        [
            {
                "workload": f"large: {n // 1000}k x 50, MLP 128-128, batch 256, {epochs} epochs",
                "tool": name,
                "quality": r2,
                "metric": "R2 (first 20k rows)",
                "time_s": t,
                "throughput": n * epochs / t,
            }
            for name, (t, r2) in measured.items()
        ],
        higher_is_better=True,
    )
    scaled = _interleaved(
        {
            f"{FLASH}, input and target scaling on": flash_scaled,
            "hand-written loop, permute once, scaling by hand": permute_once_scaled,
            "hand-written loop, permute once, no scaling": permute_once_unscaled,
        },
        repeats,
    )
    rows += _with_ratios(
        [
            {
                "workload": f"large, scaling on: {n // 1000}k x 50, MLP 128-128, batch 256, "
                "1 epoch",
                "tool": name,
                "quality": r2,
                "metric": "R2 (first 20k rows)",
                "time_s": t,
                "throughput": n / t,
            }
            for name, (t, r2) in scaled.items()
        ],
        higher_is_better=True,
        flash=f"{FLASH}, input and target scaling on",
    )
    return rows


def grid_search(quick: bool) -> list[Row]:
    """GridSearchCV wall time, 5 folds x 6 settings on diabetes, n_jobs=2."""
    X, y = load_diabetes(return_X_y=True)
    X, y = X.astype(np.float32), y.astype(np.float32)
    folds, epochs = (2, 10) if quick else (5, 100)
    lrs = [1e-3, 1e-2]
    hidden = [(32,), (64,)] if quick else [(32,), (64,), (64, 64)]
    if quick:
        lrs = lrs[:1]
    flash = GridSearchCV(
        _lean_flash(batch_size=64, max_epochs=epochs, backbone__activation="relu"),
        {"learning_rate": lrs, "backbone__hidden_sizes": hidden},
        cv=folds,
        n_jobs=2,
    )
    skorch = GridSearchCV(
        peers.skorch_regressor(peers.MLPModule, epochs, 64, n_in=10),
        {"lr": lrs, "module__hidden": hidden},
        cv=folds,
        n_jobs=2,
    )
    # Warm the worker processes first, so that neither tool pays the other's imports.
    for search, target in ((flash, y), (skorch, y.reshape(-1, 1))):
        clone(search).set_params(
            cv=2, param_grid={k: v[:1] for k, v in search.param_grid.items()}
        ).fit(X[:100], target[:100])
    rows = []
    for tool, search, target in ((FLASH, flash, y), ("skorch", skorch, y.reshape(-1, 1))):
        elapsed, _ = _timed(lambda search=search, target=target: search.fit(X, target))
        rows.append(
            {
                "workload": f"GridSearchCV: diabetes, {folds} folds x {len(lrs) * len(hidden)} "
                f"settings, {epochs} epochs, n_jobs=2",
                "tool": tool,
                "quality": search.best_score_,
                "metric": "best CV R2",
                "time_s": elapsed,
            }
        )
    return _with_ratios(rows)


def memory(quick: bool) -> list[Row]:
    """Peak RSS of a fit and predict on 1,000,000 x 50 float64 (100k in quick mode)."""
    rows_n = 100_000 if quick else 1_000_000
    root = str(Path(__file__).resolve().parents[1])  # importable from any directory
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.memory_probe", str(rows_n), "50"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")},
    )
    probe = json.loads(out.stdout.strip().splitlines()[-1])
    budget = probe["input_mb"] + probe["input_mb"] / 2 + 500
    return [
        {
            "workload": f"memory: fit + predict {rows_n // 1000}k x 50 float64, 1 epoch",
            "tool": FLASH,
            "quality": probe["r2"],
            "metric": "R2",
            "time_s": probe["fit_s"],
            "peak_rss_mb": probe["peak_rss_mb"],
            "budget_mb": budget,
            "note": f"input {probe['input_mb']:.0f} MB; budget = input + float32 copy + 500 MB",
        }
    ]


#: What a fresh interpreter imports, per workload: skflash's, then the reference's. The
#: estimators also load scikit-learn, which their users import anyway.
_IMPORTS = {
    "import time": {FLASH: "import skflash", "pytorch_lightning": "import pytorch_lightning"},
    "estimator import time": {
        FLASH: "from skflash import FlashRegressor",
        "pytorch_lightning + sklearn.base": "import pytorch_lightning, sklearn.base",
    },
}


def import_time(quick: bool) -> list[Row]:
    """Median wall time of a fresh interpreter importing skflash vs pytorch_lightning, and
    skflash's estimators vs pytorch_lightning with scikit-learn's base classes; every
    statement once per round, the rounds interleaved."""
    repeats = 1 if quick else 7
    code = "import time; s = time.perf_counter(); {statement}; print(time.perf_counter() - s)"

    def run(statement: str) -> float:
        out = subprocess.run(
            [sys.executable, "-c", code.format(statement=statement)],
            capture_output=True,
            text=True,
            check=True,
        )
        return float(out.stdout.strip())

    times: dict[tuple[str, str], list[float]] = {}
    for _ in range(repeats):
        for workload, statements in _IMPORTS.items():
            for tool, statement in statements.items():
                times.setdefault((workload, tool), []).append(run(statement))
    rows = []
    for workload in _IMPORTS:
        pair = [
            {"workload": workload, "tool": tool, "metric": "", "time_s": statistics.median(t)}
            for (name, tool), t in times.items()
            if name == workload
        ]
        rows += _with_ratios(pair)
    return rows


_BUSY_LOOP = (
    "import time, torch\n"
    "torch.set_num_threads(2)\n"
    "a = torch.randn(512, 512)\n"
    "while True:\n"
    "    a = torch.tanh(a @ a)\n"
)


def busy_machine(quick: bool) -> list[Row]:
    """A default fit on diabetes, quiet and beside two busy torch processes (2 threads each).

    FlashRegressor's thread policy against torch's own setting (``num_threads=None``, what
    every fit did before the policy) and scikit-learn's MLP in a pipeline.
    """
    X, y = load_diabetes(return_X_y=True)
    epochs, repeats = (20, 1) if quick else (200, 5)
    tools = {
        FLASH: lambda: FlashRegressor(max_epochs=epochs, random_state=0).fit(X, y),
        "FlashRegressor(num_threads=None)": lambda: FlashRegressor(
            max_epochs=epochs, num_threads=None, random_state=0
        ).fit(X, y),
        "StandardScaler + MLPRegressor": lambda: make_pipeline(
            StandardScaler(), MLPRegressor(max_iter=epochs, random_state=0)
        ).fit(X, y),
    }
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        quiet = _interleaved(tools, repeats)
        workers = [subprocess.Popen([sys.executable, "-c", _BUSY_LOOP]) for _ in range(2)]
        try:
            time.sleep(2.0)  # let them spin up
            busy = _interleaved(tools, repeats)
        finally:
            for worker in workers:
                worker.kill()
                worker.wait()
    for name in tools:
        for state, measured in (("quiet", quiet), ("beside 2 busy torch processes", busy)):
            rows.append(
                {
                    "workload": f"busy machine: diabetes default fit, {state}",
                    "tool": name,
                    "metric": "",
                    "time_s": measured[name][0],
                    "note": f"{busy[name][0] / quiet[name][0]:.1f}x its quiet time",
                }
            )
    return rows


def float64_input(quick: bool) -> list[Row]:
    """The same 200k x 50 data as float64 and as float32, MLP 128-128, batch 256, 1 epoch."""
    n, repeats = (20_000, 1) if quick else (200_000, 3)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 50))
    y = np.sin(X[:, 0]) + X[:, 1] * X[:, 2] + 0.1 * rng.normal(size=n)
    X32, y32 = X.astype(np.float32), y.astype(np.float32)

    def fit(X_: np.ndarray, y_: np.ndarray) -> Callable[[], float]:
        def run() -> float:
            reg = _lean_flash(backbone__hidden_sizes=(128, 128), batch_size=256, max_epochs=1)
            return reg.fit(X_, y_).score(X_[:20000], y_[:20000])

        return run

    measured = _interleaved({"float64 input": fit(X, y), "float32 input": fit(X32, y32)}, repeats)
    rows = [
        {
            "workload": f"float64 vs float32: {n // 1000}k x 50, MLP 128-128, batch 256, 1 epoch",
            "tool": f"{FLASH}, {name}",
            "quality": r2,
            "metric": "R2 (first 20k rows)",
            "time_s": t,
        }
        for name, (t, r2) in measured.items()
    ]
    return _with_ratios(rows, flash=f"{FLASH}, float32 input")


def _per_call(fn: Callable[[], Any], calls: int) -> float:
    """Median seconds of one call of ``fn`` over ``calls`` calls."""
    times = []
    for _ in range(calls):
        elapsed, _ = _timed(fn)
        times.append(elapsed)
    return statistics.median(times)


def latency(quick: bool) -> list[Row]:
    """One-row predict, and the fixed cost of a partial_fit call on 1,000 rows.

    The fixed cost is a partial_fit call's median time less the median time of the same
    epoch of training by hand (the fitted network's copy, same dtype, batch size and
    thread count, Adam): what a streaming or pruning loop pays per call on top of training.
    """
    calls = 200 if quick else 3000
    X, flash, pipeline = threaded_predict.diabetes_models()
    row = X[:1]
    rows: list[Row] = []
    for _ in range(2):  # the first round warms every tool up; the second is reported
        predict = {
            FLASH: _per_call(lambda: flash.predict(row), calls),
            "StandardScaler + MLPRegressor": _per_call(lambda: pipeline.predict(row), calls),
        }
    try:
        import onnxruntime

        path = Path(tempfile.mkdtemp()) / "flash.onnx"
        session = onnxruntime.InferenceSession(flash.to_onnx(path))
        feed = {"numeric": row.astype(np.float32)}
        session.run(None, feed)
        predict[f"{FLASH} exported, in onnxruntime"] = _per_call(
            lambda: session.run(None, feed), calls
        )
    except ImportError:  # the onnx extra is not installed
        pass
    rows += _with_ratios(
        [
            {"workload": "latency: one-row predict (diabetes)", "tool": name, "time_s": t}
            for name, t in predict.items()
        ]
    )

    X, y = make_friedman1(n_samples=1000, noise=1.0, random_state=0)
    calls = 5 if quick else 40
    reg = FlashRegressor(random_state=0).partial_fit(X, y)
    mlp = MLPRegressor(random_state=0).partial_fit(StandardScaler().fit_transform(X), y)
    network = copy.deepcopy(reg.task_.model)
    dtype = next(network.parameters()).dtype
    as_numpy = np.float64 if dtype == torch.float64 else np.float32
    Xh, yh = X.astype(as_numpy), y.astype(as_numpy)
    batch = min(200, len(X))
    with torch_threads(1):  # what FlashRegressor's thread policy picks for this network

        def by_hand() -> None:
            peers.hand_loop(network, Xh, yh, epochs=1, batch_size=batch, permute_once=True)

        def by_lightning() -> None:
            peers.plain_lightning(network, Xh, yh, epochs=1, batch_size=batch)

        timed = {
            FLASH: _per_call(lambda: reg.partial_fit(X, y), calls),
            "hand-written epoch (same network and work)": _per_call(by_hand, calls),
            "plain Lightning: new Trainer, fit one epoch": _per_call(by_lightning, calls),
        }
    timed["MLPRegressor.partial_fit"] = _per_call(lambda: mlp.partial_fit(X, y), calls)
    hand = timed["hand-written epoch (same network and work)"]
    for name, t in timed.items():
        fixed = f"fixed cost {(t - hand) * 1000:.1f} ms per call"
        rows.append(
            {
                "workload": "latency: partial_fit call, 1,000 rows x 10 (friedman1)",
                "tool": name,
                "time_s": t,
                "note": fixed
                if name in (FLASH, "plain Lightning: new Trainer, fit one epoch")
                else "",
            }
        )
    return rows


WORKLOADS = {
    "tutorial": tutorial,
    "defaults": defaults,
    "classification": classification,
    "large": large,
    "grid_search": grid_search,
    "memory": memory,
    "import_time": import_time,
    "busy_machine": busy_machine,
    "float64_input": float64_input,
    "latency": latency,
    "threaded_predict": threaded_predict.run,
    "out_of_core": out_of_core.run,
    "tabular": tabular.run,
}
