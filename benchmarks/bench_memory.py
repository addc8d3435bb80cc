"""Peak memory of a fit against the memory it announced.

For each label count, a fresh process generates
``make_extreme_classification(--rows, --features, labels, multilabel=True)``
(an indicator matrix, so the model has every label's output), asks
``BoltClassifier(max_iter=1).estimate_memory`` for the fit's bytes, then
fits one epoch and predicts the top 5 of 10,000 rows. Reported: the
estimate (by part), the process's resident set before the fit, its peak
(``VmHWM``) after fit and predict, and their difference against the
estimate. The difference also holds what the fit allocates beside the
network (the label matrix, the row permutation, the validated copy of X),
so a ratio a little under 1 means the estimate covers the fit.

Usage::

    python benchmarks/bench_memory.py            # 100k and 1M labels, ~15 min, ~10 GB
    python benchmarks/bench_memory.py --quick    # 10k and 100k labels
"""
import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from bench_xc_peers import machine


def status(field, pid="self"):
    """Bytes of a /proc/PID/status field (VmRSS, VmHWM, VmPeak)."""
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(field + ":"))


def one(rows, features, labels, hidden):
    import numpy as np

    from skbolt import BoltClassifier
    from skbolt.datasets import make_extreme_classification

    start = time.perf_counter()
    # the indicator form: the model has all ``labels`` outputs, however
    # many of them the rows happen to use
    X, y = make_extreme_classification(rows, features, labels, multilabel=True,
                                       random_state=0)
    made = time.perf_counter() - start
    params = dict(max_iter=1, autotune=False, random_state=0)
    if hidden:
        params["hidden_layer_sizes"] = (hidden,)
    clf = BoltClassifier(**params)
    estimate = clf.estimate_memory(X, y)
    before = status("VmRSS")
    start = time.perf_counter()
    clf.fit(X, y)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    ids, _ = clf.predict_topk(X[:10_000], k=5)
    predict_s = time.perf_counter() - start
    peak = status("VmHWM")
    return {
        "rows": rows, "features": features, "labels": labels,
        "labels_used": int((y.getnnz(axis=0) > 0).sum()),
        "hidden_layer_sizes_": list(clf.hidden_layer_sizes_),
        "estimate": estimate, "memory_bytes_": clf.memory_bytes_,
        "rss_before_fit": before, "peak_rss": peak, "peak_minus_before": peak - before,
        "ratio_to_estimate": round((peak - before) / estimate["total"], 3),
        "generate_seconds": round(made, 1), "fit_seconds": round(fit_s, 1),
        "predict_10k_seconds": round(predict_s, 2),
        "p_at_1_train_rows": float(y[np.arange(10_000), ids[:, 0]].mean()),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--features", type=int, default=50_000)
    parser.add_argument("--labels", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--hidden", type=int, default=0, help="0: the rules' width")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.rows, args.features, args.labels[0], args.hidden)))
        return
    labels = [10_000, 100_000] if args.quick else args.labels
    rows = 50_000 if args.quick else args.rows
    results = []
    for n_labels in labels:  # a process each: VmHWM starts from nothing
        out = subprocess.run([sys.executable, __file__, "--one", "--rows", str(rows),
                              "--features", str(args.features), "--labels", str(n_labels),
                              "--hidden", str(args.hidden)],
                             capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        results.append(r)
        e = r["estimate"]
        print(f"{n_labels:>9,} labels, hidden {r['hidden_layer_sizes_']}: estimate "
              f"{e['total'] / 1e9:.2f} GB (weights {e['weights'] / 1e9:.2f}, optimizer "
              f"{e['optimizer'] / 1e9:.2f}, tables {e['tables'] / 1e9:.2f}, buffers "
              f"{e['buffers'] / 1e9:.2f}, snapshot {e['snapshot'] / 1e9:.2f}); peak RSS "
              f"{r['peak_rss'] / 1e9:.2f} GB, {r['rss_before_fit'] / 1e9:.2f} before fit: "
              f"+{r['peak_minus_before'] / 1e9:.2f} GB = {r['ratio_to_estimate']:.2f} x the "
              f"estimate; fit {r['fit_seconds']} s, predict 10k {r['predict_10k_seconds']} s",
              flush=True)
    write_results("memory", args.quick, args.out, results)


def write_results(stem, quick, out, results):
    """``results`` and the machine as JSON at ``out``, or by default at
    results/<stem>.json (<stem>_quick.json with ``quick``)."""
    name = f"{stem}_quick.json" if quick else f"{stem}.json"
    path = Path(out) if out else Path(__file__).parent / "results" / name
    path.write_text(json.dumps({"machine": machine(), "results": results}, indent=1) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
