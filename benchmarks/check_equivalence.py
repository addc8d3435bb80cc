"""Same random_state, same model: compare a build against saved predictions.

Fits BoltClassifier in the situations that exercise every path of the core
and of the estimator code (sampled output layer with frozen tables, dense
output layer, multi-class and multi-label, sigmoid and softmax, early
stopping, the autotuning search, partial_fit and warm_start) with fixed
seeds, and records every prediction, the resolved attributes and the whole
network state. ``--save`` writes them; ``--compare`` checks a build against
a saved file and prints, per case, whether each array is bit-identical.

Usage (skbolt installed; run from anywhere)::

    python benchmarks/check_equivalence.py --save benchmarks/results/equivalence_f560716.npz
    python benchmarks/check_equivalence.py --compare benchmarks/results/equivalence_f560716.npz

Bit-identity holds on one machine and compiler: another CPU may take
another kernel clone (AVX2 or not) and round differently.
"""
import argparse
import hashlib
import sys

import numpy as np

from skbolt import BoltClassifier
from skbolt.datasets import make_extreme_classification


def _cases():
    """(name, estimator factory, fit function) for every case."""
    Xm, Ym = make_extreme_classification(3000, 800, 1500, multilabel=True, n_labels=3,
                                         random_state=11)
    Xc, yc = make_extreme_classification(2600, 600, 300, random_state=12)
    Xb, yb = make_extreme_classification(1500, 400, 40, random_state=13)

    def fit(clf, X, y):
        return clf.fit(X, y)

    def partial(clf, X, y):
        clf.partial_fit(X[:1000], y[:1000], classes=np.unique(y))
        return clf.partial_fit(X[1000:], y[1000:])

    def warm(clf, X, y):
        clf.fit(X, y)
        clf.set_params(max_iter=2)
        return clf.fit(X, y)

    common = dict(random_state=3, n_jobs=2)
    return [
        ("sampled_multilabel", (Xm, Ym), fit,
         lambda: BoltClassifier(hidden_layer_sizes=(64,), max_iter=4, autotune=False, **common)),
        ("sampled_two_hidden_srp", (Xm, Ym), fit,
         lambda: BoltClassifier(hidden_layer_sizes=(48, 32), max_iter=3, autotune=False,
                                hash_function="srp", loss="sigmoid", **common)),
        ("dense_multiclass_early_stop", (Xc, yc), fit,
         lambda: BoltClassifier(hidden_layer_sizes=(32,), max_iter=6, autotune=False,
                                early_stopping=True, **common)),
        ("dense_sigmoid_binaryish", (Xb, yb), fit,
         lambda: BoltClassifier(hidden_layer_sizes=(16,), max_iter=5, loss="sigmoid",
                                autotune=False, **common)),
        ("autotuned_multilabel", (Xm, Ym), fit,
         lambda: BoltClassifier(hidden_layer_sizes=(64,), max_iter=4, **common)),
        ("autotuned_multiclass", (Xc, yc), fit,
         lambda: BoltClassifier(max_iter=3, **common)),
        ("partial_fit", (Xc, yc), partial,
         lambda: BoltClassifier(hidden_layer_sizes=(32,), autotune=False, **common)),
        ("warm_start", (Xm, Ym), warm,
         lambda: BoltClassifier(hidden_layer_sizes=(32,), max_iter=2, autotune=False,
                                warm_start=True, **common)),
    ]


def record():
    """Every array that should not change, keyed ``case/what``."""
    out = {}
    for name, (X, y), fit, make in _cases():
        clf = fit(make(), X, y)
        Xt = X[:300]
        ids, scores = clf.predict_topk(Xt, k=5)
        out[f"{name}/topk_ids"] = np.asarray(ids)
        out[f"{name}/topk_scores"] = scores
        pred = clf.predict(Xt)
        out[f"{name}/predict"] = pred.toarray() if hasattr(pred, "toarray") else np.asarray(pred)
        out[f"{name}/proba"] = clf.predict_proba(Xt)
        out[f"{name}/decision"] = clf.decision_function(Xt)
        out[f"{name}/embed"] = clf.embed(Xt)
        out[f"{name}/loss_curve"] = np.asarray(clf.loss_curve_)
        out[f"{name}/resolved"] = np.asarray(repr([
            clf.hidden_layer_sizes_, clf.learning_rate_init_, clf.batch_size_, clf.max_iter_,
            clf.output_sparsity_, clf.hash_function_, clf.loss_, clf.sparse_inference_,
            clf.dropout_, sorted(clf.hash_params_.items()), sorted(clf.best_params_.items()),
            [(r["rung"], round(r["validation_score"], 6), sorted(r["params"].items()))
             for r in clf.autotune_results_],
        ]))
        state = clf.__getstate__()["_network_state"]
        for i, (w, b) in enumerate(state["params"]):
            out[f"{name}/w{i}"] = w
            out[f"{name}/b{i}"] = b
        out[f"{name}/counters"] = np.asarray(state["counters"])
        out[f"{name}/table_counts"] = state["table_counts"]
        out[f"{name}/table_ids"] = state["table_ids"]
        print(f"{name}: recorded", flush=True)
    # large arrays by digest, so the saved file stays small enough to commit
    return {k: _digest(v) if v.size > 20_000 else v for k, v in out.items()}


def _digest(array):
    """sha256 of an array's dtype, shape and bytes, as a 0-d string array."""
    a = np.ascontiguousarray(array)
    h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
    h.update(a.tobytes())
    return np.asarray("sha256:" + h.hexdigest())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--save", metavar="NPZ")
    group.add_argument("--compare", metavar="NPZ")
    args = parser.parse_args(argv)
    now = record()
    if args.save:
        np.savez_compressed(args.save, **now)
        print(f"saved {len(now)} arrays to {args.save}")
        return 0
    saved = dict(np.load(args.compare))
    bad = 0
    for key in sorted(set(saved) | set(now)):
        if key not in saved or key not in now:
            print(f"{key}: only in {'the saved file' if key in saved else 'this build'}")
            bad += 1
            continue
        a, b = saved[key], now[key]
        same = (a.shape == b.shape and a.dtype == b.dtype
                and np.array_equal(a, b, equal_nan=a.dtype.kind == "f"))
        if not same:
            bad += 1
            diff = (np.max(np.abs(a.astype(float) - b.astype(float)))
                    if a.shape == b.shape and a.dtype.kind in "fiub" else "shape/type")
            print(f"{key}: DIFFERS (max abs difference {diff})")
    print(f"{len(now)} arrays compared, {len(now) - bad} bit-identical, {bad} differ")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
