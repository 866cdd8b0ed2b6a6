"""Predict as a server calls it: from many threads at once, on a few rows per call."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest

from skflash import FlashClassifier, FlashRegressor


@pytest.fixture(scope="module")
def fitted(diabetes):
    X, y = diabetes
    return FlashRegressor(max_epochs=3, random_state=0).fit(X, y), X


def test_eight_threads_get_bitwise_the_answers_of_one(fitted):
    reg, X = fitted
    sizes = [1, 100, 3, 1, 57] * 12
    inputs = [X[7 * k : 7 * k + n] for k, n in enumerate(sizes)]
    inputs += [X[:5].astype(np.float32), np.asfortranarray(X[:9])]
    expected = [reg.predict(rows) for rows in inputs]

    def serve(start):
        picks = [(start + k) % len(inputs) for k in range(250)]
        return [(i, reg.predict(inputs[i])) for i in picks]

    with ThreadPoolExecutor(8) as pool:
        answers = [a for chunk in pool.map(serve, range(8)) for a in chunk]
    assert len(answers) == 8 * 250
    for i, answer in answers:
        assert answer.dtype == expected[i].dtype
        np.testing.assert_array_equal(answer, expected[i])


def test_the_quick_checks_take_only_what_the_full_ones_return_unchanged(fitted):
    reg, X = fitted
    table = reg._table
    rows = X[:3]
    assert table.predict_rows(reg, rows) is rows  # a float array of the fitted width
    assert table.predict_rows(reg, rows.astype(np.float32)).dtype == np.float32
    # everything else gets scikit-learn's checks and their errors
    np.testing.assert_array_equal(table.predict_rows(reg, rows.tolist()), rows)
    missing = rows.copy()
    missing[1, 2] = np.nan  # missing numbers take the full checks, which accept them
    assert np.isfinite(reg.predict(missing)).all()
    bad = rows.copy()
    bad[1, 2] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        reg.predict(bad)
    with pytest.raises(ValueError, match="features"):
        reg.predict(X[:3, :4])
    with pytest.raises(ValueError, match="0 sample"):
        reg.predict(X[:0])


def test_quick_checks_still_compare_column_names():
    X = pd.DataFrame(np.random.default_rng(0).normal(size=(40, 3)), columns=["a", "b", "c"])
    y = (X["a"] > 0).astype(int)
    clf = FlashClassifier(max_epochs=1, random_state=0).fit(X, y)
    with pytest.warns(UserWarning, match="feature names"):
        clf.predict(X.to_numpy())  # fitted with names, given none: scikit-learn warns
