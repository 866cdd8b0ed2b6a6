"""fit and predict on Dask collections stream them block by block, never whole."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pytorch_lightning.callbacks import Callback
from sklearn.datasets import load_breast_cancer, make_friedman1

from skflash import FlashClassifier, FlashRegressor
from skflash.data.row_blocks import BlockStream, RowBlocks
from skflash.data.scaling import StreamedMeanScale, weighted_mean_scale

da = pytest.importorskip("dask.array")
dd = pytest.importorskip("dask.dataframe")
dask = pytest.importorskip("dask")


@pytest.fixture
def friedman():
    X, y = make_friedman1(12_000, noise=1.0, random_state=0)
    return X, y


def _recording_array(X: np.ndarray, rows: int, loads: list):
    """``X`` as a Dask array whose blocks note their first row each time one is computed."""

    def block(start: int) -> np.ndarray:
        loads.append(start)
        return X[start : start + rows]

    parts = [
        da.from_delayed(
            dask.delayed(block)(start), (len(X[start : start + rows]), X.shape[1]), X.dtype
        )
        for start in range(0, len(X), rows)
    ]
    return da.concatenate(parts)


def test_fit_streams_blocks_and_never_computes_the_whole_array(friedman, monkeypatch):
    X, y = friedman
    loads: list[int] = []
    X_blocks = _recording_array(X, 3_000, loads)

    def whole(*args, **kwargs):
        raise AssertionError("the whole Dask array was computed")

    monkeypatch.setattr(type(X_blocks), "compute", whole)
    monkeypatch.setattr(type(X_blocks), "__array__", whole)
    reg = FlashRegressor(max_epochs=3, random_state=0).fit(X_blocks, da.from_array(y, 3_000))
    # the first block to check the columns, then every block once to find missing
    # numbers, once for the scaling statistics and once per epoch, one block at a time
    starts = list(range(0, 12_000, 3_000))
    assert loads[0] == 0 and sorted(loads[1:5]) == starts and loads[5:9] == starts
    epochs = [loads[9 + 4 * e : 13 + 4 * e] for e in range(3)]
    assert all(sorted(e) == starts for e in epochs) and len(loads) == 21
    assert any(e != starts for e in epochs)  # epochs visit the blocks shuffled
    assert reg.n_iter_ == 3 and reg.n_features_in_ == 10


def test_streamed_fit_reaches_the_in_memory_quality(friedman):
    X, y = friedman
    streamed = FlashRegressor(max_epochs=20, random_state=0).fit(
        da.from_array(X, chunks=(2_500, 10)), da.from_array(y, chunks=2_500)
    )
    in_memory = FlashRegressor(max_epochs=20, random_state=0).fit(X, y)
    assert streamed.score(X, y) > in_memory.score(X, y) - 0.02
    # the scaling learned from the stream is the one learned from the whole array
    np.testing.assert_allclose(streamed.task_.preprocess.x_mean, X.mean(axis=0), rtol=1e-10)
    np.testing.assert_allclose(streamed.task_.preprocess.y_scale, y.std(), rtol=1e-10)
    # predict streams too, block by block, and equals the in-memory predict
    np.testing.assert_allclose(streamed.predict(da.from_array(X, 4_000)), streamed.predict(X))


def test_streamed_fit_with_early_stopping_holds_out_rows_of_every_block(friedman):
    X, y = friedman
    reg = FlashRegressor(max_epochs=5, early_stopping=True, random_state=0)
    reg.fit(da.from_array(X, chunks=(3_000, 10)), da.from_array(y, chunks=3_000))
    assert all("val_loss" in row for row in reg.history_)
    assert reg.best_epoch_ is not None
    blocks = RowBlocks(da.from_array(X, chunks=(3_000, 10)), y)

    def rows(part):
        stream = BlockStream(blocks, lambda b: b[:2], 10_000, holdout=0.1, part=part)
        return np.concatenate([a[0] for a in stream.arrays()])

    train, val = rows("train"), rows("val")
    assert len(val) == 4 * 300 and len(train) + len(val) == len(X)
    assert not set(map(tuple, val)) & set(map(tuple, train))


def test_dask_dataframe_categories_first_seen_in_later_blocks_get_their_codes():
    rng = np.random.default_rng(0)
    n = 4_000
    colour = np.where(np.arange(n) < n // 2, "red", rng.choice(["green", "blue"], n))
    frame = pd.DataFrame({"x": rng.normal(size=n), "colour": colour})
    y = frame["x"] + frame["colour"].map({"red": 0.0, "green": 3.0, "blue": -3.0})
    reg = FlashRegressor(max_epochs=30, random_state=0)
    reg.fit(dd.from_pandas(frame, npartitions=4, sort=False), dd.from_pandas(y, npartitions=4))
    assert reg._table.categories.categories == [["blue", "green", "red"]]
    assert reg.score(frame, y) > 0.95
    assert list(reg.feature_names_in_) == ["x", "colour"]


def test_streamed_classifier_learns_labels_and_balanced_weights_from_all_blocks():
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    labels = y.map({0: "malignant", 1: "benign"})
    order = np.argsort(labels.to_numpy(), kind="stable")  # one label per early block
    X, labels = X.iloc[order].reset_index(drop=True), labels.iloc[order].reset_index(drop=True)
    clf = FlashClassifier(max_epochs=20, class_weight="balanced", random_state=0)
    clf.fit(dd.from_pandas(X, npartitions=4), dd.from_pandas(labels, npartitions=4))
    assert clf.classes_.tolist() == ["benign", "malignant"]
    assert clf.score(X, labels) > 0.9
    codes = np.searchsorted(clf.classes_, labels)
    counts = labels.value_counts()
    np.testing.assert_allclose(
        clf._target.weights(codes[:10].astype(float), "balanced", counts),
        clf._target.weights(codes.astype(float), "balanced")[:10],
    )


def test_partial_fit_and_warm_start_stream_a_dask_array(friedman):
    X, y = friedman
    X_blocks, y_blocks = da.from_array(X, chunks=(4_000, 10)), da.from_array(y, chunks=4_000)
    reg = FlashRegressor(random_state=0)
    reg.partial_fit(X_blocks, y_blocks).partial_fit(X_blocks, y_blocks)
    assert reg.n_iter_ == 2 and reg.score(X, y) > 0.5


def test_in_memory_targets_and_weights_are_cut_along_the_blocks(friedman):
    X, y = friedman
    weights = np.ones(len(y))
    weights[::2] = 0  # a zero weight drops the row
    reg = FlashRegressor(max_epochs=3, random_state=0)
    reg.fit(da.from_array(X, chunks=(5_000, 10)), y, sample_weight=weights)
    np.testing.assert_allclose(reg.task_.preprocess.x_mean, X[1::2].mean(axis=0), rtol=1e-10)
    # a Dask y in other chunks is rechunked along X's blocks
    reg.fit(da.from_array(X, chunks=(5_000, 10)), da.from_array(y, chunks=3_000))
    np.testing.assert_allclose(reg.task_.preprocess.y_mean, y.mean(), rtol=1e-10)


@pytest.mark.parametrize(
    "make, message",
    [
        (
            lambda X, y: (da.from_array(X, 3_000), dd.from_pandas(pd.Series(y), npartitions=2)),
            "row blocks",
        ),
        (lambda X, y: (da.from_array(X, 3_000), y[:-1]), "rows but y has"),
        (lambda X, y: (da.from_array(X, 3_000), None), "requires y"),
        (lambda X, y: (da.from_array(X[:0], 3_000), y[:0]), "no rows"),
    ],
)
def test_streamed_mistakes_get_clear_errors(friedman, make, message):
    X, y = friedman
    with pytest.raises(ValueError, match=message):
        FlashRegressor(max_epochs=1).fit(*make(X, y))
    with pytest.raises(ValueError, match="devices=1"):
        FlashRegressor(max_epochs=1, devices=2).fit(da.from_array(X, 3_000), y)


def test_a_block_with_bad_values_fails_the_fit_and_keeps_the_old_model(friedman):
    X, y = friedman
    reg = FlashRegressor(max_epochs=2, random_state=0).fit(X, y)
    before = reg.predict(X[:5])
    bad = X.copy()
    bad[-1, 0] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        reg.fit(da.from_array(bad, chunks=(3_000, 10)), y)
    np.testing.assert_array_equal(reg.predict(X[:5]), before)


@pytest.mark.parametrize("weighted", [False, True])
def test_streamed_mean_and_scale_equal_those_of_all_rows(weighted):
    rng = np.random.default_rng(0)
    x = rng.normal(5, 3, size=(1_000, 3)) * [1, 1e-8, 1e8]
    x[:, 1] = 7.0  # a constant column
    w = rng.uniform(0, 2, 1_000) if weighted else None
    streamed = StreamedMeanScale()
    for part in np.array_split(np.arange(1_000), [10, 400, 401]):
        streamed.add(x[part], None if w is None else w[part])
    for got, want in zip(streamed.mean_scale((3,)), weighted_mean_scale(x, w), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-9)


class _WatchesBatches(Callback):
    """A callback with a batch hook: Lightning runs one step per batch."""

    def __init__(self) -> None:
        self.batches = 0

    def on_train_batch_end(self, *args, **kwargs) -> None:
        self.batches += 1


def test_blocks_run_as_fused_chunks_and_equal_lightnings_own_loop(friedman):
    X, y = friedman
    X_blocks, y_blocks = da.from_array(X, chunks=(2_500, 10)), da.from_array(y, chunks=2_500)
    kwargs = dict(max_epochs=3, early_stopping=True, random_state=0)
    fused = FlashRegressor(**kwargs).fit(X_blocks, y_blocks)
    watcher = _WatchesBatches()
    stepped = FlashRegressor(**kwargs, callbacks=[watcher]).fit(X_blocks, y_blocks)
    assert stepped.callbacks[0].batches == 0  # each fit watches its own copy
    np.testing.assert_allclose(fused.predict(X), stepped.predict(X), rtol=1e-6, atol=1e-6)
    for a, b in zip(fused.history_, stepped.history_, strict=True):
        # the epoch's mean over all of its blocks, not the last block's
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-5)


def test_a_block_of_zero_weights_trains_like_in_memory(friedman):
    X, y = friedman
    weights = np.ones(len(y))
    weights[3_000:6_000] = 0  # one whole block
    streamed = FlashRegressor(max_epochs=2, random_state=0)
    streamed.fit(da.from_array(X, chunks=(3_000, 10)), y, sample_weight=weights)
    kept = weights > 0
    np.testing.assert_allclose(streamed.task_.preprocess.x_mean, X[kept].mean(axis=0))


def test_classifier_labels_first_seen_late_in_a_column_vector_and_wide_strings():
    from sklearn.datasets import make_classification

    X, labels = make_classification(1_200, n_features=6, n_classes=3, n_informative=4)
    order = np.argsort(labels == 2, kind="stable")  # label 2 only in the last blocks
    X, labels = X[order], labels[order]
    X_blocks = da.from_array(X, chunks=(300, 6))
    column = da.from_array(labels.reshape(-1, 1), chunks=(300, 1))
    with pytest.warns(Warning, match="column-vector"):
        clf = FlashClassifier(max_epochs=1).fit(X_blocks, column)
    assert clf.classes_.tolist() == [0, 1, 2]
    names = np.array(["a", "b", "a much longer label"])[labels]
    parts = [  # blocks whose own string width is narrower than the last one's
        da.from_delayed(dask.delayed(names[i : i + 300].astype)(str), (300,), dtype="<U19")
        for i in range(0, 1_200, 300)
    ]
    clf = FlashClassifier(max_epochs=1).fit(X_blocks, da.concatenate(parts))
    assert clf.classes_.tolist() == ["a", "a much longer label", "b"]


def test_streamed_categories_keep_booleans_apart_from_numbers():
    mixed = np.array([True] * 400 + [1] * 400, dtype=object)
    mixed[::4] = "a"
    frame = pd.DataFrame({"x": np.arange(800.0), "mixed": pd.Series(mixed, dtype=object)})
    y = np.arange(800.0)
    with dask.config.set({"dataframe.convert-string": False}):
        streamed = FlashRegressor(max_epochs=1).fit(dd.from_pandas(frame, 4, sort=False), y)
    in_memory = FlashRegressor(max_epochs=1).fit(frame, y)
    assert (
        streamed._table.categories.categories
        == in_memory._table.categories.categories
        == [[True, 1, "a"]]
    )


def test_holdout_of_tiny_blocks_is_the_in_memory_fraction(friedman):
    X, y = friedman
    blocks = RowBlocks(da.from_array(X[:1_200], chunks=(7, 10)), y[:1_200])
    stream = BlockStream(blocks, lambda b: b[:2], 64, holdout=0.1, part="val")
    assert sum(len(a[0]) for a in stream.arrays()) == 120
    reg = FlashRegressor(max_epochs=2, early_stopping=True)
    reg.fit(da.from_array(X[:1_200], chunks=(4, 10)), da.from_array(y[:1_200], chunks=4))
    assert all("val_loss" in row for row in reg.history_)


def test_streamed_classes_with_zero_weight_and_targets_too_large_get_clear_errors(friedman):
    from sklearn.datasets import make_classification

    X, labels = make_classification(1_200, n_features=6, random_state=0)
    weights = np.where(labels == 1, 0.0, 1.0)
    with pytest.raises(ValueError, match="only one class is present"):
        FlashClassifier(max_epochs=1).fit(
            da.from_array(X, chunks=(300, 6)), da.from_array(labels, 300), sample_weight=weights
        )
    X, y = friedman
    y = y.copy()
    y[-5] = 1e39
    with pytest.raises(ValueError, match="too large for float32"):
        FlashRegressor(max_epochs=1, precision="32-true").fit(da.from_array(X, 3_000), y)


def test_streamed_categories_refuse_an_integer_and_an_equal_float_in_different_blocks():
    mixed = np.array(["a"] * 400 + [1] * 200 + [1.0] * 200, dtype=object)
    frame = pd.DataFrame({"x": np.arange(800.0), "mixed": pd.Series(mixed, dtype=object)})
    with dask.config.set({"dataframe.convert-string": False}):
        blocks = dd.from_pandas(frame, 4, sort=False)
        with pytest.raises(ValueError, match="both as an integer and as a float"):
            FlashRegressor(max_epochs=1).fit(blocks, np.arange(800.0))
