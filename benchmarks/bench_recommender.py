"""BoltRecommender against the recommenders a practitioner would pick, on one machine.

Protocol: strong generalization. Each dataset is split three times
(``skbolt.datasets.split_users`` with seeds 0, 1, 2): 20% of the users are
test users, 10% validation users, the rest train; every held-out user's
items are split into 80% fold-in input and 20% targets. Each system fits
on the training users, is tuned (where it has a grid) on the validation
users, and ranks items for the test users from their fold-in input alone,
items in the input excluded. Reported: NDCG@10 and Recall@20 (capped:
divided by min(20, targets)) as mean +- sd over the three splits, fit
seconds (the chosen configuration's fit, tuning excluded) and recommend
milliseconds per test user.

systems
    ``popularity``: items ranked by training interactions.
    ``ease``: EASE (Steck 2019), the closed form B = I - P / diag(P) with
    P = (X'X + lambda I)^-1 over the training users; lambda from
    ``EASE_GRID`` on the validation users. Skipped where the items x items
    inverse would not fit (``EASE_MAX_ITEMS``).
    ``als``: implicit's AlternatingLeastSquares, factors and
    regularization from ``ALS_GRID`` on the validation users, new users
    folded in with ``recalculate_user=True``.
    ``bpr``: implicit's BayesianPersonalizedRanking, which cannot fold a
    new user in: it is fitted on the training users plus the test users'
    fold-in rows (transductive, marked so), factors from ``BPR_GRID`` on
    the validation users fitted the same way.
    ``skbolt``: ``BoltRecommender(random_state=seed, n_jobs=threads)``,
    every parameter "auto" (its autotuning search holds out its own
    users; the validation users are not given to it).

datasets
    ``ml100k_pos``: MovieLens-100K, ratings >= 4 as positives (binary).
    ``ml100k_all``: MovieLens-100K, every rating a positive (binary).
    ``synth``: ``make_interactions(20000, 5000, n_groups=40, random_state=5)``.
    Held out of all tuning of skbolt's rules, reported last:
    ``heldout_synth``: ``make_interactions(30000, 20000, n_groups=100,
    power=1.1, random_state=97)``.

``--weighting`` prints the input-scaling table instead: MovieLens-100K
binary (every rating, and ratings >= 4) and with heavy-tailed
per-interaction weights standing in for play counts (``WEIGHTED``:
every rating replaced by a seeded draw unrelated to it, so the weights
are noise and the item set is the signal), ``BoltRecommender`` with each
``input_scaling`` forced and "auto", NDCG@10 on the test users of the
three splits, and what "auto" picked.

``--scale`` adds the scale table: ``make_interactions`` catalogues of
100k items (and 1M with ``--million``), one split, skbolt against ALS
(EASE cannot: its inverse needs 40 GB at 100k items): NDCG@10, fit seconds,
recommend ms per user, skbolt's ``estimate_memory`` against the fitted
``memory_bytes_``.

Usage::

    python benchmarks/bench_recommender.py                # all sets, 3 splits
    python benchmarks/bench_recommender.py --quick        # 1 split, ML-100K and synth
    python benchmarks/bench_recommender.py --scale --datasets ml100k_pos
    python benchmarks/bench_recommender.py --weighting    # input_scaling, ML-100K variants
    python benchmarks/bench_recommender.py --levers       # what was tried, validation users
    python benchmarks/bench_recommender.py --levers default linear_decay_lr_3e-3 \
        --datasets ml100k_all synth_dense --seeds 0 1 2 3 4
    python benchmarks/bench_recommender.py --levers ensemble_5 --datasets ml100k_all
    python benchmarks/bench_recommender.py --prototype wide --seeds 0 1   # needs torch
    python benchmarks/bench_recommender.py --prototype blend --seeds 0 1  # skbolt mixed with EASE

The peers are benchmark-only (``pip install implicit``); a system that is
not installed is skipped with a printed reason. OPENBLAS_NUM_THREADS is
set to 1 (implicit asks for it; every system gets ``--threads``).
"""
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import contextlib
import json
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from bench_xc_peers import machine

from skbolt import BoltRecommender
from skbolt.datasets import load_movielens100k, make_interactions, split_users
from skbolt.metrics import ndcg_at_k, recall_at_k
from skbolt.recommender import _exclude

EASE_GRID = (50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0)
EASE_MAX_ITEMS = 30_000
ALS_GRID = [dict(factors=f, regularization=r) for f in (64, 128) for r in (0.01, 0.1, 1.0)]
BPR_GRID = [dict(factors=f) for f in (64, 128)]
SEEDS = (0, 1, 2)

DATASETS = {
    "ml100k_pos": lambda: load_movielens100k(min_rating=4, implicit=True).X,
    "ml100k_all": lambda: load_movielens100k(implicit=True).X,
    "synth": lambda: make_interactions(20000, 5000, n_groups=40, random_state=5).X,
    "heldout_synth": lambda: make_interactions(30000, 20000, n_groups=100, power=1.1,
                                               random_state=97).X,
}
HELD_OUT = {"heldout_synth"}


def _weighted(draw, seed):
    """MovieLens-100K's interactions with each rating r replaced by
    ``draw(rng, r)``, seeded."""
    def make():
        X = load_movielens100k().X.tocsr()
        X.data = draw(np.random.RandomState(seed), X.data).astype(np.float64)
        return X
    return make


#: ``--weighting``'s data sets. Pareto: 1 + floor(20 Lomax(1.2)), median
#: 16, top 0.1% above ~6,900, largest 151,879; lognormal: 1 + floor(e^N(1,
#: 2)), median 3, top 0.1% above ~1,400, largest 11,342 (both unrelated
#: to the rating: the weights are noise); rated: 1 + floor(e^(2 (r - 1)) *
#: e^N(0, 0.5)), heavy-tailed counts that grow with the rating r (a 5 is
#: ~3,000 plays, a 1 one or two), so the weights carry some taste.
WEIGHTED = {
    "ml100k_all": DATASETS["ml100k_all"],
    "ml100k_pos": DATASETS["ml100k_pos"],
    "ml100k_pareto": _weighted(lambda rng, r: 1 + np.floor(20 * rng.pareto(1.2, r.size)), 0),
    "ml100k_lognormal": _weighted(
        lambda rng, r: 1 + np.floor(rng.lognormal(1.0, 2.0, r.size)), 1),
    "ml100k_rated": _weighted(
        lambda rng, r: 1 + np.floor(np.exp(2.0 * (r - 1)) * rng.lognormal(0.0, 0.5, r.size)), 2),
}
#: Only for ``--levers``: a dense-output synthetic catalogue (1,500 items) on
#: which a lever that helps MovieLens is checked before it becomes a rule.
LEVER_DATASETS = {
    "synth_dense": lambda: make_interactions(5000, 1500, n_groups=20, random_state=7).X,
    # the --quick --scale catalogue
    "scale_quick": lambda: make_interactions(20000, 100000, n_groups=200, random_state=11).X,
}


def _rank_scores(S, X_in, n):
    """Top-n columns of dense scores ``S``, items of ``X_in`` excluded."""
    S = np.array(S, dtype=np.float32)
    S[X_in.nonzero()] = -np.inf
    top = np.argpartition(-S, n, axis=1)[:, :n]
    order = np.argsort(-np.take_along_axis(S, top, axis=1), axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1)


class Popularity:
    name = "popularity"

    def fit(self, X, threads):
        self.order = np.argsort(-np.asarray(X.sum(axis=0)).ravel(), kind="stable")
        return self

    def recommend(self, X_in, n):
        k = min(self.order.size, n + int(np.diff(X_in.indptr).max(initial=0)))
        ids = np.tile(self.order[:k], (X_in.shape[0], 1))
        ids, _ = _exclude(ids, np.ones(ids.shape, np.float32), X_in)
        return ids[:, :n]


class Ease:
    name = "ease"

    def __init__(self, lam):
        self.lam = lam

    def fit(self, X, threads):
        G = (X.T @ X).toarray().astype(np.float64)
        G[np.diag_indices_from(G)] += self.lam
        P = np.linalg.inv(G)
        self.B = (-P / np.diag(P)).astype(np.float32)
        self.B[np.diag_indices_from(self.B)] = 0.0
        return self

    def recommend(self, X_in, n):
        return _rank_scores(X_in @ self.B, X_in, n)


class Als:
    name = "als"

    def __init__(self, **params):
        self.params = params

    def fit(self, X, threads):
        from implicit.als import AlternatingLeastSquares

        self.model = AlternatingLeastSquares(**self.params, iterations=15, random_state=0,
                                             num_threads=threads)
        self.model.fit(sp.csr_matrix(X, dtype=np.float32), show_progress=False)
        return self

    def recommend(self, X_in, n):
        X_in = sp.csr_matrix(X_in, dtype=np.float32)
        ids, _ = self.model.recommend(np.arange(X_in.shape[0]), X_in, N=n,
                                      filter_already_liked_items=True, recalculate_user=True)
        return np.asarray(ids, dtype=np.int64)


class Bpr:
    name = "bpr (transductive)"

    def __init__(self, **params):
        self.params = params

    def fit_with(self, X, X_in, threads):
        """Fit on the training rows and the users to rank, then rank those."""
        from implicit.bpr import BayesianPersonalizedRanking

        self.model = BayesianPersonalizedRanking(**self.params, iterations=100,
                                                 random_state=0, num_threads=threads)
        both = sp.csr_matrix(sp.vstack([X, X_in]), dtype=np.float32)
        self.model.fit(both, show_progress=False)
        self.offset = X.shape[0]
        return self

    def recommend(self, X_in, n):
        X_in = sp.csr_matrix(X_in, dtype=np.float32)
        users = self.offset + np.arange(X_in.shape[0])
        ids, _ = self.model.recommend(users, X_in, N=n, filter_already_liked_items=True)
        return np.asarray(ids, dtype=np.int64)


class Skbolt:
    name = "skbolt"

    def __init__(self, seed):
        self.seed = seed

    def fit(self, X, threads):
        self.model = BoltRecommender(random_state=self.seed, n_jobs=threads).fit(X)
        return self

    def recommend(self, X_in, n):
        return self.model.recommend(X_in, n=n)[0]

    def settings(self):
        m = self.model
        return {"hidden_layer_sizes_": list(m.hidden_layer_sizes_), "batch_size_": m.batch_size_,
                "max_iter_": m.max_iter_, "n_iter_": m.n_iter_,
                "learning_rate_init_": m.learning_rate_init_,
                "output_sparsity_": m.output_sparsity_, "centroid_finish_": m.centroid_finish_,
                "best_params": {k: (list(v) if isinstance(v, tuple) else v)
                                for k, v in m.best_params_.items()},
                "memory_bytes_": m.memory_bytes_}


def evaluate(system, X_in, Y):
    start = time.perf_counter()
    ids = system.recommend(X_in, 20)
    ms = 1000 * (time.perf_counter() - start) / max(X_in.shape[0], 1)
    return {"ndcg_at_10": ndcg_at_k(Y, ids[:, :10], k=10),
            "recall_at_20": recall_at_k(Y, ids, k=20, capped=True), "recommend_ms": ms}


def tuned(make, grid, split, threads, transductive=False):
    """The grid point with the best validation NDCG@10, refitted and scored
    on the test users; returns (result, chosen point)."""
    best = None
    for point in grid:
        system = make(point)
        if transductive:
            system.fit_with(split.train, split.val_in, threads)
        else:
            system.fit(split.train, threads)
        value = ndcg_at_k(split.val_out, system.recommend(split.val_in, 10), k=10)
        if best is None or value > best[0]:
            best = (value, point)
    system = make(best[1])
    start = time.perf_counter()
    if transductive:
        system.fit_with(split.train, split.test_in, threads)
    else:
        system.fit(split.train, threads)
    fit_s = time.perf_counter() - start
    return {**evaluate(system, split.test_in, split.test_out), "fit_seconds": fit_s,
            "chosen": best[1], "validation_ndcg_at_10": best[0]}, system


def run_split(X, seed, systems, threads):
    split = split_users(X, test_size=0.2, val_size=0.1, random_state=seed)
    out = {}
    for name in systems:
        try:
            if name == "popularity":
                start = time.perf_counter()
                system = Popularity().fit(split.train, threads)
                fit_s = time.perf_counter() - start
                out[name] = {**evaluate(system, split.test_in, split.test_out),
                             "fit_seconds": fit_s}
            elif name == "ease":
                if X.shape[1] > EASE_MAX_ITEMS:
                    out[name] = {"skipped": f"{X.shape[1]} items: the inverse needs "
                                            f"{8 * X.shape[1] ** 2 / 1e9:.0f} GB"}
                    continue
                out[name], _ = tuned(lambda lam: Ease(lam), EASE_GRID, split, threads)
            elif name == "als":
                out[name], _ = tuned(lambda p: Als(**p), ALS_GRID, split, threads)
            elif name == "bpr":
                out[name], _ = tuned(lambda p: Bpr(**p), BPR_GRID, split, threads,
                                     transductive=True)
            elif name == "skbolt":
                start = time.perf_counter()
                system = Skbolt(seed).fit(split.train, threads)
                fit_s = time.perf_counter() - start
                out[name] = {**evaluate(system, split.test_in, split.test_out),
                             "fit_seconds": fit_s, "settings": system.settings()}
        except ImportError as e:
            out[name] = {"skipped": f"not installed: {e}"}
        if "skipped" not in out[name]:
            r = out[name]
            print(f"  seed {seed} {name:>10}: NDCG@10 {r['ndcg_at_10']:.4f}  "
                  f"Recall@20 {r['recall_at_20']:.4f}  fit {r['fit_seconds']:.1f} s  "
                  f"{r['recommend_ms']:.3f} ms/user  {r.get('chosen', '')}", flush=True)
    return out


def scale_table(n_items_list, threads, quick):
    rows = []
    for n_items in n_items_list:
        n_users = 20_000 if quick else 100_000
        X = make_interactions(n_users, n_items, n_groups=200, random_state=11).X
        split = split_users(X, test_size=0.02, random_state=0)
        rec = BoltRecommender(random_state=0, n_jobs=threads)
        estimate = rec.estimate_memory(split.train)
        start = time.perf_counter()
        rec.fit(split.train)
        fit_s = time.perf_counter() - start
        system = Skbolt(0)
        system.model = rec
        row = {"n_users": n_users, "n_items": n_items, "nnz": int(X.nnz),
               "skbolt": {**evaluate(system, split.test_in, split.test_out),
                          "fit_seconds": fit_s, "estimate_total": estimate["total"],
                          "memory_bytes_": rec.memory_bytes_}}
        try:
            start = time.perf_counter()
            als = Als(factors=128, regularization=0.1).fit(split.train, threads)
            row["als"] = {**evaluate(als, split.test_in, split.test_out),
                          "fit_seconds": time.perf_counter() - start}
        except ImportError as e:
            row["als"] = {"skipped": str(e)}
        rows.append(row)
        print(f"scale {n_items} items: {json.dumps(row)}", flush=True)
    return rows


def report(results):
    print("\n| data | system | NDCG@10 | Recall@20 | fit s | recommend ms/user |")
    print("|---|---|---|---|---|---|")
    for data, per_seed in results.items():
        names = per_seed[0].keys()
        for name in names:
            runs = [s[name] for s in per_seed if "skipped" not in s[name]]
            if not runs:
                print(f"| {data} | {name} | skipped: {per_seed[0][name]['skipped']} | | | |")
                continue

            def ms(key, fmt):
                v = np.array([r[key] for r in runs])
                return f"{v.mean():{fmt}} +- {v.std(ddof=1) if len(v) > 1 else 0:{fmt}}"
            label = name + (" (transductive)" if name == "bpr" else "")
            print(f"| {data}{' (held out)' if data in HELD_OUT else ''} | {label} | "
                  f"{ms('ndcg_at_10', '.4f')} | {ms('recall_at_20', '.4f')} | "
                  f"{np.mean([r['fit_seconds'] for r in runs]):.1f} | "
                  f"{np.mean([r['recommend_ms'] for r in runs]):.3f} |")


#: ``--levers``: BoltRecommender variants scored on the validation users
#: (seeds 0 and 1 unless ``--seeds``), the figures of README.md's "what was
#: tried" paragraphs. ``schedule="linear"``: the learning rate falls linearly
#: over the fit's epochs to 2% of ``learning_rate_init`` (patched into the
#: training driver here; the package has no schedule).
LEVERS = {
    "default": {},
    "whole_row_targets": {"whole_row": True},
    "whole_row_input_0.5": {"whole_row": True, "input_fraction": 0.5},
    "lr_2e-3": {"learning_rate_init": 2e-3},
    "epochs_100": {"max_iter": 100},
    "hidden_1024": {"hidden_layer_sizes": (1024,)},
    "hidden_256_epochs_100": {"hidden_layer_sizes": (256,), "max_iter": 100},
    "hidden_512x2": {"hidden_layer_sizes": (512, 512)},
    "lr_2e-3_epochs_100_hidden_1024": {"learning_rate_init": 2e-3, "max_iter": 100,
                                       "hidden_layer_sizes": (1024,)},
    "early_stopping_200": {"max_iter": 200, "early_stopping": True, "n_iter_no_change": 10},
    "epochs_200_dropout_0.5": {"max_iter": 200, "dropout": 0.5},
    "whole_row_epochs_200_dropout_0.5": {"whole_row": True, "max_iter": 200, "dropout": 0.5},
    "epochs_100_hidden_1024_dropout_0.5": {"max_iter": 100, "hidden_layer_sizes": (1024,),
                                           "dropout": 0.5},
    # ninth session
    "batch_16": {"batch_size": 16},
    "batch_8": {"batch_size": 8},
    "batch_64_epochs_100": {"batch_size": 64, "max_iter": 100},
    "lr_5e-4_epochs_100": {"learning_rate_init": 5e-4, "max_iter": 100},
    "hidden_2048": {"hidden_layer_sizes": (2048,)},
    "linear_decay": {"schedule": "linear"},
    "linear_decay_lr_3e-3": {"schedule": "linear", "learning_rate_init": 3e-3},
    "linear_decay_lr_2e-3": {"schedule": "linear", "learning_rate_init": 2e-3},
    "lr_3e-3": {"learning_rate_init": 3e-3},
    # tenth session: the mean of 5 networks' probabilities (seeds 1000 s + j)
    "ensemble_5": {"ensemble": 5},
    # twelfth session, on synth (with hidden_2048 and lr_3e-3 above)
    "epochs_30": {"max_iter": 30},
    "hidden_128": {"hidden_layer_sizes": (128,)},
    "hidden_256": {"hidden_layer_sizes": (256,)},
    "input_0.5": {"input_fraction": 0.5},
    "dense_output": {"output_sparsity": 1.0},
    "dropout_0.8": {"dropout": 0.8},
    "dropout_0.8_epochs_20": {"dropout": 0.8, "max_iter": 20},
    "batch_64": {"batch_size": 64},
    "batch_64_lr_3e-4": {"batch_size": 64, "learning_rate_init": 3e-4},
    # fourteenth session: the SVD start (the default since 79a3c9b) against
    # the trained network, and epochs after the start
    "centroids": {"init": "centroids"},
    "svd_epochs_3_lr_1e-5": {"max_iter": 3, "learning_rate_init": 1e-5},
    "svd_epochs_3_lr_1e-4": {"max_iter": 3, "learning_rate_init": 1e-4},
    "svd_epochs_3_lr_1e-3": {"max_iter": 3, "learning_rate_init": 1e-3},
    "svd_through_tables": {"sparse_inference": True},
}


@contextlib.contextmanager
def linear_decay():
    """The training driver with a learning rate falling linearly over each
    fit's epochs, from ``learning_rate_init`` to 2% of it."""
    import skbolt._base as base

    train, advance = base.BoltEstimator._train, base.Run.advance
    planned = {}

    def _train(self, data, epochs, early_stopping):
        planned["epochs"] = epochs
        return train(self, data, epochs, early_stopping)

    def _advance(self, data, target, *args, **kwargs):
        if not hasattr(self, "initial_rate"):
            self.initial_rate = self.learning_rate
        left = 1.0 - (self.epochs - self.epochs_before) / max(planned.get("epochs", 1), 1)
        self.learning_rate = self.initial_rate * max(left, 0.02)
        return advance(self, data, target, *args, **kwargs)

    base.BoltEstimator._train, base.Run.advance = _train, _advance
    try:
        yield
    finally:
        base.BoltEstimator._train, base.Run.advance = train, advance


def levers(datasets, threads, seeds=SEEDS[:2], names=None):
    """Validation NDCG@10 of each ``LEVERS`` variant (or those ``names``),
    mean over ``seeds``."""
    import skbolt.recommender as rec

    split_rows = rec._UserRows._split

    def whole_row(self, X, seed):
        # Mult-DAE's target: every item of the row, the input still a part of it
        X_in, _ = split_rows(self, X, seed)
        Y = X.copy()
        Y.data[:] = 1.0
        return X_in, Y

    out = {}
    for data in datasets:
        X = {**DATASETS, **LEVER_DATASETS}[data]()
        out[data] = {}
        for name, params in LEVERS.items():
            if names and name not in names:
                continue
            params = dict(params)
            rec._UserRows._split = whole_row if params.pop("whole_row", False) else split_rows
            scheduled = linear_decay if params.pop("schedule", None) else contextlib.nullcontext
            members = params.pop("ensemble", 0)
            values = []
            for seed in seeds:
                split = split_users(X, test_size=0.2, val_size=0.1, random_state=seed)
                if members:
                    values.append(_ensemble(split, members, seed, threads, params))
                    continue
                model = BoltRecommender(random_state=seed, n_jobs=threads, **params)
                with scheduled():
                    model.fit(split.train)
                values.append(ndcg_at_k(split.val_out, model.recommend(split.val_in, n=10)[0],
                                        k=10))
            rec._UserRows._split = split_rows
            out[data][name] = values
            print(f"{data} {name:>34}: validation NDCG@10 {np.mean(values):.3f} "
                  f"({', '.join(f'{v:.3f}' for v in values)})", flush=True)
    return out


def _ensemble(split, members, seed, threads, params):
    """Validation NDCG@10 of the mean probabilities of ``members`` networks
    (seeds 1000 seed + j), printed after each member joins."""
    total, values = 0.0, []
    for j in range(members):
        model = BoltRecommender(random_state=1000 * seed + j, n_jobs=threads, **params)
        model.fit(split.train)
        ids, scores = model._network.predict_topk(model._inputs(split.val_in), model.n_items_,
                                                  False, threads, 0)
        S = np.zeros((split.val_in.shape[0], model.n_items_))
        np.put_along_axis(S, ids, scores, axis=1)
        total = total + S
        values.append(ndcg_at_k(split.val_out, _rank_scores(total, split.val_in, 10), k=10))
    print(f"  seed {seed}: 1..{members} members " + " ".join(f"{v:.3f}" for v in values))
    return values[-1]


#: ``--prototype wide``: (deep part, wide part, L2 on the wide weights).
WIDE_VARIANTS = {"deep": (True, False, 0.0), "wide": (False, True, 0.0),
                 "deep+wide": (True, True, 0.0), "wide_l2_1e-5": (False, True, 1e-5),
                 "wide_l2_1e-4": (False, True, 1e-4), "deep+wide_l2_1e-5": (True, True, 1e-5)}


def wide_prototype(datasets, seeds, epochs=50, batch=32, hidden=512, lr=1e-3):
    """A PyTorch prototype, not the package: does an item-item path (logits
    + x S, S items x items with a zero diagonal) beside a network of
    skbolt's shape (ReLU hidden layer, softmax over items, each epoch's 80/20
    split of every row, L2-scaled input) close the gap to EASE? Dense, one
    thread; validation NDCG@10 against EASE tuned on the same users."""
    import torch

    torch.set_num_threads(1)
    for data in datasets:
        X = DATASETS[data]()
        for seed in seeds:
            split = split_users(X, test_size=0.2, val_size=0.1, random_state=seed)
            train = split.train.toarray().astype(np.float32)
            n, m = train.shape
            mask = 1.0 - torch.eye(m)
            row = []
            for name, (deep, wide, l2) in WIDE_VARIANTS.items():
                torch.manual_seed(seed)
                rng = np.random.default_rng(seed)
                first, last = torch.nn.Linear(m, hidden), torch.nn.Linear(hidden, m)
                S = torch.nn.Parameter(torch.zeros(m, m))
                params = ((list(first.parameters()) if deep else []) + list(last.parameters())
                          + ([S] if wide else []))
                opt = torch.optim.Adam(params, lr=lr)

                def logits(x):
                    z = last(torch.relu(first(x))) if deep else last.bias.expand(len(x), -1)
                    return z + x @ (S * mask) if wide else z

                for _ in range(epochs):
                    order = rng.permutation(n)
                    for b0 in range(0, n, batch):
                        x = train[order[b0:b0 + batch]]
                        keep = (rng.random(x.shape) < 0.8) & (x > 0)
                        x_in, y = np.where(keep, x, 0.0), ((x > 0) & ~keep).astype(np.float32)
                        ok = y.sum(axis=1) > 0
                        if not ok.any():
                            continue
                        x_in = x_in[ok] / np.maximum(np.linalg.norm(x_in[ok], axis=1,
                                                                    keepdims=True), 1e-12)
                        y = y[ok] / y[ok].sum(axis=1, keepdims=True)
                        z = logits(torch.tensor(x_in, dtype=torch.float32))
                        loss = -(torch.log_softmax(z, 1) * torch.tensor(y)).sum(1).mean()
                        if wide and l2:
                            loss = loss + l2 * (S ** 2).sum()
                        opt.zero_grad()
                        loss.backward()
                        opt.step()
                x_val = split.val_in.toarray().astype(np.float32)
                x_val /= np.maximum(np.linalg.norm(x_val, axis=1, keepdims=True), 1e-12)
                with torch.no_grad():
                    scores = logits(torch.tensor(x_val)).numpy()
                value = ndcg_at_k(split.val_out, _rank_scores(scores, split.val_in, 10), k=10)
                row.append(f"{name} {value:.3f}")
            ease = max(ndcg_at_k(split.val_out, Ease(lam).fit(split.train, 1).recommend(
                split.val_in, 10), k=10) for lam in EASE_GRID)
            print(f"{data} seed {seed}: " + ", ".join(row) + f", EASE {ease:.3f}", flush=True)


def blend_prototype(datasets, seeds, threads, weights=(0.0, 0.25, 0.5, 0.75, 1.0)):
    """Not the package: would mixing BoltRecommender's scores with EASE's
    beat EASE? Both fitted on the training users (EASE's lambda chosen on
    the validation users); each system's scores are standardised per user
    (mean 0, sd 1) and mixed as a * skbolt + (1 - a) * EASE; NDCG@10 on the
    validation and the test users for every a (a = 0 is EASE alone)."""

    def standard(S):
        S = S - S.mean(axis=1, keepdims=True)
        return S / (S.std(axis=1, keepdims=True) + 1e-12)

    for data in datasets:
        X = {**DATASETS, **LEVER_DATASETS}[data]()
        for seed in seeds:
            split = split_users(X, test_size=0.2, val_size=0.1, random_state=seed)
            ease = max((Ease(lam).fit(split.train, threads) for lam in EASE_GRID),
                       key=lambda e: ndcg_at_k(split.val_out, e.recommend(split.val_in, 10),
                                               k=10))
            rec = BoltRecommender(random_state=seed, n_jobs=threads).fit(split.train)
            for part, X_in, Y in (("validation", split.val_in, split.val_out),
                                  ("test", split.test_in, split.test_out)):
                ids, scores = rec.recommend(X_in, n=X.shape[1])
                S = np.zeros((X_in.shape[0], X.shape[1]), np.float32)
                np.put_along_axis(S, ids, np.where(np.isfinite(scores), scores, 0.0), axis=1)
                mixed = [ndcg_at_k(Y, _rank_scores(a * standard(S) + (1 - a) * standard(
                    np.asarray(X_in @ ease.B)), X_in, 10), k=10) for a in weights]
                print(f"{data} seed {seed} {part} (EASE lambda {ease.lam:g}): "
                      + ", ".join(f"a={a:g} {v:.4f}" for a, v in zip(weights, mixed)),
                      flush=True)


def weighting_table(datasets, seeds, threads):
    """Test NDCG@10 of ``BoltRecommender`` with each ``input_scaling``
    (the default otherwise) on ``WEIGHTED`` sets, and what "auto" chose."""
    scalings = ("raw", "binary", "log1p", "auto")
    out = {}
    for data in datasets:
        X = WEIGHTED[data]()
        print(f"{data}: {X.shape[0]} users x {X.shape[1]} items, values "
              f"{X.data.min():g}-{X.data.max():g} (median {np.median(X.data):g})", flush=True)
        rows = {s: [] for s in scalings}
        picked, carve, seconds = [], [], {s: [] for s in scalings}
        for seed in seeds:
            split = split_users(X, test_size=0.2, val_size=0.1, random_state=seed)
            for how in scalings:
                model = BoltRecommender(input_scaling=how, random_state=seed, n_jobs=threads)
                start = time.perf_counter()
                model.fit(split.train)
                seconds[how].append(time.perf_counter() - start)
                rows[how].append(ndcg_at_k(split.test_out, model.recommend(split.test_in, n=10)[0],
                                           k=10))
                if how == "auto":
                    picked.append(model.input_scaling_)
                    carve.append(model.input_scaling_scores_)
            print(f"  seed {seed}: " + ", ".join(f"{s} {rows[s][-1]:.4f}" for s in scalings)
                  + f"; auto picked {picked[-1]} (carve {carve[-1]})", flush=True)
        out[data] = {"ndcg_at_10": rows, "picked": picked, "carve": carve,
                     "fit_seconds": seconds}
    print("\n| data | " + " | ".join(scalings) + " | auto picked |")
    print("|---|" + "---|" * (len(scalings) + 1))
    for data, r in out.items():
        cells = [f"{np.mean(v):.4f} +- {np.std(v, ddof=1) if len(v) > 1 else 0:.4f}"
                 for v in r["ndcg_at_10"].values()]
        print(f"| {data} | " + " | ".join(cells) + f" | {', '.join(r['picked'])} |")
    print("\nfit seconds (mean): " + "; ".join(
        f"{data} " + ", ".join(f"{s} {np.mean(v):.1f}" for s, v in r["fit_seconds"].items())
        for data, r in out.items()))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+",
                        choices=list(DATASETS) + list(LEVER_DATASETS) + list(WEIGHTED)[2:],
                        default=None)
    parser.add_argument("--systems", nargs="+", default=["popularity", "ease", "als", "bpr",
                                                          "skbolt"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true",
                        help="one split; ML-100K (>= 4) and synth only")
    parser.add_argument("--scale", action="store_true", help="add the 100k-item scale table")
    parser.add_argument("--million", action="store_true", help="the scale table at 1M too")
    parser.add_argument("--levers", nargs="*", default=None, metavar="NAME",
                        help="only the LEVERS variants (all, or those named) on validation "
                             "users")
    parser.add_argument("--seeds", type=int, nargs="+", default=None,
                        help="--levers' seeds (default 0 1)")
    parser.add_argument("--prototype", choices=["wide", "blend"], default=None,
                        help="wide: the PyTorch wide-path prototype on validation users "
                             "(pip install torch); blend: skbolt's scores mixed with EASE's")
    parser.add_argument("--weighting", action="store_true",
                        help="only the input_scaling table (WEIGHTED sets, --seeds, default "
                             "0 1 2)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    if args.weighting:
        found = weighting_table(args.datasets or list(WEIGHTED),
                                tuple(args.seeds) if args.seeds else SEEDS, args.threads)
        if args.out:
            Path(args.out).write_text(json.dumps({"machine": machine(), "weighting": found},
                                                 indent=1, default=float))
        return
    if args.prototype == "blend":
        blend_prototype(args.datasets or ["ml100k_all", "ml100k_pos"],
                        tuple(args.seeds) if args.seeds else SEEDS[:2], args.threads)
        return
    if args.prototype:
        wide_prototype(args.datasets or ["ml100k_all"],
                       tuple(args.seeds) if args.seeds else SEEDS[:2])
        return
    if args.levers is not None:
        found = levers(args.datasets or ["ml100k_all", "ml100k_pos"], args.threads,
                       tuple(args.seeds) if args.seeds else SEEDS[:2], args.levers)
        if args.out:
            Path(args.out).write_text(json.dumps({"machine": machine(), "levers": found},
                                                 indent=1))
        return
    datasets = args.datasets or (["ml100k_pos", "synth"] if args.quick else list(DATASETS))
    seeds = SEEDS[:1] if args.quick else SEEDS
    start = time.perf_counter()
    results = {}
    for data in datasets:
        X = {**DATASETS, **WEIGHTED}[data]()
        print(f"{data}: {X.shape[0]} users x {X.shape[1]} items, {X.nnz} interactions",
              flush=True)
        results[data] = [run_split(X, seed, args.systems, args.threads) for seed in seeds]
    scale = None
    if args.scale:
        scale = scale_table([100_000] + ([1_000_000] if args.million else []), args.threads,
                            args.quick)
    report(results)
    out = Path(args.out) if args.out else (
        Path(__file__).parent / "results"
        / ("recommender_quick.json" if args.quick else "recommender.json"))
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({
        "machine": machine(("skbolt", "implicit", "scikit-learn", "numpy", "scipy")),
        "threads": args.threads, "quick": args.quick, "seeds": list(seeds),
        "seconds": time.perf_counter() - start, "results": results, "scale": scale},
        indent=1, default=float))
    print(f"\n{time.perf_counter() - start:.0f} s; results in {out}")


if __name__ == "__main__":
    main()
