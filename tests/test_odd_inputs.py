"""Odd and bad inputs, generated: a fit either works and predicts finite values, or fails
with a ValueError that says what is wrong. It never crashes inside torch or Lightning."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from skflash import FlashClassifier, FlashRegressor

FAST = {"max_epochs": 2, "random_state": 0}
values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.floats(-1e6, 1e6),
    st.just(0.0),
)


@st.composite
def datasets(draw):
    n = draw(st.integers(0, 12))
    d = draw(st.integers(0, 4))
    X = draw(arrays(np.float64, (n, d), elements=values))
    y = draw(arrays(np.float64, (n,), elements=values))
    return X, y


def _fails_clearly(error: ValueError) -> bool:
    text = str(error)
    return any(
        word in text
        for word in ("NaN", "infinity", "sample", "feature", "class", "label", "too large")
    )


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(datasets())
def test_regressor_on_generated_data(data):
    X, y = data
    X_before, y_before = X.copy(), y.copy()
    try:
        reg = FlashRegressor(**FAST).fit(X, y)
    except ValueError as error:
        assert _fails_clearly(error), error
    except FloatingPointError as error:  # extreme but finite values can still diverge
        assert "diverged" in str(error)
    else:
        assert np.isfinite(reg.predict(X)).all()
    np.testing.assert_array_equal(X, X_before)
    np.testing.assert_array_equal(y, y_before)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(datasets(), st.sampled_from(["ab", "int", "bool"]))
def test_classifier_on_generated_data(data, kind):
    X, raw = data
    y = {
        "ab": np.where(np.nan_to_num(raw) > 0, "a", "b"),
        "int": (np.nan_to_num(raw) > 0).astype(int) * 3,
        "bool": np.nan_to_num(raw) > 0,
    }[kind]
    try:
        clf = FlashClassifier(**FAST).fit(X, y)
    except ValueError as error:
        assert _fails_clearly(error), error
    else:
        assert set(clf.predict(X)) <= set(clf.classes_)
        np.testing.assert_allclose(clf.predict_proba(X).sum(axis=1), 1, rtol=1e-6)
