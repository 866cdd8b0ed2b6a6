"""A named mapping from keys to functions or classes, with metadata.

Registries let a task look up its building blocks (backbones, heads) by name, so a
string in a config or an estimator parameter is enough to choose one.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from difflib import get_close_matches
from functools import partial
from typing import Any


class FlashRegistry:
    """Store functions or classes under a key, each with optional metadata.

    Parameters
    ----------
    name : str
        What the registry holds, used in error messages (e.g. ``"backbones"``).

    Examples
    --------
    >>> from skflash.core.registry import FlashRegistry
    >>> heads = FlashRegistry("heads")
    >>> @heads(name="double")
    ... def double(x):
    ...     return 2 * x
    >>> heads.get("double")(3)
    6
    >>> "double" in heads, len(heads)
    (True, 1)
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._entries: list[dict[str, Any]] = []

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return any(entry["name"] == key for entry in self._entries)

    def __repr__(self) -> str:
        return f"FlashRegistry(name={self.name!r}, keys={self.available_keys()})"

    def available_keys(self) -> list[str]:
        """Registered keys, sorted and without repeats."""
        return sorted({entry["name"] for entry in self._entries})

    def __call__(
        self,
        fn: Callable | None = None,
        name: str | None = None,
        override: bool = False,
        **metadata: Any,
    ) -> Callable:
        """Register ``fn``, or return a decorator that registers what it decorates."""
        if fn is None:

            def decorator(target: Callable) -> Callable:
                self._register(target, name, override, metadata)
                return target

            return decorator
        self._register(fn, name, override, metadata)
        return fn

    def _register(
        self, fn: Callable, name: str | None, override: bool, metadata: dict[str, Any]
    ) -> None:
        if not (inspect.isroutine(fn) or inspect.isclass(fn) or isinstance(fn, partial)):
            raise TypeError(
                f"Only functions and classes can be registered in {self.name!r}; got {fn!r}. "
                "Register a function or class that builds it instead."
            )
        key = name if name is not None else fn.__name__
        if not isinstance(key, str) or not key:
            raise ValueError(f"A registry key must be a non-empty string, got {key!r}.")
        entry = {"name": key, "fn": fn, "metadata": dict(metadata)}
        for index, existing in enumerate(self._entries):
            if existing["name"] == key and existing["metadata"] == entry["metadata"]:
                if not override:
                    raise ValueError(
                        f"{key!r} is already registered in {self.name!r}. "
                        "Pass override=True to replace it."
                    )
                self._entries[index] = entry
                return
        self._entries.append(entry)

    def get(
        self, key: str, with_metadata: bool = False, strict: bool = True, **metadata: Any
    ) -> Any:
        """Return what is registered under ``key``.

        Parameters
        ----------
        key : str
            The registered name.
        with_metadata : bool, default=False
            Return the whole entry (``{"name", "fn", "metadata"}``) instead of the function.
        strict : bool, default=True
            Raise when several entries match; otherwise return the last one registered.
        **metadata
            Keep only entries whose metadata has these values.
        """
        matches = [entry for entry in self._entries if entry["name"] == key]
        if not matches:
            hint = get_close_matches(str(key), self.available_keys(), n=1)
            suggestion = f" Did you mean {hint[0]!r}?" if hint else ""
            raise KeyError(
                f"{key!r} is not in the {self.name!r} registry.{suggestion} "
                f"Available keys: {self.available_keys()}."
            )
        matches = [
            entry
            for entry in matches
            if all(entry["metadata"].get(k) == v for k, v in metadata.items())
        ]
        if not matches:
            raise KeyError(f"No entry {key!r} in {self.name!r} has the metadata {metadata}.")
        if len(matches) > 1 and strict:
            raise KeyError(
                f"{len(matches)} entries are registered as {key!r} in {self.name!r}; "
                "pass metadata keywords to choose one."
            )
        entry = matches[-1]
        return dict(entry) if with_metadata else entry["fn"]

    def remove(self, key: str) -> None:
        """Remove every entry registered under ``key``."""
        if key not in self:
            raise KeyError(
                f"{key!r} is not in the {self.name!r} registry. "
                f"Available keys: {self.available_keys()}."
            )
        self._entries = [entry for entry in self._entries if entry["name"] != key]
