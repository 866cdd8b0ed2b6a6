"""FlashClassifier: a Lightning-trained network as a scikit-learn classifier."""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy.special import expit, log_expit, log_softmax, softmax
from sklearn.base import ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets, type_of_target, unique_labels
from sklearn.utils.validation import column_or_1d

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
from skflash.tasks.classification import ClassificationTask


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

    _y_numeric = False
    #: The shared parameters with this estimator's own; the signature and the
    #: docstring's Parameters section are written from it.
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
                    0.1,
                    "float",
                    (Real(0.0, 1.0, open_high=True),),
                    """
                    With ``loss="auto"``: train against targets moved this much towards
                    the uniform distribution (each class gets ``label_smoothing /
                    n_classes``; a label of a binary or multi-label target, 1/2 of it),
                    which keeps the logits from growing without bound on separable data.
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

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags

    # ------------------------------------------------------------------ public API
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
        if y.dtype == object and pd.isna(y).any():
            raise ValueError(
                "y holds missing labels (None or NaN). Drop those rows, or give them a label "
                "of their own (e.g. 'unknown')."
            )
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

    _counts_labels = True

    def _target_weight(self, y: np.ndarray, label_counts: Any = None) -> np.ndarray | None:
        if self.class_weight is None:
            return None
        if self._multi_label:
            raise ValueError("class_weight is not supported for multi-label targets.")
        codes = y.astype(np.int64)
        if self.class_weight == "balanced":  # n_samples / (n_classes * count), as sklearn's
            if label_counts is None:
                counts = np.bincount(codes, minlength=len(self.classes_)).astype(np.float64)
            else:  # one block of streamed rows: the counts of all of them
                counts = np.array([label_counts.get(c, 0) for c in self.classes_], dtype=float)
            present = counts > 0
            weights = np.ones(len(self.classes_))
            weights[present] = counts[present].sum() / (present.sum() * counts[present])
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
        backbone, backbone_kwargs, width = self._backbone_module(params, n_inputs, self._n_logits())
        return ClassificationTask(
            num_inputs=n_inputs,
            num_classes=len(self.classes_),
            multi_label=self._multi_label,
            backbone=backbone,
            backbone_kwargs=backbone_kwargs,
            backbone_width=width,
            loss_fn=None if params["loss"] == "auto" else params["loss"],
            label_smoothing=params.get("label_smoothing", 0.0),  # (earlier pickles: none)
            output="logits",
            **self._task_kwargs(params, epochs),
        )

    def _onnx_output_kind(self) -> str:
        if self._multi_label:
            return "multilabel"
        return "binary" if self._n_logits() == 1 else "multiclass"

    def _n_logits(self) -> int:
        return 1 if not self._multi_label and len(self.classes_) == 2 else len(self.classes_)
