"""Ranking metrics for extreme multi-label and multi-class prediction.

The metrics in this module score a *ranking* of labels per sample rather than
a hard prediction: precision@k, recall@k and nDCG@k with binary relevance.
They accept either a dense score matrix or a top-k list (label ids ranked best
first), and a ground truth given as a dense or sparse binary indicator matrix
or as a 1-D array of class indices.

Sparse ground truth is never densified, so the label space may have millions
of columns.

Conventions
-----------
* Any nonzero entry of an indicator ``y_true`` marks a relevant label.
* Ties in a dense score matrix are broken in favour of the lower label index,
  so results are deterministic.
* With a dense score matrix, ``k`` larger than the number of labels is clamped
  to the number of labels (one cannot rank more labels than exist).  With a
  top-k list, precision always divides by ``k``: missing or padded
  predictions (negative ids) count as misses.
* Rows without any relevant label are left out of the recall and nDCG means
  (their value is undefined); if every row is left out the result is 0.0.
* A 2-D *integer* ``y_score`` is read as a top-k list of label ids.  Pass
  integer-valued scores as a float array to have them read as scores.
"""

import numbers

import numpy as np
import scipy.sparse as sp

__all__ = [
    "precision_at_k",
    "recall_at_k",
    "ndcg_at_k",
    "hit_rate_at_k",
    "propensity_scores",
    "psp_at_k",
    "make_topk_scorer",
    "TopKScorer",
    "precision_at_1_scorer",
    "precision_at_5_scorer",
    "ndcg_at_10_scorer",
]

# Sparse hit lookup packs (row, label) into one int64 key.  Rows are processed
# in blocks small enough that ``block_rows * n_labels`` stays below this bound,
# so the packing can never overflow whatever the label-space size.
_KEY_LIMIT = 2**62

_METRICS = ("precision", "recall", "ndcg", "recall_capped", "hit_rate")


# --------------------------------------------------------------------------
# Input validation
# --------------------------------------------------------------------------


def _check_k(k):
    # bool is an Integral subclass, but k=True is almost surely a mistake.
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
        raise ValueError(
            f"k must be a positive integer (e.g. k=5), got {k!r}."
        )
    return int(k)


def _check_y_true(y_true):
    """Return ('sparse', csr) | ('dense', 2-D array) | ('classes', 1-D int array)."""
    if sp.issparse(y_true):
        if y_true.ndim != 2:
            raise ValueError(
                "A sparse y_true must be 2-D with shape (n_samples, n_labels); "
                f"got ndim={y_true.ndim}."
            )
        csr = y_true.tocsr()
        copied = csr is not y_true
        # Duplicate or unsorted column indices would break both the per-row
        # count of true labels and the sorted-key lookup below.
        if not csr.has_canonical_format:
            if not copied:
                csr = csr.copy()
                copied = True
            csr.sum_duplicates()
        if csr.data.dtype.kind == "f" and np.isnan(csr.data).any():
            raise ValueError(
                "y_true contains NaN; it must be a binary indicator matrix."
            )
        # Explicitly stored zeros are not relevant labels.
        if csr.nnz and not np.all(csr.data):
            if not copied:
                csr = csr.copy()
            csr.eliminate_zeros()
        return "sparse", csr

    y = np.asarray(y_true)
    if y.ndim == 1:
        if y.dtype.kind not in "iu":
            raise ValueError(
                "A 1-D y_true must hold integer class indices in "
                f"[0, n_labels); got dtype {y.dtype}. For an indicator matrix "
                "pass a 2-D array; for class labels map them to indices first "
                "(e.g. with np.searchsorted on the sorted classes)."
            )
        if y.size and y.min() < 0:
            raise ValueError(
                "A 1-D y_true must hold class indices >= 0; found "
                f"{int(y.min())}."
            )
        return "classes", y.astype(np.int64, copy=False)
    if y.ndim == 2:
        if y.dtype.kind not in "biuf":
            raise ValueError(
                "y_true must be a numeric binary indicator matrix; got dtype "
                f"{y.dtype}."
            )
        if y.dtype.kind == "f" and np.isnan(y).any():
            raise ValueError(
                "y_true contains NaN; it must be a binary indicator matrix."
            )
        return "dense", y
    raise ValueError(
        "y_true must be a 2-D indicator matrix of shape (n_samples, n_labels) "
        f"or a 1-D array of class indices; got an array with ndim={y.ndim}."
    )


def _check_ids(ids):
    ids = np.asarray(ids)
    if ids.ndim != 2:
        raise ValueError(
            "Top-k ids must be a 2-D array of shape (n_samples, m); got "
            f"ndim={ids.ndim}. For one prediction per row use "
            "ids.reshape(-1, 1)."
        )
    if ids.dtype.kind not in "iu":
        raise ValueError(
            f"Top-k ids must be integers; got dtype {ids.dtype}."
        )
    if ids.shape[1] < 1:
        raise ValueError(
            "Top-k ids must contain at least one column (m >= 1); use a "
            "negative id as padding for rows without predictions."
        )
    return ids.astype(np.int64, copy=False)


def _check_no_duplicate_ids(ids):
    # A ranking lists each label at most once; duplicates would count the same
    # hit several times.  This also catches an integer *score* matrix (e.g. a
    # 0/1 matrix), which would otherwise be silently misread as ids.
    if ids.shape[1] < 2:
        return
    s = np.sort(ids, axis=1)
    dup = (s[:, 1:] == s[:, :-1]) & (s[:, 1:] >= 0)
    if dup.any():
        row = int(np.flatnonzero(dup.any(axis=1))[0])
        raise ValueError(
            f"Top-k ids contain a repeated label id in row {row}. Each row "
            "must rank distinct labels. If y_score is a matrix of integer "
            "scores rather than label ids, convert it with "
            "y_score.astype(float)."
        )


def _parse_y_score(y_score):
    """Return ('dense', scores) or ('ids', ids)."""
    if sp.issparse(y_score):
        raise ValueError(
            "y_score must be a dense score matrix or a top-k list, not a "
            "sparse matrix; convert it with y_score.toarray() or pass the "
            "top-k ids."
        )
    if isinstance(y_score, tuple):
        if len(y_score) != 2:
            raise ValueError(
                "A tuple y_score must be (ids, scores) as returned by "
                f"predict_topk; got a tuple of length {len(y_score)}."
            )
        ids = _check_ids(y_score[0])
        scores = np.asarray(y_score[1])
        if scores.shape != ids.shape:
            raise ValueError(
                f"In y_score=(ids, scores), ids has shape {ids.shape} but "
                f"scores has shape {scores.shape}; they must match."
            )
        if scores.dtype.kind in "fc" and np.isnan(scores).any():
            raise ValueError(
                "y_score contains NaN scores; the model output is invalid "
                "(check for divergence during training)."
            )
        return "ids", ids

    arr = np.asarray(y_score)
    if arr.ndim == 2 and arr.dtype.kind in "iu":
        return "ids", _check_ids(arr)
    if arr.ndim != 2:
        raise ValueError(
            "y_score must be a 2-D score matrix of shape (n_samples, "
            "n_labels), a 2-D integer array of top-k ids, or a tuple "
            f"(ids, scores); got an array with ndim={arr.ndim}."
        )
    if arr.dtype.kind not in "bf":
        raise ValueError(
            f"A dense y_score must hold real-valued scores; got dtype "
            f"{arr.dtype}."
        )
    if arr.dtype.kind == "f" and np.isnan(arr).any():
        raise ValueError(
            "y_score contains NaN; replace NaN scores (e.g. with -np.inf) "
            "or fix the model output before scoring."
        )
    return "dense", arr


# --------------------------------------------------------------------------
# Ranking and hit computation
# --------------------------------------------------------------------------


def _topk_from_scores(scores, k):
    """Ids of the ``k`` best labels per row, best first, ties to lower index.

    ``k`` must already be clamped to ``scores.shape[1]``.
    """
    n_labels = scores.shape[1]
    cut = n_labels - k
    part = np.argpartition(scores, cut, axis=1)
    top = part[:, cut:]
    # argpartition picks an arbitrary subset among values tied with the k-th
    # largest; find rows where that choice matters and redo them so the
    # lowest label indices win.
    kth = np.take_along_axis(scores, part[:, cut:cut + 1], axis=1)
    n_above = np.count_nonzero(scores > kth, axis=1)
    n_tied = np.count_nonzero(scores == kth, axis=1)
    n_needed = k - n_above
    ambiguous = np.flatnonzero(n_tied > n_needed)
    if ambiguous.size:
        top = top.copy()
        for i in ambiguous:
            row, v = scores[i], kth[i, 0]
            top[i] = np.concatenate(
                [np.flatnonzero(row > v), np.flatnonzero(row == v)[: n_needed[i]]]
            )
    top_scores = np.take_along_axis(scores, top, axis=1)
    # Sort ascending by (score, -index) and reverse; this orders by
    # descending score with ties to the lower index without negating the
    # scores (negation would overflow or misbehave for some dtypes).
    order = np.lexsort((-top, top_scores), axis=-1)[:, ::-1]
    return np.take_along_axis(top, order, axis=1).astype(np.int64, copy=False)


def _hits_sparse(csr, ids):
    n, n_labels = csr.shape
    indptr = csr.indptr.astype(np.int64, copy=False)
    indices = csr.indices.astype(np.int64, copy=False)
    n_true = np.diff(indptr)
    valid = ids >= 0
    safe_ids = np.where(valid, ids, 0)
    hits = np.zeros(ids.shape, dtype=bool)
    block = max(1, _KEY_LIMIT // max(n_labels, 1))
    for r0 in range(0, n, block):
        r1 = min(n, r0 + block)
        lo, hi = indptr[r0], indptr[r1]
        if lo == hi:
            continue
        local_rows = np.arange(r1 - r0, dtype=np.int64)
        # Canonical CSR has sorted indices per row, so these keys are
        # globally sorted and a single searchsorted answers every query.
        keys = np.repeat(local_rows, n_true[r0:r1]) * n_labels + indices[lo:hi]
        queries = local_rows[:, None] * n_labels + safe_ids[r0:r1]
        pos = np.searchsorted(keys, queries)
        np.minimum(pos, keys.size - 1, out=pos)
        hits[r0:r1] = keys[pos] == queries
    hits &= valid
    return hits, n_true


def _hits(kind, y, ids):
    """Boolean hit matrix aligned with ``ids`` and true-label count per row."""
    valid = ids >= 0
    if kind == "sparse":
        return _hits_sparse(y, ids)
    if kind == "dense":
        rows = np.arange(ids.shape[0])[:, None]
        hits = (y[rows, np.where(valid, ids, 0)] != 0) & valid
        return hits, np.count_nonzero(y, axis=1)
    # One true label per row; a negative class index means "a label outside
    # the predicted label space" and must never match padding ids.
    hits = (ids == y[:, None]) & valid
    return hits, np.ones(ids.shape[0], dtype=np.int64)


def _prepare(y_true, y_score, k):
    """Validate inputs and return ``(hits, n_true, k)``.

    ``hits`` has at most ``k`` columns, ``n_true`` is the number of relevant
    labels per row, and the returned ``k`` is the precision denominator.
    """
    k = _check_k(k)
    kind, y = _check_y_true(y_true)
    score_kind, s = _parse_y_score(y_score)
    return _prepare_checked(kind, y, score_kind, s, k, check_class_range=True)


def _prepare_checked(kind, y, score_kind, s, k, check_class_range, return_ids=False):
    n = y.shape[0]
    if n == 0:
        raise ValueError(
            "y_true is empty (0 samples); at least one sample is required."
        )
    if s.shape[0] != n:
        raise ValueError(
            f"y_true has {n} samples but y_score has {s.shape[0]}; they must "
            "describe the same samples in the same order."
        )

    if score_kind == "dense":
        n_labels = s.shape[1]
        if kind != "classes" and y.shape[1] != n_labels:
            raise ValueError(
                f"y_true has {y.shape[1]} label columns but y_score has "
                f"{n_labels}; both must index the same label space."
            )
        if n_labels == 0:
            raise ValueError(
                "y_score has no label columns; at least one label is required."
            )
        if kind == "classes" and check_class_range and y.max() >= n_labels:
            raise ValueError(
                f"y_true contains class index {int(y.max())} but y_score has "
                f"only {n_labels} columns; class indices must be in "
                f"[0, {n_labels})."
            )
        k = min(k, n_labels)
        ids = _topk_from_scores(s, k)
    else:
        ids = s[:, :k]
        if kind != "classes":
            n_labels = y.shape[1]
            if n_labels == 0:
                raise ValueError(
                    "y_true has no label columns; at least one label is "
                    "required."
                )
            if ids.size and ids.max() >= n_labels:
                raise ValueError(
                    f"y_score contains label id {int(ids.max())} but y_true "
                    f"has only {n_labels} label columns; ids must be in "
                    f"[0, {n_labels}) (negative ids mark padding)."
                )
        # With 1-D y_true the label space is only known up to max(ids) + 1,
        # so every id is in range by construction and class indices beyond
        # it are simply never hit.
        _check_no_duplicate_ids(ids)

    hits, n_true = _hits(kind, y, ids)
    if return_ids:
        return hits, n_true, k, ids
    return hits, n_true, k


# --------------------------------------------------------------------------
# Metric kernels
# --------------------------------------------------------------------------


def _precision(hits, n_true, k):
    return float(np.mean(hits.sum(axis=1) / k))


def _mean_over_labelled(per_row, n_true):
    """Mean of ``per_row(has_true)`` over the rows with a relevant label;
    0.0 when there is none."""
    has_true = n_true > 0
    return float(np.mean(per_row(has_true))) if has_true.any() else 0.0


def _recall(hits, n_true, k):
    return _mean_over_labelled(lambda m: hits[m].sum(axis=1) / n_true[m], n_true)


def _recall_capped(hits, n_true, k):
    # the recommendation convention (Liang et al. 2018): a row with more
    # targets than k can still reach 1
    return _mean_over_labelled(lambda m: hits[m].sum(axis=1) / np.minimum(n_true[m], k),
                               n_true)


def _hit_rate(hits, n_true, k):
    return _mean_over_labelled(lambda m: hits[m].any(axis=1), n_true)


def _ndcg(hits, n_true, k):
    has_true = n_true > 0
    if not has_true.any():
        return 0.0
    hits, n_true = hits[has_true], n_true[has_true]
    ideal_len = np.minimum(n_true, k)
    # One discount table long enough for both the observed ranking and the
    # longest ideal ranking; k itself may be huge, so never size it by k.
    length = max(hits.shape[1], int(ideal_len.max()))
    discount = 1.0 / np.log2(np.arange(length) + 2.0)
    dcg = hits @ discount[: hits.shape[1]]
    idcg = np.cumsum(discount)[ideal_len - 1]
    return float(np.mean(dcg / idcg))


_KERNELS = {"precision": _precision, "recall": _recall, "ndcg": _ndcg,
            "recall_capped": _recall_capped, "hit_rate": _hit_rate}


_PARAMS_DOC = """\
    y_true : {array-like, sparse matrix} of shape (n_samples, n_labels) or \
(n_samples,)
        Ground truth. Either a binary indicator matrix (dense or any
        ``scipy.sparse`` format; nonzero entries are relevant labels) or a
        1-D array of integer class indices for the multi-class case (one
        relevant label per row). Sparse input is never densified.
    y_score : ndarray of shape (n_samples, n_labels), ndarray of shape \
(n_samples, m) or tuple (ids, scores)
        Either a dense floating-point score matrix (higher is more relevant;
        ties go to the lower label index), or a top-k list: an integer array
        of label ids ranked best first, optionally as the ``(ids, scores)``
        tuple returned by ``predict_topk``. Negative ids are padding and count
        as misses. Only the first ``k`` columns of a top-k list are used."""


_RAISES_DOC = """    Raises
    ------
    ValueError
        If ``k`` is not a positive integer, the inputs are empty or
        inconsistent in shape, ``y_score`` contains NaN, or a label id is out
        of range."""


def precision_at_k(y_true, y_score, k=5):
    """Precision at k: the fraction of the top ``k`` predictions that are relevant.

    For each sample, the number of relevant labels among the ``k`` best-ranked
    labels is divided by ``k``; the result is the mean over samples.

    Parameters
    ----------
{params}
    k : int, default=5
        Number of top-ranked labels to consider. With a dense score matrix,
        ``k`` is clamped to ``n_labels``. With a top-k list holding fewer than
        ``k`` predictions, the denominator is still ``k``.

    Returns
    -------
    float
        Mean precision@k in [0, 1].

{raises}

    See Also
    --------
    recall_at_k, ndcg_at_k, make_topk_scorer

    Examples
    --------
    >>> import numpy as np
    >>> from skbolt.metrics import precision_at_k
    >>> y_true = np.array([[1, 0, 1, 0], [0, 1, 0, 0]])
    >>> y_score = np.array([[0.9, 0.8, 0.1, 0.0], [0.2, 0.7, 0.1, 0.0]])
    >>> precision_at_k(y_true, y_score, k=2)
    0.5
    """
    return _precision(*_prepare(y_true, y_score, k))


def recall_at_k(y_true, y_score, k=5, capped=False):
    """Recall at k: the fraction of relevant labels found in the top ``k``.

    For each sample, the number of relevant labels among the ``k`` best-ranked
    labels is divided by the sample's total number of relevant labels; the
    result is the mean over samples. Samples with no relevant label are left
    out of the mean; if no sample has one, 0.0 is returned.

    Parameters
    ----------
{params}
    k : int, default=5
        Number of top-ranked labels to consider.
    capped : bool, default=False
        Divide by ``min(k, n_relevant)`` instead of ``n_relevant``, the
        convention of recommendation benchmarks, so that a row with more
        relevant items than ``k`` can still reach 1.

    Returns
    -------
    float
        Mean recall@k in [0, 1].

{raises}

    See Also
    --------
    precision_at_k, ndcg_at_k, make_topk_scorer

    Examples
    --------
    >>> import numpy as np
    >>> from skbolt.metrics import recall_at_k
    >>> y_true = np.array([[1, 0, 1, 0], [0, 1, 0, 0]])
    >>> y_score = np.array([[0.9, 0.8, 0.1, 0.0], [0.2, 0.7, 0.1, 0.0]])
    >>> recall_at_k(y_true, y_score, k=2)
    0.75
    """
    return (_recall_capped if capped else _recall)(*_prepare(y_true, y_score, k))


def hit_rate_at_k(y_true, y_score, k=10):
    """Hit rate at k: the share of samples with a relevant label in their top ``k``.

    Samples with no relevant label are left out of the mean; if no sample
    has one, 0.0 is returned.

    Parameters
    ----------
{params}
    k : int, default=10
        Number of top-ranked labels to consider.

    Returns
    -------
    float
        Mean hit rate@k in [0, 1].

{raises}

    See Also
    --------
    recall_at_k, ndcg_at_k

    Examples
    --------
    >>> import numpy as np
    >>> from skbolt.metrics import hit_rate_at_k
    >>> y_true = np.array([[1, 0, 1, 0], [0, 0, 0, 1]])
    >>> y_score = np.array([[0.9, 0.8, 0.1, 0.0], [0.2, 0.7, 0.1, 0.0]])
    >>> hit_rate_at_k(y_true, y_score, k=2)
    0.5
    """
    return _hit_rate(*_prepare(y_true, y_score, k))


def ndcg_at_k(y_true, y_score, k=10):
    """Normalized discounted cumulative gain at k with binary relevance.

    ``DCG@k = sum_{{i < k}} rel_i / log2(i + 2)`` over the ranked labels, and
    the ideal ``IDCG@k = sum_{{i < min(k, n_true)}} 1 / log2(i + 2)``, where
    ``n_true`` is the sample's number of relevant labels. The result is the
    mean of ``DCG@k / IDCG@k`` over samples; samples with no relevant label
    are left out of the mean, and 0.0 is returned if no sample has one.

    Parameters
    ----------
{params}
    k : int, default=10
        Number of top-ranked labels to consider.

    Returns
    -------
    float
        Mean nDCG@k in [0, 1].

{raises}

    See Also
    --------
    precision_at_k, recall_at_k, make_topk_scorer

    Examples
    --------
    >>> import numpy as np
    >>> from skbolt.metrics import ndcg_at_k
    >>> y_true = np.array([[0, 0, 1]])
    >>> y_score = np.array([[0.3, 0.2, 0.1]])
    >>> ndcg_at_k(y_true, y_score, k=3)
    0.5
    """
    return _ndcg(*_prepare(y_true, y_score, k))


def propensity_scores(label_counts, n_samples, A=0.55, B=1.5):
    """Label propensities of Jain, Prabhu and Varma (KDD 2016).

    ``p_l = 1 / (1 + C (N_l + B) ** -A)`` with ``C = (ln N - 1) (B + 1) ** A``,
    where ``N_l`` is the number of training rows with label ``l`` and ``N``
    the number of training rows: rare labels get small propensities (they
    are less often observed even when relevant), so ``psp_at_k`` rewards
    predicting them.

    Parameters
    ----------
    label_counts : array-like of shape (n_labels,)
        Training rows per label (``Y_train.sum(axis=0)``).
    n_samples : int
        Training rows, ``N``.
    A, B : float, default=0.55, 1.5
        The dataset constants: 0.55 / 1.5 for most sets, 0.6 / 2.6 for
        Wikipedia, 0.5 / 0.4 for Amazon (the authors' values).

    Returns
    -------
    ndarray of float64 of shape (n_labels,)
        Propensities in (0, 1].

    Raises
    ------
    ValueError
        If a count is negative or ``n_samples`` is below 3 (``ln N - 1``
        must be positive).
    """
    counts = np.asarray(label_counts, dtype=np.float64).ravel()
    if not np.isfinite(counts).all() or (counts < 0).any():
        raise ValueError("label_counts must be finite counts >= 0.")
    if not n_samples >= 3:
        raise ValueError(f"n_samples must be at least 3, got {n_samples!r}.")
    C = (np.log(n_samples) - 1.0) * (B + 1.0) ** A
    return 1.0 / (1.0 + C * (counts + B) ** -A)


def psp_at_k(y_true, y_score, propensities, k=5):
    """Propensity-scored precision at k, normalised by its best value.

    Each correct label in the top k counts ``1 / p_l``; the sum over all
    rows is divided by the best achievable sum (each row's ``k`` relevant
    labels of smallest propensity), the Extreme Classification
    Repository's convention, so a perfect ranking scores 1.

    Parameters
    ----------
{params}
    propensities : array-like of shape (n_labels,)
        Each label's propensity (``propensity_scores``).
    k : int, default=5
        Number of top-ranked labels to consider.

    Returns
    -------
    float
        PSP@k in [0, 1]; 0.0 when no row has a relevant label.

{raises}
    """
    k = _check_k(k)
    kind, y = _check_y_true(y_true)
    score_kind, s = _parse_y_score(y_score)
    hits, _, k, ids = _prepare_checked(kind, y, score_kind, s, k, True, return_ids=True)
    p = np.asarray(propensities, dtype=np.float64).ravel()
    if not (np.isfinite(p).all() and (p > 0).all() and (p <= 1).all()):
        raise ValueError("propensities must be in (0, 1] (see propensity_scores).")
    w = 1.0 / p
    if kind != "classes" and w.size != y.shape[1]:
        raise ValueError(f"{w.size} propensities given for {y.shape[1]} labels; give one "
                         "per label column of y_true.")
    n_labels = int(max(y.max(), ids.max()) + 1) if kind == "classes" else w.size
    if w.size < n_labels:
        raise ValueError(f"{w.size} propensities given for {n_labels} labels.")
    gained = float(np.sum(hits * w[np.where(ids >= 0, ids, 0)]))
    if kind == "classes":
        best = float(w[y].sum())
    else:
        csr = sp.csr_matrix(y) if kind == "dense" else y
        csr = csr.copy()
        csr.eliminate_zeros()
        rows = np.repeat(np.arange(csr.shape[0]), np.diff(csr.indptr))
        wt = w[csr.indices]
        order = np.lexsort((-wt, rows))  # by row, largest weight first
        rank = np.arange(order.size) - csr.indptr[rows[order]]
        best = float(wt[order][rank < k].sum())
    return gained / best if best > 0 else 0.0


# Docstrings are absent under ``python -OO``.
for _f in (precision_at_k, recall_at_k, ndcg_at_k, hit_rate_at_k, psp_at_k):
    if _f.__doc__:
        _f.__doc__ = _f.__doc__.format(params=_PARAMS_DOC, raises=_RAISES_DOC)
del _f


# --------------------------------------------------------------------------
# Scorers
# --------------------------------------------------------------------------


class TopKScorer:
    """Scorer computing a top-k ranking metric from ``predict_topk``.

    Instances are callables ``scorer(estimator, X, y) -> float`` suitable for
    the ``scoring`` argument of :class:`~sklearn.model_selection.GridSearchCV`
    and :func:`~sklearn.model_selection.cross_val_score`. Higher is better.
    They are plain picklable objects, so they work with parallel
    (``n_jobs > 1``) model selection. Create them with
    :func:`make_topk_scorer`.

    Parameters
    ----------
    metric : {"precision", "recall", "ndcg"}
        Ranking metric to compute.
    k : int
        Number of top-ranked labels requested from the estimator and scored.

    Attributes
    ----------
    metric : str
        The metric name.
    k : int
        The cut-off.

    Notes
    -----
    The estimator must provide ``predict_topk(X, k)`` returning
    ``(labels, scores)``; with ``classes_`` the labels are mapped to column
    indices through it, otherwise they are taken as column indices. Fewer
    than ``k`` labels are requested when the estimator has fewer classes.
    If ``y`` is 1-D it holds class labels and is mapped to column indices via
    ``estimator.classes_``; labels unknown to the estimator count as
    relevant labels that are never retrieved. If ``y`` is 2-D it is used as
    the indicator matrix of the estimator's label space.
    """

    def __init__(self, metric, k):
        if metric not in _METRICS:
            raise ValueError(
                f"metric must be one of {list(_METRICS)}, got {metric!r}."
            )
        self.metric = metric
        self.k = _check_k(k)

    def __call__(self, estimator, X, y):
        """Score ``estimator`` on ``(X, y)``.

        Parameters
        ----------
        estimator : object
            Fitted estimator exposing ``predict_topk(X, k)`` and, for 1-D
            ``y``, ``classes_``.
        X : array-like or sparse matrix of shape (n_samples, n_features)
            Input samples.
        y : array-like of shape (n_samples,) or {array-like, sparse matrix} \
of shape (n_samples, n_labels)
            Class labels (1-D) or binary label indicator matrix (2-D).

        Returns
        -------
        float
            The metric value.
        """
        if not hasattr(estimator, "predict_topk"):
            raise ValueError(
                f"{type(estimator).__name__} has no predict_topk(X, k) "
                "method; top-k scorers need an skbolt estimator."
            )
        classes = getattr(estimator, "classes_", None)
        k = self.k if classes is None else min(self.k, len(classes))
        labels, _ = estimator.predict_topk(X, k)
        if classes is not None:
            # predict_topk returns class labels; the metrics work on columns
            labels = np.asarray(labels)
            labels = self._class_indices(estimator, labels.ravel()).reshape(labels.shape)
        score_kind, s = _parse_y_score(labels)
        if sp.issparse(y) or np.ndim(y) == 2:
            kind, y_checked = _check_y_true(y)
        else:
            kind, y_checked = "classes", self._class_indices(estimator, y)
        hits, n_true, k = _prepare_checked(
            kind, y_checked, score_kind, s, self.k, check_class_range=False
        )
        return _KERNELS[self.metric](hits, n_true, k)

    @staticmethod
    def _class_indices(estimator, y):
        y = np.asarray(y)
        if y.ndim != 1:
            raise ValueError(
                "y must be 1-D class labels or a 2-D label indicator matrix; "
                f"got ndim={y.ndim}."
            )
        classes = getattr(estimator, "classes_", None)
        if classes is None:
            raise ValueError(
                f"y is 1-D but {type(estimator).__name__} has no classes_ "
                "attribute to map labels to columns; pass a 2-D indicator "
                "matrix for multi-label estimators."
            )
        classes = np.asarray(classes)
        if classes.size == 0:
            return np.full(y.shape, -1, dtype=np.int64)
        # classes_ is sorted for sklearn-style estimators; the sorter keeps
        # this correct for any other order at negligible cost.
        sorter = np.argsort(classes, kind="stable")
        pos = np.searchsorted(classes, y, sorter=sorter)
        idx = sorter[np.minimum(pos, classes.size - 1)]
        found = classes[idx] == y
        # -1 never equals a valid id, and padding ids are masked separately.
        return np.where(found, idx, -1).astype(np.int64)

    def __repr__(self):
        return f"make_topk_scorer(metric={self.metric!r}, k={self.k})"

    def __eq__(self, other):
        if not isinstance(other, TopKScorer):
            return NotImplemented
        return (self.metric, self.k) == (other.metric, other.k)

    def __hash__(self):
        return hash((TopKScorer, self.metric, self.k))


def make_topk_scorer(metric="precision", k=5):
    """Build a scorer for model selection from a top-k ranking metric.

    Parameters
    ----------
    metric : {"precision", "recall", "ndcg", "recall_capped", "hit_rate"}, \
default="precision"
        Which metric to compute: :func:`precision_at_k`,
        :func:`recall_at_k` (``"recall_capped"``: with ``capped=True``),
        :func:`ndcg_at_k` or :func:`hit_rate_at_k`.
    k : int, default=5
        Cut-off passed both to ``estimator.predict_topk(X, k)`` and to the
        metric.

    Returns
    -------
    TopKScorer
        A picklable callable ``scorer(estimator, X, y) -> float`` usable as
        ``GridSearchCV(scoring=...)``. Higher is better.

    Raises
    ------
    ValueError
        If ``metric`` is unknown or ``k`` is not a positive integer.

    See Also
    --------
    precision_at_1_scorer, precision_at_5_scorer, ndcg_at_10_scorer

    Notes
    -----
    The estimator's top-k list is scored as such, so precision always divides
    by ``k`` even if the estimator has fewer than ``k`` labels.

    Examples
    --------
    >>> from skbolt.metrics import make_topk_scorer
    >>> make_topk_scorer("ndcg", k=3)
    make_topk_scorer(metric='ndcg', k=3)
    """
    return TopKScorer(metric, k)


#: Ready-made scorer for precision@1 (see :func:`make_topk_scorer`).
precision_at_1_scorer = make_topk_scorer("precision", 1)
#: Ready-made scorer for precision@5 (see :func:`make_topk_scorer`).
precision_at_5_scorer = make_topk_scorer("precision", 5)
#: Ready-made scorer for nDCG@10 (see :func:`make_topk_scorer`).
ndcg_at_10_scorer = make_topk_scorer("ndcg", 10)
