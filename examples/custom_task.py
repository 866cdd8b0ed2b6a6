"""
A custom Task with the Flash API
================================

Lightning Flash's custom-task tutorial, run with ``import skflash as flash``: a linear
regression :class:`~skflash.Task` on scikit-learn's diabetes data, a
:class:`~skflash.DataModule` built from numpy arrays, and a
:class:`~skflash.data.process.Preprocess` whose hooks turn raw rows into tensors, for
training and for prediction alike.

Run ``python examples/custom_task.py --max-epochs 50`` for a quicker run.
"""

# %%
# 1. Imports
# ----------

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
import torch
from pytorch_lightning import seed_everything
from sklearn import datasets
from sklearn.model_selection import train_test_split
from torch import Tensor, nn

import skflash as flash
from skflash.data.auto_dataset import AutoDataset
from skflash.data.process import Preprocess

ND = np.ndarray


# %%
# 2. The Task: linear regression
# -------------------------------
# A Task holds the model, the loss, the optimizer and the metrics. Most Tasks only
# override ``__init__`` and ``forward``: the default ``step`` feeds ``forward``'s output
# to ``loss_fn`` for training, validation and testing alike (override ``step``, or
# Lightning's ``training_step`` and the others, for anything else).
class RegressionTask(flash.Task):
    def __init__(self, num_inputs, learning_rate=0.001, metrics=None):
        # what kind of model do we want?
        model = nn.Linear(num_inputs, 1)
        # what loss function do we want?
        loss_fn = torch.nn.functional.mse_loss
        # what optimizer to do we want?
        optimizer = torch.optim.SGD
        super().__init__(
            model=model,
            loss_fn=loss_fn,
            optimizer=optimizer,
            metrics=metrics,
            learning_rate=learning_rate,
        )

    def forward(self, x):
        return self.model(x)


# %%
# 3.b The Preprocess API
# ----------------------
# (Defined before the DataModule, which uses it as a default argument.) A Preprocess is a
# set of hooks over the data path: ``load_data`` turns the stage's input into samples,
# ``to_tensor_transform`` makes tensors of each one, and ``predict_``-prefixed hooks
# handle raw rows at inference, so the trained Task predicts on raw data.
class NumpyPreprocess(Preprocess):
    def load_data(self, data: tuple[ND, ND], dataset: AutoDataset) -> list[tuple[ND, float]]:
        if self.training:
            dataset.num_inputs = data[0].shape[1]
        return [(x, y) for x, y in zip(*data, strict=False)]

    def to_tensor_transform(self, sample: Any) -> tuple[Tensor, Tensor]:
        x, y = sample
        x = torch.from_numpy(x).float()
        y = torch.tensor(y, dtype=torch.float)
        return x, y

    def predict_load_data(self, data: ND) -> ND:
        return data

    def predict_to_tensor_transform(self, sample: ND) -> ND:
        return torch.from_numpy(sample).float()


# %%
# 3.a The DataModule API
# ----------------------
# ``from_xy_dataset`` splits the arrays and hands each stage's input to the Preprocess
# through :meth:`~skflash.DataModule.from_load_data_inputs`, which connects the
# Preprocess to the DataModule (and so to the Task fitted on it).
class NumpyDataModule(flash.DataModule):
    @classmethod
    def from_xy_dataset(
        cls,
        x: ND,
        y: ND,
        preprocess_cls: Preprocess = NumpyPreprocess,
        batch_size: int = 64,
        num_workers: int = 0,
    ):
        preprocess = preprocess_cls()
        x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.20, random_state=0)
        # Make sure to call ``from_load_data_inputs``.
        dm = cls.from_load_data_inputs(
            train_load_data_input=(x_train, y_train),
            test_load_data_input=(x_test, y_test),
            preprocess=preprocess,  # DON'T FORGET TO PROVIDE THE PREPROCESS
            batch_size=batch_size,
            num_workers=num_workers,
        )
        # Some metadata can be accessed from ``train_ds`` directly.
        dm.num_inputs = dm.train_dataset.num_inputs
        return dm


# %%
# 4. Fitting and 5. Predicting
# ----------------------------
# The ``flash.Trainer`` is a Lightning Trainer; the fitted Task predicts raw rows (five
# rows of the diabetes data here, as a tensor, as the tutorial gives them: its
# ``predict_to_tensor_transform`` is written for numpy rows, and gets their values), one
# output tensor per row.

PREDICT_ROWS = torch.tensor(
    [
        [0.0199, 0.0507, 0.1048, 0.0701, -0.0360, -0.0267, -0.0250, -0.0026, 0.0037, 0.0403],
        [-0.0128, -0.0446, 0.0606, 0.0529, 0.0480, 0.0294, -0.0176, 0.0343, 0.0702, 0.0072],
        [0.0381, 0.0507, 0.0089, 0.0425, -0.0428, -0.0210, -0.0397, -0.0026, -0.0181, 0.0072],
        [-0.0128, -0.0446, -0.0235, -0.0401, -0.0167, 0.0046, -0.0176, -0.0026, -0.0385, -0.0384],
        [-0.0237, -0.0446, 0.0455, 0.0907, -0.0181, -0.0354, 0.0707, -0.0395, -0.0345, -0.0094],
    ]
)


def main(max_epochs: int = 1000, **trainer_kwargs: Any) -> tuple[RegressionTask, list[Tensor]]:
    # 1. set the random seeds.
    seed_everything(42)
    # 4. Fitting
    x, y = datasets.load_diabetes(return_X_y=True)
    datamodule = NumpyDataModule.from_xy_dataset(x, y)
    model = RegressionTask(num_inputs=datamodule.num_inputs)
    trainer = flash.Trainer(max_epochs=max_epochs, **trainer_kwargs)
    trainer.fit(model, datamodule=datamodule)
    # 5. Predicting
    predictions = model.predict(PREDICT_ROWS)
    print(predictions)
    return model, predictions


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--max-epochs", type=int, default=1000)
    parser.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    args = parser.parse_args()
    quiet = {"enable_progress_bar": False, "enable_model_summary": False} if args.quiet else {}
    main(args.max_epochs, **quiet)
