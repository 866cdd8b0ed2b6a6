"""Keep a fit silent: no Lightning log lines, tips or warnings unless asked for."""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator

_LOGGERS = ("pytorch_lightning", "lightning_fabric", "lightning", "lightning.pytorch")


@contextlib.contextmanager
def quiet_lightning(enabled: bool = True) -> Iterator[None]:
    """Silence Lightning's info logging and its warnings while the block runs."""
    if not enabled:
        yield
        return
    loggers = [logging.getLogger(name) for name in _LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            for module in (
                r"pytorch_lightning(\.|$)",
                r"lightning_fabric(\.|$)",
                r"lightning(\.|$)",
            ):
                warnings.filterwarnings("ignore", module=module)
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
