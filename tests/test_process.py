"""Preprocess hooks: order, stage prefixes, dataset injection, flags and errors."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data._utils.collate import default_collate

import skflash as flash
from skflash.data.auto_dataset import AutoDataset, IterableAutoDataset
from skflash.data.data_module import DataModule
from skflash.data.pipeline import DataPipeline, HookError
from skflash.data.process import PREPROCESS_HOOKS, Postprocess, Preprocess
from tests.conftest import QUIET


class Recording(Preprocess):
    """Records every hook call with the stage flags it saw."""

    def __init__(self):
        self.calls = []

    def _record(self, name):
        flags = (self.training, self.validating, self.testing, self.predicting)
        self.calls.append((name, self.running_stage, flags))

    def load_data(self, data, dataset):
        self._record("load_data")
        dataset.loaded_by = "load_data"
        return list(data)

    def load_sample(self, sample):
        self._record("load_sample")
        return sample

    def pre_tensor_transform(self, sample):
        self._record("pre_tensor_transform")
        return sample

    def to_tensor_transform(self, sample):
        self._record("to_tensor_transform")
        return torch.tensor(sample, dtype=torch.float32)

    def post_tensor_transform(self, sample):
        self._record("post_tensor_transform")
        return sample

    def collate(self, samples):
        self._record("collate")
        return default_collate(samples)

    def per_batch_transform(self, batch):
        self._record("per_batch_transform")
        return batch

    def per_batch_transform_on_device(self, batch):
        self._record("per_batch_transform_on_device")
        return batch


class OnDevice(Recording):
    per_batch_transform = Preprocess.per_batch_transform

    def per_sample_transform_on_device(self, sample):
        self._record("per_sample_transform_on_device")
        return sample


def _order(calls):
    seen = []
    for name, _, _ in calls:
        if name not in seen:
            seen.append(name)
    return seen


def _run_one_batch(preprocess, stage="train"):
    pipeline = DataPipeline(preprocess)
    dataset = AutoDataset([[1.0, 2.0], [3.0, 4.0]], pipeline, stage)
    batch = next(iter(pipeline.dataloader(dataset, batch_size=2)))
    transform = pipeline.device_transform(stage)
    return transform(batch) if transform else batch


def test_hooks_run_in_contract_order():
    preprocess = Recording()
    _run_one_batch(preprocess)
    expected = [h for h in PREPROCESS_HOOKS if h != "per_sample_transform_on_device"]
    assert _order(preprocess.calls) == expected


def test_collate_moves_to_device_with_per_sample_transform_on_device():
    preprocess = OnDevice()
    batch = _run_one_batch(preprocess)
    order = _order(preprocess.calls)
    assert order.index("per_sample_transform_on_device") < order.index("collate")
    assert order[-1] == "per_batch_transform_on_device"
    assert torch.equal(batch, torch.tensor([[1.0, 2.0], [3.0, 4.0]]))


def test_collate_placement_error():
    class Both(Recording):
        def per_sample_transform_on_device(self, sample):
            return sample

    with pytest.raises(ValueError, match="per_batch_transform and per_sample_transform_on_device"):
        _run_one_batch(Both())


def test_stage_flags_and_prefix_resolution():
    class Prefixed(Preprocess):
        def __init__(self):
            self.seen = []

        def load_data(self, data):
            self.seen.append(("plain", self.running_stage))
            return data

        def fit_load_data(self, data):
            self.seen.append(("fit", self.running_stage, self.training or self.validating))
            return data

        def val_load_data(self, data):
            self.seen.append(("val", self.running_stage, self.validating))
            return data

        def predict_load_data(self, data):
            self.seen.append(("predict", self.running_stage, self.predicting))
            return data

    preprocess = Prefixed()
    pipeline = DataPipeline(preprocess)
    for stage in ("train", "val", "test", "predict"):
        AutoDataset([1, 2], pipeline, stage)
    assert preprocess.seen == [
        ("fit", "train", True),
        ("val", "val", True),
        ("plain", "test"),
        ("predict", "predict", True),
    ]
    assert pipeline.hook_name("load_data", "train") == "fit_load_data"
    assert pipeline.hook_name("to_tensor_transform", "train") is None
    assert preprocess.running_stage is None  # flags are reset after each hook


def test_dataset_is_injected_only_when_asked():
    class Injection(Preprocess):
        def load_data(self, data, dataset):
            dataset.num_inputs = 3
            return data

        def load_sample(self, sample, dataset):
            return sample * dataset.num_inputs

        def to_tensor_transform(self, sample):
            return torch.tensor(sample)

    dataset = AutoDataset([1, 2], Injection(), "train")
    assert dataset.num_inputs == 3
    assert int(dataset[1]) == 6


def test_failing_hook_names_hook_and_stage():
    class Broken(Preprocess):
        def predict_to_tensor_transform(self, sample):
            raise KeyError("boom")

    pipeline = DataPipeline(Broken())
    dataset = AutoDataset([1], pipeline, "predict")
    with pytest.raises(
        HookError, match=r"Broken.predict_to_tensor_transform.*'predict' stage.*boom"
    ):
        next(iter(pipeline.dataloader(dataset, batch_size=1)))


def test_batched_fetch_when_no_per_sample_hook():
    from skflash.data.samples import ArraySamples

    class Batched(Preprocess):
        def load_data(self, data):
            return ArraySamples(torch.arange(10.0).reshape(5, 2), torch.arange(5.0))

        def per_batch_transform(self, batch):
            x, y = batch
            return x * 2, y

    pipeline = DataPipeline(Batched())
    dataset = AutoDataset(None, pipeline, "train")
    assert dataset.fetches_batches
    x, y = next(iter(pipeline.dataloader(dataset, batch_size=4)))
    assert torch.equal(x, torch.arange(8.0).reshape(4, 2) * 2)
    assert torch.equal(y, torch.arange(4.0))

    # A per-sample hook turns the batched path off and still gives the same batches.
    class PerSample(Batched):
        def post_tensor_transform(self, sample):
            return sample

    pipeline = DataPipeline(PerSample())
    dataset = AutoDataset(None, pipeline, "train")
    assert not dataset.fetches_batches
    x2, y2 = next(iter(pipeline.dataloader(dataset, batch_size=4)))
    assert torch.equal(x, x2) and torch.equal(y, y2)


def test_iterable_auto_dataset_streams():
    class Stream(Preprocess):
        def load_data(self, data):
            return iter(data)

        def to_tensor_transform(self, sample):
            return torch.tensor([float(sample)])

    dataset = IterableAutoDataset(range(5), Stream(), "train")
    loader = DataPipeline(Stream()).dataloader(dataset, batch_size=2, shuffle=True)
    assert [b.shape[0] for b in loader] == [2, 2, 1]


def test_device_hooks_run_inside_trainer():
    class Scale(Preprocess):
        def __init__(self):
            self.device_stages = set()

        def load_data(self, data):
            from skflash.data.samples import ArraySamples

            return ArraySamples(*data)

        def per_batch_transform_on_device(self, batch):
            self.device_stages.add(self.running_stage)
            return batch

    x, y = torch.randn(20, 3), torch.randn(20, 1)
    preprocess = Scale()
    dm = DataModule.from_load_data_inputs(
        (x, y), val_load_data_input=(x, y), preprocess=preprocess, batch_size=8
    )
    task = flash.Task(torch.nn.Linear(3, 1), loss_fn=torch.nn.functional.mse_loss)
    flash.Trainer(max_epochs=1, **QUIET).fit(task, datamodule=dm)
    assert preprocess.device_stages == {"train", "val"}
    assert task.preprocess is preprocess


def test_postprocess_hooks_and_saving(tmp_path):
    class Double(Postprocess):
        def per_batch_transform(self, batch):
            return batch * 2

        def per_sample_transform(self, sample):
            return float(sample)

    task = flash.Task(
        torch.nn.Linear(2, 1, bias=False), postprocess=Double(save_path=tmp_path / "p.pt")
    )
    torch.nn.init.ones_(task.model.weight)
    out = task.predict(torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
    assert out == [6.0, 14.0]
    assert torch.load(tmp_path / "p.pt") == [6.0, 14.0]

    class PerSample(Postprocess):
        def save_sample(self, sample, path):
            path.write_text(str(float(sample)))

    task.postprocess = PerSample(save_path=tmp_path / "s.txt")
    task.predict(torch.tensor([[1.0, 1.0], [2.0, 2.0]]))
    assert (tmp_path / "s_0.txt").read_text() == "2.0"
    assert (tmp_path / "s_1.txt").read_text() == "4.0"
