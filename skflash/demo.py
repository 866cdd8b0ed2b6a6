"""Demo: FlashRegressor against LinearRegression on the diabetes data shipped with sklearn.

Run with ``python -m skflash.demo``. Prints 5-fold cross-validated R² and fit times for
the plain estimator, the estimator in a Pipeline, and a small GridSearchCV.
"""

from __future__ import annotations

import time

import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import GridSearchCV, KFold, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skflash import FlashRegressor


def _row(name: str, estimator, X, y, cv) -> tuple[str, float, float]:
    start = time.perf_counter()
    scores = cross_validate(estimator, X, y, cv=cv, scoring="r2")
    elapsed = time.perf_counter() - start
    return name, float(np.mean(scores["test_score"])), float(np.mean(scores["fit_time"])), elapsed


def main() -> list[tuple[str, float, float, float]]:
    X, y = load_diabetes(return_X_y=True)
    cv = KFold(5, shuffle=True, random_state=0)
    grid = GridSearchCV(
        FlashRegressor(random_state=0),
        {"backbone__hidden_sizes": [(32, 32), (64, 64)]},
        cv=3,
        n_jobs=2,
    )
    rows = [
        _row("LinearRegression", LinearRegression(), X, y, cv),
        _row("FlashRegressor()", FlashRegressor(random_state=0), X, y, cv),
        _row(
            "Pipeline(StandardScaler, FlashRegressor)",
            make_pipeline(StandardScaler(), FlashRegressor(random_state=0)),
            X,
            y,
            cv,
        ),
        _row("GridSearchCV(FlashRegressor, 2 settings x 3 folds)", grid, X, y, cv),
    ]
    print(f"diabetes: {X.shape[0]} samples, {X.shape[1]} features; 5-fold CV, shuffled, seed 0\n")
    print(f"{'model':<52} {'R2':>7} {'fit time':>10} {'CV wall':>9}")
    for name, r2, fit_time, wall in rows:
        print(f"{name:<52} {r2:>7.3f} {fit_time:>9.3f}s {wall:>8.2f}s")
    return rows


if __name__ == "__main__":
    main()
