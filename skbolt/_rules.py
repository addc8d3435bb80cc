"""The "auto" rules: resolution of "auto" hyper-parameters against the data.

Each rule starts from BOLT's published defaults (see DESIGN.md) and is
changed only where a measurement here showed a better choice; such places
say what was measured.
"""
import dataclasses
import math
import numbers
from dataclasses import dataclass, field

import numpy as np

from . import _hidden


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


#: Fewest hash tables of a sampled layer. Our rules' network without
#: search on synth10k with L forced (``benchmarks/bench_retrieval.py
#: --experiments tables``): L = 82 (BOLT's) / 164 / 256 / 328 / 656, sparse
#: P@1 0.677 / 0.712 / 0.731 / 0.743 / 0.763, fit 13.9 / 13.7 / 15.7 / 16.0
#: / 18.6 s, 30 / 36 / 40 / 44 / 60 us per row. In bench_xc_peers (curves,
#: last epoch) 256 tables gave synth100k_tail 0.618 -> 0.641, synth100k
#: 0.701 -> 0.711 (164 tables before), held-out heldout_synth 0.712 ->
#: 0.755; the autotuned default already chose 328 there: +0.0-0.7 points.
#: Costs: bench_torch synth100k top-5 0.244-0.297 s -> 0.311-0.358 s (before
#: issue 10: 0.342-0.359), peak RSS 879 -> 1,029 MB.
MIN_TABLES = 256


def dwta_tables(n_outputs, sparsity):
    """DWTA table shape for ``n_outputs`` neurons at ``sparsity``.

    Returns (K, L, range_pow, reservoir): K codes of 3 bits per key fill
    range_pow = 3K bits. BOLT's shape takes K from the sparsity alone and
    L tables so that L * n_outputs / 2**range_pow, the expected candidate
    count, is about the active set. Here K is also capped so that buckets
    hold at least one output on average: with fewer outputs than buckets
    most buckets a query reaches are empty. Rebuilding only the tables of
    the default fit (``benchmarks/bench_retrieval.py --experiments
    shapes``), P@1 at 64 scored candidates: synth10k (4,898 outputs) K=5
    0.698 (49 candidates) vs K=4 0.742 (361) at L=328, for the same hashing
    work; synth100k_tail (8,902 outputs) 0.631 vs 0.658. BOLT's L swings
    between 51 and 328 with the rounding of its K (0.02 gives 82 tables,
    0.01 328, 0.005 164), and each table is one more chance for the best
    class to share a bucket with the query, so L is at least MIN_TABLES
    (no more than a table's buckets).
    """
    K_bolt = int(min(8, max(2, round(math.log2(128.0 / sparsity) / 3.0))))
    K = int(min(K_bolt, max(2, math.floor(math.log2(max(n_outputs, 2)) / 3.0))))
    range_pow = 3 * K
    L = max(min(MIN_TABLES, 2**range_pow), int(round(sparsity * 2 ** (3 * K_bolt))))
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
#: 30 before output rows started from label centroids (CENTROID_LOGIT);
#: since then 10 gives the same P@1 at a fraction of the time, default fit
#: (autotuned) measured here: synthetic 100k-class space, 24k rows, 30 -> 10
#: epochs, 127.7 s -> 29.1 s, P@1 0.712 -> 0.711; synthetic 10k classes
#: 8 -> 5 epochs, 16.1 s -> 9.6 s, 0.890 -> 0.888.
LABEL_VISITS = 10


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
    return rare_share_of_counts(np.unique(Y.indices, return_counts=True)[1], Y.shape[0],
                                quantile)


def rare_share_of_counts(counts, n_rows, quantile=0.25):
    """``rare_label_share`` from the row counts of the labels present and
    the number of rows (shares of the rows add their counts up:
    ``skbolt.dask``)."""
    counts = np.sort(np.asarray(counts))
    if counts.size == 0:
        return 1.0
    cumulative = np.cumsum(counts) / counts.sum()
    rare = counts[min(counts.size - 1, int(np.searchsorted(cumulative, quantile)))]
    return float(rare) / max(n_rows, 1)


def auto_dropout(n_samples):
    """Dropout on the hidden layers (not part of BOLT): 0.5.

    Measured here, test P@1 with the other rules fixed: Bibtex (4,880 rows)
    0.63 without, 0.646 with 0.5 and width 512 (mean of 3 seeds); 100k
    synthetic classes 0.583 (256 wide, none) -> 0.640 (512 wide, 0.5);
    10k synthetic classes 0.78 -> 0.83 likewise. A 20-point grid picked 0.5
    on all four data sets of benchmarks/bench_autotune.py.
    """
    return 0.5


#: Input-layer weights (features x width) above which the hidden layer is
#: narrowed, when the classes allow it (``auto_hidden``).
INPUT_WEIGHTS = 2**25


def auto_hidden(n_samples, n_features=0, n_outputs=0):
    """Hidden width: 512, the top of BOLT's 256-512 range (see auto_dropout;
    the wider layer is what dropout needs to pay off), narrowed where the
    input layer would be large and the classes are few.

    The input layer and its two Adam moments take 12 bytes per feature and
    unit, and every input row a batch touches costs an Adam step per unit:
    a tf-idf bigram vocabulary of 231k features at 512 units is 1.4 GB and
    most of the fit's time, for 20 classes that a linear model separates.
    Above INPUT_WEIGHTS the width drops to the largest power of two under
    that budget, but never below twice the classes (rounded up to a power
    of two, at least 64), so extreme label spaces keep their width.
    Measured (``benchmarks/bench_real.py --sets 20newsgroups trec
    --systems skbolt --skbolt-params autotune=False
    "hidden_layer_sizes=(N,)"``): 20 Newsgroups (1-2-grams, 231k
    features) at 512 / 256 / 128 / 64 units, accuracy 0.710 / 0.709 /
    0.706 / 0.706, fit 20.4 / 10.2 / 6.0 / 3.0 s, peak RSS 2,452 / 1,325 /
    761 / 479 MB; TREC (7.3k features, under the budget) 0.890 / 0.890 /
    0.894 / 0.882.
    """
    width = 512
    if n_features * width > INPUT_WEIGHTS:
        cap = 2 ** int(math.floor(math.log2(INPUT_WEIGHTS / n_features)))
        need = 2 ** int(math.ceil(math.log2(max(2 * n_outputs, 64))))
        width = min(width, max(cap, need))
    return (width,)


def auto_learning_rate(n_samples):
    """Adam's step: BOLT's 1e-3 on small data (trained for many epochs),
    2e-3 from SMALL_DATA rows, where the epoch rule gives 5 epochs.
    Measured at 5 epochs: 100k synthetic classes P@1 0.514 (1e-3) vs 0.583
    (2e-3); 10k classes 0.69 vs 0.78."""
    return 1e-3 if n_samples < SMALL_DATA else 2e-3


#: Fewest outputs single-label sparse inference scores per query.
MIN_CANDIDATES = 64


def inference_candidates(active, mean_labels=1.0):
    """Outputs scored per query by sparse inference (not part of BOLT);
    -1 scores every output the tables retrieve.

    Sparse inference ranks what the tables retrieve by how many tables
    returned it and, for single-label problems, scores only the best of
    them. Measured here after 3-5 epochs, P@1 on held-out rows, scoring all
    retrieved vs a quarter of the training active set: synthetic 100k
    classes 0.484 -> 0.494 (0.72 s -> 0.42 s for 10k rows), synthetic 10k
    classes 0.698 -> 0.731 (0.42 s -> 0.26 s). Since output rows start from
    label centroids the cut costs about a point there (0.710 -> 0.700 and
    0.887 -> 0.879, for 3x and 2x faster top-k). Rows with many labels
    need every candidate: synthetic multi-label (10k labels, ~11 per row)
    0.53 with the cut, 0.63 at the active set size, 0.87 with every
    retrieved output (~700 of 10k, 42 -> 109 us per row). Decided by the
    mean labels per row (2 or more), not by the label format: one label per
    row given as an indicator is still a single-label problem. Since the
    tables retrieve more (K cap, MIN_TABLES) at least 64: default fit of
    synth10k (``benchmarks/bench_retrieval.py --experiments candidates``),
    P@1 at 32 / 64 / 128 / 256 / all retrieved 0.743 / 0.754 / 0.760 /
    0.771 / 0.786, 36 / 41 / 47 / 57 / 71 us per row.
    """
    return -1 if mean_labels >= 2 else max(MIN_CANDIDATES, active // 4)


def finish_tables(hash_params, mean_labels=1.0):
    """Table shape and candidates for a network finished with label
    centroids (``centroid_finish``); None to keep the training shape (DWTA
    keys of 2 bins already, or another family: pass only DWTA's).

    Centroid rows spread less than trained ones, so fewer of them share a
    bucket with a query: one bin less per key (K - 1, eight times the
    buckets' reach) at the same table memory (reservoir x 8). Measured on
    the default fit's network finished (``benchmarks/bench_retrieval.py
    --experiments finish``), P@1 on the test split at 1 thread, 64 / 256
    scored candidates (us/row): synth10k K=4 0.769 / 0.792 (69 / 102), K=3
    0.812 / 0.828 (84 / 123), exact 0.843 (233); synth100k_tail K=4 0.681 /
    0.684 (61 / 95), K=3 0.691 / 0.696 (100 / 136), exact 0.701 (341).
    Twice the tables at K=4 retrieved less for more time in a prototype
    (synth10k 0.797 / 0.813 at 97 / 130 us).
    Votes rank centroid rows less well than trained ones, so single-label
    rows score 4 * MIN_CANDIDATES: ``bench_retrieval.py --experiments
    finish``, K=3, 64 / 256 / all: synth10k 0.812 / 0.828 / 0.842 (84 / 123
    / 361 us), synth100k_tail 0.691 / 0.696 / 0.701 (100 / 136 / 649 us).
    Multi-label rows no longer score every retrieved output (at K=3 that is
    4,573 of 10k on synth_ml, 801 us/row) but 4x the active set: synth_ml
    at K=3, 256 / 400 / all 0.974 / 0.982 / 0.990 (144 / - / 801 us); at
    K=4 all retrieved 0.959 (182 us).
    """
    K = hash_params["K"]
    if K <= 2:
        return None
    shift = hash_params["range_pow"] - 3 * (K - 1)
    candidates = max(4 * MIN_CANDIDATES, hash_params["inference_candidates"])
    if mean_labels >= 2:
        candidates = max(MIN_CANDIDATES, 4 * hash_params["active_size"])
    return {**hash_params, "K": K - 1, "range_pow": 3 * (K - 1),
            "reservoir": hash_params["reservoir"] << shift,
            "inference_candidates": candidates}


#: Share of a sampled active set's negatives drawn from the batch's labels.
BATCH_NEGATIVE_SHARE = 0.5


def batch_negatives(active, n_outputs):
    """Negatives of each training sample drawn from its batch's labels (not
    part of BOLT, whose negatives all come from the hash tables).

    An output so drawn is a negative about as often as it is a label, so a
    label that is frequent elsewhere learns where it is wrong: the tables
    alone offer only outputs close to the sample. Measured here, test P@1
    of sparse top-1 by epoch with the other rules fixed (share of the
    active set: 0 / 0.5 / 1.0): synthetic 100k-class space, 24k training
    rows: epoch 2 0.531 / 0.602 / 0.571, epoch 12 0.693 / 0.702 / 0.700;
    synthetic 10k classes: epoch 2 0.702 / 0.729 / 0.771, epoch 10 0.849 /
    0.861 / 0.868; synthetic multi-label (10k labels, ~18 per row): epoch
    3 0.870 / 0.985. Drawing them uniformly from all outputs instead lowered
    P@1 (0.371 -> 0.366 at a 0.1 share, 0.354 at 0.25, hidden 128, 3
    epochs), as did a log-Q correction of the drawn ones (0.544 -> 0.540,
    exact scoring 0.504 -> 0.482).
    """
    return int(BATCH_NEGATIVE_SHARE * active) if active < n_outputs else 0


#: Logit a fresh sampled network's output row gives a hidden vector one
#: spread from the mean in its direction: output rows start as label
#: centroids (not part of BOLT). Before any step, each label's row becomes
#: the direction from the mean hidden vector (of the first layer's random
#: features) to the mean over its training rows, its bias measures from
#: that mean, and the tables hash hidden vectors less it; so a rare label
#: starts where its rows are instead of waiting for the tables to offer it.
#: Measured here with the other rules fixed, test P@1 sparse / exact after
#: one epoch, (uncentred) centroids: synthetic 100k-class space (24k rows)
#: 0.381 / 0.485 without, 0.682 / 0.709 with (the exact ceiling, 0.715, by
#: epoch 3 instead of 7); synthetic 10k classes 0.405 / 0.646 -> 0.852 /
#: 0.887; a long-tailed set (4.5k rows, 1.8k labels seen, hidden 128)
#: 0.366 / 0.360 -> 0.669 / 0.683. Centring them on the mean, on the noisier
#: sets of bench_xc_peers.py --quick: synth10k after 8 epochs 0.570 / 0.577
#: -> 0.594 / 0.673, synth_ml after 5 0.668 / 0.855 -> 0.711 / 0.900,
#: synth100k_tail 0.529 / 0.540 -> 0.522 / 0.559 (the easier sets above
#: lose 0.6-0.7 points sparse). Scale 4 vs 8 / 16: 0.669 vs 0.669 / 0.663
#: on the long tail, 0.682 vs 0.673 on the 100k set. Dense output layers do
#: without: Bibtex 0.645 -> 0.637 after 25 epochs.
CENTROID_LOGIT = 4.0


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
    bolt = bolt_rebuild_interval(n_samples, batch_size)
    per_code = 8 if family == "dwta" else max(1, (width + 2) // 3)
    rebuild_cost = n_outputs * (K * L * per_code + L)
    batch_cost = batch_size * (4 * active * width + 4 * nnz_per_row * width + K * L * per_code)
    return max(bolt, int(math.ceil(rebuild_cost / (REBUILD_BUDGET * batch_cost))))


def fit_to_memory(cfg, estimate, budget):
    """Shrink the hash tables until ``estimate(cfg)["total"]`` fits ``budget`` bytes.

    The reservoir goes first (it mostly holds empty slots), then the bucket
    count, then the number of tables; weights and batch buffers are the
    user's choice and are never shrunk. ``estimate`` returns the memory
    breakdown of a configuration (``Network.estimate_memory``). Returns
    (cfg, breakdown of the returned cfg).

    Raises
    ------
    MemoryError
        When even the smallest tables do not fit, naming both figures.
    """
    cfg = dict(cfg)
    need = estimate(cfg)
    sparse = cfg["active_size"] < cfg["n_outputs"]
    while budget is not None and need["total"] > budget:
        if sparse and cfg["reservoir"] > 1:
            cfg["reservoir"] = max(1, cfg["reservoir"] // 2)
        elif sparse and cfg["range_pow"] > 10:
            cfg["range_pow"] -= 1
        elif sparse and cfg["hash_L"] > 1:
            cfg["hash_L"] = max(1, cfg["hash_L"] // 2)
        else:
            raise MemoryError(
                f"this configuration needs about {need['total'] / 1e9:.2f} GB (weights, Adam "
                "state, hash tables, training buffers and an epoch's snapshot) but the "
                f"memory budget is "
                f"{budget / 1e9:.2f} GB; reduce hidden_layer_sizes, output_sparsity or "
                "batch_size, or raise max_memory"
            )
        need = estimate(cfg)
    return cfg, need


@dataclass(frozen=True)
class Resolved:
    """Concrete values of an estimator's hyper-parameters for one problem.

    Each field is the value of the estimator parameter of the same name,
    "auto" replaced by its rule; ``hash_params`` is the table shape and
    schedule (see ``BoltClassifier.hash_params_``).
    """

    hidden_layer_sizes: tuple
    batch_size: int
    learning_rate_init: float
    max_iter: int
    output_sparsity: float
    hash_function: str
    loss: str
    dropout: float
    sparse_inference: bool
    centroid_finish: bool
    hash_params: dict = field(compare=False)
    hidden_sparsity: tuple = (1.0,)

    def replace(self, **changes):
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)


def _number(value, name, ok, what):
    """``value`` as a float when it is a real number for which ``ok`` holds."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) or not ok(value):
        raise ValueError(f"{name} must be {what} or 'auto', got {value!r}")
    return float(value)


def _integer(value, name):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer or 'auto', got {value!r}")
    return int(value)


def _choice(value, name, options):
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{name} must be {', '.join(map(repr, options))} or 'auto', got {value!r}")
    return value


def hidden_sizes(value):
    """``hidden_layer_sizes`` (an int or a sequence) as a tuple of widths."""
    hidden = (value,) if np.isscalar(value) else value
    try:
        hidden = tuple(hidden)
    except TypeError:
        hidden = ()
    if not hidden or any(isinstance(h, (bool, np.bool_)) or not isinstance(h, numbers.Integral)
                         or h < 1 for h in hidden):
        raise ValueError(f"hidden_layer_sizes must be positive integers, got {value!r}")
    return tuple(int(h) for h in hidden)


def auto_loss():
    """Softmax, also for multi-label rows (target 1 / |labels| each).

    Measured here with one-off fits on bench_xc_peers' sets (no command in
    the repo prints these rows yet; bench_autotune.py --peer-sets --quick
    has the quick set's grid with sigmoid), sparse top-5 P@1 / P@3 / P@5 on
    the test split, once sigmoid outputs started from their labels' prior log-odds
    (before that the sigmoid loss hardly learned on sampled output layers):
    bench_xc_peers' synth_ml (16k rows, 12 labels per row, 10k labels),
    rules without search, softmax 0.925 / 0.740 / 0.563, sigmoid 0.965 /
    0.847 / 0.696; autotuned, softmax (centroid-finished) 0.982 / 0.870 /
    0.691, sigmoid 0.965 / 0.843 / 0.680. Its quick set (3.2k rows),
    autotuned: softmax 0.865 / 0.595 / 0.427, sigmoid 0.900 / 0.659 /
    0.482. Bibtex (dense output layer): softmax 0.646, sigmoid 0.641. The
    finish, which only softmax rows take, is what keeps softmax ahead where
    there is data. On real sets neither wins everywhere (issue 33: a
    983-label tag set with 19 labels per row, 0.587 softmax against 0.652
    sigmoid; enron 0.770 / 0.784; medical 0.809 / 0.664 before dense
    sigmoid layers started at their priors), so with rows of several
    labels the autotuning search measures both (``_autotune.candidates``);
    this is the loss without a search.
    """
    return "softmax"


def auto_batch_size(n_samples):
    """BOLT's batch range, growing with the data: 256, 1024 from 50k rows,
    2048 from 500k."""
    return 256 if n_samples < 50_000 else (1024 if n_samples < 500_000 else 2048)


def auto_max_iter(n_samples, label_share):
    """Epochs: about 120k sample visits (Bibtex: 25 epochs, where P@1 peaks
    with the small-data network above), and enough that a rare label is
    seen LABEL_VISITS times; between 5 and 50 passes.

    Not part of BOLT: the second term is what extreme label sets need.
    Measured here (bench_autotune.py --epoch-curve), test P@1 by epoch with
    the other rules fixed: synthetic 10k classes (30k rows, rare labels on
    4) 0.828 at 5 epochs, 0.885 at 8 (this rule), 0.887 at 10, 0.892 at 15;
    100k classes (50k rows, rare labels on 2) 0.642 at 5, 0.745 at 10,
    0.761 at 15 (this rule), 0.762 at 20. Without ``label_share`` the rule
    counts sample visits only.
    """
    epochs = max(5, math.ceil(120_000 / max(n_samples, 1)))
    if label_share:
        epochs = max(epochs, math.ceil(LABEL_VISITS / (label_share * max(n_samples, 1))))
    return int(min(50, epochs))


def bolt_rebuild_interval(n_samples, batch_size):
    """BOLT's published schedule: re-insert every neuron each 1/100 epoch
    from 100k samples, each 1/20 epoch below."""
    n_batches = max(1, math.ceil(n_samples / batch_size))
    return max(1, int(round(n_batches / (100 if n_samples >= 100_000 else 20))))


def resolve(params, n_samples, n_features, n_outputs, nnz_per_row, multilabel,
            label_share=None, mean_labels=1.0, n_labelled=None):
    """Resolve an estimator's parameters against its training data.

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
    mean_labels : float, default=1.0
        Mean labels per training row.
    n_labelled : int, optional
        Outputs that are a label of at least one training row (all of
        them when None). Only these go into the hash tables (the core
        leaves the others out: they score -inf), so the tables are shaped
        for them.

    Returns
    -------
    Resolved
        Concrete values for every hyper-parameter, and the hash tables'
        shape and schedule.
    """
    def given(name, rule):
        value = params.get(name, "auto")
        return rule() if is_auto(value) else value

    hidden = given("hidden_layer_sizes", lambda: auto_hidden(n_samples, n_features, n_outputs))
    hidden = hidden_sizes(hidden)
    hsparsity = _hidden.hidden_sparsity(params.get("hidden_sparsity", "auto"), hidden)
    batch = given("batch_size", lambda: auto_batch_size(n_samples))
    batch = min(_integer(batch, "batch_size"), n_samples)
    lr = given("learning_rate_init",
               lambda: _hidden.learning_rate(auto_learning_rate(n_samples), hsparsity, hidden))
    lr = _number(lr, "learning_rate_init", lambda v: 0 < v < math.inf, "a positive number")
    epochs = given("max_iter", lambda: auto_max_iter(n_samples, label_share))
    epochs = _integer(epochs, "max_iter")
    sparsity = given("output_sparsity", lambda: bolt_output_sparsity(n_outputs))
    sparsity = _number(sparsity, "output_sparsity", lambda v: 0 < v <= 1, "in (0, 1]")
    family = given("hash_function", lambda: "dwta")
    family = _choice(family, "hash_function", ("dwta", "srp"))
    loss = given("loss", auto_loss)
    loss = _choice(loss, "loss", ("softmax", "sigmoid"))
    hparams = _hidden.hidden_params(hsparsity, hidden, n_samples, n_features, batch)
    if hparams is not None and not is_auto(params.get("dropout", "auto")) \
            and params.get("dropout") != 0:
        raise ValueError("a sparse hidden layer takes no dropout (its few active units per "
                         "sample are chosen, not dropped); leave dropout='auto' or use "
                         "hidden_sparsity=1.0")
    drop = given("dropout", lambda: auto_dropout(n_samples) if hparams is None else 0.0)
    drop = _number(drop, "dropout", lambda v: 0 <= v < 1, "in [0, 1)")

    active = max(1, int(math.ceil(sparsity * n_outputs)))
    sparse_output = active < n_outputs
    inference = given("sparse_inference", lambda: sparse_output)
    if not isinstance(inference, (bool, np.bool_)):
        raise ValueError(f"sparse_inference must be True, False or 'auto', got {inference!r}")
    # "auto" is only ever turned on by the search (``_autotune.search``),
    # which keeps it where it scores higher on its held-out split
    finish = given("centroid_finish", lambda: False)
    if not isinstance(finish, (bool, np.bool_)):
        raise ValueError(f"centroid_finish must be True, False or 'auto', got {finish!r}")
    if finish and loss == "sigmoid":
        raise ValueError("centroid_finish=True needs the softmax loss (label centroids score "
                         "like softmax logits); use loss='softmax' or centroid_finish=False")
    hash_params = _hash_params(params, n_samples, n_outputs, nnz_per_row, active, batch,
                               hidden[-1], family, sparsity, mean_labels,
                               n_outputs if n_labelled is None else n_labelled)
    if hparams is not None:
        hash_params["hidden"] = hparams
    return Resolved(hidden_layer_sizes=hidden, batch_size=batch, learning_rate_init=lr,
                    max_iter=epochs, output_sparsity=sparsity, hash_function=family,
                    loss=loss, dropout=drop, sparse_inference=bool(inference) and sparse_output,
                    centroid_finish=bool(finish), hash_params=hash_params,
                    hidden_sparsity=hsparsity)


def _hash_params(params, n_samples, n_outputs, nnz_per_row, active, batch, width, family,
                 sparsity, mean_labels, n_labelled):
    """Table shape and schedule (the ``hash_params_`` attribute), for the
    ``n_labelled`` outputs the tables will hold."""
    K, L, range_pow, reservoir = (dwta_tables if family == "dwta" else srp_tables)(
        max(n_labelled, 1), sparsity)
    n_batches = max(1, math.ceil(n_samples / batch))
    schedule = params.get("rebuild_interval", "auto")
    if is_auto(schedule):
        rebuild = rebuild_interval(n_samples, max(n_labelled, 1), active, batch, width,
                                   nnz_per_row, family, K, L)
    elif isinstance(schedule, str) and schedule == "bolt":
        rebuild = bolt_rebuild_interval(n_samples, batch)
    elif (isinstance(schedule, numbers.Integral) and not isinstance(schedule, (bool, np.bool_))
          and schedule >= 1):
        rebuild = int(schedule)
    else:
        raise ValueError(f"rebuild_interval must be a positive number of batches, 'bolt' or "
                         f"'auto', got {schedule!r}")
    return {
        "active_size": active if active < n_outputs else n_outputs,
        "K": K,
        "L": L,
        "range_pow": range_pow,
        "reservoir": reservoir,
        "rebuild_interval": rebuild,
        "redraw_interval": max(rebuild, n_batches // 4),
        "batch_negatives": batch_negatives(active, n_outputs),
        "freeze_after": 1,
        "inference_candidates": inference_candidates(active, mean_labels),
    }


def network_config(resolved, n_features, n_outputs, seed):
    """The native network configuration for resolved parameters."""
    hp = resolved.hash_params
    return {
        "n_features": n_features,
        "n_outputs": n_outputs,
        "hidden_sizes": resolved.hidden_layer_sizes,
        "loss": resolved.loss,
        "active_size": hp["active_size"],
        "hash_family": resolved.hash_function,
        "hash_K": hp["K"],
        "hash_L": hp["L"],
        "range_pow": hp["range_pow"],
        "reservoir": hp["reservoir"],
        "rebuild_interval": hp["rebuild_interval"],
        "redraw_interval": hp["redraw_interval"],
        "batch_negatives": hp["batch_negatives"],
        "seed": seed,
        "dropout": resolved.dropout,
        "beta1": 0.9,
        "beta2": 0.999,
        "epsilon": 1e-7,
        **_hidden.config_keys(hp.get("hidden")),
    }
