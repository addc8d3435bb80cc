"""``bench_sequential.py --scale``: BoltSequentialRecommender on a
generated log of n_users x 100k items x 50 events per user (the issue's
1M users x 50M events at the default), against ``estimate_memory`` and
SASRec's epoch time on a sample of the same log.

What is measured and what is extrapolated is written into the JSON: the
fit trains ``--scale-epochs`` epochs with the encoding given (the "auto"
choice is three short fits more), its time per epoch is measured, and the
default epochs' time is that times ``max_iter_``; SASRec trains on a
sample of users for a bounded time and its time per event is scaled to
the whole log at the epochs it needed on MovieLens-100K.

``run_full`` (``--scale --scale-full``) takes the whole log through every
default instead, with each training pass bounded (see its docstring).
"""
import json
import os
import time

import numpy as np
from bench_sequential import RESULTS, cpu, peak_rss_mb

N_ITEMS = 100_000
EVENTS_PER_USER = 50
#: Given, as the encoding is (its "auto" measurement is three short fits
#: more): the weight MovieLens-100K's validation picked.
COOC_WEIGHT = 2.0


def make_log(n_users, n_items=N_ITEMS, mean_length=EVENTS_PER_USER, follow=0.4, seed=0):
    """Sequences whose next item is, with probability ``follow``, the
    previous item's successor (item + 1), else a Zipf-popular item;
    sessions of events share a timestamp. Vectorised."""
    rng = np.random.default_rng(seed)
    lengths = np.maximum(2, rng.geometric(1.0 / mean_length, n_users))
    n = int(lengths.sum())
    users = np.repeat(np.arange(n_users, dtype=np.int64), lengths)
    first = np.r_[True, users[1:] != users[:-1]]
    fresh = first | (rng.random(n) >= follow)
    # Zipf-like popularity by inverse CDF over a random ranking of items
    ranks = np.floor(n_items ** rng.random(n)).astype(np.int64) - 1
    perm = rng.permutation(n_items)
    base = perm[np.clip(ranks, 0, n_items - 1)]
    run = np.cumsum(fresh) - 1
    run_start = np.flatnonzero(fresh)
    items = (base[run_start][run] + np.arange(n) - run_start[run]) % n_items
    starts = np.r_[0, np.cumsum(lengths)[:-1]]
    step = np.arange(n) - np.repeat(starts, lengths)
    times = (np.repeat(rng.integers(0, 10**6, n_users), lengths) + step
             - (rng.random(n) < 0.3)).astype(np.float64)  # some ties with the event before
    return users, items, times


def run_scale(n_users, out_name, epochs=1, sasrec_seconds=300):
    from skbolt import BoltSequentialRecommender

    t0 = time.perf_counter()
    users, items, times = make_log(n_users)
    gen_s = time.perf_counter() - t0
    n_events = users.size
    print(f"log: {n_users} users, {N_ITEMS} items, {n_events} events ({gen_s:.0f} s)",
          flush=True)
    rec = BoltSequentialRecommender(decay=0.9, last_items=1, cooccurrence_weight=COOC_WEIGHT,
                                    max_iter=epochs, random_state=0, n_jobs=2)
    est = rec.estimate_memory(n_events, n_users, N_ITEMS)
    rss_before = peak_rss_mb()
    c0, w0 = cpu(), time.perf_counter()
    rec.fit(users, items, times)
    fit_cpu, fit_wall = cpu() - c0, time.perf_counter() - w0
    peak = peak_rss_mb()
    from skbolt import _rules

    auto_epochs = _rules.auto_max_iter(n_events - n_users, None)
    probe = np.random.default_rng(1).choice(np.unique(users), 2000, replace=False)
    rec.recommend(probe[:100], n=10)  # warm
    r0 = time.perf_counter()
    rec.recommend(probe, n=10)
    ms_user = (time.perf_counter() - r0) * 1000 / probe.size
    from skbolt._cooccurrence import cooccurrence

    c1 = cpu()
    C = cooccurrence(rec._sequences.items, rec._sequences.starts, rec.n_items_)
    cooc_cpu = cpu() - c1
    # the same network without co-occurrence's rerank
    rec.cooccurrence_weight_ = 0.0
    r0 = time.perf_counter()
    rec.recommend(probe, n=10)
    ms_user_network = (time.perf_counter() - r0) * 1000 / probe.size
    result = {
        "n_users": n_users, "n_items": N_ITEMS, "n_events": int(n_events),
        "epochs_measured": epochs, "fit_cpu_s": fit_cpu, "fit_wall_s": fit_wall,
        "epoch_wall_s": fit_wall / epochs, "auto_max_iter": auto_epochs,
        "fit_wall_s_extrapolated_default_epochs": fit_wall / epochs * auto_epochs,
        "fit_wall_s_extrapolated_50M_events": fit_wall / epochs * auto_epochs
        * 50_000_000 / n_events,
        "estimate_memory_mb": {k: v / 2**20 for k, v in est.items()},
        "peak_rss_mb": peak, "rss_before_fit_mb": rss_before,
        "estimate_50M_mb": {k: v / 2**20 for k, v in rec.estimate_memory(
            50_000_000, 1_000_000, N_ITEMS).items()},
        "recommend_ms_per_user": ms_user, "recommend_ms_per_user_network_only": ms_user_network,
        "cooccurrence_weight": COOC_WEIGHT, "cooccurrence_cpu_s": cooc_cpu,
        "cooccurrence_nnz": int(C.nnz), "hidden": list(rec.hidden_layer_sizes_),
        "output_sparsity": rec.output_sparsity_,
    }
    print(json.dumps(result, indent=1), flush=True)
    if sasrec_seconds > 0:
        result["sasrec"] = sasrec_epoch_time(users, items, times, sasrec_seconds)
        print(json.dumps(result["sasrec"], indent=1), flush=True)
    RESULTS.mkdir(exist_ok=True)
    with open(RESULTS / out_name, "w") as fh:
        json.dump(result, fh, indent=1)


def sasrec_epoch_time(users, items, times, seconds, batch=16, max_len=200):
    """SASRec's training time per event on the log's first users, for
    ``seconds`` at most: full softmax over 100k items limits the batch."""
    import torch
    from bench_sequential import Coded, _pad, make_sasrec

    torch.set_num_threads(2)
    keep = users < 2000
    o = np.lexsort((times[keep], users[keep]))
    c = Coded(users[keep][o], items[keep][o])
    seqs = [s for s in c.seqs() if len(s) >= 2]
    model = make_sasrec(N_ITEMS, max_len=max_len)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    # item codes are over the sample; the output layer is over all items
    events, c0, w0 = 0, cpu(), time.perf_counter()
    for lo in range(0, len(seqs), batch):
        b = seqs[lo:lo + batch]
        x = _pad([s[:-1] for s in b], max_len)
        y = _pad([s[1:] for s in b], max_len) - 1
        h = model(torch.from_numpy(x))
        loss = torch.nn.functional.cross_entropy(
            model.logits(h).reshape(-1, N_ITEMS), torch.from_numpy(y).reshape(-1),
            ignore_index=-1)
        opt.zero_grad()
        loss.backward()
        opt.step()
        events += int((y >= 0).sum())
        if time.perf_counter() - w0 > seconds:
            break
    wall = time.perf_counter() - w0
    return {"events_trained": events, "wall_s": wall, "cpu_s": cpu() - c0,
            "wall_s_per_event": wall / max(events, 1),
            "epoch_wall_s_extrapolated_50M_events": wall / max(events, 1) * 50_000_000,
            "threads": 2, "batch": batch, "max_len": max_len,
            "note": "measured on the first users' sequences; epoch time scaled linearly "
                    "to 50M events (extrapolated, not run)",
            "pid": os.getpid()}


def large_mappings(min_mb=64):
    """Size and resident size of the process's mappings of ``min_mb`` and
    more (``/proc/self/smaps``): the network's block is one, allocated
    zeroed, so the pages training has not yet touched (Adam's moments of
    rows no batch reached) are in its size but not its RSS."""
    out, current = [], None
    try:
        with open("/proc/self/smaps") as fh:
            for line in fh:
                key = line.split(":", 1)[0]
                if not key.endswith(("Size", "Rss")) and "-" in line.split(" ", 1)[0]:
                    current = {"size_mb": 0.0, "rss_mb": 0.0}
                    out.append(current)
                elif key == "Size" and current is not None:
                    current["size_mb"] = int(line.split()[1]) / 1024
                elif key == "Rss" and current is not None:
                    current["rss_mb"] = int(line.split()[1]) / 1024
    except OSError:
        return []
    return [m for m in out if m["size_mb"] >= min_mb]


def run_full(n_users, train_rows, out_name, sasrec_seconds=300):
    """The whole log through ``BoltSequentialRecommender(random_state=0)``
    with every default, each training pass bounded to ``train_rows`` rows.

    Everything but training runs in full: building the sequences, the
    networks and their tables, the "auto" choices' scoring on 5,000
    users, co-occurrence counting, the seen-items matrix, and recommend
    for 2,000 users. Each ``_train`` call (three "auto" candidates and the
    final network) trains one epoch over a seeded sample of
    ``train_rows`` of its positions; its CPU time per row, times the
    positions and epochs it would have trained, is the extrapolated part
    of the fit. Memory does not depend on how far training goes: the
    network, its optimizer and tables are allocated before the first
    batch, and rows are built per chunk.
    """
    import dataclasses
    import types

    from skbolt import BoltSequentialRecommender

    t0 = time.perf_counter()
    users, items, times = make_log(n_users)
    n_events = int(users.size)
    print(f"log: {n_users} users, {N_ITEMS} items, {n_events} events "
          f"({time.perf_counter() - t0:.0f} s)", flush=True)
    passes = []
    original = BoltSequentialRecommender._train

    def bounded(self, net, plan, enc, seqs, positions, seed, threads):
        rng = np.random.default_rng(len(passes))
        sample = np.sort(rng.choice(positions, min(train_rows, positions.size), replace=False))
        shim = types.SimpleNamespace(resolved=dataclasses.replace(plan.resolved, max_iter=1))
        c0, w0 = cpu(), time.perf_counter()
        curve = original(self, net, shim, enc, seqs, sample, seed, threads)
        c, w = cpu() - c0, time.perf_counter() - w0
        full = positions.size * plan.resolved.max_iter
        passes.append({"positions": int(positions.size), "epochs": plan.resolved.max_iter,
                       "rows_trained": int(sample.size), "cpu_s": c, "wall_s": w,
                       "cpu_s_extrapolated": c / sample.size * full,
                       "wall_s_extrapolated": w / sample.size * full,
                       "hidden": list(plan.resolved.hidden_layer_sizes)})
        print("training pass", json.dumps(passes[-1]), flush=True)
        return curve

    BoltSequentialRecommender._train = bounded
    try:
        rec = BoltSequentialRecommender(random_state=0, n_jobs=2)
        est = rec.estimate_memory(n_events, n_users, N_ITEMS)
        rss_before = peak_rss_mb()
        c0, w0 = cpu(), time.perf_counter()
        rec.fit(users, items, times)
        fit_cpu, fit_wall = cpu() - c0, time.perf_counter() - w0
    finally:
        BoltSequentialRecommender._train = original
    peak = peak_rss_mb()
    mappings = large_mappings()
    probe = np.random.default_rng(1).choice(n_users, 2000, replace=False)
    rec.recommend(probe[:100], n=10)  # warm
    r0 = time.perf_counter()
    rec.recommend(probe, n=10)
    ms_user = (time.perf_counter() - r0) * 1000 / probe.size
    trained_cpu = sum(p["cpu_s"] for p in passes)
    trained_wall = sum(p["wall_s"] for p in passes)
    result = {
        "n_users": n_users, "n_items": N_ITEMS, "n_events": n_events,
        "train_rows_per_pass": train_rows, "passes": passes,
        "fit_cpu_s_measured": fit_cpu, "fit_wall_s_measured": fit_wall,
        "fit_cpu_s_outside_training": fit_cpu - trained_cpu,
        "fit_wall_s_outside_training": fit_wall - trained_wall,
        "fit_cpu_s_extrapolated": fit_cpu - trained_cpu
        + sum(p["cpu_s_extrapolated"] for p in passes),
        "fit_wall_s_extrapolated": fit_wall - trained_wall
        + sum(p["wall_s_extrapolated"] for p in passes),
        "estimate_memory_mb": {k: v / 2**20 for k, v in est.items()},
        "peak_rss_mb": peak, "rss_before_fit_mb": rss_before,
        "fit_rss_mb": peak - rss_before,
        "large_mappings_after_fit": mappings,
        "not_resident_mb": sum(m["size_mb"] - m["rss_mb"] for m in mappings),
        "recommend_ms_per_user": ms_user,
        "decay": rec.decay_, "last_items": rec.last_items_,
        "cooccurrence_weight": rec.cooccurrence_weight_,
        "hidden": list(rec.hidden_layer_sizes_), "output_sparsity": rec.output_sparsity_,
        "max_iter": rec.max_iter_,
        "note": "every step of fit at full size except training, which ran train_rows "
                "rows per pass; extrapolated = measured outside training + each pass's "
                "time per row x its positions x its epochs",
    }
    print(json.dumps(result, indent=1), flush=True)
    if sasrec_seconds > 0:
        del rec
        result["sasrec"] = sasrec_epoch_time(users, items, times, sasrec_seconds)
        result["sasrec"]["fit_cpu_s_extrapolated_50M_events_per_epoch"] = (
            result["sasrec"]["cpu_s"] / max(result["sasrec"]["events_trained"], 1) * n_events)
        print(json.dumps(result["sasrec"], indent=1), flush=True)
    RESULTS.mkdir(exist_ok=True)
    with open(RESULTS / out_name, "w") as fh:
        json.dump(result, fh, indent=1)


class _Stop(Exception):
    """Raised where a check needs no more of ``fit``."""


def auto_rows_check(n_users, out_name, caps=(None, 1_000_000)):
    """The "auto" choice on ``make_log(n_users)`` with the candidates'
    cheap fits on every training position (cap None) and on a sample of
    ``AUTO_ROWS`` of them: the choices, their validation scores and the
    CPU seconds of each, ``fit`` stopped before the final network trains."""
    from skbolt import BoltSequentialRecommender, _sequential_auto

    users, items, times = make_log(n_users)
    original, saved = BoltSequentialRecommender._train, _sequential_auto.AUTO_ROWS
    found = {"n_users": n_users, "n_events": int(users.size), "runs": []}
    for cap in caps:
        calls = []

        def counted(self, net, plan, enc, seqs, positions, seed, threads):
            calls.append(int(positions.size))
            if len(calls) > len(_sequential_auto.AUTO_CANDIDATES):
                raise _Stop
            return original(self, net, plan, enc, seqs, positions, seed, threads)

        _sequential_auto.AUTO_ROWS = cap if cap is not None else np.iinfo(np.int64).max
        BoltSequentialRecommender._train = counted
        rec = BoltSequentialRecommender(random_state=0, n_jobs=2)
        c0 = cpu()
        try:
            rec.fit(users, items, times)
        except _Stop:
            pass
        finally:
            BoltSequentialRecommender._train, _sequential_auto.AUTO_ROWS = original, saved
        found["runs"].append({
            "auto_rows": cap, "cpu_s": cpu() - c0, "positions": calls,
            "decay": rec.decay_, "last_items": rec.last_items_,
            "cooccurrence_weight": rec.cooccurrence_weight_,
            "encoding_scores": {str(k): v for k, v in rec.encoding_scores_.items()},
            "cooccurrence_scores": {str(k): v for k, v in rec.cooccurrence_scores_.items()}})
        print(json.dumps(found["runs"][-1]), flush=True)
    RESULTS.mkdir(exist_ok=True)
    with open(RESULTS / out_name, "w") as fh:
        json.dump(found, fh, indent=1)
