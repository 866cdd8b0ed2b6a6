"""FlashClassifier: a Lightning-trained network as a scikit-learn classifier."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from pytorch_lightning.callbacks import Callback
from scipy.special import expit, log_expit, log_softmax, softmax
from sklearn.base import ClassifierMixin
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets, type_of_target, unique_labels
from sklearn.utils.validation import column_or_1d
from torch import nn

from skflash.estimators.base import BaseFlashEstimator
from skflash.estimators.parameters import InstanceOf, Options, Satisfies
from skflash.tasks.classification import ClassificationTask


class FlashClassifier(ClassifierMixin, BaseFlashEstimator):
    """A PyTorch network trained by a Lightning Trainer, as a scikit-learn classifier.

    ``fit`` encodes the labels (any type scikit-learn accepts: strings, integers, bools;
    or a multi-label indicator matrix), standardises the inputs, and trains a
    :class:`~skflash.tasks.ClassificationTask` with a :class:`skflash.Trainer`. ``predict``
    returns the original labels. A fit prints nothing and writes no files unless
    ``verbose`` asks for it.

    Parameters
    ----------
    backbone : str, nn.Module class or nn.Module, default="mlp"
        A key of the backbone registry topped with a linear head: ``"mlp"`` (by default
        two hidden layers of 64 SiLU units; change them with
        ``backbone__hidden_sizes``, ``backbone__activation``, ``backbone__dropout``) or
        ``"linear"``; or a module class, built as ``cls(n_features, n_outputs, **backbone__)``;
        or a module instance, copied at each fit. A module is the whole network.
    loss : "auto" or callable, default="auto"
        ``"auto"``: cross-entropy for multiclass targets, binary cross-entropy with
        logits for binary and multi-label ones; the loss always receives logits.
        A callable gets ``(logits, target)``.
    optimizer : str or torch.optim.Optimizer class, default="adamw"
        A name such as ``"adam"``, ``"adamw"`` or ``"sgd"``, or a class; its arguments
        go in as ``optimizer__<arg>``. Every torch optimizer trains well with the
        defaults, except LBFGS, SparseAdam and Muon, which are refused.
    learning_rate : float or "auto", default="auto"
        ``"auto"``: the rate measured to train well for the optimizer (1e-3 for AdamW,
        Adam, NAdam, RMSprop and Rprop; 3e-3 RAdam and Adamax; 1e-2 Adagrad and
        Adafactor; 0.1 SGD and ASGD; 1.0 Adadelta; torch's default for other classes).
    weight_decay : float or "auto", default="auto"
        The main regulariser. ``"auto"`` shrinks the weights by 0.1% per step wherever
        the decay is decoupled (AdamW, Adafactor; Adam, NAdam and RAdam are switched to
        decoupled decay), i.e. ``weight_decay = 1e-3 / learning_rate``, and is off
        where it would be an L2 penalty (SGD, Adagrad, RMSprop...), whose right
        strength depends on the data. A number is passed to the optimizer as its own
        ``weight_decay``, with torch's meaning.
    lr_schedule : {"cosine", None}, default="cosine"
        ``"cosine"`` anneals the learning rate to zero over ``max_epochs`` (smoother
        convergence); None keeps it constant.
    batch_size : int or "auto", default="auto"
        ``"auto"`` is ``min(200, n_samples)``.
    max_epochs : int, default=200
        Passes over the training data (per ``fit``; ``partial_fit`` makes one).
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training data, stop when its loss has
        not improved for ``patience`` epochs, and keep the best epoch's weights.
    validation_fraction : float, default=0.1
    patience : int, default=10
    standardize_inputs : bool, default=True
        Centre and scale each feature with the (weighted) training statistics.
    random_state : int, RandomState instance or None, default=None
        Seeds the validation split, the initial weights and the shuffling. The global
        random state of numpy and torch is left alone when it is an integer.
    accelerator : str, default="cpu"
        Lightning accelerator: ``"cpu"``, ``"gpu"``, ``"auto"``...
    devices : int, str or list, default="auto"
        Lightning devices. More than one is refused unless ``trainer__strategy`` names
        a multi-process strategy (Lightning's default one re-runs the whole script).
    precision : str or int, optional
        Any Lightning precision except ``"transformer-engine"`` (which needs an NVIDIA
        GPU): ``"64-true"`` trains in float64, ``"bf16-mixed"``/``"16-mixed"`` under
        autocast, ``"bf16-true"``/``"16-true"`` with half-precision weights. None:
        float32 input trains in float32; float64 input trains in float64 (exact, as
        scikit-learn's MLP) while an epoch is under 1e8 multiply-adds (training rows x
        trainable parameters) on the CPU, and in float32 beyond that or on an
        accelerator (float64 costs 1.3x-1.5x the time). Predictions come back in the
        input's dtype.
    num_threads : int, "auto" or None, default="auto"
        CPU threads torch uses in ``fit`` and ``predict``. ``"auto"``: one when a step
        is small (under 4 million multiply-adds: trainable parameters x batch rows),
        where more threads gain nothing on a quiet machine and slow a busy one several
        times over; otherwise torch's own setting (in a joblib or Dask worker, what the
        worker was given). None leaves torch's setting alone. The caller's setting is
        restored afterwards.
    callbacks : list of Lightning callbacks, optional
        Copied into each fit.
    verbose : int, default=0
        0: silent; 1: one line per epoch with the losses; 2: Lightning's own progress bar,
        model summary and messages. No files are written at any level unless a logger
        (``trainer__logger``) or a ModelCheckpoint is passed.
    warm_start : bool, default=False
        Make ``fit`` continue training the fitted network instead of starting anew: the
        optimizer's state carries on, and a fresh learning-rate schedule runs over
        ``max_epochs``. (``partial_fit`` also keeps the optimizer's state, and trains at
        the constant ``learning_rate``.)
    class_weight : dict, "balanced" or None, default=None
        Weights each class's samples in the loss: ``{label: weight}``, or ``"balanced"``
        for weights inversely proportional to the class frequencies. Multiplies
        ``sample_weight``.
    **kwargs
        Routed parameters: ``backbone__<arg>`` (e.g. ``backbone__hidden_sizes``),
        ``optimizer__<arg>`` (e.g. ``optimizer__weight_decay``) and ``trainer__<arg>``
        (any ``pytorch_lightning.Trainer`` argument).

    Attributes
    ----------
    task_ : ClassificationTask
        The trained Lightning module.
    classes_ : ndarray
        The class labels (for multi-label targets, the column indices).
    history_ : list of dict
        Per epoch: ``epoch``, ``train_loss``, and ``val_loss`` when early stopping.
    n_iter_ : int
        Epochs trained.
    best_epoch_ : int or None
        The epoch whose weights were kept by early stopping.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Defined when X has string column names.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skflash import FlashClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = FlashClassifier(max_epochs=50, random_state=0).fit(X, y)
    >>> clf.predict_proba(X[:2]).shape
    (2, 3)
    """

    _y_numeric = False
    _own_constraints = {
        "loss": (
            Options(("auto",)),
            Satisfies(
                lambda f: callable(f) and not inspect.isclass(f),
                "a callable loss(logits, y) (a loss module instance, not the class)",
            ),
        ),
        "class_weight": (
            Options((None, "balanced")),
            InstanceOf((dict,), "a dict {label: weight}"),
        ),
    }

    def __init__(
        self,
        backbone: str | type[nn.Module] | nn.Module = "mlp",
        loss: str | Callable = "auto",
        optimizer: str | type[torch.optim.Optimizer] = "adamw",
        learning_rate: float | str = "auto",
        weight_decay: float | str = "auto",
        lr_schedule: str | None = "cosine",
        batch_size: int | str = "auto",
        max_epochs: int = 200,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        patience: int = 10,
        standardize_inputs: bool = True,
        random_state: int | np.random.RandomState | None = None,
        accelerator: str = "cpu",
        devices: int | str | list[int] = "auto",
        precision: str | int | None = None,
        num_threads: int | str | None = "auto",
        callbacks: list[Callback] | None = None,
        verbose: int = 0,
        warm_start: bool = False,
        class_weight: dict | str | None = None,
        **kwargs: Any,
    ) -> None:
        self._store_parameters(locals())

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        tags.input_tags.allow_nan = False
        return tags

    # ------------------------------------------------------------------ public API
    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> FlashClassifier:
        """Train on ``X, y``; with ``warm_start`` a fitted network continues training.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
        y : array-like of shape (n_samples,), or (n_samples, n_labels) 0/1 indicators
        sample_weight : array-like of shape (n_samples,), optional
            Weights each sample's loss; a zero weight is the same as leaving it out.

        Returns
        -------
        self : FlashClassifier
        """
        return self._fit(X, y, sample_weight, incremental=self.warm_start, max_epochs=None)

    def partial_fit(
        self, X: Any, y: Any, classes: Any = None, sample_weight: Any = None
    ) -> FlashClassifier:
        """Train for one epoch on ``X, y``, continuing from the current weights.

        ``classes`` (all the labels ``y`` may hold) is required on the first call.
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
        """The network's logits: shape (n_samples,) for binary targets (positive class),
        else (n_samples, n_classes) or (n_samples, n_labels)."""
        logits = self._forward(X)
        return logits.reshape(-1) if self._n_logits() == 1 else logits

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, shape (n_samples, n_classes); rows sum to one.

        For multi-label targets: one probability per label, shape (n_samples, n_labels).
        """
        logits = self.decision_function(X)
        if self._multi_label:
            return expit(logits)
        if logits.ndim == 1:
            p = expit(logits)
            return np.column_stack([1 - p, p])
        return softmax(logits, axis=1)

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """Logarithm of :meth:`predict_proba`, computed stably from the logits."""
        logits = self.decision_function(X)
        if self._multi_label:
            return log_expit(logits)
        if logits.ndim == 1:
            return np.column_stack([log_expit(-logits), log_expit(logits)])
        return log_softmax(logits, axis=1)

    def predict(self, X: Any) -> np.ndarray:
        """The original labels (for multi-label targets, a 0/1 indicator matrix)."""
        logits = self.decision_function(X)
        if self._multi_label:
            return (logits > 0).astype(np.int64)
        if logits.ndim == 1:
            return self.classes_[(logits > 0).astype(np.int64)]
        return self.classes_[np.argmax(logits, axis=1)]

    # ------------------------------------------------------------------ subclass hooks
    def _encode_target(self, y: np.ndarray, fitting: bool, classes: Any = None) -> np.ndarray:
        check_classification_targets(y)
        kind = type_of_target(y, input_name="y")
        if kind == "multilabel-indicator":
            if fitting:
                self._multi_label = True
                self.classes_ = np.arange(y.shape[1])
            elif not self._multi_label or y.shape[1] != len(self.classes_):
                raise ValueError(
                    f"y has {y.shape[1]} label columns, but this model was fitted on "
                    f"{'single labels' if not self._multi_label else len(self.classes_)}."
                )
            return np.asarray(y, dtype=np.float64)
        y = column_or_1d(y, warn=True)
        if fitting:
            self._multi_label = False
            self.classes_ = unique_labels(y) if classes is None else unique_labels(classes)
            if len(self.classes_) < 2:
                raise ValueError(
                    "Classifier can't train when only one class is present: y holds only "
                    f"{self.classes_[0]!r}. Pass data with at least two classes."
                )
        elif self._multi_label:
            raise ValueError("This model was fitted on multi-label targets; y is single-label.")
        elif classes is not None and not np.array_equal(unique_labels(classes), self.classes_):
            raise ValueError(
                f"classes={unique_labels(classes).tolist()} differs from the classes "
                f"{self.classes_.tolist()} this model was fitted with. Pass the same classes "
                "(or none) to later partial_fit calls, or refit to change them."
            )
        unseen = np.setdiff1d(unique_labels(y), self.classes_)
        if len(unseen):
            raise ValueError(
                f"y contains labels {unseen.tolist()} that are not in classes "
                f"{self.classes_.tolist()}. Pass every label in `classes` on the first "
                "partial_fit, or refit."
            )
        codes = np.searchsorted(self.classes_, y)
        return codes.astype(np.float64) if len(self.classes_) == 2 else codes.astype(np.int64)

    def _check_kept_target(self, y: np.ndarray) -> None:
        if not self._multi_label and len(np.unique(y)) < 2:
            raise ValueError(
                "Classifier can't train when only one class is present: every sample of the "
                "other classes has a zero sample_weight."
            )

    def _target_weight(self, y: np.ndarray) -> np.ndarray | None:
        if self.class_weight is None:
            return None
        if self._multi_label:
            raise ValueError("class_weight is not supported for multi-label targets.")
        codes = y.astype(np.int64)
        if self.class_weight == "balanced":
            present = np.unique(codes)
            weights = np.ones(len(self.classes_))
            weights[present] = compute_class_weight("balanced", classes=present, y=codes)
            return weights[codes]
        if isinstance(self.class_weight, dict):
            unknown = [k for k in self.class_weight if k not in set(self.classes_.tolist())]
            if unknown:
                raise ValueError(
                    f"class_weight names labels {unknown} that are not among the classes "
                    f"{self.classes_.tolist()}."
                )
            weights = np.array([float(self.class_weight.get(c, 1.0)) for c in self.classes_])
            return weights[codes]
        raise ValueError(
            f"class_weight must be 'balanced', a dict or None, got {self.class_weight!r}."
        )

    def _target_dtype(self, dtype: torch.dtype) -> torch.dtype:
        multiclass = not self._multi_label and len(self.classes_) > 2
        return torch.long if multiclass else dtype

    def _build_task(
        self, params: dict[str, Any], n_inputs: int, y: np.ndarray, epochs: int
    ) -> ClassificationTask:
        backbone, backbone_kwargs, width = self._backbone_module(
            params["backbone"], n_inputs, self._n_logits()
        )
        return ClassificationTask(
            num_inputs=n_inputs,
            num_classes=len(self.classes_),
            multi_label=self._multi_label,
            backbone=backbone,
            backbone_kwargs=backbone_kwargs,
            backbone_width=width,
            loss_fn=None if params["loss"] == "auto" else params["loss"],
            output="logits",
            **self._task_kwargs(params, epochs),
        )

    def _n_logits(self) -> int:
        return 1 if not self._multi_label and len(self.classes_) == 2 else len(self.classes_)
