"""Tests of the native core (csrc/) through skbolt._network.Network.

Every expected value comes from an independent float64 numpy reference
written here from the documented semantics (forward pass, loss, analytic
backprop, lazy Adam), from central finite differences, or from invariants
(determinism, hash invariances, recall against a random baseline). Nothing
is copied from a run of the code.
"""
import time
import zlib

import numpy as np
import pytest
import scipy.sparse as sp

from skbolt import _native
from skbolt._network import STATE_VERSION, Network, labels_to_csr

# ---------------------------------------------------------------------------
# helpers


def make_config(**kw):
    cfg = dict(
        n_features=30,
        n_outputs=7,
        hidden_sizes=(8,),
        loss="softmax",
        active_size=7,
        hash_family="dwta",
        hash_K=3,
        hash_L=8,
        range_pow=9,
        reservoir=8,
        rebuild_interval=0,
        redraw_interval=0,
        batch_negatives=0,
        seed=0,
        dropout=0.0,
        beta1=0.9,
        beta2=0.999,
        epsilon=1e-8,
    )
    cfg.update(kw)
    if "active_size" not in kw:
        cfg["active_size"] = cfg["n_outputs"]  # dense output by default
    return cfg


def random_csr(rng, n_rows, n_features, max_nnz=6, min_nnz=0, positive=False,
               index_dtype=np.int32, data_dtype=np.float32, empty_row=None,
               exclude=()):
    """CSR with distinct, sorted column indices per row."""
    allowed = np.setdiff1d(np.arange(n_features), np.asarray(exclude, dtype=np.int64))
    indptr, indices, data = [0], [], []
    for i in range(n_rows):
        nnz = 0 if i == empty_row else int(rng.integers(min_nnz, max_nnz + 1))
        cols = np.sort(rng.choice(allowed, size=nnz, replace=False))
        vals = rng.uniform(0.2, 1.5, nnz) if positive else rng.normal(0, 1, nnz)
        indices.extend(cols.tolist())
        data.extend(vals.tolist())
        indptr.append(len(indices))
    X = sp.csr_matrix(
        (np.asarray(data, dtype=data_dtype), np.asarray(indices, dtype=np.int32),
         np.asarray(indptr, dtype=np.int32)),
        shape=(n_rows, n_features),
    )
    if index_dtype == np.int64:
        # assign after construction: scipy's constructor may downcast
        X.indices = X.indices.astype(np.int64)
        X.indptr = X.indptr.astype(np.int64)
        assert X.indices.dtype == np.int64 and X.indptr.dtype == np.int64
    return X


def labels_csr(label_lists, n_outputs):
    """Label CSR built as given: duplicates are kept (no sum_duplicates)."""
    indptr = np.cumsum([0] + [len(labels) for labels in label_lists]).astype(np.int32)
    indices = np.asarray([j for labels in label_lists for j in labels], dtype=np.int32)
    Y = sp.csr_matrix(
        (np.ones(indices.size, dtype=np.float32), indices, indptr),
        shape=(len(label_lists), n_outputs),
    )
    # scipy must not have merged anything
    assert Y.indices.size == indices.size
    return Y


def randomize_params(net, rng, w_scale=0.5, b_scale=0.3):
    """Random weights and (non-zero) biases for every layer."""
    for layer in range(net.n_layers):
        w, b = net.get_params(layer)
        net.set_params(layer, rng.normal(0, w_scale, w.shape).astype(np.float32),
                       rng.normal(0, b_scale, b.shape).astype(np.float32))


def all_params(net):
    return [tuple(np.array(p, dtype=np.float64) for p in net.get_params(i))
            for i in range(net.n_layers)]


def np_forward(params, X):
    """float64 forward: activations per layer (a[0] = dense X) and logits."""
    A = X.toarray().astype(np.float64)
    W0, b0 = params[0]
    acts, pre = [A], []
    z = A @ W0 + b0
    pre.append(z)
    a = np.maximum(z, 0.0)
    acts.append(a)
    for W, b in params[1:-1]:
        z = a @ W.T + b
        pre.append(z)
        a = np.maximum(z, 0.0)
        acts.append(a)
    W, b = params[-1]
    logits = a @ W.T + b
    return acts, pre, logits


def np_softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def np_sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def label_sets(Y):
    return [sorted(set(Y.indices[Y.indptr[i]:Y.indptr[i + 1]].tolist()))
            for i in range(Y.shape[0])]


def np_loss_and_dlogits(logits, labels, loss):
    """Per-sample losses and d(sum loss)/d logits (not yet divided by B)."""
    n, C = logits.shape
    T = np.zeros((n, C))
    for i, ls in enumerate(labels):
        T[i, ls] = 1.0
    if loss == "softmax":
        m = T.sum(axis=1)
        lse = np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1)) + logits.max(1)
        P = np_softmax(logits)
        per = np.zeros(n)
        d = np.zeros_like(logits)
        has = m > 0
        per[has] = -((T[has] * (logits[has] - lse[has, None])).sum(1) / m[has])
        d[has] = P[has] - T[has] / m[has, None]
        return per, d
    per = (np.logaddexp(0.0, logits) - T * logits).sum(1)
    return per, np_sigmoid(logits) - T


def np_gradients(params, X, labels, loss):
    """Gradients of the MEAN loss for every layer, and the summed loss."""
    acts, pre, logits = np_forward(params, X)
    per, d = np_loss_and_dlogits(logits, labels, loss)
    B = X.shape[0]
    d = d / B
    grads = [None] * len(params)
    W, _ = params[-1]
    grads[-1] = (d.T @ acts[-1], d.sum(0))
    delta = (d @ W) * (pre[-1] > 0)
    for li in range(len(params) - 2, 0, -1):
        W, _ = params[li]
        grads[li] = (delta.T @ acts[li], delta.sum(0))
        delta = (delta @ W) * (pre[li - 1] > 0)
    grads[0] = (acts[0].T @ delta, delta.sum(0))
    return grads, per.sum()


def np_loss_sum(params, X, labels, loss):
    _, _, logits = np_forward(params, X)
    return np_loss_and_dlogits(logits, labels, loss)[0].sum()


def assert_topk_matches(ids, scores, ref_logits, ref_scores, k, tol=1e-5):
    """ids are the k best of ref_logits in descending order (swaps allowed
    only between values closer than tol) and scores the reference ones."""
    n = ref_logits.shape[0]
    assert ids.shape == (n, k) and scores.shape == (n, k)
    exact = np.argsort(-ref_logits, axis=1, kind="stable")[:, :k]
    for i in range(n):
        if np.array_equal(ids[i], exact[i]):
            continue
        got = ref_logits[i, ids[i]]
        assert len(set(ids[i].tolist())) == k
        assert np.all(np.diff(got) <= tol), (i, ids[i], exact[i])
        rest = np.setdiff1d(np.arange(ref_logits.shape[1]), ids[i])
        if rest.size:
            assert got[-1] >= ref_logits[i, rest].max() - tol
    np.testing.assert_allclose(scores, np.take_along_axis(ref_scores, ids.astype(np.int64), 1),
                               rtol=1e-4, atol=1e-6)


def sparse_config(**kw):
    base = dict(n_features=60, n_outputs=600, hidden_sizes=(32,), active_size=40,
                hash_family="dwta", hash_K=3, hash_L=8, range_pow=9, reservoir=8,
                rebuild_interval=2, redraw_interval=5, seed=11)
    base.update(kw)
    return make_config(**base)


# ---------------------------------------------------------------------------
# 1. forward pass


@pytest.mark.parametrize("hidden", [(8,), (8, 6)])
@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
@pytest.mark.parametrize("data_dtype", [np.float32, np.float64])
@pytest.mark.parametrize("loss", ["softmax", "sigmoid"])
def test_forward_matches_numpy(hidden, index_dtype, data_dtype, loss):
    rng = np.random.default_rng(zlib.crc32(repr((hidden, index_dtype, data_dtype, loss)).encode()))
    net = Network(make_config(hidden_sizes=hidden, loss=loss, seed=int(rng.integers(1000))))
    randomize_params(net, rng)
    X = random_csr(rng, 37, 30, index_dtype=index_dtype, data_dtype=data_dtype, empty_row=3)
    params = all_params(net)
    acts, _, ref = np_forward(params, X)

    logits = net.predict_scores(X, False, 1)
    assert logits.dtype == np.float32 and logits.shape == (37, 7)
    np.testing.assert_allclose(logits, ref, rtol=1e-5, atol=1e-5)

    probs = net.predict_scores(X, True, 1)
    ref_p = np_softmax(ref) if loss == "softmax" else np_sigmoid(ref)
    np.testing.assert_allclose(probs, ref_p, rtol=1e-5, atol=1e-6)
    if loss == "softmax":
        np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-5)

    emb = net.embed(X, 1)
    assert emb.shape == (37, hidden[-1])
    np.testing.assert_allclose(emb, acts[-1], rtol=1e-5, atol=1e-5)
    # the empty row's hidden activations are relu(bias) chained through layers
    assert np.all(emb >= 0)

    for k in (1, 3, 7):
        ids, scores = net.predict_topk(X, k, True, 1)  # dense net: sparse is ignored
        assert ids.dtype == np.int32 and scores.dtype == np.float32
        assert_topk_matches(ids, scores, ref, ref_p, k)

    # threads do not change inference
    np.testing.assert_array_equal(net.predict_scores(X, False, 2), logits)
    np.testing.assert_array_equal(net.embed(X, 2), emb)


def test_forward_mixed_index_types():
    rng = np.random.default_rng(5)
    net = Network(make_config(hidden_sizes=(8, 6)))
    randomize_params(net, rng)
    X = random_csr(rng, 20, 30)
    X.indices = X.indices.astype(np.int64)  # int32 indptr, int64 indices
    _, _, ref = np_forward(all_params(net), X)
    np.testing.assert_allclose(net.predict_scores(X, False, 1), ref, rtol=1e-5, atol=1e-5)


def test_forward_and_gradient_duplicate_columns_and_empty_input():
    """A row with a repeated column index acts as the sum (as scipy's
    toarray does), and zero-row inputs give empty outputs."""
    rng = np.random.default_rng(13)
    net = Network(make_config(hidden_sizes=(8, 6)))
    randomize_params(net, rng)
    X = sp.csr_matrix((np.array([1.0, 2.0, 0.5, -1.0], np.float32), np.array([3, 3, 5, 7]),
                       np.array([0, 3, 4])), shape=(2, 30))
    assert X.indices.size == 4  # the duplicate is kept
    params = all_params(net)
    _, _, ref = np_forward(params, X)
    np.testing.assert_allclose(net.predict_scores(X, False, 1), ref, rtol=1e-5, atol=1e-5)
    labels = [[1], [4]]
    ref_g, _ = np_gradients(params, X, labels, "softmax")
    gw, _gb, _ = net.gradient(X, labels_csr(labels, 7), 0, 1)
    np.testing.assert_allclose(gw, ref_g[0][0], rtol=1e-4, atol=1e-6)

    X0 = sp.csr_matrix((0, 30), dtype=np.float32)
    ids, scores = net.predict_topk(X0, 3, True, 1)
    assert ids.shape == (0, 3) and scores.shape == (0, 3)
    assert net.predict_scores(X0, True, 1).shape == (0, 7)
    assert net.embed(X0, 1).shape == (0, 6)


@pytest.mark.parametrize("loss", ["softmax", "sigmoid"])
def test_sparse_output_dense_topk_is_exact(loss):
    rng = np.random.default_rng(21)
    net = Network(sparse_config(loss=loss))
    assert net.sparse_output
    randomize_params(net, rng, w_scale=0.3)
    X = random_csr(rng, 40, 60, min_nnz=2, max_nnz=8, empty_row=0)
    _, _, ref = np_forward(all_params(net), X)
    ref_p = np_softmax(ref) if loss == "softmax" else np_sigmoid(ref)
    np.testing.assert_allclose(net.predict_scores(X, False, 1), ref, rtol=1e-5, atol=1e-5)
    for k in (1, 10, 600):
        ids, scores = net.predict_topk(X, k, False, 1)
        assert_topk_matches(ids, scores, ref, ref_p, k)
    # the sparse path scores only candidates, but the scores it gives are the
    # candidates' probabilities normalised over the candidate set: each id it
    # returns is valid, distinct, and ordered by its exact logit
    ids, scores = net.predict_topk(X, 5, True, 1)
    assert np.all((ids >= 0) & (ids < 600))
    for i in range(ids.shape[0]):
        assert len(set(ids[i].tolist())) == 5
        assert np.all(np.diff(ref[i, ids[i]]) <= 1e-5)
        assert np.all(np.diff(scores[i]) <= 1e-7)


@pytest.mark.parametrize("loss", ["softmax", "sigmoid"])
@pytest.mark.parametrize("sparse", [False, True])
def test_outputs_never_labelled_score_minus_inf(loss, sparse):
    """Outputs that no training row had as a label score -inf (probability
    0, last in every ranking, ties by id); the others score as the numpy
    forward pass says, softmax normalised over them alone. A network not yet
    trained, or restored from a version-1 state (no record of labels),
    masks nothing."""
    rng = np.random.default_rng(5)
    cfg = sparse_config(loss=loss) if sparse else make_config(loss=loss)
    C = cfg["n_outputs"]
    net = Network(cfg)
    X = random_csr(rng, 40, cfg["n_features"], min_nnz=2, max_nnz=8)
    _, _, ref = np_forward(all_params(net), X)
    np.testing.assert_allclose(net.predict_scores(X, False, 1), ref, rtol=1e-5, atol=1e-5)
    assert not net.seen.any()

    labels = rng.choice(C, size=(60, 2))
    labels[:, 1] = labels[:, 0]  # also a duplicate label per row
    labels = labels % (C - 2)    # the last two outputs are never labels
    Y = labels_csr(labels.tolist(), C)
    net.train(X[:30], Y[:30], np.arange(30), 8, 0.01, 1)
    seen = np.zeros(C, bool)
    seen[np.unique(labels[:30])] = True
    np.testing.assert_array_equal(net.seen, seen)

    _, _, ref = np_forward(all_params(net), X)
    ref[:, ~seen] = -np.inf
    z = net.predict_scores(X, False, 1)
    np.testing.assert_array_equal(np.isneginf(z), np.broadcast_to(~seen, z.shape))
    np.testing.assert_allclose(z[:, seen], ref[:, seen], rtol=1e-5, atol=1e-5)
    ref_p = np_softmax(ref) if loss == "softmax" else np_sigmoid(ref)
    assert np.all(ref_p[:, ~seen] == 0)
    np.testing.assert_allclose(net.predict_scores(X, True, 1), ref_p, rtol=1e-4, atol=1e-6)
    ids, scores = net.predict_topk(X, C, False, 1)
    n_seen = int(seen.sum())
    np.testing.assert_array_equal(ids[:, n_seen:], np.broadcast_to(np.flatnonzero(~seen),
                                                                   (40, C - n_seen)))
    assert np.all(scores[:, n_seen:] == 0)
    assert_topk_matches(ids[:, :n_seen], scores[:, :n_seen], ref, ref_p, n_seen)
    if sparse:
        ids, scores = net.predict_topk(X, 3, True, 1)
        retrieved_unseen = ~seen[ids]
        assert np.all(scores[retrieved_unseen] == 0)
        # ranked after every seen candidate
        for i in range(40):
            flags = retrieved_unseen[i]
            assert not np.any(flags[:-1] & ~flags[1:])

    # the record travels with the state; a version-1 state has none
    state = net.get_state()
    np.testing.assert_array_equal(Network.from_state(state).predict_scores(X, False, 1), z)
    old = {k: v for k, v in state.items() if k != "seen"}
    old["version"] = 1
    restored = Network.from_state(old)
    assert not restored.seen.any()
    assert np.all(np.isfinite(restored.predict_scores(X, False, 1)))


# ---------------------------------------------------------------------------
# 2. gradients


def _gradient_problem(hidden, loss, seed):
    rng = np.random.default_rng(seed)
    cfg = make_config(hidden_sizes=hidden, loss=loss, seed=seed)
    net = Network(cfg)
    randomize_params(net, rng, w_scale=0.6, b_scale=0.3)
    n = 9
    X = random_csr(rng, n, 30, min_nnz=1, max_nnz=6, data_dtype=np.float64)
    labels = [[2], [0, 5], [6, 6, 1], [], [3], [4, 1, 0], [5], [1], [6]]
    Y = labels_csr(labels, 7)
    return rng, net, X, Y


@pytest.mark.parametrize("hidden", [(8,), (8, 6)])
@pytest.mark.parametrize("loss", ["softmax", "sigmoid"])
def test_gradient_matches_numpy_backprop(hidden, loss):
    _rng, net, X, Y = _gradient_problem(hidden, loss, seed=3 + len(hidden))
    params = all_params(net)
    ref, ref_loss = np_gradients(params, X, label_sets(Y), loss)
    touched = np.zeros(30, bool)
    touched[X.indices] = True
    for layer in range(net.n_layers):
        gw, gb, loss_sum = net.gradient(X, Y, layer, 1)
        assert gw.shape == params[layer][0].shape and gb.shape == params[layer][1].shape
        np.testing.assert_allclose(gw, ref[layer][0], rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(gb, ref[layer][1], rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(loss_sum, ref_loss, rtol=1e-5)
        assert np.abs(gw).max() > 1e-3  # the comparison is not vacuous
        if layer == 0:
            assert np.all(gw[~touched] == 0)
        # thread count does not change the result
        gw2, gb2, loss2 = net.gradient(X, Y, layer, 2)
        np.testing.assert_array_equal(gw2, gw)
        np.testing.assert_array_equal(gb2, gb)
        assert loss2 == loss_sum


def test_gradient_label_conventions():
    """Duplicate labels count once, an unlabelled softmax row adds nothing."""
    _rng, net, X, _ = _gradient_problem((8,), "softmax", seed=17)
    dup = labels_csr([[2], [0, 5], [6, 6, 1], [], [3], [4, 1, 0], [5], [1], [6]], 7)
    dedup = labels_csr([[2], [0, 5], [6, 1], [], [3], [4, 1, 0], [5], [1], [6]], 7)
    for layer in range(net.n_layers):
        a, b = net.gradient(X, dup, layer, 1), net.gradient(X, dedup, layer, 1)
        np.testing.assert_allclose(a[0], b[0], rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(a[2], b[2], rtol=1e-7)
    # the unlabelled row alone: zero loss and zero gradient
    only = sp.csr_matrix(X[3:4])
    empty = labels_csr([[]], 7)
    for layer in range(net.n_layers):
        gw, gb, loss_sum = net.gradient(only, empty, layer, 1)
        assert loss_sum == 0.0
        assert not gw.any() and not gb.any()


def _active_outputs(net, X, Y):
    """Outputs in some training sample's active set: those whose bias
    gradient is nonzero (softmax gives every active output p > 0)."""
    gb = net.gradient(X, Y, net.n_layers - 1, 1)[1]
    return set(np.flatnonzero(gb).tolist())


def test_batch_negatives_come_from_the_batch_labels():
    """With every negative drawn from the batch (batch_negatives =
    active_size) the active sets hold only labels of the batch's rows; with
    none drawn the tables and the fill bring outputs from all over (so the
    first check is not vacuous)."""
    rng = np.random.default_rng(8)
    X = random_csr(rng, 64, 60, min_nnz=3, max_nnz=8)
    # 64 distinct labels out of 600: 16 draws for 7 negatives find enough
    labels = [[int(j)] for j in rng.choice(600, size=64, replace=False)]
    Y = labels_csr(labels, 600)
    batch = set(Y.indices.tolist())
    drawn = Network(sparse_config(active_size=8, batch_negatives=8))
    randomize_params(drawn, np.random.default_rng(1), w_scale=0.3)
    assert _active_outputs(drawn, X, Y) <= batch
    tables = Network(sparse_config(active_size=8, batch_negatives=0))
    randomize_params(tables, np.random.default_rng(1), w_scale=0.3)
    assert len(_active_outputs(tables, X, Y) - batch) > 50


@pytest.mark.parametrize("hidden", [(16,), (16, 12)])
def test_init_centroids_matches_numpy(hidden):
    """With mu the mean hidden vector of the rows and spread their root mean
    square distance to it, each label's output row becomes logit_scale *
    (S_j - n_j mu) / (|S_j - n_j mu| * spread) (S_j the sum of its rows'
    hidden vectors) and its bias -row . mu; other rows and biases stay, the
    tables hash h - mu; the same at any thread count."""
    rng = np.random.default_rng(12)
    cfg = sparse_config(hidden_sizes=hidden)
    X = random_csr(rng, 50, 60, min_nnz=2, max_nnz=8)
    # 30 labels spread over the 600 ids: each thread adds up a range of ids
    labels = [[int(j) for j in rng.choice(np.arange(7, 600, 20), size=rng.integers(0, 3),
                                          replace=False)]
              for _ in range(50)]
    Y = labels_csr(labels, 600)
    rows = np.arange(5, 50)  # rows 0..4 are left out
    nets = []
    for threads in (1, 2, 3):
        net = Network(cfg)
        randomize_params(net, np.random.default_rng(3), w_scale=0.4, b_scale=0.2)
        before = net.get_params(net.n_layers - 1)
        net.init_from_centroids(X, Y, rows, 4.0, threads)
        nets.append(net)
    W, b = nets[0].get_params(len(hidden))
    H = nets[0].embed(X[rows], 1).astype(np.float64)  # the hidden layers did not change
    used = np.linalg.norm(H, axis=1) > 0  # rows whose hidden vector is zero add nothing
    assert used.sum() >= 30
    H = H[used]
    mu = H.mean(axis=0)
    spread = np.sqrt(np.mean(np.sum((H - mu) ** 2, axis=1)))
    Yu = sp.csr_matrix(Y[rows[used]], dtype=np.float64)
    S = np.asarray(Yu.T @ H) - np.asarray(Yu.sum(axis=0)).ravel()[:, None] * mu
    has = np.asarray(Yu.sum(axis=0)).ravel() > 0
    assert has.sum() >= 20
    ref = S[has] * (4.0 / (np.linalg.norm(S[has], axis=1) * spread))[:, None]
    np.testing.assert_allclose(W[has], ref, rtol=2e-4, atol=1e-6)
    np.testing.assert_allclose(b[has], -(ref @ mu), rtol=2e-4, atol=1e-6)
    np.testing.assert_array_equal(W[~has], before[0][~has])
    np.testing.assert_array_equal(b[~has], before[1][~has])
    np.testing.assert_allclose(_native.get_center(nets[0]._handle), mu, rtol=1e-5, atol=1e-7)
    # queries are hashed less mu: every candidate collides with h - mu
    h = nets[0].embed(X, 1)
    shifted = (h - _native.get_center(nets[0]._handle)).astype(np.float32)
    kw, kq = nets[0].hash_keys(W), nets[0].hash_keys(shifted)
    assert (kq != nets[0].hash_keys(h)).any()  # the shift changes keys
    for i in range(X.shape[0]):
        colliding = set(np.flatnonzero((kw == kq[i]).any(axis=1)).tolist())
        assert set(nets[0].candidates(X, i).tolist()) <= colliding
    state = [n.get_state() for n in nets]
    for other in state[1:]:
        for key in ("center", "table_counts", "table_ids"):
            np.testing.assert_array_equal(state[0][key], other[key])
        for a, c in zip(state[0]["params"], other["params"]):
            np.testing.assert_array_equal(a[0], c[0])
            np.testing.assert_array_equal(a[1], c[1])
    # a restored network hashes from the same centre
    restored = Network.from_state(state[0])
    np.testing.assert_array_equal(_native.get_center(restored._handle), state[0]["center"])
    np.testing.assert_array_equal(restored.predict_topk(X, 3, True, 1)[0],
                                  nets[0].predict_topk(X, 3, True, 1)[0])
    # a version-2 state (before centres and batch negatives) restores as it was trained
    v2 = {k: v for k, v in state[0].items() if k != "center"}
    v2["config"] = {k: v for k, v in v2["config"].items() if k != "batch_negatives"}
    v2["version"] = 2
    old = Network.from_state(v2)
    assert not _native.get_center(old._handle).any()
    assert _native.get_config(old._handle)["batch_negatives"] == 0


def test_init_centroids_gives_sigmoid_outputs_their_prior_log_odds():
    """With the sigmoid loss the same rows, and each bias gains the log-odds
    of its label's share of the rows, n_j / (n - n_j + 1) (n the rows with a
    nonzero hidden vector); a label no row carries gets half a row's."""
    rng = np.random.default_rng(13)
    X = random_csr(rng, 60, 60, min_nnz=2, max_nnz=8)
    labels = [[int(j) for j in rng.choice(30, size=rng.integers(1, 3), replace=False)]
              for _ in range(60)]
    Y = labels_csr(labels, 600)
    rows = np.arange(60)
    nets = {}
    for loss in ("softmax", "sigmoid"):
        net = Network(sparse_config(loss=loss))
        randomize_params(net, np.random.default_rng(3), w_scale=0.4, b_scale=0.2)
        before = net.get_params(net.n_layers - 1)[1].copy()
        net.init_from_centroids(X, Y, rows, 4.0, 1)
        nets[loss] = net
    Ws, bs = nets["softmax"].get_params(1)
    Wg, bg = nets["sigmoid"].get_params(1)
    np.testing.assert_array_equal(Wg, Ws)
    H = nets["sigmoid"].embed(X, 1)
    used = np.linalg.norm(H, axis=1) > 0
    n = used.sum()
    assert n >= 40
    counts = np.asarray(Y[rows[used]].sum(axis=0)).ravel()
    has = counts > 0
    assert has.sum() >= 20 and (~has).sum() > 500
    np.testing.assert_allclose(bg[has], bs[has] + np.log(counts[has] / (n - counts[has] + 1)),
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(bg[~has], before[~has] + np.log(0.5 / (n + 0.5)), rtol=1e-5,
                               atol=1e-5)


@pytest.mark.parametrize("loss", ["softmax", "sigmoid"])
def test_set_centroids_from_shares_equals_init_centroids(loss):
    """Label sums measured on three shares of the rows (numpy: the hidden
    vectors ``embed`` gives), added up and set, give the network
    bolt_init_centroids gives on all of them: same rows, biases, centre and
    tables (up to float32 summation order)."""
    rng = np.random.default_rng(21)
    X = random_csr(rng, 90, 60, min_nnz=2, max_nnz=8)
    labels = [[int(j) for j in rng.choice(40, size=rng.integers(0, 3), replace=False)]
              for _ in range(90)]
    Y = labels_csr(labels, 600)
    nets = []
    for _ in range(2):
        net = Network(sparse_config(loss=loss))
        randomize_params(net, np.random.default_rng(3), w_scale=0.4, b_scale=0.2)
        nets.append(net)
    rows = np.arange(3, 90)
    nets[0].init_from_centroids(X, Y, rows, 4.0, 1)
    shares = [nets[1].centroid_sums(X, Y, part, 1) for part in np.array_split(rows, 3)]
    H = nets[1].embed(X[rows], 1).astype(np.float64)
    H = H[np.linalg.norm(H, axis=1) > 0]
    assert sum(s["used"] for s in shares) == len(H)
    np.testing.assert_allclose(sum(s["total"] for s in shares), H.sum(axis=0), rtol=1e-6)
    present = np.unique(np.concatenate([s["labels"] for s in shares]))
    total = {"labels": present, "sums": np.zeros((present.size, 32), np.float32),
             "counts": np.zeros(present.size), "total": sum(s["total"] for s in shares),
             "sq": sum(s["sq"] for s in shares), "used": sum(s["used"] for s in shares)}
    for s in shares:
        at = np.searchsorted(present, s["labels"])
        total["sums"][at] += s["sums"]
        total["counts"][at] += s["counts"]
    nets[1].set_centroids(total, 4.0, 1)
    for a, b in zip(nets[0].get_params(1), nets[1].get_params(1)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(_native.get_center(nets[0]._handle),
                               _native.get_center(nets[1]._handle), rtol=1e-6)
    np.testing.assert_array_equal(nets[0].predict_topk(X, 3, True, 1)[0],
                                  nets[1].predict_topk(X, 3, True, 1)[0])
    # refused: labels out of range, counts that are not positive, wrong shapes
    for change in ({"labels": np.array([600])}, {"counts": np.array([0.0])},
                   {"counts": np.array([np.nan])}):
        bad = {"labels": np.array([1]), "sums": np.zeros((1, 32)), "counts": np.ones(1),
               "total": np.zeros(32), "sq": 1.0, "used": 1, **change}
        with pytest.raises(ValueError, match="out of range or a count"):
            nets[1].set_centroids(bad, 4.0, 1)
    with pytest.raises(ValueError, match="rows of 32"):
        nets[1].set_centroids(dict(total, sums=total["sums"][:, :5]), 4.0, 1)
    with pytest.raises(ValueError, match="logit_scale"):
        nets[1].set_centroids(total, 0.0, 1)


@pytest.mark.parametrize("hidden", [(32,), (32, 16)])
def test_changed_rows_and_row_access(hidden):
    """take_changed lists every row a training call moved (numpy: rows whose
    weights or bias differ), each once, and forgets them; get_rows /
    set_rows read and write exactly those rows (numpy fancy indexing)."""
    rng = np.random.default_rng(31)
    net = Network(sparse_config(hidden_sizes=hidden))
    X = random_csr(rng, 40, 60, min_nnz=1, max_nnz=4)
    Y = labels_to_csr(rng.integers(0, 600, 40), 600)
    for layer in range(net.n_layers):
        net.take_changed(layer)
    before = [net.get_params(i) for i in range(net.n_layers)]
    net.train(X, Y, np.arange(40), 8, 0.01, 2)
    for layer, (w0, b0) in enumerate(before):
        w1, b1 = net.get_params(layer)
        moved = np.any(w1 != w0, axis=1)
        if layer > 0:
            moved |= b1 != b0
        flagged = net.take_changed(layer)
        assert np.all(np.diff(flagged) > 0)
        assert set(np.flatnonzero(moved)) <= set(flagged.tolist())
        if layer == 0:  # only the features of the rows trained on
            assert set(flagged.tolist()) <= set(X.indices.tolist())
        elif layer == net.n_layers - 1:  # a sampled subset of the outputs
            assert 0 < flagged.size < 600
        assert net.take_changed(layer).size == 0
        rows = flagged[::2]
        w, b = net.get_rows(layer, rows)
        np.testing.assert_array_equal(w, w1[rows])
        np.testing.assert_array_equal(b, b1 if layer == 0 else b1[rows])
        new_w = rng.normal(size=w.shape).astype(np.float32)
        new_b = rng.normal(size=b.shape).astype(np.float32)
        net.set_rows(layer, rows, new_w, new_b)
        w2, b2 = net.get_params(layer)
        expect_w, expect_b = w1.copy(), b1.copy()
        expect_w[rows] = new_w
        if layer == 0:
            expect_b = new_b
        else:
            expect_b[rows] = new_b
        np.testing.assert_array_equal(w2, expect_w)
        np.testing.assert_array_equal(b2, expect_b)
        assert net.take_changed(layer).size == 0  # writes are not training
    # no rows: layer 0 still reads its bias
    w, b = net.get_rows(0, np.array([], dtype=np.int32))
    assert w.shape == (0, 32) and b.shape == (32,)
    with pytest.raises(ValueError, match="out of range"):
        net.get_rows(1, np.array([600]))
    with pytest.raises(ValueError, match="out of range"):
        net.set_rows(1, np.array([-1]), np.zeros((1, net.get_params(1)[0].shape[1])),
                     np.zeros(1))
    with pytest.raises(ValueError, match="NaN"):
        net.set_rows(1, np.array([3]), np.full((1, net.get_params(1)[0].shape[1]), np.nan),
                     np.zeros(1))
    with pytest.raises(ValueError, match="one bias per row"):
        net.set_rows(1, np.array([3]), np.zeros((1, 5)), np.zeros(1))


def test_init_centroids_validation():
    net = Network(sparse_config())
    X = random_csr(np.random.default_rng(0), 4, 60, min_nnz=1)
    Y = labels_csr([[1], [2], [3], [4]], 600)
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="logit_scale"):
            net.init_from_centroids(X, Y, np.arange(4), bad, 1)
    with pytest.raises(ValueError):
        net.init_from_centroids(X, Y, np.array([0, 9]), 4.0, 1)
    with pytest.raises(ValueError, match="non-finite"):
        _native.set_center(net._handle, np.full(32, np.nan, np.float32))
    with pytest.raises(ValueError, match="32 values"):
        _native.set_center(net._handle, np.zeros(31, np.float32))


def test_batch_negatives_validation():
    with pytest.raises(ValueError, match="batch_negatives"):
        Network(sparse_config(active_size=12, batch_negatives=13))
    with pytest.raises(ValueError, match="batch_negatives"):
        Network(sparse_config(active_size=12, batch_negatives=-1))


@pytest.mark.parametrize("hidden", [(8,), (8, 6)])
@pytest.mark.parametrize("loss", ["softmax", "sigmoid"])
def test_gradient_matches_finite_differences(hidden, loss):
    rng, net, X, Y = _gradient_problem(hidden, loss, seed=40 + len(hidden))
    labels = label_sets(Y)
    n = X.shape[0]
    base = [tuple(p.copy() for p in net.get_params(i)) for i in range(net.n_layers)]
    eps = 1e-3
    touched = np.zeros(30, bool)
    touched[X.indices] = True

    def c_loss(layer, which, idx, value):
        w, b = (p.copy() for p in base[layer])
        (w if which == "w" else b)[idx] = value
        net.set_params(layer, w, b)
        out = net.gradient(X, Y, layer, 1)[2] / n
        net.set_params(layer, *base[layer])
        return out

    def np_loss(layer, which, idx, value):
        params = [tuple(np.array(p, np.float64) for p in lb) for lb in base]
        w, b = params[layer]
        (w if which == "w" else b)[idx] = value
        return np_loss_sum(params, X, labels, loss) / n

    for layer in range(net.n_layers):
        gw, gb, _ = net.gradient(X, Y, layer, 1)
        picks = []
        flat = np.abs(gw).ravel()
        big = np.flatnonzero(flat > 0.1 * flat.max())
        for f in rng.choice(big, size=min(6, big.size), replace=False):
            picks.append(("w", np.unravel_index(f, gw.shape), gw.ravel()[f]))
        bbig = np.flatnonzero(np.abs(gb) > 0.1 * np.abs(gb).max())
        for j in rng.choice(bbig, size=min(3, bbig.size), replace=False):
            picks.append(("b", (j,), gb[j]))
        checked = 0
        for which, idx, g in picks:
            v0 = float(base[layer][0 if which == "w" else 1][idx])
            hi, lo = np.float32(v0 + eps), np.float32(v0 - eps)
            h = float(hi) - float(lo)
            fd_np = (np_loss(layer, which, idx, hi) - np_loss(layer, which, idx, lo)) / h
            ref_g = np_gradients([tuple(np.array(p, np.float64) for p in lb) for lb in base],
                                 X, labels, loss)[0][layer][0 if which == "w" else 1][idx]
            if abs(fd_np - ref_g) > 1e-3 * abs(ref_g) + 1e-7:
                continue  # a ReLU kink lies within eps: finite differences mean nothing
            fd = (c_loss(layer, which, idx, hi) - c_loss(layer, which, idx, lo)) / h
            assert abs(fd - g) <= 2e-2 * abs(g) + 2e-4, (layer, which, idx, fd, g)
            checked += 1
        assert checked >= 4, f"too few parameters checked in layer {layer}"
        if layer == 0:
            # an input feature no row uses: the loss does not depend on its row
            j = int(np.flatnonzero(~touched)[0])
            v0 = float(base[0][0][j, 0])
            assert c_loss(0, "w", (j, 0), v0 + 0.5) == c_loss(0, "w", (j, 0), v0 - 0.5)
            assert gw[j, 0] == 0.0


def test_dropout_gradient_matches_finite_differences():
    # With dropout the loss depends on a mask drawn from (seed, step, row);
    # gradient() does not advance the step, so the mask is fixed here and
    # the C gradient must be the derivative of the C loss.
    rng = np.random.default_rng(77)
    X = random_csr(rng, 12, 30, min_nnz=2, positive=True)
    Y = labels_csr([[int(i % 7)] for i in range(12)], 7)
    net = Network(make_config(hidden_sizes=(16, 12), dropout=0.5, seed=5))
    plain = Network(make_config(hidden_sizes=(16, 12), dropout=0.0, seed=5))
    n, eps = X.shape[0], 1e-3
    for layer in range(net.n_layers):
        gw, _gb, _ = net.gradient(X, Y, layer, 1)
        # the mask must matter: dropout changes the gradient
        assert not np.allclose(gw, plain.gradient(X, Y, layer, 1)[0])
        w0, b0 = net.get_params(layer)
        flat = np.abs(gw).ravel()
        picks = rng.choice(np.flatnonzero(flat > 0.1 * flat.max()), size=5, replace=False)
        checked = 0
        for f in picks:
            idx = np.unravel_index(f, gw.shape)
            losses = []
            for v in (np.float32(w0[idx] + eps), np.float32(w0[idx] - eps)):
                w = w0.copy()
                w[idx] = v
                net.set_params(layer, w, b0)
                losses.append(net.gradient(X, Y, layer, 1)[2] / n)
            net.set_params(layer, w0, b0)
            h = float(np.float32(w0[idx] + eps)) - float(np.float32(w0[idx] - eps))
            fd = (losses[0] - losses[1]) / h
            if abs(fd - gw[idx]) <= 2e-2 * abs(gw[idx]) + 2e-4:
                checked += 1
        # a ReLU kink within eps may spoil one pick, not most of them
        assert checked >= 4, (layer, checked)


def test_dropout_rate_and_validation():
    # Units are dropped at about the configured rate: the embedding of a
    # network is deterministic (no dropout at inference), and training with
    # p = 0.5 gives a different model from p = 0 for the same seed.
    rng = np.random.default_rng(3)
    X = random_csr(rng, 64, 30, min_nnz=3, positive=True)
    Y = labels_csr([[int(i % 7)] for i in range(64)], 7)
    nets = {p: Network(make_config(hidden_sizes=(64,), dropout=p, seed=9)) for p in (0.0, 0.5)}
    e0 = nets[0.5].embed(X, 1)
    np.testing.assert_array_equal(e0, nets[0.0].embed(X, 1))  # same init, no dropout at inference
    for net in nets.values():
        net.train(X, Y, np.arange(64), 64, 0.01, 1)
    assert not np.array_equal(nets[0.0].get_params(0)[0], nets[0.5].get_params(0)[0])
    # gradient of the hidden bias is zero exactly for units dropped in every row;
    # with 64 rows and p = 0.5 that is rare, but per-row masks must differ:
    # compare the share of zero deltas through the layer-0 weights of one row
    single = Network(make_config(hidden_sizes=(256,), dropout=0.5, seed=9))
    x1 = random_csr(rng, 1, 30, min_nnz=5, positive=True)
    y1 = labels_csr([[0]], 7)
    g_drop = single.gradient(x1, y1, 0, 1)[1]
    full = Network(make_config(hidden_sizes=(256,), dropout=0.0, seed=9))
    g_full = full.gradient(x1, y1, 0, 1)[1]
    alive = g_full != 0
    dropped = (g_drop[alive] == 0).mean()
    assert 0.35 < dropped < 0.65, dropped
    for bad in (-0.1, 1.0, 1.5):
        with pytest.raises(ValueError, match="dropout"):
            Network(make_config(dropout=bad))


# ---------------------------------------------------------------------------
# 3. Adam


def _np_adam(w, m, v, g, t, lr, b1, b2, eps):
    b1, b2, eps = float(np.float32(b1)), float(np.float32(b2)), float(np.float32(eps))
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    lr_t = lr * np.sqrt(1 - b2**t) / (1 - b1**t)
    return w - lr_t * m / (np.sqrt(v) + eps), m, v


@pytest.mark.parametrize("loss", ["softmax", "sigmoid"])
def test_adam_two_lazy_steps(loss):
    rng = np.random.default_rng(99)
    b1, b2, eps, lr = 0.8, 0.95, 1e-6, 0.01
    cfg = make_config(hidden_sizes=(8, 6), loss=loss, beta1=b1, beta2=b2, epsilon=eps)
    net = Network(cfg)
    randomize_params(net, rng)
    n = 12
    # features 25.. are never used; feature 24 only by rows 6.. (not in step 2)
    X = random_csr(rng, n, 30, min_nnz=2, max_nnz=5, exclude=range(24, 30))
    dense = X.toarray()
    dense[6, 24] = 0.7
    X = sp.csr_matrix(dense.astype(np.float32))
    Y = labels_csr([[int(rng.integers(7))] for _ in range(n)], 7)
    L = net.n_layers

    # ---- step 1: every row of the batch
    before = [tuple(p.copy() for p in net.get_params(i)) for i in range(L)]
    grads = [net.gradient(X, Y, i, 1)[:2] for i in range(L)]
    loss_before = np_loss_sum(all_params(net), X, label_sets(Y), loss)
    # the loss train returns is the summed loss at the pre-step parameters
    np.testing.assert_allclose(net.train(X, Y, np.arange(n), n, lr, 1), loss_before, rtol=1e-5)
    touched1 = np.zeros(30, bool)
    touched1[X.indices] = True
    moments = []
    for i in range(L):
        w0, bias0 = (p.astype(np.float64) for p in before[i])
        gw, gb = (g.astype(np.float64) for g in grads[i])
        rows = touched1 if i == 0 else np.ones(w0.shape[0], bool)
        zw, zb = np.zeros_like(w0), np.zeros_like(bias0)
        w_ref, mw, vw = w0.copy(), zw.copy(), zw.copy()
        w_ref[rows], mw[rows], vw[rows] = _np_adam(w0[rows], zw[rows], zw[rows], gw[rows],
                                                   1, lr, b1, b2, eps)
        b_ref, mb, vb = _np_adam(bias0, zb, zb, gb, 1, lr, b1, b2, eps)
        moments.append((mw, vw, mb, vb))
        w_new, b_new = net.get_params(i)
        np.testing.assert_allclose(w_new, w_ref, rtol=1e-5, atol=2e-7)
        np.testing.assert_allclose(b_new, b_ref, rtol=1e-5, atol=2e-7)
        moved = np.abs(w_new - before[i][0]) > 0.5 * lr
        assert moved[rows].mean() > 0.5  # Adam's first step moves by about lr
        if i == 0:
            np.testing.assert_array_equal(w_new[~touched1], before[0][0][~touched1])

    # ---- step 2: a subset of rows that leaves touched features untouched
    sub = np.arange(6)
    Xs, Ys = sp.csr_matrix(X[sub]), sp.csr_matrix(Y[sub])
    touched2 = np.zeros(30, bool)
    touched2[Xs.indices] = True
    assert np.any(touched1 & ~touched2)  # rows the lazy rule must leave alone
    before = [tuple(p.copy() for p in net.get_params(i)) for i in range(L)]
    grads = [net.gradient(Xs, Ys, i, 1)[:2] for i in range(L)]
    net.train(X, Y, sub, len(sub), lr, 1)
    for i in range(L):
        w0, bias0 = (p.astype(np.float64) for p in before[i])
        gw, gb = (g.astype(np.float64) for g in grads[i])
        mw, vw, mb, vb = moments[i]
        rows = touched2 if i == 0 else np.ones(w0.shape[0], bool)
        w_ref = w0.copy()
        w_ref[rows] = _np_adam(w0[rows], mw[rows], vw[rows], gw[rows], 2, lr, b1, b2, eps)[0]
        b_ref = _np_adam(bias0, mb, vb, gb, 2, lr, b1, b2, eps)[0]
        w_new, b_new = net.get_params(i)
        np.testing.assert_allclose(w_new, w_ref, rtol=1e-5, atol=2e-7)
        np.testing.assert_allclose(b_new, b_ref, rtol=1e-5, atol=2e-7)
        if i == 0:
            # untouched input rows: bit-identical, although their moments
            # from step 1 are non-zero (eager Adam would move them)
            np.testing.assert_array_equal(w_new[~touched2], before[0][0][~touched2])
            assert np.abs(moments[0][0][touched1 & ~touched2]).max() > 0


def test_adam_step_counter_is_global():
    """The bias correction uses the number of batches over the network's
    life: two one-batch train calls equal one call with two batches."""
    rng = np.random.default_rng(7)
    cfg = make_config(hidden_sizes=(8,))
    X = random_csr(rng, 16, 30, min_nnz=1)
    Y = labels_to_csr(rng.integers(0, 7, 16), 7)
    a, b = Network(cfg), Network(cfg)
    a.train(X, Y, np.arange(8), 8, 0.01, 1)
    a.train(X, Y, np.arange(8, 16), 8, 0.01, 1)
    b.train(X, Y, np.arange(16), 8, 0.01, 1)
    for i in range(2):
        for p, q in zip(a.get_params(i), b.get_params(i)):
            np.testing.assert_array_equal(p, q)


# ---------------------------------------------------------------------------
# 4. determinism


def _sparse_problem(seed=0, n=256, n_features=60, n_outputs=600):
    rng = np.random.default_rng(seed)
    X = random_csr(rng, n, n_features, min_nnz=2, max_nnz=8, positive=True)
    labels = [rng.choice(n_outputs, size=int(rng.integers(1, 4)), replace=False).tolist()
              for _ in range(n)]
    return X, labels_csr(labels, n_outputs)


def _train_sparse(cfg, n_threads, epochs=3, freeze_after=2):
    X, Y = _sparse_problem(n_features=cfg["n_features"], n_outputs=cfg["n_outputs"])
    net = Network(cfg)
    rng = np.random.default_rng(123)
    losses = []
    for epoch in range(epochs):
        if epoch == freeze_after:
            net.set_frozen(True)
        losses.append(net.train(X, Y, rng.permutation(X.shape[0]), 32, 0.01, n_threads))
    return net, losses, X


def _snapshot(net):
    params = [net.get_params(i) for i in range(net.n_layers)]
    counts, ids = _native.get_tables(net._handle)
    return params, counts, ids, _native.get_counters(net._handle)


def _assert_same(s1, s2):
    for (w1, b1), (w2, b2) in zip(s1[0], s2[0]):
        np.testing.assert_array_equal(w1, w2)
        np.testing.assert_array_equal(b1, b2)
    for a, b in zip(s1[1:3], s2[1:3]):
        np.testing.assert_array_equal(a, b)
    assert s1[3] == s2[3]  # counters, by name


@pytest.mark.parametrize("sparse", [False, True])
def test_training_is_deterministic_and_thread_independent(sparse):
    # the sparse case draws half its negatives from the batch (see batch_negatives)
    cfg = (sparse_config(batch_negatives=20) if sparse
           else sparse_config(n_outputs=50, active_size=50))
    net1, loss1, X = _train_sparse(cfg, 1)
    net1b, loss1b, _ = _train_sparse(cfg, 1)
    net2, loss2, _ = _train_sparse(cfg, 2)
    # three threads on this machine's two cores: the rows and the samples
    # split unevenly, the runs of the row index do not match the halves
    net3, loss3, _ = _train_sparse(cfg, 3)
    assert loss1 == loss1b == loss2 == loss3
    s1 = _snapshot(net1)
    _assert_same(s1, _snapshot(net1b))
    _assert_same(s1, _snapshot(net2))
    _assert_same(s1, _snapshot(net3))
    if sparse:
        assert net1.frozen
        counters = s1[3]
        assert counters["step"] == 24 and counters["redraws"] >= 2  # redraws happened
        assert counters["frozen"] == 1
        assert s1[2].size > 0
    # training learned something
    assert loss1[-1] < loss1[0]
    for sparse_pred in (True, False):
        i1, p1 = net1.predict_topk(X, 5, sparse_pred, 1)
        i2, p2 = net1.predict_topk(X, 5, sparse_pred, 2)
        np.testing.assert_array_equal(i1, i2)
        np.testing.assert_array_equal(p1, p2)
    # another seed: other weights
    other, _, _ = _train_sparse(dict(cfg, seed=cfg["seed"] + 1), 1)
    for i in range(net1.n_layers):
        assert not np.array_equal(net1.get_params(i)[0], other.get_params(i)[0])


def test_creation_does_not_depend_on_thread_count():
    # the initial weights are drawn in parallel: each is a function of its
    # position, so any split gives the same network, and its tables
    cfg = sparse_config(n_features=3000, n_outputs=5000, hidden_sizes=(48, 40))
    nets = [Network(cfg, n_threads=t) for t in (1, 2, 3)]
    ref = _snapshot(nets[0])
    for net in nets[1:]:
        _assert_same(ref, _snapshot(net))
    for i, (w, b) in enumerate(ref[0]):
        fan_in, fan_out = ([3000, 48, 40, 5000][i], [3000, 48, 40, 5000][i + 1])
        bound = np.sqrt(6.0 / (fan_in + fan_out))
        # Glorot-uniform: inside the bound, spread over it, centred, no bias
        assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
        assert abs(float(w.mean())) < 0.02 * bound and not b.any()
        assert 0.55 * bound < w.std() < 0.60 * bound  # bound / sqrt(3) = 0.577
    assert len({w.tobytes()[:4096] for w, _ in ref[0]}) == len(ref[0])  # layers differ


@pytest.mark.parametrize("loss,centroids", [("softmax", True), ("sigmoid", True),
                                            ("softmax", False)])
def test_partial_state_restores_onto_its_base(loss, centroids):
    # the rollback's checkpoint: a base, then only the output rows that
    # were seen or moved since (plus everything else) restore the network
    cfg = sparse_config(loss=loss)
    X, Y = _sparse_problem(n_features=cfg["n_features"], n_outputs=cfg["n_outputs"])
    net = Network(cfg)
    base = net.get_state(tables=False)
    net.take_changed(1)
    if centroids:
        net.init_from_centroids(X, Y, np.arange(X.shape[0] // 2), 4.0, 1)
    net.train(X, Y, np.arange(X.shape[0]), 16, 0.01, 2)
    moved = net.take_changed(1)
    if not centroids:
        # tables built before any output was seen hold them all: Adam moves
        # rows of outputs no row carries, which seen alone would miss
        assert np.setdiff1d(moved, np.flatnonzero(net.seen)).size > 0
    rows = np.union1d(np.flatnonzero(net.seen), moved)
    assert 0 < rows.size < cfg["n_outputs"]
    partial = net.get_state(tables=False, output_rows=rows)
    assert partial["params"][1][0].shape == (rows.size, 32)
    restored = Network.from_state(base).restore(partial, 2)
    full, fresh = net.get_state(tables=False), Network.from_state(net.get_state(tables=False))
    # the same network as a whole copy restores (its tables built from its rows)
    _assert_same(_snapshot(fresh), _snapshot(restored))
    for (w, b), (w2, b2) in zip(full["params"], restored.get_state(tables=False)["params"]):
        np.testing.assert_array_equal(w, w2)
        np.testing.assert_array_equal(b, b2)
    for key in ("seen", "center"):
        np.testing.assert_array_equal(full[key], restored.get_state(tables=False)[key])
    # leaving out a row that moved loses it
    short = net.get_state(tables=False, output_rows=rows[1:])
    lost = Network.from_state(base).restore(short)
    assert not np.array_equal(lost.get_params(1)[0], full["params"][1][0])
    with pytest.raises(ValueError, match="partial"):
        Network.from_state(partial)
    with pytest.raises(ValueError, match="configuration"):
        Network(sparse_config(seed=1)).restore(partial)


def test_pristine_until_something_changes_the_network():
    cfg = sparse_config()
    X, Y = _sparse_problem(n_features=cfg["n_features"], n_outputs=cfg["n_outputs"])
    assert Network(cfg).pristine
    changes = {
        "train": lambda n: n.train(X, Y, np.arange(8), 8, 0.01, 1),
        "init_from_centroids": lambda n: n.init_from_centroids(X, Y, np.arange(20), 1.0, 1),
        "set_params": lambda n: n.set_params(1, *n.get_params(1)),
        "set_rows": lambda n: n.set_rows(1, np.array([3], np.int32), *n.get_rows(1, [3])),
        "set_seen": lambda n: n.set_seen(np.ones(cfg["n_outputs"], bool)),
        "scale_output": lambda n: n.scale_output(2.0),
        "set_frozen": lambda n: n.set_frozen(True),
        "rebuild_tables": lambda n: n.rebuild_tables(True, 1),
    }
    for name, change in changes.items():
        net = Network(cfg)
        net.get_state()  # reading changes nothing
        assert net.pristine, name
        change(net)
        assert not net.pristine, name
    assert not Network.from_state(Network(cfg).get_state()).pristine


@pytest.mark.parametrize("n_threads", [1, 2])
def test_kept_training_buffers_change_nothing(n_threads):
    # bolt_train keeps its buffers for the next call and relies on every
    # build leaving its scratch zeroed: calls that reuse them (the same
    # batch), calls that outgrow them (another batch) and calls after a
    # release must train exactly alike
    cfg = sparse_config(batch_negatives=20)
    X, Y = _sparse_problem(n_features=cfg["n_features"], n_outputs=cfg["n_outputs"])
    kept, fresh = Network(cfg), Network(cfg)
    rng = np.random.default_rng(7)
    losses = {id(kept): [], id(fresh): []}
    for epoch in range(3):
        if epoch == 2:
            kept.set_frozen(True)
            fresh.set_frozen(True)
        order = rng.permutation(X.shape[0])
        for part, batch in zip(np.array_split(order, 4), (32, 32, 16, 32)):
            for net in (kept, fresh):
                losses[id(net)].append(net.train(X, Y, part, batch, 0.01, n_threads))
            fresh.release_buffers()
    assert losses[id(kept)] == losses[id(fresh)]
    _assert_same(_snapshot(kept), _snapshot(fresh))


# ---------------------------------------------------------------------------
# 5. hashing


def _hash_net(family, K, range_pow, L=16, H=32, seed=3):
    return Network(sparse_config(hidden_sizes=(H,), hash_family=family, hash_K=K,
                                 hash_L=L, range_pow=range_pow, reservoir=8, seed=seed))


HASH_CASES = [("dwta", 3, 9), ("dwta", 4, 9), ("dwta", 2, 9), ("srp", 6, 9), ("srp", 12, 9)]


def _relu_like(rng, n, H):
    v = rng.normal(0, 1, (n, H))
    return np.maximum(v, 0).astype(np.float32)


@pytest.mark.parametrize("family,K,range_pow", HASH_CASES)
def test_hash_keys_properties(family, K, range_pow):
    rng = np.random.default_rng(K * 7 + len(family))
    net = _hash_net(family, K, range_pow)
    L, H = 16, 32
    V = _relu_like(rng, 200, H)
    keys = net.hash_keys(V)
    assert keys.shape == (200, L) and keys.dtype == np.uint32
    assert keys.max() < 2**range_pow
    # the keys use the table range (not a constant)
    assert len(np.unique(keys)) > 20
    # identical vectors, identical keys (also inside one call)
    np.testing.assert_array_equal(net.hash_keys(V), keys)
    np.testing.assert_array_equal(net.hash_keys(np.vstack([V[:5], V[:5]]))[5:], keys[:5])
    # positive scaling (powers of two are exact in float32)
    for c in (2.0, 0.25, 64.0):
        np.testing.assert_array_equal(net.hash_keys(V * np.float32(c)), keys)
    if family == "dwta":
        np.testing.assert_array_equal(net.hash_keys(V * np.float32(3.0)), keys)
    # signed vectors too
    S = rng.normal(0, 1, (50, H)).astype(np.float32)
    np.testing.assert_array_equal(net.hash_keys(S * np.float32(4.0)), net.hash_keys(S))
    # the zero vector and a one-hot vector do not crash and stay in range
    special = np.zeros((3, H), np.float32)
    special[1, 5] = 1.0
    special[2, :] = -1.0
    k0 = net.hash_keys(special)
    assert k0.shape == (3, L) and k0.max() < 2**range_pow


@pytest.mark.parametrize("family,K,range_pow", HASH_CASES)
def test_similar_vectors_collide_more(family, K, range_pow):
    rng = np.random.default_rng(1000 + K)
    net = _hash_net(family, K, range_pow)
    V = _relu_like(rng, 300, 32)
    near = V + np.float32(0.05) * rng.normal(0, 1, V.shape).astype(np.float32)
    far = _relu_like(rng, 300, 32)
    kv, kn, kf = net.hash_keys(V), net.hash_keys(near), net.hash_keys(far)
    p_near = (kv == kn).mean()
    p_far = (kv == kf).mean()
    assert p_near > p_far + 0.2, (p_near, p_far)
    assert p_near > 2 * p_far


# ---------------------------------------------------------------------------
# 6. candidate recall


def _recall_problem(family, K, noise, seed, reservoir=32):
    """A sparse-output network whose output rows are noisy copies of the
    (normalised) hidden vectors of anchor inputs, 10 copies per anchor, the
    other rows random; tables rebuilt from those weights."""
    rng = np.random.default_rng(seed)
    H, C, n_anchor, per = 32, 2000, 30, 10
    net = Network(sparse_config(n_features=50, hidden_sizes=(H,), n_outputs=C, active_size=100,
                                hash_family=family, hash_K=K, hash_L=16, range_pow=9,
                                reservoir=reservoir, seed=seed % 1000))
    X = random_csr(rng, n_anchor, 50, min_nnz=4, max_nnz=10, positive=True)
    h = net.embed(X, 1)
    assert np.all(np.linalg.norm(h, axis=1) > 0)
    W = rng.normal(0, 1, (C, H)) / np.sqrt(H)
    owners = rng.permutation(C)[: n_anchor * per].reshape(n_anchor, per)
    for r in range(n_anchor):
        u = h[r] / np.linalg.norm(h[r])
        W[owners[r]] = u + noise * rng.normal(0, 1, (per, H)) / np.sqrt(H)
    W = W.astype(np.float32)
    net.set_params(1, W, np.zeros(C, np.float32))
    net.rebuild_tables(False, 1)
    return rng, net, X, h, W


@pytest.mark.parametrize("family,K", [("dwta", 3), ("srp", 9)])
def test_candidates_recall_true_top10(family, K):
    # noise 0.5: one table alone finds well under half of the true top 10,
    # so a high recall needs all 16 tables to be probed
    rng, net, X, _, _ = _recall_problem(family, K, noise=0.5, seed=2024 + K)
    C = 2000
    logits = net.predict_scores(X, False, 1)
    recalls, baselines, random_recalls = [], [], []
    for r in range(X.shape[0]):
        top = np.argsort(-logits[r], kind="stable")[:10]
        cand = net.candidates(X, r)
        assert cand.size == len(set(cand.tolist()))  # deduplicated
        assert np.all((cand >= 0) & (cand < C))
        assert cand.size <= 16 * 32
        recalls.append(np.isin(top, cand).mean())
        baselines.append(cand.size / C)
        random_recalls.append(np.isin(top, rng.choice(C, size=cand.size, replace=False)).mean())
    recall, baseline = np.mean(recalls), np.mean(baselines)
    assert recall > max(3 * baseline, baseline + 0.3), (recall, baseline)
    assert recall > np.mean(random_recalls) + 0.3
    assert recall >= 0.8, recall
    assert baseline < 0.25  # the candidate sets are really a small subset

    # sparse prediction, restricted to those candidates, finds the true best
    ids, _ = net.predict_topk(X, 1, True, 1)
    hit = ids[:, 0] == np.argmax(logits, axis=1)
    assert hit.mean() >= recall - 0.2


@pytest.mark.parametrize("family,K", [("dwta", 3), ("srp", 9)])
def test_candidates_are_the_colliding_buckets(family, K):
    """candidates() returns exactly the ids whose key collides with the
    row's key in some table (when no bucket overflowed its reservoir),
    and never anything else."""
    reservoir = 64
    _, net, X, h, W = _recall_problem(family, K, noise=0.5, seed=77 + K, reservoir=reservoir)
    kw, kh = net.hash_keys(W), net.hash_keys(h)
    cap = 16 * reservoir
    exact_rows = 0
    for r in range(X.shape[0]):
        cand = net.candidates(X, r)
        cset = set(cand.tolist())
        hits = kw == kh[r]  # (C, L)
        colliding = set(np.flatnonzero(hits.any(axis=1)).tolist())
        assert cset <= colliding
        if len(colliding) <= cap:
            # each probed bucket holds min(count, reservoir) colliding ids
            for t in range(hits.shape[1]):
                members = np.flatnonzero(hits[:, t])
                assert np.isin(members, cand).sum() >= min(members.size, reservoir)
            if hits.sum(axis=0).max() <= reservoir:
                assert cset == colliding
                exact_rows += 1
    assert exact_rows >= 20


def test_sparse_topk_scores_the_most_retrieved_candidates():
    """With a candidate budget m, sparse top-k scores the m retrieved ids
    that the most tables returned (ties in retrieval order): rebuilt here
    from the table contents, the hash keys and the weights."""
    cfg = sparse_config()
    net, _, X = _train_sparse(cfg, 1)
    state = net.get_state()
    R, rp, L = cfg["reservoir"], cfg["range_pow"], cfg["hash_L"]
    held = np.minimum(state["table_counts"], R)
    start = np.concatenate([[0], np.cumsum(held, dtype=np.int64)])
    W, b = net.get_params(net.n_layers - 1)
    seen = net.seen
    H = net.embed(X, 1).astype(np.float64)
    keys = net.hash_keys(H.astype(np.float32))
    k, m, checked = 3, 12, 0
    ids_c, scores_c = net.predict_topk(X, k, True, 1, candidates=m)
    all_c, _ = net.predict_topk(X, k, True, 1, candidates=-1)
    big_c, _ = net.predict_topk(X, k, True, 1, candidates=10**6)
    np.testing.assert_array_equal(all_c, big_c)  # a budget above the count changes nothing
    for r in range(X.shape[0]):
        order, count = [], {}
        for t in range(L):
            bucket = (t << rp) + int(keys[r, t])
            for i in state["table_ids"][start[bucket]:start[bucket + 1]]:
                i = int(i)
                if i not in count:
                    order.append(i)
                    count[i] = 0
                count[i] = min(count[i] + 1, L + 1)
        if len(order) <= m:
            continue
        rank = sorted(range(len(order)), key=lambda j: (-count[order[j]], j))
        sel = np.array([order[j] for j in rank[:m]])
        z = W[sel].astype(np.float64) @ H[r] + b[sel]
        z[~seen[sel]] = -np.inf  # outputs no training row had as a label
        top = sorted(range(m), key=lambda j: (-z[j], sel[j]))[:k]
        np.testing.assert_array_equal(ids_c[r], sel[top])
        p = np.exp(z - z.max())
        np.testing.assert_allclose(scores_c[r], (p / p.sum())[top], rtol=1e-4, atol=1e-7)
        checked += 1
    assert checked >= 10


# ---------------------------------------------------------------------------
# 7. state


def test_state_roundtrip_sparse_frozen():
    net, _, X = _train_sparse(sparse_config(), 1)
    assert net.frozen
    state = net.get_state()
    assert state["version"] == STATE_VERSION
    assert state["counters"][3] >= 2  # the hash functions were redrawn
    clone = Network.from_state(state)
    _assert_same(_snapshot(net), _snapshot(clone))
    assert clone.frozen
    for sparse_pred in (True, False):
        a = net.predict_topk(X, 7, sparse_pred, 1)
        b = clone.predict_topk(X, 7, sparse_pred, 1)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
    # the same hash functions, not just the same tables
    V = _relu_like(np.random.default_rng(0), 20, 32)
    np.testing.assert_array_equal(net.hash_keys(V), clone.hash_keys(V))
    for r in range(5):
        np.testing.assert_array_equal(net.candidates(X, r), clone.candidates(X, r))

    bad = dict(state, version=STATE_VERSION + 1)
    with pytest.raises(ValueError, match="version"):
        Network.from_state(bad)
    bad = {k: v for k, v in state.items() if k != "version"}
    with pytest.raises(ValueError, match="version"):
        Network.from_state(bad)


def test_state_without_tables_builds_them_from_its_rows():
    # what benchmarks/bench_retrieval.py relies on to try other table shapes
    net, _, X = _train_sparse(sparse_config(), 1)
    state = net.get_state()
    bare = Network.from_state({k: v for k, v in state.items() if not k.startswith("table_")})
    rebuilt = Network.from_state(state)
    rebuilt.rebuild_tables(False, 1)
    for r in range(5):
        np.testing.assert_array_equal(bare.candidates(X, r), rebuilt.candidates(X, r))
    # the trained tables also hold the labels their probes missed: not a rebuild
    assert any(not np.array_equal(net.candidates(X, r), bare.candidates(X, r))
               for r in range(X.shape[0]))


def test_state_roundtrip_dense():
    rng = np.random.default_rng(8)
    net = Network(make_config(hidden_sizes=(8, 6)))
    X = random_csr(rng, 30, 30, min_nnz=1)
    Y = labels_to_csr(rng.integers(0, 7, 30), 7)
    net.train(X, Y, np.arange(30), 10, 0.01, 1)
    clone = Network.from_state(net.get_state())
    np.testing.assert_array_equal(net.predict_scores(X, True, 1), clone.predict_scores(X, True, 1))


# ---------------------------------------------------------------------------
# 8. native validation


def test_native_validation_errors():
    rng = np.random.default_rng(4)
    net = Network(make_config())
    X = random_csr(rng, 10, 30, min_nnz=1)
    Y = labels_to_csr(rng.integers(0, 7, 10), 7)
    rows = np.arange(10)
    expected = net.predict_scores(X, True, 1)

    X_wide = sp.csr_matrix((X.data, X.indices, X.indptr), shape=(10, 31))
    with pytest.raises(ValueError, match="columns"):
        net.train(X_wide, Y, rows, 5, 0.01, 1)
    with pytest.raises(ValueError, match="columns"):
        net.predict_topk(X_wide, 2, False, 1)
    with pytest.raises(ValueError, match="columns"):
        net.predict_scores(X_wide, False, 1)
    with pytest.raises(ValueError, match="columns"):
        net.embed(X_wide, 1)
    with pytest.raises(ValueError, match="columns"):
        net.gradient(X_wide, Y, 0, 1)

    for bad_rows in ([0, 10], [-1], [3, 2**40]):
        with pytest.raises(ValueError, match="outside"):
            net.train(X, Y, np.asarray(bad_rows), 5, 0.01, 1)
    with pytest.raises(ValueError, match="rows"):
        net.train(X, Y, np.arange(0), 5, 0.01, 1)

    Y_wide = sp.csr_matrix((Y.data, Y.indices, Y.indptr), shape=(10, 8))
    with pytest.raises(ValueError, match="columns"):
        net.train(X, Y_wide, rows, 5, 0.01, 1)
    with pytest.raises(ValueError, match="columns"):
        net.gradient(X, Y_wide, 1, 1)
    with pytest.raises(ValueError, match="rows"):
        net.train(X, sp.csr_matrix(Y[:9]), np.arange(9), 5, 0.01, 1)

    X_nan = X.copy()
    X_nan.data[3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        net.train(X_nan, Y, rows, 5, 0.01, 1)
    with pytest.raises(ValueError, match="NaN"):
        net.predict_topk(X_nan, 2, False, 1)
    X_inf = X.astype(np.float64)
    X_inf.data[0] = 1e39  # finite in float64, infinite in float32
    with pytest.raises(ValueError, match="infinity"):
        net.predict_scores(X_inf, False, 1)

    for k in (8, 100):
        for sparse_pred in (False, True):
            with pytest.raises(ValueError, match="k must"):
                net.predict_topk(X, k, sparse_pred, 1)
    # k < 1 at the C level, with output buffers that exist
    x = _native.CSR(X)
    ids = _native.ffi.new("int32_t[]", 100)
    scores = _native.ffi.new("float[]", 100)
    for k in (0, -1):
        with pytest.raises(ValueError, match="k must"):
            _native._check(_native.lib.bolt_predict_topk(net._handle, x.c, k, 0, 1, ids, scores))
    with pytest.raises(ValueError):
        net.predict_topk(X, 0, False, 1)

    with pytest.raises(ValueError, match="n_threads"):
        net.train(X, Y, rows, 5, 0.01, 0)
    with pytest.raises(ValueError, match="n_threads"):
        net.predict_topk(X, 2, False, 0)
    with pytest.raises(ValueError, match="n_threads"):
        net.predict_scores(X, False, 0)
    with pytest.raises(ValueError, match="n_threads"):
        net.embed(X, 0)
    with pytest.raises(ValueError, match="n_threads"):
        net.gradient(X, Y, 0, 0)

    with pytest.raises(ValueError, match="batch_size"):
        net.train(X, Y, rows, 0, 0.01, 1)
    for lr in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="learning_rate"):
            net.train(X, Y, rows, 5, lr, 1)
    with pytest.raises(ValueError, match="layer"):
        net.gradient(X, Y, 2, 1)

    bad_w = net.get_params(1)[0].copy()
    bad_w[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        net.set_params(1, bad_w, net.get_params(1)[1])

    with pytest.raises(ValueError, match="hash L"):
        Network(sparse_config(hash_L=0))
    with pytest.raises(ValueError, match="K"):
        Network(sparse_config(hash_K=0))
    # a dense output ignores hashing parameters
    Network(make_config(hash_L=0))

    # nothing above changed the network, and it still works
    np.testing.assert_array_equal(net.predict_scores(X, True, 1), expected)
    assert np.isfinite(net.train(X, Y, rows, 5, 0.01, 1))

    sparse_net = Network(sparse_config())
    Xs = random_csr(rng, 4, 60, min_nnz=1)
    for row in (-1, 4):
        with pytest.raises(ValueError, match="outside"):
            sparse_net.candidates(Xs, row)
    with pytest.raises(ValueError, match="dense"):
        net.hash_keys(np.zeros((1, 8), np.float32))


def test_predict_topk_k0_error_names_k():
    rng = np.random.default_rng(4)
    net = Network(make_config())
    X = random_csr(rng, 10, 30, min_nnz=1)
    with pytest.raises(ValueError, match="k must"):
        net.predict_topk(X, 0, False, 1)


def test_hash_keys_rejects_wrong_width():
    net = Network(sparse_config())  # last hidden width 32
    with pytest.raises(ValueError):
        net.hash_keys(np.ones((2, 64), np.float32))


def test_default_threads_follow_threadpoolctl():
    """n_jobs=None takes OpenMP's default, which threadpoolctl limits."""
    from threadpoolctl import threadpool_limits

    from skbolt import _base

    with threadpool_limits(limits=1, user_api="openmp"):
        assert _native.max_threads() == 1
        assert _base.resolve_n_threads(None, _native.max_threads()) == 1
    assert _base.resolve_n_threads(3, 1) == 3
    with pytest.raises(ValueError, match="n_jobs"):
        _base.resolve_n_threads(0, 1)


# ---------------------------------------------------------------------------
# 9. the C API: memory by part, configuration, counters, NULL pointers


def _np_params(cfg):
    widths = (cfg["n_features"], *cfg["hidden_sizes"], cfg["n_outputs"])
    # the input layer's bias has the first hidden width, like every other
    # layer's bias has the width of its output
    return sum(a * b + b for a, b in zip(widths[:-1], widths[1:]))


def _np_tables(cfg):
    """Hash tables (counts + R ids per bucket), fill order, hash functions and
    the centre hidden vectors are hashed from."""
    if cfg["active_size"] >= cfg["n_outputs"]:
        return 0
    buckets = cfg["hash_L"] << cfg["range_pow"]
    take = 8 if cfg["hash_family"] == "dwta" else (cfg["hidden_sizes"][-1] + 2) // 3
    codes = cfg["hash_K"] * cfg["hash_L"] * take
    sign_bytes = codes if cfg["hash_family"] == "srp" else 0
    center = cfg["hidden_sizes"][-1] * 4  # what hidden vectors are hashed less
    return (buckets * (cfg["reservoir"] + 1) * 4 + cfg["n_outputs"] * 4 + codes * 4 + sign_bytes
            + center)


@pytest.mark.parametrize("cfg", [
    make_config(hidden_sizes=(8, 6)),
    sparse_config(),
    sparse_config(hash_family="srp", hidden_sizes=(20, 33), reservoir=3, range_pow=7),
], ids=["dense", "dwta", "srp"])
def test_estimate_memory_breakdown_matches_the_config(cfg):
    parts = Network.estimate_memory(cfg, 64, 5, 2)
    assert set(parts) == {"weights", "optimizer", "tables", "buffers", "total"}
    assert all(isinstance(v, int) for v in parts.values())
    assert parts["total"] == (parts["weights"] + parts["optimizer"] + parts["tables"]
                              + parts["buffers"])
    params = _np_params(cfg)
    assert parts["weights"] == 4 * params
    assert parts["optimizer"] == 8 * params
    assert parts["tables"] == _np_tables(cfg)
    # the workspace holds at least activations and deltas of every hidden
    # layer for the batch, and the network a seen flag per output
    assert parts["buffers"] >= 64 * sum(cfg["hidden_sizes"]) * 2 * 4 + cfg["n_outputs"]
    # only buffers follow the batch size and thread count
    bigger = Network.estimate_memory(cfg, 128, 5, 2)
    more_threads = Network.estimate_memory(cfg, 64, 5, 1)
    for other in (bigger, more_threads):
        for part in ("weights", "optimizer", "tables"):
            assert other[part] == parts[part]
    assert bigger["buffers"] > parts["buffers"] > more_threads["buffers"]
    assert _native.estimate_memory(cfg, 64, 5, 2) == parts


def test_estimate_memory_is_what_create_allocates():
    """The network's part of the estimate against glibc's count of bytes
    handed out while one network is created (the training workspace is freed
    when the call returns, so it is not measured here)."""
    import ctypes
    import ctypes.util

    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    if not hasattr(libc, "mallinfo2"):
        pytest.skip("needs glibc's mallinfo2")
    try:
        with open("/proc/self/maps") as maps:
            if "libasan" in maps.read():
                pytest.skip("a sanitizer's allocator does not report to mallinfo2")
    except OSError:
        pass

    class Mallinfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
            "uordblks", "fordblks", "keepcost")]

    libc.mallinfo2.restype = Mallinfo2

    def in_use():
        info = libc.mallinfo2()
        return info.uordblks + info.hblkhd

    cfg = sparse_config(n_outputs=20_000, hidden_sizes=(128,), hash_L=16, range_pow=12,
                        reservoir=16)
    parts = Network.estimate_memory(cfg, 1, 0, 1)
    model = parts["weights"] + parts["optimizer"] + parts["tables"]
    before = in_use()
    net = Network(cfg)
    grown = in_use() - before
    assert abs(grown - model) < 0.01 * model + 2**16
    del net


def test_get_config_round_trip():
    cfg = sparse_config(hidden_sizes=(9, 5, 7), loss="sigmoid", hash_family="srp",
                        dropout=0.3, seed=2**40 + 5, beta1=0.85, beta2=0.995, epsilon=1e-6,
                        rebuild_interval=3, redraw_interval=11)
    net = Network(cfg)
    got = _native.get_config(net._handle)
    assert set(got) == set(cfg) | set(_native.HIDDEN_KEYS)
    assert all(got[key] == 0 for key in _native.HIDDEN_KEYS)  # a dense hidden layer
    for key, value in cfg.items():
        if isinstance(value, float):
            assert got[key] == float(np.float32(value)), key
        else:
            assert got[key] == (tuple(value) if key == "hidden_sizes" else value), key
    # what the binding sizes its outputs from
    X = random_csr(np.random.default_rng(1), 4, 60, min_nnz=1)
    assert net.predict_scores(X, True, 1).shape == (4, 600)
    assert net.embed(X, 1).shape == (4, 7)
    assert net.seen.shape == (600,)
    assert net.hash_keys(np.ones((3, 7), np.float32)).shape == (3, 8)


def test_counters_by_name():
    names = ("step", "since_rebuild", "since_redraw", "redraws", "frozen")
    assert _native.COUNTER_NAMES == names
    net = Network(sparse_config(rebuild_interval=2, redraw_interval=3))
    X, Y = _sparse_problem()
    assert _native.get_counters(net._handle) == dict.fromkeys(names, 0)
    net.train(X, Y, np.arange(X.shape[0]), 32, 0.01, 1)  # 8 batches
    # redraws after batches 3 and 6 reset both counts; batch 8 rebuilds
    assert _native.get_counters(net._handle) == dict(step=8, since_rebuild=0, since_redraw=2,
                                                     redraws=2, frozen=0)
    net.set_frozen(True)
    counters = _native.get_counters(net._handle)
    assert counters["frozen"] == 1 and net.frozen
    # the saved layout is the int64 array of every state version so far
    state = net.get_state()
    assert state["counters"].dtype == np.int64
    np.testing.assert_array_equal(state["counters"], [8, 0, 2, 2, 1])
    clone = Network.from_state(dict(state, counters=[8, 0, 2, 2, 1]))
    assert _native.get_counters(clone._handle) == counters
    V = _relu_like(np.random.default_rng(2), 10, 32)
    np.testing.assert_array_equal(clone.hash_keys(V), net.hash_keys(V))
    # set by name, checked by the core
    _native.set_counters(clone._handle, dict(counters, step=3, frozen=0))
    assert _native.get_counters(clone._handle) == dict(counters, step=3, frozen=0)
    with pytest.raises(ValueError, match="non-negative"):
        _native.set_counters(clone._handle, dict(counters, since_redraw=-1))
    with pytest.raises(ValueError, match="lack"):
        _native.set_counters(clone._handle, {"step": 1})
    with pytest.raises(ValueError, match="5 counters"):
        Network.from_state(dict(state, counters=np.zeros(4, np.int64)))


def _c_pointer_args(name):
    """Positions of the pointer arguments of lib.<name>, from cffi's view of
    the declarations in bolt_cdef.h and bolt_debug.h."""
    ffi = _native.ffi
    return [i for i, t in enumerate(ffi.typeof(getattr(_native.lib, name)).args)
            if t.kind == "pointer"]


def _null_status(name, args, position):
    args = list(args)
    args[position] = _native.ffi.NULL
    return getattr(_native.lib, name)(*args)


def test_null_pointers_are_rejected_by_every_function():
    ffi, lib = _native.ffi, _native.lib
    # a sparse hidden layer too, so that its table calls succeed below
    cfg = sparse_config(hidden_active=8, hidden_K=1, hidden_L=4, hidden_range_pow=4,
                        hidden_reservoir=4, hidden_rebuild_interval=2)
    net = Network(cfg)
    rng = np.random.default_rng(5)
    Xm = random_csr(rng, 6, 60, min_nnz=1)
    Ym = labels_to_csr(rng.integers(0, 600, 6), 600)
    X, Y = _native.CSR(Xm), _native.CSR(Ym, with_values=False)
    h = net._handle
    expected = net.predict_scores(Xm, True, 1), net.predict_topk(Xm, 3, True, 1)
    nb, ni = ffi.new("int64_t *"), ffi.new("int64_t *")
    lib.bolt_table_size(h, nb, ni)
    rows = ffi.new("int64_t[]", list(range(6)))
    w = ffi.new("float[]", 60 * 32)
    b = ffi.new("float[]", 32)
    lib.bolt_get_params(h, 0, w, b)
    counters = ffi.new("bolt_counters *")
    lib.bolt_get_counters(h, counters)
    seen = ffi.new("uint8_t[]", 600)
    lib.bolt_get_seen(h, seen)
    counts, ids = ffi.new("uint32_t[]", nb[0]), ffi.new("int32_t[]", ni[0])
    lib.bolt_get_tables(h, counts, ids)
    hcounts, hids = _native.get_hidden_tables(h)
    assert hids.size > 0
    out = lambda ctype, n=1: ffi.new(ctype, n)  # noqa: E731
    calls = {
        "bolt_estimate_memory": (_native.make_config(cfg), 8, 3, 1, ffi.new("bolt_memory *")),
        "bolt_create": (_native.make_config(cfg), 1, 1, ffi.new("bolt_network **")),
        "bolt_get_config": (h, ffi.new("bolt_config *")),
        "bolt_take_timings": (h, ffi.new("bolt_timings *")),
        "bolt_train": (h, X.c, Y.c, rows, 6, 3, 0.01, 1, out("double[]")),
        "bolt_gradient": (h, X.c, Y.c, rows, 6, 0, 1, out("float[]", 60 * 32), out("float[]", 32),
                          out("double[]")),
        "bolt_predict_topk": (h, X.c, 3, 0, 1, out("int32_t[]", 18), out("float[]", 18)),
        "bolt_predict_scores": (h, X.c, 1, 1, out("float[]", 6 * 600)),
        "bolt_embed": (h, X.c, 1, out("float[]", 6 * 32)),
        "bolt_layer_shape": (h, 0, out("int64_t[]"), out("int64_t[]"), out("int64_t[]")),
        "bolt_get_params": (h, 0, out("float[]", 60 * 32), out("float[]", 32)),
        "bolt_set_params": (h, 0, w, b),
        "bolt_get_bias": (h, 0, out("float[]", 32)),
        "bolt_get_counters": (h, ffi.new("bolt_counters *")),
        "bolt_set_counters": (h, counters),
        "bolt_get_seen": (h, out("uint8_t[]", 600)),
        "bolt_set_seen": (h, seen),
        "bolt_set_frozen": (h, 0),
        "bolt_release_buffers": (h,),
        "bolt_rebuild_tables": (h, 0, 1),
        "bolt_init_centroids": (h, X.c, Y.c, rows, 6, 4.0, 1),
        "bolt_take_changed": (h, 0, out("int32_t[]", 60), 60, out("int64_t[]")),
        "bolt_sync_params": (h, 0, out("float[]", 60 * 32), out("float[]", 32), 1,
                             out("int64_t[]")),
        "bolt_get_rows": (h, 0, ffi.new("int32_t[]", [1, 2]), 2, out("float[]", 2 * 32),
                          out("float[]", 32)),
        "bolt_set_rows": (h, 0, ffi.new("int32_t[]", [1, 2]), 2, w, b),
        "bolt_set_centroids": (h, ffi.new("int32_t[]", [0, 1]), 2, out("float[]", 2 * 32),
                               ffi.new("double[]", [1.0, 2.0]), out("double[]", 32), 1.0, 3,
                               4.0, 1),
        "bolt_get_center": (h, out("float[]", 32)),
        "bolt_set_center": (h, out("float[]", 32)),
        "bolt_table_size": (h, out("int64_t[]"), out("int64_t[]")),
        # room for full buckets: training below changes what they hold
        "bolt_get_tables": (h, out("uint32_t[]", nb[0]), out("int32_t[]", nb[0] * 8)),
        "bolt_set_tables": (h, counts, ids, ni[0]),
        "bolt_hash_keys": (h, out("float[]", 2 * 32), 2, out("uint32_t[]", 2 * 8)),
        "bolt_candidates": (h, X.c, 0, out("int32_t[]", 64), 64, out("int64_t[]")),
        "bolt_hidden_table_size": (h, out("int64_t[]"), out("int64_t[]")),
        # room for full buckets (reservoir 4), as for bolt_get_tables
        "bolt_get_hidden_tables": (h, out("uint32_t[]", hcounts.size),
                                   out("int32_t[]", hcounts.size * 4)),
        "bolt_set_hidden_tables": (h, ffi.from_buffer("uint32_t[]", hcounts),
                                   ffi.from_buffer("int32_t[]", hids), hids.size),
        "bolt_rebuild_hidden_tables": (h, 1),
        "bolt_set_hidden_exact": (h, 0),
        "bolt_hidden_active": (h, X.c, 0, 0, out("int32_t[]", 4), 4, out("int64_t[]")),
    }
    exported = {name for name in dir(lib) if name.startswith("bolt_")
                and isinstance(getattr(lib, name), type(lib.bolt_free))}
    no_pointers = {name for name in exported if not _c_pointer_args(name)}
    assert no_pointers == {"bolt_max_threads", "bolt_last_error"}
    # every other exported function is covered but bolt_free, for which NULL
    # is a no-op as for free()
    assert set(calls) == exported - no_pointers - {"bolt_free"}
    lib.bolt_free(ffi.NULL)
    before = net.get_state()
    for name, args in calls.items():
        for position in _c_pointer_args(name):
            status = _null_status(name, args, position)
            assert status == lib.BOLT_EINVAL, (name, position)
            message = ffi.string(lib.bolt_last_error()).decode()
            assert "missing" in message, (name, position, message)
            with pytest.raises(ValueError, match="missing"):
                _native._check(status)
    # the refused calls changed nothing
    after = net.get_state()
    for (w0, b0), (w1, b1) in zip(before["params"], after["params"]):
        np.testing.assert_array_equal(w0, w1)
        np.testing.assert_array_equal(b0, b1)
    for key in ("counters", "seen", "table_counts", "table_ids"):
        np.testing.assert_array_equal(before[key], after[key])
    np.testing.assert_array_equal(net.predict_scores(Xm, True, 1), expected[0])
    np.testing.assert_array_equal(net.predict_topk(Xm, 3, True, 1)[0], expected[1][0])
    # and the same arguments without a NULL are accepted
    for name, args in calls.items():
        assert getattr(lib, name)(*args) == lib.BOLT_OK, (name, ffi.string(lib.bolt_last_error()))


# ---------------------------------------------------------------------------
# creation without tables, phase timings


@pytest.mark.parametrize("n_threads", [1, 2])
def test_tables_built_at_creation_or_later_are_the_same(n_threads):
    cfg = sparse_config()
    built = Network(cfg, n_threads=n_threads)
    empty = Network(cfg, build_tables=False)
    counts, _ = _native.get_tables(empty._handle)
    assert not counts.any()  # nothing inserted, so nothing retrieved
    X, _ = _sparse_problem(n_features=cfg["n_features"], n_outputs=cfg["n_outputs"])
    assert len(empty.candidates(X, 0)) == 0 and len(built.candidates(X, 0)) > 0
    # the same weights (creation draws them alike) hash into the same tables
    empty.rebuild_tables(False, 1)
    for a, b in zip(_native.get_tables(built._handle), _native.get_tables(empty._handle)):
        np.testing.assert_array_equal(a, b)
    for i in range(built.n_layers):
        for a, b in zip(built.get_params(i), empty.get_params(i)):
            np.testing.assert_array_equal(a, b)


def _table_ids(net):
    """Every id the tables hold (bolt_get_tables packs each bucket's)."""
    return _native.get_tables(net._handle)[1]


@pytest.mark.parametrize("centroid_start", [False, True])
def test_outputs_no_row_carries_stay_out_of_tables_and_training(centroid_start):
    # 600 outputs of which 150 are labels: once any label is seen, tables
    # rebuilt hold labels alone and the active sets (retrieved or filled)
    # take no other output, so those rows keep their weights. Tables built
    # before any label (at creation) hold every output: without the
    # centroid start, the first epoch retrieves them.
    cfg = sparse_config(rebuild_interval=1)
    rng = np.random.default_rng(5)
    X = random_csr(rng, 256, cfg["n_features"], min_nnz=2, max_nnz=8, positive=True)
    labelled = rng.choice(cfg["n_outputs"], size=150, replace=False)
    Y = labels_csr([rng.choice(labelled, size=2, replace=False).tolist() for _ in range(256)],
                   cfg["n_outputs"])
    present = np.unique(Y.indices)
    net, fresh = Network(cfg), Network(cfg)
    # before any label, every output is in the tables
    assert np.unique(_table_ids(net)).size == cfg["n_outputs"]
    rows = np.arange(X.shape[0])
    if centroid_start:
        net.init_from_centroids(X, Y, rows, 1.0, 1)
        assert np.isin(_table_ids(net), present).all()
    else:
        net.train(X, Y, rng.permutation(rows), 32, 0.01, 2)
        fresh = Network(cfg)
        for i in range(net.n_layers):
            fresh.set_params(i, *net.get_params(i))
    net.take_changed(net.n_layers - 1)
    for _ in range(3):
        net.train(X, Y, rng.permutation(rows), 32, 0.01, 2)
    held = _table_ids(net)
    assert np.isin(held, present).all() and np.unique(held).size > 0.9 * present.size
    assert np.isin(net.take_changed(net.n_layers - 1), present).all()
    unseen = np.setdiff1d(np.arange(cfg["n_outputs"]), present)
    w, b = net.get_params(net.n_layers - 1)
    w0, b0 = fresh.get_params(net.n_layers - 1)
    by_row = (lambda a: a[unseen]) if w.shape[0] == cfg["n_outputs"] else (lambda a: a[:, unseen])
    np.testing.assert_array_equal(by_row(w), by_row(w0))
    np.testing.assert_array_equal(b[unseen], b0[unseen])


@pytest.mark.parametrize("sparse", [False, True])
def test_phase_timings_account_for_a_training_call(sparse):
    cfg = sparse_config() if sparse else make_config(hidden_sizes=(16, 8), n_outputs=30)
    X, Y = _sparse_problem(n_features=cfg["n_features"], n_outputs=cfg["n_outputs"])
    net = Network(cfg)
    assert net.take_timings()["batches"] == 0
    rows = np.arange(X.shape[0])
    start = time.perf_counter()
    net.train(X, Y, rows, 32, 0.01, 2)
    wall = time.perf_counter() - start
    t = net.take_timings()
    assert t["batches"] == -(-X.shape[0] // 32)
    phases = {k: v for k, v in t.items() if k != "batches"}
    assert all(v >= 0 for v in phases.values())
    assert t["samples"] > 0 and t["update_output"] > 0 and t["update_input"] > 0
    assert (t["update_hidden"] > 0) == (len(cfg["hidden_sizes"]) > 1)
    assert sum(phases.values()) <= wall  # parts of the one call, never more
    # taken, they start again from zero
    assert all(v == 0 for v in net.take_timings().values())
