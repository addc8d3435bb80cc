"""Autotuning inside fit, the memory budget and estimate_memory."""
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.model_selection import GridSearchCV

from skbolt import BoltClassifier, _autotune, _base, _rules
from skbolt.datasets import make_extreme_classification

AUTO = dict(hidden_layer_sizes="auto", learning_rate_init="auto", output_sparsity="auto",
            max_iter="auto")


@pytest.fixture(autouse=True)
def _halving(monkeypatch):
    # the test problems are small; below RACE_BELOW rows the search races
    # whole curves instead of halving (its own tests below restore it)
    monkeypatch.setattr(_autotune, "RACE_BELOW", 0)


@pytest.fixture(scope="module")
def xc_data():
    X, y = make_extreme_classification(n_samples=3000, n_features=800, n_classes=600,
                                       random_state=3)
    return X[:2500], y[:2500], X[2500:], y[2500:]


def _resolved(n_outputs=600, **params):
    p = {**AUTO, "batch_size": "auto", "hash_function": "auto", "loss": "auto",
         "sparse_inference": "auto", "dropout": "auto", **params}
    return _rules.resolve(p, 2500, 800, n_outputs, 20.0, False), p


def test_candidates_vary_only_auto_parameters():
    base, params = _resolved()
    grid = _autotune.candidates(params, base, np.random.RandomState(0), 27)
    assert grid[0] == {"learning_rate_init": base.learning_rate_init,
                       "hidden_layer_sizes": base.hidden_layer_sizes,
                       "output_sparsity": base.output_sparsity}
    assert len(grid) == 12 and len({repr(sorted(g.items())) for g in grid}) == 12
    # never a costlier network than the rules'
    assert all(g["hidden_layer_sizes"][0] <= base.hidden_layer_sizes[0]
               and g["output_sparsity"] <= base.output_sparsity for g in grid)
    # an explicit value (as a GridSearchCV grid sets it) is never searched
    base, params = _resolved(learning_rate_init=0.01, hidden_layer_sizes=(64,))
    grid = _autotune.candidates(params, base, np.random.RandomState(0), 9)
    assert all(set(g) == {"output_sparsity"} for g in grid)
    assert len(grid) == 2
    # nothing left to search
    base, params = _resolved(learning_rate_init=0.01, hidden_layer_sizes=(64,), output_sparsity=0.1)
    assert _autotune.candidates(params, base, np.random.RandomState(0), 9) == []
    # a dense output layer has no sparsity to search
    base, params = _resolved(n_outputs=100)
    assert all("output_sparsity" not in g for g in
               _autotune.candidates(params, base, np.random.RandomState(0), 9))


@pytest.mark.parametrize("n_candidates", [1, 2, 3, 5, 9, 27])
@pytest.mark.parametrize("first, setup", [(1.0, 0.0), (1.5, 2e7)])
def test_plan_spends_at_most_the_budget_whoever_survives(n_candidates, first, setup):
    work, n_train = 1e9, 10_000
    # candidates of unequal cost, as width and sparsity make them
    costs = list(np.random.RandomState(n_candidates).uniform(2e3, 2e4, n_candidates))
    b0 = _autotune.plan_visits(costs, work, n_train, 100, setup * n_candidates, first)
    assert b0 >= 100

    def replay(survivors):
        # visit by visit: survivors continue from where they stopped, and
        # visits within the first n_train of the stream cost `first`
        spent, alive, reached, target = setup * n_candidates, list(range(n_candidates)), 0, b0
        count = n_candidates
        while True:
            per_trial = sum(first if v < n_train else 1.0 for v in range(reached, target))
            spent += sum(costs[i] for i in alive) * per_trial
            if count == 1:
                return spent
            count = max(1, count // _autotune.ETA)
            alive = survivors(alive)[:count]
            reached, target = target, target * _autotune.ETA

    rng = np.random.RandomState(0)
    worst = replay(lambda a: sorted(a, key=lambda i: -costs[i]))
    assert worst <= work
    for _ in range(5):  # any other survivors spend less
        assert replay(lambda a: list(rng.permutation(a))) <= worst
    assert worst > work / 2  # and the plan does not leave most of it unused
    assert _autotune.plan_visits(costs, work, n_train, 10**9) == 0
    # creating the networks alone exceeds the budget: no search
    assert _autotune.plan_visits(costs, work, n_train, 100, 2 * work) == 0


def test_fit_work_counts_epochs_setup_and_first_epoch():
    base, _ = _resolved()                     # 600 outputs: sampled output layer
    one = base.replace(max_iter=1)
    two = base.replace(max_iter=2)
    per_visit = _autotune.sample_cost(base, 20.0, 600)
    setup = _autotune.setup_cost(base, 800, 600)
    assert setup > 0
    w1 = _autotune.fit_work(one, 2500, 20.0, 800, 600)
    w2 = _autotune.fit_work(two, 2500, 20.0, 800, 600)
    assert w1 == pytest.approx(setup + 2500 * per_visit * _autotune.FIRST_EPOCH_COST)
    assert w2 - w1 == pytest.approx(2500 * per_visit)
    dense, _ = _resolved(n_outputs=100)      # no tables: no first-epoch surcharge
    assert _autotune.first_epoch_cost(dense, 100) == 1.0


def test_autotuned_fit_records_trials_and_is_deterministic(xc_data):
    X, y, Xt, yt = xc_data
    # max_iter is explicit to keep the test short: the budget scales with it
    a = BoltClassifier(random_state=0, autotune=True, max_iter=8, n_jobs=2).fit(X, y)
    b = BoltClassifier(random_state=0, autotune=True, max_iter=8, n_jobs=1).fit(X, y)
    assert a.autotune_results_, "the search ran no trial"
    keys = {"params", "rung", "epochs", "validation_score", "seconds"}
    trials = [r for r in a.autotune_results_ if "centroid_finish" not in r["params"]]
    assert all(set(r) == keys for r in trials)
    # besides, at most the winner scored again with the centroid finish
    finished = [r for r in a.autotune_results_ if r not in trials]
    assert all(set(r) == keys | {"temperature"} for r in finished) and len(finished) <= 1
    # the winner is the candidate that reached the last rung
    last = max(r["rung"] for r in trials)
    finalists = [r["params"] for r in trials if r["rung"] == last]
    assert len(finalists) == 1
    assert {k: v for k, v in a.best_params_.items()
            if k not in ("centroid_finish", "max_iter")} == finalists[0]
    # no trial trains longer than the final fit
    assert max(r["epochs"] for r in a.autotune_results_) <= a.max_iter_
    # the resolved attributes are the winner's
    for k, v in a.best_params_.items():
        assert getattr(a, k + "_") == v
    # same random_state: same trials, same scores, same model, any n_jobs
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in a.autotune_results_]
    assert strip == [{k: v for k, v in r.items() if k != "seconds"} for r in b.autotune_results_]
    np.testing.assert_array_equal(a.predict_proba(Xt), b.predict_proba(Xt))
    # and the model is a real one (the most frequent of the 440 classes is
    # under 2% of the rows; 8 epochs at the rules' rate or half of it)
    assert a.score(Xt, yt) > 0.3


@pytest.mark.filterwarnings("ignore:The number of unique classes")
def test_autotune_off_and_small_data(xc_data):
    X, y, _, _ = xc_data
    clf = BoltClassifier(random_state=0, autotune=False, max_iter=2).fit(X, y)
    assert clf.autotune_results_ == [] and clf.best_params_ == {}
    # "auto" does not search below CV_MIN_SAMPLES rows, and cross-validates
    # up to AUTOTUNE_MIN_SAMPLES
    clf = BoltClassifier(random_state=0, max_iter=2).fit(X[:_base.CV_MIN_SAMPLES - 1],
                                                         y[:_base.CV_MIN_SAMPLES - 1])
    assert clf.autotune_results_ == []
    clf = BoltClassifier(random_state=0, max_iter=2).fit(X[:500], y[:500])
    assert {e["folds"] for e in clf.autotune_results_} == {_base.CV_FOLDS}
    with pytest.raises(ValueError, match="autotune"):
        BoltClassifier(autotune="yes").fit(X, y)
    for bad in (0, -1.0, "soon", "xs"):
        with pytest.raises(ValueError, match="autotune_budget"):
            BoltClassifier(autotune=True, autotune_budget=bad).fit(X, y)


def test_autotune_verbose_names_each_trial(xc_data, capsys):
    X, y, _, _ = xc_data
    clf = BoltClassifier(random_state=0, autotune=True, verbose=1, max_iter=4).fit(X, y)
    out = capsys.readouterr()
    text = out.out + out.err
    assert text.count("autotune rung") == len(clf.autotune_results_) > 0


def test_seconds_budget_runs(xc_data):
    X, y, _, _ = xc_data
    clf = BoltClassifier(random_state=0, autotune=True, autotune_budget="3s").fit(X, y)
    assert clf.autotune_results_
    assert sum(r["seconds"] for r in clf.autotune_results_ if r["rung"] == 0) < 30


def test_grid_search_overrides_the_search(xc_data):
    X, y, _, _ = xc_data
    grid = GridSearchCV(BoltClassifier(random_state=0, autotune=True, max_iter=3),
                        {"learning_rate_init": [1e-3, 3e-3]}, cv=2)
    grid.fit(X, y)
    best = grid.best_estimator_
    assert best.learning_rate_init_ == grid.best_params_["learning_rate_init"]
    assert all("learning_rate_init" not in r["params"] for r in best.autotune_results_)


def test_memory_budget_parsing():
    assert _base.memory_budget("4GB") == 4 * 10**9
    assert _base.memory_budget("2GiB") == 2 * 2**30
    assert _base.memory_budget("512 mb") == 512 * 10**6
    assert _base.memory_budget(12345) == 12345
    avail = _base.available_memory()
    auto = _base.memory_budget("auto")
    assert auto is None or 0 < auto <= avail
    for bad in ("lots", "-1GB", 0, -5, True, [1]):
        with pytest.raises(ValueError, match="max_memory"):
            _base.memory_budget(bad)


def test_fit_to_memory_shrinks_tables_in_order():
    cfg = dict(n_features=100, n_outputs=100_000, hidden_sizes=(64,), active_size=500,
               hash_L=64, range_pow=15, reservoir=16)

    def estimate(c):  # weights plus tables, as the core counts them
        tables = (c["hash_L"] << c["range_pow"]) * (c["reservoir"] + 1) * 4
        return {"weights": 4 * 3 * 100_000 * 64, "tables": tables,
                "total": 4 * 3 * 100_000 * 64 + tables}

    full = estimate(cfg)
    shrunk, need = _rules.fit_to_memory(cfg, estimate, full["total"] - 1)
    assert need == estimate(shrunk) and need["total"] <= full["total"] - 1
    assert shrunk["reservoir"] < 16 and shrunk["range_pow"] == 15 and shrunk["hash_L"] == 64
    tight, need = _rules.fit_to_memory(cfg, estimate, 4 * 3 * 100_000 * 64 + 2**20)
    assert tight["reservoir"] == 1 and tight["range_pow"] <= 15
    assert need["total"] <= 4 * 3 * 100_000 * 64 + 2**20
    with pytest.raises(MemoryError, match="GB"):
        _rules.fit_to_memory(cfg, estimate, 4 * 3 * 100_000 * 64 - 1)
    assert _rules.fit_to_memory(cfg, estimate, None) == (cfg, full)


def test_estimate_memory_matches_the_fit(xc_data):
    X, y, _, _ = xc_data
    clf = BoltClassifier(random_state=0, autotune=False, max_iter=1, output_sparsity=0.05)
    parts = clf.estimate_memory(X, y)
    assert parts["total"] == (parts["weights"] + parts["optimizer"] + parts["tables"]
                              + parts["buffers"] + parts["snapshot"])
    assert parts["snapshot"] == parts["weights"]  # no early stopping: no tables copy
    # weights of the resolved network: 800 x 512 + 512 x C (+ biases), float32
    C = len(np.unique(y))
    assert parts["weights"] == 4 * (800 * 512 + 512 + 512 * C + C)
    assert parts["optimizer"] == 2 * parts["weights"]
    assert parts["tables"] > 0
    clf.fit(X, y)
    assert clf.memory_bytes_ == parts["total"]
    # estimating does not fit
    fresh = BoltClassifier()
    fresh.estimate_memory(X, y)
    assert not hasattr(fresh, "classes_")


def test_max_memory_shrinks_tables_or_refuses(xc_data):
    X, y, Xt, yt = xc_data
    kw = dict(random_state=0, autotune=False, max_iter=2, output_sparsity=0.05)
    roomy = BoltClassifier(**kw).fit(X, y)
    budget = roomy.memory_bytes_ - 1
    tight = BoltClassifier(max_memory=budget, **kw).fit(X, y)
    assert tight.memory_bytes_ <= budget
    assert tight.hash_params_["reservoir"] < roomy.hash_params_["reservoir"]
    assert tight.score(Xt, yt) > 0.3
    with pytest.raises(MemoryError, match="memory budget"):
        BoltClassifier(max_memory="1MB", **kw).fit(X, y)
    with pytest.raises(MemoryError, match="memory budget"):
        BoltClassifier(max_memory="1MB", **kw).estimate_memory(X, y)


def test_wider_layers_only_when_the_budget_pays_for_them(xc_data):
    X, y, _, _ = xc_data
    base, params = _resolved()
    width = base.hidden_layer_sizes[0]
    grid = _autotune.candidates(params, base, np.random.RandomState(0), 99, wider=True)
    assert {g["hidden_layer_sizes"][0] for g in grid} == {width // 2, width, 2 * width}

    def widths(**budget):
        clf = BoltClassifier(random_state=0, autotune=True, max_iter=4, n_jobs=2,
                             **budget).fit(X, y)
        assert clf.autotune_results_
        return {r["params"]["hidden_layer_sizes"][0] for r in clf.autotune_results_}

    # the default budget cannot pay for a final fit twice as costly
    assert max(widths()) == width
    # a generous one can, and the search then tries the wider layer
    assert 2 * width in widths(autotune_budget=4.0)


@pytest.mark.parametrize("active, n_outputs, batch", [(100, 10_000, 256), (50, 10_000, 256),
                                                       (20, 500, 64), (500, 500, 32)])
def test_touched_outputs_matches_simulation(active, n_outputs, batch):
    rng = np.random.RandomState(0)
    unions = [len(np.unique(np.concatenate([rng.choice(n_outputs, active, replace=False)
                                            for _ in range(batch)])))
              for _ in range(20)]
    assert _autotune.touched_outputs(active, n_outputs, batch) == pytest.approx(
        np.mean(unions), rel=0.01)


def test_epochs_from_curve_needs_a_peak_that_patience_confirms():
    rising = [(e, 0.1 * e) for e in range(1, 8)]
    assert _autotune.epochs_from_curve(rising, 3) is None
    assert _autotune.epochs_from_curve([], 3) is None
    # peak at 3, then four epochs without improvement
    curve = [(1, 0.2), (2, 0.4), (3, 0.6), (4, 0.55), (5, 0.58), (6, 0.5), (7, 0.59)]
    assert _autotune.epochs_from_curve(curve, 4) == 3
    assert _autotune.epochs_from_curve(curve, 5) is None  # not confirmed yet


def test_dip_epochs_are_what_patience_needs_to_decide():
    """However a curve ends, training the epochs dip_epochs asks for with no
    new peak is enough for epochs_from_curve to call the peak (unless the
    cap comes first), and one epoch fewer is not."""
    rng = np.random.default_rng(0)
    for _ in range(200):
        n, patience = int(rng.integers(1, 12)), int(rng.integers(1, 6))
        curve = [(e + 3, float(v)) for e, v in enumerate(rng.random(n))]
        cap = curve[-1][0] + int(rng.integers(0, 8))
        extra = _autotune.dip_epochs(curve, patience, cap)
        peak = max(v for _, v in curve)
        if curve[-1][1] == peak or _autotune.epochs_from_curve(curve, patience) is not None:
            assert extra == 0
            continue
        assert 0 <= extra <= cap - curve[-1][0]
        longer = curve + [(curve[-1][0] + i + 1, peak - 1.0) for i in range(extra)]
        assert (_autotune.epochs_from_curve(longer, patience) is not None
                or curve[-1][0] + extra == cap)
        if extra:
            assert _autotune.epochs_from_curve(longer[:-1], patience) is None


def test_search_trains_through_a_dip_to_find_the_peak(xc_data, monkeypatch):
    """A validation curve (faked, by epochs trained) that peaks at epoch P
    and falls after: when the budget stops the last rung inside the dip,
    fewer than n_iter_no_change epochs after the peak, the search trains on
    and the final fit stops at P instead of the rules' epochs."""
    from skbolt import _network

    X, y, _, _ = xc_data
    n_train = X.shape[0] - int(round(0.1 * X.shape[0]))
    train = _network.Network.train

    def counting(self, X, Y, rows, *args, **kwargs):
        self.fake_visits = getattr(self, "fake_visits", 0) + len(rows)
        return train(self, X, Y, rows, *args, **kwargs)

    monkeypatch.setattr(_network.Network, "train", counting)
    peak = {}

    def fake_score(self, network, *args):
        e = getattr(network, "fake_visits", 0) / n_train
        return e if e <= peak["at"] else peak["at"] - 0.01 * (e - peak["at"])

    monkeypatch.setattr(BoltClassifier, "_network_score", fake_score)
    kw = dict(random_state=0, autotune=True, hidden_layer_sizes=64, n_jobs=2,
              max_iter="auto", autotune_budget=0.5)
    # where the last rung ends with a curve that rises throughout
    peak["at"] = 1e9
    rising = BoltClassifier(**kw).fit(X, y)
    last = rising.autotune_results_[-1]["epochs"]
    assert "max_iter" not in rising.best_params_ and rising.max_iter_ > last + 2
    # a peak two epochs before that end: the rung alone cannot confirm it
    peak["at"] = int(last) - 2
    assert peak["at"] >= 1
    clf = BoltClassifier(**kw).fit(X, y)
    assert clf.best_params_["max_iter"] == peak["at"] == clf.max_iter_
    assert clf.autotune_results_[-1]["epochs"] >= peak["at"] + rising.n_iter_no_change


def test_rare_label_share_matches_counting_occurrences():
    """The row share of the label that holds the occurrence at the 25%
    point, occurrences ordered from the rarest label: counted here by
    listing every occurrence."""
    import scipy.sparse as sp

    rng = np.random.default_rng(0)
    for _ in range(20):
        n, C = int(rng.integers(5, 300)), int(rng.integers(2, 50))
        Y = sp.csr_matrix(rng.random((n, C)) < rng.power(0.3, C) * 0.5)
        counts = np.asarray(Y.sum(axis=0)).ravel().astype(int)
        if counts.sum() == 0:
            assert _rules.rare_label_share(Y) == 1.0
            continue
        occurrences = np.sort(np.repeat(counts, counts))  # each carries its label's count
        rank = int(np.ceil(0.25 * counts.sum()))
        assert _rules.rare_label_share(Y) == occurrences[rank - 1] / n


def test_epoch_rule_grows_for_rare_labels():
    p = {**_resolved()[1], "max_iter": "auto"}
    plain = _rules.resolve(p, 30_000, 800, 10_000, 20.0, False).max_iter
    assert plain == 5  # 120k visits over 30k rows, at least 5
    # no label rarer than 30k rows x share: LABEL_VISITS / rows of it, capped at 50
    for rows_of_rare, want in ((4, 5), (1, 10), (1000, 5), (0.5, 20), (0.1, 50)):
        share = rows_of_rare / 30_000
        got = _rules.resolve(p, 30_000, 800, 10_000, 20.0, False, share).max_iter
        assert got == min(50, max(5, int(np.ceil(_rules.LABEL_VISITS / rows_of_rare)))) == want
    assert _rules.resolve(dict(p, max_iter=3), 30_000, 800, 10_000, 20.0, False,
                           1e-5).max_iter == 3


@pytest.mark.parametrize("n_outputs", [500, 1_000, 4_898, 8_902, 10_000, 63_000, 1_000_000])
@pytest.mark.parametrize("sparsity", [0.2, 0.05, 0.02, 0.01, 0.005])
def test_dwta_buckets_hold_an_output_on_average(n_outputs, sparsity):
    # with more buckets than outputs most buckets a query reaches are empty
    # (sparse P@1 0.675 vs 0.732 on synth10k); K may only drop below BOLT's
    K, L, range_pow, reservoir = _rules.dwta_tables(n_outputs, sparsity)
    K_bolt = min(8, max(2, round(np.log2(128.0 / sparsity) / 3.0)))
    assert range_pow == 3 * K and 2 <= K <= K_bolt
    assert K == 2 or n_outputs >= 2**range_pow
    assert K == K_bolt or n_outputs < 2 ** (range_pow + 3)
    # at least MIN_TABLES tables (no more than a table's buckets), else BOLT's L
    L_bolt = round(sparsity * 2 ** (3 * K_bolt))
    assert L == max(L_bolt, min(_rules.MIN_TABLES, 2**range_pow))
    assert reservoir >= 4 and reservoir >= 4 * (n_outputs // 2**range_pow)


def test_the_loss_is_searched_for_rows_with_several_labels():
    base, params = _resolved()
    grid = _autotune.candidates(params, base, np.random.RandomState(0), 9, losses=("sigmoid",))
    # the rules' network with the other loss comes right after the rules'
    assert grid[0]["loss"] == base.loss == "softmax"
    assert grid[1] == {**grid[0], "loss": "sigmoid"}
    assert len(grid) == 9 and {g["loss"] for g in grid[2:]} <= {"softmax", "sigmoid"}
    # a loss the user gave is never searched
    base, params = _resolved(loss="softmax")
    grid = _autotune.candidates(params, base, np.random.RandomState(0), 9, losses=("sigmoid",))
    assert all("loss" not in g for g in grid)


def test_multilabel_search_fits_the_threshold_and_tries_both_losses():
    X, Y = make_extreme_classification(n_samples=3000, n_features=600, n_classes=80,
                                       n_labels=4, multilabel=True, random_state=5)
    clf = BoltClassifier(random_state=0, max_iter=6, n_jobs=2).fit(X[:2500], Y[:2500])
    tried = {r["params"].get("loss") for r in clf.autotune_results_}
    assert tried == {"softmax", "sigmoid"}
    assert clf.loss_ in tried and clf.threshold_ is not None
    # predict keeps the top label and those at or above the threshold
    ids, probs = clf.predict_topk(X[2500:], k=clf._max_labels)
    expected = np.zeros(clf.predict(X[2500:]).shape, dtype=bool)
    keep = probs >= clf.threshold_
    keep[:, 0] = True
    for i in range(ids.shape[0]):
        expected[i, ids[i][keep[i]]] = True
    np.testing.assert_array_equal(sp.csr_matrix(clf.predict(X[2500:])).toarray() > 0, expected)
    # multi-class models have none
    Xs, ys = make_extreme_classification(n_samples=2500, n_features=300, n_classes=30,
                                         random_state=1)
    assert BoltClassifier(random_state=0, max_iter=3).fit(Xs, ys).threshold_ is None


def test_auto_width_narrows_only_wide_inputs_with_few_classes():
    assert _rules.auto_hidden(10_000, 2_000, 20) == (512,)
    for d, c in [(230_759, 20), (111_000, 90), (500_000, 2), (135_000, 670_000), (50_000, 10)]:
        (h,) = _rules.auto_hidden(10_000, d, c)
        floor = 2 ** int(np.ceil(np.log2(max(2 * c, 64))))
        assert h == 512 or d * h <= _rules.INPUT_WEIGHTS or h == floor
        assert h >= min(512, floor) and h <= 512 and h & (h - 1) == 0
    assert _rules.auto_hidden(10_000, 230_759, 20) == (128,)
    assert _rules.auto_hidden(10_000, 135_000, 670_000) == (512,)


def test_small_data_searches_no_larger_learning_rate():
    base, params = _resolved()
    grid = _autotune.candidates(params, base, np.random.RandomState(0), 27,
                                lr_factors=_autotune.SMALL_LR_FACTORS)
    rates = {g["learning_rate_init"] for g in grid}
    assert rates == {base.learning_rate_init, base.learning_rate_init / 2}


def test_small_data_races_whole_curves_and_stops_at_the_peak(xc_data, monkeypatch):
    monkeypatch.setattr(_autotune, "RACE_BELOW", 10**9)
    # a sampled output layer still halves (its curve dips after epoch 1)
    X, y = make_extreme_classification(n_samples=2500, n_features=800, n_classes=3000,
                                       random_state=3)
    clf = BoltClassifier(random_state=0, autotune=True, max_iter=8, n_jobs=2).fit(X, y)
    assert clf.hash_params_["active_size"] < clf.n_outputs_
    assert len(clf.autotune_results_) > 2
    # one label per row: the rules' network alone, along its curve. This
    # dense 440-class layer's held-out curve falls for five epochs after
    # the first before it climbs far higher: a peak must hold for
    # race_patience epochs, or the final fit stops at epoch 1 (0.49
    # against 0.94 without search)
    X, y, Xt, yt = xc_data
    clf = BoltClassifier(random_state=0, autotune=True, n_jobs=2).fit(X, y)
    rules = BoltClassifier(random_state=0, autotune=False, n_jobs=2).fit(X, y)
    assert clf.hash_params_["active_size"] == clf.n_outputs_
    # (and, where its curve confirmed no peak, the smaller-batch twin)
    assert [r["params"] for r in clf.autotune_results_] in ([{}], [{}, {"batch_size": 32}])
    assert clf.score(Xt, yt) >= rules.score(Xt, yt) - 0.02
    assert _autotune.race_patience(5, 48) == 12 and _autotune.race_patience(5, 11) == 5
    # several labels per row: both losses race, the best peak wins
    Xm, Ym = make_extreme_classification(n_samples=1500, n_features=400, n_classes=60,
                                         n_labels=3, multilabel=True, random_state=2)
    clf = BoltClassifier(random_state=0, autotune=True, n_jobs=2).fit(Xm, Ym)
    entries = clf.autotune_results_
    assert [e["params"] for e in entries][:2] == [{}, {"loss": "sigmoid"}]
    assert [e["params"] for e in entries][2:] in ([], [{"batch_size": 32}])
    winner = max(entries, key=lambda e: e["validation_score"])
    assert clf.loss_ == winner["params"].get("loss", "softmax")
    assert clf.threshold_ is not None


def test_curve_peak_is_a_plateau_s_last_epoch():
    curve = [(1, 0.5), (2, 0.8), (3, 0.7), (4, 0.8), (5, 0.6)]
    assert _autotune.curve_peak(curve) == 4
    assert _autotune.epochs_from_curve(curve, 1) == 4
    assert _autotune.epochs_from_curve(curve, 2) is None


def test_race_tries_a_smaller_batch_only_when_the_rules_confirm_no_peak(monkeypatch):
    monkeypatch.setattr(_autotune, "RACE_BELOW", 10**9)
    base, params = _resolved()
    assert _autotune.smaller_batch_twin(params, base) == {"batch_size": base.batch_size // 8}
    assert _autotune.smaller_batch_twin({**params, "batch_size": 256}, base) is None
    small, _ = _resolved(batch_size=16)
    assert _autotune.smaller_batch_twin(params, small) is None
    X, y = make_extreme_classification(n_samples=2400, n_features=300, n_classes=12,
                                       random_state=4)

    def race(never_peaks, **extra):
        if never_peaks:
            monkeypatch.setattr(_autotune, "epochs_from_curve", lambda curve, patience: None)
        else:
            monkeypatch.undo()
            monkeypatch.setattr(_autotune, "RACE_BELOW", 10**9)
            monkeypatch.setattr(_autotune, "epochs_from_curve",
                                lambda curve, patience: int(_autotune.curve_peak(curve)))
        extra.setdefault("autotune_budget", 2.0)
        return BoltClassifier(random_state=0, autotune=True, n_jobs=2, **extra).fit(X, y)

    # no confirmed peak after the rules' epochs: the twin races and the
    # better held-out score wins
    clf = race(never_peaks=True)
    entries = clf.autotune_results_
    assert [e["params"] for e in entries] == [{}, {"batch_size": 32}]
    twin_won = entries[1]["validation_score"] > entries[0]["validation_score"]
    assert clf.batch_size_ == (32 if twin_won else 256)
    # a curve the budget cut short brings no twin in
    clf = race(never_peaks=True, autotune_budget=0.3)
    assert [e["params"] for e in clf.autotune_results_] == [{}]
    assert clf.autotune_results_[0]["epochs"] < 0.75 * clf.max_iter_
    # a user's batch is never overridden
    clf = race(never_peaks=True, batch_size=128)
    assert [e["params"] for e in clf.autotune_results_] == [{}]
    assert clf.batch_size_ == 128
    # a confirmed peak: the rules' network alone
    clf = race(never_peaks=False)
    assert [e["params"] for e in clf.autotune_results_] == [{}]


def _cv_problem(n=450, multilabel=False):
    if multilabel:
        X, Y = make_extreme_classification(n_samples=n + 300, n_features=300, n_classes=30,
                                           n_labels=3, multilabel=True,
                                           random_state=6)
    else:
        X, Y = make_extreme_classification(n_samples=n + 300, n_features=300, n_classes=12,
                                           random_state=5)
    return X[:n], Y[:n], X[n:], Y[n:]


def test_small_data_cross_validates_rules_and_twins(monkeypatch):
    X, y, Xt, _ = _cv_problem()
    seen = []
    race = _autotune.cv_race

    def spy(data, folds, *args, **kwargs):
        seen.append(folds)
        return race(data, folds, *args, **kwargs)

    monkeypatch.setattr(_autotune, "cv_race", spy)
    clf = BoltClassifier(random_state=0, n_jobs=2).fit(X, y)
    # every row is held out by exactly one fold and trains in the others
    (folds,) = seen
    assert len(folds) == _base.CV_FOLDS
    held = np.concatenate([va for _, va in folds])
    np.testing.assert_array_equal(np.sort(held), np.arange(X.shape[0]))
    for tr, va in folds:
        assert np.intersect1d(tr, va).size == 0 and tr.size + va.size == X.shape[0]
    # the rules and the smaller batch (one label per row: no loss twin),
    # the better mean held-out score wins, the rules on a tie
    entries = clf.autotune_results_
    rules = BoltClassifier(random_state=0, autotune=False).fit(X, y)
    twin = max(_autotune.SMALLEST_BATCH, rules.batch_size_ // _autotune.SMALL_BATCH_DIVISOR)
    assert [e["params"] for e in entries] == [{}, {"batch_size": twin}]
    winner = max(range(len(entries)), key=lambda i: (entries[i]["validation_score"], -i))
    assert {k: v for k, v in clf.best_params_.items() if k != "max_iter"} == \
        entries[winner]["params"]
    if "max_iter" in clf.best_params_:
        assert clf.max_iter_ == clf.best_params_["max_iter"] <= entries[winner]["epochs"]
    # deterministic for a seed
    again = BoltClassifier(random_state=0, n_jobs=2).fit(X, y)
    np.testing.assert_array_equal(again.predict_proba(Xt), clf.predict_proba(Xt))
    # a user's value is never raced: fixed batch and epochs leave nothing
    fixed = BoltClassifier(random_state=0, batch_size=64, max_iter=5).fit(X, y)
    assert fixed.autotune_results_ == [] and fixed.batch_size_ == 64
    # autotune=False keeps the rules
    assert rules.autotune_results_ == [] and rules.best_params_ == {}
    # a sampled output layer keeps the rules (the race measured dense ones)
    Xs, ys = make_extreme_classification(n_samples=1500, n_features=400, n_classes=3000,
                                         random_state=3)
    sampled = BoltClassifier(random_state=0, max_iter=2).fit(Xs, ys)
    assert sampled.output_sparsity_ < 1 and sampled.autotune_results_ == []


def test_small_multilabel_data_races_the_loss_and_fits_the_threshold(monkeypatch):
    X, Y, Xt, _ = _cv_problem(multilabel=True)
    thresholds = []
    decide = BoltClassifier._decide

    def spy(self, *args):
        out = decide(self, *args)
        thresholds.append(out["threshold"])
        return out

    monkeypatch.setattr(BoltClassifier, "_decide", spy)
    clf = BoltClassifier(random_state=0, n_jobs=2).fit(X, Y)
    params = [e["params"] for e in clf.autotune_results_]
    assert params[:2] == [{}, {"loss": "sigmoid"}]
    # one threshold per (candidate, fold); the winner's folds' mean is kept
    assert len(thresholds) == len(params) * _base.CV_FOLDS
    winner = max(range(len(params)), key=lambda i: (
        clf.autotune_results_[i]["validation_score"], -i))
    mine = thresholds[winner * _base.CV_FOLDS:(winner + 1) * _base.CV_FOLDS]
    assert clf.threshold_ == pytest.approx(np.mean(mine))
    # predict keeps the labels at or above it
    P = clf.predict(Xt).toarray() if sp.issparse(clf.predict(Xt)) else clf.predict(Xt)
    probs = clf.predict_proba(Xt)
    assert np.all(probs[P.astype(bool)] >= clf.threshold_ - 1e-6)
