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
