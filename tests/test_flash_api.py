"""Details of Lightning Flash's original core API that skflash keeps.

Each test states one behaviour of Flash's registry, ``Trainer.finetune``,
``Trainer.predict``, ``Task.configure_optimizers``, the DataModule, AutoDataset and the
hooks (see "Details of the original API kept" in docs/flash-core-contract.md) in our own
words.
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
from skflash.data.auto_dataset import AutoDataset
from skflash.data.data_module import DataModule
from skflash.data.pipeline import DataPipeline
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


# ---------------------------------------------------------------- DataModule(num_workers=None)


def test_num_workers_none_means_one_worker_per_cpu(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 3)
    assert DataModule(num_workers=None).num_workers == 3
    assert DataModule(num_workers=0).num_workers == 0
    monkeypatch.setattr("os.cpu_count", lambda: None)  # unknown count: load in-process
    assert DataModule(num_workers=None).num_workers == 0


# ---------------------------------------------------------------- Task.configure_optimizers


def test_configure_optimizers_returns_the_optimizer_or_lists_with_a_scheduler():
    model = nn.Linear(3, 1)
    task = flash.Task(model, loss_fn=nn.functional.mse_loss, optimizer=torch.optim.Adadelta)
    optimizer = task.configure_optimizers()
    assert isinstance(optimizer, torch.optim.Adadelta)

    scheduled = flash.Task(
        nn.Linear(3, 1),
        loss_fn=nn.functional.mse_loss,
        optimizer="sgd",
        scheduler=torch.optim.lr_scheduler.StepLR,
        scheduler_kwargs={"step_size": 1},
    )
    optimizers, schedulers = scheduled.configure_optimizers()
    assert isinstance(optimizers[0], torch.optim.SGD)
    assert isinstance(schedulers[0], torch.optim.lr_scheduler.StepLR)

    ready = torch.optim.SGD(model.parameters(), lr=0.5)
    given = flash.Task(
        model, loss_fn=nn.functional.mse_loss, optimizer=ready,
        scheduler=torch.optim.lr_scheduler.StepLR(ready, step_size=1),
    )  # fmt: skip
    optimizers, schedulers = given.configure_optimizers()
    assert optimizers == [ready] and schedulers[0].optimizer is ready


def test_a_scheduled_task_trains_with_the_list_form():
    x = torch.randn(32, 3)
    y = x.sum(1, keepdim=True)
    task = flash.Task(
        nn.Linear(3, 1),
        loss_fn=nn.functional.mse_loss,
        optimizer="sgd",
        learning_rate=0.1,
        scheduler="steplr",
        scheduler_kwargs={"step_size": 1, "gamma": 0.5},
    )
    loader = DataLoader(list(zip(x, y, strict=True)), batch_size=8)
    flash.Trainer(max_epochs=2, **QUIET).fit(task, loader)
    assert task.trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(0.025)


# ---------------------------------------------------------------- AutoDataset hook arguments


@pytest.mark.parametrize("wants_dataset", [False, True])
@pytest.mark.parametrize("running_stage", [None, "train"])
def test_auto_dataset_takes_load_functions(wants_dataset, running_stage):
    calls = {"data": 0, "sample": 0}

    if wants_dataset:

        def load_data(data, dataset):
            calls["data"] += 1
            dataset.loaded_by = "function"
            return list(data)

        def load_sample(sample, dataset):
            calls["sample"] += 1
            return (sample, dataset.loaded_by)
    else:

        def load_data(data):
            calls["data"] += 1
            return list(data)

        def load_sample(sample):
            calls["sample"] += 1
            return (sample, None)

    dataset = AutoDataset(
        range(6), load_data=load_data, load_sample=load_sample, running_stage=running_stage
    )
    assert len(dataset) == 6
    items = [dataset[i] for i in range(len(dataset))]
    assert [i for i, _ in items] == list(range(6))
    assert calls == {"data": 1, "sample": 6}
    if wants_dataset:
        assert {tag for _, tag in items} == {"function"}


def test_given_load_functions_replace_only_the_pipelines_loading_hooks():
    class Doubling(Preprocess):
        def load_sample(self, sample):
            raise AssertionError("replaced by the function given")

        def to_tensor_transform(self, sample):
            return torch.tensor(float(sample))

    pipeline = DataPipeline(Doubling())
    dataset = AutoDataset([1, 2, 3], pipeline, "train", load_sample=lambda s: 2 * s)
    assert dataset[2] == 6
    batch = next(iter(pipeline.dataloader(dataset, batch_size=3)))
    assert torch.equal(batch, torch.tensor([2.0, 4.0, 6.0]))
    with pytest.raises(ValueError, match="None is allowed only with load_data"):
        AutoDataset([1], pipeline, None)


# ---------------------------------------------------------------- DataModule.preprocess_cls


class _Offsets(Preprocess):
    def __init__(self, offset=100):
        self.offset = offset

    def load_sample(self, sample):
        return sample + self.offset

    def to_tensor_transform(self, sample):
        return torch.tensor(sample)


def test_datamodule_builds_its_default_preprocess_from_preprocess_cls():
    class OffsetData(DataModule):
        preprocess_cls = _Offsets

    dm = OffsetData.from_load_data_inputs([1, 2], batch_size=2)
    assert isinstance(dm.preprocess, _Offsets)
    assert torch.equal(next(iter(dm.train_dataloader())), torch.tensor([101, 102]))
    assert isinstance(OffsetData().preprocess, _Offsets)  # without data too
    assert type(DataModule().preprocess) is Preprocess


def test_datamodule_subclass_preprocess_property_is_used():
    class Configured(DataModule):
        preprocess_cls = _Offsets

        @property
        def preprocess(self):
            return self.preprocess_cls(offset=10)

    dm = Configured.from_load_data_inputs([1, 2], batch_size=2)
    assert torch.equal(next(iter(dm.train_dataloader())), torch.tensor([11, 12]))


# ---------------------------------------------------------------- current_fn, dataset[i]


def test_hooks_see_which_hook_runs_and_datasets_return_loaded_samples():
    class Watching(Preprocess):
        def __init__(self):
            self.seen = []

        def _note(self, value):
            self.seen.append((self.running_stage, self.current_fn))
            return value

        def train_load_data(self, data):
            return self._note(list(data))

        def load_sample(self, sample):
            return self._note({"x": sample})

        def to_tensor_transform(self, sample):
            return self._note(torch.tensor([float(sample["x"])]))

        def collate(self, samples):
            return self._note(torch.stack(samples))

        def per_batch_transform(self, batch):
            return self._note(batch * 2)

    preprocess = Watching()
    dm = DataModule.from_load_data_inputs([1, 2], preprocess=preprocess, batch_size=2)
    assert preprocess.seen == [("train", "load_data")]
    assert preprocess.current_fn is None  # outside a hook
    # Indexing gives the loaded sample; the tensor transforms run in the loader's collate.
    assert dm.train_dataset[0] == {"x": 1}
    assert preprocess.seen[-1] == ("train", "load_sample")
    preprocess.seen.clear()
    batch = next(iter(dm.train_dataloader()))
    assert torch.equal(batch.sort(0).values, torch.tensor([[2.0], [4.0]]))
    assert [fn for _, fn in preprocess.seen] == [
        "load_sample",
        "load_sample",
        "to_tensor_transform",
        "to_tensor_transform",
        "collate",
        "per_batch_transform",
    ]
    assert {stage for stage, _ in preprocess.seen} == {"train"}
