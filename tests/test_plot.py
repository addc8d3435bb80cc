"""skbolt.plot draws what the estimators recorded, headless (Agg).

Each plot is checked twice: its artists hold exactly the values computed
independently (the attributes, the metrics), and the rendered image is not
blank.
"""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest

from skbolt import BoltClassifier, BoltRecommender
from skbolt import plot as skplot
from skbolt.datasets import make_extreme_classification, make_interactions, split_users
from skbolt.metrics import precision_at_k, recall_at_k


def rendered_is_not_blank(ax):
    """The rendered canvas holds coloured ink (lines, markers), not only the
    greys of empty axes, ticks and text."""
    ax.figure.canvas.draw()
    pixels = np.asarray(ax.figure.canvas.buffer_rgba())[..., :3].reshape(-1, 3).astype(int)
    coloured = (pixels.max(axis=1) - pixels.min(axis=1)) > 60
    return coloured.sum() > 500


def test_the_blank_check_tells_empty_axes_from_a_curve():
    _, ax = plt.subplots(figsize=(6, 4), layout="constrained")
    ax.set_title("empty")
    assert not rendered_is_not_blank(ax)
    ax.plot([1, 2, 3], [3, 1, 2])
    assert rendered_is_not_blank(ax)


@pytest.fixture(scope="module")
def classifier_data():
    X, Y = make_extreme_classification(n_samples=3000, n_features=800, n_classes=120,
                                       n_labels=2, multilabel=True, random_state=3)
    return X[600:], Y[600:], X[:600], Y[:600]


@pytest.fixture(scope="module")
def classifier(classifier_data):
    X, Y, _, _ = classifier_data
    # early stopping records validation scores; 2,400 rows runs the search
    return BoltClassifier(early_stopping=True, max_iter=8, random_state=0).fit(X, Y)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_learning_curve_draws_the_recorded_epochs(classifier):
    ax = skplot.plot_learning_curve(classifier)
    (loss_line,) = ax.get_lines()
    np.testing.assert_allclose(loss_line.get_ydata(), classifier.loss_curve_)
    np.testing.assert_array_equal(loss_line.get_xdata(),
                                  np.arange(1, len(classifier.loss_curve_) + 1))
    twin = ax.figure.axes[-1]
    assert twin is not ax
    scores, best = twin.get_lines()
    np.testing.assert_allclose(scores.get_ydata(), classifier.validation_scores_)
    top = int(np.argmax(classifier.validation_scores_))
    assert best.get_xdata()[0] == top + 1
    assert best.get_ydata()[0] == pytest.approx(max(classifier.validation_scores_))
    assert rendered_is_not_blank(ax)


def test_learning_curve_from_records_and_without_validation():
    ax = skplot.plot_learning_curve(loss_curve=[3.0, 2.0, 1.5])
    assert len(ax.figure.axes) == 1  # no validation axis when nothing was validated
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), [3.0, 2.0, 1.5])
    with pytest.raises(ValueError, match="one value per epoch"):
        skplot.plot_learning_curve(loss_curve=[])
    with pytest.raises(ValueError, match="fitted estimator"):
        skplot.plot_learning_curve(BoltClassifier())


def test_precision_at_k_equals_the_metric(classifier, classifier_data):
    _, _, X_test, Y_test = classifier_data
    ax = skplot.plot_precision_at_k(classifier, X_test, Y_test, k_max=6, label="a")
    (line,) = ax.get_lines()
    ids = classifier.predict_topk(X_test, k=6)[0]
    expected = [precision_at_k(Y_test, ids, k=k) for k in range(1, 7)]
    np.testing.assert_allclose(line.get_ydata(), expected)
    assert expected[0] > expected[-1]  # the property the curve shows on multi-label data
    # a second model shares the axes
    skplot.plot_precision_at_k(classifier, X_test, Y_test, k_max=6, ax=ax, label="b")
    assert len(ax.get_lines()) == 2
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b"]
    assert rendered_is_not_blank(ax)


def test_precision_at_k_of_a_multiclass_model_with_label_values():
    X, y = make_extreme_classification(n_samples=1500, n_features=300, n_classes=30,
                                       random_state=1)
    y = y * 7 + 1000  # labels that are not column indices
    clf = BoltClassifier(max_iter=5, autotune=False, random_state=0).fit(X[300:], y[300:])
    ax = skplot.plot_precision_at_k(clf, X[:300], y[:300], k_max=3)
    values = ax.get_lines()[0].get_ydata()
    top = clf.predict_topk(X[:300], k=3)[0]
    hit_at = (top == y[:300, None])
    np.testing.assert_allclose(values, [hit_at[:, :k].any(axis=1).mean() / k
                                        for k in (1, 2, 3)])
    assert values[0] == pytest.approx(clf.score(X[:300], y[:300]))


def test_autotune_plot_marks_every_trial_and_the_winner(classifier):
    results = classifier.autotune_results_
    assert results, "the fixture's fit should have searched"
    ax = skplot.plot_autotune(classifier)
    collections = ax.collections
    winner = collections[-1]
    points = np.concatenate([c.get_offsets() for c in collections[:-1]])
    assert len(points) == len(results)
    np.testing.assert_allclose(np.sort(points[:, 1]),
                               np.sort([r["validation_score"] for r in results]))
    # search time only grows, and each point is at or after its trial's own seconds
    order = np.argsort(points[:, 0])
    assert np.all(np.diff(points[order, 0]) > 0)
    won = [r for r in results if all(classifier.best_params_.get(k) == v
                                      for k, v in r["params"].items())]
    assert winner.get_offsets()[0][1] == pytest.approx(won[-1]["validation_score"])
    assert winner.get_offsets()[0][0] >= won[-1]["seconds"] - 1e-9
    assert rendered_is_not_blank(ax)


def test_autotune_plot_refuses_a_fit_without_search(classifier_data):
    X, Y, _, _ = classifier_data
    clf = BoltClassifier(autotune=False, max_iter=1, random_state=0).fit(X, Y)
    with pytest.raises(ValueError, match="no autotuning search"):
        skplot.plot_autotune(clf)


def test_recall_at_k_equals_the_metric():
    data = make_interactions(800, 150, n_groups=5, random_state=2)
    split = split_users(data.X, test_size=0.25, random_state=0)
    rec = BoltRecommender(max_iter=5, random_state=0).fit(split.train)
    ax = skplot.plot_recall_at_k(rec, split.test_in, split.test_out, k_max=30)
    values = ax.get_lines()[0].get_ydata()
    ids = rec.recommend(split.test_in, n=30)[0]
    np.testing.assert_allclose(values, [recall_at_k(split.test_out, ids, k=k, capped=True)
                                        for k in range(1, 31)])
    assert rendered_is_not_blank(ax)
