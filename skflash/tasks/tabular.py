"""TabularTask: what the tabular tasks share, a backbone to finetune and array data."""

from __future__ import annotations

from typing import Any

from torch import nn

from skflash.core.ensemble import EnsembleMean
from skflash.core.model import Task
from skflash.data.numpy_data import NumpyPreprocess


class TabularTask(Task):
    """A Task over feature vectors whose model may have a ``backbone`` under a head."""

    preprocess_cls = NumpyPreprocess

    @property
    def backbone(self) -> nn.Module:
        """The feature extractor that finetuning strategies freeze."""
        return getattr(self.model, "backbone", self.model)

    @property
    def n_ensemble(self) -> int:
        """Members of the model's ensemble (1 without one)."""
        members = getattr(self.model, "members", None)
        return members.k if isinstance(members, EnsembleMean) else 1

    def step(self, batch: Any, batch_idx: int) -> dict[str, Any]:
        """The training, validation and test step, ensembles included.

        While training an ensemble, each member's outputs meet their own copy of the
        targets (and weights): the loss is the mean of the members' losses.

        Parameters
        ----------
        batch : tuple
            ``(x, y)`` or ``(x, y, sample_weight)``.
        batch_idx : int
            The batch's index in the epoch.

        Returns
        -------
        dict
            The loss, the logs and the outputs.
        """
        k = self.n_ensemble
        if k > 1 and self.model.training:
            copies = (part.repeat(k, *[1] * (part.dim() - 1)) for part in batch[1:])
            batch = (batch[0], *copies)
        return super().step(batch, batch_idx)
