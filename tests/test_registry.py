"""FlashRegistry and the tabular backbones."""

from __future__ import annotations

import pytest
from torch import nn

from skflash.core.backbones import TABULAR_BACKBONES
from skflash.core.dropout import Dropout
from skflash.core.registry import FlashRegistry


def test_register_function_and_class_directly_and_as_decorator():
    registry = FlashRegistry("things")

    @registry
    def make_a():
        return "a"

    registry(nn.Linear, name="linear", kind="layer")
    assert registry.get("make_a")() == "a"
    assert registry.get("linear") is nn.Linear
    assert "linear" in registry and "missing" not in registry
    assert len(registry) == 2
    assert registry.available_keys() == ["linear", "make_a"]
    entry = registry.get("linear", with_metadata=True)
    assert entry["metadata"] == {"kind": "layer"}


def test_metadata_filtering_and_ambiguity():
    registry = FlashRegistry("things")
    registry(lambda: 1, name="f", size="small")
    registry(lambda: 2, name="f", size="large")
    assert registry.get("f", size="large")() == 2
    with pytest.raises(KeyError, match=r"2 entries are registered as 'f'"):
        registry.get("f")
    assert [fn() for fn in registry.get("f", strict=False)] == [1, 2]
    with pytest.raises(KeyError, match="metadata"):
        registry.get("f", size="huge")


def test_duplicate_needs_override():
    registry = FlashRegistry("things")
    registry(lambda: 1, name="f")
    with pytest.raises(ValueError, match=r"already registered.*override=True"):
        registry(lambda: 2, name="f")
    registry(lambda: 3, name="f", override=True)
    assert registry.get("f")() == 3
    assert len(registry) == 1


def test_missing_key_lists_available_keys():
    with pytest.raises(KeyError, match=r"Did you mean 'mlp'\?.*\['linear', 'mlp'\]"):
        TABULAR_BACKBONES.get("mpl")


def test_remove():
    registry = FlashRegistry("things")
    registry(lambda: 1, name="f")
    registry.remove("f")
    assert len(registry) == 0
    with pytest.raises(KeyError):
        registry.remove("f")


def test_mlp_backbone_options():
    backbone, width = TABULAR_BACKBONES.get("mlp")(
        5, hidden_sizes=(7, 3), activation="tanh", dropout=0.1
    )
    assert width == 3
    kinds = [type(m) for m in backbone]
    assert kinds == [nn.Linear, nn.Tanh, Dropout, nn.Linear, nn.Tanh, Dropout]
    assert all(m.p == 0.1 for m in backbone if isinstance(m, nn.Dropout))
    identity, width = TABULAR_BACKBONES.get("linear")(5)
    assert isinstance(identity, nn.Identity) and width == 5
    with pytest.raises(ValueError, match="Unknown activation"):
        TABULAR_BACKBONES.get("mlp")(5, activation="swishy")


def test_only_functions_and_classes_can_be_registered():
    registry = FlashRegistry("things")
    with pytest.raises(TypeError, match="You can only register a function, found: Linear"):
        registry(nn.Linear(2, 2), name="instance")
    with pytest.raises(TypeError, match="You can only register a function, found: 3"):
        registry(3, name="number")
    registry(nn.Linear, name="cls")
    registry(len, name="builtin")
    assert registry.available_keys() == ["builtin", "cls"]
