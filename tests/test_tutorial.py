"""The seed tutorial, run end to end with `import skflash as flash`."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
from pytorch_lightning.callbacks import Callback

import skflash as flash
from tests.conftest import QUIET

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "custom_task.py"


def _load_example():
    spec = importlib.util.spec_from_file_location("custom_task", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class LossRecorder(Callback):
    def __init__(self):
        self.losses = []

    def on_train_epoch_end(self, trainer, pl_module):
        self.losses.append(float(trainer.callback_metrics["train_loss"]))


def test_tutorial_runs_and_predicts_five_tensors(tmp_path):
    example = _load_example()
    recorder = LossRecorder()
    _model, predictions = example.main(max_epochs=40, callbacks=[recorder])
    assert len(predictions) == 5
    assert all(isinstance(p, torch.Tensor) and p.shape == (1,) for p in predictions)
    assert recorder.losses[-1] < 0.8 * recorder.losses[0]
    # The Trainer is a plain Lightning Trainer: its logs went to the temporary directory.
    assert (tmp_path / "lightning_logs").exists()


def test_the_tutorials_numpy_hooks_predict_a_tensor_as_its_values():
    example = _load_example()
    from sklearn import datasets

    x, y = datasets.load_diabetes(return_X_y=True)
    datamodule = example.NumpyDataModule.from_xy_dataset(x, y)
    model = example.RegressionTask(num_inputs=datamodule.num_inputs)
    flash.Trainer(max_epochs=1, **QUIET).fit(model, datamodule=datamodule)
    rows = example.PREDICT_ROWS
    assert isinstance(rows, torch.Tensor)  # as in the tutorial
    from_tensor, from_array = model.predict(rows), model.predict(rows.numpy())
    assert all(torch.equal(a, b) for a, b in zip(from_tensor, from_array, strict=True))
    with pytest.raises(TypeError, match="predict_to_tensor_transform raised TypeError"):
        model.predict(rows.tolist())  # lists are not arrays: the hook's own error, named


def test_tutorial_datamodule_metadata():
    example = _load_example()
    from sklearn import datasets

    x, y = datasets.load_diabetes(return_X_y=True)
    dm = example.NumpyDataModule.from_xy_dataset(x, y)
    assert dm.num_inputs == 10
    assert len(dm.train_dataset) + len(dm.test_dataset) == len(x)
