"""FlashRegressor: a Lightning-trained network as a scikit-learn regressor."""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
from sklearn.base import RegressorMixin

from skflash.estimators.base import BaseFlashEstimator
from skflash.estimators.parameters import Boolean, Options, Parameter, Satisfies, with_own
from skflash.estimators.shared_parameters import SHARED_PARAMETERS
from skflash.tasks.regression import REGRESSION_LOSSES, RegressionTask, regression_loss


class FlashRegressor(RegressorMixin, BaseFlashEstimator):
    """A PyTorch network trained by a Lightning Trainer, as a scikit-learn regressor.

    ``fit`` standardises the inputs and the target (undone at predict), builds a
    :class:`~skflash.data.numpy_data.NumpyDataModule` through a
    :class:`~skflash.data.numpy_data.NumpyPreprocess`, and trains a
    :class:`~skflash.tasks.RegressionTask` with a :class:`skflash.Trainer`. A fit prints
    nothing and writes no files unless ``verbose`` asks for it.

    Attributes
    ----------
    n_outputs_ : int

    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> from sklearn.model_selection import cross_val_score
    >>> from skflash import FlashRegressor
    >>> X, y = load_diabetes(return_X_y=True)
    >>> reg = FlashRegressor(max_epochs=20, random_state=0)
    >>> cross_val_score(reg, X, y, cv=3).shape
    (3,)
    """

    #: The shared parameters with this estimator's own; the signature and the
    #: docstring's Parameters section are written from it.
    _parameters = with_own(
        SHARED_PARAMETERS,
        {
            "backbone": (
                Parameter(
                    "loss",
                    "mse",
                    "str or callable",
                    (
                        Options(tuple(REGRESSION_LOSSES)),
                        Satisfies(
                            lambda f: callable(f) and not inspect.isclass(f),
                            "a callable loss(y_hat, y) (a loss module instance such as "
                            "nn.L1Loss(), not the class)",
                        ),
                    ),
                    """
                    ``"mse"``, ``"l1"``, ``"huber"``, ``"smooth_l1"``, or ``fn(y_hat, y)``.
                    With ``sample_weight`` a callable must accept ``reduction="none"``.
                    """,
                ),
            ),
            "standardize_inputs": (
                Parameter(
                    "standardize_target",
                    True,
                    "bool",
                    (Boolean(),),
                    """
                    Centre and scale the target for training; predictions come back in
                    its units.
                    """,
                ),
            ),
        },
    )

    #: Members ``n_ensemble="auto"`` trains with the "mlp" and "linear" backbones.
    _auto_ensemble = 2

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None) -> FlashRegressor:
        """Train for one epoch on ``X, y``, continuing from the current weights."""
        return self._fit(X, y, sample_weight, incremental=True, max_epochs=1)

    def predict(self, X: Any) -> np.ndarray:
        """Predict targets for ``X``: shape (n_samples,) when fitted on a 1-D ``y``."""
        outputs = self._forward(X)
        return outputs.reshape(-1) if self._y_1d else outputs

    # ------------------------------------------------------------------ subclass hooks
    def _onnx_output_kind(self) -> str:
        return "regression"

    def _standardize_target(self) -> bool:
        return bool(self.standardize_target)

    def _check_target_kind(self, y: Any) -> None:
        values = np.asarray(y)
        if values.dtype.kind in "fiub" or values.size == 0:
            return
        try:
            values.astype(np.float64)
        except (TypeError, ValueError):
            raise ValueError(
                f"{type(self).__name__} needs a numeric target, but y holds values such as "
                f"{values.reshape(-1)[0]!r}. For class labels use FlashClassifier; otherwise "
                "convert y to numbers first."
            ) from None

    def _encode_target(self, y: np.ndarray, fitting: bool, classes: Any = None) -> np.ndarray:
        if fitting:
            self._y_1d = y.ndim == 1
            self.n_outputs_ = 1 if y.ndim == 1 else y.shape[1]
        elif (1 if y.ndim == 1 else y.shape[1]) != self.n_outputs_:
            raise ValueError(
                f"y has {1 if y.ndim == 1 else y.shape[1]} outputs, but this model was fitted "
                f"with {self.n_outputs_}."
            )
        return y

    def _build_task(
        self, params: dict[str, Any], n_inputs: int, y: np.ndarray, epochs: int
    ) -> RegressionTask:
        backbone, backbone_kwargs, width = self._backbone_module(params, n_inputs, self.n_outputs_)
        return RegressionTask(
            num_inputs=n_inputs,
            num_outputs=self.n_outputs_,
            backbone=backbone,
            backbone_kwargs=backbone_kwargs,
            backbone_width=width,
            loss_fn=regression_loss(params["loss"]),
            **self._task_kwargs(params, epochs),
        )
