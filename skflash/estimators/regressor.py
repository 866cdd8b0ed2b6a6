"""FlashRegressor: a Lightning-trained network as a scikit-learn regressor."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from pytorch_lightning.callbacks import Callback
from sklearn.base import RegressorMixin
from torch import nn

from skflash.estimators.base import BaseFlashEstimator, with_shared_parameters
from skflash.estimators.parameters import Boolean, Options, Satisfies
from skflash.tasks.regression import REGRESSION_LOSSES, RegressionTask, regression_loss


@with_shared_parameters(
    """    loss : str or callable, default="mse"
        ``"mse"``, ``"l1"``, ``"huber"``, ``"smooth_l1"``, or ``fn(y_hat, y)``. With
        ``sample_weight`` a callable must accept ``reduction="none"``.
"""
)
class FlashRegressor(RegressorMixin, BaseFlashEstimator):
    """A PyTorch network trained by a Lightning Trainer, as a scikit-learn regressor.

    ``fit`` standardises the inputs and the target (undone at predict), builds a
    :class:`~skflash.data.numpy_data.NumpyDataModule` through a
    :class:`~skflash.data.numpy_data.NumpyPreprocess`, and trains a
    :class:`~skflash.tasks.RegressionTask` with a :class:`skflash.Trainer`. A fit prints
    nothing and writes no files unless ``verbose`` asks for it.

    Parameters
    ----------
    {shared_parameters}
    standardize_target : bool, default=True
        Centre and scale the target for training; predictions come back in its units.

    Attributes
    ----------
    task_ : RegressionTask
        The trained Lightning module.
    history_ : list of dict
        Per epoch: ``epoch``, ``train_loss``, and ``val_loss`` when early stopping.
    n_iter_ : int
        Epochs trained.
    best_epoch_ : int or None
        The epoch whose weights were kept by early stopping.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Defined when X has string column names.
    n_outputs_ : int

    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> from skflash import FlashRegressor
    >>> X, y = load_diabetes(return_X_y=True)
    >>> reg = FlashRegressor(max_epochs=20, random_state=0).fit(X, y)
    >>> reg.predict(X[:2]).shape
    (2,)
    """

    def __init__(
        self,
        backbone: str | type[nn.Module] | nn.Module = "mlp",
        loss: str | Callable = "mse",
        optimizer: str | type[torch.optim.Optimizer] = "adamw",
        learning_rate: float | str = "auto",
        weight_decay: float | str = "auto",
        lr_schedule: str | None = "cosine",
        batch_size: int | str = "auto",
        max_epochs: int = 200,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        patience: int = 10,
        standardize_inputs: bool = True,
        standardize_target: bool = True,
        random_state: int | np.random.RandomState | None = None,
        accelerator: str = "cpu",
        devices: int | str | list[int] = "auto",
        precision: str | int | None = None,
        callbacks: list[Callback] | None = None,
        verbose: int = 0,
        warm_start: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            backbone=backbone,
            loss=loss,
            optimizer=optimizer,
            learning_rate=learning_rate,
            weight_decay=weight_decay,
            lr_schedule=lr_schedule,
            batch_size=batch_size,
            max_epochs=max_epochs,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            patience=patience,
            standardize_inputs=standardize_inputs,
            random_state=random_state,
            accelerator=accelerator,
            devices=devices,
            precision=precision,
            callbacks=callbacks,
            verbose=verbose,
            warm_start=warm_start,
            routed=kwargs,
        )
        self.standardize_target = standardize_target

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.input_tags.allow_nan = False
        return tags

    _own_constraints = {
        "loss": (
            Options(tuple(REGRESSION_LOSSES)),
            Satisfies(
                lambda f: callable(f) and not inspect.isclass(f),
                "a callable loss(y_hat, y) (a loss module instance such as nn.L1Loss(), "
                "not the class)",
            ),
        ),
        "standardize_target": (Boolean(),),
    }

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> FlashRegressor:
        """Train on ``X, y``; with ``warm_start`` a fitted network continues training.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), optional
            Weights each sample's loss; a zero weight is the same as leaving it out.

        Returns
        -------
        self : FlashRegressor
        """
        return self._fit(X, y, sample_weight, incremental=self.warm_start, max_epochs=None)

    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None) -> FlashRegressor:
        """Train for one epoch on ``X, y``, continuing from the current weights."""
        return self._fit(X, y, sample_weight, incremental=True, max_epochs=1)

    def predict(self, X: Any) -> np.ndarray:
        """Predict targets for ``X``: shape (n_samples,) when fitted on a 1-D ``y``."""
        outputs = self._forward(X)
        return outputs.reshape(-1) if self._y_1d else outputs

    # ------------------------------------------------------------------ subclass hooks
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
        backbone, backbone_kwargs, width = self._backbone_module(
            params["backbone"], n_inputs, self.n_outputs_
        )
        return RegressionTask(
            num_inputs=n_inputs,
            num_outputs=self.n_outputs_,
            backbone=backbone,
            backbone_kwargs=backbone_kwargs,
            backbone_width=width,
            loss_fn=regression_loss(params["loss"]),
            **self._task_kwargs(params, epochs),
        )
