"""BoltClassifier: multi-class and multi-label classification with an
LSH-sparse output layer, behind the scikit-learn estimator API."""
import numbers

import numpy as np
import scipy.sparse as sp
from scipy.special import softmax
from sklearn.base import ClassifierMixin
from sklearn.utils import assert_all_finite
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted, column_or_1d

from ._base import BoltEstimator
from ._network import labels_to_csr
from ._training import TrainingData
from .metrics import precision_at_k


class BoltClassifier(ClassifierMixin, BoltEstimator):
    """Neural network classifier whose output layer is sampled by LSH.

    A sparse input layer feeds one or more dense ReLU hidden layers and an
    output layer with a neuron per class. With many classes only a small
    active set of output neurons is computed per sample: the true labels
    plus the neurons that locality-sensitive hash tables retrieve for the
    sample's hidden representation (the BOLT / SLIDE algorithm). Training
    and top-k inference then cost in proportion to the active set rather
    than the number of classes.

    Every hyper-parameter defaults to ``"auto"`` where a rule can choose it
    from the data; the values chosen are stored after ``fit`` in attributes
    with a trailing underscore.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int or "auto", default="auto"
        Widths of the hidden layers; "auto" is ``(512,)``.
    learning_rate_init : float or "auto", default="auto"
        Adam's step size; "auto" is 1e-3 below 20,000 training rows and
        2e-3 from there.
    batch_size : int or "auto", default="auto"
        Samples per Adam step; "auto" grows from 256 to 2048 with the data.
    max_iter : int or "auto", default="auto"
        Maximum passes over the training data (epochs); "auto" aims at about
        120,000 sample visits, and at training on each label that is among
        the rarest quarter of label occurrences 30 times (what extreme
        label sets need), between 5 and 50 epochs (or, with autotuning,
        stops where the search's validation score peaked, when it then did
        not improve for ``n_iter_no_change`` epochs).
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
        Fraction of output neurons computed per training sample. "auto"
        follows BOLT: dense below 450 classes, 0.005 from 20,000.
    hash_function : {"dwta", "srp", "auto"}, default="auto"
        LSH family choosing the active output neurons: densified
        winner-take-all ("dwta", the "auto" choice, suited to ReLU
        activations) or signed random projections ("srp").
    rebuild_interval : int, "bolt" or "auto", default="auto"
        Batches between re-insertions of every output neuron into the hash
        tables while they still learn (before they freeze). "bolt" is
        BOLT's published schedule (every 1/100 epoch from 100,000 rows,
        every 1/20 below); "auto" follows it only while rebuilds cost at
        most a tenth of the training between them, and rebuilds less often
        where they would cost more (many classes, small batches).
    loss : {"softmax", "sigmoid", "auto"}, default="auto"
        Softmax cross-entropy (multi-label rows spread the target evenly
        over their labels) or per-class sigmoid binary cross-entropy (output
        biases start from each label's prior log-odds). "auto" is softmax,
        which measured ahead of sigmoid once the centroid finish applies;
        on small multi-label sets sigmoid can score higher (see
        ``skbolt._rules.auto_loss``).
    sparse_inference : bool or "auto", default="auto"
        Whether ``predict`` and ``predict_topk`` score only the classes the
        hash tables retrieve (much faster with many classes, approximate)
        instead of every class. "auto" is True when the output layer is
        sparse. ``predict_proba`` and ``decision_function`` are always exact.
    dropout : float in [0, 1) or "auto", default="auto"
        Share of hidden units zeroed per training sample (inverted dropout;
        none at prediction). "auto" is 0.5.
    centroid_finish : bool or "auto", default="auto"
        After ``fit`` trains, replace each class's output row by the
        centroid of its training rows' last hidden vectors (measured from
        their mean), scaled by one temperature fitted so that
        ``predict_proba`` matches the training labels. Sampled training
        learns the hidden layer well but leaves rows of rarely sampled
        classes behind; their centroids rank better on many extreme label
        sets. The DWTA tables are then rebuilt with one bin less per key at
        the same memory, and multi-label models score four times the
        active set (``hash_params_`` shows the finished shape). "auto": the
        autotuning search tries it on its winner (sparse output layers and
        the softmax loss only) and keeps it when it scores higher on the
        held-out split, with the temperature fitted there; False when no
        search runs. With True and no search the temperature is fitted on
        a tenth of the training rows left out of the centroids, which comes
        out overconfident (the hidden layers trained on them): 59.7 against
        17.4 fitted on the test rows of a 10,000-class benchmark set.
        ``partial_fit`` never replaces rows; a warm-started ``fit`` finishes
        again with the same table shape.
    autotune : bool or "auto", default="auto"
        Search learning rate (x0.5, x1, x2 the rule's; x2 only from 20,000
        rows), hidden width and output sparsity (x0.5, x1: never costlier
        than the rule's network), and for rows with several labels the loss
        (softmax and sigmoid), those left at "auto", by successive halving
        on a held-out split before the final fit on all the data. Below
        20,000 rows with a dense output layer the search instead trains
        the rules' network (and its sigmoid twin for multi-label rows)
        along its whole held-out curve and stops where it peaked; when
        that curve has run three quarters of its epochs without a
        confirmed peak, a twin with an eighth of the batch races too. With
        ``max_iter="auto"`` the search also picks the epochs, and for
        multi-label ``y`` the threshold of ``predict`` (``threshold_``).
        "auto" searches when there are at least 2,000 training rows; from
        100 to 2,000 rows with a dense output layer, where a held-out split
        is too small to choose, it races the same candidates (the rules'
        network, its sigmoid twin for multi-label rows, and a twin with an
        eighth of the batch) over 3 folds, each along its whole curve, and
        keeps the best mean curve, its peak epoch and the mean of its folds'
        thresholds. On such data a fit takes seconds; the race costs 2-7
        times a fit without search (``benchmarks/README.md``).
        ``autotune_budget`` does not apply to it.
    autotune_budget : float or str, default=0.8
        Extra work an autotuned fit may spend beyond a fit without search:
        the search, plus what the final fit costs more if the search picks
        a costlier network. A float is a multiple of the work of a fit
        without search, planned in units of modelled work (so the search is
        deterministic for a fixed random_state), and charged as if the
        costliest candidates always survived, so the plan holds whoever
        wins. A hidden layer wider than the rules' is tried only when the
        budget can also pay for its final fit (2.0 does on a 30,000-row,
        10,000-class problem; the default does not). The default leaves room
        for what the model misses, keeping the whole fit within about twice
        a fit without search. A string such as "90s" is the same limit in
        seconds (machine-dependent).
    max_memory : int, str or "auto", default="auto"
        Memory the model and its training buffers may take: bytes or a
        string such as "4GB". Hash tables shrink to fit; if nothing fits,
        ``fit`` raises MemoryError before allocating. "auto" is 75% of the
        memory available when ``fit`` starts.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training data, stop when its
        score has not improved by ``tol`` for ``n_iter_no_change`` epochs,
        and keep the best epoch's weights. Without it, training stops when
        the training loss has not improved by ``tol`` for that many epochs.
    validation_fraction : float, default=0.1
        Share of the training data held out when ``early_stopping``.
    n_iter_no_change : int, default=5
        Epochs without improvement before stopping.
    tol : float, default=1e-4
        Least improvement that counts.
    random_state : int, RandomState instance or None, default=None
        Seeds weights, hash functions, shuffling and the validation split.
        With an int, results are identical on every run and for any
        ``n_jobs``.
    n_jobs : int or None, default=None
        Threads for training and prediction. None uses what OpenMP would
        use (all cores unless ``OMP_NUM_THREADS`` or threadpoolctl limit
        it); -1 uses every core.
    verbose : int, default=0
        Show a progress bar per epoch and the loss after each.
    warm_start : bool, default=False
        Continue from the previous fit's weights when the problem has the
        same shape.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels; for multi-label ``y`` the column indices
        ``0 .. n_labels - 1``.
    n_features_in_ : int
        Number of input features.
    n_outputs_ : int
        Number of output neurons (classes or labels).
    multilabel_ : bool
        Whether ``y`` was a multi-label indicator matrix.
    hidden_layer_sizes_, hidden_sparsity_, learning_rate_init_, batch_size_, max_iter_, \
output_sparsity_, hash_function_, loss_, sparse_inference_, dropout_, \
centroid_finish_ :
        The resolved values of the corresponding parameters.
    hash_params_ : dict
        Resolved hash table shape and schedule: active set size, K, L,
        range_pow, reservoir, rebuild and redraw intervals (in batches),
        the epoch after which the tables are frozen, ``batch_negatives``
        (outputs of each active set drawn from the labels of the batch's
        rows) and ``inference_candidates`` (outputs sparse inference
        scores per row; -1: every one the tables retrieve). With a sparse
        hidden layer, ``"hidden"``: its active units per sample
        (``active_size``), ``K``, ``L``, ``range_pow``, ``reservoir`` of its
        tables and their ``rebuild_interval`` (in Adam steps; frozen with
        the output's tables).
    threshold_ : float or None
        Multi-label models: the probability from which ``predict`` keeps a
        label besides the most probable one, chosen to maximise micro-F1 on
        the autotuning search's held-out split (for the network the search
        ended with); None without a search, or for multi-class models
        (see ``predict``).
    temperature_ : float or None
        The factor the centroid finish scaled the output rows by (fitted on
        rows left out of the centroids); None without the finish.
    autotune_results_ : list of dict
        Every trial of the autotuning search: ``params`` (the values tried),
        ``rung``, ``epochs`` trained, ``validation_score`` (P@1 or accuracy
        on the held-out split) and ``seconds`` (that candidate's own
        training time so far, summed over the rungs it reached); the last entry
        has ``centroid_finish=True`` when the winner was also scored with
        that finish. Entries of the 3-fold race under 2,000 rows carry
        ``folds``: their ``validation_score`` is the folds' mean at the
        chosen epoch, ``epochs`` the longest fold's and ``seconds`` the
        time over every fold. Empty when no search ran.
    best_params_ : dict
        The searched parameters' winning values (empty without a search).
    memory_bytes_ : int
        Estimated peak bytes of the fitted configuration.
    n_iter_ : int
        Epochs run by the last ``fit``.
    loss_curve_ : list of float
        Mean training loss of each epoch.
    validation_scores_ : list of float or None
        Validation score of each epoch with ``early_stopping``.
    best_validation_score_ : float or None
        Best of ``validation_scores_``.

    Examples
    --------
    >>> from skbolt import BoltClassifier
    >>> from skbolt.datasets import make_extreme_classification
    >>> X, y = make_extreme_classification(2000, 500, 100, random_state=0)
    >>> clf = BoltClassifier(max_iter=10, random_state=0).fit(X, y)
    >>> labels, scores = clf.predict_topk(X[:3], k=5)
    >>> labels.shape
    (3, 5)
    """

    SMALL_DATA_CV = True

    def __init__(
        self,
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

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags

    # ------------------------------------------------------------------
    # targets

    def _encode_y(self, y, classes=None):
        """Labels as a CSR indicator over output neurons; sets classes_ and
        multilabel_ when fitting from scratch (classes is None)."""
        if not sp.issparse(y):
            # array-likes (lists, pandas, objects with __array__) become arrays
            # once, so the shape tests below work on any of them
            y = np.asarray(y)
        if sp.issparse(y) or (y.ndim == 2 and y.shape[1] > 1):
            if sp.issparse(y):
                y = sp.csr_matrix(y)
                # a malformed hand-built matrix would crash scipy's own routines
                # (eliminate_zeros) below; the full check raises a ValueError instead
                y.check_format(full_check=True)
            target = type_of_target(y)
            if target != "multilabel-indicator":
                raise ValueError(
                    "a 2-D y must be a binary multi-label indicator matrix; got y of type "
                    f"{target!r}. "
                    "Pass 1-D class labels for multi-class problems."
                )
            if classes is None:
                self.multilabel_ = True
                self._sparse_y = sp.issparse(y)
                # classes_ (arange over the labels) is made by _setup after the
                # memory check: with a huge label space it is itself gigabytes
                return labels_to_csr(y, y.shape[1])
            elif not self.multilabel_ or y.shape[1] != len(self.classes_):
                raise ValueError(
                    f"y has {y.shape[1]} label columns; this model was fit with "
                    f"{len(self.classes_) if self.multilabel_ else 'multi-class'} labels"
                )
            return labels_to_csr(y, len(self.classes_))
        y = column_or_1d(y, warn=True)
        # NaN / inf get a clear "Input y contains ..." error here; type_of_target
        # would first cast them to int with a RuntimeWarning
        assert_all_finite(y, input_name="y")
        check_classification_targets(y)
        if classes is None:
            classes = np.unique(y)
            if len(classes) < 2:
                raise ValueError(
                    "BoltClassifier needs samples of at least 2 classes to learn from; "
                    f"y holds only one class: {classes[0]!r}"
                )
            self.multilabel_ = False
            self.classes_ = classes
            self._sparse_y = False
        elif self.multilabel_:
            raise ValueError("this model was fit on multi-label y; pass a 2-D indicator matrix")
        idx = self._class_indices(y)
        unseen = idx == len(self.classes_)
        if np.any(unseen):
            raise ValueError(
                f"y contains labels not among the classes this model knows: "
                f"{np.unique(y[unseen])[:5].tolist()}; pass every class to the first "
                "partial_fit through `classes`, or refit"
            )
        return labels_to_csr(idx, len(self.classes_))

    # ------------------------------------------------------------------
    # fitting

    def fit(self, X, y):
        """Train on X and y.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data; CSR is used as is, without densifying.
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            Class labels, or a binary indicator matrix (dense or sparse)
            for multi-label problems.

        Returns
        -------
        self : BoltClassifier
            The fitted estimator.
        """
        return self._fit(X, y)

    def _training_data(self, X, y):
        return TrainingData(self._validate_X(X, reset=True), self._encode_y(y))

    def _problem_key(self, n_outputs):
        """What must not change for a warm start to keep the network."""
        return (self.n_features_in_, self.multilabel_, n_outputs,
                None if self.multilabel_ else self.classes_.tolist())

    def partial_fit(self, X, y, classes=None):
        """One pass over X and y, continuing from the current weights.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            Class labels, or a multi-label indicator matrix.
        classes : array-like of shape (n_classes,), default=None
            Every class that will ever appear; required on the first call
            for multi-class y (as in scikit-learn), ignored afterwards.

        Returns
        -------
        self : BoltClassifier
            The updated estimator.
        """
        first = not hasattr(self, "_network")
        X = self._validate_X(X, reset=first)
        if first:
            if not sp.issparse(y):
                y = np.asarray(y)
            if classes is None and not (sp.issparse(y) or (y.ndim == 2 and y.shape[1] > 1)):
                raise ValueError("classes must be passed on the first call to partial_fit")
            if classes is not None:
                classes = np.unique(np.asarray(classes))
                if len(classes) < 2:
                    raise ValueError("classes must hold at least 2 classes")
                self.classes_ = classes
                self.multilabel_ = False
                self._sparse_y = False
                Y = self._encode_y(y, classes=classes)
            else:
                Y = self._encode_y(y)
            data = TrainingData(X, Y)
            self._setup(data)
        else:
            data = TrainingData(X, self._encode_y(y, classes=self.classes_))
        self._train(data, 1, early_stopping=False)
        return self

    def _setup(self, data, search=False, problem=None):
        problem = super()._setup(data, search, problem)
        if self.multilabel_:
            self.classes_ = np.arange(problem.n_outputs)
        self.threshold_ = self._decisions.get("threshold") if self.multilabel_ else None
        return problem

    def _search_losses(self, problem):
        """Rows with several labels: the search tries the sigmoid loss too.

        Which loss ranks better swings P@1 by points either way on real
        multi-label sets (``skbolt._rules.auto_loss``), so it is measured on
        the held-out split rather than assumed. One label per row (even as
        an indicator) is a multi-class problem: softmax.
        """
        return ("sigmoid",) if problem.multilabel and problem.mean_labels > 1 else ()

    def _decide(self, network, resolved, X_val, Y_val, n_threads, problem):
        """Multi-label models: the probability threshold of ``predict``,
        fitted on the held-out split (``label_threshold``)."""
        if not self.multilabel_:
            return {}
        m = min(problem.max_labels, Y_val.shape[1])
        ids, probs = network.predict_topk(X_val, m, resolved.sparse_inference, n_threads,
                                          resolved.hash_params["inference_candidates"])
        return {"threshold": label_threshold(ids, probs, Y_val)}

    # ------------------------------------------------------------------
    # prediction

    def _check_k(self, k):
        if (not isinstance(k, numbers.Integral) or isinstance(k, bool)
                or not 1 <= k <= len(self.classes_)):
            raise ValueError(f"k must be an integer in [1, {len(self.classes_)}] (the number of "
                             f"classes), got {k!r}")
        return int(k)

    def _class_indices(self, y):
        """Each label of ``y`` as its index in ``classes_``, and
        ``len(classes_)`` (an index no prediction has) for a label the model
        never saw, so that ranking metrics count it as a miss."""
        y = np.asarray(y)
        pos = np.minimum(np.searchsorted(self.classes_, y), len(self.classes_) - 1)
        return np.where(self.classes_[pos] == y, pos, len(self.classes_))

    def _topk(self, X, k, threads):
        return self._by_chunks(
            lambda x: self._network.predict_topk(x, k, self.sparse_inference_, threads,
                                                 self.hash_params_["inference_candidates"]), X)

    def _scores(self, X, normalise):
        threads = self._n_threads()
        return self._by_chunks(lambda x: self._network.predict_scores(x, normalise, threads), X)

    def predict_topk(self, X, k=5):
        """The ``k`` most probable classes of each sample, best first.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Samples.
        k : int, default=5
            How many classes per sample.

        Returns
        -------
        labels : ndarray of shape (n_samples, k)
            Class labels (column indices for multi-label models).
        scores : ndarray of float32 of shape (n_samples, k)
            Their probabilities. With sparse inference they are normalised
            over the retrieved classes only. Classes no training row had
            rank last, with probability 0 (see ``predict_proba``).
        """
        check_is_fitted(self, "_network")
        k = self._check_k(k)
        X = self._validate_X(X, reset=False)
        ids, scores = self._topk(X, k, self._n_threads())
        return self.classes_[ids], scores

    def predict(self, X):
        """Predicted class of each sample, or label set for multi-label models.

        A multi-label model predicts its most probable label and every other
        label whose probability is at least ``threshold_``: the threshold
        that maximised micro-F1 on the autotuning search's held-out split.
        Without a search (``threshold_`` is None), the labels of probability
        at least 0.5 for the sigmoid loss; for the softmax loss, the most
        probable label and those with at least half of what a label gets
        when probability is shared evenly among the mean number of labels
        per training row. ``predict_proba`` and ``predict_topk`` do not
        depend on the threshold.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_labels)
            Class labels; for multi-label models a 0/1 indicator matrix,
            sparse CSR if the model was fit on a sparse ``y``.
        """
        X = self._fitted_X(X)
        threads = self._n_threads()
        if not self.multilabel_:
            ids, _ = self._topk(X, 1, threads)
            return self.classes_[ids[:, 0]]
        m = min(self._max_labels, len(self.classes_))
        ids, probs = self._topk(X, m, threads)
        threshold = getattr(self, "threshold_", None)
        if threshold is not None:
            keep = probs >= threshold
            keep[:, 0] = True
        elif self.loss_ == "sigmoid":
            keep = probs >= 0.5
        else:
            keep = probs >= 0.5 / self._mean_labels
            keep[:, 0] = True
        rows = np.repeat(np.arange(X.shape[0]), keep.sum(axis=1))
        out = sp.csr_matrix((np.ones(rows.size, dtype=np.int64), (rows, ids[keep])),
                            shape=(X.shape[0], len(self.classes_)))
        return out if self._sparse_y else out.toarray()

    def predict_proba(self, X):
        """Probability of every class for each sample, computed exactly.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Class probabilities: rows sum to 1 for multi-class models (with
            the sigmoid loss, the per-class sigmoids normalised over the
            classes, as scikit-learn's one-vs-rest does). For multi-label
            models, softmax probabilities, or independent per-label
            probabilities with the sigmoid loss. A class or label that no
            training row had (declared to ``partial_fit``, or an all-zero
            column of a multi-label ``y``) gets probability 0, as in
            scikit-learn's one-vs-rest: nothing was learned about it.
        """
        X = self._fitted_X(X)
        if self.loss_ == "sigmoid" and not self.multilabel_:
            # One class per sample: scikit-learn's contract is a distribution
            # over the classes, which independent sigmoids are not. Normalised
            # in log space, so rows whose sigmoids all underflow still sum to 1.
            z = self._scores(X, False)
            return softmax(-np.logaddexp(0, -z), axis=1)
        return self._scores(X, True)

    def decision_function(self, X):
        """Raw scores (logits) of every class for each sample.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        scores : ndarray of shape (n_samples, n_classes) or (n_samples,)
            Logits; for two classes, as in scikit-learn, the logit of the
            second class minus that of the first. Classes no training row
            had score ``-inf`` (see ``predict_proba``).
        """
        X = self._fitted_X(X)
        z = self._scores(X, False)
        if len(self.classes_) == 2 and not self.multilabel_:
            return z[:, 1] - z[:, 0]
        return z

    def embed(self, X):
        """The last hidden layer's activations for each sample.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        H : ndarray of float32 of shape (n_samples, hidden_layer_sizes_[-1])
            Non-negative ReLU activations, usable as learned features.
        """
        X = self._fitted_X(X)
        return self._network.embed(X, self._n_threads())

    def score(self, X, y, sample_weight=None):
        """Accuracy for multi-class y; precision@1 for multi-label y.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Samples.
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            True labels.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights (multi-class accuracy only).

        Returns
        -------
        score : float
            Accuracy, or the share of samples whose top label is true.
        """
        check_is_fitted(self, "_network")
        if not self.multilabel_:
            return super().score(X, y, sample_weight=sample_weight)
        if sample_weight is not None:
            raise ValueError("sample_weight is not supported for multi-label scores")
        ids, _ = self.predict_topk(X, 1)
        return precision_at_k(y, ids, k=1)


def label_threshold(ids, probs, Y):
    """The probability threshold that maximises micro-F1 of label sets on
    held-out rows, each row keeping its top label and every other label of
    probability at least the threshold.

    Parameters
    ----------
    ids : ndarray of int of shape (n_rows, m)
        Each row's top ``m`` labels (indices of ``Y``'s columns), best first.
    probs : ndarray of shape (n_rows, m)
        Their probabilities.
    Y : CSR matrix of shape (n_rows, n_labels)
        The rows' true labels.

    Returns
    -------
    float
        The threshold; above every probability when keeping the top label
        alone scores best.
    """
    Y = sp.csr_matrix(Y)
    n = ids.shape[0]
    rows = np.repeat(np.arange(n), ids.shape[1]).reshape(ids.shape)
    hit = np.asarray(Y[rows.ravel(), ids.ravel()]).reshape(ids.shape) > 0
    true = Y.nnz
    tp0 = int(hit[:, 0].sum())
    fp0 = n - tp0
    p, h = probs[:, 1:].ravel(), hit[:, 1:].ravel()
    order = np.argsort(-p, kind="stable")
    p, h = p[order], h[order]
    # keeping the first i of the others: scored at each distinct probability
    tp = tp0 + np.concatenate(([0], np.cumsum(h)))
    fp = fp0 + np.concatenate(([0], np.cumsum(~h)))
    f1 = 2 * tp / np.maximum(2 * tp + fp + (true - tp), 1)
    # a threshold keeps all pairs of equal probability together
    cut = np.concatenate(([True], p[1:] != p[:-1], [True])) if p.size else np.array([True])
    f1 = np.where(cut, f1, -1.0)
    best = int(np.argmax(f1))
    if best == 0:
        return float(np.nextafter(np.float32(p[0]), np.float32(np.inf))) if p.size else 1.0
    return float(p[best - 1])
