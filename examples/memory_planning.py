"""Memory planning: what a model will need before it is trained
============================================================

``estimate_memory(X, y)`` resolves the "auto" parameters against the data
and returns the bytes ``fit`` would take, by part (weights, Adam's two
moments, hash tables, training buffers, and the snapshot: the copy of the
weights kept at each epoch, to go back to on Ctrl-C), without training or
allocating anything. ``max_memory`` caps that: the hash tables shrink to fit, and when
even the smallest tables do not fit, ``fit`` raises ``MemoryError`` with the
figures before allocating.

The problems here are shaped like real extreme-classification sets
(100,000 sparse features, 50 nonzeros per row, 100,000 or 1,000,000
labels, every label carried by some row); only their shape matters, so
5,000 random rows stand for them, each carrying a share of the labels
(the hash tables hold only labels some training row carries, so a
stand-in must carry them all). Run it with::

    python examples/memory_planning.py

It takes a few seconds. The figures are exact for this version of skbolt
(sizes are computed, not measured); "budget" is 75% of the memory this
machine has available unless ``max_memory`` says otherwise. 1 GB is 10^9
bytes, as in ``max_memory="4GB"``.
"""
import time

import numpy as np
import scipy.sparse as sp

from skbolt import BoltClassifier

N_ROWS, N_FEATURES, NNZ_PER_ROW = 5_000, 100_000, 50


def problem(n_labels, seed=0):
    """Random rows shaped like the data, and an indicator matrix in which
    row i carries labels i, i + N_ROWS, i + 2 N_ROWS, ...: every label once."""
    rng = np.random.default_rng(seed)
    columns = rng.integers(0, N_FEATURES, N_ROWS * NNZ_PER_ROW)
    X = sp.csr_matrix((rng.random(columns.size, np.float32), columns,
                       np.arange(0, columns.size + 1, NNZ_PER_ROW)), shape=(N_ROWS, N_FEATURES))
    X.sum_duplicates()
    labels = np.arange(n_labels)
    Y = sp.csr_matrix((np.ones(n_labels, np.float32), (labels % N_ROWS, labels)),
                      shape=(N_ROWS, n_labels))
    return X, Y


def show(title, estimate):
    parts = ", ".join(f"{part} {estimate[part] / 1e9:.2f}"
                      for part in ("weights", "optimizer", "tables", "buffers", "snapshot"))
    budget = "unknown" if estimate["budget"] is None else f"{estimate['budget'] / 1e9:.2f} GB"
    print(f"{title:<42} total {estimate['total'] / 1e9:5.2f} GB ({parts}); budget {budget}")


def main():
    X100k, Y100k = problem(100_000)
    X1m, Y1m = problem(1_000_000)

    print("1. What the defaults need (everything 'auto'):")
    show("100,000 labels", BoltClassifier().estimate_memory(X100k, Y100k))
    show("1,000,000 labels", BoltClassifier().estimate_memory(X1m, Y1m))

    print("2. max_memory shrinks the hash tables to fit (1,000,000 labels):")
    for limit in ("12GB", "11GB", "10GB"):
        show(f"max_memory={limit!r}", BoltClassifier(max_memory=limit).estimate_memory(X1m, Y1m))

    print("3. When even the smallest tables do not fit, fit refuses before allocating:")
    clf = BoltClassifier(max_memory="4GB", random_state=0)
    start = time.perf_counter()
    try:
        clf.fit(X1m, Y1m)
    except MemoryError as exc:
        print(f"MemoryError after {time.perf_counter() - start:.2f} s: {exc}")
    else:
        raise SystemExit("expected a MemoryError")

    print("4. ... and a narrower hidden layer is one way to fit in 4 GB:")
    show("hidden_layer_sizes=(128,), max_memory='4GB'",
         BoltClassifier(hidden_layer_sizes=(128,), max_memory="4GB").estimate_memory(X1m, Y1m))


if __name__ == "__main__":
    main()
