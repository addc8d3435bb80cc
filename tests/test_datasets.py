"""Tests for skbolt.datasets."""

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.stats import spearmanr
from sklearn.neighbors import NearestCentroid

from skbolt import datasets
from skbolt.datasets import (
    data_home,
    load_bibtex,
    load_corel5k,
    load_xc,
    make_extreme_classification,
)

# ---------------------------------------------------------------------------
# load_xc
# ---------------------------------------------------------------------------

SMALL_XC = (
    "4 6 5\n"
    "0,2 0:1 3:2.5\n"  # multi-label line
    " 1:1 5:0.5\n"  # empty label list
    "4 2:3\n"
    "3\n"  # labels but no features
)
SMALL_X = np.array(
    [
        [1, 0, 0, 2.5, 0, 0],
        [0, 1, 0, 0, 0, 0.5],
        [0, 0, 3, 0, 0, 0],
        [0, 0, 0, 0, 0, 0],
    ]
)
SMALL_Y = np.array(
    [
        [1, 0, 1, 0, 0],
        [0, 0, 0, 0, 0],
        [0, 0, 0, 0, 1],
        [0, 0, 0, 1, 0],
    ]
)


def _write(tmp_path, text, name="data.txt"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_load_xc_exact_values(tmp_path):
    path = _write(tmp_path, SMALL_XC)
    X, Y = load_xc(path)
    assert sp.isspmatrix_csr(X) and sp.isspmatrix_csr(Y)
    assert X.dtype == np.float32 and Y.dtype == np.float32
    assert X.shape == (4, 6) and Y.shape == (4, 5)
    np.testing.assert_array_equal(X.toarray(), SMALL_X)
    np.testing.assert_array_equal(Y.toarray(), SMALL_Y)
    np.testing.assert_array_equal(Y.data, 1)


def test_load_xc_str_path_dtype_and_explicit_dims(tmp_path):
    path = _write(tmp_path, SMALL_XC)
    X, Y = load_xc(str(path), n_features=6, n_labels=5, dtype=np.float64)
    assert X.dtype == np.float64
    np.testing.assert_array_equal(X.toarray(), SMALL_X)
    np.testing.assert_array_equal(Y.toarray(), SMALL_Y)


def test_load_xc_repeated_label_stays_binary(tmp_path):
    path = _write(tmp_path, "1 3 4\n1,3,1 0:1\n")
    _, Y = load_xc(path)
    np.testing.assert_array_equal(Y.toarray(), [[0, 1, 0, 1]])
    np.testing.assert_array_equal(Y.data, 1)


@pytest.mark.parametrize("declared", [3, 5])
def test_load_xc_row_count_mismatch(tmp_path, declared):
    path = _write(tmp_path, SMALL_XC.replace("4 6 5", f"{declared} 6 5", 1))
    with pytest.raises(ValueError, match=rf"{declared}.*\b4\b"):
        load_xc(path)


@pytest.mark.parametrize("label", ["5", "-1", "1.5"])
def test_load_xc_bad_label_index(tmp_path, label):
    path = _write(tmp_path, f"2 6 5\n0 0:1\n{label} 1:1\n")
    # the message names the file and the line (3: the header is line 1)
    with pytest.raises(ValueError, match=rf"^{path}:3: label {label} is not an integer in"):
        load_xc(path)


@pytest.mark.parametrize(
    "text",
    [
        "0,2 0:1 3:2.5\n",  # no header at all
        "4 6\n0 0:1\n",  # header with two fields
        "a b c\n0 0:1\n",  # non-numeric header
    ],
)
def test_load_xc_bad_header(tmp_path, text):
    with pytest.raises(ValueError, match="header"):
        load_xc(_write(tmp_path, text))


def test_load_xc_feature_out_of_range(tmp_path):
    with pytest.raises(ValueError):
        load_xc(_write(tmp_path, "1 3 2\n0 7:1\n"))


@pytest.mark.parametrize("kwargs", [{"n_features": 7}, {"n_labels": 4}])
def test_load_xc_dims_disagree_with_header(tmp_path, kwargs):
    with pytest.raises(ValueError, match="header"):
        load_xc(_write(tmp_path, SMALL_XC), **kwargs)


@pytest.mark.parametrize("text, lineno, what", [
    ("3 6 5\n0 0:1\n1 2:x\n2 3:1\n", 3, "feature value 'x' is not a number"),
    ("3 6 5\n0 0:1\n1 2:1\n5 3:1\n", 4, "label 5 is not an integer in [0, 5)"),
    ("3 6 5\n0 0:1\n-1 2:1\n2 3:1\n", 3, "label -1 is not an integer in [0, 5)"),
    ("3 6 5\n0 0:1\n1.5 2:1\n2 3:1\n", 3, "label 1.5 is not an integer"),
    ("3 6 5\n0 0:1\n1 2:1\n2 6:1\n", 4, "feature index 6 is outside [0, 6)"),
    ("3 6 5\n0 0:1\n1 2:1\n2 3:inf\n", 4, "feature 3 has the value inf"),
    ("3 6 5\n0 0:nan\n1 2:1\n2 3:1\n", 2, "feature 0 has the value nan"),
    ("3 6 5\n0 0:1\n\n# a comment line\n1 2:1 junk\n2 3:1\n", 5, "expected index:value"),
    ("3 6 5\n0 0:1\n1 x:1\n2 3:1\n", 3, "feature index 'x' is not an integer"),
])
def test_load_xc_names_the_bad_line(tmp_path, text, lineno, what):
    path = _write(tmp_path, text)
    with pytest.raises(ValueError) as e:
        load_xc(path)
    msg = str(e.value)
    assert msg.startswith(f"{path}:{lineno}: {what}"), msg
    # the offending line is quoted
    bad_line = text.splitlines()[lineno - 1]
    assert repr(bad_line) in msg


def test_load_xc_line_numbers_count_every_line(tmp_path):
    """Blank and comment lines are skipped by the parser but still counted."""
    body = "".join(f"{i % 5} {i % 6}:1\n" for i in range(40))
    text = "41 6 5\n" + body + "\n\n# note\n" + "9 1:1\n"
    with pytest.raises(ValueError, match=rf"^{tmp_path / 'data.txt'}:45: label 9"):
        load_xc(_write(tmp_path, text))


@pytest.mark.parametrize("label", ["inf", "nan"])
def test_load_xc_non_finite_label_names_the_line(tmp_path, label):
    path = _write(tmp_path, f"2 4 3\n0 0:1\n{label} 1:1\n")
    with pytest.raises(ValueError, match=rf"{path}:3: "):
        load_xc(path)


# ---------------------------------------------------------------------------
# load_svmlight
# ---------------------------------------------------------------------------


def test_load_svmlight_single_label_gives_int_labels(tmp_path):
    path = _write(tmp_path, "7 0:1 3:2.5\n-2 1:0.5\n7 4:3\n100\n", "data.svm")
    X, y = datasets.load_svmlight(path)
    assert sp.isspmatrix_csr(X) and X.dtype == np.float32 and X.shape == (4, 5)
    np.testing.assert_array_equal(X.toarray(), [[1, 0, 0, 2.5, 0], [0, 0.5, 0, 0, 0],
                                                [0, 0, 0, 0, 3], [0, 0, 0, 0, 0]])
    assert y.ndim == 1 and y.dtype == np.int64
    np.testing.assert_array_equal(y, [7, -2, 7, 100])
    # real-valued targets stay as written; n_features widens X; dtype is kept
    X, y = datasets.load_svmlight(_write(tmp_path, "0.5 0:1\n2 1:1\n"), n_features=4,
                                  dtype=np.float64)
    assert y.dtype == np.float64 and y.tolist() == [0.5, 2.0]
    assert X.shape == (2, 4) and X.dtype == np.float64


def test_load_svmlight_multilabel_gives_an_indicator(tmp_path):
    text = "0,3 0:1\n2 1:2\n3,1,3 2:1\n 1:4\n5 0:1\n"  # a repeat; a line without labels
    X, Y = datasets.load_svmlight(_write(tmp_path, text))
    want = np.zeros((5, 6))
    for r, labels in enumerate([[0, 3], [2], [1, 3], [], [5]]):
        want[r, labels] = 1
    assert sp.isspmatrix_csr(Y) and Y.shape == (5, 6)
    np.testing.assert_array_equal(Y.toarray(), want)
    np.testing.assert_array_equal(Y.data, 1)
    assert X.shape == (5, 3) and X[3, 1] == 4


def test_load_svmlight_ignores_qid_and_comments(tmp_path):
    plain = _write(tmp_path, "1 0:1 2:3\n2 1:0.5\n", "plain.svm")
    noisy = _write(tmp_path, "# a header comment\n1 qid:4 0:1 2:3 # first\n"
                             "2 qid:5 1:0.5#second\n", "noisy.svm")
    X0, y0 = datasets.load_svmlight(plain)
    X1, y1 = datasets.load_svmlight(noisy)
    np.testing.assert_array_equal(X0.toarray(), X1.toarray())
    np.testing.assert_array_equal(y0, y1)


@pytest.mark.parametrize("text, lineno, what", [
    ("1 0:1\n2 1:x\n", 2, "feature value 'x' is not a number"),
    ("1 0:1\n# c\n2 1:1 junk\n", 3, "expected index:value"),
    ("1 0:1\nbad 1:1\n", 2, "label 'bad' is not a number"),
    ("1 0:1\n2 1:1\n3 2:nan\n", 3, "feature 2 has the value nan"),
    ("1 0:1\n2 -1:1\n", 2, "feature index -1 is outside"),
])
def test_load_svmlight_names_the_bad_line(tmp_path, text, lineno, what):
    path = _write(tmp_path, text)
    with pytest.raises(ValueError) as e:
        datasets.load_svmlight(path)
    assert str(e.value).startswith(f"{path}:{lineno}: {what}"), str(e.value)


def test_load_svmlight_n_features_bounds_the_indices(tmp_path):
    path = _write(tmp_path, "1 0:1\n2 5:1\n")
    with pytest.raises(ValueError, match=rf"^{path}:2: feature index 5 is outside \[0, 3\)"):
        datasets.load_svmlight(path, n_features=3)


@pytest.mark.parametrize("bad", ["-1", "1.5"])
def test_load_svmlight_multilabel_labels_must_be_indices(tmp_path, bad):
    path = _write(tmp_path, f"# a comment line\n0,1 0:1\n\n{bad} 1:1\n")
    with pytest.raises(ValueError, match=f"{path}:4: the label {bad} is not an integer >= 0"):
        datasets.load_svmlight(path)


@pytest.mark.parametrize("line", ["1 2:1 1:1", "1 1:1 1:2"])
def test_unsorted_or_repeated_feature_indices_name_their_line(tmp_path, line):
    path = _write(tmp_path, f"0 0:1\n{line}\n")
    with pytest.raises(ValueError, match=f"{path}:2: feature index 1 follows"):
        datasets.load_svmlight(path)


def test_load_interactions_header_is_a_line_of_column_names(tmp_path):
    # ids that merely contain "item" or "user" are data, not a header
    X, users, items = datasets.load_interactions(_write(tmp_path, "item1,b\nuser2,d\n"))
    assert users.tolist() == ["item1", "user2"] and items.tolist() == ["b", "d"]
    X, users, _ = datasets.load_interactions(_write(tmp_path, "UserId,ItemId\nu,i\n"))
    assert users.tolist() == ["u"] and X.nnz == 1


# ---------------------------------------------------------------------------
# load_interactions
# ---------------------------------------------------------------------------


def _as_dict(X, users, items):
    return {(users[r], items[c]): v for r, c, v in zip(*sp.find(X))}


@pytest.mark.parametrize("sep", ["\t", ",", ";", " ", "   "])
@pytest.mark.parametrize("header", [True, False])
def test_load_interactions_delimiters_and_header(tmp_path, sep, header):
    rows = [("ann", "m1", "4"), ("bob", "m2", "2.5"), ("ann", "m3", "1"), ("cy", "m1", "0.5")]
    text = (sep.join(["user", "movie", "rating"]) + "\n" if header else "")
    text += "".join(sep.join(r) + "\n" for r in rows)
    X, users, items = datasets.load_interactions(_write(tmp_path, text))
    assert users.tolist() == ["ann", "bob", "cy"] and items.tolist() == ["m1", "m2", "m3"]
    assert _as_dict(X, users, items) == {("ann", "m1"): 4, ("bob", "m2"): 2.5,
                                         ("ann", "m3"): 1, ("cy", "m1"): 0.5}
    assert sp.isspmatrix_csr(X) and X.dtype == np.float32 and X.has_canonical_format


def test_load_interactions_header_detection(tmp_path):
    # a header named otherwise is told by its non-numeric third field
    X, users, _ = datasets.load_interactions(_write(tmp_path, "who,what,score\na,b,2\n"))
    assert users.tolist() == ["a"] and X.sum() == 2
    # two numeric-looking columns and no weight: the first line is data
    X, users, items = datasets.load_interactions(_write(tmp_path, "1,10\n2,20\n1,20\n"))
    assert users.tolist() == ["1", "2"] and items.tolist() == ["10", "20"]
    assert X.nnz == 3
    # header=True drops a first line that looks like data; False keeps one that does not
    X, users, _ = datasets.load_interactions(_write(tmp_path, "1,10\n2,20\n"), header=True)
    assert users.tolist() == ["2"]
    X, users, items = datasets.load_interactions(_write(tmp_path, "user,item\n2,20\n"),
                                                 header=False)
    assert users.tolist() == ["2", "user"] and items.tolist() == ["20", "item"]


def test_load_interactions_explicit_delimiter(tmp_path):
    # the first line holds a comma inside a field: sniffing would split it
    text = "u1|a,b|3\nu2|c|1\n"
    X, users, items = datasets.load_interactions(_write(tmp_path, text), delimiter="|")
    assert _as_dict(X, users, items) == {("u1", "a,b"): 3, ("u2", "c"): 1}


def test_load_interactions_sums_duplicates_ignores_extra_columns(tmp_path):
    text = ("user\titem\trating\ttimestamp\n"
            "u1\ti1\t2\t881250949\nu1\ti1\t3\t881250950\nu2\ti2\t1\t1\n"
            "\n"  # blank lines are skipped
            "u2\ti1\t4\t5\textra\n")
    X, users, items = datasets.load_interactions(_write(tmp_path, text))
    assert _as_dict(X, users, items) == {("u1", "i1"): 5, ("u2", "i2"): 1, ("u2", "i1"): 4}
    # no weight column: each line counts 1, repeats add up
    X, users, items = datasets.load_interactions(_write(tmp_path, "a b\na b\na c\n"))
    assert _as_dict(X, users, items) == {("a", "b"): 2, ("a", "c"): 1}


def test_load_interactions_min_weight_and_binary(tmp_path):
    text = "user,item,rating\na,x,5\na,y,3\nb,x,4\nb,z,1\nc,y,4.5\n"
    path = _write(tmp_path, text)
    X, users, items = datasets.load_interactions(path, min_weight=4)
    assert _as_dict(X, users, items) == {("a", "x"): 5, ("b", "x"): 4, ("c", "y"): 4.5}
    X, users, items = datasets.load_interactions(path, min_weight=4, binary=True)
    assert _as_dict(X, users, items) == {("a", "x"): 1, ("b", "x"): 1, ("c", "y"): 1}
    X, users, items = datasets.load_interactions(path, binary=True)
    assert X.nnz == 5 and (X.data == 1).all()
    assert items.tolist() == ["x", "y", "z"]
    # a zero weight is no interaction
    X, users, items = datasets.load_interactions(_write(tmp_path, "a,x,0\nb,y,2\n"))
    assert _as_dict(X, users, items) == {("b", "y"): 2}


@pytest.mark.parametrize("text, lineno, what", [
    ("a,b,1\nc\n", 2, "expected 'user,item[,weight]'"),
    ("a,b,1\nc,,2\n", 2, "expected 'user,item[,weight]'"),
    ("a\tb\t1\nc\td\t1\ne\n", 3, "expected 'user\titem[\tweight]'"),
    ("a,b,1\nc,d,-1\n", 2, "the weight '-1' is not a finite number >= 0"),
    ("a,b,1\nc,d,1\ne,f,lots\n", 3, "the weight 'lots' is not a finite number >= 0"),
    ("a,b,1\nc,d,nan\n", 2, "the weight 'nan'"),
    ("a,b,1\nc,d,inf\n", 2, "the weight 'inf'"),
])
def test_load_interactions_names_the_bad_line(tmp_path, text, lineno, what):
    path = _write(tmp_path, text)
    with pytest.raises(ValueError) as e:
        datasets.load_interactions(path)
    assert str(e.value).startswith(f"{path}:{lineno}: {what}"), str(e.value)


def test_load_interactions_nothing_left(tmp_path):
    path = _write(tmp_path, "user,item,rating\na,x,1\nb,y,2\n")
    with pytest.raises(ValueError, match=r"no interaction was read with weight >= 3"):
        datasets.load_interactions(path, min_weight=3)
    with pytest.raises(ValueError, match=r"no interaction was read\.$"):
        datasets.load_interactions(_write(tmp_path, "user,item\n\n"))


def test_load_interactions_leading_blank_line(tmp_path):
    X, _, _ = datasets.load_interactions(_write(tmp_path, "\na,b,1\nc,d,2\n"))
    assert X.nnz == 2


# ---------------------------------------------------------------------------
# data_home / load_bibtex / load_corel5k
# ---------------------------------------------------------------------------


def test_data_home_env_override(tmp_path, monkeypatch):
    monkeypatch.setenv("SKBOLT_DATA", str(tmp_path))
    assert data_home() == tmp_path
    monkeypatch.setenv("SKBOLT_DATA", str(tmp_path / "missing"))
    assert data_home() is None
    monkeypatch.setenv("MY_DATA_VAR", str(tmp_path))
    assert data_home(env="MY_DATA_VAR") == tmp_path


def test_data_home_default_is_beside_checkout(monkeypatch):
    monkeypatch.delenv("SKBOLT_DATA", raising=False)
    expected = Path(datasets.__file__).resolve().parents[2] / "shared" / "data"
    assert data_home() == (expected if expected.is_dir() else None)


def test_load_bibtex_missing_files_message(tmp_path):
    with pytest.raises(FileNotFoundError, match="SKBOLT_DATA"):
        load_bibtex(data_dir=tmp_path)


def _load_or_skip(loader):
    """The real dataset, or a skip naming what is missing (the loader's own
    FileNotFoundError message, tested above)."""
    try:
        return loader()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))


def test_load_bibtex_real_data():
    X_train, Y_train, X_test, Y_test = _load_or_skip(load_bibtex)
    assert X_train.shape == (4880, 1836) and X_test.shape == (2515, 1836)
    assert Y_train.shape == (4880, 159) and Y_test.shape == (2515, 159)
    for Y in (Y_train, Y_test):
        assert np.diff(Y.indptr).min() >= 1
        np.testing.assert_array_equal(Y.data, 1)
    # Reference figures from xc_bibtex/SOURCE.md.
    assert np.diff(Y_train.indptr).mean() == pytest.approx(2.38, abs=0.02)
    assert np.diff(X_train.indptr).mean() == pytest.approx(68.5, abs=0.5)
    # SOURCE.md: every label occurs in both splits.
    assert (np.diff(Y_train.tocsc().indptr) > 0).all()
    assert (np.diff(Y_test.tocsc().indptr) > 0).all()


def test_load_corel5k_missing_files_message(tmp_path):
    with pytest.raises(FileNotFoundError, match="Corel5k.*SKBOLT_DATA"):
        load_corel5k(data_dir=tmp_path)


def test_load_corel5k_rejects_wrong_header(tmp_path):
    # A file of another dataset under the Corel5k name must not load as Corel5k.
    folder = tmp_path / "xc_corel5k" / "xc_format"
    folder.mkdir(parents=True)
    for split in ("train", "test"):
        (folder / f"corel5k_{split}.txt").write_text(SMALL_XC)
    with pytest.raises(ValueError, match="n_features=499"):
        load_corel5k(data_dir=tmp_path)


def test_load_corel5k_real_data():
    X_train, Y_train, X_test, Y_test = _load_or_skip(load_corel5k)
    assert X_train.shape == (4500, 499) and X_test.shape == (500, 499)
    assert Y_train.shape == (4500, 374) and Y_test.shape == (500, 374)
    for X, Y in ((X_train, Y_train), (X_test, Y_test)):
        assert X.dtype == np.float32 and Y.dtype == np.float32
        # SOURCE.md: binary features, no empty label sets.
        np.testing.assert_array_equal(X.data, 1)
        assert np.diff(Y.indptr).min() >= 1
        np.testing.assert_array_equal(Y.data, 1)
    # Reference figures from xc_corel5k/SOURCE.md.
    assert np.diff(Y_train.indptr).mean() == pytest.approx(3.52, abs=0.02)
    assert np.diff(X_train.indptr).mean() == pytest.approx(8.2, abs=0.05)
    # SOURCE.md: 371 of the 374 labels occur in training, 263 in the test split.
    assert (np.diff(Y_train.tocsc().indptr) > 0).sum() == 371
    assert (np.diff(Y_test.tocsc().indptr) > 0).sum() == 263


# ---------------------------------------------------------------------------
# make_extreme_classification
# ---------------------------------------------------------------------------


def _row_norms(X):
    return np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())


def test_make_shapes_dtypes_norms():
    X, y = make_extreme_classification(
        n_samples=500, n_features=300, n_classes=40, random_state=0
    )
    assert sp.isspmatrix_csr(X) and X.dtype == np.float32
    assert X.shape == (500, 300) and X.has_canonical_format
    assert y.shape == (500,) and y.dtype == np.int64
    assert y.min() >= 0 and y.max() < 40
    assert (X.data > 0).all()
    np.testing.assert_allclose(_row_norms(X), 1.0, rtol=1e-5)


def test_make_determinism():
    kw = dict(n_samples=300, n_features=200, n_classes=30, n_labels=3, multilabel=True)
    X1, Y1 = make_extreme_classification(random_state=7, **kw)
    X2, Y2 = make_extreme_classification(random_state=7, **kw)
    X3, Y3 = make_extreme_classification(random_state=8, **kw)
    for a, b in ((X1, X2), (Y1, Y2)):
        np.testing.assert_array_equal(a.indptr, b.indptr)
        np.testing.assert_array_equal(a.indices, b.indices)
        np.testing.assert_array_equal(a.data, b.data)
    assert (X1 != X3).nnz > 0
    assert (Y1 != Y3).nnz > 0
    _, y1 = make_extreme_classification(n_samples=300, random_state=7)
    _, y2 = make_extreme_classification(n_samples=300, random_state=7)
    _, y3 = make_extreme_classification(n_samples=300, random_state=8)
    np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(y1, y3)


def test_make_power_law_frequencies():
    n_classes = 1000
    _, y = make_extreme_classification(
        n_samples=100_000, n_features=500, n_classes=n_classes, random_state=0
    )
    counts = np.bincount(y, minlength=n_classes)
    ranked = np.sort(counts)[::-1]
    # Head/median ratio is ~500 in expectation for power=1.
    assert ranked[0] > 100 * np.median(counts)
    # log-count vs log-rank slope over the well-sampled head must be -power.
    ranks = np.arange(1, 101)
    slope = np.polyfit(np.log(ranks), np.log(ranked[:100]), 1)[0]
    assert slope == pytest.approx(-1.0, abs=0.1)
    # Ranks go through a random permutation, so frequency is unrelated to id.
    assert abs(spearmanr(np.arange(n_classes), counts)[0]) < 0.1

    _, y0 = make_extreme_classification(
        n_samples=100_000,
        n_features=500,
        n_classes=n_classes,
        power=0.0,
        random_state=0,
    )
    counts0 = np.bincount(y0, minlength=n_classes)
    assert counts0.max() < 2 * np.median(counts0)


def test_make_multilabel():
    X, Y = make_extreme_classification(
        n_samples=4000,
        n_features=2000,
        n_classes=50,
        n_labels=3,
        multilabel=True,
        random_state=0,
    )
    assert sp.isspmatrix_csr(Y) and Y.dtype == np.float32
    assert Y.shape == (4000, 50) and Y.has_canonical_format
    np.testing.assert_array_equal(Y.data, 1)
    per_row = np.diff(Y.indptr)
    assert per_row.min() >= 1 and per_row.max() <= 3
    # Both full rows and rows shrunk by duplicate draws must occur.
    assert (per_row == 3).any() and (per_row < 3).any()
    np.testing.assert_allclose(_row_norms(X), 1.0, rtol=1e-5)

    # Every label of a row must leave a trace in X: rank classes by cosine
    # to label centroids and check that a row's k labels are its top k.
    C = (Y[:3000].T @ X[:3000]).toarray()
    C /= np.linalg.norm(C, axis=1, keepdims=True) + 1e-12
    scores = X[3000:] @ C.T
    Yt = Y[3000:].toarray()
    k = Yt.sum(axis=1).astype(int)
    order = np.argsort(-scores, axis=1)
    r_prec = np.mean([Yt[i, order[i, : k[i]]].sum() / k[i] for i in range(1000)])
    assert r_prec > 0.8


def test_make_learnable():
    X, y = make_extreme_classification(
        n_samples=3000, n_features=2000, n_classes=50, random_state=0
    )
    clf = NearestCentroid().fit(X[:2000], y[:2000])
    acc = clf.score(X[2000:], y[2000:])
    majority = np.bincount(y[:2000]).max() / 2000
    assert majority < 0.3
    assert acc > 0.8
    # Control: with labels decoupled from features the same model stays far
    # below the bar, so passing it requires real feature/label structure.
    y_shuf = np.random.default_rng(1).permutation(y)
    clf_shuf = NearestCentroid().fit(X[:2000], y_shuf[:2000])
    assert clf_shuf.score(X[2000:], y_shuf[2000:]) < 0.4


def test_make_large_scale_shapes():
    n, c = 200_000, 100_000
    X, y = make_extreme_classification(
        n_samples=n, n_features=100_000, n_classes=c, random_state=0
    )
    assert X.shape == (n, 100_000) and y.shape == (n,)
    assert y.min() >= 0 and y.max() < c
    # Each row holds 1..8 signature entries plus up to 20 noise entries.
    nnz = np.diff(X.indptr)
    assert nnz.min() >= 1 and nnz.max() <= 28
    # A heavy tail means many distinct classes show up even at 2 rows/class.
    assert np.unique(y).size > 20_000


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_samples": 0},
        {"n_features": -1},
        {"n_classes": 0},
        {"n_classes": 2.5},
        {"n_labels": 0, "multilabel": True},
        {"signature_size": 0},
        {"signature_size": 11, "n_features": 10},
        {"noise_features": -1},
        {"power": -0.5},
        {"power": float("inf")},
        {"power": "1"},
        {"n_samples": True},
        {"n_labels": 2, "multilabel": False},
    ],
)
def test_make_invalid_arguments(kwargs):
    with pytest.raises(ValueError):
        make_extreme_classification(random_state=0, **kwargs)


def test_make_signature_equals_n_features():
    # Distinct signatures must still be drawable when they cover every feature.
    X, _ = make_extreme_classification(
        n_samples=50,
        n_features=6,
        n_classes=20,
        signature_size=6,
        noise_features=0,
        random_state=0,
    )
    assert X.shape == (50, 6)
    np.testing.assert_allclose(_row_norms(X), 1.0, rtol=1e-5)


# ---------------------------------------------------------------------------
# interactions: interactions_to_csr, hold_out_items, split_users, split_last,
# make_interactions, load_movielens100k


def _random_triples(rng, n, n_users=30, n_items=40):
    users = np.array([f"u{i}" for i in rng.integers(0, n_users, n)])
    items = rng.integers(1000, 1000 + n_items, n)
    weights = rng.integers(0, 4, n).astype(float)
    return users, items, weights


def test_interactions_to_csr_sums_pairs_like_a_dict():
    rng = np.random.default_rng(0)
    users, items, weights = _random_triples(rng, 500)
    X, uids, iids = datasets.interactions_to_csr(users, items, weights)
    total = {}
    for u, i, w in zip(users.tolist(), items.tolist(), weights.tolist()):
        total[u, i] = total.get((u, i), 0.0) + w
    assert uids.tolist() == sorted(set(users.tolist()))
    assert iids.tolist() == sorted(set(items.tolist()))
    got = {(uids[r], iids[c]): v for r, c, v in zip(*sp.find(X))}
    assert got == {k: v for k, v in total.items() if v > 0}
    assert X.has_canonical_format and X.dtype == np.float32
    # without weights every interaction counts 1
    ones, _, _ = datasets.interactions_to_csr(users, items)
    assert ones.sum() == len(users)


def test_interactions_to_csr_keeps_mixed_ids_and_rejects_bad_input():
    X, uids, iids = datasets.interactions_to_csr([1, "x", 1], [2, 2, 3])
    assert uids.tolist() == [1, "x"] and iids.tolist() == [2, 3]
    np.testing.assert_array_equal(X.toarray(), [[1, 1], [1, 0]])
    for kwargs, match in (({"weights": [1, -1, 1]}, ">= 0"),
                          ({"weights": [1, np.nan, 1]}, "NaN"),
                          ({"weights": [1, 1]}, "one value per interaction")):
        with pytest.raises(ValueError, match=match):
            datasets.interactions_to_csr([1, 2, 3], [1, 2, 3], **kwargs)
    with pytest.raises(ValueError, match="one entry per interaction"):
        datasets.interactions_to_csr([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="no interactions"):
        datasets.interactions_to_csr([], [])


def test_hold_out_items_partitions_each_row():
    X = make_interactions_small()
    X_in, Y = datasets.hold_out_items(X, 0.25, random_state=3)
    np.testing.assert_allclose((X_in + Y).toarray(), X.toarray())
    assert X_in.multiply(Y).nnz == 0
    n = np.diff(X.indptr)
    want = np.where(n >= 2, np.clip(np.round(0.25 * n), 1, n - 1), 0)
    np.testing.assert_array_equal(np.diff(Y.indptr), want)
    again, _ = datasets.hold_out_items(X, 0.25, random_state=3)
    other, _ = datasets.hold_out_items(X, 0.25, random_state=4)
    assert (again != X_in).nnz == 0 and (other != X_in).nnz > 0
    with pytest.raises(ValueError, match="fraction"):
        datasets.hold_out_items(X, 1.0)
    with pytest.raises(ValueError, match="non-negative"):
        datasets.hold_out_items(-X)


def make_interactions_small():
    return datasets.make_interactions(300, 80, n_groups=5, mean_items=8, random_state=1).X


def test_split_users_holds_out_whole_users():
    X = make_interactions_small()
    s = datasets.split_users(X, test_size=0.2, val_size=0.1, holdout=0.2, random_state=0)
    groups = [s.train_users, s.test_users, s.val_users]
    assert sorted(np.concatenate(groups).tolist()) == list(range(X.shape[0]))
    assert len(s.test_users) == 60 and len(s.val_users) == 30
    assert (np.diff(X.indptr)[np.concatenate(groups[1:])] >= 2).all()
    assert (s.train != X[s.train_users]).nnz == 0
    for users, a, b in ((s.test_users, s.test_in, s.test_out),
                        (s.val_users, s.val_in, s.val_out)):
        np.testing.assert_allclose((a + b).toarray(), X[users].toarray())
        assert a.multiply(b).nnz == 0 and (np.diff(b.indptr) >= 1).all()
    # targets are about the holdout share of the held-out rows
    assert s.test_out.nnz / (s.test_in.nnz + s.test_out.nnz) == pytest.approx(0.2, abs=0.05)
    none = datasets.split_users(X, random_state=0)
    assert none.val_in is None and none.val_users.size == 0
    with pytest.raises(ValueError, match="leave some users"):
        datasets.split_users(X, test_size=0.6, val_size=0.5)
    with pytest.raises(ValueError, match="two or more items"):
        datasets.split_users(sp.identity(10, format="csr"), test_size=0.5)


def test_split_last_holds_out_the_latest_items():
    rng = np.random.default_rng(2)
    users, items, weights = _random_triples(rng, 400, n_users=25, n_items=30)
    weights += 1.0
    times = rng.integers(0, 50, 400)  # ties happen; later in the list wins
    for n_last in (1, 2):
        X_in, Y, uids, iids = datasets.split_last(users, items, times, weights, n_last)
        last, total = {}, {}
        for pos, (u, i, t, w) in enumerate(zip(users.tolist(), items.tolist(),
                                              times.tolist(), weights.tolist())):
            total[u, i] = total.get((u, i), 0.0) + w
            last[u, i] = max(last.get((u, i), (-1, -1)), (t, pos))
        want_in, want_out = {}, {}
        for u in set(users.tolist()):
            mine = sorted((k for k in last if k[0] == u), key=lambda k: last[k], reverse=True)
            held = mine[:n_last] if len(mine) > n_last else []
            for k in mine:
                (want_out if k in held else want_in)[k] = total[k]

        def as_dict(M):
            return {(uids[r], iids[c]): v for r, c, v in zip(*sp.find(M))}

        assert as_dict(Y) == pytest.approx(want_out) and as_dict(X_in) == pytest.approx(want_in)
    with pytest.raises(ValueError, match="timestamps"):
        datasets.split_last([1, 2], [1, 2], [0.0, np.inf])


def test_make_interactions_plants_tastes_and_popularity():
    d = datasets.make_interactions(4000, 600, n_groups=12, mean_items=15, power=1.0,
                                   taste_share=0.8, tastes_per_user=2, random_state=0)
    X = d.X
    assert X.shape == (4000, 600) and X.has_canonical_format and (X.data == 1).all()
    assert np.bincount(d.item_groups, minlength=12).min() >= 1
    # repeated draws merge, so rows are shorter than the draws; with a
    # uniform, large catalogue repeats are rare and the mean shows
    assert np.diff(X.indptr).mean() < 15
    wide = datasets.make_interactions(4000, 200_000, n_groups=12, mean_items=15, power=0.0,
                                      random_state=0).X
    assert np.diff(wide.indptr).mean() == pytest.approx(15, rel=0.05)
    assert np.diff(wide.indptr).min() >= 1
    # most of a user's items lie in the user's groups; by chance 2/12 would
    rows, cols = X.nonzero()
    mine = (d.item_groups[cols][:, None] == d.user_groups[rows]).any(axis=1)
    assert mine.mean() > 0.7
    # item counts follow the planted popularity
    counts = np.asarray(X.sum(axis=0)).ravel()
    assert spearmanr(counts, d.popularity)[0] > 0.6
    same = datasets.make_interactions(50, 30, n_groups=3, random_state=7)
    again = datasets.make_interactions(50, 30, n_groups=3, random_state=7)
    assert (same.X != again.X).nnz == 0
    for kwargs in ({"n_groups": 700}, {"tastes_per_user": 13}, {"mean_items": 0.5},
                   {"power": -1}, {"taste_share": 1.5}):
        with pytest.raises(ValueError):
            datasets.make_interactions(10, 600, **{"n_groups": 12, **kwargs})


def test_load_movielens100k_real_data(data_dir):
    if not (data_dir / "rec_movielens100k" / "u.data").is_file():
        pytest.skip("MovieLens 100K not in the shared data folder")
    d = datasets.load_movielens100k()
    assert d.X.shape == (943, 1682) and d.X.nnz == 100_000
    np.testing.assert_array_equal(np.bincount(d.X.data.astype(int))[1:],
                                  [6110, 11370, 27145, 34174, 21201])
    assert d.user_ids[0] == 1 and d.item_ids[-1] == 1682
    assert d.titles is None or d.titles[0] == "Toy Story"
    assert d.timestamps.nnz == 100_000 and d.timestamps.data.min() > 8e8
    liked = datasets.load_movielens100k(min_rating=4, implicit=True)
    assert liked.X.nnz == 34174 + 21201 and (liked.X.data == 1).all()
    with pytest.raises(FileNotFoundError, match="SKBOLT_DATA"):
        datasets.load_movielens100k(data_dir=data_dir / "nowhere")


def test_load_interactions_windows_line_ends_and_bad_bytes(tmp_path):
    path = tmp_path / "crlf.csv"
    path.write_bytes(b"user,item,rating\r\nu1,i1,2\r\nu2,i1,1\r\n")
    X, users, items = datasets.load_interactions(path)
    assert users.tolist() == ["u1", "u2"] and items.tolist() == ["i1"]
    np.testing.assert_array_equal(X.toarray().ravel(), [2, 1])
    bad = tmp_path / "latin1.csv"
    bad.write_bytes(b"u1,i1\nu2,caf\xe9\n")
    with pytest.raises(ValueError, match=f"{bad}:2: the line is not UTF-8"):
        datasets.load_interactions(bad)
