"""scikit-learn's own estimator checks, with the defaults users get and no expected failures."""

from __future__ import annotations

from sklearn.utils.estimator_checks import parametrize_with_checks

from skflash import FlashClassifier, FlashRegressor
from tests.user_tasks import ClassificationTask, RegressionTask


@parametrize_with_checks([FlashRegressor(random_state=0), FlashClassifier(random_state=0)])
def test_sklearn_compatible(estimator, check):
    check(estimator)


#: Tasks of the user's own under the estimators: the tutorial's RegressionTask unchanged,
#: and a classification Task written the same way.
@parametrize_with_checks(
    [
        FlashRegressor(
            task=RegressionTask, task__learning_rate=0.05, max_epochs=50, random_state=0
        ),
        FlashClassifier(task=ClassificationTask, max_epochs=50, random_state=0),
    ]
)
def test_sklearn_compatible_with_a_users_task(estimator, check):
    check(estimator)
