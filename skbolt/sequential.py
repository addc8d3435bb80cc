"""BoltSequentialRecommender: next-item recommendation from time-ordered
event logs, with the LSH-sparse network of ``BoltClassifier`` scoring
every item of the catalogue."""
import numbers

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from . import _rules
from ._base import NativePickle, Plan, Problem, memory_budget, resolve_n_threads
from ._cooccurrence import (
    CHUNK_EVENTS,
    MAX_NEIGHBORS,
    NEIGHBOR_BYTES,
    PAIR_BYTES,
    WINDOW,
    cooccurrence,
    history_distribution,
)
from ._native import max_threads
from ._network import Network
from ._sequences import (
    Encoding,
    Sequences,
    check_times,
    event_columns,
    tie_keys,
    time_order,
)
from ._sequential_auto import (
    AUTO_CANDIDATES,
    AUTO_WIDTH,
    AUTO_WINDOW,
    resolve_auto,
)
from ._topn import add_sums, ndcg_one, ranked
from ._training import RowStream
from .datasets import _interaction_codes

__all__ = ["BoltSequentialRecommender", "time_order"]

#: Catalogues up to this size get a dense output layer
#: (``output_sparsity="auto"``). BoltRecommender's 2,048 at first; on
#: generated logs of 3,000, 4,000 and 8,000 items (validation NDCG@10 of
#: next-to-last events, seed 0) the rule's sampled layer scored 0.096 /
#: 0.085 / 0.063 and the dense one 0.100 / 0.098 / 0.086, at 3.5x / 4.7x
#: / 9.9x the fit's CPU time (benchmarks/HISTORY.md, twenty-first
#: session); a sampled layer at half the items active cost what the dense
#: one did and scored as the rule's (0.085 at 4,000).
DENSE_ITEMS = 8192

#: Training positions whose input rows are built at once: bounds a fit's
#: row memory (about CHUNK_ROWS x (window + last_items) nonzeros).
CHUNK_ROWS = 16384

#: Bytes per event a fit holds at its peak (``estimate_memory``): int64
#: codes, float64 times, uint64 keys and weights, the sort order, the
#: sequences (int32 items, float32 weights), the seen-items matrix, the
#: positions and one epoch's permutation of them.
EVENT_BYTES = 88

#: Bytes per nonzero of a chunk of input rows with scipy's temporaries.
ROW_BYTES = 64

#: Rows the sampled output layer's centroid start reads (a sample of the
#: positions beyond this).
CENTROID_ROWS = 500_000

class BoltSequentialRecommender(NativePickle, BaseEstimator):
    """Next-item recommender over time-ordered event logs.

    ``fit`` reads an event log (user, item, timestamp[, weight]) with ids of
    any hashable type. Each user's events are put in time order, events at
    the same time by a fixed pseudo-random key of (user, item)
    (``time_order``), never by item id. Every position t >= 1 of every
    user's sequence is a training row: its input is the user's items before
    t, the last ``window`` of them weighted ``decay ** steps_back`` (a
    block scaled to unit length), followed by ``last_items`` one-hot blocks
    of the items 1, 2, ... steps back; its target is the item at t. Rows
    are built a chunk at a time in each epoch (never the whole row matrix),
    and the network of ``BoltClassifier`` (ReLU hidden layer, softmax output
    layer over every item of the log, sampled by LSH above DENSE_ITEMS
    items) learns them.

    The network's hidden layer is a low-rank map from the last items to the
    next, so item-to-item links it cannot hold (a successor table over the
    catalogue) come from a second source: how often two items occur within
    a few steps of each other in users' sequences (``_cooccurrence``). An
    item ranks by p * (1 + n_items * P) ** ``cooccurrence_weight_``, p the
    network's probability and P the co-occurrence distribution of the
    user's last items; the weight is measured on validation events.

    Parameters
    ----------
    n_recommendations : int, default=10
        Items per user of ``recommend`` without ``n``, and the cut-off of
        ``score`` (NDCG@n_recommendations).
    decay : float in (0, 1] or "auto", default="auto"
        Weight factor per step back in the history block.
    window : int or "auto", default="auto"
        Most recent items in the history block ("auto": AUTO_WINDOW).
    last_items : int >= 0 or "auto", default="auto"
        One-hot blocks of the last items.
    history_scale, last_scale : float >= 0, default=1.0
        Length of the history block and value of each last-item entry (0
        leaves a block out).
    exclude_seen : bool, default=True
        Whether items the user already had are left out of recommendations.
    cooccurrence_weight : float >= 0 or "auto", default="auto"
        Exponent of the co-occurrence factor in the ranking (0: the network
        alone). "auto" picks one of AUTO_WEIGHTS by NDCG on each user's
        last training event, scored with the cheap network of the encoding
        choice and co-occurrence counted without those events.
    hidden_layer_sizes, learning_rate_init, batch_size, max_iter, \
output_sparsity, dropout : "auto" or as in ``BoltClassifier``
        The network's hyper-parameters; "auto" follows the classifier's
        rules on the training rows (one per position), except that
        ``output_sparsity`` is dense up to DENSE_ITEMS (8,192) items.
    max_memory : int, str or "auto", default="auto"
        Bytes the fit may use, as in ``BoltClassifier``.
    random_state : int, RandomState or None, default=None
        Seeds the network, the epochs' row order and the "auto" sample.
    n_jobs : int or None, default=None
        Threads of the native calls (None: OpenMP's default).
    verbose : int, default=0
        Print the "auto" measurements and each epoch's loss.

    Attributes
    ----------
    decay_, window_, last_items_ : float, int, int
        The resolved encoding.
    encoding_scores_ : dict or None
        With "auto": validation NDCG@n_recommendations of each candidate
        (decay, last_items) measured (None when nothing was measured).
    cooccurrence_weight_ : float
        The resolved co-occurrence weight ("auto" falls back to 0 when
        fewer than 20 users have 3 events to validate on).
    cooccurrence_scores_ : dict or None
        With "auto": validation NDCG of each weight measured.
    user_ids_, item_ids_ : ndarray
        The caller's ids; the catalogue is every item of the log.
    n_items_ : int
        Items in the catalogue.
    hidden_layer_sizes_, learning_rate_init_, batch_size_, max_iter_, \
output_sparsity_, dropout_ : resolved hyper-parameters
    memory_bytes_ : dict
        The network's estimated peak bytes by part.
    loss_curve_ : list of float
        Mean training loss per epoch.

    See Also
    --------
    BoltRecommender : order-free recommendation from interaction sets.
    time_order : the event order this estimator uses.

    Examples
    --------
    >>> import numpy as np
    >>> from skbolt import BoltSequentialRecommender
    >>> rng = np.random.default_rng(0)
    >>> users = np.repeat(np.arange(50), 8)
    >>> items = (rng.integers(0, 20, 50)[:, None] + np.arange(8)).ravel() % 30
    >>> times = np.tile(np.arange(8), 50)
    >>> rec = BoltSequentialRecommender(decay=0.9, last_items=1, max_iter=5,
    ...                                 random_state=0).fit(users, items, times)
    >>> ids, scores = rec.recommend([0, 1], n=3)
    >>> ids.shape
    (2, 3)
    """

    def __init__(self, n_recommendations=10, decay="auto", window="auto", last_items="auto",
                 history_scale=1.0, last_scale=1.0, exclude_seen=True,
                 cooccurrence_weight="auto", hidden_layer_sizes="auto",
                 learning_rate_init="auto", batch_size="auto", max_iter="auto",
                 output_sparsity="auto", dropout="auto", max_memory="auto",
                 random_state=None, n_jobs=None, verbose=0):
        self.n_recommendations = n_recommendations
        self.decay = decay
        self.window = window
        self.last_items = last_items
        self.history_scale = history_scale
        self.last_scale = last_scale
        self.exclude_seen = exclude_seen
        self.cooccurrence_weight = cooccurrence_weight
        self.hidden_layer_sizes = hidden_layer_sizes
        self.learning_rate_init = learning_rate_init
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.output_sparsity = output_sparsity
        self.dropout = dropout
        self.max_memory = max_memory
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose

    # ------------------------------------------------------------------
    # input

    def _check_params(self):
        def number(name, ok, what):
            v = getattr(self, name)
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real) or not ok(v):
                raise ValueError(f"{name} must be {what}, got {v!r}")
            return v

        for name, lo in (("window", 1), ("last_items", 0)):
            v = getattr(self, name)
            if not _rules.is_auto(v) and (isinstance(v, (bool, np.bool_)) or not isinstance(
                    v, numbers.Integral) or v < lo):
                raise ValueError(f"{name} must be an integer >= {lo} or 'auto', got {v!r}")
        if not _rules.is_auto(self.decay):
            number("decay", lambda v: 0 < v <= 1, "in (0, 1] or 'auto'")
        number("history_scale", lambda v: 0 <= v < np.inf, "a number >= 0")
        number("last_scale", lambda v: 0 <= v < np.inf, "a number >= 0")
        if not _rules.is_auto(self.cooccurrence_weight):
            number("cooccurrence_weight", lambda v: 0 <= v < np.inf, "a number >= 0 or 'auto'")
        n = self.n_recommendations
        if isinstance(n, (bool, np.bool_)) or not isinstance(n, numbers.Integral) or n < 1:
            raise ValueError(f"n_recommendations must be a positive integer, got {n!r}")
        if not isinstance(self.exclude_seen, (bool, np.bool_)):
            raise ValueError(f"exclude_seen must be True or False, got {self.exclude_seen!r}")

    # ------------------------------------------------------------------
    # fit

    def fit(self, users, items=None, timestamps=None, weights=None):
        """Learn next items from an event log.

        Parameters
        ----------
        users, items : array-like of shape (n_events,)
            Who did what: any hashable ids (ints, strings). With ``items``
            and ``timestamps`` left out, ``users`` is one table of shape
            (n_events, 3 or 4): user, item, timestamp[, weight] columns
            (what ``GridSearchCV`` splits; use ``GroupKFold`` by user).
        timestamps : array-like of shape (n_events,)
            When: numbers or datetime64. Events of one user at the same
            time are ordered by ``time_order``'s fixed pseudo-random key.
        weights : array-like of shape (n_events,), default=None
            Non-negative weight of each event: it multiplies the event's
            entry in the history block; events of weight 0 are dropped.

        Returns
        -------
        self : BoltSequentialRecommender
            The fitted recommender.

        Raises
        ------
        ValueError
            For an empty log, arrays of different lengths, NaN or infinite
            times or weights, fewer than 2 items, or no user with 2 events.
        """
        self._check_params()
        users, items, timestamps, weights = event_columns(users, items, timestamps, weights)
        user_ids, rows, item_ids, cols, w = _interaction_codes(users, items, weights)
        t = check_times(timestamps, rows.size)
        keep = w > 0
        if not keep.all():
            rows, cols, w, t = rows[keep], cols[keep], w[keep], t[keep]
            if rows.size == 0:
                raise ValueError("every event has weight 0: there is nothing to learn from.")
        if item_ids.size < 2:
            raise ValueError(f"the log names {item_ids.size} item; next-item recommendation "
                             "needs a catalogue of at least 2 items.")
        seqs = Sequences.from_codes(rows, cols, t, tie_keys(user_ids, rows, item_ids, cols), w,
                                    user_ids.size)
        positions = seqs.positions()
        if positions.size == 0:
            raise ValueError("no user has two events, so no event follows another to learn "
                             "from; a next-item model needs users with at least 2 events.")
        self.user_ids_, self.item_ids_, self.n_items_ = user_ids, item_ids, item_ids.size
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        threads = resolve_n_threads(self.n_jobs, max_threads())
        resolve_auto(self, seqs, seed, threads)
        enc = self._encoding()
        net, plan = self._new_network(enc, seqs, positions, seed, threads)
        self.loss_curve_ = self._train(net, plan, enc, seqs, positions, seed, threads)
        self._network, self._sequences = net, seqs
        self._cooccurrence = (cooccurrence(seqs.items, seqs.starts, self.n_items_)
                              if self.cooccurrence_weight_ > 0 else None)
        self._seen = seqs.seen(self.n_items_)
        self._user_index = {u: i for i, u in enumerate(user_ids.tolist())}
        self._item_index = None
        return self

    def _encoding(self, decay=None, last_items=None):
        return Encoding(self.n_items_, self.decay_ if decay is None else decay, self.window_,
                        self.last_items_ if last_items is None else last_items,
                        self.history_scale, self.last_scale)

    def _new_network(self, enc, seqs, positions, seed, threads, max_iter=None, cheap=False):
        n_items = self.n_items_
        targets = np.bincount(seqs.items[positions], minlength=n_items)
        lengths = positions - seqs.starts[seqs.user_of(positions)]
        nnz = float(np.minimum(lengths, enc.window).mean()
                    + np.minimum(lengths, enc.last_items).mean())
        problem = Problem(n_samples=int(positions.size), n_features=enc.n_features,
                          n_outputs=n_items, nnz_per_row=nnz, multilabel=False,
                          rare_label_share=_rules.rare_share_of_counts(
                              targets[targets > 0], positions.size),
                          n_labelled=int(np.count_nonzero(targets)))
        params = self._network_params(n_items)
        if cheap:
            params["max_iter"] = max_iter
            if _rules.is_auto(params["hidden_layer_sizes"]):
                params["hidden_layer_sizes"] = (AUTO_WIDTH,)
        plan = Plan.make(params, problem, seed, threads, memory_budget(self.max_memory))
        r = plan.resolved
        if not cheap:
            self.hidden_layer_sizes_, self.learning_rate_init_ = r.hidden_layer_sizes, \
                r.learning_rate_init
            self.batch_size_, self.max_iter_ = r.batch_size, r.max_iter
            self.output_sparsity_, self.dropout_ = r.output_sparsity, r.dropout
            self.memory_bytes_ = plan.memory
            self.hash_params_ = r.hash_params
        net = Network(plan.config, build_tables=False, n_threads=threads)
        if net.sparse_output:
            rng = np.random.RandomState(seed)
            sample = positions if positions.size <= CENTROID_ROWS else np.sort(
                rng.choice(positions, CENTROID_ROWS, replace=False))
            total = None
            for lo in range(0, sample.size, CHUNK_ROWS):
                X, Y = enc.training_rows(seqs, sample[lo:lo + CHUNK_ROWS])
                part = net.centroid_sums(X, Y, np.arange(X.shape[0]), threads)
                total = part if total is None else add_sums(total, part)
            net.set_centroids(total, _rules.CENTROID_LOGIT, threads)
        return net, plan

    def _network_params(self, n_items):
        params = {name: getattr(self, name) for name in (
            "hidden_layer_sizes", "learning_rate_init", "batch_size", "max_iter", "dropout")}
        params["loss"] = "softmax"
        if _rules.is_auto(self.output_sparsity):
            params["output_sparsity"] = 1.0 if n_items <= DENSE_ITEMS else "auto"
        else:
            params["output_sparsity"] = self.output_sparsity
        return params

    def _train(self, net, plan, enc, seqs, positions, seed, threads):
        r = plan.resolved
        stream = RowStream.seeded(positions, seed)
        curve = []
        try:
            for epoch in range(r.max_iter):
                order, loss = stream.epoch(epoch), 0.0
                for lo in range(0, order.size, CHUNK_ROWS):
                    X, Y = enc.training_rows(seqs, order[lo:lo + CHUNK_ROWS])
                    loss += net.train(X, Y, np.arange(X.shape[0]), r.batch_size,
                                      r.learning_rate_init, threads)
                curve.append(loss / order.size)
                if self.verbose:
                    print(f"epoch {epoch + 1}/{r.max_iter}: loss {curve[-1]:.4f}")
                # the tables freeze after freeze_after epochs, as in BoltClassifier
                if (net.sparse_output and not net.frozen
                        and epoch + 1 >= r.hash_params["freeze_after"]):
                    net.set_frozen(True)
        finally:
            net.release_buffers()
        return curve

    def estimate_memory(self, n_events, n_users, n_items):
        """Peak bytes a fit on a log of this size would use, by part.

        Parameters
        ----------
        n_events, n_users, n_items : int
            Size of the log.

        Returns
        -------
        dict
            ``events`` (the fit's copies of the log: codes, times, tie
            keys, the sequences, the seen-items matrix, the positions and
            an epoch's order; about EVENT_BYTES per event), ``rows`` (one
            chunk of input rows and its scipy temporaries),
            ``cooccurrence`` (its counting, when the weight may be > 0),
            the network's parts (``weights``, ``optimizer``, ``tables``,
            ``buffers``) and their ``total``. "auto" encodings count the
            widest candidate. The caller's own arrays are not counted.
        """
        self._check_params()
        window = AUTO_WINDOW if _rules.is_auto(self.window) else int(self.window)
        last = (max(k for _, k in AUTO_CANDIDATES) if _rules.is_auto(self.last_items)
                else int(self.last_items))
        n_pos = max(1, n_events - n_users)
        mean_len = n_events / max(n_users, 1)
        nnz = min(window, mean_len / 2) + last
        problem = Problem(n_samples=int(n_pos), n_features=n_items * (1 + last),
                          n_outputs=int(n_items), nnz_per_row=float(nnz), multilabel=False,
                          rare_label_share=None, n_labelled=int(n_items))
        params = self._network_params(n_items)
        threads = resolve_n_threads(self.n_jobs, max_threads())
        plan = Plan.make(params, problem, 0, threads, memory_budget(self.max_memory))
        parts = {"events": EVENT_BYTES * int(n_events),
                 "rows": int(CHUNK_ROWS * (nnz + 2) * ROW_BYTES)}
        if _rules.is_auto(self.cooccurrence_weight) or self.cooccurrence_weight > 0:
            # the counts of one chunk of events, the running total (pruned
            # past 4 x MAX_NEIGHBORS a row) and the kept neighbours
            pairs = 2 * WINDOW * min(int(n_events), CHUNK_EVENTS)
            held = min(int(n_items) * 4 * MAX_NEIGHBORS, 2 * WINDOW * int(n_events))
            parts["cooccurrence"] = int(pairs * PAIR_BYTES + 3 * held * NEIGHBOR_BYTES)
        # no rollback copy: this fit keeps no snapshot of the weights
        parts.update({k: int(v) for k, v in plan.memory.items()
                      if k not in ("total", "snapshot")})
        parts["total"] = sum(parts.values())
        return parts

    # ------------------------------------------------------------------
    # recommend

    def _ranked(self, net, X, seen, n, threads, plan=None, P=None, weight=None):
        """Best ``n`` items of each input row of ``X``, the row's items of
        CSR ``seen`` left out (None: none); -1 / NaN where none is left.
        ``plan``: that of ``net`` when it is not the fitted network; ``P``
        and ``weight``: the rows' co-occurrence and its weight (default:
        the fitted ones, given ``P``)."""
        hash_params = self.hash_params_ if plan is None else plan.resolved.hash_params
        weight = self.cooccurrence_weight_ if weight is None else weight
        return ranked(net, X, seen, n, self.n_items_, hash_params["inference_candidates"],
                      threads, P=P, weight=weight)

    def _user_inputs(self, seqs, users):
        """Network rows and co-occurrence distributions (None without a
        weight) of each user's next item after their whole history."""
        users = np.asarray(users, dtype=np.int64)
        X = self._encoding().user_rows(seqs, users)
        if self._cooccurrence is None:
            return X, None
        ends = seqs.starts[users + 1]
        return X, history_distribution(self._cooccurrence, seqs.items, ends,
                                       ends - seqs.starts[users])

    def _check_n(self, n):
        n = self.n_recommendations if n is None else n
        if isinstance(n, (bool, np.bool_)) or not isinstance(n, numbers.Integral) or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        return int(n)

    def _user_codes(self, users):
        users = np.asarray(users)
        if users.ndim != 1:
            raise ValueError(f"users must be a 1-D array of user ids, got shape {users.shape}")
        codes = np.array([self._user_index.get(u, -1) for u in users.tolist()], dtype=np.int64)
        unknown = np.flatnonzero(codes < 0)
        if unknown.size:
            raise ValueError(f"{unknown.size} user(s) were not in the log fit read (e.g. "
                             f"{users[unknown[0]]!r}); pass their time-ordered items to "
                             "recommend_history instead.")
        return codes

    def _output(self, ids, scores):
        named = self.item_ids_[np.maximum(ids, 0)]
        if (ids < 0).any():
            named = named.astype(object)
            named[ids < 0] = None
        return named, scores

    def recommend(self, users, n=None):
        """The next items for users seen in ``fit``, best first.

        Parameters
        ----------
        users : array-like of shape (n_users,)
            User ids as ``fit`` read them; each is scored from their whole
            history in the log (the items after their last event).
        n : int, default=None
            Items per user (``n_recommendations`` when None); at most the
            catalogue's size.

        Returns
        -------
        ids : ndarray of shape (n_users, min(n, ``n_items_``))
            The caller's item ids, best first. With ``exclude_seen`` the
            user's items are left out; where fewer items remain, the last
            slots hold None (the array is then of dtype object).
        scores : ndarray of float32 of the same shape
            The items' softmax probabilities times
            ``(1 + n_items_ * P) ** cooccurrence_weight_`` (P: the co-occurrence distribution of
            the user's last items; the plain probabilities when the weight
            is 0), not renormalised; NaN in empty slots.

        Raises
        ------
        ValueError
            For a user ``fit`` did not read (use ``recommend_history``).
        """
        check_is_fitted(self, "_network")
        n = self._check_n(n)
        codes = self._user_codes(users)
        X, P = self._user_inputs(self._sequences, codes)
        seen = self._seen[codes] if self.exclude_seen else None
        threads = resolve_n_threads(self.n_jobs, max_threads())
        return self._output(*self._ranked(self._network, X, seen, n, threads, P=P))

    def _item_codes(self, items):
        if self._item_index is None:
            self._item_index = {v: i for i, v in enumerate(self.item_ids_.tolist())}
        get = self._item_index.get
        return np.array([get(v, -1) for v in np.asarray(items).tolist()], dtype=np.int64)

    def recommend_history(self, histories, n=None):
        """Next items for new users from their time-ordered items (fold-in:
        no refit).

        Parameters
        ----------
        histories : list of array-like
            Each user's items, earliest first. Items ``fit`` never saw are
            ignored (they have no input weights); a history with no known
            item is an empty input, ranked by the network's biases alone
            (close to popularity of next items).
        n : int, default=None
            Items per user (``n_recommendations`` when None).

        Returns
        -------
        ids, scores : ndarray of shape (len(histories), min(n, ``n_items_``))
            As ``recommend`` returns them; each history's items are left
            out with ``exclude_seen``.
        """
        check_is_fitted(self, "_network")
        n = self._check_n(n)
        seqs = self._history_sequences(histories)
        X, P = self._user_inputs(seqs, np.arange(seqs.n_users))
        seen = seqs.seen(self.n_items_) if self.exclude_seen else None
        threads = resolve_n_threads(self.n_jobs, max_threads())
        return self._output(*self._ranked(self._network, X, seen, n, threads, P=P))

    def _history_sequences(self, histories):
        if isinstance(histories, (str, bytes)) or not hasattr(histories, "__len__"):
            raise ValueError("histories must be a list with one sequence of item ids per user.")
        lists = [np.atleast_1d(np.asarray(h)) for h in histories]
        if any(h.ndim != 1 for h in lists):
            raise ValueError("each history must be a 1-D sequence of item ids, earliest first.")
        flat = np.concatenate(lists) if lists else np.zeros(0)
        codes = self._item_codes(flat) if flat.size else np.zeros(0, dtype=np.int64)
        owner = np.repeat(np.arange(len(lists)), [h.size for h in lists])
        known = codes >= 0
        codes, owner = codes[known], owner[known]
        starts = np.zeros(len(lists) + 1, dtype=np.int64)
        np.cumsum(np.bincount(owner, minlength=len(lists)), out=starts[1:])
        return Sequences(codes, np.ones(codes.size), starts)

    # ------------------------------------------------------------------
    # score

    def score(self, users, items=None, timestamps=None, weights=None):
        """NDCG@n_recommendations of each user's last event in the given
        log, averaged over users.

        A user's history is their events in ``fit`` (if any) followed by
        their earlier events here; the last event here (in ``time_order``)
        is the target. With a held-out last event per user
        (``skbolt.datasets.split_last`` on a ``time_order``-ed log) this is
        leave-last-out; with ``GridSearchCV`` and ``GroupKFold`` by user the
        test users are folded in from their own earlier events.
        Targets outside the catalogue, or already seen with
        ``exclude_seen``, score 0.

        Parameters
        ----------
        users, items, timestamps, weights
            An event log, as ``fit`` takes it (one table allowed).

        Returns
        -------
        float
            Mean NDCG over the log's users.
        """
        check_is_fitted(self, "_network")
        users, items, timestamps, _ = event_columns(users, items, timestamps, weights)
        order = time_order(users, items, timestamps)
        users, items = users[order], items[order]
        u_ids, u_codes = np.unique(users, return_inverse=True)
        # each user's events stay in time order under a stable sort by user
        by_user = np.argsort(u_codes, kind="stable")
        users, items, u_codes = users[by_user], items[by_user], u_codes[by_user]
        last = np.r_[u_codes[1:] != u_codes[:-1], True]
        targets = self._item_codes(items[last])
        histories = []
        starts = np.r_[0, np.flatnonzero(last)[:-1] + 1]
        fit_seqs = self._sequences
        for u, s, e in zip(u_ids.tolist(), starts.tolist(), np.flatnonzero(last).tolist()):
            code = self._user_index.get(u, -1)
            before = self.item_ids_[fit_seqs.items[fit_seqs.starts[code]:fit_seqs.starts[
                code + 1]]] if code >= 0 else items[:0]
            histories.append(np.concatenate([before, items[s:e]]))
        ids = self._ranked_histories(histories)
        return ndcg_one(ids, targets)

    def _ranked_histories(self, histories):
        seqs = self._history_sequences(histories)
        X, P = self._user_inputs(seqs, np.arange(seqs.n_users))
        seen = seqs.seen(self.n_items_) if self.exclude_seen else None
        threads = resolve_n_threads(self.n_jobs, max_threads())
        return self._ranked(self._network, X, seen, self.n_recommendations, threads, P=P)[0]


