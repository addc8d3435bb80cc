"""How well the autotuner's cost model predicts what training costs.

For each network shape (hidden width x output sparsity x batch size) on a
synthetic problem: seconds to create the network, seconds of the first
epoch (tables still learning) and of a frozen epoch, and what
``skbolt._autotune`` predicts for each. Prints per shape the first/frozen
epoch ratio (FIRST_EPOCH_COST assumes its median), creation time in frozen
visits next to setup_cost's, and measured vs modelled per-visit cost
relative to the rules' own network (the search plans with the latter).

Usage::

    python benchmarks/bench_cost_model.py --datasets synth10k synth100k --rows 20000
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_autotune import load  # noqa: E402  (same synthetic data)

from skbolt import BoltClassifier, _autotune, _config  # noqa: E402
from skbolt._network import Network  # noqa: E402


def measure(X, Y, overrides, threads):
    n, d = X.shape
    C = Y.shape[1]
    nnz = X.nnz / n
    resolved = _config.resolve({**BoltClassifier().get_params(), **overrides}, n, d, C, nnz, True)
    cfg = _config.network_config(resolved, d, C, 1)
    start = time.perf_counter()
    net = Network(cfg)
    create = time.perf_counter() - start
    rows = np.random.RandomState(0).permutation(n)
    epochs = []
    for frozen in (False, True):
        net.set_frozen(frozen)
        start = time.perf_counter()
        net.train(X, Y, rows, resolved["batch_size"], 1e-3, threads)
        epochs.append(time.perf_counter() - start)
    return {"overrides": {k: list(v) if isinstance(v, tuple) else v for k, v in overrides.items()},
            "create_s": create, "first_epoch_s": epochs[0], "frozen_epoch_s": epochs[1],
            "model_visit": _autotune.sample_cost(resolved, nnz, C),
            "model_setup": _autotune.setup_cost(resolved, d, C)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["synth10k", "synth100k"])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    results = []
    for name in args.datasets:
        X, Y, _, _ = load(name)
        X, Y = X[: args.rows], Y[: args.rows]
        base = _config.bolt_output_sparsity(Y.shape[1])
        rows = []
        for width in (128, 512, 1024):
            for sparsity in (base / 2, base * 2):
                for batch in (256, 1024):
                    rows.append(measure(X, Y, {"hidden_layer_sizes": (width,),
                                               "output_sparsity": sparsity,
                                               "batch_size": batch}, args.threads))
        rules = measure(X, Y, {}, args.threads)
        n = X.shape[0]
        print(f"{name} ({n} rows, {Y.shape[1]} classes)")
        print("| width | sparsity | batch | first / frozen epoch | creation in visits: "
              "measured / model | per visit vs rules: measured / model |")
        print("|---|---|---|---|---|---|")
        for r in rows + [rules]:
            per_visit = r["frozen_epoch_s"] / n
            o = r["overrides"]
            print(f"| {o.get('hidden_layer_sizes', 'rules')} | {o.get('output_sparsity', 'rules')} "
                  f"| {o.get('batch_size', 'rules')} | {r['first_epoch_s'] / r['frozen_epoch_s']:.2f} "
                  f"| {r['create_s'] / per_visit:.0f} / {r['model_setup'] / r['model_visit']:.0f} "
                  f"| {per_visit / (rules['frozen_epoch_s'] / n):.2f} / "
                  f"{r['model_visit'] / rules['model_visit']:.2f} |")
        ratios = [r["first_epoch_s"] / r["frozen_epoch_s"] for r in rows]
        print(f"median first / frozen epoch: {np.median(ratios):.2f} "
              f"(FIRST_EPOCH_COST = {_autotune.FIRST_EPOCH_COST})\n")
        results.append({"dataset": name, "rows": rows, "rules": rules})
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
