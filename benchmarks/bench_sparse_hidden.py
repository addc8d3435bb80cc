"""LSH-sparse hidden layers (issue 36) against the dense default, on text.

Inputs are feature-hashed 1-2-grams (``HashingVectorizer``, 2^15 features,
no alternating signs, l2 rows), as BOLT hashes its text. Every skbolt run
trains ``--epochs`` epochs without a search (``autotune=False``), with
``random_state=0`` and ``n_jobs=--threads``, in a spawned process of its
own so that its peak RSS is its own:

- ``dense``: the default network (``hidden_layer_sizes="auto"``, dense);
- ``W@s``: one hidden layer of W units at ``hidden_sparsity=s``.

Reported per run: test accuracy, fit seconds, seconds per epoch, the ratio
of that to the dense run's, prediction microseconds per test row (one
``predict`` of the whole test set), peak RSS and the parameter count.
LinearSVC (C=1, on the same hashed features) is the peer line.

Usage::

    python benchmarks/bench_sparse_hidden.py --quick   # TREC and MR, fewer widths
    python benchmarks/bench_sparse_hidden.py           # + 20 Newsgroups, ohsumed23

Results go to ``benchmarks/results/sparse_hidden[_quick].json``. The data
folder is skbolt's (``SKBOLT_DATA`` or ``shared/data`` beside the checkout).
"""
import argparse
import json
import multiprocessing
import time
import traceback
from pathlib import Path

import numpy as np
from bench_real import load_text, missing_reason, peak_rss_mb
from bench_xc_peers import machine

HERE = Path(__file__).resolve().parent
N_FEATURES = 2**15
QUICK_SETS = ("trec", "mr")
FULL_SETS = ("trec", "mr", "20newsgroups", "ohsumed23")
QUICK_MODELS = ("dense", "2000@0.05", "10000@0.05", "10000@0.005")
FULL_MODELS = ("dense", "2000@0.05", "2000@0.01", "10000@0.05", "10000@0.01", "10000@0.005")


def features(name):
    """Hashed 1-2-gram features and labels of a text set."""
    from sklearn.feature_extraction.text import HashingVectorizer

    docs, y, docs_t, y_t = load_text(name)
    vec = HashingVectorizer(n_features=N_FEATURES, ngram_range=(1, 2), alternate_sign=False,
                            norm="l2", dtype=np.float32)
    return vec.transform(docs), np.asarray(y), vec.transform(docs_t), np.asarray(y_t)


def run_model(name, model, epochs, threads):
    """One (set, model): its figures."""
    X, y, Xt, yt = features(name)
    if model == "linearsvc":
        from sklearn.svm import LinearSVC

        start = time.perf_counter()
        clf = LinearSVC(C=1.0).fit(X, y)
        fit = time.perf_counter() - start
        start = time.perf_counter()
        acc = float((clf.predict(Xt) == yt).mean())
        return {"accuracy": acc, "fit_seconds": fit,
                "us_per_row": 1e6 * (time.perf_counter() - start) / Xt.shape[0],
                "params": int(clf.coef_.size + clf.intercept_.size)}
    from skbolt import BoltClassifier

    kwargs = {}
    if model != "dense":
        width, sparsity = model.split("@")
        kwargs = {"hidden_layer_sizes": int(width), "hidden_sparsity": float(sparsity)}
    clf = BoltClassifier(max_iter=epochs, autotune=False, random_state=0, n_jobs=threads,
                         **kwargs)
    start = time.perf_counter()
    clf.fit(X, y)
    fit = time.perf_counter() - start
    start = time.perf_counter()
    predicted = clf.predict(Xt)
    us = 1e6 * (time.perf_counter() - start) / Xt.shape[0]
    net = clf._network
    params = sum(w.size + b.size for w, b in (net.get_params(i) for i in range(net.n_layers)))
    return {"accuracy": float((predicted == yt).mean()), "fit_seconds": fit,
            "epoch_seconds": fit / clf.n_iter_, "epochs": clf.n_iter_, "us_per_row": us,
            "params": int(params), "hidden_layer_sizes": list(clf.hidden_layer_sizes_),
            "hidden_sparsity": list(clf.hidden_sparsity_),
            "hidden_tables": clf.hash_params_.get("hidden"),
            "train_rows": X.shape[0], "test_rows": Xt.shape[0],
            "nnz_per_row": X.nnz / X.shape[0]}


def child(name, model, epochs, threads, conn):
    try:
        result = run_model(name, model, epochs, threads)
    except Exception as exc:  # reported, not raised
        result = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
    result["peak_rss_mb"] = peak_rss_mb()
    conn.send(result)
    conn.close()


def in_child(name, model, epochs, threads, timeout):
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    process = context.Process(target=child, args=(name, model, epochs, threads, send))
    process.start()
    send.close()
    try:
        result = receive.recv() if receive.poll(timeout) else {"error": f"timed out ({timeout} s)"}
    except EOFError:
        result = {"error": "the process died without an answer"}
    process.kill()
    process.join()
    return result


def table(results):
    lines = ["| set | model | accuracy | fit s | epoch s | epoch / dense | µs / row | "
             "peak RSS MB | parameters |", "|---|---|---|---|---|---|---|---|---|"]
    for name, runs in results.items():
        dense = runs.get("dense", {}).get("epoch_seconds")
        for model, r in runs.items():
            if "error" in r:
                lines.append(f"| {name} | {model} | {r['error']} |||||||")
                continue
            ratio = (f"{r['epoch_seconds'] / dense:.2f}" if dense and "epoch_seconds" in r
                     else "")
            epoch = f"{r['epoch_seconds']:.2f}" if "epoch_seconds" in r else ""
            lines.append(f"| {name} | {model} | {r['accuracy']:.3f} | {r['fit_seconds']:.1f} | "
                         f"{epoch} | {ratio} | {r['us_per_row']:.0f} | "
                         f"{r['peak_rss_mb']:.0f} | {r['params']:,} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="TREC and MR, four models")
    parser.add_argument("--sets", nargs="*", help="sets to run (default: by --quick)")
    parser.add_argument("--models", nargs="*", help="models to run (default: by --quick)")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--out", help="JSON path (default: results/sparse_hidden[_quick].json)")
    args = parser.parse_args()
    sets = args.sets or (QUICK_SETS if args.quick else FULL_SETS)
    models = list(args.models or (QUICK_MODELS if args.quick else FULL_MODELS)) + ["linearsvc"]
    out = Path(args.out) if args.out else HERE / "results" / (
        "sparse_hidden_quick.json" if args.quick else "sparse_hidden.json")
    results = {}
    for name in sets:
        reason = missing_reason(name)
        if reason:
            print(f"{name}: skipped ({reason})")
            continue
        results[name] = {}
        for model in models:  # back to back, one at a time
            r = in_child(name, model, args.epochs, args.threads, args.timeout)
            results[name][model] = r
            print(name, model, {k: v for k, v in r.items() if k != "traceback"}, flush=True)
    report = {"machine": machine(), "epochs": args.epochs, "threads": args.threads,
              "n_features": N_FEATURES, "results": results}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1, default=str) + "\n")
    print(table(results))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
