"""The search ``fit`` runs when autotuning is on: successive halving.

Candidates differ in the hyper-parameters the user left at "auto" among
learning rate, hidden width and output sparsity. Every candidate trains on
the same stream of training rows for a short budget and is scored on a
held-out split; the best third continue (from where they stopped) with three
times the budget, until one is left. The whole search is planned in units of
work (sample visits weighted by a per-sample cost model), so for a fixed
``random_state`` it makes the same choices on any machine; seconds are only
measured and reported.
"""
import itertools
import math
import numbers
import time
from dataclasses import dataclass

import numpy as np

from . import _rules, _training
from ._network import Network

#: Survivors per rung: the best 1 / ETA of the candidates go on.
ETA = 3

#: Multipliers of the "auto" value that the search tries, the "auto" value
#: first. A wider layer than the rules' (WIDER) is tried only when the
#: budget can also pay for its costlier final fit (see ``search``).
LR_FACTORS = (1.0, 0.5, 2.0)
#: Below ``_rules.SMALL_DATA`` rows the final fit trains many epochs (the
#: epoch rule) while the search's rungs see one or two, and a doubled
#: learning rate wins those short rungs and then overfits the long fit.
#: The rules' epochs at the doubled rate against the rules' rate
#: (``benchmarks/bench_real.py --sets mr trec bibtex --systems skbolt
#: --skbolt-params autotune=False learning_rate_init=0.002``, and without
#: the rate): MR 0.749 / 0.756, TREC 0.870 / 0.890, Bibtex 0.640 / 0.646;
#: the issue's 983-label tag set, where the search had picked it, 0.557 /
#: 0.587. Corel5k was the one gain, 0.416 / 0.384 (it stopped at epoch 6).
#: So small data searches the rules' rate and half.
SMALL_LR_FACTORS = (1.0, 0.5)

#: Below this many rows a dense output layer's search is a race of the
#: rules' network (and its loss twins) along whole validation curves
#: instead of halving (``_race``). Sampled layers keep halving, which is
#: what bench_xc_peers measured on them (their first epoch, from the
#: centroid start, is no baseline either: ``BoltEstimator._train``).
RACE_BELOW = _rules.SMALL_DATA
WIDTH_FACTORS = (1.0, 0.5)
WIDER = 2.0
SPARSITY_FACTORS = (1.0, 0.5)


#: The cost model's constants, fitted by benchmarks/bench_cost_model.py
#: to 26 network shapes of synthetic 10k- and 100k-class data (widths
#: 128-1024, output sparsity half and double the rules', batches 256 and
#: 1024; results/cost_model.json). With them the modelled per-visit cost
#: relative to the rules' network is off by 23% (rms; worst 1.8x), against
#: 54% (worst 3.1x) for plain multiply-add counts.
#:
#: An epoch whose tables still learn (rebuilds, first touches of the
#: optimizer state) takes a median 1.66x a frozen one.
FIRST_EPOCH_COST = 1.66
#: Creating a network (weights drawn, tables built): units per neuron and
#: table, and per weight.
TABLE_INSERT_UNITS = 273.0
WEIGHT_INIT_UNITS = 34.0
#: A new network's first training steps fault in the pages of its weights
#: and optimizer state: 35 units per weight on 20 Newsgroups, 41-79 on
#: synth10k (bench_cost_model.py --first-touch). For sampled output layers
#: FIRST_EPOCH_COST, measured over whole first epochs, already holds it;
#: dense ones (no first-epoch surcharge) are charged it at creation.
FIRST_TOUCH_UNITS = 40.0
#: One Adam step on one output weight (it reads and writes the weight and
#: both moments), in multiply-adds; see ``sample_cost``.
ADAM_UNITS = 6.0
#: Looking a sample up in one hash table: a random read of a bucket that
#: is rarely in cache. BOLT's table shapes use hundreds of tables, so this
#: is a large share of a sampled layer's time, and it grows as the output
#: sparsity shrinks (more tables).
PROBE_UNITS = 900.0


@dataclass(frozen=True)
class CostUnits:
    """The cost model's fitted per-step constants (``sample_cost``); a
    calibration passes its own instead of the defaults."""

    adam: float = ADAM_UNITS
    probe: float = PROBE_UNITS


def touched_outputs(active, n_outputs, batch_size):
    """Expected distinct output neurons a batch touches when each sample
    touches ``active`` of ``n_outputs`` (about uniformly, as the sampled
    ones are)."""
    if active >= n_outputs:
        return float(n_outputs)
    return n_outputs * -math.expm1(batch_size * math.log1p(-active / n_outputs))


def sample_cost(resolved, nnz_per_row, n_outputs, units=CostUnits()):
    """Relative work of training on one sample with a resolved configuration:
    multiply-adds of the forward, backward and gradient passes, the Adam
    steps on the output rows its batch touches, and hashing.

    The Adam term is why halving the output sparsity saves less than half
    of the output layer's work: a batch of 256 samples with 100 of 10,000
    outputs each touches 92% of the output rows, with 50 each still 72%.
    """
    widths = resolved.hidden_layer_sizes
    hp = resolved.hash_params
    active, batch = hp["active_size"], resolved.batch_size
    cost = 3.0 * nnz_per_row * widths[0]
    cost += sum(3.0 * a * b for a, b in zip(widths[:-1], widths[1:]))
    cost += 3.0 * active * widths[-1]
    cost += units.adam * touched_outputs(active, n_outputs, batch) * widths[-1] / batch
    if active < n_outputs:
        cost += (8.0 * hp["K"] + units.probe) * hp["L"]
    return cost


def setup_cost(resolved, n_features, n_outputs):
    """Work of creating a network and first touching its memory, in the
    units of ``sample_cost``."""
    widths = (n_features, *resolved.hidden_layer_sizes, n_outputs)
    weights = sum(a * b for a, b in zip(widths[:-1], widths[1:]))
    hp = resolved.hash_params
    if hp["active_size"] < n_outputs:
        return WEIGHT_INIT_UNITS * weights + TABLE_INSERT_UNITS * n_outputs * hp["L"]
    return (WEIGHT_INIT_UNITS + FIRST_TOUCH_UNITS) * weights


def first_epoch_cost(resolved, n_outputs):
    """How much a visit in the first epoch costs relative to a later one."""
    return FIRST_EPOCH_COST if resolved.hash_params["active_size"] < n_outputs else 1.0


def visits_work(start, stop, n_rows, first):
    """Work of the visits ``start`` to ``stop`` of a row stream, in visits of
    a later epoch, when the first ``n_rows`` visits cost ``first`` each."""
    return (stop - start) + (first - 1.0) * max(0, min(stop, n_rows) - start)


def fit_work(resolved, n_rows, nnz_per_row, n_features, n_outputs):
    """Work of a whole fit without search (the unit of ``autotune_budget``)."""
    first = first_epoch_cost(resolved, n_outputs)
    visits = visits_work(0, resolved.max_iter * n_rows, n_rows, first)
    return (visits * sample_cost(resolved, nnz_per_row, n_outputs)
            + setup_cost(resolved, n_features, n_outputs))


def candidates(params, base, rng, limit, wider=False, losses=(), lr_factors=LR_FACTORS):
    """Up to ``limit`` distinct parameter overrides, the "auto" choice first.

    Only parameters the user left at "auto" vary, so an explicit value (for
    instance from a GridSearchCV grid) is never overridden. With ``wider``,
    hidden widths WIDER times the rules' are among the candidates. With
    ``losses`` (the losses to try besides the rules'; multi-label rows),
    the rules' network with each of them comes right after the rules' own:
    the loss swings P@1 by points either way on real multi-label sets (see
    ``_rules.auto_loss``), so it is always tried at the rules' values and
    never left to the draw. ``lr_factors`` are the learning rate's
    multipliers, 1.0 first.
    """
    axes = []
    if _rules.is_auto(params["learning_rate_init"]):
        lr = base.learning_rate_init
        axes.append([("learning_rate_init", float(lr * f)) for f in lr_factors])
    if _rules.is_auto(params["hidden_layer_sizes"]):
        width = base.hidden_layer_sizes[-1]
        factors = WIDTH_FACTORS + ((WIDER,) if wider else ())
        axes.append([("hidden_layer_sizes", (max(16, int(width * f)),)) for f in factors])
    s = base.output_sparsity
    if _rules.is_auto(params["output_sparsity"]) and s < 1.0:
        axes.append([("output_sparsity", float(min(1.0, s * f))) for f in SPARSITY_FACTORS])
    losses = [loss for loss in losses if loss != base.loss]
    if _rules.is_auto(params.get("loss", "auto")) and losses:
        axes.append([("loss", base.loss)] + [("loss", loss) for loss in losses])
    if not axes:
        return []
    grid = [dict(combo) for combo in itertools.product(*axes)]
    default = dict(ax[0] for ax in axes)  # factor 1.0 comes first on each axis
    twins = [{**default, "loss": loss} for loss in losses if "loss" in default]
    others = [g for g in grid if g != default and g not in twins]
    order = rng.permutation(len(others))
    return [default] + twins + [others[i] for i in order[: max(0, limit - 1 - len(twins))]]


def plan_visits(costs, budget_work, n_train, min_visits, setup_work=0.0, first=1.0,
                final_work=0.0, max_visits=2**40):
    """Visits per candidate at the first rung, or 0 when the budget is too small.

    With resumption, rung r brings its survivors from b0 * ETA**(r-1) to
    b0 * ETA**r visits. The work is each alive candidate's per-visit cost
    (``costs``) times those visits (first-epoch visits weighted by
    ``first``) plus ``setup_work``, the cost of creating every candidate's
    network, plus ``final_work``, that of the fit after the search. No trial
    goes beyond ``max_visits``. Which candidates survive is not known in advance, and
    the better networks are often the costlier ones, so each rung is
    charged as if its survivors were the costliest candidates: the plan
    never spends more than ``budget_work``, whoever wins.
    """
    costs = sorted(costs, reverse=True)

    def work(b0):
        total, alive, reached, target = setup_work, len(costs), 0, min(b0, max_visits)
        while True:
            total += sum(costs[:alive]) * visits_work(reached, target, n_train, first)
            if alive == 1:
                return total + final_work
            reached, alive = target, max(1, alive // ETA)
            target = min(target * ETA, max_visits)

    if min_visits > max_visits or work(min_visits) > budget_work:
        return 0
    lo, hi = min_visits, 2 * min_visits
    while hi <= max_visits and work(hi) <= budget_work:
        lo, hi = hi, 2 * hi
    hi = min(hi, max_visits + 1)
    while hi - lo > 1:  # work grows with b0: the largest b0 that fits
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if work(mid) <= budget_work else (lo, mid)
    return int(lo)


def budget_spec(value, plan):
    """``autotune_budget`` as ``{"work": units}`` or ``{"seconds": s}``.

    A number is a multiple of the work of ``plan``'s fit without search.
    """
    if isinstance(value, str) and value.strip().endswith("s"):
        try:
            seconds = float(value.strip()[:-1])
        except ValueError:
            seconds = 0.0
        if seconds > 0:
            return {"seconds": seconds}
    elif (isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
          and value > 0):
        p = plan.problem
        return {"work": value * fit_work(plan.resolved, p.n_samples, p.nnz_per_row,
                                         p.n_features, p.n_outputs)}
    raise ValueError(f"autotune_budget must be a positive number (a multiple of a fit's "
                     f"work) or a string such as '90s'; got {value!r}")


class _Trial:
    """One candidate: its plan, its network and how far along the row stream it is."""

    def __init__(self, plan, stream):
        r = plan.resolved
        self.overrides = plan.overrides
        self.resolved = r
        # a fresh run fills the tables from its centroid start
        network = Network(plan.config, build_tables=False, n_threads=plan.threads)
        self.run = _training.Run(network, r.batch_size, r.learning_rate_init,
                             r.hash_params["freeze_after"], stream)
        self.seconds = 0.0
        self.score = -np.inf
        # (epoch, validation score) of a finalist, and the epoch where its
        # final fit should stop (None: the rules' epochs)
        self.curve, self.stop = [], None

    @property
    def network(self):
        return self.run.network

    @property
    def visits(self):
        return self.run.visits


def search(data, train_rows, val_rows, plan, budget, final_epochs, score, n_candidates=9,
           verbose=0, log=print, losses=(), decide=None):
    """Run successive halving; return (results, best_overrides, decisions).

    Below RACE_BELOW rows a dense output layer races whole curves instead
    (``_race``). Tried and dropped: the rules' candidate carried to the
    last rung whatever its earlier rungs (so that the search could not end
    below the rules on its held-out split). Its share of the budget cut
    the last rung short of the epochs that confirm a peak, and the final
    fit then trained the rules' 38 epochs: bench_xc_peers' quick synth_ml
    0.879 -> 0.795 (0.880 without it); the doubled learning rate it was
    meant to catch is no longer searched on small data.

    Parameters
    ----------
    data : skbolt._training.TrainingData
        All training data and its targets.
    train_rows, val_rows : ndarray
        Rows used for training trials and for scoring them.
    plan : skbolt._base.Plan
        The estimator's plan for the training split; candidates are its
        variants (``plan.variant(overrides)``), and its seed seeds their
        networks and the row stream.
    budget : dict
        ``{"work": units}`` or ``{"seconds": s}`` (``budget_spec``): what
        the search and the final fit may spend beyond a fit without search.
    final_epochs : int
        Epochs of the final fit on all of X.
    score : callable
        ``score(network, resolved, X_val, Y_val)``: a trial's validation
        score, higher is better.
    n_candidates : int
        Candidates at the first rung.
    verbose : int
        Print each trial when positive.
    log : callable
        Where verbose lines go.
    losses : sequence of str
        Losses to try besides the rules' (``candidates``).
    decide : callable, optional
        ``decide(network, resolved, X_val, Y_val)``: a dict of what the
        estimator fits on the held-out split for the winner's network as
        it will be used (the multi-label threshold), returned as
        ``decisions``.

    Returns
    -------
    results : list of dict
        One entry per trial evaluation: params, rung, epochs, validation
        score, seconds (that trial's training time so far, over its rungs).
    best : dict
        Parameter overrides of the winner (empty when nothing was searched).
    decisions : dict
        What ``decide`` returned for the winner (empty without a search).
    """
    base, params, seed = plan.resolved, plan.params, plan.seed
    n_threads = plan.threads
    X, Y = data.X, data.Y
    n_train, n_final = len(train_rows), X.shape[0]
    nnz = X[train_rows].nnz / max(n_train, 1)
    C = Y.shape[1]
    first = first_epoch_cost(base, C)
    min_visits = max(2 * base.batch_size, n_train // 10)
    if "seconds" in budget:
        # calibrate work per second on the default candidate's first chunk
        work = _seconds_to_work(X, Y, train_rows, plan, sample_cost(base, nnz, C) * first,
                                budget["seconds"])
    else:
        work = budget["work"]

    def final_fit(r):
        """Work of the final fit (on all rows, from scratch) if r wins."""
        return fit_work(r.replace(max_iter=final_epochs), n_final, nnz, X.shape[1], C)

    # the search and the final fit together may spend the budget on top of
    # what a fit without search spends
    work += final_fit(base)
    # no trial trains longer than the final fit will
    max_visits = final_epochs * n_train
    memo = {}

    def variant(g):
        """``plan.variant(g)``, once per candidate."""
        key = repr(sorted(g.items()))
        if key not in memo:
            memo[key] = plan.variant(g)
        return memo[key]

    def planned(wider):
        """Candidates and their first-rung visits; with ``wider`` all of them
        or none, otherwise the first ETA when all of them cost too much."""
        grid = candidates(params, base, np.random.RandomState(seed), n_candidates, wider,
                          losses, LR_FACTORS if n_final >= _rules.SMALL_DATA else SMALL_LR_FACTORS)
        if len(grid) <= 1:
            return grid, 0
        rs = [variant(g).resolved for g in grid]
        while True:
            b0 = plan_visits([sample_cost(r, nnz, C) for r in rs], work, n_train, min_visits,
                             sum(setup_cost(r, X.shape[1], C) for r in rs), first,
                             max(final_fit(r) for r in rs), max_visits)
            if b0 or wider or len(rs) <= ETA:
                return grid[:len(rs)], b0
            rs = rs[:ETA]

    if n_final < RACE_BELOW and base.hash_params["active_size"] >= C:
        return _race(data, train_rows, val_rows, plan, variant, work, final_fit, max_visits,
                     score, losses, decide, verbose, log)

    # wider layers only when the budget pays for them and their final fit
    grid, b0 = planned(wider=True)
    if b0 == 0:
        grid, b0 = planned(wider=False)
    if len(grid) <= 1:
        return [], {}, {}
    if b0 == 0:
        if verbose:
            log("autotune: the budget does not allow a search on this data; using the rules")
        return [], {}, {}

    stream = _training.RowStream.seeded(train_rows, seed)
    X_val, Y_val = data.held_out(val_rows)
    auto_epochs = _rules.is_auto(params["max_iter"])
    alive = [(g, None) for g in grid]
    results = []
    rung, target = 0, min(b0, max_visits)
    while True:
        final = len(alive) == 1
        scored = []
        for overrides, trial in alive:
            if trial is None:
                trial = _Trial(variant(overrides), stream)
            start = time.perf_counter()
            on_epoch = None
            if final:
                # the finalists: scored at every epoch to learn how long
                # the final fit should train
                def on_epoch(epoch, trial=trial):
                    trial.curve.append(
                        (epoch, score(trial.network, trial.resolved, X_val, Y_val)))
            trial.run.advance(data, target, n_threads, on_epoch=on_epoch)
            if final and auto_epochs:
                # the budget may run out inside a dip: train on until it
                # turns into a new peak or into the stop early stopping sees
                curve = trial.curve
                for _ in range(dip_epochs(curve, params["n_iter_no_change"],
                                          max_visits // n_train)):
                    trial.run.advance(data, trial.visits + n_train, n_threads,
                                      on_epoch=on_epoch)
                    if curve[-1][1] >= max(v for _, v in curve[:-1]):
                        break
            trial.score = score(trial.network, trial.resolved, X_val, Y_val)
            if final and auto_epochs:
                trial.stop = epochs_from_curve(trial.curve, params["n_iter_no_change"])
                if trial.stop is not None:
                    # what the final fit, stopped there, is expected to score
                    trial.score = dict(trial.curve)[trial.stop]
            trial.seconds += time.perf_counter() - start
            entry = {"params": dict(overrides), "rung": rung,
                     "epochs": trial.visits / n_train,
                     "validation_score": trial.score, "seconds": trial.seconds}
            results.append(entry)
            if verbose:
                log(f"autotune rung {rung}: {_describe(overrides)} -> validation score "
                    f"{trial.score:.4f} after {entry['epochs']:.2f} epochs "
                    f"({trial.seconds:.1f} s)")
            scored.append(trial)
            # keep at most the survivors alive, so memory stays bounded
            scored.sort(key=lambda t: (-t.score, grid.index(t.overrides)))
            del scored[max(1, len(alive) // ETA):]
        if final:
            break
        alive = [(t.overrides, t) for t in scored]
        rung += 1
        target = min(target * ETA, max_visits)
    winner = scored[0]
    best, decisions = _outcome(winner, decide, X_val, Y_val)
    if _rules.is_auto(params.get("centroid_finish", "auto")):
        finish = _try_centroid_finish(winner, X, Y, train_rows, val_rows, X_val, Y_val, score,
                                      plan.problem.mean_labels, n_threads, decide)
        if finish is not None:
            finish_decisions = finish.pop("decisions")
            results.append({**finish, "rung": rung})
            if verbose:
                log(f"autotune: centroid finish -> validation score "
                    f"{finish['validation_score']:.4f}")
            if finish["validation_score"] > winner.score:
                best["centroid_finish"] = True
                decisions = finish_decisions
    return results, best, decisions


def _outcome(winner, decide, X_val, Y_val):
    """A search's winning trial as its overrides (its peak epoch as
    ``max_iter`` where a peak was confirmed) and what ``decide`` fits for
    its network on the held-out rows."""
    best = dict(winner.overrides)
    if winner.stop is not None:
        best["max_iter"] = max(1, int(winner.stop))
    decisions = {} if decide is None else decide(winner.network, winner.resolved, X_val, Y_val)
    return best, decisions


def affordable_visits(work, cost, n_train, first):
    """Visits of a fresh candidate of per-visit ``cost`` that ``work`` pays
    for, when its first ``n_train`` visits cost ``first`` times more."""
    if work <= 0:
        return 0
    visits = work / (cost * first)
    if visits > n_train:
        visits = work / cost - n_train * (first - 1.0)
    return int(visits)


#: Share of the final fit's epochs a race's peak must hold before it counts.
RACE_PATIENCE_SHARE = 0.25


def race_patience(n_iter_no_change, final_epochs):
    """Epochs without a new peak that end a race's curve: at least
    ``n_iter_no_change``, and a quarter of the epochs the final fit would
    train. Curves are not monotone early on: a dense 440-class layer on
    2,250 rows (5 per class) scored 0.504 held-out after epoch 1, fell to
    0.392 by epoch 5 and only passed 0.504 at epoch 7, on its way to 0.938
    test after the rules' 48 epochs; five epochs' patience stopped it at
    epoch 1 (test 0.490)."""
    return max(int(n_iter_no_change), int(math.ceil(RACE_PATIENCE_SHARE * final_epochs)))


def _race(data, train_rows, val_rows, plan, variant, work, final_fit, max_visits, score,
          losses, decide, verbose, log):
    """``search`` below RACE_BELOW rows with a dense output layer: the
    rules' network and its loss twins (``losses``, where the loss is
    "auto"), one after another, each trained along the row stream and scored
    at every epoch until its held-out score has not improved for
    ``race_patience`` epochs or its share of the budget ends (what one
    candidate leaves goes to the next); the best score wins (the rules' on
    a tie) and, with ``max_iter="auto"``, its peak epoch is the final
    fit's epochs.

    On small data the final fit trains for many epochs (the epoch rule)
    and halving's rungs see one or two of them: what they measure is how
    fast a candidate learns, and a doubled learning rate won them and then
    overfitted (MR: test accuracy 0.751 against 0.759 without search,
    where 3 epochs gave 0.771). What decides there is how long to train
    and, for rows with several labels, the loss; both are measured here
    on the whole curve, and early stopping makes it cheap where training
    peaks early. A twin at twice the learning rate, racing too, split the
    budget so that no curve reached its peak and won on a short one (MR
    0.769 -> 0.759, Bibtex 0.646 -> 0.640): not kept. Same returns as
    ``search``.
    """
    params, base, seed = plan.params, plan.resolved, plan.seed
    X, Y = data.X, data.Y
    n_train, C = len(train_rows), Y.shape[1]
    nnz = X[train_rows].nnz / max(n_train, 1)
    first = first_epoch_cost(base, C)
    grid = _loss_grid(params, base, losses)
    auto_epochs = _rules.is_auto(params["max_iter"])
    if len(grid) == 1 and not auto_epochs:
        return [], {}, {}
    rs = [variant(g).resolved for g in grid]
    costs = [sample_cost(r, nnz, C) for r in rs]
    # the final fit and every network's creation come first; what is left
    # trains the candidates, an equal share each of what the earlier ones
    # left
    left = work - max(final_fit(r) for r in rs) - sum(setup_cost(r, X.shape[1], C) for r in rs)
    if affordable_visits(left / len(grid), max(costs), n_train, first) < n_train:
        if verbose:
            log("autotune: the budget does not allow a search on this data; using the rules")
        return [], {}, {}
    stream = _training.RowStream.seeded(train_rows, seed)
    X_val, Y_val = data.held_out(val_rows)
    patience = race_patience(params["n_iter_no_change"], max_visits // n_train)
    results, trials = [], []
    i = 0
    while i < len(grid):
        g = grid[i]
        limit = min(max_visits, affordable_visits(left / (len(grid) - i), costs[i], n_train,
                                                  first))
        trial = _Trial(variant(g), stream)
        start = time.perf_counter()
        _train_curve(trial, data, limit, n_train, plan.threads, score, X_val, Y_val,
                     patience if auto_epochs else None)
        if not trial.curve or trial.curve[-1][0] * n_train < trial.visits:
            # a last part-epoch has no curve point yet
            trial.curve.append((trial.visits / n_train,
                                score(trial.network, trial.resolved, X_val, Y_val)))
        left -= costs[i] * visits_work(0, trial.visits, n_train, first)
        trial.stop = epochs_from_curve(trial.curve, patience) if auto_epochs else None
        trial.score = (dict(trial.curve)[trial.stop] if trial.stop is not None
                       else trial.curve[-1][1])
        trial.seconds = time.perf_counter() - start
        results.append({"params": dict(g), "rung": 0, "epochs": trial.visits / n_train,
                        "validation_score": trial.score, "seconds": trial.seconds})
        if verbose:
            log(f"autotune: {_describe(g) or 'the rules'} -> validation score "
                f"{trial.score:.4f} (epochs {trial.visits / n_train:.2f}, stop "
                f"{trial.stop})")
        trials.append(trial)
        # keep the best alone alive, so memory stays bounded
        trials.sort(key=lambda t: (-t.score, grid.index(t.overrides)))
        del trials[1:]
        if (i == 0 and auto_epochs and trial.stop is None
                and trial.visits >= UNPEAKED_SHARE * max_visits):
            twin = smaller_batch_twin(params, base)
            if twin is not None:
                r = variant(twin).resolved
                grid.append(twin)
                costs.append(sample_cost(r, nnz, C))
                # an unconfirmed peak buys the twin one more fit's work
                left += final_fit(base) - max(0.0, final_fit(r) - final_fit(base))
                left -= setup_cost(r, X.shape[1], C)
        i += 1
    best, decisions = _outcome(trials[0], decide, X_val, Y_val)
    return results, best, decisions


def _loss_grid(params, base, losses):
    """A race's candidates: the rules' (``{}``) and, where the loss is
    "auto", one twin per other loss of ``losses``."""
    grid = [{}]
    if _rules.is_auto(params.get("loss", "auto")):
        grid += [{"loss": loss} for loss in losses if loss != base.loss]
    return grid


def _train_curve(trial, data, limit, n_rows, n_threads, score, X_val, Y_val, patience):
    """Train ``trial`` epoch by epoch up to ``limit`` visits of its
    ``n_rows``-row stream, appending its held-out score to ``trial.curve``
    after every epoch; stop early once ``patience`` (None: never) epochs
    confirm a peak (``epochs_from_curve``)."""

    def on_epoch(epoch):
        trial.curve.append((epoch, score(trial.network, trial.resolved, X_val, Y_val)))

    while trial.visits < limit:
        trial.run.advance(data, min(limit, trial.visits + n_rows), n_threads=n_threads,
                          on_epoch=on_epoch)
        if patience is not None and epochs_from_curve(trial.curve, patience) is not None:
            break


def cv_race(data, folds, plan, score, losses, decide, verbose=0, log=print):
    """The measurement of ``fit`` below ``AUTOTUNE_MIN_SAMPLES`` rows with a
    dense output layer (``_race``'s domain): the rules' network, its loss
    twins (``losses``, where the loss is "auto") and its smaller-batch
    twin (``smaller_batch_twin``) each trained on every fold's training
    rows and scored at every epoch on the fold's held-out rows; the
    folds' curves are averaged, and the best average wins (the rules' on
    a tie) with, when ``max_iter`` is "auto", the average curve's
    confirmed peak as the final fit's epochs.

    A single held-out split of such data is too small to choose (medical's
    tenth is 33 rows); across the folds every row is held out once. Same
    returns as ``search``; the multi-label threshold is the mean of the
    winner's folds' (``decide`` on each fold's held-out rows at the end
    of its curve).

    Parameters
    ----------
    data : skbolt._training.TrainingData
        All training data and its targets.
    folds : list of (ndarray, ndarray)
        (training rows, held-out rows) of each fold.
    plan : skbolt._base.Plan
        The estimator's plan for all the rows.
    score, losses, decide, verbose, log
        As for ``search``.
    """
    params, base = plan.params, plan.resolved
    if base.hash_params["active_size"] < plan.problem.n_outputs:
        # a sampled output layer: what was measured on small data is the
        # dense one's race; sampled ones keep the rules, as before
        return [], {}, {}
    grid = _loss_grid(params, base, losses)
    twin = smaller_batch_twin(params, base)
    if twin is not None:
        grid.append(twin)
    auto_epochs = _rules.is_auto(params["max_iter"])
    if len(grid) == 1 and not auto_epochs:
        return [], {}, {}
    final_epochs = base.max_iter
    fold_plans = [plan.for_rows(len(tr)) for tr, _ in folds]
    patience = race_patience(params["n_iter_no_change"], final_epochs)
    results, best = [], None
    for g in grid:
        start = time.perf_counter()
        curves, decisions = [], []
        for (tr, va), fold_plan in zip(folds, fold_plans):
            trial = _Trial(fold_plan.variant(g), _training.RowStream.seeded(tr, plan.seed))
            X_val, Y_val = data.held_out(va)
            _train_curve(trial, data, final_epochs * len(tr), len(tr), plan.threads, score,
                         X_val, Y_val, patience if auto_epochs else None)
            curves.append([v for _, v in trial.curve])
            if decide is not None:
                decisions.append(decide(trial.network, trial.resolved, X_val, Y_val))
            del trial
        # a fold stopped by its own patience keeps its last score after
        length = max(len(c) for c in curves)
        mean = np.mean([c + [c[-1]] * (length - len(c)) for c in curves], axis=0)
        curve = [(e + 1, float(v)) for e, v in enumerate(mean)]
        stop = epochs_from_curve(curve, patience) if auto_epochs else None
        value = dict(curve)[stop] if stop is not None else curve[-1][1]
        seconds = time.perf_counter() - start
        results.append({"params": dict(g), "rung": 0, "epochs": float(length),
                        "validation_score": value, "seconds": seconds, "folds": len(folds)})
        if verbose:
            log(f"autotune: {_describe(g) or 'the rules'} -> mean validation score "
                f"{value:.4f} over {len(folds)} folds (epochs {length}, stop {stop})")
        if best is None or value > best[0]:
            best = (value, g, stop, decisions)
    _, g, stop, decisions = best
    overrides = dict(g)
    if stop is not None:
        overrides["max_iter"] = max(1, int(stop))
    merged = {}
    if decisions and all("threshold" in d for d in decisions):
        merged["threshold"] = float(np.mean([d["threshold"] for d in decisions]))
    return results, overrides, merged


#: A race whose rules' curve ran this share of the rules' epochs or more
#: and confirmed no peak tries a batch SMALL_BATCH_DIVISOR times smaller
#: (never below SMALLEST_BATCH rows).
UNPEAKED_SHARE = 0.75
SMALL_BATCH_DIVISOR = 8
SMALLEST_BATCH = 16


def smaller_batch_twin(params, base):
    """Overrides of the race's twin with a smaller batch, or None when the
    batch is the user's or already small.

    A curve that has run three quarters of the rules' epochs or more and
    still confirms no peak is on a slow climb or a long plateau. There, on
    a small text set (OHSUMED-23's training rows, a 75 / 25 carve), more
    epochs at the rules' batch converged the training loss without a
    better held-out score (48 / 100 / 150 epochs: 0.610 / 0.610 / 0.613),
    and smaller batches, more and noisier Adam steps, scored higher (32
    rows: 0.643, 16: 0.649); on sets whose rules' curve peaks early (MR,
    TREC) the smaller batch scored lower. A curve cut short by the budget
    says nothing yet (Bibtex's ended at 11 of 25 epochs: the twin won
    the held-out split there and lost half a point of test P@1), so it
    does not bring the twin in.
    """
    if not _rules.is_auto(params["batch_size"]):
        return None
    batch = max(SMALLEST_BATCH, base.batch_size // SMALL_BATCH_DIVISOR)
    return {"batch_size": int(batch)} if batch < base.batch_size else None


def _try_centroid_finish(trial, X, Y, train_rows, val_rows, X_val, Y_val, score, mean_labels,
                         n_threads, decide=None):
    """The winner's network finished with label centroids
    (``Network.finish_with_centroids``) and scored again, as a trial entry
    (with ``decisions``: what ``decide`` fits for the finished network,
    scaled by its temperature); None where the finish does not apply
    (dense output layers, trained on every class, where it measured far
    worse: Bibtex 0.640 -> 0.568 with ``benchmarks/bench_retrieval.py
    --experiments finish --datasets bibtex``; the sigmoid loss). The trial
    is the last one, so its network is given up to the finish."""
    r = trial.resolved
    if not trial.network.sparse_output or r.loss != "softmax":
        return None
    start = time.perf_counter()
    network, hash_params, _ = _training.finish_network(trial.network, X, Y, train_rows,
                                                   r.hash_params, mean_labels, n_threads)
    finished = r.replace(hash_params=hash_params)
    value = score(network, finished, X_val, Y_val)
    # the temperature for the final fit: fitted here, on rows the hidden
    # layers never trained on
    t = network.held_out_temperature(X, Y, train_rows, val_rows, n_threads)
    decisions = {}
    if decide is not None:
        network.scale_output(t)
        decisions = decide(network, finished, X_val, Y_val)
    return {"params": {**trial.overrides, "centroid_finish": True}, "temperature": t,
            "epochs": trial.visits / len(train_rows), "validation_score": value,
            "seconds": trial.seconds + time.perf_counter() - start, "decisions": decisions}


def curve_peak(curve):
    """The epoch of a curve's highest score, the last one on a tie: a
    plateau's end has the same held-out score and more training (TREC's
    curve reached 0.884 at epochs 7 and 11; test accuracy 0.880 after 7
    epochs, 0.892 after 15)."""
    values = np.array([v for _, v in curve])
    return curve[len(values) - 1 - int(np.argmax(values[::-1]))][0]


def dip_epochs(curve, patience, last_epoch):
    """Epochs more that would tell whether a curve ending below its peak
    has peaked (``epochs_from_curve``): 0 when it ends on its peak or
    already says so; no more than up to ``last_epoch``.

    Measured: on bench_xc_peers' quick synth_ml (3,200 rows, 12 labels per
    row) the search's last rung ended at epoch 12, four epochs after the
    peak of 0.881, so the final fit trained the rules' 38 epochs, when
    validation P@1 had fallen to 0.625.
    """
    if not curve:
        return 0
    epochs = [e for e, _ in curve]
    peak = curve_peak(curve)
    if peak == epochs[-1]:
        return 0
    return int(max(0, min(patience - (epochs[-1] - peak), last_epoch - epochs[-1])))


def epochs_from_curve(curve, patience):
    """The epoch where validation peaked, if the curve then failed to
    improve for ``patience`` epochs; else None (train for the rules' epochs).

    A validation split is small, and a short curve's last dip is as likely
    noise as a true peak (on Bibtex, cutting at such a dip cost a point of
    P@1), so only a peak the estimator's own early stopping would have
    stopped at counts.

    On a plateau the peak is its last epoch (``curve_peak``).

    Parameters
    ----------
    curve : list of (int, float)
        (epoch, validation score) at the end of each epoch.
    patience : int
        Epochs without improvement that make the peak final
        (``n_iter_no_change``).
    """
    if not curve:
        return None
    epochs = [e for e, _ in curve]
    peak = curve_peak(curve)
    return int(peak) if epochs[-1] - peak >= patience else None


def _seconds_to_work(X, Y, train_rows, plan, cost, seconds):
    """Work units that fit in ``seconds``, timed on a few batches of the
    default candidate (first-epoch visits, so ``cost`` includes that)."""
    r = plan.resolved
    net = Network(plan.config, n_threads=plan.threads)
    rows = train_rows[: max(r.batch_size, min(len(train_rows), 4 * r.batch_size))]
    start = time.perf_counter()
    net.train(X, Y, rows, r.batch_size, r.learning_rate_init, plan.threads)
    elapsed = max(time.perf_counter() - start, 1e-6)
    return seconds * len(rows) * cost / elapsed


def _describe(overrides):
    return ", ".join(f"{k}={v}" for k, v in overrides.items())
