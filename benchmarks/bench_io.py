"""Saving and loading a model: skbolt's safe format against pickle and joblib.

A BoltClassifier with ``--classes`` outputs (100,000 by default: an
output layer of 100k x 512 float32, 205 MB) is fitted for one epoch on
``make_extreme_classification`` rows, then written and read back by
``model.save`` / ``skbolt.load``, ``pickle`` (protocol 5) and
``joblib.dump`` / ``joblib.load``, each ``--repeats`` times in turn;
reported: median seconds to save and to load, file bytes, and that the
loaded model's top-5 equals the original's. The file lands in a temporary
directory on the same disk as ``--dir``.

Usage::

    python benchmarks/bench_io.py                     # 100k classes
    python benchmarks/bench_io.py --quick             # 10k classes
"""
import argparse
import json
import os
import pickle
import tempfile
import time
from pathlib import Path

import joblib
import numpy as np
from bench_xc_peers import machine

import skbolt
from skbolt import BoltClassifier
from skbolt.datasets import make_extreme_classification


def _formats():
    def pickle_save(model, path):
        with open(path, "wb") as f:
            pickle.dump(model, f, protocol=5)

    def pickle_load(path):
        with open(path, "rb") as f:
            return pickle.load(f)

    return {"skbolt": (lambda m, p: m.save(p), skbolt.load),
            "pickle": (pickle_save, pickle_load),
            "joblib": (lambda m, p: joblib.dump(m, p), joblib.load)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--classes", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true", help="10,000 classes")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dir", default=None, help="where the files are written")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    n_classes = 10_000 if args.quick else args.classes
    X, y = make_extreme_classification(n_samples=2 * n_classes // 10, n_features=20_000,
                                       n_classes=n_classes, random_state=0)
    start = time.perf_counter()
    model = BoltClassifier(max_iter=1, autotune=False, random_state=0, n_jobs=2).fit(X, y)
    print(f"{n_classes} classes, hidden {model.hidden_layer_sizes_}: fitted one epoch in "
          f"{time.perf_counter() - start:.1f} s", flush=True)
    probe = X[:200]
    expected = model.predict_topk(probe, 5)[0]
    results = {}
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        for name, (save, load) in _formats().items():
            path = os.path.join(tmp, f"model.{name}")
            saves, loads = [], []
            for _ in range(args.repeats):
                start = time.perf_counter()
                save(model, path)
                saves.append(time.perf_counter() - start)
                start = time.perf_counter()
                back = load(path)
                loads.append(time.perf_counter() - start)
            same = bool((back.predict_topk(probe, 5)[0] == expected).all())
            results[name] = {"save_seconds": float(np.median(saves)),
                             "load_seconds": float(np.median(loads)),
                             "bytes": os.path.getsize(path), "same_top5": same}
            del back
            r = results[name]
            print(f"{name:>7}: save {r['save_seconds']:.2f} s  load {r['load_seconds']:.2f} s  "
                  f"{r['bytes'] / 1e6:.1f} MB  same top-5: {same}", flush=True)
    base = results["pickle"]
    for name, r in results.items():
        print(f"{name:>7} / pickle: save {r['save_seconds'] / base['save_seconds']:.2f}x  "
              f"load {r['load_seconds'] / base['load_seconds']:.2f}x  "
              f"size {r['bytes'] / base['bytes']:.3f}x")
    if args.out:
        Path(args.out).write_text(json.dumps({"machine": machine(), "n_classes": n_classes,
                                              "hidden": list(model.hidden_layer_sizes_),
                                              "repeats": args.repeats, "results": results},
                                             indent=2))


if __name__ == "__main__":
    main()
