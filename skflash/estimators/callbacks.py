"""Lightning callbacks the estimators train with: history, best weights, epoch lines."""

from __future__ import annotations

import copy
import math
import sys
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback


def _scalar(value: Any) -> float:
    return float(value.item() if isinstance(value, torch.Tensor) else value)


class History(Callback):
    """Record each epoch's logged values, and stop a fit whose loss diverges.

    ``history`` is a list of dicts, one per epoch, such as
    ``{"epoch": 0, "train_loss": 0.41, "val_loss": 0.45}``.
    """

    def __init__(self) -> None:
        self.history: list[dict[str, float]] = []

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        row: dict[str, float] = {"epoch": trainer.current_epoch}
        logged = {**trainer.callback_metrics, **getattr(pl_module, "epoch_metrics", {})}
        for name, value in logged.items():
            if name.startswith(("train_", "val_")):
                row[name] = _scalar(value)
        loss = row.get("train_loss")
        if loss is not None and not math.isfinite(loss):
            raise FloatingPointError(
                f"Training diverged at epoch {trainer.current_epoch + 1}: the training loss is "
                f"{loss}. Try a lower learning_rate, or check the data for extreme values."
            )
        self.history.append(row)


class BestWeights(Callback):
    """Keep the weights of the epoch with the best monitored value; restore them at the end.

    The copy stays in memory: nothing is written to disk.
    """

    def __init__(self, monitor: str = "val_loss") -> None:
        self.monitor = monitor
        self.best_score = math.inf
        self.best_epoch: int | None = None
        self.best_state: dict[str, torch.Tensor] | None = None

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is None:
            return
        score = _scalar(value)
        if score < self.best_score:
            self.best_score = score
            self.best_epoch = trainer.current_epoch
            self.best_state = copy.deepcopy(pl_module.state_dict())

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.best_state is not None:
            pl_module.load_state_dict(self.best_state)


class EpochPrinter(Callback):
    """Print one line per epoch with its losses (``verbose=1``)."""

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        logged = {**trainer.callback_metrics, **getattr(pl_module, "epoch_metrics", {})}
        values = {
            name: _scalar(value)
            for name, value in sorted(logged.items())
            if name.startswith(("train_", "val_"))
        }
        text = "  ".join(f"{name}={value:.5g}" for name, value in values.items())
        print(f"epoch {trainer.current_epoch + 1:>4}/{trainer.max_epochs}  {text}", file=sys.stdout)
