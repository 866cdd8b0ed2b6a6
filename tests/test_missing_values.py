"""Missing numbers (NaN, None, pd.NA) in numeric columns: filled after the scaling, with an
indicator input per column that had them in training, at fit, predict, in streams, in
saved models and in the ONNX graph. Infinities stay an error."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from skflash import FlashClassifier, FlashRegressor
from skflash.data.missing_values import filled, missing_columns, with_nan
from skflash.data.scaling import StreamedMeanScale, robust_center_scale, weighted_mean_scale

FAST = dict(max_epochs=3, random_state=0)


def _table(n: int = 300, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.normal(size=n),
            "c": rng.normal(size=n),
            "shop": rng.choice(["s1", "s2", "s3"], n),
        }
    )
    y = 2 * X["a"] - X["b"] + (X["shop"] == "s1")
    X.loc[::5, "a"] = np.nan
    return X, y.to_numpy()


@pytest.mark.parametrize("missing", [np.nan, None, pd.NA])
def test_nan_none_and_pd_na_fit_and_predict_and_leave_the_frame_alone(missing):
    X, y = _table()
    X["b"] = X["b"].astype(object)
    X.loc[::4, "b"] = missing
    before = X.copy()
    reg = FlashRegressor(**FAST).fit(X, y)
    pd.testing.assert_frame_equal(X, before)
    assert reg._table.missing == [0, 1]  # "a" and "b", not "c"
    assert reg.task_.preprocess.indicators == [0, 1]
    predictions = reg.predict(X)
    assert np.isfinite(predictions).all()
    task_outputs = torch.cat(reg.task_.predict(X.head(5))).numpy()  # the Flash API's path
    np.testing.assert_allclose(task_outputs.ravel(), predictions[:5])
    pd.testing.assert_frame_equal(X, before)


def test_nullable_dtypes_and_object_arrays():
    X, y = _table()
    X["b"] = X["b"].round(1).astype("Float64")
    X["c"] = (X["c"] * 10).round().astype("Int64")
    X.loc[::3, ["b", "c"]] = pd.NA
    reg = FlashRegressor(**FAST).fit(X, y)
    assert reg._table.missing == [0, 1, 2]
    numbers = X.drop(columns="shop").to_numpy(dtype=object)  # pd.NA and NaN as objects
    arrays = FlashRegressor(**FAST).fit(numbers, y)
    assert arrays._table.missing == [0, 1, 2]
    assert np.isfinite(arrays.predict(numbers)).all()


def test_unseen_missingness_and_an_all_missing_column():
    X, y = _table()
    clf = FlashClassifier(**FAST).fit(X, y > 0)
    new = X.head(4).copy()
    new.loc[:, "c"] = np.nan  # complete in training: filled, no indicator
    probabilities = clf.predict_proba(new)
    assert np.isfinite(probabilities).all()
    # a missing value is the training mean: the same prediction as that value given
    filled_in = new.assign(c=clf.task_.preprocess.x_mean[2])
    np.testing.assert_allclose(probabilities, clf.predict_proba(filled_in), atol=1e-6)
    X["empty"] = np.nan
    reg = FlashRegressor(**FAST).fit(X, y)
    assert reg._table.missing == [0, 3]
    assert reg.task_.preprocess.x_mean[3] == 0 and reg.task_.preprocess.x_scale[3] == 1
    assert np.isfinite(reg.predict(X)).all()


def test_indicators_reach_the_network_and_missing_values_become_zero():
    x = torch.tensor([[1.0, np.nan, 3.0, 7.0], [np.nan, 2.0, np.nan, 8.0]])
    out = filled(x, numeric=3, indicators=[0, 2])
    expected = [[1, 0, 3, 0, 0, 7], [0, 2, 0, 1, 1, 8]]
    np.testing.assert_array_equal(out.numpy(), expected)
    np.testing.assert_array_equal(filled(x, 3, []).numpy(), np.nan_to_num(x.numpy()))
    reg = FlashRegressor(**FAST).fit(*_table())
    assert reg._network_params["n_inputs"] == 3 + 1 + 1  # numbers, one indicator, a code


def test_missing_values_are_left_out_of_the_statistics():
    rng = np.random.default_rng(0)
    x = rng.normal(3, 2, size=(500, 3))
    x[::3, 0] = np.nan
    x[:, 2] = np.nan
    w = rng.uniform(0.5, 2, 500)
    mean, scale = weighted_mean_scale(x, w)
    present = ~np.isnan(x[:, 0])
    expected = np.average(x[present, 0], weights=w[present])
    np.testing.assert_allclose(mean[:2], [expected, np.average(x[:, 1], weights=w)])
    assert mean[2] == 0 and scale[2] == 1
    streamed = StreamedMeanScale()
    for rows in np.array_split(np.arange(500), 7):
        streamed.add(x[rows], w[rows])
    for got, want in zip(streamed.mean_scale((3,)), (mean, scale), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-10)
    median, spread = robust_center_scale(x)
    assert median[0] == np.quantile(x[present, 0], 0.5, method="inverted_cdf")
    assert np.isfinite(spread).all() and median[2] == 0


def test_with_nan_copies_only_when_needed():
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": pd.Series([1, None], dtype=object)})
    converted = with_nan(frame)
    assert converted is not frame and frame["b"].isna().sum() == 1 and frame["b"][1] is None
    assert np.isnan(converted["b"][1])
    clean = pd.DataFrame({"a": [1.0, 2.0]})
    assert with_nan(clean) is clean
    assert missing_columns(np.ones((3, 2))) == []
    assert missing_columns(np.array([[1.0, np.nan], [np.nan, 1e308], [1e308, 1.0]])) == [0, 1]


@pytest.mark.parametrize("Estimator", [FlashRegressor, FlashClassifier])
def test_infinities_are_refused_with_a_clear_error(Estimator):
    X, y = _table()
    X.loc[7, "b"] = np.inf
    with pytest.raises(ValueError, match="Input X contains infinity"):
        Estimator(**FAST).fit(X, y > 0)
    model = Estimator(**FAST).fit(X.drop(index=7), (y > 0)[X.index != 7])
    with pytest.raises(ValueError, match="infinity"):
        model.predict(X)


def test_streamed_fit_finds_missing_values_in_late_blocks():
    dd = pytest.importorskip("dask.dataframe")
    X, y = _table(600)
    X["a"] = X["a"].fillna(0.0)
    X.loc[550:, "c"] = np.nan  # only in the last block
    frame = dd.from_pandas(X.assign(y=y), npartitions=3)
    streamed = FlashRegressor(**FAST).fit(frame.drop(columns="y"), frame["y"])
    in_memory = FlashRegressor(**FAST).fit(X, y)
    assert streamed._table.missing == in_memory._table.missing == [2]
    np.testing.assert_allclose(
        streamed.task_.preprocess.x_mean, in_memory.task_.preprocess.x_mean, rtol=1e-10
    )
    assert np.isfinite(streamed.predict(frame.drop(columns="y"))).all()
    da = pytest.importorskip("dask.array")
    numbers = X.drop(columns="shop").to_numpy()
    arrays = FlashRegressor(**FAST).fit(da.from_array(numbers, chunks=200), y)
    assert arrays._table.missing == [2]


def test_pickle_skops_and_checkpoint_keep_the_indicators(tmp_path):
    X, y = _table()
    reg = FlashRegressor(**FAST).fit(X, y)
    expected = reg.predict(X)
    again = pickle.loads(pickle.dumps(reg))
    assert again._table.missing == [0] and again.task_.preprocess.indicators == [0]
    np.testing.assert_array_equal(again.predict(X), expected)
    sio = pytest.importorskip("skops.io")
    path = tmp_path / "model.skops"
    sio.dump(reg, path)
    loaded = sio.load(path, trusted=sio.get_untrusted_types(file=path))
    np.testing.assert_array_equal(loaded.predict(X), expected)
    state = reg.task_.preprocess.state_dict()
    assert state["indicators"] == [0]
    fresh = type(reg.task_.preprocess)()
    fresh.load_state_dict(state)
    assert fresh.indicators == [0]


def test_onnx_graph_equals_predict_with_missing_inputs(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    X, y = _table()
    reg = FlashRegressor(**FAST, standardize_inputs="robust").fit(X, y)
    session = ort.InferenceSession(reg.to_onnx(tmp_path / "model.onnx"))
    new = X.head(6).copy()
    new.loc[[1, 2], "c"] = np.nan  # unseen missingness too
    feed = {
        "numeric": new[["a", "b", "c"]].to_numpy(np.float32),
        "shop": new[["shop"]].to_numpy().astype(object),
    }
    (predictions,) = session.run(None, feed)
    np.testing.assert_allclose(predictions.reshape(-1), reg.predict(new), atol=1e-4)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    arrays(
        np.float64,
        st.tuples(st.integers(2, 10), st.integers(1, 3)),
        elements=st.one_of(st.just(np.nan), st.floats(-1e3, 1e3)),
    )
)
def test_any_pattern_of_missing_values_fits_and_predicts_finite_values(X):
    y = np.arange(len(X), dtype=float)
    reg = FlashRegressor(max_epochs=1, random_state=0).fit(X, y)
    assert reg._table.missing == np.flatnonzero(np.isnan(X).any(axis=0)).tolist()
    assert np.isfinite(reg.predict(X)).all()
    assert np.isfinite(reg.predict(np.full_like(X, np.nan))).all()
