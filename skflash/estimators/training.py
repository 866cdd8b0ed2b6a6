"""Running the Lightning Trainer for a fit, and collecting what it learned.

The Trainer is private to the fit: it is built here from the estimator's parameters,
its callbacks record the history and keep the best weights, and nothing of it (or of
the training data) outlives the fit.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
from collections.abc import Iterator
from typing import Any

import torch
from lightning_fabric.utilities.exceptions import MisconfigurationException
from pytorch_lightning.callbacks import Callback, EarlyStopping, ModelCheckpoint

from skflash.core.dropout import seed_layers
from skflash.core.model import Task
from skflash.core.threads import threads_for_setting, torch_threads
from skflash.core.trainer import Trainer
from skflash.data.numpy_data import NumpyDataModule
from skflash.estimators import processes
from skflash.estimators.assembly import SEEDING, trainable_count
from skflash.estimators.callbacks import BestWeights, EpochProgress, History, QuietFit
from skflash.estimators.fit_plan import logs_epoch_metrics
from skflash.estimators.quiet import keep_quiet, quiet_lightning


@dataclasses.dataclass
class FitOutcome:
    """What one run of the Trainer leaves: the per-epoch history, the epoch whose weights
    were kept, the optimizer's state, and the trainable parameter count."""

    history: list[dict[str, Any]]
    best_epoch: int | None
    optimizer_state: dict[str, Any] | None
    n_trainable: int


def fit_callbacks(
    params: dict[str, Any], validating: bool, owner: str
) -> tuple[History, BestWeights | None, list[Callback]]:
    """The fit's callbacks: history, early stopping with best weights, the user's own
    (copied, so a fit never changes them)."""
    history = History()
    callbacks: list[Callback] = [history]
    best = None
    users = [copy.deepcopy(c) for c in (params["callbacks"] or [])]
    stops_on_val = any(isinstance(c, EarlyStopping) and c.monitor == "val_loss" for c in users)
    if stops_on_val and not validating:
        raise ValueError(
            f"{owner}'s callbacks hold an EarlyStopping on 'val_loss', which exists only "
            "when the fit holds out validation rows: set early_stopping=True (the rows "
            "are validation_fraction of the data)."
        )
    if validating:
        best = BestWeights("val_loss")
        if not stops_on_val:  # the user's own EarlyStopping on val_loss replaces this one
            callbacks.append(EarlyStopping("val_loss", patience=params["patience"]))
        callbacks.append(best)
    if int(params["verbose"]) == 1:
        callbacks.append(EpochProgress(owner))
    if int(params["verbose"]) < 2:
        callbacks.append(QuietFit())
    return history, best, callbacks + users


def make_trainer(
    params: dict[str, Any], callbacks: list[Callback], epochs: int, owner: str
) -> Trainer:
    """The fit's Trainer: silent unless ``verbose`` asks, no files unless a logger or a
    ModelCheckpoint is passed, the routed ``trainer__`` arguments on top."""
    verbose = int(params["verbose"])
    kwargs: dict[str, Any] = {
        "max_epochs": epochs,
        "accelerator": params["accelerator"],
        "devices": params["devices"],
        "logger": False,
        "enable_checkpointing": any(isinstance(c, ModelCheckpoint) for c in callbacks),
        "enable_progress_bar": verbose >= 2,
        "enable_model_summary": verbose >= 2,
        "num_sanity_val_steps": 0,
    }
    if params["precision"] is not None:
        kwargs["precision"] = params["precision"]
    routed = params["trainer_kwargs"]
    kwargs.update(routed)
    kwargs["callbacks"] = callbacks
    trainer = _trainer(kwargs)
    if trainer.world_size > 1:  # processes forked or spawned here, or a launcher's
        settings = processes.local_settings(trainer, routed, owner)
        if settings:
            trainer = _trainer({**kwargs, **settings})
    return trainer


def _trainer(kwargs: dict[str, Any]) -> Trainer:
    try:
        return Trainer(**kwargs)
    except (MisconfigurationException, ValueError, TypeError) as error:
        kind = TypeError if isinstance(error, TypeError) else ValueError
        raise kind(f"The Lightning Trainer refused these settings: {error}") from error


@contextlib.contextmanager
def global_rng_kept() -> Iterator[None]:
    """Restore torch's global generators afterwards, saving and restoring under the
    seeding lock (a restore in one thread must not land between another's seeding and
    its use)."""
    devices = None if torch.cuda.is_available() else []
    with SEEDING:
        kept = torch.random.fork_rng(devices=devices)
        kept.__enter__()
    try:
        yield
    finally:
        with SEEDING:
            kept.__exit__(None, None, None)


def release_data(trainer: Trainer, datamodule: NumpyDataModule) -> None:
    """Drop this fit's training tensors now.

    Lightning's Trainer and DataModule reference each other, so without this the
    tensors (a float32 copy of float64 data, say) would live until the next garbage
    collection, which costs about 0.2 s.
    """
    loaders = [trainer.train_dataloader, trainer.val_dataloaders]
    for loader in loaders:
        for one in loader if isinstance(loader, (list, tuple)) else [loader]:
            release = getattr(one, "release", None)
            if release is not None:
                release()
    for dataset in (datamodule.train_dataset, datamodule.val_dataset):
        if dataset is not None:
            dataset.data = None


def run_trainer(
    task: Task,
    datamodule: NumpyDataModule,
    params: dict[str, Any],
    epochs: int,
    seed: int,
    owner: str,
    streamed: bool = False,
) -> FitOutcome:
    """Train ``task`` on ``datamodule`` for ``epochs``; dropout and other draws during
    training come from ``seed``. The Trainer and the data are released afterwards."""
    validating = datamodule.val_dataset is not None
    task.prepare_fit(log_epoch_metrics=logs_epoch_metrics(params, validating))
    history, best, callbacks = fit_callbacks(params, validating, owner)
    trainer = make_trainer(params, callbacks, epochs, owner)
    if streamed and trainer.world_size > 1:
        raise ValueError(
            "A fit on a Dask collection streams its blocks in one process; "
            f"devices={params['devices']!r} would train {trainer.world_size} "
            "processes on the same stream. Use devices=1, or compute() the data first."
        )
    if trainer.world_size > 1:  # the global batch stays batch_size
        datamodule.batch_size = processes.process_batch_size(
            params["batch_size"], datamodule.batch_size, trainer.world_size
        )
    with SEEDING:  # what training draws from the global generator (dropout on a GPU)
        torch.manual_seed(seed)
    seed_layers(task, seed)  # the built-in dropout's own generators: threads keep them
    n_trainable = trainable_count(task)
    threads = threads_for_setting(params["num_threads"], n_trainable, datamodule.batch_size)
    with torch_threads(threads), processes.errors_as_raised(int(params["verbose"]) < 2):
        keep_quiet()  # another thread may have replaced the warning filters meanwhile
        trainer.fit(task, datamodule=datamodule)
    history.recover(trainer)
    optimizer_state = task.finish_fit(trainer)
    release_data(trainer, datamodule)
    best_epoch = None if best is None else best.best_epoch
    return FitOutcome(history.history, best_epoch, optimizer_state, n_trainable)


def quiet_fit(verbose: int) -> contextlib.AbstractContextManager:
    """Lightning silenced for a fit below ``verbose=2``, and torch's global generators
    left as they were."""
    stack = contextlib.ExitStack()
    stack.enter_context(global_rng_kept())
    stack.enter_context(quiet_lightning(verbose < 2))
    return stack
