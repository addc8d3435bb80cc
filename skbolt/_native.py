"""The only module that touches cffi.

It owns native handles (freed by ``ffi.gc``), turns numpy and scipy arrays
into the C structs without copying when their dtypes already match, and
turns C status codes into Python exceptions carrying the C message. cffi's
API mode releases the GIL during every call.
"""
import numpy as np
import scipy.sparse as sp

try:
    from ._bolt_cffi import ffi, lib
except ImportError as exc:  # pragma: no cover - depends on how skbolt was installed
    raise ImportError(
        "skbolt's compiled core (skbolt._bolt_cffi) is missing. If you are in a source "
        "checkout, either install it (pip install .) and run from another directory, or "
        "build it in place with: python build_ffi.py"
    ) from exc

_ERRORS = {lib.BOLT_EINVAL: ValueError, lib.BOLT_ENOMEM: MemoryError}
_INDEX_TYPES = {np.dtype(np.int32): lib.BOLT_INT32, np.dtype(np.int64): lib.BOLT_INT64}
_VALUE_TYPES = {np.dtype(np.float32): lib.BOLT_FLOAT32, np.dtype(np.float64): lib.BOLT_FLOAT64}
_LOSSES = {"softmax": lib.BOLT_LOSS_SOFTMAX, "sigmoid": lib.BOLT_LOSS_SIGMOID}
_HASHES = {"dwta": lib.BOLT_HASH_DWTA, "srp": lib.BOLT_HASH_SRP}
MAX_HIDDEN = lib.BOLT_MAX_HIDDEN
#: Fields of ``bolt_counters``, in the order a saved network state lists them.
COUNTER_NAMES = ("step", "since_rebuild", "since_redraw", "redraws", "frozen")
#: Fields of ``bolt_memory``.
MEMORY_PARTS = ("weights", "optimizer", "tables", "buffers", "total")


def _check(status):
    if status != lib.BOLT_OK:
        message = ffi.string(lib.bolt_last_error()).decode("utf-8", "replace")
        raise _ERRORS.get(status, RuntimeError)(message)


def max_threads():
    """Threads OpenMP would use by default here (honours threadpoolctl)."""
    return int(lib.bolt_max_threads())


def _ptr(ctype, array):
    return ffi.from_buffer(ctype, array) if array.size else ffi.NULL


class CSR:
    """A ``bolt_csr`` view of a CSR matrix, keeping its arrays alive.

    Index arrays of int32 or int64 and values of float32 or float64 pass
    through as they are; anything else is converted once.
    """

    def __init__(self, X, with_values=True):
        if not (sp.issparse(X) and X.format == "csr"):
            raise TypeError("expected a scipy.sparse CSR matrix")
        # the core reads indptr[n_rows] entries of indices and data and checks
        # order and bounds itself, but it cannot know the arrays' lengths
        n_rows = X.shape[0]
        if X.indptr.shape != (n_rows + 1,) or (
                n_rows and X.indptr[-1] > min(X.indices.size, X.data.size)):
            raise ValueError(
                f"not a valid CSR matrix: indptr has {X.indptr.size} entries for {n_rows} rows "
                f"and ends at {X.indptr[-1] if X.indptr.size else None}, but indices and data "
                f"hold {X.indices.size} and {X.data.size} entries"
            )
        indptr = np.ascontiguousarray(X.indptr)
        indices = np.ascontiguousarray(X.indices)
        if indptr.dtype not in _INDEX_TYPES:
            indptr = indptr.astype(np.int64)
        if indices.dtype not in _INDEX_TYPES:
            indices = indices.astype(np.int64)
        data = None
        if with_values:
            data = np.ascontiguousarray(X.data)
            if data.dtype not in _VALUE_TYPES:
                data = data.astype(np.float32)
        self._keep = (indptr, indices, data)
        self.c = ffi.new(
            "bolt_csr *",
            {
                "n_rows": X.shape[0],
                "n_cols": X.shape[1],
                "indptr": _ptr("char[]", indptr),
                "indices": _ptr("char[]", indices),
                "data": ffi.NULL if data is None else _ptr("char[]", data),
                "indptr_type": _INDEX_TYPES[indptr.dtype],
                "indices_type": _INDEX_TYPES[indices.dtype],
                "data_type": lib.BOLT_FLOAT32 if data is None else _VALUE_TYPES[data.dtype],
            },
        )


#: Configuration keys of the sparse first hidden layer (0 when dense).
HIDDEN_KEYS = ("hidden_active", "hidden_K", "hidden_L", "hidden_range_pow",
               "hidden_reservoir", "hidden_rebuild_interval")


def make_config(cfg):
    """A ``bolt_config`` from a dict of plain Python values."""
    hidden = tuple(int(h) for h in cfg["hidden_sizes"])
    if not 1 <= len(hidden) <= MAX_HIDDEN:
        raise ValueError(
            f"between 1 and {MAX_HIDDEN} hidden layers are supported, got {len(hidden)}")
    c = ffi.new("bolt_config *")
    c.n_features = int(cfg["n_features"])
    c.n_outputs = int(cfg["n_outputs"])
    c.n_hidden = len(hidden)
    for i, h in enumerate(hidden):
        c.hidden_sizes[i] = h
    c.loss = _LOSSES[cfg["loss"]]
    c.active_size = int(cfg["active_size"])
    c.hash_family = _HASHES[cfg["hash_family"]]
    c.hash_K = int(cfg["hash_K"])
    c.hash_L = int(cfg["hash_L"])
    c.range_pow = int(cfg["range_pow"])
    c.reservoir = int(cfg["reservoir"])
    c.rebuild_interval = int(cfg["rebuild_interval"])
    c.redraw_interval = int(cfg["redraw_interval"])
    c.batch_negatives = int(cfg["batch_negatives"])
    c.seed = int(cfg["seed"]) & 0xFFFFFFFFFFFFFFFF
    c.dropout = float(cfg["dropout"])
    c.beta1 = float(cfg["beta1"])
    c.beta2 = float(cfg["beta2"])
    c.epsilon = float(cfg["epsilon"])
    # the sparse hidden layer (issue 36); absent keys: a dense one
    for key in HIDDEN_KEYS:
        setattr(c, key, int(cfg.get(key, 0)))
    return c


def _int32_fits(cfg):
    for key in ("n_features", "n_outputs", "active_size"):
        if not 0 < int(cfg[key]) < 2**31:
            raise ValueError(f"{key}={cfg[key]} is outside what the core supports (1 .. 2**31 - 1)")


def estimate_memory(cfg, batch_size, nnz_per_row, n_threads):
    """Bytes by part (``MEMORY_PARTS``) of a network with ``cfg`` and one
    training call at their peak, as the core will allocate them."""
    _int32_fits(cfg)
    out = ffi.new("bolt_memory *")
    _check(lib.bolt_estimate_memory(make_config(cfg), int(batch_size), int(nnz_per_row),
                                    int(n_threads), out))
    return {part: int(getattr(out, part)) for part in MEMORY_PARTS}


def get_config(handle):
    """The configuration the core holds, as a dict like ``make_config`` takes
    (floats as their float32 values)."""
    c = ffi.new("bolt_config *")
    _check(lib.bolt_get_config(handle, c))
    return {
        "n_features": c.n_features,
        "n_outputs": c.n_outputs,
        "hidden_sizes": tuple(c.hidden_sizes[i] for i in range(c.n_hidden)),
        "loss": next(k for k, v in _LOSSES.items() if v == c.loss),
        "active_size": c.active_size,
        "hash_family": next((k for k, v in _HASHES.items() if v == c.hash_family), None),
        "hash_K": c.hash_K,
        "hash_L": c.hash_L,
        "range_pow": c.range_pow,
        "reservoir": c.reservoir,
        "rebuild_interval": c.rebuild_interval,
        "redraw_interval": c.redraw_interval,
        "batch_negatives": c.batch_negatives,
        "seed": int(c.seed),
        "dropout": float(c.dropout),
        "beta1": float(c.beta1),
        "beta2": float(c.beta2),
        "epsilon": float(c.epsilon),
        **{key: int(getattr(c, key)) for key in HIDDEN_KEYS},
    }


def create(cfg, build_tables=True, n_threads=1):
    """A new native network, freed when the returned handle is collected;
    without ``build_tables`` its hash tables start empty."""
    _int32_fits(cfg)
    out = ffi.new("bolt_network **")
    _check(lib.bolt_create(make_config(cfg), int(bool(build_tables)), int(n_threads), out))
    return ffi.gc(out[0], lib.bolt_free)


def free(handle):
    """Free a handle from ``create`` now rather than when it is collected;
    it must not be used after."""
    ffi.release(handle)


def train(handle, X, Y, rows, batch_size, learning_rate, n_threads):
    """One pass over ``rows`` of (X, Y); returns the summed loss."""
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    x, y = CSR(X), CSR(Y, with_values=False)
    loss = ffi.new("double *")
    _check(lib.bolt_train(handle, x.c, y.c, _ptr("int64_t[]", rows), rows.size,
                          int(batch_size), float(learning_rate), int(n_threads), loss))
    return float(loss[0])


def init_centroids(handle, X, Y, rows, logit_scale, n_threads):
    """Output rows of the labels of ``rows`` from their hidden centroids."""
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    x, y = CSR(X), CSR(Y, with_values=False)
    _check(lib.bolt_init_centroids(handle, x.c, y.c, _ptr("int64_t[]", rows), rows.size,
                                   float(logit_scale), int(n_threads)))


def set_centroids(handle, labels, sums, counts, total, sq, used, logit_scale, n_threads):
    """``init_centroids`` from label sums gathered elsewhere."""
    labels = np.ascontiguousarray(labels, dtype=np.int32)
    sums = np.ascontiguousarray(sums, dtype=np.float32)
    counts = np.ascontiguousarray(counts, dtype=np.float64)
    total = np.ascontiguousarray(total, dtype=np.float64)
    width = get_config(handle)["hidden_sizes"][-1]
    if sums.shape != (labels.size, width) or counts.shape != labels.shape or total.shape != (
            width,):
        raise ValueError(f"centroid sums need {labels.size} rows of {width} values, as many "
                         f"counts and a total of {width}")
    _check(lib.bolt_set_centroids(handle, _ptr("int32_t[]", labels), labels.size,
                                  _ptr("float[]", sums), _ptr("double[]", counts),
                                  _ptr("double[]", total), float(sq), int(used),
                                  float(logit_scale), int(n_threads)))


def gradient(handle, X, Y, rows, layer, n_threads):
    """Gradient of the mean loss over ``rows`` for one layer, and the loss."""
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    x, y = CSR(X), CSR(Y, with_values=False)
    n_rows, n_cols, n_bias = layer_shape(handle, layer)
    gw = np.empty((n_rows, n_cols), dtype=np.float32)
    gb = np.empty(n_bias, dtype=np.float32)
    loss = ffi.new("double *")
    _check(lib.bolt_gradient(handle, x.c, y.c, _ptr("int64_t[]", rows), rows.size, int(layer),
                             int(n_threads), _ptr("float[]", gw), _ptr("float[]", gb), loss))
    return gw, gb, float(loss[0])


def predict_topk(handle, X, k, candidates, n_threads):
    """Best ``k`` output ids and their probabilities for every row of X.

    ``candidates``: 0 scores every output; < 0 every output the hash tables
    retrieve; > 0 at most that many of them (those most tables retrieve).
    """
    x = CSR(X)
    k = int(k)
    ids = np.empty((X.shape[0], max(k, 0)), dtype=np.int32)
    scores = np.empty(ids.shape, dtype=np.float32)
    _check(lib.bolt_predict_topk(handle, x.c, k, int(candidates), int(n_threads),
                                 _ptr("int32_t[]", ids), _ptr("float[]", scores)))
    return ids, scores


def predict_scores(handle, X, probabilities, n_threads):
    """Every output for every row: logits, or probabilities."""
    x = CSR(X)
    out = np.empty((X.shape[0], get_config(handle)["n_outputs"]), dtype=np.float32)
    _check(lib.bolt_predict_scores(handle, x.c, int(bool(probabilities)), int(n_threads),
                                   _ptr("float[]", out)))
    return out


def embed(handle, X, n_threads):
    """Last hidden layer's activations for every row."""
    x = CSR(X)
    out = np.empty((X.shape[0], get_config(handle)["hidden_sizes"][-1]), dtype=np.float32)
    _check(lib.bolt_embed(handle, x.c, int(n_threads), _ptr("float[]", out)))
    return out


def layer_shape(handle, layer):
    rows, cols, bias = ffi.new("int64_t *"), ffi.new("int64_t *"), ffi.new("int64_t *")
    _check(lib.bolt_layer_shape(handle, int(layer), rows, cols, bias))
    return int(rows[0]), int(cols[0]), int(bias[0])


def get_params(handle, layer):
    n_rows, n_cols, n_bias = layer_shape(handle, layer)
    w = np.empty((n_rows, n_cols), dtype=np.float32)
    b = np.empty(n_bias, dtype=np.float32)
    _check(lib.bolt_get_params(handle, int(layer), _ptr("float[]", w), _ptr("float[]", b)))
    return w, b


def sync_params(handle, layer, out):
    """``get_params`` into ``out`` (a (weights, bias) pair an earlier
    ``sync_params`` or ``get_params`` of this network filled, None for a
    fresh pair): a layer that marks the blocks Adam moves copies only
    those moved since its previous sync. Returns the pair."""
    n_rows, n_cols, n_bias = layer_shape(handle, layer)
    fits = (out is not None and out[0].shape == (n_rows, n_cols) and out[1].shape == (n_bias,)
            and all(a.dtype == np.float32 and a.flags.c_contiguous and a.flags.writeable
                    for a in out))
    if fits:
        w, b = out
    else:
        w = np.empty((n_rows, n_cols), dtype=np.float32)
        b = np.empty(n_bias, dtype=np.float32)
    n = ffi.new("int64_t *")
    _check(lib.bolt_sync_params(handle, int(layer), _ptr("float[]", w), _ptr("float[]", b),
                                int(fits), n))
    return w, b


def get_bias(handle, layer):
    """A copy of a layer's bias."""
    b = np.empty(layer_shape(handle, layer)[2], dtype=np.float32)
    _check(lib.bolt_get_bias(handle, int(layer), _ptr("float[]", b)))
    return b


def take_changed(handle, layer):
    """Ids of the rows of ``layer`` Adam moved since the previous call."""
    n_rows = layer_shape(handle, layer)[0]
    rows = np.empty(n_rows, dtype=np.int32)
    n = ffi.new("int64_t *")
    _check(lib.bolt_take_changed(handle, int(layer), _ptr("int32_t[]", rows), n_rows, n))
    return rows[:n[0]].copy()


def _row_bias_len(handle, layer, n):
    return n if layer > 0 else layer_shape(handle, layer)[2]


def get_rows(handle, layer, rows):
    """(weights, bias) of some rows of ``layer`` (layer 0: its whole bias)."""
    rows = np.ascontiguousarray(rows, dtype=np.int32)
    cols = layer_shape(handle, layer)[1]
    w = np.empty((rows.size, cols), dtype=np.float32)
    b = np.empty(_row_bias_len(handle, layer, rows.size), dtype=np.float32)
    _check(lib.bolt_get_rows(handle, int(layer), _ptr("int32_t[]", rows), rows.size,
                             _ptr("float[]", w), _ptr("float[]", b)))
    return w, b


def set_rows(handle, layer, rows, weights, bias):
    """Write some rows of ``layer`` (``get_rows``' layout)."""
    rows = np.ascontiguousarray(rows, dtype=np.int32)
    cols = layer_shape(handle, layer)[1]
    w = np.ascontiguousarray(weights, dtype=np.float32)
    b = np.ascontiguousarray(bias, dtype=np.float32)
    if w.shape != (rows.size, cols) or b.shape != (_row_bias_len(handle, layer, rows.size),):
        raise ValueError(f"rows of layer {layer} need weights of shape ({rows.size}, {cols}) "
                         "and one bias per row (layer 0: its whole bias)")
    _check(lib.bolt_set_rows(handle, int(layer), _ptr("int32_t[]", rows), rows.size,
                             _ptr("float[]", w), _ptr("float[]", b)))


def set_params(handle, layer, weights, bias):
    n_rows, n_cols, n_bias = layer_shape(handle, layer)
    w = np.ascontiguousarray(weights, dtype=np.float32)
    b = np.ascontiguousarray(bias, dtype=np.float32)
    if w.shape != (n_rows, n_cols) or b.shape != (n_bias,):
        raise ValueError(
            f"layer {layer} expects weights of shape {(n_rows, n_cols)} and bias of shape "
            f"{(n_bias,)}, got {w.shape} and {b.shape}"
        )
    _check(lib.bolt_set_params(handle, int(layer), _ptr("float[]", w), _ptr("float[]", b)))


def get_counters(handle):
    """The training counters by name (``COUNTER_NAMES``)."""
    c = ffi.new("bolt_counters *")
    _check(lib.bolt_get_counters(handle, c))
    return {name: int(getattr(c, name)) for name in COUNTER_NAMES}


#: Fields of ``bolt_timings``.
TIMING_NAMES = ("samples", "missed_labels", "update_output", "update_hidden", "update_input",
                "tables", "setup", "batches")


def take_timings(handle):
    """Training's wall seconds by phase (``TIMING_NAMES``; ``batches`` is a
    count) since the previous call, which the core then zeroes."""
    t = ffi.new("bolt_timings *")
    _check(lib.bolt_take_timings(handle, t))
    return {name: (int if name == "batches" else float)(getattr(t, name))
            for name in TIMING_NAMES}


def set_counters(handle, counters):
    """Restores counters given by name, as ``get_counters`` returns them."""
    missing = [name for name in COUNTER_NAMES if name not in counters]
    if missing:
        raise ValueError(f"counters lack {missing}")
    c = ffi.new("bolt_counters *")
    for name in COUNTER_NAMES:
        value = int(counters[name])
        if not -(2**63) <= value < 2**63 or (name == "frozen" and not -(2**31) <= value < 2**31):
            raise ValueError(f"counter {name}={value} is out of range")
        setattr(c, name, value)
    _check(lib.bolt_set_counters(handle, c))


def get_seen(handle):
    """Boolean per output: has it been a label of a training row."""
    out = np.empty(get_config(handle)["n_outputs"], dtype=np.uint8)
    _check(lib.bolt_get_seen(handle, _ptr("uint8_t[]", out)))
    return out.astype(bool)


def set_seen(handle, seen):
    n_outputs = get_config(handle)["n_outputs"]
    s = np.ascontiguousarray(seen, dtype=np.uint8)
    if s.shape != (n_outputs,):
        raise ValueError(f"expected {n_outputs} seen flags, got shape {s.shape}")
    _check(lib.bolt_set_seen(handle, _ptr("uint8_t[]", s)))


def get_center(handle):
    """The vector hidden activations are hashed less."""
    out = np.empty(get_config(handle)["hidden_sizes"][-1], dtype=np.float32)
    _check(lib.bolt_get_center(handle, _ptr("float[]", out)))
    return out


def set_center(handle, center):
    width = get_config(handle)["hidden_sizes"][-1]
    c = np.ascontiguousarray(center, dtype=np.float32)
    if c.shape != (width,):
        raise ValueError(f"expected a hashing centre of {width} values, got shape {c.shape}")
    _check(lib.bolt_set_center(handle, _ptr("float[]", c)))


def release_buffers(handle):
    _check(lib.bolt_release_buffers(handle))


def set_frozen(handle, frozen):
    _check(lib.bolt_set_frozen(handle, int(bool(frozen))))


def rebuild_tables(handle, redraw, n_threads):
    _check(lib.bolt_rebuild_tables(handle, int(bool(redraw)), int(n_threads)))


def _get_tables(size_fn, get_fn, handle):
    nb, ni = ffi.new("int64_t *"), ffi.new("int64_t *")
    _check(size_fn(handle, nb, ni))
    counts = np.empty(nb[0], dtype=np.uint32)
    ids = np.empty(ni[0], dtype=np.int32)
    if nb[0]:
        _check(get_fn(handle, _ptr("uint32_t[]", counts), ffi.from_buffer("int32_t[]", ids)))
    return counts, ids


def _set_tables(size_fn, set_fn, handle, counts, ids, what):
    counts = np.ascontiguousarray(counts, dtype=np.uint32)
    ids = np.ascontiguousarray(ids, dtype=np.int32)
    nb, ni = ffi.new("int64_t *"), ffi.new("int64_t *")
    _check(size_fn(handle, nb, ni))
    if counts.shape != (nb[0],):
        raise ValueError(f"expected {nb[0]} {what} counts, got {counts.shape[0]}")
    _check(set_fn(handle, _ptr("uint32_t[]", counts), _ptr("int32_t[]", ids), ids.size))


def get_tables(handle):
    """(counts, ids) of every bucket; empty arrays for a dense output layer."""
    return _get_tables(lib.bolt_table_size, lib.bolt_get_tables, handle)


def set_tables(handle, counts, ids):
    _set_tables(lib.bolt_table_size, lib.bolt_set_tables, handle, counts, ids, "bucket")


def hash_keys(handle, vectors):
    """Table keys (n x L) of vectors as wide as the last hidden layer."""
    cfg = get_config(handle)
    width, n_tables = cfg["hidden_sizes"][-1], cfg["hash_L"]
    v = np.ascontiguousarray(vectors, dtype=np.float32)
    if v.ndim != 2 or v.shape[1] != width:
        raise ValueError(f"expected vectors of shape (n, {width}), got {v.shape}")
    keys = np.empty((v.shape[0], n_tables), dtype=np.uint32)
    _check(lib.bolt_hash_keys(handle, _ptr("float[]", v), v.shape[0], _ptr("uint32_t[]", keys)))
    return keys


def candidates(handle, X, row):
    """Deduplicated ids the tables retrieve for one row of X."""
    cfg = get_config(handle)
    cap = min(cfg["hash_L"] * cfg["reservoir"], cfg["n_outputs"])
    x = CSR(X)
    out = np.empty(cap, dtype=np.int32)
    n = ffi.new("int64_t *")
    _check(lib.bolt_candidates(handle, x.c, int(row), _ptr("int32_t[]", out), cap, n))
    return out[: min(int(n[0]), cap)]


def get_hidden_tables(handle):
    """(counts, ids) of the sparse hidden layer's buckets; empty when dense."""
    return _get_tables(lib.bolt_hidden_table_size, lib.bolt_get_hidden_tables, handle)


def set_hidden_tables(handle, counts, ids):
    _set_tables(lib.bolt_hidden_table_size, lib.bolt_set_hidden_tables, handle, counts, ids,
                "hidden bucket")


def rebuild_hidden_tables(handle, n_threads):
    _check(lib.bolt_rebuild_hidden_tables(handle, int(n_threads)))


def set_hidden_exact(handle, exact):
    _check(lib.bolt_set_hidden_exact(handle, int(bool(exact))))


def hidden_active(handle, X, row, step):
    """The active units the sparse hidden layer picks for ``row`` of X at
    training step ``step`` (0: inference); empty when the layer is dense."""
    cfg = get_config(handle)
    cap = max(cfg["hidden_active"], 1)
    out = np.empty(cap, dtype=np.int32)
    n = ffi.new("int64_t *")
    m = CSR(X)
    _check(lib.bolt_hidden_active(handle, m.c, int(row), int(step),
                                  ffi.from_buffer("int32_t[]", out), cap, n))
    return out[:min(n[0], cap)]
