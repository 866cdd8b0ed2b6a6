"""FlashClassifier: labels of any kind, probabilities, class weights, sklearn tools, errors."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import sparse
from sklearn.datasets import (
    load_breast_cancer,
    load_iris,
    make_classification,
    make_multilabel_classification,
)
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skflash import FlashClassifier, FlashRegressor
from skflash.tasks import ClassificationTask

FAST = {"max_epochs": 15, "batch_size": 16, "learning_rate": 0.01, "random_state": 0}


@pytest.fixture(scope="module")
def three_classes():
    X, y = make_classification(
        n_samples=150, n_features=6, n_informative=4, n_classes=3, random_state=0
    )
    return X, y


def test_defaults_match_logistic_regression_on_breast_cancer():
    X, y = load_breast_cancer(return_X_y=True)
    cv = KFold(5, shuffle=True, random_state=0)
    flash = cross_val_score(FlashClassifier(random_state=0), X, y, cv=cv).mean()
    logreg = cross_val_score(make_pipeline(StandardScaler(), LogisticRegression()), X, y, cv=cv)
    assert flash > logreg.mean() - 0.03


@pytest.mark.parametrize(
    "labels",
    [np.array(["cat", "dog", "eel"]), np.array([10, 20, 30]), np.array([True, False, True])],
    ids=["strings", "ints", "bools"],
)
def test_predict_returns_original_labels(three_classes, labels):
    X, y = three_classes
    y_labels = labels[y % len(np.unique(labels))] if labels.dtype != bool else y == 1
    clf = FlashClassifier(**FAST).fit(X, y_labels)
    assert set(clf.classes_) == set(np.unique(y_labels))
    predicted = clf.predict(X)
    assert predicted.dtype == np.asarray(y_labels).dtype
    assert set(predicted) <= set(clf.classes_)
    assert clf.score(X, y_labels) > 0.6


def test_probabilities_sum_to_one_binary_and_multiclass(three_classes):
    X, y = three_classes
    multi = FlashClassifier(**FAST).fit(X, y)
    proba = multi.predict_proba(X)
    assert proba.shape == (150, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-6)
    np.testing.assert_array_equal(multi.predict(X), multi.classes_[proba.argmax(1)])
    np.testing.assert_allclose(np.exp(multi.predict_log_proba(X)), proba, rtol=1e-6)
    binary = FlashClassifier(**FAST).fit(X, np.where(y == 0, "no", "yes"))
    proba = binary.predict_proba(X)
    assert proba.shape == (150, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-6)
    assert binary.task_.model.head.out_features == 1  # one logit, binary cross-entropy


def test_loss_sees_logits_and_metrics_see_probabilities():
    task = ClassificationTask(num_inputs=2, num_classes=3)
    assert task.loss_fn["cross_entropy"] is torch.nn.functional.cross_entropy
    probs = task.to_metrics_format(torch.tensor([[0.0, 0.0, 100.0]]))
    np.testing.assert_allclose(probs.numpy(), [[0, 0, 1]], atol=1e-6)
    binary = ClassificationTask(num_inputs=2, num_classes=2)
    assert "binary_cross_entropy_with_logits" in binary.loss_fn


def test_multi_label_indicator_targets():
    X, Y = make_multilabel_classification(n_samples=120, n_features=6, n_classes=4, random_state=0)
    clf = FlashClassifier(**FAST).fit(X, Y)
    assert clf.predict(X).shape == Y.shape
    assert set(np.unique(clf.predict(X))) <= {0, 1}
    proba = clf.predict_proba(X)
    assert proba.shape == Y.shape and proba.min() >= 0 and proba.max() <= 1
    assert (clf.predict(X) == Y).mean() > 0.7


def test_class_weight_balanced_and_dict(three_classes):
    X, y = three_classes
    rare = np.where(y == 0, "rare", "common")
    keep = (rare == "common") | (np.arange(len(y)) % 5 == 0)
    X, rare = X[keep], rare[keep]
    plain = FlashClassifier(**FAST).fit(X, rare)
    balanced = FlashClassifier(class_weight="balanced", **FAST).fit(X, rare)
    heavy = FlashClassifier(class_weight={"rare": 20.0}, **FAST).fit(X, rare)
    counts = [(m.predict(X) == "rare").sum() for m in (plain, balanced, heavy)]
    assert counts[1] > counts[0] and counts[2] > counts[0]
    with pytest.raises(ValueError, match="class_weight names labels \\['unknown'\\]"):
        FlashClassifier(class_weight={"unknown": 2.0}, **FAST).fit(X, rare)


def test_pipeline_and_grid_search_in_parallel(three_classes):
    X, y = three_classes
    pipe = make_pipeline(StandardScaler(), FlashClassifier(**FAST))
    assert cross_val_score(pipe, X, y, cv=3).mean() > 0.5
    grid = GridSearchCV(
        FlashClassifier(**FAST), {"backbone__hidden_sizes": [(8,), (16,)]}, cv=2, n_jobs=2
    )
    grid.fit(X, np.array(["a", "b", "c"])[y])
    assert grid.best_estimator_.classes_.tolist() == ["a", "b", "c"]


def test_pickle_and_reproducibility(three_classes):
    X, y = three_classes
    a = FlashClassifier(**FAST).fit(X, y)
    b = FlashClassifier(**FAST).fit(X, y)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    restored = pickle.loads(pickle.dumps(a))
    np.testing.assert_array_equal(restored.predict_proba(X), a.predict_proba(X))


def test_partial_fit_needs_classes_and_rejects_unknown_labels(three_classes):
    X, y = three_classes
    clf = FlashClassifier(random_state=0)
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        clf.partial_fit(X, y)
    clf.partial_fit(X[y < 2], y[y < 2], classes=[0, 1, 2])
    assert clf.classes_.tolist() == [0, 1, 2]
    clf.partial_fit(X, y)
    assert clf.n_iter_ == 2
    with pytest.raises(ValueError, match=r"labels \[7\] that are not in classes \[0, 1, 2\]"):
        clf.partial_fit(X, np.where(y == 2, 7, y))


@pytest.mark.parametrize(
    ("classes", "message"),
    [
        ([0, 1], r"y contains labels \[2\] that are not in classes \[0, 1\]"),
        ([], "classes is empty"),
        (["a", "b", "c"], "Mix of label input types"),
    ],
)
def test_first_partial_fit_refuses_classes_that_miss_labels_of_y(three_classes, classes, message):
    X, y = three_classes
    clf = FlashClassifier(**FAST)
    with pytest.raises(ValueError, match=message):
        clf.partial_fit(X, y, classes=classes)
    assert not hasattr(clf, "classes_")
    with pytest.raises(ValueError, match="classes holds only 0"):
        clf.partial_fit(X[y == 0], y[y == 0], classes=[0])


def test_classification_bad_targets(three_classes):
    X, y = three_classes
    with pytest.raises(ValueError, match="only one class is present"):
        FlashClassifier(**FAST).fit(X, np.zeros(len(y)))
    with pytest.raises(ValueError, match="Unknown label type"):
        FlashClassifier(**FAST).fit(X, np.linspace(0, 1, len(y)))
    with pytest.raises(ValueError, match="zero sample_weight"):
        FlashClassifier(**FAST).fit(X, y % 2, sample_weight=(y % 2).astype(float))


@pytest.mark.parametrize("Estimator", [FlashRegressor, FlashClassifier])
def test_both_estimators_reject_bad_inputs_alike(three_classes, Estimator):
    X, y = three_classes
    est = Estimator(**FAST)
    with pytest.raises(TypeError, match="Sparse data was passed"):
        est.fit(sparse.csr_matrix(X), y)
    bad = X.copy()
    bad[3, 1] = np.inf
    with pytest.raises(ValueError, match="Input X contains infinity"):
        est.fit(bad, y)
    with pytest.raises(ValueError, match="Input y contains NaN"):
        est.fit(X, np.full(len(y), np.nan))
    with pytest.raises(ValueError, match="0 sample"):
        est.fit(X[:0], y[:0])
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        est.fit(X, y[:-2])
    with pytest.raises(ValueError, match="Name string or categorical columns in categorical_f"):
        est.fit(np.array([["a", "b"]] * len(y), dtype=object), y)
    frame = pd.DataFrame(X).assign(city="paris")
    frame.columns = frame.columns.astype(str)
    with pytest.raises(ValueError, match=r"hold categories.*categorical_features='auto'"):
        est.set_params(categorical_features=None).fit(frame, y)
    est.set_params(categorical_features="auto")
    est.fit(X, y)
    with pytest.raises(ValueError, match=f"X has 5 features, but {Estimator.__name__} is"):
        est.predict(X[:, :5])


def test_label_smoothing_in_the_default_losses():
    logits, target = torch.randn(8, 3), torch.randint(0, 3, (8,))
    task = ClassificationTask(num_inputs=2, num_classes=3, label_smoothing=0.2)
    expected = torch.nn.functional.cross_entropy(logits, target, label_smoothing=0.2)
    torch.testing.assert_close(task.loss_fn["cross_entropy"](logits, target), expected)
    # Binary: the same as two-class cross-entropy with smoothing, on logits (0, z).
    binary = ClassificationTask(num_inputs=2, num_classes=2, label_smoothing=0.2)
    z, labels = torch.randn(8), torch.randint(0, 2, (8,))
    two = torch.stack([torch.zeros(8), z], dim=1)
    expected = torch.nn.functional.cross_entropy(two, labels, label_smoothing=0.2)
    loss = binary.loss_fn["binary_cross_entropy_with_logits"](z, labels.float())
    torch.testing.assert_close(loss, expected)
    with pytest.raises(ValueError, match="label_smoothing"):
        ClassificationTask(num_inputs=2, num_classes=2, label_smoothing=1.0)


def test_label_smoothing_parameter_keeps_probabilities_off_zero_and_one():
    X, y = load_iris(return_X_y=True)
    separable = y == 0
    plain = FlashClassifier(**FAST, label_smoothing=0.0)
    smooth = FlashClassifier(**FAST, label_smoothing=0.2)
    top = smooth.fit(X, y).predict_proba(X[separable]).max(axis=1)
    assert top.max() < 1 - 0.2 / 3 + 0.02 < plain.fit(X, y).predict_proba(X[separable]).max()
    weight = np.where(y == 2, 2.0, 1.0)
    assert smooth.fit(X, y, sample_weight=weight).score(X, y) > 0.9
    with pytest.raises(ValueError, match="label_smoothing"):
        FlashClassifier(label_smoothing=1.0).fit(X, y)
