"""TabularTask: what the tabular tasks share, a backbone to finetune and array data."""

from __future__ import annotations

from torch import nn

from skflash.core.model import Task
from skflash.data.numpy_data import NumpyPreprocess


class TabularTask(Task):
    """A Task over feature vectors whose model may have a ``backbone`` under a head."""

    preprocess_cls = NumpyPreprocess

    @property
    def backbone(self) -> nn.Module:
        """The feature extractor that finetuning strategies freeze."""
        return getattr(self.model, "backbone", self.model)
