"""DataModule: the datasets of each stage and the loaders that the Trainer pulls from."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from skflash.data.auto_dataset import AutoDataset, IterableAutoDataset
from skflash.data.batch_loader import BatchChunk, ChunkedBatchLoader, StreamedChunkLoader
from skflash.data.pipeline import DataPipeline
from skflash.data.process import Postprocess, Preprocess
from skflash.data.validation_split import is_parallel_arrays, split_rows


class DataModule(pl.LightningDataModule):
    """A LightningDataModule over AutoDatasets, carrying the Preprocess that built them.

    Build it with :meth:`from_load_data_inputs` to run a Preprocess over raw inputs; a
    Task fitted on it adopts its Preprocess and Postprocess, so the trained model predicts
    on raw data.

    Parameters
    ----------
    train_dataset, val_dataset, test_dataset, predict_dataset : Dataset, optional
        The datasets of each stage; a loader exists only for those given.
    batch_size : int, default=1
        Samples per batch.
    num_workers : int or None, default=0
        Loader worker processes; None uses one per CPU (``os.cpu_count()``), as Flash did.
    preprocess : Preprocess, optional
        The hooks that turned raw inputs into the datasets, adopted by the Task. Defaults
        to ``preprocess_cls()``, built when first asked for.
    postprocess : Postprocess, optional
        The hooks applied to the Task's predictions. Defaults to ``postprocess_cls()``.
    seed : int, optional
        Seeds the training loader's shuffling, so that two fits see the same order.
    fused_steps : bool, default=False
        Offer fused epochs: when a dataset fetches whole batches and the Task being fitted
        chooses them (see :meth:`skflash.core.fused_steps.FusedSteps.fuses_steps`), hand
        the Trainer one :class:`~skflash.data.batch_loader.BatchChunk` per epoch, so the
        Task runs the epoch's optimizer steps in one Lightning step. Otherwise, and always
        for prediction, the loaders are ordinary per-batch DataLoaders; both draw the
        same order of samples from ``seed``.
    """

    #: The class of the default Preprocess (a subclass may instead override :attr:`preprocess`).
    preprocess_cls: type[Preprocess] = Preprocess
    #: The class of the default Postprocess.
    postprocess_cls: type[Postprocess] = Postprocess

    def __init__(
        self,
        train_dataset: Any = None,
        val_dataset: Any = None,
        test_dataset: Any = None,
        predict_dataset: Any = None,
        batch_size: int = 1,
        num_workers: int | None = 0,
        preprocess: Preprocess | None = None,
        postprocess: Postprocess | None = None,
        seed: int | None = None,
        fused_steps: bool = False,
    ) -> None:
        super().__init__()
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
        if num_workers is None:
            num_workers = os.cpu_count() or 0
        if int(num_workers) < 0:
            raise ValueError(f"num_workers must be >= 0 or None, got {num_workers!r}.")
        self.train_dataset = train_dataset
        self.val_dataset = val_dataset
        self.test_dataset = test_dataset
        self.predict_dataset = predict_dataset
        self.batch_size = int(batch_size)
        self.num_workers = int(num_workers)
        self.seed = seed
        self.fused_steps = fused_steps
        self._preprocess = preprocess
        self._postprocess = postprocess
        self._data_pipeline: DataPipeline | None = None

    @property
    def preprocess(self) -> Preprocess:
        """The Preprocess given, else one built from :attr:`preprocess_cls` (once)."""
        if self._preprocess is None:
            self._preprocess = self.preprocess_cls()
        return self._preprocess

    @property
    def postprocess(self) -> Postprocess:
        """The Postprocess given, else one built from :attr:`postprocess_cls` (once)."""
        if self._postprocess is None:
            self._postprocess = self.postprocess_cls()
        return self._postprocess

    @property
    def data_pipeline(self) -> DataPipeline:
        """The hooks of :attr:`preprocess` and :attr:`postprocess`, resolved once.

        A subclass's own overrides of those properties are included.
        """
        if self._data_pipeline is None:
            self._data_pipeline = DataPipeline(self.preprocess, self.postprocess)
        return self._data_pipeline

    @data_pipeline.setter
    def data_pipeline(self, pipeline: DataPipeline) -> None:
        self._data_pipeline = pipeline
        self._preprocess = pipeline.preprocess
        self._postprocess = pipeline.postprocess

    def _loader(
        self, dataset: Any, stage: str, shuffle: bool = False
    ) -> DataLoader | ChunkedBatchLoader:
        generator = None
        if shuffle and self.seed is not None:
            generator = torch.Generator()
            generator.manual_seed(int(self.seed))
        if stage != "predict" and self.offers_fused_steps(dataset) and self._task_fuses():
            if getattr(dataset, "yields_chunks", False):
                return StreamedChunkLoader(
                    dataset, self.data_pipeline.loader_collate(stage, batched=True)
                )
            loader = ChunkedBatchLoader(
                dataset,
                self.batch_size,
                shuffle,
                generator,
                transform=self.data_pipeline.loader_collate(stage, batched=True),
            )
            if self.trainer is not None:  # keep the samples on the training device
                loader.to(self.trainer.strategy.root_device)
            return loader
        return self.data_pipeline.dataloader(
            dataset, self.batch_size, shuffle, self.num_workers, generator, stage=stage
        )

    def offers_fused_steps(self, dataset: Any = None) -> bool:
        """Whether this DataModule can hand out epoch chunks (of ``dataset``, or training)."""
        dataset = self.train_dataset if dataset is None else dataset
        return self.fused_steps and (
            getattr(dataset, "fetches_batches", False) or getattr(dataset, "yields_chunks", False)
        )

    def _task_fuses(self) -> bool:
        module = self.trainer.lightning_module if self.trainer is not None else None
        fuses = getattr(module, "fuses_steps", None)
        return bool(fuses is not None and fuses())

    def train_dataloader(self) -> DataLoader:
        if self.train_dataset is None:
            raise ValueError("This DataModule has no training data: pass train_dataset.")
        return self._loader(self.train_dataset, "train", shuffle=True)

    # A stage without a dataset has no loader at all (rather than an empty one), so the
    # Trainer skips it quietly: these read as "not overridden" when their dataset is None.
    @property
    def val_dataloader(self) -> Callable[[], DataLoader] | None:  # type: ignore[override]
        return None if self.val_dataset is None else self._val_dataloader

    @property
    def test_dataloader(self) -> Callable[[], DataLoader] | None:  # type: ignore[override]
        return None if self.test_dataset is None else self._test_dataloader

    @property
    def predict_dataloader(self) -> Callable[[], DataLoader] | None:  # type: ignore[override]
        return None if self.predict_dataset is None else self._predict_dataloader

    def _val_dataloader(self) -> DataLoader:
        return self._loader(self.val_dataset, "val")

    def _test_dataloader(self) -> DataLoader:
        return self._loader(self.test_dataset, "test")

    def _predict_dataloader(self) -> DataLoader:
        return self._loader(self.predict_dataset, "predict")

    def _running_stage(self) -> str:
        trainer = self.trainer
        if trainer is None or trainer.predicting:
            return "predict"
        if trainer.training:
            return "train"
        if trainer.testing:
            return "test"
        return "val"  # validating, or the sanity check before fitting

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Run the device-side Preprocess hooks once the batch is on the device."""
        transform = self.data_pipeline.device_transform(self._running_stage())
        if isinstance(batch, BatchChunk):
            return batch.with_transform(transform)
        return batch if transform is None else transform(batch)

    @classmethod
    def from_load_data_inputs(
        cls,
        train_load_data_input: Any = None,
        val_load_data_input: Any = None,
        test_load_data_input: Any = None,
        predict_load_data_input: Any = None,
        preprocess: Preprocess | None = None,
        postprocess: Postprocess | None = None,
        val_split: float | None = None,
        seed: int | None = 42,
        batch_size: int = 1,
        num_workers: int | None = 0,
        iterable: bool = False,
        **kwargs: Any,
    ) -> DataModule:
        """Build one AutoDataset per given input, each loaded by the Preprocess's stage hooks.

        Parameters
        ----------
        train_load_data_input : object, optional
            Passed to the training stage's ``load_data`` hook.
        val_load_data_input, test_load_data_input, predict_load_data_input : object, optional
            Passed to that stage's ``load_data`` hook.
        preprocess : Preprocess, optional
            The loading and transform hooks. When omitted, those of a ``cls(**kwargs)``
            without data: built from :attr:`preprocess_cls`, or by a subclass's own
            ``preprocess`` property.
        postprocess : Postprocess, optional
            The hooks applied to predictions. When omitted, built from
            :attr:`postprocess_cls`, or by a subclass's own ``postprocess`` property.
        val_split : float, optional
            Fraction in (0, 1) of the training samples held out for validation (only when
            no validation input is given).
        seed : int, default=42
            Seeds ``val_split`` and the training shuffle: the same seed gives the same split.
        batch_size : int, default=1
            Samples per batch.
        num_workers : int, default=0
            Loader worker processes.
        iterable : bool, default=False
            Use :class:`IterableAutoDataset` (streams) instead of :class:`AutoDataset`.
        **kwargs
            Passed to the constructor of ``cls``.
        """
        if val_split is not None and not (0.0 < float(val_split) < 1.0):
            raise ValueError(f"val_split must be a fraction in (0, 1), got {val_split!r}.")
        if val_split is not None and val_load_data_input is not None:
            raise ValueError("Pass either val_load_data_input or val_split, not both.")
        if preprocess is None or postprocess is None:
            empty = cls(batch_size=batch_size, num_workers=num_workers, **kwargs)
            preprocess = preprocess if preprocess is not None else empty.preprocess
            postprocess = postprocess if postprocess is not None else empty.postprocess
        pipeline = DataPipeline(preprocess, postprocess)
        dataset_cls = IterableAutoDataset if iterable else AutoDataset

        def build(data: Any, stage: str) -> Any:
            return None if data is None else dataset_cls(data, pipeline, stage)

        if val_split is not None and (train_load_data_input is None or iterable):
            raise ValueError("val_split needs map-style training data to split.")
        if val_split is not None and is_parallel_arrays(train_load_data_input):
            # (x, y[, w]) arrays are split before load_data learns anything from them
            parts = [part for part in train_load_data_input if part is not None]
            train_part, val_load_data_input = split_rows(
                tuple(parts),
                float(val_split),
                0 if seed is None else int(seed),
                f"val_split={val_split}",
                "There must be at least one sample on each side.",
            )
            train_load_data_input, val_split = train_part, None
        train = build(train_load_data_input, "train")
        val = build(val_load_data_input, "val")
        if val_split is not None:
            train, val = train.split(float(val_split), seed)
        datamodule = cls(
            train_dataset=train,
            val_dataset=val,
            test_dataset=build(test_load_data_input, "test"),
            predict_dataset=build(predict_load_data_input, "predict"),
            batch_size=batch_size,
            num_workers=num_workers,
            preprocess=pipeline.preprocess,
            postprocess=pipeline.postprocess,
            seed=seed,
            **kwargs,
        )
        datamodule.data_pipeline = pipeline
        return datamodule
