"""Search tools users bring: Optuna's OptunaSearchCV, pruning trials through partial_fit."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_diabetes, load_iris

from skflash import FlashClassifier, FlashRegressor

optuna = pytest.importorskip("optuna")
integration = pytest.importorskip("optuna_integration")
from optuna.distributions import FloatDistribution, IntDistribution  # noqa: E402


@pytest.fixture(autouse=True)
def quiet_optuna():
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # optuna's own deprecations
        yield


def test_optuna_search_prunes_through_partial_fit():
    X, y = load_diabetes(return_X_y=True)
    search = integration.OptunaSearchCV(
        FlashRegressor(random_state=0),
        {
            "learning_rate": FloatDistribution(1e-4, 1e-1, log=True),
            "backbone__hidden_sizes": IntDistribution(8, 64),
        },
        cv=3,
        n_trials=6,
        enable_pruning=True,
        max_iter=6,
        random_state=0,
    ).fit(X, y)
    trials = search.study_.trials
    # Each partial_fit call reports one step: a trial ran up to max_iter of them.
    assert all(1 <= len(t.intermediate_values) <= 6 for t in trials)
    assert {t.state for t in trials} <= {
        optuna.trial.TrialState.COMPLETE,
        optuna.trial.TrialState.PRUNED,
    }
    assert search.best_estimator_.n_iter_ > 0
    assert np.isfinite(search.predict(X)).all()


def test_optuna_search_with_a_classifier_passes_its_classes():
    X, y = load_iris(return_X_y=True)
    search = integration.OptunaSearchCV(
        FlashClassifier(random_state=0),
        {"learning_rate": FloatDistribution(1e-3, 1e-1, log=True)},
        cv=3,
        n_trials=3,
        enable_pruning=True,
        max_iter=4,
        random_state=0,
    ).fit(X, y)
    assert search.best_score_ > 0.5
    assert list(search.best_estimator_.classes_) == [0, 1, 2]
