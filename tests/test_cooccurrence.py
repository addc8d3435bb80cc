"""Co-occurrence of BoltSequentialRecommender: the counts against loops,
the history distribution, the blend's ranking, and the estimator's "auto"
weight on a successor table the network's hidden layer is too narrow for."""
import pickle

import numpy as np
import pytest
import scipy.sparse as sp

from skbolt import BoltSequentialRecommender, _sequential_auto
from skbolt import _cooccurrence as co


def random_sequences(n_users=30, n_items=12, seed=0):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(0, 9, n_users)
    items = rng.integers(0, n_items, lengths.sum())
    return items, np.r_[0, np.cumsum(lengths)], n_items


def loop_cooccurrence(items, starts, n_items, window):
    C = np.zeros((n_items, n_items))
    for u in range(len(starts) - 1):
        s = items[starts[u]:starts[u + 1]]
        for i in range(len(s)):
            for j in range(i + 1, min(len(s), i + window + 1)):
                C[s[i], s[j]] += 1
                C[s[j], s[i]] += 1
    np.fill_diagonal(C, 0)
    count = np.maximum(np.bincount(items, minlength=n_items), 1)
    return C / np.sqrt(np.outer(count, count))


@pytest.mark.parametrize("window", [1, 2, 5])
def test_counts_match_a_loop(window):
    items, starts, n = random_sequences()
    got = co.cooccurrence(items, starts, n, window=window, max_neighbors=n).toarray()
    np.testing.assert_allclose(got, loop_cooccurrence(items, starts, n, window), rtol=1e-6)


def test_chunks_add_up_to_one_pass(monkeypatch):
    items, starts, n = random_sequences(n_users=80, seed=1)
    whole = co.cooccurrence(items, starts, n, window=3, max_neighbors=n).toarray()
    # pairs that straddle a chunk boundary are counted from the chunk of
    # their first event; nothing is pruned while rows hold few neighbours
    monkeypatch.setattr(co, "CHUNK_EVENTS", 7)
    chunked = co.cooccurrence(items, starts, n, window=3, max_neighbors=n).toarray()
    np.testing.assert_allclose(chunked, whole, rtol=1e-6)


def test_keeps_the_largest_neighbours_per_row():
    items, starts, n = random_sequences(n_users=60, n_items=15, seed=2)
    full = loop_cooccurrence(items, starts, n, 4)
    got = co.cooccurrence(items, starts, n, window=4, max_neighbors=3).toarray()
    for row_full, row_got in zip(full, got):
        kept = np.flatnonzero(row_got)
        assert kept.size == min(3, np.count_nonzero(row_full))
        np.testing.assert_allclose(row_got[kept], row_full[kept], rtol=1e-6)
        # nothing dropped is larger than what was kept
        if kept.size:
            dropped = np.setdiff1d(np.flatnonzero(row_full), kept)
            assert (row_full[dropped] <= row_got[kept].min() * (1 + 1e-6)).all()


def test_without_last_drops_each_users_last_event():
    items, starts, _ = random_sequences(seed=3)
    got_items, got_starts = co.without_last(items, starts)
    want = [items[a:b][:-1] for a, b in zip(starts[:-1], starts[1:])]
    assert [got_items[a:b].tolist() for a, b in zip(got_starts[:-1], got_starts[1:])] == \
        [w.tolist() for w in want]


def test_history_distribution_reads_the_decayed_last_items():
    items, starts, n = random_sequences(seed=4)
    C = co.cooccurrence(items, starts, n, max_neighbors=n)
    users = np.flatnonzero(np.diff(starts) > 0)
    ends = starts[users + 1]
    P = co.history_distribution(C, items, ends, ends - starts[users]).toarray()
    Cd = C.toarray()
    for row, u in zip(P, users):
        last = items[starts[u]:starts[u + 1]][::-1][:co.N_LAST]
        want = sum(co.LAST_DECAY ** j * Cd[i] for j, i in enumerate(last))
        want = want / want.sum() if want.sum() > 0 else want
        np.testing.assert_allclose(row, want, rtol=1e-5, atol=1e-7)


def test_blend_is_a_product_of_experts():
    rng = np.random.default_rng(5)
    log_p = np.log(rng.dirichlet(np.ones(8), 3))
    P = sp.csr_matrix(np.array([[0, 0.5, 0.5, 0, 0, 0, 0, 0], [0] * 8, [1.0] + [0] * 7]))
    np.testing.assert_array_equal(co.blend(log_p, P, 0.0, 8), log_p)
    got = co.blend(log_p, P, 2.0, 8)
    np.testing.assert_allclose(got, log_p + 2.0 * np.log(P.toarray() + 1 / 8) - 2.0 * np.log(1 / 8))
    # a row without co-occurrence keeps the network's order
    assert (np.argsort(got[1]) == np.argsort(log_p[1])).all()


def successor_log(n_users=600, n_items=300, length=12, seed=0):
    """Each step follows a fixed successor table (a random permutation of
    300 items) 80 % of the time: a full-rank map that a hidden layer of 16
    units cannot hold."""
    rng = np.random.default_rng(seed)
    succ = rng.permutation(n_items)
    seqs = np.empty((n_users, length), dtype=np.int64)
    seqs[:, 0] = rng.integers(0, n_items, n_users)
    for t in range(1, length):
        follow = rng.random(n_users) < 0.8
        seqs[:, t] = np.where(follow, succ[seqs[:, t - 1]], rng.integers(0, n_items, n_users))
    users = np.repeat(np.arange(n_users), length)
    times = np.tile(np.arange(length, dtype=float), n_users)
    return users, seqs.ravel(), times, succ


NARROW = dict(decay=0.9, last_items=1, hidden_layer_sizes=(16,), max_iter=3, random_state=0,
              n_jobs=1)


@pytest.fixture(scope="module")
def fitted():
    users, items, times, succ = successor_log()
    auto = BoltSequentialRecommender(**NARROW).fit(users, items, times)
    alone = BoltSequentialRecommender(cooccurrence_weight=0.0, **NARROW).fit(users, items, times)
    return auto, alone, users, items, succ


def successor_hits(rec, users, items, succ):
    ids, _ = rec.recommend(np.unique(users), n=1)
    last = items.reshape(np.unique(users).size, -1)[:, -1]
    return float((ids[:, 0] == succ[last]).mean())


def test_auto_weight_measures_and_recovers_the_successor_table(fitted):
    auto, alone, users, items, succ = fitted
    assert alone.cooccurrence_weight_ == 0.0 and alone.cooccurrence_scores_ is None
    assert set(auto.cooccurrence_scores_) == set(_sequential_auto.AUTO_WEIGHTS)
    assert auto.cooccurrence_scores_[auto.cooccurrence_weight_] == max(
        auto.cooccurrence_scores_.values())
    assert auto.cooccurrence_weight_ > 0
    # the successor is ranked first for most users once co-occurrence is in
    # (some successors were seen already and are excluded); 16 units alone
    # cannot rank it
    assert successor_hits(auto, users, items, succ) > 0.5
    assert successor_hits(alone, users, items, succ) < 0.3


def test_scores_are_the_product_of_network_and_cooccurrence(fitted):
    auto, _, users, items, _ = fitted
    net_only = pickle.loads(pickle.dumps(auto))
    net_only._cooccurrence = None
    n, w = auto.n_items_, auto.cooccurrence_weight_
    C = auto._cooccurrence.toarray()
    ids, scores = auto.recommend([0, 1, 2], n=20)
    every, p = net_only.recommend([0, 1, 2], n=n)
    for r, u in enumerate([0, 1, 2]):
        last = np.searchsorted(auto.item_ids_, items[users == u][::-1][:co.N_LAST])
        P = sum(co.LAST_DECAY ** j * C[i] for j, i in enumerate(last))
        P = P / P.sum()
        ok = np.array([i is not None for i in every[r]])
        codes = np.searchsorted(auto.item_ids_, every[r][ok].astype(np.int64))
        product = dict(zip(every[r][ok].tolist(), p[r][ok] * (1 + n * P[codes]) ** w))
        np.testing.assert_allclose(scores[r], [product[i] for i in ids[r].tolist()], rtol=1e-4)
        # the 20 largest products, best first
        np.testing.assert_allclose(scores[r], np.sort(list(product.values()))[::-1][:20],
                                   rtol=1e-4)


def test_fold_in_and_pickle_keep_the_blend(fitted):
    auto, _, users, items, _ = fitted
    hist = [items[users == u] for u in (3, 4)]
    a, sa = auto.recommend([3, 4], n=5)
    b, sb = auto.recommend_history(hist, n=5)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(sa, sb, rtol=1e-5)
    again = pickle.loads(pickle.dumps(auto))
    np.testing.assert_array_equal(again.recommend([3, 4], n=5)[0], a)


def test_sampled_output_layer_takes_the_blend():
    # past DENSE_ITEMS the output layer is sampled: the blend reranks the
    # retrieved items plus the co-occurring ones
    users, items, times, _ = successor_log(n_users=700, n_items=2500, length=6, seed=1)
    rec = BoltSequentialRecommender(cooccurrence_weight=1000.0, output_sparsity=0.05,
                                    **NARROW).fit(users, items, times)
    assert rec._network.sparse_output
    u = np.unique(users)[:50]
    ids, scores = rec.recommend(u, n=5)
    C = rec._cooccurrence.toarray()
    for r, x in enumerate(u):
        hist = np.searchsorted(rec.item_ids_, items[users == x])
        P = sum(co.LAST_DECAY ** j * C[i] for j, i in enumerate(hist[::-1][:co.N_LAST]))
        P[hist] = -1
        top = np.searchsorted(rec.item_ids_, ids[r, 0])
        # an overwhelming weight: the top item co-occurs most with the
        # user's last items among the unseen (ties aside), and nothing seen
        # is returned
        assert P[top] == pytest.approx(P.max(), rel=1e-4)
        assert not set(np.searchsorted(rec.item_ids_, ids[r])) & set(hist)
    # the products overflow float32 at this weight; the order holds
    assert not np.isnan(scores).any()


def test_estimate_memory_counts_the_counting():
    auto = BoltSequentialRecommender().estimate_memory(1_000_000, 10_000, 5_000)
    off = BoltSequentialRecommender(cooccurrence_weight=0).estimate_memory(1_000_000, 10_000,
                                                                           5_000)
    assert auto["cooccurrence"] > 0 and "cooccurrence" not in off
    assert auto["total"] - off["total"] == auto["cooccurrence"]


def loop_blend_retrieved(ids, s, P, weight, seen, n_items):
    """Row by row: retrieved items at their probability, every other unseen
    item P names at the row's lowest retrieved one; the k best products."""
    k = ids.shape[1]
    out_ids, out_s = np.full(ids.shape, -1), np.full(ids.shape, np.nan)
    P, seen = P.toarray(), seen.toarray()
    for r in range(ids.shape[0]):
        got = ids[r][ids[r] >= 0]
        p = dict(zip(got.tolist(), s[r][ids[r] >= 0]))
        floor = min(p.values())
        for j in np.flatnonzero(P[r]):
            if j not in p and not seen[r, j]:
                p[j] = floor
        prod = sorted(((v * (1 + n_items * P[r, j]) ** weight, j) for j, v in p.items()),
                      reverse=True)[:k]
        out_ids[r, :len(prod)] = [j for _, j in prod]
        out_s[r, :len(prod)] = [v for v, _ in prod]
    return out_ids, out_s


def test_sampled_rerank_matches_a_loop():
    from skbolt._topn import _blend_retrieved

    rng = np.random.default_rng(9)
    m, k, n = 40, 6, 60
    ids = np.array([rng.choice(n, k, replace=False) for _ in range(m)])
    ids[rng.random((m, k)) < 0.2] = -1           # excluded or not retrieved
    s = np.where(ids >= 0, rng.random((m, k)) * 0.1 + 1e-3, np.nan)
    P = sp.random(m, n, density=0.1, random_state=1, format="csr")
    P = sp.diags(1 / np.maximum(np.asarray(P.sum(axis=1)).ravel(), 1e-12)) @ P
    seen = sp.random(m, n, density=0.1, random_state=2, format="csr")
    seen.data[:] = 1
    got_ids, got_s = _blend_retrieved(ids, s, P.tocsr(), 1.5, seen, n)
    want_ids, want_s = loop_blend_retrieved(ids, s, P, 1.5, seen, n)
    np.testing.assert_allclose(got_s, want_s, rtol=1e-6)
    # ids agree wherever the products are not tied
    np.testing.assert_array_equal(got_ids[:, 0], want_ids[:, 0])


def test_a_large_weight_keeps_finite_scores_in_the_blend_s_order(fitted):
    auto = fitted[0]
    heavy = pickle.loads(pickle.dumps(auto))
    # (1 + n_items P) ** 200 passes float32's (and float64's) largest value
    heavy.cooccurrence_weight_ = 200.0
    ids, scores = heavy.recommend([0, 1, 2], n=10)
    assert np.all(np.isfinite(scores)) and np.all(np.diff(scores, axis=1) <= 0)
    # the same items as a weight large enough to rank by co-occurrence first
    # without overflowing: the order comes from the logs, not the scores
    ref = pickle.loads(pickle.dumps(auto))
    ref.cooccurrence_weight_ = 60.0
    np.testing.assert_array_equal(ids[:, :3], ref.recommend([0, 1, 2], n=10)[0][:, :3])


def test_output_layer_is_dense_up_to_dense_items(monkeypatch):
    from skbolt import sequential

    # 500 items: sampled by the classifier's rule (bolt_output_sparsity)
    users, items, times, _ = successor_log(n_users=400, n_items=500, length=6, seed=2)
    n = np.unique(items).size
    monkeypatch.setattr(sequential, "DENSE_ITEMS", n)
    rec = BoltSequentialRecommender(cooccurrence_weight=0.0, **NARROW).fit(users, items, times)
    assert rec.n_items_ == n and rec.output_sparsity_ == 1.0
    assert not rec._network.sparse_output
    monkeypatch.setattr(sequential, "DENSE_ITEMS", n - 1)
    rec = BoltSequentialRecommender(cooccurrence_weight=0.0, **NARROW).fit(users, items, times)
    assert rec.output_sparsity_ < 1.0 and rec._network.sparse_output
