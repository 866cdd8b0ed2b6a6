"""n_ensemble: members trained side by side, each on its own loss, averaged at predict."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from torch import nn

from skflash import FlashClassifier, FlashRegressor, RegressionTask
from skflash.core.ensemble import EnsembleLinear, EnsembleMean

FAST = {"max_epochs": 5, "random_state": 0}


def test_ensemble_linear_is_k_linear_layers():
    torch.manual_seed(0)
    layer = EnsembleLinear(5, 3, k=4)
    x = torch.randn(7, 5)
    stacked = torch.stack([x @ layer.weight[i] + layer.bias[i] for i in range(4)])
    torch.testing.assert_close(layer(x), stacked)  # (batch, in): every member sees x
    members = torch.randn(4, 7, 5)
    stacked = torch.stack([members[i] @ layer.weight[i] + layer.bias[i] for i in range(4)])
    torch.testing.assert_close(layer(members), stacked)


@pytest.mark.parametrize("combine", ["mean", "softmax", "sigmoid"])
def test_members_are_kept_apart_in_training_and_combined_in_eval(combine):
    outputs = torch.randn(4, 6, 3) * 5
    mean = EnsembleMean(4, combine)
    torch.testing.assert_close(mean(outputs), outputs.flatten(0, 1))  # training mode
    combined = mean.eval()(outputs)
    if combine == "mean":
        torch.testing.assert_close(combined, outputs.mean(0))
    elif combine == "softmax":
        torch.testing.assert_close(combined.softmax(-1), outputs.softmax(-1).mean(0))
    else:
        torch.testing.assert_close(combined.sigmoid(), outputs.sigmoid().mean(0))
    with pytest.raises(ValueError, match="combine"):
        EnsembleMean(4, "median")


def test_training_loss_is_the_mean_of_the_members_losses():
    torch.manual_seed(0)
    task = RegressionTask(3, backbone="mlp", n_ensemble=4, loss_fn="mse")
    assert task.n_ensemble == 4
    x, y = torch.randn(10, 3), torch.randn(10)
    w = torch.rand(10)
    loss = task.step((x, y, w), 0)["loss"]
    members = task.model.head(task.model.backbone(x)).squeeze(-1)  # (4, 10)
    each = [(w * (members[i] - y) ** 2).sum() / w.sum() for i in range(4)]
    torch.testing.assert_close(loss, torch.stack(each).mean())
    task.eval()
    torch.testing.assert_close(task(x).squeeze(-1), members.mean(0))
    assert RegressionTask(3, backbone="mlp").n_ensemble == 1


def test_regressor_predicts_the_members_mean_and_round_trips():
    X, y = load_diabetes(return_X_y=True)
    reg = FlashRegressor(max_epochs=40, random_state=0, n_ensemble=4, backbone__hidden_sizes=(16,))
    reg.fit(X, y)
    head = reg.task_.model.head
    assert isinstance(head, EnsembleLinear) and head.weight.shape == (4, 16, 1)
    assert reg.score(X, y) > 0.2
    again = pickle.loads(pickle.dumps(reg))
    np.testing.assert_array_equal(again.predict(X), reg.predict(X))
    linear = FlashRegressor(**FAST, n_ensemble=3, backbone="linear").fit(X, y)
    assert linear.task_.model.head.weight.shape == (3, 10, 1)


def test_classifier_averages_probabilities_binary_and_multiclass():
    for X, y in (load_iris(return_X_y=True), load_breast_cancer(return_X_y=True)):
        clf = FlashClassifier(**FAST, n_ensemble=4, standardize_inputs=False).fit(X, y)
        model = clf.task_.model
        binary = len(clf.classes_) == 2
        assert model.members.combine == ("sigmoid" if binary else "softmax")
        with torch.no_grad():
            x = torch.as_tensor(X, dtype=clf.task_.dtype)
            members = model.head(model.backbone(x))  # (4, rows, logits)
        if binary:
            members = torch.cat([1 - members.sigmoid(), members.sigmoid()], dim=-1)
        else:
            members = members.softmax(-1)
        np.testing.assert_allclose(clf.predict_proba(X), members.mean(0).numpy(), atol=1e-6)
        np.testing.assert_array_equal(clf.predict(X), clf.classes_[members.mean(0).argmax(-1)])


def test_sample_weights_and_early_stopping_with_an_ensemble():
    X, y = load_breast_cancer(return_X_y=True)
    weight = np.where(y == 1, 1.0, 3.0)
    clf = FlashClassifier(**FAST, n_ensemble=2, early_stopping=True).fit(X, y, sample_weight=weight)
    assert clf.best_epoch_ is not None and clf.score(X, y) > 0.8


def test_ensemble_needs_a_registry_mlp_or_linear_backbone():
    X, y = load_diabetes(return_X_y=True)
    with pytest.raises(ValueError, match="n_ensemble"):
        FlashRegressor(**FAST, n_ensemble=2, backbone=nn.Linear(10, 1)).fit(X, y)
    with pytest.raises(ValueError, match="n_ensemble"):
        FlashRegressor(**FAST, n_ensemble=0).fit(X, y)


def test_onnx_graph_of_an_ensemble_gives_the_mean_probabilities(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    X, y = load_iris(return_X_y=True)
    clf = FlashClassifier(**FAST, n_ensemble=3).fit(X, y)
    session = ort.InferenceSession(clf.to_onnx(tmp_path / "model.onnx"))
    probabilities, _ = session.run(None, {"numeric": X.astype(np.float32)})
    np.testing.assert_allclose(probabilities, clf.predict_proba(X), atol=1e-4)


def test_auto_ensemble_is_two_regressor_members_on_registry_backbones_only():
    X, y = load_diabetes(return_X_y=True)
    reg = FlashRegressor(max_epochs=1, random_state=0).fit(X, y)
    assert reg.n_ensemble == "auto" and reg.task_.n_ensemble == 2
    module = FlashRegressor(max_epochs=1, backbone=nn.Linear(10, 1)).fit(X, y)
    assert module.task_.n_ensemble == 1  # "auto" never refuses a module backbone
    clf = FlashClassifier(max_epochs=1, random_state=0).fit(*load_iris(return_X_y=True))
    assert clf.task_.n_ensemble == 1
    with pytest.raises(ValueError, match="n_ensemble"):
        FlashRegressor(n_ensemble="two").fit(X, y)


@pytest.mark.parametrize("Estimator", [FlashRegressor, FlashClassifier])
def test_models_pickled_before_ensembles_and_smoothing_existed_still_load(Estimator):
    X, y = load_breast_cancer(return_X_y=True)
    kwargs = {"label_smoothing": 0.0} if Estimator is FlashClassifier else {}
    model = Estimator(max_epochs=2, n_ensemble=1, random_state=0, **kwargs).fit(X, y)
    state = model.__getstate__()
    for name in ("n_ensemble", "label_smoothing"):  # unknown to the earlier version
        state["_network_params"].pop(name, None)
    loaded = Estimator.__new__(Estimator)
    loaded.__setstate__(state)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
