"""Trainer: a Lightning Trainer that can also finetune a model's backbone."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import BaseFinetuning

from skflash.core.finetuning import _backbone, finetuning_callback


class Trainer(pl.Trainer):
    """A ``pytorch_lightning.Trainer`` with :meth:`finetune`.

    Every argument is Lightning's own; see ``pytorch_lightning.Trainer``.
    """

    def finetune(
        self,
        model: pl.LightningModule,
        train_dataloader: Any = None,
        val_dataloaders: Any = None,
        datamodule: pl.LightningDataModule | None = None,
        strategy: Any = "no_freeze",
    ) -> None:
        """Fit ``model`` while a finetuning strategy freezes and unfreezes its ``backbone``.

        Parameters
        ----------
        strategy : str, (str, argument) or BaseFinetuning, default="no_freeze"
            ``"no_freeze"``, ``"freeze"``, ``"freeze_unfreeze"`` (argument: the epoch to
            unfreeze at) or ``"unfreeze_milestones"`` (argument: two epochs).
        """
        callback = finetuning_callback(strategy)
        if strategy != "no_freeze":
            _backbone(model)  # a clear error before training starts
        self.callbacks = [c for c in self.callbacks if not isinstance(c, BaseFinetuning)]
        self.callbacks.append(callback)
        self.fit(model, train_dataloader, val_dataloaders, datamodule)
