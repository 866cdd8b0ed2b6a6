"""ClassificationTask: logits from a tabular backbone, the right loss for the label kind.

Multiclass targets (class indices) train with cross-entropy on ``num_classes`` logits;
binary and multi-label targets (0/1 floats) train with binary cross-entropy on logits.
The loss always sees logits; metrics and predictions see probabilities.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from skflash.core.backbones import tabular_network
from skflash.data.process import Postprocess
from skflash.tasks.tabular import TabularTask

OUTPUTS = ("labels", "probabilities", "logits")


def probabilities(logits: torch.Tensor, multi_label: bool) -> torch.Tensor:
    """Class probabilities from logits: sigmoid for one logit or multi-label, else softmax."""
    if multi_label or logits.shape[-1] == 1:
        return torch.sigmoid(logits)
    return torch.softmax(logits, dim=-1)


def smoothed_binary_cross_entropy(
    logits: torch.Tensor, target: torch.Tensor, label_smoothing: float = 0.0, **kwargs: Any
) -> torch.Tensor:
    """Binary cross-entropy with logits against 0/1 targets moved ``label_smoothing / 2``
    towards 1/2, as ``F.cross_entropy(label_smoothing=...)`` does for two classes."""
    target = target * (1 - label_smoothing) + label_smoothing / 2
    return F.binary_cross_entropy_with_logits(logits, target, **kwargs)


def default_loss(one_hot: bool, label_smoothing: float = 0.0) -> Any:
    """Cross-entropy (binary with logits for ``one_hot`` targets), named as the plain one."""
    if one_hot:
        fn = F.binary_cross_entropy_with_logits
        smoothed = partial(smoothed_binary_cross_entropy, label_smoothing=label_smoothing)
    else:
        fn = F.cross_entropy
        smoothed = partial(F.cross_entropy, label_smoothing=label_smoothing)
    return {fn.__name__: smoothed} if label_smoothing else fn


class ClassificationPostprocess(Postprocess):
    """Turn logits into labels, probabilities or logits, as chosen by ``output``.

    Parameters
    ----------
    output : {"labels", "probabilities", "logits"}, default="labels"
    multi_label : bool, default=False
        Labels are 0/1 per class (threshold 0.5) instead of one class index.
    save_path : optional
        As in :class:`~skflash.data.process.Postprocess`.
    """

    def __init__(self, output: str = "labels", multi_label: bool = False, save_path: Any = None):
        super().__init__(save_path)
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}.")
        self.output = output
        self.multi_label = multi_label

    def state_dict(self) -> dict[str, Any]:
        return {"output": self.output, "multi_label": self.multi_label}

    def per_batch_transform(self, batch: torch.Tensor) -> torch.Tensor:
        if self.output == "logits":
            return batch
        probs = probabilities(batch, self.multi_label)
        if self.output == "probabilities":
            return probs
        if self.multi_label:
            return (probs > 0.5).long()
        if probs.shape[-1] == 1:
            return (probs.squeeze(-1) > 0.5).long()
        return probs.argmax(dim=-1)


class ClassificationTask(TabularTask):
    """Classification on feature vectors: ``head(backbone(x))`` gives logits.

    Parameters
    ----------
    num_inputs : int
        Features per sample.
    num_classes : int
        Classes (single-label) or labels (``multi_label=True``). Two classes use one logit.
    multi_label : bool, default=False
        Whether each sample holds several 0/1 labels.
    backbone : str or nn.Module, default="linear"
        As in :class:`~skflash.tasks.RegressionTask`.
    backbone_kwargs : dict, optional
        As in :class:`~skflash.tasks.RegressionTask`.
    backbone_width : int, optional
        As in :class:`~skflash.tasks.RegressionTask`.
    loss_fn : callable, optional
        Defaults to cross-entropy (multiclass) or binary cross-entropy with logits.
    output : {"labels", "probabilities", "logits"}, default="labels"
        What :meth:`predict` returns, through :class:`ClassificationPostprocess`.
    categorical_cardinalities : list of int, optional
        Codes per categorical column, when the last columns of the input hold category
        codes: a :class:`~skflash.core.tabular_input.TabularInput` embeds them.
    numeric_embedding : {"periodic", None}, optional
        An embedding of the numeric features in that TabularInput.
    n_ensemble : int, default=1
        Members of an ensemble of ``"mlp"`` or ``"linear"`` backbones and heads trained
        side by side, each on its own loss, their probabilities averaged at prediction (see
        :mod:`skflash.core.ensemble`).
    label_smoothing : float, default=0.0
        For the default loss: train against targets moved this much towards the uniform
        distribution over the classes (for each label, towards 1/2).
    **task_kwargs
        Passed to :class:`~skflash.core.model.Task`.

    Examples
    --------
    >>> from skflash.tasks import ClassificationTask
    >>> task = ClassificationTask(num_inputs=4, num_classes=3, backbone="linear")
    >>> task.model.head
    Linear(in_features=4, out_features=3, bias=True)
    """

    def __init__(
        self,
        num_inputs: int,
        num_classes: int,
        multi_label: bool = False,
        backbone: str | nn.Module = "linear",
        backbone_kwargs: dict[str, Any] | None = None,
        backbone_width: int | None = None,
        loss_fn: Any = None,
        output: str = "labels",
        categorical_cardinalities: list[int] | None = None,
        numeric_embedding: str | None = None,
        n_ensemble: int = 1,
        label_smoothing: float = 0.0,
        **task_kwargs: Any,
    ) -> None:
        if int(num_classes) < 2 and not multi_label:
            raise ValueError(f"A classifier needs at least 2 classes, got {num_classes}.")
        binary = not multi_label and int(num_classes) == 2
        num_outputs = 1 if binary else int(num_classes)
        model = tabular_network(
            num_inputs,
            num_outputs,
            backbone,
            backbone_kwargs,
            backbone_width,
            categorical_cardinalities,
            numeric_embedding,
            n_ensemble,
            "sigmoid" if binary or multi_label else "softmax",
        )
        if not 0.0 <= float(label_smoothing) < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing!r}.")
        if loss_fn is None:
            loss_fn = default_loss(binary or multi_label, float(label_smoothing))
        postprocess = task_kwargs.pop("postprocess", None) or ClassificationPostprocess(
            output, bool(multi_label)
        )
        super().__init__(model=model, loss_fn=loss_fn, postprocess=postprocess, **task_kwargs)
        self.multi_label = bool(multi_label)
        self.binary = binary

    def to_metrics_format(self, y_hat: torch.Tensor) -> torch.Tensor:
        """Metrics see probabilities, never logits."""
        return probabilities(y_hat, self.multi_label)
