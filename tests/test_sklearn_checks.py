"""scikit-learn's own estimator checks, with the defaults users get and no expected failures."""

from __future__ import annotations

from sklearn.utils.estimator_checks import parametrize_with_checks

from skflash import FlashClassifier, FlashRegressor


@parametrize_with_checks([FlashRegressor(random_state=0), FlashClassifier(random_state=0)])
def test_sklearn_compatible(estimator, check):
    check(estimator)
