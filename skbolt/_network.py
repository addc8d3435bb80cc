"""Python owner of one native network.

``Network`` holds the native handle and the plain-Python configuration it
was made from, and speaks numpy / scipy to the estimators: train one pass,
predict, embed, and save or restore its whole state as numpy arrays.
"""
import functools

import numpy as np
import scipy.sparse as sp

from . import _native

#: Version of the layout ``Network.get_state`` produces. Version 1 lacked
#: "seen" (which outputs were trained on); such states restore with none
#: marked, so they predict as they did. Version 2 lacked "center" (what the
#: tables hash hidden vectors from); such states restore with zeros, as
#: they were trained.
STATE_VERSION = 3

_CONFIG_KEYS = (
    "n_features", "n_outputs", "hidden_sizes", "loss", "active_size", "hash_family",
    "hash_K", "hash_L", "range_pow", "reservoir", "rebuild_interval", "redraw_interval",
    "seed", "dropout", "beta1", "beta2", "epsilon", "batch_negatives",
) + _native.HIDDEN_KEYS

#: Keys a configuration saved by an older version may lack, with the value
#: that reproduces how that version trained.
_CONFIG_DEFAULTS = {"batch_negatives": 0, **{key: 0 for key in _native.HIDDEN_KEYS}}


def _counters_to_array(counters):
    """The saved form of the counters: int64 [step, since_rebuild,
    since_redraw, redraws, frozen], as every state version stores them."""
    return np.array([counters[name] for name in _native.COUNTER_NAMES], dtype=np.int64)


def _counters_from_array(values):
    values = np.ascontiguousarray(values, dtype=np.int64)
    n = len(_native.COUNTER_NAMES)
    if values.shape != (n,):
        raise ValueError(f"expected {n} counters, got shape {values.shape}")
    return dict(zip(_native.COUNTER_NAMES, (int(v) for v in values)))


#: Logits a held-out temperature is fitted on (rows times outputs; at
#: least 16 rows): 8 MB of float32, a second of Newton steps at most.
TEMPERATURE_SCORES = 2_000_000


def fit_temperature(logits, Y, iterations=20):
    """The positive factor t maximising the mean log-likelihood of the
    softmax of ``t * logits`` for the labels ``Y``.

    Multi-label rows count the mean log-probability of their labels (the
    softmax loss's target spreads over them evenly); rows without labels
    are ignored. The likelihood is concave in t, so Newton's method from
    t = 1 finds it; 1.0 when nothing can be fitted.

    Parameters
    ----------
    logits : ndarray of shape (n_samples, n_outputs)
    Y : sparse matrix of shape (n_samples, n_outputs)
        Label indicator.
    iterations : int
        Most Newton steps.
    """
    Y = sp.csr_matrix(Y, dtype=np.float64)
    counts = np.diff(Y.indptr)
    keep = counts > 0
    if not keep.any() or logits.shape[1] < 2:
        return 1.0
    S = np.asarray(logits, dtype=np.float32)[keep]
    # the target's mean logit per row: what the likelihood rewards
    target = np.asarray(Y[keep].multiply(S).sum(axis=1)).ravel() / counts[keep]
    # an output scored -inf (never trained) has probability 0 at any t: it
    # must add 0 to the moments below, not 0 * -inf = NaN
    S_moments = np.where(np.isneginf(S), np.float32(0), S)
    t = 1.0
    for _ in range(iterations):
        z = t * S
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        pS = p * S_moments
        mean = pS.sum(axis=1, dtype=np.float64)
        grad = np.sum(target - mean)
        curv = np.sum((pS * S_moments).sum(axis=1, dtype=np.float64) - mean**2)
        if not curv > 0:
            break
        # a Newton step, kept within a factor 4 so t stays positive
        step = min(max(t + grad / curv, t / 4), t * 4)
        done = abs(step - t) <= 1e-4 * t
        t = step
        if done:
            break
    return float(t) if np.isfinite(t) and t > 0 else 1.0


def labels_to_csr(y_index, n_outputs):
    """Label matrix for the core from 1-D class indices or a 2-D indicator."""
    if sp.issparse(y_index):
        Y = sp.csr_matrix(y_index)
    elif np.ndim(y_index) == 2:
        Y = sp.csr_matrix(np.asarray(y_index) != 0)
    else:
        idx = np.asarray(y_index, dtype=np.int64)
        return sp.csr_matrix(
            (np.ones(idx.size, dtype=np.float32), idx, np.arange(idx.size + 1)),
            shape=(idx.size, n_outputs),
        )
    Y.eliminate_zeros()
    return Y


def _writes(method):
    """A ``Network`` method that changes the native network: afterwards it
    is no longer the network its configuration creates (``pristine``)."""
    @functools.wraps(method)
    def wrapped(self, *args, **kwargs):
        self._pristine = False
        return method(self, *args, **kwargs)
    return wrapped


class Network:
    """A native LSH-sparse network.

    Parameters
    ----------
    config : dict
        Resolved configuration: every key of ``_CONFIG_KEYS`` with a plain
        Python value (see ``skbolt._rules.network_config``).
    build_tables : bool, default=True
        Whether the hash tables are filled from the initial output rows
        (hashed on ``n_threads``). False leaves them empty, for a caller
        that fills them next (``init_from_centroids``, ``set_tables``,
        ``rebuild_tables``); empty tables retrieve nothing.
    n_threads : int, default=1
        Threads for drawing the initial weights and building the tables
        (neither depends on it).
    """

    def __init__(self, config, build_tables=True, n_threads=1):
        config = {**_CONFIG_DEFAULTS, **config}
        missing = [k for k in _CONFIG_KEYS if k not in config]
        if missing:
            raise ValueError(f"network configuration lacks {missing}")
        self.config = {k: config[k] for k in _CONFIG_KEYS}
        self.config["hidden_sizes"] = tuple(int(h) for h in config["hidden_sizes"])
        self._handle = _native.create(self.config, build_tables, n_threads)
        self._pristine = True

    @property
    def pristine(self):
        """Whether nothing has changed this network since its creation, so
        that ``Network(self.config)`` creates it again (the initial weights
        are a function of the seed; empty tables aside)."""
        return self._pristine

    @property
    def n_layers(self):
        return len(self.config["hidden_sizes"]) + 1

    @property
    def embedding_width(self):
        return self.config["hidden_sizes"][-1]

    @property
    def sparse_hidden(self):
        """Whether the (single) hidden layer is LSH-sparse."""
        c = self.config
        return 0 < c["hidden_active"] < c["hidden_sizes"][0]

    def set_hidden_exact(self, exact):
        """Exact (every unit) or, by default, LSH-sparse inference through a
        sparse hidden layer; training is not affected."""
        _native.set_hidden_exact(self._handle, exact)

    @property
    def sparse_output(self):
        return self.config["active_size"] < self.config["n_outputs"]

    @staticmethod
    def estimate_memory(config, batch_size, nnz_per_row, n_threads):
        """Peak bytes of a network with ``config`` while it trains, by part.

        Returns a dict of ints: ``weights``, ``optimizer`` (Adam's moments),
        ``tables`` (hash tables, fill order, hash functions), ``buffers``
        (training workspace and the rest) and their ``total``, computed by
        the code that allocates them.
        """
        return _native.estimate_memory(config, batch_size, nnz_per_row, n_threads)

    @_writes
    def train(self, X, Y, rows, batch_size, learning_rate, n_threads):
        """Train on ``rows`` of (X, Y) in that order; returns the summed loss.

        X is CSR (n_samples, n_features); Y is a CSR label indicator
        (n_samples, n_outputs).
        """
        return _native.train(self._handle, X, Y, rows, batch_size, learning_rate, n_threads)

    def release_buffers(self):
        """Free the training buffers the core keeps between ``train`` calls
        (a fit is many calls; they would otherwise live as long as the
        network)."""
        _native.release_buffers(self._handle)

    def gradient(self, X, Y, layer, n_threads=1):
        """(grad_w, grad_b, loss_sum) of the mean loss over all rows, no update."""
        rows = np.arange(X.shape[0])
        return _native.gradient(self._handle, X, Y, rows, layer, n_threads)

    def predict_topk(self, X, k, sparse, n_threads, candidates=-1):
        """(ids, probabilities) of the ``k`` best outputs per row.

        With ``sparse``, only outputs the hash tables retrieve are scored:
        every one of them (``candidates`` < 0) or the ``candidates`` that
        most tables retrieve.
        """
        return _native.predict_topk(self._handle, X, k, candidates if sparse else 0, n_threads)

    def predict_scores(self, X, probabilities, n_threads):
        """Dense (n_samples, n_outputs) logits or probabilities."""
        return _native.predict_scores(self._handle, X, probabilities, n_threads)

    def embed(self, X, n_threads):
        """Last hidden layer's activations, (n_samples, width)."""
        return _native.embed(self._handle, X, n_threads)

    @_writes
    def init_from_centroids(self, X, Y, rows, logit_scale, n_threads):
        """Before training: each label's output row and bias from the mean
        hidden vector of the ``rows`` carrying it, measured from the mean of
        all ``rows``, which the tables hash from too (see
        ``_rules.CENTROID_LOGIT``)."""
        _native.init_centroids(self._handle, X, Y, rows, logit_scale, n_threads)

    def centroid_sums(self, X, Y, rows, n_threads):
        """What ``init_centroids`` adds up over ``rows``, as a dict that
        sums with other shares of the rows (``set_centroids`` takes the
        total): ``labels`` present, their summed last hidden vectors
        ``sums`` and row ``counts``, the ``total`` of all hidden vectors,
        their summed squared norms ``sq`` and their number ``used``; rows
        with an all-zero hidden vector are left out, as the core does."""
        rows = np.asarray(rows, dtype=np.int64)
        h = self.embed(X[rows], n_threads)
        keep = np.einsum("ij,ij->i", h, h) != 0
        h, Y = h[keep], Y[rows[keep]]
        labels, counts = np.unique(Y.indices, return_counts=True)
        return {
            "labels": labels.astype(np.int32),
            "sums": np.asarray(Y[:, labels].T @ h, dtype=np.float32),
            "counts": counts.astype(np.float64),
            "total": h.sum(axis=0, dtype=np.float64),
            "sq": float(np.einsum("ij,ij->", h, h, dtype=np.float64)),
            "used": int(keep.sum()),
        }

    @_writes
    def set_centroids(self, sums, logit_scale, n_threads):
        """``init_centroids`` from ``centroid_sums`` (added up over shares)."""
        _native.set_centroids(self._handle, sums["labels"], sums["sums"], sums["counts"],
                              sums["total"], sums["sq"], sums["used"], logit_scale, n_threads)

    @_writes
    def init_prior(self, X, Y, rows, n_threads):
        """Before training a sigmoid network whose output rows keep their
        random start (a dense output layer): each output's bias set so that
        the mean hidden vector of ``rows`` scores its label's prior log-odds
        over ``rows``, as the centroid start does for sampled layers.

        Sigmoid outputs are not shift-invariant. From zero biases every
        output says 1/2, so all but a row's few labels push the logits down
        together: on tf-idf text (23 outputs) 92% of the first gradient on
        the hidden vector points the same way for every row, and Adam's
        steps (lr each, whatever the gradient's size) on wide inputs' tiny
        first-layer rows turn that push into the hidden layer itself,
        killing a third of its units in one epoch while the biases have
        moved by 0.01 of the 3.6 they need.
        """
        self.set_prior(self.centroid_sums(X, Y, rows, n_threads))

    @_writes
    def set_prior(self, sums):
        """``init_prior`` from ``centroid_sums`` (added up over shares); only
        ``labels``, ``counts``, ``total`` and ``used`` are read."""
        used = float(sums["used"])
        if used <= 0:
            return
        last = self.n_layers - 1
        w, _ = self.get_params(last)
        # the core's prior_biases: labels no row carries count as half a row
        n = np.full(w.shape[0], 0.5)
        n[np.asarray(sums["labels"], dtype=np.int64)] = sums["counts"]
        prior = np.log(n / (used - n + 1.0))
        mean = np.asarray(sums["total"], dtype=np.float64) / used
        self.set_params(last, w, (prior - w.astype(np.float64) @ mean).astype(np.float32))

    def held_out_temperature(self, X, Y, fit_rows, held_rows, n_threads,
                             max_scores=TEMPERATURE_SCORES):
        """``fit_temperature`` of this network's logits for ``held_rows`` of
        ``X``, ``Y`` (at most ``max_scores`` logits, at least 16 rows), over
        the outputs that are labels of ``fit_rows``: the rows the output
        layer was made from (the others keep rows of another kind)."""
        present = np.zeros(Y.shape[1], dtype=bool)
        present[Y[fit_rows].indices] = True
        held_rows = held_rows[:max(16, max_scores // max(Y.shape[1], 1))]
        logits = self.predict_scores(X[held_rows], False, n_threads)
        return fit_temperature(logits[:, present], Y[held_rows][:, present])

    def finish_with_centroids(self, X, Y, rows, logit_scale, n_threads, held=None):
        """After training: each label's output row replaced by its centroid
        of the trained hidden vectors over ``rows`` (``init_from_centroids``),
        scaled by a temperature fitted on the ``held`` rows. Returns the
        temperature (1.0 without ``held``).

        The temperature is fitted (``fit_temperature``) on the scores of
        centroids computed without the held rows, for the labels those
        centroids have: training rows scored by centroids they are part of
        are fitted perfectly, so their likelihood grows without bound in the
        temperature. Then the centroids are computed from all ``rows``.
        Ranking is the centroids'; the scale only calibrates probabilities
        (both hash families are blind to a row's positive scale, so the
        tables stay as the centroids built them).
        """
        rows = np.asarray(rows, dtype=np.int64)
        t = 1.0
        if held is not None and len(held):
            held = np.asarray(held, dtype=np.int64)
            rest = np.setdiff1d(rows, held)
            self.init_from_centroids(X, Y, rest, logit_scale, n_threads)
            t = self.held_out_temperature(X, Y, rest, held, n_threads)
        self.init_from_centroids(X, Y, rows, logit_scale, n_threads)
        self.scale_output(t)
        return t

    def reshaped(self, K, range_pow, reservoir, n_threads):
        """A network with these weights and other DWTA table dimensions,
        its tables built from its rows. Frees this network's tables first,
        so the two never hold tables at once."""
        state = self.get_state(tables=False)
        state["config"] = dict(state["config"], hash_K=int(K), range_pow=int(range_pow),
                               reservoir=int(reservoir))
        _native.free(self._handle)
        self._handle = None
        return Network.from_state(state, n_threads)

    @_writes
    def scale_output(self, factor):
        """Multiply the output layer's weights and biases by ``factor`` > 0."""
        if factor != 1.0:
            last = self.n_layers - 1
            w, b = self.get_params(last)
            self.set_params(last, w * np.float32(factor), b * np.float32(factor))

    @_writes
    def set_frozen(self, frozen):
        _native.set_frozen(self._handle, frozen)

    @_writes
    def rebuild_tables(self, redraw, n_threads):
        _native.rebuild_tables(self._handle, redraw, n_threads)

    def get_params(self, layer):
        return _native.get_params(self._handle, layer)

    @_writes
    def set_params(self, layer, weights, bias):
        _native.set_params(self._handle, layer, weights, bias)

    def take_changed(self, layer):
        """Rows of ``layer`` training moved since the previous call."""
        return _native.take_changed(self._handle, layer)

    def get_rows(self, layer, rows):
        """(weights, bias) of ``rows`` of ``layer`` (layer 0: all its bias)."""
        return _native.get_rows(self._handle, layer, rows)

    @_writes
    def set_rows(self, layer, rows, weights, bias):
        _native.set_rows(self._handle, layer, rows, weights, bias)

    def hash_keys(self, vectors):
        return _native.hash_keys(self._handle, vectors)

    def candidates(self, X, row):
        return _native.candidates(self._handle, X, row)

    @property
    def seen(self):
        """Boolean per output: has it been a label of a training row."""
        return _native.get_seen(self._handle)

    @_writes
    def set_seen(self, seen):
        """Mark outputs as labels of training rows (``seen``, one bool each)."""
        _native.set_seen(self._handle, seen)

    @property
    def frozen(self):
        return bool(_native.get_counters(self._handle)["frozen"])

    def take_timings(self):
        """Wall seconds training spent by phase since the previous call
        (``_native.TIMING_NAMES``), for benchmarks."""
        return _native.take_timings(self._handle)

    def get_state(self, tables=True, output_rows=None, reuse=None):
        """Everything needed to rebuild this network, as plain values and arrays.

        Adam's moments are not kept: a restored network predicts exactly as
        this one and continues training with fresh moments. Without
        ``tables`` the hash tables are left out (``from_state`` then builds
        them from the rows). With ``output_rows`` (ids) the output layer's
        weights are those rows alone, listed under "output_rows": a partial
        state, which ``restore`` writes onto a network that holds the other
        rows as they should be. ``reuse`` keeps a copy up to date: a state
        that an earlier ``get_state(reuse=...)`` of this network returned
        and nothing else holds (``{}`` the first time), whose weight arrays
        are written in place, the sparse hidden layer's input rows only at
        the blocks Adam moved since (a 10,000-wide layer over 2^15 features
        is 1.3 GB of weights, of which an epoch of TREC moves 2%).
        """
        last = self.n_layers - 1
        n = last if output_rows is not None else self.n_layers
        if reuse is not None and output_rows is None:
            old = reuse.get("params", [])
            params = [_native.sync_params(self._handle, i, old[i] if i < len(old) else None)
                      for i in range(n)]
        else:
            params = [self.get_params(i) for i in range(n)]
        state = {"version": STATE_VERSION, "config": dict(self.config), "params": params}
        if output_rows is not None:
            rows = np.ascontiguousarray(output_rows, dtype=np.int32)
            params.append((self.get_rows(last, rows)[0], _native.get_bias(self._handle, last)))
            state["output_rows"] = rows
        state.update({
            "counters": _counters_to_array(_native.get_counters(self._handle)),
            "seen": self.seen,
            "center": _native.get_center(self._handle),
        })
        if tables:
            state["table_counts"], state["table_ids"] = _native.get_tables(self._handle)
            if self.sparse_hidden:
                state["hidden_table_counts"], state["hidden_table_ids"] = \
                    _native.get_hidden_tables(self._handle)
        return state

    @_writes
    def restore(self, state, n_threads=1):
        """Write ``get_state``'s output onto this network of the same
        configuration: weights, counters, seen flags, centre and tables
        (built from the rows when the state has none). A partial state
        (``output_rows``) replaces those output rows and leaves the others."""
        if state["config"] != self.config:
            raise ValueError("a network state restores onto a network of its configuration")
        last = self.n_layers - 1
        for i, (w, b) in enumerate(state["params"]):
            if i == last and "output_rows" in state:  # the other rows stay
                whole = self.get_params(last)[0]
                whole[state["output_rows"]] = w
                w = whole
            self.set_params(i, w, b)
        _native.set_counters(self._handle, _counters_from_array(state["counters"]))
        if "seen" in state:
            _native.set_seen(self._handle, state["seen"])
        if "center" in state:
            _native.set_center(self._handle, state["center"])
        if self.sparse_output and "table_counts" in state:
            _native.set_tables(self._handle, state["table_counts"], state["table_ids"])
        elif self.sparse_output:  # a state without tables: built from its rows
            self.rebuild_tables(False, n_threads)
        if self.sparse_hidden and "hidden_table_counts" in state:
            _native.set_hidden_tables(self._handle, state["hidden_table_counts"],
                                      state["hidden_table_ids"])
        elif self.sparse_hidden:  # built from the input layer's weights
            _native.rebuild_hidden_tables(self._handle, n_threads)
        return self

    @classmethod
    def from_state(cls, state, n_threads=1):
        """A network restored from ``get_state``'s output (without
        "table_counts" and "table_ids", its tables are built anew with
        ``n_threads``)."""
        version = state.get("version")
        if version not in range(1, STATE_VERSION + 1):
            raise ValueError(
                f"this model was saved with network state version {version}; this skbolt "
                f"reads versions 1 to {STATE_VERSION}. Refit it with this version."
            )
        if "output_rows" in state:
            raise ValueError("a partial network state (output_rows) restores only onto the "
                             "network it completes (Network.restore)")
        net = cls(state["config"], build_tables=False, n_threads=n_threads)  # set or built below
        return net.restore(dict(state, config=net.config), n_threads)
