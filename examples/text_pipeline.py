"""Text classification: a scikit-learn Pipeline and a GridSearchCV
===============================================================

``TfidfVectorizer`` turns raw posts into the sparse rows BoltClassifier
takes, and ``GridSearchCV`` tunes two of its parameters (hidden width and
learning rate) by 3-fold cross-validation, exactly as for any scikit-learn
classifier. Parameters set by the grid always win over "auto"; the
autotuning search is switched off here because the grid replaces it. The
pipeline caches the fitted vectorizer (``memory=``), so it is fitted once
per fold rather than once per grid point.

Data: four categories of 20 Newsgroups (the "bydate" split), read from the
shared data folder (``$SKBOLT_DATA`` or ``shared/data`` beside the
checkout). Without it the script says so and exits with status 0. Run it
with::

    python examples/text_pipeline.py

It takes about 15 s on 2 cores. Expected figures: test accuracy about 0.9
(fixed seeds: it moves only with the code).
"""
import tempfile
import time

from sklearn.datasets import load_files
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline

from skbolt import BoltClassifier
from skbolt.datasets import data_home

CATEGORIES = ["comp.graphics", "rec.autos", "sci.space", "talk.politics.guns"]


def load(split):
    home = data_home()
    folder = None if home is None else home / "text_20newsgroups" / f"20news-bydate-{split}"
    if folder is None or not folder.is_dir():
        return None
    bunch = load_files(folder, categories=CATEGORIES, encoding="latin-1", random_state=0)
    return bunch.data, bunch.target, bunch.target_names


def main():
    train, test = load("train"), load("test")
    if train is None or test is None:
        print("20 Newsgroups not found: set SKBOLT_DATA to the folder that holds "
              "text_20newsgroups/. Nothing to do.")
        return
    docs_train, y_train, names = train
    docs_test, y_test, _ = test
    print(f"data: 20 Newsgroups, {len(docs_train)} train / {len(docs_test)} test posts, "
          f"classes {', '.join(names)}")

    cache = tempfile.TemporaryDirectory()  # the vectorizer fits once per fold, not per point
    pipe = make_pipeline(
        TfidfVectorizer(sublinear_tf=True, min_df=2),
        BoltClassifier(autotune=False, max_iter=5, random_state=0),
        memory=cache.name,
    )
    grid = GridSearchCV(
        pipe,
        {
            "boltclassifier__hidden_layer_sizes": [(64,), (128,)],
            "boltclassifier__learning_rate_init": [1e-3, 4e-3],
        },
        cv=3,
        n_jobs=1,  # BoltClassifier already uses every core
    )
    start = time.perf_counter()
    grid.fit(docs_train, y_train)
    print(f"grid search: {time.perf_counter() - start:.1f} s for "
          f"{len(grid.cv_results_['params'])} points x 3 folds + refit")
    for params, mean in zip(grid.cv_results_["params"], grid.cv_results_["mean_test_score"]):
        shown = {key.split("__")[1]: value for key, value in params.items()}
        print(f"  cv accuracy {mean:.3f}  {shown}")
    best = {key.split("__")[1]: value for key, value in grid.best_params_.items()}
    print(f"best: {best}, cv accuracy {grid.best_score_:.3f}")
    print(f"test accuracy = {grid.score(docs_test, y_test):.3f}")
    cache.cleanup()


if __name__ == "__main__":
    main()  # no sys.exit: the docs' gallery runs this file inside its own process
