"""TabularInput: the first layer of a tabular network, where categorical codes are embedded.

The input rows hold the numeric features first, then one integer code per categorical
column (0 for a missing or unseen value; see :mod:`skflash.data.categories`). Columns
with few categories are one-hot encoded (the unknown code as all zeros), the others get
a learned embedding whose size grows with the number of categories. Numeric features
pass as they are, or through a :class:`PeriodicEmbedding`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import torch
from torch import nn

#: Categorical columns with at most this many known categories are one-hot encoded.
ONE_HOT_MAX = 8


def embedding_size(cardinality: int) -> int:
    """Embedding width for a column of ``cardinality`` codes: 1.6 * n^0.56, in [4, 16]."""
    return int(min(16, max(4, round(1.6 * cardinality**0.56))))


def input_width(
    num_numeric: int,
    cardinalities: Sequence[int] = (),
    one_hot_max: int = ONE_HOT_MAX,
    numeric_embedding: str | None = None,
) -> int:
    """The width of :class:`TabularInput`'s output (the first hidden layer's fan-in),
    known before it is built: numeric values (or their embedding), one 0/1 input per
    known category of a one-hot column, and each embedded column's width."""
    numeric = int(num_numeric)
    if numeric_embedding is not None and numeric:
        numeric = NUMERIC_EMBEDDINGS[numeric_embedding].width(numeric)
    return numeric + sum(
        c - 1 if c - 1 <= one_hot_max else embedding_size(c) for c in map(int, cardinalities)
    )


@dataclasses.dataclass(frozen=True)
class InputLayout:
    """The columns a :class:`TabularInput` will take, known before it is built: numeric
    columns, then one code per categorical column of these cardinalities."""

    num_numeric: int
    cardinalities: tuple[int, ...] = ()

    def width(self, numeric_embedding: str | None = None) -> int:
        """The first hidden layer's fan-in (see :func:`input_width`)."""
        return input_width(
            self.num_numeric, self.cardinalities, numeric_embedding=numeric_embedding
        )


class PeriodicEmbedding(nn.Module):
    """Each numeric feature ``x`` becomes ``[x, W cos(2 pi f x + phase) + b]``.

    Learned frequencies (initially normal, of standard deviation ``sigma``), phases and a
    small linear map per feature give the network smooth, high-frequency functions of each
    input, which plain MLPs learn slowly (periodic embeddings in the manner of the tabular
    deep-learning literature).

    Parameters
    ----------
    num_features : int
        Numeric features embedded.
    frequencies : int, default=16
        Learned frequencies per feature.
    out_features : int, default=3
        Learned values per feature, besides the feature itself.
    sigma : float, default=0.1
        Standard deviation of the initial frequencies.
    """

    def __init__(
        self, num_features: int, frequencies: int = 16, out_features: int = 3, sigma: float = 0.1
    ) -> None:
        super().__init__()
        bound = 1 / math.sqrt(frequencies)
        self.frequency = nn.Parameter(torch.randn(num_features, frequencies) * sigma)
        self.phase = nn.Parameter(
            torch.empty(num_features, frequencies).uniform_(-math.pi, math.pi)
        )
        self.weight = nn.Parameter(
            torch.empty(num_features, frequencies, out_features).uniform_(-bound, bound)
        )
        self.bias = nn.Parameter(torch.empty(num_features, out_features).uniform_(-bound, bound))
        self.out_features = self.width(num_features, out_features)

    @staticmethod
    def width(num_features: int, out_features: int = 3) -> int:
        """Output width for ``num_features`` features: each one and its learned values."""
        return num_features * (out_features + 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        waves = torch.cos(2 * math.pi * x.unsqueeze(-1) * self.frequency + self.phase)
        values = torch.einsum("bnf,nfo->bno", waves, self.weight) + self.bias
        return torch.cat([x.unsqueeze(-1), values], dim=-1).flatten(1)


#: Numeric embeddings :class:`TabularInput` can put on the numeric features.
NUMERIC_EMBEDDINGS = {"periodic": PeriodicEmbedding}


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
    numeric_embedding : {"periodic", None}, default=None
        Put a :class:`PeriodicEmbedding` on the numeric features.

    Attributes
    ----------
    out_features : int
        Width of the output: numeric columns, one-hot columns and embedding widths.
    """

    def __init__(
        self,
        num_numeric: int,
        cardinalities: Sequence[int] = (),
        one_hot_max: int = ONE_HOT_MAX,
        numeric_embedding: str | None = None,
    ) -> None:
        super().__init__()
        self.num_numeric = int(num_numeric)
        if numeric_embedding is not None and numeric_embedding not in NUMERIC_EMBEDDINGS:
            raise ValueError(
                f"numeric_embedding must be one of {sorted(NUMERIC_EMBEDDINGS)} or None, "
                f"got {numeric_embedding!r}."
            )
        self.numeric = (
            NUMERIC_EMBEDDINGS[numeric_embedding](self.num_numeric)
            if numeric_embedding and self.num_numeric
            else nn.Identity()
        )
        self.cardinalities = [int(c) for c in cardinalities]
        self.one_hot = [j for j, c in enumerate(self.cardinalities) if c - 1 <= one_hot_max]
        self.embedded = [j for j, c in enumerate(self.cardinalities) if c - 1 > one_hot_max]
        # One-hot columns: each code's slot in one wide 0/1 row (unknown codes fall in a
        # slot that is dropped), filled by one scatter for all columns at once.
        sizes = [self.cardinalities[j] for j in self.one_hot]
        starts = [sum(sizes[:i]) for i in range(len(sizes))]
        self.register_buffer("_hot_offsets", torch.tensor(starts, dtype=torch.long), False)
        kept = [
            start + k for start, size in zip(starts, sizes, strict=True) for k in range(1, size)
        ]
        self.register_buffer("_hot_kept", torch.tensor(kept, dtype=torch.long), False)
        self._hot_width = sum(sizes)
        # Embedded columns: one table per embedding width, each column's codes offset
        # into it, so a batch needs one lookup per width rather than one per column.
        widths = sorted({embedding_size(self.cardinalities[j]) for j in self.embedded})
        self.groups = [
            [j for j in self.embedded if embedding_size(self.cardinalities[j]) == w] for w in widths
        ]
        self.embeddings = nn.ModuleList(
            nn.Embedding(sum(self.cardinalities[j] for j in group), width)
            for group, width in zip(self.groups, widths, strict=True)
        )
        for i, group in enumerate(self.groups):
            counts = [self.cardinalities[j] for j in group]
            offsets = [sum(counts[:k]) for k in range(len(counts))]
            self.register_buffer(f"_offsets{i}", torch.tensor(offsets, dtype=torch.long), False)
        self.out_features = input_width(
            self.num_numeric, self.cardinalities, one_hot_max, numeric_embedding
        )
        limits = torch.tensor([c - 1 for c in self.cardinalities], dtype=torch.long)
        self.register_buffer("_limits", limits, False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        numeric = self.numeric(x[:, : self.num_numeric])
        codes = x[:, self.num_numeric :].round().long()
        codes = torch.minimum(codes.clamp(min=0), self._limits)  # out of range: unknown
        parts = [numeric]
        if self.one_hot:
            slots = codes[:, self.one_hot] + self._hot_offsets
            hot = x.new_zeros((x.shape[0], self._hot_width))
            hot.scatter_(1, slots, 1.0)
            parts.append(hot[:, self._hot_kept])
        for i, (group, embedding) in enumerate(zip(self.groups, self.embeddings, strict=True)):
            rows = codes[:, group] + getattr(self, f"_offsets{i}")
            parts.append(embedding(rows).flatten(1).to(x.dtype))
        return torch.cat(parts, dim=1)

    def extra_repr(self) -> str:
        return (
            f"num_numeric={self.num_numeric}, one_hot={len(self.one_hot)}, "
            f"embedded={len(self.embedded)}, out_features={self.out_features}"
        )
