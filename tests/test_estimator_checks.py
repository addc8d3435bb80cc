"""scikit-learn's estimator contract checks on BoltClassifier and
BoltRecommender.

The configurations are small so that the whole battery runs in seconds.
Every check must pass, except two for BoltRecommender declared below: they
fit on sparse X (which the recommender takes, and tests/test_recommender.py
covers) and then assert that ``predict`` returns one value per row, where
a recommender returns ``n_recommendations`` item ids per row.
"""
from sklearn.utils.estimator_checks import parametrize_with_checks

from skbolt import BoltClassifier, BoltRecommender


def _fast_classifier():
    return BoltClassifier(hidden_layer_sizes=(16,), max_iter=20, batch_size=32,
                          random_state=0, n_jobs=1)


def _fast_recommender():
    return BoltRecommender(hidden_layer_sizes=(16,), max_iter=5, batch_size=32,
                           random_state=0, n_jobs=1)


def _default_recommender():
    # init="auto" with hidden_layer_sizes="auto": the SVD start, no epochs
    return BoltRecommender(random_state=0, n_jobs=1)


def _expected_failures(estimator):
    if isinstance(estimator, BoltRecommender):
        reason = "predict returns (n_rows, n_recommendations) item ids, not one value per row"
        return {"check_estimator_sparse_array": reason, "check_estimator_sparse_matrix": reason}
    return {}


@parametrize_with_checks([_fast_classifier(), _fast_recommender(), _default_recommender()],
                         expected_failed_checks=_expected_failures)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)
