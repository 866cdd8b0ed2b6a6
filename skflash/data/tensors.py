"""Arrays as the tensors a model is fed: shared where they can be, copied in chunks.

A copy is made chunk by chunk (no full-size temporary), and a cast that overflows the
training dtype is refused with what to do instead.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from lightning_utilities.core.apply_func import apply_to_collection

_CHUNK_ROWS = 16384

_TOO_LARGE = (
    "Some values are too large for {dtype}: train in float64 with precision='64-true', "
    "or rescale them."
)


def to_tensor(x: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    """``x`` copied into a new tensor of ``dtype``, chunk by chunk (no full temporary);
    a value too large for ``dtype`` is refused (the arrays hold no infinity: only a cast
    overflows)."""
    out = torch.empty(x.shape, dtype=dtype)
    target = out.numpy()
    try:
        with np.errstate(over="raise"):
            for start in range(0, len(x), _CHUNK_ROWS):
                chunk = slice(start, start + _CHUNK_ROWS)
                target[chunk] = x[chunk]
    except FloatingPointError:
        raise ValueError(_TOO_LARGE.format(dtype=str(dtype).removeprefix("torch."))) from None
    return out


def as_tensor(x: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    """``x`` as a tensor of ``dtype``: shares its memory when it can, else one copy.

    Shared memory is only ever read: batches are taken by indexing, which copies.
    """
    if x.dtype == _NUMPY_DTYPES.get(dtype) and x.flags.c_contiguous:
        if x.flags.writeable:
            return torch.from_numpy(x)
        # torch warns that a read-only array could be written through the tensor; nothing
        # writes to it. (Only here: filters are process-wide, and two threads interleaving
        # catch_warnings blocks can leave one installed for good.)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return torch.from_numpy(x)
    return to_tensor(x, dtype)


_NUMPY_DTYPES = {
    torch.float32: np.dtype(np.float32),
    torch.float64: np.dtype(np.float64),
    torch.long: np.dtype(np.int64),
}


class NumpyRows(Sequence):
    """Rows of a numpy array, turned into tensors when fetched, batch by batch."""

    def __init__(self, x: np.ndarray, dtype: torch.dtype) -> None:
        self.x, self.dtype = x, dtype

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index: Any) -> torch.Tensor:  # type: ignore[override]
        return to_tensor(np.asarray(self.x[index]), self.dtype)

    def take_batch(self, indices: Any) -> torch.Tensor:
        if isinstance(indices, torch.Tensor):
            indices = indices.cpu().numpy()
        return self[indices]


class BatchTensors:
    """A streamed batch of arrays as tensors: ``x`` and the weights in the model's dtype,
    ``y`` in the target's; each batch's feature count checked."""

    def __init__(self, dtypes: tuple, check: Any) -> None:
        self.dtypes = dtypes
        self.check = check

    def __call__(self, arrays: tuple) -> tuple[torch.Tensor, ...]:
        self.check(arrays[0])
        tensors = tuple(
            torch.as_tensor(np.ascontiguousarray(a), dtype=dtype)
            for a, dtype in zip(arrays, self.dtypes, strict=False)
        )
        for tensor in tensors:  # the arrays held no infinity: only a cast can overflow
            if tensor.is_floating_point() and bool(torch.isinf(tensor).any()):
                raise ValueError(_TOO_LARGE.format(dtype=str(tensor.dtype).removeprefix("torch.")))
        return tensors


def floats_as(batch: Any, dtype: torch.dtype) -> Any:
    """Floating tensors of ``batch`` (any collection) in the model's floating ``dtype``."""
    if not dtype.is_floating_point:
        return batch
    return apply_to_collection(
        batch, torch.Tensor, lambda t: t.to(dtype) if t.is_floating_point() else t
    )
