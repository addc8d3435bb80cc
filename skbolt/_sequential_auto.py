"""What ``BoltSequentialRecommender.fit`` decides by measurement: the
encoding ("auto" decay and last-item blocks) and the co-occurrence weight,
each scored by NDCG on every user's last training event with short fits."""
import numpy as np

from . import _rules
from ._cooccurrence import cooccurrence, history_distribution, without_last
from ._topn import ndcg_one

#: Candidate encodings "auto" measures on the validation positions,
#: (decay, last_items); the window is AUTO_WINDOW. See benchmarks/README.md
#: (bench_sequential) for what each scored on MovieLens-100K.
AUTO_CANDIDATES = ((0.9, 1), (0.9, 3), (0.7, 1))
AUTO_WINDOW = 100

#: Users whose last event the "auto" choice is scored on (a seeded sample
#: beyond this), and the epochs and hidden width of each candidate's cheap
#: fit (a given width is kept). On MovieLens-100K validation, width 256
#: scored as 512 did (0.1080 against 0.1084) at 58% of the CPU time.
AUTO_USERS = 5000
AUTO_EPOCHS = 3
AUTO_WIDTH = 128

#: Most training positions a candidate's cheap fit trains on (a seeded
#: sample of them on larger logs): on every position of a 50M-event log the
#: candidates cost most of what the final fit does, and a comparison of
#: encodings does not need the whole log (benchmarks/README.md,
#: ``bench_sequential.py --scale --scale-full``).
AUTO_ROWS = 1_000_000

#: Co-occurrence weights "auto" measures on the same validation events,
#: with the best encoding's cheap network (0: the network alone). Up to 4
#: at first: on a generated log whose next item follows the last one's
#: successors 30% of the time, validation NDCG@10 still rose at 4 and
#: peaked at 8-16 (benchmarks/HISTORY.md, twenty-first session), while
#: MovieLens-100K's peaks at 2-4 stayed where they were.
AUTO_WEIGHTS = (0.0, 1.0, 2.0, 4.0, 8.0, 16.0)


def resolve_auto(rec, seqs, seed, threads):
    """Resolve "auto" in the encoding and the co-occurrence weight: each
    encoding of AUTO_CANDIDATES that the given values allow is trained
    for AUTO_EPOCHS epochs on every position but each user's last (a
    sample of AUTO_ROWS of them on larger logs), and
    scored by NDCG on the last events of a sample of users; the best is
    kept, and its network scores each weight of AUTO_WEIGHTS with
    co-occurrence counted without those last events."""
    rec.window_ = AUTO_WINDOW if _rules.is_auto(rec.window) else int(rec.window)
    cands = [(d if _rules.is_auto(rec.decay) else float(rec.decay),
              k if _rules.is_auto(rec.last_items) else int(rec.last_items))
             for d, k in AUTO_CANDIDATES]
    cands = list(dict.fromkeys(cands))
    auto_weight = _rules.is_auto(rec.cooccurrence_weight)
    rec.cooccurrence_weight_ = 0.0 if auto_weight else float(rec.cooccurrence_weight)
    rec.encoding_scores_ = rec.cooccurrence_scores_ = None
    val_users = np.flatnonzero(np.diff(seqs.starts) >= 3)
    if not (len(cands) > 1 or auto_weight) or val_users.size < 20:
        rec.decay_, rec.last_items_ = cands[0]
        return
    rng = np.random.RandomState(seed)
    if val_users.size > AUTO_USERS:
        val_users = np.sort(rng.choice(val_users, AUTO_USERS, replace=False))
    train = seqs.positions(skip_last=1)
    if train.size > AUTO_ROWS:
        train = np.sort(rng.choice(train, AUTO_ROWS, replace=False))
    ends = seqs.starts[val_users + 1] - 1
    lengths = ends - seqs.starts[val_users]
    targets = seqs.items[ends]
    seen = seqs.seen(rec.n_items_, val_users, ends)
    scores, best = {}, None
    for d, k in cands:
        rec.decay_, rec.last_items_ = d, k
        enc = rec._encoding()
        net, plan = rec._new_network(enc, seqs, train, seed, threads,
                                      max_iter=AUTO_EPOCHS, cheap=True)
        rec._train(net, plan, enc, seqs, train, seed, threads)
        X = enc.rows(seqs.items, ends, lengths, seqs.weights)
        ids, _ = rec._ranked(net, X, seen, rec.n_recommendations, threads, plan)
        scores[(d, k)] = ndcg_one(ids, targets)
        if best is None or scores[(d, k)] > scores[best[0]]:
            best = ((d, k), net, plan, X)
        if rec.verbose:
            print(f"encoding decay={d} last_items={k}: validation NDCG@"
                  f"{rec.n_recommendations} {scores[(d, k)]:.4f}")
    if len(cands) > 1:
        rec.encoding_scores_ = scores
    (rec.decay_, rec.last_items_), net, plan, X = best
    if auto_weight:
        C = cooccurrence(*without_last(seqs.items, seqs.starts), rec.n_items_)
        P = history_distribution(C, seqs.items, ends, lengths)
        weights = {}
        for w in AUTO_WEIGHTS:
            ids, _ = rec._ranked(net, X, seen, rec.n_recommendations, threads, plan,
                                  P=P, weight=w)
            weights[w] = ndcg_one(ids, targets)
            if rec.verbose:
                print(f"cooccurrence_weight={w}: validation NDCG@"
                      f"{rec.n_recommendations} {weights[w]:.4f}")
        rec.cooccurrence_scores_ = weights
        rec.cooccurrence_weight_ = max(weights, key=weights.get)
