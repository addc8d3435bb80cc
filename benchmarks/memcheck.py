"""One valgrind memcheck run over a small model's whole life.

The workload (``--workload``, run by valgrind) fits a BoltClassifier
(sampled output layer, 2 threads), predicts, trains on with partial_fit,
saves and loads it (``skbolt.save``/``load`` and pickle), fits a
BoltRecommender and asks it for recommendations and similar items, then
feeds a few refused inputs. Without ``--workload`` the script runs that
under ``valgrind --tool=memcheck --leak-check=full`` with
``PYTHONMALLOC=malloc`` (so Python's own allocator does not hide blocks)
and reports valgrind's error count, and the records (errors, and blocks
definitely or indirectly lost) whose stack passes through ``csrc/``.
Without a suppression file valgrind also reports thousands of records in
CPython, numpy and the dynamic loader (uninitialised reads in Python's
object code, the loader's word-at-a-time strncmp); they are counted, not
ours.

Usage::

    python benchmarks/memcheck.py          # about 5 minutes on 2 cores
"""
import argparse
import json
import os
import pickle
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def workload():
    import numpy as np
    import scipy.sparse as sp

    import skbolt
    from skbolt import BoltClassifier, BoltRecommender
    from skbolt.datasets import make_extreme_classification

    X, y = make_extreme_classification(600, 500, 200, random_state=0)
    clf = BoltClassifier(hidden_layer_sizes=(32,), output_sparsity=0.1, max_iter=2,
                         autotune=False, random_state=0, n_jobs=2).fit(X, y)
    clf.predict_topk(X[:100], k=5)
    clf.predict_proba(X[:50])
    clf.partial_fit(X[:200], y[:200])
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "m.skbolt"
        clf.save(path)
        back = skbolt.load(path)
        assert (back.predict(X[:100]) == clf.predict(X[:100])).all()
        raw = bytearray(path.read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        path.write_bytes(bytes(raw))
        try:
            skbolt.load(path)
        except ValueError:
            pass
    pickle.loads(pickle.dumps(clf)).predict(X[:10])
    R = sp.random(300, 150, density=0.05, format="csr", random_state=1, dtype=np.float32)
    R.data[:] = 1
    rec = BoltRecommender(hidden_layer_sizes=(16,), max_iter=2, random_state=0,
                          n_jobs=2).fit(R)
    rec.recommend(R[:50], n=10)
    rec.similar_items([0, 5, 7], n=5)
    rec.score(R[:100])
    for bad in (sp.csr_matrix((np.array([np.nan], np.float32), [0], [0, 1]), shape=(1, 500)),
                sp.csr_matrix((np.ones(1, np.float32), [600], [0, 1]), shape=(1, 700))):
        try:
            clf.predict(bad)
        except ValueError:
            pass
    print("workload done")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workload", action="store_true")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "memcheck.json"))
    args = parser.parse_args()
    if args.workload:
        workload()
        return
    log = Path(tempfile.mkdtemp()) / "memcheck.log"
    cmd = ["valgrind", "--tool=memcheck", "--leak-check=full", "--num-callers=40",
           f"--log-file={log}", sys.executable, __file__, "--workload"]
    start = time.perf_counter()
    run = subprocess.run(cmd, env={**os.environ, "PYTHONMALLOC": "malloc"},
                         capture_output=True, text=True)
    seconds = time.perf_counter() - start
    text = log.read_text()
    records = re.split(r"\n==\d+== \n", text)
    # a record is ours when a frame is in one of csrc/'s files (the build
    # keeps line tables); the rest is Python, numpy, the loader and libgomp
    sources = sorted(p.name for p in (Path(__file__).parents[1] / "csrc").glob("*.c"))
    ours = [r for r in records if any(f"({name}:" in r for name in sources)]
    errors = [r for r in ours if " lost in loss record " not in r]
    leaks = [r for r in ours if re.search(r"(definitely|indirectly) lost in loss record", r)]
    summary = re.search(r"ERROR SUMMARY: (\d+) errors from (\d+) contexts", text)
    definitely = re.search(r"definitely lost: ([\d,]+) bytes in ([\d,]+) blocks", text)
    result = {
        # portable: no interpreter, log or checkout path of this machine
        "command": "PYTHONMALLOC=malloc valgrind --tool=memcheck --leak-check=full "
                   "--num-callers=40 python benchmarks/memcheck.py --workload",
        "workload_ok": "workload done" in run.stdout,
        "seconds": round(seconds, 1),
        "valgrind_errors": int(summary.group(1)) if summary else None,
        "valgrind_contexts": int(summary.group(2)) if summary else None,
        "definitely_lost_bytes_all": definitely.group(1) if definitely else "0",
        "records_through_csrc": len(ours),
        "errors_in_csrc": len(errors),
        "leaks_in_csrc": len(leaks),
        "first_records_through_csrc": ours[:3],
    }
    print(json.dumps({k: v for k, v in result.items() if k != "first_records_through_csrc"},
                     indent=1))
    for r in ours[:3]:
        print(r)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"log: {log}")


if __name__ == "__main__":
    main()
