"""Sparse algebra of ``NeighborhoodFeatures``: the aggregation operators,
propagation a block of rows at a time, and the per-row top-k cut that keeps
aggregated sparse rows bounded."""
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.sparse as sp


def propagator(A, normalization):
    """The aggregation operator of A: D^-1 A (mean) or D^-1/2 A D^-1/2."""
    degree = np.asarray(A.sum(axis=1)).ravel()
    with np.errstate(divide="ignore"):
        if normalization == "row":
            scale = np.where(degree > 0, 1.0 / degree, 0.0)
            return sp.diags(scale.astype(np.float32)) @ A
        scale = np.where(degree > 0, 1.0 / np.sqrt(degree), 0.0).astype(np.float32)
    return sp.diags(scale) @ A @ sp.diags(scale)


#: Padded entries ``top_k_rows`` selects over at once (32 MB of float64).
TOP_K_CHUNK = 1 << 22


def top_k_rows(M, k):
    """Keep, per row of CSR M, the k entries of largest magnitude (ties by
    column, for determinism).

    Only the rows longer than k are looked at, in chunks of rows of about
    equal length padded to a matrix, where a partition finds each row's
    k-th magnitude: linear in a row's entries, where sorting every entry
    was most of a large graph's fit (benchmarks/HISTORY.md).
    """
    M = sp.csr_matrix(M)
    lengths = np.diff(M.indptr)
    if k is None or lengths.max(initial=0) <= k:
        return M
    M.sort_indices()
    keep = np.ones(M.nnz, dtype=bool)
    long_rows = np.flatnonzero(lengths > k)
    long_rows = long_rows[np.argsort(lengths[long_rows], kind="stable")]
    start = 0
    while start < long_rows.size:
        stop = start + 1
        # rows sorted by length: a chunk is padded to its last row's length
        while (stop < long_rows.size
               and (stop + 1 - start) * int(lengths[long_rows[stop]]) <= TOP_K_CHUNK):
            stop += 1
        rows = long_rows[start:stop]
        width = int(lengths[rows[-1]])
        valid = np.arange(width) < lengths[rows][:, None]
        pos = np.where(valid, M.indptr[rows][:, None] + np.arange(width), 0)
        mag = np.where(valid, np.abs(M.data[pos]), -1.0)
        # the k-th largest magnitude per row (padding is below every entry)
        t = np.partition(mag, width - k, axis=1)[:, width - k][:, None]
        above = mag > t
        tied = mag == t
        # among the entries equal to it, the lowest columns (sorted) first
        room = k - above.sum(axis=1, keepdims=True)
        chosen = above | (tied & (np.cumsum(tied, axis=1) <= room))
        keep[pos[valid]] = chosen[valid]
        start = stop
    kept = np.minimum(lengths, k)
    indptr = np.concatenate([[0], np.cumsum(kept)]).astype(M.indptr.dtype)
    return sp.csr_matrix((M.data[keep], M.indices[keep], indptr), shape=M.shape)


def propagate(P, H, k, threads=1):
    """P @ H, a sparse H's rows cut to k entries (``top_k_rows``) block by
    block of rows, so that the uncut product (up to a row's degree times k
    entries per row) never exists whole. With ``threads`` > 1 the blocks
    are computed that many at a time (scipy's product and numpy's
    partition release the GIL); the rows are the same whatever the blocks."""
    if not sp.issparse(H):
        return np.asarray(P @ H, np.float32)
    if k is None:
        return sp.csr_matrix(P @ H)
    # rows per block: about TOP_K_CHUNK entries of the uncut product, and
    # at least one block per thread
    n = P.shape[0]
    per_row = max(1.0, P.nnz / max(n, 1) * min(k, H.shape[1]))
    step = max(1, min(int(TOP_K_CHUNK // per_row), -(-n // max(threads, 1))))
    starts = range(0, n, step)

    def block(i):
        return top_k_rows(P[i:i + step] @ H, k)

    if threads > 1 and len(starts) > 1:
        with ThreadPoolExecutor(min(threads, len(starts))) as pool:
            blocks = list(pool.map(block, starts))
    else:
        blocks = [block(i) for i in starts]
    return sp.vstack(blocks, format="csr")


def unit_rows_on_average(B, ids):
    """B scaled so that the rows ``ids`` have L2 norm 1 on average."""
    rows = B[ids] if ids.size else B
    norm = np.sqrt(np.asarray(rows.multiply(rows).sum(axis=1))).mean()
    return B * np.float32(1.0 / norm) if norm > 0 else B


def return_walks(A):
    """diag(A @ A) without forming A @ A: sum_j A_ij A_ji per node i."""
    return np.asarray(A.multiply(A.T.tocsr()).sum(axis=1)).ravel()
