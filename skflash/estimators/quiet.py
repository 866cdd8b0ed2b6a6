"""Keep a fit silent: no Lightning log lines, tips or warnings unless asked for.

Logger levels are process-wide, so quiet blocks running at once in several threads
share one setting: the first to enter sets it, the last to leave restores exactly what
was there (the caller's own changes made in between are kept).

Warnings are silenced for the threads inside a quiet block only: the filters it adds
match Lightning's modules (and torch's tracer, which predict's path uses) while the
warning is raised in such a thread, so another thread's own Lightning work keeps its
warnings. Warning filters are process-wide too,
and not every thread leaves them alone: scikit-learn's joblib tasks (a search under the
threading backend, Dask workers with several threads) replace the whole list at each
task's start and end. The filters are therefore put back whenever a quiet thread finds
them gone: on entering a quiet block, before ``trainer.fit`` and at the fit's first
hooks (:func:`keep_quiet`), the points just before Lightning warns.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import re
import threading
import warnings
from collections.abc import Iterator

_LOGGERS = (
    "pytorch_lightning",
    "lightning_fabric",
    "lightning",
    "lightning.pytorch",
    "lightning.fabric",
)
#: Lightning's modules, and torch's tracer (predict's path is traced in a quiet block: its
#: deprecation notice and tracer warnings are about skflash's use of it, not the user's).
_MODULES = (
    r"pytorch_lightning(\.|$)",
    r"lightning_fabric(\.|$)",
    r"lightning(\.|$)",
    r"torch\.jit(\.|$)",
)


class _InQuietThread:
    """A warning filter's module test (the warnings machinery calls its ``match``):
    one of Lightning's modules, warning in a thread inside a quiet block. ``pattern``
    is what a copy of the filter made elsewhere matches (scikit-learn's tasks copy the
    filters they find into their threads): nothing, so that a copy left behind never
    hides the user's own Lightning warnings."""

    __slots__ = ("_regex", "pattern")

    def __init__(self, pattern: str) -> None:
        self.pattern = f"(?!){pattern}"  # matches nothing: copies made elsewhere stay inert
        self._regex = re.compile(pattern)

    def match(self, module: str) -> bool:
        return getattr(_thread, "depth", 0) > 0 and self._regex.match(module) is not None

    def __repr__(self) -> str:
        return f"<{self._regex.pattern!r} in a quiet skflash fit>"


#: The filters: ignore what Lightning warns in a quiet thread (warnings' 5-tuples).
FILTERS = tuple(("ignore", None, Warning, _InQuietThread(module), 0) for module in _MODULES)

_lock = threading.Lock()
_depth = 0  # quiet blocks running in all threads
_levels: dict[str, int] = {}
_thread = threading.local()  # .depth: quiet blocks this thread is in


def _after_fork() -> None:
    global _lock, _depth
    _lock = threading.Lock()  # another thread may have held it at the fork
    # only the forking thread lives on in the child: the other threads' blocks are gone
    own = getattr(_thread, "depth", 0)
    if _depth > own and not _rank_quieted:
        _depth = own
        if own == 0:
            _uninstall()


os.register_at_fork(after_in_child=_after_fork)


def keep_quiet() -> None:
    """Put the filters back in front if this thread is quiet and they are gone (another
    thread replaced the process's filter list)."""
    if getattr(_thread, "depth", 0) == 0:
        return
    current = warnings.filters
    if all(any(entry is ours for entry in current) for ours in FILTERS):
        return
    with _lock:
        current = warnings.filters
        current[:0] = [ours for ours in FILTERS if not any(entry is ours for entry in current)]
        _filters_mutated()


def _filters_mutated() -> None:
    # Tell the warnings machinery its filters changed (as filterwarnings does).
    getattr(warnings, "_filters_mutated", lambda: None)()


def _install() -> None:
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        _levels[name] = logger.level
        logger.setLevel(logging.ERROR)


def _uninstall() -> None:
    for name, level in _levels.items():
        logger = logging.getLogger(name)
        if logger.level == logging.ERROR:  # unless the caller changed it meanwhile
            logger.setLevel(level)
    _levels.clear()
    # copies left in lists that others set aside match nothing outside a quiet block
    warnings.filters[:] = [f for f in warnings.filters if not any(f is o for o in FILTERS)]
    _filters_mutated()


@contextlib.contextmanager
def quiet_lightning(enabled: bool = True) -> Iterator[None]:
    """Silence Lightning's info logging, and its warnings and torch's tracer notices in
    this thread, while the block runs."""
    global _depth
    if not enabled:
        yield
        return
    with _lock:
        if _depth == 0:
            _install()
        _depth += 1
    _thread.depth = getattr(_thread, "depth", 0) + 1
    try:
        keep_quiet()
        yield
    finally:
        _thread.depth -= 1
        with _lock:
            _depth -= 1
            if _depth == 0:
                _uninstall()


_rank_quieted = False


def quiet_rank() -> None:
    """Silence this process for good if it is a child that no quiet block covers (a rank
    a strategy started; a forked rank inherits its parent's quiet block instead)."""
    global _rank_quieted, _depth
    # (torch starts ranks without setting multiprocessing.parent_process())
    spawned = multiprocessing.current_process().name != "MainProcess"
    with _lock:
        if spawned and _depth == 0 and not _rank_quieted:
            _install()
            _depth += 1
            _rank_quieted = True
    if _rank_quieted:
        _thread.depth = max(getattr(_thread, "depth", 0), 1)
        keep_quiet()
