"""Lightning objects from ``pytorch_lightning`` and from ``lightning.pytorch`` alike."""

from __future__ import annotations

import ast
import pickle
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import pytorch_lightning
import torch

from skflash import FlashClassifier, FlashRegressor
from skflash.data.numpy_data import NumpyPreprocess
from skflash.estimators.assembly import SEEDING
from skflash.estimators.callbacks import TrainingDivergedError
from skflash.lightning_namespaces import CLASSIC, MIRRORED, UNIFIED, module_in, namespace_of

unified = pytest.importorskip("lightning.pytorch")
NAMESPACES = {"pytorch_lightning": pytorch_lightning, "lightning.pytorch": unified}
FAST = {"max_epochs": 3, "random_state": 0}


def _epoch_counter(lightning):
    class EpochCounter(lightning.Callback):
        """Records the epochs it sees where the test can read them (callbacks are copied
        into each fit, class attributes are not)."""

        seen: ClassVar[list[int]] = []

        def on_train_epoch_end(self, trainer, pl_module):
            self.seen.append(trainer.current_epoch)

    return EpochCounter


@pytest.mark.parametrize("name", list(NAMESPACES))
def test_callbacks_loggers_and_checkpoints_of_either_package_are_honoured(diabetes, name, tmp_path):
    X, y = diabetes
    lightning = NAMESPACES[name]
    counter = _epoch_counter(lightning)
    checkpoints = lightning.callbacks.ModelCheckpoint(dirpath=tmp_path / "ckpt", monitor="val_loss")
    reg = FlashRegressor(
        **FAST,
        early_stopping=True,
        callbacks=[counter(), checkpoints],
        trainer__logger=lightning.loggers.CSVLogger(tmp_path / "logs"),
    ).fit(X, y)
    assert counter.seen == [0, 1, 2]
    assert len(list((tmp_path / "ckpt").glob("*.ckpt"))) == 1
    assert list((tmp_path / "logs").rglob("metrics.csv"))
    assert isinstance(reg.task_, lightning.LightningModule)
    plain = FlashRegressor(**FAST, early_stopping=True).fit(X, y)
    np.testing.assert_array_equal(reg.predict(X), plain.predict(X))  # the same training


def test_the_unified_namespace_takes_strategies_accelerators_plugins_and_keeps_training(
    diabetes,
):
    X, y = diabetes
    strategy = unified.strategies.SingleDeviceStrategy(device="cpu")
    reg = FlashRegressor(**FAST, trainer__strategy=strategy).fit(X, y)
    assert isinstance(reg.task_, unified.LightningModule)
    clf = FlashClassifier(
        **FAST,
        accelerator=unified.accelerators.CPUAccelerator(),
        trainer__plugins=[unified.plugins.TorchCheckpointIO()],
    ).fit(X, y > 140)
    assert isinstance(clf.task_, unified.LightningModule)
    loaded = pickle.loads(pickle.dumps(clf))
    assert isinstance(loaded.task_, unified.LightningModule)
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    loaded.partial_fit(X, y > 140)
    assert loaded.n_iter_ == 4


def test_objects_of_both_packages_in_one_fit_are_refused(diabetes):
    X, y = diabetes
    both = [_epoch_counter(unified)(), pytorch_lightning.callbacks.EarlyStopping("val_loss")]
    with pytest.raises(ValueError, match=r"both pytorch_lightning .* and lightning\.pytorch"):
        FlashRegressor(**FAST, callbacks=both).fit(X, y)
    with pytest.raises(ValueError, match="callbacks"):
        FlashRegressor(callbacks=[object()]).fit(X, y)


def test_namespace_of_reads_classes_and_lists():
    assert namespace_of([None, "cpu", {}]) == CLASSIC
    assert namespace_of([[unified.callbacks.EarlyStopping("val_loss")], "cpu"]) == UNIFIED
    assert namespace_of([pytorch_lightning.loggers.CSVLogger("x")]) == CLASSIC


def test_the_unified_copies_share_what_needs_no_namespace():
    training = module_in("skflash.estimators.training", UNIFIED)
    numpy_data = module_in("skflash.data.numpy_data", UNIFIED)
    assert training.Trainer.__mro__[1] is unified.Trainer
    assert issubclass(numpy_data.NumpyDataModule, unified.LightningDataModule)
    assert numpy_data.NumpyPreprocess is NumpyPreprocess  # saved in checkpoints by name
    assert training.SEEDING is SEEDING  # one lock for both namespaces
    assert module_in("skflash.estimators.callbacks", UNIFIED).TrainingDivergedError is (
        TrainingDivergedError
    )
    assert module_in("skflash.data.categories", UNIFIED).__name__ == "skflash.data.categories"


def test_every_module_using_lightning_has_a_unified_copy():
    root = Path(__file__).resolve().parents[1] / "skflash"
    using = set()
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(n.split(".")[0] == "pytorch_lightning" for n in names):
                parts = path.relative_to(root.parent).with_suffix("").parts
                using.add(".".join(p for p in parts if p != "__init__"))
    # skflash: seed_everything (the same in both); lightning_namespaces: type hints only
    assert using - set(MIRRORED) == {"skflash", "skflash.lightning_namespaces"}


def test_a_diverging_fit_in_the_unified_namespace_raises_the_shared_error(diabetes):
    X, y = diabetes
    reg = FlashRegressor(
        optimizer="sgd",
        learning_rate=1e4,
        standardize_target=False,
        max_epochs=20,
        random_state=0,
        callbacks=[_epoch_counter(unified)()],
    )
    with pytest.raises(TrainingDivergedError), torch.no_grad():
        reg.fit(X, y * 1e20)


def test_quiet_fits_silence_both_packages_loggers():
    import logging

    from skflash.estimators.quiet import quiet_lightning

    names = ["pytorch_lightning", "lightning_fabric", "lightning.pytorch", "lightning.fabric"]
    with quiet_lightning():
        assert all(logging.getLogger(n).level == logging.ERROR for n in names)


def test_continuing_with_the_other_package_is_refused_and_keeps_the_model(diabetes):
    X, y = diabetes
    reg = FlashRegressor(**FAST, warm_start=True).fit(X, y)
    before = reg.predict(X)
    reg.set_params(callbacks=[_epoch_counter(unified)()])
    with pytest.raises(ValueError, match="trained with pytorch_lightning and is given"):
        reg.fit(X, y)
    np.testing.assert_array_equal(reg.predict(X), before)
    reg.set_params(warm_start=False).fit(X, y)  # a refit may change package
    assert isinstance(reg.task_, unified.LightningModule)


@pytest.mark.parametrize("name", list(NAMESPACES))
def test_a_users_early_stopping_on_val_loss_replaces_the_built_in_one(diabetes, name):
    X, y = diabetes
    stop = NAMESPACES[name].callbacks.EarlyStopping("val_loss", patience=1, min_delta=1e9)
    reg = FlashRegressor(max_epochs=20, early_stopping=True, callbacks=[stop]).fit(X, y)
    assert len(reg.history_) == 2  # the user's patience and min_delta, not the default
    with pytest.raises(ValueError, match=r"EarlyStopping on 'val_loss'.*early_stopping=True"):
        FlashRegressor(max_epochs=2, callbacks=[stop]).fit(X, y)
