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
        with np.errstate(over="ignore"):
            s = np.exp(s)
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

def _blend_retrieved(ids, s, P, weight, seen, n_items):
    """Retrieved (ids, probabilities) reranked with co-occurrence ``P``.
    Items ``P`` names that the tables did not retrieve get the row's lowest
    retrieved probability (an upper bound of theirs: they ranked below it)."""
    out_ids = np.full(ids.shape, -1, dtype=np.int64)
    out_s = np.full(ids.shape, np.nan)
    for r in range(ids.shape[0]):
        ok = ids[r] >= 0
        got, p = ids[r][ok], s[r][ok].astype(np.float64)
        lo, hi = P.indptr[r], P.indptr[r + 1]
        extra = np.setdiff1d(P.indices[lo:hi], got)
        if seen is not None:
            extra = np.setdiff1d(extra, seen.indices[seen.indptr[r]:seen.indptr[r + 1]])
        cand = np.concatenate([got, extra]).astype(np.int64)
        logp = np.log(np.concatenate([p, np.full(extra.size, p.min() if p.size else 1.0)]))
        pi, pv = P.indices[lo:hi], P.data[lo:hi]
        at = np.minimum(np.searchsorted(pi, cand), max(pi.size - 1, 0))
        pc = np.where(pi[at] == cand, pv[at], 0.0) if pi.size else np.zeros(cand.size)
        score = logp + weight * np.log1p(pc * n_items)
        order = np.argsort(-score, kind="stable")[:ids.shape[1]]
        out_ids[r, :order.size] = cand[order]
        with np.errstate(over="ignore"):
            out_s[r, :order.size] = np.exp(score[order])
    return out_ids, out_s


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
