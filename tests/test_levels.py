"""Discrete numeric columns as levels (``discrete_features``): which columns get them, the
0/1 inputs they become, and the same inputs at predict, in saved models, streams and ONNX."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
import torch

from skflash import FlashClassifier, FlashRegressor
from skflash.data.levels import distinct_values, learn_levels, level_inputs, with_levels
from skflash.estimators import fit_plan

FAST = dict(max_epochs=3, random_state=0)


def _coded(n: int = 400, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """A table whose integer code acts as a category: its effect jumps by code."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "code": rng.integers(0, 6, n).astype(float),
            "x": rng.normal(size=n),
            "flag": rng.integers(0, 2, n).astype(float),
            "shop": rng.choice(["s1", "s2"], n),
        }
    )
    effect = np.array([0.0, 3.0, -2.0, 1.0, 4.0, -3.0])
    y = effect[X["code"].astype(int)] + X["x"]
    X.loc[::7, "code"] = np.nan
    return X, y.to_numpy()


def test_levels_are_the_midpoints_of_columns_with_three_to_limit_values():
    rng = np.random.default_rng(0)
    numeric = np.column_stack(
        [
            rng.integers(0, 4, 500).astype(float),  # 4 values: 3 boundaries
            rng.normal(size=500),  # continuous: none
            rng.integers(0, 2, 500).astype(float),  # binary: one would repeat it
            np.where(np.arange(500) % 3 == 0, np.nan, 7.0),  # one value and NaN: none
        ]
    )
    columns, thresholds = learn_levels(numeric, [0, 1, 2, 3], limit=20)
    assert columns == [0, 0, 0]
    assert thresholds == [0.5, 1.5, 2.5]
    assert distinct_values(numeric[:, 1], 20) is None
    with pytest.raises(ValueError, match="more than 20 distinct values"):
        learn_levels(numeric, [1], limit=20, named=True)


def test_level_inputs_compare_the_unscaled_numbers_and_a_missing_one_has_none():
    x = torch.tensor([[0.0, 9.0], [2.0, 9.0], [float("nan"), 9.0]])
    levels = level_inputs(x, torch.tensor([0, 0]), torch.tensor([0.5, 1.5]))
    assert levels.tolist() == [[0.0, 0.0], [1.0, 1.0], [0.0, 0.0]]
    codes = torch.tensor([[1.0], [2.0], [3.0]])
    joined = with_levels(torch.cat([x, codes], dim=1), levels, 2)
    assert joined[:, 2:4].tolist() == levels.tolist() and joined[:, 4].tolist() == [1, 2, 3]


def test_auto_gives_levels_on_large_tables_only(monkeypatch):
    X, y = _coded()
    small = FlashRegressor(**FAST).fit(X, y)
    assert small._table.levels == ([], [])
    monkeypatch.setattr(fit_plan, "LARGE_TABLE_ROWS", 100)
    large = FlashRegressor(**FAST).fit(X, y)
    assert large._table.levels == ([0] * 5, [0.5, 1.5, 2.5, 3.5, 4.5])
    # numeric columns, then one missing-value indicator, then 5 levels, then the shop code
    assert large.task_.model.input.num_numeric == 3 + 1 + 5
    off = FlashRegressor(**FAST, discrete_features=None).fit(X, y)
    assert off._table.levels == ([], [])


@pytest.mark.parametrize("setting", [["code"], [0], [True, False, False, False]])
def test_named_columns_get_levels_on_any_table(setting):
    X, y = _coded()
    reg = FlashRegressor(**FAST, discrete_features=setting).fit(X, y)
    assert reg._table.levels == ([0] * 5, [0.5, 1.5, 2.5, 3.5, 4.5])


def test_levels_help_where_a_code_acts_as_a_category():
    X, y = _coded(1500)
    X_test, y_test = _coded(500, seed=1)
    without = FlashRegressor(random_state=0, max_epochs=60, discrete_features=None)
    with_ = FlashRegressor(random_state=0, max_epochs=60, discrete_features=["code"])
    assert with_.fit(X, y).score(X_test, y_test) > without.fit(X, y).score(X_test, y_test)


def test_discrete_features_errors_say_what_to_do():
    X, y = _coded()
    with pytest.raises(ValueError, match="hold categories"):
        FlashRegressor(**FAST, discrete_features=["shop"]).fit(X, y)
    with pytest.raises(ValueError, match="distinct values"):
        FlashRegressor(**FAST, discrete_features=["x"]).fit(X, y)
    with pytest.raises(ValueError, match="discrete_features names column 'nope'"):
        FlashRegressor(**FAST, discrete_features=["nope"]).fit(X, y)
    with pytest.raises(ValueError, match="discrete_features"):
        FlashRegressor(**FAST, discrete_features="everything").fit(X, y)


def test_unseen_values_missing_values_and_saved_models_keep_the_levels(tmp_path):
    X, y = _coded()
    clf = FlashClassifier(**FAST, discrete_features=["code"]).fit(X, y > 0)
    new = X.head(6).copy()
    new["code"] = [7.0, -1.0, 2.5, np.nan, 3.0, 0.0]  # beyond, between and missing
    expected = clf.predict_proba(new)
    assert np.isfinite(expected).all()
    again = pickle.loads(pickle.dumps(clf))
    assert again._table.levels == clf._table.levels
    assert again.task_.preprocess.levels == clf.task_.preprocess.levels
    np.testing.assert_array_equal(again.predict_proba(new), expected)
    state = clf.task_.preprocess.state_dict()
    fresh = type(clf.task_.preprocess)()
    fresh.load_state_dict(state)
    assert fresh.levels == clf.task_.preprocess.levels
    clf.partial_fit(X, y > 0)  # continues on the levels it learned
    assert clf._table.levels == again._table.levels


def test_a_streamed_fit_takes_named_levels_from_its_first_block():
    dd = pytest.importorskip("dask.dataframe")
    X, y = _coded(600)
    frame = dd.from_pandas(X.assign(y=y), npartitions=3)
    streamed = FlashRegressor(**FAST, discrete_features=["code"])
    streamed.fit(frame.drop(columns="y"), frame["y"])
    assert streamed._table.levels == ([0] * 5, [0.5, 1.5, 2.5, 3.5, 4.5])
    assert np.isfinite(streamed.predict(X)).all()


def test_onnx_graph_equals_predict_with_levels(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    X, y = _coded()
    reg = FlashRegressor(**FAST, discrete_features=["code"]).fit(X, y)
    session = ort.InferenceSession(reg.to_onnx(tmp_path / "model.onnx"))
    new = X.head(8).copy()
    new["code"] = [7.0, -1.0, 2.5, np.nan, 3.0, 0.0, 1.0, 5.0]
    feed = {
        "numeric": new[["code", "x", "flag"]].to_numpy(np.float32),
        "shop": new[["shop"]].to_numpy().astype(object),
    }
    (predictions,) = session.run(None, feed)
    np.testing.assert_allclose(predictions.reshape(-1), reg.predict(new), atol=1e-4)
