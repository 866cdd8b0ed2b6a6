"""The target as the model learns it: checked, encoded, and weighted by class.

One fitted helper per kind of estimator: :class:`RegressionTargets` (numbers, one or
several outputs) and :class:`ClassLabels` (any labels scikit-learn accepts, or a
multi-label indicator matrix, as class codes). Each is learned at ``fit`` and encodes
every later target (``partial_fit``, streamed blocks) by the same rule.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.utils.multiclass import check_classification_targets, type_of_target, unique_labels
from sklearn.utils.validation import column_or_1d


def _n_columns(y: np.ndarray) -> int:
    return 1 if y.ndim == 1 else y.shape[1]


def _converts_to_float(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _plain(value: Any) -> Any:
    """A NumPy scalar as its Python value, so errors show ``0.0`` rather than
    ``np.float64(0.0)``."""
    return value.item() if isinstance(value, np.generic) else value


def _first_non_number(values: np.ndarray) -> Any:
    """The first value that does not convert to a float, as a Python scalar (for errors
    that show it)."""
    flat = values.reshape(-1)
    return _plain(next((v for v in flat if not _converts_to_float(v)), flat[0]))


def _refuse_complex(values: np.ndarray, allowed: str = "real numbers") -> None:
    """Refuse complex numbers before any cast to float, which would drop their imaginary
    parts with a NumPy warning. ``allowed`` says what ``y`` may hold instead."""
    flat = values.reshape(-1)
    if values.dtype.kind == "c" and flat.size:
        found = flat[0]
    elif values.dtype == object and any(
        issubclass(t, (complex, np.complexfloating)) for t in set(map(type, flat))
    ):
        found = next(v for v in flat if isinstance(v, (complex, np.complexfloating)))
    else:
        return
    raise ValueError(
        f"Complex data not supported: y must hold {allowed}, but it holds complex numbers "
        f"such as {_plain(found)!r}. Pass their real parts (y.real), magnitudes (abs(y)) "
        "or another real encoding."
    )


def _refuse_mixed_types(values: np.ndarray, name: str = "y") -> None:
    """Refuse labels of types that cannot be sorted together (strings and numbers), which
    would otherwise fail deep in NumPy's sort with a bare TypeError."""
    if values.dtype != object or values.size < 2:
        return
    flat = values.reshape(-1)
    types = set(map(type, flat))
    if len(types) < 2:
        return
    examples = {t: next(v for v in flat if type(v) is t) for t in types}
    try:
        sorted(examples.values())
    except TypeError:
        named = sorted(examples.items(), key=lambda item: item[0].__name__)
        kinds = ", ".join(t.__name__ for t, _ in named)
        shown = ", ".join(repr(_plain(v)) for _, v in named)
        raise ValueError(
            f"{name} mixes labels of types that cannot be compared ({kinds}; e.g. {shown}), "
            "so they cannot be sorted into classes. Convert every label to one type first: "
            f"all strings (e.g. {name}.astype(str) for an array or Series), or all numbers."
        ) from None


def numeric_strings_as_floats(y: Any) -> Any:
    """A regression target of number strings (a NumPy ``str`` or ``bytes`` array, or a
    list of strings) as float64, as scikit-learn's regressors read it; any other ``y`` as
    it is.

    scikit-learn's checks convert an object array to numbers but leave a string array as
    it is, which then fails deep in the fit. Converted before those checks, it also gets
    their refusal of NaN and infinity (``"nan"``, ``"inf"``).

    Raises
    ------
    ValueError
        When a string is not a number.
    """
    values = y if isinstance(y, np.ndarray) else None
    if isinstance(y, (list, tuple)):
        try:
            values = np.asarray(y)
        except ValueError:  # ragged: left to scikit-learn's checks and their error
            return y
    if values is None or values.dtype.kind not in "US":
        return y
    try:
        return values.astype(np.float64)
    except ValueError:
        raise ValueError(
            f"y must be numeric for a regressor, but it holds {_first_non_number(values)!r}. "
            "Convert y to numbers first (class labels need a classifier)."
        ) from None


class RegressionTargets:
    """Numeric targets of shape ``(n,)`` or ``(n, n_outputs)``.

    Attributes
    ----------
    one_dimensional : bool
        Whether ``y`` was 1-D at fit (predictions are then 1-D too).
    n_outputs : int
    """

    #: ``validate_data`` converts ``y`` to numbers.
    y_numeric = True
    #: Streamed fits need no label counts.
    counts_labels = False
    onnx_kind = "regression"

    def __init__(self, one_dimensional: bool = True, n_outputs: int = 1) -> None:
        self.one_dimensional = one_dimensional
        self.n_outputs = n_outputs

    @staticmethod
    def check_kind(y: Any, owner: str) -> None:
        """Refuse labels before any conversion, with what to use instead."""
        values = np.asarray(y)
        _refuse_complex(values)
        if values.dtype == object and pd.isna(values).any():
            # scikit-learn's check lets None through, and it becomes NaN (a NaN in a
            # float target gets scikit-learn's own "Input y contains NaN")
            raise ValueError(
                "y holds missing values (None or NaN). Drop those rows, or fill them in "
                "before fitting (the target cannot be imputed by the model)."
            )
        if values.dtype.kind in "fiub" or values.size == 0:
            return
        try:
            values.astype(np.float64)  # number strings are converted by the table's checks
        except (TypeError, ValueError):
            raise ValueError(
                f"{owner} needs a numeric target, but y holds values such as "
                f"{_first_non_number(values)!r}. For class labels use FlashClassifier; "
                "otherwise convert y to numbers first."
            ) from None

    @classmethod
    def learn(cls, y: np.ndarray, classes: Any = None) -> RegressionTargets:
        return cls(y.ndim == 1, _n_columns(y))

    def encode(self, y: np.ndarray, classes: Any = None) -> np.ndarray:
        if _n_columns(y) != self.n_outputs:
            raise ValueError(
                f"y has {_n_columns(y)} outputs, but this model was fitted with {self.n_outputs}."
            )
        return y

    def weights(self, y: np.ndarray, class_weight: Any, label_counts: Any = None) -> None:
        """No weights come from a regression target."""
        return None

    def check_kept(self, y: np.ndarray) -> None:
        """Any target is left to learn once zero-weight rows are dropped."""

    def tensor_dtype(self, dtype: torch.dtype) -> torch.dtype:
        return dtype

    @property
    def n_model_outputs(self) -> int:
        return self.n_outputs


class SingleTarget(RegressionTargets):
    """One numeric target, for a model that predicts one (a Task of the user's own that
    is not told a number of outputs): a column vector is taken as 1-D, with scikit-learn's
    DataConversionWarning; several columns are refused."""

    @classmethod
    def learn(cls, y: np.ndarray, classes: Any = None) -> SingleTarget:
        if _n_columns(y) > 1:
            raise ValueError(
                f"y has {_n_columns(y)} target columns, but this Task predicts one: its "
                "constructor takes no number of outputs (an argument such as num_outputs). "
                "Fit one target, or add such an argument to the Task."
            )
        return cls(True, 1)

    def encode(self, y: np.ndarray, classes: Any = None) -> np.ndarray:
        super().encode(y)
        return column_or_1d(y, warn=True)


class ClassLabels:
    """Class labels as codes: ``searchsorted`` positions in the sorted ``classes``.

    Binary targets train on one logit (float codes 0/1), multiclass ones on one logit per
    class (int64 codes), multi-label indicator matrices on one logit per label.

    Attributes
    ----------
    classes : ndarray
        The sorted labels (for multi-label targets, the column indices).
    multi_label : bool
    """

    y_numeric = False
    #: Streamed fits count the labels of all rows (classes, balanced class weights).
    counts_labels = True

    def __init__(self, classes: np.ndarray, multi_label: bool = False) -> None:
        self.classes = classes
        self.multi_label = multi_label

    @staticmethod
    def check_kind(y: Any, owner: str) -> None:
        """Refuse complex labels before scikit-learn's checks cast them; any other labels
        may be learned, and are checked as they are encoded."""
        try:
            values = np.asarray(y)
        except ValueError:  # ragged: left to scikit-learn's checks and their error
            return
        _refuse_complex(values, "class labels (real numbers or strings)")

    @staticmethod
    def _checked(y: np.ndarray) -> str:
        if y.dtype == object and pd.isna(y).any():
            raise ValueError(
                "y holds missing labels (None or NaN). Drop those rows, or give them a label "
                "of their own (e.g. 'unknown')."
            )
        _refuse_mixed_types(y)
        check_classification_targets(y)
        return type_of_target(y, input_name="y")

    @classmethod
    def learn(cls, y: np.ndarray, classes: Any = None) -> ClassLabels:
        """The labels of ``y`` (or ``classes``, all that ``y`` may hold)."""
        if cls._checked(y) == "multilabel-indicator":
            return cls(np.arange(y.shape[1]), multi_label=True)
        y = column_or_1d(y, warn=True)
        found = unique_labels(y) if classes is None else cls._listed(y, classes)
        if len(found) < 2:
            raise ValueError(
                "Classifier can't train when only one class is present: "
                f"{'y' if classes is None else 'classes'} holds only "
                f"{_plain(found[0])!r}. Pass data with at least two classes."
            )
        return cls(found)

    @staticmethod
    def _listed(y: np.ndarray, classes: Any) -> np.ndarray:
        """The sorted labels of ``classes``, checked to hold every label of ``y``."""
        listed = np.asarray(classes, dtype=object)
        if listed.size == 0:
            raise ValueError(
                "classes is empty: pass every label that y may hold, e.g. classes=np.unique(y_all)."
            )
        _refuse_mixed_types(listed, "classes")
        found = unique_labels(classes)
        unique_labels(y, found)  # one type of label in both: scikit-learn's error otherwise
        missing = np.setdiff1d(unique_labels(y), found)
        if len(missing):
            raise ValueError(
                f"y contains labels {missing.tolist()} that are not in classes "
                f"{found.tolist()}. Pass every label that y may hold in `classes`, e.g. "
                "classes=np.unique(y_all)."
            )
        return found

    def encode(self, y: np.ndarray, classes: Any = None) -> np.ndarray:
        """The codes the loss compares with the logits."""
        if self._checked(y) == "multilabel-indicator":
            if not self.multi_label or y.shape[1] != len(self.classes):
                raise ValueError(
                    f"y has {y.shape[1]} label columns, but this model was fitted on "
                    f"{'single labels' if not self.multi_label else len(self.classes)}."
                )
            return np.asarray(y, dtype=np.float64)
        y = column_or_1d(y, warn=True)
        if self.multi_label:
            raise ValueError("This model was fitted on multi-label targets; y is single-label.")
        if classes is not None and not np.array_equal(unique_labels(classes), self.classes):
            raise ValueError(
                f"classes={unique_labels(classes).tolist()} differs from the classes "
                f"{self.classes.tolist()} this model was fitted with. Pass the same classes "
                "(or none) to later partial_fit calls, or refit to change them."
            )
        unseen = np.setdiff1d(unique_labels(y), self.classes)
        if len(unseen):
            raise ValueError(
                f"y contains labels {unseen.tolist()} that are not in classes "
                f"{self.classes.tolist()}. Pass every label in `classes` on the first "
                "partial_fit, or refit."
            )
        codes = np.searchsorted(self.classes, y)
        return codes.astype(np.float64) if len(self.classes) == 2 else codes.astype(np.int64)

    def check_kept(self, y: np.ndarray) -> None:
        """Refuse a target left with one class once zero-weight rows are dropped."""
        if not self.multi_label and len(np.unique(y)) < 2:
            raise ValueError(
                "Classifier can't train when only one class is present: every sample of the "
                "other classes has a zero sample_weight."
            )

    def weights(
        self, codes: np.ndarray, class_weight: Any, label_counts: Any = None
    ) -> np.ndarray | None:
        """Per-sample weights from ``class_weight`` (a dict or ``"balanced"``), or None.

        ``label_counts`` (a Series of rows by label) are those of all the training rows
        when ``codes`` are one block of them.
        """
        if class_weight is None:
            return None
        if self.multi_label:
            raise ValueError("class_weight is not supported for multi-label targets.")
        codes = codes.astype(np.int64)
        if class_weight == "balanced":  # n_samples / (n_classes * count), as sklearn's
            if label_counts is None:
                counts = np.bincount(codes, minlength=len(self.classes)).astype(np.float64)
            else:
                counts = np.array([label_counts.get(c, 0) for c in self.classes], dtype=float)
            present = counts > 0
            weights = np.ones(len(self.classes))
            weights[present] = counts[present].sum() / (present.sum() * counts[present])
            return weights[codes]
        if isinstance(class_weight, dict):
            unknown = [k for k in class_weight if k not in set(self.classes.tolist())]
            if unknown:
                raise ValueError(
                    f"class_weight names labels {unknown} that are not among the classes "
                    f"{self.classes.tolist()}."
                )
            weights = np.array([float(class_weight.get(c, 1.0)) for c in self.classes])
            return weights[codes]
        raise ValueError(f"class_weight must be 'balanced', a dict or None, got {class_weight!r}.")

    def tensor_dtype(self, dtype: torch.dtype) -> torch.dtype:
        """int64 class indices for a multiclass loss; the float dtype otherwise."""
        return torch.long if not self.multi_label and len(self.classes) > 2 else dtype

    @property
    def n_model_outputs(self) -> int:
        """Logits: one for two classes, else one per class or label."""
        return 1 if not self.multi_label and len(self.classes) == 2 else len(self.classes)

    @property
    def onnx_kind(self) -> str:
        if self.multi_label:
            return "multilabel"
        return "binary" if self.n_model_outputs == 1 else "multiclass"


class ClassIndices(ClassLabels):
    """Class labels as class indices for any number of classes, two included: what a
    user's own classification Task gets (``num_classes`` logits against index targets, as
    Flash's classification tasks had). Multi-label targets stay 0/1 per label."""

    def encode(self, y: np.ndarray, classes: Any = None) -> np.ndarray:
        codes = super().encode(y, classes)
        return codes if self.multi_label else codes.astype(np.int64)

    def tensor_dtype(self, dtype: torch.dtype) -> torch.dtype:
        return dtype if self.multi_label else torch.long

    @property
    def n_model_outputs(self) -> int:
        """One logit per class or label."""
        return len(self.classes)
