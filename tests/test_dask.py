"""skbolt.dask on a real distributed.LocalCluster (127.0.0.1, worker
processes with one thread each), against the local estimator."""
import os
import pickle
import signal
import threading
import time

import numpy as np
import pytest
import scipy.sparse as sp

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

from skbolt import BoltClassifier  # noqa: E402
from skbolt.dask import DaskBoltClassifier  # noqa: E402
from skbolt.datasets import make_extreme_classification  # noqa: E402
from skbolt.metrics import precision_at_k  # noqa: E402

PARAMS = dict(random_state=0, max_iter=4, autotune=False)


def _cluster(n_workers):
    cluster = distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1,
                                       processes=True, host="127.0.0.1",
                                       dashboard_address=":0")
    return cluster, distributed.Client(cluster)


@pytest.fixture(scope="module")
def client():
    cluster, client = _cluster(2)
    yield client
    client.close()
    cluster.close()


@pytest.fixture(scope="module")
def problem():
    X, y = make_extreme_classification(6000, 2000, 500, random_state=0)
    return X[:5000], y[:5000], X[5000:], y[5000:]


def _blocks(X, rows):
    return da.from_array(X, chunks=(rows, -1), asarray=False)


def _weights(model):
    net = model._network
    return [w for i in range(net.n_layers) for w in net.get_params(i)]


def test_one_worker_is_the_local_fit_bit_for_bit(problem):
    """Four partitions on one worker: the fit of their concatenation."""
    X, y, _, _ = problem
    cluster, client = _cluster(1)
    try:
        model = DaskBoltClassifier(client=client, **PARAMS).fit(_blocks(X, 1250), y)
        # rounds of another length are only other native calls
        other = DaskBoltClassifier(client=client, sync_interval=3, **PARAMS).fit(
            _blocks(X, 1250), y)
    finally:
        client.close()
        cluster.close()
    local = BoltClassifier(n_jobs=1, **PARAMS).fit(X, y)
    assert model.n_workers_ == 1 and model.sync_bytes_ == []
    assert model.loss_curve_ == local.loss_curve_
    for a, b, c in zip(_weights(model.to_local()), _weights(local),
                       _weights(other.to_local())):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(c, b)


def test_two_workers_reach_the_local_accuracy(client, problem):
    X, y, X_test, y_test = problem
    model = DaskBoltClassifier(client=client, **PARAMS).fit(_blocks(X, 1250), y)
    local = BoltClassifier(n_jobs=1, **PARAMS).fit(X, y)
    assert model.n_workers_ == 2
    # every averaging moved rows of both replicas: at least the input layer's
    # rows of the features the round's samples carry
    rounds = -(-2500 // (model.batch_size_ * model.sync_interval_))  # per epoch
    assert len(model.sync_bytes_) == model.n_iter_ * rounds
    assert min(model.sync_bytes_) > 0
    dask_p1 = model.to_local().score(X_test, y_test)
    assert dask_p1 >= local.score(X_test, y_test) - 0.01
    # and it is a trained model, not a copy of the local one
    assert not np.array_equal(_weights(model.to_local())[0], _weights(local)[0])


def test_predictions_on_the_workers_equal_the_local_models(client, problem):
    X, y, X_test, y_test = problem
    model = DaskBoltClassifier(client=client, **PARAMS).fit(_blocks(X, 2500), y)
    local = model.to_local()
    dX = _blocks(X_test, 300)
    pred = model.predict(dX)
    assert isinstance(pred, da.Array)
    np.testing.assert_array_equal(pred.compute(), local.predict(X_test))
    ids, probs = model.predict_topk(dX, k=3)
    ids_l, probs_l = local.predict_topk(X_test, k=3)
    np.testing.assert_array_equal(ids.compute(), ids_l)
    np.testing.assert_array_equal(probs.compute(), probs_l)
    np.testing.assert_array_equal(model.predict_proba(dX).compute(), local.predict_proba(X_test))
    assert model.score(dX, y_test) == pytest.approx(local.score(X_test, y_test))
    assert list(model.classes_) == list(local.classes_)


def test_multilabel_sparse_targets(client):
    X, Y = make_extreme_classification(3000, 800, 300, multilabel=True, n_labels=3,
                                       random_state=1)
    Y = sp.csr_matrix(Y)
    model = DaskBoltClassifier(client=client, **PARAMS).fit(_blocks(X[:2500], 700),
                                                           _blocks(Y[:2500], 700))
    local = BoltClassifier(n_jobs=1, **PARAMS).fit(X[:2500], Y[:2500])
    ids, _ = model.predict_topk(_blocks(X[2500:], 250), k=1)
    p1 = precision_at_k(Y[2500:], ids.compute(), k=1)
    assert p1 >= precision_at_k(Y[2500:], local.predict_topk(X[2500:], 1)[0], k=1) - 0.02
    pred = model.predict(_blocks(X[2500:], 250)).compute()
    assert sp.issparse(pred) and pred.shape == (500, 300)
    # P@1 is a mean over rows: the chunks' scores weighted by their rows
    # are the score of all of them
    assert model.score(_blocks(X[2500:], 150), Y[2500:]) == pytest.approx(
        model.to_local().score(X[2500:], Y[2500:]))


def test_early_stopping_over_replicas(client, problem):
    X, y, X_test, y_test = problem
    model = DaskBoltClassifier(client=client, early_stopping=True, n_iter_no_change=2,
                               **PARAMS).fit(_blocks(X, 1250), y)
    assert len(model.validation_scores_) == model.n_iter_
    assert model.best_validation_score_ == max(model.validation_scores_)
    assert model.to_local().score(X_test, y_test) > 0.9


def test_bad_inputs_get_clear_errors(client, problem):
    X, y, _, _ = problem
    with pytest.raises(TypeError, match="dask array"):
        DaskBoltClassifier(client=client).fit(X, y)
    with pytest.raises(ValueError, match="row chunks"):
        DaskBoltClassifier(client=client).fit(_blocks(X, 1000), da.from_array(y, chunks=700))
    with pytest.raises(ValueError, match="one chunk across"):
        DaskBoltClassifier(client=client).fit(da.from_array(X, chunks=(1000, 500),
                                                            asarray=False), y)
    with pytest.raises(ValueError, match="at least 2 classes"):
        DaskBoltClassifier(client=client).fit(_blocks(X, 1000), np.zeros(X.shape[0]))
    with pytest.raises(ValueError, match="sync_interval"):
        DaskBoltClassifier(client=client, sync_interval=0).fit(_blocks(X, 1000), y)
    bad = X.copy()
    bad.data[5] = np.nan
    # the worker's validation error reaches the caller as it is
    with pytest.raises(ValueError, match="NaN"):
        DaskBoltClassifier(client=client, **PARAMS).fit(_blocks(bad, 1250), y)
    # and nothing of the failed fits stays on the workers
    left = client.run(lambda dask_worker: len(getattr(dask_worker, "_skbolt_replicas", {})))
    assert set(left.values()) == {0}


def test_a_worker_killed_mid_fit_is_a_clear_error(problem):
    X, y, _, _ = problem
    cluster, client = _cluster(2)
    try:
        victim = sorted(client.scheduler_info()["workers"])[1]
        outcome = {}

        def fit():
            try:
                DaskBoltClassifier(client=client, random_state=0, max_iter=200,
                                   autotune=False).fit(_blocks(X, 1250), y)
                outcome["result"] = "finished"
            except Exception as error:
                outcome["result"] = error

        thread = threading.Thread(target=fit)
        thread.start()
        # wait until the replicas exist, then kill one worker process
        deadline = time.time() + 60
        while time.time() < deadline:
            held = client.run(lambda dask_worker: len(getattr(dask_worker,
                                                              "_skbolt_replicas", {})))
            if held.get(victim):
                break
            time.sleep(0.1)
        pid = client.run(os.getpid, workers=[victim])[victim]
        os.kill(pid, signal.SIGKILL)
        thread.join(timeout=60)
        assert not thread.is_alive(), "fit hung after a worker died"
        error = outcome["result"]
        assert isinstance(error, RuntimeError), error
        assert "left during fit" in str(error) or "restarted" in str(error)
    finally:
        client.close()
        cluster.close()


def _threads_used(estimator, X, y):
    """The OpenMP threads a fit resolves to where this runs (a scorer)."""
    return float(estimator._n_threads())


def test_grid_search_on_the_dask_joblib_backend(client, problem):
    """GridSearchCV's fits run on the workers and use the workers' one
    thread each, not the client machine's cores."""
    import joblib
    from sklearn.model_selection import GridSearchCV

    X, y, _, _ = problem
    search = GridSearchCV(BoltClassifier(random_state=0, max_iter=1, autotune=False),
                          {"hidden_layer_sizes": [(32,), (64,)]}, cv=2,
                          scoring=_threads_used)
    with joblib.parallel_backend("dask"):
        search.fit(X[:2000], y[:2000])
    # a fit that took the machine's cores (2 here) instead of the worker's
    # thread would score 2
    assert list(search.cv_results_["mean_test_score"]) == [1.0, 1.0]
    pids = client.run(os.getpid)
    assert os.getpid() not in pids.values()


def test_parameters_follow_the_scikit_learn_rules(client):
    from sklearn.base import clone

    est = DaskBoltClassifier(client=client, sync_interval=3, hidden_layer_sizes=(64,))
    params = est.get_params()
    assert params["sync_interval"] == 3 and params["client"] is client
    assert set(params) - {"client", "sync_interval"} == (
        set(BoltClassifier().get_params()) - {"warm_start"})
    copy = clone(est)
    assert copy.get_params()["hidden_layer_sizes"] == (64,) and copy.client is client
    # a pickle keeps the parameters and the fitted model, not the connection
    X, y = make_extreme_classification(1500, 300, 20, random_state=3)
    est.set_params(max_iter=2, autotune=False, random_state=0).fit(_blocks(X, 500), y)
    back = pickle.loads(pickle.dumps(est))
    assert back.client is None and back.get_params()["sync_interval"] == 3
    np.testing.assert_array_equal(back.to_local().predict(X), est.to_local().predict(X))


def test_sparse_hidden_layers_are_refused_with_a_reason(client):
    X, y = make_extreme_classification(600, 100, 10, random_state=3)
    est = DaskBoltClassifier(client=client, hidden_sparsity=0.05, max_iter=1, autotune=False)
    with pytest.raises(ValueError, match="dense hidden layers only"):
        est.fit(_blocks(X, 300), y)


@pytest.fixture(scope="module")
def interactions():
    from skbolt.datasets import make_interactions, split_users

    b = make_interactions(1500, 300, n_groups=10, random_state=0)
    return split_users(b.X, test_size=0.2, random_state=0)


REC = dict(hidden_layer_sizes=(64,), max_iter=10, random_state=0, autotune=False)


def test_recommender_one_partition_is_the_local_fit(client, interactions):
    """One chunk goes to one worker: the local fit, re-splits included."""
    from skbolt import BoltRecommender
    from skbolt.dask import DaskBoltRecommender

    s = interactions
    model = DaskBoltRecommender(client=client, **REC).fit(_blocks(s.train, s.train.shape[0]))
    local = BoltRecommender(n_jobs=1, **REC).fit(s.train)
    assert model.n_workers_ == 1
    for a, b in zip(_weights(model.to_local()), _weights(local)):
        np.testing.assert_array_equal(a, b)


def test_recommender_on_two_workers(client, interactions):
    from skbolt import BoltRecommender
    from skbolt.dask import DaskBoltRecommender

    s = interactions
    model = DaskBoltRecommender(client=client, **REC).fit(_blocks(s.train, 300))
    local = BoltRecommender(n_jobs=1, **REC).fit(s.train)
    assert model.n_workers_ == 2 and min(model.sync_bytes_) > 0
    dX = _blocks(s.test_in, 100)
    ids, scores = model.recommend(dX, n=5)
    ids_l, scores_l = model.to_local().recommend(s.test_in, n=5)
    np.testing.assert_array_equal(ids.compute(), ids_l)
    np.testing.assert_array_equal(scores.compute(), scores_l)
    np.testing.assert_array_equal(model.predict(dX).compute(), model.to_local().predict(s.test_in))
    # NDCG@10 on held-out users, within two points of one machine's
    ndcg = model.score(dX, _blocks(s.test_out, 100))
    assert ndcg >= local.score(s.test_in, s.test_out) - 0.02
    # the chunks' scores weighted by rows: the local score of the same rows
    one_chunk = model.score(_blocks(s.test_in, s.test_in.shape[0]),
                            _blocks(s.test_out, s.test_in.shape[0]))
    assert one_chunk == pytest.approx(model.to_local().score(s.test_in, s.test_out))
    ids, _ = model.similar_items([0, 1], n=3)
    assert ids.shape == (2, 3)


def test_recommender_passes_input_scaling_and_measures_auto_once(client, interactions):
    """Heavy-tailed noise counts: one partition is the local fit (the same
    measured scaling, bit for bit); on two workers the first worker's
    choice is every replica's, and the model scores as one machine's."""
    from skbolt import BoltRecommender
    from skbolt.dask import DaskBoltRecommender

    s = interactions
    train = s.train.copy()
    train.data = 1 + np.floor(20 * np.random.RandomState(0).pareto(1.2, train.nnz))
    assert DaskBoltRecommender(input_scaling="log1p").get_params()["input_scaling"] == "log1p"
    one = DaskBoltRecommender(client=client, **REC).fit(_blocks(train, train.shape[0]))
    local = BoltRecommender(n_jobs=1, init="centroids", **REC).fit(train)
    assert one.input_scaling_ == local.input_scaling_ != "raw"
    for a, b in zip(_weights(one.to_local()), _weights(local)):
        np.testing.assert_array_equal(a, b)
    two = DaskBoltRecommender(client=client, **REC).fit(_blocks(train, 600))
    assert two.n_workers_ == 2 and two.input_scaling_ != "raw"
    assert two.score(_blocks(s.test_in, 100), _blocks(s.test_out, 100)) >= \
        local.score(s.test_in, s.test_out) - 0.02


def test_adopting_replicas_read_their_rows_through_the_measured_scaling(monkeypatch,
                                                                        interactions):
    """A replica that did not measure (its rows read raw until then) takes
    the first replica's input_scaling_ and makes its epoch 0 again with it."""
    from sklearn.preprocessing import normalize

    from skbolt import BoltRecommender
    from skbolt import dask as skdask
    from skbolt._spectral import scale_values
    from skbolt.datasets import hold_out_items

    train = interactions.train.copy()
    train.data = 1 + np.floor(20 * np.random.RandomState(0).pareto(1.2, train.nnz))
    first = BoltRecommender(n_jobs=1, init="centroids", **REC)
    first._setup(first._training_data(train[:600], None), search=True)
    assert first.input_scaling_ not in (None, "raw")
    other = BoltRecommender(n_jobs=1, init="centroids", **REC)
    data = other._training_data(train[600:], None)
    assert other.input_scaling_ is None  # still to be measured: read raw so far
    replica = skdask._Replica(other, data, 1)
    monkeypatch.setattr(skdask, "_replica", lambda key: replica)
    shared = {k: v for k, v in vars(first).items() if k != "_network"}
    skdask._adopt("k", shared, first._network.config)
    X_in, _ = hold_out_items(train[600:], 0.2, random_state=data.seed)
    want = normalize(scale_values(X_in, first.input_scaling_))
    np.testing.assert_allclose(data.at(0)[0].toarray(), want.toarray(), rtol=1e-6)
