"""skbolt on a Dask cluster: data-parallel training, prediction on the workers.

``DaskBoltClassifier`` and ``DaskBoltRecommender`` train and predict as
``BoltClassifier`` and ``BoltRecommender`` do, on dask arrays.

``pip install "skbolt[dask]"`` (dask and distributed). The conventions are
those of LightGBM's and XGBoost's Dask estimators: the estimator takes a
``client`` (default: the current one) and the parameters of the local one,
``fit`` takes dask arrays, predictions come back as dask arrays computed on
the workers, and ``to_local()`` gives the plain estimator.

How ``fit`` trains (the consistency model)
-----------------------------------------
The row partitions of X and y go round-robin to the workers (partition i to
the i-th worker by address, so a fit is reproducible); every worker holding
partitions keeps one *replica*: a ``BoltClassifier`` with the same
parameters on its own rows, in the worker's memory for the fit's duration.

1. Every replica measures its rows; the statistics are added up and the
   first replica resolves "auto" (and runs the autotuning search, on its own
   rows) for the problem of all the rows. The others create the same
   network from the same seed, so all replicas start with equal weights and
   equal hash functions.
2. A sampled network starts from label centroids summed over all the
   replicas' rows (``Network.centroid_sums``, added up, then
   ``Network.set_centroids``): the same start a single machine makes.
3. Training is *bulk-synchronous*. An epoch is one pass of every replica
   over its own rows (together, one pass over the data) in ``rounds`` of
   ``sync_interval`` batches; after each round every replica sends the rows
   of every layer it changed since the last round (their change, and the
   biases') to the others through Dask, and every replica adds all the
   changes to the weights of the last round: as if the replicas' steps had
   been taken one after the other from the same weights, one round stale.
   Summation follows the replica order, so after each round all replicas
   hold bit-identical weights. Adam's moments stay local (each replica's
   follow its own gradients); the hash tables stay local too, rebuilt by
   each replica on the core's schedule from the shared weights with the
   shared hash functions. They hold the labels seen so far: those of the
   centroid start (every replica's rows) and of the replica's own rows, so
   the replicas' tables agree unless a label's only rows have an all-zero
   hidden vector. Measured on two workers (``benchmarks/bench_dask.py``,
   its "averaging" set: multi-label, 300 classes, 8 epochs, test P@1): the
   sum 0.902, as the local fit; the mean of the changes (model averaging)
   0.528, since it makes each epoch R times shorter a walk.
4. After the last epoch the first replica's network, with the label
   centroids of all rows when ``centroid_finish_``, is the model. Labels
   seen by any replica count as seen.

With one worker there is nothing to average: the fit is the local fit of
the concatenated partitions, bit for bit (tests/test_dask.py). A worker
that leaves during ``fit`` ends it with a ``RuntimeError`` naming the worker
(its replica is lost with it); nothing is left running on the others.
"""
import concurrent.futures
import copy
import math
import time
import uuid

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

try:
    import dask
    import dask.array as da
    import distributed
except ImportError as error:  # pragma: no cover - exercised without the extra
    raise ImportError(
        'skbolt.dask needs dask and distributed: pip install "skbolt[dask]"') from error

from . import _hidden, _rules
from ._base import CHUNKS_PER_EPOCH, Problem, _Progress
from ._network import Network
from ._training import RowStream, Run, TrainingData, finished_tables
from .classifier import BoltClassifier
from .recommender import BoltRecommender

_LOCAL = {"classifier": BoltClassifier, "recommender": BoltRecommender}

_TIMEOUTS = (TimeoutError, concurrent.futures.TimeoutError)

#: sync_interval="auto" on several workers: at most this many averagings per
#: epoch, at least SYNC_MIN_BATCHES batches apart. Measured in one run of
#: ``bench_dask.py --quick --intervals 1 3 10`` (two workers, 10k classes,
#: 20k rows, 3 epochs): every batch test P@1 0.869 at 3.9 s/epoch, every 3
#: batches 0.867 at 3.0 s, every 10 (once per epoch) 0.865 at 2.3 s; one
#: machine 0.872 at 1.8-2.3 s. Fewer averagings cost little accuracy here
#: and each one costs a pass over the changed rows on every replica.
SYNCS_PER_EPOCH = 10
SYNC_MIN_BATCHES = 4

#: Seconds between checks that the replicas' workers are still there while
#: a fit waits on them.
POLL_SECONDS = 0.5


# ----------------------------------------------------------------------
# on the workers: one replica per fit and worker


class _Replica:
    """A worker's share of one fit: its rows, its estimator, its run."""

    def __init__(self, estimator, data, threads):
        self.estimator = estimator
        self.data = data
        self.threads = threads
        self.run = None
        self.base = None  # weights and biases after the last round
        self.val = None
        self.best = None


def _store():
    """The replicas of the worker running this task, by fit key."""
    worker = distributed.get_worker()
    if not hasattr(worker, "_skbolt_replicas"):
        worker._skbolt_replicas = {}
    return worker._skbolt_replicas


def _replica(key):
    replica = _store().get(key)
    if replica is None:
        raise RuntimeError(f"this worker holds no replica of fit {key}: it was restarted "
                           "during the fit; refit")
    return replica


def _worker_threads(params):
    """The replica's OpenMP threads: n_jobs, else the worker's threads."""
    if params.get("n_jobs") is not None:
        return None
    return distributed.get_worker().state.nthreads


def _open(key, kind, params, classes, *parts):
    """Stack this worker's partitions and measure them."""
    X = sp.vstack([p[0] for p in parts], format="csr")
    ys = [p[1] for p in parts]
    if ys[0] is None:
        y = None
    else:
        y = sp.vstack(ys, format="csr") if sp.issparse(ys[0]) else np.concatenate(ys)
    est = _LOCAL[kind](**params)
    limit = _worker_threads(params)
    with threadpool_limits(limits=limit, user_api="openmp"):
        if classes is None:
            data = est._training_data(X, y)
        else:  # the classes of every worker's rows, not only of these
            X = est._validate_X(X, reset=True)
            est.classes_, est.multilabel_, est._sparse_y = classes, False, False
            data = TrainingData(X, est._encode_y(y, classes=classes))
        threads = est._n_threads()
    _store()[key] = _Replica(est, data, threads)
    X, Y = data.X, data.Y
    labels, counts = np.unique(Y.indices, return_counts=True)
    return {"n": X.shape[0], "n_features": X.shape[1], "n_outputs": Y.shape[1],
            "nnz": X.nnz, "label_nnz": Y.nnz, "multilabel": est.multilabel_,
            "max_labels": int(max(1, np.diff(Y.indptr).max(initial=1))),
            "labels": labels, "counts": counts}


def _setup(key, problem):
    """First replica: resolve the plan (and search) for all the rows."""
    r = _replica(key)
    est = r.estimator
    with threadpool_limits(limits=r.threads, user_api="openmp"):
        est._setup(r.data, search=True, problem=problem)
    shared = {k: v for k, v in vars(est).items() if k != "_network"}
    return shared, est._network.config


def _adopt(key, shared, config):
    """Other replicas: the first one's resolved attributes, the same network."""
    r = _replica(key)
    vars(r.estimator).update(shared)
    rescale = getattr(r.data, "rescale", None)
    if rescale is not None:
        # the recommender's input_scaling_ was resolved (measured on the
        # first replica's rows): these rows are read through it too
        rescale()
    r.estimator._network = Network(config, build_tables=False, n_threads=r.threads)


def _centroid_sums(key, rows="train"):
    """Label sums of the rows the run starts from (its first epoch's
    targets), or of all rows (the finish)."""
    r = _replica(key)
    if rows == "train":
        (X, Y), rows = r.data.at(0), r.run.stream.rows
    else:
        X, Y, rows = r.data.X, r.data.Y, np.arange(r.data.n_rows)
    return r.estimator._network.centroid_sums(X, Y, rows, r.threads)


def _add_sums(sums):
    """Centroid sums of several shares added up, in the order given."""
    labels = np.unique(np.concatenate([s["labels"] for s in sums]))
    width = sums[0]["total"].size
    total = {"labels": labels.astype(np.int32),
             "sums": np.zeros((labels.size, width), dtype=np.float32),
             "counts": np.zeros(labels.size), "total": np.zeros(width), "sq": 0.0, "used": 0}
    for s in sums:
        at = np.searchsorted(labels, s["labels"])
        total["sums"][at] += s["sums"]
        total["counts"][at] += s["counts"]
        total["total"] += s["total"]
        total["sq"] += s["sq"]
        total["used"] += s["used"]
    return total


def _set_centroids(key, *sums):
    r = _replica(key)
    r.estimator._network.set_centroids(_add_sums(sums), _rules.CENTROID_LOGIT, r.threads)
    _remember(r)


def _set_prior(key, *sums):
    r = _replica(key)
    r.estimator._network.set_prior(_add_sums(sums))
    _remember(r)


def _remember(r):
    """The weights every replica holds now: the base of the next round."""
    net = r.estimator._network
    r.base = [net.get_params(i) for i in range(net.n_layers)]
    for i in range(net.n_layers):
        net.take_changed(i)


def _begin(key, epochs_before, early_stopping, alone):
    """The replica's run: its rows drawn as the local driver draws them
    (a lone replica makes its own centroid start, as the local one)."""
    r = _replica(key)
    est = r.estimator
    rng = np.random.RandomState(est._seed + epochs_before)
    if early_stopping:
        rows, val_rows = est._split(r.data.n_rows, rng)
        r.val = r.data.held_out(val_rows)
    else:
        rows = np.arange(r.data.n_rows)
    r.run = Run(est._network, est.batch_size_, est.learning_rate_init_,
                est.hash_params_["freeze_after"], RowStream.drawn(rows, rng), epochs_before,
                centroid_start=alone)
    return len(rows)


def _round(key, target, after=None):
    """Train up to ``target`` visits; the rows each layer changed."""
    r = _replica(key)
    loss = r.run.advance(r.data, target, r.threads)
    if r.base is None:
        return {"loss": loss, "changes": None}
    net, changes = r.estimator._network, []
    for i, (w0, b0) in enumerate(r.base):
        moved = net.take_changed(i)
        w, b = net.get_rows(i, moved)
        changes.append((moved, w - w0[moved], b - (b0 if i == 0 else b0[moved])))
    return {"loss": loss, "changes": changes}


def _sync(key, average, *rounds):
    """Every replica's changes since the last round added to the weights
    of the last round (``average="mean"``: their mean); returns the bytes
    of all the changes and the rounds' summed loss."""
    r = _replica(key)
    net = r.estimator._network
    scale = np.float32(1.0 / len(rounds) if average == "mean" else 1.0)
    for i, (w0, b0) in enumerate(r.base):
        moved = np.unique(np.concatenate([c["changes"][i][0] for c in rounds]))
        dw = np.zeros((moved.size, w0.shape[1]), dtype=np.float32)
        db = np.zeros(b0.size if i == 0 else moved.size, dtype=np.float32)
        for c in rounds:
            rows, cw, cb = c["changes"][i]
            at = np.searchsorted(moved, rows)
            dw[at] += cw
            if i == 0:
                db += cb
            else:
                db[at] += cb
        w0[moved] += dw * scale
        if i == 0:
            b0 += db * scale
        else:
            b0[moved] += db * scale
        net.set_rows(i, moved, w0[moved], b0 if i == 0 else b0[moved])
        net.take_changed(i)  # the rows just set are the base, not a change
    return sum(_nbytes(c) for c in rounds), sum(c["loss"] for c in rounds)


def _nbytes(result):
    return sum(m.nbytes + w.nbytes + b.nbytes for m, w, b in result["changes"] or ())


def _validation_hits(key):
    """(P@1 hits, rows) on this replica's validation rows."""
    r = _replica(key)
    X_val, Y_val = r.val
    est = r.estimator
    score = est._network_score(est._network, est.sparse_inference_,
                               est.hash_params_["inference_candidates"], X_val, Y_val,
                               r.threads)
    return score * X_val.shape[0], X_val.shape[0]


def _keep_best(key):
    r = _replica(key)
    r.best = r.estimator._network.get_state()


def _seen(key):
    return _replica(key).estimator._network.seen


def _finish(key, epochs_done, alone, sums, seen):
    """First replica: the finished model (with all rows' centroids)."""
    r = _replica(key)
    with threadpool_limits(limits=r.threads, user_api="openmp"):
        return _finished(r, epochs_done, alone, sums, seen)


def _finished(r, epochs_done, alone, sums, seen):
    est = r.estimator
    if r.best is not None:
        est._network = Network.from_state(r.best, r.threads)
    est._epochs_done = epochs_done
    if est.centroid_finish_ and alone:
        est._finish(r.data)
    elif est.centroid_finish_:
        net = est._network
        net.set_centroids(_add_sums(sums), _rules.CENTROID_LOGIT, r.threads)
        # the search's temperature; without one the held-out fit of a single
        # machine would need every replica's rows: no calibration (1.0)
        searched = [t["temperature"] for t in est.autotune_results_ if "temperature" in t]
        t = float(searched[-1]) if searched else 1.0
        net.scale_output(t)
        est._network, est.hash_params_ = finished_tables(net, est.hash_params_, est._mean_labels,
                                                         r.threads)
        est.temperature_ = t
    if seen is not None:
        est._network.set_seen(seen)
    return est


def _close(key):
    _store().pop(key, None)


def _pair(x, y):
    return x, y


def _on_chunk(model, X, method, *args):
    return getattr(model, method)(X, *args)


# ----------------------------------------------------------------------
# on the client


class _DaskEstimator(BaseEstimator):
    """What the Dask estimators share: parameters, fitting through
    ``_Fit``, the model on the workers. Subclasses set ``_kind``."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    def __sklearn_clone__(self):
        # the client is shared, not copied (it holds sockets)
        params = self.get_params(deep=False)
        client = params.pop("client")
        return type(self)(client=client, **{k: clone(v, safe=False) for k, v in params.items()})

    def __getstate__(self):
        # a pickle or joblib file keeps the model, not the connection
        state = dict(vars(self), client=None)
        state.pop("_shipped", None)
        return state

    def _local_params(self):
        params = self.get_params()
        for name in ("client", "sync_interval"):
            params.pop(name)
        if _hidden.requested(params.get("hidden_sparsity")):
            # replicas average the rows they touched and rebuild output
            # tables from a shared seed; a sparse hidden layer's own tables
            # have no such protocol yet
            raise ValueError("the Dask estimators train dense hidden layers only: leave "
                             "hidden_sparsity='auto' (or 1.0), or fit the local "
                             "BoltClassifier / BoltRecommender")
        return params

    def _client(self):
        return self.client if self.client is not None else distributed.default_client()

    def _fit(self, client, X, y, classes):
        interval = self.sync_interval
        if not (_rules.is_auto(interval) or (isinstance(interval, int)
                                              and not isinstance(interval, bool)
                                              and interval >= 1)):
            raise ValueError(f"sync_interval must be a positive integer or 'auto', got "
                             f"{interval!r}")
        key = f"skbolt-fit-{uuid.uuid4().hex}"
        fit = _Fit(client, key, _place(client, X, y))
        try:
            model, record = fit.train(self._kind, self._local_params(), classes, interval,
                                      bool(self.early_stopping), self.verbose,
                                      getattr(self, "_average", "sum"))
        finally:
            fit.close()
        self._set_fitted(model, record)
        return self

    def _set_fitted(self, model, record):
        for name in [k for k in vars(self) if k.endswith("_") and not k.startswith("_")]:
            delattr(self, name)
        self._shipped = None
        self._model = model
        for name, value in vars(model).items():
            if name.endswith("_") and not name.startswith("_"):
                setattr(self, name, value)
        for name, value in record.items():
            setattr(self, name, value)

    # ------------------------------------------------------------------

    def to_local(self):
        """The fitted model as a plain local estimator.

        Returns
        -------
        model : BoltClassifier or BoltRecommender
            A copy that predicts as this estimator does, without a cluster.
        """
        check_is_fitted(self, "_model")
        return copy.deepcopy(self._model)

    def _scattered(self, client):
        """The model on every worker, scattered on the first prediction
        after a fit and reused by the next ones (a new worker fetches it
        from the others when a task needs it there)."""
        held = getattr(self, "_shipped", None)
        if held is None or held[0] is not client or held[1].status != "finished":
            held = (client, client.scatter(self._model, broadcast=True, hash=False))
            self._shipped = held
        return held[1]

    def _on_workers(self, X, method, *args, y=None):
        """``method(chunk, *args)`` of the local model on every row chunk of
        X (``method(chunk, y_chunk)`` with ``y``), on the workers; the
        delayed results and the rows of each chunk."""
        check_is_fitted(self, "_model")
        if y is None:
            X = _as_blocks(X)
            extra = [args] * len(X.chunks[0])
        else:
            X, y = _as_blocks(X, y)
            extra = [(b,) for b in y.to_delayed().ravel()]
        model = self._scattered(self._client())
        out = [dask.delayed(_on_chunk, pure=True)(model, b, method, *a)
               for b, a in zip(X.to_delayed().ravel(), extra)]
        return out, X.chunks[0]

    def _chunk_score(self, X, y):
        """The local model's ``score`` of every row chunk, on the workers,
        averaged weighted by the chunks' rows."""
        out, rows = self._on_workers(X, "score", y=y)
        scores = dask.compute(*out)
        return float(np.dot(scores, rows) / max(sum(rows), 1))


class DaskBoltClassifier(ClassifierMixin, _DaskEstimator):
    """``BoltClassifier`` trained data-parallel on a Dask cluster.

    Every parameter of :class:`skbolt.BoltClassifier` means the same here
    (see its documentation); ``n_jobs=None`` gives each replica its worker's
    threads. The module docstring (``skbolt.dask``) describes how training
    is spread and what every replica holds.

    Parameters
    ----------
    client : distributed.Client, default=None
        The cluster's client; None uses the current one
        (``distributed.default_client()``).
    sync_interval : int or "auto", default="auto"
        Batches each replica trains between two averagings. "auto": at
        most ``SYNCS_PER_EPOCH`` (10) averagings per epoch and at least
        ``SYNC_MIN_BATCHES`` (4) batches apart; on one worker, the chunks
        the local estimator trains in.
    hidden_layer_sizes, learning_rate_init, batch_size, max_iter, \
output_sparsity, hash_function, rebuild_interval, loss, sparse_inference, \
dropout, centroid_finish, autotune, autotune_budget, max_memory, \
early_stopping, validation_fraction, n_iter_no_change, tol, random_state, \
n_jobs, verbose, hidden_sparsity :
        As in :class:`skbolt.BoltClassifier` (``max_memory`` applies to each
        worker's replica; the autotuning search runs on the first replica's
        rows).

    Attributes
    ----------
    classes_, n_features_in_, n_outputs_, n_iter_, loss_curve_ :
        As the fitted local model's (``to_local()``); every other fitted
        attribute of it is there too.
    n_workers_ : int
        Replicas the fit trained (workers that held partitions).
    sync_interval_ : int
        Batches between averagings.
    sync_bytes_ : list of int
        Bytes of changed rows each averaging moved between workers (every
        replica receives every other one's), one entry per round.
    fit_seconds_ : dict
        Wall seconds of the fit's parts: ``setup`` (placing the rows,
        measuring, resolving, the centroid start of several replicas),
        ``epochs`` and ``finish`` (the finished model's way to the client).

    Examples
    --------
    >>> from distributed import Client, LocalCluster      # doctest: +SKIP
    >>> client = Client(LocalCluster(n_workers=2))         # doctest: +SKIP
    >>> X = da.from_array(X_csr, chunks=(10_000, -1), asarray=False)  # doctest: +SKIP
    >>> model = DaskBoltClassifier(random_state=0).fit(X, y)          # doctest: +SKIP
    >>> model.predict(X).compute()                         # doctest: +SKIP
    """

    _kind = "classifier"

    def __init__(
        self,
        client=None,
        sync_interval="auto",
        hidden_layer_sizes="auto",
        learning_rate_init="auto",
        batch_size="auto",
        max_iter="auto",
        output_sparsity="auto",
        hash_function="auto",
        rebuild_interval="auto",
        loss="auto",
        sparse_inference="auto",
        dropout="auto",
        centroid_finish="auto",
        autotune="auto",
        autotune_budget=0.8,
        max_memory="auto",
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=5,
        tol=1e-4,
        random_state=None,
        n_jobs=None,
        verbose=0,
        hidden_sparsity="auto",
    ):
        self.client = client
        self.sync_interval = sync_interval
        self.hidden_layer_sizes = hidden_layer_sizes
        self.learning_rate_init = learning_rate_init
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.output_sparsity = output_sparsity
        self.hash_function = hash_function
        self.rebuild_interval = rebuild_interval
        self.loss = loss
        self.sparse_inference = sparse_inference
        self.dropout = dropout
        self.centroid_finish = centroid_finish
        self.autotune = autotune
        self.autotune_budget = autotune_budget
        self.max_memory = max_memory
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.hidden_sparsity = hidden_sparsity

    # ------------------------------------------------------------------

    def fit(self, X, y):
        """Train replicas of the network on the workers' partitions.

        Parameters
        ----------
        X : dask array of shape (n_samples, n_features)
            Row chunks of CSR matrices (``da.from_array(X_csr, chunks=(rows,
            -1), asarray=False)``, or ``map_blocks`` of a loader); one
            chunk across the columns.
        y : dask array or array-like of shape (n_samples,) or (n_samples, n_labels)
            Class labels, or a binary indicator (CSR chunks) for
            multi-label problems, in X's row chunks (an in-memory array is
            cut into them).

        Returns
        -------
        self : DaskBoltClassifier
            The fitted estimator.
        """
        client = self._client()
        X, y = _as_blocks(X, y)
        classes = None
        if y.ndim == 1:
            classes = client.compute(da.unique(y)).result()
            if len(classes) < 2:
                raise ValueError("DaskBoltClassifier needs samples of at least 2 classes to "
                                 f"learn from; y holds only {classes.tolist()!r}")
        return self._fit(client, X, y, classes)

    def predict(self, X):
        """Predicted classes (multi-label: indicator rows), as a dask array.

        Parameters
        ----------
        X : dask array of shape (n_samples, n_features)
            Row chunks of CSR matrices.

        Returns
        -------
        y : dask array of shape (n_samples,) or (n_samples, n_classes)
        """
        out, rows = self._on_workers(X, "predict")
        if self.multilabel_:
            width = len(self.classes_)
            meta = (sp.csr_matrix((0, width), dtype=np.int64) if self._model._sparse_y
                    else np.empty((0, width), dtype=np.int64))
            parts = [da.from_delayed(o, shape=(n, width), meta=meta) for o, n in zip(out, rows)]
        else:
            parts = [da.from_delayed(o, shape=(n,), dtype=self.classes_.dtype)
                     for o, n in zip(out, rows)]
        return da.concatenate(parts, axis=0)

    def predict_topk(self, X, k=5):
        """The ``k`` most probable classes per row and their probabilities.

        Parameters
        ----------
        X : dask array of shape (n_samples, n_features)
            Row chunks of CSR matrices.
        k : int, default=5
            Classes per row.

        Returns
        -------
        classes, probabilities : dask arrays of shape (n_samples, k)
        """
        self._model._check_k(k)
        out, rows = self._on_workers(X, "predict_topk", k)
        ids = [da.from_delayed(o[0], shape=(n, k), dtype=self.classes_.dtype)
               for o, n in zip(out, rows)]
        probs = [da.from_delayed(o[1], shape=(n, k), dtype=np.float32)
                 for o, n in zip(out, rows)]
        return da.concatenate(ids, axis=0), da.concatenate(probs, axis=0)

    def predict_proba(self, X):
        """Class probabilities, as a dask array of shape (n_samples, n_classes).

        Parameters
        ----------
        X : dask array of shape (n_samples, n_features)
            Row chunks of CSR matrices.

        Returns
        -------
        proba : dask array of shape (n_samples, n_classes)
        """
        out, rows = self._on_workers(X, "predict_proba")
        width = len(self.classes_)
        return da.concatenate([da.from_delayed(o, shape=(n, width), dtype=np.float32)
                               for o, n in zip(out, rows)], axis=0)

    def score(self, X, y, sample_weight=None):
        """Accuracy (multi-label: precision@1), computed on the workers per
        row chunk and averaged weighted by the chunks' rows (both are means
        over rows: the score of all the rows).

        Parameters
        ----------
        X : dask array of shape (n_samples, n_features)
        y : dask array or array-like of shape (n_samples,) or (n_samples, n_labels)
        sample_weight : None
            Not supported.

        Returns
        -------
        score : float
        """
        if sample_weight is not None:
            raise ValueError("sample_weight is not supported")
        return self._chunk_score(X, y)


class _Fit:
    """One distributed fit: its replicas and the driver of their rounds."""

    def __init__(self, client, key, placed):
        self.client, self.key = client, key
        self.workers = [w for w, _ in placed]
        self.parts = [p for _, p in placed]
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="skbolt-wait")
        self._pending = []  # tasks not known to be over, for close

    def _on(self, worker, function, *args):
        future = self.client.submit(function, self.key, *args, workers=[worker],
                                    allow_other_workers=False, pure=False)
        self._pending = [f for f in self._pending if not f.done()] + [future]
        return future

    def _all(self, function, *args):
        return [self._on(w, function, *args) for w in self.workers]

    def wait(self, futures):
        """Results of ``futures``, or a clear error when a replica's worker
        leaves: its tasks, or results it held, could never come back, and
        the scheduler would wait for them forever. The gather runs in a
        thread so that this one keeps watching the workers."""
        futures = list(futures)
        gathering = self._pool.submit(self.client.gather, futures)
        while True:
            try:
                return gathering.result(timeout=POLL_SECONDS)
            except _TIMEOUTS:
                info = self.client.scheduler_info()["workers"]
                gone = [w for w in self.workers if w not in info]
                if gone:
                    self.client.cancel(futures)
                    raise RuntimeError(
                        f"Dask worker {gone[0]} left during fit; it held a replica of the "
                        "network and its rows, so the fit cannot go on. Refit (on the "
                        "remaining workers, or once the worker is back).") from None

    def train(self, kind, params, classes, interval, early_stopping, verbose, average="sum"):
        start = time.perf_counter()
        stats = self.wait(self._on(w, _open, kind, params, classes, *parts)
                          for w, parts in zip(self.workers, self.parts))
        problem = _merged_problem(stats)
        alone = len(self.workers) == 1
        shared, config = self.wait([self._on(self.workers[0], _setup, problem)])[0]
        self.wait(self._on(w, _adopt, shared, config) for w in self.workers[1:])
        batch = shared["batch_size_"]
        lengths = self.wait(self._all(_begin, 0, early_stopping, alone))
        sparse = config["active_size"] < config["n_outputs"]
        if sparse and not alone:
            sums = self._all(_centroid_sums)
            self.wait(self._all(_set_centroids, *sums))
        elif not alone and config["loss"] == "sigmoid":
            sums = self._all(_centroid_sums)
            self.wait(self._all(_set_prior, *sums))
        elif not alone:
            self.wait(self._all(_remember_task))
        if _rules.is_auto(interval) and alone:  # the local driver's chunks
            interval = max(1, math.ceil(max(lengths) / (batch * CHUNKS_PER_EPOCH)))
        elif _rules.is_auto(interval):
            interval = max(SYNC_MIN_BATCHES, math.ceil(max(lengths) / (batch * SYNCS_PER_EPOCH)))
        rounds = max(1, math.ceil(max(lengths) / (batch * interval)))
        steps = [batch * math.ceil(n / (batch * rounds)) for n in lengths]
        record = {"n_workers_": len(self.workers), "sync_interval_": int(interval),
                  "sync_bytes_": [], "loss_curve_": [], "n_iter_": 0,
                  "validation_scores_": [] if early_stopping else None,
                  "best_validation_score_": None}
        tracker = _Progress(params["n_iter_no_change"], params["tol"])
        total_rows = sum(lengths)
        epochs = shared["max_iter_"]
        record["fit_seconds_"] = {"setup": time.perf_counter() - start}
        start = time.perf_counter()
        with tqdm(total=epochs, disable=not verbose, desc="epochs", unit="epoch") as bar:
            for epoch in range(epochs):
                loss, after = 0.0, [None] * len(self.workers)
                for i in range(rounds):
                    targets = [epoch * n + min(n, (i + 1) * s) for n, s in zip(lengths, steps)]
                    done = [self._on(w, _round, t, a)
                            for w, t, a in zip(self.workers, targets, after)]
                    if alone:
                        loss += sum(r["loss"] for r in self.wait(done))
                        continue
                    after = [self._on(w, _sync, average, *done) for w in self.workers]
                    moved, summed = self.wait(after)[0]
                    loss += summed
                    record["sync_bytes_"].append(int(moved))
                loss /= total_rows
                if not np.isfinite(loss):
                    raise RuntimeError(
                        "training diverged (the loss is not finite); lower learning_rate_init")
                record["loss_curve_"].append(loss)
                record["n_iter_"] += 1
                bar.update(1)
                if early_stopping:
                    hits = self.wait(self._all(_validation_hits))
                    score = sum(h for h, _ in hits) / max(1, sum(n for _, n in hits))
                    record["validation_scores_"].append(score)
                    if tracker.improves(score):
                        self.wait([self._on(self.workers[0], _keep_best)])
                    record["best_validation_score_"] = tracker.best
                    stop = tracker.stalled
                elif epoch == 0 and sparse:
                    stop = False  # the local driver's rule (_base.BoltEstimator._train)
                else:
                    stop = tracker.record_loss(loss)
                if stop:
                    break
        record["fit_seconds_"]["epochs"] = time.perf_counter() - start
        start = time.perf_counter()
        sums = seen = None
        if shared["centroid_finish_"] and not alone:
            sums = self._all(_centroid_sums, "all")
        if not alone:
            seen = np.logical_or.reduce(self.wait(self._all(_seen)))
        model = self.wait([self._on(self.workers[0], _finish, record["n_iter_"], alone, sums,
                                    seen)])[0]
        model.loss_curve_ = list(record.pop("loss_curve_"))
        model.n_iter_ = record.pop("n_iter_")
        model.validation_scores_ = record.pop("validation_scores_")
        model.best_validation_score_ = record.pop("best_validation_score_")
        record["fit_seconds_"]["finish"] = time.perf_counter() - start
        return model, record

    def close(self):
        """Drop the replicas (a finished, failed or interrupted fit)."""
        self._pool.shutdown(wait=False)
        try:
            # a task still queued when another one failed (a replica's
            # _open, say) would otherwise run after _close and leave its
            # replica on the worker
            distributed.wait([f for f in self._pending if not f.done()], timeout=30)
        except Exception:
            pass
        try:
            live = self.client.scheduler_info()["workers"]
            futures = [self._on(w, _close) for w in self.workers if w in live]
            distributed.wait(futures, timeout=30)
        except Exception:
            pass


def _remember_task(key):
    _remember(_replica(key))


def _merged_problem(stats):
    """The ``Problem`` of all the rows from each replica's measurements."""
    n = sum(s["n"] for s in stats)
    labels = np.concatenate([s["labels"] for s in stats])
    counts = np.concatenate([s["counts"] for s in stats])
    present, at = np.unique(labels, return_inverse=True)
    summed = np.bincount(at, weights=counts, minlength=present.size)
    first = stats[0]
    return Problem(n_samples=n, n_features=first["n_features"],
                   n_outputs=first["n_outputs"],
                   nnz_per_row=sum(s["nnz"] for s in stats) / max(n, 1),
                   multilabel=bool(first["multilabel"]),
                   rare_label_share=_rules.rare_share_of_counts(summed, n),
                   mean_labels=max(1.0, sum(s["label_nnz"] for s in stats) / max(n, 1)),
                   max_labels=max(s["max_labels"] for s in stats),
                   n_labelled=int(present.size))


def _as_blocks(X, y=None):
    """X (and y) as dask arrays in the same row chunks."""
    if not isinstance(X, da.Array):
        raise TypeError(
            "skbolt.dask estimators take X as a dask array of CSR row chunks, e.g. "
            "dask.array.from_array(X_csr, chunks=(10_000, -1), asarray=False); got "
            f"{type(X).__name__}. For data in memory, use the estimators of skbolt.")
    if X.ndim != 2 or len(X.chunks[1]) != 1:
        raise ValueError(f"X must be 2-D with one chunk across its {X.shape[1]} columns "
                         f"(rechunk with chunks=(rows, -1)); got chunks {X.chunks}")
    if y is None:
        return X
    if not isinstance(y, da.Array):
        y = y if sp.issparse(y) else np.asarray(y)
        if y.shape[0] != X.shape[0]:
            raise ValueError(f"X has {X.shape[0]} rows and y {y.shape[0]}")
        y = da.from_array(sp.csr_matrix(y) if sp.issparse(y) else y,
                          chunks=(X.chunks[0],) + tuple((s,) for s in y.shape[1:]),
                          asarray=False)
    if y.shape[0] != X.shape[0] or y.chunks[0] != X.chunks[0]:
        raise ValueError(f"y must have X's rows in X's row chunks {X.chunks[0]}; got "
                         f"{y.shape[0]} rows in {y.chunks[0]}")
    return X, y


def _place(client, X, y):
    """(worker, partition futures) pairs: partition i on the i-th worker by
    address, round-robin, empty partitions left out."""
    workers = sorted(client.scheduler_info()["workers"])
    if not workers:
        raise RuntimeError("the Dask cluster has no workers")
    ys = y.to_delayed().ravel() if y is not None else [None] * len(X.chunks[0])
    blocks = [(x, b) for x, b, n in zip(X.to_delayed().ravel(), ys, X.chunks[0]) if n > 0]
    if not blocks:
        raise ValueError("X has no rows to train on")
    workers = workers[:len(blocks)]
    placed = {w: [] for w in workers}
    for i, (x, b) in enumerate(blocks):
        w = workers[i % len(workers)]
        placed[w].append(client.compute(dask.delayed(_pair)(x, b), workers=[w],
                                        allow_other_workers=False))
    return list(placed.items())




class DaskBoltRecommender(_DaskEstimator):
    """``BoltRecommender`` trained data-parallel on a Dask cluster.

    Every parameter of :class:`skbolt.BoltRecommender` means the same here
    but ``init``, which is always "centroids" (the SVD start needs all the
    interactions on one machine), and ``input_scaling="auto"``, measured
    on the first worker's rows (as the local estimator measures it with
    ``init="centroids"``) and then applied on every worker; the training,
    the averaging and the model on the workers are those of
    :class:`DaskBoltClassifier` (``skbolt.dask``'s docstring). Learning from
    X alone, each replica re-splits its own rows into inputs and targets
    every epoch, as the local estimator does with all of them.

    Parameters
    ----------
    client : distributed.Client, default=None
        The cluster's client; None uses the current one.
    sync_interval : int or "auto", default="auto"
        As in :class:`DaskBoltClassifier`.
    n_recommendations, exclude_seen, input_fraction, input_scaling, hidden_layer_sizes, \
learning_rate_init, batch_size, max_iter, output_sparsity, hash_function, \
rebuild_interval, loss, sparse_inference, dropout, centroid_finish, autotune, \
autotune_budget, max_memory, early_stopping, validation_fraction, \
n_iter_no_change, tol, random_state, n_jobs, verbose, hidden_sparsity :
        As in :class:`skbolt.BoltRecommender`.

    Attributes
    ----------
    n_items_, n_features_in_, n_iter_, loss_curve_ :
        As the fitted local model's (``to_local()``), with every other
        fitted attribute of it.
    n_workers_, sync_interval_, sync_bytes_ :
        As in :class:`DaskBoltClassifier`.
    """

    _kind = "recommender"

    def _local_params(self):
        # the SVD start needs every row's interactions on one machine: the
        # replicas start from the centroids of all of them, as the classifier's
        return {**super()._local_params(), "init": "centroids"}

    def __init__(
        self,
        client=None,
        sync_interval="auto",
        n_recommendations=10,
        exclude_seen=True,
        input_fraction="auto",
        input_scaling="auto",
        hidden_layer_sizes="auto",
        learning_rate_init="auto",
        batch_size="auto",
        max_iter="auto",
        output_sparsity="auto",
        hash_function="auto",
        rebuild_interval="auto",
        loss="auto",
        sparse_inference="auto",
        dropout="auto",
        centroid_finish="auto",
        autotune="auto",
        autotune_budget=0.8,
        max_memory="auto",
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=5,
        tol=1e-4,
        random_state=None,
        n_jobs=None,
        verbose=0,
        hidden_sparsity="auto",
    ):
        self.client = client
        self.sync_interval = sync_interval
        self.n_recommendations = n_recommendations
        self.exclude_seen = exclude_seen
        self.input_fraction = input_fraction
        self.input_scaling = input_scaling
        self.hidden_layer_sizes = hidden_layer_sizes
        self.learning_rate_init = learning_rate_init
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.output_sparsity = output_sparsity
        self.hash_function = hash_function
        self.rebuild_interval = rebuild_interval
        self.loss = loss
        self.sparse_inference = sparse_inference
        self.dropout = dropout
        self.centroid_finish = centroid_finish
        self.autotune = autotune
        self.autotune_budget = autotune_budget
        self.max_memory = max_memory
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.hidden_sparsity = hidden_sparsity

    def fit(self, X, y=None):
        """Train replicas on the workers' rows of interactions (or inputs).

        Parameters
        ----------
        X : dask array of shape (n_users, n_columns)
            Row chunks of CSR interactions (rows = users, columns = items),
            or of inputs when ``y`` is given.
        y : dask array or array-like, default=None
            Target items per row (as ``BoltRecommender.fit`` takes them), in
            X's row chunks; None learns from X alone.

        Returns
        -------
        self : DaskBoltRecommender
            The fitted estimator.
        """
        client = self._client()
        if y is None:
            X = _as_blocks(X)
        else:
            X, y = _as_blocks(X, y)
        return self._fit(client, X, y, None)

    def recommend(self, X, n=None):
        """Top-``n`` items for every row, computed on the workers.

        Parameters
        ----------
        X : dask array of shape (n_users, n_features)
            Row chunks of CSR interactions (or inputs).
        n : int, default=None
            Items per row; None: ``n_recommendations``.

        Returns
        -------
        ids : dask array of int64 of shape (n_users, min(n, n_items))
        scores : dask array of float32 of the same shape
            As ``BoltRecommender.recommend`` returns them.
        """
        check_is_fitted(self, "_model")
        n = self._model._check_n(self.n_recommendations if n is None else n)
        out, rows = self._on_workers(X, "recommend", n)
        ids = [da.from_delayed(o[0], shape=(m, n), dtype=np.int64) for o, m in zip(out, rows)]
        scores = [da.from_delayed(o[1], shape=(m, n), dtype=np.float32)
                  for o, m in zip(out, rows)]
        return da.concatenate(ids, axis=0), da.concatenate(scores, axis=0)

    def predict(self, X):
        """The ``n_recommendations`` best items per row (``recommend``'s ids).

        Parameters
        ----------
        X : dask array of shape (n_users, n_features)

        Returns
        -------
        ids : dask array of int64 of shape (n_users, n_recommendations)
        """
        return self.recommend(X)[0]

    def predict_topk(self, X, k=10):
        """``recommend(X, n=k)``.

        Parameters
        ----------
        X : dask array of shape (n_users, n_features)
        k : int, default=10

        Returns
        -------
        ids, scores : dask arrays of shape (n_users, k)
        """
        return self.recommend(X, n=k)

    def similar_items(self, items, n=10):
        """Item-to-item neighbours (``BoltRecommender.similar_items``, on
        the local model: item vectors are small).

        Parameters
        ----------
        items : array-like of int
        n : int, default=10

        Returns
        -------
        ids, scores : ndarrays
        """
        check_is_fitted(self, "_model")
        return self._model.similar_items(items, n)

    def score(self, X, y=None):
        """NDCG@n_recommendations, computed per row chunk on the workers
        (``BoltRecommender.score``: without ``y`` each chunk holds out its
        own seeded 20% of every row) and averaged over the chunks weighted
        by their rows.

        Parameters
        ----------
        X : dask array of shape (n_users, n_features)
        y : dask array or array-like, default=None

        Returns
        -------
        score : float
        """
        return self._chunk_score(X, y)
