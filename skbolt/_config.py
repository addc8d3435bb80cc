"""Resolution of "auto" hyper-parameters.

Each rule starts from BOLT's published defaults (see DESIGN.md) and is
changed only where a measurement here showed a better choice; such places
say what was measured.
"""
import math
import os

import numpy as np

def is_auto(value):
    """Whether a parameter value is the string "auto"."""
    return isinstance(value, str) and value == "auto"


def bolt_output_sparsity(n_outputs):
    """Fraction of output neurons active per sample, by BOLT's table."""
    for limit, sparsity in ((450, 1.0), (900, 0.2), (1800, 0.1), (4000, 0.05),
                            (10_000, 0.02), (20_000, 0.01)):
        if n_outputs < limit:
            return sparsity
    return 0.005


def dwta_tables(n_outputs, sparsity):
    """BOLT's DWTA table shape for ``n_outputs`` neurons at ``sparsity``.

    Returns (K, L, range_pow, reservoir): K codes of 3 bits per key fill
    range_pow = 3K bits, and L tables make the expected candidate count
    L * n_outputs / 2**range_pow about the active set size.
    """
    K = int(min(8, max(2, round(math.log2(128.0 / sparsity) / 3.0))))
    range_pow = 3 * K
    L = max(1, int(round(sparsity * 2**range_pow)))
    reservoir = 4 * max(n_outputs // 2**range_pow, 1)
    return K, L, range_pow, reservoir


def srp_tables(n_outputs, sparsity):
    """Table shape for signed random projections: 1 bit per code.

    The same bucket count and table count as DWTA, so the two families
    retrieve candidate sets of similar size; K = range_pow bits per key.
    """
    _, L, range_pow, reservoir = dwta_tables(n_outputs, sparsity)
    return range_pow, L, range_pow, reservoir


#: Below this many training rows a network trains for many epochs and
#: keeps the learning rate lower.
SMALL_DATA = 20_000

#: Passes over its rows that a rare label needs before its output neuron
#: has learned it (see ``rare_label_share`` and the epoch rule in ``resolve``).
LABEL_VISITS = 30


def rare_label_share(Y, quantile=0.25):
    """Share of the rows that carry a rare label, as labels occur.

    Labels sorted from rarest: the row count of the label where the rarest
    ``quantile`` of all label occurrences ends, divided by the number of
    rows. On power-law label sets this is what decides how many epochs an
    extreme classifier needs, since each epoch shows such a label only that
    many times; 1.0 when ``Y`` has no labels.

    Parameters
    ----------
    Y : CSR matrix of shape (n_samples, n_outputs)
        Label indicator.
    quantile : float
        Share of label occurrences counted as rare.
    """
    # O(labels present), not O(n_outputs): this runs before the memory check
    counts = np.sort(np.unique(Y.indices, return_counts=True)[1])
    if counts.size == 0:
        return 1.0
    cumulative = np.cumsum(counts) / counts.sum()
    rare = counts[min(counts.size - 1, int(np.searchsorted(cumulative, quantile)))]
    return float(rare) / max(Y.shape[0], 1)


def auto_dropout(n_samples):
    """Dropout on the hidden layers (not part of BOLT): 0.5.

    Measured here, test P@1 with the other rules fixed: Bibtex (4,880 rows)
    0.63 without, 0.646 with 0.5 and width 512 (mean of 3 seeds); 100k
    synthetic classes 0.583 (256 wide, none) -> 0.640 (512 wide, 0.5);
    10k synthetic classes 0.78 -> 0.83 likewise. A 20-point grid picked 0.5
    on all four data sets of benchmarks/bench_autotune.py.
    """
    return 0.5


def auto_hidden(n_samples):
    """Hidden width: 512, the top of BOLT's 256-512 range (see auto_dropout;
    the wider layer is what dropout needs to pay off)."""
    return (512,)


def auto_learning_rate(n_samples):
    """Adam's step: BOLT's 1e-3 on small data (trained for many epochs),
    2e-3 from SMALL_DATA rows, where the epoch rule gives 5 epochs.
    Measured at 5 epochs: 100k synthetic classes P@1 0.514 (1e-3) vs 0.583
    (2e-3); 10k classes 0.69 vs 0.78."""
    return 1e-3 if n_samples < SMALL_DATA else 2e-3


def inference_candidates(active):
    """Outputs scored per query by sparse inference (not part of BOLT).

    Sparse inference ranks what the tables retrieve by how many tables
    returned it and scores only the best of them. Measured here after 3-5
    epochs, P@1 on held-out rows, scoring all retrieved vs a quarter of the
    training active set: synthetic 100k classes 0.484 -> 0.494 (0.72 s ->
    0.42 s for 10k rows), synthetic 10k classes 0.698 -> 0.731 (0.42 s ->
    0.26 s). The count is a vote of the tables, and a good one.
    """
    return max(32, active // 4)


#: Share of training time that table rebuilds may take.
REBUILD_BUDGET = 0.1


def rebuild_interval(n_samples, n_outputs, active, batch_size, width, nnz_per_row,
                     family, K, L):
    """Batches between re-insertions of every output neuron into the tables.

    BOLT rebuilds every 1/100 epoch (1/20 below 100k samples). A rebuild
    hashes every output neuron, so with many outputs and small batches that
    schedule spends most of an epoch rebuilding (measured here: 100k
    classes, batch 1024, rebuilds took 3.5x the time of the training
    itself). We rebuild at BOLT's pace only while rebuilds cost at most
    REBUILD_BUDGET of the training work between them, by the count of
    memory touches each does.
    """
    n_batches = max(1, math.ceil(n_samples / batch_size))
    bolt = max(1, int(round(n_batches / (100 if n_samples >= 100_000 else 20))))
    per_code = 8 if family == "dwta" else max(1, (width + 2) // 3)
    rebuild_cost = n_outputs * (K * L * per_code + L)
    batch_cost = batch_size * (4 * active * width + 4 * nnz_per_row * width + K * L * per_code)
    return max(bolt, int(math.ceil(rebuild_cost / (REBUILD_BUDGET * batch_cost))))


#: Share of the available memory a fit may plan to use by default.
MEMORY_FRACTION = 0.75

_UNITS = {"": 1, "B": 1, "K": 1e3, "KB": 1e3, "M": 1e6, "MB": 1e6, "G": 1e9, "GB": 1e9,
          "T": 1e12, "TB": 1e12, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}


def memory_budget(max_memory):
    """Bytes a fit may use: ``max_memory`` as bytes or a string like "4GB";
    "auto" is MEMORY_FRACTION of the memory available now."""
    if is_auto(max_memory) or max_memory is None:
        avail = available_memory()
        return None if avail is None else int(MEMORY_FRACTION * avail)
    if isinstance(max_memory, str):
        text = max_memory.strip().upper().replace(" ", "")
        number = text.rstrip("KMGTIB")
        unit = text[len(number):]
        try:
            value = float(number) * _UNITS[unit]
        except (ValueError, KeyError):
            raise ValueError(
                f"max_memory={max_memory!r} is not a size; use bytes or a string such as "
                "'512MB', '4GB' or '2GiB'"
            ) from None
    elif isinstance(max_memory, (int, float, np.integer, np.floating)) and not isinstance(max_memory, bool):
        value = float(max_memory)
    else:
        raise ValueError(f"max_memory must be bytes, a string such as '4GB', or 'auto'; got {max_memory!r}")
    if not value > 0:
        raise ValueError(f"max_memory must be positive, got {max_memory!r}")
    return int(value)


def fit_to_memory(cfg, estimate, budget):
    """Shrink the hash tables until ``estimate(cfg)`` fits ``budget`` bytes.

    The reservoir goes first (it mostly holds empty slots), then the bucket
    count, then the number of tables; weights and batch buffers are the
    user's choice and are never shrunk. Returns (cfg, bytes needed).

    Raises
    ------
    MemoryError
        When even the smallest tables do not fit, naming both figures.
    """
    cfg = dict(cfg)
    need = estimate(cfg)
    sparse = cfg["active_size"] < cfg["n_outputs"]
    while budget is not None and need > budget:
        if sparse and cfg["reservoir"] > 1:
            cfg["reservoir"] = max(1, cfg["reservoir"] // 2)
        elif sparse and cfg["range_pow"] > 10:
            cfg["range_pow"] -= 1
        elif sparse and cfg["hash_L"] > 1:
            cfg["hash_L"] = max(1, cfg["hash_L"] // 2)
        else:
            raise MemoryError(
                f"this configuration needs about {need / 1e9:.2f} GB (weights, Adam state, "
                f"hash tables and training buffers) but the memory budget is "
                f"{budget / 1e9:.2f} GB; reduce hidden_layer_sizes, output_sparsity or "
                "batch_size, or raise max_memory"
            )
        need = estimate(cfg)
    return cfg, need


def memory_breakdown(cfg, total, budget):
    """Bytes by part of a network configuration whose total is known."""
    widths = (cfg["n_features"], *cfg["hidden_sizes"], cfg["n_outputs"])
    params = sum(a * b + b for a, b in zip(widths[:-1], widths[1:]))
    tables = 0
    if cfg["active_size"] < cfg["n_outputs"]:
        tables = (cfg["hash_L"] << cfg["range_pow"]) * (cfg["reservoir"] + 1) * 4
        tables += cfg["n_outputs"] * 4
    parts = {"weights": 4 * params, "optimizer": 8 * params, "tables": tables}
    parts["buffers"] = max(0, total - sum(parts.values()))
    parts["total"] = total
    parts["budget"] = budget
    return parts


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


def resolve(params, n_samples, n_features, n_outputs, nnz_per_row, multilabel,
            label_share=None):
    """Resolve a classifier's parameters against its training data.

    Parameters
    ----------
    params : dict
        The estimator's ``get_params()``.
    n_samples, n_features, n_outputs : int
        Shape of the training problem.
    nnz_per_row : float
        Mean nonzeros per input row.
    multilabel : bool
        Whether rows may carry several labels.
    label_share : float, optional
        ``rare_label_share`` of the labels; without it the epoch rule
        counts sample visits only.

    Returns
    -------
    dict
        Concrete values for every hyper-parameter, keyed by the estimator's
        parameter names, plus ``hash_params`` (table shape and schedule).
    """
    out = {}
    hidden = params["hidden_layer_sizes"]
    if is_auto(hidden):
        hidden = auto_hidden(n_samples)
    elif np.isscalar(hidden):
        hidden = (hidden,)
    hidden = tuple(hidden)
    if not hidden or any(not isinstance(h, (int, np.integer)) or h < 1 for h in hidden):
        raise ValueError(f"hidden_layer_sizes must be positive integers, got {params['hidden_layer_sizes']!r}")
    out["hidden_layer_sizes"] = tuple(int(h) for h in hidden)

    batch = params["batch_size"]
    if is_auto(batch):
        batch = 256 if n_samples < 50_000 else (1024 if n_samples < 500_000 else 2048)
    if not isinstance(batch, (int, np.integer)) or batch < 1:
        raise ValueError(f"batch_size must be a positive integer or 'auto', got {params['batch_size']!r}")
    out["batch_size"] = int(min(batch, n_samples))

    lr = params["learning_rate_init"]
    if is_auto(lr):
        lr = auto_learning_rate(n_samples)
    if not isinstance(lr, (int, float, np.floating, np.integer)) or not (0 < lr < math.inf):
        raise ValueError(f"learning_rate_init must be a positive number or 'auto', got {params['learning_rate_init']!r}")
    out["learning_rate_init"] = float(lr)

    epochs = params["max_iter"]
    if is_auto(epochs):
        # about 120k sample visits (Bibtex: 25 epochs, where P@1 peaks with
        # the small-data network above), and enough that a rare label is
        # seen LABEL_VISITS times; between 5 and 50 passes. Not part of
        # BOLT: the second term is what extreme label sets need. Measured
        # here (bench_autotune.py --epoch-curve), test P@1 by epoch with the
        # other rules fixed: synthetic 10k classes (30k rows, rare labels on
        # 4) 0.828 at 5 epochs, 0.885 at 8 (this rule), 0.887 at 10, 0.892
        # at 15; 100k classes (50k rows, rare labels on 2) 0.642 at 5, 0.745
        # at 10, 0.761 at 15 (this rule), 0.762 at 20.
        epochs = max(5, math.ceil(120_000 / max(n_samples, 1)))
        if label_share:
            epochs = max(epochs, math.ceil(LABEL_VISITS / (label_share * max(n_samples, 1))))
        epochs = int(min(50, epochs))
    if not isinstance(epochs, (int, np.integer)) or epochs < 1:
        raise ValueError(f"max_iter must be a positive integer or 'auto', got {params['max_iter']!r}")
    out["max_iter"] = int(epochs)

    sparsity = params["output_sparsity"]
    if is_auto(sparsity):
        sparsity = bolt_output_sparsity(n_outputs)
    if not isinstance(sparsity, (int, float, np.floating, np.integer)) or not 0 < sparsity <= 1:
        raise ValueError(f"output_sparsity must be in (0, 1] or 'auto', got {params['output_sparsity']!r}")
    out["output_sparsity"] = float(sparsity)

    family = params["hash_function"]
    if is_auto(family):
        family = "dwta"
    if family not in ("dwta", "srp"):
        raise ValueError(f"hash_function must be 'dwta', 'srp' or 'auto', got {family!r}")
    out["hash_function"] = family

    loss = params["loss"]
    if is_auto(loss):
        loss = "softmax"
    if loss not in ("softmax", "sigmoid"):
        raise ValueError(f"loss must be 'softmax', 'sigmoid' or 'auto', got {loss!r}")
    out["loss"] = loss

    drop = params.get("dropout", "auto")
    if is_auto(drop):
        drop = auto_dropout(n_samples)
    if not isinstance(drop, (int, float, np.floating, np.integer)) or not 0 <= drop < 1:
        raise ValueError(f"dropout must be in [0, 1) or 'auto', got {params.get('dropout')!r}")
    out["dropout"] = float(drop)

    active = max(1, int(math.ceil(out["output_sparsity"] * n_outputs)))
    sparse_output = active < n_outputs
    inference = params["sparse_inference"]
    if is_auto(inference):
        inference = sparse_output
    if not isinstance(inference, (bool, np.bool_)):
        raise ValueError(f"sparse_inference must be True, False or 'auto', got {inference!r}")
    out["sparse_inference"] = bool(inference) and sparse_output

    tables = (dwta_tables if family == "dwta" else srp_tables)(n_outputs, out["output_sparsity"])
    K, L, range_pow, reservoir = tables
    n_batches = max(1, math.ceil(n_samples / out["batch_size"]))
    rebuild = rebuild_interval(n_samples, n_outputs, active, out["batch_size"],
                               out["hidden_layer_sizes"][-1], nnz_per_row, family, K, L)
    out["hash_params"] = {
        "active_size": active if sparse_output else n_outputs,
        "K": K,
        "L": L,
        "range_pow": range_pow,
        "reservoir": reservoir,
        "rebuild_interval": rebuild,
        "redraw_interval": max(rebuild, n_batches // 4),
        "freeze_after": 1,
        "inference_candidates": inference_candidates(active),
    }
    return out


def network_config(resolved, n_features, n_outputs, seed):
    """The native network configuration for resolved parameters."""
    hp = resolved["hash_params"]
    return {
        "n_features": n_features,
        "n_outputs": n_outputs,
        "hidden_sizes": resolved["hidden_layer_sizes"],
        "loss": resolved["loss"],
        "active_size": hp["active_size"],
        "hash_family": resolved["hash_function"],
        "hash_K": hp["K"],
        "hash_L": hp["L"],
        "range_pow": hp["range_pow"],
        "reservoir": hp["reservoir"],
        "rebuild_interval": hp["rebuild_interval"],
        "redraw_interval": hp["redraw_interval"],
        "seed": seed,
        "dropout": resolved["dropout"],
        "beta1": 0.9,
        "beta2": 0.999,
        "epsilon": 1e-7,
    }
