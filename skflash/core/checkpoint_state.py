"""The Preprocess and Postprocess a checkpoint names, found again when it loads.

A checkpoint keeps each one's class path and plain state; loading builds that class
again when the Task's own differs (and can be built without arguments).
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
from typing import Any


def class_path(obj: object) -> str:
    return f"{type(obj).__module__}:{type(obj).__qualname__}"


def _import_class(path: str, base: type) -> type | None:
    module_name, _, qualname = path.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError):
        return None
    return target if inspect.isclass(target) and issubclass(target, base) else None


def saved_state(process: Any) -> dict[str, Any]:
    """A Preprocess or Postprocess as its class path and plain state."""
    return {"class": class_path(process), "state": process.state_dict()}


def restored(saved: dict[str, Any], current: Any, base: type) -> Any:
    """``current``, or an instance of the saved class when it differs, with the saved
    state loaded."""
    if class_path(current) != saved["class"]:
        cls = _import_class(saved["class"], base)
        if cls is not None:
            with contextlib.suppress(TypeError):
                current = cls()
    current.load_state_dict(saved["state"])
    return current


_PLAIN = (bool, int, float, str, type(None))


def is_plain(value: Any) -> bool:
    """Whether ``value`` is made of plain Python values only (what checkpoints keep)."""
    if isinstance(value, _PLAIN):
        return True
    if isinstance(value, (list, tuple)):
        return all(is_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and is_plain(v) for k, v in value.items())
    return False
