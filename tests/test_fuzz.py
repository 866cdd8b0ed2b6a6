"""The public surface fuzzed: random parameter values and random inputs.

A fit either works (and predicts finite values), or raises a ValueError, TypeError or
NotFittedError whose message prints and says what to do. Anything else is a defect, and
the caller's arrays and DataFrames are never modified, even when fit raises.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pytorch_lightning.callbacks import Callback
from sklearn.exceptions import NotFittedError

from skflash import FlashClassifier, FlashRegressor

ESTIMATORS = [FlashRegressor, FlashClassifier]
FUZZ = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

rng = np.random.RandomState(0)
X_SMALL = rng.normal(size=(30, 3))
Y_REG = X_SMALL @ [1.0, -2.0, 0.5]
Y_CLF = np.where(Y_REG > 0, "up", "down")

numpy_scalars = st.one_of(
    st.integers(-2, 5).map(np.int64),
    st.integers(-2, 5).map(np.int32),
    st.floats(-2, 2, width=32).map(np.float32),
    st.floats(allow_nan=True, allow_infinity=True).map(np.float64),
    st.booleans().map(np.bool_),
)
parameter_values = st.one_of(
    st.integers(-3, 5),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(1e-4, 0.9),
    numpy_scalars,
    st.sampled_from(
        [
            *(None, True, False, "", "auto", "cosine", "mlp", "linear", "adam", "sgd", "adamw"),
            *("cpu", "yes", "64-true", "bf16-mixed", "balanced", "mse", "huber", [], {}, (4,)),
            *([Callback()], [1, 2], {"up": 2.0}, object(), np.random.RandomState(0)),
        ]
    ),
)


def _say_what_is_wrong(error: Exception) -> None:
    text = str(error)  # must print
    assert len(text) > 20, text
    assert repr(error)
    assert not isinstance(error, NotFittedError), text  # fit never says "not fitted"
    # Raised by skflash's or scikit-learn's own checks, never deep inside torch,
    # Lightning or pandas, whose messages do not say what to do with an estimator.
    frame = error.__traceback__
    while frame.tb_next is not None:
        frame = frame.tb_next
    origin = frame.tb_frame.f_code.co_filename
    assert "skflash" in origin or "sklearn" in origin, (origin, text)


def _fit_and_predict(estimator, X, y) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn's own warnings about odd data are fine
        try:
            estimator.fit(X, y)
        except (ValueError, TypeError, NotFittedError) as error:
            _say_what_is_wrong(error)
            return
        predictions = estimator.predict(X)
    assert len(predictions) == len(X)
    if isinstance(estimator, FlashRegressor):
        assert np.isfinite(predictions).all()
    else:
        assert set(np.unique(predictions)) <= set(estimator.classes_)


@pytest.mark.parametrize("Estimator", ESTIMATORS)
@FUZZ
@given(data=st.data())
def test_random_parameter_values(Estimator, data):
    names = sorted({p.name for p in Estimator._parameters} - {"callbacks"})
    chosen = data.draw(st.lists(st.sampled_from(names), min_size=1, max_size=3, unique=True))
    params = {"max_epochs": 2, "random_state": 0}
    params.update({name: data.draw(parameter_values, label=name) for name in chosen})
    if isinstance(params.get("max_epochs"), (int, np.integer)) and params["max_epochs"] > 3:
        params["max_epochs"] = 3  # keep the fuzz fast: the range is tested, not the length
    y = Y_REG if Estimator is FlashRegressor else Y_CLF
    X, y_before = X_SMALL.copy(), y.copy()
    _fit_and_predict(Estimator(**params), X, y)
    np.testing.assert_array_equal(X, X_SMALL)
    np.testing.assert_array_equal(y, y_before)


dtypes = st.sampled_from(
    [
        *("float64", "float32", "float16", "int8", "uint8", "int64", "bool", "complex128"),
        *("object", "datetime64[ns]", "<U3"),
    ]
)


@st.composite
def arrays_of_any_kind(draw):
    n = draw(st.integers(0, 8))
    shape = draw(st.sampled_from([(n,), (n, 0), (n, 1), (n, 3), (n, 2, 2), ()]))
    dtype = draw(dtypes)
    values = draw(
        st.lists(
            st.one_of(st.floats(-1e3, 1e3), st.sampled_from([np.nan, np.inf, 0.0])),
            min_size=int(np.prod(shape)),
            max_size=int(np.prod(shape)),
        )
    )
    base = np.array(values, dtype=np.float64).reshape(shape)
    with np.errstate(all="ignore"):
        if dtype == "object":
            return np.where(np.isnan(base), None, base.astype(str)).astype(object)
        if dtype == "<U3":
            return base.astype(str).astype("<U3")
        if dtype == "datetime64[ns]":
            return np.nan_to_num(base).astype("int64").astype(dtype)
        if dtype in ("int8", "uint8", "int64", "bool"):
            return np.nan_to_num(base, posinf=1, neginf=-1).astype(dtype)
        return base.astype(dtype)


@st.composite
def frames_of_odd_dtypes(draw):
    n = draw(st.integers(1, 8))
    numbers = draw(st.lists(st.floats(-10, 10), min_size=n, max_size=n))
    kinds = draw(
        st.lists(
            st.sampled_from(
                [
                    *("float", "Int64", "boolean", "category", "string", "datetime"),
                    *("timedelta", "object_numbers", "float_nan"),
                ]
            ),
            min_size=1,
            max_size=4,
        )
    )
    columns = {}
    for i, kind in enumerate(kinds):
        values = pd.Series(numbers)
        columns[f"c{i}"] = {
            "float": values,
            "Int64": values.round().astype("Int64").mask(values > 5),
            "boolean": (values > 0).astype("boolean"),
            "category": values.round().astype(int).astype("category"),
            "string": values.round().astype(str).astype("string"),
            "datetime": pd.to_datetime(values.round().astype("int64"), unit="D"),
            "timedelta": pd.to_timedelta(values, unit="s"),
            "object_numbers": values.astype(object),
            "float_nan": values.mask(values > 0),
        }[kind]
    return pd.DataFrame(columns)


def _copy(value):
    return value.copy(deep=True) if isinstance(value, pd.DataFrame) else np.array(value, copy=True)


def _assert_unchanged(value, before) -> None:
    if isinstance(value, pd.DataFrame):
        pd.testing.assert_frame_equal(value, before)
    else:
        np.testing.assert_array_equal(value, before)
        assert value.dtype == before.dtype


@pytest.mark.parametrize("Estimator", ESTIMATORS)
@FUZZ
@given(X=st.one_of(arrays_of_any_kind(), frames_of_odd_dtypes()), data=st.data())
def test_random_inputs(Estimator, X, data):
    n = len(X) if np.ndim(X) else 0
    y = data.draw(st.one_of(arrays_of_any_kind(), st.just(np.arange(n) % 2)), label="y")
    X_before, y_before = _copy(X), _copy(y)
    _fit_and_predict(Estimator(max_epochs=2, random_state=0), X, y)
    _assert_unchanged(X, X_before)
    _assert_unchanged(y, y_before)
