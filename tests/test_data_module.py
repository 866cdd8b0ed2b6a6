"""DataModule: seeded val_split, no dropped samples, workers, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from skflash.data.data_module import DataModule
from skflash.data.numpy_data import NumpyDataModule, NumpyPreprocess
from skflash.data.process import Preprocess


class Rows(Preprocess):
    def load_data(self, data):
        return list(data)

    def to_tensor_transform(self, sample):
        return torch.tensor(sample)


def _val_values(seed):
    dm = DataModule.from_load_data_inputs(
        list(range(100)), preprocess=Rows(), val_split=0.2, seed=seed
    )
    return sorted(int(v) for v in dm.val_dataset), sorted(int(v) for v in dm.train_dataset)


def test_val_split_is_reproducible_and_complete():
    val_a, train_a = _val_values(7)
    val_b, _ = _val_values(7)
    val_c, _ = _val_values(8)
    assert val_a == val_b
    assert val_a != val_c
    assert len(val_a) == 20
    assert sorted(val_a + train_a) == list(range(100))


def test_val_split_runs_val_stage_hooks():
    class Staged(Rows):
        def val_to_tensor_transform(self, sample):
            return torch.tensor(-sample)

    dm = DataModule.from_load_data_inputs(list(range(1, 11)), preprocess=Staged(), val_split=0.5)
    dm.batch_size = 10
    assert all(int(v) < 0 for v in next(iter(dm.val_dataloader())))
    assert all(int(v) > 0 for v in next(iter(dm.train_dataloader())))


@pytest.mark.parametrize("bad", [0, 1, -0.1, 1.5])
def test_val_split_out_of_range(bad):
    with pytest.raises(ValueError, match=r"val_split must be a fraction in \(0, 1\)"):
        DataModule.from_load_data_inputs(list(range(10)), preprocess=Rows(), val_split=bad)


def test_no_sample_is_dropped_and_shuffle_is_seeded():
    dm = DataModule.from_load_data_inputs(list(range(10)), preprocess=Rows(), batch_size=4, seed=3)
    loader = dm.train_dataloader()
    batches = list(loader)
    assert [len(b) for b in batches] == [4, 4, 2]
    assert sorted(torch.cat(batches).tolist()) == list(range(10))
    first = torch.cat(batches).tolist()
    assert first != list(range(10))  # shuffled
    assert torch.cat(list(loader)).tolist() != first  # a new order each epoch
    twin = DataModule.from_load_data_inputs(
        list(range(10)), preprocess=Rows(), batch_size=4, seed=3
    )
    assert torch.cat(list(twin.train_dataloader())).tolist() == first  # the seed fixes it
    other = DataModule.from_load_data_inputs(
        list(range(10)), preprocess=Rows(), batch_size=4, seed=4
    )
    assert torch.cat(list(other.train_dataloader())).tolist() != first


def test_num_workers_is_honoured():
    dm = DataModule.from_load_data_inputs(
        list(range(10)), preprocess=Rows(), batch_size=5, num_workers=2
    )
    loader = dm.train_dataloader()
    assert loader.num_workers == 2
    assert sorted(torch.cat(list(loader)).tolist()) == list(range(10))


def test_missing_stages_have_no_loader():
    dm = DataModule.from_load_data_inputs(list(range(4)), preprocess=Rows())
    assert dm.val_dataloader is None and dm.test_dataloader is None
    dm = DataModule.from_load_data_inputs(
        list(range(4)), val_load_data_input=[1], preprocess=Rows()
    )
    assert len(dm.val_dataloader()) == 1


def test_numpy_datamodule_standardises_batches_without_copying():
    rng = np.random.default_rng(0)
    x = rng.normal(5.0, 3.0, size=(200, 4))
    y = x @ np.array([1.0, 2.0, 3.0, 4.0])
    x_before = x.copy()
    preprocess = NumpyPreprocess(standardize_inputs=True, standardize_target=True)
    dm = NumpyDataModule.from_xy_dataset(
        x, y, preprocess=preprocess, test_size=None, batch_size=200
    )
    xs, ys = next(iter(dm.train_dataloader()))
    assert xs.dtype == torch.float32
    assert torch.allclose(xs.mean(0), torch.zeros(4), atol=1e-5)
    assert torch.allclose(xs.std(0, unbiased=False), torch.ones(4), atol=1e-4)
    assert abs(float(ys.mean())) < 1e-5
    assert dm.num_inputs == 4
    assert np.array_equal(x, x_before)
    # In the training dtype already: the loaded tensor is the caller's memory, only read.
    same = NumpyPreprocess(standardize_inputs=True, dtype=torch.float64)
    dm64 = NumpyDataModule.from_xy_dataset(x, y, preprocess=same, test_size=None)
    assert np.shares_memory(dm64.train_dataset.data.tensors[0].numpy(), x)
    next(iter(dm64.train_dataloader()))
    assert np.array_equal(x, x_before)


def test_numpy_preprocess_rejects_wrong_feature_count():
    x, y = np.ones((10, 3)), np.ones(10)
    dm = NumpyDataModule.from_xy_dataset(x, y, test_size=None)
    from skflash.data.auto_dataset import AutoDataset

    with pytest.raises(ValueError, match="X has 4 features, but the model was trained on 3"):
        AutoDataset(np.ones((2, 4)), dm.data_pipeline, "predict")


def test_plain_torch_datasets_are_accepted():
    x = torch.randn(20, 3)
    y = x.sum(dim=1)
    train = torch.utils.data.TensorDataset(x, y)
    val = torch.utils.data.TensorDataset(x[:6], y[:6])
    dm = DataModule(train_dataset=train, val_dataset=val, batch_size=4)
    batches = list(dm.train_dataloader())
    assert len(batches) == 5 and batches[0][0].shape == (4, 3)
    assert sum(len(b[0]) for b in dm.val_dataloader()) == 6
