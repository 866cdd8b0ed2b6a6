"""A fit under its Trainer as users run it: Ctrl+C, failed refits, threads, silence,
training and eval modes, the global state left as it was."""

from __future__ import annotations

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
from sklearn.datasets import load_diabetes, make_regression
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV

import skflash as flash
from skflash import FlashRegressor
from skflash.core.threads import torch_threads
from skflash.data.numpy_data import NumpyDataModule
from skflash.tasks import RegressionTask

QUICK = {"max_epochs": 4, "random_state": 0}


class RaiseAt(Callback):
    """Raise ``error`` at the end of training epoch ``epoch``."""

    def __init__(self, error: BaseException, epoch: int = 1) -> None:
        self.error, self.epoch = error, epoch

    def on_train_epoch_end(self, trainer, pl_module):
        if trainer.current_epoch == self.epoch:
            raise self.error


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
from sklearn.datasets import load_diabetes, make_regression
from skflash import FlashRegressor
from skflash.core.threads import torch_threads

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


def test_verbose_2_writes_no_files(diabetes, tmp_path, capsys):
    FlashRegressor(max_epochs=2, verbose=2, random_state=0).fit(*diabetes)
    assert os.listdir(tmp_path) == []


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


def test_initial_weights_ignore_another_threads_generator_reset(diabetes, monkeypatch):
    def weights() -> list:
        reg = FlashRegressor(max_epochs=1, random_state=0).fit(*diabetes)
        return [p.detach().clone() for p in reg.task_.parameters()]

    undisturbed = weights()
    built, resets = torch.nn.SiLU.__init__, []

    def reset_between_layers(self, *args, **kwargs):  # the activations come between layers
        # another thread's Trainer sets the global generator back after its sanity check
        other = threading.Thread(target=torch.manual_seed, args=(123,))
        other.start()
        other.join()
        resets.append(torch.initial_seed())
        built(self, *args, **kwargs)

    monkeypatch.setattr(torch.nn.SiLU, "__init__", reset_between_layers)
    disturbed = weights()
    assert resets and set(resets) == {123}
    assert all(map(torch.equal, disturbed, undisturbed))


def test_pickled_models_carry_no_training_device_tensors(diabetes):
    reg = FlashRegressor(**QUICK).fit(*diabetes)
    reg.predict(diabetes[0])  # fills the scaling cache
    twin = pickle.loads(pickle.dumps(reg))
    assert not hasattr(twin.task_, "epoch_metrics")
    assert twin.task_.preprocess._affine == {}
    np.testing.assert_array_equal(twin.predict(diabetes[0]), reg.predict(diabetes[0]))


def test_interrupted_warm_start_into_half_precision_keeps_the_old_model(diabetes):
    X, y = diabetes
    reg = FlashRegressor(max_epochs=3, random_state=0).fit(X, y)
    before = reg.predict(X)
    reg.set_params(warm_start=True, precision="bf16-true", callbacks=[RaiseAt(KeyboardInterrupt())])
    with pytest.raises(KeyboardInterrupt):
        reg.fit(X, y)
    np.testing.assert_array_equal(reg.predict(X), before)


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


def _quiet_fit_leaves_levels() -> tuple[int, int]:
    import logging

    X, y = load_diabetes(return_X_y=True)
    before = logging.getLogger("pytorch_lightning").level
    FlashRegressor(max_epochs=1).fit(X, y)
    return before, logging.getLogger("pytorch_lightning").level


def test_a_fit_in_a_pool_worker_restores_the_workers_logger_levels():
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(1) as pool:
        before, after = pool.apply(_quiet_fit_leaves_levels)
    assert before == after


@pytest.mark.parametrize("backbone_kwargs", [{}, {"backbone__activation": torch.nn.RReLU}])
def test_seeded_fits_ignore_the_global_generators_state(diabetes, backbone_kwargs):
    # RReLU draws from torch's global generator in training, as dropout does on a GPU
    answers = []
    for global_seed in (1, 2):
        torch.manual_seed(global_seed)
        reg = FlashRegressor(max_epochs=2, random_state=0, **backbone_kwargs).fit(*diabetes)
        answers.append(reg.predict(diabetes[0][:20]))
    np.testing.assert_array_equal(*answers)


class ForksWhileBuilt(torch.nn.Linear):
    """A backbone that starts a fork-based pool as it is built."""

    def __init__(self, n_inputs: int, n_outputs: int) -> None:
        import multiprocessing

        with multiprocessing.get_context("fork").Pool(1) as pool:
            assert pool.map(abs, [-1]) == [1]
        super().__init__(n_inputs, n_outputs)


@pytest.mark.skipif(sys.platform == "win32", reason="fork")
def test_a_network_of_the_users_may_fork_while_it_is_built(diabetes):
    reg = FlashRegressor(backbone=ForksWhileBuilt, max_epochs=1, random_state=0)
    assert reg.fit(*diabetes).score(*diabetes) is not None


def test_fit_inside_inference_mode_trains_as_outside(diabetes):
    expected = FlashRegressor(max_epochs=2, random_state=0).fit(*diabetes).predict(diabetes[0])
    with torch.inference_mode():
        reg = FlashRegressor(max_epochs=2, random_state=0).fit(*diabetes)
        np.testing.assert_array_equal(reg.predict(diabetes[0]), expected)


def _fit_in_child(queue) -> None:
    import faulthandler

    faulthandler.dump_traceback_later(50, exit=True)  # a hang fails with its traceback
    from skflash.estimators import assembly

    with assembly.SEEDING:  # held by another thread of the parent at the fork
        pass
    X, y = load_diabetes(return_X_y=True)
    # one thread: torch's OpenMP pool does not survive a fork of a process that used it
    reg = FlashRegressor(max_epochs=1, random_state=0, num_threads=1)
    queue.put(reg.fit(X, y).score(X, y))


@pytest.mark.skipif(sys.platform == "win32", reason="fork")
def test_a_process_forked_while_another_thread_seeds_can_fit():
    import multiprocessing

    from skflash.estimators import assembly

    context = multiprocessing.get_context("fork")
    held, release = threading.Event(), threading.Event()

    def seeding() -> None:
        with assembly.SEEDING:
            held.set()
            release.wait(0.3)

    other = threading.Thread(target=seeding)
    other.start()
    held.wait()
    queue = context.Queue()
    child = context.Process(target=_fit_in_child, args=(queue,))
    child.start()
    release.set()
    other.join()
    child.join(60)
    if child.exitcode is None:
        child.kill()
    assert child.exitcode == 0
    assert queue.get(timeout=5) > 0


def _predict_and_fit_in_child(queue, reg, X, y) -> None:
    import faulthandler

    faulthandler.dump_traceback_later(50, exit=True)  # a hang fails with its traceback
    answers = reg.predict(X)  # rows enough for torch's two threads in the parent
    queue.put((answers, FlashRegressor(max_epochs=1, random_state=0).fit(X, y).score(X, y)))


@pytest.mark.skipif(sys.platform == "win32", reason="fork")
def test_a_process_forked_after_predicting_on_two_threads_predicts_and_fits():
    import multiprocessing

    X, y = make_regression(3000, 50, random_state=0)
    reg = FlashRegressor(max_epochs=1, random_state=0).fit(X, y)
    with torch_threads(2):
        expected = reg.predict(X)  # torch's OpenMP threads started in this process
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_predict_and_fit_in_child, args=(queue, reg, X, y))
    child.start()
    child.join(60)
    if child.exitcode is None:
        child.kill()
    assert child.exitcode == 0  # it hung in torch's OpenMP pool, on two threads
    answers, score = queue.get(timeout=5)
    np.testing.assert_allclose(answers, expected, rtol=1e-5, atol=1e-4)
    assert 0 < score <= 1
