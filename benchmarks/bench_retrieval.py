"""What sparse inference retrieves: the table-shape and candidate rules.

Reproduces the figures in the comments of ``skbolt._rules.dwta_tables``,
``MIN_TABLES`` and ``inference_candidates`` (and benchmarks/HISTORY.md),
on the synthetic sets of ``bench_xc_peers.py`` (same generator, seeds,
splits). Three experiments, each printing P@1 of the test split:

``shapes``
    The default fit (autotuned, ``random_state=0``) trained once; then only
    its hash tables are rebuilt with other K / L / reservoir (``--shapes``),
    the weights, centre and seen flags unchanged. Per shape: candidates per
    query (every 10th test row), P@1 at 32 and 64 scored candidates and
    with every retrieved one, microseconds per row at one thread.
``candidates``
    The default fit, sparse P@1 and us per row at 32 / 64 / 128 / 256 / all
    scored candidates (``MIN_CANDIDATES``).
``tables``
    Our rules without search (``autotune=False``) fitted with the number
    of tables forced to each of ``--tables`` (the rule patched in this
    process only): P@1, fit seconds, us per row (``MIN_TABLES``).
``finish``
    The default fit's network finished with label centroids
    (``centroid_finish``) with the training table shape and with
    ``_rules.finish_tables``'s: P@1 at 64 / 256 / all retrieved, us per
    row at one thread, and exact P@1 (``finish_tables``).

``shapes`` and ``candidates`` fit with ``centroid_finish=False``: the rules
they measure were chosen on trained output rows.

Run::

    python benchmarks/bench_retrieval.py       # all three on synth10k and synth100k_tail
    python benchmarks/bench_retrieval.py --experiments tables --datasets synth10k

Machines here are shared and noisy: compare P@1, and times within one run.
"""
import argparse
import time

import bench_xc_peers as peers
import numpy as np
from threadpoolctl import threadpool_limits

from skbolt import BoltClassifier, _rules, _training
from skbolt._network import Network, fit_temperature, labels_to_csr
from skbolt.metrics import precision_at_k

EXPERIMENTS = ("shapes", "candidates", "tables", "finish")
#: (K, L, reservoir) rebuilt over the default fit's weights.
SHAPES = ("5,328,4", "4,328,4", "4,164,8", "3,164,8", "3,328,8", "4,1312,4")


def p_at_1(yt, ids):
    return float(precision_at_k(yt, np.asarray(ids, dtype=np.int64).reshape(-1, 1), k=1))


def timed_top1(net, X, sparse, threads, candidates):
    start = time.perf_counter()
    ids, _ = net.predict_topk(X, 1, sparse, threads, candidates)
    return ids[:, 0], (time.perf_counter() - start) / X.shape[0] * 1e6


def default_fit(data, threads, **params):
    start = time.perf_counter()
    clf = BoltClassifier(random_state=0, n_jobs=threads, **params).fit(data["X"], data["y"])
    return clf, time.perf_counter() - start


def shapes(data, yt, threads, shape_list):
    clf, _ = default_fit(data, threads, centroid_finish=False)
    Xt = clf._validate_X(data["Xt"], reset=False)
    state = clf._network.get_state()
    ids, us = timed_top1(clf._network, Xt, False, 1, 0)
    print(f"  exact: P@1 {p_at_1(yt, clf.classes_[ids]):.4f}, {us:.0f} us/row")
    for shape in shape_list:
        K, L, R = (int(v) for v in shape.split(","))
        config = dict(state["config"], hash_K=K, hash_L=L, reservoir=R, range_pow=3 * K)
        net = Network.from_state({**{k: v for k, v in state.items() if not k.startswith("table_")},
                                  "config": config})
        found = np.mean([len(net.candidates(Xt, r)) for r in range(0, Xt.shape[0], 10)])
        cells = []
        for c in (32, 64, -1):
            ids, us = timed_top1(net, Xt, True, 1, c)
            name = "all" if c < 0 else c
            cells.append(f"{name}: {p_at_1(yt, clf.classes_[ids]):.4f} {us:.0f} us")
        print(f"  K={K} L={L} R={R}: {found:.0f} candidates; " + "; ".join(cells))


def candidates(data, yt, threads):
    clf, _ = default_fit(data, threads, centroid_finish=False)
    Xt = clf._validate_X(data["Xt"], reset=False)
    print(f"  rules chose {clf.hash_params_['inference_candidates']} (hash_params_ "
          f"K={clf.hash_params_['K']} L={clf.hash_params_['L']})")
    for c in (32, 64, 128, 256, -1):
        ids, us = timed_top1(clf._network, Xt, True, threads, c)
        name = "all" if c < 0 else c
        print(f"  {name}: P@1 {p_at_1(yt, clf.classes_[ids]):.4f}, {us:.0f} us/row")


def tables(data, yt, threads, table_counts):
    # the rule's L replaced, its K, range_pow and reservoir kept
    rule = _rules.dwta_tables
    try:
        for L in table_counts:
            def forced(n, s, L=L):
                K, _, range_pow, reservoir = rule(n, s)
                return K, L, range_pow, reservoir

            _rules.dwta_tables = forced
            clf, seconds = default_fit(data, threads, autotune=False)
            ids, us = timed_top1(clf._network, clf._validate_X(data["Xt"], reset=False), True,
                                 threads, clf.hash_params_["inference_candidates"])
            print(f"  L={L}: P@1 {p_at_1(yt, clf.classes_[ids]):.4f}, fit {seconds:.1f} s, "
                  f"{us:.0f} us/row (K={clf.hash_params_['K']}, sparsity "
                  f"{clf.output_sparsity_})")
    finally:
        _rules.dwta_tables = rule


def finish(data, yt, threads):
    clf, _ = default_fit(data, threads, centroid_finish=False)
    X = clf._validate_X(data["X"], reset=False)
    Y = clf._encode_y(data["y"], classes=clf.classes_)
    Xt = clf._validate_X(data["Xt"], reset=False)
    state, rows = clf._network.get_state(), np.arange(X.shape[0])
    ids, _ = timed_top1(clf._network, Xt, False, 1, 0)
    print(f"  trained, exact: P@1 {p_at_1(yt, clf.classes_[ids]):.4f}")
    sparse = clf._network.sparse_output
    for reshape in (False, True) if sparse else (False,):
        net, hp, _ = _training.finish_network(Network.from_state(state), X, Y, rows,
                                          clf.hash_params_, clf._mean_labels, threads,
                                          reshape=reshape)
        if not reshape:
            ids, us = timed_top1(net, Xt, False, 1, 0)
            print(f"  finished, exact: P@1 {p_at_1(yt, clf.classes_[ids]):.4f}, {us:.0f} us/row")
            temperatures(clf, net, state, X, Y, Xt, data, threads)
        if not sparse:
            return
        found = np.mean([len(net.candidates(Xt, r)) for r in range(0, Xt.shape[0], 10)])
        cells = []
        for c in (64, 256, -1):
            ids, us = timed_top1(net, Xt, True, 1, c)
            cells.append(f"{'all' if c < 0 else c}: {p_at_1(yt, clf.classes_[ids]):.4f} "
                         f"{us:.0f} us")
        print(f"  finished, K={hp['K']} reservoir {hp['reservoir']} (rule's candidates "
              f"{hp['inference_candidates']}): {found:.0f} candidates; " + "; ".join(cells))


def temperatures(clf, finished, state, X, Y, Xt, data, threads):
    """The finish's temperature fitted on the test rows (single-label sets:
    rows whose class was trained) against the one a fit without search
    gets: a seeded tenth of the training rows left out of the centroids
    (``BoltEstimator._finish``). The search's own is ``temperature_`` in
    bench_xc_peers' results."""
    held = np.sort(np.random.RandomState(0).permutation(X.shape[0])[:X.shape[0] // 10])
    carved = Network.from_state(state).finish_with_centroids(
        X, Y, np.arange(X.shape[0]), _rules.CENTROID_LOGIT, threads, held)
    line = f"  temperature: {carved:.1f} from a tenth of the training rows"
    if not data["multilabel"]:
        known = np.flatnonzero(np.isin(data["yt"], clf.classes_))
        Yk = labels_to_csr(np.searchsorted(clf.classes_, data["yt"][known]), len(clf.classes_))
        logits = finished.predict_scores(Xt[known[:2000]], False, threads)
        seen = finished.seen
        line += (f", {fit_temperature(logits[:, seen], Yk[:2000][:, seen]):.1f} from "
                 f"{min(2000, known.size)} test rows")
    print(line)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["synth10k", "synth100k_tail"],
                        choices=[n for n in peers.DATASETS
                                 if not peers.DATASETS[n].get("held_out")],
                        help="bibtex (a dense output layer) for the finish experiment only")
    parser.add_argument("--experiments", nargs="+", choices=EXPERIMENTS, default=list(EXPERIMENTS))
    parser.add_argument("--shapes", nargs="+", default=list(SHAPES), metavar="K,L,R")
    parser.add_argument("--tables", nargs="+", type=int, default=[82, 164, 256, 328, 656])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true",
                        help=f"1/{peers.QUICK_SHRINK} of each set's rows")
    args = parser.parse_args()
    with threadpool_limits(limits=args.threads, user_api="blas"):
        for name in args.datasets:
            data, info = peers.load(name, args.quick)
            yt = peers.indicator(data["yt"], data["n_labels"])
            print(f"\n## {name}: {info['n_train']:,} train / {info['n_test']:,} test rows, "
                  f"{info['labels_in_train']:,} labels in training")
            for experiment in args.experiments:
                print(f"### {experiment}")
                if "loader" in peers.DATASETS[name] and experiment != "finish":
                    print("  skipped: a dense output layer has no tables")
                elif experiment == "shapes":
                    shapes(data, yt, args.threads, args.shapes)
                elif experiment == "candidates":
                    candidates(data, yt, args.threads)
                elif experiment == "finish":
                    finish(data, yt, args.threads)
                else:
                    tables(data, yt, args.threads, args.tables)


if __name__ == "__main__":
    main()
