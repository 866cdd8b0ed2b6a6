"""RegressionTask: a tabular backbone from the registry with a linear head."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import torch.nn.functional as F
from torch import nn

from skflash.core.backbones import TABULAR_BACKBONES
from skflash.core.model import Task
from skflash.data.numpy_data import NumpyPostprocess, NumpyPreprocess

#: Loss names accepted wherever a regression loss is chosen by name.
REGRESSION_LOSSES: dict[str, Callable] = {
    "mse": F.mse_loss,
    "l1": F.l1_loss,
    "mae": F.l1_loss,
    "huber": F.huber_loss,
    "smooth_l1": F.smooth_l1_loss,
}


def regression_loss(loss: str | Callable) -> Callable:
    if isinstance(loss, str):
        if loss.lower() not in REGRESSION_LOSSES:
            raise ValueError(
                f"Unknown loss {loss!r}; choose one of {sorted(REGRESSION_LOSSES)} or pass a "
                "callable loss(y_hat, y)."
            )
        return REGRESSION_LOSSES[loss.lower()]
    if not callable(loss):
        raise TypeError(f"loss must be a name or a callable, got {loss!r}.")
    return loss


class RegressionTask(Task):
    """Regression on feature vectors: ``head(backbone(x))``.

    Parameters
    ----------
    num_inputs : int
        Features per sample.
    num_outputs : int, default=1
        Targets per sample.
    backbone : str or nn.Module, default="linear"
        A key of :data:`~skflash.core.backbones.TABULAR_BACKBONES` (``"linear"``,
        ``"mlp"``) topped with a linear head; or a module: the whole network, or with
        ``backbone_width`` given, a feature extractor of that output width under a head.
    backbone_kwargs : dict, optional
        Arguments for the registered backbone, e.g. ``{"hidden_sizes": (64, 64)}``.
    backbone_width : int, optional
        Output width of a module backbone that gets a head.
    loss_fn : str or callable, default="mse"
        ``"mse"``, ``"l1"``, ``"huber"``, ``"smooth_l1"`` or ``fn(y_hat, y)``.
    **task_kwargs
        Passed to :class:`~skflash.core.model.Task` (optimizer, learning_rate, metrics...).

    Examples
    --------
    >>> from skflash.tasks import RegressionTask
    >>> mlp = {"hidden_sizes": (8,), "activation": "relu"}
    >>> task = RegressionTask(num_inputs=10, backbone="mlp", backbone_kwargs=mlp)
    >>> task.backbone
    Sequential(
      (0): Linear(in_features=10, out_features=8, bias=True)
      (1): ReLU()
    )
    """

    preprocess_cls = NumpyPreprocess
    postprocess_cls = NumpyPostprocess

    def __init__(
        self,
        num_inputs: int,
        num_outputs: int = 1,
        backbone: str | nn.Module = "linear",
        backbone_kwargs: dict[str, Any] | None = None,
        backbone_width: int | None = None,
        loss_fn: str | Callable = "mse",
        **task_kwargs: Any,
    ) -> None:
        if isinstance(backbone, nn.Module) and backbone_width is None:
            model = backbone  # the whole network
        else:
            if isinstance(backbone, nn.Module):
                features, width = backbone, int(backbone_width)
            else:
                factory = TABULAR_BACKBONES.get(backbone)
                features, width = factory(num_inputs, **(backbone_kwargs or {}))
            model = nn.Sequential(
                OrderedDict(backbone=features, head=nn.Linear(width, int(num_outputs)))
            )
        super().__init__(model=model, loss_fn=regression_loss(loss_fn), **task_kwargs)

    @property
    def backbone(self) -> nn.Module:
        """The feature extractor that finetuning strategies freeze."""
        return getattr(self.model, "backbone", self.model)
