"""A named mapping from keys to functions or classes, with metadata.

Registries let a task look up its building blocks (backbones, heads) by name, so a
string in a config or an estimator parameter is enough to choose one.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from difflib import get_close_matches
from functools import partial
from typing import Any

from lightning_fabric.utilities.exceptions import MisconfigurationException
from lightning_fabric.utilities.rank_zero import rank_zero_only

log = logging.getLogger(__name__)


class RegistrationError(MisconfigurationException, TypeError):
    """Something other than a function or a class was registered.

    A Lightning ``MisconfigurationException`` (what Flash raised) and a ``TypeError``.
    """


class DuplicateKeyError(MisconfigurationException, ValueError):
    """A key is already registered with the same metadata, and ``override`` is off.

    A Lightning ``MisconfigurationException`` (what Flash raised) and a ``ValueError``.
    """


def _name_of(fn: Any) -> str:
    if isinstance(fn, partial):
        return _name_of(fn.func)
    return getattr(fn, "__name__", type(fn).__name__)


class FlashRegistry:
    """Store functions or classes under a key, each with optional metadata.

    Parameters
    ----------
    name : str
        What the registry holds, used in messages (e.g. ``"backbones"``).
    verbose : bool, default=False
        Log each registration (at INFO level, on the ``skflash.core.registry`` logger,
        from the rank-zero process only).

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

    def __init__(self, name: str, verbose: bool = False) -> None:
        self.name = name
        self.verbose = bool(verbose)
        self._entries: list[dict[str, Any]] = []

    @property
    def functions(self) -> list[dict[str, Any]]:
        """The registered entries, ``{"name", "fn", "metadata"}``, in registration order."""
        return list(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return any(entry["name"] == key for entry in self._entries)

    def __repr__(self) -> str:
        return f"FlashRegistry(name={self.name!r}, keys={self._keys()})"

    def _keys(self) -> list[str]:
        return sorted({entry["name"] for entry in self._entries})

    def available_keys(self) -> list[str]:
        """The key of every entry, sorted.

        A key registered with several metadata sets appears once per entry.

        Returns
        -------
        list of str
            The keys.
        """
        return sorted(entry["name"] for entry in self._entries)

    def __call__(
        self,
        fn: Callable | None = None,
        name: str | None = None,
        override: bool = False,
        verbose: bool | None = None,
        **metadata: Any,
    ) -> Callable:
        """Register ``fn``, or return a decorator that registers what it decorates.

        Parameters
        ----------
        fn : function or class, optional
            What to register; without it, a decorator is returned.
        name : str, optional
            The key; defaults to ``fn.__name__``.
        override : bool, default=False
            Replace an entry with the same key and metadata instead of raising.
        verbose : bool, optional
            Log this registration; defaults to the registry's ``verbose``.
        **metadata
            Stored with the entry, for :meth:`get` to filter on.
        """
        if name is not None and not isinstance(name, str):
            raise TypeError(f"`name` must be a str, found {name!r}.")
        if fn is None:

            def decorator(target: Callable) -> Callable:
                self._register(target, name, override, verbose, metadata)
                return target

            return decorator
        self._register(fn, name, override, verbose, metadata)
        return fn

    #: The same as calling the registry: ``registry.register(fn)`` is ``registry(fn)``.
    register = __call__

    def _register(
        self,
        fn: Callable,
        name: str | None,
        override: bool,
        verbose: bool | None,
        metadata: dict[str, Any],
    ) -> None:
        if not (inspect.isroutine(fn) or inspect.isclass(fn) or isinstance(fn, partial)):
            raise RegistrationError(
                f"You can only register a function, found: {fn!r}. A class or a "
                f"functools.partial can be registered in {self.name!r} too; to offer a "
                "built object, register a function or class that builds it."
            )
        key = name if name is not None else _name_of(fn)
        if not key:
            raise ValueError(f"A registry key must be a non-empty string, got {key!r}.")
        metadata = dict(metadata)
        if self.verbose if verbose is None else verbose:
            _log_registration(_name_of(fn), key, metadata)
        entry = {"name": key, "fn": fn, "metadata": metadata}
        for index, existing in enumerate(self._entries):
            if existing["name"] == key and existing["metadata"] == metadata:
                if not override:
                    raise DuplicateKeyError(
                        f"Function with name: {key} and metadata: {metadata} is already "
                        f"registered in {self.name!r}. Pass override=True to replace it."
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
            Return whole entries (``{"name", "fn", "metadata"}``) instead of functions.
        strict : bool, default=True
            Return the one match, raising when several entries match. With
            ``strict=False``, return the list of every match, in registration order.
        **metadata
            Keep only entries whose metadata has all these keys, with these values.
        """
        matches = [entry for entry in self._entries if entry["name"] == key]
        if not matches:
            hint = get_close_matches(str(key), self._keys(), n=1)
            suggestion = f" Did you mean {hint[0]!r}?" if hint else ""
            raise KeyError(
                f"Key: {key} is not in FlashRegistry {self.name!r}.{suggestion} "
                f"Available keys: {self._keys()}."
            )
        if metadata:
            matches = [
                entry
                for entry in matches
                if all(
                    k in entry["metadata"] and entry["metadata"][k] == v
                    for k, v in metadata.items()
                )
            ]
            if not matches:
                raise KeyError(
                    f"Found no matches that fit your metadata criteria {metadata} for key "
                    f"{key!r} in {self.name!r}. Try removing some metadata."
                )
        found = [dict(entry) if with_metadata else entry["fn"] for entry in matches]
        if not strict:
            return found
        if len(found) > 1:
            raise KeyError(
                f"{len(found)} entries are registered as {key!r} in {self.name!r}; "
                "pass metadata keywords to choose one, or strict=False to get them all."
            )
        return found[0]

    def remove(self, key: str) -> None:
        """Remove every entry registered under ``key``."""
        if key not in self:
            raise KeyError(
                f"Key: {key} is not in FlashRegistry {self.name!r}. Available keys: {self._keys()}."
            )
        self._entries = [entry for entry in self._entries if entry["name"] != key]


@rank_zero_only
def _log_registration(fn_name: str, key: str, metadata: dict[str, Any]) -> None:
    log.info(f"Registering: {fn_name} function with name: {key} and metadata: {metadata}")
