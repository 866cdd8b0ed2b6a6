"""The parameter table, the signatures and the docstrings say the same thing."""

from __future__ import annotations

import inspect
import re

import pytest

from skflash import FlashClassifier, FlashRegressor
from skflash.estimators.base import SHARED_CONSTRAINTS
from skflash.estimators.parameters import check_parameter


def _documented(cls) -> dict[str, str]:
    """``{name: header line}`` of the Parameters section of ``cls``'s docstring."""
    section = cls.__doc__.split("Parameters\n    ----------\n")[1].split("\n\n")[0]
    return {
        match.group(1): match.group(0)
        for match in re.finditer(r"(?m)^    (\*\*kwargs|\w+)(?: : .*)?$", section)
    }


@pytest.mark.parametrize("cls", [FlashRegressor, FlashClassifier])
def test_docstring_documents_every_parameter_in_signature_order(cls):
    signature = inspect.signature(cls.__init__).parameters
    names = ["**kwargs" if p == "kwargs" else p for p in signature if p != "self"]
    assert list(_documented(cls)) == names
    for name, header in _documented(cls).items():
        if name == "**kwargs":
            continue
        default = signature[name].default
        if default is None:
            assert "optional" in header or "default=None" in header, header
        else:
            assert f"default={default!r}".replace("'", '"') in header, header


@pytest.mark.parametrize("cls", [FlashRegressor, FlashClassifier])
def test_every_parameter_is_checked_by_the_table_and_accepts_its_default(cls):
    table = {**SHARED_CONSTRAINTS, **cls._own_constraints}
    signature = inspect.signature(cls.__init__).parameters
    assert set(table) == set(signature) - {"self", "kwargs"}
    for name, constraints in table.items():
        check_parameter(cls.__name__, name, signature[name].default, constraints)


def test_docstrings_have_no_placeholders():
    for cls in (FlashRegressor, FlashClassifier):
        assert not re.search(r"\{[a-z_]+\}", cls.__doc__)
