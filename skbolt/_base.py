"""What every skbolt estimator shares.

An estimator's ``fit`` goes through the same steps whatever it predicts:
validate X, measure the problem once (``Problem``), resolve every "auto"
parameter into a ``Plan`` (the resolved values, the native configuration
and its memory, shrunk to the memory budget), let the autotuning search
pick among variants of that plan, create the network, and train it with
the one training driver (``Run`` and ``BoltEstimator._train``): chunks of
batches, the tables' freeze schedule, early stopping, the progress bar,
the loss curve, and Ctrl-C between chunks. Pickling and
``estimate_memory`` live here too. A subclass adds only what its task
is: how targets are encoded and what it predicts.
"""
import contextlib
import copy
import dataclasses
import inspect
import math
import numbers
import os
import warnings
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, clone
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data
from tqdm.auto import tqdm

from . import _autotune, _native, _rules
from ._network import Network
from ._training import RowStream, Run, _Checkpoint, finish_network
from .metrics import precision_at_k

#: Layout version of what ``__getstate__`` stores.
PICKLE_VERSION = 1

#: Training rows from which autotune="auto" searches on a held-out split;
#: from CV_MIN_SAMPLES rows up to there it races the rules and their twins
#: over CV_FOLDS folds instead (``_autotune.cv_race``), in the estimators
#: that allow it (``SMALL_DATA_CV``).
AUTOTUNE_MIN_SAMPLES = 2000
CV_MIN_SAMPLES = 100
CV_FOLDS = 3

#: Native calls per epoch: the estimator regains control this often for
#: progress, early stopping checks and Ctrl-C.
CHUNKS_PER_EPOCH = 20

#: Rows from which a prediction of an estimator with ``verbose`` shows a
#: progress bar; it is then made in native calls of PREDICT_CHUNK rows
#: (below, in one call: a bar there would only flash).
PREDICT_BAR_ROWS, PREDICT_CHUNK = 100_000, 16_384

#: Share of the available memory a fit may plan to use by default.
MEMORY_FRACTION = 0.75

_UNITS = {"": 1, "B": 1, "K": 1e3, "KB": 1e3, "M": 1e6, "MB": 1e6, "G": 1e9, "GB": 1e9,
          "T": 1e12, "TB": 1e12, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}


def available_memory():
    """Bytes of memory available to a new allocation here, or None if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def with_snapshot(parts, early_stopping):
    """The core's memory breakdown ``parts`` plus ``snapshot``: what
    ``_train`` keeps of the weights of the last complete epoch (to roll
    back to on Ctrl-C; at most a whole copy, often far less: see
    ``_Checkpoint``), or with ``early_stopping`` the weights and tables of
    the best one."""
    snapshot = parts["weights"] + (parts["tables"] if early_stopping else 0)
    return {**parts, "snapshot": snapshot, "total": parts["total"] + snapshot}


def memory_budget(max_memory):
    """Bytes a fit may use: ``max_memory`` as bytes or a string like "4GB";
    "auto" is MEMORY_FRACTION of the memory available now."""
    if _rules.is_auto(max_memory) or max_memory is None:
        avail = available_memory()
        return None if avail is None else int(MEMORY_FRACTION * avail)
    if isinstance(max_memory, str):
        text = max_memory.strip().upper().replace(" ", "")
        number = text.rstrip("KMGTIB")
        try:
            value = float(number) * _UNITS[text[len(number):]]
        except (ValueError, KeyError):
            raise ValueError(
                f"max_memory={max_memory!r} is not a size; use bytes or a string such as "
                "'512MB', '4GB' or '2GiB'"
            ) from None
    elif isinstance(max_memory, numbers.Real) and not isinstance(max_memory, (bool, np.bool_)):
        value = float(max_memory)
    else:
        raise ValueError(
            f"max_memory must be bytes, a string such as '4GB', or 'auto'; got {max_memory!r}")
    if not value > 0:
        raise ValueError(f"max_memory must be positive, got {max_memory!r}")
    return int(value)


def resolve_n_threads(n_jobs, default_threads):
    """Threads for a native call.

    None uses what OpenMP would use here (so threadpoolctl limits and
    OMP_NUM_THREADS apply); negative values count back from the CPU count
    as in joblib.
    """
    if n_jobs is None:
        return max(1, int(default_threads))
    n_jobs = int(n_jobs)
    if n_jobs == 0:
        raise ValueError("n_jobs == 0 has no meaning; use None, a positive or a negative integer")
    if n_jobs < 0:
        from joblib import cpu_count

        return max(1, cpu_count() + 1 + n_jobs)
    return n_jobs


@dataclass(frozen=True)
class Problem:
    """Statistics of a training problem, measured once per fit.

    Attributes
    ----------
    n_samples, n_features, n_outputs : int
        Shape of the problem.
    nnz_per_row : float
        Mean input nonzeros per row.
    multilabel : bool
        Whether rows may carry several labels.
    rare_label_share : float or None
        ``_rules.rare_label_share`` of the labels.
    mean_labels : float
        Mean labels per row (at least 1).
    max_labels : int
        Most labels of one row (at least 1).
    n_labelled : int or None
        Outputs that are a label of at least one row (None: all).
    """

    n_samples: int
    n_features: int
    n_outputs: int
    nnz_per_row: float
    multilabel: bool
    rare_label_share: float = None
    mean_labels: float = 1.0
    max_labels: int = 1
    n_labelled: int = None

    @classmethod
    def from_data(cls, X, Y, multilabel):
        """The statistics of CSR inputs X and CSR label indicator Y."""
        n, d = X.shape
        return cls(n_samples=n, n_features=d, n_outputs=Y.shape[1],
                   nnz_per_row=X.nnz / max(n, 1), multilabel=bool(multilabel),
                   rare_label_share=_rules.rare_label_share(Y),
                   mean_labels=max(1.0, Y.nnz / max(n, 1)),
                   max_labels=int(max(1, np.diff(Y.indptr).max(initial=1))),
                   n_labelled=int(np.count_nonzero(np.bincount(Y.indices,
                                                               minlength=Y.shape[1]))))


@dataclass(frozen=True)
class Plan:
    """What a fit will build: "auto" resolved for one problem.

    Attributes
    ----------
    params : dict
        The estimator's parameters (``get_params()``), "auto" included.
    problem : Problem
        The data the values are resolved against.
    seed, threads : int
        Seed of the network and threads of its native calls.
    budget : int or None
        Bytes the fit may use (None: unknown).
    overrides : dict
        Parameter values that replace ``params`` (the search's candidates).
    resolved : _rules.Resolved
        The concrete hyper-parameters, hash table shape after shrinking to
        the budget included.
    config : dict
        The native network configuration.
    memory : dict
        Bytes by part of ``config``: the core's (``Network.estimate_memory``)
        and the training driver's ``snapshot`` (``with_snapshot``).
    """

    params: dict
    problem: Problem
    seed: int
    threads: int
    budget: int
    overrides: dict
    resolved: _rules.Resolved
    config: dict
    memory: dict

    @classmethod
    def make(cls, params, problem, seed, threads, budget, overrides=None):
        """Resolve ``params`` (with ``overrides``) against ``problem``.

        Raises
        ------
        MemoryError
            When even the smallest hash tables do not fit ``budget``.
        """
        overrides = dict(overrides or {})
        p = problem
        resolved = _rules.resolve({**params, **overrides}, p.n_samples, p.n_features,
                                  p.n_outputs, p.nnz_per_row, p.multilabel, p.rare_label_share,
                                  p.mean_labels, p.n_labelled)
        nnz = int(np.ceil(p.nnz_per_row))
        early_stopping = bool({**params, **overrides}.get("early_stopping", False))
        config, memory = _rules.fit_to_memory(
            _rules.network_config(resolved, p.n_features, p.n_outputs, seed),
            lambda c: with_snapshot(Network.estimate_memory(c, resolved.batch_size, nnz,
                                                            threads), early_stopping),
            budget,
        )
        tables = dict(resolved.hash_params, L=config["hash_L"], range_pow=config["range_pow"],
                      reservoir=config["reservoir"])
        return cls(params=dict(params), problem=problem, seed=seed, threads=threads,
                   budget=budget, overrides=overrides,
                   resolved=resolved.replace(hash_params=tables), config=config, memory=memory)

    def variant(self, overrides):
        """The same plan with other parameter ``overrides``."""
        return Plan.make(self.params, self.problem, self.seed, self.threads, self.budget,
                         overrides)

    def for_rows(self, n_samples):
        """The plan resolved as if the problem had ``n_samples`` rows (the
        search's training split), other statistics unchanged."""
        problem = dataclasses.replace(self.problem, n_samples=int(n_samples))
        return Plan.make(self.params, problem, self.seed, self.threads, self.budget,
                         self.overrides)


class NativePickle:
    """Pickling and deep copies of an estimator holding a native network in
    ``_network``: its saved state travels in place of the handle."""

    def __getstate__(self):
        state = dict(super().__getstate__())
        network = state.pop("_network", None)
        if network is not None:
            state["_network_state"] = network.get_state()
        state["_skbolt_pickle_version"] = PICKLE_VERSION
        return state

    def __setstate__(self, state):
        state = dict(state)
        version = state.pop("_skbolt_pickle_version", None)
        if version != PICKLE_VERSION:
            raise ValueError(
                f"this {type(self).__name__} was saved in pickle format {version}; this skbolt "
                f"reads format {PICKLE_VERSION}. Refit the model with this version."
            )
        network_state = state.pop("_network_state", None)
        # parameters added since the model was saved (hidden_sparsity, issue
        # 36) take their defaults, which reproduce how it was trained
        for name, p in inspect.signature(type(self).__init__).parameters.items():
            if name != "self" and p.default is not inspect.Parameter.empty:
                state.setdefault(name, p.default)
        super().__setstate__(state)
        if network_state is not None:
            self._network = Network.from_state(network_state)

    def __deepcopy__(self, memo):
        # the native handle cannot be copied; its saved state can
        twin = self.__class__.__new__(self.__class__)
        memo[id(self)] = twin
        twin.__setstate__(copy.deepcopy(self.__getstate__(), memo))
        return twin


class BoltEstimator(NativePickle, BaseEstimator):
    """Base of skbolt's estimators; not meant to be used directly.

    Subclasses implement ``_training_data`` (validated inputs and encoded
    targets, setting ``multilabel_``), ``_problem_key`` and their
    predictions; everything else is here.
    """

    #: Whether autotune="auto" measures small data by cross-validation.
    SMALL_DATA_CV = False

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    # ------------------------------------------------------------------
    # input and resources

    def _validate_X(self, X, reset):
        """X as CSR float32/float64 with sklearn's checks (finite values,
        feature count)."""
        X = validate_data(self, X, accept_sparse="csr", dtype=(np.float32, np.float64),
                          reset=reset)
        if not sp.issparse(X):
            X = sp.csr_matrix(X)
        # one matrix, one answer: duplicate column ids summed, stored zeros
        # dropped (on a copy), so that the same matrix stored two ways gets
        # the same predictions (the number of stored entries per row sizes
        # the recommender's exclusion, found by tests/test_fuzz.py)
        _check_csr(X)
        if not X.has_canonical_format or (X.data == 0).any():
            X = X.copy()
            X.sum_duplicates()
            X.eliminate_zeros()
        return X

    def _fitted_X(self, X):
        """X validated for a fitted estimator's predictions."""
        check_is_fitted(self, "_network")
        return self._validate_X(X, reset=False)

    def _n_threads(self):
        return resolve_n_threads(self.n_jobs, _native.max_threads())

    def _by_chunks(self, predict, X):
        """``predict(X)`` (an array or a tuple of arrays by row), made in row
        chunks under a progress bar when ``verbose`` and X is long."""
        n = X.shape[0]
        if not self.verbose or n < PREDICT_BAR_ROWS:
            return predict(X)
        parts = []
        with tqdm(total=n, desc="predicting", unit="row", leave=False) as bar:
            for lo in range(0, n, PREDICT_CHUNK):
                hi = min(n, lo + PREDICT_CHUNK)
                parts.append(predict(X[lo:hi]))
                bar.update(hi - lo)
        if isinstance(parts[0], tuple):
            return tuple(np.concatenate(p) for p in zip(*parts))
        return np.concatenate(parts)

    def _autotune_on(self, n_samples):
        if _rules.is_auto(self.autotune):
            return n_samples >= AUTOTUNE_MIN_SAMPLES
        if not isinstance(self.autotune, (bool, np.bool_)):
            raise ValueError(f"autotune must be True, False or 'auto', got {self.autotune!r}")
        return bool(self.autotune)

    def _plan(self, problem, seed, overrides=None):
        """This estimator's parameters resolved against ``problem``."""
        return Plan.make(self.get_params(), problem, seed, self._n_threads(),
                         memory_budget(self.max_memory), overrides)

    # ------------------------------------------------------------------
    # fitting

    def _fit(self, X, y):
        """``fit``: from scratch, or with ``warm_start`` from the previous
        fit's network when the problem has the same shape
        (``_problem_key``)."""
        keep = self.warm_start and hasattr(self, "_network")
        with self._unchanged_on_failure():
            previous = self._problem_key(self.n_outputs_) if keep else None
            data = self._training_data(X, y)
            if keep and self._problem_key(data.Y.shape[1]) == previous:
                self._reschedule(data)
            else:
                self._setup(data, search=True)
        self._train(data, self.max_iter_, early_stopping=self.early_stopping)
        if self.centroid_finish_:
            self._finish(data)
        return self

    @contextlib.contextmanager
    def _unchanged_on_failure(self):
        """Put every attribute back as it was when the block raises
        (invalid data, a refused memory plan, Ctrl-C in the autotuning
        search), so a failed ``fit`` leaves the estimator as before the
        call. The saved dict holds references only: the previous network
        stays alive no longer than it did before this existed (until the
        new one replaces it)."""
        before = dict(self.__dict__)
        try:
            yield
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(before)
            raise

    def _finish(self, data):
        """``centroid_finish``: output rows from label centroids of all rows,
        scaled by the temperature the search fitted on its held-out split.
        Without one, it is fitted on a seeded tenth of the rows, left out
        of the centroids for it; the hidden layers trained on those rows, so
        it comes out larger (overconfident; ``benchmarks/bench_retrieval.py
        --experiments finish`` prints both and the test rows' own)."""
        X, Y = data.X, data.Y
        n, threads = data.n_rows, self._n_threads()
        searched = [r["temperature"] for r in self.autotune_results_ if "temperature" in r]
        held = None
        if not searched:
            held = np.sort(np.random.RandomState(self._seed).permutation(n)[:n // 10])
        # a warm start continues a finished network: its tables keep their shape
        network, self.hash_params_, t = finish_network(
            self._network, X, Y, np.arange(n), self.hash_params_, self._mean_labels, threads,
            held, reshape=self.temperature_ is None)
        self._network = network
        if searched:
            t = float(searched[-1])
            network.scale_output(t)
        self.temperature_ = t

    def _setup(self, data, search=False, problem=None):
        """Measure the problem (unless ``problem`` gives the statistics of
        all the rows, of which ``data`` is a share), resolve the plan
        (searching it on ``data`` when asked), set the resolved attributes
        and create the network. Returns the problem's statistics."""
        if problem is None:
            problem = Problem.from_data(data.X, data.Y, self.multilabel_)
        self.n_outputs_ = problem.n_outputs
        rng = check_random_state(self.random_state)
        self._seed = int(rng.randint(np.iinfo(np.int32).max))
        plan = self._plan(problem, self._seed)
        self.autotune_results_, self.best_params_, self._decisions = [], {}, {}
        if search and self._autotune_on(problem.n_samples):
            self.autotune_results_, self.best_params_, self._decisions = self._search(data, plan)
            plan = plan.variant(self.best_params_)
        elif search and self._cross_validate(problem.n_samples):
            self.autotune_results_, self.best_params_, self._decisions = self._cv_search(data,
                                                                                        plan)
            plan = plan.variant(self.best_params_)
        self._set_resolved(plan)
        # Run's centroid start fills the tables: built here, they were
        # built twice (a third of a 1M-output fit, bench_scale)
        self._network = Network(plan.config, build_tables=False, n_threads=plan.threads)
        self.temperature_ = None
        self._epochs_done = 0
        self.loss_curve_ = []
        self.validation_scores_ = None
        self.best_validation_score_ = None
        self._mean_labels = problem.mean_labels
        self._max_labels = problem.max_labels
        return problem

    def _set_resolved(self, plan):
        """The resolved attributes of ``plan``, one by one."""
        r = plan.resolved
        self.hidden_layer_sizes_ = r.hidden_layer_sizes
        self.hidden_sparsity_ = r.hidden_sparsity
        self.learning_rate_init_ = r.learning_rate_init
        self.batch_size_ = r.batch_size
        self.max_iter_ = r.max_iter
        self.output_sparsity_ = r.output_sparsity
        self.hash_function_ = r.hash_function
        self.loss_ = r.loss
        self.sparse_inference_ = r.sparse_inference
        self.dropout_ = r.dropout
        self.centroid_finish_ = r.centroid_finish
        self.hash_params_ = dict(r.hash_params)
        self.memory_bytes_ = plan.memory["total"]

    def _reschedule(self, data):
        """For a warm start: keep the network (architecture and tables) and
        follow the current parameters' training schedule, so that
        set_params(max_iter=...) before a warm fit is honoured."""
        # the rules only: the network exists, so no memory plan (which could
        # refuse a network that is already allocated) and no native estimate
        p = Problem.from_data(data.X, data.Y, self.multilabel_)
        r = _rules.resolve({**self.get_params(), **self.best_params_}, p.n_samples,
                           p.n_features, p.n_outputs, p.nnz_per_row, p.multilabel,
                           p.rare_label_share, p.mean_labels, p.n_labelled)
        self.max_iter_ = r.max_iter
        self.learning_rate_init_ = r.learning_rate_init
        self.batch_size_ = r.batch_size

    def _cross_validate(self, n_samples):
        """Whether ``fit`` measures its choices by ``_autotune.cv_race``."""
        return (self.SMALL_DATA_CV and _rules.is_auto(self.autotune)
                and CV_MIN_SAMPLES <= n_samples < AUTOTUNE_MIN_SAMPLES)

    def _cv_search(self, data, plan):
        """``_autotune.cv_race`` over CV_FOLDS seeded folds of the rows."""
        perm = np.random.RandomState(self._seed).permutation(data.n_rows)
        parts = np.array_split(perm, CV_FOLDS)
        folds = [(np.sort(np.concatenate(parts[:i] + parts[i + 1:])), np.sort(part))
                 for i, part in enumerate(parts)]
        score, decide = self._judges(plan)
        return _autotune.cv_race(data, folds, plan, score,
                                 losses=self._search_losses(plan.problem), decide=decide,
                                 verbose=self.verbose,
                                 log=tqdm.write if self.verbose else None)

    def _search(self, data, plan):
        """The autotuning search on a held-out split; returns its trials, its
        winner and what ``_decide`` fitted for the winner."""
        budget = _autotune.budget_spec(self.autotune_budget, plan)
        train_rows, val_rows = self._split(data.n_rows, np.random.RandomState(self._seed))
        score, decide = self._judges(plan)
        return _autotune.search(data, train_rows, val_rows, plan.for_rows(len(train_rows)),
                                budget, plan.resolved.max_iter, score, verbose=self.verbose,
                                log=tqdm.write if self.verbose else None,
                                losses=self._search_losses(plan.problem), decide=decide)

    def _judges(self, plan):
        """A search's ``score(network, resolved, X_val, Y_val)`` (the held-out
        score of a candidate's network) and ``decide`` (what is fitted on
        held-out rows for the winner, ``_decide``)."""
        threads = plan.threads

        def score(network, resolved, X_val, Y_val):
            return self._network_score(network, resolved.sparse_inference,
                                       resolved.hash_params["inference_candidates"],
                                       X_val, Y_val, threads)

        def decide(network, resolved, X_val, Y_val):
            return self._decide(network, resolved, X_val, Y_val, threads, plan.problem)

        return score, decide

    def _search_losses(self, problem):
        """Losses the search tries besides the rules' (none here)."""
        return ()

    def _decide(self, network, resolved, X_val, Y_val, n_threads, problem):
        """What is fitted on the search's held-out split for its winner (a
        dict; nothing here)."""
        return {}

    def _split(self, n, rng):
        """Train and validation row indices for early stopping."""
        n_val = int(round(self.validation_fraction * n))
        if not 0 < self.validation_fraction < 1 or n_val < 1 or n_val >= n:
            raise ValueError(
                f"validation_fraction={self.validation_fraction} leaves no training or no "
                f"validation samples out of {n}; use a value in (0, 1) or more data"
            )
        perm = rng.permutation(n)
        return np.sort(perm[n_val:]), np.sort(perm[:n_val])

    def _train(self, data, epochs, early_stopping):
        """Up to ``epochs`` passes over ``data`` with the fitted schedule.

        Stops after ``n_iter_no_change`` epochs without improvement (of the
        validation score with ``early_stopping``, else of the training
        loss). Ctrl-C takes effect when the native call in progress
        returns (one chunk, 1/CHUNKS_PER_EPOCH of an epoch): the network
        goes back to its last complete epoch (the best one with early
        stopping; with none complete, to the network this call started
        from), the attributes describe the complete epochs, and the
        KeyboardInterrupt goes on to the caller. What this keeps at every
        epoch boundary (``_Checkpoint``: the weights or the rows of them
        that can have moved; not Adam's moments, so training after a
        rollback starts them afresh, nor the tables, rebuilt from the
        weights) is at most the ``snapshot`` part of the memory estimate.
        """
        if epochs < 1:
            # a start that is the model (the recommender's init="svd")
            self.n_iter_ = 0
            self.validation_scores_ = [] if early_stopping else None
            return
        rng = np.random.RandomState(self._seed + self._epochs_done)
        if early_stopping:
            train_rows, val_rows = self._split(data.n_rows, rng)
            X_val, Y_val = data.held_out(val_rows)
            self.validation_scores_ = []
        else:
            train_rows = np.arange(data.n_rows)
        run = Run(self._network, self.batch_size_, self.learning_rate_init_,
                  self.hash_params_["freeze_after"], RowStream.drawn(train_rows, rng),
                  self._epochs_done, centroid_start=self._centroid_start())
        n = len(train_rows)
        chunk = self.batch_size_ * max(1, math.ceil(n / (self.batch_size_ * CHUNKS_PER_EPOCH)))
        threads = self._n_threads()
        tracker = _Progress(self.n_iter_no_change, self.tol)
        best_state = None
        # the epochs of the network kept, None while the live network is it
        checkpoint, rollback = _Checkpoint(self._network), self._epochs_done
        self.n_iter_ = 0
        try:
            for _ in range(epochs):
                with tqdm(total=n, disable=not self.verbose, leave=False,
                          desc=f"epoch {self._epochs_done + 1}", unit="sample") as bar:
                    total = run.advance(data, run.visits + n, threads, chunk, bar.update)
                rollback = None
                self._epochs_done = run.epochs
                self.n_iter_ += 1
                loss = total / n
                if not np.isfinite(loss):
                    raise RuntimeError(
                        "training diverged (the loss is not finite); lower learning_rate_init")
                self.loss_curve_.append(loss)
                message = f"epoch {self._epochs_done}: loss {loss:.5f}"
                if early_stopping:
                    score = self._network_score(self._network, self.sparse_inference_,
                                                self.hash_params_["inference_candidates"],
                                                X_val, Y_val, threads)
                    self.validation_scores_.append(score)
                    message += f", validation score {score:.5f}"
                    if tracker.improves(score):
                        best_state = None
                        best_state = self._network.get_state()
                    self.best_validation_score_ = tracker.best
                    stop = tracker.stalled
                elif self._epochs_done == 1 and self._network.sparse_output:
                    # a sampled network's first epoch draws its negatives
                    # from tables of the centroid start, easier than the
                    # trained ones: its loss is no baseline (MovieLens-100K
                    # recommender: 3.85, then 4.58 falling to 3.68 by epoch
                    # 50, and the stop came at epoch 6)
                    stop = False
                else:
                    stop = tracker.record_loss(loss)
                if self.verbose:
                    tqdm.write(message)
                if stop:
                    break
                if best_state is None and self.n_iter_ < epochs:
                    # an interrupted take leaves rollback None: the live
                    # network is then the one to keep
                    checkpoint.take(self._network)
                    rollback = self._epochs_done
        except KeyboardInterrupt:
            if rollback is not None and best_state is None:
                self._network, self._epochs_done = checkpoint.restore(threads), rollback
            warnings.warn(
                f"training interrupted after {self.n_iter_} complete epochs; the model is "
                "back at the last of them and can predict or continue (warm_start, "
                "partial_fit)",
                stacklevel=3,
            )
            raise
        finally:
            if best_state is not None:
                self._network = Network.from_state(best_state)

    def _centroid_start(self):
        """Whether a fresh sampled network starts its output rows from label
        centroids (False when the subclass started it otherwise)."""
        return True

    def _network_score(self, network, sparse, candidates, X, Y, n_threads):
        """Validation score of a network on held-out rows: precision@1
        (accuracy for one label per row)."""
        ids, _ = network.predict_topk(X, 1, sparse, n_threads, candidates)
        return precision_at_k(Y, ids, k=1)

    # ------------------------------------------------------------------
    # memory

    def estimate_memory(self, X, y=None):
        """Peak bytes a ``fit`` on X, y would take, without training.

        Uses this estimator's parameters resolved against the data (no
        autotuning search) and the current ``n_jobs``: the same plan ``fit``
        makes, so the same figures.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,) or (n_samples, n_labels), default=None
            Targets, as ``fit`` takes them (BoltRecommender: optional).

        Returns
        -------
        dict
            Bytes by part: ``weights``, ``optimizer`` (Adam's two moments),
            ``tables`` (hash tables and hash functions), ``buffers``
            (training buffers and the rest), ``snapshot`` (the copy of the
            weights training keeps of the last complete epoch, and of the
            tables too for the best one with ``early_stopping``) and their
            ``total``; plus
            ``budget``, the bytes ``max_memory`` allows (None when
            unknown). Tables are the size ``fit`` would use, after any
            shrinking to the budget.

        Raises
        ------
        MemoryError
            When no configuration fits the memory budget.
        """
        probe = clone(self)
        probe.set_params(autotune=False)
        data = probe._training_data(X, y)
        plan = probe._plan(Problem.from_data(data.X, data.Y, probe.multilabel_), 0)
        return {**plan.memory, "budget": plan.budget}

    # ------------------------------------------------------------------
    # saving and pickling

    def save(self, path):
        """Write the estimator to ``path`` in a format that executes nothing.

        ``skbolt.load(path)`` reads it back; unlike a pickle or a joblib
        file, loading it never runs code, so it is the format for models
        from untrusted sources. The write is atomic: a failed save leaves
        any previous file at ``path`` intact. See ``skbolt.io``.

        Parameters
        ----------
        path : str or os.PathLike
            Where to write (conventionally ``*.skbolt``).

        Returns
        -------
        self : estimator
            The estimator, unchanged.
        """
        from . import io

        io.save(self, path)
        return self

def _check_csr(X):
    """A CSR matrix's structure, checked before anything reads through it
    (scipy does not re-check arrays edited after construction, and its
    ``check_format(full_check=True)`` would prune and retype the caller's
    arrays in place; the native core checks again at its own boundary)."""
    indptr = X.indptr
    if indptr.shape != (X.shape[0] + 1,) or (indptr.size and indptr[0] != 0):
        raise ValueError(f"X is not a valid CSR matrix: indptr must hold {X.shape[0] + 1} "
                         "offsets starting at 0")
    steps = np.diff(indptr)
    if (steps < 0).any():
        raise ValueError(f"X is not a valid CSR matrix: indptr decreases at row "
                         f"{int(np.flatnonzero(steps < 0)[0])}")
    nnz = int(indptr[-1])
    if nnz > min(X.indices.size, X.data.size):
        raise ValueError(f"X is not a valid CSR matrix: indptr claims {nnz} entries, its "
                         f"indices and data hold {X.indices.size} and {X.data.size}")
    indices = X.indices[:nnz]
    if nnz and (indices.min() < 0 or indices.max() >= X.shape[1]):
        bad = indices[(indices < 0) | (indices >= X.shape[1])][0]
        raise ValueError(f"X has column index {bad} outside [0, {X.shape[1]}): its indices "
                         "do not fit its shape")


class _Progress:
    """Whether training still improves: the best so far and epochs since."""

    def __init__(self, patience, tol):
        self.patience, self.tol = patience, tol
        self.best, self.stall = -np.inf, 0
        self.best_loss = np.inf

    @property
    def stalled(self):
        return self.stall >= self.patience

    def improves(self, score):
        """Record a validation score; True when it is the best so far."""
        self.stall = 0 if score > self.best + self.tol else self.stall + 1
        better = score > self.best
        self.best = max(self.best, score)
        return better

    def record_loss(self, loss):
        """Record a training loss; True when training should stop."""
        self.stall = 0 if loss < self.best_loss - self.tol else self.stall + 1
        self.best_loss = min(self.best_loss, loss)
        return self.stalled
