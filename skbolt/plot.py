"""Plots of fitted estimators: learning curves, P@k and recall@k curves, the
autotuning search.

Needs matplotlib (``pip install "skbolt[plot]"``). Every function draws on
``ax`` (a new figure's Axes when None) and returns that Axes, so curves of
several models can share one plot::

    from skbolt import plot
    ax = plot.plot_precision_at_k(clf_a, X_test, Y_test, label="a")
    plot.plot_precision_at_k(clf_b, X_test, Y_test, ax=ax, label="b")
    ax.figure.savefig("p_at_k.png")

The functions read what ``fit`` records (``loss_curve_``,
``validation_scores_``, ``autotune_results_``) or score a model on data
given to them; they can also be handed those records directly.
"""
import numpy as np

try:
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator
except ImportError as e:  # pragma: no cover - exercised only without the extra
    raise ImportError('skbolt.plot needs matplotlib: pip install "skbolt[plot]"') from e

from .metrics import precision_at_k, recall_at_k

__all__ = ["plot_autotune", "plot_learning_curve", "plot_precision_at_k", "plot_recall_at_k"]


def _axes(ax):
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4), layout="constrained")
    return ax


def _fitted(estimator, attribute):
    if estimator is None or not hasattr(estimator, attribute):
        raise ValueError(f"this plot needs a fitted estimator (with {attribute}) or the "
                         "records themselves")
    return getattr(estimator, attribute)


def plot_learning_curve(estimator=None, *, loss_curve=None, validation_scores=None, ax=None):
    """Training loss per epoch and, with early stopping, the validation score.

    Parameters
    ----------
    estimator : fitted BoltClassifier or BoltRecommender, default=None
        Read for ``loss_curve_`` and ``validation_scores_`` unless those are
        given.
    loss_curve : sequence of float, default=None
        Mean training loss of each epoch.
    validation_scores : sequence of float or None, default=None
        Validation score of each epoch (P@1, accuracy or NDCG), drawn on a
        second y axis.
    ax : matplotlib Axes, default=None
        Where to draw; a new figure when None.

    Returns
    -------
    ax : matplotlib Axes
        The loss axis; the validation axis, when drawn, is its twin
        (``ax.figure.axes[-1]``).
    """
    if loss_curve is None:
        loss_curve = _fitted(estimator, "loss_curve_")
        if validation_scores is None:
            validation_scores = getattr(estimator, "validation_scores_", None)
    loss = np.asarray(loss_curve, dtype=float)
    if loss.ndim != 1 or loss.size == 0:
        raise ValueError("loss_curve must hold one value per epoch (at least one epoch)")
    ax = _axes(ax)
    epochs = np.arange(1, loss.size + 1)
    ax.plot(epochs, loss, marker="o", color="C0", label="training loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss", color="C0")
    handles, top = ax.get_lines()[-1:], ax
    if validation_scores:
        scores = np.asarray(validation_scores, dtype=float)
        twin = ax.twinx()
        twin.plot(np.arange(1, scores.size + 1), scores, marker="s", color="C1",
                  label="validation score")
        best = int(np.argmax(scores))
        twin.plot([best + 1], [scores[best]], marker="*", markersize=14, color="C3",
                  linestyle="none", label=f"best: epoch {best + 1}, {scores[best]:.3f}")
        twin.set_ylabel("validation score", color="C1")
        handles += twin.get_lines()
        top = twin  # drawn last: a legend on ax would sit under the twin's lines
    top.legend(handles=handles, loc="center right")
    ax.set_title("learning curve")
    ax.grid(alpha=0.3)
    return ax


def _topk_curve(values, ks, ax, label, ylabel, title):
    ax = _axes(ax)
    ax.plot(ks, values, marker="o" if len(ks) <= 20 else None, label=label)
    ax.set_xlabel("k")
    ax.set_ylabel(ylabel)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylim(0, max(1e-9, ax.get_ylim()[1]))
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if label is not None:
        ax.legend(loc="best")
    return ax


def plot_precision_at_k(estimator, X, Y, k_max=10, *, ax=None, label=None):
    """P@k for k = 1 .. k_max, from one top-k_max prediction.

    Parameters
    ----------
    estimator : fitted BoltClassifier
        Scored with ``predict_topk(X, k_max)``.
    X : sparse matrix of shape (n_samples, n_features)
        Inputs.
    Y : sparse indicator matrix of shape (n_samples, n_outputs) or array
        True labels: the indicator of a multi-label model, or class labels.
    k_max : int, default=10
        Largest cut-off.
    ax : matplotlib Axes, default=None
        Where to draw; a new figure when None.
    label : str, default=None
        Legend entry of this curve.

    Returns
    -------
    ax : matplotlib Axes
    """
    ids = estimator.predict_topk(X, k=k_max)[0]
    if not getattr(estimator, "multilabel_", True):
        # class labels -> indices, the form the metrics compare
        Y, ids = estimator._class_indices(Y), estimator._class_indices(ids)
    ks = np.arange(1, ids.shape[1] + 1)
    values = [precision_at_k(Y, ids, k=int(k)) for k in ks]
    return _topk_curve(values, ks, ax, label, "precision@k", "precision at k")


def plot_recall_at_k(recommender, X_in, Y, k_max=50, *, ax=None, label=None):
    """Recall@k (capped: divided by min(k, targets)) of a recommender for
    k = 1 .. k_max, from one top-k_max recommendation.

    Parameters
    ----------
    recommender : fitted BoltRecommender
        Asked for ``recommend(X_in, n=k_max)``.
    X_in : sparse matrix of shape (n_users, n_items)
        The users' known items (fold-in input).
    Y : sparse matrix of shape (n_users, n_items)
        Their held-out items.
    k_max : int, default=50
        Largest cut-off (at most the catalogue).
    ax : matplotlib Axes, default=None
        Where to draw; a new figure when None.
    label : str, default=None
        Legend entry of this curve.

    Returns
    -------
    ax : matplotlib Axes
    """
    ids = recommender.recommend(X_in, n=k_max)[0]
    ks = np.arange(1, ids.shape[1] + 1)
    values = [recall_at_k(Y, ids, k=int(k), capped=True) for k in ks]
    return _topk_curve(values, ks, ax, label, "recall@k (capped)", "recall at k")


def _search_timeline(results):
    """Each trial entry's end on the search's clock: the trials' own
    ``seconds`` are per trial (cumulative over its rungs), so the search's
    elapsed time adds each entry's increment."""
    clock, last, ends = 0.0, {}, []
    for r in results:
        key = repr(sorted(r["params"].items()))
        clock += r["seconds"] - last.get(key, 0.0)
        last[key] = r["seconds"]
        ends.append(clock)
    return np.asarray(ends)


def plot_autotune(estimator=None, *, results=None, best_params=None, ax=None):
    """The autotuning search: each trial's validation score against the
    search's elapsed seconds, one marker per rung, the winner starred.

    Parameters
    ----------
    estimator : fitted BoltClassifier or BoltRecommender, default=None
        Read for ``autotune_results_`` and ``best_params_`` unless given.
    results : list of dict, default=None
        ``autotune_results_``: ``params``, ``rung``, ``validation_score``,
        ``seconds`` per trial and rung.
    best_params : dict, default=None
        ``best_params_``: the winner (extra keys such as ``max_iter`` are
        ignored).
    ax : matplotlib Axes, default=None
        Where to draw; a new figure when None.

    Returns
    -------
    ax : matplotlib Axes

    Raises
    ------
    ValueError
        When no search ran (``autotune_results_`` is empty).
    """
    if results is None:
        results = _fitted(estimator, "autotune_results_")
        if best_params is None:
            best_params = getattr(estimator, "best_params_", None)
    results = [r for r in results if "params" in r and "validation_score" in r]
    if not results:
        raise ValueError("no autotuning search ran (autotune_results_ is empty): fit with "
                         "autotune=True to plot one")
    ax = _axes(ax)
    ends = _search_timeline(results)
    scores = np.array([r["validation_score"] for r in results], dtype=float)
    rungs = np.array([r.get("rung", 0) for r in results])
    markers = "os^Dv"
    trials = {}
    for i, r in enumerate(results):
        trials.setdefault(repr(sorted(r["params"].items())), []).append(i)
    for members in trials.values():  # a trial promoted through rungs: one thin line
        if len(members) > 1:
            ax.plot(ends[members], scores[members], color="0.7", linewidth=1, zorder=1)
    for rung in np.unique(rungs):
        at = rungs == rung
        ax.scatter(ends[at], scores[at], marker=markers[int(rung) % len(markers)], s=40,
                   label=f"rung {rung}", zorder=2)
    if best_params is not None:
        # the rules' own trial has no overrides ({}), so an empty
        # best_params_ still names a winner
        won = [i for i, r in enumerate(results)
               if all(best_params.get(k) == v for k, v in r["params"].items())]
        if won:
            i = won[-1]
            text = ", ".join(f"{k}={v}" for k, v in results[i]["params"].items())
            ax.scatter([ends[i]], [scores[i]], marker="*", s=300, color="C3", zorder=3,
                       label=f"winner: {text}")
    ax.set_xlabel("seconds into the search")
    ax.set_ylabel("validation score")
    ax.set_title("autotuning search")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    return ax
