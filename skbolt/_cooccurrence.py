"""Item co-occurrence in users' sequences, the item-to-item signal that
``BoltSequentialRecommender`` adds to its network's scores.

The network maps the last items to the next one through a hidden layer of a
few hundred units: a low-rank map, which cannot hold a catalogue-sized
successor table ("after a, b") however long it trains. Counts of items
that occur a few steps apart hold it at full rank, at the cost of one
sparse matrix. A history's co-occurrence distribution P (its last items'
rows, decayed, summed and normalised) enters the ranking as a product of
experts: log p_network + weight * log(P + 1 / n_items), with the weight
measured on validation events in ``fit``.
"""
import numpy as np
import scipy.sparse as sp

#: Two events of a user count as co-occurring when at most WINDOW steps
#: apart (either order). On MovieLens-100K validation a window of 5 scored
#: as the whole history did (``benchmarks/README.md``, bench_sequential),
#: and it keeps the count linear in the events.
WINDOW = 5

#: Neighbours kept per item (the largest cosine-normalised counts).
MAX_NEIGHBORS = 100

#: A history's distribution reads its last N_LAST items, the item j steps
#: back weighted LAST_DECAY ** j.
N_LAST = 5
LAST_DECAY = 0.8

#: Events whose pairs are counted at once (bounds the build's temporaries:
#: about CHUNK_EVENTS x 2 x WINDOW pairs).
CHUNK_EVENTS = 1 << 20

#: Bytes per stored neighbour, and per counted pair of a chunk with scipy's
#: temporaries (``estimate_memory``).
NEIGHBOR_BYTES = 12
PAIR_BYTES = 48


def _top_per_row(C, k):
    """C (CSR) with at most the k largest entries of each row kept."""
    counts = np.diff(C.indptr)
    if counts.size == 0 or counts.max() <= k:
        return C
    rows = np.repeat(np.arange(C.shape[0]), counts)
    order = np.lexsort((-C.data, rows))
    rank = np.arange(order.size) - np.repeat(C.indptr[:-1], counts)
    keep = np.zeros(order.size, dtype=bool)
    keep[order[rank < k]] = True
    out = sp.csr_matrix((C.data[keep], C.indices[keep], np.r_[0, np.cumsum(
        np.bincount(rows[keep], minlength=C.shape[0]))]), shape=C.shape)
    return out


def cooccurrence(items, starts, n_items, window=WINDOW, max_neighbors=MAX_NEIGHBORS):
    """Symmetric co-occurrence of items at most ``window`` steps apart.

    Parameters
    ----------
    items : ndarray of int
        Item codes, user after user, each in time order.
    starts : ndarray of int64 of shape (n_users + 1,)
        User u's events are ``items[starts[u]:starts[u + 1]]``.
    n_items : int
        Catalogue size.
    window, max_neighbors : int
        The largest distance counted, and the neighbours kept per item.

    Returns
    -------
    C : scipy.sparse.csr_matrix of float32, shape (n_items, n_items)
        ``C[a, b]`` = pairs of (a, b) within ``window`` steps of one user,
        over sqrt(count(a) * count(b)) (cosine); diagonal zero; the
        ``max_neighbors`` largest per row. Counts are pruned to twice that
        many per row between chunks, so very long logs keep their heavy
        pairs rather than every pair.
    """
    items = np.asarray(items, dtype=np.int64)
    starts = np.asarray(starts, dtype=np.int64)
    user = np.repeat(np.arange(starts.size - 1), np.diff(starts))
    total = sp.csr_matrix((n_items, n_items), dtype=np.float64)
    n = items.size
    for lo in range(0, n, CHUNK_EVENTS):
        hi = min(n, lo + CHUNK_EVENTS)
        rows, cols = [], []
        for k in range(1, window + 1):
            a = np.arange(lo, min(hi, n - k))
            a = a[user[a] == user[a + k]]
            rows.append(items[a])
            cols.append(items[a + k])
        r, c = np.concatenate(rows), np.concatenate(cols)
        part = sp.csr_matrix((np.ones(r.size), (r, c)), shape=(n_items, n_items))
        total = total + part + part.T
        if hi < n and total.nnz > 4 * max_neighbors * n_items:
            total = _top_per_row(total.tocsr(), 2 * max_neighbors)
    total = total.tocsr()
    total.setdiag(0)
    total.eliminate_zeros()
    q = 1.0 / np.sqrt(np.maximum(np.bincount(items, minlength=n_items), 1))
    total = sp.diags(q) @ total @ sp.diags(q)
    C = _top_per_row(total.tocsr(), max_neighbors)
    C.sort_indices()
    return C.astype(np.float32)


def without_last(items, starts):
    """(items, starts) with each user's last event left out."""
    starts = np.asarray(starts, dtype=np.int64)
    keep = np.ones(len(items), dtype=bool)
    nonempty = np.diff(starts) > 0
    keep[starts[1:][nonempty] - 1] = False
    counts = np.maximum(np.diff(starts) - 1, 0)
    return np.asarray(items)[keep], np.r_[0, np.cumsum(counts)]


def history_distribution(C, items, ends, lengths):
    """P (CSR, rows sum to 1 or 0) of histories ending before flat index
    ``ends`` of ``items`` with ``lengths`` events: their last N_LAST items'
    rows of ``C``, the item j steps back weighted LAST_DECAY ** j."""
    ends = np.asarray(ends, dtype=np.int64)
    take = np.minimum(np.asarray(lengths, dtype=np.int64), N_LAST)
    row = np.repeat(np.arange(ends.size), take)
    back = np.arange(row.size) - np.repeat(np.cumsum(take) - take, take)
    idx = np.repeat(ends, take) - 1 - back
    n_items = C.shape[0]
    L = sp.csr_matrix((LAST_DECAY ** back.astype(np.float64), (row, np.asarray(items)[idx])),
                      shape=(ends.size, n_items))
    P = (L @ C).tocsr()
    sums = np.asarray(P.sum(axis=1)).ravel()
    sums[sums == 0] = 1.0
    P = (sp.diags(1.0 / sums) @ P).tocsr()
    P.sort_indices()
    return P


def blend(log_p, P, weight, n_items):
    """Ranking scores ``log_p + weight * log(P + 1 / n_items)`` (dense
    ``log_p``, CSR ``P`` of the same rows); the floor's constant is left
    out, so rows without co-occurrence keep the network's order."""
    out = np.array(log_p, dtype=np.float64)
    if weight == 0 or P.nnz == 0:
        return out
    P = P.tocoo()
    out[P.row, P.col] += weight * np.log1p(P.data * n_items)
    return out
