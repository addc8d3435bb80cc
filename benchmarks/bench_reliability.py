"""Reliability figures: how fast Ctrl-C stops a fit, and threads.

A BoltClassifier fit on ``make_extreme_classification(--rows, 20000
features, --classes)`` is sent SIGINT from a timer thread at a random
moment of each of ``--repeats`` fits; reported: the time from the signal
to the end of the native call it landed in (training stops there) and to
the KeyboardInterrupt in the caller (after the rollback to the last
complete epoch), median and max, against the median length of one native
call (a chunk: 1/20 of an epoch), which bounds the first. Then, on the
fitted model: 8 Python threads each predicting an eighth of 16,000 rows
(``n_jobs=1`` per call) against the same calls one after another, wall
time and equality (the core releases the GIL, so on 2 cores the threads
should take about half the serial time); and ``GridSearchCV`` (4 points
x 2 folds, ``BoltClassifier(n_jobs=None)``) with ``n_jobs=1`` and
``n_jobs=2``: wall time, and the OpenMP threads a fit uses under
``threadpool_limits(1)``, which is how joblib's workers limit OpenMP (so
two workers do not run 2 x 2 threads on 2 cores).

Usage::

    python benchmarks/bench_reliability.py            # 100k rows, 10k classes, 5 fits
    python benchmarks/bench_reliability.py --quick    # 20k rows, 2k classes
"""
import argparse
import json
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from bench_xc_peers import machine
from sklearn.model_selection import GridSearchCV

from skbolt import BoltClassifier
from skbolt._network import Network
from skbolt.datasets import make_extreme_classification


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--classes", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    rows, classes = (20_000, 2_000) if args.quick else (args.rows, args.classes)
    X, y = make_extreme_classification(rows, 20_000, classes, random_state=0)
    train, chunks, ends = Network.train, [], []

    def timed(self, *a, **k):
        start = time.perf_counter()
        try:
            return train(self, *a, **k)
        finally:
            ends.append(time.perf_counter())
            chunks.append(ends[-1] - start)

    Network.train = timed
    rng = np.random.RandomState(0)
    latencies, stops = [], []
    for _ in range(args.repeats):
        delay = rng.uniform(1.0, 3.0)
        sent = {}

        def interrupt():
            sent["t"] = time.perf_counter()
            signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)

        timer = threading.Timer(delay, interrupt)
        clf = BoltClassifier(max_iter=100, autotune=False, random_state=0, n_jobs=2)
        timer.start()
        try:
            clf.fit(X, y)
        except KeyboardInterrupt:
            latencies.append(time.perf_counter() - sent["t"])
            stops.append(ends[-1] - sent["t"])  # the native call the signal landed in
        timer.cancel()
        print(f"signal after {delay:.2f} s: training stopped {1000 * stops[-1]:.1f} ms later, "
              f"exception (after the rollback) {1000 * latencies[-1]:.1f} ms later, "
              f"{clf.n_iter_} complete epochs", flush=True)
    Network.train = train
    chunk = float(np.median(chunks))
    print(f"training stopped: median {1000 * np.median(stops):.1f} ms, max "
          f"{1000 * max(stops):.1f} ms; exception: median {1000 * np.median(latencies):.1f} ms, "
          f"max {1000 * max(latencies):.1f} ms; one native call (chunk) median "
          f"{1000 * chunk:.1f} ms")
    threads = predict_threads(clf, X[:16_000])
    grid = grid_search(X[:20_000], y[:20_000])
    if args.out:
        Path(args.out).write_text(json.dumps(
            {"machine": machine(), "rows": rows, "classes": classes,
             "latency_seconds": latencies, "stop_seconds": stops,
             "chunk_median_seconds": chunk,
             "predict_threads": threads, "grid_search": grid}, indent=2))


def predict_threads(clf, X):
    clf.set_params(n_jobs=1)
    parts = [X[i::8] for i in range(8)]
    start = time.perf_counter()
    serial = [clf.predict_topk(p, 5) for p in parts]
    t_serial = time.perf_counter() - start
    start = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        threaded = list(pool.map(lambda p: clf.predict_topk(p, 5), parts))
    t_threads = time.perf_counter() - start
    same = all((a[0] == b[0]).all() and (a[1] == b[1]).all() for a, b in zip(serial, threaded))
    print(f"predict_topk, 8 chunks: serial {t_serial:.2f} s, 8 threads {t_threads:.2f} s "
          f"({t_serial / t_threads:.2f}x), identical: {same}", flush=True)
    return {"serial_seconds": t_serial, "threads_seconds": t_threads, "identical": same}


def grid_search(X, y):
    out = {}
    for n_jobs in (1, 2):
        search = GridSearchCV(BoltClassifier(max_iter=2, autotune=False, random_state=0),
                              {"hidden_layer_sizes": [(64,), (128,)],
                               "learning_rate_init": [1e-3, 2e-3]},
                              cv=2, n_jobs=n_jobs, refit=False)
        start = time.perf_counter()
        search.fit(X, y)
        out[n_jobs] = time.perf_counter() - start
        print(f"GridSearchCV n_jobs={n_jobs}: {out[n_jobs]:.1f} s", flush=True)
    print(f"n_jobs=2 / n_jobs=1 wall time: {out[2] / out[1]:.2f}")
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="openmp"):
        inside = BoltClassifier()._n_threads()
    print(f"OpenMP threads of a fit under threadpool_limits(1): {inside} "
          f"(outside: {BoltClassifier()._n_threads()})")
    return {"seconds_by_n_jobs": out, "threads_under_limit_1": inside}


if __name__ == "__main__":
    main()
