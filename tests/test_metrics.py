"""Tests for skbolt.metrics.

Expected values come from independent sources: a deliberately naive
pure-Python reference below, scikit-learn's ``ndcg_score`` and
``top_k_accuracy_score``, and small cases worked out by hand.
"""

import math
import pickle

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.metrics import ndcg_score, top_k_accuracy_score
from sklearn.model_selection import GridSearchCV, KFold

import skbolt.metrics as skm
from skbolt.metrics import (
    TopKScorer,
    make_topk_scorer,
    ndcg_at_10_scorer,
    ndcg_at_k,
    precision_at_1_scorer,
    precision_at_5_scorer,
    precision_at_k,
    recall_at_k,
)

METRICS = {"precision": precision_at_k, "recall": recall_at_k, "ndcg": ndcg_at_k}


# --------------------------------------------------------------------------
# Naive reference, written for clarity rather than speed
# --------------------------------------------------------------------------


def naive_ranking(score_row, k):
    labels = range(len(score_row))
    return sorted(labels, key=lambda j: (-score_row[j], j))[:k]


def naive_metrics(y_dense, rankings, k, precision_denominator):
    """Return (precision, recall, ndcg) from explicit per-row rankings."""
    precisions, recalls, ndcgs = [], [], []
    for truth_row, ranked in zip(y_dense.tolist(), rankings):
        truth = {j for j, v in enumerate(truth_row) if v != 0}
        ranked = list(ranked)[:k]
        rel = [1 if (j >= 0 and j in truth) else 0 for j in ranked]
        precisions.append(sum(rel) / precision_denominator)
        if not truth:
            continue
        recalls.append(sum(rel) / len(truth))
        dcg = sum(r / math.log2(i + 2) for i, r in enumerate(rel))
        idcg = sum(1 / math.log2(i + 2) for i in range(min(k, len(truth))))
        ndcgs.append(dcg / idcg)

    def mean(xs):
        return sum(xs) / len(xs) if xs else 0.0

    return mean(precisions), mean(recalls), mean(ndcgs)


def naive_dense(y_dense, scores, k):
    n_labels = scores.shape[1]
    k_eff = min(k, n_labels)  # documented clamp for dense scores
    rankings = [naive_ranking(row, k_eff) for row in scores.tolist()]
    return naive_metrics(y_dense, rankings, k_eff, k_eff)


def all_metrics(y_true, y_score, k):
    return (
        precision_at_k(y_true, y_score, k),
        recall_at_k(y_true, y_score, k),
        ndcg_at_k(y_true, y_score, k),
    )


def random_indicator(rng, n, n_labels, density, min_per_row=0):
    y = (rng.random((n, n_labels)) < density).astype(np.int64)
    if min_per_row:
        for i in range(n):
            if y[i].sum() < min_per_row:
                y[i, rng.choice(n_labels, min_per_row, replace=False)] = 1
    return y


def random_scores(rng, n, n_labels, ties):
    if ties:
        # Few distinct values so many ties, including at the top-k boundary.
        return rng.integers(0, 3, size=(n, n_labels)).astype(float)
    return rng.standard_normal((n, n_labels))


# --------------------------------------------------------------------------
# Agreement with the naive reference
# --------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("shape", [(1, 1), (7, 4), (30, 12), (25, 40)])
@pytest.mark.parametrize("ties", [False, True])
def test_dense_scores_match_naive_reference(seed, shape, ties):
    rng = np.random.default_rng(seed)
    n, n_labels = shape
    y = random_indicator(rng, n, n_labels, density=0.25)
    scores = random_scores(rng, n, n_labels, ties)
    for k in sorted({1, 2, 3, 5, n_labels, n_labels + 4}):
        got = all_metrics(y, scores, k)
        expected = naive_dense(y, scores, k)
        assert got == pytest.approx(expected, rel=1e-12, abs=1e-15), k


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_topk_ids_match_naive_reference(seed):
    rng = np.random.default_rng(seed)
    n, n_labels, m = 40, 15, 6
    y = random_indicator(rng, n, n_labels, density=0.2)
    ids = np.array([rng.permutation(n_labels)[:m] for _ in range(n)])
    # Padding both at the tail and in the middle of a ranking.
    ids[rng.random((n, m)) < 0.2] = -1
    for k in [1, 3, m, m + 3]:
        expected = naive_metrics(y, ids.tolist(), k, precision_denominator=k)
        assert all_metrics(y, ids, k) == pytest.approx(expected, rel=1e-12)


def test_ties_broken_by_lower_label_index():
    # Every score equal: the top-k is the k lowest label indices.
    scores = np.zeros((1, 6))
    assert precision_at_k(np.array([[1, 1, 0, 0, 0, 0]]), scores, k=2) == 1.0
    assert precision_at_k(np.array([[0, 0, 0, 0, 1, 1]]), scores, k=2) == 0.0
    # A tie straddling the cut: label 1 beats label 4 because 1 < 4.
    scores = np.array([[0.0, 0.5, 0.9, 0.0, 0.5, 0.0]])
    assert precision_at_k(np.array([[0, 1, 0, 0, 0, 0]]), scores, k=2) == 0.5
    assert precision_at_k(np.array([[0, 0, 0, 0, 1, 0]]), scores, k=2) == 0.0
    # Order inside the top-k also follows the tie rule (affects nDCG):
    # ranking is [2, 1, 4], so label 4 sits at rank 3.
    assert ndcg_at_k(np.array([[0, 0, 0, 0, 1, 0]]), scores, k=3) == (
        pytest.approx(1 / math.log2(4))
    )


# --------------------------------------------------------------------------
# Agreement with scikit-learn
# --------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("k", [1, 3, 5, 10])
def test_ndcg_matches_sklearn_without_ties(seed, k):
    rng = np.random.default_rng(seed)
    # sklearn scores rows without relevant labels as 0 instead of skipping
    # them, so every row gets at least one relevant label.
    y = random_indicator(rng, 50, 20, density=0.15, min_per_row=1)
    scores = rng.random((50, 20))
    assert ndcg_at_k(y, scores, k) == pytest.approx(
        ndcg_score(y, scores, k=k), rel=1e-12
    )


@pytest.mark.parametrize("k", [1, 2, 4])
def test_multiclass_recall_matches_sklearn_top_k_accuracy(k):
    rng = np.random.default_rng(7)
    y = rng.integers(0, 6, size=80)
    scores = rng.random((80, 6))
    expected = top_k_accuracy_score(y, scores, k=k, labels=np.arange(6))
    assert recall_at_k(y, scores, k) == pytest.approx(expected)
    # One relevant label per row, so precision is recall / k.
    assert precision_at_k(y, scores, k) == pytest.approx(expected / k)


# --------------------------------------------------------------------------
# Equivalent input representations
# --------------------------------------------------------------------------

SPARSE_FORMATS = [
    sp.csr_matrix,
    sp.csc_matrix,
    sp.coo_matrix,
    sp.lil_matrix,
    sp.csr_array,
    sp.csc_array,
    sp.coo_array,
]


@pytest.mark.parametrize("fmt", SPARSE_FORMATS)
def test_sparse_y_true_matches_dense(fmt):
    rng = np.random.default_rng(3)
    y = random_indicator(rng, 30, 25, density=0.2)
    y[::2, 0] = 1  # padding ids must not be read as label 0
    scores = random_scores(rng, 30, 25, ties=True)
    ids = np.array([naive_ranking(r, 7) for r in scores.tolist()])
    padded = ids.copy()
    padded[::3, 1::2] = -1
    for y_score in (scores, ids, padded):
        for k in (1, 5, 7):
            assert all_metrics(fmt(y), y_score, k) == all_metrics(
                y, y_score, k
            )


def test_non_canonical_sparse_y_true_is_handled_without_mutation():
    # Row 0: label 3 stored twice and unsorted; label 1 is an explicit zero.
    data = np.array([1.0, 0.0, 1.0, 1.0, 1.0])
    indices = np.array([3, 1, 0, 3, 2], dtype=np.int32)
    indptr = np.array([0, 4, 5])
    y_sparse = sp.csr_matrix((data, indices, indptr), shape=(2, 4))
    assert not y_sparse.has_canonical_format
    snapshot = (data.copy(), indices.copy(), indptr.copy())
    y_dense = np.array([[1, 0, 0, 1], [0, 0, 1, 0]])
    scores = np.array([[0.1, 0.9, 0.3, 0.8], [0.4, 0.3, 0.2, 0.1]])
    for k in (1, 2, 3, 4):
        assert all_metrics(y_sparse, scores, k) == all_metrics(y_dense, scores, k)
    np.testing.assert_array_equal(y_sparse.data, snapshot[0])
    np.testing.assert_array_equal(y_sparse.indices, snapshot[1])
    np.testing.assert_array_equal(y_sparse.indptr, snapshot[2])


def test_huge_sparse_label_space_with_topk_list():
    # Densifying a 3 x 10**12 matrix is impossible, and row * n_labels
    # packing must not overflow.
    n_labels = 10**12
    rows = np.array([0, 0, 1, 2])
    cols = np.array([5, n_labels - 1, 123456789012, 7], dtype=np.int64)
    y = sp.csr_matrix((np.ones(4), (rows, cols)), shape=(3, n_labels))
    ids = np.array(
        [[n_labels - 1, 4, 5], [0, 1, 2], [7, -1, -1]], dtype=np.int64
    )
    # Row 0: hits at ranks 1 and 3 of 2 true; row 1: no hit; row 2: rank 1.
    assert precision_at_k(y, ids, k=3) == pytest.approx((2 / 3 + 0 + 1 / 3) / 3)
    assert recall_at_k(y, ids, k=3) == pytest.approx((1 + 0 + 1) / 3)
    row0 = (1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3))
    assert ndcg_at_k(y, ids, k=3) == pytest.approx((row0 + 0 + 1) / 3)


def test_sparse_lookup_row_blocks_give_same_result(monkeypatch):
    rng = np.random.default_rng(11)
    y = random_indicator(rng, 20, 9, density=0.3)
    scores = random_scores(rng, 20, 9, ties=False)
    expected = all_metrics(sp.csr_matrix(y), scores, 4)
    # Force one row per block (and hence many blocks, some all-empty rows).
    monkeypatch.setattr(skm, "_KEY_LIMIT", 9)
    assert all_metrics(sp.csr_matrix(y), scores, 4) == expected
    assert expected == all_metrics(y, scores, 4)


@pytest.mark.parametrize("seed", [0, 1])
def test_score_matrix_equals_its_topk_list(seed):
    rng = np.random.default_rng(seed)
    y = random_indicator(rng, 35, 18, density=0.2)
    scores = random_scores(rng, 35, 18, ties=bool(seed))
    for k in (1, 4, 18):
        ids = np.array([naive_ranking(r, k) for r in scores.tolist()])
        id_scores = np.take_along_axis(scores, ids, axis=1)
        from_scores = all_metrics(y, scores, k)
        assert all_metrics(y, ids, k) == from_scores
        assert all_metrics(y, (ids, id_scores), k) == from_scores
        # Extra ranked columns beyond k are ignored.
        longer = np.array([naive_ranking(r, 18) for r in scores.tolist()])
        assert all_metrics(y, longer, k) == from_scores


def test_multiclass_1d_equals_one_hot():
    rng = np.random.default_rng(5)
    n, n_labels = 60, 7
    y = rng.integers(0, n_labels, size=n)
    one_hot = np.eye(n_labels, dtype=int)[y]
    scores = random_scores(rng, n, n_labels, ties=True)
    ids = np.array([naive_ranking(r, 4) for r in scores.tolist()])
    ids[::5, 2:] = -1
    for k in (1, 3, 4, 7):
        assert all_metrics(y, scores, k) == all_metrics(one_hot, scores, k)
        assert all_metrics(y, ids, k) == all_metrics(one_hot, ids, k)


def test_1d_labels_with_topk_list_beyond_predicted_ids_are_misses():
    # With a top-k list the label space is only known up to max(ids) + 1;
    # true class 9 is simply never retrieved rather than an error.
    y = np.array([9, 1])
    ids = np.array([[0, 1], [1, 0]])
    assert precision_at_k(y, ids, k=2) == 0.25
    assert recall_at_k(y, ids, k=2) == 0.5


# --------------------------------------------------------------------------
# Hand-checked values and conventions
# --------------------------------------------------------------------------


def test_perfect_and_reversed_rankings():
    y = np.array([[1, 1, 0, 0]])
    perfect = np.array([[4.0, 3.0, 2.0, 1.0]])
    reversed_ = perfect[:, ::-1].copy()
    assert all_metrics(y, perfect, 2) == (1.0, 1.0, 1.0)
    assert all_metrics(y, reversed_, 2) == (0.0, 0.0, 0.0)
    # Reversed, k=4: the true labels sit at ranks 3 and 4.
    dcg = 1 / math.log2(4) + 1 / math.log2(5)
    idcg = 1 + 1 / math.log2(3)
    assert precision_at_k(y, reversed_, 4) == 0.5
    assert recall_at_k(y, reversed_, 4) == 1.0
    assert ndcg_at_k(y, reversed_, 4) == pytest.approx(dcg / idcg)
    assert ndcg_at_k(y, reversed_, 4) == pytest.approx(0.5706, abs=1e-4)


def test_two_rows_by_hand():
    y = np.array([[1, 0, 1, 0, 0], [0, 0, 0, 0, 1]])
    ids = np.array([[2, 1, 0], [4, 3, 2]])
    # Row 0: ranking 2 (hit), 1, 0 (hit); row 1: ranking 4 (hit).
    assert precision_at_k(y, ids, 1) == 1.0
    assert precision_at_k(y, ids, 3) == pytest.approx((2 / 3 + 1 / 3) / 2)
    assert recall_at_k(y, ids, 1) == pytest.approx((1 / 2 + 1) / 2)
    row0 = (1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3))
    assert ndcg_at_k(y, ids, 3) == pytest.approx((row0 + 1) / 2)


def test_dense_k_larger_than_n_labels_is_clamped():
    y = np.array([[1, 0, 1]])
    scores = np.array([[0.1, 0.2, 0.3]])
    # Clamped to k=3: ranking is 2 (hit), 1, 0 (hit).
    assert precision_at_k(y, scores, k=10) == pytest.approx(2 / 3)
    assert recall_at_k(y, scores, k=10) == 1.0
    assert ndcg_at_k(y, scores, k=10) == pytest.approx(
        (1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3))
    )


def test_short_topk_list_still_divides_by_k():
    y = np.array([[1, 0, 1, 0, 0, 0]])
    ids = np.array([[0, 2]])
    assert precision_at_k(y, ids, k=5) == pytest.approx(2 / 5)
    assert precision_at_k(y, np.array([[0, 2, -1, -1, -1]]), k=5) == (
        pytest.approx(2 / 5)
    )
    assert recall_at_k(y, ids, k=5) == 1.0
    assert ndcg_at_k(y, ids, k=5) == 1.0


def test_rows_without_true_labels_are_excluded_from_recall_and_ndcg():
    y = np.array([[0, 0, 0], [0, 1, 0]])
    scores = np.array([[0.9, 0.5, 0.1], [0.1, 0.2, 0.9]])
    # Row 1's true label 1 is at rank 2.
    assert precision_at_k(y, scores, k=2) == pytest.approx((0 + 1 / 2) / 2)
    assert recall_at_k(y, scores, k=2) == 1.0
    assert ndcg_at_k(y, scores, k=2) == pytest.approx(1 / math.log2(3))
    for fmt in (np.asarray, sp.csr_matrix):
        empty = fmt(np.zeros((2, 3)))
        assert recall_at_k(empty, scores, k=2) == 0.0
        assert ndcg_at_k(empty, scores, k=2) == 0.0
        assert precision_at_k(empty, scores, k=2) == 0.0


def test_results_are_python_floats():
    y = np.array([[1, 0], [0, 1]])
    for y_true in (y, sp.csr_matrix(y), np.array([0, 1])):
        for metric in METRICS.values():
            assert type(metric(y_true, np.eye(2), 1)) is float
            assert type(metric(y_true, np.array([[0], [1]]), 1)) is float


# --------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------

Y2 = np.array([[1, 0, 0], [0, 1, 1]])
S2 = np.array([[0.3, 0.2, 0.1], [0.1, 0.2, 0.3]])


@pytest.mark.parametrize("metric", list(METRICS.values()))
@pytest.mark.parametrize("k", [0, -1, 2.0, 2.5, True, "5", None])
def test_invalid_k(metric, k):
    with pytest.raises(ValueError, match="k must be a positive integer"):
        metric(Y2, S2, k)


def test_numpy_integer_k_is_accepted():
    assert precision_at_k(Y2, S2, np.int64(1)) == precision_at_k(Y2, S2, 1)


@pytest.mark.parametrize("metric", list(METRICS.values()))
@pytest.mark.parametrize(
    "y_true, y_score, match",
    [
        (Y2, S2[:1], "2 samples but y_score has 1"),
        (Y2, S2[:, :2], "3 label columns but y_score has 2"),
        (Y2, np.array([[0.1, np.nan, 0.2], [0.1, 0.2, 0.3]]), "NaN"),
        (Y2, (np.array([[0], [1]]), np.array([[np.nan], [1.0]])), "NaN"),
        (Y2, np.array([[0, 3], [1, 2]]), "label id 3"),
        (sp.csr_matrix(Y2), np.array([[0], [5]]), "label id 5"),
        (np.zeros((0, 3)), np.zeros((0, 3)), "0 samples"),
        (np.zeros((0,), dtype=int), np.zeros((0, 3)), "0 samples"),
        (np.array([0, 3]), S2, "class index 3"),
        (np.array([0, -1]), S2, "indices >= 0"),
        (np.array([0.0, 1.0]), S2, "integer class indices"),
        (Y2, np.array([[0, 0], [1, 2]]), "repeated label id"),
        (Y2, sp.csr_matrix(S2), "not a sparse matrix"),
        (Y2, S2[0], "ndim=1"),
        (Y2, np.zeros((2, 0), dtype=int), "at least one column"),
        (Y2, (np.array([[0], [1]]), np.array([1.0, 2.0])), "must match"),
        (np.array([[1, np.nan], [0, 1]]), S2[:, :2], "y_true contains NaN"),
    ],
)
def test_invalid_inputs(metric, y_true, y_score, match):
    with pytest.raises(ValueError, match=match):
        metric(y_true, y_score, 2)


# --------------------------------------------------------------------------
# Scorers
# --------------------------------------------------------------------------


class FakeTopKEstimator(BaseEstimator):
    """Ranks labels by the feature values themselves: X is the score matrix."""

    def __init__(self, shift=0.0):
        self.shift = shift

    def fit(self, X, y):
        if not sp.issparse(y) and np.ndim(y) == 1:
            # Column j is label j, whatever subset a CV fold happens to hold.
            self.classes_ = np.arange(np.shape(X)[1])
        return self

    def predict_topk(self, X, k):
        X = np.asarray(X, dtype=float) + self.shift * np.arange(X.shape[1])
        k = min(k, X.shape[1])
        ids = np.array([naive_ranking(r, k) for r in X.tolist()])
        labels = np.asarray(self.classes_)[ids] if hasattr(self, "classes_") else ids
        return labels, np.take_along_axis(X, ids, axis=1)


def test_scorer_with_string_class_labels():
    classes = np.array(["ant", "bee", "cat", "dog"])
    est = FakeTopKEstimator()
    est.classes_ = classes
    rng = np.random.default_rng(0)
    X = rng.random((40, 4))
    y_idx = rng.integers(0, 4, size=40)
    y = classes[y_idx]
    for metric, k in [("precision", 1), ("precision", 3), ("recall", 2), ("ndcg", 4)]:
        expected = METRICS[metric](y_idx, X, k)
        assert make_topk_scorer(metric, k)(est, X, y) == pytest.approx(expected)
        assert make_topk_scorer(metric, k)(est, X, list(y)) == pytest.approx(
            expected
        )


def test_scorer_unknown_label_counts_as_miss_but_not_skipped():
    est = FakeTopKEstimator()
    est.classes_ = np.array(["a", "b", "c"])
    X = np.array([[0.9, 0.1, 0.0], [0.1, 0.9, 0.0], [0.1, 0.9, 0.0]])
    y = np.array(["a", "b", "zzz"])
    # Rows 0 and 1 hit at rank 1; row 2's label cannot be predicted at all.
    assert make_topk_scorer("recall", 1)(est, X, y) == pytest.approx(2 / 3)
    assert make_topk_scorer("precision", 2)(est, X, y) == pytest.approx(1 / 3)
    assert make_topk_scorer("ndcg", 3)(est, X, y) == pytest.approx(2 / 3)


def test_scorer_uses_classes_order_not_label_order():
    # Integer labels that are not 0..n-1: column j means classes_[j].
    est = FakeTopKEstimator()
    est.classes_ = np.array([10, 20, 30])
    X = np.array([[0.1, 0.2, 0.9], [0.8, 0.1, 0.2]])
    assert precision_at_1_scorer(est, X, np.array([30, 10])) == 1.0
    assert precision_at_1_scorer(est, X, np.array([10, 30])) == 0.0
    # Unsorted classes_ (not sklearn-style, but cheap to support).
    est.classes_ = np.array([30, 10, 20])
    assert precision_at_1_scorer(est, X, np.array([20, 30])) == 1.0
    assert precision_at_1_scorer(est, X, np.array([30, 10])) == 0.0


@pytest.mark.parametrize("fmt", [np.asarray, sp.csr_matrix, sp.csc_array])
def test_scorer_with_indicator_y(fmt):
    rng = np.random.default_rng(1)
    X = rng.random((30, 8))
    Y = random_indicator(rng, 30, 8, density=0.3)
    est = FakeTopKEstimator().fit(X, Y)
    for metric, k in [("precision", 5), ("recall", 3), ("ndcg", 8)]:
        expected = METRICS[metric](Y, X, k)
        assert make_topk_scorer(metric, k)(est, X, fmt(Y)) == pytest.approx(
            expected
        )


def test_ready_made_scorers():
    rng = np.random.default_rng(2)
    X = rng.random((25, 12))
    Y = random_indicator(rng, 25, 12, density=0.3)
    est = FakeTopKEstimator().fit(X, Y)
    assert precision_at_1_scorer(est, X, Y) == pytest.approx(precision_at_k(Y, X, 1))
    assert precision_at_5_scorer(est, X, Y) == pytest.approx(precision_at_k(Y, X, 5))
    assert ndcg_at_10_scorer(est, X, Y) == pytest.approx(ndcg_at_k(Y, X, 10))
    assert repr(precision_at_5_scorer) == "make_topk_scorer(metric='precision', k=5)"
    assert repr(ndcg_at_10_scorer) == "make_topk_scorer(metric='ndcg', k=10)"


def test_scorer_pickle_round_trip():
    rng = np.random.default_rng(4)
    X = rng.random((20, 6))
    y = rng.integers(0, 6, size=20)
    est = FakeTopKEstimator().fit(X, y)
    for scorer in (make_topk_scorer("recall", 2), precision_at_5_scorer, ndcg_at_10_scorer):
        clone = pickle.loads(pickle.dumps(scorer))
        assert isinstance(clone, TopKScorer)
        assert clone == scorer
        assert repr(clone) == repr(scorer)
        assert clone(est, X, y) == scorer(est, X, y)


def test_scorer_in_grid_search():
    rng = np.random.default_rng(6)
    X = rng.random((30, 5))
    y = rng.integers(0, 5, size=30)
    # The true class gets the highest feature, so the unshifted model is
    # perfect at P@1, while shift=10 always ranks label 4 first.
    X[np.arange(30), y] = 2.0
    cv = KFold(3)
    search = GridSearchCV(
        FakeTopKEstimator(),
        {"shift": [0.0, 10.0]},
        scoring={"p1": precision_at_1_scorer, "r2": make_topk_scorer("recall", 2)},
        refit="p1",
        cv=cv,
    )
    search.fit(X, y)
    assert search.best_params_ == {"shift": 0.0}
    p1 = search.cv_results_["mean_test_p1"]
    assert p1[0] == pytest.approx(1.0)
    assert p1[1] == pytest.approx(np.mean([np.mean(y[te] == 4) for _, te in cv.split(X)]))


def test_scorer_validation():
    with pytest.raises(ValueError, match="metric must be one of"):
        make_topk_scorer("f1", 5)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        make_topk_scorer("precision", 0)
    est = FakeTopKEstimator()  # unfitted: no classes_
    with pytest.raises(ValueError, match="no classes_"):
        precision_at_1_scorer(est, np.eye(3), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="no predict_topk"):
        precision_at_1_scorer(object(), np.eye(3), np.eye(3))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_capped_recall_and_hit_rate_match_naive_reference(seed):
    """Recall divided by min(k, n_relevant) and the share of rows with a
    hit, from explicit rankings (rows without relevant labels left out)."""
    from skbolt.metrics import hit_rate_at_k

    rng = np.random.default_rng(seed)
    y = random_indicator(rng, 40, 30, density=0.3)
    scores = random_scores(rng, 40, 30, ties=bool(seed % 2))
    for k in (1, 3, 10, 30):
        capped, hits = [], []
        for truth_row, row in zip(y.tolist(), scores.tolist()):
            truth = {j for j, v in enumerate(truth_row) if v}
            if not truth:
                continue
            found = len(truth & set(naive_ranking(row, k)))
            capped.append(found / min(k, len(truth)))
            hits.append(float(found > 0))
        assert recall_at_k(y, scores, k, capped=True) == pytest.approx(np.mean(capped))
        assert hit_rate_at_k(y, scores, k) == pytest.approx(np.mean(hits))
        # capping can only raise recall; equal when no row has more than k
        assert recall_at_k(y, scores, k, capped=True) >= recall_at_k(y, scores, k)
    assert hit_rate_at_k(np.zeros((2, 3)), np.ones((2, 3)), 2) == 0.0


# --------------------------------------------------------------------------
# Propensity-scored precision
# --------------------------------------------------------------------------


def test_propensity_scores_match_the_formula_by_hand():
    from skbolt.metrics import propensity_scores

    counts = [0, 1, 7, 100, 999]
    for A, B, N in ((0.55, 1.5, 1000), (0.6, 2.6, 50), (0.5, 0.4, 3)):
        C = (math.log(N) - 1) * (B + 1) ** A
        want = [1 / (1 + C * (n + B) ** -A) for n in counts]
        got = propensity_scores(counts, N, A=A, B=B)
        assert got.dtype == np.float64 and got.shape == (5,)
        np.testing.assert_allclose(got, want, rtol=1e-12)
    # one value worked out on paper: N=1000, a label never seen
    assert propensity_scores([0], 1000)[0] == pytest.approx(0.11333, abs=1e-4)
    # rarer labels are less likely to be observed: smaller propensity
    p = propensity_scores([5, 0, 50, 2, 500], 1000)
    assert list(np.argsort(p)) == [1, 3, 0, 2, 4]
    assert ((p > 0) & (p <= 1)).all()
    # a 2-D (1, n) matrix of column sums is read as the counts
    Y = sp.csr_matrix(np.array([[1, 0, 1], [1, 0, 0], [1, 1, 0]]))
    np.testing.assert_array_equal(propensity_scores(Y.sum(axis=0), 3),
                                  propensity_scores([3, 1, 1], 3))


@pytest.mark.parametrize("counts, n, match", [
    ([1, -1], 10, "counts"),
    ([1, np.nan], 10, "counts"),
    ([1, np.inf], 10, "counts"),
    ([1, 2], 2, "at least 3"),
    ([1, 2], 0, "at least 3"),
])
def test_propensity_scores_invalid(counts, n, match):
    from skbolt.metrics import propensity_scores

    with pytest.raises(ValueError, match=match):
        propensity_scores(counts, n)


def naive_psp(truth_sets, rankings, propensities, k):
    """Sum of 1/p over correct top-k labels, over the sum of each row's k
    largest 1/p among its true labels (ratio of sums over rows)."""
    gained = best = 0.0
    for truth, ranked in zip(truth_sets, rankings):
        gained += sum(1 / propensities[j] for j in list(ranked)[:k] if j >= 0 and j in truth)
        best += sum(sorted((1 / propensities[j] for j in truth), reverse=True)[:k])
    return gained / best if best else 0.0


def _truth_sets(y_dense):
    return [{j for j, v in enumerate(row) if v} for row in y_dense.tolist()]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_psp_matches_naive_reference(seed):
    from skbolt.metrics import propensity_scores, psp_at_k

    rng = np.random.default_rng(seed)
    n, n_labels = 50, 25
    y = random_indicator(rng, n, n_labels, density=0.15)
    prop = propensity_scores(rng.integers(0, 200, n_labels), 1000)
    scores = random_scores(rng, n, n_labels, ties=bool(seed % 2))
    # a top-k list with padding (-1) in some rows
    ids = np.array([rng.permutation(n_labels)[:6] for _ in range(n)])
    ids[rng.random((n, 6)) < 0.2] = -1
    truth = _truth_sets(y)
    for k in (1, 2, 3, 5, 6):
        want = naive_psp(truth, [naive_ranking(r, k) for r in scores.tolist()], prop, k)
        for y_true in (y, sp.csr_matrix(y), sp.csc_matrix(y.astype(np.float32))):
            got = psp_at_k(y_true, scores, prop, k=k)
            assert isinstance(got, float)
            assert got == pytest.approx(want, rel=1e-12)
        want = naive_psp(truth, ids.tolist(), prop, k)
        assert psp_at_k(sp.csr_matrix(y), ids, prop, k=k) == pytest.approx(want, rel=1e-12)
        assert psp_at_k(y, (ids, np.zeros(ids.shape)), prop, k=k) == pytest.approx(want)
        assert 0.0 <= psp_at_k(y, ids, prop, k=k) <= 1.0


def test_psp_two_rows_by_hand():
    from skbolt.metrics import psp_at_k

    prop = [0.5, 0.25, 1.0]  # weights 2, 4, 1
    # k=1: row 0 hits label 0 (2), row 1 hits label 2 (1); the best is 2 + 4
    assert psp_at_k(Y2, S2, prop, k=1) == pytest.approx(3 / 6)
    # k=2: row 0 gains 2 of 2, row 1 gains 1 + 4 of 4 + 1
    assert psp_at_k(Y2, S2, prop, k=2) == pytest.approx(1.0)
    # unlike precision, which ranks label 2 first in row 1 just as well
    assert psp_at_k(Y2, np.array([[0], [1]]), prop, k=1) == pytest.approx(1.0)
    assert psp_at_k(Y2, np.array([[1], [2]]), prop, k=1) == pytest.approx(1 / 6)


def test_psp_perfect_ranking_is_one():
    from skbolt.metrics import propensity_scores, psp_at_k

    rng = np.random.default_rng(4)
    y = random_indicator(rng, 40, 30, density=0.2, min_per_row=1)
    prop = propensity_scores(rng.integers(0, 100, 30), 500)
    # relevant labels first, the rarest (largest 1/p) of them first
    perfect = y / prop[None, :]
    # relevant labels first too, but the most common of them first
    common_first = y * prop[None, :]
    for k in (1, 3, 5, 30):
        assert psp_at_k(y, perfect, prop, k=k) == pytest.approx(1.0)
        assert psp_at_k(sp.csr_matrix(y), perfect, prop, k=k) == pytest.approx(1.0)
        if (y.sum(axis=1) > k).any():  # a row with more relevant labels than k
            assert psp_at_k(y, common_first, prop, k=k) < 1.0
        else:
            assert psp_at_k(y, common_first, prop, k=k) == pytest.approx(1.0)
    assert psp_at_k(np.zeros((3, 4)), np.ones((3, 4)), np.ones(4), k=2) == 0.0


@pytest.mark.parametrize("seed", [0, 1])
def test_psp_with_class_indices(seed):
    from skbolt.metrics import psp_at_k

    rng = np.random.default_rng(seed)
    n, n_labels = 60, 12
    y = rng.integers(0, n_labels, n)
    prop = rng.uniform(0.05, 1.0, n_labels)
    scores = random_scores(rng, n, n_labels, ties=False)
    truth = [{int(c)} for c in y]
    onehot = np.eye(n_labels, dtype=int)[y]
    for k in (1, 3, 12):
        want = naive_psp(truth, [naive_ranking(r, k) for r in scores.tolist()], prop, k)
        assert psp_at_k(y, scores, prop, k=k) == pytest.approx(want, rel=1e-12)
        assert psp_at_k(y, scores, prop, k=k) == pytest.approx(psp_at_k(onehot, scores, prop, k))
        ids = np.argsort(-scores, axis=1)[:, :k]
        assert psp_at_k(y, ids, prop, k=k) == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("prop, match", [
    ([0.5, 0.5], "2 propensities given for 3 labels"),
    ([0.5, 0.5, 0.5, 0.5], "4 propensities given for 3 labels"),
    ([0.5, 0.0, 0.5], r"must be in \(0, 1\]"),
    ([0.5, -0.2, 0.5], r"must be in \(0, 1\]"),
    ([0.5, np.nan, 0.5], r"must be in \(0, 1\]"),
    ([0.5, 1.5, 0.5], r"must be in \(0, 1\]"),
])
def test_psp_invalid_propensities(prop, match):
    from skbolt.metrics import psp_at_k

    with pytest.raises(ValueError, match=match):
        psp_at_k(Y2, S2, prop, k=2)
    with pytest.raises(ValueError, match=match):
        psp_at_k(sp.csr_matrix(Y2), np.array([[0, 1], [2, 1]]), prop, k=2)


def test_psp_class_indices_need_a_propensity_per_class():
    from skbolt.metrics import psp_at_k

    # class 4 is a true label: five propensities are needed
    with pytest.raises(ValueError, match="4 propensities given for 5 labels"):
        psp_at_k(np.array([0, 4]), np.array([[0, 1], [1, 2]]), np.ones(4), k=2)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        psp_at_k(Y2, S2, np.ones(3), k=0)
    with pytest.raises(ValueError, match="2 samples but y_score has 1"):
        psp_at_k(Y2, S2[:1], np.ones(3), k=1)
