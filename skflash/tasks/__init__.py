"""Ready-made Tasks."""

from skflash.tasks.classification import ClassificationPostprocess, ClassificationTask
from skflash.tasks.regression import REGRESSION_LOSSES, RegressionTask

__all__ = ["REGRESSION_LOSSES", "ClassificationPostprocess", "ClassificationTask", "RegressionTask"]
