"""``X, y, sample_weight`` as the rows a fit trains on: validated, encoded, weighted, split.

In memory the rows become arrays; a Dask ``X`` becomes a :class:`BlockStream` whose
blocks are validated and encoded as they are loaded, after one Dask pass has gathered
what needs every row (category values, labels and their counts). Either way the
categorical columns and the target are learned here, the rows of weight zero are
dropped, and the validation rows are held out.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.utils.validation import _check_sample_weight

from skflash.data.categories import CategoryCodes
from skflash.data.missing_values import may_hold_missing
from skflash.data.row_blocks import BlockStream, RowBlocks, is_dask_collection
from skflash.data.tables import TableEncoder, categorical_columns, in_memory
from skflash.data.targets import ClassLabels, RegressionTargets
from skflash.data.validation_split import split_rows, validation_size

Targets = RegressionTargets | ClassLabels


@dataclasses.dataclass
class RowRules:
    """How a fit turns its data into training rows.

    ``table`` and ``target`` are the fitted encoders of a fit being continued, or None
    to learn them (a fresh fit); ``targets`` is the kind to learn.
    """

    targets: type[RegressionTargets] | type[ClassLabels]
    table: TableEncoder | None
    target: Targets | None
    categorical_features: Any
    class_weight: Any
    #: The fraction held out for early stopping, or None.
    validation_fraction: float | None
    split_seed: int
    shuffle_seed: int
    #: The batch size for a number of training rows.
    batch_size: Callable[[int], int]
    classes: Any = None
    #: Rows the training data must exceed for the validation rows to be held out.
    holdout_above: int = 0
    #: ``discrete_features``, and the rows a table must exceed for ``"auto"`` to apply.
    discrete_features: Any = None
    levels_above: int = 0

    @property
    def fitting(self) -> bool:
        return self.table is None

    def holdout(self, n_rows: int) -> float | None:
        """The fraction held out of ``n_rows`` training rows, or None."""
        return self.validation_fraction if n_rows > self.holdout_above else None


@dataclasses.dataclass
class TrainingRows:
    """What a fit trains on: arrays or streams of each stage, and the encoders learned."""

    train: Any
    val: Any
    n_inputs: int
    dtype: np.dtype
    n_rows: int
    batch_size: int
    table: TableEncoder
    target: Targets

    @property
    def streamed(self) -> bool:
        return isinstance(self.train, BlockStream)


_SPLIT_REMEDY = "Use more data, a larger validation_fraction, or early_stopping=False."


def training_rows(
    estimator: Any, X: Any, y: Any, sample_weight: Any, rules: RowRules
) -> TrainingRows:
    """The training rows of ``X, y, sample_weight`` (a Dask ``X`` streamed, never whole).

    ``estimator`` is the target of scikit-learn's ``validate_data`` (it learns the
    feature count and names at fit, and checks them later).
    """
    if y is None:
        raise ValueError(
            f"{type(estimator).__name__} requires y to be passed, but the target y is None."
        )
    if is_dask_collection(X):
        return _streamed_rows(estimator, X, y, sample_weight, rules)
    return _in_memory_rows(estimator, X, y, sample_weight, rules)


def _in_memory_rows(
    estimator: Any, X: Any, y: Any, sample_weight: Any, rules: RowRules
) -> TrainingRows:
    owner = type(estimator).__name__
    X, y, sample_weight = (in_memory(v) for v in (X, y, sample_weight))
    table = rules.table
    if table is None:
        table = TableEncoder.learn(X, rules.categorical_features, owner)
    given = X
    X, y = checked_rows(estimator, table, rules.targets, X, y, rules.fitting)
    if rules.fitting:
        table.learn_missing(X)
        auto = len(X) > rules.levels_above
        table.learn_levels(given, X, rules.discrete_features, auto)
    if sample_weight is not None:
        sample_weight = _check_sample_weight(
            sample_weight, X, dtype=np.float64, ensure_non_negative=True
        )
        if not np.any(sample_weight > 0):
            raise ValueError("Sample weights must contain at least one non-zero number.")
    target = rules.target or rules.targets.learn(y, rules.classes)
    y = target.encode(y, classes=None if rules.fitting else rules.classes)
    X, y, sample_weight = weighted_rows(X, y, sample_weight, target, rules.class_weight)
    if sample_weight is not None:
        target.check_kept(y)
        if np.all(sample_weight == sample_weight[0]):
            sample_weight = None
    train = (X, y) if sample_weight is None else (X, y, sample_weight)
    val = None
    fraction = rules.holdout(len(X))
    if fraction is not None:
        setting = f"early_stopping with validation_fraction={fraction}"
        train, val = split_rows(train, fraction, rules.split_seed, setting, _SPLIT_REMEDY)
    n_rows = len(train[0])
    return TrainingRows(
        train,
        val,
        table.model_width(X.shape[1]),
        X.dtype,
        n_rows,
        rules.batch_size(n_rows),
        table,
        target,
    )


def checked_rows(
    estimator: Any, table: TableEncoder, targets: Any, X: Any, y: Any, fitting: bool
) -> tuple[np.ndarray, np.ndarray]:
    """``X`` and ``y`` validated together (the target's kind first, for a clear error),
    ``X`` encoded as the model's input."""
    X = table.check_columns(X, fitting=fitting)
    targets.check_kind(y, table.owner)
    return table.encode(
        estimator, X, y, reset=fitting, multi_output=True, y_numeric=targets.y_numeric
    )


def weighted_rows(
    X: np.ndarray,
    y: np.ndarray,
    sample_weight: np.ndarray | None,
    target: Targets,
    class_weight: Any,
    label_counts: Any = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The rows with their weights (sample weights times class weights), the rows of
    weight zero dropped (the same as leaving them out)."""
    from_target = target.weights(y, class_weight, label_counts)
    if from_target is not None:
        sample_weight = from_target if sample_weight is None else sample_weight * from_target
    if sample_weight is not None:
        keep = sample_weight > 0
        if not keep.all():
            X, y, sample_weight = X[keep], y[keep], sample_weight[keep]
    return X, y, sample_weight


class BlockRows:
    """One loaded row block validated and encoded as a fit's arrays ``(x, y[, w])``."""

    def __init__(
        self,
        estimator: Any,
        table: TableEncoder,
        target: Targets,
        class_weight: Any,
        label_counts: Any,
    ) -> None:
        self.estimator, self.table, self.target = estimator, table, target
        self.class_weight, self.label_counts = class_weight, label_counts

    def __call__(self, block: tuple) -> tuple:
        X, y, sample_weight = (in_memory(v) for v in block)
        X, y = checked_rows(self.estimator, self.table, self.target, X, y, fitting=False)
        y = self.target.encode(y)
        if sample_weight is not None:  # a block may weigh all its rows zero; the data not
            sample_weight = _check_sample_weight(
                sample_weight,
                X,
                dtype=np.float64,
                ensure_non_negative=True,
                allow_all_zero_weights=True,
            )
        X, y, sample_weight = weighted_rows(
            X, y, sample_weight, self.target, self.class_weight, self.label_counts
        )
        return (X, y) if sample_weight is None else (X, y, sample_weight)


def _streamed_rows(
    estimator: Any, X: Any, y: Any, sample_weight: Any, rules: RowRules
) -> TrainingRows:
    owner = type(estimator).__name__
    blocks = RowBlocks(X, y, sample_weight)
    X0, y0, _ = (in_memory(v) for v in blocks.first())
    rules.targets.check_kind(y0, owner)
    found: CategoryCodes | None = None
    if rules.fitting:
        found = categorical_columns(X0, rules.categorical_features)
    single_label = np.ndim(y0) == 1 or np.shape(y0)[1] == 1
    labels = (
        rules.targets.counts_labels
        and single_label
        and (
            (rules.classes is None and rules.fitting)
            or rules.class_weight == "balanced"
            or sample_weight is not None
        )
    )
    survey = None
    numeric = []  # a fit finds the numeric columns with missing values in every block
    if rules.fitting and may_hold_missing(X):
        numeric = [i for i in range(X0.shape[1]) if found is None or i not in found.columns]
    if found is not None or labels or blocks.counts_unknown or numeric:
        survey = blocks.survey([] if found is None else found.columns, labels, numeric)
    table = rules.table
    if table is None:
        categories = (
            None
            if found is None
            else CategoryCodes.from_surveyed(found.columns, survey.columns, X0.shape[1])
        )
        missing = [] if survey is None else survey.missing
        table = TableEncoder(categories, rules.categorical_features, owner, missing)
    given = X0
    X0, y0 = checked_rows(estimator, table, rules.targets, X0, y0, rules.fitting)
    if rules.fitting:  # named discrete columns: their levels as the first block has them
        table.learn_levels(given, X0, rules.discrete_features, auto=False)
    label_counts = None if survey is None else survey.label_counts
    classes = rules.classes
    if label_counts is not None and classes is None and rules.fitting:
        classes = np.asarray(label_counts.index.tolist())  # the dtype of every label
    target = rules.target or rules.targets.learn(y0, classes)
    target.encode(y0, classes=None if rules.fitting else classes)
    if survey is not None and survey.weighted_label_counts is not None:
        target.check_kept(np.asarray(survey.weighted_label_counts.index.tolist()))
    prepare = BlockRows(estimator, table, target, rules.class_weight, label_counts)
    n_rows = sum(blocks.row_counts())
    fraction = rules.holdout(n_rows)
    held = 0
    if fraction is not None:
        setting = f"early_stopping with validation_fraction={fraction}"
        held = validation_size(n_rows, fraction, setting, _SPLIT_REMEDY)
    batch_size = rules.batch_size(n_rows - held)
    stream = functools.partial(
        BlockStream, blocks, prepare, batch_size, seed=rules.shuffle_seed, holdout=fraction
    )
    train = stream(shuffle=True, part="train" if fraction else "all")
    val = stream(part="val") if fraction else None
    width = table.model_width(X0.shape[1])
    return TrainingRows(train, val, width, X0.dtype, n_rows - held, batch_size, table, target)
