"""Save a fitted model and predict with it in another process, in both formats
===========================================================================

``model.save(path)`` / ``skbolt.load(path)`` write and read skbolt's own
file: a JSON header and raw arrays with a checksum, which loading never
executes, so it is the format for files from other people or services.
A fitted ``BoltClassifier`` also pickles like any scikit-learn estimator,
so ``joblib.dump`` / ``joblib.load`` round-trip it (and the Pipelines or
searches it sits in); as with every pickle, load only files you trust:
loading one can run code. Here a fresh Python process (started with
"spawn", so it shares nothing with this one) loads each file and predicts;
its top-5 labels, their scores, ``predict`` and ``predict_proba`` are
compared with this process's, element by element.

Run it with::

    python examples/save_and_load.py

It takes about 5 s on 2 cores. Expected output: every comparison says
"identical", for both files.
"""
import multiprocessing
import os
import tempfile
import time

import joblib
import numpy as np

import skbolt
from skbolt import BoltClassifier
from skbolt.datasets import make_extreme_classification
from skbolt.metrics import precision_at_k


def predict_elsewhere(path, X):
    """Runs in the child process: load the model file and predict X."""
    clf = skbolt.load(path) if path.endswith(".skbolt") else joblib.load(path)
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

    same = True
    with tempfile.TemporaryDirectory() as folder:
        for name, save in (("model.skbolt", clf.save),
                           ("model.joblib", lambda p: joblib.dump(clf, p))):
            path = os.path.join(folder, name)
            start = time.perf_counter()
            save(path)
            print(f"{name}: saved {os.path.getsize(path) / 1e6:.1f} MB in "
                  f"{time.perf_counter() - start:.2f} s")
            spawn = multiprocessing.get_context("spawn")
            with spawn.Pool(1) as pool:
                pid, *there = pool.apply(predict_elsewhere, (path, X_test))
            print(f"{name}: loaded and predicted in process {pid} (this one is {os.getpid()})")
            for what, mine, theirs in zip(["top-5 labels", "top-5 scores", "predict",
                                           "predict_proba"], here, there):
                equal = np.array_equal(mine, theirs)
                same &= equal
                print(f"{name} {what}: {'identical' if equal else 'DIFFERENT'} ({mine.shape})")
    if not same:
        raise SystemExit("a loaded model predicts differently")

if __name__ == "__main__":
    main()
