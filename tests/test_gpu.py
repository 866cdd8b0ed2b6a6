"""The GPU path, run where a CUDA device is present (``benchmarks/gpu_check.sh``);
skipped cleanly elsewhere.

Fit and predict on the GPU, float32 there by default and ``bf16-mixed``, a GPU-trained
model loaded in a process that sees no GPU, and a search whose fits share one GPU and
give its memory back.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap

import joblib
import numpy as np
import pytest
import torch
from sklearn.model_selection import GridSearchCV

from skflash import FlashClassifier, FlashRegressor

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]

GPU = {"accelerator": "gpu", "devices": 1, "random_state": 0}


def test_fit_and_predict_on_the_gpu(diabetes):
    X, y = diabetes
    reg = FlashRegressor(max_epochs=30, **GPU).fit(X, y)
    on_cpu = FlashRegressor(max_epochs=30, random_state=0).fit(X, y)
    assert reg.task_.dtype == torch.float32  # float64 input trains in float32 on a GPU
    predictions = reg.predict(X)
    assert predictions.dtype == np.float64 and predictions.shape == (len(X),)
    assert reg.n_iter_ == 30 and len(reg.history_) == 30
    assert reg.score(X, y) > on_cpu.score(X, y) - 0.05


def test_classifier_on_the_gpu():
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True)
    clf = FlashClassifier(max_epochs=10, **GPU).fit(X, y)
    assert clf.score(X, y) > 0.9
    np.testing.assert_allclose(clf.predict_proba(X).sum(1), 1.0, rtol=1e-5)


def test_bf16_mixed_trains_on_the_gpu(diabetes):
    if not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bfloat16")
    X, y = diabetes
    reg = FlashRegressor(max_epochs=30, precision="bf16-mixed", **GPU).fit(X, y)
    assert reg.task_.dtype == torch.float32  # weights stay float32 under autocast
    assert reg.score(X, y) > 0.3
    assert np.isfinite(reg.predict(X)).all()


LOAD_ON_CPU = textwrap.dedent(
    """
    import pickle, sys
    import numpy as np
    import torch

    assert not torch.cuda.is_available()
    reg = pickle.loads(open(sys.argv[1], "rb").read())
    X = np.load(sys.argv[2])
    np.save(sys.argv[3], reg.predict(X))
    reg.partial_fit(X, X[:, 0])  # keeps training, on the CPU
    """
)


def test_a_gpu_trained_model_loads_and_predicts_where_there_is_no_gpu(diabetes, tmp_path):
    X, y = diabetes
    reg = FlashRegressor(max_epochs=10, **GPU).fit(X, y)
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(reg))
    np.save(tmp_path / "X.npy", X)
    script = tmp_path / "load.py"
    script.write_text(LOAD_ON_CPU)
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    paths = [str(tmp_path / name) for name in ("model.pkl", "X.npy", "out.npy")]
    subprocess.run([sys.executable, str(script), *paths], env=env, check=True, timeout=300)
    on_cpu = np.load(tmp_path / "out.npy")
    np.testing.assert_allclose(on_cpu, reg.predict(X), rtol=1e-4, atol=1e-3)


def test_a_search_shares_one_gpu_and_gives_its_memory_back(diabetes, record_property, capsys):
    X, y = diabetes
    grid = {"learning_rate": [1e-3, 3e-3], "backbone__hidden_sizes": [(64,), (256, 256)]}
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    with joblib.parallel_config("threading"):  # two fits at once in this process
        search = GridSearchCV(FlashRegressor(max_epochs=10, **GPU), grid, cv=2, n_jobs=2)
        search.fit(X, y)
    peak = torch.cuda.max_memory_allocated() - before
    kept = torch.cuda.memory_allocated() - before  # the refitted best model
    del search
    torch.cuda.synchronize()
    freed = torch.cuda.memory_allocated() - before
    record_property("peak_gpu_memory_mb", peak / 2**20)
    with capsys.disabled():
        print(
            f"\nGridSearchCV n_jobs=2 (threads) on one GPU: peak {peak / 2**20:.1f} MiB, "
            f"{kept / 2**20:.1f} MiB kept by the best model, {freed / 2**20:.1f} MiB after"
        )
    assert freed <= 1 * 2**20  # every fit's weights, optimizer state and data were freed
    assert kept < peak

    # and two worker processes (joblib's default), each with its own CUDA context
    search = GridSearchCV(FlashRegressor(max_epochs=5, **GPU), grid, cv=2, n_jobs=2)
    assert np.isfinite(search.fit(X, y).cv_results_["mean_test_score"]).all()
