"""The parameter table, the signatures, the docstrings and the user guide's table of
parameters (docs/user_guide/parameters.md) say the same thing."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

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


GUIDE_TABLE = Path(__file__).resolve().parents[1] / "docs" / "user_guide" / "parameters.md"


def _without_remarks(cell: str) -> str:
    """``cell`` without its parenthesised remarks, nested ones included."""
    while re.search(r"\([^()]*\)", cell):
        cell = re.sub(r"\s*\([^()]*\)", "", cell)
    return cell


def _guide_rows(estimator: str = "") -> dict[str, tuple[object, str]]:
    """``{name: (default, meaning)}`` from the user guide's table of parameters, for
    ``"regressor"`` or ``"classifier"`` (rows marked for the other one left out)."""
    rows = {}
    for line in GUIDE_TABLE.read_text().splitlines():
        if not line.startswith("| `"):
            continue
        names, defaults, meaning = (cell.strip() for cell in line.strip("|").split(" | ", 2))
        other = {"regressor": "(classifier)", "classifier": "(regressor)"}.get(estimator)
        if other and other in names:
            continue
        names = re.findall(r"`(\w+)`", _without_remarks(names))
        values = re.findall(r"`([^`]+)`", _without_remarks(defaults))
        assert len(names) == len(values), line
        for name, value in zip(names, values, strict=True):
            rows[name] = (ast.literal_eval(value), meaning)
    return rows


@pytest.mark.parametrize("cls", [FlashRegressor, FlashClassifier])
def test_user_guide_table_gives_every_parameter_with_its_default(cls):
    signature = inspect.signature(cls.__init__).parameters
    rows = _guide_rows("classifier" if cls is FlashClassifier else "regressor")
    for name, parameter in signature.items():
        if name in ("self", "kwargs"):
            continue
        assert name in rows, f"{name} is missing from {GUIDE_TABLE.name}"
        assert rows[name][0] == parameter.default, name


def test_user_guide_table_lists_only_real_parameters():
    for cls, estimator in ((FlashRegressor, "regressor"), (FlashClassifier, "classifier")):
        assert set(_guide_rows(estimator)) <= set(inspect.signature(cls).parameters)


def test_user_guide_describes_verbose_as_it_behaves():
    meaning = _guide_rows()["verbose"][1]
    assert "`0` silent" in meaning
    assert "a live progress bar in a terminal or notebook" in meaning
    assert "one summary line per fit in plain logs" in meaning
    assert "per epoch" not in meaning


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
