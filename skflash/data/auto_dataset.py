"""Datasets that run a stage's Preprocess hooks: ``load_data`` once, the rest per fetch."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import Dataset, IterableDataset

from skflash.data.pipeline import DataPipeline
from skflash.data.process import STAGE_PREFIXES, Preprocess
from skflash.data.samples import SampleView
from skflash.data.validation_split import split_positions


def _as_pipeline(pipeline: DataPipeline | Preprocess | None) -> DataPipeline:
    if isinstance(pipeline, DataPipeline):
        return pipeline
    return DataPipeline(pipeline)


def _check_stage(stage: str) -> str:
    if stage not in STAGE_PREFIXES:
        raise ValueError(f"running_stage must be one of {sorted(STAGE_PREFIXES)}, got {stage!r}.")
    return stage


class AutoDataset(Dataset):
    """Raw data for one running stage, loaded through that stage's Preprocess hooks.

    ``load_data`` runs once, here; it may set metadata on the dataset (the tutorial sets
    ``dataset.num_inputs``). Each fetched item then goes through ``load_sample`` and the
    tensor transforms. When the stage has no per-sample hooks and the loaded samples can
    hand out whole batches (:class:`~skflash.data.samples.ArraySamples`), a loader gets its
    batch with one indexing call.

    Parameters
    ----------
    data : Any
        What the stage's ``load_data`` accepts.
    data_pipeline : DataPipeline or Preprocess, optional
        The hooks to run; a plain Preprocess when omitted.
    running_stage : {"train", "val", "test", "predict"}, default="train"
    """

    def __init__(
        self,
        data: Any,
        data_pipeline: DataPipeline | Preprocess | None = None,
        running_stage: str = "train",
    ) -> None:
        self.running_stage = _check_stage(running_stage)
        self.data_pipeline = _as_pipeline(data_pipeline)
        self.data = self.data_pipeline.load_data(data, running_stage, dataset=self)
        self._prepare()

    def _prepare(self) -> None:
        self._transform = self.data_pipeline.sample_transform(self.running_stage)
        take = getattr(self.data, "take_batch", None)
        self._batched = (
            take is not None
            and getattr(self.data, "supports_take_batch", True)
            and self.data_pipeline.fetches_batches(self.running_stage)
        )

    @classmethod
    def from_loaded(cls, loaded: Any, source: AutoDataset, running_stage: str) -> AutoDataset:
        """A dataset over already loaded samples, with ``source``'s metadata and pipeline."""
        dataset = cls.__new__(cls)
        dataset.__dict__.update(source.__dict__)
        dataset.running_stage = _check_stage(running_stage)
        dataset.data = loaded
        dataset._prepare()
        return dataset

    def split(self, fraction: float, seed: int | None) -> tuple[AutoDataset, AutoDataset]:
        """Split into (train, val) datasets, the second holding ``fraction`` of the samples.

        The same ``seed`` gives the same split; the val part runs the val-stage hooks.
        What ``load_data`` learned, it learned from all the samples: to learn only from
        the training ones, split the raw data first (as ``DataModule`` does for
        ``(x, y)`` arrays).
        """
        train, val = split_positions(
            len(self),
            fraction,
            0 if seed is None else int(seed),
            f"val_split={fraction}",
            "There must be at least one sample on each side.",
        )
        return (
            self.from_loaded(SampleView(self.data, torch.from_numpy(train)), self, "train"),
            self.from_loaded(SampleView(self.data, torch.from_numpy(val)), self, "val"),
        )

    @property
    def fetches_batches(self) -> bool:
        """Whether loaders fetch whole batches from the loaded samples (see class docstring)."""
        return self._batched

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> Any:
        return self._transform(self.data[index], self)

    def __getitems__(self, indices: list[int]) -> Any:
        if self._batched:
            return self.data.take_batch(indices)
        return [self._transform(self.data[i], self) for i in indices]


class IterableAutoDataset(IterableDataset):
    """A stream version of :class:`AutoDataset`: ``load_data`` returns an iterable."""

    def __init__(
        self,
        data: Any,
        data_pipeline: DataPipeline | Preprocess | None = None,
        running_stage: str = "train",
    ) -> None:
        self.running_stage = _check_stage(running_stage)
        self.data_pipeline = _as_pipeline(data_pipeline)
        self.data = self.data_pipeline.load_data(data, running_stage, dataset=self)
        self._transform = self.data_pipeline.sample_transform(running_stage)
        # A stream of whole batches (e.g. a BlockStream) is passed on by loaders as it is,
        # and, without per-sample hooks, can hand out a block's batches as one chunk.
        self.yields_batches = bool(getattr(self.data, "yields_batches", False))
        self.yields_chunks = hasattr(self.data, "chunks") and self.data_pipeline.fetches_batches(
            running_stage
        )

    fetches_batches = False

    def __iter__(self) -> Iterator[Any]:
        for sample in self.data:
            yield self._transform(sample, self)
