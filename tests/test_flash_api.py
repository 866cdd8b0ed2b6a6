"""Details of Lightning Flash's original core API that skflash keeps.

Each test states one behaviour of Flash's registry, ``Trainer.finetune`` or
``Trainer.predict`` (see "Details of the original API kept" in
docs/flash-core-contract.md) in our own words.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from lightning_fabric.utilities.exceptions import MisconfigurationException
from torch import nn
from torch.utils.data import DataLoader

import skflash as flash
from skflash.core.backbones import TABULAR_BACKBONES
from skflash.core.finetuning import (
    FinetuningStrategyError,
    Freeze,
    UnfreezeMilestones,
    finetuning_callback,
)
from skflash.core.registry import FlashRegistry
from skflash.data.data_module import DataModule
from skflash.data.process import Postprocess, Preprocess
from skflash.tasks import ClassificationTask
from tests.conftest import QUIET


def _factory(width_in=5, width_out=6):
    return nn.Linear(width_in, width_out), width_in, width_out


# ---------------------------------------------------------------- FlashRegistry


def test_get_without_strict_lists_every_match_and_filters_on_metadata():
    zoo = FlashRegistry("zoo")
    zoo(_factory, name="net")
    zoo(_factory, name="net", override=True)  # replaces, does not add
    assert zoo.get("net", strict=False) == [_factory]
    for source, family in [("hub", "res"), ("vision", "res"), ("hub", "dense"), ("hub", "alex")]:
        zoo(_factory, name="net", source=source, family=family)

    from_hub = zoo.get("net", strict=False, source="hub")
    assert len(from_hub) == 3 and all(fn is _factory for fn in from_hub)
    entries = zoo.get("net", with_metadata=True, strict=False, family="res")
    assert [e["metadata"]["source"] for e in entries] == ["hub", "vision"]

    # Strict: the one function (or entry) that the filters leave.
    one = zoo.get("net", with_metadata=True, source="hub", family="res")
    assert one["name"] == "net" and one["metadata"] == {"source": "hub", "family": "res"}
    assert zoo.get("net", source="vision") is _factory
    # A filter on a key an entry lacks does not match that entry.
    with pytest.raises(KeyError, match="Found no matches"):
        zoo.get("net", extra=None)
    with pytest.raises(KeyError, match="5 entries are registered as 'net'"):
        zoo.get("net")


def test_available_keys_has_one_key_per_entry():
    zoo = FlashRegistry("zoo")
    zoo(_factory)
    for version in range(3):
        zoo(_factory, name="net", version=version)
    assert zoo.available_keys() == ["_factory", "net", "net", "net"]
    # The registries skflash ships register each backbone once.
    assert TABULAR_BACKBONES.available_keys() == ["linear", "mlp"]
    assert TABULAR_BACKBONES.get("mlp")(3)[1] == 64


def test_registration_errors_are_lightning_misconfigurations():
    zoo = FlashRegistry("zoo")
    zoo(_factory, name="net")
    with pytest.raises(
        MisconfigurationException, match="You can only register a function, found: Linear"
    ):
        zoo(nn.Linear(1, 1), name="net2")
    with pytest.raises(TypeError):  # and still a TypeError, as before
        zoo(nn.Linear(1, 1), name="net2")
    with pytest.raises(
        MisconfigurationException, match=r"Function with name: net and metadata: \{\}"
    ):
        zoo(_factory, name="net")
    with pytest.raises(TypeError, match="`name` must be a str"):
        zoo(name=float)
    zoo.remove("net")
    with pytest.raises(KeyError, match="Key: net is not in FlashRegistry"):
        zoo.get("net")


def test_verbose_registration_logs_each_entry(caplog):
    zoo = FlashRegistry("zoo", verbose=True)
    with caplog.at_level(logging.INFO, logger="skflash.core.registry"):

        @zoo
        @zoo(name="second")
        @zoo(name="first", tagged=True)
        def build():
            return 1

    assert caplog.messages == [
        "Registering: build function with name: first and metadata: {'tagged': True}",
        "Registering: build function with name: second and metadata: {}",
        "Registering: build function with name: build and metadata: {}",
    ]
    assert len(zoo) == 3 and {"first", "second", "build"} <= set(zoo.available_keys())

    quiet = FlashRegistry("quiet")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="skflash.core.registry"):
        quiet(build)
        quiet.register(build, name="loud", verbose=True)
        zoo.register(build, name="hushed", verbose=False)
    assert caplog.messages == ["Registering: build function with name: loud and metadata: {}"]


# ---------------------------------------------------------------- Trainer.finetune


@pytest.mark.parametrize("strategy", [None, "thaw", 3])
def test_finetune_without_a_known_strategy_is_a_misconfiguration(strategy):
    task = ClassificationTask(2, 3)
    with pytest.raises(FinetuningStrategyError) as error:
        flash.Trainer(**QUIET).finetune(task, strategy=strategy)
    assert isinstance(error.value, MisconfigurationException)
    assert isinstance(error.value, ValueError)
    for name in ["no_freeze", "freeze", "freeze_unfreeze", "unfreeze_milestones"]:
        assert name in str(error.value)


def test_strategy_names_ignore_case():
    assert isinstance(finetuning_callback("FREEZE"), Freeze)
    assert isinstance(finetuning_callback(("Unfreeze_Milestones", (1, 2))), UnfreezeMilestones)


# ---------------------------------------------------------------- Trainer.predict


def test_trainer_predict_returns_postprocessed_samples_per_batch():
    torch.manual_seed(0)
    task = ClassificationTask(4, 10)  # its Postprocess turns logits into class indices
    inputs = torch.randn(9, 4)
    loader = DataLoader(inputs, batch_size=3)
    predictions = flash.Trainer(**QUIET).predict(task, dataloaders=loader)
    assert len(predictions) == 3
    for batch in predictions:
        assert isinstance(batch, list) and len(batch) == 3
        assert all(0 <= int(label) < 10 for label in batch)
    assert [int(p) for batch in predictions for p in batch] == [
        int(p) for p in task.predict(inputs)
    ]


class _Offset(Postprocess):
    def per_batch_transform(self, batch):
        return batch + 1

    def per_sample_transform(self, sample):
        return sample * 10


class _Floats(Preprocess):
    def to_tensor_transform(self, sample):
        return torch.as_tensor(sample, dtype=torch.float32)


def test_trainer_predict_uses_the_datamodule_postprocess_in_order():
    task = flash.Task(nn.Identity(), loss_fn=nn.functional.mse_loss)
    data = np.arange(10, dtype=np.float32).reshape(5, 2)
    dm = DataModule.from_load_data_inputs(
        predict_load_data_input=data, preprocess=_Floats(), postprocess=_Offset(), batch_size=2
    )
    predictions = flash.Trainer(**QUIET).predict(task, datamodule=dm)
    assert [len(batch) for batch in predictions] == [2, 2, 1]
    samples = [s.tolist() for batch in predictions for s in batch]
    assert samples == ((data + 1) * 10).tolist()  # per batch, uncollated, then per sample

    # Several dataloaders: one such list per dataloader.
    loaders = [DataLoader(torch.zeros(4, 2), batch_size=2), DataLoader(torch.ones(1, 2))]
    task.postprocess = _Offset()
    per_loader = flash.Trainer(**QUIET).predict(task, dataloaders=loaders)
    assert [[len(b) for b in loader] for loader in per_loader] == [[2, 2], [1]]
    assert per_loader[1][0][0].tolist() == [20.0, 20.0]
    # Without returned predictions there is nothing to postprocess.
    assert flash.Trainer(**QUIET).predict(task, loaders[0], return_predictions=False) is None
