"""FlashRegressor: a Lightning-trained network as a scikit-learn regressor."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from pytorch_lightning.callbacks import Callback
from sklearn.base import RegressorMixin
from torch import nn

from skflash.estimators.base import BaseFlashEstimator
from skflash.tasks.regression import RegressionTask, regression_loss


class FlashRegressor(RegressorMixin, BaseFlashEstimator):
    """A PyTorch network trained by a Lightning Trainer, as a scikit-learn regressor.

    ``fit`` standardises the inputs and the target (undone at predict), builds a
    :class:`~skflash.data.numpy_data.NumpyDataModule` through a
    :class:`~skflash.data.numpy_data.NumpyPreprocess`, and trains a
    :class:`~skflash.tasks.RegressionTask` with a :class:`skflash.Trainer`. A fit prints
    nothing and writes no files unless ``verbose`` asks for it.

    Parameters
    ----------
    backbone : str, nn.Module class or nn.Module, default="mlp"
        A key of the backbone registry topped with a linear head: ``"mlp"`` (by default
        two hidden layers of 64 SiLU units; change them with
        ``backbone__hidden_sizes``, ``backbone__activation``, ``backbone__dropout``) or
        ``"linear"``; or a module class, built as ``cls(n_features, n_outputs, **backbone__)``;
        or a module instance, copied at each fit. A module is the whole network.
    loss : str or callable, default="mse"
        ``"mse"``, ``"l1"``, ``"huber"``, ``"smooth_l1"``, or ``fn(y_hat, y)``. With
        ``sample_weight`` a callable must accept ``reduction="none"``.
    optimizer : str or torch.optim.Optimizer class, default="adamw"
        A name such as ``"adam"``, ``"adamw"`` or ``"sgd"``, or a class.
    learning_rate : float, default=1e-3
    weight_decay : float, default=1.0
        Weight decay of the optimizer (decoupled in AdamW), the main regulariser.
    lr_schedule : {"cosine", None}, default="cosine"
        ``"cosine"`` anneals the learning rate to zero over ``max_epochs`` (smoother
        convergence); None keeps it constant.
    batch_size : int or "auto", default="auto"
        ``"auto"`` is ``min(200, n_samples)``.
    max_epochs : int, default=200
        Passes over the training data (per ``fit``; ``partial_fit`` makes one).
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training data, stop when its loss has
        not improved for ``patience`` epochs, and keep the best epoch's weights.
    validation_fraction : float, default=0.1
    patience : int, default=10
    standardize_inputs : bool, default=True
        Centre and scale each feature with the (weighted) training statistics.
    standardize_target : bool, default=True
        Centre and scale the target for training; predictions come back in its units.
    random_state : int, RandomState instance or None, default=None
        Seeds the validation split, the initial weights and the shuffling. The global
        random state of numpy and torch is left alone when it is an integer.
    accelerator : str, default="cpu"
        Lightning accelerator: ``"cpu"``, ``"gpu"``, ``"auto"``...
    devices : int, list or "auto", default="auto"
    precision : str or int, optional
        Lightning precision (e.g. ``"bf16-mixed"``); training then runs on float32
        tensors. By default training uses the input's float dtype, as scikit-learn does.
    callbacks : list of Lightning callbacks, optional
        Copied into each fit.
    verbose : int, default=0
        0: silent; 1: one line per epoch with the losses; 2: Lightning's own progress bar,
        summary and logger.
    warm_start : bool, default=False
        Make ``fit`` continue training the fitted network instead of starting anew.
    **kwargs
        Routed parameters: ``backbone__<arg>`` (e.g. ``backbone__hidden_sizes``),
        ``optimizer__<arg>`` (e.g. ``optimizer__weight_decay``) and ``trainer__<arg>``
        (any ``pytorch_lightning.Trainer`` argument).

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
        learning_rate: float = 1e-3,
        weight_decay: float = 1.0,
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
        self.random_state = random_state
        self.accelerator = accelerator
        self.devices = devices
        self.precision = precision
        self.callbacks = callbacks
        self.verbose = verbose
        self.warm_start = warm_start
        self._store_routed(kwargs)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.input_tags.allow_nan = False
        return tags

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
        return self._fit(
            X, y, sample_weight, incremental=self.warm_start, max_epochs=self.max_epochs
        )

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

    def _encode_target(self, y: np.ndarray, fitting: bool) -> np.ndarray:
        if fitting:
            self._y_1d = y.ndim == 1
            self.n_outputs_ = 1 if y.ndim == 1 else y.shape[1]
        elif (1 if y.ndim == 1 else y.shape[1]) != self.n_outputs_:
            raise ValueError(
                f"y has {1 if y.ndim == 1 else y.shape[1]} outputs, but this model was fitted "
                f"with {self.n_outputs_}."
            )
        return y

    def _build_task(self, n_inputs: int, y: np.ndarray, dtype: torch.dtype) -> RegressionTask:
        backbone, backbone_kwargs, width = self._backbone_module(n_inputs, self.n_outputs_)
        return RegressionTask(
            num_inputs=n_inputs,
            num_outputs=self.n_outputs_,
            backbone=backbone,
            backbone_kwargs=backbone_kwargs,
            backbone_width=width,
            loss_fn=regression_loss(self.loss),
            optimizer=self.optimizer,
            optimizer_kwargs=self._optimizer_kwargs(),
            learning_rate=self.learning_rate,
            **self._schedule_kwargs(),
        )
