"""Top-n items of a network's scores with each row's seen items left
out: dense scores with the seen items masked up to DENSE_ITEMS outputs, else
the LSH-retrieved candidates, falling back to every item for rows the
tables leave short."""
import numpy as np

from ._cooccurrence import blend
from .recommender import _exclude

#: Dense score blocks stay under this many float32 values (64 MB).
SCORE_BLOCK = 1 << 24

#: Items a sampled layer retrieves per row before co-occurrence reranks
#: them (at least twice the items asked for).
BLEND_DEPTH = 100


def ranked(net, X, seen, n, n_items, candidates, threads, P=None, weight=0.0):
    """Best ``n`` items (at most ``n_items``) of each input row of ``X``
    and their probabilities, the row's items of CSR ``seen`` left out
    (None: none); -1 / NaN where none is left. ``candidates``: of the
    sampled layer's retrieved items, how many are scored. With a
    co-occurrence distribution ``P`` (CSR, a row per row of ``X``) and
    ``weight`` > 0, items rank by p * (1 + n_items * P) ** weight and that
    is the score returned (``_cooccurrence``)."""
    n = min(int(n), n_items)
    if P is None or weight == 0:
        P, weight = None, 0.0
    step = max(1, SCORE_BLOCK // n_items) if not net.sparse_output else 1 << 16
    parts = []
    for lo in range(0, X.shape[0], step):
        x = X[lo:lo + step]
        s = None if seen is None else seen[lo:lo + x.shape[0]]
        p = None if P is None else P[lo:lo + x.shape[0]]
        parts.append(sparse_ranked(net, x, s, n, n_items, candidates, threads, p, weight)
                     if net.sparse_output else dense_ranked(net, x, s, n, threads, p, weight))
    return tuple(np.concatenate(p) for p in zip(*parts))


def dense_ranked(net, x, seen, n, threads, P=None, weight=0.0):
    """``ranked`` over every output's probability."""
    scores = net.predict_scores(x, True, threads)
    if P is not None:
        with np.errstate(divide="ignore"):
            scores = blend(np.log(scores), P, weight, scores.shape[1])
    if seen is not None and seen.nnz:
        r = np.repeat(np.arange(x.shape[0]), np.diff(seen.indptr))
        scores[r, seen.indices] = -np.inf
    if n < scores.shape[1]:
        top = np.argpartition(-scores, n - 1, axis=1)[:, :n]
    else:
        top = np.tile(np.arange(scores.shape[1]), (x.shape[0], 1))
    s = np.take_along_axis(scores, top, axis=1)
    order = np.argsort(-s, axis=1, kind="stable")
    ids = np.take_along_axis(top, order, axis=1).astype(np.int64)
    s = np.take_along_axis(s, order, axis=1)
    gone = np.isneginf(s)
    if P is not None:
        s = _scores_from_logs(s)
    s = s.astype(np.float32)
    ids[gone], s[gone] = -1, np.nan
    return ids, s


def sparse_ranked(net, x, seen, n, n_items, candidates, threads, P=None, weight=0.0):
    """``ranked`` over the items the hash tables retrieve."""
    extra = int(np.diff(seen.indptr).max(initial=0)) if seen is not None else 0
    want = n if P is None else max(2 * n, BLEND_DEPTH)
    k = min(n_items, want + extra)
    ids, s = net.predict_topk(x, k, True, threads, candidates)
    if seen is not None:
        ids, s = _exclude(ids, s, seen)
    if P is not None:
        ids, s = _blend_retrieved(ids, s, P, weight, seen, n_items)
    ids, s = ids[:, :n], s[:, :n].astype(np.float32)
    # the tables may retrieve fewer unseen items than asked: those rows
    # are ranked over the whole catalogue
    left = n_items - (np.diff(seen.indptr) if seen is not None else 0)
    short = np.flatnonzero((ids >= 0).sum(axis=1) < np.minimum(n, left))
    if short.size:
        ids[short], s[short] = dense_ranked(
            net, x[short], None if seen is None else seen[short], n, threads,
            None if P is None else P[short], weight)
    s[ids < 0] = np.nan
    return ids, s

def _keys(rows, cols, n_items):
    return np.asarray(rows, dtype=np.int64) * n_items + np.asarray(cols, dtype=np.int64)


def _csr_keys(M, n_items):
    """Sorted (row, column) keys of CSR ``M``'s entries (sorted indices)."""
    return _keys(np.repeat(np.arange(M.shape[0]), np.diff(M.indptr)), M.indices, n_items)


def _member(keys, sorted_keys):
    """Whether each of ``keys`` is in ``sorted_keys`` (np.isin's hashing
    was most of a recommend call at 100k items)."""
    if sorted_keys.size == 0:
        return np.zeros(keys.shape, dtype=bool)
    at = np.minimum(np.searchsorted(sorted_keys, keys), sorted_keys.size - 1)
    return sorted_keys[at] == keys


def _blend_retrieved(ids, s, P, weight, seen, n_items):
    """Retrieved (ids, probabilities) reranked with co-occurrence ``P``.
    Items ``P`` names that the tables did not retrieve get the row's lowest
    retrieved probability (an upper bound of theirs: they ranked below it),
    so of those only the row's ``k`` largest in ``P`` can make its top k."""
    m, k = ids.shape
    P = P.tocsr()
    P.sort_indices()
    p_keys = _csr_keys(P, n_items)
    ok = ids >= 0
    rows = np.repeat(np.arange(m), k).reshape(m, k)
    got_keys = np.where(ok, _keys(rows, np.maximum(ids, 0), n_items), -1)
    at = np.minimum(np.searchsorted(p_keys, got_keys), max(p_keys.size - 1, 0))
    p_got = np.where(ok & (p_keys[at] == got_keys), P.data[at], 0.0) if p_keys.size else \
        np.zeros((m, k))
    # the rest of P's entries, seen and retrieved items left out, k per row
    rest = ~_member(p_keys, np.sort(got_keys[ok]))
    if seen is not None and seen.nnz:
        seen = seen.tocsr()
        seen.sort_indices()
        rest &= ~_member(p_keys, _csr_keys(seen, n_items))
    r_rows = np.repeat(np.arange(m), np.diff(P.indptr))[rest]
    r_cols, r_vals = P.indices[rest], P.data[rest]
    order = np.lexsort((-r_vals, r_rows))
    r_rows, r_cols, r_vals = r_rows[order], r_cols[order], r_vals[order]
    first = np.searchsorted(r_rows, np.arange(m))
    rank = np.arange(r_rows.size) - first[r_rows]
    keep = rank < k
    extra_ids = np.full((m, k), -1, dtype=np.int64)
    extra_p = np.zeros((m, k))
    extra_ids[r_rows[keep], rank[keep]] = r_cols[keep]
    extra_p[r_rows[keep], rank[keep]] = r_vals[keep]
    with np.errstate(divide="ignore"):
        log_s = np.where(ok, np.log(np.where(ok, s, 1.0)), -np.inf)
    floor = np.where(ok.any(axis=1), np.where(ok, log_s, np.inf).min(axis=1), 0.0)
    cand = np.concatenate([np.where(ok, ids, -1), extra_ids], axis=1)
    score = np.concatenate([log_s + weight * np.log1p(p_got * n_items),
                            floor[:, None] + weight * np.log1p(extra_p * n_items)], axis=1)
    score[cand < 0] = -np.inf
    best = np.argsort(-score, axis=1, kind="stable")[:, :k]
    out_ids = np.take_along_axis(cand, best, axis=1)
    out_s = _scores_from_logs(np.take_along_axis(score, best, axis=1))
    out_s[out_ids < 0] = np.nan
    return out_ids, out_s


def _scores_from_logs(log_s):
    """exp of blended log-scores, at most float32's largest value: with a
    large co-occurrence weight, (1 + n_items P) ** weight passes it (3,001
    ** 16 is 4e55), and the order the logs gave stays as it is."""
    with np.errstate(over="ignore"):
        return np.minimum(np.exp(log_s), np.finfo(np.float32).max)


def ndcg_one(ids, targets):
    """Mean NDCG of one relevant item per row (ids: item codes, -1 empty;
    a target of -1 is never found)."""
    hit = (ids == np.asarray(targets)[:, None]) & (ids >= 0)
    rank = np.argmax(hit, axis=1)
    gain = np.where(hit.any(axis=1), 1.0 / np.log2(rank + 2.0), 0.0)
    return float(gain.mean()) if gain.size else 0.0


def add_sums(a, b):
    """Two ``Network.centroid_sums`` added up."""
    labels = np.union1d(a["labels"], b["labels"])
    sums = np.zeros((labels.size, a["sums"].shape[1]), dtype=np.float32)
    counts = np.zeros(labels.size)
    for part in (a, b):
        at = np.searchsorted(labels, part["labels"])
        sums[at] += part["sums"]
        counts[at] += part["counts"]
    return {"labels": labels.astype(np.int32), "sums": sums, "counts": counts,
            "total": a["total"] + b["total"], "sq": a["sq"] + b["sq"],
            "used": a["used"] + b["used"]}
