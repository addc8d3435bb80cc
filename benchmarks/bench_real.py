"""skbolt's defaults against the peers a practitioner would pick, on every real open set.

In one run, on the same machine and thread count (``--threads``, default
2, for every system), every real set of the shared data folder goes through
its skbolt estimator with every parameter "auto" (``random_state=0``,
``n_jobs=threads``; ``--skbolt-params`` overrides) and through its kind's
peers. Each (set, system) pair runs in its own fresh process (the "spawn"
context of ``multiprocessing``), systems of one set back to back, so peak
RSS (of that process: interpreter, imports, data and model) is per system;
the child sends its figures back through a pipe. Peak RSS is the child's
``VmHWM`` (``/proc/self/status``), not its ``ru_maxrss``, which on Linux
starts at the parent's resident size at the fork before the exec (both are
in the JSON; ``ru_maxrss`` where ``/proc`` is missing).

kinds, systems and metrics
    XC / multi-label (``BoltClassifier`` on a 2-D sparse indicator ``y``):
    ``skbolt``; ``omikuji-parabel``, ``omikuji-bonsai``, ``napkinxc-plt``
    and ``ovr-linear`` (``OneVsRestClassifier(LinearSVC())``), run by
    ``bench_xc_peers``'s runners at their default effort (omikuji's
    training file leaves out the rows without a feature, which its reader
    rejects: 11 of tmc2007's, 6 of enron's). Metrics: P@1,
    P@3, P@5 of the top-5; micro-F1 and macro-F1 of a predicted label set
    (macro: mean over the labels that occur in the test split): skbolt's
    and one-vs-rest's ``predict``; for the tree peers, the labels whose
    score (their probability estimate) is at least 0.5 (napkinxc's
    ``predict(threshold=0.5)``; omikuji's top-k with k the most labels of
    a training row, cut at 0.5); fit seconds; peak RSS.
    Text (``BoltClassifier`` on ``TfidfVectorizer(ngram_range=(1, 2),
    sublinear_tf=True, min_df=2)``, fitted on the training split, 1-D
    labels): ``skbolt``; ``linearsvc`` (C searched by ``GridSearchCV`` over
    ``SVC_GRID``, cv=3; the table shows the fit time with the search and
    refit, and the plain fit time at C=1); ``sgd``
    (``SGDClassifier(loss="modified_huber")``, defaults); ``complementnb``
    (alpha searched by ``GridSearchCV`` over ``NB_GRID``, cv=3, shown as
    LinearSVC is; plain fit at the default alpha=1.0); ``fasttext``
    (fasttext-wheel ``train_supervised``, ``FASTTEXT`` settings, on the
    lower-cased text with punctuation split off, from a training file
    written outside the timed fit). Metrics: accuracy, macro-F1, fit
    seconds (the vectorizer's time is excluded and reported once per set),
    peak RSS.
    Recommender (``BoltRecommender``): strong generalization exactly as
    ``bench_recommender.py`` does it (``split_users(X, test_size=0.2,
    val_size=0.1, random_state=seed)``, seeds 0, 1, 2; its ``Ease`` and
    ``Als`` with ``EASE_GRID`` / ``ALS_GRID`` tuned on the validation users
    by its ``tuned``; skbolt untuned, the validation users not given to
    it); ``popularity`` as a reference row (never the best peer). Metrics:
    NDCG@10 (binary relevance: the held-out targets are items, whatever
    their count) and Recall@20 as mean +- sd over the splits, fit seconds
    of the chosen configuration (and with the tuning), peak RSS. On the
    count sets, EASE, ALS and popularity get the binarised matrix (as a
    practitioner would give them), ``skbolt`` the raw counts and
    ``skbolt-binarised`` the binarised matrix.

skbolt's chosen settings
    ``best_params_``, ``loss_``, ``hidden_layer_sizes_``,
    ``learning_rate_init_``, ``max_iter_``, ``n_iter_``,
    ``output_sparsity_``, and, where the fitted estimator has them,
    ``input_scaling_``, ``threshold_``, ``centroid_finish_``,
    ``temperature_`` (and the recommender's
    ``init_``, ``input_fraction_``); the autotuner's trials (distinct
    configurations tried) and their seconds (each trial's last cumulative
    time, summed; the centroid finish's scoring included).

datasets (``SETS``, in report order; the shared data folder is
``$SKBOLT_DATA``, default ``shared/data`` beside the checkout)
    XC: ``bibtex`` (xc_bibtex), ``corel5k`` (xc_corel5k), ``cal500``,
    ``tmc2007``, ``medical`` and ``enron`` (xc_mulan_small), their fixed
    splits. Text: ``20newsgroups`` (text_20newsgroups, bydate split,
    ``load_files(encoding="latin-1")``, headers, signatures and quoted
    replies removed with scikit-learn's ``strip_newsgroup_header`` /
    ``_footer`` / ``_quoting``, as ``fetch_20newsgroups(remove=...)``
    does), ``mr``, ``trec`` and ``ohsumed23`` (text_small). Recommender:
    ``ml100k`` (MovieLens-100K, every rating a binary positive, as
    ``bench_recommender``'s ``ml100k_all``); ``ml100k_counts`` (the same
    interactions, each value replaced by a play-count-like draw: 1 +
    floor(3 * Lomax(1.5)), ``numpy.random.default_rng(0)``, in CSR order;
    median 2, maximum in the thousands); ``ml100k_counts_heldout`` (the
    same, 1 + floor(lognormal(mean=1, sigma=1.6)) with seed 97).

held out (never used to tune skbolt's rules; reported last in every table,
marked "(held out)")
    XC: ``enron``; text: ``ohsumed23``; recommender: ``ml100k_counts_heldout``.

Usage::

    python benchmarks/bench_real.py                      # everything: est. 30-60 min on 2 cores
    python benchmarks/bench_real.py --quick              # measured 7.5-12 min on 2 shared cores
    python benchmarks/bench_real.py --sets bibtex mr --systems skbolt linearsvc omikuji-parabel
    python benchmarks/bench_real.py --quick --sets ml100k_counts \
        --skbolt-params loss=sigmoid autotune=False --out /tmp/real_sigmoid.json
    python benchmarks/bench_real.py --sets 20newsgroups --timeout 1800   # kill a child after 30 min

Joblib work inside a child (one-vs-rest, the grid searches) runs on
threads, so that its memory counts in that child's peak RSS.

``--quick``: 20 Newsgroups with unigrams only (about 40k features instead
of 230k), napkinxc skipped (omikuji covers the tree peers), one recommender
split (seed 0). Everything else as in the full run. A set whose files are
missing, or a peer whose package is not installed, is skipped with a
printed reason. Results go to ``--out`` (``benchmarks/results/real.json``,
or ``real_quick.json`` with ``--quick``) with the machine they ran on.
"""
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import ast
import contextlib
import importlib.util
import json
import multiprocessing
import re
import resource
import shutil
import tempfile
import time
import traceback
import warnings
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from bench_recommender import ALS_GRID, EASE_GRID, SEEDS, Als, Ease, Popularity, Skbolt
from bench_recommender import evaluate as evaluate_rec
from bench_recommender import tuned as tuned_rec
from bench_xc_peers import (
    DEFAULT_EFFORT,
    TOP_K,
    int32_indices,
    machine,
    run_napkinxc,
    run_omikuji,
    scores,
    top_k_of,
    write_xc_file,
)

#: name -> kind and where it comes from, in report order within each kind;
#: held-out sets last in their kind.
SETS = {
    "bibtex": {"kind": "xc", "folder": "xc_bibtex", "stem": "bibtex"},
    "corel5k": {"kind": "xc", "folder": "xc_corel5k", "stem": "corel5k"},
    "cal500": {"kind": "xc", "folder": "xc_mulan_small", "stem": "cal500"},
    "tmc2007": {"kind": "xc", "folder": "xc_mulan_small", "stem": "tmc2007"},
    "medical": {"kind": "xc", "folder": "xc_mulan_small", "stem": "medical"},
    "enron": {"kind": "xc", "folder": "xc_mulan_small", "stem": "enron", "held_out": True},
    "20newsgroups": {"kind": "text", "folder": "text_20newsgroups"},
    "mr": {"kind": "text", "folder": "text_small/mr"},
    "trec": {"kind": "text", "folder": "text_small/trec"},
    "ohsumed23": {"kind": "text", "folder": "text_small/ohsumed23", "held_out": True},
    "ml100k": {"kind": "rec", "folder": "rec_movielens100k"},
    "ml100k_counts": {"kind": "rec", "folder": "rec_movielens100k",
                      "counts": ("lomax", 0)},
    "ml100k_counts_heldout": {"kind": "rec", "folder": "rec_movielens100k",
                              "counts": ("lognormal", 97), "held_out": True},
}
KINDS = {"xc": "XC / multi-label", "text": "Text", "rec": "Recommender"}

#: Systems of each kind, in report order. Reference rows are never "best peer".
SYSTEMS = {
    "xc": ("skbolt", "omikuji-parabel", "omikuji-bonsai", "napkinxc-plt", "ovr-linear"),
    "text": ("skbolt", "linearsvc", "sgd", "complementnb", "fasttext"),
    "rec": ("skbolt", "skbolt-binarised", "ease", "als", "popularity"),
}
REFERENCE = {"popularity", "skbolt-binarised"}
#: Where a system comes from, to skip it when it is not installed.
PACKAGE = {"omikuji-parabel": "omikuji", "omikuji-bonsai": "omikuji",
           "napkinxc-plt": "napkinxc", "fasttext": "fasttext", "als": "implicit"}
#: --quick leaves these out.
QUICK_SKIP = {"napkinxc-plt"}
#: Each kind's headline metric (the summary's).
HEADLINE = {"xc": ("p_at_1", "P@1"), "text": ("accuracy", "accuracy"),
            "rec": ("ndcg_at_10", "NDCG@10")}

VECTORIZER = {"ngram_range": (1, 2), "sublinear_tf": True, "min_df": 2}
#: --quick: 20 Newsgroups with unigrams only.
QUICK_NGRAMS = {"20newsgroups": (1, 1)}
SVC_GRID = (0.1, 0.3, 1.0, 3.0, 10.0)
NB_GRID = (0.01, 0.03, 0.1, 0.3, 1.0)
FASTTEXT = {"lr": 0.5, "epoch": 25, "wordNgrams": 2, "dim": 100, "loss": "softmax",
            "minCount": 1, "seed": 0}

#: The skbolt attributes recorded and printed when the estimator has them.
SKBOLT_ATTRIBUTES = ("loss_", "hidden_layer_sizes_", "learning_rate_init_", "max_iter_",
                     "n_iter_", "output_sparsity_", "batch_size_", "input_scaling_",
                     "threshold_", "centroid_finish_", "temperature_", "init_",
                     "input_fraction_")


# ----------------------------------------------------------------------------
# data


def data_home():
    """The shared data folder: ``$SKBOLT_DATA``, else ``shared/data`` beside
    the checkout (as skbolt's loaders find it)."""
    from skbolt.datasets import data_home as home

    return home()


def missing_reason(name):
    """Why set ``name`` cannot be loaded here, or None."""
    home = data_home()
    if home is None:
        return "no shared data folder (set SKBOLT_DATA)"
    spec = SETS[name]
    where = home / spec["folder"]
    if spec["kind"] == "xc":
        need = [where / "xc_format" / f"{spec['stem']}_{s}.txt" for s in ("train", "test")]
    elif name == "20newsgroups":
        need = [where / "20news-bydate-train", where / "20news-bydate-test"]
    elif name == "mr":
        need = [where / f"{w}_{s}.txt" for w in ("text", "label") for s in ("train", "test")]
    elif spec["kind"] == "text":
        need = [where / f"{s}.tsv" for s in ("train", "test")]
    else:
        need = [where / "u.data"]
    absent = [str(p) for p in need if not p.exists()]
    return f"missing {', '.join(absent)}" if absent else None


def load_xc_set(name):
    """Training and test features and label indicators of an XC set."""
    from skbolt.datasets import load_xc

    spec = SETS[name]
    where = data_home() / spec["folder"] / "xc_format"
    X, Y = load_xc(where / f"{spec['stem']}_train.txt")
    Xt, Yt = load_xc(where / f"{spec['stem']}_test.txt")
    return X, Y, Xt, Yt


def load_text(name):
    """Raw training and test documents and labels of a text set."""
    where = data_home() / SETS[name]["folder"]
    if name == "20newsgroups":
        from sklearn.datasets import _twenty_newsgroups as news
        from sklearn.datasets import load_files

        parts = []
        for split in ("train", "test"):
            bunch = load_files(where / f"20news-bydate-{split}", encoding="latin-1")
            docs = [news.strip_newsgroup_quoting(news.strip_newsgroup_footer(
                news.strip_newsgroup_header(d))) for d in bunch.data]
            parts.append((docs, np.asarray(bunch.target_names)[bunch.target]))
        return parts[0][0], parts[0][1], parts[1][0], parts[1][1]
    if name == "mr":
        return (lines(where / "text_train.txt"), np.asarray(lines(where / "label_train.txt")),
                lines(where / "text_test.txt"), np.asarray(lines(where / "label_test.txt")))
    parts = []
    for split in ("train", "test"):
        rows = [line.split("\t") for line in lines(where / f"{split}.tsv")[1:]]
        parts.append(([r[-1] for r in rows], np.asarray([r[0] for r in rows])))
    return parts[0][0], parts[0][1], parts[1][0], parts[1][1]


def lines(path):
    """A text file's lines: UTF-8, else Windows-1252 (MR's sentences are in
    it, with CRLF line ends and 0x85 ellipses that ``str.splitlines`` would
    take for line breaks)."""
    out = []
    for raw in path.read_bytes().split(b"\n"):
        try:
            out.append(raw.decode("utf-8").rstrip("\r"))
        except UnicodeDecodeError:
            out.append(raw.decode("cp1252", errors="replace").rstrip("\r"))
    return out[:-1] if out and out[-1] == "" else out


def fasttext_line(text):
    """A document as fastText reads it: lower-cased, punctuation split off,
    one line."""
    text = re.sub(r"([.!?,;:()\"'/])", r" \1 ", text.lower())
    return " ".join(text.split())


def prepare_text(name, quick, folder):
    """Vectorize a text set once (timed) and write what the children read:
    ``X.npz``, ``Xt.npz``, ``y.npy``, ``yt.npy`` and fastText's files."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    docs, y, docs_t, yt = load_text(name)
    params = dict(VECTORIZER)
    if quick and name in QUICK_NGRAMS:
        params["ngram_range"] = QUICK_NGRAMS[name]
    start = time.perf_counter()
    vectorizer = TfidfVectorizer(**params)
    X = vectorizer.fit_transform(docs)
    Xt = vectorizer.transform(docs_t)
    seconds = time.perf_counter() - start
    sp.save_npz(folder / "X.npz", X.tocsr(), compressed=False)
    sp.save_npz(folder / "Xt.npz", Xt.tocsr(), compressed=False)
    np.save(folder / "y.npy", y)
    np.save(folder / "yt.npy", yt)
    with open(folder / "ft_train.txt", "w", encoding="utf-8") as f:
        for doc, label in zip(docs, y):
            f.write(f"__label__{label} {fasttext_line(doc)}\n")
    (folder / "ft_test.txt").write_text("\n".join(fasttext_line(d) for d in docs_t) + "\n",
                                        encoding="utf-8")
    return {"n_train": X.shape[0], "n_test": Xt.shape[0], "n_features": X.shape[1],
            "n_labels": int(np.unique(y).size), "vectorizer_seconds": seconds,
            "vectorizer": {k: list(v) if isinstance(v, tuple) else v
                           for k, v in params.items()}}


def counted(X, spec):
    """``X``'s interactions, each value a heavy-tailed count (``spec``:
    distribution and seed)."""
    dist, seed = spec
    rng = np.random.default_rng(seed)
    if dist == "lomax":
        draws = 3.0 * rng.pareto(1.5, size=X.nnz)
    else:
        draws = rng.lognormal(mean=1.0, sigma=1.6, size=X.nnz)
    X = sp.csr_matrix(X, dtype=np.float32, copy=True)
    X.data = (1.0 + np.floor(draws)).astype(np.float32)
    return X


def load_rec(name):
    """A recommender set's users x items matrix."""
    from skbolt.datasets import load_movielens100k

    X = load_movielens100k(implicit=True).X
    spec = SETS[name].get("counts")
    return counted(X, spec) if spec else sp.csr_matrix(X)


def binary(X):
    """A copy of ``X`` with every stored value 1."""
    X = sp.csr_matrix(X, dtype=np.float32, copy=True)
    X.eliminate_zeros()
    X.data[:] = 1.0
    return X


def set_info(name, quick):
    """Shapes of a set for the report (text sets: from ``prepare_text``)."""
    kind = SETS[name]["kind"]
    if kind == "xc":
        X, Y, Xt, _ = load_xc_set(name)
        return {"n_train": X.shape[0], "n_test": Xt.shape[0], "n_features": X.shape[1],
                "n_labels": Y.shape[1], "labels_per_row": float(Y.nnz / Y.shape[0]),
                "labels_in_train": int((np.diff(Y.tocsc().indptr) > 0).sum())}
    X = load_rec(name)
    info = {"n_users": X.shape[0], "n_items": X.shape[1], "nnz": int(X.nnz)}
    if SETS[name].get("counts"):
        info.update(count_median=float(np.median(X.data)), count_max=float(X.data.max()),
                    count_mean=float(X.data.mean()))
    return info


# ----------------------------------------------------------------------------
# helpers of the children


def skbolt_kwargs(opts):
    return {"random_state": 0, "n_jobs": opts["threads"], **opts["skbolt_params"]}


def plain(value):
    """``value`` made JSON-friendly (tuples and arrays as lists)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def skbolt_settings(model):
    """What skbolt chose: the resolved attributes and the autotuner's work."""
    out = {a: plain(getattr(model, a, None)) for a in SKBOLT_ATTRIBUTES}
    out["best_params_"] = plain(getattr(model, "best_params_", None) or {})
    trials = getattr(model, "autotune_results_", None) or []
    per_config = {}
    for entry in trials:
        params = {k: v for k, v in entry.get("params", {}).items() if k != "centroid_finish"}
        key = json.dumps(plain(params), sort_keys=True)
        per_config[key] = max(per_config.get(key, 0.0), float(entry.get("seconds", 0.0)))
    out["autotune_trials"] = len(per_config)
    out["autotune_entries"] = len(trials)
    out["autotune_seconds"] = float(sum(per_config.values()))
    return out


def indicator_of(rows, shape):
    """A CSR 0/1 indicator of per-row label lists."""
    indptr = np.zeros(len(rows) + 1, dtype=np.int64)
    indptr[1:] = np.cumsum([len(r) for r in rows])
    ids = np.fromiter((j for r in rows for j in r), dtype=np.int64, count=int(indptr[-1]))
    Y = sp.csr_matrix((np.ones(ids.size, np.float32), ids, indptr), shape=shape)
    Y.sum_duplicates()
    return Y


def f1s(Yt, P):
    """Micro-F1 and macro-F1 (over the labels of the test split) of a
    predicted label-set indicator ``P``."""
    from sklearn.metrics import f1_score

    Yt, P = sp.csr_matrix(Yt), binary(sp.csr_matrix(P))
    present = np.flatnonzero(np.diff(Yt.tocsc().indptr) > 0)
    return {"micro_f1": float(f1_score(Yt, P, average="micro", zero_division=0)),
            "macro_f1": float(f1_score(Yt, P, average="macro", labels=present,
                                       zero_division=0))}


@contextlib.contextmanager
def captured(owner, name, wrap):
    """``owner.name`` replaced by ``wrap(original)`` for the block (to keep
    the model a reused runner builds and drops)."""
    original = getattr(owner, name)
    setattr(owner, name, wrap(original))
    try:
        yield
    finally:
        setattr(owner, name, original)


# ----------------------------------------------------------------------------
# the children: one (set, system) each


def run_xc(name, system, opts, folder):
    X, Y, Xt, Yt = load_xc_set(name)
    data = {"X": X, "y": Y, "Xt": Xt, "yt": Yt, "n_labels": Y.shape[1], "multilabel": True}
    if system == "skbolt":
        from skbolt import BoltClassifier

        clf = BoltClassifier(**skbolt_kwargs(opts))
        start = time.perf_counter()
        clf.fit(X, Y)
        fit_seconds = time.perf_counter() - start
        ids, _ = clf.predict_topk(Xt, TOP_K)
        return {"fit_seconds": fit_seconds, **scores(Yt, ids), **f1s(Yt, clf.predict(Xt)),
                "settings": skbolt_settings(clf)}
    if system == "ovr-linear":
        # as bench_xc_peers.run_ovr, keeping the model for its predict
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.multiclass import OneVsRestClassifier
        from sklearn.svm import LinearSVC

        X32, Xt32 = int32_indices(X), int32_indices(Xt)
        model = OneVsRestClassifier(LinearSVC(random_state=0), n_jobs=opts["threads"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.filterwarnings("ignore", message="Label .* is present in all training")
            warnings.filterwarnings("ignore", message="Label not .* present")
            start = time.perf_counter()
            model.fit(X32, Y)
            fit_seconds = time.perf_counter() - start
        ids = model.classes_[top_k_of(model.decision_function(Xt32), TOP_K)]
        return {"fit_seconds": fit_seconds, **scores(Yt, ids), **f1s(Yt, model.predict(Xt32)),
                "settings": {"estimator": "LinearSVC(C=1)", "label_set": "predict"}}
    work = {"dir": folder, "log": folder / "native.log", "xc_file": None}
    models = []

    def keep(original):
        def call(*args, **kwargs):
            models.append(original(*args, **kwargs))
            return models[-1]
        return call

    most = int(np.diff(Y.indptr).max(initial=1))
    if system.startswith("omikuji"):
        import omikuji

        work["xc_file"] = folder / "train.txt"
        # omikuji cannot read a line without features (tmc2007 has 11 such
        # training rows, enron 6): they are left out of its file
        has = np.diff(X.indptr) > 0
        write_xc_file(work["xc_file"], X[has], Y[has])
        with captured(omikuji.Model, "train_on_data", keep):
            r = run_omikuji(system, DEFAULT_EFFORT[system], data, opts["threads"], work)
        rows = []
        for i in range(Xt.shape[0]):
            lo, hi = Xt.indptr[i], Xt.indptr[i + 1]
            pairs = list(zip(Xt.indices[lo:hi].tolist(), Xt.data[lo:hi].tolist()))
            rows.append([j for j, s in models[-1].predict(pairs, top_k=max(most, TOP_K))
                         if s >= 0.5])
        label_set = f"score >= 0.5 of the top {max(most, TOP_K)}"
    else:
        import napkinxc.models

        def keep_self(original):
            def fit(self, *args, **kwargs):
                models.append(self)
                return original(self, *args, **kwargs)
            return fit

        with captured(napkinxc.models.PLT, "fit", keep_self):
            r = run_napkinxc(system, DEFAULT_EFFORT[system], data, opts["threads"], work)
        rows = models[-1].predict(Xt, threshold=0.5)
        label_set = "predict(threshold=0.5)"
    ids = r.pop("ids")
    r.pop("predict_seconds", None)
    r["settings"] = {**plain(r.get("settings", {})), "label_set": label_set}
    return {**r, **scores(Yt, ids), **f1s(Yt, indicator_of(rows, Yt.shape))}


def text_metrics(yt, predicted):
    from sklearn.metrics import accuracy_score, f1_score

    return {"accuracy": float(accuracy_score(yt, predicted)),
            "macro_f1": float(f1_score(yt, predicted, average="macro", zero_division=0))}


def searched(estimator, grid_name, grid, X, y, Xt, yt, threads):
    """A plain fit at the estimator's own setting, then ``GridSearchCV`` over
    ``grid`` (cv=3, refit); the searched model's scores."""
    from sklearn.base import clone
    from sklearn.model_selection import GridSearchCV

    start = time.perf_counter()
    model = clone(estimator).fit(X, y)
    plain_seconds = time.perf_counter() - start
    plain_scores = text_metrics(yt, model.predict(Xt))
    search = GridSearchCV(clone(estimator), {grid_name: list(grid)}, cv=3, n_jobs=threads)
    start = time.perf_counter()
    search.fit(X, y)
    fit_seconds = time.perf_counter() - start
    return {"fit_seconds": fit_seconds, "plain_fit_seconds": plain_seconds,
            "plain_accuracy": plain_scores["accuracy"],
            "plain_macro_f1": plain_scores["macro_f1"],
            **text_metrics(yt, search.predict(Xt)),
            "settings": {"chosen": {grid_name: search.best_params_[grid_name]},
                         "grid": list(grid), "cv": 3}}


def run_text(name, system, opts, folder):
    y, yt = np.load(folder / "y.npy"), np.load(folder / "yt.npy")
    if system == "fasttext":
        import fasttext

        start = time.perf_counter()
        model = fasttext.train_supervised(input=str(folder / "ft_train.txt"),
                                          thread=opts["threads"], verbose=0, **FASTTEXT)
        fit_seconds = time.perf_counter() - start
        lines = (folder / "ft_test.txt").read_text(encoding="utf-8").splitlines()
        labels, _ = model.predict(lines)
        predicted = np.asarray([row[0][len("__label__"):] for row in labels])
        return {"fit_seconds": fit_seconds, **text_metrics(yt, predicted),
                "settings": dict(FASTTEXT)}
    X, Xt = sp.load_npz(folder / "X.npz"), sp.load_npz(folder / "Xt.npz")
    if system == "linearsvc":
        from sklearn.svm import LinearSVC

        return searched(LinearSVC(C=1.0, random_state=0), "C", SVC_GRID, X, y, Xt, yt,
                        opts["threads"])
    if system == "complementnb":
        from sklearn.naive_bayes import ComplementNB

        return searched(ComplementNB(alpha=1.0), "alpha", NB_GRID, X, y, Xt, yt,
                        opts["threads"])
    if system == "sgd":
        from sklearn.linear_model import SGDClassifier

        model = SGDClassifier(loss="modified_huber", random_state=0, n_jobs=opts["threads"])
    else:
        from skbolt import BoltClassifier

        model = BoltClassifier(**skbolt_kwargs(opts))
    start = time.perf_counter()
    model.fit(X, y)
    fit_seconds = time.perf_counter() - start
    out = {"fit_seconds": fit_seconds, **text_metrics(yt, model.predict(Xt))}
    out["settings"] = (skbolt_settings(model) if system == "skbolt"
                       else {"loss": "modified_huber", "alpha": model.alpha})
    return out


def run_rec(name, system, opts, folder):
    from skbolt import BoltRecommender
    from skbolt.datasets import split_users

    X = load_rec(name)
    splits = []
    for seed in opts["seeds"]:
        split = split_users(X, test_size=0.2, val_size=0.1, random_state=seed)
        # relevance is binary: the targets are items, whatever their count
        split.val_out, split.test_out = binary(split.val_out), binary(split.test_out)
        if system != "skbolt":
            split.train, split.val_in = binary(split.train), binary(split.val_in)
            split.test_in = binary(split.test_in)
        start = time.perf_counter()
        if system in ("skbolt", "skbolt-binarised"):
            model = Skbolt(0)
            model.model = BoltRecommender(**skbolt_kwargs(opts)).fit(split.train)
            r = {**evaluate_rec(model, split.test_in, split.test_out),
                 "fit_seconds": time.perf_counter() - start,
                 "settings": skbolt_settings(model.model)}
        elif system == "popularity":
            model = Popularity().fit(split.train, opts["threads"])
            r = {**evaluate_rec(model, split.test_in, split.test_out),
                 "fit_seconds": time.perf_counter() - start}
        else:
            make, grid = ((lambda lam: Ease(lam), EASE_GRID) if system == "ease"
                          else (lambda p: Als(**p), ALS_GRID))
            r, _ = tuned_rec(make, grid, split, opts["threads"])
            r["tuned_fit_seconds"] = time.perf_counter() - start
            chosen = r.pop("chosen")
            r["settings"] = {"chosen": plain(chosen if isinstance(chosen, dict)
                                             else {"lambda": chosen})}
        splits.append({"seed": seed, **{k: plain(v) for k, v in r.items()}})
    out = {}
    for key in ("ndcg_at_10", "recall_at_20", "fit_seconds", "tuned_fit_seconds",
                "recommend_ms", "validation_ndcg_at_10"):
        values = [s[key] for s in splits if key in s]
        if values:
            out[key] = float(np.mean(values))
            out[key + "_sd"] = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    out["settings"] = splits[0].get("settings", {})
    out["splits"] = splits
    return out


RUNNERS = {"xc": run_xc, "text": run_text, "rec": run_rec}


def peak_rss_mb():
    """This process's peak resident memory, MB: ``VmHWM``, the high-water
    mark of its own address space. ``ru_maxrss`` is not it in a spawned
    child: Linux carries the forked parent's resident size through the exec
    into it (a child of a parent holding 400 MB reports 409 MB of
    ``ru_maxrss`` and 28 MB of ``VmHWM``)."""
    try:
        with open("/proc/self/status") as f:
            kb = next(line.split()[1] for line in f if line.startswith("VmHWM:"))
        return int(kb) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(kind, name, system, opts, folder, conn):
    """One (set, system) in this fresh process; figures through ``conn``."""
    try:
        from joblib import parallel_config
        from threadpoolctl import threadpool_limits

        # threads, not loky's worker processes: their memory would escape
        # this process's peak RSS (liblinear releases the GIL). BLAS: one
        # thread for the recommenders, as bench_recommender runs them (and
        # implicit asks), the systems' threads elsewhere, as bench_xc_peers
        blas = 1 if kind == "rec" else opts["threads"]
        with threadpool_limits(limits=blas, user_api="blas"), \
                parallel_config(backend="threading", n_jobs=opts["threads"]):
            result = RUNNERS[kind](name, system, opts, Path(folder))
    except Exception as exc:  # any failure is reported, not raised
        result = {"error": f"{type(exc).__name__}: {exc}",
                  "traceback": traceback.format_exc(limit=6)}
    result["peak_rss_mb"] = peak_rss_mb()
    result["ru_maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    conn.send(result)
    conn.close()


def run_in_child(kind, name, system, opts, folder):
    """``child`` in a spawned process; its figures, or an error."""
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    process = context.Process(target=child, args=(kind, name, system, opts, str(folder), send))
    start = time.perf_counter()
    process.start()
    send.close()
    try:
        if receive.poll(opts["timeout"]):
            result = receive.recv()
        else:
            process.kill()
            result = {"error": f"timed out after {opts['timeout']} s"}
    except EOFError:
        result = {"error": "the process died without an answer"}
    process.join()
    if "error" in result and process.exitcode not in (0, None):
        result["error"] += f" (exit code {process.exitcode})"
    result["process_seconds"] = time.perf_counter() - start
    return result


# ----------------------------------------------------------------------------
# the run


def skip_reason(system, quick):
    package = PACKAGE.get(system)
    if package and importlib.util.find_spec(package) is None:
        return f"{package} is not installed (pip install {package})"
    if quick and system in QUICK_SKIP:
        return "left out by --quick"
    return None


def describe(name, info):
    kind = SETS[name]["kind"]
    held = " (held out)" if SETS[name].get("held_out") else ""
    if kind == "rec":
        extra = (f", counts median {info['count_median']:g}, max {info['count_max']:,.0f}"
                 if "count_max" in info else "")
        return (f"{name}{held}: {info['n_users']:,} users x {info['n_items']:,} items, "
                f"{info['nnz']:,} interactions{extra}")
    text = (f"{name}{held}: {info['n_train']:,} train / {info['n_test']:,} test rows, "
            f"{info['n_features']:,} features, {info['n_labels']:,} labels")
    if kind == "text":
        text += (f" (TfidfVectorizer {info['vectorizer']['ngram_range']}: "
                 f"{info['vectorizer_seconds']:.1f} s)")
    return text


def one_line(system, r, kind):
    if "error" in r:
        return f"  {system}: FAILED {r['error']}"
    metric = {"xc": f"P@1 {r.get('p_at_1', 0):.4f}", "text": f"accuracy {r.get('accuracy', 0):.4f}",
              "rec": f"NDCG@10 {r.get('ndcg_at_10', 0):.4f}"}[kind]
    return (f"  {system}: {metric}, fit {r['fit_seconds']:.1f} s, peak RSS "
            f"{r['peak_rss_mb']:.0f} MB ({r['process_seconds']:.0f} s in all)")


def run_set(name, args, opts):
    kind = SETS[name]["kind"]
    systems = [s for s in SYSTEMS[kind] if s in args.systems]
    if kind == "rec" and not SETS[name].get("counts"):
        systems = [s for s in systems if s != "skbolt-binarised"]
    out = {"set": name, "kind": kind, "held_out": bool(SETS[name].get("held_out")),
           "systems": {}, "skipped": {}}
    with tempfile.TemporaryDirectory(prefix="bench_real_") as tmp:
        folder = Path(tmp)
        out["info"] = (prepare_text(name, args.quick, folder) if kind == "text"
                       else set_info(name, args.quick))
        print(f"\n## {describe(name, out['info'])}", flush=True)
        for system in systems:
            reason = skip_reason(system, args.quick)
            if reason:
                out["skipped"][system] = reason
                print(f"  skipping {system}: {reason}", flush=True)
                continue
            work = folder / system
            work.mkdir()
            r = run_in_child(kind, name, system, opts, work if kind != "text" else folder)
            if "error" in r:
                out["skipped"][system] = f"failed: {r['error']}"
                out.setdefault("errors", {})[system] = r
            else:
                out["systems"][system] = r
            print(one_line(system, r, kind), flush=True)
            shutil.rmtree(work, ignore_errors=True)
    return out


# ----------------------------------------------------------------------------
# report


def label(r):
    return f"{r['set']} (held out)" if r["held_out"] else r["set"]


def best_peer(r):
    """The peer with the best headline metric on set ``r`` (None if none ran)."""
    key = HEADLINE[r["kind"]][0]
    peers = {s: v for s, v in r["systems"].items() if s != "skbolt" and s not in REFERENCE}
    if not peers:
        return None
    system = max(peers, key=lambda s: peers[s][key])
    return system, peers[system]


def short(value):
    """A setting as the tables show it: floats to 3 significant digits."""
    return f"{value:.3g}" if isinstance(value, float) else value


def fmt(value, spec=".4f"):
    return "-" if value is None else f"{value:{spec}}"


def versus(r, s, key):
    """Points above the best peer and the fit-time ratio to it."""
    best = best_peer(r)
    if best is None:
        return "- | -"
    return (f"{100 * (s[key] - best[1][key]):+.1f} | "
            f"{s['fit_seconds'] / max(best[1]['fit_seconds'], 1e-9):.2f}")


def ordered(results, kind):
    """A kind's sets, held-out sets last."""
    rs = [r for r in results if r["kind"] == kind]
    return [r for r in rs if not r["held_out"]] + [r for r in rs if r["held_out"]]


def print_tables(results):
    xc, text, rec = ordered(results, "xc"), ordered(results, "text"), ordered(results, "rec")
    if xc:
        print("\n### XC / multi-label: P@k of the top-5, F1 of the predicted label sets\n")
        print("| set | system | P@1 | P@3 | P@5 | micro-F1 | macro-F1 | fit s | peak RSS MB "
              "| P@1 - best peer (pt) | fit / best peer's |")
        print("|" + "---|" * 11)
        for r in xc:
            best = best_peer(r)
            for system, s in r["systems"].items():
                star = " (best peer)" if best and system == best[0] else ""
                print(f"| {label(r)} | {system}{star} | {s['p_at_1']:.4f} | {s['p_at_3']:.4f} | "
                      f"{s['p_at_5']:.4f} | {fmt(s.get('micro_f1'))} | {fmt(s.get('macro_f1'))} "
                      f"| {s['fit_seconds']:.1f} | {s['peak_rss_mb']:.0f} | "
                      f"{versus(r, s, 'p_at_1')} |")
            for system, reason in r["skipped"].items():
                print(f"| {label(r)} | {system} | not run: {reason} |" + " |" * 8)
        print("\nF1 label sets: skbolt and ovr-linear `predict`; omikuji the top-k labels "
              "scoring >= 0.5; napkinxc `predict(threshold=0.5)`. Macro-F1 over the labels of "
              "the test split.")
    if text:
        print("\n### Text: TfidfVectorizer features (vectorizer time excluded)\n")
        print("| set | features | vectorizer s | system | accuracy | macro-F1 | fit s "
              "| plain fit s | peak RSS MB | accuracy - best peer (pt) | fit / best peer's "
              "| chosen |")
        print("|" + "---|" * 12)
        for r in text:
            best = best_peer(r)
            info = r["info"]
            for system, s in r["systems"].items():
                star = " (best peer)" if best and system == best[0] else ""
                chosen = ", ".join(f"{k}={v}" for k, v in
                                   s.get("settings", {}).get("chosen", {}).items())
                plain_fit = fmt(s.get("plain_fit_seconds"), ".1f")
                if "plain_accuracy" in s:
                    plain_fit += f" (acc {s['plain_accuracy']:.4f})"
                print(f"| {label(r)} | {info['n_features']:,} | {info['vectorizer_seconds']:.1f} "
                      f"| {system}{star} | {s['accuracy']:.4f} | {s['macro_f1']:.4f} | "
                      f"{s['fit_seconds']:.1f} | {plain_fit} | {s['peak_rss_mb']:.0f} | "
                      f"{versus(r, s, 'accuracy')} | {chosen} |")
            for system, reason in r["skipped"].items():
                print(f"| {label(r)} | | | {system} | not run: {reason} |" + " |" * 7)
        print("\nfit s: linearsvc and complementnb with their grid search (cv=3) and refit; "
              "plain fit s: one fit at C=1 / alpha=1.0 (with that model's accuracy).")
    if rec:
        print("\n### Recommender: strong generalization, NDCG@10 and Recall@20 (mean +- sd "
              "over the splits)\n")
        print("| set | system | NDCG@10 | Recall@20 | fit s | fit s with tuning | peak RSS MB "
              "| NDCG@10 - best peer (pt) | fit / best peer's | chosen |")
        print("|" + "---|" * 10)
        for r in rec:
            best = best_peer(r)
            for system, s in r["systems"].items():
                star = " (best peer)" if best and system == best[0] else ""
                name = system + (" (on the binarised matrix)" if system in ("ease", "als",
                                                                             "popularity")
                                 and "count_max" in r["info"] else "") + star
                chosen = ", ".join(f"{k}={v}" for k, v in
                                   s.get("settings", {}).get("chosen", {}).items())
                print(f"| {label(r)} | {name} | {s['ndcg_at_10']:.4f} +- "
                      f"{s['ndcg_at_10_sd']:.4f} | {s['recall_at_20']:.4f} | "
                      f"{s['fit_seconds']:.1f} | {fmt(s.get('tuned_fit_seconds'), '.1f')} | "
                      f"{s['peak_rss_mb']:.0f} | {versus(r, s, 'ndcg_at_10')} | {chosen} |")
            for system, reason in r["skipped"].items():
                print(f"| {label(r)} | {system} | not run: {reason} |" + " |" * 7)

    chosen = [(r, system, s) for r in xc + text + rec for system, s in r["systems"].items()
              if system.startswith("skbolt")]
    if chosen:
        print("\n### skbolt's chosen settings\n")
        print("| set | system | loss_ | hidden_layer_sizes_ | learning_rate_init_ | max_iter_ "
              "| n_iter_ | output_sparsity_ | trials | tuning s | best_params_ | other |")
        print("|" + "---|" * 12)
        for r, system, s in chosen:
            c = s["settings"]
            other = ", ".join(f"{a}={short(c[a])}" for a in SKBOLT_ATTRIBUTES[6:]
                              if c.get(a) is not None)
            best = ", ".join(f"{k}={short(v)}" for k, v in c["best_params_"].items()) or "-"
            print(f"| {label(r)} | {system} | {c['loss_']} | {c['hidden_layer_sizes_']} | "
                  f"{fmt(c['learning_rate_init_'], '.2g')} | {c['max_iter_']} | {c['n_iter_']} "
                  f"| {fmt(c['output_sparsity_'], '.3g')} | {c['autotune_trials']} | "
                  f"{c['autotune_seconds']:.1f} | {best} | {other} |")

    print("\n### Summary: skbolt's defaults against the best peer\n")
    print("| set | kind | metric | skbolt | best peer | its value | skbolt - best peer (pt) "
          "| skbolt fit s / peer fit s | skbolt peak RSS MB |")
    print("|" + "---|" * 9)
    for r in xc + text + rec:
        key, metric = HEADLINE[r["kind"]]
        s, best = r["systems"].get("skbolt"), best_peer(r)
        if s is None:
            print(f"| {label(r)} | {r['kind']} | {metric} | not run | "
                  f"{best[0] if best else '-'} | {fmt(best[1][key]) if best else '-'} | - | - "
                  "| - |")
            continue
        if best is None:
            print(f"| {label(r)} | {r['kind']} | {metric} | {s[key]:.4f} | - | - | - | - | "
                  f"{s['peak_rss_mb']:.0f} |")
            continue
        print(f"| {label(r)} | {r['kind']} | {metric} | {s[key]:.4f} | {best[0]} | "
              f"{best[1][key]:.4f} | {100 * (s[key] - best[1][key]):+.1f} | "
              f"{s['fit_seconds'] / max(best[1]['fit_seconds'], 1e-9):.2f} | "
              f"{s['peak_rss_mb']:.0f} |")


def parse_params(pairs, parser):
    """``key=value`` strings as a dict, values by ``ast.literal_eval`` (else
    the string)."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            parser.error(f"--skbolt-params wants key=value, got {pair!r}")
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key] = value
    return out


def main():
    every = [s for kind in SYSTEMS.values() for s in kind]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", nargs="+", choices=list(SETS), default=list(SETS),
                        metavar="NAME", help=f"default: all of {', '.join(SETS)}")
    parser.add_argument("--systems", nargs="+", choices=sorted(set(every)), default=every,
                        metavar="NAME", help="default: every system of each kind "
                        f"({', '.join(sorted(set(every)))})")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true",
                        help="20 Newsgroups with unigrams, no napkinxc, one recommender split")
    parser.add_argument("--skbolt-params", nargs="+", default=[], metavar="KEY=VALUE",
                        help="passed to the skbolt estimator's constructor, e.g. "
                             "loss=sigmoid autotune=False")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds a (set, system) process may take (default: no limit)")
    parser.add_argument("--out", default=None,
                        help="JSON file (default: benchmarks/results/real.json, "
                             "real_quick.json with --quick)")
    args = parser.parse_args()
    args.sets = [n for n in SETS if n in args.sets]
    if args.out is None:
        args.out = (Path(__file__).resolve().parent / "results"
                    / ("real_quick.json" if args.quick else "real.json"))
    opts = {"threads": args.threads, "timeout": args.timeout,
            "skbolt_params": parse_params(args.skbolt_params, parser),
            "seeds": list(SEEDS[:1] if args.quick else SEEDS)}
    if opts["skbolt_params"]:
        print(f"skbolt parameters: {opts['skbolt_params']}")

    start = time.perf_counter()
    results, missing = [], {}
    for name in args.sets:
        reason = missing_reason(name)
        if reason:
            missing[name] = reason
            print(f"\n## skipping {name}: {reason}", flush=True)
            continue
        try:
            results.append(run_set(name, args, opts))
        except Exception as exc:  # a set that cannot be prepared does not end the run
            missing[name] = f"failed: {type(exc).__name__}: {exc}"
            print(f"  {name} failed: {missing[name]}", flush=True)
    total = time.perf_counter() - start
    print_tables(results)
    print(f"\nwhole run: {total:.0f} s")
    report = {"machine": machine(("skbolt", "omikuji", "napkinxc", "implicit", "fasttext-wheel",
                                  "scikit-learn", "numpy", "scipy")),
              "threads": args.threads, "quick": args.quick, "seeds": opts["seeds"],
              "skbolt_params": plain(opts["skbolt_params"]), "seconds": total,
              "held_out": [n for n in SETS if SETS[n].get("held_out")],
              "settings": {"vectorizer": plain(VECTORIZER),
                           "quick_ngrams": plain(QUICK_NGRAMS) if args.quick else None,
                           "svc_grid": SVC_GRID, "nb_grid": NB_GRID, "fasttext": FASTTEXT,
                           "ease_grid": EASE_GRID, "als_grid": ALS_GRID,
                           "quick_skip": sorted(QUICK_SKIP) if args.quick else []},
              "missing_sets": missing, "results": results}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(plain(report), f, indent=1, default=float)
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
