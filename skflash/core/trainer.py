"""Trainer: a Lightning Trainer that can also finetune a model's backbone.

It differs from Lightning's in two more ways. :meth:`Trainer.predict` returns what
``Task.predict`` would: the Task's Postprocess applied to each batch of outputs, split
into one output per sample. And a ``KeyboardInterrupt`` (Ctrl+C, or a callback that
raises it) reaches the caller as a ``KeyboardInterrupt`` once Lightning has shut the run
down, instead of ending the process with ``SystemExit``. Inside a library call, a
notebook or a search, the caller decides what an interrupt means.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import signal
import threading
from collections.abc import Iterator
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import BaseFinetuning

from skflash.core.finetuning import NoFreeze, _backbone, finetuning_callback
from skflash.data.pipeline import DataPipeline


@contextlib.contextmanager
def interrupts_reraised() -> Iterator[None]:
    """Turn Lightning's exit on a KeyboardInterrupt back into the KeyboardInterrupt.

    Lightning answers an interrupt with a graceful shutdown, ignores SIGINT from then on,
    and calls ``sys.exit(1)``; in a thread other than the main one, ignoring SIGINT fails
    with a ValueError instead. Either way the original KeyboardInterrupt is the context
    of what escapes: it is raised again, and the caller's SIGINT handler is restored.
    """
    main = threading.current_thread() is threading.main_thread()
    handler = signal.getsignal(signal.SIGINT) if main else None
    try:
        yield
    except (SystemExit, ValueError) as error:
        interrupt = error.__context__
        if isinstance(interrupt, KeyboardInterrupt):
            raise interrupt.with_traceback(interrupt.__traceback__) from None
        raise
    finally:
        if main and handler is not None and signal.getsignal(signal.SIGINT) is not handler:
            signal.signal(signal.SIGINT, handler)


def end_started_processes(trainer: pl.Trainer, running_before: set[Any]) -> None:
    """Kill the processes a fit forked or spawned (``ddp_fork``, ``ddp_spawn``) that are
    still running: interrupted in the main process alone (a notebook's interrupt signals
    only the kernel), they would wait on the others forever and hold up the exit.

    Those the launcher lists, and, under a launcher that starts processes, every child
    started since the fit began (``running_before`` holds those running then): an
    interrupt that lands while the processes start comes before the launcher lists them.
    """
    launcher = getattr(trainer.strategy, "launcher", None)
    if not hasattr(launcher, "procs"):  # no launcher of processes: none were started
        return
    listed = [p for p in launcher.procs or [] if hasattr(p, "is_alive")]
    started = listed + [
        p for p in multiprocessing.active_children() if p not in running_before and p not in listed
    ]
    for process in started:
        if process.is_alive():
            process.kill()
    for process in started:
        process.join(timeout=10)


class Trainer(pl.Trainer):
    """A ``pytorch_lightning.Trainer`` with :meth:`finetune`.

    Every argument is Lightning's own; see ``pytorch_lightning.Trainer``. ``fit``,
    ``validate``, ``test`` and ``predict`` raise ``KeyboardInterrupt`` when interrupted,
    after Lightning's graceful shutdown, rather than exiting the process.
    """

    def fit(self, *args: Any, **kwargs: Any) -> None:
        running_before = set(multiprocessing.active_children())
        try:
            with interrupts_reraised():
                super().fit(*args, **kwargs)
        except KeyboardInterrupt:
            end_started_processes(self, running_before)
            raise

    def validate(self, *args: Any, **kwargs: Any) -> Any:
        with interrupts_reraised():
            return super().validate(*args, **kwargs)

    def test(self, *args: Any, **kwargs: Any) -> Any:
        with interrupts_reraised():
            return super().test(*args, **kwargs)

    def predict(self, *args: Any, **kwargs: Any) -> Any:
        """Lightning's ``predict``, with the model's Postprocess applied to the outputs.

        For a :class:`~skflash.core.model.Task` (any model with a ``data_pipeline``), each
        batch of outputs goes through the Postprocess's ``per_batch_transform``, then
        ``uncollate`` and ``per_sample_transform``: the result is a list with one entry
        per batch, each a list of per-sample outputs (one such list per dataloader when
        there are several). When the Postprocess has a ``save_path``, all the samples are
        saved there too, as ``Task.predict`` does. Other models get Lightning's raw
        outputs. Arguments are Lightning's own.
        """
        with interrupts_reraised():
            outputs = super().predict(*args, **kwargs)
        pipeline = getattr(self.lightning_module, "data_pipeline", None)
        if outputs is None or not isinstance(pipeline, DataPipeline):
            return outputs
        several = len(self.num_predict_batches) > 1
        per_loader = outputs if several else [outputs]
        processed = [
            [pipeline.postprocess_samples(pipeline.postprocess_batch(batch)) for batch in loader]
            for loader in per_loader
        ]
        pipeline.postprocess.save(
            [sample for loader in processed for batch in loader for sample in batch]
        )
        return processed if several else processed[0]

    def finetune(
        self,
        model: pl.LightningModule,
        train_dataloader: Any = None,
        val_dataloaders: Any = None,
        datamodule: pl.LightningDataModule | None = None,
        strategy: Any = "no_freeze",
    ) -> None:
        """Fit ``model`` while a finetuning strategy freezes and unfreezes its ``backbone``.

        Parameters
        ----------
        strategy : str, (str, argument) or BaseFinetuning, default="no_freeze"
            ``"no_freeze"``, ``"freeze"``, ``"freeze_unfreeze"`` (argument: the epoch to
            unfreeze at) or ``"unfreeze_milestones"`` (argument: two epochs); names are
            case-insensitive. ``None``, an unknown name or any other value raises
            :class:`~skflash.core.finetuning.FinetuningStrategyError`, a Lightning
            ``MisconfigurationException`` that is also a ``ValueError``.
        """
        callback = finetuning_callback(strategy)
        if not isinstance(callback, NoFreeze):
            _backbone(model)  # a clear error before training starts
        self.callbacks = [c for c in self.callbacks if not isinstance(c, BaseFinetuning)]
        self.callbacks.append(callback)
        self.fit(model, train_dataloader, val_dataloaders, datamodule)
