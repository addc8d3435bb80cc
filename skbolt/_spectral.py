"""The spectral side of BoltRecommender: item factors from a randomized
SVD of the interactions (``init="svd"``), the carves of held-out users
that choose their rank, shrinkage and logit scale, and the carves that
choose ``input_scaling``; all numpy / scipy, measured before the network
is trained."""
import numpy as np
import scipy.sparse as sp
from sklearn.preprocessing import normalize
from sklearn.utils.extmath import randomized_svd

from ._network import fit_temperature
from .datasets import _hold_out
from .metrics import ndcg_at_k

#: Share of each row's items ``score(X)`` holds out as targets, and its seed.
SCORE_HOLDOUT, SCORE_SEED = 0.2, 0

#: ``init="svd"``: ranks (hidden widths) the carve chooses from when
#: ``hidden_layer_sizes="auto"``. The best differed by data set: 16-32 on
#: MovieLens-100K, 256 on a 100k-item catalogue of 200 planted groups
#: (validation NDCG@10 0.155 at 128, 0.172 at 256).
SVD_RANKS = (8, 16, 32, 64, 128, 256)

#: Users carved out of a fit to choose the rank and the logit scale: this
#: share of the users with two items or more, at most SVD_CARVE_MAX (its
#: scoring costs users x rank x items), none below SVD_CARVE_MIN.
SVD_CARVE_SHARE, SVD_CARVE_MAX, SVD_CARVE_MIN = 0.1, 500, 20

#: Most disjoint carves (one SVD each) while the users in all the carves
#: stay under SVD_CARVE_MAX: on MovieLens-100K one carve is 66 users, whose
#: NDCG@10 differed by under 2 points across most ranks and shrinkages.
SVD_FOLDS = 5

#: Shrinkages the carve chooses from, in units of the mean squared norm of
#: X's columns (the mean diagonal of X^T X): singular direction j is
#: weighted s_j^2 / (s_j^2 + a m), a low-rank ridge regression of the items
#: on themselves (0: PureSVD). Validation NDCG@10, best rank, a = 0 against
#: the best a: ML-100K all ratings 0.458 / 0.447 -> 0.471 (a 10) / 0.458
#: (3) on seeds 0 / 1, ratings >= 4 0.321 / 0.310 -> 0.337 (30) / 0.318
#: (10), 5k-item synth 0.191 / 0.202 -> 0.227 (100) / 0.231 (30); 20k x
#: 100k items 0.155 at a = 0, 0.154-0.155 at the others.
SVD_SHRINKAGES = (0.0, 3.0, 10.0, 30.0, 100.0)

#: Power iterations of the randomized SVD: at 100k items, rank 128,
#: validation NDCG@10 0.155 with 2 (1.0 s), 0.154 with 4 (1.8 s), 0.151
#: with 7 in float64 (5.0 s).
SVD_ITERATIONS = 2

#: Adam's step for training after the SVD start ("auto"), and the logit
#: scale when no carve fits one. Training from the start lowered NDCG@10
#: at every step size tried (100k items, rank 128, start 0.155: 1e-5
#: 0.152 / 0.150 after 1 / 3 epochs, 1e-4 0.133 / 0.136, 1e-3 0.058); the
#: smallest is the least harm.
SVD_LEARNING_RATE, SVD_LOGIT_SCALE = 1e-5, 10.0

#: ``init="svd"``: dense inference (every item scored) while items x rank
#: is at most this many multiply-adds per row. At 100k items on 2 threads:
#: rank 128 0.67 ms per user (validation NDCG@10 0.155, 0.144 through the
#: hash tables), rank 256 1.2-1.3 ms (0.172, 0.144). Catalogues that can
#: afford SVD_DENSE_RANK or more are searched only over the ranks they can
#: score densely; larger ones over every rank, through the tables.
SVD_DENSE_SCORING, SVD_DENSE_RANK = 2**24, 64

#: The carve's scoring costs carve users x items x the largest rank
#: multiply-adds: the carve shrinks to keep them under this.
SVD_CARVE_MACS = 2**34

#: Score matrices of the carve are computed this many floats at a time.
_SCORE_BLOCK = 2**21

#: ``input_scaling``: what every stored interaction value becomes before a
#: row is scaled to unit length ("raw": itself, "binary": 1, "log1p":
#: log(1 + value)).
INPUT_SCALINGS = ("raw", "binary", "log1p")

#: ``input_scaling="auto"``: the candidates the carve compares, the first
#: kept on a tie; the first is also the choice when there are too few
#: users to carve. Play counts are heavy-tailed: as weights they let one
#: item fill a row (Last.fm, 1.9k users, counts 1 to ~350,000: NDCG@10
#: 0.132 raw, 0.250 binary, 0.255 log1p); log1p keeps the order of the
#: weights and flattens the tail, and is the identity's equal on binary
#: rows once they are scaled to unit length.
AUTO_SCALINGS = ("log1p", "binary", "raw")

#: Ranks of the carve that chooses the scaling where the model is no SVD
#: start (``init="centroids"``, ``fit(X, Y)``): a cheap stand-in for the
#: network, so small ranks only.
SCALING_RANKS = (8, 16, 32, 64)


def scale_values(X, how):
    """CSR ``X`` with every stored value put through ``input_scaling``
    ``how`` (a new matrix sharing X's indices, unless ``how`` is "raw")."""
    if how == "raw":
        return X
    if how == "binary":
        data = np.ones_like(X.data)
    elif how == "log1p":
        data = np.log1p(X.data)
    else:
        raise ValueError(f"input_scaling must be one of 'auto', "
                         f"{', '.join(repr(s) for s in INPUT_SCALINGS)}, got {how!r}")
    return sp.csr_matrix((data, X.indices, X.indptr), shape=X.shape)


def spectral_start(X, ranks, shrinks, n, seed):
    """The item factors of ``init="svd"``, with the rank, the shrinkage
    and the logit scale chosen on a carve of the users.

    A carve of the users with two items or more (SVD_CARVE_SHARE, at most
    SVD_CARVE_MAX) enters the SVD without a seeded 20% of each row's
    items; those are the targets NDCG@n of the filtered projection scores
    x V_k diag(f) V_k^T is measured on, for every rank k in ``ranks`` and
    every shrinkage a in ``shrinks`` (f_j = s_j^2 / (s_j^2 + a m), m the
    mean squared norm of X's columns: a low-rank ridge regression of the
    items on themselves), and the softmax temperature of the best pair's
    logits is fitted to them.

    Parameters
    ----------
    X : scipy.sparse.csr_matrix of shape (n_users, n_items)
        Interactions.
    ranks : list of int
        Ascending ranks to choose from.
    shrinks : list of float
        Shrinkages to choose from, in units of the mean squared column norm.
    n : int
        Cut-off of the NDCG the choices are compared by.
    seed : int
        Seeds the carve, its held-out items and the randomized SVD.

    Returns
    -------
    V : ndarray of float32 of shape (n_items, rank)
        Orthonormal item factors (zero columns past the data's rank).
    f : ndarray of float32 of shape (rank,)
        The filter, in (0, 1].
    choice : dict
        ``rank``, ``shrinkage`` and ``scale`` (c in c x V diag(f) V^T).
    scores : dict or None
        Carve NDCG@n by (rank, shrinkage) (None without a carve).
    """
    rng = np.random.RandomState(seed % 2**32)
    X = sp.csr_matrix(X, dtype=np.float32)
    eligible = rng.permutation(np.flatnonzero(np.diff(X.indptr) >= 2))
    n_carve = min(SVD_CARVE_MAX, int(SVD_CARVE_SHARE * eligible.size),
                  SVD_CARVE_MACS // (X.shape[1] * max(ranks) * len(shrinks)))
    if n_carve < SVD_CARVE_MIN:
        V, sv = _item_factors(X, max(ranks), rng)
        return V, _filter(sv, shrinks[0], _unit(X)), \
            {"rank": max(ranks), "shrinkage": shrinks[0], "scale": SVD_LOGIT_SCALE}, None
    # small data: several disjoint carves (up to SVD_CARVE_MAX users in all),
    # so that the choice does not rest on a few dozen users
    folds = int(np.clip(SVD_CARVE_MAX // n_carve, 1, SVD_FOLDS))
    scores, first = {}, None
    for fold in range(folds):
        carve = np.sort(eligible[fold * n_carve:(fold + 1) * n_carve])
        X_in, Y = _hold_out(X[carve], SCORE_HOLDOUT, rng)
        keep = np.ones(X.shape[0], dtype=bool)
        keep[carve] = False
        fit_rows = sp.vstack([X[keep], X_in], format="csr")
        unit = _unit(fit_rows)
        V, sv = _item_factors(fit_rows, max(ranks), rng)
        del fit_rows
        X_in = normalize(X_in)
        got = _carve_ndcg(X_in, Y, V, {a: _filter(sv, a, unit) for a in shrinks}, ranks, n)
        for key, value in got.items():
            scores[key] = scores.get(key, 0.0) + value / folds
        if first is None:
            first = V, sv, unit, X_in, Y
    V, sv, unit, X_in, Y = first  # the model: the first fold's factors
    # ties: the smaller rank, then the smaller shrinkage
    rank, a = max(scores, key=lambda key: (scores[key], -key[0], -key[1]))
    V = np.ascontiguousarray(V[:, :rank])
    f = _filter(sv, a, unit)[:rank]
    head = max(1, _SCORE_BLOCK // V.shape[0])  # 20 Newton steps over these logits
    logits = (np.asarray(X_in[:head] @ V) * f) @ V.T
    return V, f, {"rank": rank, "shrinkage": a, "scale": fit_temperature(logits, Y[:head])}, \
        scores


def _scaling_starts(X, scalings, ranks, n, seed):
    """``spectral_start`` of X through each of ``scalings``: the carve's
    best NDCG@n of each (None where there are too few users to carve; then
    only the first is tried) and the best one's start (earlier scalings win
    ties). The carve's users, held-out items and random start are the same
    for each (none depends on the values): a paired comparison. Only the
    best start so far is kept, as ``max_memory`` counts one set of factors."""
    scores, best = {}, None
    for how in scalings:
        start = spectral_start(scale_values(X, how), ranks, list(SVD_SHRINKAGES), n, seed)
        scores[how] = None if start[3] is None else max(start[3].values())
        if best is None or (scores[how] is not None and scores[how] > scores[best[0]]):
            best = how, start
        del start
        if scores[how] is None:
            break
    return scores, best[1]


def regression_carve(X, Y, scalings, n, seed, exclude):
    """``input_scaling="auto"`` for ``fit(X, Y)``: carve NDCG@n of a
    low-rank ridge regression of the targets on each scaling's unit rows.

    A seeded carve of the rows with targets (SVD_CARVE_SHARE, at most
    SVD_CARVE_MAX) is held out; on the other rows Z = U S V^T (the
    scaled, L2-normalised inputs, rank max(SCALING_RANKS)) and a carve
    row x scores the items x V diag(s / (s^2 + a m)) U^T Y, for each rank
    in SCALING_RANKS and shrinkage a in SVD_SHRINKAGES (m as in
    ``spectral_start``); each scaling scores the best of them.

    Returns
    -------
    scores : dict
        NDCG@n by scaling, in the order of ``scalings``; None for every one
        when there are too few rows to carve.
    """
    rng = np.random.RandomState(seed % 2**32)
    eligible = rng.permutation(np.flatnonzero(np.diff(Y.indptr) >= 1))
    n_carve = min(SVD_CARVE_MAX, int(SVD_CARVE_SHARE * eligible.size),
                  SVD_CARVE_MACS // (Y.shape[1] * max(SCALING_RANKS) * len(SVD_SHRINKAGES)))
    if n_carve < SVD_CARVE_MIN:
        return {how: None for how in scalings}
    carve = np.sort(eligible[:n_carve])
    keep = np.ones(X.shape[0], dtype=bool)
    keep[carve] = False
    X = sp.csr_matrix(X, dtype=np.float32)
    Y_fit = sp.csr_matrix(Y[keep], dtype=np.float32)
    scores = {}
    for how in scalings:
        Z = normalize(scale_values(X[keep], how))
        rank = max(1, min(max(SCALING_RANKS), *Z.shape))
        ranks = [r for r in SCALING_RANKS if r < rank] + [rank]
        # the same random start for every scaling: a paired comparison
        U, sv, _ = _top_svd(Z, rank, np.random.RandomState(seed % 2**32))
        U = U.astype(np.float32)
        V = np.asarray(Z.T @ U)  # V S: the right factors times their values
        unit = _unit(Z)
        power = sv.astype(np.float64) ** 2
        # x V diag(s / (s^2 + a m)) = x (V S) diag(1 / (s^2 + a m))
        filters = {a: np.where(power > 0, 1.0 / np.maximum(power + a * unit, 1e-30),
                               0.0).astype(np.float32) for a in SVD_SHRINKAGES}
        W = np.asarray(Y_fit.T @ U, dtype=np.float32)  # items x rank: (U^T Y)^T
        got = _carve_ndcg(normalize(scale_values(X[carve], how)), Y[carve],
                          V.astype(np.float32), filters, ranks, n, W=W, exclude=exclude)
        scores[how] = max(got.values())
    return scores


def _unit(X):
    """The mean squared norm of X's columns, the unit of the shrinkages."""
    return max(float(np.dot(X.data, X.data)) / X.shape[1], float(np.finfo(np.float32).tiny))


def _filter(sv, shrinkage, unit):
    """s^2 / (s^2 + shrinkage * unit) per singular value s (0 where s is)."""
    power = sv.astype(np.float64) ** 2
    return np.where(power > 0, power / np.maximum(power + shrinkage * unit, 1e-30),
                    0.0).astype(np.float32)


def _top_svd(X, k, rng):
    """The top ``k`` singular triplets (U, s, V^T) of sparse X."""
    if min(X.shape) <= k + 10:
        # too small for the randomized range finder's oversampling
        U, sv, Vt = np.linalg.svd(X.toarray(), full_matrices=False)
        return U[:, :k], sv[:k], Vt[:k]
    return randomized_svd(X, k, n_iter=SVD_ITERATIONS, random_state=rng)


def _item_factors(X, rank, rng):
    """The top ``rank`` right singular vectors of X as columns and their
    singular values, zero past the data's rank."""
    k = min(rank, *X.shape)
    _, sv, Vt = _top_svd(X, k, rng)
    V = np.zeros((X.shape[1], rank), dtype=np.float32)
    V[:, :k] = Vt.T
    values = np.zeros(rank, dtype=np.float32)
    values[:k] = sv
    return V, values


def _carve_ndcg(X_in, Y, V, filters, ranks, n, W=None, exclude=True):
    """NDCG@n of x V_k diag(f) W_k^T (W = V unless given; input items left
    out when ``exclude``) for each rank k in ``ranks`` and filter f in
    ``filters`` (by shrinkage); each score matrix grows rank block by rank
    block, rows a block at a time."""
    W = V if W is None else W
    n_items = W.shape[0]
    step = max(1, _SCORE_BLOCK // n_items)
    ids = {(k, a): [] for k in ranks for a in filters}
    for lo in range(0, X_in.shape[0], step):
        x = X_in[lo:lo + step]
        U = np.asarray(x @ V)
        seen = x.nonzero()
        for a, f in filters.items():
            # the input items start at -inf and stay there as blocks add on
            S = np.zeros((x.shape[0], n_items), dtype=np.float32)
            if exclude:
                S[seen] = -np.inf
            done = 0
            for k in ranks:
                S += (U[:, done:k] * f[done:k]) @ W[:, done:k].T
                done = k
                top = np.argpartition(-S, n - 1, axis=1)[:, :n]
                order = np.argsort(-np.take_along_axis(S, top, axis=1), axis=1, kind="stable")
                ids[k, a].append(np.take_along_axis(top, order, axis=1))
    return {key: float(ndcg_at_k(Y, np.vstack(parts), k=n)) for key, parts in ids.items()}


def write_spectral(network, V, f, scale, seen, n_threads):
    """Set a one-hidden-layer network to logits ``scale * x V diag(f) V^T``.

    Hidden unit j is f_j (V^T x)_j + 1, never below zero for a unit-length
    x (|(V^T x)_j| <= ||x|| = 1 as V's columns are orthonormal, and
    0 <= f_j <= 1), so the ReLU passes it whole; the output biases
    -scale V 1 take the ones back out. Items no row holds (``seen``
    False) score -inf; the hash tables are built from the new output rows.
    """
    V = np.ascontiguousarray(V, dtype=np.float32)
    network.set_params(0, np.ascontiguousarray(V * np.asarray(f, dtype=np.float32)),
                       np.ones(V.shape[1], dtype=np.float32))
    scale = np.float32(scale)
    network.set_params(1, scale * V, -scale * V.sum(axis=1, dtype=np.float32))
    network.set_seen(seen)
    if network.sparse_output:
        network.rebuild_tables(True, n_threads)


def _svd_bytes(n_users, n_items, nnz, rank, network_bytes):
    """Bytes ``init="svd"`` adds to the network's peak: its item factors,
    and whatever the randomized SVD's working arrays (a float32 copy of X,
    the range finder's users x (rank + 10) and items x (rank + 10)
    matrices, the small SVD's factors and workspace; the carve's score
    blocks) take beyond the network, which is created after them."""
    q = rank + 10
    # the first carve's factors stay while the later carves' SVDs run
    working = (8 * nnz + 8 * n_users + q * (28 * n_items + 12 * n_users) + 16 * _SCORE_BLOCK
               + 4 * n_items * rank)
    return max(0, working - network_bytes) + 4 * n_items * rank
