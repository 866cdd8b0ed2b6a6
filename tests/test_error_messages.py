"""Bad input gets one clear error that says what to do: no bare NumPy exception or
warning before it, and values shown as plain Python values."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import skflash as flash
from skflash import FlashClassifier, FlashRegressor
from skflash.core.finetuning import (
    FinetuningStrategyError,
    UnfreezeMilestones,
    finetuning_callback,
)
from skflash.data.missing_values import missing_columns
from skflash.data.numpy_data import NumpyDataModule
from skflash.tasks import RegressionTask
from tests.conftest import QUIET

X = np.random.default_rng(0).normal(size=(20, 3))


@pytest.fixture
def strict():
    """Every warning as an error, so a test sees any that comes before the error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


# -- class labels -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "y",
    [
        np.array(["a", 1, 2, "b"] * 5, dtype=object),
        pd.Series(["a", 1, 2, "b"] * 5),
    ],
    ids=["object-array", "series"],
)
def test_mixed_label_types_name_the_types(y):
    with pytest.raises(ValueError, match=r"mixes labels of types .*\(int, str; e\.g\. 1, 'a'\)"):
        FlashClassifier(max_epochs=1).fit(X, y)


def test_mixed_label_types_say_how_to_fix():
    y = np.array([1.5, "x"] * 10, dtype=object)
    with pytest.raises(ValueError, match=r"Convert every label to one type") as info:
        FlashClassifier(max_epochs=1).fit(X, y)
    assert "float, str" in str(info.value)


def test_mixed_classes_of_partial_fit_name_the_types():
    with pytest.raises(ValueError, match=r"classes mixes labels of types .*\(int, str"):
        FlashClassifier(max_epochs=1).partial_fit(X, ["a", "b"] * 10, classes=["a", "b", 1])


def test_labels_of_types_that_compare_are_not_mixed():
    y = np.array(["a", np.str_("b")] * 10, dtype=object)
    model = FlashClassifier(max_epochs=1, batch_size=20).fit(X, y)
    assert model.classes_.tolist() == ["a", "b"]


def test_a_list_of_mixed_labels_is_read_as_strings_as_scikit_learn_does():
    model = FlashClassifier(max_epochs=1, batch_size=20).fit(X, ["a", 1, 2, "b"] * 5)
    assert model.classes_.tolist() == ["1", "2", "a", "b"]


@pytest.mark.parametrize(
    "y, shown",
    [(np.zeros(20), "only 0.0."), (np.full(20, "a"), "only 'a'."), (np.ones(20, int), "only 1.")],
)
def test_single_class_error_shows_a_plain_value(y, shown):
    with pytest.raises(ValueError, match="only one class is present") as info:
        FlashClassifier(max_epochs=1).fit(X, y)
    assert shown in str(info.value) and "np." not in str(info.value)


# -- infinities in X ----------------------------------------------------------------------


def _with_both_infinities() -> np.ndarray:
    values = X.copy()
    values[0, 0], values[1, 0] = np.inf, -np.inf
    return values


def test_both_infinities_at_fit_give_only_the_error(strict):
    with pytest.raises(ValueError, match="infinity"):
        FlashRegressor(max_epochs=1).fit(_with_both_infinities(), np.arange(20.0))


def test_both_infinities_in_a_table_with_categories_give_only_the_error(strict):
    frame = pd.DataFrame({"x": _with_both_infinities()[:, 0], "c": ["u", "v"] * 10})
    with pytest.raises(ValueError, match="infinity"):
        FlashRegressor(max_epochs=1).fit(frame, np.arange(20.0))


def test_both_infinities_at_predict_give_only_the_error():
    model = FlashRegressor(max_epochs=1, batch_size=20).fit(X, np.arange(20.0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match="infinity"):
            model.predict(_with_both_infinities())


def test_missing_columns_of_huge_or_infinite_values_warn_nothing(strict):
    huge = np.array([[1e308, 0.0], [1e308, np.nan]])
    assert missing_columns(huge) == [1]
    assert missing_columns(np.array([[np.inf, 1.0], [-np.inf, 2.0]])) == []


# -- complex targets ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "y",
    [np.arange(20.0) + 1j, np.array([1j, *range(19)], dtype=object)],
    ids=["complex-array", "object-array"],
)
def test_complex_regression_target_gives_only_a_clear_error(strict, y):
    with pytest.raises(ValueError, match=r"must hold real numbers, .* such as 1j"):
        FlashRegressor(max_epochs=1).fit(X, y)


def test_complex_class_labels_give_only_a_clear_error(strict):
    with pytest.raises(ValueError, match=r"y must hold class labels .* complex numbers"):
        FlashClassifier(max_epochs=1).fit(X, np.arange(20) % 2 + 1j)


# -- finetuning strategies ----------------------------------------------------------------


def test_flash_tuple_form_of_unfreeze_milestones_is_milestones_and_num_layers():
    callback = finetuning_callback(("unfreeze_milestones", ((5, 10), 1)))
    assert isinstance(callback, UnfreezeMilestones)
    assert callback.unfreeze_milestones == (5, 10) and callback.num_layers == 1


def test_flash_tuple_form_trains_with_trainer_finetune():
    rng = np.random.default_rng(0)
    dm = NumpyDataModule.from_xy_dataset(
        rng.normal(size=(16, 4)), rng.normal(size=16), batch_size=16, test_size=None
    )
    task = RegressionTask(4, backbone="mlp", backbone_kwargs={"hidden_sizes": (8, 8)})
    trainer = flash.Trainer(max_epochs=3, **QUIET)
    trainer.finetune(task, datamodule=dm, strategy=("unfreeze_milestones", ((1, 2), 1)))
    assert all(p.requires_grad for p in task.backbone.parameters())


@pytest.mark.parametrize(
    "strategy, usage",
    [
        (("unfreeze_milestones", (5,)), "('unfreeze_milestones', (first_epoch, second_epoch))"),
        (("unfreeze_milestones", ((5, 10, 15), 1)), "('unfreeze_milestones', ((5, 10), 3))"),
        (("freeze_unfreeze", (5, 10)), "('freeze_unfreeze', unfreeze_epoch)"),
        (("freeze_unfreeze", "soon"), "('freeze_unfreeze', unfreeze_epoch)"),
        (("no_freeze", 1, 2), "'no_freeze'"),
    ],
)
def test_arguments_a_strategy_does_not_take_show_its_forms(strategy, usage):
    with pytest.raises(FinetuningStrategyError, match="does not take") as info:
        finetuning_callback(strategy)
    assert usage in str(info.value)
