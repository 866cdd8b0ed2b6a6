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

from skflash.estimators.base import BaseFlashEstimator
from skflash.estimators.parameters import Boolean, Options, Satisfies
from skflash.tasks.regression import REGRESSION_LOSSES, RegressionTask, regression_loss


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
        A name such as ``"adam"``, ``"adamw"`` or ``"sgd"``, or a class; its arguments
        go in as ``optimizer__<arg>``. Every torch optimizer trains well with the
        defaults, except LBFGS, SparseAdam and Muon, which are refused.
    learning_rate : float or "auto", default="auto"
        ``"auto"``: the rate measured to train well for the optimizer (1e-3 for AdamW,
        Adam, NAdam, RMSprop and Rprop; 3e-3 RAdam and Adamax; 1e-2 Adagrad and
        Adafactor; 0.1 SGD and ASGD; 1.0 Adadelta; torch's default for other classes).
    weight_decay : float or "auto", default="auto"
        The main regulariser. ``"auto"`` shrinks the weights by 0.1% per step wherever
        the decay is decoupled (AdamW, Adafactor; Adam, NAdam and RAdam are switched to
        decoupled decay), i.e. ``weight_decay = 1e-3 / learning_rate``, and is off
        where it would be an L2 penalty (SGD, Adagrad, RMSprop...), whose right
        strength depends on the data. A number is passed to the optimizer as its own
        ``weight_decay``, with torch's meaning.
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
    devices : int, str or list, default="auto"
        Lightning devices. More than one is refused unless ``trainer__strategy`` names
        a multi-process strategy (Lightning's default one re-runs the whole script).
    precision : str or int, optional
        Any Lightning precision except ``"transformer-engine"`` (which needs an NVIDIA
        GPU): ``"64-true"`` trains in float64, ``"bf16-mixed"``/``"16-mixed"`` under
        autocast, ``"bf16-true"``/``"16-true"`` with half-precision weights. None:
        float32 input trains in float32; float64 input trains in float64 (exact, as
        scikit-learn's MLP) while an epoch is under 1e8 multiply-adds (training rows x
        trainable parameters) on the CPU, and in float32 beyond that or on an
        accelerator (float64 costs 1.3x-1.5x the time). Predictions come back in the
        input's dtype.
    num_threads : int, "auto" or None, default="auto"
        CPU threads torch uses in ``fit`` and ``predict``. ``"auto"``: one when a step
        is small (under 4 million multiply-adds: trainable parameters x batch rows),
        where more threads gain nothing on a quiet machine and slow a busy one several
        times over; otherwise torch's own setting (in a joblib or Dask worker, what the
        worker was given). None leaves torch's setting alone. The caller's setting is
        restored afterwards.
    callbacks : list of Lightning callbacks, optional
        Copied into each fit.
    verbose : int, default=0
        0: silent; 1: one line per epoch with the losses; 2: Lightning's own progress bar,
        model summary and messages. No files are written at any level unless a logger
        (``trainer__logger``) or a ModelCheckpoint is passed.
    warm_start : bool, default=False
        Make ``fit`` continue training the fitted network instead of starting anew: the
        optimizer's state carries on, and a fresh learning-rate schedule runs over
        ``max_epochs``. (``partial_fit`` also keeps the optimizer's state, and trains at
        the constant ``learning_rate``.)
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
        num_threads: int | str | None = "auto",
        callbacks: list[Callback] | None = None,
        verbose: int = 0,
        warm_start: bool = False,
        **kwargs: Any,
    ) -> None:
        self._store_parameters(locals())

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
