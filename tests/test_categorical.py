"""Raw tables with string, category and bool columns, as users pass them."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from skflash import FlashClassifier, FlashRegressor, RegressionTask, TabularInput
from skflash.core.tabular_input import input_width
from skflash.data.categories import CategoryCodes, is_categorical_column
from skflash.data.scaling import robust_center_scale, smooth_clip

FAST = dict(max_epochs=200, random_state=0)  # 2 steps per epoch on 300 rows
COLORS = ["red", "green", "blue"]


def _table(n: int = 300, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """A numeric column, a string column that drives the target, a category and a bool."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "size": rng.normal(size=n),
            "color": rng.choice(COLORS, size=n),
            "shop": pd.Categorical(rng.choice([f"s{i}" for i in range(12)], size=n)),
            "sale": rng.random(n) > 0.5,
        }
    )
    effect = frame["color"].map({"red": -2.0, "green": 0.0, "blue": 2.0}).to_numpy()
    y = frame["size"].to_numpy() + effect + 0.5 * frame["sale"].to_numpy()
    y += 0.1 * rng.normal(size=n)
    return frame, y


def test_string_category_and_bool_columns_are_learned_not_refused():
    X, y = _table()
    reg = FlashRegressor(**FAST).fit(X, y)
    assert reg.score(X, y) > 0.9  # the colour explains most of the target
    assert list(reg.feature_names_in_) == ["size", "color", "shop", "sale"]
    assert reg.n_features_in_ == 4
    layer = reg.task_.model.input
    assert isinstance(layer, TabularInput)
    assert (len(layer.one_hot), len(layer.embedded)) == (2, 1)  # 12 shops: embedded


def test_the_users_frame_is_never_modified():
    X, y = _table()
    before = X.copy()
    FlashRegressor(**FAST).fit(X, y).predict(X)
    pd.testing.assert_frame_equal(X, before)


def test_unseen_and_missing_categories_predict_without_error():
    X, y = _table()
    reg = FlashRegressor(**FAST).fit(X, y)
    new = X.iloc[[0, 0, 0, 0]].copy()  # one row, with its categories changed
    new["color"] = ["purple", None, np.nan, "red"]
    new["shop"] = pd.Categorical(["s99", None, "s1", "s2"])
    predictions = reg.predict(new)
    assert np.isfinite(predictions).all()
    unknown, known = reg.predict(new.iloc[[0, 1]]), reg.predict(new.iloc[[3]])
    np.testing.assert_allclose(unknown[0], unknown[1])  # same code for unseen and missing
    assert known.shape == (1,)


def test_training_rows_with_missing_categories_fit():
    X, y = _table()
    X.loc[::7, "color"] = None
    assert np.isfinite(FlashRegressor(**FAST).fit(X, y).predict(X)).all()


def test_columns_that_change_between_fit_and_predict_get_clear_errors():
    X, y = _table()
    reg = FlashRegressor(**FAST).fit(X, y)
    with pytest.raises(ValueError, match="feature names"):
        reg.predict(X.rename(columns={"color": "colour"}))
    with pytest.raises(ValueError, match="missing:\n- sale"):
        reg.predict(X.drop(columns="sale"))
    with pytest.raises(ValueError, match="feature names"):
        reg.predict(X[["color", "size", "shop", "sale"]])


def test_numeric_columns_take_nan_with_categorical_columns_present():
    X, y = _table()
    X.loc[3, "size"] = np.nan
    reg = FlashRegressor(**FAST).fit(X, y)
    assert reg._table.missing == [0]  # "size", the first numeric column
    assert np.isfinite(reg.predict(X)).all()
    X.loc[4, "size"] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        reg.predict(X)


def test_explicit_columns_by_name_and_by_position_on_arrays():
    X, y = _table()
    codes = X.assign(color=X["color"].map({"red": 10, "green": 20, "blue": 30}))
    by_name = FlashRegressor(**FAST, categorical_features=["color", "shop", "sale"])
    assert by_name.fit(codes, y).score(codes, y) > 0.9
    assert by_name.task_.preprocess.categories.categories[0] == [10, 20, 30]
    array = X.to_numpy(dtype=object)
    by_position = FlashRegressor(**FAST, categorical_features=[1, 2, -1]).fit(array, y)
    assert by_position.score(array, y) > 0.9
    assert not hasattr(by_position, "feature_names_in_")
    with pytest.raises(ValueError, match="no such column"):
        FlashRegressor(**FAST, categorical_features=["colour"]).fit(X, y)
    with pytest.raises(ValueError, match="holds 7, but X has 4 columns"):
        FlashRegressor(**FAST, categorical_features=[7]).fit(array, y)


def test_numbers_stored_as_objects_stay_numeric():
    X, y = _table()
    X["size"] = X["size"].astype(object)
    reg = FlashRegressor(**FAST).fit(X, y)
    assert reg.task_.preprocess.categories.columns == [1, 2, 3]


def test_a_table_of_categories_only():
    X, y = _table()
    reg = FlashRegressor(**FAST).fit(X[["color", "sale"]], y)
    assert reg.score(X[["color", "sale"]], y) > 0.7


def test_classifier_on_a_mixed_table_with_string_labels():
    X, y = _table()
    labels = np.where(y > 0, "high", "low")
    clf = FlashClassifier(**FAST).fit(X, labels)
    assert clf.score(X, labels) > 0.85
    assert set(clf.predict(X)) <= {"high", "low"}
    assert clf.predict_proba(X.head(2)).shape == (2, 2)


def test_pipelines_grid_search_and_cross_validation_take_raw_tables():
    X, y = _table()
    pipe = make_pipeline(FunctionTransformer(lambda frame: frame.copy()), FlashRegressor(**FAST))
    assert cross_val_score(pipe, X, y, cv=3).mean() > 0.8
    search = GridSearchCV(
        FlashRegressor(**FAST), {"standardize_inputs": [True, "robust"]}, cv=2
    ).fit(X, y)
    assert search.best_score_ > 0.8


def test_partial_fit_keeps_the_codes_of_the_first_call():
    X, y = _table()
    reg = FlashRegressor(random_state=0).partial_fit(X.iloc[:150], y[:150])
    learned = reg.task_.preprocess.categories.state_dict()
    later = X.iloc[150:].copy()
    later.loc[later.index[:5], "color"] = "violet"  # unseen in the first batch
    reg.partial_fit(later, y[150:])
    assert reg.task_.preprocess.categories.state_dict() == learned


def test_pickle_and_checkpoint_keep_the_codes(tmp_path):
    X, y = _table()
    reg = FlashRegressor(**FAST).fit(X, y)
    expected = reg.predict(X)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(reg)).predict(X), expected)
    path = tmp_path / "model.ckpt"
    torch.save(
        {
            "state_dict": reg.task_.state_dict(),
            "hyper_parameters": dict(reg.task_.hparams),
            "preprocess": reg.task_.preprocess.state_dict(),
        },
        path,
    )
    saved = torch.load(path, weights_only=True)  # plain values only
    task = RegressionTask(**saved["hyper_parameters"])
    task.load_state_dict(saved["state_dict"])
    task.preprocess.load_state_dict(saved["preprocess"])
    task.postprocess.load_state_dict(reg.task_.postprocess.state_dict())
    task.to(reg.task_.dtype).eval()
    restored = torch.cat(task.predict(X)).numpy().reshape(-1)
    np.testing.assert_allclose(restored, expected, rtol=1e-6, atol=1e-6)


def test_category_codes_reserve_zero_and_follow_a_categoricals_own_order():
    frame = pd.DataFrame(
        {
            "kind": pd.Categorical(["b", "a", None], categories=["b", "a", "c"]),
            "word": pd.array(["x", pd.NA, "y"], dtype="string"),
        }
    )
    codes = CategoryCodes([0, 1]).learn(frame)
    assert codes.categories == [["b", "a", "c"], ["x", "y"]]
    assert codes.cardinalities == [4, 3]
    np.testing.assert_array_equal(codes.encode(frame), [[1, 1], [2, 0], [0, 2]])
    assert CategoryCodes.from_state_dict(codes.state_dict()).categories == codes.categories
    assert is_categorical_column(frame["word"]) and is_categorical_column(frame["kind"])
    assert not is_categorical_column(pd.Series([1, 2.5, None], dtype=object))
    assert is_categorical_column(pd.Series([1, "2"], dtype=object))  # strings: categories


def test_tabular_input_one_hot_drops_the_unknown_code_and_embeds_large_columns():
    layer = TabularInput(num_numeric=2, cardinalities=[3, 30])
    x = torch.tensor([[0.5, -1.0, 0.0, 5.0], [0.5, -1.0, 2.0, 0.0]])
    with torch.no_grad():
        out = layer(x)
    assert out.shape == (2, layer.out_features) == (2, 2 + 2 + layer.embeddings[0].embedding_dim)
    np.testing.assert_array_equal(out[:, 2:4].numpy(), [[0, 0], [0, 1]])
    assert torch.equal(out[:, :2], x[:, :2])


def test_robust_scaling_with_integer_weights_equals_repeated_rows():
    rng = np.random.default_rng(0)
    x = rng.standard_cauchy(size=(50, 3))
    weights = rng.integers(1, 4, size=50)
    repeated = np.repeat(x, weights, axis=0)
    for got, want in zip(
        robust_center_scale(x, weights.astype(float)), robust_center_scale(repeated), strict=True
    ):
        np.testing.assert_array_equal(got, want)
    constant = robust_center_scale(np.ones((10, 1)))
    assert constant[1][0] == 1.0
    clipped = smooth_clip(torch.tensor([[-1e6, 0.0, 1e6, 7.0]]), columns=3)
    assert clipped[0, :3].abs().max() < 3 and clipped[0, 3] == 7.0


def test_robust_scaling_bounds_outliers_at_predict():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = X.sum(axis=1)
    reg = FlashRegressor(**FAST, standardize_inputs="robust").fit(X, y)
    extreme = np.array([[1e9, 0.0, 0.0]])
    assert np.isfinite(reg.predict(extreme)).all()
    assert abs(reg.predict(extreme)[0]) < 10 * np.abs(y).max()


def test_half_precision_inputs_that_would_round_codes_are_refused():
    X, y = _table()
    X["city"] = [f"c{i}" for i in range(len(X))]  # 300 categories: beyond bfloat16's integers
    with pytest.raises(ValueError, match="up to 256, but a categorical column has 300"):
        FlashRegressor(max_epochs=1, precision="bf16-true").fit(X, y)
    FlashRegressor(max_epochs=1, precision="16-true").fit(X, y)  # float16: exact to 2048


def test_periodic_numeric_embedding_with_and_without_categorical_columns():
    X, y = _table()
    reg = FlashRegressor(**FAST, numeric_embedding="periodic").fit(X, y)
    layer = reg.task_.model.input
    # size: 4 values; color: 3 one-hot columns; sale: 2; shop (12 categories): embedded
    assert layer.out_features == 4 + 3 + 2 + layer.embeddings[0].embedding_dim
    assert reg.score(X, y) > 0.9
    numeric = X[["size"]].to_numpy()
    reg = FlashRegressor(max_epochs=5, numeric_embedding="periodic", random_state=0)
    assert reg.fit(numeric, y).task_.model.input.out_features == 4
    again = pickle.loads(pickle.dumps(reg))
    np.testing.assert_array_equal(again.predict(numeric), reg.predict(numeric))
    with pytest.raises(ValueError, match="numeric_embedding"):
        TabularInput(2, numeric_embedding="fourier")


def test_strings_that_look_like_numbers_and_bools_with_gaps_are_categories():
    X, y = _table()
    X["zip"] = pd.Series(np.where(y > 0, "02134", "10001"), dtype="string")
    X["flag"] = pd.Series(np.where(y > 1, True, False), dtype=object)
    X.loc[::5, "flag"] = None  # what a bool column becomes after df.loc[i, "flag"] = None
    reg = FlashRegressor(**FAST).fit(X, y)
    assert reg.task_.preprocess.categories.columns == [1, 2, 3, 4, 5]
    new = X.head(2).copy()
    new["zip"] = pd.Series(["9999x", None], dtype="string")
    assert np.isfinite(reg.predict(new)).all()


def test_categorical_features_as_mask_index_array_and_list_of_lists():
    X, y = _table()
    mask = [False, True, True, True]
    expected = [1, 2, 3]
    for setting in (mask, np.array(mask), X.columns[1:], np.array([1, 2, 3])):
        reg = FlashRegressor(max_epochs=1, categorical_features=setting).fit(X, y)
        assert reg.task_.preprocess.categories.columns == expected
    rows = X.to_numpy(dtype=object).tolist()
    reg = FlashRegressor(max_epochs=1, categorical_features=[1, 2, 3]).fit(rows, y)
    assert reg.predict(rows[:2]).shape == (2,)
    with pytest.raises(ValueError, match="boolean mask of 2 values, but X has 4 columns"):
        FlashRegressor(max_epochs=1, categorical_features=[True, False]).fit(X, y)


def test_integer_column_labels_get_a_suggestion_that_works():
    X, y = _table()
    X.columns = [3, 2, 1, 0]
    with pytest.raises(ValueError, match=r"categorical_features=\[1\] \(integers are positions\)"):
        FlashRegressor(max_epochs=1, categorical_features=[2, 3]).fit(X, y)
    FlashRegressor(max_epochs=1, categorical_features=[1, 2, 3]).fit(X, y)


def test_one_row_passed_as_a_series_gets_a_clear_error():
    X, y = _table()
    reg = FlashRegressor(max_epochs=1).fit(X, y)
    with pytest.raises(ValueError, match=r"df.iloc\[\[i\]\]"):
        reg.predict(X.iloc[0])
    assert reg.predict(X.iloc[[0]]).shape == (1,)


def test_float32_arrays_with_categorical_positions_train_in_float32():
    rng = np.random.default_rng(0)
    X = np.c_[rng.normal(size=100), rng.integers(0, 3, size=100)].astype(np.float32)
    reg = FlashRegressor(max_epochs=1, categorical_features=[1]).fit(X, X[:, 0])
    assert reg.task_.dtype == torch.float32 and reg.predict(X).dtype == np.float32


def test_booleans_and_numbers_in_one_object_column_get_codes_of_their_own():
    frame = pd.DataFrame({"mixed": pd.Series([True, 1, "x", None, False, 0], dtype=object)})
    codes = CategoryCodes([0]).learn(frame)
    assert codes.categories == [[False, True, 0, 1, "x"]]
    assert codes.encode(frame)[:, 0].tolist() == [2, 4, 5, 0, 1, 3]
    unseen = pd.DataFrame({"mixed": pd.Series([1.0, True, 2], dtype=object)})
    assert codes.encode(unseen)[:, 0].tolist() == [4, 2, 0]
    flags = pd.DataFrame({"flag": [True, False, True]})  # a bool column is unaffected
    assert CategoryCodes([0]).learn(flags).encode(flags)[:, 0].tolist() == [2, 1, 2]


@pytest.mark.parametrize("one", [1, np.int64(1)])
@pytest.mark.parametrize("other", [1.0, np.float32(1.0)])
def test_equal_integers_and_floats_in_one_object_column_are_refused(one, other):
    frame = pd.DataFrame({"mixed": pd.Series(["x", one, other, True], dtype=object)})
    with pytest.raises(ValueError, match="'mixed' holds 1 both as an integer and as a float"):
        CategoryCodes([0]).learn(frame)
    apart = pd.DataFrame({"mixed": pd.Series(["x", 1, 2.5, True, 1], dtype=object)})
    assert CategoryCodes([0]).learn(apart).categories == [[True, 2.5, 1, "x"]]


@pytest.mark.parametrize("embedding", [None, "periodic"])
def test_input_width_is_the_tabular_inputs_width_before_it_is_built(embedding):
    cardinalities = [3, 10, 40, 2]  # one-hot, embedded, embedded, one-hot
    layer = TabularInput(5, cardinalities, numeric_embedding=embedding)
    assert input_width(5, cardinalities, numeric_embedding=embedding) == layer.out_features
    assert input_width(5) == 5
