"""Datasets that run a stage's Preprocess hooks: ``load_data`` once, the rest per fetch."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch.utils.data import Dataset, IterableDataset

from skflash.data.pipeline import DataPipeline
from skflash.data.process import PER_SAMPLE_HOOKS, STAGE_PREFIXES, Preprocess
from skflash.data.samples import SampleView
from skflash.data.validation_split import split_positions


def _as_pipeline(pipeline: DataPipeline | Preprocess | None) -> DataPipeline:
    if isinstance(pipeline, DataPipeline):
        return pipeline
    return DataPipeline(pipeline)


def _check_stage(stage: str | None, given_hooks: bool = False) -> str | None:
    if stage is None and given_hooks:
        return None
    if stage not in STAGE_PREFIXES:
        raise ValueError(
            f"running_stage must be one of {sorted(STAGE_PREFIXES)}, got {stage!r} (None is "
            "allowed only with load_data or load_sample functions given)."
        )
    return stage


class _GivenHook:
    """A ``load_data`` or ``load_sample`` function given to a dataset: called with the
    dataset when it declares a ``dataset`` parameter."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        if not callable(fn):
            raise TypeError(f"load_data and load_sample must be callables, got {fn!r}.")
        self.fn = fn
        try:
            self.wants_dataset = "dataset" in inspect.signature(fn).parameters
        except (TypeError, ValueError):
            self.wants_dataset = False

    def __call__(self, value: Any, dataset: Any = None) -> Any:
        return self.fn(value, dataset=dataset) if self.wants_dataset else self.fn(value)


def _loading_hooks(
    pipeline: DataPipeline, stage: str | None, load_data: Any, load_sample: Any
) -> tuple[Callable[..., Any], Callable[..., Any] | None]:
    """The ``load_data`` and ``load_sample`` a dataset runs: the functions given, else
    the pipeline's hooks for the stage (a ``load_sample`` that changes nothing is None)."""
    data_hook = _GivenHook(load_data) if load_data is not None else None
    sample_hook = _GivenHook(load_sample) if load_sample is not None else None
    if stage is not None:
        data_hook = data_hook or pipeline.hook("load_data", stage)
        if load_sample is None:
            sample_hook = pipeline.hook("load_sample", stage)
    return data_hook or _GivenHook(_unchanged), sample_hook


def _unchanged(data: Any) -> Any:
    return data


class AutoDataset(Dataset):
    """Raw data for one running stage, loaded through that stage's Preprocess hooks.

    ``load_data`` runs once, here; it may set metadata on the dataset (the tutorial sets
    ``dataset.num_inputs``). ``dataset[i]`` is the loaded sample: its ``load_sample``
    output; a loader's collate function runs the tensor transforms on it, as in Flash.
    When the stage has no per-sample hooks and the loaded samples can hand out whole
    batches (:class:`~skflash.data.samples.ArraySamples`), a loader gets its batch with
    one indexing call.

    Parameters
    ----------
    data : Any
        What the stage's ``load_data`` accepts.
    data_pipeline : DataPipeline or Preprocess, optional
        The hooks to run; a plain Preprocess when omitted.
    running_stage : {"train", "val", "test", "predict"} or None, default="train"
        None only with hook functions given: they run outside any stage.
    load_data, load_sample : callable, optional
        Functions ``fn(data)`` / ``fn(sample)`` (or with a ``dataset`` parameter) that
        take the place of the pipeline's own ``load_data`` / ``load_sample`` hooks; the
        pipeline's other hooks still run in the loader.
    """

    def __init__(
        self,
        data: Any,
        data_pipeline: DataPipeline | Preprocess | None = None,
        running_stage: str | None = "train",
        *,
        load_data: Callable[..., Any] | None = None,
        load_sample: Callable[..., Any] | None = None,
    ) -> None:
        given = load_data is not None or load_sample is not None
        self.running_stage = _check_stage(running_stage, given)
        self.data_pipeline = _as_pipeline(data_pipeline)
        self._given_load_sample = load_sample
        self.load_data, self.load_sample = _loading_hooks(
            self.data_pipeline, self.running_stage, load_data, load_sample
        )
        self.data = self.load_data(data, self)
        self._prepare()

    def _prepare(self) -> None:
        take = getattr(self.data, "take_batch", None)
        self._batched = (
            take is not None
            and self.running_stage is not None
            and getattr(self.data, "supports_take_batch", True)
            and self.load_sample is None
            and self.data_pipeline.fetches_batches(self.running_stage)
        )

    @classmethod
    def from_loaded(cls, loaded: Any, source: AutoDataset, running_stage: str) -> AutoDataset:
        """A dataset over already loaded samples, with ``source``'s metadata and pipeline."""
        dataset = cls.__new__(cls)
        dataset.__dict__.update(source.__dict__)
        dataset.running_stage = _check_stage(running_stage)
        _, dataset.load_sample = _loading_hooks(
            dataset.data_pipeline, dataset.running_stage, None, source._given_load_sample
        )
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
        sample = self.data[index]
        return sample if self.load_sample is None else self.load_sample(sample, self)

    def __getitems__(self, indices: list[int]) -> Any:
        if self._batched:
            return self.data.take_batch(indices)
        if self.load_sample is None:
            return [self.data[i] for i in indices]
        return [self.load_sample(self.data[i], self) for i in indices]


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
        # A stream of whole batches (e.g. a BlockStream) is passed on by loaders as it is,
        # and, without per-sample hooks, can hand out a block's batches as one chunk.
        self.yields_batches = bool(getattr(self.data, "yields_batches", False))
        # Items of a stream of samples are loaded here and transformed in the loader's
        # collate; a stream of batches has its items transformed here.
        self._transform = self.data_pipeline.sample_transform(
            running_stage, PER_SAMPLE_HOOKS if self.yields_batches else ("load_sample",)
        )
        self.yields_chunks = hasattr(self.data, "chunks") and self.data_pipeline.fetches_batches(
            running_stage
        )

    fetches_batches = False

    def __iter__(self) -> Iterator[Any]:
        for sample in self.data:
            yield self._transform(sample, self)
