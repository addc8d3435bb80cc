"""The shared estimator code: problem statistics, plans, the row stream and
the one training driver."""
import math
import signal
import threading

import numpy as np
import pytest
import scipy.sparse as sp

from skbolt import BoltClassifier, _base, _rules, _training
from skbolt._network import Network, labels_to_csr
from skbolt.datasets import make_extreme_classification


@pytest.fixture(scope="module")
def problem_data():
    X, Y = make_extreme_classification(1200, 300, 400, multilabel=True, n_labels=2,
                                       random_state=5)
    return X, Y


def _plan(X, Y, **params):
    params = {**BoltClassifier().get_params(), "hidden_layer_sizes": (32,), **params}
    problem = _base.Problem.from_data(X, Y, True)
    return _base.Plan.make(params, problem, seed=7, threads=2, budget=None)


def test_problem_statistics_count_the_data(problem_data):
    X, Y = problem_data
    p = _base.Problem.from_data(X, Y, True)
    labels_per_row = np.asarray(Y.sum(axis=1)).ravel()
    assert (p.n_samples, p.n_features, p.n_outputs) == (1200, 300, 400)
    assert p.nnz_per_row == pytest.approx(np.count_nonzero(X.toarray()) / 1200)
    assert p.mean_labels == pytest.approx(max(1.0, labels_per_row.mean()))
    assert p.max_labels == labels_per_row.max()
    assert p.rare_label_share == _rules.rare_label_share(Y)
    assert p.n_labelled == np.count_nonzero(Y.toarray().any(axis=0))


def test_tables_are_shaped_for_the_labels_rows_carry():
    # 50,000 outputs of which the rows carry 400: the tables hold only
    # those (the core leaves the rest out), so they are shaped and sized as
    # for 400 outputs, and the weights are still sized for 50,000
    rng = np.random.default_rng(0)
    X = sp.random(2000, 300, density=0.05, format="csr", random_state=1, dtype=np.float32)
    labels = rng.choice(50_000, size=400, replace=False)[rng.integers(0, 400, 2000)]
    Y = sp.csr_matrix((np.ones(2000), (np.arange(2000), labels)), shape=(2000, 50_000))
    few = _plan(X, Y, output_sparsity=0.01)
    # row i carries i, i + 2000, ...: every output is some row's label
    every = _plan(X, sp.csr_matrix((np.ones(50_000), (np.arange(50_000) % 2000,
                                                      np.arange(50_000)))),
                  output_sparsity=0.01)
    assert few.problem.n_labelled == np.unique(labels).size
    assert every.problem.n_labelled == 50_000
    assert few.config["range_pow"] < every.config["range_pow"]
    assert few.memory["tables"] < every.memory["tables"] / 4
    assert few.memory["weights"] == every.memory["weights"]


def test_plan_variants_resolve_their_overrides(problem_data):
    X, Y = problem_data
    plan = _plan(X, Y)
    assert plan.config["hidden_sizes"] == (32,)
    core = Network.estimate_memory(
        plan.config, plan.resolved.batch_size, math.ceil(plan.problem.nnz_per_row), 2)
    # the core's parts plus the driver's copy of the weights (and of the
    # tables with early stopping)
    assert plan.memory["snapshot"] == core["weights"]
    sparse = _plan(X, Y, output_sparsity=0.1).memory
    stopping = _plan(X, Y, output_sparsity=0.1, early_stopping=True).memory
    assert sparse["tables"] > 0 and sparse["snapshot"] == sparse["weights"]
    assert stopping["snapshot"] == sparse["weights"] + sparse["tables"]
    assert plan.memory["total"] == core["total"] + plan.memory["snapshot"]
    other = plan.variant({"learning_rate_init": 0.0123, "hidden_layer_sizes": (16,)})
    assert other.resolved.learning_rate_init == 0.0123
    assert other.config["hidden_sizes"] == (16,) and other.seed == plan.seed
    assert plan.resolved.hidden_layer_sizes == (32,)  # the original is untouched
    # fewer rows: the epoch rule sees them (120k visits over the rows, at least 5)
    small = plan.for_rows(10_000)
    want = _rules.auto_max_iter(10_000, plan.problem.rare_label_share)
    assert small.resolved.max_iter == want != plan.resolved.max_iter


def test_seeded_stream_is_per_epoch_permutations_readable_anywhere():
    rows = np.arange(10, 40)
    stream = _training.RowStream.seeded(rows, seed=3)
    expected = np.concatenate([np.random.RandomState(3 + e).permutation(rows)
                               for e in range(3)])
    np.testing.assert_array_equal(stream.take(0, 90), expected)
    # any piece, in any order, across epoch boundaries
    np.testing.assert_array_equal(stream.take(25, 40), expected[25:65])
    np.testing.assert_array_equal(stream.take(3, 4), expected[3:7])


def test_drawn_stream_reads_forwards_only():
    rows = np.arange(20)
    rng = np.random.RandomState(1)
    stream = _training.RowStream.drawn(rows, rng)
    ref = np.random.RandomState(1)
    first, second = ref.permutation(rows), ref.permutation(rows)
    np.testing.assert_array_equal(stream.take(0, 30), np.concatenate([first, second[:10]]))
    with pytest.raises(ValueError, match="forwards"):
        stream.take(0, 5)


@pytest.mark.parametrize("chunk_batches", [1, 3])
def test_chunked_run_trains_the_same_network(problem_data, chunk_batches):
    """Splitting an epoch into native calls of whole batches changes nothing:
    the batches, and so the model, are the same as with one call."""
    X, y = problem_data
    plan = _plan(X, y, output_sparsity=0.1)
    Y = labels_to_csr(y, y.shape[1])
    r = plan.resolved
    nets = []
    for chunk in (None, chunk_batches * r.batch_size):
        run = _training.Run(Network(plan.config), r.batch_size, r.learning_rate_init, 1,
                        _training.RowStream.seeded(np.arange(X.shape[0]), 4))
        epochs = []
        for e in range(2):
            run.advance(_training.TrainingData(X, Y), (e + 1) * X.shape[0], 2, chunk=chunk,
                        on_epoch=epochs.append)
        assert epochs == [1, 2] and run.epochs == 2
        assert run.network.sparse_output and run.network.frozen
        nets.append(run.network)
    for layer in range(2):
        for a, b in zip(nets[0].get_params(layer), nets[1].get_params(layer)):
            np.testing.assert_array_equal(a, b)


def test_run_freezes_tables_when_the_schedule_says(problem_data):
    X, y = problem_data
    plan = _plan(X, y, output_sparsity=0.1)
    Y = labels_to_csr(y, y.shape[1])
    r = plan.resolved
    n = X.shape[0]
    # two epochs trained before this run count towards freeze_after=3
    run = _training.Run(Network(plan.config), r.batch_size, r.learning_rate_init, 3,
                    _training.RowStream.seeded(np.arange(n), 0), epochs_before=2)
    run.advance(_training.TrainingData(X, Y), n // 2, 1)
    assert not run.network.frozen  # mid-epoch: tables freeze at boundaries only
    run.advance(_training.TrainingData(X, Y), n, 1)
    assert run.network.frozen and run.epochs == 3


def _params(network):
    return [a.copy() for wb in (network.get_params(i) for i in range(network.n_layers))
            for a in wb]


def _same(a, b):
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


def _interrupting(after_calls, n_rows, seen):
    """Network.train that records the weights at every epoch boundary (by
    rows trained) in ``seen`` and raises KeyboardInterrupt when call number
    ``after_calls`` returns, as Python delivers a Ctrl-C pressed in C."""
    train = Network.train
    count = {"calls": 0, "rows": 0}

    def wrapped(self, X, Y, rows, *args, **kwargs):
        if count["calls"] == 0:
            seen["start"] = _params(self)
        out = train(self, X, Y, rows, *args, **kwargs)
        count["calls"] += 1
        count["rows"] += len(rows)
        if count["rows"] % n_rows == 0:
            seen["boundary"] = _params(self)
        if count["calls"] == after_calls:
            seen["interrupted"] = _params(self)
            raise KeyboardInterrupt
        return out

    return wrapped


@pytest.mark.parametrize("early_stopping,complete", [(False, 1), (True, 1), (False, 2)])
def test_ctrl_c_mid_epoch_rolls_back_to_the_last_complete_epoch(problem_data, monkeypatch,
                                                                 early_stopping, complete):
    """A KeyboardInterrupt raised when a native call returns (where Python
    delivers a Ctrl-C pressed during it) stops the fit, puts the network
    back at its last complete epoch, and reaches the caller. (After two
    epochs, the kept copy of the first has been overwritten with the
    second's weights: ``_Checkpoint``.)"""
    X, y = problem_data
    seen = {}
    n = X.shape[0] - (round(0.1 * X.shape[0]) if early_stopping else 0)
    # 19 calls of 64 rows an epoch (1200 rows, batch 16): call 23 is mid-epoch 2
    monkeypatch.setattr(Network, "train",
                        _interrupting(complete * _base.CHUNKS_PER_EPOCH + 3, n, seen))
    clf = BoltClassifier(hidden_layer_sizes=(32,), max_iter=5, batch_size=16, autotune=False,
                         random_state=0, early_stopping=early_stopping, n_iter_no_change=9)
    with pytest.raises(KeyboardInterrupt), \
            pytest.warns(UserWarning, match=f"after {complete} complete"):
        clf.fit(X, y)
    assert clf.n_iter_ == complete and len(clf.loss_curve_) == complete
    assert clf._epochs_done == complete
    after = _params(clf._network)
    # the last complete epoch's weights, not the ones three calls on
    assert _same(after, seen["boundary"]) and not _same(after, seen["interrupted"])
    monkeypatch.undo()
    ids, _ = clf.predict_topk(X[:50], k=3)
    assert ids.shape == (50, 3)
    clf.partial_fit(X, y)  # and training can go on
    assert len(clf.loss_curve_) == complete + 1 and clf._epochs_done == complete + 1


def test_ctrl_c_in_the_first_epoch_of_a_sampled_network_gives_the_created_one(
        problem_data, monkeypatch):
    """A fresh sampled network is kept as its configuration, not copied
    (``_Checkpoint``): the rollback creates it again, equal to the network
    before its centroid start, with tables built from those rows."""
    X, y = problem_data
    seen = {}
    start = Network.init_from_centroids

    def recorded(self, *args, **kwargs):
        seen["created"] = _params(self)
        seen["pristine"] = self.pristine
        return start(self, *args, **kwargs)

    monkeypatch.setattr(Network, "init_from_centroids", recorded)
    monkeypatch.setattr(Network, "train", _interrupting(3, X.shape[0], seen))
    clf = BoltClassifier(hidden_layer_sizes=(32,), max_iter=3, batch_size=16, autotune=False,
                         output_sparsity=0.2, random_state=0)
    with pytest.raises(KeyboardInterrupt), pytest.warns(UserWarning, match="after 0 complete"):
        clf.fit(X, y)
    assert seen["pristine"] and clf._network.sparse_output
    after = _params(clf._network)
    assert _same(after, seen["created"]) and not _same(after, seen["start"])
    monkeypatch.undo()
    rebuilt = Network.from_state(clf._network.get_state(tables=False))
    rebuilt.rebuild_tables(False, 1)
    for r in range(5):  # tables from the created rows, as a copy would have had
        np.testing.assert_array_equal(clf._network.candidates(X, r), rebuilt.candidates(X, r))
    assert clf.fit(X, y).n_iter_ == 3


@pytest.mark.parametrize("warm,complete", [(False, 1), (False, 2), (True, 1), (True, 2)])
def test_ctrl_c_rolls_a_sampled_network_back_from_its_kept_rows(problem_data, monkeypatch,
                                                               warm, complete):
    """After the first epoch a sampled network's checkpoint keeps only the
    output rows that can have moved (seen or moved by Adam) on top of the
    created network (a fresh fit) or of a whole copy (a warm start): the
    rollback still gives the last complete epoch's weights exactly."""
    X, y = problem_data
    clf = BoltClassifier(hidden_layer_sizes=(32,), max_iter=4, batch_size=16, autotune=False,
                         output_sparsity=0.2, random_state=0, warm_start=warm)
    if warm:  # a first fit on a third of the labels: the others are unseen
        clf.set_params(max_iter=1).fit(X, y.multiply(np.arange(400) % 3 == 0).tocsr())
        clf.set_params(max_iter=4)
    seen = {}
    n = X.shape[0]
    monkeypatch.setattr(Network, "train",
                        _interrupting(complete * _base.CHUNKS_PER_EPOCH + 5, n, seen))
    with pytest.raises(KeyboardInterrupt), \
            pytest.warns(UserWarning, match=f"after {complete} complete"):
        clf.fit(X, y)
    after = _params(clf._network)
    assert _same(after, seen["boundary"]) and not _same(after, seen["interrupted"])
    # every label has been seen by the end of a complete epoch on y: the
    # flags come from the kept state, not from the base (none, or a third)
    assert clf._network.seen.sum() == np.unique(y.indices).size
    monkeypatch.undo()
    clf.partial_fit(X, y)


def test_ctrl_c_in_the_first_epoch_or_a_partial_fit_keeps_the_starting_network(
        problem_data, monkeypatch):
    X, y = problem_data
    seen = {}
    monkeypatch.setattr(Network, "train", _interrupting(3, X.shape[0], seen))
    clf = BoltClassifier(hidden_layer_sizes=(32,), max_iter=5, batch_size=16, autotune=False,
                         random_state=0)
    with pytest.raises(KeyboardInterrupt), pytest.warns(UserWarning, match="after 0 complete"):
        clf.fit(X, y)
    assert clf.n_iter_ == 0 and clf.loss_curve_ == [] and clf._epochs_done == 0
    assert _same(_params(clf._network), seen["start"])
    assert not _same(seen["start"], seen["interrupted"])
    monkeypatch.undo()
    clf.partial_fit(X, y)
    before, curve = _params(clf._network), list(clf.loss_curve_)
    monkeypatch.setattr(Network, "train", _interrupting(5, X.shape[0], seen))
    with pytest.raises(KeyboardInterrupt), pytest.warns(UserWarning, match="after 0 complete"):
        clf.partial_fit(X, y)
    # partial_fit is one epoch: interrupted, nothing of it remains
    assert _same(_params(clf._network), before) and clf.loss_curve_ == curve
    assert not _same(before, seen["interrupted"])


def test_failed_refit_leaves_the_fitted_estimator_as_it_was(problem_data, monkeypatch):
    """Ctrl-C in the autotuning search, a refused memory plan or bad data:
    a refit that raises before training changes no attribute."""
    X, y = problem_data
    clf = BoltClassifier(hidden_layer_sizes=(32,), max_iter=1, batch_size=16, autotune=False,
                         random_state=0).fit(X, y)
    before = dict(clf.__dict__)
    expected = clf.predict_topk(X[:30], k=3)

    def interrupted_search(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(_base._autotune, "search", interrupted_search)
    attempts = [
        (dict(autotune=True), (X, y[:, :200]), KeyboardInterrupt),  # another label space
        (dict(max_memory=1000), (X, y), MemoryError),
        # n_features_in_ resets to 100 before y's length is found wrong
        ({}, (X[:, :100], y[:100]), ValueError),
    ]
    for params, args, error in attempts:
        clf.set_params(**params)
        with pytest.raises(error):
            clf.fit(*args)
        clf.set_params(autotune=False, max_memory="auto")
        assert clf.__dict__.keys() == before.keys()
        assert [k for k, v in before.items() if clf.__dict__[k] is not v] == []
        got = clf.predict_topk(X[:30], k=3)
        assert all(np.array_equal(a, b) for a, b in zip(got, expected))


def test_real_ctrl_c_stops_within_one_chunk():
    """SIGINT sent from a timer thread while fit runs native code: the
    KeyboardInterrupt reaches the caller before another native call starts,
    and the model predicts and trains on."""
    X, y = make_extreme_classification(20_000, 2_000, 500, random_state=1)
    clf = BoltClassifier(hidden_layer_sizes=(128,), max_iter=50, autotune=False,
                         random_state=0, n_jobs=1)
    sent, calls = threading.Event(), {"before": 0, "after": 0}
    train = Network.train

    def counted(self, *args, **kwargs):
        calls["after" if sent.is_set() else "before"] += 1
        if calls["before"] == _base.CHUNKS_PER_EPOCH + 2 and not sent.is_set():
            # mid-second-epoch: the signal lands while this call runs in C
            threading.Timer(0.0, lambda: (sent.set(), signal.pthread_kill(
                threading.main_thread().ident, signal.SIGINT))).start()
        return train(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Network, "train", counted)
        # Python's own SIGINT handler, whatever an earlier test or library left
        previous = signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            with pytest.raises(KeyboardInterrupt), \
                    pytest.warns(UserWarning, match="interrupted"):
                clf.fit(X, y)
        finally:
            signal.signal(signal.SIGINT, previous)
    assert sent.is_set() and calls["after"] <= 1, calls
    assert 1 <= clf.n_iter_ < 50 and len(clf.loss_curve_) == clf.n_iter_
    assert clf.predict_topk(X[:20], k=3)[0].shape == (20, 3)
    done = len(clf.loss_curve_)
    clf.partial_fit(X[:2_000], y[:2_000])
    assert len(clf.loss_curve_) == done + 1


def test_rebuild_interval_parameter(problem_data):
    X, y = problem_data
    params = {**BoltClassifier().get_params(), "output_sparsity": 0.1}
    n, batch = 100_000, 1024

    def interval(value):
        r = _rules.resolve({**params, "rebuild_interval": value, "batch_size": batch}, n, 300,
                           400, 10.0, True)
        return r.hash_params["rebuild_interval"]

    # BOLT: every 1/100 epoch from 100k rows (98 batches -> 1)
    assert interval("bolt") == max(1, round(math.ceil(n / batch) / 100))
    assert _rules.resolve({**params, "rebuild_interval": "bolt", "batch_size": 32}, 2000, 300,
                          400, 10.0, True).hash_params["rebuild_interval"] == round(63 / 20)
    assert interval(7) == 7
    assert interval("auto") >= interval("bolt")  # ours only ever rebuilds less often
    for bad in (0, -1, 2.5, "often", True):
        with pytest.raises(ValueError, match="rebuild_interval"):
            interval(bad)
    clf = BoltClassifier(hidden_layer_sizes=(16,), max_iter=1, output_sparsity=0.1,
                         rebuild_interval=5, autotune=False, random_state=0).fit(X, y)
    assert clf.hash_params_["rebuild_interval"] == 5


def test_warm_start_keeps_the_network_whatever_the_memory_budget(problem_data):
    """A warm fit reuses the allocated network: it re-reads the schedule from
    the rules and plans no memory, so a smaller max_memory cannot refuse it."""
    X, y = problem_data
    clf = BoltClassifier(hidden_layer_sizes=(32,), max_iter=1, autotune=False, warm_start=True,
                         random_state=0).fit(X, y)
    clf.set_params(max_memory=clf.memory_bytes_ // 4, max_iter=2)
    clf.fit(X, y)
    assert len(clf.loss_curve_) == 3 and clf.max_iter_ == 2


def test_resplit_data_splits_every_row_anew_each_epoch():
    """Each epoch's input and target parts partition every row's items, the
    targets are the configured share, and the split changes between epochs
    but not between two reads of one epoch; held-out rows have a split of
    their own."""
    rng = np.random.RandomState(0)
    X = sp.random(50, 40, density=0.3, format="csr", random_state=rng)
    X.data[:] = 1.0
    data = _training.ResplitData(X, 0.25, seed=3)
    parts = [data.at(e) for e in (0, 1, 1)]
    for X_in, Y in parts:
        np.testing.assert_array_equal((X_in + Y).toarray(), X.toarray())
        assert X_in.multiply(Y).nnz == 0
        n, t = np.diff(X.indptr), np.diff(Y.indptr)
        expected = np.where(n >= 2, np.clip(np.round(0.25 * n), 1, n - 1), 0)
        np.testing.assert_array_equal(t, expected)
    assert (parts[0][1] != parts[1][1]).nnz > 0
    assert (parts[1][1] != parts[2][1]).nnz == 0
    rows = np.arange(10, 20)
    X_val, Y_val = data.held_out(rows)
    np.testing.assert_array_equal((X_val + Y_val).toarray(), X[rows].toarray())
    assert (Y_val != data.held_out(rows)[1]).nnz == 0


def test_threadpoolctl_limits_reach_the_core():
    """n_jobs=None takes OpenMP's thread count, so a threadpoolctl limit
    (how joblib's workers avoid oversubscription) reaches the native calls."""
    from threadpoolctl import threadpool_info, threadpool_limits

    if not any(i["user_api"] == "openmp" for i in threadpool_info()):
        pytest.skip("the core was built without OpenMP")
    with threadpool_limits(limits=1, user_api="openmp"):
        assert BoltClassifier()._n_threads() == 1
        assert BoltClassifier(n_jobs=2)._n_threads() == 2  # an explicit n_jobs wins
    with threadpool_limits(limits=2, user_api="openmp"):
        assert BoltClassifier()._n_threads() == 2


def test_predictions_under_a_progress_bar_equal_one_native_call(monkeypatch, capsys):
    """With ``verbose`` a long prediction is made in row chunks under a bar:
    the same results as the single call, for every prediction method."""
    from skbolt import BoltClassifier, BoltRecommender, _base
    from skbolt.datasets import make_extreme_classification, make_interactions

    X, y = make_extreme_classification(n_samples=1500, n_features=400, n_classes=600,
                                       random_state=4)
    clf = BoltClassifier(max_iter=2, autotune=False, random_state=0).fit(X, y)
    rec = BoltRecommender(max_iter=2, random_state=0).fit(
        make_interactions(300, 700, random_state=1).X)
    Xr = make_interactions(300, 700, random_state=2).X
    quiet = (clf.predict_topk(X, k=7), clf.predict(X), clf.predict_proba(X),
             clf.decision_function(X), rec.recommend(Xr, n=9))
    monkeypatch.setattr(_base, "PREDICT_BAR_ROWS", 100)
    monkeypatch.setattr(_base, "PREDICT_CHUNK", 128)  # uneven: 1500 = 11 x 128 + 92
    clf.verbose = rec.verbose = 1
    capsys.readouterr()
    loud = (clf.predict_topk(X, k=7), clf.predict(X), clf.predict_proba(X),
            clf.decision_function(X), rec.recommend(Xr, n=9))
    assert "predicting" in capsys.readouterr().err  # the bar was shown
    for a, b in zip(quiet, loud):
        for u, v in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,)):
            np.testing.assert_array_equal(u, v)
