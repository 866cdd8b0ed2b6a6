"""FlashRegressor: a Lightning-trained network as a scikit-learn regressor."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from sklearn.base import RegressorMixin
from torch import nn

from skflash.core.model import Task
from skflash.data.numpy_data import NumpyPostprocess
from skflash.data.targets import RegressionTargets, SingleTarget
from skflash.estimators.base import BaseFlashEstimator
from skflash.estimators.parameters import Boolean, Options, Parameter, Satisfies, with_own
from skflash.estimators.shared_parameters import SHARED_PARAMETERS
from skflash.estimators.user_task import takes_outputs
from skflash.lightning_namespaces import CLASSIC, in_namespace
from skflash.tasks.regression import REGRESSION_LOSSES, RegressionTask, regression_loss

if TYPE_CHECKING:
    from skflash.lightning_namespaces import LightningAccelerator, LightningCallback


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

    #: The shared parameters with this estimator's own: the docstring's Parameters
    #: section is written from it, and ``__init__`` matches it (tested).
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

    _auto_ensemble = 2

    def __init__(
        self,
        *,
        task: type[Task] | None = None,
        backbone: str | type[nn.Module] | nn.Module = "mlp",
        loss: str | Callable = "mse",
        optimizer: str | type[torch.optim.Optimizer] = "adamw",
        learning_rate: float | Literal["auto"] = "auto",
        weight_decay: float | Literal["auto"] = "auto",
        lr_schedule: Literal["cosine"] | None = "cosine",
        batch_size: int | Literal["auto"] = "auto",
        max_epochs: int | Literal["auto"] = "auto",
        early_stopping: bool | Literal["auto"] = False,
        validation_fraction: float = 0.1,
        patience: int = 10,
        standardize_inputs: bool | Literal["robust"] = True,
        standardize_target: bool = True,
        numeric_embedding: Literal["auto", "periodic"] | None = "auto",
        n_ensemble: int | Literal["auto"] = "auto",
        categorical_features: Any = "auto",
        discrete_features: Any = "auto",
        random_state: int | np.random.RandomState | None = None,
        accelerator: str | LightningAccelerator = "cpu",
        devices: int | str | list[int] = "auto",
        precision: str | int | None = None,
        num_threads: int | Literal["auto"] | None = "auto",
        callbacks: list[LightningCallback] | None = None,
        verbose: int = 0,
        warm_start: bool = False,
        **kwargs: Any,
    ) -> None:
        self.task = task
        self.backbone = backbone
        self.loss = loss
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.lr_schedule = lr_schedule
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.standardize_inputs = standardize_inputs
        self.standardize_target = standardize_target
        self.numeric_embedding = numeric_embedding
        self.n_ensemble = n_ensemble
        self.categorical_features = categorical_features
        self.discrete_features = discrete_features
        self.random_state = random_state
        self.accelerator = accelerator
        self.devices = devices
        self.precision = precision
        self.num_threads = num_threads
        self.callbacks = callbacks
        self.verbose = verbose
        self.warm_start = warm_start
        self._store_routed(kwargs)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # a Task of your own predicts several targets when it is told how many
        tags.target_tags.multi_output = self.task is None or takes_outputs(self.task)
        return tags

    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None) -> FlashRegressor:
        """Train for one epoch on ``X, y``, continuing from the current weights.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            The rows to train on.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            The targets.
        sample_weight : array-like of shape (n_samples,), optional
            Weights each sample's loss.

        Returns
        -------
        self : FlashRegressor
            The estimator, trained one more epoch.
        """
        return self._fit(X, y, sample_weight, incremental=True, max_epochs=1)

    def predict(self, X: Any) -> np.ndarray:
        """Predict targets for ``X``.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            The rows to predict.

        Returns
        -------
        numpy.ndarray
            Shape (n_samples,) when fitted on a 1-D ``y``, else (n_samples, n_outputs).
        """
        outputs = self._forward(X)
        return outputs.reshape(-1) if self._target.one_dimensional else outputs

    # ------------------------------------------------------------------ subclass hooks
    def _standardize_target(self) -> bool:
        return bool(self.standardize_target)

    def _target_kind(self, params: dict[str, Any]) -> type[RegressionTargets]:
        task = params["task"]
        return RegressionTargets if task is None or takes_outputs(task) else SingleTarget

    def _user_postprocess(self) -> NumpyPostprocess:
        return NumpyPostprocess()  # undoes the target's scaling

    def _learned_target(self, target: RegressionTargets) -> None:
        self.n_outputs_ = target.n_outputs

    def _new_task(
        self, arguments: dict[str, Any], target: RegressionTargets, params: dict[str, Any]
    ) -> RegressionTask:
        task = in_namespace(RegressionTask, params.get("lightning", CLASSIC))
        return task(
            num_outputs=target.n_outputs, loss_fn=regression_loss(params["loss"]), **arguments
        )
