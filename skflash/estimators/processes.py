"""How a fit on several devices starts its processes, and each process's share of a batch.

``devices=N`` changes where a fit runs, not what it learns: N processes each take
``batch_size / N`` rows of every batch, so the global batch, the steps per epoch and the
learning-rate schedule are those of one process.

The processes are started without running the user's script again (which Lightning's
default ``"ddp"`` launcher does). Measured and documented (Lightning's multiprocessing
launcher; Python's ``multiprocessing`` start methods):

- ``"ddp_fork"`` copies the running process: it works in a script with or without an
  ``if __name__ == "__main__"`` guard, in a notebook, under pytest, and starts in about a
  tenth of ``"ddp_spawn"``'s time (no new interpreter imports torch). It is unavailable
  on Windows, unsafe on macOS (system libraries start threads), and unusable once CUDA
  is initialised in the parent (a forked child cannot use it).
- ``"ddp_spawn"`` starts fresh interpreters, which import the main module again: a
  script needs the ``__main__`` guard, and objects defined in a notebook cannot travel.

So a fit on the CPU forks where forking is safe, and spawns otherwise. Under a launcher
that started the processes already (``torchrun``, SLURM), Lightning's ``"ddp"`` joins
them. A daemonic worker (a Dask or multiprocessing pool worker; joblib's loky workers
are not daemonic) can start no processes at all, and is refused with a clear error.

An error raised in a started process reaches the caller as itself (a
``TrainingDivergedError``, a callback's ``RuntimeError``), as with one device, rebuilt
from the traceback text torch sends back.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import multiprocessing
import re
import sys
from collections.abc import Iterator
from typing import Any

import torch
from lightning_fabric.plugins.environments import LightningEnvironment
from lightning_fabric.plugins.environments.lightning import find_free_network_port
from torch.multiprocessing.spawn import ProcessRaisedException

from skflash.estimators.fit_plan import on_cpu

#: Lightning's strategies that start a fit's processes from the fitting process.
STARTED_HERE = ("ddp_fork", "ddp_spawn", "ddp_notebook")


class OwnPort(LightningEnvironment):
    """Lightning's environment for processes started on this machine, with a port of
    the fit's own.

    Lightning's launcher writes the port it used into ``os.environ["MASTER_PORT"]`` and
    reads it from there next time, so two fits at once (a parallel search, threads)
    would both listen on it. Each fit connects its processes on a free port of its own.
    """

    def __init__(self) -> None:
        super().__init__()
        self.port = find_free_network_port()

    @property
    def main_port(self) -> int:
        return self.port


def fork_is_safe(accelerator: Any) -> bool:
    """Whether the processes of a fit on ``accelerator`` may be forked from this one."""
    if "fork" not in multiprocessing.get_all_start_methods() or sys.platform == "darwin":
        return False
    return on_cpu(accelerator) and not torch.cuda.is_initialized()


def local_settings(trainer: Any, routed: dict[str, Any], owner: str) -> dict[str, Any]:
    """The Trainer arguments of a fit on ``trainer.world_size > 1`` processes: a strategy
    that starts them here and a port of their own, unless the user chose them or a
    launcher (torchrun, SLURM) started the processes, where Lightning's ``"ddp"`` joins
    them."""
    environment = getattr(trainer.strategy, "cluster_environment", None)
    if environment is not None and environment.creates_processes_externally:
        return {}
    if multiprocessing.current_process().daemon:
        raise ValueError(
            f"devices={trainer.num_devices!r} needs {trainer.world_size} processes, but this "
            "process is a daemonic worker (a Dask or multiprocessing pool worker), which "
            "cannot start any. Fit with devices=1 here, or run the multi-device fit from a "
            "main process."
        )
    settings = {} if "strategy" in routed else {"strategy": strategy_for(trainer, owner)}
    if "plugins" not in routed and settings.get("strategy", routed.get("strategy")) in STARTED_HERE:
        settings["plugins"] = [OwnPort()]
    return settings


def strategy_for(trainer: Any, owner: str) -> str:
    """The strategy of a fit whose ``trainer.world_size`` processes this machine starts."""
    if trainer.num_nodes > 1:
        raise ValueError(
            f"num_nodes={trainer.num_nodes} spans several machines, whose processes this "
            f"{owner} cannot start itself. Start your script on every node with a launcher "
            "that sets the distributed environment: `torchrun --nnodes ... "
            "--nproc-per-node ...` (MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK, LOCAL_RANK) "
            "or SLURM's `srun` (SLURM_NTASKS, SLURM_PROCID...)."
        )
    return "ddp_fork" if fork_is_safe(trainer.accelerator) else "ddp_spawn"


def process_batch_size(setting: int | str, batch_size: int, processes: int) -> int:
    """Rows each of ``processes`` takes from a batch of ``batch_size`` (``setting`` being
    the ``batch_size`` parameter): the global batch stays ``batch_size``."""
    if batch_size % processes == 0:
        return batch_size // processes
    if setting == "auto":  # a small table's one batch: each process takes its half
        return -(-batch_size // processes)
    raise ValueError(
        f"batch_size={batch_size} cannot be shared evenly by {processes} processes "
        f"(devices): each takes batch_size / {processes} rows of every batch. Use a "
        f"multiple of {processes}, such as {processes * max(1, batch_size // processes)}."
    )


def original_error(raised: ProcessRaisedException) -> BaseException | None:
    """The error a started process raised, rebuilt from the traceback torch sends back
    (its only record of it): the class named on its last line, called with the message;
    None where the class cannot be found or built from a message alone.

    A class of the script's own (``__mp_main__`` in a spawned process) is the caller's
    ``__main__`` one.
    """
    lines = raised.msg.rstrip().splitlines()
    frames = [i for i, line in enumerate(lines) if line.startswith("  File ")]
    start = frames[-1] + 1 if frames else 0
    while start < len(lines) and lines[start][:1].isspace():  # the frame's source lines
        start += 1
    found = re.match(r"([A-Za-z_][\w.]*)(?:: (.*))?$", lines[start]) if start < len(lines) else None
    if found is None:
        return None
    name, first = found.group(1), found.group(2) or ""
    message = "\n".join([first, *lines[start + 1 :]]).rstrip()
    module, _, qualname = name.rpartition(".")
    module = {"": "builtins", "__mp_main__": "__main__"}.get(module, module)
    try:
        kind: Any = importlib.import_module(module)
        for part in qualname.split("."):
            kind = getattr(kind, part)
        error = kind(message)
    except Exception:
        return None
    return error if isinstance(error, Exception) else None


class _TerminationUnlogged(logging.Filter):
    """Drops torch's warning that it ends the other processes after one failed: the
    failure itself is what the caller gets."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Terminating process")


@contextlib.contextmanager
def errors_as_raised(quiet: bool) -> Iterator[None]:
    """Raise an error of a started process in the caller as itself (a
    ``TrainingDivergedError``, a callback's ``RuntimeError``), with torch's
    ``ProcessRaisedException`` (the process's traceback) as its cause; ``quiet`` also
    drops torch's warning that it ends the other processes."""
    logger = logging.getLogger("torch.multiprocessing.spawn")
    unlogged = _TerminationUnlogged()
    if quiet:
        logger.addFilter(unlogged)
    try:
        yield
    except ProcessRaisedException as raised:
        original = original_error(raised)
        if original is None:
            raise
        raise original from raised
    finally:
        logger.removeFilter(unlogged)
