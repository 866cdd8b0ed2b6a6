"""Tasks written as the seed tutorial teaches, importable so that estimators holding them
pickle: ``RegressionTask`` is the tutorial's own (``examples/custom_task.py``), unchanged."""

from __future__ import annotations

import torch
from torch import nn

import skflash as flash
from examples.custom_task import RegressionTask

__all__ = ["ClassificationTask", "MultiOutputRegressionTask", "RegressionTask"]


class ClassificationTask(flash.Task):
    """A small classifier in the tutorial's style: logits for ``num_classes`` classes."""

    def __init__(self, num_inputs, num_classes, hidden=16, learning_rate=0.01, metrics=None):
        model = nn.Sequential(
            nn.Linear(num_inputs, hidden), nn.ReLU(), nn.Linear(hidden, num_classes)
        )
        super().__init__(
            model=model,
            loss_fn=torch.nn.functional.cross_entropy,
            optimizer=torch.optim.Adam,
            metrics=metrics,
            learning_rate=learning_rate,
        )


class MultiOutputRegressionTask(RegressionTask):
    """The tutorial's Task told how many targets to predict."""

    def __init__(self, num_inputs, num_outputs=1, learning_rate=0.001):
        super().__init__(num_inputs, learning_rate)
        self.model = nn.Linear(num_inputs, num_outputs)
