"""One machine against one and two Dask workers (skbolt.dask).

Every system trains the same data in one run of this script, one thread
each: ``BoltClassifier(n_jobs=1)`` in this process, then
``DaskBoltClassifier`` on a ``LocalCluster`` of one worker and of two
(processes, 1 thread each, 127.0.0.1). Printed per data set: test P@1,
seconds per epoch, averagings per epoch and bytes of changed rows per
averaging (all replicas' changes, which is what each replica receives
minus its own), and top-5 prediction throughput: local ``predict_topk`` in
this process against the dask arrays computed on the two workers.

Data sets, in this order:

- ``averaging``: the choice of ``_sync`` (sum of the replicas' changes
  against their mean), on ``make_extreme_classification(3000, 800, 300,
  multilabel=True, n_labels=3, random_state=1)``, 8 epochs, two workers.
- ``scale-10k`` / ``scale-100k`` (``--full``: and ``scale-1M``): issue 13's
  shape (``bench_scale.py``: 50,000 features, hidden 128, batch 1024,
  about 500 active outputs, multilabel indicator, ``random_state=0``),
  ``--rows`` training rows, 3 epochs.
- ``recommender``: ``DaskBoltRecommender`` against ``BoltRecommender`` on
  ``make_interactions(20000, 5000, n_groups=50, random_state=0)``, NDCG@10
  of held-out users (``split_users``), defaults without the search, the
  local one trained as the Dask one is (``init="centroids"``).
- ``bibtex`` (real data, when ``SKBOLT_DATA`` has it), last: held out of
  every choice made here, default parameters.

Usage::

    python benchmarks/bench_dask.py --quick         # averaging + 10k classes, 20k rows (~3 min)
    python benchmarks/bench_dask.py                 # + 100k classes, 40k rows, Bibtex (~12 min)
    python benchmarks/bench_dask.py --full          # + 1M classes
"""
import argparse
import json
import os
import time

import numpy as np
from bench_memory import status

os.environ.setdefault("OMP_NUM_THREADS", "1")


def _cluster(n):
    import distributed

    # memory_limit=0: no nanny restarts at a share of the machine's memory;
    # the workers' peak RSS is measured instead
    cluster = distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                       host="127.0.0.1", dashboard_address=":0",
                                       memory_limit=0)
    return cluster, distributed.Client(cluster)


class PeakRSS:
    """Peak resident set of some processes, sampled every 0.2 s."""

    def __init__(self, pids):
        self.pids, self.peak, self.done = list(pids), 0, False

    def __enter__(self):
        import threading

        def sample():
            while not self.done:
                for pid in self.pids:
                    try:
                        self.peak = max(self.peak, status("VmRSS", pid))
                    except (OSError, StopIteration):  # the process is gone
                        continue
                time.sleep(0.2)

        self.thread = threading.Thread(target=sample, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.done = True
        self.thread.join()


def _blocks(X, parts):
    import dask.array as da

    return da.from_array(X, chunks=(-(-X.shape[0] // parts), -1), asarray=False)


def p_at_1(model, X, Y):
    from skbolt.metrics import precision_at_k

    ids, _ = model.predict_topk(X, 1)
    return precision_at_k(Y, ids, k=1)


def run_set(name, X, Y, X_test, Y_test, params, workers=(1, 2), average="sum", predict=True,
            interval="auto"):
    import scipy.sparse as sp

    from skbolt import BoltClassifier
    from skbolt.dask import DaskBoltClassifier

    row = {"set": name, "rows": X.shape[0], "classes": Y.shape[1], "average": average,
           "interval": interval}
    start = time.perf_counter()
    local = BoltClassifier(n_jobs=1, **params).fit(X, Y)
    row["local_s_epoch"] = (time.perf_counter() - start) / local.n_iter_
    row["local_p1"] = p_at_1(local, X_test, Y_test)
    row["epochs"] = local.n_iter_
    if predict:  # the test rows five times over: enough work to time
        X_many = sp.vstack([X_test] * 5, format="csr")
        start = time.perf_counter()
        local.predict_topk(X_many, 5)
        row["local_rows_s"] = X_many.shape[0] / (time.perf_counter() - start)
    del local
    for n in workers:
        cluster, client = _cluster(n)
        try:
            model = DaskBoltClassifier(client=client, sync_interval=interval, **params)
            model._average = average
            pids = client.run(os.getpid).values()
            with PeakRSS(pids) as rss:
                start = time.perf_counter()
                model.fit(_blocks(X, 4 * n), _blocks(Y, 4 * n))
                row[f"w{n}_s_epoch"] = (time.perf_counter() - start) / model.n_iter_
            row[f"w{n}_peak_gb"] = rss.peak / 1e9
            row[f"w{n}_fit_seconds"] = dict(model.fit_seconds_)
            row[f"w{n}_estimate_gb"] = model.memory_bytes_ / 1e9
            row[f"w{n}_p1"] = p_at_1(model.to_local(), X_test, Y_test)
            if model.sync_bytes_:
                row[f"w{n}_syncs_epoch"] = len(model.sync_bytes_) / model.n_iter_
                row[f"w{n}_mb_sync"] = float(np.mean(model.sync_bytes_)) / 1e6
            if predict and n == max(workers):
                dX = _blocks(X_many, 4 * n)
                start = time.perf_counter()
                model.predict_topk(dX, 5)[0].compute()
                row[f"w{n}_first_rows_s"] = X_many.shape[0] / (time.perf_counter() - start)
                start = time.perf_counter()  # the model is on the workers now
                model.predict_topk(dX, 5)[0].compute()
                row[f"w{n}_rows_s"] = X_many.shape[0] / (time.perf_counter() - start)
        finally:
            client.close()
            cluster.close()
    return row


def run_recommender(n_users=20_000, n_items=5_000, workers=(1, 2)):
    """BoltRecommender against DaskBoltRecommender on a synthetic catalogue:
    NDCG@10 of held-out users (fold-in rows, 20% targets)."""
    from skbolt import BoltRecommender
    from skbolt.dask import DaskBoltRecommender
    from skbolt.datasets import make_interactions, split_users

    s = split_users(make_interactions(n_users, n_items, n_groups=50, random_state=0).X,
                    test_size=0.2, random_state=0)
    params = dict(random_state=0, autotune=False)
    row = {"set": "recommender", "rows": s.train.shape[0], "classes": n_items}
    start = time.perf_counter()
    # the trained network, as DaskBoltRecommender always trains it (the
    # local default since 79a3c9b is the SVD start, with no epochs)
    local = BoltRecommender(n_jobs=1, init="centroids", **params).fit(s.train)
    row["local_s_epoch"] = (time.perf_counter() - start) / local.n_iter_
    row["local_ndcg"] = local.score(s.test_in, s.test_out)
    row["epochs"] = local.n_iter_
    for n in workers:
        cluster, client = _cluster(n)
        try:
            model = DaskBoltRecommender(client=client, **params)
            start = time.perf_counter()
            model.fit(_blocks(s.train, 4 * n))
            row[f"w{n}_s_epoch"] = (time.perf_counter() - start) / model.n_iter_
            row[f"w{n}_ndcg"] = model.to_local().score(s.test_in, s.test_out)
            if model.sync_bytes_:
                row[f"w{n}_mb_sync"] = float(np.mean(model.sync_bytes_)) / 1e6
                row[f"w{n}_syncs_epoch"] = len(model.sync_bytes_) / model.n_iter_
        finally:
            client.close()
            cluster.close()
    print(f"  recommender {n_items:,} items {row['rows']:,} users {row['epochs']} ep: NDCG@10 "
          f"local {row['local_ndcg']:.3f}" + "".join(
              f" / {n}w {row[f'w{n}_ndcg']:.3f}" for n in workers) + "; s/epoch local "
          f"{row['local_s_epoch']:.2f}" + "".join(
              f" / {n}w {row[f'w{n}_s_epoch']:.2f}" for n in workers), flush=True)
    return row


def show(row):
    parts = [f"{row['set']:>12} {row['classes']:>9,} classes {row['rows']:>6,} rows "
             f"{row['epochs']} ep ({row['average']}, sync_interval {row['interval']})"]
    parts.append(f"P@1 local {row['local_p1']:.3f}" + "".join(
        f" / {n}w {row[f'w{n}_p1']:.3f}" for n in (1, 2) if f"w{n}_p1" in row))
    parts.append(f"s/epoch local {row['local_s_epoch']:.2f}" + "".join(
        f" / {n}w {row[f'w{n}_s_epoch']:.2f}" for n in (1, 2) if f"w{n}_s_epoch" in row))
    parts.append("peak RSS per worker GB" + "".join(
        f" / {n}w {row[f'w{n}_peak_gb']:.2f} (plan {row[f'w{n}_estimate_gb']:.2f})"
        for n in (1, 2) if f"w{n}_peak_gb" in row))
    for n in (1, 2):
        if f"w{n}_fit_seconds" in row:
            parts.append(f"{n}w fit seconds: " + ", ".join(
                f"{k} {v:.1f}" for k, v in row[f"w{n}_fit_seconds"].items()))
    if "w2_mb_sync" in row:
        parts.append(f"{row['w2_syncs_epoch']:.0f} syncs/epoch of {row['w2_mb_sync']:.2f} MB")
    if "w2_rows_s" in row:
        parts.append(f"top-5 rows/s local {row['local_rows_s']:,.0f} / 2w "
                     f"{row['w2_rows_s']:,.0f} ({row['w2_rows_s'] / row['local_rows_s']:.2f}x; "
                     f"first call, model shipped: {row['w2_first_rows_s']:,.0f})")
    print("  " + "\n    ".join(parts), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--full", action="store_true")
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--intervals", nargs="+", default=["auto"],
                        help="sync_interval values for the scale sets' two workers")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    import scipy.sparse as sp

    from skbolt.datasets import load_bibtex, make_extreme_classification

    rows = args.rows or (20_000 if args.quick else 40_000)
    results = []

    X, Y = make_extreme_classification(3000, 800, 300, multilabel=True, n_labels=3,
                                       random_state=1)
    Y = sp.csr_matrix(Y)
    small = dict(random_state=0, max_iter=8, autotune=False)
    for average in ("sum", "mean"):
        results.append(run_set("averaging", X[:2500], Y[:2500], X[2500:], Y[2500:], small,
                               workers=(2,), average=average, predict=False))
        show(results[-1])

    sizes = [10_000] if args.quick else [10_000, 100_000]
    if args.full:
        sizes.append(1_000_000)
    for classes in sizes:
        X, Y = make_extreme_classification(rows + 10_000, 50_000, classes, multilabel=True,
                                           random_state=0)
        params = dict(hidden_layer_sizes=(128,), batch_size=1024, max_iter=3,
                      output_sparsity=min(1.0, 500 / classes), autotune=False,
                      centroid_finish=False, random_state=0)
        label = f"scale-{classes // 1000}k" if classes < 10**6 else "scale-1M"
        for i, interval in enumerate(args.intervals):
            interval = interval if interval == "auto" else int(interval)
            results.append(run_set(label, sp.csr_matrix(X[:rows]), sp.csr_matrix(Y[:rows]),
                                   X[rows:], Y[rows:], params, interval=interval,
                                   workers=(1, 2) if i == 0 else (2,), predict=i == 0))
            show(results[-1])

    if not args.quick:
        results.append(run_recommender())
        try:
            X_train, Y_train, X_test, Y_test = load_bibtex()
        except (OSError, ValueError) as error:
            print(f"  bibtex skipped: {error}")
        else:
            results.append(run_set("bibtex", X_train, Y_train, X_test, Y_test,
                                   dict(random_state=0)))
            show(results[-1])

    if args.out:
        with open(args.out, "w") as f:
            json.dump({"command": "python benchmarks/bench_dask.py" + (
                " --quick" if args.quick else "") + (" --full" if args.full else ""),
                "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
