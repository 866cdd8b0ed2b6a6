"""Array data: a Preprocess and DataModule for ``(x, y)`` numpy arrays (the Postprocess
that undoes the target scaling is :mod:`skflash.data.numpy_postprocess`).

Training arrays become one float tensor each (the caller's own memory when the dtype
matches); standardisation, learned on the training data and saved with the model, runs
on each batch. Predict arrays are converted batch by batch, so a large input never needs
a second full copy.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch

from skflash.data.categories import CategoryCodes
from skflash.data.data_module import DataModule
from skflash.data.levels import as_tensors, network_inputs
from skflash.data.missing_values import with_nan
from skflash.data.numpy_postprocess import NumpyPostprocess
from skflash.data.process import Postprocess, Preprocess
from skflash.data.row_blocks import BlockStream
from skflash.data.samples import ArraySamples
from skflash.data.scaling import (
    ROBUST_SAMPLE_ROWS,
    RowSample,
    StreamedMeanScale,
    robust_center_scale,
    weighted_mean_scale,
)
from skflash.data.tensors import BatchTensors, NumpyRows, as_tensor


class NumpyPreprocess(Preprocess):
    """``(x, y)`` or ``(x, y, sample_weight)`` arrays to float tensors; ``x`` alone to predict.

    ``load_data`` keeps training arrays as tensors (sharing the caller's memory when the
    dtype already matches, never writing to it); the standardisation runs on each batch
    in ``per_batch_transform``, so no scaled copy of the data is ever made.

    Categorical columns, when there are any, come as integer codes in the last columns of
    ``x`` (see :class:`~skflash.data.categories.CategoryCodes`); they are never scaled, and
    ``predict_load_data`` encodes a raw DataFrame itself.

    Parameters
    ----------
    standardize_inputs : bool or "robust", default=False
        Centre and scale each numeric feature with statistics learned on the training
        data: mean and standard deviation (True), or median and interquartile range
        followed by a smooth clip to (-3, 3) (``"robust"``), so outliers stay bounded.
    standardize_target : bool, default=False
        Centre and scale the target; :class:`NumpyPostprocess` undoes it on predictions.
    dtype : torch.dtype, default=torch.float32
        Floating dtype of the tensors the model receives.
    learn_statistics : bool, default=True
        Learn the feature count and scaling statistics from training data. Set it to
        False to keep the ones already learned (continued training on new data).
    target_dtype : torch.dtype, optional
        Dtype of the target tensors (``torch.long`` for class indices); ``dtype`` if None.
    categories : CategoryCodes, optional
        The categorical columns and their learned codes.
    indicators : sequence of int, default=()
        Numeric columns (positions among them) that get a 0/1 missing-value input after
        the numeric ones. Missing numbers (NaN) become 0 after the scaling either way (see
        :mod:`skflash.data.missing_values`).
    levels : pair of sequences, default=((), ())
        The level boundaries of discrete numeric columns: the column of each (a position
        among the numeric ones) and its threshold. Each gets a 0/1 input after the
        indicators (see :mod:`skflash.data.levels`).

    Attributes
    ----------
    num_inputs : int
        Features seen in training; prediction data must match it.
    """

    # what predict's steps do not read (a continued fit stops learning statistics)
    eval_ignores = frozenset({"learn_statistics"})

    def __init__(
        self,
        standardize_inputs: bool = False,
        standardize_target: bool = False,
        dtype: torch.dtype = torch.float32,
        learn_statistics: bool = True,
        target_dtype: torch.dtype | None = None,
        categories: CategoryCodes | None = None,
        indicators: Any = (),
        levels: Any = ((), ()),
    ) -> None:
        self.categories = categories
        self.indicators = [int(i) for i in indicators]
        self.levels = ([int(c) for c in levels[0]], [float(t) for t in levels[1]])
        self.learn_statistics = learn_statistics
        self.target_dtype = target_dtype
        self.standardize_inputs = standardize_inputs
        self.standardize_target = standardize_target
        self.dtype = dtype
        self.num_inputs: int | None = None
        self.x_mean: np.ndarray | None = None
        self.x_scale: np.ndarray | None = None
        self.y_mean: np.ndarray | None = None
        self.y_scale: np.ndarray | None = None
        self._affine: dict[tuple, Any] = {}  # tensors made once per device and dtype

    def __getstate__(self) -> dict[str, Any]:
        """Pickles without the cached scaling tensors (rebuilt on whatever device predicts)."""
        return {**vars(self), "_affine": {}}

    def state_dict(self) -> dict[str, Any]:
        def plain(a: Any) -> Any:
            return None if a is None else np.asarray(a).tolist()

        return {
            "num_inputs": self.num_inputs,
            "x_mean": plain(self.x_mean),
            "x_scale": plain(self.x_scale),
            "y_mean": plain(self.y_mean),
            "y_scale": plain(self.y_scale),
            "dtype": str(self.dtype).removeprefix("torch."),
            "target_dtype": None
            if self.target_dtype is None
            else str(self.target_dtype).removeprefix("torch."),
            "standardize_inputs": self.standardize_inputs,
            "standardize_target": self.standardize_target,
            "categories": None if self.categories is None else self.categories.state_dict(),
            "indicators": list(self.indicators),
            "levels": [list(self.levels[0]), list(self.levels[1])],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key in ("x_mean", "x_scale", "y_mean", "y_scale"):
            value = state.get(key)
            setattr(self, key, None if value is None else np.asarray(value, dtype=np.float64))
        self.num_inputs = state.get("num_inputs")
        self.dtype = getattr(torch, state.get("dtype", "float32"))
        target_dtype = state.get("target_dtype")
        self.target_dtype = None if target_dtype is None else getattr(torch, target_dtype)
        self.standardize_inputs = state.get("standardize_inputs", False)
        self.standardize_target = state.get("standardize_target", False)
        categories = state.get("categories")
        self.categories = None if categories is None else CategoryCodes.from_state_dict(categories)
        self.indicators = [int(i) for i in state.get("indicators", ())]
        columns, thresholds = state.get("levels", ((), ()))
        self.levels = ([int(c) for c in columns], [float(t) for t in thresholds])
        self._affine = {}

    @property
    def num_codes(self) -> int:
        """Trailing columns of ``x`` that hold category codes."""
        return 0 if self.categories is None else len(self.categories.columns)

    def _check_features(self, x: np.ndarray) -> None:
        if self.num_inputs is not None and x.shape[1:] != (self.num_inputs,):
            raise ValueError(
                f"X has {x.shape[1] if x.ndim > 1 else 1} features, but the model was trained "
                f"on {self.num_inputs}. Pass data with the training columns."
            )

    def load_data(self, data: Any, dataset: Any = None) -> ArraySamples | BlockStream:
        if isinstance(data, BlockStream):
            return self._load_stream(data, dataset)
        if not isinstance(data, (tuple, list)) or len(data) not in (2, 3):
            raise ValueError("Expected (x, y) or (x, y, sample_weight) arrays.")
        x, y = self.encode(data[0]), np.asarray(data[1])
        weights = None if len(data) == 2 or data[2] is None else np.asarray(data[2])
        if x.ndim != 2:
            raise ValueError(f"x must be 2-D (samples, features), got shape {x.shape}.")
        if self.training and self.learn_statistics:
            self._affine = {}
            self.num_inputs = x.shape[1]
            if self.standardize_inputs:
                learn = (
                    robust_center_scale
                    if self.standardize_inputs == "robust"
                    else weighted_mean_scale
                )
                numeric = x.shape[1] - self.num_codes
                mean, scale = learn(x[:, :numeric], weights)
                self.x_mean = np.concatenate([mean, np.zeros(self.num_codes)])
                self.x_scale = np.concatenate([scale, np.ones(self.num_codes)])
            if self.standardize_target:
                self.y_mean, self.y_scale = weighted_mean_scale(y, weights)
        self._check_features(x)
        if dataset is not None:
            dataset.num_inputs = x.shape[1]
        tensors = [as_tensor(x, self.dtype), as_tensor(y, self.target_dtype or self.dtype)]
        if weights is not None:
            tensors.append(as_tensor(weights, self.dtype))
        return ArraySamples(*tensors)

    def _load_stream(self, stream: BlockStream, dataset: Any = None) -> BlockStream:
        """A stream of row blocks: the statistics are learned in one pass over the training
        rows, one block in memory at a time; batches become tensors as they are drawn."""
        if self.training and self.learn_statistics:
            self._affine = {}
            self.num_inputs = None
            x_moments, y_moments = StreamedMeanScale(), StreamedMeanScale()
            sample = RowSample(ROBUST_SAMPLE_ROWS)
            numeric = 0
            for arrays in stream.arrays():
                x, y = arrays[0], arrays[1]
                weights = arrays[2] if len(arrays) > 2 else None
                self.num_inputs = self.num_inputs or x.shape[1]
                self._check_features(x)
                numeric = x.shape[1] - self.num_codes
                if self.standardize_inputs == "robust":
                    sample.add(x[:, :numeric], weights)
                elif self.standardize_inputs:
                    x_moments.add(x[:, :numeric], weights)
                if self.standardize_target:
                    y_moments.add(y, weights)
                y_shape = y.shape[1:]
            if self.num_inputs is None:
                raise ValueError("The training data holds no rows.")
            if self.standardize_inputs:
                mean, scale = (
                    robust_center_scale(*sample.rows())
                    if self.standardize_inputs == "robust"
                    else x_moments.mean_scale((numeric,))
                )
                self.x_mean = np.concatenate([mean, np.zeros(self.num_codes)])
                self.x_scale = np.concatenate([scale, np.ones(self.num_codes)])
            if self.standardize_target:
                self.y_mean, self.y_scale = y_moments.mean_scale(y_shape)
        if dataset is not None:
            dataset.num_inputs = self.num_inputs
        dtypes = (self.dtype, self.target_dtype or self.dtype, self.dtype)
        return stream.converted(BatchTensors(dtypes, self._check_features))

    def _kept(self, key: tuple, make: Any) -> Any:
        """``make()``, made once per ``key`` (a device and dtype): ordinary tensors even
        when first made under inference mode (a predict), as a later fit reuses them."""
        if key not in self._affine:
            with torch.inference_mode(False):
                self._affine[key] = make()
        return self._affine[key]

    def _scaled(self, name: str, values: torch.Tensor) -> torch.Tensor:
        if getattr(self, f"{name}_mean") is None:
            return values
        like = {"dtype": values.dtype, "device": values.device}
        shift, factor = self._kept((name, *like.values()), lambda: self._affine_tensors(name, like))
        return (values - shift) * factor

    def _affine_tensors(self, name: str, like: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """The shift and factor of ``name`` as tensors of ``like``'s dtype and device."""
        factor = torch.as_tensor(1.0 / getattr(self, f"{name}_scale"), **like)
        # A spread too small for this dtype (its inverse overflows): a constant column.
        factor = torch.where(torch.isfinite(factor), factor, torch.ones_like(factor))
        return torch.as_tensor(getattr(self, f"{name}_mean"), **like), factor

    def _inputs(self, x: torch.Tensor) -> torch.Tensor:
        levels = index = None
        if self.levels[1]:
            levels = self._kept(("levels", x.device, x.dtype), lambda: as_tensors(*self.levels, x))
        if self.indicators:
            make = lambda: torch.tensor(self.indicators, device=x.device)  # noqa: E731
            index = self._kept(("indicators", x.device), make)
        robust = self.standardize_inputs == "robust"
        numeric = x.shape[-1] - self.num_codes
        scaled = self._scaled("x", x)
        return network_inputs(x, scaled, numeric, robust, self.indicators, levels, index)

    def per_batch_transform(self, batch: Any) -> Any:
        """Standardise a batch: ``(x, y[, w])`` in training, ``x`` alone at predict."""
        if isinstance(batch, torch.Tensor):
            return self._inputs(batch)
        x, y, *rest = batch
        return (self._inputs(x), self._scaled("y", y), *rest)

    def encode(self, x: Any) -> np.ndarray:
        """``x`` as the model's input.

        A raw table (a DataFrame, or an object array) becomes its numeric columns followed
        by the category codes; numeric arrays are taken as already encoded.

        Parameters
        ----------
        x : array-like or DataFrame
            The rows.

        Returns
        -------
        numpy.ndarray
            The model's input.
        """
        if self.categories is None or not (
            isinstance(x, pd.DataFrame) or np.asarray(x).dtype == object
        ):
            return np.asarray(x)
        frame = x if isinstance(x, pd.DataFrame) else pd.DataFrame(np.asarray(x))
        numeric = self.categories.numeric_positions(frame.shape[1])
        values = with_nan(frame.iloc[:, numeric]).to_numpy(dtype=np.float64, na_value=np.nan)
        return self.categories.model_input(frame, values)

    def predict_load_data(self, data: Any) -> NumpyRows:
        x = self.encode(data)
        if x.ndim == 1 and self.num_inputs is not None and x.shape[0] == self.num_inputs:
            x = x.reshape(1, -1)
        if x.ndim != 2:
            raise ValueError(f"x must be 2-D (samples, features), got shape {x.shape}.")
        self._check_features(x)
        return NumpyRows(x, self.dtype)


class NumpyDataModule(DataModule):
    """A DataModule over ``(x, y)`` numpy arrays.

    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> from skflash.data.numpy_data import NumpyDataModule
    >>> x, y = load_diabetes(return_X_y=True)
    >>> dm = NumpyDataModule.from_xy_dataset(x, y)
    >>> dm.num_inputs
    10
    """

    @classmethod
    def from_arrays(
        cls,
        train: tuple,
        val: tuple | None = None,
        test: tuple | None = None,
        preprocess: Preprocess | None = None,
        postprocess: Postprocess | None = None,
        **kwargs: Any,
    ) -> NumpyDataModule:
        """Load ``(x, y[, sample_weight])`` tuples of each stage through the Preprocess.

        The NumpyPostprocess learns to undo the target scaling that the Preprocess
        learned. ``kwargs`` go to :meth:`DataModule.from_load_data_inputs`.
        """
        preprocess = preprocess if preprocess is not None else NumpyPreprocess()
        postprocess = postprocess if postprocess is not None else NumpyPostprocess()
        datamodule = cls.from_load_data_inputs(
            train_load_data_input=train,
            val_load_data_input=val,
            test_load_data_input=test,
            preprocess=preprocess,
            postprocess=postprocess,
            **kwargs,
        )
        if isinstance(postprocess, NumpyPostprocess):
            postprocess.set_target_scaling(
                getattr(preprocess, "y_mean", None), getattr(preprocess, "y_scale", None)
            )
        datamodule.num_inputs = datamodule.train_dataset.num_inputs
        return datamodule

    @classmethod
    def from_xy_dataset(
        cls,
        x: np.ndarray,
        y: np.ndarray,
        preprocess_cls: type[Preprocess] = NumpyPreprocess,
        batch_size: int = 64,
        num_workers: int = 0,
        test_size: float | None = 0.2,
        val_split: float | None = None,
        seed: int = 0,
        preprocess: Preprocess | None = None,
        postprocess: Postprocess | None = None,
    ) -> NumpyDataModule:
        """Split ``x, y`` into train and test (``test_size``), then load them.

        Parameters
        ----------
        preprocess_cls : type, default=NumpyPreprocess
            Built with no arguments when ``preprocess`` is not given.
        test_size : float or None, default=0.2
            Fraction held out as the test set; None keeps everything for training.
        val_split : float, optional
            Fraction of the training samples held out for validation.
        seed : int, default=0
            Seeds the test split, ``val_split`` and the training shuffle.
        """
        test = None
        train = (x, y)
        if test_size:
            from sklearn.model_selection import train_test_split

            x_train, x_test, y_train, y_test = train_test_split(
                x, y, test_size=test_size, random_state=seed
            )
            train, test = (x_train, y_train), (x_test, y_test)
        return cls.from_arrays(
            train,
            test=test,
            preprocess=preprocess if preprocess is not None else preprocess_cls(),
            postprocess=postprocess,
            val_split=val_split,
            seed=seed,
            batch_size=batch_size,
            num_workers=num_workers,
        )
