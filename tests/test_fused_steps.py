"""The fused path (one Lightning step per epoch) keeps Lightning's features working."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pytorch_lightning.callbacks import Callback, ModelCheckpoint
from sklearn.datasets import make_regression

import skflash as flash
from skflash import FlashRegressor
from skflash.data.numpy_data import NumpyDataModule
from skflash.tasks import RegressionTask
from tests.conftest import QUIET

FAST = {"max_epochs": 4, "batch_size": 16, "random_state": 0}


@pytest.fixture(scope="module")
def data():
    return make_regression(n_samples=64, n_features=4, noise=1.0, random_state=0)


class StepCounter(Callback):
    def __init__(self):
        self.steps = 0

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        self.steps += 1


def test_step_hooks_fire_per_batch_when_listened_to(data):
    X, y = data
    counter = StepCounter()
    listened = FlashRegressor(callbacks=[counter], **FAST).fit(X, y)
    assert listened.task_.automatic_optimization is False
    lean = FlashRegressor(**FAST).fit(X, y)
    assert len(listened.callbacks) == 1  # the estimator's own callback was copied, not used
    np.testing.assert_allclose(listened.predict(X), lean.predict(X), rtol=1e-10)


def test_callback_instances_see_every_step(data):
    X, y = data
    task = RegressionTask(4, backbone="mlp", backbone_kwargs={"hidden_sizes": (8,)})
    task.automatic_optimization = False
    dm = NumpyDataModule.from_xy_dataset(X, y, test_size=None, batch_size=16, seed=0)
    dm.fused_steps = True
    counter = StepCounter()
    flash.Trainer(max_epochs=3, callbacks=[counter], **QUIET).fit(task, datamodule=dm)
    assert counter.steps == 3 * 4


def test_automatic_optimization_path_for_gradient_clipping(data):
    X, y = data
    reg = FlashRegressor(trainer__gradient_clip_val=0.5, **FAST).fit(X, y)
    assert reg.task_.automatic_optimization is True
    assert len(reg.history_) == 4 and all("train_loss" in row for row in reg.history_)


def test_mixed_precision_and_checkpoint_callback(data, tmp_path):
    X, y = data
    reg = FlashRegressor(precision="bf16-mixed", **FAST).fit(X, y)
    assert np.isfinite(reg.predict(X)).all()
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "ckpt", monitor="train_loss")
    FlashRegressor(callbacks=[checkpoint], **FAST).fit(X, y)
    assert list((tmp_path / "ckpt").glob("*.ckpt"))


def test_epoch_scheduler_steps_in_fused_mode(data):
    X, y = data
    task = RegressionTask(4, scheduler="steplr", scheduler_kwargs={"step_size": 1, "gamma": 0.5})
    task.automatic_optimization = False
    dm = NumpyDataModule.from_xy_dataset(X, y, test_size=None, batch_size=16, seed=0)
    dm.fused_steps = True
    trainer = flash.Trainer(max_epochs=3, **QUIET)
    trainer.fit(task, datamodule=dm)
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(1e-3 * 0.5**3)


def test_chunk_needs_manual_optimization(data):
    X, y = data
    task = RegressionTask(4)
    dm = NumpyDataModule.from_xy_dataset(X, y, test_size=None, batch_size=16, seed=0)
    dm.fused_steps = True
    with pytest.raises(RuntimeError, match="automatic_optimization = False"):
        flash.Trainer(max_epochs=1, **QUIET).fit(task, datamodule=dm)
    assert torch.is_tensor(next(iter(task.parameters())))


def test_global_step_counts_optimizer_steps_when_observed(data):
    X, y = data
    seen = {}

    class Observer(Callback):
        def on_train_end(self, trainer, pl_module):
            seen["global_step"] = trainer.global_step

    FlashRegressor(callbacks=[Observer()], **FAST).fit(X, y)
    assert seen["global_step"] == 4 * 4  # 4 epochs of 4 batches


def test_a_logger_receives_epoch_values(data, tmp_path):
    from pytorch_lightning.loggers import CSVLogger

    X, y = data
    logger = CSVLogger(tmp_path, name="run")
    FlashRegressor(trainer__logger=logger, early_stopping=True, **FAST).fit(X, y)
    text = (tmp_path / "run" / "version_0" / "metrics.csv").read_text()
    header, *rows = text.strip().splitlines()
    assert "train_loss" in header and "val_loss" in header
    assert len(rows) >= 4


def test_optimizers_that_need_a_closure_train_on_fused_steps(data):
    X, y = data
    task = RegressionTask(4, optimizer="lbfgs", learning_rate=0.5)
    task.automatic_optimization = False
    dm = NumpyDataModule.from_xy_dataset(X, y, test_size=None, batch_size=64, seed=0)
    dm.fused_steps = True
    before = float(
        torch.nn.functional.mse_loss(
            task(torch.as_tensor(X).float()).squeeze(), torch.as_tensor(y).float()
        )
    )
    flash.Trainer(max_epochs=3, **QUIET).fit(task, datamodule=dm)
    after = float(
        torch.nn.functional.mse_loss(
            task(torch.as_tensor(X).float()).squeeze(), torch.as_tensor(y).float()
        )
    )
    assert after < 0.01 * before
