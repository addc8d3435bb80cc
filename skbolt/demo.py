"""Train BoltClassifier on a built-in synthetic extreme-classification
problem and print what a user can check: precision@1/@5 on held-out data
and the time to fit and to predict.

Run it with ``python -m skbolt.demo`` or the ``skbolt-demo`` command.
"""
import argparse
import time

from . import BoltClassifier
from .datasets import make_extreme_classification
from .metrics import precision_at_k


def main(argv=None):
    """Run the demo; ``argv`` as for the command line. Returns None, so the
    console script exits with status 0."""
    parser = argparse.ArgumentParser(prog="skbolt-demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=30_000, help="training + test rows")
    parser.add_argument("--classes", type=int, default=10_000, help="number of classes")
    parser.add_argument("--features", type=int, default=20_000, help="input dimension")
    parser.add_argument("--epochs", type=int, default=5, help="training epochs")
    parser.add_argument("--n-jobs", type=int, default=None, help="threads (default: all)")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    args = parser.parse_args(argv)

    X, y = make_extreme_classification(
        n_samples=args.samples, n_features=args.features, n_classes=args.classes,
        random_state=args.seed,
    )
    n_test = args.samples // 5
    X_train, y_train, X_test, y_test = X[n_test:], y[n_test:], X[:n_test], y[:n_test]
    print(f"synthetic data: {X_train.shape[0]} train / {n_test} test rows, "
          f"{args.features} features, {args.classes} classes (seed {args.seed})")

    clf = BoltClassifier(max_iter=args.epochs, random_state=args.seed, n_jobs=args.n_jobs)
    start = time.perf_counter()
    clf.fit(X_train, y_train)
    fit_s = time.perf_counter() - start
    print(f"fit: {fit_s:.2f} s for {clf.n_iter_} epochs "
          f"(active set {clf.hash_params_['active_size']} of {args.classes} outputs)")

    start = time.perf_counter()
    labels, _ = clf.predict_topk(X_test, k=5)
    predict_s = time.perf_counter() - start
    # labels are class ids here, so they index the label space directly
    p1 = precision_at_k(y_test, labels, k=1)
    p5 = precision_at_k(y_test, labels, k=5)
    print(f"top-5 prediction: {predict_s:.3f} s for {n_test} rows "
          f"({1e6 * predict_s / n_test:.0f} us per row)")
    print(f"precision@1 = {p1:.3f}   precision@5 = {p5:.3f}")


if __name__ == "__main__":
    main()
