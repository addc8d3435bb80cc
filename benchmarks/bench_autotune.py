"""Autotuned defaults against BOLT's rules alone and against a grid search.

For each dataset, on the same machine in one run:

(a) ``BoltClassifier(random_state=0)``: every parameter "auto", autotuning
    on (its default for data this size);
(b) our rules without the search (``autotune=False``), for the time ratio
    the search costs;
(b') BOLT's published rules alone: no search, no rule of ours (hidden width
    256, no dropout, BOLT's table-rebuild schedule), epochs as in (a)'s rule;
(c) a 20-point grid over learning rate x (hidden width, dropout), each point
    fit on 90% of the training data and scored on the other 10%; the best
    point is refit on all the training data. Its time is the sum of all of
    that.

Reported: P@1 on the test split (accuracy for 20 Newsgroups) and fit
seconds; ratios (a) / (c) of time, and the P@1 differences.

Usage::

    python benchmarks/bench_autotune.py --datasets bibtex news20 synth10k synth100k \
        --out benchmarks/results/autotune.json

``--skip-grid synth100k`` leaves out the grid there (more than 45 minutes
on two cores); ``--datasets synth100k --grid-only`` runs only that grid;
``--grid-from results.json`` reuses the grid results of an earlier run (the
grid does not depend on the autotuner, so a change to the search need not
rerun it; the time ratios then compare two runs). ``--grid-lr`` and
``--grid-nets`` (e.g. ``512,0.5``) run part of the grid only, when the whole
would not fit in a session. ``--epoch-curve N`` instead
trains our rules' network (no search) one epoch at a time up to N epochs and
prints test P@1 after each: the measurement behind the epoch rule.

``--peer-sets`` instead runs issue 10's comparison on the sets of
``bench_xc_peers.py`` (``--quick``: its 1/5 quick sets, no synth100k): the
autotuned default, our rules without search, and a grid over the space the
search covers: learning rate x0.5 / x1 / x2 the rules', hidden width 256 /
512 (the rules' and narrower), and where the output layer is sampled
output sparsity x0.5 / x1 and the centroid finish off / on; for multi-label
sets the sigmoid loss too (without the finish, which needs softmax). Every
point is fit on 90% of the training rows and scored on the other 10%
(sparse P@1, as the search scores), the best refit on all of them; the grid's
time is the sum. Reports test P@1 and fit seconds of all three.
"""
import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_torch

from skbolt import BoltClassifier
from skbolt.metrics import precision_at_k

GRID = {
    "learning_rate_init": [3e-4, 1e-3, 3e-3, 1e-2],
    "net": [((256,), 0.0), ((512,), 0.0), ((256,), 0.5), ((512,), 0.5), ((1024,), 0.5)],
}

# Smaller synthetic problems than bench_torch's: a 20-point grid at full size
# would take hours on two cores. name -> (n_train, n_test, n_features, n_classes, seed)
SYNTHETIC = {
    "synth10k": (30_000, 5_000, 20_000, 10_000, 1),
    "synth100k": (50_000, 5_000, 50_000, 100_000, 2),
}


def load(name):
    if name == "news20":
        from sklearn.datasets import load_files
        from sklearn.feature_extraction.text import TfidfVectorizer

        from skbolt.datasets import data_home

        root = data_home() / "text_20newsgroups"
        train = load_files(root / "20news-bydate-train", encoding="latin-1")
        test = load_files(root / "20news-bydate-test", encoding="latin-1")
        vec = TfidfVectorizer(sublinear_tf=True, min_df=2, dtype=np.float32)
        return vec.fit_transform(train.data), train.target, vec.transform(test.data), test.target
    if name in SYNTHETIC:
        from skbolt.datasets import make_extreme_classification

        n_train, n_test, d, C, seed = SYNTHETIC[name]
        X, Y = make_extreme_classification(n_samples=n_train + n_test, n_features=d,
                                           n_classes=C, multilabel=True, n_labels=1,
                                           random_state=seed)
        return X[:n_train], Y[:n_train], X[n_train:], Y[n_train:]
    return bench_torch.load(name)


def score(clf, X, y):
    labels, _ = clf.predict_topk(X, 1)
    if np.ndim(y) == 1:
        return float(np.mean(labels[:, 0] == y))
    return precision_at_k(y, labels, k=1)


def timed_fit(clf, X, y):
    start = time.perf_counter()
    clf.fit(X, y)
    return time.perf_counter() - start


def bolt_rules(**params):
    """A classifier configured by BOLT's rules alone (see module docstring)."""
    return BoltClassifier(random_state=0, autotune=False, hidden_layer_sizes=(256,), dropout=0.0,
                          learning_rate_init=1e-3, rebuild_interval="bolt", **params)


def run(name, args):
    X, y, Xt, yt = load(name)
    out = {"dataset": name, "n_train": X.shape[0], "n_test": Xt.shape[0],
           "n_outputs": y.shape[1] if np.ndim(y) == 2 else len(np.unique(y))}

    if args.grid_only:
        return {**out, **grid_search(X, y, Xt, yt, args)}
    auto = BoltClassifier(random_state=0, n_jobs=args.threads,
                          **({"autotune_budget": args.autotune_budget}
                             if args.autotune_budget else {}))
    out["auto_seconds"] = timed_fit(auto, X, y)
    out["auto_p_at_1"] = score(auto, Xt, yt)
    out["auto_best_params"] = {k: list(v) if isinstance(v, tuple) else v
                               for k, v in auto.best_params_.items()}
    out["auto_trials"] = len(auto.autotune_results_)
    tried = [r["params"].get("hidden_layer_sizes", auto.hidden_layer_sizes_)
             for r in auto.autotune_results_]
    out["auto_widths_tried"] = sorted({h[-1] for h in tried})
    if args.autotune_budget:
        out["autotune_budget"] = args.autotune_budget
    print(f"  {name}: autotuned P@1 {out['auto_p_at_1']:.4f} in {out['auto_seconds']:.1f} s "
          f"({out['auto_trials']} trials, hidden widths tried {out['auto_widths_tried']}, "
          f"best {auto.best_params_})", flush=True)

    plain = BoltClassifier(random_state=0, autotune=False, n_jobs=args.threads)
    out["plain_seconds"] = timed_fit(plain, X, y)
    out["plain_p_at_1"] = score(plain, Xt, yt)
    print(f"  {name}: our rules, no search: P@1 {out['plain_p_at_1']:.4f} in "
          f"{out['plain_seconds']:.1f} s", flush=True)

    bolt = bolt_rules(n_jobs=args.threads)
    out["bolt_seconds"] = timed_fit(bolt, X, y)
    out["bolt_p_at_1"] = score(bolt, Xt, yt)
    print(f"  {name}: BOLT rules P@1 {out['bolt_p_at_1']:.4f} in {out['bolt_seconds']:.1f} s",
          flush=True)

    if name in args.grid_from:
        # the grid does not depend on the autotuner: reuse an earlier run's
        out.update({k: v for k, v in args.grid_from[name].items() if k.startswith("grid")})
        out["grid_from"] = args.grid_from_file
        return out
    if name in args.skip_grid:
        return out
    out.update(grid_search(X, y, Xt, yt, args))
    print(f"  {name}: grid best P@1 {out['grid_p_at_1']:.4f} in {out['grid_seconds']:.1f} s "
          f"(best {out['grid_best_params']})", flush=True)
    return out


def epoch_curve(name, n_epochs, threads):
    """Test P@1 of our rules' network after each of ``n_epochs`` epochs."""
    X, y, Xt, yt = load(name)
    clf = BoltClassifier(random_state=0, autotune=False, n_jobs=threads, warm_start=True,
                         max_iter=1)
    curve, seconds = [], 0.0
    for _ in range(n_epochs):
        seconds += timed_fit(clf, X, y)  # warm start: one more epoch
        curve.append({"epoch": len(clf.loss_curve_), "seconds": seconds,
                      "p_at_1": score(clf, Xt, yt)})
        print(f"  {name}: epoch {curve[-1]['epoch']}: test P@1 {curve[-1]['p_at_1']:.4f} "
              f"({seconds:.0f} s)", flush=True)
    return {"dataset": name, "epoch_curve": curve}


def grid_search(X, y, Xt, yt, args):
    """(c): every grid point on 90% of the rows, the best refit on all."""
    out = {}
    rng = np.random.RandomState(0)
    perm = rng.permutation(X.shape[0])
    n_val = X.shape[0] // 10
    tr, va = perm[n_val:], perm[:n_val]
    points, grid_seconds = [], 0.0
    lrs = [lr for lr in GRID["learning_rate_init"] if not args.grid_lr or lr in args.grid_lr]
    nets = [n for n in GRID["net"]
            if not args.grid_nets or f"{n[0][-1]},{n[1]}" in args.grid_nets]
    for lr, (hidden, dropout) in itertools.product(lrs, nets):
        params = dict(learning_rate_init=lr, hidden_layer_sizes=hidden, dropout=dropout)
        clf = BoltClassifier(random_state=0, autotune=False, n_jobs=args.threads, **params)
        grid_seconds += timed_fit(clf, X[tr], y[tr])
        start = time.perf_counter()
        points.append((score(clf, X[va], y[va]), params))
        grid_seconds += time.perf_counter() - start
        print(f"    grid point {len(points)}/{len(lrs) * len(nets)} {params}: "
              f"validation P@1 {points[-1][0]:.4f} ({grid_seconds:.0f} s so far)", flush=True)
    _, best = max(points, key=lambda p: p[0])
    final = BoltClassifier(random_state=0, autotune=False, n_jobs=args.threads, **best)
    grid_seconds += timed_fit(final, X, y)
    out["grid_seconds"] = grid_seconds
    out["grid_p_at_1"] = score(final, Xt, yt)
    out["grid_best_params"] = {k: list(v) if isinstance(v, tuple) else v for k, v in best.items()}
    out["grid_points"] = [{"validation_p_at_1": v, **{k: list(x) if isinstance(x, tuple) else x
                                                       for k, x in p.items()}}
                          for v, p in points]
    return out


def peer_grid(name, quick, threads):
    """Autotuned default, rules without search and the search-space grid on
    one of bench_xc_peers' sets (see the module docstring)."""
    import bench_xc_peers as peers

    data, info = peers.load(name, quick)
    X, y, Xt = data["X"], data["y"], data["Xt"]
    yt = peers.indicator(data["yt"], data["n_labels"])

    def test_p1(clf):
        return precision_at_k(yt, clf.predict_topk(Xt, 1)[0], k=1)

    out = {"dataset": name, "quick": quick, "held_out": bool(info.get("held_out"))}
    for key, params in (("auto", {}), ("plain", {"autotune": False})):
        clf = BoltClassifier(random_state=0, n_jobs=threads, **params)
        out[f"{key}_seconds"] = timed_fit(clf, X, y)
        out[f"{key}_p_at_1"] = test_p1(clf)
        print(f"  {name}: {key} P@1 {out[key + '_p_at_1']:.4f} in "
              f"{out[key + '_seconds']:.1f} s", flush=True)
        if key == "auto":
            out["auto_best_params"] = {k: list(v) if isinstance(v, tuple) else v
                                       for k, v in clf.best_params_.items()}
        else:
            rules = clf
    sampled = rules.hash_params_["active_size"] < len(rules.classes_)
    space = {"learning_rate_init": [f * rules.learning_rate_init_ for f in (0.5, 1.0, 2.0)],
             "hidden_layer_sizes": [(256,), (512,)]}
    if sampled:
        space["output_sparsity"] = [f * rules.output_sparsity_ for f in (0.5, 1.0)]
    variants = [{"loss": "softmax", "centroid_finish": f} for f in
                ((False, True) if sampled else (False,))]
    if data["multilabel"]:
        variants.append({"loss": "sigmoid", "centroid_finish": False})
    rng = np.random.RandomState(0)
    perm = rng.permutation(X.shape[0])
    n_val = X.shape[0] // 10
    tr, va = np.sort(perm[n_val:]), np.sort(perm[:n_val])
    Yva = y[va]
    points, seconds = [], 0.0
    for values in itertools.product(*space.values()):
        for variant in variants:
            params = {**dict(zip(space, values)), **variant}
            clf = BoltClassifier(random_state=0, autotune=False, n_jobs=threads, **params)
            seconds += timed_fit(clf, X[tr], y[tr])
            start = time.perf_counter()
            val = precision_at_k(Yva, clf.predict_topk(X[va], 1)[0], k=1)
            seconds += time.perf_counter() - start
            points.append((val, params))
            print(f"    grid {len(points)}: {params} validation P@1 {val:.4f} "
                  f"({seconds:.0f} s so far)", flush=True)
    _, best = max(points, key=lambda p: p[0])
    final = BoltClassifier(random_state=0, autotune=False, n_jobs=threads, **best)
    seconds += timed_fit(final, X, y)
    out.update(grid_seconds=seconds, grid_p_at_1=test_p1(final), grid_points=len(points),
               grid_best_params={k: list(v) if isinstance(v, tuple) else v
                                 for k, v in best.items()})
    print(f"  {name}: grid best P@1 {out['grid_p_at_1']:.4f} in {seconds:.0f} s "
          f"({best})", flush=True)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+",
                        default=["bibtex", "news20", "synth10k", "synth100k"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-grid", nargs="*", default=[],
                        help="datasets to run without the (slow) grid search")
    parser.add_argument("--grid-only", action="store_true",
                        help="run only the grid search (to complete an earlier run)")
    parser.add_argument("--grid-from", default=None, metavar="JSON",
                        help="take the grid results from an earlier run's --out file "
                             "(for the datasets it has them) instead of running the grid")
    parser.add_argument("--autotune-budget", type=float, default=None,
                        help="autotune_budget of the autotuned fit (a), instead of the default")
    parser.add_argument("--grid-lr", nargs="*", type=float, default=[],
                        help="run only these learning rates of the grid")
    parser.add_argument("--grid-nets", nargs="*", default=[],
                        help="run only these (width,dropout) points of the grid, e.g. 512,0.5")
    parser.add_argument("--epoch-curve", type=int, default=0, metavar="N",
                        help="only print test P@1 after each of N epochs of our rules' network")
    parser.add_argument("--peer-sets", nargs="*", default=None, metavar="SET",
                        help="the grid comparison on bench_xc_peers' sets (all when none "
                             "are named); see the module docstring")
    parser.add_argument("--quick", action="store_true",
                        help="with --peer-sets: bench_xc_peers' quick sets")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    if args.peer_sets is not None:
        import bench_xc_peers as peers

        names = args.peer_sets or [n for n in peers.DATASETS
                                   if not (args.quick and n == "synth100k")]
        results = [peer_grid(name, args.quick, args.threads) for name in names]
        print("\n| dataset | autotuned P@1 | rules, no search | grid best (points) "
              "| autotuned - grid | autotuned - rules | autotuned s | rules s | grid s "
              "| autotuned / grid time | grid's best |")
        print("|" + "---|" * 11)
        for r in results:
            label = r["dataset"] + (" (held out)" if r["held_out"] else "")
            print(f"| {label} | {r['auto_p_at_1']:.4f} | {r['plain_p_at_1']:.4f} | "
                  f"{r['grid_p_at_1']:.4f} ({r['grid_points']}) | "
                  f"{100 * (r['auto_p_at_1'] - r['grid_p_at_1']):+.1f} pt | "
                  f"{100 * (r['auto_p_at_1'] - r['plain_p_at_1']):+.1f} pt | "
                  f"{r['auto_seconds']:.1f} | {r['plain_seconds']:.1f} | "
                  f"{r['grid_seconds']:.0f} | {r['auto_seconds'] / r['grid_seconds']:.2f} | "
                  f"{r['grid_best_params']} |")
        if args.out:
            with open(args.out, "w") as f:
                json.dump({"machine": bench_torch.machine(), "results": results}, f, indent=1)
        return
    if args.epoch_curve:
        results = [epoch_curve(name, args.epoch_curve, args.threads) for name in args.datasets]
        if args.out:
            with open(args.out, "w") as f:
                json.dump({"machine": bench_torch.machine(), "results": results}, f, indent=1)
        return
    args.grid_from_file, args.grid_from = args.grid_from, {}
    if args.grid_from_file:
        with open(args.grid_from_file) as f:
            args.grid_from = {r["dataset"]: r for r in json.load(f)["results"]
                              if "grid_p_at_1" in r}
    results = [run(name, args) for name in args.datasets]
    if args.grid_only:
        for r in results:
            print(f"  {r['dataset']}: grid best P@1 {r['grid_p_at_1']:.4f} in "
                  f"{r['grid_seconds']:.1f} s (best {r['grid_best_params']})")
        if args.out:
            with open(args.out, "w") as f:
                json.dump({"machine": bench_torch.machine(), "results": results}, f, indent=1)
        return
    print()
    print("| dataset | autotuned P@1 | no-search P@1 | BOLT rules P@1 | grid best P@1 "
          "| autotuned - grid | autotuned s | no-search s | BOLT rules s | grid s "
          "| autotuned / grid time | autotuned / no-search time |")
    print("|" + "---|" * 12)
    for r in results:
        grid = "grid_p_at_1" in r
        print(f"| {r['dataset']} | {r['auto_p_at_1']:.4f} | {r['plain_p_at_1']:.4f} | "
              f"{r['bolt_p_at_1']:.4f} | "
              + (f"{r['grid_p_at_1']:.4f} | "
                 f"{100 * (r['auto_p_at_1'] - r['grid_p_at_1']):+.1f} pt | "
                 if grid else "not run | - | ")
              + f"{r['auto_seconds']:.0f} | {r['plain_seconds']:.0f} | {r['bolt_seconds']:.0f} | "
              + (f"{r['grid_seconds']:.0f} | {r['auto_seconds'] / r['grid_seconds']:.2f} | "
                 if grid else "- | - | ")
              + f"{r['auto_seconds'] / r['plain_seconds']:.2f} |")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"machine": bench_torch.machine(), "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
