"""Predict as a server calls it: from many threads at once, on a few rows per call."""

from __future__ import annotations

import copy
import pickle
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone

from skflash import FlashClassifier, FlashRegressor
from skflash.estimators import predict_graph, serving
from skflash.estimators.model_watch import ModelWatch
from skflash.tasks import RegressionTask


@pytest.fixture(scope="module")
def fitted(diabetes):
    X, y = diabetes
    return FlashRegressor(max_epochs=3, random_state=0).fit(X, y), X


def test_eight_threads_get_bitwise_the_answers_of_one(fitted):
    reg, X = fitted
    sizes = [1, 100, 3, 1, 57] * 12
    inputs = [X[7 * k : 7 * k + n] for k, n in enumerate(sizes)]
    inputs += [X[:5].astype(np.float32), np.asfortranarray(X[:9])]
    expected = [_eager(reg, rows) for rows in inputs]  # what one thread gets, eagerly

    def serve(start):
        picks = [(start + k) % len(inputs) for k in range(250)]
        return [(i, reg.predict(inputs[i])) for i in picks]

    with ThreadPoolExecutor(8) as pool:
        answers = [a for chunk in pool.map(serve, range(8)) for a in chunk]
    assert len(answers) == 8 * 250
    for i, answer in answers:
        assert answer.dtype == expected[i].dtype
        np.testing.assert_array_equal(answer, expected[i])


def test_the_quick_checks_take_only_what_the_full_ones_return_unchanged(fitted):
    reg, X = fitted
    table = reg._table
    rows = X[:3]
    assert table.predict_rows(reg, rows) is rows  # a float array of the fitted width
    assert table.predict_rows(reg, rows.astype(np.float32)).dtype == np.float32
    # everything else gets scikit-learn's checks and their errors
    np.testing.assert_array_equal(table.predict_rows(reg, rows.tolist()), rows)
    missing = rows.copy()
    missing[1, 2] = np.nan  # missing numbers take the full checks, which accept them
    assert np.isfinite(reg.predict(missing)).all()
    bad = rows.copy()
    bad[1, 2] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        reg.predict(bad)
    with pytest.raises(ValueError, match="features"):
        reg.predict(X[:3, :4])
    with pytest.raises(ValueError, match="0 sample"):
        reg.predict(X[:0])


def test_quick_checks_still_compare_column_names():
    X = pd.DataFrame(np.random.default_rng(0).normal(size=(40, 3)), columns=["a", "b", "c"])
    y = (X["a"] > 0).astype(int)
    clf = FlashClassifier(max_epochs=1, random_state=0).fit(X, y)
    with pytest.warns(UserWarning, match="feature names"):
        clf.predict(X.to_numpy())  # fitted with names, given none: scikit-learn warns


def _state(est):
    """What serving holds for ``est``'s Task: a count of small calls, its path, a refusal,
    or None where the network is not traced at all."""
    holder = vars(est.task_).get(serving.STATE)
    return None if holder is None else holder.state


def _eager(est, X):
    """``est``'s outputs for ``X`` through the eager path (the traced one set aside)."""
    holder = vars(est.task_).get(serving.STATE)
    saved = None if holder is None else holder.state
    if holder is not None:
        holder.state = serving._Refused(ModelWatch(est.task_))
    try:
        return est.predict_proba(X) if hasattr(est, "predict_proba") else est.predict(X)
    finally:
        if holder is not None:
            holder.state = saved


def _served(est, X):
    """``est``'s outputs for ``X`` once enough small calls have had its path traced."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # tracing is silent, torch's notices included
        for _ in range(serving.CALLS_BEFORE_TRACING):
            est.predict(X[:1])
    assert isinstance(_state(est), serving.TracedPath)
    return est.predict_proba(X) if hasattr(est, "predict_proba") else est.predict(X)


def _mixed_table(n=300, seed=0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": np.where(rng.random(n) < 0.2, np.nan, rng.normal(size=n)),
            "colour": pd.Categorical(rng.choice(["red", "green", "blue"], n)),
            "city": rng.choice([f"c{i}" for i in range(12)], n).astype(object),
        }
    )
    return X, (X["a"] + X["colour"].cat.codes > 0.5).astype(int).to_numpy()


@pytest.mark.parametrize(
    "make",
    [
        lambda: FlashRegressor(max_epochs=2, random_state=0),
        lambda: FlashRegressor(max_epochs=2, random_state=0, standardize_inputs="robust"),
        lambda: FlashRegressor(max_epochs=2, random_state=0, numeric_embedding="periodic"),
        lambda: FlashRegressor(max_epochs=2, random_state=0, precision="64-true"),
        lambda: FlashClassifier(max_epochs=2, random_state=0),
        lambda: FlashClassifier(max_epochs=2, random_state=0, n_ensemble=1),
    ],
)
def test_small_calls_are_served_by_a_traced_path_with_bitwise_the_eager_answers(make, diabetes):
    est = make()
    if isinstance(est, FlashClassifier):
        X, y = _mixed_table()
    else:
        X, y = diabetes
        X = X.astype(np.float32) if est.precision else X
    est.fit(X, y)
    picks = [X.iloc[:k] if hasattr(X, "iloc") else X[:k] for k in (1, 7, 100)]
    if hasattr(X, "iloc"):  # a missing number where training had none, an unseen category
        unseen = X.iloc[:5].copy()
        unseen.loc[unseen.index[0], "a"] = np.nan
        unseen["city"] = ["c99", "c1", None, "c2", "c3"]
        picks.append(unseen)
    expected = [_eager(est, rows) for rows in picks]
    assert isinstance(_state(est), int)
    for rows, answer in zip(picks, expected, strict=True):
        served = _served(est, rows)
        assert served.dtype == answer.dtype
        np.testing.assert_array_equal(served, answer)


def test_a_refit_is_traced_again_and_weights_changed_by_hand_are_read(diabetes):
    X, y = diabetes
    reg = FlashRegressor(max_epochs=2, random_state=0).fit(X, y)
    first = _served(reg, X[:20])
    reg.fit(X[:200], y[:200] * 2)  # a new model: what was traced for the old one is gone
    assert _state(reg) == 0  # nothing counted or traced
    refit = _served(reg, X[:20])
    assert not np.array_equal(first, refit)
    np.testing.assert_array_equal(refit, _eager(reg, X[:20]))
    with torch.no_grad():  # the user edits the weights in place
        next(reg.task_.model.parameters()).mul_(0.5)
    edited = reg.predict(X[:20])
    assert not np.array_equal(edited, refit)
    np.testing.assert_array_equal(edited, _eager(reg, X[:20]))


def test_a_traced_model_pickles_and_clones_as_before(diabetes):
    X, y = diabetes
    reg = FlashRegressor(max_epochs=2, random_state=0).fit(X, y)
    served = _served(reg, X[:9])
    loaded = pickle.loads(pickle.dumps(reg))
    np.testing.assert_array_equal(loaded.predict(X[:9]), served)
    np.testing.assert_array_equal(copy.deepcopy(reg).predict(X[:9]), served)
    assert clone(reg).get_params() == reg.get_params()
    for task in (copy.deepcopy(reg.task_), pickle.loads(pickle.dumps(reg.task_))):
        assert vars(task)[serving.STATE].state == 0  # the copy counts its own calls again


def test_a_users_task_with_its_own_forward_stays_eager(diabetes):
    class Doubled(RegressionTask):
        def forward(self, x):
            return 2 * self.model(x)

    X, y = diabetes
    reg = FlashRegressor(task=Doubled, max_epochs=2, random_state=0).fit(X, y)
    for _ in range(serving.CALLS_BEFORE_TRACING + 2):
        reg.predict(X[:1])
    assert _state(reg) is None  # nothing counted or traced


def test_a_model_cast_or_given_reversed_rows_after_tracing_answers_as_eager(diabetes):
    X, y = diabetes
    reg = FlashRegressor(max_epochs=2, random_state=0).fit(X.astype(np.float32), y)
    _served(reg, X[:20])
    reversed_rows = X[::-1][:20]  # negative strides: copied, not shared with torch
    np.testing.assert_array_equal(reg.predict(reversed_rows), _eager(reg, reversed_rows))
    reg.task_.double()  # rows still scaled in float32, then fed in float64: eager
    np.testing.assert_array_equal(reg.predict(X[:20]), _eager(reg, X[:20]))
    for _ in range(serving.CALLS_BEFORE_TRACING + 1):
        reg.predict(X[:1])
    assert isinstance(_state(reg), serving._Refused)  # counted again, then not traced


def test_a_backbone_of_the_users_own_stays_eager(diabetes):
    class Guarded(torch.nn.Module):  # branches on the values it sees: no trace can hold it
        def __init__(self):
            super().__init__()
            self.hidden, self.out = torch.nn.Linear(10, 8), torch.nn.Linear(8, 1)

        def forward(self, x):
            if x.abs().max() > 4:
                x = x.clamp(-4, 4)
            return self.out(torch.relu(self.hidden(x)))

    X, y = diabetes
    reg = FlashRegressor(backbone=Guarded(), max_epochs=2, random_state=0).fit(X, y)
    for _ in range(serving.CALLS_BEFORE_TRACING + 2):
        reg.predict(X[:1])
    assert _state(reg) is None  # nothing counted or traced
    outlier = X[:5].copy()
    outlier[0, 0] = 40.0
    np.testing.assert_array_equal(reg.predict(outlier), _eager(reg, outlier))


def test_threads_switching_to_the_traced_path_leave_the_warning_filters_alone(diabetes):
    X, y = diabetes
    reg = FlashRegressor(max_epochs=2, random_state=0).fit(X, y)
    rows = [X[k : k + 1 + k % 5] for k in range(16)]
    expected = [_eager(reg, r) for r in rows]
    before = list(warnings.filters)

    def serve(start):
        return [(i % 16, reg.predict(rows[i % 16])) for i in range(start, start + 40)]

    with ThreadPoolExecutor(8) as pool:  # the trace is built while the others predict
        answers = [a for chunk in pool.map(serve, range(8)) for a in chunk]
    assert isinstance(_state(reg), serving.TracedPath)
    assert list(warnings.filters) == before
    for i, answer in answers:
        np.testing.assert_array_equal(answer, expected[i])


def test_rows_taken_unchecked_by_the_traced_path_get_the_full_checks_errors(diabetes):
    X, y = diabetes
    reg = FlashRegressor(max_epochs=2, random_state=0).fit(X.astype(np.float32), y)
    _served(reg, X[:3])
    bad = X[:3].copy()
    bad[1, 2] = -np.inf
    with pytest.raises(ValueError, match="infinity"):
        reg.predict(bad)
    missing = X[:4].copy()
    missing[0, 1] = np.nan  # a missing number: no error, the eager answers
    np.testing.assert_array_equal(reg.predict(missing), _eager(reg, missing))
    huge = X[:2].copy()
    huge[0, 0] = 1e300  # finite in float64, too large for the model's float32
    for predict in (reg.predict, lambda rows: _eager(reg, rows)):
        with pytest.raises(ValueError, match="too large for float32: train in float64"):
            predict(huge)
    assert isinstance(_state(reg), serving.TracedPath)


def test_each_thread_keeps_buffers_for_small_calls_only(fitted):
    reg, X = fitted
    _served(reg, X[:1])
    path = _state(reg)
    first = reg.predict(X[:2])
    assert path._threads.buffers.n_rows == 2
    again = reg.predict(X[:2])
    assert again is not first  # the answers are the caller's, not the buffer's
    np.testing.assert_array_equal(again, first)
    reg.predict(X[: predict_graph.KEPT_ROWS + 1])
    assert path._threads.buffers.n_rows == 2


def test_a_threads_buffers_are_also_held_by_torch(fitted):
    # A run of the graph drops the references it takes to its inputs; dropping torch's
    # last one to a tensor that a Python object owns takes the interpreter lock mid-run,
    # and a second predicting thread then holds it (two threads: 0.6x one's calls/s).
    reg, X = fitted
    _served(reg, X[:1])
    path = _state(reg)

    def use_counts():
        reg.predict(X[:1])
        buffers = path._threads.buffers
        return [t._use_count() for t in (buffers.rows, buffers.out, buffers.infinite)]

    with ThreadPoolExecutor(1) as pool:
        assert min(pool.submit(use_counts).result()) >= 2


def test_a_torch_without_its_list_type_still_serves(fitted, monkeypatch):
    reg, X = fitted
    _served(reg, X[:1])
    monkeypatch.delattr(torch, "ScriptList")
    with ThreadPoolExecutor(1) as pool:  # a new thread: new buffers, held by no one else
        answers = pool.submit(reg.predict, X[:3]).result()
    assert isinstance(_state(reg), serving.TracedPath)
    np.testing.assert_array_equal(answers, _eager(reg, X[:3]))


def test_served_calls_run_on_the_policys_threads_and_restore_the_callers(fitted, monkeypatch):
    reg, X = fitted
    _served(reg, X[:1])
    path = _state(reg)
    seen = []
    graph = path.graph
    monkeypatch.setattr(path, "graph", lambda *a: seen.append(torch.get_num_threads()) or graph(*a))
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        reg.predict(X[:1])
        assert seen == [1]  # a small network: one thread
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("precision", ["bf16-true", "16-true"])
def test_half_precision_models_answer_small_calls_eagerly(precision, diabetes):
    X, y = diabetes
    reg = FlashRegressor(max_epochs=2, random_state=0, precision=precision)
    reg.fit(X.astype(np.float32), y)
    expected = _eager(reg, X[:3])
    for _ in range(serving.CALLS_BEFORE_TRACING + 2):
        reg.predict(X[:1])
    assert isinstance(_state(reg), serving._Refused)  # rows load in float32: no trace
    np.testing.assert_array_equal(reg.predict(X[:3]), expected)


def _edit_in_place(est):
    """Change every weight of ``est``'s network in place, as a user may after a fit."""
    with torch.no_grad():
        for weight in est.task_.model.parameters():
            weight.mul_(0.75).add_(0.01)
        state = est.task_.model.state_dict()
        est.task_.model.load_state_dict({k: v * 1.1 for k, v in state.items()})  # copies in


@pytest.mark.parametrize(
    "make",
    [
        lambda: FlashRegressor(max_epochs=1, random_state=0, numeric_embedding="periodic"),
        lambda: FlashRegressor(max_epochs=1, random_state=0, backbone="linear"),
        lambda: FlashClassifier(max_epochs=1, random_state=0),
    ],
)
def test_weights_changed_in_place_after_tracing_are_read_by_the_graph(make, diabetes):
    est = make()
    X, y = _mixed_table() if isinstance(est, FlashClassifier) else diabetes
    est.fit(X, y)
    rows = X.iloc[:9] if hasattr(X, "iloc") else X[:9]
    before = _served(est, rows)
    path = _state(est)
    _edit_in_place(est)
    after = est.predict_proba(rows) if hasattr(est, "predict_proba") else est.predict(rows)
    assert _state(est) is path  # read where they are: nothing traced again
    assert not np.array_equal(after, before)
    np.testing.assert_array_equal(after, _eager(est, rows))


class _Rescaled(torch.nn.Module):
    """Weights scaled by a value computed from a weight: a trace could hold the product."""

    def __init__(self, num_features):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.full((num_features,), 0.1))
        self.log_scale = torch.nn.Parameter(torch.zeros(()))

    def forward(self, x):
        return x * (self.weight * self.log_scale.exp())


def test_a_registered_backbone_computing_from_its_weights_answers_edits_as_eager(diabetes):
    from skflash.core.backbones import TABULAR_BACKBONES

    TABULAR_BACKBONES(
        fn=lambda num_features: (_Rescaled(num_features), num_features), name="rescaled"
    )
    try:
        X, y = diabetes
        reg = FlashRegressor(backbone="rescaled", max_epochs=1, random_state=0).fit(X, y)
        for _ in range(serving.CALLS_BEFORE_TRACING + 1):
            reg.predict(X[:1])
        with torch.no_grad():  # in place: a trace holding exp(log_scale) * weight would miss it
            reg.task_.model[0].log_scale.add_(0.5)
        np.testing.assert_array_equal(reg.predict(X[:5]), _eager(reg, X[:5]))
    finally:
        TABULAR_BACKBONES.remove("rescaled")


def test_calls_inside_and_outside_inference_mode_share_a_threads_buffers(fitted):
    reg, X = fitted
    expected = _eager(reg, X[:1])
    with torch.inference_mode():
        _served(reg, X[:1])  # the buffers are made inside inference mode
    np.testing.assert_array_equal(reg.predict(X[:1]), expected)  # and written outside it
    with torch.inference_mode():
        np.testing.assert_array_equal(reg.predict(X[:1]), expected)


def _elements_torch_keeps():
    """Elements of the tensor constants in the graphs of torch's shared compilation unit,
    which it keeps for the life of the process."""
    return sum(
        node.t("value").numel()
        for function in torch.jit._state._python_cu.get_functions()
        for node in function.graph.nodes()
        if node.kind() == "prim::Constant" and node.output().type().kind() == "TensorType"
    )


def test_traced_paths_leave_no_weights_with_torch_for_good(diabetes):
    before = _elements_torch_keeps()
    X, y = diabetes
    reg = FlashRegressor(max_epochs=1, random_state=0).fit(X, y)
    _served(reg, X[:1])
    reg.fit(X, y)
    _served(reg, X[:1])
    weights = sum(weight.numel() for weight in reg.task_.model.parameters())
    # the scaling statistics of each trace stay (a few numbers per column), no weights
    assert _elements_torch_keeps() - before < weights / 10


def test_the_quick_path_answers_as_the_full_checks_would(diabetes):
    X, y = diabetes
    reg = FlashRegressor(max_epochs=1, random_state=0, precision="64-true").fit(X, y)
    big_endian = X[:3].astype(">f8")
    assert reg.predict(big_endian).dtype == np.float64  # scikit-learn's checks make it native
    _served(reg, X[:3])
    assert reg.predict(big_endian).dtype == np.float64
    huge = X[:3].copy()
    huge[0, :2] = 1e308  # finite, summing to infinity
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(reg.predict(huge), _eager(reg, huge))
        vars(reg.task_)[serving.STATE].state = 0  # before the trace too
        np.testing.assert_array_equal(reg.predict(huge), _eager(reg, huge))
