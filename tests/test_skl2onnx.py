"""skl2onnx converts Pipelines ending in a skflash estimator; onnxruntime predicts alike."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_diabetes, load_iris
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from skflash import FlashClassifier, FlashRegressor

ort = pytest.importorskip("onnxruntime")
skl2onnx = pytest.importorskip("skl2onnx")
pytest.importorskip("onnxscript")

FAST = dict(max_epochs=5, random_state=0)


def _run(model, X):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return names, session.run(None, {session.get_inputs()[0].name: X})


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_pipeline_ending_in_a_regressor_converts_with_skl2onnx_names(dtype):
    X, y = load_diabetes(return_X_y=True)
    X = X.astype(dtype)
    pipe = make_pipeline(StandardScaler(), MinMaxScaler(), FlashRegressor(**FAST)).fit(X, y)
    names, (predicted,) = _run(skl2onnx.to_onnx(pipe, X[:1]), X)
    assert names == ["variable"] and predicted.dtype == dtype and predicted.shape == (len(X), 1)
    np.testing.assert_allclose(predicted[:, 0], pipe.predict(X), rtol=1e-4, atol=1e-4)


def test_a_regressor_of_two_outputs_gives_both():
    X, y = load_diabetes(return_X_y=True)
    X = X.astype(np.float32)
    two = make_pipeline(StandardScaler(), FlashRegressor(**FAST)).fit(X, np.c_[y, -y])
    _, (predicted,) = _run(skl2onnx.to_onnx(two, X[:1]), X)
    np.testing.assert_allclose(predicted, two.predict(X), rtol=1e-4, atol=1e-4)


def test_a_classifier_pipeline_gives_labels_and_a_zipmap_of_probabilities():
    X, y = load_iris(return_X_y=True)
    X = X.astype(np.float32)
    pipe = make_pipeline(StandardScaler(), FlashClassifier(**FAST)).fit(X, y)
    names, (labels, probabilities) = _run(skl2onnx.to_onnx(pipe, X[:1]), X)
    assert names == ["output_label", "output_probability"]
    np.testing.assert_array_equal(labels, pipe.predict(X))
    as_array = np.array([[row[c] for c in pipe.classes_] for row in probabilities])
    np.testing.assert_allclose(as_array, pipe.predict_proba(X), atol=1e-4)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_zipmap_false_gives_a_probability_tensor_and_string_labels(dtype):
    X, y = load_iris(return_X_y=True)
    X = X.astype(dtype)
    labels = np.array(["setosa", "versicolor", "virginica"])[y]
    pipe = make_pipeline(StandardScaler(), FlashClassifier(**FAST)).fit(X, labels)
    model = skl2onnx.to_onnx(pipe, X[:1], options={id(pipe[-1]): {"zipmap": False}})
    names, (predicted, probabilities) = _run(model, X)
    assert names == ["label", "probabilities"] and probabilities.dtype == dtype
    np.testing.assert_array_equal(predicted, pipe.predict(X))
    np.testing.assert_allclose(probabilities, pipe.predict_proba(X), atol=1e-4)


def test_double_input_with_a_zipmap_is_refused_with_what_to_do():
    X, y = load_iris(return_X_y=True)
    pipe = make_pipeline(StandardScaler(), FlashClassifier(max_epochs=1)).fit(X, y)
    with pytest.raises(ValueError, match=r"ZipMap cannot take.*'zipmap': False"):
        skl2onnx.to_onnx(pipe, X[:1])


def test_models_skl2onnx_cannot_feed_are_refused_with_what_to_do():
    frame = pd.DataFrame({"x": np.arange(40.0), "colour": ["red", "blue"] * 20})
    reg = FlashRegressor(max_epochs=1).fit(frame, np.arange(40.0))
    with pytest.raises(ValueError, match="encodes categorical columns itself"):
        skl2onnx.to_onnx(reg, frame[:1])
    X = np.random.default_rng(0).normal(size=(40, 2)).astype(np.float32)
    multi = FlashClassifier(max_epochs=1).fit(X, np.c_[X[:, 0] > 0, X[:, 1] > 0])
    with pytest.raises(ValueError, match="multi-label"):
        skl2onnx.to_onnx(multi, X[:1])


def test_float_class_labels_come_out_as_int64_as_skl2onnx_gives_them():
    X, y = load_iris(return_X_y=True)
    pipe = make_pipeline(StandardScaler(), FlashClassifier(**FAST)).fit(X, y + 1.0)
    model = skl2onnx.to_onnx(pipe, X[:1], options={id(pipe[-1]): {"zipmap": False}})
    _, (predicted, _) = _run(model, X)
    assert predicted.dtype == np.int64
    np.testing.assert_array_equal(predicted, pipe.predict(X))


def test_bool_class_labels_come_out_as_int64_as_skl2onnx_gives_them():
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True)
    X = X.astype(np.float32)
    for last in (LogisticRegression(), FlashClassifier(**FAST)):
        pipe = make_pipeline(StandardScaler(), last).fit(X, y == 2)
        model = skl2onnx.to_onnx(pipe, X[:1], options={id(pipe[-1]): {"zipmap": False}})
        _, (predicted, _) = _run(model, X)
        assert predicted.dtype == np.int64  # 0 and 1, for scikit-learn's own alike
        np.testing.assert_array_equal(predicted, pipe.predict(X).astype(np.int64))


def test_importing_skl2onnx_after_skflash_registers_the_converters():
    script = (
        "import skflash, skl2onnx\n"
        "from skl2onnx._supported_operators import sklearn_operator_name_map as known\n"
        "from skflash import FlashClassifier, FlashRegressor\n"
        "assert FlashRegressor in known and FlashClassifier in known, known\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_skflash_registers_at_once_when_skl2onnx_is_already_imported(monkeypatch):
    from skl2onnx._supported_operators import sklearn_operator_name_map as known

    from skflash import skl2onnx_converters

    monkeypatch.setattr(skl2onnx_converters, "_registered", False)
    monkeypatch.delitem(known, FlashRegressor)
    skl2onnx_converters.install()  # what `import skflash` runs
    assert known[FlashRegressor] == "SkflashFlashRegressor"
