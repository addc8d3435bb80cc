"""BoltRecommender: recommendations against independent references (loops
over rows, numpy popularity rankings), the exclusion and edge-case
contract, similar items on planted groups, and the sklearn round trips."""
import pickle

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV

from skbolt import BoltRecommender
from skbolt.datasets import hold_out_items, make_interactions, split_users
from skbolt.metrics import ndcg_at_k
from skbolt.recommender import _exclude


def _fast(**kw):
    params = dict(hidden_layer_sizes=(64,), max_iter=10, random_state=0, n_jobs=1)
    params.update(kw)
    return BoltRecommender(**params)


@pytest.fixture(scope="module")
def planted():
    b = make_interactions(1500, 300, n_groups=10, random_state=0)
    s = split_users(b.X, test_size=0.2, random_state=0)
    return b, s, _fast(max_iter=30, hidden_layer_sizes=(128,)).fit(s.train)


def _popularity_ndcg(train, X_in, Y, k=10):
    order = np.argsort(-np.asarray(train.sum(axis=0)).ravel(), kind="stable")
    ranked = []
    for r in range(X_in.shape[0]):
        seen = set(X_in.indices[X_in.indptr[r]:X_in.indptr[r + 1]].tolist())
        ranked.append([j for j in order if j not in seen][:k])
    return ndcg_at_k(Y, np.array(ranked), k=k)


def test_fit_from_interactions_beats_popularity(planted):
    """Planted tastes are learnable: held-out users' NDCG@10 clearly above a
    popularity ranking computed here (measured 0.307 against 0.191)."""
    _, s, rec = planted
    ours = ndcg_at_k(s.test_out, rec.predict(s.test_in), k=10)
    assert ours > _popularity_ndcg(s.train, s.test_in, s.test_out) + 0.06


def test_recommendations_exclude_seen_items_and_are_ranked(planted):
    _, s, rec = planted
    ids, scores = rec.recommend(s.test_in, n=15)
    assert ids.shape == scores.shape == (s.test_in.shape[0], 15)
    for r in range(ids.shape[0]):
        seen = set(s.test_in.indices[s.test_in.indptr[r]:s.test_in.indptr[r + 1]].tolist())
        row = ids[r].tolist()
        assert not seen & set(row)
        assert len(set(row)) == len(row) and min(row) >= 0
        assert np.all(np.diff(scores[r]) <= 1e-7)


def test_without_exclusion_the_ranking_is_the_same_with_seen_items_in_it(planted):
    """Dense output, exact scores: the excluded list is the unexcluded
    ranking with each row's items removed, in order."""
    _, s, rec = planted
    X = s.test_in[:30]
    kept = rec.recommend(X, n=10)[0]
    every = pickle.loads(pickle.dumps(rec)).set_params(exclude_seen=False)
    full = every.recommend(X, n=rec.n_items_)[0]
    assert sorted(full[0].tolist()) == list(range(rec.n_items_))
    for r in range(X.shape[0]):
        seen = set(X.indices[X.indptr[r]:X.indptr[r + 1]].tolist())
        np.testing.assert_array_equal([j for j in full[r] if j not in seen][:10], kept[r])


def test_exclude_moves_seen_and_padding_to_the_end():
    X = sp.csr_matrix(np.array([[1, 0, 1, 0], [0, 0, 0, 0]], dtype=np.float32))
    ids = np.array([[2, 1, 0, -1], [3, 2, -1, -1]])
    scores = np.array([[4, 3, 2, 0], [5, 1, 0, 0]], dtype=np.float32)
    out_ids, out_scores = _exclude(ids, scores, X)
    np.testing.assert_array_equal(out_ids, [[1, -1, -1, -1], [3, 2, -1, -1]])
    np.testing.assert_array_equal(out_scores[0, :1], [3])
    assert np.isnan(out_scores[0, 1:]).all() and np.isnan(out_scores[1, 2:]).all()


def test_edge_rows_and_sizes(planted):
    _, _, rec = planted
    n_items = rec.n_items_
    # all but three items: exactly three valid ids, then -1 / NaN
    row = sp.csr_matrix(np.r_[np.ones(n_items - 3), np.zeros(3)].reshape(1, -1))
    ids, scores = rec.recommend(row, n=10)
    np.testing.assert_array_equal(np.sort(ids[0, :3]), np.arange(n_items - 3, n_items))
    assert (ids[0, 3:] == -1).all() and np.isnan(scores[0, 3:]).all()
    # an empty row and a one-item row get full lists
    rows = sp.csr_matrix(([1.0], ([1], [5])), shape=(2, n_items), dtype=np.float32)
    ids, _ = rec.recommend(rows, n=7)
    assert (ids >= 0).all() and 5 not in ids[1]
    # n beyond the catalogue is capped at it
    assert rec.recommend(rows[:1], n=10 * n_items)[0].shape == (1, n_items)
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="n must be"):
            rec.recommend(rows, n=bad)
    with pytest.raises(ValueError, match="features"):
        rec.predict(sp.csr_matrix((1, n_items + 1)))
    with pytest.raises(ValueError, match="items must be"):
        rec.similar_items([n_items])


@pytest.mark.parametrize("value", [-1.0, np.nan])
def test_negative_or_nan_weights_are_refused(value):
    X = sp.random(50, 20, density=0.3, format="csr", random_state=0)
    X.data[0] = value
    with pytest.raises(ValueError, match="Negative|NaN"):
        _fast(max_iter=1).fit(X)


def test_score_is_ndcg_of_predict_and_holds_out_without_y(planted):
    _, s, rec = planted
    assert rec.score(s.test_in, s.test_out) == pytest.approx(
        ndcg_at_k(s.test_out, rec.predict(s.test_in), k=10))
    X = s.test_in + s.test_out
    X_in, Y = hold_out_items(X, 0.2, random_state=0)
    assert rec.score(X) == pytest.approx(ndcg_at_k(Y, rec.predict(X_in), k=10))


@pytest.mark.parametrize("init", ["centroids", "svd"])
def test_similar_items_recover_planted_groups(init):
    b = make_interactions(1500, 300, n_groups=6, random_state=0)
    X = b.X.tolil()
    X[:, 7] = 0  # an item nobody touched
    X = X.tocsr()
    X.eliminate_zeros()
    rec = (_fast(max_iter=20) if init == "centroids"
           else BoltRecommender(random_state=0, n_jobs=1)).fit(X)
    assert rec.init_ == init
    items = np.setdiff1d(np.arange(300), [7])
    ids, _ = rec.similar_items(items, n=5)
    g = b.item_groups
    same = np.mean(g[ids] == g[items][:, None])
    chance = np.mean(np.bincount(g) / g.size)
    assert same > 3 * chance, (same, chance)
    assert not (ids == items[:, None]).any() and 7 not in ids
    none, s7 = rec.similar_items([7], n=5)
    assert (none == -1).all() and np.isnan(s7).all()


def test_supervised_form_maps_features_to_items():
    """Items determined by a feature: top-1 is right far above chance, and
    without item inputs nothing is excluded."""
    rng = np.random.RandomState(0)
    item = rng.randint(0, 40, size=2000)
    X = sp.csr_matrix((np.ones(2000), (np.arange(2000), item)), shape=(2000, 100))
    for y in (item, sp.csr_matrix((np.ones(2000), (np.arange(2000), item)), shape=(2000, 40))):
        rec = _fast(n_recommendations=1, autotune=False).fit(X, y)
        assert not rec.item_input_ and rec.n_items_ == 40
        assert np.mean(rec.predict(X)[:, 0] == item) > 0.9


def test_same_seed_clone_pickle_and_grid_search(planted):
    _, s, rec = planted
    again = clone(rec).fit(s.train)
    np.testing.assert_array_equal(again.predict(s.test_in), rec.predict(s.test_in))
    loaded = pickle.loads(pickle.dumps(rec))
    np.testing.assert_array_equal(loaded.recommend(s.test_in)[1], rec.recommend(s.test_in)[1])
    grid = GridSearchCV(_fast(max_iter=3), {"hidden_layer_sizes": [(16,), (32,)]}, cv=2)
    grid.fit(s.train[:400])
    assert np.isfinite(grid.best_score_) and grid.best_score_ > 0


def test_estimate_memory_is_what_fit_uses(planted):
    _, s, _ = planted
    est = _fast(max_iter=1).estimate_memory(s.train)
    assert est["total"] == _fast(max_iter=1).fit(s.train).memory_bytes_


# ----------------------------------------------------------------------
# init="svd": the network started from the truncated SVD of X


def _projection(V):
    return V @ V.T


def test_svd_start_is_the_pure_svd_model_computed_by_numpy():
    """Few items (the dense-SVD path) and too few users for a carve: the
    input layer spans the top right singular vectors of X computed here,
    and the network's logits are scale * x V V^T for unit-length rows."""
    b = make_interactions(150, 14, n_groups=3, random_state=1)
    X = b.X
    rec = BoltRecommender(init="svd", hidden_layer_sizes=(4,), random_state=0, n_jobs=1).fit(X)
    assert rec.init_ == "svd" and rec.n_iter_ == 0 and rec.svd_carve_scores_ is None
    V = rec._network.get_params(0)[0].astype(np.float64)
    _, _, Vt = np.linalg.svd(X.toarray().astype(np.float64), full_matrices=False)
    np.testing.assert_allclose(_projection(V), _projection(Vt[:4].T), atol=1e-5)
    x = X.toarray()[:20].astype(np.float64)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    logits = rec._network.predict_scores(rec._inputs(X[:20]), False, 1)
    ratio = logits / (x @ V @ V.T)
    np.testing.assert_allclose(ratio, np.median(ratio), rtol=1e-3)
    assert np.median(ratio) > 0


def test_svd_shrinkage_is_the_low_rank_ridge_filter_computed_by_numpy():
    """Without a carve the first shrinkage is used: direction j weighted
    s_j^2 / (s_j^2 + a m), m the mean squared column norm, all from numpy's
    SVD here; the network's logits are then c x V diag(f) V^T."""
    from skbolt._spectral import spectral_start, write_spectral

    b = make_interactions(120, 15, n_groups=3, random_state=4)
    X = sp.csr_matrix(b.X, dtype=np.float64)
    V, f, choice, scores = spectral_start(X, [5], [10.0], 5, seed=0)
    assert scores is None and choice["rank"] == 5 and choice["shrinkage"] == 10.0
    _, sv, Vt = np.linalg.svd(X.toarray(), full_matrices=False)
    m = (X.toarray() ** 2).sum() / X.shape[1]
    np.testing.assert_allclose(f, sv[:5] ** 2 / (sv[:5] ** 2 + 10.0 * m), rtol=1e-4)
    np.testing.assert_allclose(_projection(V), _projection(Vt[:5].T), atol=1e-5)
    rec = BoltRecommender(init="svd", hidden_layer_sizes=(5,), random_state=0,
                          n_jobs=1).fit(X)
    write_spectral(rec._network, V, f, 2.0, np.ones(15, dtype=bool), 1)
    x = X.toarray()[:10]
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    logits = rec._network.predict_scores(rec._inputs(X[:10]), False, 1)
    np.testing.assert_allclose(logits, 2.0 * (x @ V * f) @ V.T, atol=1e-5)


def test_svd_start_randomized_path_spans_the_top_singular_vectors():
    """The randomized SVD (2 power iterations) on planted data, where the
    top singular values stand apart: its subspace is numpy's within 1e-2."""
    b = make_interactions(400, 120, n_groups=4, random_state=2)
    X = sp.csr_matrix(b.X)
    rec = BoltRecommender(init="svd", hidden_layer_sizes=(4,), random_state=0, n_jobs=1).fit(X)
    W = rec._network.get_params(1)[0].astype(np.float64)  # c V
    c = np.sqrt(np.mean(np.diag(W.T @ W)))
    V = W / c
    np.testing.assert_allclose(V.T @ V, np.eye(4), atol=1e-4)
    # the input layer is V diag(f), 0 < f <= 1
    f = np.linalg.lstsq(V, rec._network.get_params(0)[0].astype(np.float64), rcond=None)[0]
    np.testing.assert_allclose(f, np.diag(np.diag(f)), atol=1e-4)
    assert np.all((np.diag(f) > 0) & (np.diag(f) <= 1 + 1e-6))
    # the SVD saw X without the carve's held-out items (20% of the rows of
    # 40 users, 2% of the entries): numpy's is of all of X, hence 0.1
    _, _, Vt = np.linalg.svd(X.toarray().astype(np.float64), full_matrices=False)
    gap = np.linalg.norm(_projection(V) - _projection(Vt[:4].T), ord=2)
    assert gap < 0.1, gap


def test_svd_carve_chooses_a_rank_near_the_best_on_held_out_users():
    """On 10 planted groups the carve's rank scores on held-out users
    within 0.03 NDCG@10 of the best fixed rank of the grid, fitted here one
    by one (each with its shrinkage chosen on the carve)."""
    b = make_interactions(1500, 300, n_groups=10, random_state=0)
    s = split_users(b.X, test_size=0.2, random_state=0)
    auto = BoltRecommender(random_state=0, n_jobs=1).fit(s.train)
    assert auto.init_ == "svd"
    assert {k for k, _ in auto.svd_carve_scores_} == {8, 16, 32, 64, 128, 256}
    got = ndcg_at_k(s.test_out, auto.predict(s.test_in), k=10)
    fixed = [ndcg_at_k(s.test_out, BoltRecommender(init="svd", hidden_layer_sizes=(k,),
                                                   random_state=0, n_jobs=1)
                       .fit(s.train).predict(s.test_in), k=10)
             for k in (8, 16, 32, 64, 128, 256)]
    assert got >= max(fixed) - 0.03, (got, fixed)
    assert got > _popularity_ndcg(s.train, s.test_in, s.test_out) + 0.06


def test_svd_start_then_training_moves_the_network():
    b = make_interactions(600, 200, n_groups=5, random_state=3)
    start = BoltRecommender(random_state=0, n_jobs=1).fit(b.X)
    trained = BoltRecommender(random_state=0, n_jobs=1, max_iter=3).fit(b.X)
    assert start.max_iter_ == 0 and start.loss_curve_ == []
    assert trained.n_iter_ == 3 and len(trained.loss_curve_) == 3
    assert trained.learning_rate_init_ == 1e-5 and trained.dropout_ == 0.0
    w0, w1 = start._network.get_params(1)[0], trained._network.get_params(1)[0]
    assert w0.shape == w1.shape and not np.array_equal(w0, w1)


def test_svd_init_errors_and_auto_resolution():
    b = make_interactions(300, 100, n_groups=3, random_state=0)
    with pytest.raises(ValueError, match="init must be"):
        BoltRecommender(init="pca").fit(b.X)
    with pytest.raises(ValueError, match="fit\\(X\\) without y"):
        BoltRecommender(init="svd").fit(b.X, b.X)
    with pytest.raises(ValueError, match="one hidden layer"):
        BoltRecommender(init="svd", hidden_layer_sizes=(8, 8)).fit(b.X)
    with pytest.raises(ValueError, match="autotune=True"):
        BoltRecommender(init="svd", autotune=True).fit(b.X)
    assert _fast(max_iter=1).fit(b.X).init_ == "centroids"  # a given width: no rank
    assert BoltRecommender(max_iter=1).fit(b.X, b.X).init_ == "centroids"


def test_svd_estimate_memory_bounds_the_fit():
    b = make_interactions(2000, 3000, n_groups=20, random_state=0)
    fixed = BoltRecommender(init="svd", hidden_layer_sizes=(32,), random_state=0, n_jobs=1)
    est = fixed.estimate_memory(b.X)
    assert est["spectral"] >= 4 * 3000 * 32
    assert est["total"] == fixed.fit(b.X).memory_bytes_
    auto = BoltRecommender(random_state=0, n_jobs=1)
    assert auto.estimate_memory(b.X)["total"] >= auto.fit(b.X).memory_bytes_
    with pytest.raises(MemoryError, match="SVD start"):
        BoltRecommender(init="svd", hidden_layer_sizes=(32,),
                        max_memory=est["total"] - est["spectral"] + 1).fit(b.X)


# ----------------------------------------------------------------------
# input_scaling: what the values of an input row become


def _counts(X, seed=0):
    """X's interactions with heavy-tailed weights unrelated to the items
    (Pareto, 1 to thousands): play counts that are noise."""
    X = sp.csr_matrix(X, dtype=np.float64, copy=True)
    X.data = 1 + np.floor(20 * np.random.RandomState(seed).pareto(1.2, X.nnz))
    return X


@pytest.fixture(scope="module")
def counted():
    b = make_interactions(1500, 300, n_groups=10, random_state=0)
    s = split_users(_counts(b.X), test_size=0.2, random_state=0)
    return s


@pytest.mark.parametrize("how", ["raw", "binary", "log1p"])
def test_input_scalings_are_the_numpy_transforms(how):
    """The rows the network reads are the values put through the scaling
    (computed here with numpy), scaled to unit length; the SVD start is
    that of the scaled matrix (the dense path, no carve)."""
    X = _counts(make_interactions(150, 14, n_groups=3, random_state=1).X)
    rec = BoltRecommender(input_scaling=how, init="svd", hidden_layer_sizes=(4,),
                          random_state=0, n_jobs=1).fit(X)
    assert rec.input_scaling == how and rec.input_scaling_ == how
    assert rec.input_scaling_scores_ is None
    dense = X.toarray()
    ref = {"raw": dense, "binary": (dense > 0).astype(float), "log1p": np.log1p(dense)}[how]
    unit = ref / np.linalg.norm(ref, axis=1, keepdims=True)
    np.testing.assert_allclose(rec._inputs(X).toarray(), unit, rtol=1e-6)
    V = rec._network.get_params(0)[0].astype(np.float64)
    _, _, Vt = np.linalg.svd(ref, full_matrices=False)
    np.testing.assert_allclose(_projection(V), _projection(Vt[:4].T), atol=1e-4)


def test_auto_on_noise_counts_measures_and_does_not_pick_raw(counted):
    """Heavy-tailed counts that carry nothing: the carve measures every
    candidate, raw far below, and the auto fit scores at least what the
    binarised matrix's default fit scores on held-out users."""
    s = counted
    auto = BoltRecommender(random_state=0, n_jobs=1).fit(s.train)
    scores = auto.input_scaling_scores_
    assert set(scores) == {"raw", "binary", "log1p"}
    assert auto.input_scaling_ != "raw" and scores["raw"] < scores["binary"] - 0.05
    assert auto.input_scaling_ == max(scores, key=scores.get)
    binarised = s.train.copy()
    binarised.data[:] = 1.0
    ref = BoltRecommender(random_state=0, n_jobs=1).fit(binarised)
    assert ref.input_scaling_ == "binary" and ref.input_scaling_scores_ is None
    raw = BoltRecommender(input_scaling="raw", random_state=0, n_jobs=1).fit(s.train)
    ndcg = {name: ndcg_at_k(s.test_out, m.predict(s.test_in), k=10)
            for name, m in (("auto", auto), ("binarised", ref), ("raw", raw))}
    assert ndcg["auto"] >= ndcg["binarised"] - 1e-9
    assert ndcg["raw"] < ndcg["binarised"] - 0.05  # the problem is real


@pytest.mark.parametrize("init", ["svd", "centroids"])
def test_fold_in_and_fit_apply_the_scaling(counted, init):
    """A model fitted on counts with log1p is the model fitted raw on the
    log1p of the counts: the same recommendations for count rows as that
    one gives for their log1p rows (predict, predict_topk, score too)."""
    s = counted
    params = dict(init=init, random_state=0, n_jobs=1)
    if init == "centroids":
        params.update(hidden_layer_sizes=(32,), max_iter=2)
    rec = BoltRecommender(input_scaling="log1p", **params).fit(s.train)
    twin = BoltRecommender(input_scaling="raw", **params).fit(s.train.log1p())
    ids, scores = rec.recommend(s.test_in)
    twin_ids, twin_scores = twin.recommend(s.test_in.log1p())
    np.testing.assert_array_equal(ids, twin_ids)
    np.testing.assert_allclose(scores, twin_scores, rtol=1e-5)
    np.testing.assert_array_equal(rec.predict(s.test_in), twin_ids)
    np.testing.assert_array_equal(rec.predict_topk(s.test_in, k=5)[0], twin_ids[:, :5])
    assert rec.score(s.test_in, s.test_out) == twin.score(s.test_in.log1p(), s.test_out)
    # and the scaling matters: the raw counts read raw rank otherwise
    assert (twin.recommend(s.test_in)[0] != ids).any()


def test_binary_scaling_folds_count_rows_in_as_their_item_sets(counted):
    s = counted
    rec = BoltRecommender(input_scaling="binary", random_state=0, n_jobs=1).fit(s.train)
    ones = s.test_in.copy()
    ones.data[:] = 1.0
    np.testing.assert_array_equal(rec.recommend(s.test_in)[1], rec.recommend(ones)[1])


def test_auto_with_centroids_and_with_targets_is_measured(counted):
    """init="centroids" (the carve's SVD model stands in) and fit(X, Y)
    (a low-rank ridge regression stands in) measure too; raw loses."""
    s = counted
    rec = _fast(init="centroids", max_iter=1, hidden_layer_sizes=(32,)).fit(s.train)
    assert rec.input_scaling_scores_["raw"] < rec.input_scaling_scores_["binary"] - 0.05
    assert rec.input_scaling_ != "raw"
    X_in, Y = hold_out_items(s.train, 0.2, random_state=0)
    sup = _fast(max_iter=1, hidden_layer_sizes=(32,)).fit(X_in, Y)
    assert sup.input_fraction_ is None and sup.input_scaling_ != "raw"
    assert sup.input_scaling_scores_["raw"] < sup.input_scaling_scores_["binary"] - 0.05


def test_binary_data_resolves_without_measuring_and_predicts_as_raw(planted):
    """All values equal: "auto" is binary, measured nothing, and every
    scaling gives the raw model's recommendations."""
    _, s, _ = planted
    auto = BoltRecommender(random_state=0, n_jobs=1).fit(s.train)
    raw = BoltRecommender(input_scaling="raw", random_state=0, n_jobs=1).fit(s.train)
    assert auto.input_scaling_ == "binary" and auto.input_scaling_scores_ is None
    np.testing.assert_array_equal(auto.recommend(s.test_in)[0], raw.recommend(s.test_in)[0])


def test_warm_start_keeps_the_scaling_the_network_learnt(counted):
    s = counted
    rec = _fast(init="centroids", max_iter=1, hidden_layer_sizes=(16,),
                input_scaling="log1p", warm_start=True).fit(s.train)
    rec.set_params(input_scaling="auto")
    rec.fit(s.train)
    assert rec.input_scaling_ == "log1p" and rec._epochs_done == 2


@pytest.mark.parametrize("bad", ["LOG1P", "bm25", None, 1, True])
def test_invalid_input_scaling_is_refused(bad, counted):
    rec = BoltRecommender(input_scaling=bad, max_iter=1)
    with pytest.raises(ValueError, match="input_scaling must be one of 'auto', 'raw', "
                                         "'binary', 'log1p', got"):
        rec.fit(counted.train[:100])
    assert not hasattr(rec, "input_scaling_")


def test_models_from_before_input_scaling_read_rows_raw(counted):
    """A pickled state without the parameter (older files) restores as the
    raw weighting those models had."""
    s = counted
    rec = BoltRecommender(input_scaling="raw", random_state=0, n_jobs=1).fit(s.train[:300])
    state = rec.__getstate__()
    del state["input_scaling"], state["input_scaling_"], state["input_scaling_scores_"]
    old = BoltRecommender.__new__(BoltRecommender)
    old.__setstate__(state)
    assert old.get_params()["input_scaling"] == "raw"
    np.testing.assert_array_equal(old.recommend(s.test_in)[1], rec.recommend(s.test_in)[1])
