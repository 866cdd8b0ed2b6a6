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
        milestones = tuple(int(m) for m in unfreeze_milestones)
        if len(milestones) != 2:
            raise ValueError(
                f"unfreeze_milestones must be two epochs (first, second), got "
                f"{unfreeze_milestones!r}."
            )
        self.unfreeze_milestones = milestones
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


#: How each strategy may be written, for errors.
_USAGE: dict[str, str] = {
    "no_freeze": "'no_freeze'",
    "freeze": "'freeze', or ('freeze', train_bn)",
    "freeze_unfreeze": "('freeze_unfreeze', unfreeze_epoch), e.g. ('freeze_unfreeze', 10)",
    "unfreeze_milestones": (
        "('unfreeze_milestones', (first_epoch, second_epoch)), optionally with the number "
        "of layers unfrozen at the first: ('unfreeze_milestones', (5, 10), 3) or "
        "('unfreeze_milestones', ((5, 10), 3))"
    ),
}

_FORMS = (
    f"Choose one of {list(STRATEGIES)}, a (name, arguments) tuple such as "
    "('freeze_unfreeze', 10) or ('unfreeze_milestones', (5, 10)), or a pytorch_lightning "
    "BaseFinetuning callback (e.g. an instance of skflash.core.finetuning.FlashBaseFinetuning)."
)


def _arguments(name: str, args: tuple) -> tuple:
    """The strategy's arguments, with Flash's one-argument form of ``unfreeze_milestones``,
    ``((first, second), num_layers)``, unpacked (its milestones are a pair of epochs, so
    the pair inside a pair can mean nothing else)."""
    if name == "unfreeze_milestones" and len(args) == 1:
        (argument,) = args
        if (
            isinstance(argument, (tuple, list))
            and len(argument) == 2
            and isinstance(argument[0], (tuple, list))
        ):
            return tuple(argument)
    return args


def finetuning_callback(strategy: Any) -> BaseFinetuning:
    """A callback from a strategy name, a ``(name, *arguments)`` tuple or a callback instance.

    Names are case-insensitive. The arguments are those of the strategy's class:
    ``("freeze_unfreeze", 10)``, ``("unfreeze_milestones", (5, 10))`` or with a number of
    layers ``("unfreeze_milestones", (5, 10), 3)``, also written as Flash did,
    ``("unfreeze_milestones", ((5, 10), 3))``. ``None``, an unknown name, arguments the
    strategy does not take, or any other value raise :class:`FinetuningStrategyError`,
    which says what the strategies are and how to write them.
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
        raise FinetuningStrategyError(f"{problem} {_FORMS}")
    name = name.lower()
    try:
        return STRATEGIES[name](*_arguments(name, args))
    except (TypeError, ValueError) as error:
        raise FinetuningStrategyError(
            f"Finetuning strategy {strategy!r} has arguments that {name!r} does not take "
            f"({str(error).rstrip('.')}). Write it as {_USAGE[name]}."
        ) from error
