"""Extreme multi-label classification: fit, top-k prediction and P@1/3/5
=====================================================================

Trains ``BoltClassifier`` with every parameter left at "auto" (the rules
resolve them from the data and, from 2,000 training rows, a short search
tunes them) and reports precision at 1, 3 and 5 on held-out rows, with the
time to fit and to predict.

The data is the real Bibtex set (4,880 / 2,515 rows, 159 labels) when
``skbolt.datasets.data_home()`` finds it (``$SKBOLT_DATA``, or
``shared/data`` beside the checkout), otherwise, or with ``--synthetic``, a
built-in multi-label problem with 1,000 power-law labels (up to 3 per
row) from ``make_extreme_classification``. Run it with::

    python examples/extreme_classification.py [--synthetic]

It takes 10-20 s on 2 cores. Expected figures: Bibtex P@1 about 0.64, P@5
about 0.29; synthetic (an easy problem) P@1 about 0.99, P@5 about 0.49
(fixed seeds: they move only with the code).
"""
import argparse
import time

from skbolt import BoltClassifier
from skbolt.datasets import data_home, load_bibtex, make_extreme_classification
from skbolt.metrics import precision_at_k


def load(synthetic):
    """(name, X_train, Y_train, X_test, Y_test); Y are label indicator matrices."""
    if not synthetic and data_home() is not None:
        try:
            return ("Bibtex",) + load_bibtex()
        except FileNotFoundError as exc:
            print(f"Bibtex not found ({exc}); using synthetic data")
    X, Y = make_extreme_classification(
        n_samples=8_000, n_features=5_000, n_classes=1_000,
        n_labels=3, multilabel=True, random_state=0,
    )
    return "synthetic", X[1_600:], Y[1_600:], X[:1_600], Y[:1_600]


def main():
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--synthetic", action="store_true",
                        help="use the built-in synthetic problem even when Bibtex is there")
    args = parser.parse_args()

    name, X_train, Y_train, X_test, Y_test = load(args.synthetic)
    print(f"data: {name}, {X_train.shape[0]} train / {X_test.shape[0]} test rows, "
          f"{X_train.shape[1]} features, {Y_train.shape[1]} labels, "
          f"{Y_train.sum(axis=1).mean():.2f} labels per row")

    clf = BoltClassifier(random_state=0)
    start = time.perf_counter()
    clf.fit(X_train, Y_train)
    print(f"fit: {time.perf_counter() - start:.1f} s, {clf.n_iter_} epochs, "
          f"hidden {clf.hidden_layer_sizes_}, output sparsity {clf.output_sparsity_}")

    start = time.perf_counter()
    labels, scores = clf.predict_topk(X_test, k=5)  # (n_test, 5) label ids, best first
    seconds = time.perf_counter() - start
    print(f"top-5: {1e6 * seconds / X_test.shape[0]:.0f} us per row; first test row: "
          f"labels {labels[0].tolist()}, scores {[round(float(v), 3) for v in scores[0]]}, "
          f"true {sorted(Y_test[0].indices.tolist())}")
    for k in (1, 3, 5):
        print(f"P@{k} = {precision_at_k(Y_test, labels, k=k):.3f}")


if __name__ == "__main__":
    main()
