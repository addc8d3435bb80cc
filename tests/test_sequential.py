"""BoltSequentialRecommender: planted next items, time and tie order, ids,
exclusion, catalogue, errors, sklearn conventions and its score."""
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, GroupKFold

from skbolt import BoltSequentialRecommender
from skbolt.sequential import time_order

N_ITEMS = 40


def planted_log(n_users=400, pairs=3, seed=0):
    """Each user: ``pairs`` (r, r + 1) pairs of random items r, then one
    more random item r_last, so the next item is r_last + 1 (mod N_ITEMS).
    The set of a user's items does not say which one came last; the order
    does."""
    rng = np.random.default_rng(seed)
    r = rng.integers(0, N_ITEMS, (n_users, pairs + 1))
    seq = np.concatenate([np.stack([r[:, :pairs], (r[:, :pairs] + 1) % N_ITEMS], axis=2)
                          .reshape(n_users, 2 * pairs), r[:, pairs:]], axis=1)
    users = np.repeat(np.arange(n_users), seq.shape[1])
    times = np.tile(np.arange(seq.shape[1], dtype=float), n_users)
    return users, seq.ravel(), times, (r[:, pairs] + 1) % N_ITEMS


# one thread: OpenMP threads on a busy shared machine slowed these small
# fits sevenfold; the network alone (co-occurrence has its own tests in
# test_cooccurrence.py)
FAST = dict(hidden_layer_sizes=(64,), max_iter=30, random_state=0, n_jobs=1,
            cooccurrence_weight=0.0)


@pytest.fixture(scope="module")
def planted():
    users, items, times, nxt = planted_log()
    rec = BoltSequentialRecommender(decay=0.9, last_items=1, **FAST).fit(users, items, times)
    return rec, users, items, times, nxt


def top1_hits(rec, users, items, nxt):
    ids, _ = rec.recommend(np.unique(users), n=1)
    seen = [set(items[users == u]) for u in np.unique(users)]
    fresh = np.array([n not in s for n, s in zip(nxt, seen)])
    return float((ids[fresh, 0] == nxt[fresh]).mean())


def test_recovers_planted_next_item_where_order_free_input_cannot(planted):
    rec, users, items, times, nxt = planted
    assert top1_hits(rec, users, items, nxt) > 0.9
    # the same items as a set (no decay, no last-item block): chance level
    # among a user's 4 candidate successors at best
    flat = BoltSequentialRecommender(decay=1.0, last_items=0, **FAST).fit(users, items, times)
    assert top1_hits(flat, users, items, nxt) < 0.6


def test_default_contract_finds_planted_next_item():
    users, items, times, nxt = planted_log(seed=1)
    rec = BoltSequentialRecommender(random_state=0, n_jobs=1).fit(users, items, times)
    assert top1_hits(rec, users, items, nxt) > 0.8
    assert rec.decay_ > 0 and rec.last_items_ >= 0 and rec.window_ >= 1
    assert rec.encoding_scores_ is not None and len(rec.encoding_scores_) > 1


def test_auto_encoding_with_users_too_short_to_validate():
    # users with 2 events have no validation position: the "auto" choice
    # scores the others only
    users, items, times, _ = planted_log(n_users=120, seed=6)
    users = np.r_[users, 500, 500, 501, 501]
    items = np.r_[items, 1, 2, 3, 4]
    times = np.r_[times, 0.0, 1.0, 0.0, 1.0]
    rec = BoltSequentialRecommender(hidden_layer_sizes=(16,), max_iter=2, random_state=0,
                                    n_jobs=1).fit(users, items, times)
    assert len(rec.encoding_scores_) > 1
    assert rec.recommend([500], n=3)[0].shape == (1, 3)


def test_time_order_not_input_order(planted):
    rec, users, items, times, _ = planted
    perm = np.random.default_rng(3).permutation(users.size)
    other = BoltSequentialRecommender(decay=0.9, last_items=1, **FAST).fit(
        users[perm], items[perm], times[perm])
    a, _ = rec.recommend([0, 1, 2, 3], n=5)
    b, _ = other.recommend([0, 1, 2, 3], n=5)
    np.testing.assert_array_equal(a, b)


def test_ties_broken_by_a_fixed_key_not_item_id():
    rng = np.random.default_rng(0)
    users = np.repeat(np.arange(50), 20)
    items = np.tile(np.arange(20), 50)
    times = np.zeros(users.size)  # every event of a user at one time
    order = time_order(users, items, times)
    perm = rng.permutation(users.size)
    again = time_order(users[perm], items[perm], times[perm])
    # the same (user, item) order whatever the input order
    np.testing.assert_array_equal(users[order] * 100 + items[order],
                                  users[perm][again] * 100 + items[perm][again])
    per_user = (items[order]).reshape(-1)
    by_user = [per_user[users[order] == u] for u in range(50)]
    ascending = sum(np.all(np.diff(s) > 0) for s in by_user)
    assert ascending == 0
    # not the same permutation for every user either
    assert len({tuple(s) for s in by_user}) > 40
    # a later time still comes later than any key
    times2 = times.copy()
    times2[items == 0] = 1.0
    o2 = time_order(users, items, times2)
    o2 = o2[np.argsort(users[o2], kind="stable")]  # each user's events, in time order
    last = np.r_[users[o2][1:] != users[o2][:-1], True]
    assert np.all(items[o2][last] == 0)


def test_string_ids_round_trip():
    users, items, times, nxt = planted_log(n_users=300, seed=2)
    su = np.array([f"user-{u}" for u in users])
    si = np.array([f"item-{i:03d}" for i in items])
    rec = BoltSequentialRecommender(decay=0.9, last_items=1, **FAST).fit(su, si, times)
    assert set(rec.item_ids_) == set(si)
    ids, scores = rec.recommend(np.unique(su)[:50], n=3)
    assert ids.shape == (50, 3) and all(isinstance(v, str) for v in ids.ravel())
    expected = np.array([f"item-{v:03d}" for v in nxt])[np.argsort(np.unique(
        users).astype(str))][:50]
    assert np.mean(ids[:, 0] == expected) > 0.8
    assert np.all(np.diff(scores, axis=1) <= 0)


def test_seen_items_excluded_and_n_past_catalogue(planted):
    rec, users, items, times, _ = planted
    ids, scores = rec.recommend(np.arange(20), n=3 * N_ITEMS)
    assert ids.shape == (20, N_ITEMS)
    for r, u in enumerate(range(20)):
        seen = set(items[users == u])
        got = [v for v in ids[r] if v is not None]
        assert not seen & set(got)
        assert len(got) == N_ITEMS - len(seen)
        assert np.isnan(scores[r, len(got):]).all()
    kept = clone(rec).set_params(exclude_seen=False).fit(users, items, times)
    ids2, _ = kept.recommend([0], n=N_ITEMS)
    assert sorted(ids2[0].tolist()) == list(range(N_ITEMS))


def test_catalogue_holds_items_never_a_target():
    users, items, times, _ = planted_log(n_users=200, seed=4)
    # item 99 only ever opens a sequence: never a next item
    users = np.r_[users, 1000, 1000]
    items = np.r_[items, 99, 5]
    times = np.r_[times, 0.0, 1.0]
    rec = BoltSequentialRecommender(decay=0.9, last_items=1, **FAST).fit(users, items, times)
    assert 99 in rec.item_ids_ and rec.n_items_ == N_ITEMS + 1
    # an input item: fold-in reads it, and it can be recommended
    ids, _ = rec.recommend_history([[99]], n=rec.n_items_)
    assert 99 not in ids[0].tolist()
    ids, _ = rec.recommend_history([[5]], n=rec.n_items_)
    assert 99 in ids[0].tolist()


def test_fold_in_matches_seen_users_and_ignores_unknown_items(planted):
    rec, users, items, _, _ = planted
    hist = [items[users == u] for u in range(5)]
    a, sa = rec.recommend(np.arange(5), n=5)
    b, sb = rec.recommend_history(hist, n=5)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(sa, sb, rtol=1e-6)
    c, _ = rec.recommend_history([np.r_[hist[0][:-1], 12345, hist[0][-1]]], n=5)
    np.testing.assert_array_equal(c[0], a[0])
    empty, s = rec.recommend_history([[]], n=5)
    assert empty.shape == (1, 5) and np.isfinite(s).all()


@pytest.mark.parametrize("kwargs, match", [
    (dict(timestamps=[0.0, np.nan, 2.0]), "NaN"),
    (dict(timestamps=[0.0, 1.0]), "one number per event"),
    (dict(items=[1, 2]), "one entry per interaction"),
    (dict(timestamps=["a", "b", "c"]), "numbers"),
    (dict(weights=[1.0, -1.0, 1.0]), "negative"),
])
def test_bad_logs(kwargs, match):
    log = dict(users=[0, 0, 1], items=[1, 2, 1], timestamps=[0.0, 1.0, 2.0])
    log.update(kwargs)
    with pytest.raises(ValueError, match=match):
        BoltSequentialRecommender().fit(**log)


def test_logs_without_anything_to_learn():
    with pytest.raises(ValueError, match="no interactions"):
        BoltSequentialRecommender().fit([], [], [])
    with pytest.raises(ValueError, match="at least 2 items"):
        BoltSequentialRecommender().fit([0, 0], [1, 1], [0, 1])
    with pytest.raises(ValueError, match="at least 2 events"):
        BoltSequentialRecommender().fit([0, 1], [1, 2], [0, 1])


@pytest.mark.parametrize("params, match", [
    (dict(decay=0.0), "decay"), (dict(window=0), "window"), (dict(last_items=-1), "last_items"),
    (dict(n_recommendations=0), "n_recommendations"), (dict(exclude_seen="yes"), "exclude_seen"),
    (dict(history_scale=-1.0), "history_scale"),
    (dict(cooccurrence_weight=-1.0), "cooccurrence_weight"),
    (dict(cooccurrence_weight="high"), "cooccurrence_weight"),
])
def test_bad_params(params, match):
    with pytest.raises(ValueError, match=match):
        BoltSequentialRecommender(**params).fit([0, 0, 1, 1], [1, 2, 2, 1], [0, 1, 0, 1])


def test_unknown_user_and_bad_n(planted):
    rec = planted[0]
    with pytest.raises(ValueError, match="recommend_history"):
        rec.recommend([0, 99999])
    with pytest.raises(ValueError, match="positive integer"):
        rec.recommend([0], n=0)


def test_clone_and_params():
    rec = BoltSequentialRecommender(decay=0.8, window=50, last_items=2, random_state=3)
    params = rec.get_params()
    assert params["decay"] == 0.8 and params["window"] == 50 and params["last_items"] == 2
    assert clone(rec).get_params() == params
    users, items, times, _ = planted_log(n_users=100)
    rec.set_params(max_iter=2, hidden_layer_sizes=(16,)).fit(users, items, times)
    assert rec.get_params()["decay"] == 0.8 and rec.decay_ == 0.8 and rec.last_items_ == 2


def ndcg_reference(ranked, targets, k):
    out = []
    for row, t in zip(ranked, targets):
        row = list(row[:k])
        out.append(1.0 / np.log2(row.index(t) + 2) if t in row else 0.0)
    return np.mean(out)


def test_score_is_ndcg_of_the_last_event(planted):
    rec, _, _, _, nxt = planted
    # one held-out next event per user, after everything fit read
    u = np.arange(100)
    ids, _ = rec.recommend(u, n=rec.n_recommendations)
    expected = ndcg_reference(ids.tolist(), nxt[:100].tolist(), rec.n_recommendations)
    got = rec.score(u, nxt[:100], np.full(100, 1e9))
    assert got == pytest.approx(expected)
    assert 0 < got <= 1
    # a target ranked nowhere (an unknown item) scores 0
    assert rec.score([0], [12345], [1e9]) == 0.0


def test_grid_search_over_users_with_an_event_table():
    users, items, times, _ = planted_log(n_users=200, seed=5)
    table = np.column_stack([users, items, times])
    grid = GridSearchCV(BoltSequentialRecommender(last_items=1, **FAST),
                        {"decay": [0.5, 1.0]}, cv=GroupKFold(n_splits=2))
    grid.fit(table, groups=users)
    assert grid.best_params_["decay"] in (0.5, 1.0)
    assert np.isfinite(grid.cv_results_["mean_test_score"]).all()


def test_auto_candidates_train_on_a_sample_of_large_logs(monkeypatch):
    # each "auto" candidate's cheap fit trains on at most AUTO_ROWS
    # positions, drawn from the training positions (never a user's last
    # training event, which scores them); the final fit trains on all
    from skbolt import _sequential_auto

    users, items, times, _ = planted_log(n_users=150, seed=4)
    seen = []
    original = BoltSequentialRecommender._train

    def spy(self, net, plan, enc, seqs, positions, seed, threads):
        seen.append(np.array(positions))
        return original(self, net, plan, enc, seqs, positions, seed, threads)

    monkeypatch.setattr(BoltSequentialRecommender, "_train", spy)
    params = dict(hidden_layer_sizes=(16,), max_iter=2, random_state=0, n_jobs=1,
                  cooccurrence_weight=0.0)
    BoltSequentialRecommender(**params).fit(users, items, times)
    every, full = seen[0], seen[-1]
    assert len(seen) == len(_sequential_auto.AUTO_CANDIDATES) + 1
    assert every.size < full.size  # the candidates leave each user's last event out
    seen.clear()
    monkeypatch.setattr(_sequential_auto, "AUTO_ROWS", 300)
    BoltSequentialRecommender(**params).fit(users, items, times)
    *cands, final = seen
    for positions in cands:
        assert positions.size == 300
        assert np.isin(positions, every).all() and np.unique(positions).size == 300
    np.testing.assert_array_equal(final, full)
