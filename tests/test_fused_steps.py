"""The fused path (one Lightning step per epoch) keeps Lightning's features working."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pytorch_lightning.callbacks import Callback, ModelCheckpoint
from sklearn.datasets import make_regression

import skflash as flash
from skflash import FlashRegressor
from skflash.data.auto_dataset import AutoDataset
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


class BatchWatcher(Callback):
    """Records what ``on_train_batch_end`` receives, as a user's callback would."""

    batches: list = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        type(self).batches.append(batch)


def test_per_batch_callbacks_see_real_batches_and_the_same_model(data):
    X, y = data
    BatchWatcher.batches = []
    watched = FlashRegressor(callbacks=[BatchWatcher()], **FAST).fit(X, y)
    assert len(BatchWatcher.batches) == 4 * 4  # 4 epochs of 4 batches of 16
    assert all(torch.is_tensor(b[0]) and b[0].shape == (16, 4) for b in BatchWatcher.batches)
    fused = FlashRegressor(**FAST).fit(X, y)
    np.testing.assert_allclose(watched.predict(X), fused.predict(X), rtol=1e-10)


def test_callback_instances_see_every_step(data):
    X, y = data
    task = RegressionTask(4, backbone="mlp", backbone_kwargs={"hidden_sizes": (8,)})
    dm = NumpyDataModule.from_xy_dataset(X, y, test_size=None, batch_size=16, seed=0)
    dm.fused_steps = True
    counter = StepCounter()
    trainer = flash.Trainer(max_epochs=3, callbacks=[counter], **QUIET)
    trainer.fit(task, datamodule=dm)
    assert counter.steps == 3 * 4 and trainer.global_step == 3 * 4


def test_gradient_clipping_runs_lightnings_loop(data):
    X, y = data
    reg = FlashRegressor(trainer__gradient_clip_val=0.5, **FAST).fit(X, y)
    assert reg.task_.automatic_optimization is True
    assert len(reg.history_) == 4 and all("train_loss" in row for row in reg.history_)


@pytest.mark.parametrize(
    ("trainer_kwargs", "steps", "validations"),
    [
        ({"max_steps": 10}, 10, 2),  # the third epoch stops mid-way, before validating
        ({"limit_train_batches": 0.5}, 4 * 2, 4),
        ({"limit_train_batches": 3}, 4 * 3, 4),
        ({"accumulate_grad_batches": 2}, 4 * 2, 4),
        ({"val_check_interval": 2}, 4 * 4, 8),
        ({}, 4 * 4, 4),
    ],
)
def test_step_limits_mean_what_lightning_documents(data, trainer_kwargs, steps, validations):
    X, y = data
    seen = {"validations": 0}

    class Observer(Callback):
        def on_train_end(self, trainer, pl_module):
            seen["global_step"] = trainer.global_step

        def on_validation_end(self, trainer, pl_module):
            seen["validations"] += 1

    routed = {f"trainer__{k}": v for k, v in trainer_kwargs.items()}
    reg = FlashRegressor(
        callbacks=[Observer()], early_stopping=True, validation_fraction=1 / 9, **routed, **FAST
    )
    reg.fit(np.vstack([X, X[:8]]), np.concatenate([y, y[:8]]))  # 72 rows: 64 train, 8 val
    assert seen["global_step"] == steps
    assert seen["validations"] == validations


def test_learning_rate_monitor_by_step_logs_every_step(data, tmp_path):
    from pytorch_lightning.callbacks import LearningRateMonitor
    from pytorch_lightning.loggers import CSVLogger

    X, y = data
    logger = CSVLogger(tmp_path, name="run")
    monitor = LearningRateMonitor(logging_interval="step")
    FlashRegressor(
        callbacks=[monitor], trainer__logger=logger, trainer__log_every_n_steps=1, **FAST
    ).fit(X, y)
    rows = (tmp_path / "run" / "version_0" / "metrics.csv").read_text().splitlines()
    header = rows[0].split(",")
    column = next(i for i, name in enumerate(header) if name.startswith("lr-"))
    assert sum(1 for row in rows[1:] if row.split(",")[column]) == 4 * 4


def test_reduce_on_plateau_reads_the_same_epochs_validation(data):
    X, y = data
    lrs = {}

    class LastRate(Callback):
        def on_train_epoch_end(self, trainer, pl_module):
            lrs.setdefault(self.name, []).append(trainer.optimizers[0].param_groups[0]["lr"])

        def __init__(self, name):
            self.name = name

    class PerBatch(LastRate):
        def on_train_batch_end(self, *args):
            pass

    for callback in [LastRate("fused"), PerBatch("steps")]:
        task = RegressionTask(
            4,
            learning_rate=0.05,
            scheduler="reducelronplateau",
            scheduler_kwargs={"patience": 0, "factor": 0.5, "threshold": 0.5},
        )
        dm = NumpyDataModule.from_xy_dataset(X, y, test_size=None, val_split=0.25, batch_size=16)
        dm.fused_steps = True
        trainer = flash.Trainer(max_epochs=6, callbacks=[callback], **QUIET)
        trainer.fit(task, datamodule=dm)
    assert lrs["fused"] == lrs["steps"]
    assert min(lrs["fused"]) < lrs["fused"][0]  # the plateau was reached and acted on


def test_predict_through_the_trainer_on_a_fused_datamodule(data):
    X, y = data
    task = RegressionTask(4)
    dm = NumpyDataModule.from_xy_dataset(X, y, test_size=None, batch_size=16)
    dm.fused_steps = True
    trainer = flash.Trainer(max_epochs=1, **QUIET)
    trainer.fit(task, datamodule=dm)
    dm.predict_dataset = AutoDataset(X, dm.data_pipeline, "predict")
    outputs = trainer.predict(task, datamodule=dm)
    assert sum(len(o) for o in outputs) == 64


def test_mixed_precision_and_checkpoint_callback(data, tmp_path):
    X, y = data
    seen = []

    class Precision(Callback):
        ignores_steps = True

        def on_fit_start(self, trainer, pl_module):
            seen.append(trainer.precision)

    reg = FlashRegressor(precision="bf16-mixed", callbacks=[Precision()], **FAST).fit(X, y)
    assert np.isfinite(reg.predict(X)).all() and seen == ["bf16-mixed"]
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "ckpt", monitor="train_loss")
    FlashRegressor(callbacks=[checkpoint], **FAST).fit(X, y)
    assert list((tmp_path / "ckpt").glob("*.ckpt"))


def test_epoch_scheduler_steps_in_fused_mode(data):
    X, y = data
    task = RegressionTask(4, scheduler="steplr", scheduler_kwargs={"step_size": 1, "gamma": 0.5})
    dm = NumpyDataModule.from_xy_dataset(X, y, test_size=None, batch_size=16, seed=0)
    dm.fused_steps = True
    fused = []

    class Spy(Callback):
        ignores_steps = True

        def on_train_epoch_start(self, trainer, pl_module):
            fused.append(pl_module.fuses_steps())

    trainer = flash.Trainer(max_epochs=3, callbacks=[Spy()], **QUIET)
    trainer.fit(task, datamodule=dm)
    assert fused == [True, True, True]
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(1e-3 * 0.5**3)


def test_chunk_needs_manual_optimization(data):
    from skflash.data.batch_loader import ChunkedBatchLoader

    X, y = data
    task = RegressionTask(4)
    dm = NumpyDataModule.from_xy_dataset(X, y, test_size=None, batch_size=16, seed=0)
    chunks = ChunkedBatchLoader(dm.train_dataset, 16)
    with pytest.raises(RuntimeError, match="automatic_optimization = False"):
        flash.Trainer(max_epochs=1, **QUIET).fit(task, train_dataloaders=chunks)


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
