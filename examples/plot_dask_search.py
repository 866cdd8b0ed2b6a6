"""
A grid search on a Dask cluster
===============================

Under joblib's Dask backend, :class:`~sklearn.model_selection.GridSearchCV` sends each
fit to a Dask worker and scores exactly as it does in one process. Here the cluster is a
:class:`~distributed.LocalCluster` of two worker processes on this machine; on a real
cluster only the client changes: ``Client("tcp://scheduler-address:8786")``, with
skflash installed on the workers.

The worker processes start by importing the script that made them, so a script that
starts a cluster keeps its work under ``if __name__ == "__main__":`` (without it, each
worker would start a cluster of its own and the script fails). The documentation build
runs this example as the main module, as ``python plot_dask_search.py`` would.
"""

import joblib
from distributed import Client, LocalCluster
from sklearn.datasets import load_diabetes
from sklearn.model_selection import GridSearchCV

from skflash import FlashRegressor


def search():
    X, y = load_diabetes(return_X_y=True)
    grid = {"learning_rate": [1e-3, 3e-3], "backbone__hidden_sizes": [(16,), (32, 32)]}
    estimator = FlashRegressor(max_epochs=20, random_state=0)
    with (
        LocalCluster(n_workers=2, threads_per_worker=1) as cluster,
        Client(cluster),
        joblib.parallel_backend("dask"),
    ):
        return GridSearchCV(estimator, grid, cv=3, n_jobs=-1).fit(X, y)


if __name__ == "__main__":
    result = search()
    print("best:", result.best_params_, f"R2 {result.best_score_:.3f}")
