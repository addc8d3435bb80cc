"""Save a fitted model with joblib and predict with it in another process.

A fitted ``BoltClassifier`` pickles like any scikit-learn estimator: its
network (weights, hash tables, counters) is stored as arrays, so
``joblib.dump`` / ``joblib.load`` round-trip it. Here a fresh Python process
(started with "spawn", so it shares nothing with this one) loads the file
and predicts; its top-5 labels, their scores, ``predict`` and
``predict_proba`` are compared with this process's, element by element.

As with every pickle, load only files you trust: loading one can run code.

Run it with::

    python examples/save_and_load.py

It takes about 5 s on 2 cores. Expected output: every comparison says
"identical".
"""
import multiprocessing
import os
import tempfile
import time

import joblib
import numpy as np

from skbolt import BoltClassifier
from skbolt.datasets import make_extreme_classification
from skbolt.metrics import precision_at_k


def predict_elsewhere(path, X):
    """Runs in the child process: load the model file and predict X."""
    clf = joblib.load(path)
    labels, scores = clf.predict_topk(X, k=5)
    return os.getpid(), labels, scores, clf.predict(X), clf.predict_proba(X)


def main():
    X, y = make_extreme_classification(n_samples=12_000, n_features=5_000, n_classes=2_000,
                                       random_state=0)
    X_train, y_train, X_test, y_test = X[2_000:], y[2_000:], X[:2_000], y[:2_000]
    clf = BoltClassifier(max_iter=5, autotune=False, random_state=0).fit(X_train, y_train)
    labels, scores = clf.predict_topk(X_test, k=5)
    here = (labels, scores, clf.predict(X_test), clf.predict_proba(X_test))
    print(f"fitted: {X_train.shape[0]} rows, {len(clf.classes_)} classes, "
          f"P@1 = {precision_at_k(y_test, labels, k=1):.3f}")

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.joblib")
        start = time.perf_counter()
        joblib.dump(clf, path)
        print(f"saved {os.path.getsize(path) / 1e6:.1f} MB in {time.perf_counter() - start:.2f} s")

        spawn = multiprocessing.get_context("spawn")
        with spawn.Pool(1) as pool:
            pid, *there = pool.apply(predict_elsewhere, (path, X_test))
    print(f"loaded and predicted in process {pid} (this one is {os.getpid()})")

    same = True
    for name, mine, theirs in zip(["top-5 labels", "top-5 scores", "predict", "predict_proba"],
                                  here, there):
        equal = np.array_equal(mine, theirs)
        same &= equal
        print(f"{name}: {'identical' if equal else 'DIFFERENT'} ({mine.shape})")
    if not same:
        raise SystemExit("the loaded model predicts differently")


if __name__ == "__main__":
    main()
