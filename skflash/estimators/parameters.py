"""The estimators' parameters, declared once: what each accepts, checked and normalised at fit.

Each entry of a table maps a parameter name to the constraints a value may satisfy
(any one is enough), in the spirit of scikit-learn's ``_parameter_constraints``. At
``fit`` the values are checked in one place, and numpy scalars (``np.int64(3)`` from an
``np.arange`` grid, ``np.float32(0.1)``) become the Python numbers that torch and
Lightning expect; the estimator's own attributes are never changed.
"""

from __future__ import annotations

import inspect
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np


class InvalidParameterError(ValueError, TypeError):
    """A parameter value the estimator does not accept.

    Both a ValueError and a TypeError, as scikit-learn's own, so either ``except`` clause
    catches it.
    """


class Constraint:
    """One kind of accepted value. ``convert`` returns the normalised value or raises."""

    description = ""

    def convert(self, value: Any) -> Any:
        raise NotImplementedError

    def __str__(self) -> str:
        return self.description


class _Rejected(Exception):
    """Internal: the value does not satisfy this constraint."""


def _is_number(value: Any, kind: type) -> bool:
    return isinstance(value, kind) and not isinstance(value, (bool, np.bool_))


@dataclass(frozen=True)
class Integer(Constraint):
    """An integer (Python or numpy, not a bool) of at least ``low``."""

    low: int = 1

    @property
    def description(self) -> str:  # type: ignore[override]
        return f"an integer >= {self.low}"

    def convert(self, value: Any) -> int:
        if not _is_number(value, numbers.Integral) or int(value) < self.low:
            raise _Rejected
        return int(value)


@dataclass(frozen=True)
class Real(Constraint):
    """A finite real number (Python or numpy) within ``low``..``high``."""

    low: float = -np.inf
    high: float = np.inf
    open_low: bool = False
    open_high: bool = False

    @property
    def description(self) -> str:  # type: ignore[override]
        left = "(" if self.open_low else "["
        right = ")" if self.open_high else "]"
        return f"a number in {left}{self.low}, {self.high}{right}"

    def convert(self, value: Any) -> float:
        if not _is_number(value, numbers.Real):
            raise _Rejected
        number = float(value)
        if not np.isfinite(number):
            raise _Rejected
        if number < self.low or (self.open_low and number == self.low):
            raise _Rejected
        if number > self.high or (self.open_high and number == self.high):
            raise _Rejected
        return number


@dataclass(frozen=True)
class Options(Constraint):
    """One of the given values (strings, numbers or None)."""

    values: tuple

    @property
    def description(self) -> str:  # type: ignore[override]
        return "one of " + ", ".join(repr(v) for v in self.values)

    def convert(self, value: Any) -> Any:
        if isinstance(value, np.generic):
            value = value.item()
        for option in self.values:
            if type(value) is type(option) and value == option:
                return option
        raise _Rejected


@dataclass(frozen=True)
class Boolean(Constraint):
    """``True`` or ``False`` (numpy bools too)."""

    description = "a bool"

    def convert(self, value: Any) -> bool:
        if not isinstance(value, (bool, np.bool_)):
            raise _Rejected
        return bool(value)


@dataclass(frozen=True)
class InstanceOf(Constraint):
    """An instance of one of ``types`` (or of those a function returns when checking)."""

    types: tuple | Callable[[], tuple]
    description: str = ""

    def convert(self, value: Any) -> Any:
        if not isinstance(value, _types(self.types)):
            raise _Rejected
        return value


def _types(types: Any) -> Any:
    """``types``, or what it returns when it is a function (types found when checking)."""
    return types if isinstance(types, (type, tuple)) else types()


@dataclass(frozen=True)
class SubclassOf(Constraint):
    """A class deriving from ``base``."""

    base: type
    description: str = ""

    def convert(self, value: Any) -> type:
        if not (inspect.isclass(value) and issubclass(value, self.base)):
            raise _Rejected
        return value


@dataclass(frozen=True)
class ListOf(Constraint):
    """A list or tuple whose items are all instances of ``item``; returned as a list."""

    item: type | Callable[[], tuple]
    description: str = ""

    def convert(self, value: Any) -> list:
        item = _types(self.item)
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, item) for v in value):
            raise _Rejected
        return list(value)


@dataclass(frozen=True)
class Satisfies(Constraint):
    """Any value for which ``check`` returns True."""

    check: Callable[[Any], bool]
    description: str = ""

    def convert(self, value: Any) -> Any:
        if not self.check(value):
            raise _Rejected
        return value


def _describe(constraints: tuple[Constraint, ...]) -> str:
    texts = [str(c) for c in constraints]
    return texts[0] if len(texts) == 1 else ", ".join(texts[:-1]) + " or " + texts[-1]


def check_parameter(
    owner: str, name: str, value: Any, constraints: tuple[Constraint, ...], hint: str = ""
) -> Any:
    """The normalised value, or an InvalidParameterError that names what is accepted."""
    for constraint in constraints:
        try:
            return constraint.convert(value)
        except _Rejected:
            continue
    raise InvalidParameterError(
        f"The {name!r} parameter of {owner} must be {_describe(constraints)}; got {value!r}."
        + (f" {hint}" if hint else "")
    )


def check_parameters(estimator: Any, table: tuple[Parameter, ...]) -> dict[str, Any]:
    """Check every parameter of ``table`` on ``estimator``; return the normalised values."""
    owner = type(estimator).__name__
    return {
        p.name: check_parameter(owner, p.name, getattr(estimator, p.name), p.constraints, p.hint)
        for p in table
    }


# ---------------------------------------------------------------------- declarations
@dataclass(frozen=True)
class Parameter:
    """One constructor parameter, declared once: the signature, the check and the doc.

    ``kind`` is the type line of its numpydoc entry (``"int or 'auto'"``); the
    ``default=...`` part is written from ``default``. ``doc`` is the entry's text.
    """

    name: str
    default: Any
    kind: str
    constraints: tuple[Constraint, ...]
    doc: str = ""
    hint: str = ""

    def docstring_entry(self) -> str:
        """The numpydoc entry, indented for a class docstring."""
        default = f'"{self.default}"' if isinstance(self.default, str) else repr(self.default)
        lines = [f"    {self.name} : {self.kind}, default={default}"]
        text = inspect.cleandoc(self.doc)
        lines += [f"        {line}" if line else "" for line in text.splitlines()]
        return "\n".join(lines)


def with_own(
    shared: tuple[Parameter, ...], own: Mapping[str | None, tuple[Parameter, ...]]
) -> tuple[Parameter, ...]:
    """``shared`` with an estimator's own parameters placed after the named ones.

    ``own`` maps a shared parameter's name (None: the end) to the parameters that follow it.
    """
    known = {p.name for p in shared}
    unknown = set(own) - known - {None}
    if unknown:
        raise ValueError(f"No shared parameter named {sorted(unknown)}")
    table: list[Parameter] = []
    for parameter in shared:
        table += [parameter, *own.get(parameter.name, ())]
    return (*table, *own.get(None, ()))


def constructor(table: tuple[Parameter, ...], owner: str) -> Callable[..., None]:
    """An ``__init__`` whose signature is ``table`` (plus ``**kwargs`` for routed names).

    It only stores the arguments, as scikit-learn asks; scikit-learn's ``get_params``
    reads the same signature.
    """
    signature = inspect.Signature(
        [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        + [
            inspect.Parameter(p.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=p.default)
            for p in table
        ]
        + [inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD)]
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        self._store_parameters(bound.arguments)

    __init__.__signature__ = signature  # type: ignore[attr-defined]
    __init__.__qualname__ = f"{owner}.__init__"
    __init__.__doc__ = f"Store the parameters; see :class:`{owner}` for each one."
    return __init__


def with_parameters_section(
    doc: str, table: tuple[Parameter, ...], kwargs_doc: str, shared_attributes: str = ""
) -> str:
    """``doc`` completed from the table: a numpydoc Parameters section before its
    Attributes section, and ``shared_attributes`` (entries) at the end of that section.
    """
    entries = [p.docstring_entry() for p in table]
    entries.append(
        "    **kwargs\n"
        + "\n".join(f"        {line}" for line in inspect.cleandoc(kwargs_doc).splitlines())
    )
    section = "    Parameters\n    ----------\n" + "\n".join(entries) + "\n\n"
    attributes, examples = "    Attributes\n    ----------\n", "\n\n    Examples\n"
    if attributes not in doc or examples not in doc:
        raise ValueError("The docstring needs Attributes and Examples sections")
    doc = doc.replace(attributes, section + attributes, 1)
    if shared_attributes:
        entries = inspect.cleandoc(shared_attributes).splitlines()
        text = "\n".join(f"    {line}" if line else "" for line in entries)
        doc = doc.replace(examples, "\n" + text + examples, 1)
    return doc
