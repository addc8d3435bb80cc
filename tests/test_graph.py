"""NeighborhoodFeatures: aggregation and label features against numpy
references written with explicit loops, leakage, errors, cloning, widths.

The references enumerate neighbours and walks one by one, so they share no
code (and no matrix algebra) with the implementation.
"""
import pickle

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.pipeline import make_pipeline

from skbolt import BoltClassifier, _propagation
from skbolt.graph import NeighborhoodFeatures, make_graph


def random_graph(n, p, rng, self_loops=False, weighted=True):
    W = rng.random((n, n)) * (rng.random((n, n)) < p)
    W = W + W.T
    if not weighted:
        W = (W > 0).astype(float)
    if not self_loops:
        np.fill_diagonal(W, 0.0)
    return W


def ref_mean(W, F, normalization):
    """One hop of aggregation by a loop over each node's neighbours."""
    n = W.shape[0]
    deg = W.sum(axis=1)
    out = np.zeros_like(F)
    for i in range(n):
        for j in range(n):
            if W[i, j] == 0:
                continue
            if normalization == "row":
                out[i] += W[i, j] / deg[i] * F[j]
            else:
                out[i] += W[i, j] / np.sqrt(deg[i] * deg[j]) * F[j]
    return out


def ref_labels(W, labelled, y, n_classes, hops):
    """Label counts by enumerating walks i -> k and i -> j -> k (k labelled,
    k != i, and k != j for two hops), then fractions, log counts, log total."""
    n = W.shape[0]
    blocks = []
    for hop in range(1, hops + 1):
        c = np.zeros((n, n_classes))
        for i in range(n):
            for k in labelled:
                if k == i:
                    continue
                if hop == 1:
                    c[i, y[k]] += W[i, k]
                else:
                    for j in range(n):
                        if j != k:
                            c[i, y[k]] += W[i, j] * W[j, k]
        total = c.sum(axis=1, keepdims=True)
        frac = np.where(total > 0, c / np.where(total > 0, total, 1), 0.0)
        blocks += [frac, np.log1p(c), np.log1p(total)]
    return np.hstack(blocks)


PLAIN = dict(degree=False, label_features=False, standardize=False, max_nnz=None,
             hop_blocks="all", self_loops=False, feature_norm=None)


@pytest.mark.parametrize("normalization", ["row", "sym"])
def test_aggregation_matches_loops_dense_features(normalization):
    rng = np.random.default_rng(0)
    W = random_graph(12, 0.3, rng)
    W[3] = W[:, 3] = 0.0  # an isolated node aggregates to zeros
    F = rng.normal(size=(12, 4))
    nf = NeighborhoodFeatures(sp.csr_matrix(W), features=F, hops=2,
                              normalization=normalization, **PLAIN)
    Z = nf.fit(np.arange(12)).transform(np.arange(12)).toarray()
    hop1 = ref_mean(W, F, normalization)
    hop2 = ref_mean(W, hop1, normalization)
    np.testing.assert_allclose(Z, np.hstack([F, hop1, hop2]), rtol=1e-5, atol=1e-6)
    assert np.all(Z[3, 4:] == 0)


def test_aggregation_sparse_features_relations_and_degree():
    rng = np.random.default_rng(1)
    Ws = {"a": random_graph(10, 0.3, rng), "b": random_graph(10, 0.5, rng, weighted=False)}
    F = (rng.random((10, 30)) < 0.1).astype(float)
    nf = NeighborhoodFeatures({k: sp.csr_matrix(W) for k, W in Ws.items()},
                              features=sp.csr_matrix(F), hops=1,
                              **{**PLAIN, "degree": True})
    Z = nf.fit(np.arange(10)).transform(np.array([4, 0, 4]))
    assert sp.isspmatrix_csr(Z)
    full = np.hstack([F, ref_mean(Ws["a"], F, "row"), ref_mean(Ws["b"], F, "row"),
                      np.log1p(Ws["a"].sum(1, keepdims=True)),
                      np.log1p(Ws["b"].sum(1, keepdims=True))])
    np.testing.assert_allclose(Z.toarray(), full[[4, 0, 4]], rtol=1e-5, atol=1e-6)
    assert nf.relation_names_ == ["a", "b"]


def test_sparse_defaults_average_eight_symmetric_hops_with_self_loops_and_unit_norm():
    # sparse features: rows scaled to sum 1, the mean of eight hops of the
    # symmetric smoothing over the node and its neighbours (no own block, no
    # degree column), then one factor that gives the fit rows an average L2
    # norm of 1
    rng = np.random.default_rng(6)
    W = random_graph(15, 0.25, rng)
    F = (rng.random((15, 20)) < 0.3).astype(float)
    F[F.sum(1) == 0, 0] = 1.0
    nf = NeighborhoodFeatures(sp.csr_matrix(W), features=sp.csr_matrix(F), max_nnz=None)
    train = np.arange(10)
    Z = nf.fit(train).transform(np.arange(15)).toarray()
    H = F / F.sum(1, keepdims=True)
    loops = W + np.eye(15)
    total = np.zeros_like(H)
    for _ in range(8):
        H = ref_mean(loops, H, "sym")
        total += H
    total /= 8
    total /= np.linalg.norm(total[train], axis=1).mean()
    np.testing.assert_allclose(Z, total, rtol=1e-4, atol=1e-6)
    assert (nf.hop_blocks_, nf.hops_, nf.normalization_, nf.degree_) == ("mean", 8, "sym", False)
    assert list(nf.get_feature_names_out()[:2]) == ["0_hopmean_x0", "0_hopmean_x1"]


@pytest.mark.parametrize("chunk", [1, 40, 1 << 22])
def test_top_k_rows_keeps_the_largest_magnitudes_ties_by_column(chunk, monkeypatch):
    # rows in any column order, many ties (values from a few integers),
    # negatives and explicit zeros; each row's kept entries must be the
    # first k by (-|value|, column), whatever the chunking
    monkeypatch.setattr(_propagation, "TOP_K_CHUNK", chunk)
    rng = np.random.default_rng(11)
    for trial in range(20):
        n, d, k = int(rng.integers(1, 40)), int(rng.integers(1, 60)), int(rng.integers(1, 8))
        M = sp.random(n, d, density=rng.random(), format="csr", random_state=trial,
                      dtype=np.float32)
        M.data = (np.round(M.data * 3) - 1).astype(np.float32)
        for i in range(n):
            s, e = M.indptr[i], M.indptr[i + 1]
            p = rng.permutation(e - s)
            M.indices[s:e], M.data[s:e] = M.indices[s:e][p], M.data[s:e][p]
        M.has_sorted_indices = False
        want = set()
        for i in range(n):
            s, e = M.indptr[i], M.indptr[i + 1]
            ranked = sorted(zip(M.indices[s:e], M.data[s:e]), key=lambda t: (-abs(t[1]), t[0]))
            want |= {(i, int(c), float(v)) for c, v in ranked[:k]}
        got = _propagation.top_k_rows(M.copy(), k)
        kept = {(i, int(c), float(v)) for i in range(n)
                for c, v in zip(got.indices[got.indptr[i]:got.indptr[i + 1]],
                                got.data[got.indptr[i]:got.indptr[i + 1]])}
        assert kept == want


@pytest.mark.parametrize("chunk", [1, 300, 1 << 22])
def test_threads_build_the_same_rows(chunk, monkeypatch):
    # blocks of rows computed two or three at a time, in any number of
    # blocks, give the rows one thread gives, entry for entry
    monkeypatch.setattr(_propagation, "TOP_K_CHUNK", chunk)
    rng = np.random.default_rng(12)
    W = sp.csr_matrix(random_graph(60, 0.15, rng))
    F = sp.csr_matrix((rng.random((60, 80)) < 0.15) * rng.random((60, 80)))
    ids = np.arange(0, 60, 2)
    rows = [NeighborhoodFeatures(W, features=F, max_nnz=6, n_jobs=j).fit(ids).transform(ids)
            for j in (1, 2, 3)]
    for other in rows[1:]:
        assert (rows[0] != other).nnz == 0
        np.testing.assert_array_equal(rows[0].indptr, other.indptr)


@pytest.mark.parametrize("n_jobs", [0, 1.5, "2"])
def test_bad_n_jobs(n_jobs):
    with pytest.raises(ValueError, match="n_jobs"):
        NeighborhoodFeatures(sp.eye(4, format="csr"), n_jobs=n_jobs).fit(np.arange(4))


def test_mean_block_keeps_at_most_max_nnz_per_row():
    # every hop is cut to max_nnz entries, and so is their mean (the union of
    # the hops' supports could be wider than any one of them)
    rng = np.random.default_rng(8)
    W = random_graph(40, 0.2, rng)
    F = sp.csr_matrix((rng.random((40, 60)) < 0.2).astype(float))
    Z = NeighborhoodFeatures(sp.csr_matrix(W), features=F, max_nnz=5).fit_transform(
        np.arange(40))
    assert np.diff(Z.indptr).max() == 5
    dense = NeighborhoodFeatures(sp.csr_matrix(W), features=F, max_nnz=None).fit_transform(
        np.arange(40))
    assert np.diff(dense.indptr).max() > 5


@pytest.mark.parametrize("self_loops", [False, True])
def test_label_features_match_walk_enumeration(self_loops):
    rng = np.random.default_rng(2)
    W = random_graph(14, 0.35, rng, self_loops=self_loops)
    y_all = rng.integers(0, 3, size=14)
    train = np.array([0, 2, 3, 5, 7, 8, 11, 13])
    nf = NeighborhoodFeatures(sp.csr_matrix(W), features=None, label_features=True,
                              label_hops=2, degree=False, standardize=False)
    Z = nf.fit(train, y_all[train]).transform(np.arange(14)).toarray()
    np.testing.assert_allclose(Z, ref_labels(W, train, y_all, 3, 2), rtol=1e-4, atol=1e-5)
    assert list(nf.classes_) == [0, 1, 2]


def test_training_node_never_sees_its_own_label():
    # 0 - 1 only: node 0's one-hop label features are node 1's label, and its
    # two-hop walk 0 -> 1 -> 0 must not bring its own label back
    A = sp.csr_matrix(np.array([[0.0, 1.0], [1.0, 0.0]]))
    nf = NeighborhoodFeatures(A, label_features=True, degree=False, standardize=False)
    Z = nf.fit(np.array([0, 1]), np.array(["ham", "spam"])).transform(np.array([0, 1]))
    Z = Z.toarray()
    # one hop: fractions (ham, spam), log counts, log total; then two hops
    np.testing.assert_allclose(Z[0, :5], [0, 1, 0, np.log(2), np.log(2)])
    np.testing.assert_allclose(Z[1, :5], [1, 0, np.log(2), 0, np.log(2)])
    np.testing.assert_allclose(Z[:, 5:], 0.0)


def planted_return_leak(n_pairs=200, seed=0):
    """Each labelled node i has a private unlabelled hub h(i): its only
    route to a label is the walk i -> h(i) -> i, which carries its own."""
    rng = np.random.default_rng(seed)
    n = 2 * n_pairs
    nodes, hubs = np.arange(n_pairs), np.arange(n_pairs, n)
    A = sp.csr_matrix((np.ones(2 * n_pairs), (np.r_[nodes, hubs], np.r_[hubs, nodes])),
                      shape=(n, n))
    y = rng.integers(0, 2, size=n)
    return A, nodes, y


def test_planted_return_walk_leak_is_refused():
    A, nodes, y = planted_return_leak()
    # the leak is real: two-hop walks without the subtraction give the label
    Y = np.zeros((A.shape[0], 2))
    Y[nodes, y[nodes]] = 1
    leaky = A @ (A @ Y)
    assert np.all(leaky[nodes].argmax(1) == y[nodes])
    nf = NeighborhoodFeatures(A, label_features=True, degree=False)
    Z = nf.fit(nodes, y[nodes]).transform(nodes).toarray()
    assert np.all(Z == Z[0]), "training rows differ: a node's own label got in"
    model = make_pipeline(NeighborhoodFeatures(A, label_features=True),
                          LogisticRegression())
    held_out = cross_val_score(model, nodes, y[nodes], cv=KFold(5, shuffle=True,
                                                                random_state=0))
    chance = max(np.mean(y[nodes]), 1 - np.mean(y[nodes]))
    assert held_out.mean() <= chance + 0.02
    assert model.fit(nodes, y[nodes]).score(nodes, y[nodes]) <= chance + 0.02


def test_cross_validation_folds_use_their_own_labels_only():
    g = make_graph(300, n_classes=3, avg_degree=8, n_features=4, random_state=0)
    nodes = np.arange(300)
    model = make_pipeline(NeighborhoodFeatures(g.adjacency, features=g.features,
                                               label_features=True),
                          LogisticRegression(max_iter=500))
    cv = KFold(3, shuffle=True, random_state=0)
    scores = cross_val_score(model, nodes, g.labels, cv=cv)
    for (tr, te), score in zip(cv.split(nodes), scores):
        y_other = g.labels.copy()
        y_other[te] = (y_other[te] + 1) % 3  # the held-out fold's labels changed
        own = clone(model).fit(tr, y_other[tr])
        # fitted on the fold only: the changed held-out labels are invisible
        assert own.score(te, g.labels[te]) == pytest.approx(score)
    assert scores.mean() > 0.6  # the graph does help: chance is about 0.33


def test_grid_search_over_the_pipeline_and_shared_graph():
    g = make_graph(400, n_classes=2, avg_degree=8, n_features=4, class_sep=0.3,
                   random_state=1)
    nf = NeighborhoodFeatures(g.adjacency, features=g.features, label_features=False)
    model = make_pipeline(nf, BoltClassifier(hidden_layer_sizes=(16,), max_iter=5,
                                             random_state=0, n_jobs=1))
    search = GridSearchCV(model, {"neighborhoodfeatures__hops": [0, 2]}, cv=3)
    search.fit(np.arange(300), g.labels[:300])
    # measured: 0.63 without the graph, 0.77 with two hops
    assert search.best_params_ == {"neighborhoodfeatures__hops": 2}
    fitted = search.best_estimator_[0]
    assert fitted.relations is g.adjacency and fitted.features is g.features
    proba = search.predict_proba(np.arange(300, 400))
    assert proba.shape == (100, 2)
    assert np.mean(proba.argmax(1) == g.labels[300:]) > 0.8


def test_clone_shares_the_graph_and_params_are_verbatim():
    A = sp.random(50, 50, density=0.1, format="csr", random_state=0)
    A = A + A.T
    F = np.ones((50, 3))
    rel = [A]
    nf = NeighborhoodFeatures(rel, features=F, hops=1)
    assert nf.relations is rel and nf.features is F
    twin = clone(nf)
    assert twin.relations is rel and twin.features is F and twin.hops == 1
    pipe = clone(make_pipeline(nf, LogisticRegression()))
    assert pipe[0].relations is rel
    assert not hasattr(twin, "dense_")
    fitted = nf.fit(np.arange(10), np.arange(10) % 2)
    back = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(back.transform([1, 2]).toarray(),
                                  fitted.transform([1, 2]).toarray())
    assert nf.set_params(hops=2).get_params()["hops"] == 2


def test_transform_before_fit_raises():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        NeighborhoodFeatures(sp.eye(3, format="csr")).transform([0])


def test_width_cap_holds_and_output_stays_sparse():
    rng = np.random.default_rng(3)
    n, d = 300, 2000
    A = sp.random(n, n, density=0.1, format="csr", random_state=3)
    A = (A + A.T).tocsr()
    F = sp.random(n, d, density=0.01, format="csr", random_state=4)
    plain = dict(hops=2, degree=False, hop_blocks="all", self_loops=False, feature_norm=None,
                 standardize=False)
    nf = NeighborhoodFeatures(A, features=F, max_nnz=20, **plain)
    Z = nf.fit(np.arange(n), rng.integers(0, 2, n)).transform(np.arange(n))
    assert sp.isspmatrix_csr(Z) and Z.dtype == np.float32
    own = F.tocsr()
    hop1, hop2 = (Z[:, d * h:d * (h + 1)] for h in (1, 2))
    assert np.diff(hop1.indptr).max() <= 20 and np.diff(hop2.indptr).max() <= 20
    # the kept entries are the row's largest of the uncapped mean
    exact = (A.multiply(1 / A.sum(1)) @ own).toarray()
    row = 7
    kept = np.sort(hop1[row].data)[::-1]
    np.testing.assert_allclose(kept, np.sort(exact[row])[::-1][:kept.size], rtol=1e-5)
    # aggregated blocks are stored sparse: the fitted state is O(n * max_nnz)
    assert sp.issparse(nf.sparse_)
    assert nf.sparse_.nnz <= own.nnz + 2 * 20 * n
    uncapped = NeighborhoodFeatures(A, features=F, max_nnz=None, **plain)
    assert uncapped.fit(np.arange(n)).transform(np.arange(n)).nnz > Z.nnz


def test_standardisation_uses_fit_rows():
    rng = np.random.default_rng(4)
    A = sp.csr_matrix(random_graph(40, 0.2, rng))
    F = rng.normal(3.0, 2.0, size=(40, 2))
    nf = NeighborhoodFeatures(A, features=F, hops=1, label_features=False)
    train = np.arange(25)
    Z = nf.fit(train).transform(train).toarray()
    np.testing.assert_allclose(Z.mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(Z.std(0), 1.0, atol=1e-4)


def test_label_features_auto_follows_labelled_neighbours():
    rng = np.random.default_rng(5)
    A = sp.csr_matrix(random_graph(60, 0.1, rng))
    y = rng.integers(0, 2, 60)
    many = NeighborhoodFeatures(A).fit(np.arange(50), y[:50])
    few = NeighborhoodFeatures(A).fit(np.arange(2), y[:2])
    assert many.label_relations_ == ["0"] and few.label_relations_ == []
    assert NeighborhoodFeatures(A).fit(np.arange(50)).label_relations_ == []


A3 = sp.csr_matrix(np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], dtype=float))


@pytest.mark.parametrize("kwargs, X, y, match", [
    (dict(relations=sp.csr_matrix(np.ones((3, 4)))), [0], None, "not square"),
    (dict(relations=[A3, sp.eye(4, format="csr")]), [0], None, "relation '1' has 4 nodes"),
    (dict(relations=A3, features=np.ones((4, 2))), [0], None, "features has 4 rows"),
    (dict(relations=-A3), [0], None, "negative weights"),
    (dict(relations=A3 * np.nan), [0], None, "NaN"),
    (dict(relations=A3, features=np.full((3, 2), np.nan)), [0], None, "features has NaN"),
    (dict(relations=A3), [0, 3], None, "out of range"),
    (dict(relations=A3), [-1], None, "out of range"),
    (dict(relations=A3), [0.5, 1.0], None, "integer node ids"),
    (dict(relations=A3), [[0, 1]], None, "1-D array"),
    (dict(relations=A3), [0, 1], [1], "one label per node id"),
    (dict(relations=A3, hops=-1), [0], None, "hops"),
    (dict(relations=A3, hops="many"), [0], None, "hops"),
    (dict(relations=A3, degree="yes"), [0], None, "degree"),
    (dict(relations=A3, hop_blocks="first"), [0], None, "hop_blocks"),
    (dict(relations=A3, normalization="max"), [0], None, "normalization"),
    (dict(relations=A3, max_nnz=0), [0], None, "max_nnz"),
    (dict(relations={}), [0], None, "relations is empty"),
])
def test_bad_input_says_which(kwargs, X, y, match):
    with pytest.raises(ValueError, match=match):
        NeighborhoodFeatures(**kwargs).fit(np.asarray(X), y)


def test_transform_checks_ids_too():
    nf = NeighborhoodFeatures(A3).fit(np.array([0, 1]))
    with pytest.raises(ValueError, match="out of range"):
        nf.transform(np.array([5]))


def test_make_graph_is_homophilous_symmetric_and_seeded():
    g = make_graph(1000, n_classes=4, avg_degree=10, homophily=0.9, random_state=0)
    A = g.adjacency
    assert (A != A.T).nnz == 0 and A.diagonal().sum() == 0
    assert 8 < A.nnz / 1000 <= 10
    r, c = A.nonzero()
    assert np.mean(g.labels[r] == g.labels[c]) > 0.85
    again = make_graph(1000, n_classes=4, avg_degree=10, homophily=0.9, random_state=0)
    assert (again.adjacency != A).nnz == 0
    with pytest.raises(ValueError, match="homophily"):
        make_graph(10, homophily=2)


def test_feature_names_follow_the_columns():
    rng = np.random.default_rng(12)
    Ws = {"a": random_graph(14, 0.3, rng), "b": random_graph(14, 0.4, rng)}
    F = rng.normal(size=(14, 3))
    y = np.array(["no", "yes"])[rng.integers(0, 2, 14)]
    train = np.arange(10)
    nf = NeighborhoodFeatures({k: sp.csr_matrix(W) for k, W in Ws.items()}, features=F,
                              hops=2, label_features=True, standardize=False)
    Z = nf.fit(train, y[train]).transform(np.arange(14)).toarray()
    names = nf.get_feature_names_out()
    assert names.shape == (nf.n_features_out_,) == (Z.shape[1],)
    assert len(set(names)) == names.size
    col = {n: Z[:, i] for i, n in enumerate(names)}
    # each named column is what its name says, from independent references
    np.testing.assert_allclose(col["x1"], F[:, 1], rtol=1e-5)
    np.testing.assert_allclose(col["b_hop2_x0"], ref_mean(Ws["b"], ref_mean(Ws["b"], F, "row"),
                                                          "row")[:, 0], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(col["a_log_degree"], np.log1p(Ws["a"].sum(1)), rtol=1e-5)
    codes = np.unique(y[train], return_inverse=True)[1]
    lab = ref_labels(Ws["b"], train, codes, 2, 2)
    np.testing.assert_allclose(col["b_label_hop1_share_yes"], lab[:, 1], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(col["b_label_hop2_log_total"], lab[:, -1], rtol=1e-4, atol=1e-6)
    # in a pipeline, the names reach the step after
    assert list(make_pipeline(clone(nf)).fit(train, y[train]).get_feature_names_out()) == \
        list(names)
