"""Top-n items of a network's scores with each row's seen items left
out: dense scores with the seen items masked up to DENSE_ITEMS outputs, else
the LSH-retrieved candidates, falling back to every item for rows the
tables leave short."""
import numpy as np

from .recommender import _exclude

#: Dense score blocks stay under this many float32 values (64 MB).
SCORE_BLOCK = 1 << 24


def ranked(net, X, seen, n, n_items, candidates, threads):
    """Best ``n`` items (at most ``n_items``) of each input row of ``X``
    and their probabilities, the row's items of CSR ``seen`` left out
    (None: none); -1 / NaN where none is left. ``candidates``: of the
    sampled layer's retrieved items, how many are scored."""
    n = min(int(n), n_items)
    step = max(1, SCORE_BLOCK // n_items) if not net.sparse_output else 1 << 16
    parts = []
    for lo in range(0, X.shape[0], step):
        x = X[lo:lo + step]
        s = None if seen is None else seen[lo:lo + x.shape[0]]
        parts.append(sparse_ranked(net, x, s, n, n_items, candidates, threads)
                     if net.sparse_output else dense_ranked(net, x, s, n, threads))
    return tuple(np.concatenate(p) for p in zip(*parts))


def dense_ranked(net, x, seen, n, threads):
    """``ranked`` over every output's probability."""
    scores = net.predict_scores(x, True, threads)
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
    s = np.take_along_axis(s, order, axis=1).astype(np.float32)
    gone = np.isneginf(s)
    ids[gone], s[gone] = -1, np.nan
    return ids, s


def sparse_ranked(net, x, seen, n, n_items, candidates, threads):
    """``ranked`` over the items the hash tables retrieve."""
    extra = int(np.diff(seen.indptr).max(initial=0)) if seen is not None else 0
    k = min(n_items, n + extra)
    ids, s = net.predict_topk(x, k, True, threads, candidates)
    if seen is not None:
        ids, s = _exclude(ids, s, seen)
    ids, s = ids[:, :n], s[:, :n].astype(np.float32)
    # the tables may retrieve fewer unseen items than asked: those rows
    # are ranked over the whole catalogue
    left = n_items - (np.diff(seen.indptr) if seen is not None else 0)
    short = np.flatnonzero((ids >= 0).sum(axis=1) < np.minimum(n, left))
    if short.size:
        ids[short], s[short] = dense_ranked(
            net, x[short], None if seen is None else seen[short], n, threads)
    s[ids < 0] = np.nan
    return ids, s

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
