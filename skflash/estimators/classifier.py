"""FlashClassifier: a Lightning-trained network as a scikit-learn classifier."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from scipy.special import expit, log_expit, log_softmax, softmax
from sklearn.base import ClassifierMixin
from sklearn.utils.multiclass import type_of_target
from torch import nn

from skflash.core.model import Task
from skflash.data.targets import ClassIndices, ClassLabels
from skflash.estimators.base import BaseFlashEstimator
from skflash.estimators.parameters import (
    InstanceOf,
    Options,
    Parameter,
    Real,
    Satisfies,
    with_own,
)
from skflash.estimators.shared_parameters import SHARED_PARAMETERS
from skflash.lightning_namespaces import CLASSIC, in_namespace
from skflash.tasks.classification import ClassificationTask

if TYPE_CHECKING:
    from skflash.lightning_namespaces import LightningAccelerator, LightningCallback


class FlashClassifier(ClassifierMixin, BaseFlashEstimator):
    """A PyTorch network trained by a Lightning Trainer, as a scikit-learn classifier.

    ``fit`` encodes the labels (any type scikit-learn accepts: strings, integers, bools;
    or a multi-label indicator matrix), standardises the inputs, and trains a
    :class:`~skflash.tasks.ClassificationTask` with a :class:`skflash.Trainer`. ``predict``
    returns the original labels. A fit prints nothing and writes no files unless
    ``verbose`` asks for it.

    Attributes
    ----------
    classes_ : ndarray
        The class labels (for multi-label targets, the column indices).

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skflash import FlashClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = FlashClassifier(max_epochs=50, random_state=0).fit(X, y)
    >>> clf.predict_proba(X[:2]).shape
    (2, 3)
    """

    #: The shared parameters with this estimator's own: the docstring's Parameters
    #: section is written from it, and ``__init__`` matches it (tested).
    _parameters = with_own(
        SHARED_PARAMETERS,
        {
            "backbone": (
                Parameter(
                    "loss",
                    "auto",
                    '"auto" or callable',
                    (
                        Options(("auto",)),
                        Satisfies(
                            lambda f: callable(f) and not inspect.isclass(f),
                            "a callable loss(logits, y) (a loss module instance, not the class)",
                        ),
                    ),
                    """
                    ``"auto"``: cross-entropy for multiclass targets, binary cross-entropy
                    with logits for binary and multi-label ones; the loss always receives
                    logits. A callable gets ``(logits, target)``.
                    """,
                ),
                Parameter(
                    "label_smoothing",
                    0.0,
                    "float",
                    (Real(0.0, 1.0, open_high=True),),
                    """
                    With ``loss="auto"``: train against targets moved this much towards
                    the uniform distribution (each class gets ``label_smoothing /
                    n_classes``; a label of a binary or multi-label target, 1/2 of it),
                    which keeps the logits from growing without bound on separable data
                    and can lift accuracy a little, at the cost of less trustworthy
                    probabilities: off by default, as ``predict_proba`` is scored too.
                    """,
                ),
            ),
            None: (
                Parameter(
                    "class_weight",
                    None,
                    'dict, "balanced" or None',
                    (Options((None, "balanced")), InstanceOf((dict,), "a dict {label: weight}")),
                    """
                    Weights each class's samples in the loss: ``{label: weight}``, or
                    ``"balanced"`` for weights inversely proportional to the class
                    frequencies. Multiplies ``sample_weight``.
                    """,
                ),
            ),
        },
    )

    _targets = ClassLabels

    def __init__(
        self,
        *,
        task: type[Task] | None = None,
        backbone: str | type[nn.Module] | nn.Module = "mlp",
        loss: Literal["auto"] | Callable = "auto",
        label_smoothing: float = 0.0,
        optimizer: str | type[torch.optim.Optimizer] = "adamw",
        learning_rate: float | Literal["auto"] = "auto",
        weight_decay: float | Literal["auto"] = "auto",
        lr_schedule: Literal["cosine"] | None = "cosine",
        batch_size: int | Literal["auto"] = "auto",
        max_epochs: int | Literal["auto"] = "auto",
        early_stopping: bool | Literal["auto"] = False,
        validation_fraction: float = 0.1,
        patience: int = 10,
        standardize_inputs: bool | Literal["robust"] = True,
        numeric_embedding: Literal["auto", "periodic"] | None = "auto",
        n_ensemble: int | Literal["auto"] = "auto",
        categorical_features: Any = "auto",
        discrete_features: Any = "auto",
        random_state: int | np.random.RandomState | None = None,
        accelerator: str | LightningAccelerator = "cpu",
        devices: int | str | list[int] = "auto",
        precision: str | int | None = None,
        num_threads: int | Literal["auto"] | None = "auto",
        callbacks: list[LightningCallback] | None = None,
        verbose: int = 0,
        warm_start: bool = False,
        class_weight: dict | Literal["balanced"] | None = None,
        **kwargs: Any,
    ) -> None:
        self.task = task
        self.backbone = backbone
        self.loss = loss
        self.label_smoothing = label_smoothing
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.lr_schedule = lr_schedule
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.standardize_inputs = standardize_inputs
        self.numeric_embedding = numeric_embedding
        self.n_ensemble = n_ensemble
        self.categorical_features = categorical_features
        self.discrete_features = discrete_features
        self.random_state = random_state
        self.accelerator = accelerator
        self.devices = devices
        self.precision = precision
        self.num_threads = num_threads
        self.callbacks = callbacks
        self.verbose = verbose
        self.warm_start = warm_start
        self.class_weight = class_weight
        self._store_routed(kwargs)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags

    # ------------------------------------------------------------------ public API
    def partial_fit(
        self, X: Any, y: Any, classes: Any = None, sample_weight: Any = None
    ) -> FlashClassifier:
        """Train for one epoch on ``X, y``, continuing from the current weights.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            The rows to train on.
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            Class labels, or a 0/1 indicator matrix for multi-label targets.
        classes : array-like, optional
            All the labels ``y`` may hold; required on the first call (except for
            multi-label targets).
        sample_weight : array-like of shape (n_samples,), optional
            Weights each sample's loss.

        Returns
        -------
        self : FlashClassifier
            The estimator, trained one more epoch.
        """
        if (
            not hasattr(self, "task_")
            and classes is None
            and type_of_target(y) != "multilabel-indicator"
        ):
            raise ValueError(
                "classes must be passed on the first call to partial_fit: all the labels "
                "that y may hold, e.g. classes=np.unique(y_all)."
            )
        return self._fit(X, y, sample_weight, incremental=True, max_epochs=1, classes=classes)

    def decision_function(self, X: Any) -> np.ndarray:
        """The network's logits.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            The rows to score.

        Returns
        -------
        numpy.ndarray
            Shape (n_samples,) for binary targets (the positive class's logit), else
            (n_samples, n_classes) or (n_samples, n_labels).
        """
        logits = self._forward(X)
        if self._target.n_model_outputs == 1:
            return logits.reshape(-1)
        if len(self.classes_) == 2 and not self._target.multi_label:
            return logits[:, 1] - logits[:, 0]  # two logits (a Task of your own): the margin
        return logits

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            The rows to classify.

        Returns
        -------
        numpy.ndarray
            Shape (n_samples, n_classes), rows summing to one; for multi-label targets,
            one probability per label, shape (n_samples, n_labels).
        """
        logits = self.decision_function(X)
        if self._target.multi_label:
            return expit(logits)
        if logits.ndim == 1:
            p = expit(logits)
            return np.column_stack([1 - p, p])
        return softmax(logits, axis=1)

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """Logarithm of :meth:`predict_proba`, computed stably from the logits.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            The rows to classify.

        Returns
        -------
        numpy.ndarray
            The log-probabilities, shaped as :meth:`predict_proba`'s.
        """
        logits = self.decision_function(X)
        if self._target.multi_label:
            return log_expit(logits)
        if logits.ndim == 1:
            return np.column_stack([log_expit(-logits), log_expit(logits)])
        return log_softmax(logits, axis=1)

    def predict(self, X: Any) -> np.ndarray:
        """Predict the original labels.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            The rows to classify.

        Returns
        -------
        numpy.ndarray
            The labels, or for multi-label targets a 0/1 indicator matrix.
        """
        logits = self.decision_function(X)
        if self._target.multi_label:
            return (logits > 0).astype(np.int64)
        if logits.ndim == 1:
            return self.classes_[(logits > 0).astype(np.int64)]
        return self.classes_[np.argmax(logits, axis=1)]

    # ------------------------------------------------------------------ subclass hooks
    def _target_kind(self, params: dict[str, Any]) -> type[ClassLabels]:
        return ClassLabels if params["task"] is None else ClassIndices

    def _learned_target(self, target: ClassLabels) -> None:
        self.classes_ = target.classes

    def _new_task(
        self, arguments: dict[str, Any], target: ClassLabels, params: dict[str, Any]
    ) -> ClassificationTask:
        task = in_namespace(ClassificationTask, params.get("lightning", CLASSIC))
        return task(
            num_classes=len(target.classes),
            multi_label=target.multi_label,
            loss_fn=None if params["loss"] == "auto" else params["loss"],
            label_smoothing=params.get("label_smoothing", 0.0),  # (earlier pickles: none)
            output="logits",
            **arguments,
        )
