"""How many CPU threads a fit gives torch.

torch's intra-op threads spin while they wait for work. For the small matrix products
of a tabular network they save little on a quiet machine, and on a busy one (other
processes, parallel searches) the spinning threads fight for the cores and a fit can
take ten times longer. So a fit whose steps are small runs on one thread; larger ones
keep what torch would use (inside a joblib or Dask worker, what the worker was given).
The caller's setting is restored afterwards.

A forked process runs every fit and predict on one thread, whatever the setting (but
None): torch's OpenMP threads do not survive a fork, and in a child of a process that had
started them, an operator run on two threads waits for the parent's threads for ever.
"""

from __future__ import annotations

import numbers
import os

import torch

#: Multiply-adds per training step (parameters x batch rows) below which one thread is
#: about as fast as two on a quiet machine, and much faster on a busy one.
SMALL_STEP_MACS = 4_000_000


#: Whether this process was forked (see the module docstring).
_forked = False


def _after_fork_in_child() -> None:
    global _forked
    _forked = True


os.register_at_fork(after_in_child=_after_fork_in_child)


def threads_for(macs_per_step: float) -> int:
    """The intra-op threads for steps of ``macs_per_step`` multiply-adds."""
    return 1 if macs_per_step < SMALL_STEP_MACS else torch.get_num_threads()


class torch_threads:
    """Run the block with ``count`` intra-op threads (None: leave torch's setting alone).

    torch's setting belongs to the calling thread (OpenMP's per-thread value; a new
    thread starts from the last one set anywhere), so it is set and restored in the
    thread that fits: fits in other threads keep their own. A class, not a generator:
    a one-row predict enters it on every call.
    """

    __slots__ = ("before", "count")

    def __init__(self, count: int | None) -> None:
        self.count = count
        self.before: int | None = None

    def __enter__(self) -> None:
        if self.count is not None:
            before = torch.get_num_threads()
            if self.count != before:
                torch.set_num_threads(self.count)
                self.before = before

    def __exit__(self, *exc_info: object) -> None:
        if self.before is not None:
            torch.set_num_threads(self.before)


def threads_for_setting(setting: int | str | None, trainable: int, rows: int) -> int | None:
    """A ``num_threads`` setting resolved for steps of ``rows`` rows through a network of
    ``trainable`` parameters: ``"auto"`` by :func:`threads_for`, an integer as it is, None
    to leave torch alone; one in a forked process."""
    if setting is None:
        return None
    if _forked:
        return 1
    if type(setting) is not str and isinstance(setting, numbers.Integral):
        return int(setting)
    return threads_for(trainable * rows)  # "auto"
