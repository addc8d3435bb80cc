"""CPU seconds of a dense-output fit, one thread, with the core's phases:
for comparing two builds of the core on the same data, back to back.

``BoltClassifier(random_state=0, n_jobs=1, autotune=False)`` on a real XC
set of the shared data (Corel5k: 374 labels, a dense output layer), its
process CPU seconds (one thread: the load of other processes moves them
less than wall time), the core's phase timings and the test P@1 (equal
P@1 between builds says the models are the same).

Usage (run each build in turn, alternating, and compare medians)::

    python benchmarks/bench_dense_cpu.py --sets corel5k bibtex --repeats 2
    PYTHONPATH=<other checkout> python benchmarks/bench_dense_cpu.py ...
"""
import argparse
import time

from bench_real import load_xc_set

import skbolt
from skbolt import BoltClassifier


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", nargs="+", default=["corel5k"])
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    print(f"skbolt from {skbolt.__file__}")
    for name in args.sets:
        X, Y, Xt, Yt = load_xc_set(name)
        for _ in range(args.repeats):
            model = BoltClassifier(random_state=0, n_jobs=1, autotune=False)
            start = time.process_time()
            model.fit(X, Y)
            cpu = time.process_time() - start
            phases = model._network.take_timings()  # the core's own clocks
            shown = ", ".join(f"{k} {v:.2f}" for k, v in phases.items()
                              if isinstance(v, float) and v >= 0.01)
            print(f"{name}: fit {cpu:.2f} CPU-s, P@1 {model.score(Xt, Yt):.4f}; phases: {shown}")


if __name__ == "__main__":
    main()
