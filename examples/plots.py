"""Plots of what a fit did: learning curve, autotune search, P@k, recall@k
=======================================================================

Fits a ``BoltClassifier`` with early stopping on Bibtex when
``skbolt.datasets.data_home()`` finds it, otherwise (or with
``--synthetic``) on a built-in multi-label problem (1,000 power-law labels,
up to 3 per row, from ``make_extreme_classification``, which it learns
within an epoch or two: a flat curve), and a ``BoltRecommender`` on a
built-in catalogue (``make_interactions``: 3,000 users, 400 items), then
draws with ``skbolt.plot``:

* the learning curve (training loss and validation P@1 per epoch, the best
  epoch starred),
* the autotuning search (each trial's validation score against the
  search's seconds, trials linked across rungs, the winner starred),
* P@k for k = 1 .. 10 on held-out rows,
* the recommender's recall@k for k = 1 .. 50 on held-out users, against a
  popularity ranking.

Needs matplotlib (``pip install "skbolt[plot]"``). Run it with::

    python examples/plots.py [--out DIR] [--synthetic]

It writes four PNG files to DIR (default ``plots/``) and prints their
names and the figures they show; it takes 15-30 s on 2 cores.
"""
import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files, no screen

import numpy as np

from skbolt import BoltClassifier, BoltRecommender
from skbolt import plot as skplot
from skbolt.datasets import (
    data_home,
    load_bibtex,
    make_extreme_classification,
    make_interactions,
    split_users,
)
from skbolt.metrics import recall_at_k


class Popularity:
    """Items ranked by training interactions: the baseline every recommender
    must beat, with the ``recommend`` method ``plot_recall_at_k`` calls."""

    def __init__(self, X):
        self.order = np.argsort(-np.asarray(X.sum(axis=0)).ravel(), kind="stable")

    def recommend(self, X_in, n):
        ids = np.empty((X_in.shape[0], n), dtype=np.int64)
        for r in range(X_in.shape[0]):
            seen = set(X_in.indices[X_in.indptr[r]:X_in.indptr[r + 1]].tolist())
            ids[r] = [i for i in self.order if i not in seen][:n]
        return ids, None


def main():
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--out", default="plots", help="folder for the PNG files")
    parser.add_argument("--synthetic", action="store_true",
                        help="use the built-in problem even when Bibtex is there")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    try:
        if args.synthetic or data_home() is None:
            raise FileNotFoundError("synthetic data asked for or no data folder")
        X_train, Y_train, X_test, Y_test = load_bibtex()
        print("data: Bibtex")
    except FileNotFoundError:
        X, Y = make_extreme_classification(n_samples=8_000, n_features=5_000, n_classes=1_000,
                                           n_labels=3, multilabel=True, random_state=0)
        X_train, Y_train, X_test, Y_test = X[1_600:], Y[1_600:], X[:1_600], Y[:1_600]
        print("data: synthetic")
    clf = BoltClassifier(early_stopping=True, max_iter=40, random_state=0).fit(X_train, Y_train)
    print(f"classifier: {clf.n_iter_} epochs, best validation P@1 "
          f"{clf.best_validation_score_:.3f}, {len(clf.autotune_results_)} search trials")

    ax = skplot.plot_learning_curve(clf)
    ax.figure.savefig(out / "learning_curve.png", dpi=100)
    ax = skplot.plot_autotune(clf)
    ax.figure.savefig(out / "autotune.png", dpi=100)
    ax = skplot.plot_precision_at_k(clf, X_test, Y_test, k_max=10, label="BoltClassifier")
    ax.figure.savefig(out / "precision_at_k.png", dpi=100)
    p = [line.get_ydata() for line in ax.get_lines()][0]
    print(f"P@1 = {p[0]:.3f}, P@5 = {p[4]:.3f}, P@10 = {p[9]:.3f}")

    data = make_interactions(3000, 400, n_groups=8, random_state=0)
    split = split_users(data.X, test_size=0.2, random_state=0)
    rec = BoltRecommender(random_state=0).fit(split.train)
    ax = skplot.plot_recall_at_k(rec, split.test_in, split.test_out, k_max=50,
                                 label="BoltRecommender")
    skplot.plot_recall_at_k(Popularity(split.train), split.test_in, split.test_out, k_max=50,
                            ax=ax, label="popularity")
    ax.figure.savefig(out / "recall_at_k.png", dpi=100)
    ours = recall_at_k(split.test_out, rec.recommend(split.test_in, n=20)[0], k=20, capped=True)
    print(f"recommender: recall@20 = {ours:.3f}")
    for name in ("learning_curve", "autotune", "precision_at_k", "recall_at_k"):
        print(f"wrote {out / (name + '.png')}")


if __name__ == "__main__":
    main()
