"""Task: a LightningModule made of a model, a loss, an optimizer and metrics.

The Task holds the model and the step logic; the Trainer runs the loop. A Task fitted on
a :class:`~skflash.data.data_module.DataModule` adopts its Preprocess and Postprocess,
which is what lets :meth:`Task.predict` take raw data and what its checkpoints keep.
"""

from __future__ import annotations

import copy
import inspect
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import pytorch_lightning as pl
import torch
from lightning_fabric.utilities.apply_func import move_data_to_device
from pytorch_lightning.plugins.precision import MixedPrecision
from torch import nn
from torch.optim import Optimizer

from skflash.core.aliased import eval_forward
from skflash.core.checkpoint_state import is_plain, restored, saved_state
from skflash.core.fit_lifecycle import FitLifecycle
from skflash.core.fused_steps import FusedSteps, batch_size_of
from skflash.core.losses import named_callables, weighted_loss
from skflash.core.optimizers import (
    fused_if_possible,
    optimizer_class,
    resume_state,
    scheduler_class,
)
from skflash.data.auto_dataset import AutoDataset
from skflash.data.batch_loader import BatchChunk
from skflash.data.pipeline import DataPipeline
from skflash.data.process import Postprocess, Preprocess
from skflash.data.tensors import floats_as

STAGES = ("train", "val", "test")


class Task(FitLifecycle, FusedSteps, pl.LightningModule):
    """A general Task: train ``model`` with ``loss_fn`` and ``optimizer``, log ``metrics``.

    Parameters
    ----------
    model : nn.Module, optional
        The network; ``forward`` calls it.
    loss_fn : callable, list or dict of callables
        Losses ``fn(y_hat, y)``, summed; each is logged under its name.
    optimizer : str, Optimizer class or instance, default="adam"
        A name such as ``"adam"``, ``"sgd"`` or ``"adamw"``, a class, or a ready instance.
    optimizer_kwargs : dict, optional
        Extra arguments for the optimizer class.
    scheduler : str, scheduler class or instance, or Lightning scheduler dict, optional
        The learning-rate schedule.
    scheduler_kwargs : dict, optional
        Extra arguments for the scheduler class.
    metrics : callable, list or dict, optional
        ``metric(y_hat, y)``; torchmetrics objects are copied for each stage so train,
        val and test never share state.
    learning_rate : float, default=1e-3
        The optimizer's learning rate.
    preprocess, postprocess : Preprocess and Postprocess, optional
        Used by :meth:`predict`; replaced by a DataModule's own when fitted on one.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> import skflash as flash
    >>> task = flash.Task(nn.Linear(3, 1), loss_fn=torch.nn.functional.mse_loss)
    >>> task.predict(torch.zeros(2, 3)).__len__()
    2
    """

    _brings_fused_steps = True  # its stage steps dispatch epoch chunks to the fused loop

    #: The Preprocess a subclass builds when none is given (also when loading a checkpoint).
    preprocess_cls: type[Preprocess] | None = None
    #: The Postprocess a subclass builds when none is given.
    postprocess_cls: type[Postprocess] | None = None

    def __init__(
        self,
        model: nn.Module | None = None,
        loss_fn: Callable | Sequence[Callable] | Mapping[str, Callable] | None = None,
        optimizer: str | type[Optimizer] | Optimizer = "adam",
        optimizer_kwargs: dict[str, Any] | None = None,
        scheduler: Any = None,
        scheduler_kwargs: dict[str, Any] | None = None,
        metrics: Any = None,
        learning_rate: float = 1e-3,
        preprocess: Preprocess | None = None,
        postprocess: Postprocess | None = None,
    ) -> None:
        super().__init__()
        if isinstance(optimizer, str):
            optimizer_class(optimizer)  # fail early on an unknown name
        if isinstance(scheduler, str):
            scheduler_class(scheduler)
        self.model = model
        self.loss_fn = named_callables(loss_fn, "loss_fn")
        self.optimizer = optimizer
        self.optimizer_kwargs = dict(optimizer_kwargs or {})
        self.scheduler = scheduler
        self.scheduler_kwargs = dict(scheduler_kwargs or {})
        self.learning_rate = learning_rate
        metric_fns = named_callables(metrics, "metric")
        # One copy per stage: a metric shared by train and val corrupts both.
        self._metric_fns: dict[str, dict[str, Callable]] = {}
        for stage in STAGES:
            self._metric_fns[stage] = {}
            modules = nn.ModuleDict()
            for name, fn in metric_fns.items():
                if isinstance(fn, nn.Module):
                    modules[name] = copy.deepcopy(fn)
                    self._metric_fns[stage][name] = modules[name]
                else:
                    self._metric_fns[stage][name] = fn
            setattr(self, f"{stage}_metrics", modules)
        self._loss_modules = nn.ModuleDict(
            {name: fn for name, fn in self.loss_fn.items() if isinstance(fn, nn.Module)}
        )
        if preprocess is None and self.preprocess_cls is not None:
            preprocess = self.preprocess_cls()
        if postprocess is None and self.postprocess_cls is not None:
            postprocess = self.postprocess_cls()
        self.data_pipeline = DataPipeline(preprocess, postprocess)
        self._stage = "train"
        with warnings.catch_warnings():  # module arguments are dropped just below
            warnings.filterwarnings("ignore", message=r"Attribute '\w+' is an instance of `nn")
            self.save_hyperparameters(
                ignore=["model", "preprocess", "postprocess"], frame=inspect.currentframe()
            )
        for key in [k for k, v in self.hparams.items() if not is_plain(v)]:
            del self.hparams[key]  # checkpoints keep plain values only

    def __getstate__(self) -> dict[str, Any]:
        """Pickles without the last fit's epoch values or its Trainer."""
        state = super().__getstate__()
        state.pop("epoch_metrics", None)
        state.pop("_epoch_totals", None)
        state.pop("_fuse_decision", None)  # holds the Trainer of the last fit
        return state

    # ------------------------------------------------------------------ data pipeline
    @property
    def preprocess(self) -> Preprocess:
        return self.data_pipeline.preprocess

    @preprocess.setter
    def preprocess(self, preprocess: Preprocess) -> None:
        self.data_pipeline = DataPipeline(preprocess, self.data_pipeline.postprocess)

    @property
    def postprocess(self) -> Postprocess:
        return self.data_pipeline.postprocess

    @postprocess.setter
    def postprocess(self, postprocess: Postprocess) -> None:
        self.data_pipeline = DataPipeline(self.data_pipeline.preprocess, postprocess)

    def setup(self, stage: str) -> None:
        """Adopt the Preprocess and Postprocess of the DataModule being fitted on."""
        datamodule = self.trainer.datamodule if self._trainer is not None else None
        pipeline = getattr(datamodule, "data_pipeline", None)
        if isinstance(pipeline, DataPipeline):
            self.data_pipeline = pipeline

    # ------------------------------------------------------------------ steps
    def forward(self, x: Any) -> Any:
        if self.model is None:
            raise NotImplementedError("Pass a model to Task or override forward.")
        return self.model(x)

    @staticmethod
    def _align(y_hat: Any, y: Any) -> Any:
        """Give ``y_hat`` the shape of ``y`` when they hold the same number of values.

        A model that outputs ``(batch, 1)`` for a target of ``(batch,)`` would otherwise
        broadcast into a ``(batch, batch)`` loss.
        """
        if (
            isinstance(y_hat, torch.Tensor)
            and isinstance(y, torch.Tensor)
            and y_hat.shape != y.shape
            and y_hat.numel() == y.numel()
            and y_hat.is_floating_point() == y.is_floating_point()
        ):
            return y_hat.reshape(y.shape)
        return y_hat

    def compute_loss(
        self, y_hat: Any, y: Any, weight: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The summed loss and each named loss, weighted per sample when ``weight`` is given."""
        if not self.loss_fn:
            raise ValueError("This Task has no loss_fn: pass one to train it.")
        y_hat = self._align(y_hat, y)
        if weight is None:
            losses = {name: fn(y_hat, y) for name, fn in self.loss_fn.items()}
        else:
            losses = {
                name: weighted_loss(fn, name, y_hat, y, weight) for name, fn in self.loss_fn.items()
            }
        total = sum(losses.values()) if len(losses) > 1 else next(iter(losses.values()))
        return total, losses

    @property
    def single_loss_name(self) -> str | None:
        """The name of the Task's only loss (logged beside ``<stage>_loss``), else None."""
        if len(self.loss_fn) != 1:
            return None
        name = next(iter(self.loss_fn))
        return None if name == "loss" else name

    def to_metrics_format(self, y_hat: Any) -> Any:
        """What metrics receive instead of raw model outputs (e.g. probabilities)."""
        return y_hat

    def step(self, batch: Any, batch_idx: int) -> dict[str, Any]:
        """The training/validation/test step; override for custom behaviour."""
        x, y = batch[0], batch[1]
        weight = batch[2] if len(batch) > 2 else None  # (x, y, sample_weight) batches
        y_hat = self(x)
        loss, losses = self.compute_loss(y_hat, y, weight)
        logs: dict[str, Any] = dict(losses) if len(losses) > 1 else {}
        metrics = self._metric_fns[self._stage]
        if metrics:
            preds = self._align(self.to_metrics_format(y_hat), y)
            for name, metric in metrics.items():
                logs[name] = metric(preds, y)
        logs["loss"] = loss
        return {"loss": loss, "logs": logs, "y_hat": y_hat, "y": y}

    def _stage_step(self, stage: str, batch: Any, batch_idx: int) -> dict[str, Any]:
        self._stage = stage
        output = self.step(batch, batch_idx)
        self._log_stage(stage, output["logs"], batch_size_of(batch))
        return output

    def _log_stage(self, stage: str, logs: dict[str, Any], batch_size: int | None) -> None:
        """Log ``<stage>_<name>`` for each value, averaged over the epoch.

        A torchmetrics metric is logged as the object, so Lightning computes it over the
        whole epoch rather than averaging per-batch values. A single loss is logged under
        its own name too (``train_mse_loss`` beside ``train_loss``), as several are.
        """
        metrics = self._metric_fns[stage]
        distributed = getattr(self._trainer, "world_size", 1) > 1  # average over devices
        alias = self.single_loss_name
        if alias is not None and "loss" in logs:
            logs = {**logs, alias: logs["loss"]}
        for name, value in logs.items():
            metric = metrics.get(name)
            self.log(
                f"{stage}_{name}",
                metric if isinstance(metric, nn.Module) else value,
                on_step=False,
                on_epoch=True,
                prog_bar=name == "loss",
                batch_size=batch_size,
                sync_dist=distributed,
            )

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        if isinstance(batch, BatchChunk):
            return self._fused_training_step(batch)
        return self._stage_step("train", batch, batch_idx)["loss"]

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        if isinstance(batch, BatchChunk):
            return self._fused_eval_step("val", batch)
        self._stage_step("val", batch, batch_idx)

    def test_step(self, batch: Any, batch_idx: int) -> None:
        if isinstance(batch, BatchChunk):
            return self._fused_eval_step("test", batch)
        self._stage_step("test", batch, batch_idx)

    def predict_step(self, batch: Any, batch_idx: int = 0, dataloader_idx: int = 0) -> Any:
        return self(batch)

    # ------------------------------------------------------------------ optimizers
    def _trainable_parameters(self) -> Iterator[nn.Parameter]:
        return (p for p in self.parameters() if p.requires_grad)

    def configure_optimizers(self) -> Optimizer | tuple[list[Optimizer], list[Any]]:
        """The optimizer; with a scheduler, ``([optimizer], [scheduler])`` as in Flash."""
        if isinstance(self.optimizer, Optimizer):
            optimizer = self.optimizer
        else:
            cls = optimizer_class(self.optimizer)
            kwargs = {"lr": self.learning_rate, **self.optimizer_kwargs}
            params = list(self._trainable_parameters())
            if self._may_fuse_optimizer():
                optimizer = fused_if_possible(cls, params, kwargs)
            else:
                optimizer = cls(params, **kwargs)
        if self.resume_optimizer_state is not None:
            resume_state(optimizer, self.resume_optimizer_state)
        if self.scheduler is None:
            return optimizer
        return [optimizer], [self._scheduler_for(optimizer)]

    def _scheduler_for(self, optimizer: Optimizer) -> Any:
        """The scheduler as listed: itself, or Lightning's dict where it needs one (a
        given dict; ``monitor`` for plateaus)."""
        scheduler = self.scheduler
        if isinstance(scheduler, (str, type)):
            scheduler = scheduler_class(scheduler)(optimizer, **self.scheduler_kwargs)
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            return {"scheduler": scheduler, "monitor": "val_loss"}
        return scheduler

    def _may_fuse_optimizer(self) -> bool:
        """Fused kernels are a hidden speed-up: never where they change what works.

        Under mixed precision Lightning refuses gradient clipping for optimizers that
        unscale gradients themselves, which fused ones do.
        """
        trainer = self._trainer
        plugin = getattr(trainer, "precision_plugin", None)
        return not isinstance(plugin, MixedPrecision)

    # ------------------------------------------------------------------ predict
    def predict_batches(
        self, x: Any, batch_size: int = 1024, network: nn.Module | None = None
    ) -> Iterator[Any]:
        """Yield postprocessed model outputs for raw data ``x``, one batch at a time.

        Runs the predict-stage hooks, the model in eval mode on its device without
        gradients, and the Postprocess's ``per_batch_transform``: through ``network``, an
        eval-mode twin of the model, when given (see :mod:`skflash.core.aliased`).
        """
        pipeline = self.data_pipeline
        dataset = x if isinstance(x, AutoDataset) else AutoDataset(x, pipeline, "predict")
        loader: Any
        if dataset.fetches_batches:  # array data: slices in order, no DataLoader machinery
            collate = pipeline.loader_collate("predict", batched=True)
            loader = BatchChunk(dataset.data, None, batch_size, collate)
        else:
            loader = pipeline.dataloader(dataset, batch_size)
        device_transform = pipeline.device_transform("predict")
        forward, switched = eval_forward(self, network)
        try:
            device, dtype = self.device, self.dtype
            with torch.no_grad():
                for batch in loader:
                    if isinstance(batch, torch.Tensor):  # the common case, without a walk
                        floating = batch.is_floating_point() and dtype.is_floating_point
                        batch = batch.to(device, dtype if floating else None)
                    else:
                        batch = floats_as(move_data_to_device(batch, device), dtype)
                    if device_transform is not None:
                        batch = device_transform(batch)
                    yield pipeline.postprocess_batch(forward(batch))
        finally:
            for module in switched:
                module.training = True

    def predict(self, x: Any, batch_size: int = 1024) -> list[Any]:
        """Predict raw data: one output per sample, through the predict hooks and Postprocess.

        Parameters
        ----------
        x : Any
            Whatever the Preprocess's ``predict_load_data`` accepts.
        batch_size : int, default=1024
            Samples per forward pass; large inputs never go through as one batch.
        """
        pipeline = self.data_pipeline
        outputs: list[Any] = []
        for output in self.predict_batches(x, batch_size):
            outputs.extend(pipeline.postprocess_samples(output))
        pipeline.postprocess.save(outputs)
        return outputs

    # ------------------------------------------------------------------ checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Keep the Preprocess and Postprocess state as plain values."""
        checkpoint["skflash"] = {
            "preprocess": saved_state(self.preprocess),
            "postprocess": saved_state(self.postprocess),
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        weights = checkpoint.get("state_dict", {}).values()
        dtype = next((w.dtype for w in weights if torch.is_floating_point(w)), None)
        if dtype is not None and dtype != self.dtype:
            self.to(dtype)  # a float64 (or half) model loads as it was trained
        saved = checkpoint.get("skflash")
        if not saved:
            return
        pre = restored(saved["preprocess"], self.preprocess, Preprocess)
        post = restored(saved["postprocess"], self.postprocess, Postprocess)
        self.data_pipeline = DataPipeline(pre, post)
