"""What the traced predict path notices: every change a user can make to a fitted model
after its small calls were traced, and the ways a call can come back into serving.

Each test traces a model, changes it as a user may, and compares predict with the eager
path, which runs the model as it is now.
"""

from __future__ import annotations

import copy
import gc
import os
import threading
import warnings

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize, prune

from skflash import FlashClassifier, FlashRegressor
from skflash.core.backbones import TABULAR_BACKBONES
from skflash.estimators import predict_graph, serving
from tests.test_serving import _eager, _served, _state


@pytest.fixture(scope="module")
def traced(diabetes):
    """A regressor whose small calls are served by its traced path."""
    X, y = diabetes
    reg = FlashRegressor(max_epochs=2, random_state=0).fit(X, y)
    _served(reg, X[:1])
    return reg, X


def _fresh(traced):
    """A copy of the traced regressor, traced again (a copy counts its calls anew)."""
    reg, X = traced
    reg = copy.deepcopy(reg)
    _served(reg, X[:1])
    return reg, X


def _replace_head(network):
    head = network.head
    network.head = copy.deepcopy(head)
    with torch.no_grad():
        for weight in network.head.parameters():
            weight.add_(1.0)


def _assign_weights(network):
    state = {k: v * 2 for k, v in network.state_dict().items()}
    network.load_state_dict(state, assign=True)


def _new_storage(network):
    weight = list(network.parameters())[-1]
    weight.data = weight.data * 3


class _Negated(nn.Module):
    def forward(self, weight):
        return -weight


def _first_linear(network):
    return next(m for m in network.modules() if hasattr(m, "weight"))


CHANGES = {
    "a layer replaced": _replace_head,
    "weights loaded with assign=True": _assign_weights,
    "a weight given new storage": _new_storage,
    "a layer pruned": lambda net: prune.l1_unstructured(_first_linear(net), "weight", 0.5),
    "a layer parametrized": lambda net: parametrize.register_parametrization(
        _first_linear(net), "weight", _Negated()
    ),
    "a forward hook on a layer": lambda net: net.head.register_forward_hook(
        lambda module, args, out: out * 2
    ),
    "a forward pre-hook on the network": lambda net: net.register_forward_pre_hook(
        lambda module, args: (args[0] + 1,)
    ),
    "a layer's own forward": lambda net: setattr(net.head, "forward", lambda x: x[..., :1] * 0),
    "a layer's setting": lambda net: setattr(net.members, "combine", "median"),
}


@pytest.mark.parametrize("change", list(CHANGES.values()), ids=list(CHANGES))
def test_a_model_changed_by_hand_after_tracing_answers_as_eager(change, traced):
    reg, X = _fresh(traced)
    before, path = reg.predict(X[:5]), _state(reg)
    change(reg.task_.model)
    expected = _eager(reg, X[:5])
    assert not np.array_equal(expected, before)  # the change changes the answers
    for _ in range(serving.CALLS_BEFORE_TRACING + 3):  # eager, then traced anew
        np.testing.assert_array_equal(reg.predict(X[:5]), expected)
    assert _state(reg) is not path  # traced again, or eager while a hook is set


def test_hooks_on_the_task_and_global_hooks_are_run_as_eager(traced):
    reg, X = _fresh(traced)
    handle = reg.task_.register_forward_hook(lambda module, args, out: out + 1000.0)
    try:
        np.testing.assert_array_equal(reg.predict(X[:3]), _eager(reg, X[:3]))
        assert reg.predict(X[:3]).min() > 500
    finally:
        handle.remove()
    hook = nn.modules.module.register_module_forward_hook(lambda m, a, out: out)
    seen = []
    try:
        hook.remove()
        hook = nn.modules.module.register_module_forward_hook(
            lambda module, args, out: seen.append(type(module).__name__)
        )
        reg.predict(X[:3])
    finally:
        hook.remove()
    assert "EnsembleLinear" in seen  # the eager path ran, with the hook


def test_autocast_is_neither_ignored_nor_traced_in(diabetes):
    X, y = diabetes
    reg = FlashRegressor(max_epochs=2, random_state=0).fit(X.astype(np.float32), y)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        for _ in range(serving.CALLS_BEFORE_TRACING + 2):  # the due trace waits
            reg.predict(X[:1])
        assert isinstance(_state(reg), int)
        inside = reg.predict(X[:4])
        np.testing.assert_array_equal(inside, _eager(reg, X[:4]))
    outside = _served(reg, X[:4])
    np.testing.assert_array_equal(outside, _eager(reg, X[:4]))
    assert not np.array_equal(inside, outside)  # bfloat16 rounding inside only
    with torch.autocast("cpu", dtype=torch.bfloat16):
        np.testing.assert_array_equal(reg.predict(X[:4]), inside)


@pytest.mark.parametrize("n_ensemble", [1, "auto"])
def test_layers_set_to_train_mode_predict_in_eval_mode_on_both_paths(n_ensemble, diabetes):
    X, y = diabetes
    reg = FlashRegressor(max_epochs=2, random_state=0, n_ensemble=n_ensemble, backbone__dropout=0.3)
    reg.fit(X, y)
    expected = reg.predict(X[:6])
    reg.task_.model.train()  # the network, not the Task
    for _ in range(serving.CALLS_BEFORE_TRACING + 2):
        np.testing.assert_array_equal(reg.predict(X[:6]), expected)
    assert isinstance(_state(reg), serving.TracedPath)
    assert all(module.training for module in reg.task_.model.modules())  # restored


def test_a_registered_backbone_of_the_users_is_never_traced(diabetes):
    class Guarded(nn.Module):  # branches on the values it sees: no trace can hold it
        def __init__(self, num_features):
            super().__init__()
            self.hidden = nn.Linear(num_features, 8)

        def forward(self, x):
            if x.abs().max() > 4:
                x = x.clamp(-4, 4)
            return torch.relu(self.hidden(x))

    TABULAR_BACKBONES(fn=lambda num_features: (Guarded(num_features), 8), name="guarded")
    try:
        X, y = diabetes
        reg = FlashRegressor(backbone="guarded", max_epochs=1, random_state=0).fit(X, y)
        for _ in range(serving.CALLS_BEFORE_TRACING + 2):
            reg.predict(X[:1])
        assert _state(reg) is None
        reg.set_params(backbone="mlp")  # what was fitted decides, not the parameters now
        for _ in range(serving.CALLS_BEFORE_TRACING + 2):
            reg.predict(X[:1])
        assert _state(reg) is None
    finally:
        TABULAR_BACKBONES.remove("guarded")


def test_tracing_sets_no_warning_filter(diabetes, monkeypatch):
    X, y = diabetes
    reg = FlashRegressor(max_epochs=1, random_state=0).fit(X, y)
    trace = predict_graph._trace
    filters = []

    def watched(*args):
        filters.append(list(warnings.filters))
        return trace(*args)

    monkeypatch.setattr(predict_graph, "_trace", watched)
    before = list(warnings.filters)
    _served(reg, X[:1])
    assert filters and all(seen == filters[0] for seen in filters)
    assert list(warnings.filters) == before


def test_a_second_model_of_one_architecture_is_traced_once(diabetes):
    X, y = diabetes
    regs = [FlashRegressor(max_epochs=1, random_state=s).fit(X, y) for s in (0, 1)]
    _served(regs[0], X[:1])
    before = predict_graph._traces
    _served(regs[1], X[:1])
    assert predict_graph._traces == before + 1  # its architecture's trial trace is not repeated


@pytest.mark.parametrize("fit_again", ["partial_fit", "warm_start"])
def test_a_continued_fit_keeps_the_traced_path_and_its_answers_follow(fit_again, traced):
    reg, X = _fresh(traced)
    path, traces, before = _state(reg), predict_graph._traces, reg.predict(X[:7])
    y = reg.predict(X) + 30.0
    if fit_again == "partial_fit":
        reg.partial_fit(X, y)
    else:
        reg.set_params(warm_start=True, max_epochs=1).fit(X, y)
    assert _state(reg) is path and predict_graph._traces == traces  # the optimizer edits in place
    after = reg.predict(X[:7])
    assert not np.array_equal(after, before)
    np.testing.assert_array_equal(after, _eager(reg, X[:7]))


def test_past_the_process_limit_models_answer_eagerly(diabetes, monkeypatch):
    monkeypatch.setattr(predict_graph, "_traces", predict_graph.MAX_TRACES)
    X, y = diabetes
    reg = FlashRegressor(max_epochs=1, random_state=0).fit(X, y)
    for _ in range(serving.CALLS_BEFORE_TRACING + 1):
        reg.predict(X[:1])
    assert isinstance(_state(reg), serving._Refused)
    np.testing.assert_array_equal(reg.predict(X[:3]), _eager(reg, X[:3]))


def test_a_call_made_during_a_call_on_the_same_thread_gets_its_own_answers(traced):
    reg, X = _fresh(traced)
    path = _state(reg)
    first, inner_rows = X[:2], X[10:12]
    expected, inner_expected = _eager(reg, first), _eager(reg, inner_rows)
    graph, inner = path.graph, []

    def interrupted(*args):  # as a garbage-collector callback or signal handler might
        if not inner:
            inner.append(None)
            inner[0] = reg.predict(inner_rows)
        return graph(*args)

    path.graph = interrupted
    try:
        outer = reg.predict(first)
    finally:
        path.graph = graph
    np.testing.assert_array_equal(outer, expected)
    np.testing.assert_array_equal(inner[0], inner_expected)


def test_a_call_made_during_a_trace_may_trace_another_model(diabetes, monkeypatch):
    X, y = diabetes
    regs = [FlashRegressor(max_epochs=1, random_state=s).fit(X, y) for s in (0, 1)]
    for reg in regs:
        for _ in range(serving.CALLS_BEFORE_TRACING - 1):
            reg.predict(X[:1])
    trace, inner = predict_graph._trace, []

    def interrupted(*args):
        if not inner:
            inner.append(None)
            inner[0] = regs[1].predict(X[:1])  # due to trace: the lock is re-entrant
        return trace(*args)

    monkeypatch.setattr(predict_graph, "_trace", interrupted)
    done = threading.Event()
    worker = threading.Thread(target=lambda: (regs[0].predict(X[:1]), done.set()), daemon=True)
    worker.start()
    assert done.wait(60)
    assert isinstance(_state(regs[1]), serving.TracedPath)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork only")
def test_a_process_forked_during_a_trace_can_trace_again():
    with serving._BUILDING:  # a trace in progress in this thread
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads
            pid = os.fork()
        if pid == 0:  # the child: its lock is free
            try:
                acquired = serving._BUILDING.acquire(timeout=5)
                os._exit(0 if acquired else 1)
            except BaseException:
                os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_a_classifier_changed_by_hand_answers_as_eager(diabetes):
    X, y = diabetes
    clf = FlashClassifier(max_epochs=2, random_state=0).fit(X, y > 140)
    _served(clf, X[:1])
    clf.task_.model.head.register_forward_hook(lambda module, args, out: -out)
    np.testing.assert_array_equal(clf.predict_proba(X[:5]), _eager(clf, X[:5]))
    gc.collect()


def test_predict_leaves_the_layers_modes_alone_during_the_call(diabetes, monkeypatch):
    from skflash.estimators import prediction

    X, y = diabetes
    reg = FlashRegressor(max_epochs=2, random_state=0, n_ensemble="auto", backbone__dropout=0.3)
    reg.fit(X, y)
    expected = reg.predict(X[:6])
    network = reg.task_.model
    network.train()  # as a fit running in another thread leaves it
    modes_seen, twin_of = [], prediction.eval_twin

    def watched_twin(task):
        twin = twin_of(task)

        def forward(batch):
            modes_seen.append(all(module.training for module in network.modules()))
            return twin(batch)

        return forward

    monkeypatch.setattr(prediction, "eval_twin", watched_twin)
    np.testing.assert_array_equal(reg.predict(X[:6]), expected)
    assert modes_seen == [True]  # the network itself was never switched to eval


@pytest.mark.parametrize("dropout", [0.0, 0.5])
def test_predicts_beside_partial_fit_neither_fail_nor_change_its_training(dropout, diabetes):
    X, y = diabetes

    def trained(predict_meanwhile: bool) -> tuple[np.ndarray, list]:
        reg = FlashRegressor(max_epochs=2, random_state=0, backbone__dropout=dropout).fit(X, y)
        stop, problems = threading.Event(), []

        def serve() -> None:
            while not stop.is_set():
                try:  # the weights read may be mid-step: only the answers' form is known
                    answers = reg.predict(X[:120])
                    if answers.shape != (120,) or not np.isfinite(answers).all():
                        problems.append(answers.shape)
                except Exception as error:  # any failure is the defect
                    problems.append(repr(error))

        servers = [threading.Thread(target=serve) for _ in range(3 if predict_meanwhile else 0)]
        for server in servers:
            server.start()
        for _ in range(4):
            reg.partial_fit(X, y)
        stop.set()
        for server in servers:
            server.join()
        return reg.predict(X[:20]), problems

    alone, _ = trained(False)
    beside, problems = trained(True)
    assert problems == []
    np.testing.assert_array_equal(beside, alone)


def test_the_model_watch_holds_its_task_weakly(diabetes):
    import sys

    from skflash.estimators.model_watch import ModelWatch

    task = FlashRegressor(max_epochs=1, random_state=0).fit(*diabetes).task_
    before = sys.getrefcount(task)
    watch = ModelWatch(task)  # kept on the Task itself: a strong reference makes a cycle
    assert sys.getrefcount(task) == before
    assert watch.task() is task and watch.unchanged()
