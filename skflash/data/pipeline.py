"""Wire the Preprocess hooks into data loaders and the device side.

The :class:`DataPipeline` resolves, for each running stage, which hook runs (a stage
prefix beats the plain hook), passes ``dataset`` to hooks that ask for it, sets the
stage flags, and names the hook and stage when one fails. Hooks a Preprocess does not
override are skipped, so a batch of array data whose Preprocess only works on batches is
fetched with one indexing call instead of a Python call per sample.
"""

from __future__ import annotations

import inspect
import multiprocessing
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader

from skflash.data.process import (
    PER_SAMPLE_HOOKS,
    PREPROCESS_HOOKS,
    STAGE_PREFIXES,
    TENSOR_HOOKS,
    Postprocess,
    Preprocess,
)
from skflash.data.sampling import EpochPermutation


class HookError(RuntimeError):
    """A Preprocess or Postprocess hook raised; the message names the hook and the stage.

    The raised error is also an instance of the original error's type, so ``except
    ValueError`` still catches a ValueError raised inside a hook. Its text is always the
    message, whatever the original type's own ``__str__`` expects to find.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple:
        return HookError, (self.message,)


_ERROR_TYPES: dict[type, type] = {}


def hook_error(error: Exception, message: str) -> HookError:
    """A HookError carrying ``message`` that is also an instance of ``type(error)``."""
    base = type(error)
    try:
        if base not in _ERROR_TYPES:
            _ERROR_TYPES[base] = type(f"Hook{base.__name__}", (HookError, base), {})
        combined = _ERROR_TYPES[base]
        instance = combined.__new__(combined, message)
        HookError.__init__(instance, message)
        str(instance)
        return instance
    except Exception:  # an error type that cannot be combined or built from a message
        return HookError(message)


class _Hook:
    """One resolved hook: sets the stage and ``current_fn`` flags, injects ``dataset``,
    and names failures."""

    def __init__(self, owner: Preprocess | Postprocess, name: str, stage: str, hook: str) -> None:
        self.owner = owner
        self.name = name
        self.stage = stage
        self.hook = hook
        self.fn = getattr(owner, name)
        try:
            params = inspect.signature(self.fn).parameters
        except (TypeError, ValueError):
            params = {}
        self.wants_dataset = "dataset" in params

    def __call__(self, value: Any, dataset: Any = None) -> Any:
        self.owner._running_stage = self.stage
        self.owner._current_fn = self.hook
        try:
            try:
                return self._run(value, dataset)
            except TypeError as error:
                # a hook written for numpy samples (``torch.from_numpy``, as the tutorial's
                # ``predict_to_tensor_transform``) given a tensor's rows: their values
                if not (_NUMPY_ONLY in str(error) and _on_cpu(value)):
                    raise
                return self._run(value.detach().numpy(), dataset)
        except HookError:
            raise
        except Exception as error:
            kind = type(self.owner).__name__
            raise hook_error(
                error,
                f"{kind}.{self.name} raised {type(error).__name__} in the {self.stage!r} stage: "
                f"{error}",
            ) from error
        finally:
            self.owner._running_stage = None
            self.owner._current_fn = None

    def _run(self, value: Any, dataset: Any) -> Any:
        if self.wants_dataset:
            return self.fn(value, dataset=dataset)
        return self.fn(value)


#: torch's refusal of a tensor where ``torch.from_numpy`` wants an array.
_NUMPY_ONLY = "expected np.ndarray (got Tensor)"


def _on_cpu(value: Any) -> bool:
    return isinstance(value, torch.Tensor) and value.device.type == "cpu"


def _defined_by_subclass(owner: object, base: type, name: str) -> bool:
    """Whether ``owner`` defines ``name`` itself rather than inheriting it from ``base``."""
    if name in vars(owner):
        return True
    impl = getattr(type(owner), name, None)
    return impl is not None and impl is not getattr(base, name, None)


def _workers_allowed(num_workers: int) -> int:
    """``num_workers``, or 0 inside a daemonic process (a Dask or multiprocessing worker),
    which may not start the worker processes a DataLoader needs."""
    if num_workers > 0 and multiprocessing.current_process().daemon:
        warnings.warn(
            f"num_workers={num_workers} ignored: this process is a daemonic worker (e.g. a "
            "Dask or multiprocessing pool worker), which cannot start DataLoader worker "
            "processes. Data is loaded in the worker's own process instead.",
            UserWarning,
            stacklevel=3,
        )
        return 0
    return num_workers


class DataPipeline:
    """Resolve a Preprocess and Postprocess into loader-side and device-side callables.

    Parameters
    ----------
    preprocess : Preprocess, optional
        Defaults to a plain :class:`Preprocess` whose hooks change nothing.
    postprocess : Postprocess, optional
        Defaults to a plain :class:`Postprocess`.
    """

    def __init__(
        self, preprocess: Preprocess | None = None, postprocess: Postprocess | None = None
    ) -> None:
        self.preprocess = preprocess if preprocess is not None else Preprocess()
        self.postprocess = postprocess if postprocess is not None else Postprocess()
        self._cache: dict[tuple[str, str], _Hook | None] = {}
        self._names: dict[tuple[str, str], str | None] = {}
        self._device: dict[str, Callable[[Any], Any] | None] = {}

    # ------------------------------------------------------------------ resolution
    def hook_name(self, hook: str, stage: str) -> str | None:
        """The attribute that implements ``hook`` in ``stage``, or None if none is overridden."""
        key = (hook, stage)
        if key not in self._names:  # resolved once: predict asks on every call
            self._names[key] = next(
                (
                    prefix + hook
                    for prefix in STAGE_PREFIXES[stage]
                    if _defined_by_subclass(self.preprocess, Preprocess, prefix + hook)
                ),
                None,
            )
        return self._names[key]

    def is_overridden(self, hook: str, stage: str) -> bool:
        return self.hook_name(hook, stage) is not None

    def hook(self, hook: str, stage: str) -> _Hook | None:
        """The resolved ``hook`` for ``stage``; None when the default would change nothing."""
        key = (hook, stage)
        if key not in self._cache:
            name = self.hook_name(hook, stage)
            if name is None and hook in ("collate", "load_data"):
                name = hook  # their defaults do work
            self._cache[key] = None if name is None else _Hook(self.preprocess, name, stage, hook)
        return self._cache[key]

    def _check_collate_placement(self, stage: str) -> None:
        if self.is_overridden("per_batch_transform", stage) and self.is_overridden(
            "per_sample_transform_on_device", stage
        ):
            raise ValueError(
                f"{type(self.preprocess).__name__} overrides both per_batch_transform and "
                f"per_sample_transform_on_device for the {stage!r} stage. Collate runs after "
                "per_batch_transform in the loader, but per_sample_transform_on_device needs "
                "collate on the device, so both cannot hold: override only one of them."
            )

    def collate_on_device(self, stage: str) -> bool:
        """Whether collate moves to the device (per_sample_transform_on_device is in use)."""
        self._check_collate_placement(stage)
        return self.is_overridden("per_sample_transform_on_device", stage)

    def fetches_batches(self, stage: str) -> bool:
        """Whether a batch can be fetched as a whole: no per-sample hook and default collate."""
        fetches = vars(self).setdefault("_fetches", {})  # pipelines pickled before it
        if stage not in fetches:  # resolved once: predict asks on every call
            fetches[stage] = not (
                any(self.is_overridden(h, stage) for h in PER_SAMPLE_HOOKS)
                or self.is_overridden("collate", stage)
                or self.collate_on_device(stage)
            )
        return fetches[stage]

    # ------------------------------------------------------------------ running hooks
    def load_data(self, data: Any, stage: str, dataset: Any = None) -> Any:
        return self.hook("load_data", stage)(data, dataset)

    def sample_transform(
        self, stage: str, hooks: Sequence[str] = PER_SAMPLE_HOOKS
    ) -> _SampleTransform:
        """Chain the per-sample ``hooks`` of ``stage`` into one callable ``(sample, dataset)``."""
        return _SampleTransform([h for h in (self.hook(name, stage) for name in hooks) if h])

    def loader_collate(
        self, stage: str, batched: bool, dataset: Any = None, samples_from: Any = None
    ) -> Callable[[Any], Any]:
        """The loader's ``collate_fn``: unless the batch was fetched whole, each sample
        (loaded by ``dataset``) through the tensor transforms of ``samples_from`` (this
        pipeline by default) and collate (unless it runs on the device); then
        per_batch_transform."""
        tensor_hooks = None
        if not batched:
            tensor_hooks = (samples_from or self).sample_transform(stage, TENSOR_HOOKS) or None
        collate = None if batched or self.collate_on_device(stage) else self.hook("collate", stage)
        per_batch = self.hook("per_batch_transform", stage)
        return _LoaderCollate(collate, per_batch, tensor_hooks, dataset)

    def device_transform(self, stage: str) -> Callable[[Any], Any] | None:
        """What runs once a batch is on the device, or None when nothing does."""
        if stage not in self._device:
            self._device[stage] = self._device_transform(stage)
        return self._device[stage]

    def _device_transform(self, stage: str) -> Callable[[Any], Any] | None:
        per_batch = self.hook("per_batch_transform_on_device", stage)
        if not self.collate_on_device(stage):
            return per_batch
        return _DeviceCollate(
            self.hook("per_sample_transform_on_device", stage),
            self.hook("collate", stage),
            per_batch,
        )

    # ------------------------------------------------------------------ loaders
    def dataloader(
        self,
        dataset: Any,
        batch_size: int,
        shuffle: bool = False,
        num_workers: int = 0,
        generator: torch.Generator | None = None,
        stage: str | None = None,
    ) -> DataLoader:
        """A DataLoader over a dataset of ``stage``; the last incomplete batch is kept.

        An AutoDataset knows its stage; any other torch Dataset is loaded as the stage
        of the loader asking for it. A dataset that yields whole batches has them passed
        on as they are (through ``per_batch_transform``). The tensor transforms of an
        AutoDataset's samples are its own pipeline's.
        """
        stage = getattr(dataset, "running_stage", None) or stage or "train"
        whole = getattr(dataset, "yields_batches", False)  # items are batches already
        batched = whole or getattr(dataset, "fetches_batches", False)
        shuffle = shuffle and not isinstance(dataset, torch.utils.data.IterableDataset)
        num_workers = _workers_allowed(num_workers)
        return DataLoader(
            dataset,
            batch_size=None if whole else batch_size,
            sampler=EpochPermutation(len(dataset), generator) if shuffle else None,
            num_workers=num_workers,
            collate_fn=self.loader_collate(
                stage, batched, dataset, getattr(dataset, "data_pipeline", None)
            ),
            drop_last=False,
            persistent_workers=num_workers > 0,
        )

    # ------------------------------------------------------------------ outputs
    def postprocess_batch(self, output: Any) -> Any:
        post = self.postprocess
        post._running_stage, post._current_fn = "predict", "per_batch_transform"
        try:
            return post.per_batch_transform(output)
        finally:
            post._running_stage = post._current_fn = None

    def postprocess_samples(self, output: Any) -> list[Any]:
        post = self.postprocess
        post._running_stage, post._current_fn = "predict", "uncollate"
        try:
            samples = post.uncollate(output)
            post._current_fn = "per_sample_transform"
            return [post.per_sample_transform(s) for s in samples]
        finally:
            post._running_stage = post._current_fn = None


class _SampleTransform:
    """The per-sample hooks of a stage in order; picklable, for spawned processes."""

    def __init__(self, hooks: list[_Hook]) -> None:
        self.hooks = hooks

    def __bool__(self) -> bool:
        return bool(self.hooks)

    def __call__(self, sample: Any, dataset: Any = None) -> Any:
        for hook in self.hooks:
            sample = hook(sample, dataset)
        return sample


class _LoaderCollate:
    """Picklable collate_fn for loader workers: each loaded sample through the tensor
    transforms, then collate and per_batch_transform."""

    def __init__(
        self,
        collate: _Hook | None,
        per_batch: _Hook | None,
        tensor_hooks: _SampleTransform | None = None,
        dataset: Any = None,
    ) -> None:
        self.collate = collate
        self.per_batch = per_batch
        self.tensor_hooks = tensor_hooks
        wanted = tensor_hooks is not None and any(h.wants_dataset for h in tensor_hooks.hooks)
        self.dataset = dataset if wanted else None  # workers get no second copy otherwise

    def __call__(self, samples: Any) -> Any:
        if self.tensor_hooks is not None:
            samples = [self.tensor_hooks(sample, self.dataset) for sample in samples]
        batch = self.collate(samples) if self.collate is not None else samples
        return self.per_batch(batch) if self.per_batch is not None else batch


class _DeviceCollate:
    def __init__(self, per_sample: _Hook, collate: _Hook, per_batch: _Hook | None) -> None:
        self.per_sample = per_sample
        self.collate = collate
        self.per_batch = per_batch

    def __call__(self, samples: Sequence[Any]) -> Any:
        batch = self.collate([self.per_sample(sample) for sample in samples])
        return self.per_batch(batch) if self.per_batch is not None else batch


__all__ = ["PREPROCESS_HOOKS", "DataPipeline", "HookError"]
