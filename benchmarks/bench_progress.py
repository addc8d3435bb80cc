"""What progress reporting costs: the same work with ``verbose=0`` and with
its progress bars, back to back.

Measured, each ``--repeats`` times in alternation (quiet, then with bars),
median seconds and their ratio (bars / quiet):

* ``BoltClassifier.fit`` (``autotune=False``: the bars of the epochs'
  native calls; the search's lines add one write per trial);
* ``BoltRecommender.fit`` on a synthetic catalogue;
* ``predict_topk`` over 200,000 rows (with ``verbose`` the call is made
  in chunks of 16,384 rows under a bar, without it in one native call);
* ``load_xc`` of an XC file written here (a byte-count bar).

The bars write to a null stream (as they would to a terminal nobody
reads), so the figures are the reporting's own cost, not the terminal's.

Usage::

    python benchmarks/bench_progress.py            # about 3 minutes on 2 cores
    python benchmarks/bench_progress.py --quick    # smaller, about 40 s
"""
import argparse
import contextlib
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_xc_peers import machine

from skbolt import BoltClassifier, BoltRecommender
from skbolt.datasets import load_xc, make_extreme_classification, make_interactions


def write_xc(path, X, Y):
    with open(path, "w") as f:
        f.write(f"{X.shape[0]} {X.shape[1]} {Y.shape[1]}\n")
        for r in range(X.shape[0]):
            labels = ",".join(map(str, Y.indices[Y.indptr[r]:Y.indptr[r + 1]]))
            lo, hi = X.indptr[r], X.indptr[r + 1]
            feats = " ".join(f"{j}:{v:.4g}" for j, v in zip(X.indices[lo:hi], X.data[lo:hi]))
            f.write(f"{labels} {feats}\n")


def timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def pair(quiet, loud, repeats):
    """Median seconds of ``quiet()`` and ``loud()``, alternated."""
    q, v = [], []
    for _ in range(repeats):
        q.append(timed(quiet))
        with open(os.devnull, "w") as null, contextlib.redirect_stderr(null), \
                contextlib.redirect_stdout(null):
            v.append(timed(loud))
    return float(np.median(q)), float(np.median(v))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "progress.json"))
    args = parser.parse_args()
    n = 20_000 if args.quick else 60_000
    X, Y = make_extreme_classification(n_samples=n, n_features=20_000, n_classes=10_000,
                                       n_labels=2, multilabel=True, random_state=3)
    common = dict(autotune=False, max_iter=3, random_state=0, n_jobs=args.threads)
    rows = {}

    def fit(verbose):
        return lambda: BoltClassifier(verbose=verbose, **common).fit(X, Y)

    rows["classifier fit"] = pair(fit(0), fit(1), args.repeats)

    data = make_interactions(n // 2, 5_000, n_groups=40, random_state=5)

    def rec_fit(verbose):
        return lambda: BoltRecommender(verbose=verbose, max_iter=5, random_state=0,
                                       n_jobs=args.threads).fit(data.X)

    rows["recommender fit"] = pair(rec_fit(0), rec_fit(1), args.repeats)

    model = BoltClassifier(**common).fit(X, Y)
    big = X[np.arange(200_000 if not args.quick else 100_000) % X.shape[0]]

    def topk(verbose):
        def run():
            model.verbose = verbose
            model.predict_topk(big, k=5)
        return run

    rows[f"predict_topk {big.shape[0]} rows"] = pair(topk(0), topk(1), args.repeats)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.txt"
        write_xc(path, X, Y)
        size = path.stat().st_size
        rows[f"load_xc {size / 1e6:.0f} MB"] = pair(lambda: load_xc(path),
                                                    lambda: load_xc(path, verbose=True),
                                                    args.repeats)

    print(f"{'work':<28} {'quiet s':>9} {'bars s':>9} {'ratio':>7}")
    for name, (q, v) in rows.items():
        print(f"{name:<28} {q:>9.3f} {v:>9.3f} {v / q:>7.3f}")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(
            {"machine": machine(), "quick": args.quick, "repeats": args.repeats,
             "rows": {k: {"quiet_s": q, "bars_s": v, "ratio": v / q}
                      for k, (q, v) in rows.items()}}, indent=1))


if __name__ == "__main__":
    main()
