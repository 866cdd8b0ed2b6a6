"""Trainer.finetune strategies freeze exactly the backbone, and unfreeze on schedule."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pytorch_lightning.callbacks import Callback

import skflash as flash
from skflash.data.numpy_data import NumpyDataModule
from skflash.tasks import RegressionTask
from tests.conftest import QUIET


class TrainableLog(Callback):
    def __init__(self):
        self.per_epoch = []

    def on_train_epoch_end(self, trainer, pl_module):
        bb = all(p.requires_grad for p in pl_module.backbone.parameters())
        head = all(p.requires_grad for p in pl_module.model.head.parameters())
        self.per_epoch.append((bb, head))
        linears = [m for m in pl_module.backbone.modules() if isinstance(m, torch.nn.Linear)]
        self.per_layer = getattr(self, "per_layer", [])
        self.per_layer.append([m.weight.requires_grad for m in linears])


def _fit(strategy, epochs=3):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(32, 4)), rng.normal(size=32)
    dm = NumpyDataModule.from_xy_dataset(x, y, batch_size=16, test_size=None)
    task = RegressionTask(4, backbone="mlp", backbone_kwargs={"hidden_sizes": (8, 8)})
    before = {k: v.clone() for k, v in task.backbone.state_dict().items()}
    log = TrainableLog()
    flash.Trainer(max_epochs=epochs, callbacks=[log], **QUIET).finetune(
        task, datamodule=dm, strategy=strategy
    )
    changed = any(not torch.equal(before[k], v) for k, v in task.backbone.state_dict().items())
    _fit.per_layer = log.per_layer
    return log.per_epoch, changed


def test_no_freeze_trains_everything():
    epochs, changed = _fit("no_freeze")
    assert epochs == [(True, True)] * 3 and changed


def test_freeze_keeps_backbone_fixed_and_head_trainable():
    epochs, changed = _fit("freeze")
    assert epochs == [(False, True)] * 3 and not changed


def test_freeze_unfreeze_at_epoch():
    epochs, changed = _fit(("freeze_unfreeze", 1))
    assert epochs == [(False, True), (True, True), (True, True)] and changed


def test_unfreeze_milestones():
    # Backbone has two Linear layers: the last one unfreezes at epoch 1, the rest at 2.
    epochs, _ = _fit(("unfreeze_milestones", (1, 2), 1), epochs=3)
    assert [e[0] for e in epochs] == [False, False, True]
    assert _fit.per_layer == [[False, False], [False, True], [True, True]]


def test_unknown_strategy_and_model_without_backbone():
    with pytest.raises(ValueError, match="Unknown finetuning strategy 'thaw'"):
        flash.Trainer(**QUIET).finetune(RegressionTask(2), strategy="thaw")
    task = flash.Task(torch.nn.Linear(2, 1), loss_fn=torch.nn.functional.mse_loss)
    with pytest.raises(AttributeError, match="has no `backbone` module"):
        flash.Trainer(**QUIET).finetune(task, strategy="freeze")


def test_strategy_instances_behave_like_their_names():
    from skflash.core.finetuning import NoFreeze

    X = np.random.default_rng(0).normal(size=(32, 3))
    dm = NumpyDataModule.from_xy_dataset(X, X.sum(axis=1), batch_size=8)
    task = flash.Task(torch.nn.Linear(3, 1), loss_fn=torch.nn.functional.mse_loss)  # no backbone
    flash.Trainer(max_epochs=1, **QUIET).finetune(task, datamodule=dm, strategy="no_freeze")
    flash.Trainer(max_epochs=1, **QUIET).finetune(task, datamodule=dm, strategy=NoFreeze())
    assert all(p.requires_grad for p in task.parameters())
    from skflash.core.finetuning import Freeze

    assert _fit(Freeze()) == _fit("freeze")
    assert _fit(NoFreeze()) == _fit("no_freeze")
    with pytest.raises(AttributeError, match="backbone"):
        flash.Trainer(max_epochs=1, **QUIET).finetune(task, datamodule=dm, strategy="freeze")
