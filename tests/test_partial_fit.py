"""Incremental training: partial_fit and warm_start keep the optimizer state."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from skflash import FlashClassifier, FlashRegressor

QUICK = {"max_epochs": 4, "random_state": 0}


def test_partial_fit_keeps_the_optimizer_state_across_calls_and_pickles(diabetes):
    X, y = diabetes
    reg = FlashRegressor(batch_size=100, random_state=0)
    for _ in range(3):
        reg.partial_fit(X, y)
    steps = {float(s["step"]) for s in reg._optimizer_state["state"].values()}
    assert steps == {15.0}  # 3 calls x 5 batches: the moments were never restarted
    twin = pickle.loads(pickle.dumps(reg))
    np.testing.assert_array_equal(
        twin.partial_fit(X, y).predict(X), reg.partial_fit(X, y).predict(X)
    )


def test_warm_start_continues_the_optimizer(diabetes):
    X, y = diabetes
    reg = FlashRegressor(max_epochs=2, batch_size=221, warm_start=True, random_state=0)
    reg.fit(X, y).fit(X, y)
    steps = {float(s["step"]) for s in reg._optimizer_state["state"].values()}
    assert steps == {8.0} and reg.n_iter_ == 4


def test_partial_fit_with_other_classes_is_refused():
    X = np.random.RandomState(0).normal(size=(60, 3))
    y = np.array(["a", "b", "c"] * 20)
    clf = FlashClassifier(random_state=0).partial_fit(X, y, classes=["a", "b", "c"])
    clf.partial_fit(X, y, classes=["c", "b", "a"])  # the same classes, any order
    with pytest.raises(ValueError, match="differs from the classes"):
        clf.partial_fit(X, y, classes=["a", "b", "c", "d"])
