"""Array-backed sample sequences that can hand out a whole batch with one indexing call."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch


class ArraySamples(Sequence):
    """Rows of one or more equally long tensors, seen as a sequence of samples.

    ``samples[i]`` is one sample (a tuple when there are several tensors); ``take_batch(indices)``
    returns the collated batch directly, as torch's default collate would have built it
    from those samples, without a Python call per row.

    Parameters
    ----------
    *tensors : torch.Tensor
        Tensors sharing their first dimension.
    """

    def __init__(self, *tensors: torch.Tensor) -> None:
        if not tensors:
            raise ValueError("ArraySamples needs at least one tensor.")
        lengths = {len(t) for t in tensors}
        if len(lengths) != 1:
            raise ValueError(f"All tensors must have the same length, got {sorted(lengths)}.")
        self.tensors = tuple(tensors)

    def __len__(self) -> int:
        return len(self.tensors[0])

    def __getitem__(self, index: Any) -> Any:  # type: ignore[override]
        rows = tuple(t[index] for t in self.tensors)
        return rows if len(rows) > 1 else rows[0]

    def take_batch(self, indices: Any) -> Any:
        """The batch made of the rows at ``indices`` (a list, slice or index tensor)."""
        if isinstance(indices, slice):
            return self[indices]
        if isinstance(indices, list):
            indices = torch.as_tensor(indices, dtype=torch.long)
        rows = tuple(t.index_select(0, indices) for t in self.tensors)
        return rows if len(rows) > 1 else rows[0]

    def to(self, device: torch.device | str) -> ArraySamples:
        """These samples on ``device`` (themselves when they are there already)."""
        moved = tuple(t.to(device) for t in self.tensors)
        if all(a is b for a, b in zip(moved, self.tensors, strict=True)):
            return self
        return ArraySamples(*moved)


class SampleView(Sequence):
    """The samples of ``samples`` at ``indices``, without copying them."""

    def __init__(self, samples: Sequence, indices: torch.Tensor) -> None:
        self.samples = samples
        self.indices = torch.as_tensor(indices, dtype=torch.long)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: Any) -> Any:  # type: ignore[override]
        return self.samples[int(self.indices[index])]

    @property
    def supports_take_batch(self) -> bool:
        return hasattr(self.samples, "take_batch")

    def take_batch(self, indices: Any) -> Any:
        if isinstance(indices, list):
            indices = torch.as_tensor(indices, dtype=torch.long)
        return self.samples.take_batch(self.indices[indices])

    def to(self, device: torch.device | str) -> SampleView:
        to = getattr(self.samples, "to", None)
        samples = self.samples if to is None else to(device)
        return SampleView(samples, self.indices.to(device))
