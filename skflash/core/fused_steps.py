"""Fused steps: a whole epoch of optimizer steps inside one Lightning training step.

Lightning's bookkeeping around each step costs about as much as a small model's forward
and backward pass. When the DataModule hands ``training_step`` a
:class:`~skflash.data.batch_loader.BatchChunk` (one per epoch), the Task runs the epoch's
mini-batches itself under manual optimization: per batch, the Task's ``step``, backward
and the optimizer step; per epoch, one log of each value and the epoch schedulers. The
Trainer still runs the loop: epochs, validation, callbacks, loggers, precision, devices.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import (
    BaseFinetuning,
    Callback,
    EarlyStopping,
    LearningRateMonitor,
    ModelCheckpoint,
    ModelSummary,
    ProgressBar,
)
from pytorch_lightning.plugins.precision import DoublePrecision, Precision
from pytorch_lightning.strategies import SingleDeviceStrategy
from pytorch_lightning.utilities.model_helpers import is_overridden

from skflash.data.batch_loader import BatchChunk

#: Hooks, of a callback or of the module, whose override means someone watches each
#: batch or optimizer step.
_BATCH_HOOKS = tuple(
    f"on_{stage}_batch_{when}"
    for stage in ("train", "validation", "test")
    for when in ("start", "end")
)
CALLBACK_STEP_HOOKS = (
    *_BATCH_HOOKS,
    "on_before_backward",
    "on_after_backward",
    "on_before_optimizer_step",
    "on_before_zero_grad",
)
#: The module may also replace how the optimizer steps.
STEP_HOOKS = (*CALLBACK_STEP_HOOKS, "optimizer_step", "optimizer_zero_grad")
#: Callbacks that act on epochs, or only display what they are given.
_EPOCH_CALLBACKS = (EarlyStopping, BaseFinetuning, ProgressBar, ModelSummary)


def observes_steps(callback: Callback) -> bool:
    """Whether ``callback`` needs to see every batch and optimizer step."""
    if getattr(callback, "ignores_steps", False) or isinstance(callback, _EPOCH_CALLBACKS):
        return False
    if isinstance(callback, LearningRateMonitor):
        return callback.logging_interval != "epoch"
    if isinstance(callback, ModelCheckpoint):  # saving every n steps, or by time
        return bool(getattr(callback, "_every_n_train_steps", 1)) or (
            getattr(callback, "_train_time_interval", 1) is not None
        )
    return any(is_overridden(hook, callback, Callback) for hook in CALLBACK_STEP_HOOKS)


class FusedSteps:
    """Mixin for a LightningModule with a ``step(batch, batch_idx)`` returning
    ``{"loss", "logs"}`` and a ``_log_stage(stage, logs, batch_size)``.

    It owns the choice between the two ways a fit runs (:meth:`fuses_steps`): fused
    epochs, or Lightning's own loop of one step per batch with automatic optimization.
    A DataModule that can hand out epoch chunks asks it which loaders to build.
    """

    #: Whether fused steps report their epoch values through ``self.log`` (for loggers,
    #: callbacks and the progress bar). Lightning's logging costs about a millisecond per
    #: value; a caller that reads :attr:`epoch_metrics` instead may switch it off.
    log_epoch_metrics = True
    #: Whether fused steps may bypass Lightning's optimizer wrapper and ``global_step``
    #: when nothing observes them (see :meth:`_skips_step_bookkeeping`). Off by default,
    #: so that a Trainer a user keeps counts its steps; the estimators, which own and
    #: discard their Trainer, switch it on.
    lean_steps = False

    # ------------------------------------------------------------------ the decision
    @property
    def automatic_optimization(self) -> bool:
        """Lightning's flag: False while the fit runs fused epochs (manual optimization)."""
        return self._automatic_optimization and not self.fuses_steps()

    @automatic_optimization.setter
    def automatic_optimization(self, value: bool) -> None:
        self._automatic_optimization = value

    def fuses_steps(self) -> bool:
        """Whether the current fit runs fused epochs: decided once per Trainer.

        Fused when the DataModule offers epoch chunks and nothing needs Lightning's
        per-batch loop: no gradient clipping or accumulation, no ``max_steps``,
        ``val_check_interval`` or ``limit_*_batches``, one device, no callback that
        watches batches or steps (a ``LearningRateMonitor`` by step, a checkpoint every
        n steps, any batch hook), no override of a step or batch hook or of the stage
        steps in a subclass, and no logger together with a subclass's own ``step``
        (whose step-level logs would be collapsed). Otherwise Lightning runs every
        batch as it documents, with automatic optimization.
        """
        trainer = self._trainer
        if trainer is None or not self._automatic_optimization:
            return False
        cached = getattr(self, "_fuse_decision", None)
        if cached is not None and cached[0] is trainer:
            return cached[1]
        decision = self._decide_fusing(trainer)
        self._fuse_decision = (trainer, decision)
        return decision

    def _decide_fusing(self, trainer: pl.Trainer) -> bool:
        datamodule = trainer.datamodule
        if datamodule is None or not datamodule.offers_fused_steps():
            return False
        if trainer.gradient_clip_val or trainer.accumulate_grad_batches != 1:
            return False
        if trainer.max_steps != -1 or trainer.val_check_interval != 1.0:
            return False
        limits = (trainer.limit_train_batches, trainer.limit_val_batches)
        if any(limit != 1.0 for limit in limits):
            return False
        if not isinstance(trainer.strategy, SingleDeviceStrategy):
            return False
        if self._overrides_step_dispatch():
            return False
        if any(is_overridden(hook, self, pl.LightningModule) for hook in STEP_HOOKS):
            return False
        if trainer.loggers and self._overrides("step"):
            return False
        return not any(observes_steps(callback) for callback in trainer.callbacks)

    def _overrides(self, name: str) -> bool:
        """Whether a subclass replaces ``name`` of the class that brings fused steps."""
        owner = next(k for k in type(self).__mro__ if name in vars(k))
        return not vars(owner).get("_brings_fused_steps", False)

    def _overrides_step_dispatch(self) -> bool:
        return any(
            self._overrides(name) for name in ("training_step", "validation_step", "test_step")
        )

    def on_fit_start(self) -> None:
        self._lean = self.fuses_steps() and self._skips_step_bookkeeping()
        self.epoch_metrics: dict[str, torch.Tensor] = {}

    def on_fit_end(self) -> None:
        self._fuse_decision = None

    def on_train_epoch_end(self) -> None:
        """Step the epoch schedulers of fused epochs, once validation has run.

        Lightning leaves schedulers to manual optimization; stepping them here, after the
        epoch's validation, gives ``ReduceLROnPlateau`` this epoch's ``val_loss``.
        """
        if not self.fuses_steps():
            return
        for config in self.trainer.lr_scheduler_configs:
            if config.interval == "epoch" and (self.current_epoch + 1) % config.frequency == 0:
                self._step_epoch_scheduler(config)

    def _skips_step_bookkeeping(self) -> bool:
        """Whether backward and optimizer steps may bypass Lightning's per-step machinery.

        Lightning's LightningOptimizer and ``manual_backward`` cost ~90 µs per step: the
        per-step hooks, precision handling and the step counter (``global_step``). They
        are skipped only when :attr:`lean_steps` allows it and nothing can observe them:
        plain precision, no logger, and only callbacks that declare
        ``ignores_steps = True`` (or EarlyStopping, which acts on epochs).
        """
        trainer = self.trainer
        if not self.lean_steps:
            return False
        if type(trainer.precision_plugin) not in (Precision, DoublePrecision):
            return False
        if trainer.loggers:
            return False
        return all(
            getattr(callback, "ignores_steps", False) or isinstance(callback, EarlyStopping)
            for callback in trainer.callbacks
        )

    def _fused_training_step(self, chunk: BatchChunk) -> None:
        if self.automatic_optimization:
            raise RuntimeError(
                "A BatchChunk holds many optimizer steps: set `task.automatic_optimization = "
                "False` to train on chunked loaders."
            )
        self._stage = "train"
        optimizer = self.optimizers()
        raw = optimizer.optimizer
        lean = getattr(self, "_lean", False)
        step_schedulers = [c for c in self.trainer.lr_scheduler_configs if c.interval == "step"]
        totals = _LogTotals()
        convert = _input_conversion(self.trainer)
        needs_closure = _step_needs_closure(type(raw))
        for batch_idx, batch in enumerate(chunk):
            if convert is not None:
                batch = convert(batch)
            stepper = raw if lean else optimizer
            closure = _StepClosure(self, stepper, lean, batch, batch_idx)
            if needs_closure:  # e.g. LBFGS, which evaluates the loss several times
                stepper.step(closure)
            else:
                closure()
                stepper.step()
            for config in step_schedulers:
                config.scheduler.step()
            totals.add(closure.output["logs"], batch_size_of(batch))
        self._log_totals("train", totals, chunk.starts_epoch)

    def _step_epoch_scheduler(self, config: Any) -> None:
        if isinstance(config.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            name = config.monitor or "val_loss"
            value = getattr(self, "epoch_metrics", {}).get(name)
            if value is None:
                value = self.trainer.callback_metrics.get(name)
            if value is not None:
                config.scheduler.step(value)
        else:
            config.scheduler.step()

    def _fused_eval_step(self, stage: str, chunk: BatchChunk) -> None:
        self._stage = stage
        totals = _LogTotals()
        convert = _input_conversion(self.trainer)
        for batch_idx, batch in enumerate(chunk):
            if convert is not None:
                batch = convert(batch)
            totals.add(self.step(batch, batch_idx)["logs"], batch_size_of(batch))
        self._log_totals(stage, totals, chunk.starts_epoch)

    def _log_totals(self, stage: str, totals: _LogTotals, starts_epoch: bool = True) -> None:
        """Log a chunk's means (Lightning averages an epoch's chunks by their sizes) and
        keep the epoch's means so far in :attr:`epoch_metrics`."""
        epochs = vars(self).setdefault("_epoch_totals", {})
        if starts_epoch or stage not in epochs:
            epochs[stage] = _LogTotals()
        epochs[stage].merge(totals)
        means = epochs[stage].means()
        self.epoch_metrics.update({f"{stage}_{name}": value for name, value in means.items()})
        if self.log_epoch_metrics:
            self._log_stage(stage, totals.means(), totals.count)


class _StepClosure:
    """Forward, zero the gradients and backward one batch; the optimizer calls it.

    ``lean`` skips Lightning's manual-optimization machinery (``optimizer`` is then the
    raw torch optimizer). The last call's step output stays in :attr:`output`.
    """

    __slots__ = ("batch", "batch_idx", "lean", "module", "optimizer", "output")

    def __init__(self, module: Any, optimizer: Any, lean: bool, batch: Any, batch_idx: int) -> None:
        self.module, self.optimizer, self.lean = module, optimizer, lean
        self.batch, self.batch_idx = batch, batch_idx
        self.output: dict[str, Any] = {}

    def __call__(self) -> torch.Tensor:
        self.output = self.module.step(self.batch, self.batch_idx)
        loss = self.output["loss"]
        if self.lean:
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
        else:
            self.optimizer.zero_grad()
            self.module.manual_backward(loss)
        return loss


class _LogTotals:
    """Sample-weighted running sums of a chunk's logged values, averaged once per epoch.

    The sums are updated in place: keeping one small tensor per batch alive would
    scatter them through the heap and fragment it on long epochs.
    """

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.count = 0

    def add(self, logs: dict[str, Any], batch_size: int | None) -> None:
        n = batch_size or 1
        self.count += n
        for name, value in logs.items():
            if isinstance(value, torch.Tensor):
                if name in self.sums:
                    self.sums[name].add_(value.detach(), alpha=n)
                else:
                    self.sums[name] = value.detach() * n

    def merge(self, other: _LogTotals) -> None:
        """Add another chunk's sums to these."""
        self.count += other.count
        for name, total in other.sums.items():
            self.sums[name] = self.sums[name] + total if name in self.sums else total.clone()

    def means(self) -> dict[str, torch.Tensor]:
        return {name: total / max(self.count, 1) for name, total in self.sums.items()}


@functools.cache
def _step_needs_closure(cls: type) -> bool:
    """Whether ``cls.step`` requires a closure (LBFGS does; most optimizers take none)."""
    try:
        closure = inspect.signature(cls.step).parameters.get("closure")
    except (TypeError, ValueError):
        return False
    return closure is not None and closure.default is inspect.Parameter.empty


def _input_conversion(trainer: pl.Trainer) -> Any:
    """The precision plugin's cast of input batches, or None when it changes nothing.

    Lightning's loop casts the batch it hands to a step (e.g. to float64 under
    ``"64-true"``, to bfloat16 under ``"bf16-true"``); the mini-batches inside a chunk
    never pass through that loop, so the fused steps cast each one the same way.
    """
    plugin = trainer.precision_plugin
    if type(plugin).convert_input is Precision.convert_input:
        return None
    return plugin.convert_input


def batch_size_of(batch: Any) -> int | None:
    """Rows in a batch (its first tensor), or None when it cannot tell."""
    first = batch[0] if isinstance(batch, (list, tuple)) and batch else batch
    return len(first) if isinstance(first, torch.Tensor) and first.ndim else None
