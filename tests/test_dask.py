"""Dask, as users run it: a search on a LocalCluster, Dask collections, daemonic workers."""

from __future__ import annotations

import multiprocessing
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_diabetes
from sklearn.model_selection import GridSearchCV, RandomizedSearchCV

from skflash import FlashRegressor

distributed = pytest.importorskip("distributed")
dd = pytest.importorskip("dask.dataframe")
joblib = pytest.importorskip("joblib")

GRID = {"learning_rate": [1e-3, 3e-3], "backbone__hidden_sizes": [(16,), (32, 32)]}


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def test_searches_on_a_local_cluster_equal_the_sequential_ones():
    X, y = load_diabetes(return_X_y=True)
    estimator = FlashRegressor(max_epochs=10, random_state=0)
    searches = {
        "grid": lambda n_jobs: GridSearchCV(estimator, GRID, cv=3, n_jobs=n_jobs),
        "randomized": lambda n_jobs: RandomizedSearchCV(
            estimator, GRID, n_iter=3, cv=3, random_state=0, n_jobs=n_jobs
        ),
    }
    sequential = {name: make(None).fit(X, y) for name, make in searches.items()}
    with (
        warnings.catch_warnings(),
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        warnings.simplefilter("ignore", DeprecationWarning)
        with joblib.parallel_backend("dask"):
            searched = {name: make(-1).fit(X, y) for name, make in searches.items()}
        assert set(client.run(_torch_threads).values()) == {1}  # the worker's allotment
    for name in searches:
        np.testing.assert_array_equal(
            searched[name].cv_results_["mean_test_score"],
            sequential[name].cv_results_["mean_test_score"],
        )
        assert searched[name].best_params_ == sequential[name].best_params_


def test_dask_dataframe_keeps_its_column_names():
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    frame = dd.from_pandas(X, npartitions=3)
    target = dd.from_pandas(y, npartitions=3)
    reg = FlashRegressor(max_epochs=2, random_state=0).fit(frame, target)
    assert list(reg.feature_names_in_) == list(X.columns)
    np.testing.assert_allclose(reg.predict(frame), reg.predict(X))


def _loader_workers(num_workers: int) -> int:
    from skflash.data.numpy_data import NumpyDataModule

    X, y = load_diabetes(return_X_y=True)
    module = NumpyDataModule.from_xy_dataset(X, y, num_workers=num_workers)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loader = module.train_dataloader()
    return loader.num_workers, [str(w.message) for w in caught]


def test_daemonic_workers_load_data_in_process_and_say_so():
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:  # pool workers are daemonic
        workers, messages = pool.apply(_loader_workers, (2,))
    assert workers == 0
    assert any("num_workers=2 ignored: this process is a daemonic worker" in m for m in messages)
    assert _loader_workers(2)[0] == 2  # a normal process keeps its workers


def test_dask_ml_incremental_matches_one_epoch_in_memory_and_predicts_blockwise():
    wrappers = pytest.importorskip("dask_ml.wrappers")
    da = pytest.importorskip("dask.array")
    from sklearn.datasets import make_friedman1
    from sklearn.metrics import r2_score

    X, y = make_friedman1(30_000, noise=1.0, random_state=0)
    X_blocks, y_blocks = da.from_array(X, chunks=(10_000, 10)), da.from_array(y, chunks=10_000)
    incremental = wrappers.Incremental(FlashRegressor(random_state=0)).fit(X_blocks, y_blocks)
    assert incremental.estimator_.n_iter_ == 3  # one partial_fit per block
    streamed = r2_score(y, incremental.predict(X_blocks).compute())
    # partial_fit's batches: not the large-table recipe of a fit
    in_memory = FlashRegressor(max_epochs=1, batch_size=200, random_state=0).fit(X, y).score(X, y)
    assert streamed > in_memory - 0.02
    post = wrappers.ParallelPostFit(FlashRegressor(max_epochs=1, random_state=0)).fit(X, y)
    predictions = post.predict(X_blocks)
    assert isinstance(predictions, da.Array) and predictions.numblocks == (3,)
    np.testing.assert_allclose(predictions.compute(), post.estimator.predict(X))
