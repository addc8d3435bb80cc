"""The ``skbolt`` command line, run in-process through ``skbolt.cli.main``.

Every printed number is checked against the library computed independently:
the metrics of ``skbolt.metrics`` on ``predict_topk`` of the model file read
back with ``skbolt.load``, and the recommender's ``recommend`` on rows built
here from the data the files were written from.
"""
import io
import re

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import dump_svmlight_file

import skbolt
from skbolt import cli
from skbolt.datasets import load_xc, make_extreme_classification, make_interactions
from skbolt.metrics import ndcg_at_k, precision_at_k, propensity_scores, psp_at_k

FAST = ["-p", "max_iter=3", "-p", "hidden_layer_sizes=(64,)", "-q", "--seed", "0",
        "--n-jobs", "1"]


# ----------------------------------------------------------------------
# helpers


def run(argv):
    """Status and standard output of one ``skbolt`` invocation."""
    out = io.StringIO()
    status = cli.main([str(a) for a in argv], out=out)
    return status, out.getvalue()


def run_ok(argv):
    status, text = run(argv)
    assert status == 0, text
    return text


def run_error(capsys, argv):
    """The one-line message of an invocation that must fail as a user error."""
    capsys.readouterr()
    status, _ = run(argv)
    err = capsys.readouterr().err
    assert status == cli.USAGE_ERROR, err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if "skbolt: error:" in line]
    assert len(errors) == 1, err
    assert errors[0].startswith("skbolt: error: ")
    return errors[0][len("skbolt: error: "):]


def write_xc(path, X, Y):
    """The Extreme Classification Repository text format, written by hand."""
    X, Y = sp.csr_matrix(X), sp.csr_matrix(Y)
    lines = [f"{X.shape[0]} {X.shape[1]} {Y.shape[1]}"]
    for r in range(X.shape[0]):
        labels = ",".join(str(j) for j in Y.indices[Y.indptr[r]:Y.indptr[r + 1]])
        feats = " ".join(f"{j}:{float(v)!r}" for j, v in
                         zip(X.indices[X.indptr[r]:X.indptr[r + 1]],
                             X.data[X.indptr[r]:X.indptr[r + 1]]))
        lines.append(f"{labels} {feats}" if labels else f" {feats}")
    path.write_text("\n".join(lines) + "\n")
    return path


def parse_scores(text):
    """The ``NAME value  NAME value`` line of a train/evaluate report."""
    line = [ln for ln in text.splitlines() if ln.startswith("P@")]
    assert len(line) == 1, text
    pairs = re.findall(r"(\S+@\d+) (-?\d+\.\d{4})", line[0])
    assert pairs, line[0]
    return {name: float(value) for name, value in pairs}


def parse_topk(text):
    """``label:score ...`` lines as (labels, scores) lists of rows."""
    ids, scores = [], []
    for line in text.splitlines():
        row = [tok.rsplit(":", 1) for tok in line.split()]
        ids.append([int(i) for i, _ in row])
        scores.append([float(s) for _, s in row])
    return np.array(ids), np.array(scores)


# ----------------------------------------------------------------------
# an XC-format multi-label problem, trained once


@pytest.fixture(scope="module")
def xc(tmp_path_factory):
    d = tmp_path_factory.mktemp("xc")
    X, Y = make_extreme_classification(n_samples=400, n_features=120, n_classes=24, n_labels=3,
                                       multilabel=True, random_state=0)
    train = write_xc(d / "train.txt", X[:300], Y[:300])
    test = write_xc(d / "test.txt", X[300:], Y[300:])
    model = d / "model.skbolt"
    report = run_ok(["train", train, "--model", model, "--test", test, *FAST])
    return {"dir": d, "train": train, "test": test, "model": model, "report": report,
            "X_train": X[:300], "Y_train": Y[:300], "X_test": X[300:], "Y_test": Y[300:]}


def test_train_writes_a_model_and_reports_test_metrics(xc):
    model = skbolt.load(xc["model"])
    assert type(model).__name__ == "BoltClassifier" and model.multilabel_
    assert model.n_features_in_ == 120 and model.n_outputs_ == 24
    assert model.max_iter == 3 and model.random_state == 0
    assert "300 rows, 120 features, 24 labels (xc format" in xc["report"]
    assert f"model written to {xc['model']}" in xc["report"]

    X_test, Y_test = load_xc(xc["test"])
    top = model.predict_topk(X_test, k=5)[0]
    printed = parse_scores(xc["report"])
    assert set(printed) == {"P@1", "P@3", "P@5", "nDCG@1", "nDCG@3", "nDCG@5"}
    for k in (1, 3, 5):
        assert printed[f"P@{k}"] == pytest.approx(precision_at_k(Y_test, top, k=k), abs=5e-5)
        assert printed[f"nDCG@{k}"] == pytest.approx(ndcg_at_k(Y_test, top, k=k), abs=5e-5)
    # the model learned something: far above chance (3 labels of 24)
    assert printed["P@1"] > 0.3


def test_train_keeps_label_counts_of_the_training_file(xc):
    info = skbolt.load(xc["model"]).cli_info_
    counts = np.asarray(sp.csr_matrix(xc["Y_train"]).sum(axis=0)).ravel()
    np.testing.assert_array_equal(info["label_counts"], counts)
    assert info["n_train"] == 300 and info["format"] == "xc"
    assert info["train_file"] == "train.txt"


def test_predict_text_output_is_predict_topk(xc):
    model = skbolt.load(xc["model"])
    want_ids, want_scores = model.predict_topk(xc["X_test"], k=4)
    text = run_ok(["predict", xc["model"], xc["test"], "-k", 4, "-q"])
    ids, scores = parse_topk(text)
    assert ids.shape == (100, 4)
    np.testing.assert_array_equal(ids, want_ids)
    np.testing.assert_allclose(scores, want_scores, rtol=1e-5, atol=1e-9)
    # the same lines written to a file
    path = xc["dir"] / "pred.txt"
    note = run_ok(["predict", xc["model"], xc["test"], "-k", 4, "-q", "-o", path])
    assert f"written to {path}" in note
    assert path.read_text() == text


def test_predict_npz_output_holds_the_arrays(xc):
    model = skbolt.load(xc["model"])
    want_ids, want_scores = model.predict_topk(xc["X_test"], k=3)
    path = xc["dir"] / "pred.npz"
    run_ok(["predict", xc["model"], xc["test"], "-k", 3, "-q", "--out", path])
    with np.load(path) as f:
        np.testing.assert_array_equal(f["labels"], want_ids)
        np.testing.assert_allclose(f["scores"], want_scores, rtol=1e-6)


@pytest.mark.parametrize("k", [0, -2])
def test_predict_k_below_one_is_a_user_error(xc, capsys, k):
    msg = run_error(capsys, ["predict", xc["model"], xc["test"], "-k", k, "-q"])
    assert "-k must be at least 1" in msg


def test_evaluate_matches_the_metrics_and_psp(xc):
    model = skbolt.load(xc["model"])
    text = run_ok(["evaluate", xc["model"], xc["test"], "-k", 4, 1, 2, "--propensity", 0.55, 1.5,
                   "-q"])
    assert f"{xc['test']}: 100 rows" in text
    printed = parse_scores(text)
    assert list(printed) == ["P@1", "P@2", "P@4", "nDCG@1", "nDCG@2", "nDCG@4",
                             "PSP@1", "PSP@2", "PSP@4"]
    Y_test = sp.csr_matrix(xc["Y_test"])
    top = model.predict_topk(xc["X_test"], k=4)[0]
    counts = np.asarray(sp.csr_matrix(xc["Y_train"]).sum(axis=0)).ravel()
    prop = propensity_scores(counts, 300, 0.55, 1.5)
    for k in (1, 2, 4):
        assert printed[f"P@{k}"] == pytest.approx(precision_at_k(Y_test, top, k=k), abs=5e-5)
        assert printed[f"nDCG@{k}"] == pytest.approx(ndcg_at_k(Y_test, top, k=k), abs=5e-5)
        assert printed[f"PSP@{k}"] == pytest.approx(psp_at_k(Y_test, top, prop, k=k), abs=5e-5)
    # other constants give other propensities, hence (here) another PSP@4
    other = parse_scores(run_ok(["evaluate", xc["model"], xc["test"], "-k", 4,
                                 "--propensity", 0.6, 2.6, "-q"]))
    assert other["PSP@4"] == pytest.approx(
        psp_at_k(Y_test, top, propensity_scores(counts, 300, 0.6, 2.6), k=4), abs=5e-5)
    assert other["P@4"] == printed["P@4"]


def test_evaluate_default_cutoffs_without_propensity(xc):
    printed = parse_scores(run_ok(["evaluate", xc["model"], xc["test"], "-q"]))
    assert list(printed) == ["P@1", "P@3", "P@5", "nDCG@1", "nDCG@3", "nDCG@5"]
    assert printed == parse_scores(xc["report"])  # what train --test printed


def test_info_describes_the_model(xc):
    text = run_ok(["info", xc["model"]])
    first = text.splitlines()[0]
    assert first.startswith(f"{xc['model']}: BoltClassifier, skbolt model format 1 ")
    assert f"written by skbolt {skbolt.__version__}" in first
    assert "shape: 120 features -> hidden (64,) -> 24 outputs" in text
    assert "trained 3 epochs" in text
    assert "    max_iter = 3" in text and "    random_state = 0" in text
    assert "format=xc" in text and "n_train=300" in text


def test_version_flag(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == f"skbolt {skbolt.__version__}"


# ----------------------------------------------------------------------
# SVMLight multi-class with the user's own integer labels


@pytest.fixture(scope="module")
def svm(tmp_path_factory):
    d = tmp_path_factory.mktemp("svm")
    X, y = make_extreme_classification(n_samples=360, n_features=80, n_classes=8,
                                       random_state=1)
    X = X.tolil()
    X[0, 79] = 0.5  # the widest index is in the training file: 80 features
    X = X.tocsr()
    labels = 100 + 3 * y  # 100, 103, ..., 121
    train = d / "train.svm"
    dump_svmlight_file(X[:280], labels[:280], str(train), zero_based=True)
    test = d / "test.svm"
    dump_svmlight_file(X[280:], labels[280:], str(test), zero_based=True)
    model = d / "model.skbolt"
    report = run_ok(["train", train, "-m", model, *FAST])
    return {"dir": d, "train": train, "test": test, "model": model, "report": report,
            "X": X, "labels": labels}


def test_svmlight_multiclass_round_trip(svm):
    model = skbolt.load(svm["model"])
    assert "(svmlight format" in svm["report"] and "280 rows, 80 features" in svm["report"]
    assert not model.multilabel_ and model.n_features_in_ == 80
    np.testing.assert_array_equal(model.classes_, np.unique(svm["labels"][:280]))
    info = model.cli_info_
    np.testing.assert_array_equal(
        info["label_counts"], [np.sum(svm["labels"][:280] == c) for c in model.classes_])

    ids, scores = parse_topk(run_ok(["predict", svm["model"], svm["test"], "-k", 3, "-q"]))
    want_ids, want_scores = model.predict_topk(svm["X"][280:], k=3)
    np.testing.assert_array_equal(ids, want_ids)
    np.testing.assert_allclose(scores, want_scores, rtol=1e-5, atol=1e-9)
    assert np.isin(ids, np.unique(svm["labels"][:280])).all()
    assert (np.diff(scores, axis=1) <= 0).all()  # best first


def test_svmlight_evaluate_counts_unseen_labels_as_misses(svm):
    """P@1 of a multi-class file is top-1 accuracy; a label the model never
    saw is never right."""
    model = skbolt.load(svm["model"])
    X_test = svm["X"][280:]
    truth = svm["labels"][280:].copy()
    truth[:10] = 999  # a class absent from training
    path = svm["dir"] / "unseen.svm"
    dump_svmlight_file(X_test, truth, str(path), zero_based=True)
    printed = parse_scores(run_ok(["evaluate", svm["model"], path, "-k", 1, 2, "-q"]))
    top = model.predict_topk(X_test, k=2)[0]
    assert printed["P@1"] == pytest.approx(np.mean(top[:, 0] == truth), abs=5e-5)
    # P@2 of one true label: half the top-2 hit rate
    hit2 = (top == truth[:, None]).any(axis=1)
    assert printed["P@2"] == pytest.approx(hit2.mean() / 2, abs=5e-5)


def test_svmlight_features_beyond_training_width_are_dropped(svm, capsys):
    model = skbolt.load(svm["model"])
    X_test = svm["X"][280:].tolil()
    X_test.resize((X_test.shape[0], 95))
    X_test[0, 90] = 3.0
    X_test[5, 94] = 1.0
    X_test = X_test.tocsr()
    path = svm["dir"] / "wide.svm"
    dump_svmlight_file(X_test, svm["labels"][280:], str(path), zero_based=True)
    capsys.readouterr()
    ids, _ = parse_topk(run_ok(["predict", svm["model"], path, "-k", 2, "-q"]))
    err = capsys.readouterr().err
    assert "skbolt: note:" in err and "2 feature values" in err and ">= 80" in err
    np.testing.assert_array_equal(ids, model.predict_topk(svm["X"][280:], k=2)[0])

    # a narrower file is widened to the model's features
    narrow = svm["dir"] / "narrow.svm"
    dump_svmlight_file(svm["X"][280:, :40], svm["labels"][280:], str(narrow), zero_based=True)
    ids, _ = parse_topk(run_ok(["predict", svm["model"], narrow, "-k", 2, "-q"]))
    X_narrow = sp.hstack([svm["X"][280:, :40], sp.csr_matrix((80, 40))]).tocsr()
    np.testing.assert_array_equal(ids, model.predict_topk(X_narrow, k=2)[0])


def test_svmlight_multilabel_test_file_without_the_last_labels(tmp_path):
    X, Y = make_extreme_classification(n_samples=300, n_features=60, n_classes=12, n_labels=2,
                                       multilabel=True, random_state=2)
    Y = sp.csr_matrix(Y)
    dump_svmlight_file(X[:200], Y[:200], str(tmp_path / "train.svm"), multilabel=True)
    rows = 200 + np.flatnonzero(np.asarray(Y[200:, 10:].sum(axis=1)).ravel() == 0)
    dump_svmlight_file(X[rows], Y[rows], str(tmp_path / "test.svm"), multilabel=True)
    model = tmp_path / "m.skbolt"
    run_ok(["train", tmp_path / "train.svm", "-m", model, *FAST])
    printed = parse_scores(run_ok(["evaluate", model, tmp_path / "test.svm", "-k", 1, "-q"]))
    top = skbolt.load(model).predict_topk(X[rows], k=1)[0]
    assert printed["P@1"] == pytest.approx(precision_at_k(Y[rows], top, k=1), abs=5e-5)


# ----------------------------------------------------------------------
# user errors: status 2, one line, no traceback

XC_OK = "3 5 4\n0 0:1\n1,2 1:0.5 3:2\n3 2:1\n"


@pytest.mark.parametrize("text, lineno, what", [
    ("3 5 4\n0 0:1\n1 1:abc\n3 2:1\n", 3, "'abc'"),          # malformed value
    ("3 5 4\n0 0:1\n1 1:1\n7 2:1\n", 4, "label 7"),          # label out of range
    ("3 5 4\n0 0:nan\n1 1:1\n3 2:1\n", 2, "nan"),            # not finite
    ("3 5 4\n0 0:1\n1 9:1\n3 2:1\n", 3, "feature index 9"),  # feature out of range
    ("3 5 4\n0 0:1\n1 1:1 2\n3 2:1\n", 3, "index:value"),    # bare token
])
def test_malformed_line_names_file_and_line(tmp_path, capsys, text, lineno, what):
    path = tmp_path / "bad.txt"
    path.write_text(text)
    msg = run_error(capsys, ["train", path, "-m", tmp_path / "m.skbolt", *FAST])
    assert msg.startswith(f"{path}:{lineno}: "), msg
    assert what in msg
    assert not (tmp_path / "m.skbolt").exists()


def test_infinite_label_is_a_user_error(tmp_path, capsys):
    path = tmp_path / "inf.txt"
    path.write_text("2 4 3\n0 0:1\ninf 1:1\n")
    msg = run_error(capsys, ["train", path, "-m", tmp_path / "m.skbolt", *FAST])
    assert msg.startswith(f"{path}:3: ")


def test_bad_test_file_is_reported_after_training(tmp_path, capsys):
    train = tmp_path / "train.txt"
    train.write_text(XC_OK * 1)
    bad = tmp_path / "test.txt"
    bad.write_text("2 5 4\n0 0:1\n1 1:zz\n")
    msg = run_error(capsys, ["train", train, "-m", tmp_path / "m.skbolt", "--test", bad,
                             "-p", "max_iter=1", "-q"])
    assert msg.startswith(f"{bad}:3: ")


def test_header_count_mismatch(tmp_path, capsys):
    path = tmp_path / "short.txt"
    path.write_text(XC_OK.replace("3 5 4", "5 5 4", 1))
    msg = run_error(capsys, ["train", path, "-m", tmp_path / "m.skbolt", *FAST])
    assert "header declares 5 points but 3 data rows" in msg


def test_test_file_with_other_dimensions(xc, tmp_path, capsys):
    X, Y = make_extreme_classification(n_samples=20, n_features=50, n_classes=24, n_labels=2,
                                       multilabel=True, random_state=3)
    other = write_xc(tmp_path / "other.txt", X, Y)
    msg = run_error(capsys, ["evaluate", xc["model"], other, "-q"])
    assert "n_features=120" in msg and "n_features=50" in msg


def test_missing_files(xc, tmp_path, capsys):
    nowhere = tmp_path / "nowhere.txt"
    msg = run_error(capsys, ["train", nowhere, "-m", tmp_path / "m.skbolt", *FAST])
    assert msg == f"{nowhere}: no such file"
    assert run_error(capsys, ["predict", xc["model"], nowhere, "-q"]) == \
        f"{nowhere}: no such file"
    assert run_error(capsys, ["predict", nowhere, xc["test"], "-q"]) == \
        f"{nowhere}: no such model file"
    assert run_error(capsys, ["info", nowhere]) == f"{nowhere}: no such model file"
    msg = run_error(capsys, ["recommend-train", nowhere, "-m", tmp_path / "r.skbolt", "-q"])
    assert msg == f"{nowhere}: no such file"


def test_a_missing_test_file_or_model_folder_is_refused_before_training(xc, tmp_path,
                                                                        capsys, monkeypatch):
    from skbolt import BoltClassifier, BoltRecommender

    def no_fit(*args, **kwargs):
        raise AssertionError("fit ran before the paths were checked")

    monkeypatch.setattr(BoltClassifier, "fit", no_fit)
    monkeypatch.setattr(BoltRecommender, "fit", no_fit)
    nowhere = tmp_path / "nowhere.txt"
    msg = run_error(capsys, ["train", xc["train"], "-m", tmp_path / "m.skbolt", "--test",
                             nowhere, *FAST])
    assert msg.startswith(f"{nowhere}: no such file")
    missing = tmp_path / "no_such_folder" / "m.skbolt"
    msg = run_error(capsys, ["train", xc["train"], "-m", missing, *FAST])
    assert msg == f"{missing}: cannot write the model: no folder {missing.parent}"
    csv = tmp_path / "x.csv"
    csv.write_text("u,i\n")
    msg = run_error(capsys, ["recommend-train", csv, "-m", missing, "-q"])
    assert msg.startswith(f"{missing}: cannot write the model")


def test_a_data_file_is_not_a_model(xc, capsys):
    for argv in (["predict", xc["test"], xc["test"], "-q"], ["info", xc["train"]],
                 ["evaluate", xc["train"], xc["test"], "-q"]):
        msg = run_error(capsys, argv)
        assert msg.startswith(str(xc["test"] if argv[0] == "predict" else xc["train"]))
        assert "not an skbolt model file" in msg


@pytest.mark.parametrize("param, what", [
    ("nosuchparam=1", "BoltClassifier has no parameter 'nosuchparam'"),
    ("max_iter", "--param expects name=value"),
    ("max_iter=-3", "max_iter"),
])
def test_bad_parameters(xc, tmp_path, capsys, param, what):
    msg = run_error(capsys, ["train", xc["train"], "-m", tmp_path / "m.skbolt", "-q",
                             "-p", param])
    assert what in msg
    assert not (tmp_path / "m.skbolt").exists()


def test_parse_params_reads_literals_and_strings():
    from skbolt import BoltClassifier

    got = cli.parse_params(["max_iter=7", "hidden_layer_sizes=(32, 16)", "loss=softmax",
                            "learning_rate_init=1e-3", "early_stopping=True"], BoltClassifier)
    assert got == {"max_iter": 7, "hidden_layer_sizes": (32, 16), "loss": "softmax",
                   "learning_rate_init": 1e-3, "early_stopping": True}


def test_psp_needs_label_counts(xc, tmp_path, capsys):
    model = skbolt.load(xc["model"])
    del model.cli_info_
    bare = tmp_path / "bare.skbolt"
    model.save(bare)
    msg = run_error(capsys, ["evaluate", bare, xc["test"], "--propensity", 0.55, 1.5, "-q"])
    assert "label counts" in msg
    # without --propensity the same model evaluates
    assert parse_scores(run_ok(["evaluate", bare, xc["test"], "-q"])) == \
        parse_scores(xc["report"])


# ----------------------------------------------------------------------
# recommender


@pytest.fixture(scope="module")
def rec(tmp_path_factory):
    d = tmp_path_factory.mktemp("rec")
    X = make_interactions(150, 45, n_groups=5, mean_items=6, random_state=0).X.tocsr()
    # the file's own ids, in an order unlike the matrix's columns
    rng = np.random.default_rng(0)
    item_names = np.array([f"sku{n}" for n in rng.permutation(np.arange(500, 545))])
    user_names = np.array([f"c{n}" for n in rng.permutation(np.arange(150))])
    rows = []
    coo = X.tocoo()
    for u, i in zip(coo.row, coo.col):
        rows.append(f"{user_names[u]},{item_names[i]},1")
    rng.shuffle(rows)
    path = d / "interactions.csv"
    path.write_text("user,item,weight\n" + "\n".join(rows) + "\n")
    model = d / "rec.skbolt"
    report = run_ok(["recommend-train", path, "-m", model, *FAST])
    history = {user_names[u]: set(item_names[X.indices[X.indptr[u]:X.indptr[u + 1]]])
               for u in range(X.shape[0])}
    return {"dir": d, "data": path, "model": model, "report": report, "X": X,
            "history": history}


def parse_csv(text):
    lines = text.splitlines()
    assert lines[0] == "user,item,rank,score"
    got = {}
    for line in lines[1:]:
        user, item, rank, score = line.split(",")
        got.setdefault(user, []).append((item, int(rank), float(score)))
    for recs in got.values():
        assert [r for _, r, _ in recs] == list(range(1, len(recs) + 1))
    return got


def _row(model, items):
    """A one-user row over the model's columns, built from item names."""
    col = {name: j for j, name in enumerate(model.cli_info_["item_ids"])}
    cols = sorted(col[i] for i in items)
    return sp.csr_matrix((np.ones(len(cols), np.float32), ([0] * len(cols), cols)),
                         shape=(1, len(col)))


def _expected(model, items, n):
    ids, scores = model.recommend(_row(model, items), n=n)
    keep = ids[0] >= 0
    return list(model.cli_info_["item_ids"][ids[0][keep]]), scores[0][keep]


def test_recommend_train_keeps_ids_and_histories(rec):
    assert f"{rec['X'].nnz} interactions, 150 users, 45 items" in rec["report"]
    model = skbolt.load(rec["model"])
    assert type(model).__name__ == "BoltRecommender"
    info = model.cli_info_
    assert sorted(info["item_ids"]) == sorted(f"sku{n}" for n in range(500, 545))
    assert len(info["user_ids"]) == 150
    h = info["histories"]
    H = sp.csr_matrix((h["data"], h["indices"], h["indptr"]), shape=(150, 45))
    for r, user in enumerate(info["user_ids"]):
        assert set(info["item_ids"][H[r].indices]) == rec["history"][user]


def test_recommend_known_users(rec):
    model = skbolt.load(rec["model"])
    users = ["c7", "c42"]
    got = parse_csv(run_ok(["recommend", rec["model"], "-u", *users, "-n", 6, "-q"]))
    assert list(got) == users
    for user in users:
        items, scores = _expected(model, rec["history"][user], 6)
        assert [i for i, _, _ in got[user]] == items
        np.testing.assert_allclose([s for _, _, s in got[user]], scores, rtol=1e-5)
        assert not {i for i, _, _ in got[user]} & rec["history"][user]  # seen excluded


def test_recommend_include_seen(rec):
    """With -n the whole catalogue, excluding leaves exactly the unseen
    items, including lists every item, seen ones too."""
    model = skbolt.load(rec["model"])
    user = "c3"
    seen = rec["history"][user]
    assert 0 < len(seen) < 45
    excl = parse_csv(run_ok(["recommend", rec["model"], "-u", user, "-n", 45, "-q"]))[user]
    incl = parse_csv(run_ok(["recommend", rec["model"], "-u", user, "-n", 45, "-q",
                             "--include-seen"]))[user]
    all_items = set(model.cli_info_["item_ids"])
    assert {i for i, _, _ in excl} == all_items - seen
    assert len(excl) == 45 - len(seen)
    assert {i for i, _, _ in incl} == all_items and len(incl) == 45
    model.exclude_seen = False
    assert [i for i, _, _ in incl] == _expected(model, seen, 45)[0]


def test_recommend_every_training_user_by_default(rec, tmp_path):
    path = tmp_path / "recs.csv"
    note = run_ok(["recommend", rec["model"], "-n", 3, "-q", "-o", path])
    assert f"written to {path}" in note
    got = parse_csv(path.read_text())
    assert set(got) == set(rec["history"])
    assert all(len(v) == 3 for v in got.values())
    assert all(not {i for i, _, _ in v} & rec["history"][u] for u, v in got.items())


def test_recommend_new_user_from_interactions(rec, tmp_path, capsys):
    model = skbolt.load(rec["model"])
    known = ["sku510", "sku533", "sku501"]
    new = tmp_path / "new.csv"
    new.write_text("user,item\n" + "".join(f"newbie,{i}\n" for i in known)
                   + "newbie,sku9999\nother,sku520\nother,nothere\n")
    capsys.readouterr()
    got = parse_csv(run_ok(["recommend", rec["model"], "-i", new, "-n", 5, "-q"]))
    err = capsys.readouterr().err
    assert "skbolt: note:" in err and "2 items the model was not trained on" in err
    assert set(got) == {"newbie", "other"}
    for user, items in (("newbie", known), ("other", ["sku520"])):
        want, scores = _expected(model, items, 5)
        assert [i for i, _, _ in got[user]] == want
        np.testing.assert_allclose([s for _, _, s in got[user]], scores, rtol=1e-5)
        assert not {i for i, _, _ in got[user]} & set(items)
    # -u selects among the file's users
    only = parse_csv(run_ok(["recommend", rec["model"], "-i", new, "-u", "other", "-n", 5,
                             "-q"]))
    assert only == {"other": got["other"]}


def test_recommend_errors(rec, xc, tmp_path, capsys):
    msg = run_error(capsys, ["recommend", rec["model"], "-u", "c7", "nobody", "-q"])
    assert "user 'nobody' is not in" in msg
    msg = run_error(capsys, ["recommend", rec["model"], "-u", "c7", "-n", 0, "-q"])
    assert "-n must be at least 1" in msg
    msg = run_error(capsys, ["predict", rec["model"], xc["test"], "-q"])
    assert "holds a BoltRecommender" in msg and "needs a BoltClassifier" in msg
    msg = run_error(capsys, ["evaluate", rec["model"], xc["test"], "-q"])
    assert "holds a BoltRecommender" in msg
    msg = run_error(capsys, ["recommend", xc["model"], "-q"])
    assert "holds a BoltClassifier" in msg and "needs a BoltRecommender" in msg
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,1\nc,d,-2\n")
    msg = run_error(capsys, ["recommend-train", bad, "-m", tmp_path / "r.skbolt", "-q"])
    assert msg.startswith(f"{bad}:2: ")
    msg = run_error(capsys, ["recommend-train", rec["data"], "-m", tmp_path / "r.skbolt", "-q",
                             "-p", "hidden_layer_sizes=(0,)"])
    assert str(rec["data"]) in msg


def test_recommend_train_min_weight_and_binary(tmp_path):
    path = tmp_path / "ratings.tsv"
    lines = ["user\titem\trating"]
    rng = np.random.default_rng(5)
    for u in range(60):
        for i in rng.choice(30, 6, replace=False):
            lines.append(f"u{u}\tm{i}\t{rng.integers(1, 6)}")
    path.write_text("\n".join(lines) + "\n")
    kept = sum(int(ln.split("\t")[2]) >= 4 for ln in lines[1:])
    model = tmp_path / "r.skbolt"
    report = run_ok(["recommend-train", path, "-m", model, "--min-weight", 4, "--binary",
                     *FAST])
    assert report.startswith(f"{path}: {kept} interactions")
    h = skbolt.load(model).cli_info_["histories"]
    assert len(h["data"]) == kept and (h["data"] == 1).all()


def test_info_of_a_recommender(rec):
    text = run_ok(["info", rec["model"]])
    assert text.startswith(f"{rec['model']}: BoltRecommender, skbolt model format 1 ")
    assert "shape: 45 features -> hidden (64,) -> 45 items" in text
    assert "format=interactions" in text
