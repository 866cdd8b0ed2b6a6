"""What users do to an estimator, each written from their side: interrupts, failed refits,
optimizers, parameter types, precisions, checkpoints, threads, incremental training."""

from __future__ import annotations

import copy
import logging
import os
import pickle
import signal
import subprocess
import sys
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from pytorch_lightning.callbacks import Callback
from sklearn.base import clone
from sklearn.datasets import load_diabetes
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV

import skflash as flash
from skflash import FlashClassifier, FlashRegressor
from skflash.core.optimizers import UNSUPPORTED, _classes
from skflash.data.numpy_data import NumpyDataModule, NumpyPreprocess
from skflash.estimators.fit_plan import checked_params
from skflash.estimators.shared_parameters import PRECISIONS
from skflash.tasks import RegressionTask

QUICK = {"max_epochs": 4, "random_state": 0}


@pytest.fixture(scope="module")
def diabetes():
    X, y = load_diabetes(return_X_y=True)
    return X, y


class RaiseAt(Callback):
    """Raise ``error`` at the end of training epoch ``epoch``."""

    def __init__(self, error: BaseException, epoch: int = 1) -> None:
        self.error, self.epoch = error, epoch

    def on_train_epoch_end(self, trainer, pl_module):
        if trainer.current_epoch == self.epoch:
            raise self.error


# 1 ----------------------------------------------------------------------------- Ctrl+C
def test_ctrl_c_during_fit_raises_keyboard_interrupt(diabetes):
    handler = signal.getsignal(signal.SIGINT)
    reg = FlashRegressor(max_epochs=5, callbacks=[RaiseAt(KeyboardInterrupt())])
    with pytest.raises(KeyboardInterrupt):
        reg.fit(*diabetes)
    assert signal.getsignal(signal.SIGINT) is handler  # Ctrl+C still works afterwards
    assert not hasattr(reg, "task_") and not hasattr(reg, "n_features_in_")


CTRL_C_SCRIPT = """
import signal
from pytorch_lightning.callbacks import Callback
from sklearn.datasets import load_diabetes
from skflash import FlashRegressor

# Ctrl+C live, as in a terminal (a shell starts background jobs with SIGINT ignored).
signal.signal(signal.SIGINT, signal.default_int_handler)


class SendSigint(Callback):
    def on_train_epoch_end(self, trainer, pl_module):
        if trainer.current_epoch == 1:
            signal.raise_signal(signal.SIGINT)

reg = FlashRegressor(max_epochs=5, callbacks=[SendSigint()])
try:
    reg.fit(*load_diabetes(return_X_y=True))
except KeyboardInterrupt:
    restored = signal.getsignal(signal.SIGINT) is signal.default_int_handler
    print("interrupted", restored, hasattr(reg, "task_"))
"""


def test_a_real_ctrl_c_in_a_script_raises_keyboard_interrupt(tmp_path):
    # A real SIGINT, in a script's main thread, as a user's terminal sends it.
    script = tmp_path / "ctrl_c.py"
    script.write_text(CTRL_C_SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120
    )
    assert done.stdout.split() == ["interrupted", "True", "False"], done.stderr


def test_interrupt_in_a_thread_reaches_the_thread(diabetes):
    caught = []

    def fit():
        try:
            FlashRegressor(max_epochs=5, callbacks=[RaiseAt(KeyboardInterrupt())]).fit(*diabetes)
        except KeyboardInterrupt:
            caught.append(True)

    thread = threading.Thread(target=fit)
    thread.start()
    thread.join()
    assert caught == [True]


def test_core_trainer_reraises_interrupts(diabetes):
    X, y = diabetes
    dm = NumpyDataModule.from_xy_dataset(X, y, batch_size=64)
    task = RegressionTask(num_inputs=10)
    trainer = flash.Trainer(
        max_epochs=3, callbacks=[RaiseAt(KeyboardInterrupt(), epoch=0)], logger=False
    )
    with pytest.raises(KeyboardInterrupt):
        trainer.fit(task, datamodule=dm)
    assert trainer.interrupted


# 2 ----------------------------------------------------------------------------- atomic fit
def test_failed_refit_keeps_the_previous_model(diabetes):
    X, y = diabetes
    reg = FlashRegressor(**QUICK).fit(X, y)
    before = reg.predict(X)
    state = dict(vars(reg))
    reg.set_params(callbacks=[RaiseAt(RuntimeError("boom"), epoch=0)])
    with pytest.raises(RuntimeError, match="boom"):
        reg.fit(X[:, :4], y)
    assert reg.n_features_in_ == 10
    np.testing.assert_array_equal(reg.predict(X), before)
    assert {k: v for k, v in vars(reg).items() if k != "callbacks"} == {
        k: v for k, v in state.items() if k != "callbacks"
    }
    with pytest.raises(KeyboardInterrupt):
        reg.set_params(callbacks=[RaiseAt(KeyboardInterrupt(), epoch=0)]).fit(X, y)
    np.testing.assert_array_equal(reg.predict(X), before)


def test_failed_continued_fit_keeps_weights_optimizer_and_history(diabetes):
    X, y = diabetes
    reg = FlashRegressor(**QUICK).partial_fit(X, y)
    before, history = reg.predict(X), list(reg.history_)
    optimizer_state = pickle.dumps(reg._optimizer_state)
    reg.set_params(callbacks=[RaiseAt(KeyboardInterrupt(), epoch=0)])
    with pytest.raises(KeyboardInterrupt):
        reg.partial_fit(X, y)
    np.testing.assert_array_equal(reg.predict(X), before)
    assert reg.history_ == history and reg.n_iter_ == 1
    assert pickle.dumps(reg._optimizer_state) == optimizer_state
    reg.set_params(callbacks=None).partial_fit(X, y)  # and it still trains
    assert reg.n_iter_ == 2


def test_failed_first_fit_leaves_the_estimator_unfitted(diabetes):
    X, y = diabetes
    reg = FlashRegressor(**QUICK, callbacks=[RaiseAt(ValueError("bad"), epoch=0)])
    with pytest.raises(ValueError, match="bad"):
        reg.fit(X, y)
    with pytest.raises(NotFittedError):
        reg.predict(X)
    assert not hasattr(reg, "n_features_in_")


# 3 ----------------------------------------------------------------------------- optimizers
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
    group = checked_params(FlashRegressor(optimizer="radam"))["optimizer_kwargs"]
    assert group == {"weight_decay": pytest.approx(1e-3 / 3e-3), "decoupled_weight_decay": True}
    assert checked_params(FlashRegressor(optimizer="sgd"))["optimizer_kwargs"] == {}
    with pytest.raises(ValueError, match="Rprop has no weight decay"):
        FlashRegressor(optimizer="rprop", weight_decay=0.1).fit(*diabetes)


# 4 ----------------------------------------------------------------------------- misspelled
def test_misspelled_argument_is_refused_at_construction_with_the_closest_name():
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'max_epoch'.*'max_epochs'"):
        FlashRegressor(max_epoch=5)
    with pytest.raises(TypeError, match="Did you mean 'learning_rate'"):
        FlashClassifier(lr=0.1)
    with pytest.raises(ValueError, match="Did you mean 'learning_rate'"):
        FlashRegressor().set_params(lr=0.1)  # scikit-learn's set_params raises ValueError
    with pytest.raises(TypeError):
        FlashRegressor("mlp")  # keyword-only, as scikit-learn's estimators


# 5 ----------------------------------------------------------------------------- numpy scalars
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


# 6 ----------------------------------------------------------------------------- optimizer instance
def test_optimizer_instance_is_refused_with_what_to_do(diabetes):
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    with pytest.raises(TypeError, match="optimizer__<arg>"):
        FlashRegressor(optimizer=optimizer).fit(*diabetes)


# 7 ----------------------------------------------------------------------------- string y
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


# 8 ----------------------------------------------------------------------------- precision
@pytest.mark.parametrize("precision", [p for p in PRECISIONS if p is not None])
def test_every_lightning_precision_trains_or_is_refused_before_training(diabetes, precision):
    X, y = diabetes
    reg = FlashRegressor(max_epochs=30, precision=precision, random_state=0)
    if str(precision).startswith("transformer-engine"):
        with pytest.raises(ValueError, match="transformer_engine"):
            reg.fit(X, y)
        assert not hasattr(reg, "task_")
        return
    reg.fit(X, y)
    predictions = reg.predict(X)
    assert predictions.dtype in (np.float32, np.float64)
    assert np.isfinite(predictions).all()
    assert reg.score(X, y) > 0.3


@pytest.mark.parametrize("precision", ["16-mixed", "bf16-mixed", "bf16-true", "64-true"])
def test_gradient_clipping_works_with_every_precision(diabetes, precision):
    reg = FlashRegressor(
        max_epochs=20, precision=precision, trainer__gradient_clip_val=1.0, random_state=0
    ).fit(*diabetes)
    assert reg.score(*diabetes) > 0.3


# 9 ----------------------------------------------------------------------------- checkpoints
def test_float64_checkpoint_predicts_identically(diabetes, tmp_path):
    X, y = diabetes
    preprocess = NumpyPreprocess(standardize_inputs=True, dtype=torch.float64)
    dm = NumpyDataModule.from_xy_dataset(X, y, preprocess=preprocess, batch_size=64)
    task = RegressionTask(num_inputs=10).to(torch.float64)
    trainer = flash.Trainer(max_epochs=2, logger=False, enable_progress_bar=False)
    trainer.fit(task, datamodule=dm)
    trainer.save_checkpoint(tmp_path / "model.ckpt")
    loaded = RegressionTask.load_from_checkpoint(tmp_path / "model.ckpt")
    assert loaded.dtype == torch.float64
    expected = torch.stack(task.predict(X[:5]))
    torch.testing.assert_close(torch.stack(loaded.predict(X[:5])), expected, rtol=0, atol=0)


# 10 ----------------------------------------------------------------------------- threads
def test_fits_and_predicts_from_threads_restore_global_state(diabetes, recwarn):
    X, y = diabetes
    loggers = ("pytorch_lightning", "lightning_fabric", "lightning")
    levels = {name: logging.getLogger(name).level for name in loggers}
    filters = list(warnings.filters)
    fitted = FlashRegressor(**QUICK).fit(X, y)

    def work(seed):
        FlashRegressor(max_epochs=3, random_state=seed, precision="16-mixed").fit(X, y)
        return fitted.predict(X[:20])

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(work, range(8)))
    for result in results:
        np.testing.assert_array_equal(result, results[0])
    assert {name: logging.getLogger(name).level for name in loggers} == levels
    assert warnings.filters == filters
    assert not [w for w in recwarn if "lightning" in str(w.filename)]


# 11 ----------------------------------------------------------------------------- partial_fit
def test_partial_fit_keeps_the_optimizer_state_across_calls_and_pickles(diabetes):
    X, y = diabetes
    reg = FlashRegressor(batch_size=100, random_state=0)
    for _ in range(3):
        reg.partial_fit(X, y)
    steps = {float(s["step"]) for s in reg._optimizer_state["state"].values()}
    assert steps == {15.0}  # 3 calls x 5 batches: the moments were never restarted
    twin = pickle.loads(pickle.dumps(reg))
    np.testing.assert_array_equal(
        twin.partial_fit(X, y).predict(X), reg.partial_fit(X, y).predict(X)
    )


def test_warm_start_continues_the_optimizer(diabetes):
    X, y = diabetes
    reg = FlashRegressor(max_epochs=2, batch_size=221, warm_start=True, random_state=0)
    reg.fit(X, y).fit(X, y)
    steps = {float(s["step"]) for s in reg._optimizer_state["state"].values()}
    assert steps == {8.0} and reg.n_iter_ == 4


def test_partial_fit_with_other_classes_is_refused():
    X = np.random.RandomState(0).normal(size=(60, 3))
    y = np.array(["a", "b", "c"] * 20)
    clf = FlashClassifier(random_state=0).partial_fit(X, y, classes=["a", "b", "c"])
    clf.partial_fit(X, y, classes=["c", "b", "a"])  # the same classes, any order
    with pytest.raises(ValueError, match="differs from the classes"):
        clf.partial_fit(X, y, classes=["a", "b", "c", "d"])


# 12 ----------------------------------------------------------------------------- files
def test_verbose_2_writes_no_files(diabetes, tmp_path, capsys):
    FlashRegressor(max_epochs=2, verbose=2, random_state=0).fit(*diabetes)
    assert os.listdir(tmp_path) == []


# Determinism, threads and devices ----------------------------------------------------
def test_fit_leaves_deterministic_algorithms_as_the_user_set_them(diabetes):
    torch.use_deterministic_algorithms(True)
    try:
        FlashRegressor(**QUICK).fit(*diabetes)
        assert torch.are_deterministic_algorithms_enabled()
    finally:
        torch.use_deterministic_algorithms(False)
    FlashRegressor(**QUICK).fit(*diabetes)
    assert not torch.are_deterministic_algorithms_enabled()


def test_threaded_search_gives_the_sequential_results(diabetes):
    from joblib import parallel_config

    grid = {"learning_rate": [1e-3, 3e-3, 1e-2, 3e-2], "max_epochs": [5]}
    sequential = GridSearchCV(FlashRegressor(random_state=0), grid, cv=2).fit(*diabetes)
    with parallel_config("threading", n_jobs=4):
        threaded = GridSearchCV(FlashRegressor(random_state=0), grid, cv=2).fit(*diabetes)
    np.testing.assert_array_equal(
        threaded.cv_results_["mean_test_score"], sequential.cv_results_["mean_test_score"]
    )


def test_pickled_models_carry_no_training_device_tensors(diabetes):
    reg = FlashRegressor(**QUICK).fit(*diabetes)
    reg.predict(diabetes[0])  # fills the scaling cache
    twin = pickle.loads(pickle.dumps(reg))
    assert not hasattr(twin.task_, "epoch_metrics")
    assert twin.task_.preprocess._affine == {}
    np.testing.assert_array_equal(twin.predict(diabetes[0]), reg.predict(diabetes[0]))


# Found by trying the package as users do ----------------------------------------------
def test_interrupted_warm_start_into_half_precision_keeps_the_old_model(diabetes):
    X, y = diabetes
    reg = FlashRegressor(max_epochs=3, random_state=0).fit(X, y)
    before = reg.predict(X)
    reg.set_params(warm_start=True, precision="bf16-true", callbacks=[RaiseAt(KeyboardInterrupt())])
    with pytest.raises(KeyboardInterrupt):
        reg.fit(X, y)
    np.testing.assert_array_equal(reg.predict(X), before)


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


# Threads on busy machines --------------------------------------------------------------
class ThreadsSeen(Callback):
    ignores_steps = True
    seen: list = []

    def on_train_epoch_start(self, trainer, pl_module):
        type(self).seen.append(torch.get_num_threads())


@pytest.mark.parametrize(
    ("params", "inside"),
    [
        ({}, 1),  # a small network: one thread
        ({"backbone__hidden_sizes": (1024, 1024), "batch_size": 64}, 2),  # large steps
        ({"num_threads": None}, 2),  # torch's setting left alone
        ({"num_threads": np.int64(3)}, 3),
    ],
)
def test_thread_policy_and_the_callers_setting_restored(diabetes, params, inside):
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    ThreadsSeen.seen = []
    try:
        FlashRegressor(max_epochs=1, callbacks=[ThreadsSeen()], **params).fit(*diabetes)
        assert ThreadsSeen.seen == [inside]
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_float64_input_trains_in_float64_while_small_and_predicts_in_the_input_dtype():
    rng = np.random.default_rng(0)
    small = rng.normal(size=(200, 10))
    reg = FlashRegressor(max_epochs=1, random_state=0).fit(small, small[:, 0])
    assert reg.task_.dtype == torch.float64  # the rule itself: tests/test_fit_plan.py
    assert reg.predict(small[:5]).dtype == np.float64
    single = FlashRegressor(max_epochs=1).fit(small.astype(np.float32), small[:, 0])
    assert single.task_.dtype == torch.float32
    assert single.predict(small[:5].astype(np.float32)).dtype == np.float32
    assert single.predict(small[:5]).dtype == np.float64  # answers in the input's dtype


def test_continued_fits_train_in_training_mode_and_fitted_models_predict_in_eval(diabetes):
    seen = []

    class Mode(Callback):
        ignores_steps = True

        def on_train_epoch_start(self, trainer, pl_module):
            seen.append(pl_module.training)

    reg = FlashRegressor(
        max_epochs=2, warm_start=True, backbone__dropout=0.2, callbacks=[Mode()], random_state=0
    )
    reg.fit(*diabetes)
    assert not reg.task_.training  # dropout off when predicting
    first = reg.predict(diabetes[0][:5])
    np.testing.assert_array_equal(reg.predict(diabetes[0][:5]), first)
    reg.fit(*diabetes).partial_fit(*diabetes)
    assert seen == [True] * 5


def test_half_precision_models_pickle_and_deepcopy(diabetes):
    X, y = diabetes
    reg = FlashRegressor(max_epochs=2, random_state=0, precision="bf16-true").fit(X, y)
    for copy_of in (pickle.loads(pickle.dumps(reg)), copy.deepcopy(reg)):
        assert copy_of.task_.dtype == torch.bfloat16
        np.testing.assert_array_equal(copy_of.predict(X), reg.predict(X))
        copy_of.partial_fit(X, y)


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


def _quiet_fit_leaves_levels() -> tuple[int, int]:
    import logging

    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True)
    before = logging.getLogger("pytorch_lightning").level
    FlashRegressor(max_epochs=1).fit(X, y)
    return before, logging.getLogger("pytorch_lightning").level


def test_a_fit_in_a_pool_worker_restores_the_workers_logger_levels():
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(1) as pool:
        before, after = pool.apply(_quiet_fit_leaves_levels)
    assert before == after
