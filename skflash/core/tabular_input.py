"""TabularInput: the first layer of a tabular network, where categorical codes are embedded.

The input rows hold the numeric features first, then one integer code per categorical
column (0 for a missing or unseen value; see :mod:`skflash.data.categories`). Columns
with few categories are one-hot encoded (the unknown code as all zeros), the others get
a learned embedding whose size grows with the number of categories.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

#: Categorical columns with at most this many known categories are one-hot encoded.
ONE_HOT_MAX = 8


def embedding_size(cardinality: int) -> int:
    """Embedding width for a column of ``cardinality`` codes: 1.6 * n^0.56, in [4, 16]."""
    return int(min(16, max(4, round(1.6 * cardinality**0.56))))


class TabularInput(nn.Module):
    """Numeric features as they come, categorical codes one-hot encoded or embedded.

    Parameters
    ----------
    num_numeric : int
        Leading numeric columns.
    cardinalities : sequence of int
        Codes per categorical column (the reserved unknown code included).
    one_hot_max : int, default=8
        Known categories up to which a column is one-hot encoded rather than embedded.

    Attributes
    ----------
    out_features : int
        Width of the output: numeric columns, one-hot columns and embedding widths.
    """

    def __init__(
        self, num_numeric: int, cardinalities: Sequence[int], one_hot_max: int = ONE_HOT_MAX
    ) -> None:
        super().__init__()
        self.num_numeric = int(num_numeric)
        self.cardinalities = [int(c) for c in cardinalities]
        self.one_hot = [j for j, c in enumerate(self.cardinalities) if c - 1 <= one_hot_max]
        self.embedded = [j for j, c in enumerate(self.cardinalities) if c - 1 > one_hot_max]
        self.embeddings = nn.ModuleList(
            nn.Embedding(self.cardinalities[j], embedding_size(self.cardinalities[j]))
            for j in self.embedded
        )
        self.out_features = (
            self.num_numeric
            + sum(self.cardinalities[j] - 1 for j in self.one_hot)
            + sum(e.embedding_dim for e in self.embeddings)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        numeric = x[:, : self.num_numeric]
        codes = x[:, self.num_numeric :].round().long()
        codes = codes.clamp(0, max(self.cardinalities, default=1) - 1)
        parts = [numeric]
        for j in self.one_hot:
            size = self.cardinalities[j]
            hot = nn.functional.one_hot(codes[:, j].clamp(max=size - 1), size)
            parts.append(hot[:, 1:].to(x.dtype))
        for j, embedding in zip(self.embedded, self.embeddings, strict=True):
            column = codes[:, j].clamp(max=self.cardinalities[j] - 1)
            parts.append(embedding(column).to(x.dtype))
        return torch.cat(parts, dim=1)

    def extra_repr(self) -> str:
        return (
            f"num_numeric={self.num_numeric}, one_hot={len(self.one_hot)}, "
            f"embedded={len(self.embedded)}, out_features={self.out_features}"
        )
