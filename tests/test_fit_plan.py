"""The fit's decisions, each a rule of plain values, tested without training."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from skflash import FlashClassifier, FlashRegressor
from skflash.core.tabular_input import InputLayout, PeriodicEmbedding, TabularInput
from skflash.core.threads import SMALL_STEP_MACS, threads_for_setting
from skflash.data.categories import CategoryCodes
from skflash.estimators import fit_plan


@pytest.mark.parametrize(
    ("x_dtype", "precision", "accelerator", "work", "expected"),
    [
        (np.float64, None, "cpu", fit_plan.FLOAT64_MAX_WORK - 1, torch.float64),
        (np.float64, None, "cpu", fit_plan.FLOAT64_MAX_WORK, torch.float32),
        (np.float64, None, "gpu", 10, torch.float32),
        (np.float32, None, "cpu", 10, torch.float32),
        (np.float32, "64-true", "cpu", 10**12, torch.float64),
        (np.float64, 64, "cpu", 10**12, torch.float64),
        (np.float64, "bf16-mixed", "cpu", 10, torch.float32),
        (np.float64, "16-true", "cpu", 10, torch.float32),
    ],
)
def test_training_dtype(x_dtype, precision, accelerator, work, expected):
    assert fit_plan.training_dtype(np.dtype(x_dtype), precision, accelerator, work) == expected


def test_codes_that_a_half_precision_input_would_round_are_refused():
    wide = CategoryCodes([0], [list(range(300))])
    fit_plan.check_codes_fit(wide, "bf16-mixed")
    fit_plan.check_codes_fit(wide, "16-true")  # 2048 exact integers
    fit_plan.check_codes_fit(None, "bf16-true")
    with pytest.raises(ValueError, match=r"only up to 256.*'bf16-mixed'"):
        fit_plan.check_codes_fit(wide, "bf16-true")


def test_batch_size_ensemble_size_and_schedule():
    assert fit_plan.batch_size("auto", 50) == 50
    assert fit_plan.batch_size("auto", 5000) == 200
    assert fit_plan.batch_size(np.int64(32), 5000) == 32
    assert fit_plan.ensemble_size("auto", "mlp", 2) == 2
    assert fit_plan.ensemble_size("auto", torch.nn.Linear, 2) == 1
    assert fit_plan.ensemble_size(4, "linear", 2) == 4
    assert fit_plan.schedule("cosine", 7)["scheduler_kwargs"] == {"T_max": 7}
    assert fit_plan.schedule(None, 7) == {"scheduler": None, "scheduler_kwargs": {}}


def test_threads_one_for_small_steps_else_torchs_own():
    assert threads_for_setting("auto", 100, 10) == 1
    assert threads_for_setting("auto", SMALL_STEP_MACS, 1) == torch.get_num_threads()
    assert threads_for_setting(np.int64(3), 1, 1) == 3
    assert threads_for_setting(None, 1, 1) is None


def test_logging_only_when_something_reads_it():
    params = fit_plan.checked_params(FlashRegressor())
    assert not fit_plan.logs_epoch_metrics(params, validating=False)
    assert fit_plan.logs_epoch_metrics(params, validating=True)
    verbose = fit_plan.checked_params(FlashRegressor(verbose=2))
    assert fit_plan.logs_epoch_metrics(verbose, validating=False)


def test_plan_seeds_are_fixed_by_random_state_and_partial_fit_runs_no_schedule():
    params = fit_plan.checked_params(FlashClassifier(random_state=3))
    first, second = (fit_plan.plan_fit(params, False, None) for _ in range(2))
    assert (first.split_seed, first.init_seed, first.shuffle_seed) == (
        second.split_seed,
        second.init_seed,
        second.shuffle_seed,
    )
    assert first.epochs == "auto" and first.scheduled and first.validation_fraction is None
    assert fit_plan.sized_to_table(first, 500).epochs == 200
    one = fit_plan.plan_fit(params, True, 1)
    assert one.epochs == 1 and not one.scheduled and one.continuing


def test_checked_params_resolve_the_automatic_values():
    params = fit_plan.checked_params(FlashRegressor(optimizer="sgd", trainer__max_steps=5))
    plan = fit_plan.plan_fit(params, False, None)
    assert fit_plan.sized_to_table(plan, 100).params["learning_rate"] == 0.1
    assert params["trainer_kwargs"] == {"max_steps": 5}
    with pytest.raises(ValueError, match="own parameter 'max_epochs'"):
        fit_plan.checked_params(FlashRegressor(trainer__max_epochs=5))
    with pytest.raises(ValueError, match="did you mean 'mlp'"):
        fit_plan.checked_params(FlashRegressor(backbone="mpl"))


def test_early_stopping_auto_holds_out_rows_only_above_ten_thousand(monkeypatch):
    from skflash.data.training_rows import RowRules

    plans = {
        setting: fit_plan.plan_fit(
            {"early_stopping": setting, "validation_fraction": 0.1, "random_state": 0}, False, 1
        )
        for setting in (False, True, "auto")
    }
    assert [plans[s].validation_fraction for s in (False, True, "auto")] == [None, 0.1, 0.1]
    assert plans["auto"].holdout_above == fit_plan.AUTO_EARLY_STOPPING_ROWS == 10_000
    assert plans[True].holdout_above == 0

    def rules(plan):
        return RowRules(
            None,
            None,
            None,
            None,
            None,
            plan.validation_fraction,
            0,
            0,
            len,
            None,
            holdout_above=plan.holdout_above,
        )

    assert rules(plans["auto"]).holdout(10_000) is None
    assert rules(plans["auto"]).holdout(10_001) == 0.1
    assert rules(plans[True]).holdout(50) == 0.1
    # a small fit with "auto" trains every epoch on all rows; a large one stops early
    rng = np.random.default_rng(0)
    X = rng.normal(size=(10_200, 3)).astype(np.float32)
    y = X @ [1.0, -2.0, 0.5]
    small = FlashRegressor(early_stopping="auto", max_epochs=2, random_state=0).fit(
        X[:500], y[:500]
    )
    assert small.best_epoch_ is None and "val_loss" not in small.history_[-1]
    large = FlashRegressor(early_stopping="auto", max_epochs=2, random_state=0).fit(X, y)
    assert large.best_epoch_ is not None and "val_loss" in large.history_[-1]


def _sized(n_rows, scheduled=True, **settings):
    params = fit_plan.checked_params(FlashRegressor(**settings))
    plan = fit_plan.plan_fit(params, False, None if scheduled else 1)
    # 200 numeric inputs: too few rows per input for a lighter decay or an embedding
    sized = fit_plan.sized_to_table(plan, n_rows, InputLayout(200))
    recipe = fit_plan.large_table_recipe(params, plan.scheduled)
    batch = fit_plan.batch_size(params["batch_size"], n_rows, large_recipe=recipe)
    return sized.epochs, batch, sized.params["learning_rate"], sized.params["optimizer_kwargs"]


def test_a_large_table_takes_the_large_table_recipe_only_where_each_setting_is_auto():
    # up to 10,000 training rows: 200-row batches at AdamW's 1e-3, for 200 epochs or
    # 2,400 steps, whichever is fewer
    assert _sized(10_000) == (48, 200, 1e-3, {"weight_decay": pytest.approx(1.0)})
    assert _sized(4_000)[:2] == (120, 200)
    assert _sized(2_400)[:2] == (200, 200)
    assert _sized(150)[:2] == (200, 150)
    assert _sized(10_000, batch_size=100)[:2] == (200, 100)  # a batch of the user's
    # above: 28 epochs of 1024-row batches at ten times the rate, the same shrink per step
    assert _sized(10_001) == (28, 1024, 1e-2, {"weight_decay": pytest.approx(0.1)})
    # what the user sets stays as set, and the rate follows only the recipe's batches
    assert _sized(50_000, max_epochs=7)[:3] == (7, 1024, 1e-2)
    assert _sized(50_000, batch_size=256)[1:3] == (256, 1e-3)
    assert _sized(50_000, learning_rate=0.003)[1:3] == (1024, 0.003)
    assert _sized(50_000, lr_schedule=None)[2] == 1e-3  # no annealing: no higher rate
    assert _sized(50_000, optimizer="sgd")[2] == 0.1  # measured for the Adam family only
    # partial_fit steps at the constant rate in the usual batches
    assert _sized(50_000, scheduled=False) == (1, 200, 1e-3, {"weight_decay": pytest.approx(1.0)})


def test_a_users_task_keeps_the_usual_batches_and_epochs_on_a_large_table():
    from examples.custom_task import RegressionTask

    assert _sized(50_000, task=RegressionTask)[:2] == (200, 200)


def test_auto_weight_decay_weakens_with_rows_per_network_input_on_small_tables():
    # up to 100 rows per input: the full shrink; beyond, proportionally less
    assert fit_plan.decay_strength(1_000, 10, True) == 1.0
    assert fit_plan.decay_strength(2_400, 4, True) == pytest.approx(400 / 2_400)
    # large tables, partial_fit and a Task of the user's own keep the full shrink
    assert fit_plan.decay_strength(50_000, 4, True) == 1.0
    assert fit_plan.decay_strength(2_400, 4, False) == 1.0
    params = fit_plan.checked_params(FlashRegressor(numeric_embedding=None))
    plan = fit_plan.plan_fit(params, False, None)
    decay = fit_plan.sized_to_table(plan, 2_400, InputLayout(4)).params["optimizer_kwargs"]
    assert decay == {"weight_decay": pytest.approx(1 / 6)}
    partial = fit_plan.plan_fit(params, False, 1)
    assert fit_plan.sized_to_table(partial, 2_400, InputLayout(4)).params["optimizer_kwargs"] == {
        "weight_decay": pytest.approx(1.0)
    }
    # the periodic embedding widens the input four times
    plan = fit_plan.plan_fit(fit_plan.checked_params(FlashRegressor()), False, None)
    sized = fit_plan.sized_to_table(plan, 2_400, InputLayout(4)).params
    assert sized["numeric_embedding"] == "periodic"
    assert sized["optimizer_kwargs"] == {"weight_decay": pytest.approx(16 / 24)}
    # an explicit number keeps torch's meaning, whatever the table
    params = fit_plan.checked_params(FlashRegressor(weight_decay=0.05))
    plan = fit_plan.plan_fit(params, False, None)
    assert fit_plan.sized_to_table(plan, 2_400, InputLayout(4)).params["optimizer_kwargs"] == {
        "weight_decay": 0.05
    }


def test_auto_epochs_are_200_or_2400_steps_whichever_is_fewer():
    assert fit_plan.auto_epochs(150, 150) == 200
    assert fit_plan.auto_epochs(2_400, 200) == 200
    assert fit_plan.auto_epochs(2_401, 200) == 185  # 13 steps an epoch
    assert fit_plan.auto_epochs(4_000, 200) == 120
    assert fit_plan.auto_epochs(10_000, 200) == 48


def test_the_mlp_takes_dropout_on_small_tables_unless_it_is_given():
    rule = fit_plan.backbone_kwargs
    assert rule({}, 10_000, True, 200) == {"dropout": fit_plan.SMALL_TABLE_DROPOUT}
    assert rule({"hidden_sizes": (8,)}, 500, True, 200) == {"hidden_sizes": (8,), "dropout": 0.1}
    assert rule({"dropout": 0.0}, 500, True, 200) == {"dropout": 0.0}  # the user's, kept
    assert rule({}, 10_001, True, 1024) == {}  # a large table's 28 epochs
    assert rule({}, 500, False, 200) == {}  # partial_fit, a Task or a backbone of the user's
    assert rule({}, 200, True, 200) == {}  # one batch: full-batch steps, no random draws
    assert rule({}, 150, True, 100) == {"dropout": 0.1}


def test_a_fit_sets_dropout_only_where_the_rule_says():
    def rates(reg):
        return [m.p for m in reg.task_.model.modules() if isinstance(m, torch.nn.Dropout)]

    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 3))
    y = X[:, 0] + rng.normal(size=len(X))
    assert rates(FlashRegressor(max_epochs=1).fit(X, y)) == [0.1, 0.1]
    assert rates(FlashRegressor(max_epochs=1, backbone__dropout=0.3).fit(X, y)) == [0.3, 0.3]
    assert rates(FlashRegressor(max_epochs=1, backbone__dropout=0).fit(X, y)) == []
    assert rates(FlashRegressor().partial_fit(X, y)) == []
    assert rates(FlashClassifier(max_epochs=1).fit(X, y > 0)) == [0.1, 0.1]
    assert rates(FlashRegressor(max_epochs=1).fit(X[:200], y[:200])) == []  # one batch
    # the setting as given: the rule is the fit's
    assert "backbone__dropout" not in FlashRegressor().get_params()


def test_auto_numeric_embedding_is_periodic_from_100_rows_per_input_on_small_tables():
    def rule(n_rows, layout, mlp_fit=True, setting="auto"):
        return fit_plan.numeric_embedding(setting, n_rows, layout, mlp_fit)

    assert rule(400, InputLayout(4)) == "periodic"
    assert rule(399, InputLayout(4)) is None
    # a one-hot column of 6 categories (and the unknown code) widens the input by 6
    assert rule(999, InputLayout(4, (7,))) is None
    assert rule(1_000, InputLayout(4, (7,))) == "periodic"
    assert rule(5_000, InputLayout(0, (7,))) is None  # no numbers to embed
    assert rule(10_001, InputLayout(4)) is None  # a large table: three times the time
    assert rule(2_400, InputLayout(4), mlp_fit=False) is None
    assert rule(100, InputLayout(4), setting="periodic") == "periodic"
    assert rule(2_400, InputLayout(4), setting=None) is None

    def resolved(scheduled=True, **settings):
        params = fit_plan.checked_params(FlashRegressor(**settings))
        plan = fit_plan.plan_fit(params, False, None if scheduled else 1)
        return fit_plan.sized_to_table(plan, 2_400, InputLayout(4)).params["numeric_embedding"]

    from examples.custom_task import RegressionTask

    assert resolved() == "periodic"
    assert resolved(scheduled=False) is None  # partial_fit: its blocks are not the table
    assert resolved(backbone="linear") is None  # a linear model stays linear
    assert resolved(task=RegressionTask) is None


def test_a_fit_takes_the_periodic_embedding_only_with_many_rows_per_input():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1_000, 4))
    y = np.sin(3 * X[:, 0]) + X[:, 1]
    many = FlashRegressor(max_epochs=1, random_state=0).fit(X, y)
    assert isinstance(many.task_.model.input.numeric, PeriodicEmbedding)
    assert np.isfinite(many.predict(X[:5])).all()
    few = FlashRegressor(max_epochs=1, random_state=0).fit(X[:300], y[:300])
    assert not isinstance(getattr(few.task_.model, "input", None), TabularInput)
    assert few.get_params()["numeric_embedding"] == "auto"  # the setting, as given


def test_a_warm_start_refit_decays_by_the_input_of_the_network_it_continues():
    # 300 rows x 4: no embedding; 1,000 rows would take the periodic one, which a refit
    # that keeps the network must not assume
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1_000, 4))
    y = X[:, 0] + rng.normal(size=len(X))
    reg = FlashRegressor(max_epochs=1, warm_start=True, random_state=0).fit(X[:300], y[:300])
    assert not isinstance(getattr(reg.task_.model, "input", None), TabularInput)
    reg.fit(X, y)
    assert not isinstance(getattr(reg.task_.model, "input", None), TabularInput)
    plain = FlashRegressor(max_epochs=1, numeric_embedding=None, random_state=0).fit(X, y)
    decay = plain.task_.optimizer_kwargs["weight_decay"]
    assert (
        decay
        < FlashRegressor(max_epochs=1, random_state=0)
        .fit(X, y)
        .task_.optimizer_kwargs["weight_decay"]
    )
    assert reg.task_.optimizer_kwargs["weight_decay"] == pytest.approx(decay)


@pytest.mark.parametrize("wide", [False, True])
def test_a_fit_decays_by_the_width_of_its_network_input(wide):
    # 4 numeric columns and 400 rows: full strength; a one-hot column widens the input
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(2_000, 4)), columns=list("abcd"))
    if wide:
        X["kind"] = pd.Categorical(rng.choice(list("pqrstu"), size=len(X)))
    y = rng.normal(size=len(X))
    reg = FlashRegressor(max_epochs=1, numeric_embedding=None, random_state=0).fit(X, y)
    width = reg.task_.model.input.out_features if wide else 4
    assert width == (4 + 6 if wide else 4)
    assert reg.task_.optimizer_kwargs["weight_decay"] == pytest.approx(100 * width / 2_000)
