"""Property-based fuzzing of every public call with hostile inputs.

Each case builds an input as a user (or an attacker) could: CSR triplets
with int32 or int64 indices, unsorted and duplicate column ids, ids past
the declared width, empty rows, NaN and infinity, float16 / float32 /
float64 / integer / boolean values, read-only and non-contiguous arrays,
zero rows, indptr arrays corrupted after construction, and ``k`` / ``n``
at and past their limits. The property: the
call either returns what the same call returns on a canonical copy of the
input (duplicates summed, columns sorted, float64, dense then CSR), or
raises a ValueError (or MemoryError) with a message; anything else, and
of course a crash, fails.

The quick profile (default) runs a few hundred cases in the normal suite;
``SKBOLT_FUZZ=long`` runs 2,500 per test (10,000+ in all), as CI's
sanitizer step may. The last three tests write hostile data files (XC,
SVMLight, interactions) and hand them to the loaders and to ``skbolt
train``: a file loads, or it is refused with a ValueError naming it
(status 2 from the command line), never another exception.
"""
import os

import numpy as np
import pytest
import scipy.sparse as sp

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, event, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import skbolt  # noqa: E402
from skbolt import BoltClassifier, BoltRecommender  # noqa: E402

settings.register_profile("quick", max_examples=60, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                 HealthCheck.too_slow])
settings.register_profile("long", max_examples=2500, deadline=None,
                          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                 HealthCheck.too_slow])
settings.load_profile(os.environ.get("SKBOLT_FUZZ", "quick"))

N_FEATURES, N_CLASSES = 12, 6


@pytest.fixture(scope="module")
def models():
    rng = np.random.RandomState(0)
    X = sp.random(200, N_FEATURES, density=0.3, format="csr", random_state=rng)
    y = rng.randint(0, N_CLASSES, 200)
    clf = BoltClassifier(max_iter=2, hidden_layer_sizes=(8,), output_sparsity=0.5,
                         random_state=0).fit(X, y)
    rec = BoltRecommender(max_iter=2, hidden_layer_sizes=(8,), output_sparsity=0.5,
                          random_state=0).fit(X)
    return clf, rec


DTYPES = [np.float16, np.float32, np.float64, np.int32, np.int64, np.bool_, np.uint8]


@st.composite
def hostile_csr(draw, width=N_FEATURES):
    """(X, canonical or None): a CSR matrix built from raw triplets, and its
    canonical copy when the triplets describe a valid matrix."""
    n_rows = draw(st.integers(0, 6))
    n_cols = draw(st.sampled_from([width, width, width, width - 1, width + 3, 1]))
    lengths = draw(st.lists(st.integers(0, 5), min_size=n_rows, max_size=n_rows))
    nnz = sum(lengths)
    big = draw(st.booleans()) and draw(st.integers(0, 20)) == 0
    outside = draw(st.integers(0, 3)) == 0  # ids past the width in a quarter of cases
    hi = 2**40 if big else (n_cols + 2 if outside else n_cols - 1)
    indices = np.array(draw(st.lists(st.integers(-2 if big else 0, hi), min_size=nnz,
                                     max_size=nnz)), dtype=np.int64)
    in_range = bool(((indices >= 0) & (indices < n_cols)).all())
    dtype = draw(st.sampled_from(DTYPES))
    values = draw(st.lists(st.floats(-3, 1e3, allow_nan=False, width=16), min_size=nnz,
                           max_size=nnz))
    data = np.abs(np.array(values, dtype=np.float64))
    special = draw(st.sampled_from([None, None, None, np.nan, np.inf, -1.0]))
    if special is not None and nnz and np.dtype(dtype).kind == "f":
        data[draw(st.integers(0, nnz - 1))] = special
    data = data.astype(dtype)
    index_dtype = draw(st.sampled_from([np.int32, np.int64])) if not big else np.int64
    indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(index_dtype)
    if draw(st.booleans()) and nnz:  # a strided view instead of contiguous memory
        data = np.repeat(data, 2)[::2]
    if draw(st.booleans()):
        data.flags.writeable = False
    X = sp.csr_matrix((data, indices.astype(index_dtype), indptr), shape=(n_rows, n_cols))
    # scipy checks indptr when it builds X, not afterwards: corrupt it in
    # place in one case in eight (a reversed, shifted or overlong index)
    corrupt = n_rows > 0 and draw(st.integers(0, 7)) == 0
    if corrupt:
        how = draw(st.sampled_from(["reverse", "shift", "overlong"]))
        if how == "reverse":
            X.indptr[:] = X.indptr[::-1].copy()
        else:
            X.indptr[-1 if how == "overlong" else 0] += draw(st.integers(1, 3))
        # the untouched case (reversing a row of zeros) stays valid
        corrupt = not (X.indptr[0] == 0 and X.indptr[-1] == nnz
                       and (np.diff(X.indptr) >= 0).all())
    canonical = None
    if in_range and n_rows and not corrupt:
        dense = np.zeros((n_rows, n_cols))
        rows = np.repeat(np.arange(n_rows), lengths)
        np.add.at(dense, (rows, indices), data.astype(np.float64))
        canonical = sp.csr_matrix(dense)
    return X, canonical


def _fitted(canonical):
    """The canonical copy where a fitted model must accept it: as wide as
    the training data."""
    return canonical if canonical is not None and canonical.shape[1] == N_FEATURES else None


def _agree_or_refuse(call, X, canonical):
    """``call(X)`` equals ``call(canonical)``, or raises a clear error."""
    try:
        got = call(X)
    except (ValueError, MemoryError) as e:
        assert str(e).strip(), "an error without a message"
        event("refused, valid input" if canonical is not None else "refused")
        return
    event("answered")
    assert canonical is not None, "a call on an invalid input returned instead of raising"
    expected = call(canonical)
    for a, b in zip(got if isinstance(got, tuple) else (got,),
                    expected if isinstance(expected, tuple) else (expected,)):
        if np.asarray(a).dtype.kind == "f":
            # duplicates are summed in float32 by the estimator, in float64
            # for the canonical copy: scores may differ in the last bit
            # (the long profile found one such row)
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
        else:
            np.testing.assert_array_equal(a, b)


def _finite(canonical, non_negative=False):
    """The canonical copy where the estimator must accept it: finite values
    (the recommender's weights also non-negative), else None."""
    if canonical is None or not np.isfinite(canonical.data).all() or (
            non_negative and (canonical.data < 0).any()):
        return None
    return canonical


@given(hostile_csr())
def test_classifier_predictions(models, case):
    clf, _ = models
    X, canonical = case
    for call in (clf.predict, clf.predict_proba, clf.decision_function, clf.embed,
                 lambda A: clf.predict_topk(A, 3)):
        _agree_or_refuse(call, X, _fitted(_finite(canonical)))


@given(hostile_csr(), st.integers(-2, 2 * N_CLASSES))
def test_topk_limits(models, case, k):
    clf, rec = models
    X, canonical = case
    _agree_or_refuse(lambda A: clf.predict_topk(A, k), X,
                     _fitted(_finite(canonical)) if 1 <= k <= N_CLASSES else None)
    _agree_or_refuse(lambda A: rec.recommend(A, n=k), X,
                     _fitted(_finite(canonical, True)) if k >= 1 else None)


@given(hostile_csr())
def test_recommender_calls(models, case):
    _, rec = models
    X, canonical = case
    canonical = _fitted(_finite(canonical, True))
    for call in (rec.predict, lambda A: rec.recommend(A, n=4)):
        _agree_or_refuse(call, X, canonical)


@given(hostile_csr(), st.integers(0, 2))
def test_recommender_fit_and_score(case, targets):
    """fit from interactions alone, then predict and score: with no targets
    (a seeded hold-out of each row), the same rows as targets, or the rows
    reversed as targets."""
    X, canonical = case
    canonical = _finite(canonical, True)
    if canonical is not None and (canonical.shape[1] < 2 or canonical.nnz == 0):
        canonical = None  # a catalogue of one item, or nothing to learn from

    def fit_and_score(A):
        rec = BoltRecommender(max_iter=1, hidden_layer_sizes=(4,), random_state=0).fit(A)
        Y = None if targets == 0 else (A if targets == 1 else A[::-1])
        return rec.predict(A), rec.score(A, Y)

    _agree_or_refuse(fit_and_score, X, canonical)


@given(st.one_of(st.lists(st.integers(0, N_FEATURES - 1), max_size=6),
                 st.lists(st.integers(0, N_FEATURES - 1), max_size=6),
                 st.lists(st.integers(-3, N_FEATURES + 3), max_size=6),
                 st.lists(st.integers(-2**70, 2**70), max_size=3),
                 st.lists(st.booleans(), max_size=3),
                 st.lists(st.floats(0, N_FEATURES), max_size=3),
                 st.lists(st.text(max_size=2), max_size=3)),
       st.integers(-2, N_FEATURES + 3),
       st.sampled_from([list, np.int32, np.int64, np.int64, np.int64, "2d"]))
def test_similar_items(models, items, n, form):
    _, rec = models
    valid = (n >= 1 and all(type(i) is int and 0 <= i < N_FEATURES for i in items))
    if form == "2d":
        arg, valid = [items], False
    elif form is list or not all(type(i) is int and abs(i) < 2**31 for i in items):
        arg = items
    else:
        arg = np.asarray(items, dtype=form)
    canonical = np.asarray(items, dtype=np.int64) if valid else None
    try:
        ids, scores = rec.similar_items(arg, n=n)
    except (ValueError, MemoryError) as e:
        assert str(e).strip()
        event("refused, valid input" if valid else "refused")
        return
    event("answered")
    assert valid, f"similar_items({arg!r}, n={n}) answered"
    expected_ids, expected_scores = rec.similar_items(canonical, n=n)
    width = min(n, N_FEATURES - 1)
    assert ids.shape == scores.shape == (len(items), width)
    np.testing.assert_array_equal(ids, expected_ids)
    np.testing.assert_array_equal(scores, expected_scores)
    assert ((ids >= -1) & (ids < N_FEATURES)).all()
    assert not (ids == canonical[:, None]).any()  # an item is not its own neighbour


@given(hostile_csr(), st.data())
def test_fit_and_partial_fit(case, data):
    X, canonical = case
    canonical = _finite(canonical)
    y = np.array(data.draw(st.lists(st.integers(0, 3), min_size=X.shape[0],
                                    max_size=X.shape[0])))

    def fit(A):
        model = BoltClassifier(max_iter=1, hidden_layer_sizes=(4,), random_state=0).fit(A, y)
        return model.predict_proba(A)

    def partial(A):
        model = BoltClassifier(hidden_layer_sizes=(4,), random_state=0)
        model.partial_fit(A, y, classes=np.arange(4))
        return model.predict_proba(A)

    # fit needs two classes; partial_fit is told all four
    _agree_or_refuse(fit, X, canonical if len(np.unique(y)) >= 2 else None)
    _agree_or_refuse(partial, X, canonical if X.shape[0] else None)


@given(st.binary(max_size=64), st.integers(0, 10**6), st.integers(0, 3))
def test_damaged_model_files(models, tmp_path_factory, junk, where, mode):
    clf, _ = models
    path = tmp_path_factory.mktemp("fuzz") / "m.skbolt"
    clf.save(path)
    original = path.read_bytes()
    raw = bytearray(original)
    where %= len(raw)
    if mode == 0:
        raw = raw[:where]
    elif mode == 1:
        raw[where:where + len(junk)] = junk
    elif mode == 2:
        raw[where] ^= 1 + where % 255
    else:
        raw = raw[:where] + junk + raw[where:]
    path.write_bytes(bytes(raw))
    try:
        back = skbolt.load(path)
    except ValueError as e:
        assert str(e)
        return
    # only an edit that changed nothing may load
    assert bytes(raw) == original
    assert back.get_params() == clf.get_params()


# ----------------------------------------------------------------------
# data files and the command line

#: Pieces a hostile data line is made of: labels, index:value pairs that are
#: fine, out of range, unsorted, not numbers, non-finite; stray separators.
_TOKENS = ["0", "1", "2,3", "5", "-1", "1.5", "inf", "nan", "x", "0:1", "1:0.5", "3:2",
           "2:1", "7:1", "-1:1", "1:x", "1:inf", "1:nan", "a:1", ":", "1:", "qid:3", "#c",
           ",", "1,,2", "99999999999999999999:1", "\t", "1e400:1"]


@st.composite
def hostile_lines(draw, header):
    lines = []
    if header:
        lines.append(draw(st.sampled_from(["3 4 3", "2 4 3", "3 4 3 1", "x 4 3", "3 4",
                                           "0 4 3", "3 -4 3"])))
    for _ in range(draw(st.integers(0, 4))):
        tokens = draw(st.lists(st.sampled_from(_TOKENS), max_size=5))
        lead = draw(st.sampled_from(["", "", " "]))
        lines.append(lead + " ".join(tokens))
    return "\n".join(lines) + draw(st.sampled_from(["", "\n", "\n\n"]))


@given(text=hostile_lines(header=True), kind=st.sampled_from(["xc", "svmlight"]))
def test_data_files_load_or_refuse_with_a_line(tmp_path_factory, text, kind):
    """Any file either loads into matrices of consistent shapes or raises a
    ValueError naming the file; the command line turns it into status 2."""
    from skbolt import cli
    from skbolt.datasets import load_svmlight, load_xc

    path = tmp_path_factory.mktemp("data") / "data.txt"
    body = text if kind == "xc" else text.split("\n", 1)[-1]
    path.write_text(body)
    load = load_xc if kind == "xc" else load_svmlight
    try:
        X, Y = load(path)
    except ValueError as e:
        event(f"{kind} refused")
        assert str(path) in str(e)
    else:
        event(f"{kind} loaded")
        assert X.shape[0] == Y.shape[0]
        assert np.isfinite(X.data).all()
    with open(os.devnull, "w") as null:
        status = cli.main(["train", str(path), "--model", str(path) + ".m", "-q",
                           "-p", "max_iter=1", "-p", "hidden_layer_sizes=(4,)", "--format",
                           kind], out=null)
    assert status in (0, 2)


_CSV_FIELDS = ["u1", "u2", "i1", "i2", "1", "0", "-1", "2.5", "nan", "inf", "x", "", " ",
               "user", "item", "rating", "1e400", '"q"']


@given(lines=st.lists(st.lists(st.sampled_from(_CSV_FIELDS), max_size=4), max_size=5),
       sep=st.sampled_from([",", "\t", ";", " "]), min_weight=st.sampled_from([None, 1.0]))
def test_interaction_files_load_or_refuse_with_a_line(tmp_path_factory, lines, sep,
                                                      min_weight):
    from skbolt.datasets import load_interactions

    path = tmp_path_factory.mktemp("csv") / "x.csv"
    path.write_text("\n".join(sep.join(f) for f in lines) + "\n")
    try:
        X, users, items = load_interactions(path, min_weight=min_weight)
    except ValueError as e:
        event("interactions refused")
        assert str(path) in str(e)
    else:
        event("interactions loaded")
        # weight-0 interactions keep their user and item, as no interaction
        assert X.shape == (len(users), len(items)) and len(users) > 0
        assert np.isfinite(X.data).all() and (X.data > 0).all()
