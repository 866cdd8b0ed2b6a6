"""One thread's random draws from a generator of its own, for initial weights that depend
on their seed alone.

torch's global generator is shared by every thread of the process, and not everyone who
moves it takes a lock of ours: Lightning's Trainer saves it before its sanity check and
sets it back afterwards (``isolate_rng``). A fit in one thread can so reset the generator
while another thread draws its initial weights from a seed, and a threaded search then
trains other models than the same search run sequentially. Inside :class:`SeededDraws`,
the random functions this thread calls draw from the block's own generator instead; a
generator seeded like the global one draws the same numbers, so the weights are those of
``torch.manual_seed(seed)`` followed by the same build.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.overrides import TorchFunctionMode

#: torch's random functions: called without a ``generator``, they draw from the global
#: one. (``torch.nn.init``'s functions, and any function given ``generator=None``, are
#: recognized by that argument.)
RANDOM_FUNCTIONS = frozenset(
    {
        torch.Tensor.uniform_,
        torch.Tensor.normal_,
        torch.Tensor.bernoulli_,
        torch.Tensor.random_,
        torch.Tensor.exponential_,
        torch.Tensor.geometric_,
        torch.Tensor.cauchy_,
        torch.Tensor.log_normal_,
        torch.Tensor.bernoulli,
        torch.Tensor.multinomial,
        torch.rand,
        torch.randn,
        torch.randint,
        torch.randperm,
        torch.rand_like,
        torch.randn_like,
        torch.randint_like,
        torch.normal,
        torch.bernoulli,
        torch.multinomial,
        torch.poisson,
    }
)


class SeededDraws(TorchFunctionMode):
    """Within the block, torch's random functions called by this thread (and nowhere
    else: torch keeps such modes per thread) draw from a CPU generator seeded with
    ``seed``.

    Draws on another device, and draws made by code that bypasses torch's functions
    (NumPy, compiled extensions), still come from the global generators.

    Examples
    --------
    >>> import torch
    >>> from skflash.core.seeded_draws import SeededDraws
    >>> with SeededDraws(0):
    ...     layer = torch.nn.Linear(3, 1)
    >>> _ = torch.manual_seed(0)
    >>> torch.equal(layer.weight, torch.nn.Linear(3, 1).weight)
    True
    """

    def __init__(self, seed: int) -> None:
        super().__init__()
        self.generator = torch.Generator().manual_seed(int(seed))

    def __torch_function__(
        self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None
    ) -> Any:
        kwargs = {} if kwargs is None else kwargs
        generator = kwargs.get("generator", _ABSENT)
        unset = generator is None or (generator is _ABSENT and func in RANDOM_FUNCTIONS)
        if unset and _on_cpu(args, kwargs):
            kwargs = {**kwargs, "generator": self.generator}
        return func(*args, **kwargs)


_ABSENT = object()


def _on_cpu(args: tuple, kwargs: dict) -> bool:
    """Whether the call draws on the CPU: into a CPU tensor, or a new tensor made there."""
    first = args[0] if args else kwargs.get("tensor", kwargs.get("input"))
    if isinstance(first, torch.Tensor):
        return first.device.type == "cpu"
    device = kwargs.get("device")
    if device is None:
        return torch.get_default_device().type == "cpu"
    return torch.device(device).type == "cpu"
