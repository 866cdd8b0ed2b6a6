"""NumpyPostprocess: predictions back in the target's units.

The target standardisation that :class:`~skflash.data.numpy_data.NumpyPreprocess` learns
is undone on each batch of outputs; its mean and scale are saved with the model as plain
lists.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from skflash.data.process import Postprocess


class NumpyPostprocess(Postprocess):
    """Undo the target standardisation learned by :class:`NumpyPreprocess`."""

    def __init__(self, save_path: Any = None) -> None:
        super().__init__(save_path)
        self.y_mean: torch.Tensor | None = None
        self.y_scale: torch.Tensor | None = None

    def set_target_scaling(self, mean: Any, scale: Any) -> None:
        mean = None if mean is None else torch.as_tensor(np.asarray(mean))
        scale = None if scale is None else torch.as_tensor(np.asarray(scale))
        if _same(mean, self.y_mean) and _same(scale, self.y_scale):
            return  # a continued fit: the tensors predict reads stay the same objects
        self._like: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}
        self.y_mean, self.y_scale = mean, scale

    def state_dict(self) -> dict[str, Any]:
        return {
            "y_mean": None if self.y_mean is None else self.y_mean.tolist(),
            "y_scale": None if self.y_scale is None else self.y_scale.tolist(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.set_target_scaling(state.get("y_mean"), state.get("y_scale"))

    def per_batch_transform(self, batch: torch.Tensor) -> torch.Tensor:
        if self.y_mean is None:
            return batch
        key = (batch.device, batch.dtype)  # converted once: predict runs this every call
        cached = vars(self).setdefault("_like", {})
        if key not in cached:  # ordinary tensors, even when first asked under inference mode
            with torch.inference_mode(False):
                cached[key] = (self.y_scale.to(*key), self.y_mean.to(*key))
        scale, mean = cached[key]
        return batch * scale + mean


def _same(new: torch.Tensor | None, old: torch.Tensor | None) -> bool:
    if new is None or old is None:
        return new is old
    return new.dtype == old.dtype and new.shape == old.shape and torch.equal(new, old)
