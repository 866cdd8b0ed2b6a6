"""Secure persistence with skops: a fitted model saves without torch pickles and loads
only the types the user trusts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.datasets import load_diabetes, load_iris
from torch import nn

from skflash import FlashClassifier, FlashRegressor

sio = pytest.importorskip("skops.io")


class SmallNet(nn.Module):
    """A custom backbone class: its name is one more type to trust."""

    def __init__(self, n_features: int, n_outputs: int, width: int = 8) -> None:
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(n_features, width), nn.Tanh(), nn.Linear(width, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def _round_trip(estimator, tmp_path, expected_types: set[str]):
    path = tmp_path / "model.skops"
    sio.dump(estimator, path)
    untrusted = sio.get_untrusted_types(file=path)
    assert set(untrusted) == expected_types
    with pytest.raises(sio.exceptions.UntrustedTypesFoundException):
        sio.load(path)
    return sio.load(path, trusted=untrusted)


def test_regressor_with_categorical_codes_round_trips(tmp_path):
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    X["sex"] = np.where(X["sex"] > 0, "m", "f")
    reg = FlashRegressor(max_epochs=3, random_state=0).fit(X, y)
    loaded = _round_trip(
        reg,
        tmp_path,
        {"skflash.estimators.regressor.FlashRegressor"},  # the codes are saved as plain lists
    )
    np.testing.assert_array_equal(loaded.predict(X), reg.predict(X))
    assert list(loaded.feature_names_in_) == list(X.columns)
    loaded.partial_fit(X, y)  # continues training with its optimizer state


def test_classifier_with_string_labels_round_trips(tmp_path):
    X, y = load_iris(return_X_y=True)
    labels = np.array(["setosa", "versicolor", "virginica"])[y]
    clf = FlashClassifier(max_epochs=3, class_weight="balanced", random_state=0).fit(X, labels)
    loaded = _round_trip(clf, tmp_path, {"skflash.estimators.classifier.FlashClassifier"})
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))


def test_custom_backbone_class_is_listed_as_a_type_to_trust(tmp_path):
    X, y = load_diabetes(return_X_y=True)
    reg = FlashRegressor(backbone=SmallNet, backbone__width=4, max_epochs=2).fit(X, y)
    loaded = _round_trip(
        reg,
        tmp_path,
        {"skflash.estimators.regressor.FlashRegressor", f"{__name__}.SmallNet"},
    )
    np.testing.assert_array_equal(loaded.predict(X), reg.predict(X))
    assert isinstance(loaded.task_.model, SmallNet)


def test_dataframe_input_with_category_dtype_round_trips(tmp_path):
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    X["sex"] = pd.Categorical(np.where(X["sex"] > 0, "m", "f"))
    reg = FlashRegressor(max_epochs=2, random_state=0).fit(X, y)
    path = tmp_path / "model.skops"
    sio.dump(reg, path)
    loaded = sio.load(path, trusted=sio.get_untrusted_types(file=path))
    np.testing.assert_array_equal(loaded.predict(X), reg.predict(X))
