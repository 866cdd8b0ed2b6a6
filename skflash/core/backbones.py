"""Backbones for tabular data, looked up by name in :data:`TABULAR_BACKBONES`.

A backbone factory takes the number of input features and returns the feature
extractor and the width of its output; a task adds its head on top.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from torch import nn

from skflash.core.dropout import Dropout
from skflash.core.ensemble import EnsembleLinear, EnsembleMean
from skflash.core.registry import FlashRegistry
from skflash.core.tabular_input import TabularInput

TABULAR_BACKBONES = FlashRegistry("backbones")

_ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "elu": nn.ELU,
    "leaky_relu": nn.LeakyReLU,
    "identity": nn.Identity,
}


def activation_module(activation: str | type[nn.Module]) -> nn.Module:
    """An activation layer from a name such as ``"relu"`` or an ``nn.Module`` class."""
    if isinstance(activation, str):
        if activation.lower() not in _ACTIVATIONS:
            raise ValueError(
                f"Unknown activation {activation!r}; choose one of {sorted(_ACTIVATIONS)} "
                "or pass an nn.Module class."
            )
        return _ACTIVATIONS[activation.lower()]()
    if isinstance(activation, type) and issubclass(activation, nn.Module):
        return activation()
    raise TypeError(f"activation must be a name or an nn.Module class, got {activation!r}.")


@TABULAR_BACKBONES(name="linear")
def linear(num_features: int) -> tuple[nn.Module, int]:
    """No hidden layer: the head alone makes a linear model."""
    return nn.Identity(), int(num_features)


@TABULAR_BACKBONES(name="mlp")
def mlp(
    num_features: int,
    hidden_sizes: Sequence[int] = (64, 64),
    activation: str | type[nn.Module] = "silu",
    dropout: float = 0.0,
) -> tuple[nn.Module, int]:
    """Fully connected hidden layers, each followed by the activation and dropout."""
    return _hidden_layers(nn.Linear, num_features, hidden_sizes, activation, dropout)


def _hidden_layers(
    layer: Callable[[int, int], nn.Module],
    num_features: int,
    hidden_sizes: Sequence[int] | int,
    activation: str | type[nn.Module],
    dropout: float,
) -> tuple[nn.Module, int]:
    """``layer(in, out)`` for each hidden size, each followed by the activation and dropout."""
    if isinstance(hidden_sizes, int):
        hidden_sizes = (hidden_sizes,)
    if not 0.0 <= float(dropout) < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}.")
    layers: list[nn.Module] = []
    width = int(num_features)
    for size in hidden_sizes:
        if int(size) < 1:
            raise ValueError(f"hidden_sizes must be positive integers, got {tuple(hidden_sizes)}.")
        layers += [layer(width, int(size)), activation_module(activation)]
        if dropout:
            layers.append(Dropout(float(dropout)))
        width = int(size)
    return nn.Sequential(*layers), width


#: Registry backbones that :func:`tabular_network` can build as an ensemble.
ENSEMBLE_BACKBONES = ("mlp", "linear")
#: skflash's own backbones, as registered here (a user may register others).
BUILT_IN_BACKBONES = {entry["name"]: entry["fn"] for entry in TABULAR_BACKBONES.functions}


def is_built_in(name: str) -> bool:
    """Whether the registry name ``name`` builds skflash's own backbone: the one entry
    under that name is the one registered here."""
    matches = TABULAR_BACKBONES.get(name, strict=False) if name in TABULAR_BACKBONES else []
    return name in BUILT_IN_BACKBONES and matches == [BUILT_IN_BACKBONES[name]]


def ensemble_mlp(
    num_features: int,
    k: int,
    hidden_sizes: Sequence[int] = (64, 64),
    activation: str | type[nn.Module] = "silu",
    dropout: float = 0.0,
) -> tuple[nn.Module, int]:
    """:func:`mlp` as ``k`` members side by side: ``(batch, features)`` to ``(k, batch, width)``."""
    members = functools.partial(EnsembleLinear, k=k)
    return _hidden_layers(members, num_features, hidden_sizes, activation, dropout)


def tabular_network(
    num_inputs: int,
    num_outputs: int,
    backbone: str | nn.Module,
    backbone_kwargs: dict[str, Any] | None = None,
    backbone_width: int | None = None,
    categorical_cardinalities: Sequence[int] | None = None,
    numeric_embedding: str | None = None,
    n_ensemble: int = 1,
    combine: str = "mean",
) -> nn.Module:
    """``head(backbone(x))`` with a linear head, or a given module as the whole network.

    ``backbone`` is a key of :data:`TABULAR_BACKBONES` (built with ``backbone_kwargs``),
    or a module: the whole network, unless ``backbone_width`` says its output width, in
    which case it gets the head too. With ``categorical_cardinalities`` (the last
    columns of the input are category codes), a registry backbone sits on a
    :class:`~skflash.core.tabular_input.TabularInput` that embeds them (and, with
    ``numeric_embedding``, the numeric features too).

    With ``n_ensemble`` > 1 (``"mlp"`` and ``"linear"`` backbones only), the backbone
    and the head are ``n_ensemble`` members trained side by side on the shared input
    layer, combined by an :class:`~skflash.core.ensemble.EnsembleMean` (``combine``)
    in eval mode; see :mod:`skflash.core.ensemble`.
    """
    k = int(n_ensemble)
    if k > 1 and (isinstance(backbone, nn.Module) or backbone not in ENSEMBLE_BACKBONES):
        raise ValueError(
            f"n_ensemble > 1 needs one of the backbones {ENSEMBLE_BACKBONES}, got {backbone!r}."
        )
    if isinstance(backbone, nn.Module) and backbone_width is None:
        return backbone
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    if isinstance(backbone, nn.Module):
        features, width = backbone, int(backbone_width)
    else:
        if categorical_cardinalities or numeric_embedding:
            cardinalities = list(categorical_cardinalities or [])
            numeric = int(num_inputs) - len(cardinalities)
            layers["input"] = TabularInput(
                numeric, cardinalities, numeric_embedding=numeric_embedding
            )
            num_inputs = layers["input"].out_features
        if k > 1 and backbone == "mlp":
            features, width = ensemble_mlp(num_inputs, k, **(backbone_kwargs or {}))
        else:
            factory = TABULAR_BACKBONES.get(backbone)
            features, width = factory(num_inputs, **(backbone_kwargs or {}))
    layers["backbone"] = features
    if k > 1:
        layers["head"] = EnsembleLinear(width, int(num_outputs), k)
        layers["members"] = EnsembleMean(k, combine)
    else:
        layers["head"] = nn.Linear(width, int(num_outputs))
    return nn.Sequential(layers)
