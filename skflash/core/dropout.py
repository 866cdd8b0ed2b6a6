"""Dropout whose mask costs half of torch's on the CPU.

A tabular network's steps are small: on a 200-row batch through two hidden layers of 64
units (two ensemble members), :class:`torch.nn.Dropout` draws each mask entry from
torch's CPU generator one at a time and adds about 0.22 ms per layer and step (forward
and backward), a third of a small table's fit. :class:`Dropout` draws the mask from
64-bit words of that generator, four entries per word (each a 16-bit number compared
with the rate), and adds about 0.11 ms. The rate is rounded to a multiple of 1/65536.

A fit gives each layer a generator of its own, seeded from its ``random_state``
(:func:`seed_layers`), so fits running in threads at once draw the masks they would draw
alone; an unseeded layer draws from torch's global generator, as torch's dropout does.
The generator is not pickled. On other devices, in eval mode and for rates of 0 and 1,
it is :class:`torch.nn.Dropout`.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

_LEVELS = 1 << 16
_NUMPY_DTYPES = {torch.float32: np.float32, torch.float64: np.float64}


@functools.cache
def _threshold(p: float) -> tuple[int, float]:
    """The 16-bit draws below which an entry is dropped, and the kept entries' scale."""
    dropped = round(p * _LEVELS)
    return dropped, _LEVELS / (_LEVELS - dropped)


def keep_mask(
    shape: torch.Size, p: float, dtype: torch.dtype, generator: torch.Generator | None = None
) -> torch.Tensor:
    """A CPU tensor of ``shape``: 0 with probability ``p`` (rounded to a multiple of
    1/65536), else ``1 / (1 - p)`` of the rounded rate, so that the mean is kept; drawn
    from ``generator`` (None: torch's global one)."""
    n = math.prod(shape)
    words = torch.empty((n + 3) // 4, dtype=torch.int64)
    words.random_(-(1 << 63), None, generator=generator)
    dropped, scale = _threshold(float(p))
    kept = words.numpy().view(np.uint16)[:n] >= dropped
    mask = np.multiply(kept, scale, dtype=_NUMPY_DTYPES.get(dtype, np.float32))
    mask = torch.from_numpy(mask).view(shape)
    return mask if mask.dtype == dtype else mask.to(dtype)


class Dropout(nn.Dropout):
    """:class:`torch.nn.Dropout` with its CPU mask drawn four entries per random word,
    from a generator of its own once seeded (see the module's docstring); ``inplace`` is
    not supported."""

    # what an eval-mode forward does not read (each fit seeds a new generator)
    eval_ignores = frozenset({"generator"})

    def __init__(self, p: float = 0.5) -> None:
        super().__init__(p)
        self.generator: torch.Generator | None = None

    def seed(self, seed: int) -> None:
        """Draw the masks from now on from a generator of this layer's, seeded with ``seed``."""
        self.generator = torch.Generator().manual_seed(int(seed))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:  # what F.dropout returns, without an operator call
            return x
        if self.p == 0 or self.p == 1 or x.device.type != "cpu":
            return F.dropout(x, self.p, self.training)
        return x * keep_mask(x.shape, self.p, x.dtype, getattr(self, "generator", None))

    def __getstate__(self) -> dict:
        state = dict(super().__getstate__())
        state["generator"] = None  # a generator cannot be pickled; the next fit seeds one
        return state


def seed_layers(module: nn.Module, seed: int) -> None:
    """Seed every :class:`Dropout` of ``module`` from ``seed``, each layer its own stream."""
    layers = (m for m in module.modules() if isinstance(m, Dropout))
    for position, layer in enumerate(layers):
        layer.seed(int(seed) + position)
