"""How many CPU threads a fit gives torch.

torch's intra-op threads spin while they wait for work. For the small matrix products
of a tabular network they save little on a quiet machine, and on a busy one (other
processes, parallel searches) the spinning threads fight for the cores and a fit can
take ten times longer. So a fit whose steps are small runs on one thread; larger ones
keep what torch would use (inside a joblib or Dask worker, what the worker was given).
The caller's setting is restored afterwards.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import torch

#: Multiply-adds per training step (parameters x batch rows) below which one thread is
#: about as fast as two on a quiet machine, and much faster on a busy one.
SMALL_STEP_MACS = 4_000_000

_lock = threading.Lock()
_users = 0
_restore_to: int | None = None


def threads_for(macs_per_step: float, available: int | None = None) -> int:
    """The intra-op threads for steps of ``macs_per_step`` multiply-adds."""
    available = torch.get_num_threads() if available is None else available
    return 1 if macs_per_step < SMALL_STEP_MACS else max(1, available)


@contextlib.contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """Run the block with ``count`` intra-op threads (None: leave torch's setting alone).

    The setting is process-wide: fits running at once in several threads share the
    first one's choice, and the last to finish restores the caller's setting.
    """
    global _users, _restore_to
    if count is None:
        yield
        return
    with _lock:
        if _users == 0:
            _restore_to = torch.get_num_threads()
            if count != _restore_to:
                torch.set_num_threads(count)
        _users += 1
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0 and _restore_to is not None:
                if torch.get_num_threads() != _restore_to:
                    torch.set_num_threads(_restore_to)
                _restore_to = None
