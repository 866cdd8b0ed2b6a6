"""A Task of the user's own under the estimators: ``task=``, ``task__<arg>``.

``tests/user_tasks.py`` holds the seed tutorial's ``RegressionTask``, unchanged, and a
classification Task written the same way (importable, so estimators holding them pickle).
scikit-learn's estimator checks run on both in ``tests/test_sklearn_checks.py``.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_iris
from sklearn.model_selection import GridSearchCV
from torch import nn

from skflash import FlashClassifier, FlashRegressor
from skflash.estimators.parameters import InvalidParameterError
from tests.user_tasks import ClassificationTask, MultiOutputRegressionTask, RegressionTask


@pytest.fixture(scope="module")
def diabetes_xy():
    from sklearn.datasets import load_diabetes

    return load_diabetes(return_X_y=True)


def test_tutorial_task_trains_with_its_own_model_loss_optimizer_and_rate(diabetes_xy):
    X, y = diabetes_xy
    reg = FlashRegressor(
        task=RegressionTask, task__learning_rate=0.05, max_epochs=40, random_state=0
    ).fit(X, y)
    task = reg.task_
    assert type(task) is RegressionTask
    assert isinstance(task.model, nn.Linear) and task.model.in_features == X.shape[1]
    assert task.optimizer is torch.optim.SGD and task.learning_rate == 0.05
    assert list(task.loss_fn.values()) == [torch.nn.functional.mse_loss]
    # The estimator's part: scaled inputs and target, history, predictions in y's units.
    assert len(reg.history_) == reg.n_iter_ == 40
    assert reg.history_[-1]["train_loss"] < reg.history_[0]["train_loss"]
    predictions = reg.predict(X)
    assert predictions.shape == (len(X),)
    assert abs(predictions.mean() - y.mean()) < 0.1 * y.std()
    assert reg.score(X, y) > 0.4


def test_task_learning_rate_is_tuned_in_a_grid_search(diabetes_xy):
    X, y = diabetes_xy
    search = GridSearchCV(
        FlashRegressor(task=RegressionTask, max_epochs=15, random_state=0),
        {"task__learning_rate": [1e-4, 0.05]},
        cv=2,
    ).fit(X, y)
    assert search.best_params_ == {"task__learning_rate": 0.05}
    assert search.best_estimator_.task_.learning_rate == 0.05
    # A routed parameter is a parameter, not an attribute of the estimator.
    params = clone(search.best_estimator_).get_params()
    assert params["task"] is RegressionTask and params["task__learning_rate"] == 0.05
    assert "task__learning_rate" not in vars(search.best_estimator_)


def test_a_fitted_users_task_pickles_and_trains_on(diabetes_xy):
    X, y = diabetes_xy
    reg = FlashRegressor(task=RegressionTask, task__learning_rate=0.05, max_epochs=5).fit(X, y)
    loaded = pickle.loads(pickle.dumps(reg))
    assert type(loaded.task_) is RegressionTask
    np.testing.assert_array_equal(loaded.predict(X), reg.predict(X))
    loaded.partial_fit(X, y)  # on with the Task's own SGD and learning rate
    assert loaded.task_.optimizer is torch.optim.SGD and loaded.n_iter_ == 6


def test_a_users_task_saves_with_skops_trusting_its_class(tmp_path, diabetes_xy):
    sio = pytest.importorskip("skops.io")
    X, y = diabetes_xy
    reg = FlashRegressor(task=RegressionTask, task__learning_rate=0.05, max_epochs=3).fit(X, y)
    path = tmp_path / "model.skops"
    sio.dump(reg, path)
    untrusted = set(sio.get_untrusted_types(file=path))
    assert untrusted == {
        "skflash.estimators.regressor.FlashRegressor",
        "examples.custom_task.RegressionTask",
    }
    loaded = sio.load(path, trusted=sorted(untrusted))
    np.testing.assert_array_equal(loaded.predict(X), reg.predict(X))


@pytest.mark.parametrize("loader", [load_iris, load_breast_cancer])
def test_a_classification_task_gets_the_number_of_classes(loader):
    X, y = loader(return_X_y=True)
    clf = FlashClassifier(task=ClassificationTask, max_epochs=20, random_state=0).fit(X, y)
    n_classes = len(np.unique(y))
    assert clf.task_.model[-1].out_features == n_classes  # index targets, two classes too
    assert clf.score(X, y) > 0.85
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[proba.argmax(axis=1)])
    if n_classes == 2:  # scikit-learn's binary decision function: one margin per sample
        assert clf.decision_function(X).shape == (len(X),)
    loaded = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(loaded.predict_proba(X), proba)


def test_multi_output_when_the_task_is_told_the_number_of_outputs(diabetes_xy):
    X, y = diabetes_xy
    Y = np.column_stack([y, -y])
    multi = FlashRegressor(task=MultiOutputRegressionTask, task__learning_rate=0.05, max_epochs=5)
    assert multi.fit(X, Y).predict(X).shape == (len(X), 2)
    assert multi.__sklearn_tags__().target_tags.multi_output
    single = FlashRegressor(task=RegressionTask, max_epochs=1)
    assert not single.__sklearn_tags__().target_tags.multi_output
    with pytest.raises(ValueError, match="y has 2 target columns, but this Task predicts one"):
        single.fit(X, Y)


@pytest.mark.parametrize(
    "params, message",
    [
        ({"backbone": RegressionTask}, r"backbone=RegressionTask\) got a LightningModule.*task="),
        ({"backbone": RegressionTask(3)}, r"got a LightningModule.*task=RegressionTask"),
        ({"task": RegressionTask, "optimizer": "sgd"}, r"got optimizer='sgd'.*task__<arg>"),
        ({"task": RegressionTask, "learning_rate": 0.1}, "Leave learning_rate at its default"),
        ({"task": RegressionTask, "learning_rate": 1}, "got learning_rate=1"),
        ({"task": RegressionTask, "loss": "l1"}, "got loss='l1'"),
        ({"task": RegressionTask, "backbone": "linear"}, "got backbone='linear'"),
        ({"task": RegressionTask, "n_ensemble": 3}, "got n_ensemble=3"),
        ({"task": RegressionTask, "optimizer__momentum": 0.9}, "got optimizer__momentum"),
        ({"task": RegressionTask, "task__lr": 0.1}, r"task__lr is not an argument of"),
        ({"task__learning_rate": 0.1}, r"got task__learning_rate but no task"),
        ({"task": RegressionTask, "task__num_inputs": 3}, r"task__num_inputs=3.*num_inputs=10"),
        ({"task": RegressionTask(3)}, "not an instance"),
        ({"task": nn.Linear}, "must be one of None or a skflash.Task class"),
    ],
)
def test_conflicting_or_misplaced_parameters_are_refused(params, message, diabetes_xy):
    X, y = diabetes_xy
    with pytest.raises((TypeError, ValueError, InvalidParameterError), match=message):
        FlashRegressor(max_epochs=1, **params).fit(X, y)


def test_a_task_whose_required_argument_is_missing_says_how_to_pass_it(diabetes_xy):
    X, y = diabetes_xy

    class NeedsWidth(RegressionTask):
        def __init__(self, num_inputs, width):
            super().__init__(num_inputs)

    with pytest.raises(TypeError, match=r"could not build NeedsWidth.*task__<arg>"):
        FlashRegressor(task=NeedsWidth, max_epochs=1).fit(X, y)
    reg = FlashRegressor(task=NeedsWidth, task__width=4, max_epochs=1).fit(X, y)
    assert reg.predict(X[:2]).shape == (2,)


def test_the_estimators_early_stopping_serves_a_users_task(diabetes_xy):
    X, y = diabetes_xy
    reg = FlashRegressor(
        task=RegressionTask,
        task__learning_rate=0.05,
        early_stopping=True,
        patience=3,
        max_epochs=300,
        random_state=0,
    ).fit(X, y)
    assert reg.n_iter_ < 300 and reg.best_epoch_ is not None
    assert {"train_loss", "val_loss"} <= set(reg.history_[-1])


def test_a_lightning_pytorch_module_as_backbone_is_refused_too(diabetes_xy):
    unified = pytest.importorskip("lightning.pytorch")

    class Module(unified.LightningModule):
        pass

    with pytest.raises(TypeError, match="got a LightningModule"):
        FlashRegressor(backbone=Module, max_epochs=1).fit(*diabetes_xy)
