"""How well the autotuner's cost model predicts what training costs.

For each network shape (hidden width x output sparsity x batch size) on a
synthetic problem: seconds to create the network, seconds of the first
epoch (tables still learning) and of a frozen epoch, and what
``skbolt._autotune`` predicts for each. Prints per shape the first/frozen
epoch ratio (FIRST_EPOCH_COST assumes its median), creation time in frozen
visits next to setup_cost's, and measured vs modelled per-visit cost
relative to the rules' own network (the search plans with the latter).

Then fits the model's free constants to every shape measured in the run
(ADAM_UNITS and PROBE_UNITS by least squares on log per-visit time
relative to the rules' network, first and frozen epochs alike; the setup
constants by least squares on creation time) and prints them.

It calibrates constants of a private module (``skbolt._autotune``), so it
reads them and the network shapes the rules resolve (``skbolt._rules``)
directly; it changes nothing in them: candidate constants are passed to
``sample_cost`` as a ``CostUnits``.

Usage::

    python benchmarks/bench_cost_model.py --datasets synth10k synth100k --rows 20000 \
        --out benchmarks/results/cost_model.json
    python benchmarks/bench_cost_model.py --refit benchmarks/results/cost_model.json
    python benchmarks/bench_cost_model.py --first-touch news20 synth10k
"""
import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_autotune import load

from skbolt import BoltClassifier, _autotune, _rules
from skbolt._network import Network


def measure(X, Y, overrides, threads):
    n, d = X.shape
    C = Y.shape[1]
    nnz = X.nnz / n
    resolved = _rules.resolve({**BoltClassifier().get_params(), **overrides}, n, d, C, nnz, True)
    cfg = _rules.network_config(resolved, d, C, 1)
    start = time.perf_counter()
    net = Network(cfg)
    create = time.perf_counter() - start
    rows = np.random.RandomState(0).permutation(n)
    epochs = []
    for frozen in (False, True):
        net.set_frozen(frozen)
        start = time.perf_counter()
        net.train(X, Y, rows, resolved.batch_size, 1e-3, threads)
        epochs.append(time.perf_counter() - start)
    return {"overrides": {k: list(v) if isinstance(v, tuple) else v for k, v in overrides.items()},
            "create_s": create, "first_epoch_s": epochs[0], "frozen_epoch_s": epochs[1],
            "model_visit": _autotune.sample_cost(resolved, nnz, C),
            "model_setup": _autotune.setup_cost(resolved, d, C)}


def _resolve(stats, overrides):
    """Resolved parameters of a measured shape, from the data's statistics."""
    overrides = {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()}
    return _rules.resolve({**BoltClassifier().get_params(), **overrides}, stats["n"],
                           stats["d"], stats["C"], stats["nnz"], True)


def fit_constants(results):
    """Least-squares fit of ADAM_UNITS / PROBE_UNITS and the setup constants
    to measured shapes."""
    shapes = []
    for entry in results:
        stats, rules = entry["stats"], entry["rules"]
        base = _resolve(stats, rules["overrides"])
        for r in entry["rows"] + [rules]:
            shapes.append((_resolve(stats, r["overrides"]), base, stats, r, rules))
    best, plain = None, None
    # (1, 0) first: the model without Adam saturation or probe costs
    for adam, probe in [(1, 0)] + list(itertools.product(
            [1, 2, 4, 6, 8, 10, 12, 16], [0, 200, 400, 600, 700, 800, 900, 1000, 1500, 2000])):
        units = _autotune.CostUnits(adam=adam, probe=probe)
        errors = []
        for res, base, stats, r, rules in shapes:
            model = (_autotune.sample_cost(res, stats["nnz"], stats["C"], units)
                     / _autotune.sample_cost(base, stats["nnz"], stats["C"], units))
            for key in ("first_epoch_s", "frozen_epoch_s"):
                errors.append(np.log(r[key] / rules[key] / model))
        rms = float(np.sqrt(np.mean(np.square(errors))))
        if plain is None:
            plain = (rms, float(np.exp(np.max(np.abs(errors)))))
        if best is None or rms < best[0]:
            best = (rms, adam, probe, float(np.exp(np.max(np.abs(errors)))))
    fitted = _autotune.CostUnits(adam=best[1], probe=best[2])
    rows, units = [], []
    for res, _, stats, r, _ in shapes:
        per_visit_s = r["frozen_epoch_s"] / stats["n"]
        units.append(r["create_s"] / per_visit_s
                     * _autotune.sample_cost(res, stats["nnz"], stats["C"], fitted))
        widths = (stats["d"], *res.hidden_layer_sizes, stats["C"])
        rows.append([stats["C"] * res.hash_params["L"],
                     sum(a * b for a, b in zip(widths[:-1], widths[1:]))])
    rows, units = np.array(rows, float), np.array(units)
    setup, *_ = np.linalg.lstsq(rows / units[:, None], np.ones(len(units)), rcond=None)
    firsts = [r["first_epoch_s"] / r["frozen_epoch_s"] for _, _, _, r, _ in shapes]
    print(f"fitted on {len(shapes)} shapes: ADAM_UNITS {best[1]}, PROBE_UNITS {best[2]} "
          f"(per-visit error rms {np.expm1(best[0]):.0%}, worst {best[3]:.2f}x; without "
          f"those terms rms {np.expm1(plain[0]):.0%}, worst {plain[1]:.2f}x); "
          f"TABLE_INSERT_UNITS {setup[0]:.0f}, WEIGHT_INIT_UNITS {setup[1]:.1f}; "
          f"median first / frozen epoch {np.median(firsts):.2f}")
    return best, setup


def first_touch(name, threads, chunk=2048):
    """One-time cost of a new network's first steps (page faults on the
    weights and optimizer state), for dense and sampled output layers
    alike: the first chunk of rows against the mean of two later ones."""
    import scipy.sparse as sp

    from skbolt._network import labels_to_csr

    X, y, _, _ = load(name)
    if np.ndim(y) == 1:
        _, idx = np.unique(y, return_inverse=True)
        Y = labels_to_csr(idx, int(idx.max()) + 1)
    else:
        Y = sp.csr_matrix(y)
    n, d = X.shape
    C = Y.shape[1]
    nnz = X.nnz / n
    rows = np.random.RandomState(0).permutation(n)[: 3 * chunk]
    for width in (256, 512):
        resolved = _rules.resolve({**BoltClassifier().get_params(), "hidden_layer_sizes": (width,)},
                                   n, d, C, nnz, np.ndim(y) == 2)
        net = Network(_rules.network_config(resolved, d, C, 1))
        times = []
        for i in range(3):
            start = time.perf_counter()
            net.train(X, Y, rows[i * chunk:(i + 1) * chunk], resolved.batch_size, 1e-3, threads)
            times.append(time.perf_counter() - start)
        later = np.mean(times[1:]) / chunk
        weights = d * width + width * C
        units = (times[0] / chunk - later) * chunk / later * _autotune.sample_cost(resolved, nnz, C)
        print(f"{name} width {width}: first {chunk} rows {times[0]:.3f} s, later "
              f"{np.mean(times[1:]):.3f} s: first touch {units / weights:.0f} units per weight "
              f"(FIRST_TOUCH_UNITS = {_autotune.FIRST_TOUCH_UNITS})")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["synth10k", "synth100k"])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=None)
    parser.add_argument("--refit", default=None, metavar="JSON",
                        help="fit the constants to an earlier run's --out file, measuring nothing")
    parser.add_argument("--first-touch", nargs="*", default=[], metavar="DATASET",
                        help="only measure the first-touch cost of new networks on these sets")
    args = parser.parse_args()
    if args.first_touch:
        for name in args.first_touch:
            first_touch(name, args.threads)
        return
    if args.refit:
        with open(args.refit) as f:
            fit_constants(json.load(f))
        return
    results = []
    for name in args.datasets:
        X, Y, _, _ = load(name)
        X, Y = X[: args.rows], Y[: args.rows]
        base = _rules.bolt_output_sparsity(Y.shape[1])
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
                  f"| {o.get('batch_size', 'rules')} "
                  f"| {r['first_epoch_s'] / r['frozen_epoch_s']:.2f} "
                  f"| {r['create_s'] / per_visit:.0f} / {r['model_setup'] / r['model_visit']:.0f} "
                  f"| {per_visit / (rules['frozen_epoch_s'] / n):.2f} / "
                  f"{r['model_visit'] / rules['model_visit']:.2f} |")
        ratios = [r["first_epoch_s"] / r["frozen_epoch_s"] for r in rows]
        print(f"median first / frozen epoch: {np.median(ratios):.2f} "
              f"(FIRST_EPOCH_COST = {_autotune.FIRST_EPOCH_COST})\n")
        results.append({"dataset": name, "rows": rows, "rules": rules,
                        "stats": {"dataset": name, "n": n, "d": X.shape[1], "C": Y.shape[1],
                                  "nnz": X.nnz / n}})
    fit_constants(results)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
