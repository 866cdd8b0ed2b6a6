"""FlashRegressor as users meet it: sklearn tools, inputs, errors, quiet fits, persistence."""

from __future__ import annotations

import pickle

import joblib
import numpy as np
import pandas as pd
import pytest
import torch
from pytorch_lightning.callbacks import Callback
from sklearn.base import clone
from sklearn.compose import make_column_transformer
from sklearn.datasets import load_diabetes, make_regression
from sklearn.feature_selection import SelectKBest, f_regression
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from skflash import FlashRegressor
from skflash.estimators.fit_plan import checked_params

FAST = {"max_epochs": 15, "batch_size": 16, "learning_rate": 0.01, "random_state": 0}


@pytest.fixture(scope="module")
def data():
    X, y = make_regression(n_samples=120, n_features=5, noise=5.0, random_state=0)
    return X, y


def test_defaults_train_well_on_diabetes():
    X, y = load_diabetes(return_X_y=True)
    cv = KFold(5, shuffle=True, random_state=0)
    flash = cross_val_score(FlashRegressor(random_state=0), X, y, cv=cv).mean()
    linear = cross_val_score(LinearRegression(), X, y, cv=cv).mean()
    assert flash > linear - 0.05


def test_fit_returns_self_and_predicts_1d_or_2d(data):
    X, y = data
    reg = FlashRegressor(**FAST)
    assert reg.fit(X, y) is reg
    assert reg.predict(X).shape == (120,)
    Y = np.column_stack([y, -y, 2 * y])
    multi = FlashRegressor(**FAST).fit(X, Y)
    assert multi.predict(X).shape == (120, 3)
    assert multi.n_outputs_ == 3
    assert multi.score(X, Y) > 0.5


def test_pipeline_with_scaler_and_feature_selection(data):
    X, y = data
    pipe = make_pipeline(StandardScaler(), SelectKBest(f_regression, k=3), FlashRegressor(**FAST))
    pipe.fit(X, y)
    assert pipe[-1].n_features_in_ == 3
    assert pipe.score(X, y) > 0.5


def test_column_transformer_over_dataframe_with_string_column(data):
    X, y = data
    frame = pd.DataFrame(X, columns=list("abcde"))
    frame["city"] = np.where(y > 0, "north", "south")
    pipe = make_pipeline(
        make_column_transformer((OneHotEncoder(), ["city"]), remainder="passthrough"),
        FlashRegressor(**FAST),
    )
    pipe.fit(frame, y)
    assert pipe.predict(frame).shape == (120,)
    assert FlashRegressor(**FAST).fit(frame, y).predict(frame).shape == (120,)
    with pytest.raises(ValueError, match=r"\['city'\] hold categories.*categorical_features="):
        FlashRegressor(**FAST, categorical_features=None).fit(frame, y)


def test_dataframe_and_series_record_feature_names(data):
    X, y = data
    frame = pd.DataFrame(X, columns=list("abcde"))
    reg = FlashRegressor(**FAST).fit(frame, pd.Series(y))
    assert list(reg.feature_names_in_) == list("abcde")
    assert reg.n_features_in_ == 5
    np.testing.assert_allclose(reg.predict(frame), reg.predict(X))


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_grid_search_over_routed_parameters(data, n_jobs):
    X, y = data
    grid = GridSearchCV(
        FlashRegressor(**FAST),
        {"backbone__hidden_sizes": [(8,), (16, 16)], "optimizer__betas": [(0.9, 0.999)]},
        cv=2,
        n_jobs=n_jobs,
    )
    grid.fit(X, y)
    best = grid.best_estimator_
    assert best.task_.backbone[0].out_features == grid.best_params_["backbone__hidden_sizes"][0]
    assert len(set(grid.cv_results_["mean_test_score"])) == 2  # the two networks differ
    optimizer_kwargs = checked_params(best)["optimizer_kwargs"]
    assert optimizer_kwargs["betas"] == (0.9, 0.999)


def test_fit_leaves_the_callers_torch_thread_count_alone(data):
    X, y = data
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        FlashRegressor(max_epochs=2, random_state=0).fit(X, y)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_cross_val_score_and_clone(data):
    X, y = data
    reg = FlashRegressor(trainer__gradient_clip_val=1.0, backbone__hidden_sizes=(8,), **FAST)
    assert cross_val_score(reg, X, y, cv=3).mean() > 0.3
    twin = clone(reg)
    assert twin.get_params() == reg.get_params()
    assert twin.get_params()["trainer__gradient_clip_val"] == 1.0
    assert not any(k.startswith("_") for k in twin.get_params())


def test_set_params_routes(data):
    reg = FlashRegressor(**FAST).set_params(backbone__hidden_sizes=(4,), trainer__max_steps=5)
    assert reg.get_params()["backbone__hidden_sizes"] == (4,)
    reg.fit(*data)
    assert reg.task_.backbone[0].out_features == 4
    assert reg.n_iter_ == 1  # 5 steps of 8 batches per epoch: the first epoch stops early


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"trainer__max_epoch": 3}, ValueError, "estimator's own parameter 'max_epochs'"),
        ({"trainer__gradient_clip_vale": 1}, ValueError, "Did you mean trainer__gradient_clip_val"),
        ({"backbone__hiden_sizes": (3,)}, ValueError, "Did you mean backbone__hidden_sizes"),
        ({"optimizer__weight_decy": 0.1}, ValueError, "Did you mean optimizer__weight_decay"),
        ({"lr": 0.1}, TypeError, "Did you mean 'learning_rate'"),
        ({"trainer__max_epochs": 3}, ValueError, "own parameter 'max_epochs'"),
        ({"optimizer": "adma"}, ValueError, "Unknown optimizer 'adma'"),
        ({"loss": "mse2"}, ValueError, "'loss' parameter of FlashRegressor must be one of 'mse'"),
        ({"backbone": "resnet"}, ValueError, "Unknown backbone 'resnet'. Choose one of"),
        (
            {"learning_rate": -1},
            ValueError,
            r"'learning_rate' .* 'auto' or a number in \(0.0, inf\]",
        ),
        ({"validation_fraction": 1.5}, ValueError, r"'validation_fraction' .* \(0.0, 1.0\)"),
        ({"max_epochs": 0}, ValueError, "'max_epochs' .* integer >= 1 or one of 'auto'; got 0"),
    ],
)
def test_bad_parameters_get_clear_errors(data, kwargs, error, message):
    with pytest.raises(error, match=message):
        FlashRegressor(**kwargs).fit(*data)


def test_inputs_are_never_modified_and_dtypes_accepted(data):
    X, y = data
    X32 = X.astype(np.float32)
    copies = [a.copy() for a in (X, y, X32)]
    weights = np.linspace(0.5, 2.0, len(y))
    w_copy = weights.copy()
    FlashRegressor(**FAST).fit(X, y, sample_weight=weights)
    reg32 = FlashRegressor(**FAST).fit(X32, y)
    assert reg32.task_.dtype == torch.float32
    assert reg32.predict(X32).dtype == np.float32
    big_endian = X32.astype(">f4")  # any byte order: the answers keep the input's type
    assert reg32.predict(big_endian).dtype == np.float32
    np.testing.assert_array_equal(reg32.predict(big_endian), reg32.predict(X32))
    for before, after in zip(copies, (X, y, X32), strict=True):
        np.testing.assert_array_equal(before, after)
    np.testing.assert_array_equal(weights, w_copy)
    ints = FlashRegressor(**FAST).fit(np.round(X * 10).astype(int), np.round(y).astype(int))
    assert ints.predict(np.round(X * 10).astype(int)).shape == (120,)
    as_list = FlashRegressor(**FAST).fit(X.tolist(), y.tolist())
    as_tensor = FlashRegressor(**FAST).fit(torch.from_numpy(X), torch.from_numpy(y))
    np.testing.assert_allclose(as_list.predict(X), as_tensor.predict(torch.from_numpy(X)))


def test_same_random_state_same_predictions_and_global_rng_untouched(data):
    X, y = data
    torch.manual_seed(123)
    np.random.seed(123)
    torch_state, numpy_state = torch.get_rng_state(), np.random.get_state()
    a = FlashRegressor(**FAST).fit(X, y).predict(X)
    b = FlashRegressor(**FAST).fit(X, y).predict(X)
    c = FlashRegressor(**{**FAST, "random_state": 1}).fit(X, y).predict(X)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert np.array_equal(np.random.get_state()[1], numpy_state[1])


def test_pickle_and_joblib_round_trips(data, tmp_path):
    X, y = data
    reg = FlashRegressor(**FAST).fit(X, y)
    expected = reg.predict(X)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(reg)).predict(X), expected)
    joblib.dump(reg, tmp_path / "reg.joblib")
    np.testing.assert_array_equal(joblib.load(tmp_path / "reg.joblib").predict(X), expected)


def test_partial_fit_and_warm_start_continue_training(data):
    X, y = data
    reg = FlashRegressor(random_state=0, lr_schedule=None)
    losses = [reg.partial_fit(X, y).history_[-1]["train_loss"] for _ in range(5)]
    assert reg.n_iter_ == 5 and losses[-1] < losses[0]
    weights = [p.detach().clone() for p in reg.task_.parameters()]
    reg.partial_fit(X, y)
    assert any(not torch.equal(w, p) for w, p in zip(weights, reg.task_.parameters(), strict=True))
    warm = FlashRegressor(max_epochs=3, warm_start=True, random_state=0).fit(X, y)
    task = warm.task_
    warm.fit(X, y)
    assert warm.task_ is task and warm.n_iter_ == 6
    cold = FlashRegressor(max_epochs=3, random_state=0).fit(X, y)
    first = cold.task_
    assert cold.fit(X, y).task_ is not first and cold.n_iter_ == 3
    with pytest.raises(ValueError, match="X has 4 features, but FlashRegressor is expecting 5"):
        reg.partial_fit(X[:, :4], y)


def test_early_stopping_restores_best_weights_in_memory(data, tmp_path):
    X, y = data
    snapshots = {}

    class Snapshots(Callback):
        def on_validation_epoch_end(self, trainer, pl_module):
            snapshots[trainer.current_epoch] = {
                k: v.clone() for k, v in pl_module.state_dict().items()
            }

    reg = FlashRegressor(
        max_epochs=300,
        early_stopping=True,
        patience=3,
        learning_rate=0.05,
        random_state=0,
        callbacks=[Snapshots()],
    )
    reg.fit(X, y)
    assert reg.n_iter_ < 300
    val = [row["val_loss"] for row in reg.history_]
    assert reg.best_epoch_ == int(np.argmin(val)) < reg.n_iter_ - 1
    best = snapshots[reg.best_epoch_]
    assert all(torch.equal(v, best[k]) for k, v in reg.task_.state_dict().items())
    assert list(tmp_path.iterdir()) == []
    plain = FlashRegressor(max_epochs=3, random_state=0).fit(X, y)
    assert all("val_loss" not in row for row in plain.history_)
    with pytest.raises(ValueError, match="leaves no sample on one side"):
        FlashRegressor(early_stopping=True).fit(X[:1], y[:1])


def test_sample_weight_zero_equals_dropping_and_weights_matter(data):
    X, y = data
    weights = np.ones(len(y))
    weights[:30] = 0
    a = FlashRegressor(**FAST).fit(X, y, sample_weight=weights).predict(X)
    b = FlashRegressor(**FAST).fit(X[30:], y[30:]).predict(X)
    np.testing.assert_allclose(a, b)
    skewed = np.where(np.arange(len(y)) < 60, 10.0, 0.1)
    c = FlashRegressor(**FAST).fit(X, y, sample_weight=skewed).predict(X)
    assert not np.allclose(c, FlashRegressor(**FAST).fit(X, y).predict(X))
    with pytest.raises(ValueError, match="at least one non-zero"):
        FlashRegressor(**FAST).fit(X, y, sample_weight=np.zeros(len(y)))
    with pytest.raises(ValueError, match="Negative values"):
        FlashRegressor(**FAST).fit(X, y, sample_weight=-np.ones(len(y)))


def test_quiet_by_default_and_verbose_prints_epochs(data, tmp_path, capfd, recwarn):
    X, y = data
    FlashRegressor(**FAST).fit(X, y)
    FlashRegressor(early_stopping=True, **FAST).fit(X, y)
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    assert len(recwarn) == 0
    assert list(tmp_path.iterdir()) == []
    FlashRegressor(max_epochs=2, verbose=1, random_state=0).fit(X, y)
    out, err = capfd.readouterr()  # not a terminal: one line when the fit ends, no redraws
    assert out == "" and err.count("\n") == 1 and "\r" not in err
    assert err.startswith("FlashRegressor: 2/2 epochs in ") and "s  train_loss=" in err


def test_diverging_fit_raises_clear_error(data):
    X, y = data
    reg = FlashRegressor(
        optimizer="sgd", learning_rate=1e4, standardize_target=False, max_epochs=50, random_state=0
    )
    with pytest.raises(FloatingPointError, match=r"diverged at epoch \d+.*lower learning_rate"):
        reg.fit(X, y * 1e20)


def test_user_callbacks_and_custom_module(data):
    X, y = data

    class Counter(Callback):
        epochs = 0

        def on_train_epoch_end(self, trainer, pl_module):
            Counter.epochs += 1

    class Net(torch.nn.Module):
        def __init__(self, n_in, n_out, width=8):
            super().__init__()
            self.layers = torch.nn.Sequential(
                torch.nn.Linear(n_in, width), torch.nn.ReLU(), torch.nn.Linear(width, n_out)
            )

        def forward(self, x):
            return self.layers(x)

    reg = FlashRegressor(backbone=Net, backbone__width=4, callbacks=[Counter()], **FAST)
    reg.fit(X, y)
    assert Counter.epochs == 15
    assert reg.task_.model.layers[0].out_features == 4
    instance = FlashRegressor(backbone=torch.nn.Linear(5, 1), **FAST).fit(X, y)
    assert instance.score(X, y) > 0.5


def test_fresh_interpreter_fit_prints_nothing_and_writes_nothing(tmp_path):
    """As a user sees it: a new process, Lightning's own logging set up at import."""
    import subprocess
    import sys

    script = (
        "import warnings; warnings.simplefilter('always')\n"
        "from sklearn.datasets import load_diabetes\n"
        "from skflash import FlashClassifier, FlashRegressor\n"
        "X, y = load_diabetes(return_X_y=True)\n"
        "FlashRegressor(max_epochs=3).fit(X, y).predict(X)\n"
        "FlashRegressor(max_epochs=3, early_stopping=True).fit(X, y)\n"
        "FlashClassifier(max_epochs=3).fit(X, y > 140).predict_proba(X)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert done.stdout == "" and done.stderr == ""
    assert list(tmp_path.iterdir()) == []


def test_pickled_state_holds_arrays_not_torch_objects_and_leaves_the_model_alone(data):
    X, y = data
    reg = FlashRegressor(**FAST).fit(X, y)
    task, optimizer_state = reg.task_, reg._optimizer_state
    reg.extra_tensor_ = {"kept": [torch.ones(2)]}  # any tensor the estimator holds
    state = reg.__getstate__()
    assert reg.task_ is task and reg._optimizer_state is optimizer_state
    leaves = torch.utils._pytree.tree_leaves(state)
    assert not any(torch.is_tensor(v) or isinstance(v, torch.nn.Module) for v in leaves)
    weights = state["task_"]["weights"]
    assert set(weights) == set(task.state_dict()) and state["task_"]["dtype"] == "float64"
    np.testing.assert_array_equal(state["extra_tensor_"]["kept"][0], [1.0, 1.0])
    restored = pickle.loads(pickle.dumps(reg))
    assert not restored.task_.training and restored.task_.dtype == torch.float64
    np.testing.assert_array_equal(restored.predict(X), reg.predict(X))
    restored.partial_fit(X, y)  # the optimizer state comes back as tensors
    assert all(
        torch.is_tensor(v)
        for group in restored._optimizer_state["state"].values()
        for v in group.values()
    )


_SEEDED = {"random_state": 0, "learning_rate": 0.05}


class _Terminal:
    """A stream that says it is a terminal and records what is written."""

    def __init__(self) -> None:
        self.text = ""

    def isatty(self) -> bool:
        return True

    def write(self, text: str) -> None:
        self.text += text

    def flush(self) -> None:
        pass


def test_verbose_progress_is_one_live_bar_on_a_terminal(data, monkeypatch):
    X, y = data
    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    monkeypatch.setattr("tqdm.std.tqdm.monitor_interval", 0)  # no monitor thread
    FlashRegressor(max_epochs=3, verbose=1, early_stopping=True, random_state=0).fit(X, y)
    redraws = [r for r in terminal.text.split("\r") if r]
    assert len(redraws) >= 2 and terminal.text.count("\n") == 1  # one bar, redrawn in place
    assert redraws[0].startswith("FlashRegressor:   0%") and "0/3" in redraws[0]
    assert redraws[-1].startswith("FlashRegressor: 100%") and "3/3" in redraws[-1]
    assert "val_loss=" in redraws[-1] and terminal.text.endswith("\n")


class _NotebookBar:
    """Records what a notebook's progress widget would be told."""

    made: list[_NotebookBar] = []

    def __init__(self, total=None, desc=None, **kwargs) -> None:
        self.total, self.desc, self.n, self.postfix, self.closed = total, desc, 0, "", False
        self.made.append(self)

    def set_postfix_str(self, text, refresh=True) -> None:
        self.postfix = text

    def update(self, n=1) -> None:
        self.n += n

    def refresh(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def test_verbose_progress_is_a_live_widget_in_a_notebook(data, monkeypatch, capfd):
    X, y = data
    monkeypatch.setattr("tqdm.autonotebook.tqdm", _NotebookBar)  # tqdm.auto's notebook choice
    monkeypatch.setattr("tqdm.auto.tqdm", _NotebookBar)
    _NotebookBar.made.clear()
    FlashRegressor(max_epochs=20, verbose=1, early_stopping=True, patience=1, **_SEEDED).fit(X, y)
    (bar,) = _NotebookBar.made
    assert bar.desc == "FlashRegressor" and bar.closed and bar.n > 0
    assert bar.total == bar.n < 20  # stopped early: the bar ends full, at the last epoch
    assert "train_loss=" in bar.postfix and "val_loss=" in bar.postfix
    assert capfd.readouterr() == ("", "")  # the widget shows it: nothing printed besides


def test_state_of_an_earlier_version_with_the_task_whole_still_loads(data):
    X, y = data
    reg = FlashRegressor(**FAST).fit(X, y)
    earlier = dict(vars(reg))  # what pickles held before: the Task object itself
    del earlier["_network_params"]
    loaded = FlashRegressor.__new__(FlashRegressor)
    loaded.__setstate__(earlier)
    np.testing.assert_array_equal(loaded.predict(X), reg.predict(X))


@pytest.mark.parametrize(
    "holder",
    [
        lambda v: pd.Series(v, dtype=object),
        list,
        lambda v: np.array(v, dtype=object),
        lambda v: pd.Series(v, dtype=object).to_frame(),
    ],
    ids=["object Series", "list", "object array", "object frame"],
)
@pytest.mark.parametrize("missing", [None, np.nan])
def test_a_target_holding_none_gets_the_missing_target_error(data, holder, missing):
    X, y = data
    values = [*y.tolist()[:-1], missing]
    missing_target = r"y holds missing values \(None or NaN\)"
    if missing is not None:  # a float NaN may keep scikit-learn's own message
        missing_target += "|Input y contains NaN"
    with pytest.raises(ValueError, match=missing_target):
        FlashRegressor(**FAST).fit(X, holder(values))
    reg = FlashRegressor(**FAST).fit(X[:-1], holder(y.tolist()[:-1]))  # numbers as objects
    with pytest.raises(ValueError, match=missing_target):
        reg.partial_fit(X, holder(values))


_WRONG_NETWORKS = {
    "five logits for three classes": (
        "clf",
        lambda: torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Linear(16, 5)),
        r"outputs shape \(2, 5\) for 2 rows, but FlashClassifier trains it on 3 logits",
    ),
    "two logits for two classes": (
        "binary",
        lambda: torch.nn.Linear(4, 2),
        r"1 logit per row \(one logit for two classes\).*nn.Linear\(..., 1\)",
    ),
    "one output for two targets": (
        "two targets",
        lambda: torch.nn.Linear(4, 1),
        r"trains it on 2 values per row",
    ),
    "three inputs for four columns": (
        "reg",
        lambda: torch.nn.Linear(3, 1),
        r"failed on the training rows, 4 encoded columns each.*first layer must take 4",
    ),
}


@pytest.mark.parametrize("case", list(_WRONG_NETWORKS.values()), ids=list(_WRONG_NETWORKS))
def test_a_network_of_the_wrong_width_is_refused_before_training(case):
    from sklearn.datasets import load_iris

    from skflash import FlashClassifier

    kind, network, message = case
    X, y = load_iris(return_X_y=True)
    make, target = {
        "clf": (FlashClassifier, y),
        "binary": (FlashClassifier, y > 0),
        "two targets": (FlashRegressor, np.c_[X[:, 0], X[:, 1]]),
        "reg": (FlashRegressor, X[:, 0]),
    }[kind]
    est = make(backbone=network(), max_epochs=1, random_state=0)
    with pytest.raises(ValueError, match=message):
        est.fit(X[:, :4], target)
    assert not hasattr(est, "task_")
    right = {"clf": 3, "binary": 1, "two targets": 2, "reg": 1}[kind]
    make(backbone=torch.nn.Linear(4, right), max_epochs=1).fit(X, target)
