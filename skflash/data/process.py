"""Preprocess and Postprocess: the hooks that turn raw data into batches and outputs back.

A :class:`Preprocess` holds the data logic of a task, one hook per step. Hooks can be
specialised per stage with a prefix (``train_``, ``val_``, ``test_``, ``predict_``, or
``fit_`` for both train and val); the :class:`~skflash.data.pipeline.DataPipeline`
resolves which one runs. Hooks, in the order they run:

1. ``load_data(data, dataset)``: once per dataset, turns the input into samples.
2. ``load_sample(sample, dataset)``: per sample, when it is fetched (``dataset[i]``).
3. ``pre_tensor_transform``, 4. ``to_tensor_transform``, 5. ``post_tensor_transform``:
   per sample, in the loader's collate function.
6. ``collate(samples)``.
7. ``per_batch_transform(batch)``: in the loader, after collate.
8. ``per_sample_transform_on_device(sample)``: on the device (collate then runs there).
9. ``per_batch_transform_on_device(batch)``: last, on the device.

A hook receives the dataset only when it declares a parameter named ``dataset``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data._utils.collate import default_collate

#: The Preprocess hooks in the order they run.
PREPROCESS_HOOKS = (
    "load_data",
    "load_sample",
    "pre_tensor_transform",
    "to_tensor_transform",
    "post_tensor_transform",
    "collate",
    "per_batch_transform",
    "per_sample_transform_on_device",
    "per_batch_transform_on_device",
)
#: The hooks that run once per sample in the loader.
PER_SAMPLE_HOOKS = PREPROCESS_HOOKS[1:5]
#: The per-sample hooks that run in the loader's collate (``dataset[i]`` runs ``load_sample``).
TENSOR_HOOKS = PREPROCESS_HOOKS[2:5]
#: The running stages and the prefixes that may specialise a hook for them, most specific first.
STAGE_PREFIXES = {
    "train": ("train_", "fit_", ""),
    "val": ("val_", "fit_", ""),
    "test": ("test_", ""),
    "predict": ("predict_", ""),
}


class _Stageful:
    """Flags that tell a hook which stage it runs in; set by the pipeline."""

    _running_stage: str | None = None
    _current_fn: str | None = None

    @property
    def running_stage(self) -> str | None:
        """``"train"``, ``"val"``, ``"test"``, ``"predict"`` or ``None`` outside a hook."""
        return self._running_stage

    @property
    def current_fn(self) -> str | None:
        """The hook running now, without its stage prefix, or ``None`` outside a hook.

        ``"load_data"`` while ``train_load_data`` runs.
        """
        return self._current_fn

    @property
    def training(self) -> bool:
        return self._running_stage == "train"

    @property
    def validating(self) -> bool:
        return self._running_stage == "val"

    @property
    def testing(self) -> bool:
        return self._running_stage == "test"

    @property
    def predicting(self) -> bool:
        return self._running_stage == "predict"

    def state_dict(self) -> dict[str, Any]:
        """State learned from data that must travel with the model (plain values and tensors).

        Override together with :meth:`load_state_dict` when the hooks learn something
        (scaling statistics, label codes) that prediction needs.
        """
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        for key, value in state.items():
            setattr(self, key, value)


class Preprocess(_Stageful):
    """The data-loading hooks of a task; every hook returns its input unchanged by default.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from skflash.data.process import Preprocess
    >>> class Rows(Preprocess):
    ...     def load_data(self, data, dataset):
    ...         dataset.num_inputs = data.shape[1]
    ...         return list(data)
    ...     def to_tensor_transform(self, sample):
    ...         return torch.from_numpy(sample).float()
    >>> from skflash.data.auto_dataset import AutoDataset
    >>> from skflash.data.pipeline import DataPipeline
    >>> pipeline = DataPipeline(Rows())
    >>> rows = AutoDataset(np.ones((2, 3)), pipeline, "train")
    >>> rows.num_inputs, rows[0]
    (3, array([1., 1., 1.]))
    >>> next(iter(pipeline.dataloader(rows, batch_size=2)))
    tensor([[1., 1., 1.],
            [1., 1., 1.]])
    """

    def load_data(self, data: Any, dataset: Any = None) -> Any:
        """Turn the raw input into a sequence of samples (or an iterable for streams)."""
        return data

    def load_sample(self, sample: Any, dataset: Any = None) -> Any:
        """Load one sample when it is fetched (e.g. read a file named by ``sample``)."""
        return sample

    def pre_tensor_transform(self, sample: Any) -> Any:
        return sample

    def to_tensor_transform(self, sample: Any) -> Any:
        return sample

    def post_tensor_transform(self, sample: Any) -> Any:
        return sample

    def collate(self, samples: Sequence[Any]) -> Any:
        """Combine samples into a batch; torch's default collate unless overridden."""
        return default_collate(samples)

    def per_batch_transform(self, batch: Any) -> Any:
        """Transform a whole batch in the loader, after collate."""
        return batch

    def per_sample_transform_on_device(self, sample: Any) -> Any:
        """Transform one sample on the device; collate then runs on the device."""
        return sample

    def per_batch_transform_on_device(self, batch: Any) -> Any:
        """Transform a whole batch on the device, last."""
        return batch


class Postprocess(_Stageful):
    """The hooks that turn model outputs into predictions, and optionally save them.

    Parameters
    ----------
    save_path : str or path-like, optional
        When set, ``Task.predict`` saves its predictions there: with :meth:`save_sample`
        per sample when a subclass overrides it (the path gets the sample's index), else
        with :meth:`save_data` once.
    """

    def __init__(self, save_path: str | os.PathLike | None = None) -> None:
        self.save_path = save_path

    def per_batch_transform(self, batch: Any) -> Any:
        """Transform a batch of model outputs."""
        return batch

    def uncollate(self, batch: Any) -> list[Any]:
        """Split a batch into one output per sample."""
        if isinstance(batch, torch.Tensor):
            return list(batch.unbind(0))
        if isinstance(batch, dict):
            columns = [self.uncollate(value) for value in batch.values()]
            return [dict(zip(batch, values, strict=True)) for values in zip(*columns, strict=True)]
        if isinstance(batch, (list, tuple)) and batch and all(torch.is_tensor(b) for b in batch):
            return [tuple(v) for v in zip(*(b.unbind(0) for b in batch), strict=True)]
        return list(batch)

    def per_sample_transform(self, sample: Any) -> Any:
        """Transform one output."""
        return sample

    def save_data(self, data: list[Any], path: str | os.PathLike) -> None:
        """Save all predictions at once (``torch.save`` by default)."""
        torch.save(data, path)

    def save_sample(self, sample: Any, path: str | os.PathLike) -> None:
        """Save one prediction; override to save per sample."""
        torch.save(sample, path)

    def save(self, outputs: list[Any]) -> None:
        """Save ``outputs`` to :attr:`save_path` through the save hooks."""
        if self.save_path is None:
            return
        if type(self).save_sample is not Postprocess.save_sample:
            path = Path(self.save_path)
            for index, sample in enumerate(outputs):
                self.save_sample(sample, path.with_name(f"{path.stem}_{index}{path.suffix}"))
        else:
            self.save_data(outputs, self.save_path)
