"""BoltRecommender: implicit-feedback recommendation over large item
catalogues with an LSH-sparse item output layer, behind the scikit-learn
estimator API."""
import numbers

import numpy as np
import scipy.sparse as sp
from sklearn.preprocessing import normalize
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from . import _hidden, _rules
from ._base import BoltEstimator, Plan, Problem, memory_budget
from ._spectral import (
    _SCORE_BLOCK,
    AUTO_SCALINGS,
    INPUT_SCALINGS,
    SCALING_RANKS,
    SCORE_HOLDOUT,
    SCORE_SEED,
    SVD_DENSE_RANK,
    SVD_DENSE_SCORING,
    SVD_LEARNING_RATE,
    SVD_RANKS,
    _scaling_starts,
    _svd_bytes,
    regression_carve,
    scale_values,
    write_spectral,
)
from ._training import ResplitData, TrainingData
from .datasets import _hold_out
from .metrics import ndcg_at_k

#: Share of each user's items that is input when a fit splits rows itself
#: (``input_fraction="auto"``); the rest are the epoch's targets.
AUTO_INPUT_FRACTION = 0.8

#: Catalogues up to this size get a dense output layer
#: (``output_sparsity="auto"``): on MovieLens-100K (1,682 items)
#: validation NDCG@10 was 0.305 dense against 0.247 at the classifier
#: rule's sparsity 0.1; at 5,000 items (bench_recommender's synth) dense
#: tied (0.174 against 0.176) at 5.4x the fit time.
DENSE_ITEMS = 2048

class BoltRecommender(BoltEstimator):
    """Recommender whose item output layer is sampled by LSH.

    A user is a row of items (implicit feedback: the values are weights).
    The network reads a user's items, L2-normalised, through a sparse input
    layer and dense ReLU hidden layers, and scores every item of the
    catalogue with a softmax output layer, of which only the active set the
    hash tables retrieve is computed in training and (by default) in
    inference: the BOLT / SLIDE algorithm of ``BoltClassifier`` with items
    as classes.

    ``fit(X)`` learns from interactions alone: every epoch each user row is
    split at random into input items (``input_fraction``) and target items,
    so the network learns to complete a history from part of it. New users
    are served by fold-in: their row is the input, without retraining.
    ``fit(X, Y)`` is the supervised form: any input (user features, a
    session, a history) and the items to predict.

    Parameters
    ----------
    n_recommendations : int, default=10
        Items per row returned by ``predict``; also the cut-off of ``score``
        (NDCG@n_recommendations).
    exclude_seen : bool, default=True
        Whether ``predict`` and ``recommend`` leave out the items already in
        each input row (when the input is over the items: ``fit(X)``, or
        ``fit(X, Y)`` with as many input columns as items).
    input_fraction : float in (0, 1) or "auto", default="auto"
        With ``fit(X)``: share of each row's items that is the input in an
        epoch, the rest being its targets (rows with one item are input
        only). "auto" is 0.8. Not searched by the autotuning.
    input_scaling : {"auto", "raw", "binary", "log1p"}, default="auto"
        What each stored value of an input row becomes before the row is
        scaled to unit length, in ``fit`` and in every row the model reads
        later (fold-in in ``recommend``, ``predict``, ``predict_topk``,
        ``score``): "raw" the value itself (weights as they come),
        "binary" 1, "log1p" log(1 + value). Targets are always the items
        themselves, whatever their values. "auto": "binary" when every
        value is equal; else each candidate (AUTO_SCALINGS) is measured on
        the carve of held-out users that chooses the SVD start's rank, and
        the one with the best NDCG@n_recommendations is kept (with
        ``init="centroids"`` that carve's SVD model stands in for the
        network, at ranks SCALING_RANKS; with ``fit(X, Y)`` a low-rank
        ridge regression of the targets on the scaled inputs does, on a
        carve of the rows). Too few users to carve: "log1p". On play
        counts weighting by the raw counts roughly halved NDCG@10 against
        binary or log1p inputs (Last.fm: 0.132 against 0.250 / 0.255).
    init : {"auto", "svd", "centroids"}, default="auto"
        How a fresh network starts. "svd": from the truncated SVD of the
        interactions X = U S V^T (the rank-k PureSVD model of Cremonesi et
        al., 2010): the input layer is V with biases 1 and the output layer
        c V with biases -c V 1, so that every hidden unit is above zero on
        a unit-length input and the network's logits are c x V V^T; each
        direction j of V is weighted s_j^2 / (s_j^2 + lambda) in the input
        layer (a low-rank ridge regression; lambda = 0 is PureSVD). The
        rank (with ``hidden_layer_sizes="auto"``), lambda and c are chosen
        on a carve of the users (SVD_CARVE_SHARE, at most SVD_CARVE_MAX),
        whose rows enter the SVD without a seeded 20% of their items, the
        targets the choice is scored on. "centroids": random weights and
        the output rows from the label centroids, as ``BoltClassifier``.
        "auto" is "svd" for ``fit(X)`` with ``hidden_layer_sizes="auto"``
        (the carve chooses the rank) and no autotuning search, else
        "centroids". On every set measured the SVD
        start scored above the trained network and training after it
        lowered NDCG@10 (``benchmarks/README.md``): under "svd",
        ``max_iter="auto"`` trains no epochs, ``learning_rate_init="auto"``
        is 1e-5 and ``dropout="auto"`` 0.
    hidden_layer_sizes, learning_rate_init, max_iter, \
hash_function, rebuild_interval, loss, sparse_inference, dropout, \
centroid_finish, autotune_budget, max_memory, early_stopping, \
validation_fraction, n_iter_no_change, tol, random_state, n_jobs, \
verbose, warm_start
        As in ``BoltClassifier``, with items as classes; the autotuning
        search and early stopping score NDCG@n_recommendations (seen items
        excluded) on held-out users. With ``init="svd"``,
        ``sparse_inference="auto"`` scores every item while items x rank is
        at most SVD_DENSE_SCORING, and ``max_memory`` counts the SVD's
        working arrays (``estimate_memory``'s ``spectral`` part).
    hidden_sparsity : float in (0, 1], sequence of floats or "auto", default="auto"
        Share of the hidden layer's units computed per training sample,
        chosen by the layer's own LSH tables over the sparse input
        (densified winner-take-all, as BOLT / SLIDE make hidden layers
        sparse): the forward pass, backward pass and Adam steps touch only
        those ``ceil(hidden_sparsity * width)`` units, rounded up to whole
        aligned blocks of 16 consecutive units (one cache line of weights;
        of the largest power of two dividing the width when 16 does not),
        and inference computes the same ones. One float, or one per hidden layer; only a
        single hidden layer can be sparse (it reads the sparse input), and
        it takes no dropout; with it ``learning_rate_init="auto"`` is ten
        times the dense rule's (a unit steps only when active). "auto"
        stays dense (1.0): measured on text sets (benchmarks/README.md,
        ``bench_sparse_hidden.py``), a 10,000-wide sparse layer fit in
        1.8-5.6x the dense default's time and did not beat its accuracy at
        equal fit time.
        The resolved value is ``hidden_sparsity_``; the layer's table shape
        and schedule are ``hash_params_["hidden"]``.
    output_sparsity : float in (0, 1] or "auto", default="auto"
        Share of the items computed per training row. "auto" is dense (1.0)
        up to 2,048 items, else the classifier's rule (0.005 from 20,000).
    autotune : bool or "auto", default="auto"
        Whether ``fit`` runs the classifier's autotuning search (scored by
        NDCG@n_recommendations on held-out users). "auto" does not: on a
        5,000-item benchmark set it scored 2 points below the rules.
    batch_size : int or "auto", default="auto"
        Samples per Adam step. "auto" is a 32nd of the users, between 32 and
        the classifier's rule (256 below 50,000 rows): a catalogue is
        usually learnt from far fewer rows than a classifier, and three
        steps an epoch trained too little (MovieLens-100K, 754 users:
        NDCG@10 0.158 at batch 256, 0.228 at 32).

    Attributes
    ----------
    n_items_ : int
        Items in the catalogue (output neurons).
    item_input_ : bool
        Whether input columns are the catalogue's items (so seen items can
        be excluded).
    input_fraction_ : float or None
        The resolved input fraction (None for ``fit(X, Y)``).
    init_ : str
        The resolved ``init``.
    input_scaling_ : str
        The resolved ``input_scaling`` ("raw", "binary" or "log1p"),
        applied to every input row the fitted model reads.
    input_scaling_scores_ : dict or None
        With ``input_scaling="auto"``: the carve's NDCG@n_recommendations
        of each candidate scaling (None where nothing was measured: binary
        data, a given scaling, or too few users to carve).
    svd_carve_scores_ : dict or None
        With ``init="svd"``: the carve's NDCG@n_recommendations of each
        (rank, shrinkage) tried (None without a carve).
    svd_shrinkage_ : float
        With ``init="svd"``: the chosen shrinkage (SVD_SHRINKAGES).
    hidden_layer_sizes_, hidden_sparsity_, learning_rate_init_, batch_size_, max_iter_, \
output_sparsity_, hash_function_, loss_, sparse_inference_, dropout_, \
centroid_finish_, hash_params_, memory_bytes_, temperature_, n_iter_, \
loss_curve_, validation_scores_, best_validation_score_, \
autotune_results_, best_params_, n_features_in_
        As in ``BoltClassifier``.

    See Also
    --------
    BoltClassifier : the same network for classification.
    skbolt.datasets.interactions_to_csr : triples with any ids to CSR.
    skbolt.datasets.split_users : held-out users for evaluation.

    Examples
    --------
    >>> from skbolt import BoltRecommender
    >>> from skbolt.datasets import make_interactions
    >>> X = make_interactions(300, 200, random_state=0).X
    >>> rec = BoltRecommender(max_iter=5, random_state=0).fit(X)
    >>> rec.predict(X[:2]).shape
    (2, 10)
    """

    def __init__(
        self,
        n_recommendations=10,
        exclude_seen=True,
        input_fraction="auto",
        input_scaling="auto",
        init="auto",
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
        warm_start=False,
        hidden_sparsity="auto",
    ):
        self.n_recommendations = n_recommendations
        self.exclude_seen = exclude_seen
        self.input_fraction = input_fraction
        self.input_scaling = input_scaling
        self.init = init
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
        self.warm_start = warm_start
        self.hidden_sparsity = hidden_sparsity

    #: Parameters newer than some saved models, with the value that reads
    #: such a model as it was written (pickles and ``skbolt.io`` files).
    _added_params = {"input_scaling": "raw"}

    def __setstate__(self, state):
        super().__setstate__({**self._added_params, **state})

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = True
        tags.target_tags.required = False
        return tags

    # ------------------------------------------------------------------
    # data

    def _validate_X(self, X, reset):
        X = super()._validate_X(X, reset)
        if X.nnz and X.data.min() < 0:
            raise ValueError("Negative values in data passed to BoltRecommender: X must hold "
                             "non-negative interaction weights (or features); its smallest "
                             f"value is {X.data.min()}")
        return X

    def _inputs(self, X):
        """Rows as the network reads them: values through the resolved
        ``input_scaling_`` (raw while "auto" is still to be measured, and
        in models saved before it existed), then scaled to unit length, so
        a long history does not saturate the hidden layer (the Mult-VAE
        recipe); empty rows stay 0. Not idempotent for "log1p": rows
        already prepared must not come through again."""
        how = getattr(self, "input_scaling_", None) or "raw"
        return normalize(scale_values(X, how), norm="l2", copy=True)

    def _resolved_input_scaling(self, X):
        """``input_scaling`` for a fit on inputs X: None while "auto" is
        still to be measured (``_setup``)."""
        how = self.input_scaling
        if not isinstance(how, str) or how not in ("auto",) + INPUT_SCALINGS:
            raise ValueError(f"input_scaling must be one of 'auto', "
                             f"{', '.join(repr(s) for s in INPUT_SCALINGS)}, got {how!r}")
        if how != "auto":
            return how
        if X.nnz == 0 or X.data.min() == X.data.max():
            # one value throughout: every scaling gives the same unit rows
            return "binary"
        return None

    def _encode_items(self, y, n_rows):
        """Supervised targets as a CSR indicator over the items: a 2-D
        indicator (dense or sparse, nonzero = relevant) or 1-D item ids."""
        if sp.issparse(y):
            Y = sp.csr_matrix(y, copy=True)
            Y.check_format(full_check=True)
        else:
            y = np.asarray(y)
            if y.ndim == 1:
                if y.dtype.kind not in "iuf" or not np.isfinite(y).all() or (
                        y.size and (y.min() < 0 or (y != np.round(y)).any())):
                    raise ValueError("Unknown label type: a 1-D y must hold non-negative "
                                     "integer item ids")
                ids = y.astype(np.int64)
                Y = sp.csr_matrix((np.ones(ids.size), (np.arange(ids.size), ids)),
                                  shape=(ids.size, int(ids.max(initial=-1)) + 1))
            elif y.ndim == 2:
                if y.dtype.kind not in "biuf" or not np.isfinite(y).all():
                    raise ValueError("Unknown label type: a 2-D y must be a finite item "
                                     "indicator matrix")
                Y = sp.csr_matrix(y)
            else:
                raise ValueError(f"y must be 1-D item ids or a 2-D item matrix, got {y.ndim}-D")
        if Y.shape[0] != n_rows:
            raise ValueError(f"X has {n_rows} rows but y has {Y.shape[0]}")
        if Y.nnz and Y.data.min() < 0:
            raise ValueError("y must not hold negative values")
        Y.eliminate_zeros()
        Y.data[:] = 1.0
        if Y.shape[1] < 2:
            raise ValueError(f"y names {Y.shape[1]} item (one class); a catalogue needs at "
                             "least 2 items")
        return Y

    def _resolved_input_fraction(self):
        f = self.input_fraction
        if _rules.is_auto(f):
            return AUTO_INPUT_FRACTION
        if isinstance(f, (bool, np.bool_)) or not isinstance(f, numbers.Real) or not 0 < f < 1:
            raise ValueError(f"input_fraction must be in (0, 1) or 'auto', got {f!r}")
        return float(f)

    def _training_data(self, X, y):
        X = self._validate_X(X, reset=True)
        self.multilabel_ = True
        # a warm start that keeps the network keeps the scaling its inputs
        # had (_reschedule), unless one is given
        self._kept_scaling = getattr(self, "input_scaling_", None)
        self.input_scaling_ = self._resolved_input_scaling(X)
        self.input_scaling_scores_ = None
        if y is None:
            if X.shape[1] < 2:
                raise ValueError(f"X has {X.shape[1]} item column; a catalogue needs at least 2")
            if X.nnz == 0:
                raise ValueError("X holds no interactions to learn from")
            self.input_fraction_ = self._resolved_input_fraction()
            self.n_items_, self.item_input_ = X.shape[1], True
            self.init_, self._svd_rank = self._resolved_init(), None
            return _UserRows(X, 1.0 - self.input_fraction_, self._fit_seed(), self._inputs)
        Y = self._encode_items(y, X.shape[0])
        self.input_fraction_ = None
        self.n_items_, self.item_input_ = Y.shape[1], X.shape[1] == Y.shape[1]
        self.init_, self._svd_rank = self._resolved_init(), None
        return _Inputs(X, Y, self._inputs)

    def _fit_seed(self):
        return int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))

    def _resolved_init(self):
        """``init`` for the fit ``_training_data`` is reading."""
        init, hidden = self.init, self.hidden_layer_sizes
        if not isinstance(init, str) or init not in ("auto", "svd", "centroids"):
            raise ValueError(f"init must be 'svd', 'centroids' or 'auto', got {init!r}")
        one_layer = _rules.is_auto(hidden) or len(_rules.hidden_sizes(hidden)) == 1
        searched = self.autotune is True
        # a sparse hidden layer trains its own hash tables from its weights:
        # the SVD start writes weights its tables never saw
        sparse = _hidden.requested(getattr(self, "hidden_sparsity", "auto"))
        if init == "svd" and sparse:
            raise ValueError("init='svd' writes the hidden layer from the SVD; a sparse "
                             "hidden layer (hidden_sparsity) needs init='centroids'")
        if init == "auto":
            # a given width is no rank: PureSVD at rank 128 of 300 items
            # scored 0.04 where the network of that width scored 0.31
            return "svd" if (self.input_fraction_ is not None and _rules.is_auto(hidden)
                             and not searched and not sparse) else "centroids"
        if init == "svd":
            if self.input_fraction_ is None:
                raise ValueError("init='svd' starts from the SVD of the interactions: fit(X) "
                                 "without y; use init='centroids' with targets")
            if not one_layer:
                raise ValueError(f"init='svd' makes one hidden layer (the SVD's rank), but "
                                 f"hidden_layer_sizes={hidden!r}; give one width or 'auto'")
            if searched:
                raise ValueError("init='svd' and autotune=True: the search trains networks "
                                 "from centroids; use one or the other")
        return init

    def _svd_ranks(self, n_users, n_items):
        """Ranks the carve chooses from: the given width, else SVD_RANKS
        up to what the data has (an SVD of n users has at most n)."""
        if not _rules.is_auto(self.hidden_layer_sizes):
            return [_rules.hidden_sizes(self.hidden_layer_sizes)[0]]
        cap = max(1, min(n_users, n_items) - 1)
        ranks = [r for r in SVD_RANKS if r <= cap] or [cap]
        if n_items * SVD_DENSE_RANK <= SVD_DENSE_SCORING:
            ranks = [r for r in ranks if r * n_items <= SVD_DENSE_SCORING] or ranks[:1]
        return ranks

    def _problem_key(self, n_outputs):
        return (self.n_features_in_, n_outputs, self.input_fraction_)

    def _plan(self, problem, seed, overrides=None):
        params = self.get_params()
        if _rules.is_auto(params["batch_size"]):
            params["batch_size"] = int(np.clip(problem.n_samples // 32, 32,
                                               _rules.auto_batch_size(problem.n_samples)))
        if _rules.is_auto(params["output_sparsity"]) and problem.n_outputs <= DENSE_ITEMS:
            params["output_sparsity"] = 1.0
        svd = self.init_ == "svd"
        if svd:
            rank = self._svd_rank or self._svd_ranks(problem.n_samples, problem.n_outputs)[-1]
            autos = {"hidden_layer_sizes": (rank,), "learning_rate_init": SVD_LEARNING_RATE,
                     "dropout": 0.0}
            if problem.n_outputs * rank <= SVD_DENSE_SCORING:
                autos["sparse_inference"] = False
            params.update({k: v for k, v in autos.items() if _rules.is_auto(params[k])})
        plan = Plan.make(params, problem, seed, self._n_threads(),
                         memory_budget(self.max_memory), overrides)
        if svd:
            width = plan.resolved.hidden_layer_sizes[0]
            extra = _svd_bytes(problem.n_samples, problem.n_outputs,
                               int(problem.nnz_per_row * problem.n_samples), width,
                               plan.memory["total"])
            plan.memory["spectral"] = extra
            plan.memory["total"] += extra
            if plan.budget is not None and plan.memory["total"] > plan.budget:
                raise MemoryError(
                    f"the SVD start of rank {width} and its network need "
                    f"{plan.memory['total'] / 1e9:.2f} GB, more than the {plan.budget / 1e9:.2f} "
                    "GB max_memory allows; give a smaller hidden_layer_sizes or more memory")
        return plan

    def _setup(self, data, search=False, problem=None):
        if problem is None:
            problem = Problem.from_data(data.X, data.Y, self.multilabel_)
        if self.init_ != "svd":
            self.svd_carve_scores_ = self.svd_shrinkage_ = None
            if self.input_scaling_ is None:
                self._measure_scaling(data)
            return super()._setup(data, search, problem)
        X = data.full
        self._plan(problem, 0)  # refuses a plan that cannot fit before the SVD runs
        threads = self._n_threads()
        n, seed = self._check_n(self.n_recommendations), self._fit_seed()
        ranks = self._svd_ranks(*X.shape)
        # the model's own carve measures the scalings, and the winner's
        # factors are the model
        with threadpool_limits(limits=threads, user_api="blas"):
            scores, start = _scaling_starts(
                X, [self.input_scaling_] if self.input_scaling_ else AUTO_SCALINGS, ranks, n,
                seed)
        self._choose_scaling(scores, data)
        V, f, choice, self.svd_carve_scores_ = start
        del start
        self._svd_rank, self.svd_shrinkage_ = choice["rank"], choice["shrinkage"]
        problem = super()._setup(data, search=False, problem=problem)
        write_spectral(self._network, V, f, choice["scale"],
                       np.bincount(X.indices, minlength=X.shape[1]) > 0, threads)
        if _rules.is_auto(self.max_iter):
            self.max_iter_ = 0
        return problem

    def _choose_scaling(self, scores, data):
        """Keep the best of the measured ``scores`` (NDCG by scaling, None
        where unmeasured; earlier AUTO_SCALINGS win ties) and put the
        training rows through it (they were read raw until now)."""
        if self.input_scaling_ is not None:
            return
        if all(v is not None for v in scores.values()):
            self.input_scaling_scores_ = dict(scores)
        best = None
        for how, value in scores.items():
            if best is None or (value is not None and value > scores[best]):
                best = how
        self.input_scaling_ = best
        data.rescale()

    def _measure_scaling(self, data):
        """"auto" where the model is no SVD start: the carve's stand-in
        model (SCALING_RANKS) measures every candidate."""
        n, seed, threads = self._check_n(self.n_recommendations), self._fit_seed(), \
            self._n_threads()
        with threadpool_limits(limits=threads, user_api="blas"):
            if isinstance(data, _UserRows):
                X = data.full
                ranks = [r for r in self._svd_ranks(*X.shape) if r <= max(SCALING_RANKS)] \
                    or self._svd_ranks(*X.shape)[:1]
                scores, _ = _scaling_starts(X, AUTO_SCALINGS, ranks, n, seed)
            else:
                scores = regression_carve(data.raw, data.Y, AUTO_SCALINGS, n, seed,
                                          self._excludes())
        self._choose_scaling(scores, data)

    def _reschedule(self, data):
        super()._reschedule(data)
        if self.input_scaling_ is None:
            # the network continues: its inputs stay scaled as it learnt them
            self.input_scaling_ = self._kept_scaling or "raw"
            data.rescale()
        if self.init_ == "svd":
            if _rules.is_auto(self.max_iter):
                self.max_iter_ = 0
            if _rules.is_auto(self.learning_rate_init):
                self.learning_rate_init_ = SVD_LEARNING_RATE

    def _centroid_start(self):
        return self.init_ != "svd"

    def _autotune_on(self, n_samples):
        # "auto" does not search: on bench_recommender's synth set (14k
        # training users, 5,000 items) the search lost 2 points of
        # validation NDCG@10 to the rules (0.155 against 0.176) and took
        # 1.4x the time; autotune=True still runs it
        return False if _rules.is_auto(self.autotune) else super()._autotune_on(n_samples)

    def fit(self, X, y=None):
        """Train on interactions X, or on inputs X and target items y.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_users, n_columns)
            Interactions (rows = users, columns = items, non-negative
            weights), or with ``y`` any non-negative input per row.
        y : {array-like, sparse matrix} of shape (n_users, n_items) or \
(n_users,), default=None
            Items to predict from each row: an indicator matrix (nonzero =
            relevant) or one item id per row. None: learn from X alone.

        Returns
        -------
        self : BoltRecommender
            The fitted estimator.
        """
        return self._fit(X, y)

    # ------------------------------------------------------------------
    # recommending

    def _check_n(self, n):
        if not isinstance(n, numbers.Integral) or isinstance(n, bool) or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        return int(min(n, self.n_items_))

    def _ranked(self, network, X_raw, n, exclude, sparse, candidates, threads, prepared=False):
        """The ``n`` best items of every row of ``X_raw`` and their scores,
        items of the row left out when ``exclude``; slots with no item left
        hold -1 and NaN. ``prepared``: the rows are the network's inputs
        already (``_inputs``), as held-out training rows are."""
        X = X_raw if prepared else self._inputs(X_raw)
        n_rows = X.shape[0]
        extra = int(np.diff(X_raw.indptr).max(initial=0)) if exclude else 0
        k = min(self.n_items_, n + extra)
        ids, scores = network.predict_topk(X, k, sparse, threads, candidates)
        if exclude:
            ids, scores = _exclude(ids, scores, X_raw)
        ids, scores = ids[:, :n], scores[:, :n].astype(np.float32)
        if sparse:
            # the tables may retrieve fewer than n unseen items for a row:
            # those rows are ranked again over the whole catalogue
            left = self.n_items_ - (np.diff(X_raw.indptr) if exclude else 0)
            short = np.flatnonzero((ids >= 0).sum(axis=1) < np.minimum(n, left))
            if short.size:
                ids[short], scores[short] = self._ranked(network, X_raw[short], n, exclude,
                                                         False, 0, threads, prepared)
        scores[ids < 0] = np.nan
        assert ids.shape == (n_rows, n)
        return ids, scores

    def recommend(self, X, n=None):
        """The best items for each row, best first.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_users, n_features)
            Users' interactions (or inputs); new users need no refit.
        n : int, default=None
            Items per row (``n_recommendations`` when None); at most the
            catalogue's size.

        Returns
        -------
        ids : ndarray of int64 of shape (n_users, min(n, n_items))
            Item columns, best first. With ``exclude_seen`` a row's own
            items are left out; where fewer items remain, the last slots
            hold -1.
        scores : ndarray of float32 of the same shape
            The items' probabilities (NaN in empty slots).
        """
        X = self._fitted_X(X)
        n = self._check_n(self.n_recommendations if n is None else n)
        excludes, threads = self._excludes(), self._n_threads()
        return self._by_chunks(
            lambda x: self._ranked(self._network, x, n, excludes, self.sparse_inference_,
                                   self.hash_params_["inference_candidates"], threads), X)

    def _excludes(self):
        if not isinstance(self.exclude_seen, (bool, np.bool_)):
            raise ValueError(f"exclude_seen must be True or False, got {self.exclude_seen!r}")
        return bool(self.exclude_seen) and self.item_input_

    def predict(self, X):
        """The ``n_recommendations`` best items of each row (``recommend``).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_users, n_features)
            Users' interactions (or inputs).

        Returns
        -------
        ids : ndarray of int64 of shape (n_users, n_recommendations)
            Item columns, best first (-1 where no item is left).
        """
        return self.recommend(X)[0]

    def predict_topk(self, X, k=10):
        """``recommend(X, n=k)``, under the name skbolt's top-k scorers call.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_users, n_features)
            Users' interactions (or inputs).
        k : int, default=10
            Items per row.

        Returns
        -------
        ids, scores : ndarray of shape (n_users, min(k, n_items))
            As ``recommend`` returns them.
        """
        return self.recommend(X, n=k)

    def similar_items(self, items, n=10):
        """The items whose output vectors are nearest (cosine) to each item's.

        Parameters
        ----------
        items : array-like of int
            Item columns.
        n : int, default=10
            Neighbours per item (at most ``n_items_ - 1``).

        Returns
        -------
        ids : ndarray of int64 of shape (len(items), n)
            Nearest items first, the item itself left out. An item no
            training row had as a target has no learnt vector: its row
            is -1, and it is never anyone's neighbour.
        scores : ndarray of float32 of the same shape
            Cosine similarities (NaN where the id is -1).
        """
        check_is_fitted(self, "_network")
        items = np.asarray(items)
        if items.ndim == 1 and items.size == 0:
            items = items.astype(np.int64)  # [] arrives as float64
        if items.ndim != 1 or items.dtype.kind not in "iu":
            raise ValueError("items must be a 1-D array of integer item columns")
        if items.size and (items.min() < 0 or items.max() >= self.n_items_):
            raise ValueError(f"items must be columns in [0, {self.n_items_}), got "
                             f"{items[(items < 0) | (items >= self.n_items_)][:5].tolist()}")
        n = int(min(self._check_n(n), self.n_items_ - 1))
        V = self._item_vectors()
        known = np.linalg.norm(V, axis=1) > 0
        U = V / np.where(known, np.linalg.norm(V, axis=1), 1.0)[:, None]
        ids = np.zeros((items.size, n), dtype=np.int64)
        scores = np.zeros((items.size, n), dtype=np.float32)
        # queries a block at a time: 1,000 queries over 100k items were
        # 2.3 GB of similarities and sort order at once
        step = max(1, _SCORE_BLOCK // self.n_items_)
        for lo in range(0, items.size, step):
            q = items[lo:lo + step]
            S = U[q] @ U.T
            S[:, ~known] = -np.inf
            S[np.arange(q.size), q] = -np.inf
            ids[lo:lo + step] = np.argsort(-S, axis=1, kind="stable")[:, :n]
            scores[lo:lo + step] = np.take_along_axis(S, ids[lo:lo + step], axis=1)
        empty = ~np.isfinite(scores) | ~known[items][:, None]
        ids[empty] = -1
        scores[empty] = np.nan
        return ids.astype(np.int64), scores

    def _item_vectors(self):
        """Output-layer rows of the items, zero for items no training row
        had as a target (the native core leaves their rows unlearnt)."""
        seen = self._network.seen
        if getattr(self, "init_", None) == "svd":  # files from before init: no init_
            # the input layer, V diag(f): the filter weights the strong
            # directions, where the output rows c V weigh all alike and
            # the weak ones make rare items everyone's neighbours
            # (MovieLens-100K, Fargo's nearest from c V: Boy's Life 2,
            # Poison Ivy II, rated by 1-2 users; from V diag(f): Lone Star,
            # Leaving Las Vegas, Twelve Monkeys)
            V = np.array(self._network.get_params(0)[0], dtype=np.float64)
            V[~seen] = 0.0
            return V
        w, _ = self._network.get_params(self._network.n_layers - 1)
        V = np.array(w if w.shape[0] == self.n_items_ else w.T, dtype=np.float64)
        # measured from the mean item: the direction every row shares
        # would otherwise dominate the cosines (MovieLens-100K, Star Wars'
        # nearest: Mystery Science Theater 3000, Executive Decision at 0.22
        # uncentred; Star Trek: First Contact, Face/Off at 0.58 centred;
        # planted-group share on the synthetic example 0.96 -> 0.94)
        V[seen] -= V[seen].mean(axis=0)
        V[~seen] = 0.0
        return V

    def score(self, X, y=None):
        """NDCG@n_recommendations of ``predict``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_users, n_features)
            Users' interactions (or inputs).
        y : {array-like, sparse matrix} of shape (n_users, n_items), default=None
            Held-out relevant items of each row. None: a seeded 20% of each
            row's items (``datasets.hold_out_items(X, 0.2, random_state=0)``)
            are held out as targets and the rest is the input, so that
            ``GridSearchCV(BoltRecommender(), grid).fit(X)`` works with rows
            = users.

        Returns
        -------
        score : float
            Mean NDCG over rows with at least one target (0.0 if none).
        """
        X = self._fitted_X(X)
        if y is None:
            X, Y = _hold_out(X, SCORE_HOLDOUT, np.random.RandomState(SCORE_SEED))
        else:
            Y = self._encode_items(y, X.shape[0])
            if Y.shape[1] > self.n_items_:
                raise ValueError(f"y has {Y.shape[1]} item columns; the model has {self.n_items_}")
            Y = sp.csr_matrix((Y.data, Y.indices, Y.indptr), shape=(Y.shape[0], self.n_items_))
        return ndcg_at_k(Y, self.predict(X), k=self.n_recommendations)

    def _network_score(self, network, sparse, candidates, X, Y, n_threads):
        # held-out rows come from the training data, already the network's
        # inputs (log1p twice is not log1p); the search and early stopping
        # then rank as predict does
        k = self._check_n(self.n_recommendations)
        ids, _ = self._ranked(network, X, k, self._excludes(), sparse, candidates, n_threads,
                              prepared=True)
        return ndcg_at_k(Y, ids, k=k)


class _UserRows(ResplitData):
    """``ResplitData`` with binary targets and inputs put through
    ``prepare`` (the recommender's ``_inputs``). ``rescale`` makes epoch
    0 again once ``input_scaling="auto"`` is measured (the split does not
    depend on the values)."""

    def __init__(self, X, target_fraction, seed, prepare):
        self.prepare = prepare
        super().__init__(X, target_fraction, seed)

    def _split(self, X, seed):
        X_in, Y = super()._split(X, seed)
        Y.data[:] = 1.0
        return self.prepare(X_in), Y

    def rescale(self):
        self._epoch = 0
        self.X, self.Y = self._current = self._split(self.full, self.seed)


class _Inputs(TrainingData):
    """``fit(X, Y)``'s data: inputs put through ``prepare`` (kept raw in
    ``raw`` for ``rescale``, as ``_UserRows``)."""

    def __init__(self, X, Y, prepare):
        self.raw, self.prepare = X, prepare
        super().__init__(prepare(X), Y)

    def rescale(self):
        self.X = self.prepare(self.raw)


def _exclude(ids, scores, X):
    """``ids`` and ``scores`` with each row's items of CSR ``X`` (and -1
    padding) moved to the end as -1 / NaN, order of the rest kept."""
    n_rows, k = ids.shape
    rows = np.repeat(np.arange(n_rows), k)
    flat = ids.ravel()
    valid = flat >= 0
    seen = np.zeros(flat.size, dtype=bool)
    if valid.any():
        seen[valid] = np.asarray(X[rows[valid], flat[valid]] != 0).ravel()
    drop = (~valid | seen).reshape(n_rows, k)
    order = np.argsort(drop, axis=1, kind="stable")
    ids = np.take_along_axis(ids, order, axis=1).astype(np.int64)
    scores = np.take_along_axis(scores, order, axis=1).astype(np.float32)
    gone = np.take_along_axis(drop, order, axis=1)
    ids[gone], scores[gone] = -1, np.nan
    return ids, scores
