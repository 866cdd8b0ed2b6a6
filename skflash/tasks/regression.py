"""RegressionTask: a tabular backbone from the registry with a linear head."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch.nn.functional as F
from torch import nn

from skflash.core.backbones import tabular_network
from skflash.data.numpy_data import NumpyPostprocess
from skflash.tasks.tabular import TabularTask

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


class RegressionTask(TabularTask):
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
    categorical_cardinalities : list of int, optional
        Codes per categorical column, when the last columns of the input hold category
        codes: a :class:`~skflash.core.tabular_input.TabularInput` embeds them.
    numeric_embedding : {"periodic", None}, optional
        An embedding of the numeric features in that TabularInput.
    n_ensemble : int, default=1
        Members of an ensemble of ``"mlp"`` or ``"linear"`` backbones and heads trained
        side by side, each on its own loss, averaged at prediction (see
        :mod:`skflash.core.ensemble`).
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

    postprocess_cls = NumpyPostprocess

    def __init__(
        self,
        num_inputs: int,
        num_outputs: int = 1,
        backbone: str | nn.Module = "linear",
        backbone_kwargs: dict[str, Any] | None = None,
        backbone_width: int | None = None,
        loss_fn: str | Callable = "mse",
        categorical_cardinalities: list[int] | None = None,
        numeric_embedding: str | None = None,
        n_ensemble: int = 1,
        **task_kwargs: Any,
    ) -> None:
        model = tabular_network(
            num_inputs,
            num_outputs,
            backbone,
            backbone_kwargs,
            backbone_width,
            categorical_cardinalities,
            numeric_embedding,
            n_ensemble,
            "mean",
        )
        super().__init__(model=model, loss_fn=regression_loss(loss_fn), **task_kwargs)
