"""What FlashRegressor and FlashClassifier share: parameters, validation and the fit.

The data path of a fit: validated arrays -> NumpyPreprocess (scaling learned on the
training rows) -> NumpyDataModule (fused epoch chunks) -> Task -> skflash Trainer.
Subclasses say only what differs: the Task, how the target is encoded, what predictions
look like.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import difflib
import functools
import importlib.metadata
import inspect
import multiprocessing
import threading
from collections.abc import Iterator
from typing import Any, Self

import numpy as np
import pandas as pd
import torch
from lightning_fabric.utilities.exceptions import MisconfigurationException
from lightning_utilities.core.apply_func import apply_to_collection
from pytorch_lightning.callbacks import Callback, EarlyStopping, ModelCheckpoint
from sklearn.base import BaseEstimator
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.validation import (
    _check_sample_weight,
    check_array,
    check_is_fitted,
    check_X_y,
    validate_data,
)

from skflash.core.backbones import ENSEMBLE_BACKBONES, TABULAR_BACKBONES
from skflash.core.model import Task
from skflash.core.optimizers import (
    check_supported,
    optimizer_class,
    recipe,
    weight_decay_kwargs,
)
from skflash.core.threads import threads_for, torch_threads
from skflash.core.trainer import Trainer
from skflash.data.categories import CategoryCodes, is_categorical_column
from skflash.data.numpy_data import NumpyDataModule, NumpyPreprocess
from skflash.data.row_blocks import BlockStream, RowBlocks, is_dask_collection
from skflash.estimators import routing
from skflash.estimators.callbacks import BestWeights, EpochProgress, History
from skflash.estimators.parameters import (
    InvalidParameterError,
    Parameter,
    check_parameters,
    constructor,
    with_parameters_section,
)
from skflash.estimators.quiet import QuietWorkers, quiet_lightning
from skflash.estimators.shared_parameters import (
    KWARGS_DOC,
    SHARED_ATTRIBUTES,
    SHARED_PARAMETERS,
)
from skflash.estimators.streaming import categories_of_all_rows

#: Rows per forward pass at predict time: large inputs stream through in batches.
PREDICT_BATCH_SIZE = 8192
#: Trainer arguments the estimator sets from its own parameters.
_OWN_TRAINER_ARGS = ("max_epochs", "accelerator", "devices", "precision", "callbacks")


#: Multiply-adds per epoch (training rows x trainable parameters) from which float64
#: input trains in float32: below it, float64's exactness costs little time.
FLOAT64_MAX_WORK = 100_000_000


def _trainable_count(task: Task) -> int:
    """Trainable parameters: the multiply-adds of one row through a dense network."""
    return sum(p.numel() for p in task.parameters() if p.requires_grad)


def _on_cpu(accelerator: Any) -> bool:
    """Whether training runs on the CPU (``"auto"`` without an accelerator present)."""
    if isinstance(accelerator, str):
        if accelerator == "auto":
            return not (torch.cuda.is_available() or torch.backends.mps.is_available())
        return accelerator == "cpu"
    return type(accelerator).__name__ == "CPUAccelerator"


def _release_data(trainer: Trainer, datamodule: NumpyDataModule) -> None:
    """Drop this fit's training tensors now.

    Lightning's Trainer and DataModule reference each other, so without this the
    tensors (a float32 copy of float64 data, say) would live until the next garbage
    collection, which costs about 0.2 s.
    """
    loaders = [trainer.train_dataloader, trainer.val_dataloaders]
    for loader in loaders:
        for one in loader if isinstance(loader, (list, tuple)) else [loader]:
            release = getattr(one, "release", None)
            if release is not None:
                release()
    for dataset in (datamodule.train_dataset, datamodule.val_dataset):
        if dataset is not None:
            dataset.data = None


#: Held while torch's global generator is seeded, read or restored by a fit.
_SEEDING = threading.Lock()


@contextlib.contextmanager
def _global_rng_kept(devices: Any) -> Iterator[None]:
    """Restore torch's global generators afterwards, saving and restoring under the lock
    (a restore in one thread must not land between another's seeding and its use)."""
    with _SEEDING:
        kept = torch.random.fork_rng(devices=devices)
        kept.__enter__()
    try:
        yield
    finally:
        with _SEEDING:
            kept.__exit__(None, None, None)


def _closest(name: str, choices: list[str]) -> str:
    hint = difflib.get_close_matches(name, choices, n=1)
    return f"; did you mean {hint[0]!r}?" if hint else "."


#: Largest integer each half-precision input dtype holds exactly (category codes).
_EXACT_INTEGERS = {"bf16-true": 256, "16-true": 2048}


def _check_codes_fit(categorical: CategoryCodes | None, precision: Any) -> None:
    """Category codes travel in the input's float dtype: refuse one that would round them."""
    limit = _EXACT_INTEGERS.get(str(precision))
    if categorical is None or limit is None or max(categorical.cardinalities) <= limit:
        return
    raise ValueError(
        f"precision={precision!r} feeds the network inputs in a dtype that holds integers "
        f"exactly only up to {limit}, but a categorical column has "
        f"{max(categorical.cardinalities) - 1} categories. Use a mixed precision "
        "('bf16-mixed' or '16-mixed'), which keeps the inputs in float32."
    )


def _in_memory(value: Any) -> Any:
    """A Dask collection computed into its pandas or numpy counterpart (column names
    kept); anything else as it is."""
    if type(value).__module__.startswith("dask") and hasattr(value, "compute"):
        return value.compute()
    return value


def _as_array(tensor: torch.Tensor) -> np.ndarray:
    """A tensor as a numpy array on the CPU; bfloat16, which numpy lacks, as float32 (the
    model's dtype is restored when it loads)."""
    tensor = tensor.detach().cpu()
    return (tensor.float() if tensor.dtype == torch.bfloat16 else tensor).numpy()


def _column_positions(columns: list, X: Any, n_columns: int) -> list[int]:
    """Positions from column names (strings), positions (integers) or a boolean mask."""
    if columns and all(isinstance(c, (bool, np.bool_)) for c in columns):
        if len(columns) != n_columns:
            raise ValueError(
                f"categorical_features is a boolean mask of {len(columns)} values, but X has "
                f"{n_columns} columns."
            )
        return [i for i, flag in enumerate(columns) if flag]
    names = list(X.columns) if isinstance(X, pd.DataFrame) else []
    positions = []
    for column in columns:
        if isinstance(column, str):
            if column not in names:
                raise ValueError(
                    f"categorical_features names column {column!r}, but X has no such column"
                    + (
                        f" (its columns: {names})."
                        if names
                        else "; X has no column names (pass a DataFrame, or give positions)."
                    )
                )
            positions.append(names.index(column))
        elif isinstance(column, (bool, np.bool_)) or not -n_columns <= int(column) < n_columns:
            raise ValueError(
                f"categorical_features holds {column!r}, but X has {n_columns} columns: give "
                "column names, positions (integers), or a boolean mask of every column."
            )
        else:
            positions.append(int(column) % n_columns)
    return positions


class _TaskSnapshot:
    """What a continued fit changes on a fitted Task, kept to undo a fit that fails."""

    def __init__(self, task: Task) -> None:
        self.task = task
        self.attributes = dict(vars(task))
        self.preprocess = task.preprocess
        self.preprocess_attributes = dict(vars(task.preprocess))
        self.weights = {k: v.detach().clone() for k, v in task.state_dict().items()}
        self.dtype, self.device = task.dtype, task.device

    def restore(self) -> None:
        self.task.to(device=self.device, dtype=self.dtype)  # a precision may have cast it
        vars(self.task).clear()
        vars(self.task).update(self.attributes)
        vars(self.preprocess).clear()
        vars(self.preprocess).update(self.preprocess_attributes)
        with torch.no_grad():
            self.task.load_state_dict(self.weights)
        # fit put every submodule in training mode (where an ensemble returns each
        # member's outputs); the restored vars only cover the Task's own flag.
        self.task.eval()


@functools.cache
def _documentation_url() -> str:
    """The project's documentation (its README), from the installed package's metadata."""
    try:
        urls = importlib.metadata.metadata("skflash").get_all("Project-URL") or []
    except importlib.metadata.PackageNotFoundError:
        urls = []
    found = dict(u.split(", ", 1) for u in urls if ", " in u)
    return found.get("Documentation", "https://pypi.org/project/skflash/")


@dataclasses.dataclass
class _FitData:
    """What a fit trains on: arrays (or streams) of each stage and their shape."""

    train: Any
    val: Any
    n_inputs: int
    dtype: np.dtype
    n_rows: int
    batch_size: int

    @property
    def streamed(self) -> bool:
        return isinstance(self.train, BlockStream)


class BaseFlashEstimator(BaseEstimator):
    """Shared machinery of the skflash estimators; not meant to be used directly."""

    #: The HTML repr (in notebooks) links each estimator to its section of the README.
    _doc_link_module = "skflash"

    @property
    def _doc_link_template(self) -> str:
        return _documentation_url() + "#{anchor}"

    def _doc_link_url_param_generator(self) -> dict[str, str]:
        return {"anchor": type(self).__name__.lower()}

    #: Every constructor parameter, in signature order: the shared ones with the
    #: estimator's own (see :func:`~skflash.estimators.parameters.with_own`).
    _parameters: tuple[Parameter, ...] = SHARED_PARAMETERS

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Write the ``__init__`` and the Parameters section of an estimator from its table."""
        super().__init_subclass__(**kwargs)
        if "_parameters" in cls.__dict__:
            if "__init__" not in cls.__dict__:  # a subclass's own __init__ is kept
                cls.__init__ = constructor(cls._parameters, cls.__name__)
            if cls.__doc__:
                cls.__doc__ = with_parameters_section(
                    cls.__doc__, cls._parameters, KWARGS_DOC, SHARED_ATTRIBUTES
                )

    def _store_parameters(self, arguments: dict[str, Any]) -> None:
        """Store each constructor argument under its own name, as scikit-learn asks.

        Called by each estimator's ``__init__`` with its bound arguments: its signature is
        the list of parameters; ``**kwargs`` holds the routed ones.
        """
        for name, value in arguments.items():
            if name not in ("self", "kwargs", "__class__"):
                setattr(self, name, value)
        self._unknown_params: dict[str, Any] = {}
        self._store_routed(arguments.get("kwargs", {}))

    def _store_routed(self, kwargs: dict[str, Any]) -> None:
        """Routed names become attributes; any other name is kept aside for fit to refuse.

        A misspelled keyword (``max_epoch=5``) is kept with its value and reported by
        ``get_params``, so it survives ``clone`` and every search or cross-validation
        fails loudly at ``fit``, naming the closest parameter. (Refusing it here would
        break scikit-learn's rule that constructors and ``set_params`` never raise.)
        """
        for key, value in kwargs.items():
            if routing.is_routed(key):
                setattr(self, key, value)
            else:
                self._unknown_params[key] = value

    # ------------------------------------------------------------------ parameters
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        params = super().get_params(deep=deep)
        params.update(routing.routed_params(self))
        params.update(getattr(self, "_unknown_params", {}))
        return params

    def set_params(self, **params: Any) -> BaseFlashEstimator:
        valid = super().get_params(deep=True)
        extra = {
            k: v for k, v in params.items() if routing.is_routed(k) or k.split("__")[0] not in valid
        }
        self._store_routed(extra)
        rest = {k: v for k, v in params.items() if k not in extra}
        if rest:
            super().set_params(**rest)
        return self

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "task_")

    # ------------------------------------------------------------------ validation
    def _check_params(self) -> dict[str, Any]:
        """Check every parameter; return them normalised (numpy scalars as Python numbers)."""
        routing.check_routed_names(self, kwargs=getattr(self, "_unknown_params", {}))
        params = check_parameters(self, self._parameters)
        optimizer = optimizer_class(params["optimizer"])  # unknown names get the closest
        check_supported(optimizer)
        if params["learning_rate"] == "auto":
            params["learning_rate"] = recipe(optimizer).learning_rate
        if str(params["precision"]).startswith("transformer-engine"):
            raise InvalidParameterError(
                f"precision={params['precision']!r} needs an NVIDIA GPU with the "
                "transformer_engine package; use '16-mixed' or 'bf16-mixed' instead."
            )
        trainer_kwargs = routing.routed(self, "trainer__")
        for key in trainer_kwargs:
            if key in _OWN_TRAINER_ARGS:
                raise ValueError(
                    f"Set {key} with the estimator's own parameter {key!r}, not trainer__{key}."
                )
        routing.check_kwargs(Trainer.__init__, trainer_kwargs, "trainer__", own=_OWN_TRAINER_ARGS)
        routed_optimizer = routing.routed(self, "optimizer__")
        if "lr" in routed_optimizer:
            raise ValueError(
                "Set the learning rate with the estimator's own parameter 'learning_rate', "
                "not optimizer__lr (the learning-rate schedule and weight_decay='auto' "
                "follow learning_rate)."
            )
        routing.check_kwargs(optimizer, routed_optimizer, "optimizer__")
        decay = {}
        if "weight_decay" not in routed_optimizer:  # an explicit one replaces the rule
            decay = weight_decay_kwargs(optimizer, params["weight_decay"], params["learning_rate"])
        params["optimizer_kwargs"] = {**decay, **routed_optimizer}
        params["backbone_kwargs"] = routing.routed(self, "backbone__")
        if isinstance(params["backbone"], str) and params["backbone"] not in TABULAR_BACKBONES:
            raise InvalidParameterError(
                f"Unknown backbone {params['backbone']!r}"
                + _closest(params["backbone"], TABULAR_BACKBONES.available_keys())
                + f" Choose one of {TABULAR_BACKBONES.available_keys()}, or pass an "
                "nn.Module class or instance."
            )
        return params

    def _validate_X(self, X: Any, categorical: CategoryCodes | None, fitting: bool) -> Any:
        """Tensors to arrays; clear errors for string and date columns before sklearn's.

        (At predict, scikit-learn's check of the column names and count comes first.)
        """
        if torch.is_tensor(X):
            X = X.detach().cpu().numpy()
        if isinstance(X, pd.Series):
            raise ValueError(
                "X is a pandas Series; pass a DataFrame. For one row, use df.iloc[[i]] (a "
                "one-row DataFrame) rather than df.iloc[i]."
            )
        if isinstance(X, pd.DataFrame):
            skip = set() if categorical is None else set(categorical.columns)
            kept = [(i, c) for i, c in enumerate(X.columns) if i not in skip]
            found = [(i, c) for i, c in kept if fitting and is_categorical_column(X.iloc[:, i])]
            if found:
                named = all(isinstance(c, str) for _, c in found)
                listed = [c for _, c in found] if named else [i for i, _ in found]
                raise ValueError(
                    f"Column(s) {[c for _, c in found]} hold categories, but "
                    f"categorical_features={self.categorical_features!r} leaves them out. Pass "
                    "categorical_features='auto' (category, bool, string and object columns), "
                    f"or list them, e.g. categorical_features={listed!r}"
                    + ("." if named else " (integers are positions).")
                )
            times = [
                str(c)
                for i, c in kept
                if pd.api.types.is_datetime64_any_dtype(X.iloc[:, i])
                or pd.api.types.is_timedelta64_dtype(X.iloc[:, i])
            ]
            if times:
                raise ValueError(
                    f"{type(self).__name__} needs numeric features, but column(s) {times} hold "
                    "dates or durations. Turn them into numbers first, e.g. "
                    "df[col].dt.dayofyear, or (df[col] - start).dt.total_seconds()."
                )
        return X

    def _categorical_columns(self, X: Any, setting: Any) -> CategoryCodes | None:
        """At fit: the categorical columns of ``X`` (None when there are none).

        ``setting`` is ``"auto"`` (a DataFrame's category, bool, string and object
        columns), or names, positions, or a boolean mask over the columns.
        """
        if setting is None or (isinstance(setting, str) and not isinstance(X, pd.DataFrame)):
            return None
        frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X, dtype=object))
        n_columns = frame.shape[1]
        if isinstance(setting, str):  # "auto"
            positions = [i for i in range(n_columns) if is_categorical_column(frame.iloc[:, i])]
        else:
            positions = _column_positions(list(setting), X, n_columns)
        if not positions:
            return None
        return CategoryCodes(sorted(set(positions))).learn(frame)

    def _validated(self, *arrays: Any, **kwargs: Any) -> Any:
        """scikit-learn's ``validate_data``, with errors that say what to do.

        With categorical columns, ``validate_data`` checks the column count and names of
        the whole table, the numeric columns are checked as numbers, and the categorical
        ones become codes after them.
        """
        categorical = vars(self).get("_categories")
        try:
            if categorical is None:
                return validate_data(self, *arrays, dtype=(np.float64, np.float32), **kwargs)
            return self._validated_mixed(categorical, *arrays, **kwargs)
        except (ValueError, TypeError) as error:
            text = str(error)
            if "could not convert" in text or "argument must be" in text:
                raise type(error)(
                    f"{type(self).__name__} needs numbers: {text}. Name string or categorical "
                    "columns in categorical_features (a DataFrame's are found by dtype), or "
                    "encode them first, and turn missing values (None) in numeric columns "
                    "into numbers or drop them (e.g. SimpleImputer)."
                ) from error
            raise

    def _validated_mixed(
        self, categorical: CategoryCodes, X: Any, y: Any = None, reset: bool = True, **kwargs: Any
    ) -> Any:
        validate_data(self, X, skip_check_array=True, reset=reset)
        frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X, dtype=object))
        codes = set(categorical.columns)
        keep = [i for i in range(frame.shape[1]) if i not in codes]
        numeric = frame.iloc[:, keep]
        if isinstance(X, np.ndarray) and X.dtype.kind in "fiub":
            numeric = X[:, keep]  # keeps the array's dtype (float32 trains in float32)
        if numeric.shape[1] == 0:  # a table of categories only
            numeric = np.zeros((len(frame), 0))
        kwargs = {**kwargs, "dtype": (np.float64, np.float32), "ensure_min_features": 0}
        if y is None:
            values = check_array(numeric, estimator=self, **kwargs)
        else:
            values, y = check_X_y(numeric, y, estimator=self, **kwargs)
        X = np.hstack([values, categorical.encode(frame).astype(values.dtype)])
        return X if y is None else (X, y)

    def _validate_fit_data(
        self, X: Any, y: Any, sample_weight: Any, reset: bool, categorical_features: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        X, y, sample_weight = (_in_memory(v) for v in (X, y, sample_weight))
        if torch.is_tensor(X):
            X = X.detach().cpu().numpy()
        if reset:
            self._categories = self._categorical_columns(X, categorical_features)
        X = self._validate_X(X, vars(self).get("_categories"), fitting=reset)
        if torch.is_tensor(y):
            y = y.detach().cpu().numpy()
        self._check_target_kind(y)
        X, y = self._validated(X, y, reset=reset, multi_output=True, y_numeric=self._y_numeric)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(
                sample_weight, X, dtype=np.float64, ensure_non_negative=True
            )
            if not np.any(sample_weight > 0):
                raise ValueError("Sample weights must contain at least one non-zero number.")
        return X, y, sample_weight

    # ------------------------------------------------------------------ building blocks
    @staticmethod
    def _training_dtype(
        x_dtype: np.dtype, params: dict[str, Any], task: Task, rows: int
    ) -> torch.dtype:
        """The dtype of the tensors the model is fed.

        With a precision: float64 for the 64-bit ones and float32 otherwise; Lightning's
        precision plugin then casts the module and each batch (to float16 or bfloat16
        for the ``-true`` precisions) or runs the steps under autocast (``-mixed``).
        Without one: float32 input trains in float32; float64 input trains in float64
        (exact, as scikit-learn's MLP) while an epoch is small on the CPU, and in float32
        on an accelerator or once an epoch holds :data:`FLOAT64_MAX_WORK` multiply-adds,
        where float64 costs 1.3x to 1.5x the time (measured on 2 CPU cores).
        """
        precision = params["precision"]
        if precision is not None:
            return torch.float64 if str(precision).startswith("64") else torch.float32
        if x_dtype != np.float64 or not _on_cpu(params["accelerator"]):
            return torch.float32
        work = rows * _trainable_count(task)
        return torch.float64 if work < FLOAT64_MAX_WORK else torch.float32

    @staticmethod
    def _backbone_module(
        params: dict[str, Any], n_inputs: int, n_outputs: int
    ) -> tuple[Any, dict, int | None]:
        """The backbone argument for the Task, its kwargs, and a width when a head is wanted."""
        backbone, kwargs = params["backbone"], params["backbone_kwargs"]
        if isinstance(backbone, str):
            factory = TABULAR_BACKBONES.get(backbone)
            routing.check_kwargs(factory, {"num_features": n_inputs, **kwargs}, "backbone__")
            return backbone, kwargs, None
        if inspect.isclass(backbone):
            routing.check_kwargs(backbone, kwargs, "backbone__")
            try:
                return backbone(n_inputs, n_outputs, **kwargs), {}, None
            except TypeError as error:
                raise TypeError(
                    f"Building backbone {backbone.__name__}(n_features, n_outputs, **backbone__) "
                    f"failed: {error}. A backbone class is called with the number of input "
                    "features and of outputs, plus the backbone__ parameters."
                ) from error
        return copy.deepcopy(backbone), {}, None

    @staticmethod
    def _schedule_kwargs(params: dict[str, Any], max_epochs: int) -> dict[str, Any]:
        """Task arguments for the learning-rate schedule over this fit's epochs."""
        if params["lr_schedule"] is None:
            return {}
        return {"scheduler": "cosineannealinglr", "scheduler_kwargs": {"T_max": max_epochs}}

    def _task_kwargs(self, params: dict[str, Any], max_epochs: int) -> dict[str, Any]:
        """The Task arguments every estimator passes: optimizer, learning rate, schedule."""
        return {
            "optimizer": params["optimizer"],
            "optimizer_kwargs": params["optimizer_kwargs"],
            "learning_rate": params["learning_rate"],
            "categorical_cardinalities": None
            if self._categories is None
            else self._categories.cardinalities,
            "numeric_embedding": params["numeric_embedding"],
            "n_ensemble": self._ensemble_size(params),
            **self._schedule_kwargs(params, max_epochs),
        }

    #: Members ``n_ensemble="auto"`` trains with the "mlp" and "linear" backbones.
    _auto_ensemble = 1

    def _ensemble_size(self, params: dict[str, Any]) -> int:
        """``n_ensemble`` resolved: ``"auto"`` is :attr:`_auto_ensemble` for the backbones
        that can be ensembled, else 1."""
        size = params.get("n_ensemble", 1)  # models pickled before it existed had one
        if size != "auto":
            return int(size)
        backbone = params["backbone"]
        ensemble = isinstance(backbone, str) and backbone in ENSEMBLE_BACKBONES
        return self._auto_ensemble if ensemble else 1

    @staticmethod
    def _threads(setting: Any, weights: int, rows: int) -> int | None:
        """The ``num_threads`` setting resolved for steps of ``rows`` rows through a network
        of ``weights`` trainable parameters."""
        if setting is None or isinstance(setting, (int, np.integer)):
            return None if setting is None else int(setting)
        return threads_for(weights * rows)

    @staticmethod
    def _batch_size(params: dict[str, Any], n_samples: int) -> int:
        size = params["batch_size"]
        return min(200, n_samples) if size == "auto" else size

    def _trainer(self, params: dict[str, Any], callbacks: list[Callback], epochs: int) -> Trainer:
        verbose = int(params["verbose"])
        kwargs: dict[str, Any] = {
            "max_epochs": epochs,
            "accelerator": params["accelerator"],
            "devices": params["devices"],
            # Verbosity is about the console: files (logs, checkpoints) only when the
            # user passes trainer__logger or a ModelCheckpoint.
            "logger": False,
            "enable_checkpointing": any(isinstance(c, ModelCheckpoint) for c in callbacks),
            "enable_progress_bar": verbose >= 2,
            "enable_model_summary": verbose >= 2,
            "num_sanity_val_steps": 0,
        }
        if params["precision"] is not None:
            kwargs["precision"] = params["precision"]
        routed = routing.routed(self, "trainer__")
        kwargs.update(routed)
        kwargs["callbacks"] = callbacks
        try:
            trainer = Trainer(**kwargs)
        except (MisconfigurationException, ValueError, TypeError) as error:
            kind = TypeError if isinstance(error, TypeError) else ValueError
            raise kind(f"The Lightning Trainer refused these settings: {error}") from error
        if trainer.world_size > 1 and "strategy" not in routed:
            raise ValueError(
                f"devices={params['devices']!r} asks for {trainer.world_size} processes, which "
                "Lightning starts by running your whole script again (strategy 'ddp'), "
                f"once per device. {type(self).__name__} trains on one device: use devices=1 "
                "(or pass trainer__strategy to choose a multi-process strategy yourself)."
            )
        if trainer.world_size > 1 and multiprocessing.current_process().daemon:
            raise ValueError(
                f"devices={params['devices']!r} needs {trainer.world_size} processes, but "
                "this process is a daemonic worker (a Dask or multiprocessing pool worker), "
                "which cannot start any. Fit with devices=1 here, or run the multi-device fit "
                "from a main process."
            )
        return trainer

    # ------------------------------------------------------------------ fit
    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> Self:
        """Train on ``X, y``; with ``warm_start`` a fitted network continues training.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Regression targets; or class labels of any type scikit-learn accepts, or a
            (n_samples, n_labels) 0/1 indicator matrix for multi-label classification.
        sample_weight : array-like of shape (n_samples,), optional
            Weights each sample's loss; a zero weight is the same as leaving it out.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        return self._fit(X, y, sample_weight, incremental=self.warm_start, max_epochs=None)

    def _fit(
        self,
        X: Any,
        y: Any,
        sample_weight: Any,
        incremental: bool,
        max_epochs: int | None,
        classes: Any = None,
    ):
        """Fit, or leave the estimator exactly as it was when anything raises.

        A failed or interrupted refit keeps the previous model (weights, optimizer state,
        attributes); a failed first fit leaves the estimator unfitted.
        """
        saved = dict(vars(self))
        continuing = incremental and hasattr(self, "task_")
        snapshot = _TaskSnapshot(self.task_) if continuing else None
        try:
            return self._fit_unchecked(X, y, sample_weight, continuing, max_epochs, classes)
        except BaseException:
            if snapshot is not None:
                snapshot.restore()
            vars(self).clear()
            vars(self).update(saved)
            raise

    def _fit_unchecked(
        self,
        X: Any,
        y: Any,
        sample_weight: Any,
        continuing: bool,
        max_epochs: int | None,
        classes: Any,
    ):
        params = self._check_params()
        epochs = params["max_epochs"] if max_epochs is None else max_epochs
        random_state = check_random_state(params["random_state"])
        split_seed, init_seed, shuffle_seed = random_state.randint(np.iinfo(np.int32).max, size=3)
        if is_dask_collection(X):  # streamed block by block, never held whole
            data = self._streamed_fit_data(
                X, y, sample_weight, params, continuing, classes, int(split_seed), int(shuffle_seed)
            )
        else:
            data = self._in_memory_fit_data(
                X, y, sample_weight, params, continuing, classes, int(split_seed)
            )
        _check_codes_fit(self._categories, params["precision"])
        train, val = data.train, data.val

        verbose = int(params["verbose"])
        devices = None if torch.cuda.is_available() else []  # the global RNGs are left alone
        with _global_rng_kept(devices), quiet_lightning(verbose < 2):
            if continuing:
                task = self.task_
                task.preprocess.learn_statistics = False
                # partial_fit steps at the constant learning rate; a warm-started fit
                # runs a fresh schedule over its epochs. The optimizer's state carries on.
                task.scheduler = None
                if max_epochs is None:
                    schedule = self._schedule_kwargs(params, epochs)
                    task.scheduler = schedule.get("scheduler")
                    task.scheduler_kwargs = schedule.get("scheduler_kwargs", {})
                same_optimizer = optimizer_class(task.optimizer) is optimizer_class(
                    params["optimizer"]
                )
                task.optimizer = params["optimizer"]
                task.optimizer_kwargs = params["optimizer_kwargs"]
                task.learning_rate = params["learning_rate"]
                task.resume_optimizer_state = (
                    getattr(self, "_optimizer_state", None) if same_optimizer else None
                )
            else:
                # The initial weights come from torch's global generator: seeding it and
                # building the network happen under one lock, so threads cannot interleave.
                with _SEEDING, torch.random.fork_rng(devices=devices):
                    torch.manual_seed(int(init_seed))
                    task = self._build_task(params, data.n_inputs, None, epochs)
                # What rebuilds this network when the model is unpickled.
                self._network_params = {
                    k: v for k, v in params.items() if k not in ("callbacks", "random_state")
                }
                self._network_params.update(n_inputs=data.n_inputs, epochs=epochs)
                dtype = self._training_dtype(data.dtype, params, task, data.n_rows)
                task.preprocess = NumpyPreprocess(
                    standardize_inputs=params["standardize_inputs"],
                    standardize_target=self._standardize_target(),
                    dtype=dtype,
                    target_dtype=self._target_dtype(dtype),
                    categories=self._categories,
                )
                task.to(dtype)
            datamodule = NumpyDataModule.from_arrays(
                train,
                val=val,
                preprocess=task.preprocess,
                postprocess=task.postprocess,
                batch_size=data.batch_size,
                seed=int(shuffle_seed),
                iterable=data.streamed,
                fused_steps=True,  # offered: the Task takes them when nothing watches steps
            )
            task.lean_steps = True  # this fit's Trainer is private: its step count unread
            # Lightning's logging costs ~1 ms per value and epoch: only pay it when something
            # reads logged values (early stopping, the user's callbacks, a logger).
            task.log_epoch_metrics = bool(
                val is not None
                or params["callbacks"]
                or verbose >= 2
                or routing.routed(self, "trainer__").get("logger")
            )
            history, best, callbacks = self._callbacks(params, early_stopping=val is not None)
            trainer = self._trainer(params, callbacks, epochs)
            if data.streamed and trainer.world_size > 1:
                raise ValueError(
                    "A fit on a Dask collection streams its blocks in one process; "
                    f"devices={params['devices']!r} would train {trainer.world_size} "
                    "processes on the same stream. Use devices=1, or compute() the data first."
                )
            with _SEEDING:  # what training draws (dropout); never while a network is built
                torch.manual_seed(int(init_seed))
            weights = _trainable_count(task)
            threads = self._threads(params["num_threads"], weights, datamodule.batch_size)
            task.train()  # Lightning keeps the mode it finds; a fitted model is in eval mode
            with torch_threads(threads):
                trainer.fit(task, datamodule=datamodule)
            history.recover(trainer)
        optimizer_state = trainer.optimizers[0].state_dict() if trainer.optimizers else None
        task.trainer = None  # fitted models do not keep the Trainer (or its data) alive
        task.eval()  # a fitted model predicts; fit puts it back in training mode
        task.resume_optimizer_state = None
        task.preprocess.learn_statistics = False
        _release_data(trainer, datamodule)

        self.task_ = task
        self._weights = weights  # counted once: predict sizes its threads by it
        self._optimizer_state = optimizer_state
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

    def _in_memory_fit_data(
        self,
        X: Any,
        y: Any,
        sample_weight: Any,
        params: dict[str, Any],
        continuing: bool,
        classes: Any,
        split_seed: int,
    ) -> _FitData:
        """Validated and encoded training arrays, with the validation rows split off."""
        X, y, sample_weight = self._validate_fit_data(
            X, y, sample_weight, not continuing, params["categorical_features"]
        )
        y = self._encode_target(y, fitting=not continuing, classes=classes)
        X, y, sample_weight = self._weighted_rows(X, y, sample_weight)
        if sample_weight is not None:
            self._check_kept_target(y)
            if np.all(sample_weight == sample_weight[0]):
                sample_weight = None
        train = (X, y) if sample_weight is None else (X, y, sample_weight)
        val = None
        if params["early_stopping"]:
            train, val = self._split_validation(train, params, split_seed)
        n_rows = len(train[0])
        return _FitData(train, val, X.shape[1], X.dtype, n_rows, self._batch_size(params, n_rows))

    def _streamed_fit_data(
        self,
        X: Any,
        y: Any,
        sample_weight: Any,
        params: dict[str, Any],
        continuing: bool,
        classes: Any,
        split_seed: int,
        shuffle_seed: int,
    ) -> _FitData:
        """Streams over the row blocks of a Dask ``X``: what the fit learns from all rows
        (categories, class labels) is computed by Dask; every block is validated and
        encoded as it is loaded."""
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but y is None.")
        blocks = RowBlocks(X, y, sample_weight)
        X0, y0, _ = blocks.first()
        if torch.is_tensor(y0):
            y0 = y0.detach().cpu().numpy()
        self._check_target_kind(y0)
        found = None
        if not continuing:
            found = self._categorical_columns(X0, params["categorical_features"])
        single_label = np.ndim(y0) == 1 or np.shape(y0)[1] == 1
        labels = (
            self._counts_labels
            and single_label
            and (
                (classes is None and not continuing)
                or getattr(self, "class_weight", None) == "balanced"
                or sample_weight is not None
            )
        )
        survey = None
        if found is not None or labels or blocks.counts_unknown:
            survey = blocks.survey([] if found is None else found.columns, labels)
        if not continuing:
            self._categories = (
                None
                if found is None
                else categories_of_all_rows(found, survey.columns, X0.shape[1])
            )
        X0 = self._validate_X(X0, self._categories, fitting=not continuing)
        X0, y0 = self._validated(
            X0, y0, reset=not continuing, multi_output=True, y_numeric=self._y_numeric
        )
        label_counts = None if survey is None else survey.label_counts
        if label_counts is not None and classes is None and not continuing:
            classes = np.asarray(label_counts.index.tolist())  # the dtype of every label
        self._encode_target(y0, fitting=not continuing, classes=classes)
        if survey is not None and survey.weighted_label_counts is not None:
            self._check_kept_target(np.asarray(survey.weighted_label_counts.index.tolist()))
        prepare = functools.partial(self._prepared_block, label_counts=label_counts)
        n_rows = sum(blocks.row_counts())
        fraction = params["validation_fraction"] if params["early_stopping"] else None
        held = 0
        if fraction is not None:
            held = round(n_rows * fraction)
            if held < 1 or held >= n_rows:
                raise ValueError(
                    f"early_stopping holds out validation_fraction={fraction} of "
                    f"{n_rows} samples, which leaves no sample on one side. Use more data, a "
                    "larger validation_fraction, or early_stopping=False."
                )
        batch_size = self._batch_size(params, n_rows - held)
        stream = functools.partial(
            BlockStream, blocks, prepare, batch_size, seed=shuffle_seed, holdout=fraction
        )
        train = stream(shuffle=True, part="train" if fraction else "all")
        val = stream(part="val") if fraction else None
        return _FitData(train, val, X0.shape[1], X0.dtype, n_rows - held, batch_size)

    def _prepared_block(self, block: tuple, label_counts: Any = None) -> tuple:
        """One loaded row block validated and encoded as a fit's arrays ``(x, y[, w])``."""
        X, y, sample_weight = block
        if torch.is_tensor(y):
            y = y.detach().cpu().numpy()
        X = self._validate_X(X, self._categories, fitting=False)
        self._check_target_kind(y)
        X, y = self._validated(X, y, reset=False, multi_output=True, y_numeric=self._y_numeric)
        y = self._encode_target(y, fitting=False)
        if sample_weight is not None:  # a block may weigh all its rows zero; the data not
            sample_weight = _check_sample_weight(
                sample_weight,
                X,
                dtype=np.float64,
                ensure_non_negative=True,
                allow_all_zero_weights=True,
            )
        X, y, sample_weight = self._weighted_rows(X, y, sample_weight, label_counts)
        return (X, y) if sample_weight is None else (X, y, sample_weight)

    def _weighted_rows(
        self, X: np.ndarray, y: np.ndarray, sample_weight: Any, label_counts: Any = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """The rows with their weights (sample weights times class weights), the rows of
        weight zero dropped (the same as leaving them out)."""
        target_weight = self._target_weight(y, label_counts)
        if target_weight is not None:
            sample_weight = (
                target_weight if sample_weight is None else sample_weight * target_weight
            )
        if sample_weight is not None:
            keep = sample_weight > 0
            if not keep.all():
                X, y, sample_weight = X[keep], y[keep], sample_weight[keep]
        return X, y, sample_weight

    def _callbacks(
        self, params: dict[str, Any], early_stopping: bool
    ) -> tuple[History, BestWeights | None, list]:
        """The fit's callbacks: history, early stopping with best weights, the user's own."""
        history = History()
        callbacks: list[Callback] = [history]
        best = None
        if early_stopping:
            best = BestWeights("val_loss")
            callbacks += [EarlyStopping("val_loss", patience=params["patience"]), best]
        if int(params["verbose"]) == 1:
            callbacks.append(EpochProgress(type(self).__name__))
        if int(params["verbose"]) < 2:
            callbacks.append(QuietWorkers())
        callbacks += [copy.deepcopy(c) for c in (params["callbacks"] or [])]
        return history, best, callbacks

    @staticmethod
    def _split_validation(arrays: tuple, params: dict[str, Any], seed: int) -> tuple[tuple, tuple]:
        n = len(arrays[0])
        fraction = params["validation_fraction"]
        n_val = round(n * fraction)
        if n_val < 1 or n - n_val < 1:
            raise ValueError(
                f"early_stopping holds out validation_fraction={fraction} of "
                f"{n} samples, which leaves no sample on one side. Use more data, a larger "
                "validation_fraction, or early_stopping=False."
            )
        parts = train_test_split(*arrays, test_size=n_val, random_state=seed)
        return tuple(parts[0::2]), tuple(parts[1::2])

    # ------------------------------------------------------------------ predict
    def _forward(self, X: Any) -> np.ndarray:
        """Model outputs for ``X``, in batches, after the Postprocess."""
        check_is_fitted(self)
        if is_dask_collection(X):  # block by block: only the predictions are held whole
            blocks = RowBlocks(X)
            loaded = (blocks.load(i)[0] for i in range(len(blocks)))
            parts = [self._forward(block) for block in loaded if len(block)]
            return np.concatenate(parts) if parts else self._forward(blocks.load(0)[0])
        X = self._validate_X(X, vars(self).get("_categories"), fitting=False)
        X = self._validated(X, reset=False)
        outputs: np.ndarray | None = None
        start = 0
        weights = vars(self).get("_weights") or _trainable_count(self.task_)
        threads = self._threads(self.num_threads, weights, min(len(X), PREDICT_BATCH_SIZE))
        # No Trainer runs here: nothing of Lightning's to quiet. The outputs become numpy
        # arrays at once, so inference mode (cheaper than no_grad for each operation) is safe.
        with torch_threads(threads), torch.inference_mode():
            for batch in self.task_.predict_batches(X, batch_size=PREDICT_BATCH_SIZE):
                if batch.dtype in (torch.float16, torch.bfloat16):
                    batch = batch.float()  # numpy has no bfloat16
                values = batch.cpu().numpy()
                if outputs is None:  # one array for all rows, filled batch by batch
                    # in the input's dtype, whatever the training dtype was
                    outputs = np.empty((len(X), *values.shape[1:]), dtype=X.dtype)
                outputs[start : start + len(values)] = values
                start += len(values)
        return outputs

    def to_onnx(self, path: Any) -> str:
        """Write the fitted model to ``path`` as one ONNX graph, for serving without Python.

        The graph holds the learned scaling, the category codes (categorical columns are
        string inputs named after their columns; numeric columns form one float32 input
        ``numeric``), the network, and the outputs: ``predictions`` (regressor), or
        ``probabilities`` and ``labels`` (classifier). The batch size is free. Needs
        ``pip install 'skflash[onnx]'``.

        Returns
        -------
        path : str
        """
        check_is_fitted(self)
        from skflash.onnx_graph import export_onnx

        return export_onnx(self, path)

    # ------------------------------------------------------------------ pickling
    def __getstate__(self) -> dict[str, Any]:
        """The state without torch objects: weights and optimizer state as numpy arrays.

        The network is rebuilt from the fit's parameters when the state is loaded, so a
        pickle (or a ``skops`` file) holds no torch pickles, and a model trained on a
        GPU loads on a machine without one. (``object.__getstate__`` returns the live
        ``__dict__``: this works on a copy.)
        """
        state = dict(super().__getstate__())
        task = state.pop("task_", None)
        state = apply_to_collection(state, torch.Tensor, _as_array)
        if isinstance(task, Task):
            state["task_"] = {
                "weights": {k: _as_array(v) for k, v in task.state_dict().items()},
                "dtype": str(task.dtype).removeprefix("torch."),
                "preprocess": task.preprocess.state_dict(),
                "postprocess": task.postprocess.state_dict(),
            }
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        saved = state.pop("task_", None)
        if state.get("_optimizer_state") is not None:
            state["_optimizer_state"] = apply_to_collection(
                state["_optimizer_state"], np.ndarray, torch.from_numpy
            )
        super().__setstate__(state)
        if isinstance(saved, Task):  # pickled by an earlier version, with the Task whole
            self.task_ = saved
        elif saved is not None:
            self.task_ = self._rebuilt_task(saved)

    def _rebuilt_task(self, saved: dict[str, Any]) -> Task:
        """The fitted Task, from the fit's parameters and the saved weights."""
        params = self._network_params
        with _SEEDING, torch.random.fork_rng(devices=[]):  # the initial draw is discarded
            task = self._build_task(params, params["n_inputs"], None, params["epochs"])
        task.preprocess = NumpyPreprocess()
        task.preprocess.load_state_dict(saved["preprocess"])
        task.preprocess.categories = self._categories
        task.postprocess.load_state_dict(saved["postprocess"])
        task.to(getattr(torch, saved["dtype"]))
        task.load_state_dict({k: torch.from_numpy(v) for k, v in saved["weights"].items()})
        task.eval()  # a fitted model predicts; fit puts it back in training mode
        return task

    # ------------------------------------------------------------------ subclass hooks
    _y_numeric = True

    def _standardize_target(self) -> bool:
        return False

    def _target_dtype(self, dtype: torch.dtype) -> torch.dtype:
        return dtype

    #: Whether a streamed fit counts the labels of a 1-D target (classes, class weights).
    _counts_labels = False

    def _target_weight(self, y: np.ndarray, label_counts: Any = None) -> np.ndarray | None:
        """Per-sample weights that come from the target (class weights), or None.

        ``label_counts`` (a Series of counts by label) are those of all the training rows
        when ``y`` is one block of them.
        """
        return None

    def _check_target_kind(self, y: Any) -> None:
        """Refuse a kind of target the estimator cannot learn, before any conversion."""

    def _check_kept_target(self, y: np.ndarray) -> None:
        """Check the target left once zero-weight samples are dropped."""

    def _encode_target(self, y: np.ndarray, fitting: bool, classes: Any = None) -> np.ndarray:
        raise NotImplementedError

    def _build_task(
        self, params: dict[str, Any], n_inputs: int, y: np.ndarray, epochs: int
    ) -> Task:
        raise NotImplementedError
