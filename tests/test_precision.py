"""Every Lightning precision the docs allow: training, clipping, checkpoints, the
float64 rule and half-precision models that pickle."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
import torch

import skflash as flash
from skflash import FlashRegressor
from skflash.data.numpy_data import NumpyDataModule, NumpyPreprocess
from skflash.estimators.shared_parameters import PRECISIONS
from skflash.tasks import RegressionTask

QUICK = {"max_epochs": 4, "random_state": 0}


@pytest.mark.parametrize("precision", [p for p in PRECISIONS if p is not None])
def test_every_lightning_precision_trains_or_is_refused_before_training(diabetes, precision):
    X, y = diabetes
    reg = FlashRegressor(max_epochs=30, precision=precision, random_state=0)
    if str(precision).startswith("transformer-engine"):
        with pytest.raises(ValueError, match="transformer_engine"):
            reg.fit(X, y)
        assert not hasattr(reg, "task_")
        return
    reg.fit(X, y)
    predictions = reg.predict(X)
    assert predictions.dtype in (np.float32, np.float64)
    assert np.isfinite(predictions).all()
    assert reg.score(X, y) > 0.3


@pytest.mark.parametrize("precision", ["16-mixed", "bf16-mixed", "bf16-true", "64-true"])
def test_gradient_clipping_works_with_every_precision(diabetes, precision):
    reg = FlashRegressor(
        max_epochs=20, precision=precision, trainer__gradient_clip_val=1.0, random_state=0
    ).fit(*diabetes)
    assert reg.score(*diabetes) > 0.3


def test_float64_checkpoint_predicts_identically(diabetes, tmp_path):
    X, y = diabetes
    preprocess = NumpyPreprocess(standardize_inputs=True, dtype=torch.float64)
    dm = NumpyDataModule.from_xy_dataset(X, y, preprocess=preprocess, batch_size=64)
    task = RegressionTask(num_inputs=10).to(torch.float64)
    trainer = flash.Trainer(max_epochs=2, logger=False, enable_progress_bar=False)
    trainer.fit(task, datamodule=dm)
    trainer.save_checkpoint(tmp_path / "model.ckpt")
    loaded = RegressionTask.load_from_checkpoint(tmp_path / "model.ckpt")
    assert loaded.dtype == torch.float64
    expected = torch.stack(task.predict(X[:5]))
    torch.testing.assert_close(torch.stack(loaded.predict(X[:5])), expected, rtol=0, atol=0)


def test_float64_input_trains_in_float64_while_small_and_predicts_in_the_input_dtype():
    rng = np.random.default_rng(0)
    small = rng.normal(size=(200, 10))
    reg = FlashRegressor(max_epochs=1, random_state=0).fit(small, small[:, 0])
    assert reg.task_.dtype == torch.float64  # the rule itself: tests/test_fit_plan.py
    assert reg.predict(small[:5]).dtype == np.float64
    single = FlashRegressor(max_epochs=1).fit(small.astype(np.float32), small[:, 0])
    assert single.task_.dtype == torch.float32
    assert single.predict(small[:5].astype(np.float32)).dtype == np.float32
    assert single.predict(small[:5]).dtype == np.float64  # answers in the input's dtype


def test_half_precision_models_pickle_and_deepcopy(diabetes):
    X, y = diabetes
    reg = FlashRegressor(max_epochs=2, random_state=0, precision="bf16-true").fit(X, y)
    for copy_of in (pickle.loads(pickle.dumps(reg)), copy.deepcopy(reg)):
        assert copy_of.task_.dtype == torch.bfloat16
        np.testing.assert_array_equal(copy_of.predict(X), reg.predict(X))
        copy_of.partial_fit(X, y)


def test_float16_weights_get_an_eps_that_float16_holds():
    from skflash.core.optimizers import FLOAT16_EPS, optimizer_class, precision_kwargs

    adamw, sgd = optimizer_class("adamw"), optimizer_class("sgd")
    assert precision_kwargs(adamw, "16-true") == {"eps": FLOAT16_EPS}
    assert torch.tensor(FLOAT16_EPS, dtype=torch.float16) > 0
    assert precision_kwargs(optimizer_class("adagrad"), "16-true") == {"eps": FLOAT16_EPS}
    assert precision_kwargs(sgd, "16-true") == {}  # no eps
    for precision in ("bf16-true", "16-mixed", 16, None):  # float32 or bfloat16 state
        assert precision_kwargs(adamw, precision) == {}
    X = np.random.default_rng(0).normal(size=(50, 3))
    y = X[:, 0]
    reg = FlashRegressor(max_epochs=1, precision="16-true").fit(X, y)
    assert reg.task_.optimizer_kwargs["eps"] == FLOAT16_EPS
    mine = FlashRegressor(max_epochs=1, precision="16-true", optimizer__eps=1e-3).fit(X, y)
    assert mine.task_.optimizer_kwargs["eps"] == 1e-3
