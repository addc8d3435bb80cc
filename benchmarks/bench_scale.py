"""Does training cost follow the active set, not the number of classes?

The shape of issue 13: ``make_extreme_classification(--rows + 10,000
test rows, 50,000 features, classes, multilabel=True)`` (the indicator
form: every class is an output), ``BoltClassifier(hidden_layer_sizes=(128,),
batch_size=1024, output_sparsity=500 / classes, max_iter=2,
autotune=False)``, so about 500 active outputs per sample at every size.
Each size runs in a fresh process (peak RSS from nothing). Printed per
size: the classes the training rows carry (only those train), seconds
per epoch (the whole fit over its epochs), top-5 microseconds per test row, the memory
estimate and peak RSS, test P@1, and where the training time went:
network creation and the centroid start (first touch of every output
row), then the core's own phase timings (``bolt_take_timings``: the
parallel pass over samples, the Adam updates of the output and input
layers, table maintenance, setup), and the ratios of 1M (or the largest
size) to 10k. ``--threads 1 2`` repeats a size with each thread count;
``--repeat N`` runs those N times, alternating the thread counts (1, 2,
1, 2, ...), and prints each pair's ratio and their median: on a shared
2-core VM one pair moved between 1.74x and 2.08x at the same code, and
even the sample pass, which shares nothing between threads, between
1.85x and 2.19x, so one pair decides nothing.

Usage::

    python benchmarks/bench_scale.py                # 10k, 100k, 1M classes (~10 min)
    python benchmarks/bench_scale.py --quick        # 10k and 100k, 20k rows
    python benchmarks/bench_scale.py --classes 100000 1000000 --threads 1 2 --repeat 5
    python benchmarks/bench_scale.py --summarize results/scale.json results/scale_confirm.json
"""
import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from bench_memory import status, write_results

PHASES = ("create", "centroids", "samples", "missed_labels", "update_output", "update_hidden",
          "update_input", "tables", "setup", "python")


def one(rows, classes, threads, epochs, active):
    from skbolt import BoltClassifier
    from skbolt._network import Network
    from skbolt.datasets import make_extreme_classification
    from skbolt.metrics import precision_at_k

    X, Y = make_extreme_classification(rows + 10_000, 50_000, classes, multilabel=True,
                                       random_state=0)
    X_train, Y_train, X_test, Y_test = X[:rows], Y[:rows], X[rows:], Y[rows:]
    spent = dict.fromkeys(PHASES, 0.0)
    init, centroids, train = Network.__init__, Network.init_from_centroids, Network.train

    def timed(phase, fn):
        def wrapped(self, *a, **k):
            start = time.perf_counter()
            try:
                return fn(self, *a, **k)
            finally:
                spent[phase] += time.perf_counter() - start
        return wrapped

    def trained(self, *a, **k):
        """One native training call, split into the core's phases and the
        rest (argument conversion in ``_native``: "python")."""
        start = time.perf_counter()
        try:
            return train(self, *a, **k)
        finally:
            total = time.perf_counter() - start
            core = {n: v for n, v in self.take_timings().items() if n != "batches"}
            for name, seconds in core.items():
                spent[name] += seconds
            spent["python"] += total - sum(core.values())

    Network.__init__ = timed("create", init)
    Network.init_from_centroids = timed("centroids", centroids)
    Network.train = trained
    clf = BoltClassifier(hidden_layer_sizes=(128,), batch_size=1024, max_iter=epochs,
                         output_sparsity=min(1.0, active / classes), autotune=False,
                         centroid_finish=False, random_state=0, n_jobs=threads)
    estimate = clf.estimate_memory(X_train, Y_train)["total"]
    start = time.perf_counter()
    clf.fit(X_train, Y_train)
    fit_s = time.perf_counter() - start
    Network.__init__, Network.init_from_centroids, Network.train = init, centroids, train
    start = time.perf_counter()
    ids, _ = clf.predict_topk(X_test, k=5)
    predict_s = time.perf_counter() - start
    return {
        "rows": rows, "classes": classes, "threads": threads, "epochs": epochs,
        # classes some training row carries: only these take part in training
        "labelled": int(np.unique(Y_train.indices).size),
        "active": active, "fit_seconds": fit_s, "seconds_per_epoch": fit_s / epochs,
        "phases": spent, "top5_us_per_row": 1e6 * predict_s / X_test.shape[0],
        "estimate_mb": estimate / 1e6, "peak_rss_mb": status("VmHWM") / 1e6,
        "p_at_1": float(precision_at_k(Y_test, ids, k=1)),
    }


def summarize(batches):
    """The ratios of one or more runs of this script (each a list of
    results): the largest size against the smallest at the most threads,
    between the runs of median fit time, and two threads against one as
    the median of all pairs (a pair is a 1-thread run and the 2-thread run
    after it, within one batch)."""
    runs, pairs = {}, {}  # (classes, threads): runs; classes: pair ratios
    for results in batches:
        mine = {}
        for r in results:
            mine.setdefault((r["classes"], r["threads"]), []).append(r)
        for (n, t), rs in mine.items():
            runs.setdefault((n, t), []).extend(rs)
            if t == 1 and (n, 2) in mine:
                pairs.setdefault(n, []).extend(
                    a["seconds_per_epoch"] / b["seconds_per_epoch"]
                    for a, b in zip(rs, mine[(n, 2)]))
    by = {key: median_run(rs) for key, rs in runs.items()}
    classes = sorted({n for n, _ in runs})
    lo, hi, t = classes[0], classes[-1], max(t for _, t in runs)
    if lo != hi:
        a, b = by[(lo, t)], by[(hi, t)]
        epoch = b["seconds_per_epoch"] / a["seconds_per_epoch"]
        top5 = b["top5_us_per_row"] / a["top5_us_per_row"]
        several = any(len(rs) > 1 for rs in runs.values())
        print(f"{hi:,} / {lo:,} classes ({t} threads{', median runs' if several else ''})"
              f": epoch {epoch:.2f}x, top-5 {top5:.2f}x; extra seconds by phase: "
              + ", ".join(f"{p} {b['phases'][p] - a['phases'][p]:+.2f} s" for p in PHASES))
    for n in classes:
        if n in pairs:
            line = f"{n:,} classes: 2 threads {np.median(pairs[n]):.2f}x one"
            if len(pairs[n]) > 1:
                line += (f" (median of {len(pairs[n])} pairs: "
                         + " / ".join(f"{p:.2f}" for p in pairs[n]) + ")")
            print(line)


def median_run(runs):
    """The run of median fit time (the lower middle one of an even count)."""
    ranked = sorted(runs, key=lambda r: r["fit_seconds"])
    return ranked[(len(ranked) - 1) // 2]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=40_000)
    parser.add_argument("--classes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--threads", type=int, nargs="+", default=[2])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--active", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs of each (classes, threads), thread counts alternating")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None)
    parser.add_argument("--summarize", nargs="+", metavar="JSON",
                        help="print the ratios of earlier runs' result files, pooled; run nothing")
    args = parser.parse_args()
    if args.summarize:
        summarize([json.loads(Path(f).read_text())["results"] for f in args.summarize])
        return
    if args.one:
        print(json.dumps(one(args.rows, args.classes[0], args.threads[0], args.epochs,
                             args.active)))
        return
    classes = [10_000, 100_000] if args.quick else args.classes
    rows = 20_000 if args.quick else args.rows
    results = []
    print(f"{'classes':>9} {'labelled':>8} {'thr':>3} {'s/epoch':>8} {'top5 us':>8} {'est MB':>8} "
          f"{'RSS MB':>8} {'P@1':>6}  " + " ".join(f"{p[:9]:>9}" for p in PHASES), flush=True)
    for n in classes:
        for threads in [t for _ in range(args.repeat) for t in args.threads]:
            out = subprocess.run(
                [sys.executable, __file__, "--one", "--rows", str(rows), "--classes", str(n),
                 "--threads", str(threads), "--epochs", str(args.epochs),
                 "--active", str(args.active)], capture_output=True, text=True, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            results.append(r)
            print(f"{n:>9,} {r['labelled']:>8,} {threads:>3} {r['seconds_per_epoch']:>8.2f} "
                  f"{r['top5_us_per_row']:>8.1f} {r['estimate_mb']:>8.0f} "
                  f"{r['peak_rss_mb']:>8.0f} {r['p_at_1']:>6.3f}  "
                  + " ".join(f"{r['phases'][p]:>9.2f}" for p in PHASES), flush=True)
    summarize([results])
    write_results("scale", args.quick, args.out, results)


if __name__ == "__main__":
    main()
