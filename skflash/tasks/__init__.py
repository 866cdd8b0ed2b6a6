"""Ready-made Tasks."""

from skflash.tasks.regression import REGRESSION_LOSSES, RegressionTask

__all__ = ["REGRESSION_LOSSES", "RegressionTask"]
