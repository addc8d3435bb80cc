"""skbolt against the tree-based extreme-classification peers, on one machine.

In one run, on the same data, machine and thread count (``--threads``,
default 2, for every system), for each dataset:

systems
    ``skbolt``: ``BoltClassifier(random_state=0, n_jobs=threads)`` with
    every parameter "auto" (the autotuner runs inside ``fit`` from 2,000
    training rows: the default a user gets); top-5 by ``predict_topk``
    (sparse inference).
    ``omikuji-parabel``: omikuji with its default hyper-parameters, which
    are Parabel's (balanced 2-means, ``max_depth=20``, 3 trees).
    ``omikuji-bonsai``: omikuji with the Bonsai settings of its README
    (unbalanced k-means, ``cluster_k=100``, ``max_depth=3``, 3 trees).
    ``napkinxc-plt``: ``napkinxc.models.PLT`` with its defaults (one
    tree), ``seed=0``.
    ``ovr-linear``: ``OneVsRestClassifier(LinearSVC())``, only where there
    are at most ``OVR_MAX_LABELS`` labels (one linear model per label is
    what the tree methods exist to avoid).
    ``nearest-centroid`` (only with ``--systems``, never the best peer):
    cosine to each label's L2-normalised mean training row, a baseline
    that shows how prototype-like a set is.
    omikuji's Python API trains from a file in the Extreme Classification
    text format: the training split is written to a temporary file first,
    outside the timed fit (the file's parsing is inside it, as for a user).
    It also predicts one row per Python call; its prediction time includes
    that call. The peers are benchmark-only (``pip install -e ".[bench]"``);
    a system that is not installed is skipped with a printed reason.

metrics
    P@1, P@3 and P@5 of the top-5 predictions on the test split, fit
    seconds (wall) and microseconds per test row of the top-5 prediction
    call (wall time / test rows).

P@1 against training seconds
    skbolt: our rules' network without search (``autotune=False``) trained
    one epoch at a time with ``partial_fit`` up to the epochs the rules
    give (``max_iter_``; fewer with ``--curve-epochs``). ``partial_fit``
    continues exactly as ``warm_start=True, max_iter=1`` does (the same
    shuffles, bit-identical losses). After each epoch: cumulative training
    seconds (evaluation excluded), the sparse P@1 of ``predict_topk``, and
    the exact P@1 of the argmax of ``predict_proba`` (every class scored,
    in chunks of rows), with their difference. Peers: a few effort levels
    each (omikuji 1, 2 and 3 trees; napkinxc an ensemble of 1 and 3 trees),
    each point (fit seconds, P@1). The crossing point is the first
    training time at which skbolt's curve (sparse P@1) reaches the P@1 of
    the best tree peer at its default settings, next to that peer's fit
    seconds.

datasets (``DATASETS``, in report order)
    ``bibtex`` (real, 159 labels), ``synth10k`` (multi-class, 10k classes),
    ``synth100k_tail`` (multi-class over 100k classes with 30k rows: few
    rows per label, many test labels never in training), ``synth_ml``
    (multi-label, 12 label draws per row, 10k classes), ``synth100k``
    (multi-class, 100k rows and classes; full mode only). Held out of all
    tuning of skbolt's rules and search, and reported last: ``corel5k``
    (real, 374 labels) and ``heldout_synth`` (generator seed 97, 50k
    classes, power 1.1). Synthetic sets come from
    ``skbolt.datasets.make_extreme_classification`` with their own seed,
    the first rows for training and the last ``test`` rows for testing.
    Multi-class sets are given to every system as 1-D labels.

Usage::

    python benchmarks/bench_xc_peers.py                  # everything: an hour or more
    python benchmarks/bench_xc_peers.py --quick          # 6-10 minutes on 2 cores
    python benchmarks/bench_xc_peers.py --datasets bibtex --systems skbolt napkinxc-plt

``--quick`` shrinks every synthetic set to 1/5 of its rows, skips
``synth100k``, stops skbolt's curve after ``QUICK_CURVE_EPOCHS`` epochs and
runs the peers' curves at ``QUICK_EFFORT``. The full run's time is an
estimate from the quick one's. Results go to ``--out`` (``benchmarks/results/xc_peers.json``, or
``xc_peers_quick.json`` with ``--quick``) with the machine they ran on.
"""
import argparse
import contextlib
import copy
import importlib.metadata
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from skbolt import BoltClassifier, _training
from skbolt.metrics import precision_at_k

#: name -> how the set is made, in report order. Synthetic: total rows
#: (test included), test rows, features, classes, label draws per row (above
#: 1: multi-label), power of the label distribution, signature features per
#: class and background features per row, generator seed. The generator's
#: defaults (8 signature, 20 background features) made every set so easy
#: that each tree peer reached the P@1 ceiling (the share of test rows with
#: a label seen in training) in under 2 s; with 2-4 signature features among
#: 60-100 background ones the peers land 5-15 points below it.
#: Held-out sets (never used to tune skbolt's rules or search) come last.
DATASETS = {
    "bibtex": {"loader": "load_bibtex"},
    "synth10k": {"rows": 30_000, "test": 5_000, "features": 20_000, "classes": 10_000,
                 "signature": 3, "noise": 100, "seed": 11},
    "synth100k_tail": {"rows": 30_000, "test": 5_000, "features": 50_000,
                       "classes": 100_000, "signature": 4, "noise": 60, "seed": 12},
    "synth_ml": {"rows": 20_000, "test": 4_000, "features": 20_000, "classes": 10_000,
                 "labels": 12, "power": 0.5, "signature": 2, "noise": 60, "seed": 13},
    "synth100k": {"rows": 100_000, "test": 10_000, "features": 50_000, "classes": 100_000,
                  "signature": 4, "noise": 60, "seed": 14, "full_only": True},
    "corel5k": {"loader": "load_corel5k", "held_out": True},
    "heldout_synth": {"rows": 40_000, "test": 5_000, "features": 50_000, "classes": 50_000,
                      "power": 1.1, "signature": 3, "noise": 80, "seed": 97,
                      "held_out": True},
}

SYSTEMS = ("skbolt", "omikuji-parabel", "omikuji-bonsai", "napkinxc-plt", "ovr-linear")
#: Run only when asked for (``--systems``), never a "best peer".
BASELINES = ("nearest-centroid",)
TREE_PEERS = ("omikuji-parabel", "omikuji-bonsai", "napkinxc-plt")

#: omikuji hyper-parameters per variant, over omikuji's defaults (which are
#: Parabel's); Bonsai's are those of omikuji's README table.
OMIKUJI = {
    "omikuji-parabel": {"cluster_k": 2, "cluster_balanced": True, "max_depth": 20},
    "omikuji-bonsai": {"cluster_k": 100, "cluster_balanced": False, "max_depth": 3},
}

#: Effort levels of the peers' curves, cheapest first.
EFFORT = {
    "omikuji-parabel": [{"n_trees": 1}, {"n_trees": 2}, {"n_trees": 3}],
    "omikuji-bonsai": [{"n_trees": 1}, {"n_trees": 2}, {"n_trees": 3}],
    "napkinxc-plt": [{"ensemble": 1}, {"ensemble": 3}],
    "ovr-linear": [{}],
    "nearest-centroid": [{}],
}
#: --quick: each system's default and at most one cheaper level (the other
#: levels doubled the peers' time on synth_ml).
QUICK_EFFORT = {
    "omikuji-parabel": [{"n_trees": 1}, {"n_trees": 3}],
    "omikuji-bonsai": [{"n_trees": 1}, {"n_trees": 3}],
    "napkinxc-plt": [{"ensemble": 1}],
    "ovr-linear": [{}],
    "nearest-centroid": [{}],
}
#: Each system's own default level: the one in the peer table.
DEFAULT_EFFORT = {"omikuji-parabel": {"n_trees": 3}, "omikuji-bonsai": {"n_trees": 3},
                  "napkinxc-plt": {"ensemble": 1}, "ovr-linear": {}, "nearest-centroid": {}}

#: Where a system comes from, to skip it when it is not installed.
PACKAGE = {"omikuji-parabel": "omikuji", "omikuji-bonsai": "omikuji",
           "napkinxc-plt": "napkinxc", "ovr-linear": "sklearn"}

#: Above this many labels one-vs-rest is not run (hours on two cores).
OVR_MAX_LABELS = 1000

#: --quick: synthetic sets keep 1/QUICK_SHRINK of their rows, skbolt's
#: curve stops after QUICK_CURVE_EPOCHS epochs.
QUICK_SHRINK = 5
QUICK_CURVE_EPOCHS = 10

#: Floats of predict_proba output per chunk of rows (128 MB): exact scoring
#: of 10,000 rows over 100,000 classes at once would take 4 GB.
PROBA_CHUNK_FLOATS = 2**25

TOP_K = 5


# ----------------------------------------------------------------------------
# data


def load(name, quick):
    """A dataset's splits and what it is.

    Parameters
    ----------
    name : str
        A key of ``DATASETS``.
    quick : bool
        Shrink a synthetic set to ``1 / QUICK_SHRINK`` of its rows.

    Returns
    -------
    data : dict
        ``X``, ``y``, ``Xt``, ``yt`` (CSR features; 1-D class ids for
        multi-class sets, CSR indicators otherwise), ``n_labels`` (size of
        the label space) and ``multilabel``.
    info : dict
        Shapes, seed and label statistics, for the report.
    """
    spec = DATASETS[name]
    info = {"dataset": name, "held_out": bool(spec.get("held_out"))}
    if "loader" in spec:
        from skbolt import datasets

        X, y, Xt, yt = getattr(datasets, spec["loader"])()
        info["source"] = f"skbolt.datasets.{spec['loader']}()"
        multilabel = True
    else:
        from skbolt.datasets import make_extreme_classification

        rows, test = spec["rows"], spec["test"]
        if quick:
            rows, test = rows // QUICK_SHRINK, test // QUICK_SHRINK
        draws = spec.get("labels", 1)
        multilabel = draws > 1
        X_all, y_all = make_extreme_classification(
            n_samples=rows, n_features=spec["features"], n_classes=spec["classes"],
            n_labels=draws, multilabel=multilabel, power=spec.get("power", 1.0),
            signature_size=spec.get("signature", 8), noise_features=spec.get("noise", 20),
            random_state=spec["seed"])
        n_train = rows - test
        X, y, Xt, yt = X_all[:n_train], y_all[:n_train], X_all[n_train:], y_all[n_train:]
        info.update(source="make_extreme_classification", seed=spec["seed"],
                    label_draws=draws, power=spec.get("power", 1.0),
                    signature_size=spec.get("signature", 8), noise_features=spec.get("noise", 20))
    n_labels = yt.shape[1] if multilabel else DATASETS[name]["classes"]
    Y, Yt = indicator(y, n_labels), indicator(yt, n_labels)
    seen = np.diff(Y.tocsc().indptr) > 0
    pair_seen = seen[Yt.indices]  # per (test row, label) pair: has a training row the label?
    pair_row = np.repeat(np.arange(Yt.shape[0]), np.diff(Yt.indptr))
    info.update(
        task="multi-label" if multilabel else "multi-class",
        n_train=X.shape[0], n_test=Xt.shape[0], n_features=X.shape[1], n_labels=n_labels,
        labels_per_row=float(Y.nnz / Y.shape[0]), labels_in_train=int(seen.sum()),
        unseen_test_labels=float(1 - pair_seen.mean()) if Yt.nnz else 0.0,
        # no model trained on these rows can score more P@1 than this
        p_at_1_ceiling=float(np.mean(np.bincount(pair_row[pair_seen],
                                                 minlength=Yt.shape[0]) > 0)),
    )
    return {"X": X, "y": y, "Xt": Xt, "yt": yt, "n_labels": n_labels,
            "multilabel": multilabel}, info


def indicator(y, n_labels):
    """CSR label indicator of 1-D class ids (a CSR indicator as it is)."""
    if sp.issparse(y):
        return sp.csr_matrix(y)
    n = len(y)
    return sp.csr_matrix((np.ones(n, dtype=np.float32), np.asarray(y), np.arange(n + 1)),
                         shape=(n, n_labels))


def int32_indices(X):
    """X with 32-bit index arrays (liblinear refuses 64-bit ones)."""
    return sp.csr_matrix((X.data, X.indices.astype(np.int32), X.indptr.astype(np.int32)),
                         shape=X.shape)


# ----------------------------------------------------------------------------
# scoring


def scores(yt, ids):
    """P@1, P@3 and P@5 of top-5 label ids (negative ids: no prediction)."""
    ids = np.asarray(ids, dtype=np.int64)
    return {f"p_at_{k}": float(precision_at_k(yt, ids[:, :k], k=k)) for k in (1, 3, 5)}


def top_k_of(scores_matrix, k):
    """Column ids of the ``k`` largest scores of each row, best first."""
    part = np.argpartition(-scores_matrix, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores_matrix, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def padded(rows, k):
    """A list of label lists as an (n, k) array, short rows padded with -1."""
    ids = np.full((len(rows), k), -1, dtype=np.int64)
    for i, row in enumerate(rows):
        ids[i, :len(row)] = row[:k]
    return ids


def exact_top1(clf, X):
    """Argmax of ``predict_proba``: every class scored, in chunks of rows."""
    step = max(1, PROBA_CHUNK_FLOATS // len(clf.classes_))
    best = np.empty(X.shape[0], dtype=np.int64)
    for start in range(0, X.shape[0], step):
        best[start:start + step] = np.argmax(clf.predict_proba(X[start:start + step]), axis=1)
    return clf.classes_[best].reshape(-1, 1)


# ----------------------------------------------------------------------------
# systems


@contextlib.contextmanager
def quiet_fds(log_path):
    """Send what native code writes to stdout and stderr into ``log_path``.

    omikuji's Rust core logs and draws progress bars on the process's own
    file descriptors, which ``contextlib.redirect_stdout`` cannot reach.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with open(log_path, "ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def run_skbolt(data, threads):
    """The default fit: every parameter "auto", the autotuner included."""
    clf = BoltClassifier(random_state=0, n_jobs=threads)
    start = time.perf_counter()
    clf.fit(data["X"], data["y"])
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    ids, _ = clf.predict_topk(data["Xt"], TOP_K)
    predict_seconds = time.perf_counter() - start
    return {
        "fit_seconds": fit_seconds, "predict_seconds": predict_seconds, "ids": ids,
        "settings": {
            "autotuned": bool(clf.autotune_results_), "trials": len(clf.autotune_results_),
            "best_params": {k: list(v) if isinstance(v, tuple) else v
                            for k, v in clf.best_params_.items()},
            "max_iter_": clf.max_iter_, "n_iter_": clf.n_iter_,
            "hidden_layer_sizes_": list(clf.hidden_layer_sizes_),
            "learning_rate_init_": clf.learning_rate_init_,
            "output_sparsity_": clf.output_sparsity_,
            "sparse_inference_": bool(clf.sparse_inference_),
            "centroid_finish_": bool(clf.centroid_finish_),
            "temperature_": clf.temperature_,
        },
    }


def write_xc_file(path, X, Y):
    """The training split in the Extreme Classification text format."""
    from sklearn.datasets import dump_svmlight_file

    with open(path, "wb") as f:
        f.write(f"{X.shape[0]} {X.shape[1]} {Y.shape[1]}\n".encode())
        # the XC body is svmlight's multi-label format, zero-based
        dump_svmlight_file(X, Y, f, zero_based=True, multilabel=True)


def run_omikuji(system, effort, data, threads, work):
    """omikuji trained from the XC file ``work["xc_file"]``, top-5 per row."""
    with quiet_fds(work["log"]):
        import omikuji  # its logger starts (and prints) at import

    params = omikuji.Model.default_hyper_param()
    for key, value in {**OMIKUJI[system], **effort}.items():
        setattr(params, key, value)
    with quiet_fds(work["log"]):
        start = time.perf_counter()
        model = omikuji.Model.train_on_data(str(work["xc_file"]), params, n_threads=threads)
        fit_seconds = time.perf_counter() - start
    model.init_prediction_thread_pool(threads)
    Xt = data["Xt"]
    rows = []
    with quiet_fds(work["log"]):
        start = time.perf_counter()
        for i in range(Xt.shape[0]):
            lo, hi = Xt.indptr[i], Xt.indptr[i + 1]
            pairs = list(zip(Xt.indices[lo:hi].tolist(), Xt.data[lo:hi].tolist()))
            rows.append([label for label, _ in model.predict(pairs, top_k=TOP_K)])
        predict_seconds = time.perf_counter() - start
    settings = {key: getattr(params, key) for key in
                ("n_trees", "cluster_k", "cluster_balanced", "max_depth", "min_branch_size",
                 "linear_c", "linear_max_iter")}
    return {"fit_seconds": fit_seconds, "predict_seconds": predict_seconds,
            "ids": padded(rows, TOP_K), "settings": settings}


def run_napkinxc(system, effort, data, threads, work):
    """napkinxc's PLT with its defaults (and ``effort``), seeded."""
    from napkinxc.models import PLT

    Y = indicator(data["y"], data["n_labels"])
    # a folder per model, so that no run reads or overwrites another's files
    model = PLT(tempfile.mkdtemp(prefix="plt_", dir=work["dir"]), threads=threads, seed=0,
                **effort)
    start = time.perf_counter()
    model.fit(data["X"], Y)
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    rows = model.predict(data["Xt"], top_k=TOP_K)
    predict_seconds = time.perf_counter() - start
    return {"fit_seconds": fit_seconds, "predict_seconds": predict_seconds,
            "ids": padded(rows, TOP_K), "settings": {"ensemble": 1, "arity": 2, **effort}}


def run_ovr(system, effort, data, threads, work):
    """One LinearSVC per label (C=1), top-5 of the decision function."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.svm import LinearSVC

    X, Xt = int32_indices(data["X"]), int32_indices(data["Xt"])
    model = OneVsRestClassifier(LinearSVC(random_state=0), n_jobs=threads)
    with warnings.catch_warnings():
        # liblinear's iteration cap on a few labels, and labels without a
        # training row (a constant predictor), are not failures here
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.filterwarnings("ignore", message="Label .* is present in all training")
        warnings.filterwarnings("ignore", message="Label not .* present")
        start = time.perf_counter()
        model.fit(X, data["y"])
        fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    ids = model.classes_[top_k_of(model.decision_function(Xt), TOP_K)]
    predict_seconds = time.perf_counter() - start
    return {"fit_seconds": fit_seconds, "predict_seconds": predict_seconds, "ids": ids,
            "settings": {"estimator": "LinearSVC(C=1)"}}


def run_centroid(system, effort, data, threads, work):
    """A baseline, not a peer: each label's mean training row (L2-normalised),
    top-5 by cosine to the test row. It tells how prototype-like a set is."""
    from sklearn.preprocessing import normalize

    start = time.perf_counter()
    centroids = normalize(indicator(data["y"], data["n_labels"]).T @ data["X"]).T.tocsc()
    fit_seconds = time.perf_counter() - start
    Xt = data["Xt"]
    step = max(1, PROBA_CHUNK_FLOATS // data["n_labels"])
    start = time.perf_counter()
    ids = np.concatenate([top_k_of((Xt[i:i + step] @ centroids).toarray(), TOP_K)
                          for i in range(0, Xt.shape[0], step)])
    predict_seconds = time.perf_counter() - start
    return {"fit_seconds": fit_seconds, "predict_seconds": predict_seconds, "ids": ids,
            "settings": {"similarity": "cosine to L2-normalised label means"}}


RUNNERS = {"omikuji-parabel": run_omikuji, "omikuji-bonsai": run_omikuji,
           "napkinxc-plt": run_napkinxc, "ovr-linear": run_ovr,
           "nearest-centroid": run_centroid}


def skip_reason(system, data):
    """Why ``system`` cannot run on ``data`` here, or None."""
    package = PACKAGE.get(system)
    if package and importlib.util.find_spec(package) is None:
        return f"{package} is not installed (pip install {package})"
    if system == "ovr-linear" and data["n_labels"] > OVR_MAX_LABELS:
        return f"{data['n_labels']:,} labels > {OVR_MAX_LABELS:,}"
    return None


def skbolt_curve(data, threads, max_epochs):
    """Our rules' network, one epoch at a time: training seconds, sparse
    and exact P@1 after each epoch."""
    clf = BoltClassifier(random_state=0, autotune=False, n_jobs=threads)
    classes = None if data["multilabel"] else np.unique(data["y"])
    points, seconds, target, Y = [], 0.0, None, None
    while target is None or len(points) < target:
        start = time.perf_counter()
        clf.partial_fit(data["X"], data["y"], classes=classes)
        seconds += time.perf_counter() - start
        epoch = len(points) + 1
        if len(clf.loss_curve_) != epoch:
            # the curve means nothing unless each call continued the last one
            raise RuntimeError(f"partial_fit did not continue: {len(clf.loss_curve_)} epochs "
                               f"recorded after {epoch} calls")
        if target is None:
            rules_epochs = clf.max_iter_  # what a fit with autotune=False would run
            target = rules_epochs if max_epochs is None else min(rules_epochs, max_epochs)
        ids, _ = clf.predict_topk(data["Xt"], 1)
        exact_ids = exact_top1(clf, data["Xt"])
        sparse = float(precision_at_k(data["yt"], ids, k=1))
        exact = float(precision_at_k(data["yt"], exact_ids, k=1))
        # how many labels the test rows' top-1 spread over: an exact top-1
        # that collapses onto a few frequent labels shows here
        points.append({"epoch": epoch, "seconds": seconds, "loss": float(clf.loss_curve_[-1]),
                       "p_at_1_sparse": sparse, "p_at_1_exact": exact,
                       "distinct_top1_sparse": int(np.unique(ids).size),
                       "distinct_top1_exact": int(np.unique(exact_ids).size)})
        finished = ""
        if clf._network.sparse_output and clf.loss_ == "softmax":
            # the same network finished with label centroids (centroid_finish),
            # on a copy, so the curve goes on training the original
            if Y is None:
                X, Y = clf._validate_X(data["X"], reset=False), clf._encode_y(
                    data["y"], classes=clf.classes_)
            copy_ = copy.deepcopy(clf)
            start = time.perf_counter()
            copy_._network, copy_.hash_params_, _ = _training.finish_network(
                copy_._network, X, Y, np.arange(X.shape[0]), copy_.hash_params_,
                copy_._mean_labels, threads)
            points[-1]["finish_seconds"] = time.perf_counter() - start
            ids, _ = copy_.predict_topk(data["Xt"], 1)
            points[-1]["p_at_1_finished_sparse"] = float(precision_at_k(data["yt"], ids, k=1))
            points[-1]["p_at_1_finished_exact"] = float(
                precision_at_k(data["yt"], exact_top1(copy_, data["Xt"]), k=1))
            del copy_
            finished = (f"; finished {points[-1]['p_at_1_finished_sparse']:.4f} / "
                        f"{points[-1]['p_at_1_finished_exact']:.4f}")
        print(f"    skbolt curve epoch {epoch}/{target}: {seconds:.1f} s, P@1 sparse "
              f"{sparse:.4f}, exact {exact:.4f}{finished}", flush=True)
    return {"rules_epochs": rules_epochs, "epochs_run": len(points), "points": points,
            "hash_params_": clf.hash_params_, "batch_size_": clf.batch_size_,
            "hidden_layer_sizes_": list(clf.hidden_layer_sizes_)}


def measure(result, yt, n_test):
    """Scores and per-row time of one system's top-5 ``ids``."""
    ids = result.pop("ids")
    result.update(scores(yt, ids))
    result["predict_us_per_row"] = 1e6 * result["predict_seconds"] / n_test
    return result


def run_dataset(name, args):
    """Every selected system on one dataset (and the curves)."""
    data, info = load(name, args.quick)
    print(f"\n## {name}{' (held out)' if info['held_out'] else ''}: {info['n_train']:,} train / "
          f"{info['n_test']:,} test rows, {info['n_features']:,} features, "
          f"{info['n_labels']:,} labels ({info['task']}, {info['labels_per_row']:.2f} per row, "
          f"{info['labels_in_train']:,} in training)", flush=True)
    out = {**info, "systems": [], "peer_curves": [], "skipped": {}}
    n_test = info["n_test"]
    with tempfile.TemporaryDirectory(prefix="xc_peers_") as tmp:
        work = {"dir": Path(tmp), "log": Path(tmp) / "native.log", "xc_file": None}
        for system in args.systems:
            if system == "skbolt":
                try:
                    r = measure(run_skbolt(data, args.threads), data["yt"], n_test)
                except (MemoryError, RuntimeError, ValueError) as exc:
                    out["skipped"][system] = f"failed: {exc!r}"
                    print(f"  skbolt failed: {exc!r}", flush=True)
                    continue
                out["systems"].append({"system": system, **r})
                print(f"  skbolt: P@1 {r['p_at_1']:.4f} in {r['fit_seconds']:.1f} s "
                      f"({r['settings']})", flush=True)
                continue
            reason = skip_reason(system, data)
            if reason:
                out["skipped"][system] = reason
                print(f"  skipping {system}: {reason}", flush=True)
                continue
            if system.startswith("omikuji") and work["xc_file"] is None:
                work["xc_file"] = work["dir"] / "train.txt"
                start = time.perf_counter()
                write_xc_file(work["xc_file"], data["X"], indicator(data["y"], data["n_labels"]))
                out["xc_file_seconds"] = time.perf_counter() - start
            levels = ((QUICK_EFFORT if args.quick else EFFORT)[system] if args.curve
                      else [DEFAULT_EFFORT[system]])
            for effort in levels:
                try:
                    r = measure(RUNNERS[system](system, effort, data, args.threads, work),
                                data["yt"], n_test)
                except (MemoryError, RuntimeError, ValueError, OSError) as exc:
                    out["skipped"][system] = f"failed: {exc!r}"
                    print(f"  {system} {effort} failed: {exc!r}", flush=True)
                    break
                print(f"  {system} {effort}: P@1 {r['p_at_1']:.4f} in {r['fit_seconds']:.1f} s, "
                      f"{r['predict_us_per_row']:.0f} us/row", flush=True)
                if effort == DEFAULT_EFFORT[system]:
                    out["systems"].append({"system": system, **r})
                if system in TREE_PEERS:
                    out["peer_curves"].append({"system": system, "effort": effort,
                                               "fit_seconds": r["fit_seconds"],
                                               "p_at_1": r["p_at_1"]})
        if args.curve and "skbolt" in args.systems:
            out["skbolt_curve"] = skbolt_curve(data, args.threads, args.curve_epochs)
    out["crossing"] = crossing(out)
    return out


def crossing(out):
    """When skbolt's curve first reaches the best tree peer's P@1."""
    peers = [s for s in out["systems"] if s["system"] in TREE_PEERS]
    curve = out.get("skbolt_curve")
    if not peers or not curve:
        return None
    best = max(peers, key=lambda s: s["p_at_1"])
    hit = next((p for p in curve["points"] if p["p_at_1_sparse"] >= best["p_at_1"]), None)
    top = max(curve["points"], key=lambda p: p["p_at_1_sparse"])
    # the curve finished with centroids after each epoch, its time included
    done = [p for p in curve["points"] if "p_at_1_finished_sparse" in p]
    fin = next((p for p in done if p["p_at_1_finished_sparse"] >= best["p_at_1"]), None)
    fin_top = max(done, key=lambda p: p["p_at_1_finished_sparse"]) if done else None
    return {"peer": best["system"], "peer_p_at_1": best["p_at_1"],
            "finished_seconds": fin["seconds"] + fin["finish_seconds"] if fin else None,
            "finished_epoch": fin["epoch"] if fin else None,
            "finished_best_p_at_1": fin_top["p_at_1_finished_sparse"] if fin_top else None,
            "finished_best_epoch": fin_top["epoch"] if fin_top else None,
            "peer_fit_seconds": best["fit_seconds"],
            "skbolt_seconds": hit["seconds"] if hit else None,
            "skbolt_epoch": hit["epoch"] if hit else None,
            "epochs_run": curve["epochs_run"], "rules_epochs": curve["rules_epochs"],
            "skbolt_best_p_at_1": top["p_at_1_sparse"], "skbolt_best_epoch": top["epoch"]}


# ----------------------------------------------------------------------------
# report


def label(r):
    return f"{r['dataset']} (held out)" if r["held_out"] else r["dataset"]


def crossing_row(name, c, seconds, epoch, best_p, best_epoch):
    """One row of the crossing-points table."""
    if seconds is None:
        reached, ratio = f"never within {c['epochs_run']} epochs", "-"
    else:
        reached = f"{seconds:.1f} s (epoch {epoch})"
        ratio = f"{seconds / c['peer_fit_seconds']:.2f}"
    return (f"| {name} | {c['peer']} | {c['peer_p_at_1']:.4f} | {c['peer_fit_seconds']:.1f} | "
            f"{reached} | {ratio} | {best_p:.4f} ({best_epoch}) |")


def print_tables(results):
    """The markdown tables of every section."""
    print("\n### Datasets\n")
    print("| dataset | task | train rows | test rows | features | labels | labels/row "
          "| labels in train | test labels unseen in train | P@1 ceiling | seed |")
    print("|" + "---|" * 11)
    for r in results:
        print(f"| {label(r)} | {r['task']} | {r['n_train']:,} | {r['n_test']:,} | "
              f"{r['n_features']:,} | {r['n_labels']:,} | {r['labels_per_row']:.2f} | "
              f"{r['labels_in_train']:,} | {100 * r['unseen_test_labels']:.1f}% | "
              f"{r['p_at_1_ceiling']:.4f} | {r.get('seed', '-')} |")

    print("\n### Peers: P@k on the test split, fit time, top-5 time per row\n")
    print("| dataset | system | P@1 | P@3 | P@5 | fit s | us/row | P@1 - best peer (pt) "
          "| fit time / best peer's |")
    print("|" + "---|" * 9)
    for r in results:
        peers = [s for s in r["systems"] if s["system"] not in ("skbolt", *BASELINES)]
        best = max(peers, key=lambda s: s["p_at_1"]) if peers else None
        for s in r["systems"]:
            vs = (f"{100 * (s['p_at_1'] - best['p_at_1']):+.1f} | "
                  f"{s['fit_seconds'] / best['fit_seconds']:.2f} |") if best else "- | - |"
            name = s["system"] + (" (best peer)" if s is best else "")
            print(f"| {label(r)} | {name} | {s['p_at_1']:.4f} | {s['p_at_3']:.4f} | "
                  f"{s['p_at_5']:.4f} | {s['fit_seconds']:.1f} | "
                  f"{s['predict_us_per_row']:.0f} | {vs}")
        for system, reason in r["skipped"].items():
            print(f"| {label(r)} | {system} | not run: {reason} | | | | | | |")

    if any("skbolt_curve" in r for r in results):
        print("\n### P@1 against training seconds\n")
        print("| dataset | system | point | training s | P@1 |")
        print("|" + "---|" * 5)
        for r in results:
            for p in r.get("skbolt_curve", {}).get("points", []):
                print(f"| {label(r)} | skbolt (rules, no search) | epoch {p['epoch']} | "
                      f"{p['seconds']:.1f} | {p['p_at_1_sparse']:.4f} |")
            for p in r.get("skbolt_curve", {}).get("points", []):
                if "p_at_1_finished_sparse" in p:
                    print(f"| {label(r)} | skbolt (rules, centroid finish) | epoch {p['epoch']} "
                          f"| {p['seconds'] + p['finish_seconds']:.1f} | "
                          f"{p['p_at_1_finished_sparse']:.4f} |")
            for p in r["peer_curves"]:
                effort = ", ".join(f"{k}={v}" for k, v in p["effort"].items())
                print(f"| {label(r)} | {p['system']} | {effort} | {p['fit_seconds']:.1f} | "
                      f"{p['p_at_1']:.4f} |")

        print("\n### Crossing points: skbolt's curve against the best tree peer (default "
              "settings)\n")
        print("| dataset | best tree peer | its P@1 | its fit s | skbolt reaches it at "
              "| skbolt s / peer s | skbolt best P@1 (epoch) |")
        print("|" + "---|" * 7)
        for r in results:
            c = r["crossing"]
            if c is None:
                continue
            print(crossing_row(label(r), c, c["skbolt_seconds"], c["skbolt_epoch"],
                               c["skbolt_best_p_at_1"], c["skbolt_best_epoch"]))
            if c.get("finished_best_p_at_1") is not None:
                print(crossing_row(f"{label(r)}, centroid finish", c, c["finished_seconds"],
                                   c["finished_epoch"], c["finished_best_p_at_1"],
                                   c["finished_best_epoch"]))

        print("\n### Exact (argmax of predict_proba) against sparse (predict_topk) P@1, by "
              "epoch\n")
        print("| dataset | epoch | training s | P@1 sparse | P@1 exact | exact - sparse (pt) "
              "| distinct top-1 labels sparse / exact | centroid finish: sparse / exact |")
        print("|" + "---|" * 8)
        for r in results:
            points = r.get("skbolt_curve", {}).get("points", [])
            for p in points:
                fin = (f"{p['p_at_1_finished_sparse']:.4f} / {p['p_at_1_finished_exact']:.4f}"
                       if "p_at_1_finished_sparse" in p else "-")
                print(f"| {label(r)} | {p['epoch']} | {p['seconds']:.1f} | "
                      f"{p['p_at_1_sparse']:.4f} | {p['p_at_1_exact']:.4f} | "
                      f"{100 * (p['p_at_1_exact'] - p['p_at_1_sparse']):+.1f} | "
                      f"{p['distinct_top1_sparse']:,} / {p['distinct_top1_exact']:,} | {fin} |")
            if points:
                worst = min(points, key=lambda p: p["p_at_1_exact"] - p["p_at_1_sparse"])
                print(f"| {label(r)} | worst: epoch {worst['epoch']} | | | | "
                      f"{100 * (worst['p_at_1_exact'] - worst['p_at_1_sparse']):+.1f} | |")


def machine(packages=("skbolt", "omikuji", "napkinxc", "scikit-learn", "numpy", "scipy")):
    """Where the run happened: platform, CPU, cores, versions of
    ``packages``, commit."""
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f
                       if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    versions = {}
    for package in packages:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    try:
        commit = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True,
                                text=True, cwd=Path(__file__).parent, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = None
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {"platform": platform.platform(), "cpu": cpu, "cores": os.cpu_count(),
            "usable_cores": usable, "python": platform.python_version(), "versions": versions,
            "commit": commit, "date": time.strftime("%Y-%m-%d %H:%M")}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", choices=list(DATASETS), default=None,
                        help="default: all (all but synth100k with --quick)")
    parser.add_argument("--systems", nargs="+", choices=SYSTEMS + BASELINES,
                        default=list(SYSTEMS),
                        help="default: every system but the nearest-centroid baseline")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true",
                        help=f"synthetic sets at 1/{QUICK_SHRINK} of their rows, no synth100k, "
                             f"skbolt's curve cut at {QUICK_CURVE_EPOCHS} epochs")
    parser.add_argument("--no-curve", dest="curve", action="store_false",
                        help="only the peer table: no skbolt curve, peers at default effort")
    parser.add_argument("--curve-epochs", type=int, default=None, metavar="N",
                        help="stop skbolt's curve after N epochs (default: the rules' epochs; "
                             f"{QUICK_CURVE_EPOCHS} with --quick)")
    parser.add_argument("--out", default=None,
                        help="JSON file (default: benchmarks/results/xc_peers.json, "
                             "xc_peers_quick.json with --quick)")
    args = parser.parse_args()
    if args.datasets is None:
        args.datasets = [n for n in DATASETS
                         if not (args.quick and DATASETS[n].get("full_only"))]
    elif args.quick and any(DATASETS[n].get("full_only") for n in args.datasets):
        parser.error("synth100k is not run with --quick")
    # report order is DATASETS' order, whatever the command line's
    args.datasets = [n for n in DATASETS if n in args.datasets]
    args.systems = [s for s in SYSTEMS + BASELINES if s in args.systems]
    if args.quick and args.curve_epochs is None:
        args.curve_epochs = QUICK_CURVE_EPOCHS
    if args.out is None:
        results_dir = Path(__file__).resolve().parent / "results"
        args.out = results_dir / ("xc_peers_quick.json" if args.quick else "xc_peers.json")

    start = time.perf_counter()
    # BLAS is no system's engine here, but numpy's helpers must not take
    # more cores than the systems are given
    with threadpool_limits(limits=args.threads, user_api="blas"):
        results = [run_dataset(name, args) for name in args.datasets]
    total = time.perf_counter() - start
    print_tables(results)
    print(f"\nwhole run: {total:.0f} s")
    report = {"machine": machine(), "threads": args.threads, "quick": args.quick,
              "curve": args.curve, "curve_epochs": args.curve_epochs,
              "systems": args.systems, "seconds": total,
              "settings": {"omikuji": OMIKUJI,
                           "effort": QUICK_EFFORT if args.quick else EFFORT,
                           "default_effort": DEFAULT_EFFORT, "ovr_max_labels": OVR_MAX_LABELS},
              "results": results}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(report, f, indent=1, default=float)
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
