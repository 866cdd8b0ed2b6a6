"""Keep a fit silent: no Lightning log lines, tips or warnings unless asked for.

Logger levels and warning filters are process-wide, so quiet blocks running at once in
several threads share one setting: the first to enter installs it, the last to leave
restores exactly what was there (the caller's own changes made in between are kept).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
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
_MODULES = (r"pytorch_lightning(\.|$)", r"lightning_fabric(\.|$)", r"lightning(\.|$)")

_lock = threading.Lock()
_depth = 0
_levels: dict[str, int] = {}
_filters: list[tuple] = []


def _install() -> None:
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        _levels[name] = logger.level
        logger.setLevel(logging.ERROR)
    for module in _MODULES:
        warnings.filterwarnings("ignore", module=module)
        _filters.append(warnings.filters[0])


def _uninstall() -> None:
    for name, level in _levels.items():
        logger = logging.getLogger(name)
        if logger.level == logging.ERROR:  # unless the caller changed it meanwhile
            logger.setLevel(level)
    _levels.clear()
    for entry in _filters:
        with contextlib.suppress(ValueError):
            warnings.filters.remove(entry)
    _filters.clear()
    # Tell the warnings machinery its filters changed (as filterwarnings does).
    getattr(warnings, "_filters_mutated", lambda: None)()


@contextlib.contextmanager
def quiet_lightning(enabled: bool = True) -> Iterator[None]:
    """Silence Lightning's info logging and its warnings while the block runs."""
    global _depth
    if not enabled:
        yield
        return
    with _lock:
        if _depth == 0:
            _install()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                _uninstall()


_rank_quieted = False


def quiet_rank() -> None:
    """Silence this process for good if it is a child that no quiet block covers (a rank
    a strategy started; a forked rank inherits its parent's quiet block instead)."""
    global _rank_quieted
    # (torch starts ranks without setting multiprocessing.parent_process())
    spawned = multiprocessing.current_process().name != "MainProcess"
    with _lock:
        if spawned and _depth == 0 and not _rank_quieted:
            _install()
            _rank_quieted = True
