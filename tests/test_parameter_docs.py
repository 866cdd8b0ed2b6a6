"""The parameter table, the signatures and the docstrings say the same thing."""

from __future__ import annotations

import inspect
import re

import pytest

from skflash import FlashClassifier, FlashRegressor
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
    signature = inspect.signature(cls.__init__).parameters
    assert [p.name for p in cls._parameters] == list(signature)[1:-1]
    for parameter in cls._parameters:
        check_parameter(cls.__name__, parameter.name, parameter.default, parameter.constraints)


def test_docstrings_have_no_placeholders():
    for cls in (FlashRegressor, FlashClassifier):
        assert not re.search(r"\{[a-z_]+\}", cls.__doc__)


@pytest.mark.parametrize("cls", [FlashRegressor, FlashClassifier])
def test_constructor_is_written_out_keyword_only_with_the_table_defaults(cls):
    signature = inspect.signature(cls.__init__)
    own = [p for name, p in signature.parameters.items() if name not in ("self", "kwargs")]
    assert all(p.kind is p.KEYWORD_ONLY for p in own)
    assert {p.name: p.default for p in own} == {p.name: p.default for p in cls._parameters}
    assert all(p.annotation is not p.empty for p in own)  # type hints for IDEs
    assert "__init__" in cls.__dict__  # in the class's own source, not generated
    reg = cls(max_epochs=3, backbone__hidden_sizes=(8,))
    assert reg.max_epochs == 3 and reg.get_params()["backbone__hidden_sizes"] == (8,)
    assert vars(cls()) == {p.name: p.default for p in cls._parameters}  # it only stores
    with pytest.raises(TypeError):
        cls("mlp")


def test_estimators_share_one_declaration_of_each_shared_parameter():
    regressor = {p.name: p for p in FlashRegressor._parameters}
    classifier = {p.name: p for p in FlashClassifier._parameters}
    for name in set(regressor) & set(classifier) - {"loss"}:
        assert regressor[name] is classifier[name]
