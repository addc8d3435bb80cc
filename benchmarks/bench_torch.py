"""skbolt against the same network trained dense in PyTorch, on the CPU.

Both systems train the same architecture (sparse input -> ReLU hidden layer
of the same width -> one output per class), with the same batch size, the
same number of epochs and Adam at the same learning rate, on the same data
and threads. Each (dataset, system) runs in its own subprocess, skbolt and
PyTorch back to back, so peak RSS is per system. The script prints, per
dataset: seconds per epoch for both and their ratio, top-5 inference seconds
for both and their ratio, P@1 / P@5 for both, and peak RSS; it writes the
same figures as JSON.

Usage (from the checkout, with skbolt installed and ``pip install torch``)::

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_torch.py \
        --datasets bibtex synth10k synth100k --out benchmarks/results/torch.json

Datasets: ``bibtex`` is the real multi-label Bibtex split (from
``$SKBOLT_DATA``); ``synth10k`` and ``synth100k`` come from
``skbolt.datasets.make_extreme_classification`` with the seeds below, one
label per row, stored as an indicator so the output layer has exactly
``n_classes`` neurons for both systems.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

# name -> (n_train, n_test, n_features, n_classes, seed)
SYNTHETIC = {
    "synth10k": (50_000, 10_000, 20_000, 10_000, 1),
    "synth100k": (100_000, 10_000, 50_000, 100_000, 2),
}


def load(name):
    """(X_train, Y_train, X_test, Y_test) with Y as CSR label indicators."""
    if name == "bibtex":
        from skbolt.datasets import load_bibtex

        return load_bibtex()
    from skbolt.datasets import make_extreme_classification

    n_train, n_test, d, C, seed = SYNTHETIC[name]
    X, Y = make_extreme_classification(n_samples=n_train + n_test, n_features=d, n_classes=C,
                                       multilabel=True, n_labels=1, random_state=seed)
    return X[:n_train], Y[:n_train], X[n_train:], Y[n_train:]


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_skbolt(data, args):
    from skbolt import BoltClassifier

    X, Y, Xt, _ = data
    clf = BoltClassifier(hidden_layer_sizes=(args.hidden,), batch_size=args.batch,
                         learning_rate_init=args.lr, dropout=args.dropout, max_iter=1,
                         autotune=False, random_state=0, n_jobs=args.threads,
                         warm_start=True, n_iter_no_change=10**6)
    epochs = []
    for _ in range(args.epochs):
        start = time.perf_counter()
        clf.fit(X, Y)  # warm_start: one more epoch on the same network
        epochs.append(time.perf_counter() - start)
    start = time.perf_counter()
    ids, _ = clf.predict_topk(Xt, k=5)
    infer = time.perf_counter() - start
    extra = {"active_size": clf.hash_params_["active_size"], "hash_params": clf.hash_params_,
             "sparse_inference": clf.sparse_inference_}
    return epochs, infer, ids, extra


def _torch_batches(X, Y, order, batch):
    import torch

    for start in range(0, len(order), batch):
        rows = order[start:start + batch]
        xb, yb = X[rows], Y[rows]
        offsets = torch.from_numpy(xb.indptr[:-1].astype(np.int64))
        idx = torch.from_numpy(xb.indices.astype(np.int64))
        vals = torch.from_numpy(xb.data.astype(np.float32))
        yield idx, offsets, vals, yb


def run_torch(data, args):
    import torch

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    X, Y, Xt, Yt = data
    d, C = X.shape[1], Y.shape[1]
    # EmbeddingBag(mode="sum") with per-sample weights is PyTorch's sparse
    # input layer: the sum over a row's nonzeros of x_j * W[j]
    emb = torch.nn.EmbeddingBag(d, args.hidden, mode="sum")
    bias = torch.nn.Parameter(torch.zeros(args.hidden))
    out = torch.nn.Linear(args.hidden, C)
    # skbolt's initialisation: Glorot-uniform weights, zero biases
    torch.nn.init.xavier_uniform_(emb.weight)
    torch.nn.init.xavier_uniform_(out.weight)
    torch.nn.init.zeros_(out.bias)
    params = list(emb.parameters()) + [bias] + list(out.parameters())
    opt = torch.optim.Adam(params, lr=args.lr, eps=1e-7)
    rng = np.random.RandomState(0)
    epochs = []
    for _ in range(args.epochs):
        start = time.perf_counter()
        for idx, offsets, vals, yb in _torch_batches(X, Y, rng.permutation(X.shape[0]), args.batch):
            h = torch.relu(emb(idx, offsets, per_sample_weights=vals) + bias)
            if args.dropout:
                h = torch.nn.functional.dropout(h, args.dropout, training=True)
            logp = torch.log_softmax(out(h), dim=1)
            # the target spreads 1/|Y| over each row's labels, as skbolt's softmax loss
            counts = np.diff(yb.indptr)
            r = torch.from_numpy(np.repeat(np.arange(yb.shape[0]), counts))
            c = torch.from_numpy(yb.indices.astype(np.int64))
            w = torch.from_numpy(np.repeat(1.0 / np.maximum(counts, 1), counts).astype(np.float32))
            loss = -(w * logp[r, c]).sum() / yb.shape[0]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        epochs.append(time.perf_counter() - start)
    start = time.perf_counter()
    ids = []
    with torch.no_grad():
        for idx, offsets, vals, _ in _torch_batches(Xt, Yt, np.arange(Xt.shape[0]), 1024):
            h = torch.relu(emb(idx, offsets, per_sample_weights=vals) + bias)
            ids.append(torch.topk(out(h), 5, dim=1).indices.numpy())
    infer = time.perf_counter() - start
    return epochs, infer, np.vstack(ids), {}


def worker(args):
    from skbolt.metrics import precision_at_k

    data = load(args.dataset)
    run = run_skbolt if args.system == "skbolt" else run_torch
    epochs, infer, ids, extra = run(data, args)
    Yt = data[3]
    result = {
        "dataset": args.dataset, "system": args.system, "threads": args.threads,
        "n_train": data[0].shape[0], "n_test": Yt.shape[0], "n_features": data[0].shape[1],
        "n_classes": Yt.shape[1], "hidden": args.hidden, "dropout": args.dropout,
        "batch": args.batch, "lr": args.lr,
        "epochs": args.epochs, "epoch_seconds": epochs,
        "seconds_per_epoch": float(np.mean(epochs)), "top5_infer_seconds": infer,
        "p_at_1": precision_at_k(Yt, ids, k=1), "p_at_5": precision_at_k(Yt, ids, k=5),
        "peak_rss_mb": peak_rss_mb(), **extra,
    }
    print(json.dumps(result))


# dataset -> (epochs, batch, lr, hidden width, dropout), given to both
# systems: the network skbolt's rules chose for that data when the figures
# in benchmarks/README.md were measured (commit 96b0b18)
DEFAULTS = {
    "bibtex": (25, 256, 1e-3, 512, 0.5),
    "synth10k": (5, 1024, 1e-3, 256, 0.0),
    "synth100k": (3, 1024, 1e-3, 256, 0.0),
}


def spawn(system, dataset, args, threads):
    epochs, batch, lr, hidden, dropout = DEFAULTS[dataset]
    cmd = [sys.executable, __file__, "--worker", "--system", system, "--dataset", dataset,
           "--threads", str(threads), "--hidden", str(args.hidden or hidden),
           "--dropout", str(dropout), "--epochs", str(args.epochs or epochs),
           "--batch", str(batch), "--lr", str(lr)]
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{system} on {dataset} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["bibtex", "synth10k", "synth100k"])
    parser.add_argument("--systems", nargs="+", default=["skbolt", "torch"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--thread-scaling", action="store_true",
                        help="also run skbolt with 1 thread to report the 2-vs-1 speedup")
    parser.add_argument("--hidden", type=int, default=None, help="override the hidden width")
    parser.add_argument("--epochs", type=int, default=None, help="override the per-dataset epochs")
    parser.add_argument("--out", default=None, help="write all results as JSON here")
    # worker mode
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--system", help=argparse.SUPPRESS)
    parser.add_argument("--dataset", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--lr", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--dropout", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)

    results = []
    for dataset in args.datasets:
        for system in args.systems:
            r = spawn(system, dataset, args, args.threads)
            results.append(r)
            print(f"  {dataset:10s} {system:7s} {r['seconds_per_epoch']:8.2f} s/epoch  "
                  f"top-5 {r['top5_infer_seconds']:7.3f} s  P@1 {r['p_at_1']:.4f}  "
                  f"P@5 {r['p_at_5']:.4f}  peak RSS {r['peak_rss_mb']:.0f} MB", flush=True)
        if args.thread_scaling and "skbolt" in args.systems and args.threads > 1:
            r = spawn("skbolt", dataset, args, 1)
            results.append(r)
            print(f"  {dataset:10s} skbolt, 1 thread: {r['seconds_per_epoch']:.2f} s/epoch",
                  flush=True)

    print()
    print("| dataset | classes | s/epoch skbolt | s/epoch torch | train speedup | top-5 s skbolt "
          "| top-5 s torch | infer speedup | P@1 skbolt | P@1 torch | P@5 skbolt | P@5 torch "
          "| RSS MB skbolt | RSS MB torch |")
    print("|" + "---|" * 14)
    for dataset in args.datasets:
        by = {(r["system"], r["threads"]): r for r in results if r["dataset"] == dataset}
        s, t = by.get(("skbolt", args.threads)), by.get(("torch", args.threads))
        if not (s and t):
            continue
        print(f"| {dataset} | {s['n_classes']} | {s['seconds_per_epoch']:.2f} | "
              f"{t['seconds_per_epoch']:.2f} | "
              f"{t['seconds_per_epoch'] / s['seconds_per_epoch']:.1f}x | "
              f"{s['top5_infer_seconds']:.3f} | {t['top5_infer_seconds']:.3f} | "
              f"{t['top5_infer_seconds'] / s['top5_infer_seconds']:.1f}x | {s['p_at_1']:.4f} | "
              f"{t['p_at_1']:.4f} | {s['p_at_5']:.4f} | {t['p_at_5']:.4f} | "
              f"{s['peak_rss_mb']:.0f} | {t['peak_rss_mb']:.0f} |")
        one = by.get(("skbolt", 1))
        if one:
            print(f"|   {dataset}: skbolt 2 threads vs 1: "
                  f"{one['seconds_per_epoch'] / s['seconds_per_epoch']:.2f}x faster |")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"machine": machine(), "results": results}, f, indent=1)


def machine():
    import platform

    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "date": time.strftime("%Y-%m-%d")}


if __name__ == "__main__":
    main()
