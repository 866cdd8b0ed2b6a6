"""Keep a fit silent: no Lightning log lines, tips or warnings unless asked for."""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator

_LOGGERS = ("pytorch_lightning", "lightning_fabric", "lightning", "lightning.pytorch")
_MODULES = (r"pytorch_lightning(\.|$)", r"lightning_fabric(\.|$)", r"lightning(\.|$)")


def _below_error(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.ERROR


@contextlib.contextmanager
def quiet_lightning(enabled: bool = True) -> Iterator[None]:
    """Drop Lightning's log records below ERROR, and its warnings, while the block runs.

    A filter rather than a level change: setting levels resets every logger's cache.
    """
    if not enabled:
        yield
        return
    loggers = [logging.getLogger(name) for name in _LOGGERS]
    for logger in loggers:
        logger.addFilter(_below_error)
    try:
        with warnings.catch_warnings():
            for module in _MODULES:
                warnings.filterwarnings("ignore", module=module)
            yield
    finally:
        for logger in loggers:
            logger.removeFilter(_below_error)
