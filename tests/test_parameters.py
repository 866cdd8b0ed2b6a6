"""Parameters as users pass them: every optimizer, misspelled keywords, numpy scalars,
invalid values and the mistakes users make, each with a clear error."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV

from skflash import FlashClassifier, FlashRegressor
from skflash.core.optimizers import UNSUPPORTED, _classes
from skflash.data.numpy_data import NumpyDataModule, NumpyPreprocess
from skflash.estimators import fit_plan
from skflash.estimators.fit_plan import checked_params

QUICK = {"max_epochs": 4, "random_state": 0}


OPTIMIZER_NAMES = sorted(_classes(torch.optim, torch.optim.Optimizer))


@pytest.mark.parametrize("name", OPTIMIZER_NAMES)
def test_defaults_train_well_with_every_optimizer_or_refuse_it(diabetes, name):
    X, y = diabetes
    reg = FlashRegressor(optimizer=name, random_state=0)
    if name in UNSUPPORTED:
        with pytest.raises(ValueError, match="not supported here"):
            reg.fit(X, y)
        return
    reg.fit(X, y)
    assert reg.score(X, y) > 0.45  # AdamW's defaults: 0.55; a ruined fit: 0.0


def test_weight_decay_auto_keeps_the_per_step_shrink(diabetes):
    adam = FlashRegressor(optimizer="adam", max_epochs=3, random_state=0).fit(*diabetes)
    adamw = FlashRegressor(optimizer="adamw", max_epochs=3, random_state=0).fit(*diabetes)
    np.testing.assert_array_equal(adam.predict(diabetes[0]), adamw.predict(diabetes[0]))

    def optimizer_kwargs(reg):
        plan = fit_plan.plan_fit(fit_plan.checked_params(reg), False, None)
        return fit_plan.sized_to_table(plan, 1000).params["optimizer_kwargs"]

    group = optimizer_kwargs(FlashRegressor(optimizer="radam"))
    assert group == {"weight_decay": pytest.approx(1e-3 / 3e-3), "decoupled_weight_decay": True}
    assert optimizer_kwargs(FlashRegressor(optimizer="sgd")) == {}
    with pytest.raises(ValueError, match="Rprop has no weight decay"):
        FlashRegressor(optimizer="rprop", weight_decay=0.1).fit(*diabetes)


def test_misspelled_argument_is_refused_at_construction_with_the_closest_name():
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'max_epoch'.*'max_epochs'"):
        FlashRegressor(max_epoch=5)
    with pytest.raises(TypeError, match="Did you mean 'learning_rate'"):
        FlashClassifier(lr=0.1)
    with pytest.raises(ValueError, match="Did you mean 'learning_rate'"):
        FlashRegressor().set_params(lr=0.1)  # scikit-learn's set_params raises ValueError
    with pytest.raises(TypeError):
        FlashRegressor("mlp")  # keyword-only, as scikit-learn's estimators


def test_numpy_scalars_are_accepted_for_every_numeric_parameter(diabetes):
    X, y = diabetes
    reg = FlashRegressor(
        max_epochs=np.int64(3),
        batch_size=np.int32(64),
        patience=np.int64(2),
        learning_rate=np.float32(0.01),
        weight_decay=np.float64(0.0),
        validation_fraction=np.float64(0.2),
        early_stopping=np.bool_(True),
        verbose=np.int64(0),
        random_state=np.int64(0),
        backbone__hidden_sizes=(np.int64(8),),
    ).fit(X, y)
    assert reg.n_iter_ <= 3 and reg.score(X, y) > 0
    grid = GridSearchCV(
        FlashRegressor(random_state=0), {"max_epochs": np.arange(2, 6, 2)}, cv=2
    ).fit(X, y)
    assert [p["max_epochs"] for p in grid.cv_results_["params"]] == [2, 4]
    assert all(type(p["max_epochs"]) is np.int64 for p in grid.cv_results_["params"])
    assert len(set(grid.cv_results_["mean_test_score"])) == 2


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("max_epochs", 2.5),
        ("max_epochs", True),
        ("batch_size", -1),
        ("learning_rate", np.nan),
        ("early_stopping", "yes"),
        ("verbose", 3),
        ("precision", "8-true"),
        ("random_state", -5),
        ("lr_schedule", "linear"),
    ],
)
def test_invalid_values_name_the_parameter_and_what_it_accepts(diabetes, name, value):
    with pytest.raises(ValueError, match=f"'{name}' parameter of FlashRegressor must be"):
        FlashRegressor(**{name: value}).fit(*diabetes)


def test_optimizer_instance_is_refused_with_what_to_do(diabetes):
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    with pytest.raises(TypeError, match="optimizer__<arg>"):
        FlashRegressor(optimizer=optimizer).fit(*diabetes)


def test_string_target_for_the_regressor_is_a_clear_value_error(diabetes):
    X, _ = diabetes
    y = np.array(["low", "high"] * 221)
    with pytest.raises(ValueError, match=r"numeric target.*FlashClassifier") as info:
        FlashRegressor(**QUICK).fit(X, y)
    assert "FlashClassifier" in str(info.value)


def test_errors_raised_inside_hooks_always_print(diabetes):
    class Broken(NumpyPreprocess):
        def load_data(self, data, dataset=None):
            return np.add(np.array(["a"]), 1)  # numpy's UFuncTypeError

    with pytest.raises(TypeError) as info:
        NumpyDataModule.from_xy_dataset(*diabetes, preprocess=Broken())
    text = str(info.value)
    assert "Broken.load_data" in text and "'train' stage" in text
    assert repr(info.value)


def test_routed_numpy_scalars_are_plain_numbers(diabetes):
    reg = FlashRegressor(
        optimizer="sgd",
        optimizer__momentum=np.float32(0.9),
        optimizer__nesterov=np.bool_(True),
        trainer__gradient_clip_val=np.int64(1),
        max_epochs=2,
        random_state=0,
    ).fit(*diabetes)
    assert reg.n_iter_ == 2
    kwargs = checked_params(reg)["optimizer_kwargs"]
    assert type(kwargs["momentum"]) is float and type(kwargs["nesterov"]) is bool
    betas = FlashRegressor(optimizer__betas=(np.float32(0.9), np.float64(0.99)), max_epochs=2)
    assert all(
        type(b) is float for b in checked_params(betas.fit(*diabetes))["optimizer_kwargs"]["betas"]
    )


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"backbone": "mpl"}, "did you mean 'mlp'"),
        ({"loss": torch.nn.L1Loss}, "not the class"),
        ({"optimizer__lr": 0.01}, "'learning_rate', not optimizer__lr"),
    ],
)
def test_mistakes_users_make_get_value_errors(diabetes, params, message):
    with pytest.raises(ValueError, match=message):
        FlashRegressor(max_epochs=2, **params).fit(*diabetes)


def test_explicit_optimizer_weight_decay_replaces_the_auto_rule():
    kwargs = checked_params(FlashRegressor(optimizer="adam", optimizer__weight_decay=0.01))
    assert kwargs["optimizer_kwargs"] == {"weight_decay": 0.01}


@pytest.mark.parametrize("kind", ["series", "string", "object"])
def test_every_string_target_gets_the_classifier_hint(diabetes, kind):
    import pandas as pd

    X, _ = diabetes
    words = np.array(["hi", "lo"] * 221)
    y = {
        "series": pd.Series(words, dtype=object),
        "string": pd.Series(words, dtype="string"),
        "object": words.astype(object),
    }[kind]
    with pytest.raises(ValueError, match="use FlashClassifier"):
        FlashRegressor(max_epochs=2).fit(X, y)


def test_user_subclass_with_its_own_parameter():
    class Scaled(FlashRegressor):
        def __init__(self, factor=1.0, **kwargs):
            super().__init__(**kwargs)
            self.factor = factor

    est = Scaled(factor=2.0, max_epochs=3)
    assert est.get_params()["factor"] == 2.0 and est.max_epochs == 3
    assert clone(est).factor == 2.0


def test_missing_class_labels_get_a_clear_error():
    X = np.random.default_rng(0).normal(size=(8, 2))
    y = np.array(["a"] * 4 + ["b"] * 3 + [None], dtype=object)
    with pytest.raises(ValueError, match="missing labels"):
        FlashClassifier(max_epochs=1).fit(X, y)
