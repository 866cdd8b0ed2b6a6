"""What FlashRegressor and FlashClassifier share: parameters, validation and the fit.

The data path of a fit: validated arrays -> NumpyPreprocess (scaling learned on the
training rows) -> NumpyDataModule (fused epoch chunks) -> Task -> skflash Trainer.
Subclasses say only what differs: the Task, how the target is encoded, what predictions
look like.
"""

from __future__ import annotations

import copy
import inspect
import numbers
from typing import Any

import numpy as np
import pandas as pd
import torch
from pytorch_lightning.callbacks import Callback, EarlyStopping, ModelCheckpoint
from sklearn.base import BaseEstimator
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data
from torch import nn

from skflash.core.backbones import TABULAR_BACKBONES
from skflash.core.model import Task
from skflash.core.optimizers import optimizer_class
from skflash.core.trainer import Trainer
from skflash.data.numpy_data import NumpyDataModule, NumpyPreprocess
from skflash.estimators import routing
from skflash.estimators.callbacks import BestWeights, EpochPrinter, History
from skflash.estimators.quiet import quiet_lightning

#: Rows per forward pass at predict time: large inputs stream through in batches.
PREDICT_BATCH_SIZE = 8192
#: Trainer arguments the estimator sets from its own parameters.
_OWN_TRAINER_ARGS = ("max_epochs", "accelerator", "devices", "precision", "callbacks")
#: Trainer arguments that need Lightning's automatic optimization (one step per batch).
_AUTOMATIC_ONLY = ("gradient_clip_val", "accumulate_grad_batches")


#: The parameters both estimators share, documented once; ``{loss}`` is each one's own.
SHARED_PARAMETERS_DOC = """\
    backbone : str, nn.Module class or nn.Module, default="mlp"
        A key of the backbone registry topped with a linear head: ``"mlp"`` (by default
        two hidden layers of 64 SiLU units; change them with
        ``backbone__hidden_sizes``, ``backbone__activation``, ``backbone__dropout``) or
        ``"linear"``; or a module class, built as ``cls(n_features, n_outputs, **backbone__)``;
        or a module instance, copied at each fit. A module is the whole network.
{loss}    optimizer : str or torch.optim.Optimizer class, default="adamw"
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
        (any ``pytorch_lightning.Trainer`` argument)."""


def with_shared_parameters(loss_doc: str):
    """Put the shared parameter docs, with this estimator's ``loss`` entry, in its docstring."""

    def decorate(cls: type) -> type:
        text = SHARED_PARAMETERS_DOC.replace("{loss}", loss_doc).strip()
        cls.__doc__ = (cls.__doc__ or "").replace("{shared_parameters}", text)
        return cls

    return decorate


def _is_string_column(values: Any) -> bool:
    return pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values)


class BaseFlashEstimator(BaseEstimator):
    """Shared machinery of the skflash estimators; not meant to be used directly."""

    # Subclasses set: the loss names they accept and the default loss.
    _default_loss: str = "mse"

    def __init__(
        self,
        *,
        backbone: Any,
        loss: Any,
        optimizer: Any,
        learning_rate: float,
        weight_decay: float,
        lr_schedule: str | None,
        batch_size: int | str,
        max_epochs: int,
        early_stopping: bool,
        validation_fraction: float,
        patience: int,
        standardize_inputs: bool,
        random_state: Any,
        accelerator: str,
        devices: Any,
        precision: Any,
        callbacks: list[Callback] | None,
        verbose: int,
        warm_start: bool,
        routed: dict[str, Any],
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
        self.random_state = random_state
        self.accelerator = accelerator
        self.devices = devices
        self.precision = precision
        self.callbacks = callbacks
        self.verbose = verbose
        self.warm_start = warm_start
        self._store_routed(routed)

    def _store_routed(self, kwargs: dict[str, Any]) -> None:
        # Stored as given: like every parameter, the names are checked in fit.
        self._extra_kwargs = sorted(k for k in kwargs if not routing.is_routed(k))
        for key, value in kwargs.items():
            if routing.is_routed(key):
                setattr(self, key, value)

    # ------------------------------------------------------------------ parameters
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        params = super().get_params(deep=deep)
        params.update(routing.routed_params(self))
        return params

    def set_params(self, **params: Any) -> BaseFlashEstimator:
        routed = {k: v for k, v in params.items() if routing.is_routed(k)}
        for key, value in routed.items():
            setattr(self, key, value)
        valid = super().get_params(deep=True)
        unknown = {
            k: v for k, v in params.items() if k not in routed and k.split("__")[0] not in valid
        }
        if unknown:  # kept, like the constructor keeps them, and rejected by fit
            self._extra_kwargs = sorted({*getattr(self, "_extra_kwargs", ()), *unknown})
        rest = {k: v for k, v in params.items() if k not in routed and k not in unknown}
        if rest:
            super().set_params(**rest)
        return self

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "task_")

    # ------------------------------------------------------------------ validation
    def _check_params(self) -> None:
        routing.check_routed_names(self, getattr(self, "_extra_kwargs", ()))

        def positive_int(name: str, allow: tuple = ()) -> None:
            value = getattr(self, name)
            if value in allow:
                return
            if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}.")

        positive_int("max_epochs")
        positive_int("batch_size", allow=("auto",))
        positive_int("patience")
        if not isinstance(self.learning_rate, numbers.Real) or not self.learning_rate > 0:
            raise ValueError(
                f"learning_rate must be a positive number, got {self.learning_rate!r}."
            )
        if not (
            isinstance(self.validation_fraction, numbers.Real) and 0 < self.validation_fraction < 1
        ):
            raise ValueError(
                f"validation_fraction must be in (0, 1), got {self.validation_fraction!r}."
            )
        if not (isinstance(self.weight_decay, numbers.Real) and self.weight_decay >= 0):
            raise ValueError(f"weight_decay must be a number >= 0, got {self.weight_decay!r}.")
        if self.verbose not in (0, 1, 2, False, True):
            raise ValueError(f"verbose must be 0, 1 or 2, got {self.verbose!r}.")
        if self.callbacks is not None and not all(isinstance(c, Callback) for c in self.callbacks):
            raise TypeError("callbacks must be a list of Lightning Callback instances.")
        trainer_kwargs = routing.routed(self, "trainer__")
        for key in trainer_kwargs:
            if key in _OWN_TRAINER_ARGS:
                raise ValueError(
                    f"Set {key} with the estimator's own parameter {key!r}, not trainer__{key}."
                )
        routing.check_kwargs(Trainer.__init__, trainer_kwargs, "trainer__", own=_OWN_TRAINER_ARGS)
        if not isinstance(self.optimizer, torch.optim.Optimizer):
            routing.check_kwargs(
                optimizer_class(self.optimizer), routing.routed(self, "optimizer__"), "optimizer__"
            )

    def _validate_X(self, X: Any) -> Any:
        """Tensors to arrays; a clear error for string columns before sklearn's validation."""
        if torch.is_tensor(X):
            X = X.detach().cpu().numpy()
        if isinstance(X, pd.DataFrame):
            strings = [str(c) for c in X.columns if _is_string_column(X[c])]
            numeric_object = [
                c for c in strings if pd.to_numeric(X[c], errors="coerce").notna().all()
            ]
            strings = [c for c in strings if c not in numeric_object]
            if strings:
                raise ValueError(
                    f"{type(self).__name__} needs numeric features, but column(s) {strings} hold "
                    "strings. Encode them first, e.g. with a ColumnTransformer: "
                    "make_pipeline(make_column_transformer((OneHotEncoder(), "
                    f"{strings}), remainder='passthrough'), {type(self).__name__}())."
                )
        return X

    def _validate_fit_data(
        self, X: Any, y: Any, sample_weight: Any, reset: bool
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        X = self._validate_X(X)
        if torch.is_tensor(y):
            y = y.detach().cpu().numpy()
        try:
            X, y = validate_data(
                self,
                X,
                y,
                reset=reset,
                dtype=(np.float64, np.float32),
                multi_output=True,
                y_numeric=self._y_numeric,
            )
        except ValueError as error:
            if "could not convert string to float" in str(error):
                raise ValueError(
                    f"{error}. {type(self).__name__} needs numeric features: encode string "
                    "columns first, e.g. with a ColumnTransformer and a OneHotEncoder."
                ) from error
            raise
        if sample_weight is not None:
            sample_weight = _check_sample_weight(
                sample_weight, X, dtype=np.float64, ensure_non_negative=True
            )
            if not np.any(sample_weight > 0):
                raise ValueError("Sample weights must contain at least one non-zero number.")
        return X, y, sample_weight

    # ------------------------------------------------------------------ building blocks
    def _training_dtype(self, X: np.ndarray) -> torch.dtype:
        """Train in the input's float dtype (like scikit-learn's MLP), unless a Lightning
        precision is asked for, which then works on float32 tensors."""
        if self.precision is not None:
            return torch.float32
        return torch.float64 if X.dtype == np.float64 else torch.float32

    def _backbone_module(self, n_inputs: int, n_outputs: int) -> tuple[Any, dict, int | None]:
        """The backbone argument for the Task, its kwargs, and a width when a head is wanted."""
        kwargs = routing.routed(self, "backbone__")
        backbone = self.backbone
        if isinstance(backbone, str):
            factory = TABULAR_BACKBONES.get(backbone)
            routing.check_kwargs(factory, {"num_features": n_inputs, **kwargs}, "backbone__")
            return backbone, kwargs, None
        if inspect.isclass(backbone) and issubclass(backbone, nn.Module):
            routing.check_kwargs(backbone, kwargs, "backbone__")
            try:
                return backbone(n_inputs, n_outputs, **kwargs), {}, None
            except TypeError as error:
                raise TypeError(
                    f"Building backbone {backbone.__name__}(n_features, n_outputs, **backbone__) "
                    f"failed: {error}. A backbone class is called with the number of input "
                    "features and of outputs, plus the backbone__ parameters."
                ) from error
        if isinstance(backbone, nn.Module):
            return copy.deepcopy(backbone), {}, None
        raise TypeError(
            "backbone must be a registry key such as 'mlp' or 'linear', an nn.Module class "
            f"or an nn.Module instance; got {backbone!r}."
        )

    def _schedule_kwargs(self) -> dict[str, Any]:
        """Task arguments for the learning-rate schedule over this fit's epochs."""
        if self.lr_schedule is None:
            return {}
        if self.lr_schedule != "cosine":
            raise ValueError(f"lr_schedule must be 'cosine' or None, got {self.lr_schedule!r}.")
        return {
            "scheduler": "cosineannealinglr",
            "scheduler_kwargs": {"T_max": int(self.max_epochs)},
        }

    def _optimizer_kwargs(self) -> dict[str, Any]:
        kwargs = routing.routed(self, "optimizer__")
        if self.weight_decay and "weight_decay" not in kwargs:
            kwargs["weight_decay"] = self.weight_decay
        return kwargs

    def _batch_size(self, n_samples: int) -> int:
        return min(200, n_samples) if self.batch_size == "auto" else int(self.batch_size)

    def _uses_fused_steps(self) -> bool:
        return not any(k in routing.routed(self, "trainer__") for k in _AUTOMATIC_ONLY)

    def _trainer(self, callbacks: list[Callback], max_epochs: int) -> Trainer:
        verbose = int(self.verbose)
        kwargs: dict[str, Any] = {
            "max_epochs": max_epochs,
            "accelerator": self.accelerator,
            "devices": self.devices,
            "logger": verbose >= 2,
            # Only a ModelCheckpoint the user passes writes checkpoints.
            "enable_checkpointing": any(isinstance(c, ModelCheckpoint) for c in callbacks),
            "enable_progress_bar": verbose >= 2,
            "enable_model_summary": verbose >= 2,
            "num_sanity_val_steps": 0,
            "deterministic": False,
        }
        if self.precision is not None:
            kwargs["precision"] = self.precision
        kwargs.update(routing.routed(self, "trainer__"))
        kwargs["callbacks"] = callbacks
        return Trainer(**kwargs)

    # ------------------------------------------------------------------ fit
    def _fit(
        self,
        X: Any,
        y: Any,
        sample_weight: Any,
        incremental: bool,
        max_epochs: int,
        classes: Any = None,
    ):
        self._check_params()
        continuing = incremental and hasattr(self, "task_")
        X, y, sample_weight = self._validate_fit_data(X, y, sample_weight, reset=not continuing)
        y = self._encode_target(y, fitting=not continuing, classes=classes)
        target_weight = self._target_weight(y)
        if target_weight is not None:
            sample_weight = (
                target_weight if sample_weight is None else sample_weight * target_weight
            )
        if sample_weight is not None:
            keep = sample_weight > 0  # a zero weight is the same as dropping the sample
            if not keep.all():
                X, y, sample_weight = X[keep], y[keep], sample_weight[keep]
                self._check_kept_target(y)
            if np.all(sample_weight == sample_weight[0]):
                sample_weight = None

        random_state = check_random_state(self.random_state)
        split_seed, init_seed, shuffle_seed = random_state.randint(np.iinfo(np.int32).max, size=3)

        train = (X, y) if sample_weight is None else (X, y, sample_weight)
        val = None
        if self.early_stopping:
            train, val = self._split_validation(train, int(split_seed))

        dtype = self._training_dtype(X)
        devices = None if torch.cuda.is_available() else []  # the global RNGs are left alone
        with torch.random.fork_rng(devices=devices), quiet_lightning(int(self.verbose) < 2):
            torch.manual_seed(int(init_seed))
            if continuing:
                task = self.task_
                task.preprocess.learn_statistics = False
            else:
                task = self._build_task(X.shape[1], y, dtype)
                task.preprocess = NumpyPreprocess(
                    standardize_inputs=self.standardize_inputs,
                    standardize_target=self._standardize_target(),
                    dtype=dtype,
                    target_dtype=self._target_dtype(dtype),
                )
                task.to(dtype)
            datamodule = NumpyDataModule.from_arrays(
                train,
                val=val,
                preprocess=task.preprocess,
                postprocess=task.postprocess,
                batch_size=self._batch_size(len(train[0])),
                seed=int(shuffle_seed),
                fused_steps=self._uses_fused_steps(),
            )
            task.automatic_optimization = not self._uses_fused_steps()
            # Lightning's logging costs ~1 ms per value and epoch: only pay it when something
            # reads logged values (early stopping, the user's callbacks, a logger).
            task.log_epoch_metrics = bool(
                val is not None
                or self.callbacks
                or int(self.verbose) >= 2
                or routing.routed(self, "trainer__").get("logger")
            )
            history, best, callbacks = self._callbacks(early_stopping=val is not None)
            self._trainer(callbacks, max_epochs).fit(task, datamodule=datamodule)
        task.trainer = None  # fitted models do not keep the Trainer (or its data) alive
        task.preprocess.learn_statistics = False

        self.task_ = task
        previous = self.history_ if continuing else []
        offset = len(previous)
        self.history_ = previous + [
            {**row, "epoch": row["epoch"] + offset} for row in history.history
        ]
        self.n_iter_ = len(self.history_)
        self.best_epoch_ = (
            None if best is None or best.best_epoch is None else best.best_epoch + offset
        )
        return self

    def _callbacks(self, early_stopping: bool) -> tuple[History, BestWeights | None, list]:
        """The fit's callbacks: history, early stopping with best weights, the user's own."""
        history = History()
        callbacks: list[Callback] = [history]
        best = None
        if early_stopping:
            best = BestWeights("val_loss")
            callbacks += [EarlyStopping("val_loss", patience=self.patience), best]
        if int(self.verbose) == 1:
            callbacks.append(EpochPrinter())
        callbacks += [copy.deepcopy(c) for c in (self.callbacks or [])]
        return history, best, callbacks

    def _split_validation(self, arrays: tuple, seed: int) -> tuple[tuple, tuple]:
        n = len(arrays[0])
        n_val = round(n * self.validation_fraction)
        if n_val < 1 or n - n_val < 1:
            raise ValueError(
                f"early_stopping holds out validation_fraction={self.validation_fraction} of "
                f"{n} samples, which leaves no sample on one side. Use more data, a larger "
                "validation_fraction, or early_stopping=False."
            )
        parts = train_test_split(*arrays, test_size=n_val, random_state=seed)
        return tuple(parts[0::2]), tuple(parts[1::2])

    # ------------------------------------------------------------------ predict
    def _forward(self, X: Any) -> np.ndarray:
        """Model outputs for ``X``, in batches, after the Postprocess."""
        check_is_fitted(self)
        X = self._validate_X(X)
        X = validate_data(self, X, reset=False, dtype=(np.float64, np.float32))
        outputs: np.ndarray | None = None
        start = 0
        with quiet_lightning(True):
            for batch in self.task_.predict_batches(X, batch_size=PREDICT_BATCH_SIZE):
                values = batch.cpu().numpy()
                if outputs is None:  # one array for all rows, filled batch by batch
                    outputs = np.empty((len(X), *values.shape[1:]), dtype=values.dtype)
                outputs[start : start + len(values)] = values
                start += len(values)
        return outputs

    # ------------------------------------------------------------------ pickling
    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        task = state.get("task_")
        if isinstance(task, Task) and task.device.type != "cpu":
            state["task_"] = copy.deepcopy(task).to("cpu")  # unpickles without a GPU
        return state

    # ------------------------------------------------------------------ subclass hooks
    _y_numeric = True

    def _standardize_target(self) -> bool:
        return False

    def _target_dtype(self, dtype: torch.dtype) -> torch.dtype:
        return dtype

    def _target_weight(self, y: np.ndarray) -> np.ndarray | None:
        """Per-sample weights that come from the target (class weights), or None."""
        return None

    def _check_kept_target(self, y: np.ndarray) -> None:
        """Check the target left once zero-weight samples are dropped."""

    def _encode_target(self, y: np.ndarray, fitting: bool, classes: Any = None) -> np.ndarray:
        raise NotImplementedError

    def _build_task(self, n_inputs: int, y: np.ndarray, dtype: torch.dtype) -> Task:
        raise NotImplementedError
