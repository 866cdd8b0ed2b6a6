"""Task: optimizers, schedulers, metrics per stage, predict, checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchmetrics
from torch import nn
from torch.nn import functional as F

import skflash as flash
from skflash.data.numpy_data import NumpyDataModule, NumpyPreprocess
from skflash.tasks import RegressionTask
from tests.conftest import QUIET


def _data(n=64, d=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    return x, x @ np.arange(1.0, d + 1) + 0.1 * rng.normal(size=n)


@pytest.mark.parametrize(
    ("optimizer", "expected"),
    [
        ("adam", torch.optim.Adam),
        ("SGD", torch.optim.SGD),
        ("adamw", torch.optim.AdamW),
        (torch.optim.RMSprop, torch.optim.RMSprop),
    ],
)
def test_optimizer_by_name_or_class(optimizer, expected):
    task = flash.Task(nn.Linear(2, 1), F.mse_loss, optimizer=optimizer, learning_rate=0.05)
    opt = task.configure_optimizers()
    assert type(opt) is expected
    assert opt.param_groups[0]["lr"] == 0.05


def test_optimizer_instance_and_scheduler():
    model = nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    assert flash.Task(model, F.mse_loss, optimizer=opt).configure_optimizers() is opt
    task = flash.Task(
        nn.Linear(2, 1), F.mse_loss, scheduler="steplr", scheduler_kwargs={"step_size": 2}
    )
    [optimizer], [scheduler] = task.configure_optimizers()
    assert isinstance(scheduler, torch.optim.lr_scheduler.StepLR)
    assert scheduler.optimizer is optimizer
    task = flash.Task(
        nn.Linear(2, 1), F.mse_loss, scheduler=torch.optim.lr_scheduler.ReduceLROnPlateau
    )
    assert task.configure_optimizers()[1][0]["monitor"] == "val_loss"


def test_unknown_optimizer_and_scheduler_names():
    with pytest.raises(ValueError, match=r"Unknown optimizer 'adma'.*Choose one of.*'adam'"):
        flash.Task(nn.Linear(2, 1), F.mse_loss, optimizer="adma")
    with pytest.raises(ValueError, match="Unknown scheduler 'steplt'"):
        flash.Task(nn.Linear(2, 1), F.mse_loss, scheduler="steplt")


def test_metrics_are_copied_per_stage_and_logged_with_stage_names():
    metric = torchmetrics.MeanSquaredError()
    x, y = _data()
    dm = NumpyDataModule.from_xy_dataset(x, y, val_split=0.25, batch_size=16)
    task = RegressionTask(3, metrics={"mse": metric}, learning_rate=0.05)
    assert task.train_metrics["mse"] is not task.val_metrics["mse"]
    assert task.train_metrics["mse"] is not metric
    trainer = flash.Trainer(max_epochs=2, **QUIET)
    trainer.fit(task, datamodule=dm)
    logged = set(trainer.callback_metrics)
    assert {"train_loss", "train_mse", "val_loss", "val_mse"} <= logged
    results = trainer.test(task, datamodule=dm, verbose=False)[0]
    assert {"test_loss", "test_mse"} <= set(results)


def test_named_losses_are_logged_and_summed():
    x, y = _data()
    dm = NumpyDataModule.from_xy_dataset(x, y, test_size=None, batch_size=16)
    task = flash.Task(nn.Linear(3, 1), loss_fn={"mse": F.mse_loss, "l1": F.l1_loss})
    trainer = flash.Trainer(max_epochs=1, **QUIET)
    trainer.fit(task, datamodule=dm)
    m = trainer.callback_metrics
    assert {"train_mse", "train_l1", "train_loss"} <= set(m)
    assert float(m["train_loss"]) == pytest.approx(float(m["train_mse"] + m["train_l1"]), rel=1e-5)


def test_predict_batches_restores_mode():
    task = flash.Task(nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.5), nn.Linear(4, 1)))
    sizes = []
    task.model[0].register_forward_hook(lambda m, i, o: sizes.append(len(i[0])))
    task.train()
    out = task.predict(torch.randn(2500, 3), batch_size=1000)
    assert len(out) == 2500 and sizes == [1000, 1000, 500]
    assert task.training
    task.eval()
    task.predict(torch.randn(3, 3))
    assert not task.training
    # eval mode during predict: dropout off, so two runs agree
    a = torch.stack(task.predict(torch.ones(4, 3)))
    task.train()
    b = torch.stack(task.predict(torch.ones(4, 3)))
    assert torch.equal(a, b)


def test_checkpoint_round_trip_predicts_identically(tmp_path):
    x, y = _data(n=100)
    preprocess = NumpyPreprocess(standardize_inputs=True, standardize_target=True)
    dm = NumpyDataModule.from_xy_dataset(x * 100, y + 50, preprocess=preprocess, batch_size=32)
    task = RegressionTask(
        3, backbone="mlp", backbone_kwargs={"hidden_sizes": [8]}, learning_rate=0.01
    )
    trainer = flash.Trainer(max_epochs=3, **QUIET)
    trainer.fit(task, datamodule=dm)
    path = tmp_path / "model.ckpt"
    trainer.save_checkpoint(path)
    raw = torch.load(path, weights_only=True)  # plain state only, no pickled classes
    assert raw["skflash"]["preprocess"]["class"] == "skflash.data.numpy_data:NumpyPreprocess"
    loaded = RegressionTask.load_from_checkpoint(path)
    rows = x[:7] * 100
    expected = torch.stack(task.predict(rows))
    assert torch.equal(torch.stack(loaded.predict(rows)), expected)
    # predictions are in the target's units: the Postprocess undid the scaling
    assert abs(float(expected.mean()) - float(np.mean(y[:7] + 50))) < 5
    with pytest.raises(ValueError, match="X has 2 features"):
        loaded.predict(np.ones((2, 2)))


def test_unaligned_output_shape_does_not_broadcast():
    task = flash.Task(nn.Linear(2, 1), F.mse_loss)
    y_hat, y = torch.arange(4.0).unsqueeze(1), torch.arange(4.0)
    loss, _ = task.compute_loss(y_hat, y)
    assert loss == 0  # broadcasting (4, 1) against (4,) would give 2.5


def test_each_loss_is_logged_under_its_name_in_every_stage():
    x, y = _data()
    nll_like = {"mse": F.mse_loss, "l1": F.l1_loss}
    for loss_fn, names in [(F.mse_loss, {"mse_loss"}), (nll_like, {"mse", "l1"})]:
        task = flash.Task(nn.Linear(3, 1), loss_fn=loss_fn)
        dm = NumpyDataModule.from_xy_dataset(x, y, val_split=0.25, batch_size=16)
        trainer = flash.Trainer(max_epochs=1, **QUIET)
        trainer.fit(task, datamodule=dm)
        logged = set(trainer.callback_metrics)
        trainer.test(task, datamodule=dm, verbose=False)
        logged |= set(trainer.callback_metrics)
        for stage in ("train", "val", "test"):
            assert f"{stage}_loss" in logged
            assert {f"{stage}_{name}" for name in names} <= logged, logged
