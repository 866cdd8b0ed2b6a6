"""skflash: PyTorch models trained by Lightning, used like any scikit-learn estimator.

The data path reads in the package's layout: raw arrays go through a
:mod:`~skflash.data.process` Preprocess into a :mod:`~skflash.data.data_module`
DataModule; a :mod:`~skflash.core.model` Task trains under the :mod:`~skflash.core.trainer`
Trainer; the :mod:`~skflash.estimators` wrap it all as scikit-learn estimators.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from pytorch_lightning import seed_everything

from skflash.core.model import Task
from skflash.core.trainer import Trainer
from skflash.data.data_module import DataModule
from skflash.lightning_namespaces import install as _install_lightning_namespaces
from skflash.skl2onnx_converters import install as _install_skl2onnx_converters

__version__ = "0.3.0.dev0"

# Loaded on first use, so that `import skflash` stays about as cheap as Lightning itself.
_LAZY = {
    "FlashRegressor": "skflash.estimators.regressor",
    "FlashClassifier": "skflash.estimators.classifier",
    "RegressionTask": "skflash.tasks.regression",
    "ClassificationTask": "skflash.tasks.classification",
    "NumpyDataModule": "skflash.data.numpy_data",
    "NumpyPreprocess": "skflash.data.numpy_data",
    "TabularInput": "skflash.core.tabular_input",
    "CategoryCodes": "skflash.data.categories",
}

if TYPE_CHECKING:  # what the lazy names are, for type checkers and IDEs
    from skflash.core.tabular_input import TabularInput
    from skflash.data.categories import CategoryCodes
    from skflash.data.numpy_data import NumpyDataModule, NumpyPreprocess
    from skflash.estimators.classifier import FlashClassifier
    from skflash.estimators.regressor import FlashRegressor
    from skflash.tasks.classification import ClassificationTask
    from skflash.tasks.regression import RegressionTask

__all__ = [
    "CategoryCodes",
    "ClassificationTask",
    "DataModule",
    "FlashClassifier",
    "FlashRegressor",
    "NumpyDataModule",
    "NumpyPreprocess",
    "RegressionTask",
    "TabularInput",
    "Task",
    "Trainer",
    "seed_everything",
]


_install_lightning_namespaces()
_install_skl2onnx_converters()


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'skflash' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
