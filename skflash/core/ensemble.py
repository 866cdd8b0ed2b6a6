"""Ensembles of small networks trained in one vectorised pass (in the manner of TabM).

``k`` members share the input layer (categorical embeddings, numeric embedding) and
then run side by side: every hidden layer and the head hold ``k`` weight matrices in
one tensor (:class:`EnsembleLinear`), so a step costs one batched matrix product per
layer instead of ``k`` separate networks. In training mode the network returns every
member's output, one member's rows after another's, and the Task trains each member
on its own loss (the mean of the members' losses, not the loss of their mean); in eval
mode :class:`EnsembleMean` combines them: the mean for regression, the mean probability
for classification (returned as a logit, so the loss and the Postprocess are unchanged).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

#: How :class:`EnsembleMean` combines the members' outputs in eval mode.
COMBINE = ("mean", "softmax", "sigmoid")


class EnsembleLinear(nn.Module):
    """``k`` independent linear layers applied at once.

    Input ``(batch, in_features)`` (every member sees the same rows) or
    ``(k, batch, in_features)``; output ``(k, batch, out_features)``. Each member is
    initialised as :class:`torch.nn.Linear` would be.
    """

    def __init__(self, in_features: int, out_features: int, k: int) -> None:
        super().__init__()
        self.in_features, self.out_features, self.k = int(in_features), int(out_features), int(k)
        bound = 1 / math.sqrt(self.in_features) if self.in_features else 0.0
        self.weight = nn.Parameter(
            torch.empty(self.k, self.in_features, self.out_features).uniform_(-bound, bound)
        )
        self.bias = nn.Parameter(torch.empty(self.k, 1, self.out_features).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:  # every member sees the same rows (a view, no copy)
            x = x.expand(self.k, *x.shape)
        # One batched product for all members: the fewest operations, which is what a
        # small batch (one row at predict) pays for.
        return torch.baddbmm(self.bias, x, self.weight)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, k={self.k}"


class EnsembleMean(nn.Module):
    """The members' outputs ``(k, batch, out)``: all of them while training, else combined.

    Training: ``(k * batch, out)``, one member's rows after another's.
    Eval: ``"mean"`` averages them; ``"softmax"`` returns the log of the mean softmax
    probability and ``"sigmoid"`` the logit of the mean sigmoid probability, so that
    the usual link gives the ensemble's mean probability.
    """

    def __init__(self, k: int, combine: str = "mean") -> None:
        super().__init__()
        if combine not in COMBINE:
            raise ValueError(f"combine must be one of {COMBINE}, got {combine!r}.")
        self.k, self.combine = int(k), combine

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            return x.flatten(0, 1)
        if self.combine == "mean":
            return x.mean(dim=0)
        log_k = math.log(self.k)
        if self.combine == "softmax":
            return torch.logsumexp(F.log_softmax(x, dim=-1), dim=0) - log_k
        # log mean sigmoid(z) - log mean (1 - sigmoid(z)), stable for large |z|.
        positive = torch.logsumexp(-F.softplus(-x), dim=0)
        negative = torch.logsumexp(-F.softplus(x), dim=0)
        return positive - negative

    def extra_repr(self) -> str:
        return f"k={self.k}, combine={self.combine!r}"
