"""scikit-learn's estimator contract checks on BoltClassifier.

The configuration is small so that the whole battery runs in seconds; every
check must pass (no expected failures are declared).
"""
from sklearn.utils.estimator_checks import parametrize_with_checks

from skbolt import BoltClassifier


def _fast_estimator():
    return BoltClassifier(hidden_layer_sizes=(16,), max_iter=20, batch_size=32,
                          random_state=0, n_jobs=1)


@parametrize_with_checks([_fast_estimator()])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)
