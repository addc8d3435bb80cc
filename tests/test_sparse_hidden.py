"""Tests of the LSH-sparse hidden layer (issue 36).

Expected values come from a float64 numpy reference of the sparse forward
pass on the active set the core reports, from central finite differences,
and from invariants (thread count, save / load, memory plans).
"""
import pickle

import numpy as np
import pytest
import scipy.sparse as sp

import skbolt
from skbolt import BoltClassifier, _native
from skbolt._network import Network, labels_to_csr


def hidden_config(**kw):
    cfg = dict(n_features=200, n_outputs=5, hidden_sizes=(128,), loss="softmax", active_size=5,
               hash_family="dwta", hash_K=3, hash_L=8, range_pow=9, reservoir=8,
               rebuild_interval=0, redraw_interval=0, batch_negatives=0, seed=3, dropout=0.0,
               beta1=0.9, beta2=0.999, epsilon=1e-7, hidden_active=32, hidden_K=1,
               hidden_L=8, hidden_range_pow=5, hidden_reservoir=8, hidden_rebuild_interval=3)
    cfg.update(kw)
    return cfg


def random_rows(rng, n, d, nnz=8):
    indptr, indices, data = [0], [], []
    for _ in range(n):
        cols = np.sort(rng.choice(d, nnz, replace=False))
        indices.extend(cols)
        data.extend(rng.uniform(0.2, 1.5, nnz))
        indptr.append(len(indices))
    return sp.csr_matrix((np.asarray(data, np.float32), np.asarray(indices, np.int32),
                          np.asarray(indptr, np.int32)), shape=(n, d))


def problem(seed=0, n=64, nnz=8, **kw):
    rng = np.random.default_rng(seed)
    cfg = hidden_config(**kw)
    X = random_rows(rng, n, cfg["n_features"], nnz)
    y = rng.integers(0, cfg["n_outputs"], n)
    return cfg, X, labels_to_csr(y, cfg["n_outputs"]), y


def trained(cfg, X, Y, n_threads=1, epochs=2):
    net = Network(cfg, n_threads=n_threads)
    for _ in range(epochs):
        net.train(X, Y, np.arange(X.shape[0]), 16, 1e-2, n_threads)
    return net


def reference_logits(net, X, step=0):
    """float64 logits of the sparse forward pass on the active sets."""
    (w0, b0), (w1, b1) = (tuple(np.asarray(p, np.float64) for p in net.get_params(i))
                          for i in range(2))
    out = np.empty((X.shape[0], w1.shape[0]))
    for r in range(X.shape[0]):
        ids = _native.hidden_active(net._handle, X, r, step)
        assert len(ids) == net.config["hidden_active"] and len(set(ids)) == len(ids)
        x = X[r].toarray().ravel().astype(np.float64)
        h = np.maximum(b0[ids] + x @ w0[:, ids], 0.0)
        out[r] = w1[:, ids] @ h + b1
    return out


# ---------------------------------------------------------------------------


# dense and sampled output layers; rows of 48 nonzeros are ranked by their
# 32 largest, then the kept blocks computed over all 48
@pytest.mark.parametrize("active_size, nnz", [(5, 8), (3, 8), (5, 48)])
def test_sparse_forward_matches_numpy_on_the_active_set(active_size, nnz):
    cfg, X, Y, _ = problem(active_size=active_size, hash_K=1, hash_L=4, range_pow=3,
                           reservoir=4, nnz=nnz)
    net = trained(cfg, X, Y)
    ref = reference_logits(net, X)
    if active_size == cfg["n_outputs"]:
        np.testing.assert_allclose(net.predict_scores(X, False, 1), ref, rtol=1e-4, atol=1e-5)
    # the embedding is the k-sparse hidden vector, scattered
    emb = net.embed(X, 1)
    assert ((emb != 0).sum(axis=1) <= cfg["hidden_active"]).all()
    w0, b0 = net.get_params(0)
    for r in range(4):
        ids = _native.hidden_active(net._handle, X, r, 0)
        off = np.setdiff1d(np.arange(128), ids)
        assert not emb[r, off].any()
        np.testing.assert_allclose(emb[r, ids], np.maximum(X[r] @ w0[:, ids] + b0[ids], 0)[0],
                                   rtol=1e-4, atol=1e-5)
    # the exact path computes every unit
    net.set_hidden_exact(True)
    (w0, b0), (w1, b1) = (net.get_params(i) for i in range(2))
    h = np.maximum(X.toarray().astype(np.float64) @ w0 + b0, 0)
    if active_size == cfg["n_outputs"]:
        np.testing.assert_allclose(net.predict_scores(X, False, 1), h @ w1.T + b1,
                                   rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(net.embed(X, 1), h, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("width, active, block", [(128, 20, 16), (200, 20, 8), (90, 7, 2),
                                                   (128, 32, 16)])
def test_active_set_is_whole_aligned_blocks(width, active, block):
    # the active units come in whole blocks of `block` consecutive units
    # starting at a multiple of `block`; the count rounds up to blocks, in
    # C and in the Python rules alike
    from skbolt import _hidden

    cfg, X, Y, _ = problem(hidden_sizes=(width,), hidden_active=active)
    net = trained(cfg, X, Y, epochs=1)
    k = -(-active // block) * block
    assert _native.get_config(net._handle)["hidden_active"] == k
    assert _hidden.block_size(width) == block
    assert _hidden.active_units(active / width, width) == k
    for step in (0, 5):
        for r in range(X.shape[0]):
            ids = _native.hidden_active(net._handle, X, r, step)
            assert len(ids) == k and (np.diff(ids) > 0).all()
            blocks = ids.reshape(-1, block)
            assert (blocks[:, 0] % block == 0).all()
            assert (blocks - blocks[:, :1] == np.arange(block)).all()


def test_active_set_prefers_the_units_that_respond():
    # ranking the retrieved units by pre-activation: a unit whose weights
    # match a row is active for it once the tables retrieve it
    cfg, X, _, _ = problem(hidden_L=16)
    net = Network(cfg)
    w0, b0 = net.get_params(0)
    w0[:, 5] = -1.0
    x0 = X[0].indices
    w0[x0, 5] = 5.0  # unit 5 is by far the strongest for row 0
    net.set_params(0, w0, b0)
    _native.rebuild_hidden_tables(net._handle, 1)
    assert 5 in _native.hidden_active(net._handle, X, 0, 0)


def test_gradient_matches_finite_differences_on_the_active_set():
    cfg, X, Y, _ = problem(n=12, seed=4)
    net = trained(cfg, X, Y, epochs=1)
    n = X.shape[0]
    step = _native.get_counters(net._handle)["step"] + 1  # what bolt_gradient's pass uses
    active = [set(_native.hidden_active(net._handle, X, r, step)) for r in range(n)]
    base = [tuple(p.copy() for p in net.get_params(i)) for i in range(2)]
    eps = 1e-3
    rng = np.random.default_rng(0)

    def loss_at(layer, which, idx, value):
        w, b = (p.copy() for p in base[layer])
        (w if which == "w" else b)[idx] = value
        net.set_params(layer, w, b)
        same = all(set(_native.hidden_active(net._handle, X, r, step)) == active[r]
                   for r in range(n))
        out = net.gradient(X, Y, layer, 1)[2] / n
        net.set_params(layer, *base[layer])
        return out, same

    for layer in range(2):
        gw, gb, _ = net.gradient(X, Y, layer, 1)
        picks = [("w", np.unravel_index(f, gw.shape), gw.ravel()[f])
                 for f in rng.choice(np.flatnonzero(gw), 8, replace=False)]
        picks += [("b", (j,), gb[j]) for j in rng.choice(np.flatnonzero(gb), 3, replace=False)]
        checked = 0
        for which, idx, g in picks:
            v0 = float(base[layer][0 if which == "w" else 1][idx])
            hi, lo = np.float32(v0 + eps), np.float32(v0 - eps)
            (l_hi, s_hi), (l_lo, s_lo) = loss_at(layer, which, idx, hi), \
                loss_at(layer, which, idx, lo)
            if not (s_hi and s_lo):
                continue  # the ranking moved a unit in or out: no derivative there
            fd = (l_hi - l_lo) / (float(hi) - float(lo))
            assert abs(fd - g) <= 3e-2 * abs(g) + 3e-4, (layer, which, idx, fd, g)
            checked += 1
        assert checked >= 6, f"too few parameters checked in layer {layer}"
        # units no row had active get no gradient at all
        used = set().union(*active)
        idle = [u for u in range(128) if u not in used]
        if layer == 0 and idle:
            assert not gw[:, idle].any() and not gb[idle].any()
        if layer == 1 and idle:
            assert not gw[:, idle].any()


@pytest.mark.parametrize("active_size, nnz", [(5, 8), (3, 8), (5, 48)])
def test_same_result_on_one_and_two_threads(active_size, nnz):
    cfg, X, Y, _ = problem(n=96, active_size=active_size, hash_K=1, hash_L=4, range_pow=3,
                           reservoir=4, nnz=nnz)
    one, two = trained(cfg, X, Y, 1, epochs=3), trained(cfg, X, Y, 2, epochs=3)
    for i in range(2):
        for a, b in zip(one.get_params(i), two.get_params(i)):
            np.testing.assert_array_equal(a, b)
    for a, b in zip(_native.get_hidden_tables(one._handle), _native.get_hidden_tables(two._handle)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(one.predict_scores(X, True, 1), two.predict_scores(X, True, 2))
    np.testing.assert_array_equal(one.predict_topk(X, 2, True, 1)[0],
                                  two.predict_topk(X, 2, True, 2)[0])


def test_only_active_entries_move():
    cfg, X, Y, _ = problem(n=16)
    net = Network(cfg)
    before = [tuple(p.copy() for p in net.get_params(i)) for i in range(2)]
    step = _native.get_counters(net._handle)["step"] + 1
    active = [_native.hidden_active(net._handle, X, r, step) for r in range(16)]
    net.train(X, Y, np.arange(16), 16, 1e-2, 1)  # one batch
    (w0, b0), (w1, _) = (net.get_params(i) for i in range(2))
    allowed = np.zeros((cfg["n_features"], 128), bool)
    for r in range(16):
        allowed[np.ix_(X[r].indices, active[r])] = True
    moved = w0 != before[0][0]
    assert moved.any() and not (moved & ~allowed).any()
    used = np.unique(np.concatenate(active))
    assert not np.delete(w1 != before[1][0], used, axis=1).any()
    assert not np.delete(b0 != before[0][1], used).any()


def test_hidden_sparsity_validation():
    X, y = random_rows(np.random.default_rng(0), 40, 50), np.arange(40) % 2
    for bad in [0, 0.0, 1.5, -0.2, "dense", True, np.nan, [0.5, 0.5]]:
        with pytest.raises(ValueError, match="hidden_sparsity"):
            BoltClassifier(hidden_sparsity=bad, hidden_layer_sizes=16, max_iter=1,
                           autotune=False).fit(X, y)
    with pytest.raises(ValueError, match="single hidden layer"):
        BoltClassifier(hidden_sparsity=0.5, hidden_layer_sizes=(64, 8), max_iter=1,
                       autotune=False).fit(X, y)
    with pytest.raises(ValueError, match="no dropout"):
        BoltClassifier(hidden_sparsity=0.5, dropout=0.3, hidden_layer_sizes=64, max_iter=1,
                       autotune=False).fit(X, y)
    # one value per layer where no layer is sparse, and "auto", are fine
    clf = BoltClassifier(hidden_sparsity=[1.0, 1.0], hidden_layer_sizes=(16, 8), max_iter=1,
                         autotune=False).fit(X, y)
    assert clf.hidden_sparsity_ == (1.0, 1.0) and "hidden" not in clf.hash_params_
    assert BoltClassifier(max_iter=1, autotune=False).fit(X, y).hidden_sparsity_ == (1.0,)
    with pytest.raises(ValueError, match="hidden_L must be in"):
        Network(hidden_config(hidden_L=300))


def test_estimate_memory_counts_the_sparse_layer():
    dense = Network.estimate_memory(hidden_config(hidden_active=0), 16, 8, 1)
    sparse = Network.estimate_memory(hidden_config(), 16, 8, 1)
    # the tables, their counts and the permutation, fill order
    cfg = hidden_config()
    tables = ((cfg["hidden_L"] << cfg["hidden_range_pow"]) * (cfg["hidden_reservoir"] + 1) * 4
              + 2 * cfg["n_features"] * 4 + 128 // 16 * 4)
    assert sparse["tables"] - dense["tables"] >= tables
    X, y = random_rows(np.random.default_rng(0), 200, 2048, nnz=20), np.arange(200) % 3
    est = [BoltClassifier(hidden_layer_sizes=1000, hidden_sparsity=s, autotune=False)
           .estimate_memory(X, y) for s in (1.0, 0.05)]
    assert est[1]["tables"] > est[0]["tables"]


def _fitted(n_jobs=2, **kw):
    X, y = learnable(n=600)
    return BoltClassifier(hidden_layer_sizes=500, hidden_sparsity=0.05, max_iter=3,
                          autotune=False, random_state=0, n_jobs=n_jobs, **kw).fit(X, y), X


def test_estimator_determinism_and_save_load(tmp_path):
    clf, X = _fitted()
    again, _ = _fitted(n_jobs=1)
    np.testing.assert_array_equal(clf.predict_proba(X), again.predict_proba(X))
    # 0.05 of 500 is 25 units, in whole blocks of 4 (500 = 4 x 125): 28
    assert clf.hash_params_["hidden"]["active_size"] == 28
    assert clf.hash_params_["hidden"]["block"] == 4
    path = tmp_path / "m.skbolt"
    clf.save(path)
    loaded = skbolt.load(path)
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))
    for a, b in zip(_native.get_hidden_tables(loaded._network._handle),
                    _native.get_hidden_tables(clf._network._handle)):
        np.testing.assert_array_equal(a, b)
    twin = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(twin.predict_proba(X), clf.predict_proba(X))
    # a state without the hidden tables rebuilds them from the weights
    state = clf._network.get_state()
    del state["hidden_table_counts"], state["hidden_table_ids"]
    rebuilt = Network.from_state(state)
    assert rebuilt.sparse_hidden and len(_native.get_hidden_tables(rebuilt._handle)[1]) > 0


def learnable(n, seed=0, d=4096, C=10):
    """Each class owns 300 features; a row has 10 of its class's and 14 at
    random (with 6 and 18 the sparse layer fell 20 points behind)."""
    rng = np.random.RandomState(seed)
    y = rng.randint(0, C, n)
    cols = [np.unique(np.concatenate([rng.choice(np.arange(c * 300, c * 300 + 300), 10, False),
                                      rng.choice(d, 14, False)])) for c in y]
    indptr = np.cumsum([0] + [len(c) for c in cols])
    X = sp.csr_matrix((np.ones(indptr[-1], np.float32), np.concatenate(cols), indptr),
                      shape=(n, d))
    return X, y


def test_wide_sparse_layer_learns_as_well_as_dense():
    X, y = learnable(3000)
    tr, te = slice(0, 2000), slice(2000, None)
    scores = {}
    for s in (1.0, 0.05):
        clf = BoltClassifier(hidden_layer_sizes=2000, hidden_sparsity=s, max_iter=8,
                             autotune=False, random_state=0, n_jobs=2).fit(X[tr], y[tr])
        scores[s] = clf.score(X[te], y[te])
    assert scores[1.0] > 0.9
    # whole blocks of 16 units (7 of 125 here) are coarser than single
    # units: 0.958 against the dense 1.0 (single units, before: 0.989)
    assert scores[0.05] >= scores[1.0] - 0.05, scores


def test_checkpoint_copies_moved_blocks_exactly():
    # the Ctrl-C checkpoint keeps its copy up to date in place, copying only
    # the input-layer blocks Adam moved (and set_rows / set_params wrote)
    from skbolt._training import _Checkpoint

    cfg, X, Y, _ = problem(n=48)
    net = trained(cfg, X, Y, epochs=1)
    kept = _Checkpoint(net)
    first = kept._state["params"][0][0]
    for _ in range(2):
        net.train(X[:16], Y[:16], np.arange(16), 16, 1e-2, 1)
        kept.take(net)
        assert kept._state["params"][0][0] is first  # written in place
        for (w, b), i in zip(kept._state["params"], range(2)):
            np.testing.assert_array_equal(w, net.get_params(i)[0])
            np.testing.assert_array_equal(b, net.get_params(i)[1])
    w0, b0 = net.get_params(0)
    w0[3] += 1.0
    net.set_rows(0, np.array([3], np.int32), w0[3:4], b0)
    kept.take(net)
    np.testing.assert_array_equal(kept._state["params"][0][0], net.get_params(0)[0])
    restored = kept.restore(1)
    np.testing.assert_array_equal(restored.predict_scores(X, True, 1),
                                  net.predict_scores(X, True, 1))
