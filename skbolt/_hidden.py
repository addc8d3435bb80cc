"""The LSH-sparse hidden layer's rules (issue 36): ``hidden_sparsity``
validated and resolved, and the shape and schedule of the layer's tables.

A sparse hidden layer computes, per sample, only the units its own hash
tables pick for the sample's (sparse) input; see ``csrc/hsparse.c``.
"""
import math
import numbers

import numpy as np

#: Tables of the sparse hidden layer (K = 1 bin code per key). Each table
#: is one bin of the input's permutation, so a sample collides with the
#: units whose strongest weight in that bin is the sample's strongest
#: feature there; 32 bins give a few hundred candidates at 10k units and
#: 2^15 features, more than the 50-500 the measured sparsities keep.
HIDDEN_TABLES = 32

#: Units of a block of the sparse hidden layer: the active units come in
#: whole aligned blocks of the largest power of two up to this that divides
#: the width (16 floats, one 64-byte cache line). Mirrors ``HS_BLOCK`` in
#: ``csrc/hsparse.c``.
HIDDEN_BLOCK = 16


def block_size(width):
    """Units per block of a sparse hidden layer ``width`` units wide."""
    b = HIDDEN_BLOCK
    while width % b:
        b //= 2
    return b


def active_units(sparsity, width):
    """Units a layer of ``width`` computes per sample at ``sparsity``:
    ``ceil(sparsity * width)`` rounded up to whole blocks (``width`` when
    that leaves no unit out, the layer then being dense)."""
    b = block_size(width)
    return min(width, -(-int(math.ceil(sparsity * width)) // b) * b)


def auto_hidden_sparsity(n_hidden):
    """Dense (1.0) for every hidden layer.

    Measured (``benchmarks/bench_sparse_hidden.py``: hashed 1-2-grams,
    2^15 features, 5 epochs, 2 threads; figures in benchmarks/README.md),
    with the active units in whole 16-unit blocks: a 10,000-wide layer at
    0.005 fits in 1.8-5.6x the dense default's time (best of three; the
    fixed cost of creating, hashing and checkpointing 1.3 GB of weights
    weighs most on the small sets) and predicts 1.6-4.3x slower per row.
    Only TREC scored higher sparse (10,000 at 0.05: 0.856 against 0.832 at
    5 epochs, in three times the fit), and the dense network given that
    time reached 0.866-0.870; MR and 20 Newsgroups scored lower at every
    width and sparsity. No two real sets with a win at equal fit time, so
    "auto" keeps today's network.
    """
    return (1.0,) * n_hidden


def learning_rate(dense_rate, sparsity, hidden):
    """Adam's step with a sparse hidden layer: ten times the dense rule's,
    at most 1e-2. A unit is active for a few samples in a hundred, so it
    takes that many fewer steps an epoch. Measured (``bench_sparse_hidden``'s
    features, 10,000 units, 5 epochs, test accuracy): TREC at 0.005,
    1e-3 / 3e-3 / 1e-2 / 3e-2: 0.628 / 0.796 / 0.842 / 0.848; at 0.05, 1e-2:
    0.876 (1e-3: 0.796); MR at 0.005, 1e-3 / 1e-2: 0.637 / 0.685. The dense
    default at 1e-2 scored TREC 0.870 and MR 0.715 (its rule, 1e-3: 0.832 /
    0.741), so the dense rule stays.
    """
    width = hidden[0]
    if active_units(sparsity[0], width) >= width:
        return dense_rate
    return min(1e-2, 10 * dense_rate)


def requested(value):
    """Whether a ``hidden_sparsity`` value asks for a layer below 1 (False
    for "auto" and for values that do not parse: ``hidden_sparsity``
    reports those)."""
    if isinstance(value, str):
        return False
    try:
        return bool(np.min(np.asarray(value, dtype=float)) < 1)
    except (TypeError, ValueError):
        return False


def _fraction(value):
    ok = (isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
          and 0 < value <= 1)
    if not ok:
        raise ValueError(
            f"hidden_sparsity must be a float in (0, 1] (the share of a hidden layer's units "
            f"computed per sample), a sequence of one such float per hidden layer, or "
            f"'auto'; got {value!r}")
    return float(value)


def hidden_sparsity(value, hidden):
    """``hidden_sparsity`` as one float per hidden layer of widths ``hidden``.

    Raises
    ------
    ValueError
        For values outside (0, 1], a sequence of the wrong length, or a
        sparse layer the core does not support (only the first and only
        hidden layer can be sparse).
    """
    n = len(hidden)
    if isinstance(value, str) and value == "auto":
        return auto_hidden_sparsity(n)
    if isinstance(value, str):
        _fraction(value)  # raises
    if np.ndim(value) == 0:
        values = (_fraction(value),) * n
    else:
        values = tuple(_fraction(v) for v in value)
        if len(values) != n:
            raise ValueError(
                f"hidden_sparsity has {len(values)} values for {n} hidden layers; give one "
                f"float per layer of hidden_layer_sizes={tuple(hidden)}, or a single float")
    sparse = [i for i, (s, w) in enumerate(zip(values, hidden)) if active_units(s, w) < w]
    if sparse and n > 1:
        raise ValueError(
            f"hidden_sparsity < 1 is supported for a single hidden layer only (the one that "
            f"reads the sparse input); got {values} for hidden_layer_sizes={tuple(hidden)}. "
            f"Use one hidden layer, or hidden_sparsity=1.0")
    return values


def hidden_params(sparsity, hidden, n_samples, n_features, batch):
    """Shape and schedule of the sparse hidden layer's tables (a part of
    ``hash_params_``), or None when the layer is dense.

    The rebuild reads every weight of the layer (n_features x width), which
    on 2^15 features and 10,000 units is hundreds of milliseconds, a whole
    epoch of sample passes on small sets; it runs twice an epoch (not on the
    output layer's schedule, which on text sets is every few batches).
    """
    width = hidden[0]
    active = active_units(sparsity[0], width)
    if active >= width:
        return None
    L = int(min(HIDDEN_TABLES, max(1, n_features)))
    bin_size = -(-n_features // L)
    range_pow = max(1, int(math.ceil(math.log2(max(bin_size, 2)))))
    per_bucket = -(-width // (1 << range_pow))
    n_batches = max(1, -(-n_samples // batch))
    return {
        "active_size": active,
        "block": block_size(width),
        "K": 1,
        "L": L,
        "range_pow": range_pow,
        "reservoir": int(min(65536, 4 * per_bucket)),
        "rebuild_interval": max(1, -(-n_batches // 2)),
    }


def config_keys(params):
    """The native configuration's ``hidden_*`` keys for ``hidden_params``."""
    if params is None:
        return {"hidden_active": 0, "hidden_K": 0, "hidden_L": 0, "hidden_range_pow": 0,
                "hidden_reservoir": 0, "hidden_rebuild_interval": 0}
    return {"hidden_active": params["active_size"], "hidden_K": params["K"],
            "hidden_L": params["L"], "hidden_range_pow": params["range_pow"],
            "hidden_reservoir": params["reservoir"],
            "hidden_rebuild_interval": params["rebuild_interval"]}
