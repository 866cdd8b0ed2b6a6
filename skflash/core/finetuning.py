"""Finetuning strategies: Lightning callbacks that freeze and unfreeze a model's backbone."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
from lightning_fabric.utilities.exceptions import MisconfigurationException
from pytorch_lightning.callbacks import BaseFinetuning
from torch import nn
from torch.optim import Optimizer


def _backbone(pl_module: pl.LightningModule) -> nn.Module:
    backbone = getattr(pl_module, "backbone", None)
    if not isinstance(backbone, nn.Module):
        raise AttributeError(
            f"{type(pl_module).__name__} has no `backbone` module, so a finetuning strategy "
            "cannot tell what to freeze. Give the model a `backbone` attribute, or use "
            "strategy='no_freeze'."
        )
    return backbone


class FlashBaseFinetuning(BaseFinetuning):
    """Freeze the backbone before training; subclasses decide when to unfreeze it.

    Parameters
    ----------
    train_bn : bool, default=True
        Keep batch-norm layers trainable while the rest of the backbone is frozen.
    """

    def __init__(self, train_bn: bool = True) -> None:
        super().__init__()
        self.train_bn = train_bn

    def freeze_before_training(self, pl_module: pl.LightningModule) -> None:
        self.freeze(_backbone(pl_module), train_bn=self.train_bn)

    def finetune_function(
        self, pl_module: pl.LightningModule, epoch: int, optimizer: Optimizer
    ) -> None:
        """Keep the backbone frozen (the ``freeze`` strategy)."""


class NoFreeze(FlashBaseFinetuning):
    """Train everything from the start."""

    def freeze_before_training(self, pl_module: pl.LightningModule) -> None:
        return None


class Freeze(FlashBaseFinetuning):
    """Keep the backbone frozen for the whole training."""


class FreezeUnfreeze(FlashBaseFinetuning):
    """Freeze the backbone, then unfreeze all of it at ``unfreeze_epoch``."""

    def __init__(self, unfreeze_epoch: int = 10, train_bn: bool = True) -> None:
        super().__init__(train_bn)
        self.unfreeze_epoch = int(unfreeze_epoch)

    def finetune_function(
        self, pl_module: pl.LightningModule, epoch: int, optimizer: Optimizer
    ) -> None:
        if epoch == self.unfreeze_epoch:
            self.unfreeze_and_add_param_group(
                _backbone(pl_module), optimizer, train_bn=self.train_bn
            )


class UnfreezeMilestones(FlashBaseFinetuning):
    """Freeze the backbone, then unfreeze it in two steps.

    Its last ``num_layers`` layers are unfrozen at the first milestone epoch and the rest
    at the second.
    """

    def __init__(
        self,
        unfreeze_milestones: tuple[int, int] = (5, 10),
        num_layers: int = 5,
        train_bn: bool = True,
    ) -> None:
        super().__init__(train_bn)
        self.unfreeze_milestones = tuple(int(m) for m in unfreeze_milestones)
        self.num_layers = int(num_layers)

    def finetune_function(
        self, pl_module: pl.LightningModule, epoch: int, optimizer: Optimizer
    ) -> None:
        layers = [m for m in _backbone(pl_module).modules() if not list(m.children())]
        layers = [m for m in layers if list(m.parameters())]
        first, second = self.unfreeze_milestones
        if epoch == first:
            self.unfreeze_and_add_param_group(
                layers[-self.num_layers :], optimizer, train_bn=self.train_bn
            )
        elif epoch == second:
            self.unfreeze_and_add_param_group(
                layers[: -self.num_layers], optimizer, train_bn=self.train_bn
            )


STRATEGIES: dict[str, type[FlashBaseFinetuning]] = {
    "no_freeze": NoFreeze,
    "freeze": Freeze,
    "freeze_unfreeze": FreezeUnfreeze,
    "unfreeze_milestones": UnfreezeMilestones,
}


class FinetuningStrategyError(MisconfigurationException, ValueError):
    """No finetuning strategy, or one that is not known.

    A Lightning ``MisconfigurationException`` (what Flash raised) and a ``ValueError``.
    """


def finetuning_callback(strategy: Any) -> BaseFinetuning:
    """A callback from a strategy name, a ``(name, argument)`` pair or a callback instance.

    Names are case-insensitive. ``None``, an unknown name or any other value raises
    :class:`FinetuningStrategyError`, which says what the strategies are.
    """
    if isinstance(strategy, BaseFinetuning):
        return strategy
    args: tuple = ()
    name = strategy
    if isinstance(strategy, tuple) and strategy and isinstance(strategy[0], str):
        name, args = strategy[0], strategy[1:]
    if not isinstance(name, str) or name.lower() not in STRATEGIES:
        if strategy is None:
            problem = "A finetuning strategy must be given (got None)."
        elif isinstance(name, str):
            problem = f"Unknown finetuning strategy {name!r}."
        else:
            problem = f"A finetuning strategy must be a name or a callback, got {strategy!r}."
        raise FinetuningStrategyError(
            f"{problem} Choose one of {list(STRATEGIES)}, a (name, argument) pair such as "
            "('freeze_unfreeze', 5), or a pytorch_lightning BaseFinetuning callback "
            "(e.g. an instance of skflash.core.finetuning.FlashBaseFinetuning)."
        )
    return STRATEGIES[name.lower()](*args)
