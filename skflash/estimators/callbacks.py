"""Lightning callbacks the estimators train with: history, best weights, a progress bar."""

from __future__ import annotations

import copy
import math
import sys
import time
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback

from skflash.estimators.quiet import keep_quiet, quiet_rank


def _scalar(value: Any) -> Any:
    return float(value.item()) if isinstance(value, torch.Tensor) else value


def _epoch_values(logged: Any, pl_module: pl.LightningModule) -> dict[str, Any]:
    """The train and val values of an epoch, without the duplicate name of a single loss."""
    alias = getattr(pl_module, "single_loss_name", None)
    skip = {f"train_{alias}", f"val_{alias}"} if alias else set()
    return {k: v for k, v in logged.items() if k.startswith(("train_", "val_")) and k not in skip}


#: Prefix of the callback metrics that carry rank 0's history to the main process.
_SENT = "history/"


class TrainingDivergedError(FloatingPointError, ValueError):
    """The training loss stopped being a finite number.

    A ValueError too, as scikit-learn's MLP raises for non-finite weights, so code that
    handles bad fits (``except ValueError``, searches with ``error_score``) handles it.
    """


class History(Callback):
    """Record each epoch's logged values, and stop a fit whose loss diverges.

    ``history`` is a list of dicts, one per epoch, such as
    ``{"epoch": 0, "train_loss": 0.41, "val_loss": 0.45}``.
    """

    ignores_steps = True  # acts on epochs only: fused steps may skip step bookkeeping

    def __init__(self) -> None:
        self.history: list[dict[str, float]] = []

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Fused steps leave their values on the module; a Task on Lightning's own loop logs them.
        logged = getattr(pl_module, "epoch_metrics", None) or trainer.callback_metrics
        row: dict[str, Any] = {"epoch": trainer.current_epoch}
        row.update((k, v.detach()) for k, v in _epoch_values(logged, pl_module).items())
        loss = row.get("train_loss")
        if loss is not None and not math.isfinite(_scalar(loss)):
            raise TrainingDivergedError(
                f"Training diverged at epoch {trainer.current_epoch + 1}: the training loss is "
                f"{_scalar(loss)}. Try a lower learning_rate, or check the data for extreme values."
            )
        self.history.append(row)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Values stay tensors during the fit (no per-value sync); floats for the user.
        self.history = [{k: _scalar(v) for k, v in row.items()} for row in self.history]
        if trainer.world_size > 1 and trainer.is_global_zero:
            # A multi-process launcher (ddp_spawn, ddp_fork) sends rank 0's callback
            # metrics back to the main process, whose copy of this callback saw nothing.
            names = list(dict.fromkeys(k for row in self.history for k in row))
            for name in names:
                values = [row.get(name, math.nan) for row in self.history]
                trainer.callback_metrics[f"{_SENT}{name}"] = torch.tensor(values)

    def recover(self, trainer: pl.Trainer) -> None:
        """After a multi-process fit, take the history rank 0 sent back (if any)."""
        sent = {
            k.removeprefix(_SENT): v.tolist()
            for k, v in trainer.callback_metrics.items()
            if k.startswith(_SENT)
        }
        if self.history or "epoch" not in sent:
            return
        self.history = [
            {
                name: (int(values[i]) if name == "epoch" else float(values[i]))
                for name, values in sent.items()
                if not (name != "epoch" and math.isnan(values[i]))
            }
            for i in range(len(sent["epoch"]))
        ]


class BestWeights(Callback):
    """Keep the weights of the epoch with the best monitored value; restore them at the end.

    The copy stays in memory: nothing is written to disk.
    """

    ignores_steps = True

    def __init__(self, monitor: str = "val_loss") -> None:
        self.monitor = monitor
        self.best_score = math.inf
        self.best_epoch: int | None = None
        self.best_state: dict[str, torch.Tensor] | None = None

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is None:
            return
        score = _scalar(value)
        if score < self.best_score:
            self.best_score = score
            self.best_epoch = trainer.current_epoch
            self.best_state = copy.deepcopy(pl_module.state_dict())

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.best_state is not None:
            pl_module.load_state_dict(self.best_state)


def live_bar_class(stream: Any) -> type | None:
    """The progress bar class for ``stream``: tqdm.auto's choice in a notebook (a widget),
    tqdm's text bar on a terminal, None elsewhere (a log file, a CI job), where a bar's
    redraws would pile up as lines."""
    from tqdm import autonotebook, std
    from tqdm.auto import tqdm as auto_tqdm

    if autonotebook.tqdm is not std.tqdm:  # tqdm.auto found a notebook
        return auto_tqdm
    isatty = getattr(stream, "isatty", None)
    return std.tqdm if isatty and isatty() else None


class EpochProgress(Callback):
    """Progress over the epochs with the latest losses (``verbose=1``).

    On a terminal and in a notebook one live bar (``tqdm.auto``) is updated each epoch;
    elsewhere (a log file, a CI job) one summary line is written when the fit ends, so
    logs do not fill with redraws.

    Parameters
    ----------
    name : str
        What is training, shown first (the estimator's class name).
    stream : file-like, optional
        Where to write; ``sys.stderr`` (as progress bars do) if None.
    """

    ignores_steps = True

    def __init__(self, name: str, stream: Any = None) -> None:
        self.name = name
        self.stream = stream
        self._start = 0.0
        self._line = ""
        self._bar: Any = None

    def _out(self) -> Any:
        return self.stream if self.stream is not None else sys.stderr

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start = time.perf_counter()
        self._line = ""
        bar = live_bar_class(self._out()) if trainer.is_global_zero else None
        total = trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else None
        if bar is not None:
            self._bar = bar(total=total, desc=self.name, unit="epoch", file=self._out())

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        logged = {**trainer.callback_metrics, **getattr(pl_module, "epoch_metrics", {})}
        values = {
            name: _scalar(value) for name, value in sorted(_epoch_values(logged, pl_module).items())
        }
        losses = "  ".join(f"{name}={value:.4g}" for name, value in values.items())
        done, total = trainer.current_epoch + 1, trainer.max_epochs
        elapsed = time.perf_counter() - self._start
        self._line = f"{self.name}: {done}/{total} epochs in {elapsed:.1f}s  {losses}"
        if self._bar is not None:
            self._bar.set_postfix_str(losses, refresh=False)
            self._bar.update(1)

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, error: Any) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._bar is not None:
            if self._bar.total is not None and self._bar.n < self._bar.total:
                self._bar.total = self._bar.n  # stopped early: a finished bar, not a failed one
                self._bar.refresh()
            self._bar.close()
            self._bar = None
        elif self._line and trainer.is_global_zero:
            self._out().write(self._line + "\n")
            self._out().flush()

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_bar": None}  # a bar is not sent to other processes


class QuietFit(Callback):
    """Keep a quiet fit quiet: the warning filters put back at the fit's first hooks
    (another thread may have replaced them, see :mod:`skflash.estimators.quiet`), and
    Lightning silenced in the processes a multi-process strategy starts (``ddp_spawn``),
    which do not inherit the main process's logger levels and warning filters.

    A spawned rank receives the Trainer, this callback included, pickled: unpickling it
    there silences the process before Lightning connects the ranks, so its banner and
    configuration warnings stay hidden too.
    """

    ignores_steps = True

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "quiet": True}  # never empty, so unpickling calls setstate

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        quiet_rank()

    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        if trainer.world_size > 1:
            quiet_rank()
        keep_quiet()  # just before Lightning sets up its loops (and may warn)

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        keep_quiet()  # Lightning's loops load their data next (and may warn)

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        keep_quiet()
