"""Incremental training: partial_fit and warm_start keep the optimizer state."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from skflash import FlashClassifier, FlashRegressor
from skflash.lightning_namespaces import UNIFIED, task_namespace

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


@pytest.mark.parametrize(
    "change",
    [
        {"backbone": "linear"},
        {"backbone__hidden_sizes": (8,)},
        {"loss": "huber"},
        {"n_ensemble": 1},
    ],
)
def test_a_continued_fit_refuses_settings_that_built_another_model(change, diabetes):
    X, y = diabetes
    reg = FlashRegressor(max_epochs=1, warm_start=True, random_state=0).fit(X, y)
    weights = [w.clone() for w in reg.task_.model.parameters()]
    reg.set_params(**change)
    for fit_again in (reg.fit, reg.partial_fit):
        with pytest.raises(ValueError, match=r"what built it has changed: .* Set it back"):
            fit_again(X, y)
    kept = reg.task_.model.parameters()
    assert all(torch.equal(a, b) for a, b in zip(weights, kept, strict=True))


def test_a_continued_fit_takes_new_training_settings(diabetes):
    X, y = diabetes
    reg = FlashRegressor(max_epochs=1, warm_start=True, random_state=0).fit(X, y)
    reg.set_params(learning_rate=1e-4, max_epochs=2, optimizer="sgd", batch_size=32).fit(X, y)
    assert reg.n_iter_ == 3


def test_a_continued_fit_follows_the_fitted_lightning_package_without_objects(diabetes):
    from lightning.pytorch.callbacks import Timer

    X, y = diabetes
    reg = FlashRegressor(max_epochs=1, callbacks=[Timer()], random_state=0).fit(X, y)
    reg.set_params(callbacks=None).partial_fit(X, y)
    assert task_namespace(reg.task_) == UNIFIED
