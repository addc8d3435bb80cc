"""Dataset loaders and synthetic generators for extreme classification.

This module provides

* :func:`load_xc`, a reader for the text format of the Extreme
  Classification Repository (Bhatia et al.), :func:`load_svmlight` for
  plain SVMLight / LibSVM files and :func:`load_interactions` for
  (user, item[, weight]) CSV files, each with a progress bar on request and
  errors that name the file and line;
* :func:`data_home`, :func:`load_bibtex` and :func:`load_corel5k`, access
  to the real datasets shipped next to the repository checkout;
* :func:`make_extreme_classification`, a fast, fully vectorised generator of
  sparse, learnable problems with a power-law label distribution, suitable
  for exercising LSH-sparse networks at 10^5+ classes;
* for recommendation: :func:`interactions_to_csr` (triples with any ids to
  a users x items matrix), :func:`split_users` (strong generalization),
  :func:`hold_out_items`, :func:`split_last` (leave-last-out),
  :func:`load_movielens100k` and :func:`make_interactions` (a seeded
  generator of power-law catalogues with planted tastes).
"""

import numbers
import os
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from sklearn.datasets import load_svmlight_file
from sklearn.preprocessing import normalize
from tqdm.auto import tqdm

__all__ = [
    "data_home",
    "load_bibtex",
    "load_corel5k",
    "load_interactions",
    "load_svmlight",
    "load_xc",
    "make_extreme_classification",
    "hold_out_items",
    "interactions_to_csr",
    "load_movielens100k",
    "make_interactions",
    "split_last",
    "split_users",
]

_BIBTEX_N_FEATURES = 1836
_BIBTEX_N_LABELS = 159
_COREL5K_N_FEATURES = 499
_COREL5K_N_LABELS = 374


def _parse_header(line, path):
    """Parse the ``n_points n_features n_labels`` header line.

    Parameters
    ----------
    line : bytes
        First line of the file.
    path : str or os.PathLike
        Used only in error messages.

    Returns
    -------
    n_points, n_features, n_labels : int
        The three header values.

    Raises
    ------
    ValueError
        If the line is not made of exactly three non-negative integers.
    """
    fields = line.split()
    try:
        values = [int(tok) for tok in fields]
    except ValueError:
        values = None
    # A missing header is the most common mistake (e.g. passing a plain
    # svmlight file), and without this check the first data row would be
    # silently swallowed, so fail loudly instead.
    if values is None or len(values) != 3 or min(values) < 0:
        raise ValueError(
            f"{os.fspath(path)!r} does not start with an Extreme Classification "
            f"header 'n_points n_features n_labels'; got "
            f"{line[:80].decode(errors='replace').rstrip()!r}."
        )
    return tuple(values)


def _check_declared(name, given, declared):
    """Return the dimension to use, checking a user value against the header.

    Parameters
    ----------
    name : str
        Parameter name, for the error message.
    given : int or None
        Value passed by the caller.
    declared : int
        Value read from the file header.

    Returns
    -------
    int
        ``declared`` when ``given`` is None, else ``given``.

    Raises
    ------
    ValueError
        If ``given`` disagrees with ``declared``.
    """
    if given is None:
        return declared
    if given != declared:
        # Train and test files of one dataset must share dimensions; a
        # disagreement means the wrong file or the wrong dataset constants.
        raise ValueError(
            f"{name}={given} was requested but the file header declares "
            f"{name}={declared}."
        )
    return given


class _ByteProgress:
    """The lines of an open binary file, for sklearn's SVMLight parser (which
    reads by iterating), moving a bar by the bytes they hold."""

    def __init__(self, fh, bar, step=1 << 20):
        self.fh, self.bar, self.step = fh, bar, step

    def read(self, size=-1):  # the parser asks for a file-like object
        return self.fh.read(size)

    def __iter__(self):
        pending = 0
        for line in self.fh:
            pending += len(line)
            if pending >= self.step:  # a bar update per line would cost more than parsing
                self.bar.update(pending)
                pending = 0
            yield line
        self.bar.update(pending)


def _file_bar(path, fh, verbose):
    """A byte-count bar over the rest of ``fh`` (silent unless ``verbose``)."""
    total = os.path.getsize(path) - fh.tell()
    return tqdm(total=total, unit="B", unit_scale=True, disable=not verbose, leave=False,
                desc=f"reading {os.path.basename(os.fspath(path))}")


def _parse_svmlight_body(fh, path, n_features, dtype, verbose):
    """X and the label tuples of the lines after ``fh``'s position, parsed
    once by sklearn's parser (the text is never held in memory)."""
    with _file_bar(path, fh, verbose) as bar:
        return load_svmlight_file(_ByteProgress(fh, bar), n_features=n_features, dtype=dtype,
                                  multilabel=True, zero_based=True)


def _token_problem(token, xc, n_features):
    """What is wrong with one ``index:value`` token, or None."""
    index, sep, value = token.partition(b":")
    if not sep:
        return f"expected index:value, got {token[:40].decode(errors='replace')!r}"
    if not xc and index == b"qid":
        return None
    try:
        i = int(index)
    except ValueError:
        return f"feature index {index[:40].decode(errors='replace')!r} is not an integer"
    if i < 0 or (n_features is not None and i >= n_features):
        bound = f"[0, {n_features})" if n_features is not None else ">= 0"
        return f"feature index {i} is outside {bound}"
    try:
        v = float(value)
    except ValueError:
        return f"feature value {value[:40].decode(errors='replace')!r} is not a number"
    if not np.isfinite(v):
        return f"feature {i} has the value {v}; values must be finite"
    return None


def _line_problem(line, xc, n_features, n_labels):
    """What is wrong with one data line of an XC or SVMLight file, or None."""
    body = line.split(b"#", 1)[0]
    tokens = body.split()
    if tokens and b":" not in tokens[0] and not body[:1].isspace():
        for lab in tokens[0].split(b","):
            try:
                value = float(lab)
            except ValueError:
                return f"label {lab[:40].decode(errors='replace')!r} is not a number"
            if not np.isfinite(value):
                return f"label {lab.decode(errors='replace')} is not a finite number"
            if xc and not (value == int(value) and 0 <= value < n_labels):
                return f"label {lab.decode(errors='replace')} is not an integer in [0, {n_labels})"
        tokens = tokens[1:]
    elif not xc:
        return "expected a label (or comma-separated labels) before the features"
    previous = -1
    for token in tokens:
        problem = _token_problem(token, xc, n_features)
        if problem:
            return problem
        index = token.partition(b":")[0]
        if index == b"qid":
            continue
        if int(index) <= previous:
            return (f"feature index {int(index)} follows {previous}: indices must be "
                    "increasing (sorted, each once)")
        previous = int(index)
    return None


def _bad_line_error(path, xc, n_features, n_labels, cause):
    """A ValueError naming the first line of ``path`` that does not parse,
    found by a second, line-by-line pass (taken only once the fast parser
    has failed), or naming the file and the parser's message."""
    expected = ("'label,label,... index:value ...' (labels in [0, n_labels), the line "
                "starting with a space when it has none)" if xc else
                "'label[,label...] index:value ...'")
    with open(path, "rb") as fh:
        first = 1
        if xc:
            fh.readline()
            first = 2
        for lineno, raw in enumerate(fh, first):
            if not raw.split(b"#", 1)[0].strip():
                continue
            problem = _line_problem(raw, xc, n_features, n_labels)
            if problem:
                text = raw.decode(errors="replace").rstrip()[:80]
                return ValueError(f"{os.fspath(path)}:{lineno}: {problem}; each line must read "
                                  f"{expected}. The line reads {text!r}.")
    return ValueError(f"{os.fspath(path)}: {cause}")


def _checked_finite(X, path, xc, n_features, n_labels):
    if not np.isfinite(X.data).all():
        raise _bad_line_error(path, xc, n_features, n_labels, "a feature value is not finite")
    return X


def load_xc(path, n_features=None, n_labels=None, dtype=np.float32, verbose=False):
    """Load a dataset in the Extreme Classification Repository text format.

    The first line is a header ``n_points n_features n_labels``. Each
    following line is ``l1,l2,... f:v f:v ...`` with 0-based label and
    feature indices; the label list may be empty, in which case the line
    starts with a space.

    Parameters
    ----------
    path : str or os.PathLike
        File to read.
    n_features : int, default=None
        Expected number of features. If None, the header value is used;
        otherwise it must equal the header value.
    n_labels : int, default=None
        Expected number of labels. If None, the header value is used;
        otherwise it must equal the header value.
    dtype : numpy dtype, default=np.float32
        dtype of the feature matrix.
    verbose : bool, default=False
        Show a progress bar of the bytes read.

    Returns
    -------
    X : scipy.sparse.csr_matrix of shape (n_points, n_features)
        Feature matrix of dtype ``dtype``.
    Y : scipy.sparse.csr_matrix of shape (n_points, n_labels)
        Binary label indicator matrix of dtype float32 whose stored values
        are all 1. Labels repeated on a line are stored once.

    Raises
    ------
    ValueError
        If the header is missing or malformed, if ``n_features`` or
        ``n_labels`` disagree with it, if the number of data rows differs
        from the header count, or if a line does not parse (a feature index
        out of range, a value that is not a finite number, a label that is
        not an integer in ``[0, n_labels)``): the message gives the file,
        the line number and what was expected.

    Notes
    -----
    The file is parsed in one pass by scikit-learn's SVMLight parser; its
    text is never held in memory. Blank lines are skipped by that parser,
    so a point with neither labels nor features cannot be represented and
    shows up as a row-count mismatch.

    Examples
    --------
    >>> X, Y = load_xc("bibtex_train.txt")  # doctest: +SKIP
    >>> X.shape, Y.shape  # doctest: +SKIP
    ((4880, 1836), (4880, 159))
    """
    with open(path, "rb") as fh:
        n_points, h_features, h_labels = _parse_header(fh.readline(), path)
        n_features = _check_declared("n_features", n_features, h_features)
        n_labels = _check_declared("n_labels", n_labels, h_labels)
        try:
            X, labels = _parse_svmlight_body(fh, path, n_features, dtype, verbose)
        except (ValueError, OverflowError) as e:  # an index past C's long: overflow
            raise _bad_line_error(path, True, n_features, n_labels, e) from None
    _checked_finite(X, path, True, n_features, n_labels)

    if X.shape[0] != n_points:
        raise ValueError(
            f"{os.fspath(path)!r}: header declares {n_points} points but "
            f"{X.shape[0]} data rows were read."
        )

    counts = np.fromiter(map(len, labels), dtype=np.int64, count=len(labels))
    flat = np.fromiter(
        (lab for row in labels for lab in row), dtype=np.float64, count=counts.sum()
    )
    with np.errstate(invalid="ignore"):
        label_idx = flat.astype(np.int64)
    bad = (label_idx != flat) | (label_idx < 0) | (label_idx >= n_labels)
    if bad.any():
        raise _bad_line_error(path, True, n_features, n_labels,
                              f"label index {flat[np.argmax(bad)]:g} is not an integer in "
                              f"[0, {n_labels}).")

    indptr = np.zeros(n_points + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    Y = sp.csr_matrix(
        (np.ones(label_idx.size, dtype=np.float32), label_idx, indptr),
        shape=(n_points, n_labels),
    )
    # Summing duplicates would turn a repeated label into a 2; an indicator
    # matrix must stay binary, so reset the values afterwards.
    Y.sum_duplicates()
    Y.data[:] = 1.0
    return X, Y


def _file_line_of_row(path, row):
    """The 1-based line of ``path`` that holds data row ``row`` (blank and
    comment-only lines hold none)."""
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            if raw.split(b"#", 1)[0].strip():
                if row == 0:
                    return lineno
                row -= 1
    return lineno


def load_svmlight(path, n_features=None, dtype=np.float32, verbose=False):
    """Load a plain SVMLight / LibSVM file, single- or multi-label.

    Each line is ``label[,label...] index:value ...``; feature indices are
    read as written (0 is allowed; a 1-based file leaves column 0 empty),
    ``qid:`` tokens and ``#`` comments are ignored.

    Parameters
    ----------
    path : str or os.PathLike
        File to read.
    n_features : int, default=None
        Width of X. None: one more than the largest index in the file. When
        given, indices at or beyond it are an error.
    dtype : numpy dtype, default=np.float32
        dtype of the feature matrix.
    verbose : bool, default=False
        Show a progress bar of the bytes read.

    Returns
    -------
    X : scipy.sparse.csr_matrix of shape (n_samples, n_features)
        Features.
    y : ndarray of shape (n_samples,) or scipy.sparse.csr_matrix
        When every line has exactly one label: the labels (float64, as
        written; integral labels come back as int64). Otherwise a binary
        indicator matrix of shape (n_samples, max label + 1) whose column
        ``j`` is label ``j``; multi-label labels must then be integers >= 0.

    Raises
    ------
    ValueError
        If a line does not parse, a value is not finite, or a multi-label
        file has a label that is not a non-negative integer; the message
        gives the file, the line number and what was expected.
    """
    with open(path, "rb") as fh:
        try:
            X, labels = _parse_svmlight_body(fh, path, n_features, dtype, verbose)
        except (ValueError, OverflowError) as e:  # an index past C's long: overflow
            raise _bad_line_error(path, False, n_features, None, e) from None
    _checked_finite(X, path, False, n_features, None)
    counts = np.fromiter(map(len, labels), dtype=np.int64, count=len(labels))
    flat = np.fromiter((lab for row in labels for lab in row), dtype=np.float64,
                       count=counts.sum())
    if counts.size and (counts == 1).all():
        integral = np.isfinite(flat).all() and (flat == np.round(flat)).all()
        return X, flat.astype(np.int64) if integral else flat
    with np.errstate(invalid="ignore"):
        ids = flat.astype(np.int64)
    bad = (ids != flat) | (ids < 0)
    if bad.any():
        row = int(np.searchsorted(np.cumsum(counts), np.argmax(bad), side="right"))
        raise ValueError(f"{os.fspath(path)}:{_file_line_of_row(path, row)}: the label "
                         f"{flat[np.argmax(bad)]:g} is not an integer >= 0; the labels of a "
                         "multi-label file must be (label j is column j of the indicator).")
    indptr = np.zeros(counts.size + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    Y = sp.csr_matrix((np.ones(ids.size, dtype=np.float32), ids, indptr),
                      shape=(counts.size, int(ids.max()) + 1 if ids.size else 1))
    Y.sum_duplicates()
    Y.data[:] = 1.0
    return X, Y


def data_home(env="SKBOLT_DATA"):
    """Return the folder holding the shared real datasets.

    Parameters
    ----------
    env : str, default="SKBOLT_DATA"
        Name of the environment variable that overrides the default location.

    Returns
    -------
    pathlib.Path or None
        The value of the environment variable if it is set and non-empty,
        else ``shared/data`` next to the repository checkout (the parent of
        the directory containing the ``skbolt`` package). None if that
        folder does not exist.
    """
    value = os.environ.get(env)
    if value:
        home = Path(value).expanduser()
    else:
        # parents[0] is the package dir, parents[1] the checkout, and the
        # shared data lives beside the checkout rather than inside it.
        home = Path(__file__).resolve().parents[2] / "shared" / "data"
    return home if home.is_dir() else None


def _load_shared_split(data_dir, folder, stem, title, n_features, n_labels):
    """Load the train and test files of a dataset kept in the shared data folder.

    Parameters
    ----------
    data_dir : str, os.PathLike or None
        Folder containing ``folder``; None means :func:`data_home`.
    folder : str
        Sub-folder of the dataset, e.g. ``"xc_bibtex"``; the files are in
        its ``xc_format/`` folder.
    stem : str
        File name prefix: the files are ``{stem}_train.txt`` and
        ``{stem}_test.txt``.
    title : str
        Dataset name for error messages.
    n_features, n_labels : int
        The dataset's dimensions, checked against both file headers.

    Returns
    -------
    X_train, Y_train, X_test, Y_test : scipy.sparse.csr_matrix
        As returned by :func:`load_xc` for each file.

    Raises
    ------
    FileNotFoundError
        If the data folder or one of the two files cannot be found.
    """
    base = Path(data_dir) if data_dir is not None else data_home()
    hint = (
        "Set the SKBOLT_DATA environment variable to the folder that "
        f"contains {folder}/, or pass data_dir."
    )
    if base is None:
        raise FileNotFoundError(f"No shared data folder was found. {hint}")
    where = base / folder / "xc_format"
    paths = [where / f"{stem}_{split}.txt" for split in ("train", "test")]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"{title} files not found: {', '.join(missing)}. {hint}"
        )
    # Passing the known dimensions makes a file of another dataset (or a
    # truncated header) fail here rather than as a shape error in a model.
    X_train, Y_train = load_xc(paths[0], n_features, n_labels)
    X_test, Y_test = load_xc(paths[1], n_features, n_labels)
    return X_train, Y_train, X_test, Y_test


def load_bibtex(data_dir=None):
    """Load the Bibtex multi-label dataset (159 labels) with its fixed split.

    Parameters
    ----------
    data_dir : str or os.PathLike, default=None
        Folder containing ``xc_bibtex/``. Defaults to :func:`data_home`.

    Returns
    -------
    X_train : scipy.sparse.csr_matrix of shape (4880, 1836)
        Binary bag-of-words training features, float32.
    Y_train : scipy.sparse.csr_matrix of shape (4880, 159)
        Training label indicator matrix, float32.
    X_test : scipy.sparse.csr_matrix of shape (2515, 1836)
        Test features, float32.
    Y_test : scipy.sparse.csr_matrix of shape (2515, 159)
        Test label indicator matrix, float32.

    Raises
    ------
    FileNotFoundError
        If the data folder or the dataset files cannot be found.

    See Also
    --------
    load_corel5k : Another small real multi-label set in the same format.

    References
    ----------
    I. Katakis, G. Tsoumakas, I. Vlahavas, "Multilabel Text Classification
    for Automated Tag Suggestion", ECML/PKDD 2008 Discovery Challenge.
    """
    return _load_shared_split(data_dir, "xc_bibtex", "bibtex", "Bibtex",
                              _BIBTEX_N_FEATURES, _BIBTEX_N_LABELS)


def load_corel5k(data_dir=None):
    """Load the Corel5k multi-label dataset (374 labels) with its fixed split.

    Images described by 499 binary "blob" features (visual words), labelled
    with annotation keywords: 3.5 labels per training row on average, with
    8 nonzero features. Three of the 374 labels never occur in the
    training split, and only 263 occur in the test split.

    Parameters
    ----------
    data_dir : str or os.PathLike, default=None
        Folder containing ``xc_corel5k/``. Defaults to :func:`data_home`.

    Returns
    -------
    X_train : scipy.sparse.csr_matrix of shape (4500, 499)
        Binary training features, float32.
    Y_train : scipy.sparse.csr_matrix of shape (4500, 374)
        Training label indicator matrix, float32.
    X_test : scipy.sparse.csr_matrix of shape (500, 499)
        Test features, float32.
    Y_test : scipy.sparse.csr_matrix of shape (500, 374)
        Test label indicator matrix, float32.

    Raises
    ------
    FileNotFoundError
        If the data folder or the dataset files cannot be found.

    See Also
    --------
    load_bibtex : Another small real multi-label set in the same format.

    References
    ----------
    P. Duygulu, K. Barnard, N. de Freitas, D. Forsyth, "Object Recognition
    as Machine Translation: Learning a Lexicon for a Fixed Image
    Vocabulary", ECCV 2002.
    """
    return _load_shared_split(data_dir, "xc_corel5k", "corel5k", "Corel5k",
                              _COREL5K_N_FEATURES, _COREL5K_N_LABELS)


def _check_int(name, value, minimum):
    """Validate an integer argument.

    Parameters
    ----------
    name : str
        Argument name, for the error message.
    value : object
        Value to check.
    minimum : int
        Smallest accepted value.

    Returns
    -------
    int
        ``value`` as a Python int.

    Raises
    ------
    ValueError
        If ``value`` is not an integer (bools are rejected) or is below
        ``minimum``.
    """
    if (
        isinstance(value, (bool, np.bool_))
        or not isinstance(value, numbers.Integral)
        or value < minimum
    ):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def _distinct_signatures(rng, n_classes, n_features, size):
    """Draw ``size`` distinct feature ids per class.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness.
    n_classes : int
        Number of classes (rows of the result).
    n_features : int
        Feature ids are drawn from ``[0, n_features)``.
    size : int
        Signature length; must be ``<= n_features``.

    Returns
    -------
    ndarray of shape (n_classes, size), dtype int64
        Each row holds distinct ids, sorted.
    """
    sig = rng.integers(0, n_features, size=(n_classes, size))
    sig.sort(axis=1)
    # Drawing with replacement and redrawing only the colliding entries is
    # O(n_classes * size) per pass, and collisions are rare when
    # size << n_features; a per-class choice(replace=False) would need a
    # Python loop over up to 10^6 classes.
    rows = np.arange(n_classes)
    while rows.size:
        sub = sig[rows]
        dup = np.zeros(sub.shape, dtype=bool)
        dup[:, 1:] = sub[:, 1:] == sub[:, :-1]
        has_dup = dup.any(axis=1)
        rows, sub, dup = rows[has_dup], sub[has_dup], dup[has_dup]
        sub[dup] = rng.integers(0, n_features, size=int(dup.sum()))
        sub.sort(axis=1)
        sig[rows] = sub
    return sig


def make_extreme_classification(
    n_samples=10000,
    n_features=5000,
    n_classes=1000,
    n_labels=1,
    signature_size=8,
    noise_features=20,
    power=1.0,
    multilabel=False,
    random_state=None,
):
    """Generate a sparse, learnable extreme-classification problem.

    Classes follow a Zipf-like power law: the class of frequency rank ``r``
    (0-based) has probability proportional to ``1 / (r + 1) ** power``, and
    ranks are assigned to class ids through a random permutation so that
    frequent classes are not simply the low ids. Each class owns
    ``signature_size`` distinct "signature" features, drawn uniformly from
    ``[0, n_features)`` (different classes may share features by chance).

    Each sample is built as follows: for each of its labels, every signature
    feature of that class is kept with probability 0.75 (at least one is
    always kept) with value ``1 + U[0, 0.5)``; then ``noise_features``
    background features drawn uniformly from ``[0, n_features)`` are added
    with values in ``(0, 0.5]``. Values landing on the same column are
    summed and each row is finally L2-normalised.

    Parameters
    ----------
    n_samples : int, default=10000
        Number of samples.
    n_features : int, default=5000
        Number of features.
    n_classes : int, default=1000
        Number of classes.
    n_labels : int, default=1
        Number of label draws per sample when ``multilabel=True``; duplicate
        draws are merged, so a row has between 1 and ``n_labels`` labels.
        Must be 1 when ``multilabel=False``.
    signature_size : int, default=8
        Number of signature features per class; at most ``n_features``.
    noise_features : int, default=20
        Number of background features added to every sample (may be 0).
    power : float, default=1.0
        Exponent of the power law; 0 gives uniform class frequencies and
        larger values a heavier head.
    multilabel : bool, default=False
        Whether to return a label indicator matrix instead of class ids.
    random_state : None, int, numpy.random.SeedSequence, BitGenerator or \
numpy.random.Generator, default=None
        Seed passed to :func:`numpy.random.default_rng`. A fixed integer
        gives bitwise-identical output across calls.

    Returns
    -------
    X : scipy.sparse.csr_matrix of shape (n_samples, n_features)
        float32 features with unit L2 norm rows, canonical format (sorted
        indices, no duplicates).
    y : ndarray of shape (n_samples,) or scipy.sparse.csr_matrix of shape \
(n_samples, n_classes)
        int64 class ids in ``[0, n_classes)`` if ``multilabel=False``;
        otherwise a float32 indicator matrix whose stored values are 1.

    Raises
    ------
    ValueError
        If an argument is out of range.

    Examples
    --------
    >>> X, y = make_extreme_classification(
    ...     n_samples=100, n_features=50, n_classes=10, random_state=0)
    >>> X.shape, y.shape
    ((100, 50), (100,))
    """
    n_samples = _check_int("n_samples", n_samples, 1)
    n_features = _check_int("n_features", n_features, 1)
    n_classes = _check_int("n_classes", n_classes, 1)
    n_labels = _check_int("n_labels", n_labels, 1)
    signature_size = _check_int("signature_size", signature_size, 1)
    noise_features = _check_int("noise_features", noise_features, 0)
    if signature_size > n_features:
        raise ValueError(
            f"signature_size={signature_size} cannot exceed "
            f"n_features={n_features}."
        )
    if (
        isinstance(power, (bool, np.bool_))
        or not isinstance(power, numbers.Real)
        or not np.isfinite(power)
        or power < 0
    ):
        raise ValueError(f"power must be a finite real >= 0, got {power!r}.")
    if not multilabel and n_labels != 1:
        # Silently ignoring n_labels would hide a forgotten multilabel=True.
        raise ValueError(
            f"n_labels={n_labels} requires multilabel=True; a single-label "
            "problem has exactly one label per sample."
        )

    rng = np.random.default_rng(random_state)

    # exp/log instead of ** so that large powers underflow to 0 quietly
    # instead of overflowing with a warning.
    weights = np.exp(-float(power) * np.log(np.arange(1, n_classes + 1.0)))
    cdf = np.cumsum(weights)
    cdf /= cdf[-1]
    rank_to_class = rng.permutation(n_classes)
    signatures = _distinct_signatures(rng, n_classes, n_features, signature_size)

    k = n_labels if multilabel else 1
    # Inverse-CDF sampling; cdf[-1] == 1.0 exactly and draws are < 1, so the
    # rank never runs past the last class.
    ranks = np.searchsorted(cdf, rng.random(n_samples * k), side="right")
    labels = rank_to_class[ranks].reshape(n_samples, k)
    labels.sort(axis=1)
    is_new = np.ones(labels.shape, dtype=bool)
    is_new[:, 1:] = labels[:, 1:] != labels[:, :-1]
    pair_label = labels[is_new]
    labels_per_row = is_new.sum(axis=1)
    pair_row = np.repeat(np.arange(n_samples), labels_per_row)
    n_pairs = pair_label.size

    keep = rng.random((n_pairs, signature_size)) < 0.75
    empty = np.flatnonzero(~keep.any(axis=1))
    keep[empty, rng.integers(0, signature_size, size=empty.size)] = True
    sig_vals = 1.0 + 0.5 * rng.random((n_pairs, signature_size), dtype=np.float32)
    sig_cols = signatures[pair_label]
    sig_rows = np.broadcast_to(pair_row[:, None], keep.shape)

    n_noise = n_samples * noise_features
    noise_rows = np.repeat(np.arange(n_samples), noise_features)
    noise_cols = rng.integers(0, n_features, size=n_noise)
    # 1 - U[0, 1) lies in (0, 1], so no explicit zeros get stored.
    noise_vals = 0.5 * (1.0 - rng.random(n_noise, dtype=np.float32))

    X = sp.csr_matrix(
        (
            np.concatenate([sig_vals[keep], noise_vals]),
            (
                np.concatenate([sig_rows[keep], noise_rows]),
                np.concatenate([sig_cols[keep], noise_cols]),
            ),
        ),
        shape=(n_samples, n_features),
        dtype=np.float32,
    )
    X.sum_duplicates()
    X = normalize(X, norm="l2", copy=False)

    if not multilabel:
        return X, labels[:, 0].astype(np.int64)

    indptr = np.zeros(n_samples + 1, dtype=np.int64)
    np.cumsum(labels_per_row, out=indptr[1:])
    # Rows were sorted and deduplicated above, so this is already canonical.
    Y = sp.csr_matrix(
        (np.ones(n_pairs, dtype=np.float32), pair_label, indptr),
        shape=(n_samples, n_classes),
    )
    return X, Y


# --------------------------------------------------------------------------
# interactions: users x items
# --------------------------------------------------------------------------


def _id_codes(values, name):
    """Codes and the sorted distinct ids of a 1-D sequence of hashable ids.

    Ids that numpy can sort (numbers, strings) come out sorted; a mix that
    cannot be ordered (say ints and strings) keeps the order in which each
    id first appears.
    """
    arr = np.asarray(values)
    if not isinstance(values, np.ndarray) and arr.dtype.kind == "U":
        # numpy turns [1, "x"] into strings; keep the user's own ids
        as_objects = np.asarray(values, dtype=object)
        if not all(isinstance(v, str) for v in as_objects.ravel().tolist()):
            arr = as_objects
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D sequence of ids, got shape {arr.shape}.")
    try:
        ids, codes = np.unique(arr, return_inverse=True)
    except TypeError:
        first = {}
        codes = np.fromiter((first.setdefault(v, len(first)) for v in arr.tolist()),
                            dtype=np.int64, count=arr.size)
        ids = np.empty(len(first), dtype=object)
        ids[:] = list(first)
    return ids, codes.astype(np.int64, copy=False).ravel()


def _check_weights(weights, n):
    """Interaction weights as float64: finite and non-negative."""
    if weights is None:
        return np.ones(n)
    w = np.asarray(weights)
    if w.shape != (n,):
        raise ValueError(f"weights must hold one value per interaction ({n}), "
                         f"got shape {w.shape}.")
    if not (np.issubdtype(w.dtype, np.number) or w.dtype == np.bool_):
        raise ValueError(f"weights must be numbers, got dtype {w.dtype}.")
    w = w.astype(np.float64)
    if not np.isfinite(w).all():
        raise ValueError("weights contain NaN or infinity; drop or fix those interactions.")
    if (w < 0).any():
        raise ValueError("weights must be >= 0 (implicit feedback counts how much a user "
                         "touched an item); drop negative interactions or shift them.")
    return w


def _interaction_codes(users, items, weights):
    """Both id maps, the row and column code of each interaction, and the
    checked weights."""
    user_ids, rows = _id_codes(users, "users")
    item_ids, cols = _id_codes(items, "items")
    if rows.size != cols.size:
        raise ValueError(f"users and items must have one entry per interaction, got "
                         f"{rows.size} users and {cols.size} items.")
    if rows.size == 0:
        raise ValueError("no interactions were given.")
    return user_ids, rows, item_ids, cols, _check_weights(weights, rows.size)


def interactions_to_csr(users, items, weights=None, dtype=np.float32):
    """Turn (user, item[, weight]) interactions into a users x items matrix.

    Parameters
    ----------
    users, items : array-like of shape (n_interactions,)
        User and item of each interaction: any hashable ids (ints, strings).
    weights : array-like of shape (n_interactions,), default=None
        Finite, non-negative weight of each interaction (a count, a rating);
        None means 1 each. Repeated (user, item) pairs are summed; pairs
        whose total is 0 are left out (no interaction).
    dtype : numpy dtype, default=np.float32
        Value type of the matrix.

    Returns
    -------
    X : scipy.sparse.csr_matrix of shape (n_users, n_items)
        Row ``u`` holds user ``user_ids[u]``'s items, column ``i`` is item
        ``item_ids[i]``; canonical (sorted indices, no duplicates).
    user_ids : ndarray of shape (n_users,)
        The distinct users, sorted when they can be ordered, else in order
        of first appearance.
    item_ids : ndarray of shape (n_items,)
        The distinct items, likewise.

    Raises
    ------
    ValueError
        If the sequences are empty or differ in length, or a weight is
        negative, NaN or infinite.

    Examples
    --------
    >>> from skbolt.datasets import interactions_to_csr
    >>> X, users, items = interactions_to_csr(["ann", "bob", "ann"], [7, 3, 7])
    >>> X.toarray(), users.tolist(), items.tolist()
    (array([[0., 2.],
           [1., 0.]], dtype=float32), ['ann', 'bob'], [3, 7])
    """
    user_ids, rows, item_ids, cols, w = _interaction_codes(users, items, weights)
    X = sp.csr_matrix((w, (rows, cols)), shape=(user_ids.size, item_ids.size))
    X.sum_duplicates()
    X.eliminate_zeros()
    return X.astype(dtype), user_ids, item_ids


def _split_fields(line, delimiter):
    return [f.strip() for f in (line.split(delimiter) if delimiter else line.split())]


def _sniff_delimiter(line):
    """Tab, comma or semicolon when the first line holds one, else runs of
    whitespace (MovieLens' u.data is tab-separated, most exports commas)."""
    for d in ("\t", ",", ";"):
        if d in line:
            return d
    return None


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


#: First-line fields that make ``load_interactions``' ``header="auto"`` take
#: the line for column names (compared lower-cased, quotes stripped).
_HEADER_NAMES = {"user", "users", "user_id", "userid", "uid", "item", "items", "item_id",
                 "itemid", "iid", "movie", "movie_id", "movieid", "weight", "rating",
                 "count", "value", "timestamp"}


def _looks_like_header(fields):
    names = [f.strip("\"'").lower() for f in fields]
    return any(n in _HEADER_NAMES for n in names) or (
        len(fields) > 2 and not _is_number(fields[2]))


def load_interactions(path, delimiter=None, header="auto", min_weight=None, binary=False,
                      verbose=False):
    """Read (user, item[, weight]) interactions from a delimited text file.

    Columns are user, item and, optionally, weight; further columns (a
    timestamp, say) are ignored. Ids are kept as the strings in the file.

    Parameters
    ----------
    path : str or os.PathLike
        File to read (UTF-8).
    delimiter : str or None, default=None
        Field separator. None: a tab, comma or semicolon if the first line
        holds one (in that order), else runs of whitespace.
    header : bool or "auto", default="auto"
        Whether the first non-blank line names the columns. "auto": it does
        when one of its fields is a usual column name (user, user_id, item,
        item_id, movie_id, rating, weight, timestamp, ..., any case) or
        when its third field is not a number.
    min_weight : float or None, default=None
        Keep only interactions whose weight is at least this (ratings >= 4:
        the usual "liked" cut); None keeps all.
    binary : bool, default=False
        Store 1 for every kept interaction instead of its weight.
    verbose : bool, default=False
        Show a progress bar of the bytes read.

    Returns
    -------
    X : scipy.sparse.csr_matrix of shape (n_users, n_items)
        As :func:`interactions_to_csr` makes it (repeated pairs summed).
    user_ids, item_ids : ndarray of str
        The file's ids of the rows and the columns.

    Raises
    ------
    ValueError
        If a line has fewer than two fields or a weight that is not a
        finite number >= 0 (the message gives the file and line number), or
        if no interaction is left.
    """
    name = os.fspath(path)
    users, items, weights = [], [], []
    with open(path, "rb") as raw, _file_bar(path, raw, verbose) as bar:
        first = True
        for lineno, raw_line in enumerate(_ByteProgress(raw, bar), 1):
            try:
                line = raw_line.decode("utf-8")
            except UnicodeDecodeError:
                raise ValueError(f"{name}:{lineno}: the line is not UTF-8 text.") from None
            if not line.strip():
                continue
            if first and delimiter is None:
                delimiter = _sniff_delimiter(line)
            fields = _split_fields(line, delimiter)
            if first:
                first = False
                if header is True or header == "auto" and _looks_like_header(fields):
                    continue
            if len(fields) < 2 or not fields[0] or not fields[1]:
                raise ValueError(f"{name}:{lineno}: expected 'user{delimiter or ' '}item"
                                 f"[{delimiter or ' '}weight]', got {line.strip()[:80]!r}.")
            w = 1.0
            if len(fields) > 2:
                try:
                    w = float(fields[2])
                except ValueError:
                    w = float("nan")
                if not (np.isfinite(w) and w >= 0):
                    raise ValueError(f"{name}:{lineno}: the weight {fields[2][:40]!r} is not "
                                     "a finite number >= 0.")
            if min_weight is not None and w < min_weight:
                continue
            users.append(fields[0])
            items.append(fields[1])
            weights.append(1.0 if binary else w)
    if not users:
        raise ValueError(f"{name}: no interaction was read"
                         + (f" with weight >= {min_weight}." if min_weight is not None else "."))
    return interactions_to_csr(np.array(users), np.array(items), np.array(weights))


def _check_interactions(X):
    """A canonical CSR copy of a users x items matrix, with finite values >= 0."""
    if not sp.issparse(X):
        X = np.asarray(X)
        if X.ndim != 2:
            raise ValueError(f"X must be 2-D (users x items), got shape {X.shape}.")
    X = sp.csr_matrix(X, copy=True)
    X.sum_duplicates()
    if not np.isfinite(X.data).all():
        raise ValueError("X contains NaN or infinity.")
    if (X.data < 0).any():
        raise ValueError("X must hold non-negative interaction weights.")
    X.eliminate_zeros()
    return X


def _row_ranks(X, rng):
    """For every stored entry of CSR ``X``, its rank within its row in a
    random order (0 for the first drawn)."""
    rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
    order = np.lexsort((rng.random(X.nnz), rows))
    ranks = np.empty(X.nnz, dtype=np.int64)
    ranks[order] = np.arange(X.nnz) - X.indptr[rows[order]]
    return ranks


def _hold_out(X, fraction, rng):
    """Split every row of ``X`` into input and target entries: a seeded
    ``fraction`` of each row's items (at least one, never all) as targets;
    rows with fewer than two items keep them all as input."""
    n = np.diff(X.indptr)
    n_targets = np.where(n >= 2, np.clip(np.round(fraction * n), 1, n - 1), 0)
    rows = np.repeat(np.arange(X.shape[0]), n)
    target = _row_ranks(X, rng) < n_targets[rows]

    def part(mask):
        M = sp.csr_matrix((X.data[mask], X.indices[mask],
                           np.concatenate([[0], np.cumsum(np.bincount(rows[mask],
                                                                       minlength=X.shape[0]))])),
                          shape=X.shape)
        return M

    return part(~target), part(target)


def hold_out_items(X, fraction=0.2, random_state=None):
    """Hold out a seeded share of every row's items as targets.

    Parameters
    ----------
    X : {array-like, sparse matrix} of shape (n_users, n_items)
        Interactions (non-negative weights).
    fraction : float in (0, 1), default=0.2
        Share of each row's items that become targets, rounded, at least one
        and never all of them; rows with fewer than two items keep them all
        as input (and have no targets).
    random_state : int, RandomState instance or None, default=None
        Seeds which items are held out.

    Returns
    -------
    X_in, Y : scipy.sparse.csr_matrix of shape (n_users, n_items)
        The input part and the held-out part; together they are ``X``.
    """
    from sklearn.utils import check_random_state

    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction!r}.")
    X = _check_interactions(X)
    return _hold_out(X, float(fraction), check_random_state(random_state))


def split_users(X, test_size=0.2, val_size=0.0, holdout=0.2, random_state=None):
    """Strong-generalization split: held-out users, each split into fold-in
    input and targets.

    Users are drawn at random into test (and validation) sets among those
    with at least two items; the rest, and every user with fewer, train.
    Each held-out user's row is split by :func:`hold_out_items`: a seeded
    ``holdout`` share of its items are the targets, the rest the input a
    fitted model sees for that new user.

    Parameters
    ----------
    X : {array-like, sparse matrix} of shape (n_users, n_items)
        Interactions (non-negative weights).
    test_size, val_size : float in [0, 1), default=0.2 and 0.0
        Shares of the eligible users held out for testing and validation.
    holdout : float in (0, 1), default=0.2
        Share of a held-out user's items that are targets.
    random_state : int, RandomState instance or None, default=None
        Seeds the user draw and the item hold-out.

    Returns
    -------
    sklearn.utils.Bunch
        ``train`` (CSR of the training users' rows), ``test_in`` /
        ``test_out`` (inputs and targets of the test users), ``val_in`` /
        ``val_out`` (None without ``val_size``), and the row numbers of
        each group in ``X``: ``train_users``, ``test_users``, ``val_users``.

    Examples
    --------
    >>> from skbolt.datasets import make_interactions, split_users
    >>> X = make_interactions(200, 50, random_state=0).X
    >>> s = split_users(X, random_state=0)
    >>> s.train.shape[0] + s.test_in.shape[0] == X.shape[0]
    True
    """
    from sklearn.utils import Bunch, check_random_state

    for name, v in (("test_size", test_size), ("val_size", val_size)):
        if not 0 <= v < 1:
            raise ValueError(f"{name} must be in [0, 1), got {v!r}.")
    if test_size + val_size >= 1:
        raise ValueError("test_size + val_size must leave some users for training.")
    if not 0 < holdout < 1:
        raise ValueError(f"holdout must be in (0, 1), got {holdout!r}.")
    X = _check_interactions(X)
    rng = check_random_state(random_state)
    eligible = np.flatnonzero(np.diff(X.indptr) >= 2)
    perm = rng.permutation(eligible)
    n_test = int(round(test_size * X.shape[0]))
    n_val = int(round(val_size * X.shape[0]))
    if n_test + n_val > perm.size:
        raise ValueError(f"only {perm.size} users have two or more items: too few to hold "
                         f"out {n_test + n_val}; use smaller test_size / val_size.")
    if test_size > 0 and n_test == 0:
        raise ValueError(f"test_size={test_size} holds out no user of {X.shape[0]}.")
    test = np.sort(perm[:n_test])
    val = np.sort(perm[n_test:n_test + n_val])
    train = np.setdiff1d(np.arange(X.shape[0]), np.concatenate([test, val]))
    if train.size == 0:
        raise ValueError("no user is left for training.")
    test_in, test_out = _hold_out(X[test], holdout, rng)
    val_in = val_out = None
    if n_val:
        val_in, val_out = _hold_out(X[val], holdout, rng)
    return Bunch(train=X[train], test_in=test_in, test_out=test_out, val_in=val_in,
                 val_out=val_out, train_users=train, test_users=test, val_users=val)


def split_last(users, items, timestamps, weights=None, n_last=1):
    """Leave-last-out: each user's latest interactions are the targets.

    Parameters
    ----------
    users, items : array-like of shape (n_interactions,)
        Any hashable ids, as for :func:`interactions_to_csr`.
    timestamps : array-like of shape (n_interactions,)
        When each interaction happened (numbers; ties are broken by the
        order given, later wins).
    weights : array-like of shape (n_interactions,), default=None
        As for :func:`interactions_to_csr`.
    n_last : int, default=1
        Latest distinct items per user held out. A user with no more than
        ``n_last`` distinct items keeps all of them as input.

    Returns
    -------
    X_in, Y : scipy.sparse.csr_matrix of shape (n_users, n_items)
        Earlier interactions (weights summed) and the held-out latest
        items (their summed weights). An item held out is not in the
        user's input, even if the user touched it earlier too.
    user_ids, item_ids : ndarray
        The id maps of both matrices, as :func:`interactions_to_csr`.
    """
    n_last = _check_int("n_last", n_last, 1)
    user_ids, rows, item_ids, cols, w = _interaction_codes(users, items, weights)
    t = np.asarray(timestamps)
    if t.shape != rows.shape or not np.issubdtype(t.dtype, np.number):
        raise ValueError("timestamps must hold one number per interaction.")
    t = t.astype(np.float64)
    if not np.isfinite(t).all():
        raise ValueError("timestamps contain NaN or infinity.")
    # every interaction's place in time, ties in the order given
    when = np.empty(t.size, dtype=np.int64)
    when[np.lexsort((np.arange(t.size), t))] = np.arange(t.size)
    # one entry per (user, item) pair, in CSR order: summed weight, latest time
    pairs, inverse = np.unique(rows * item_ids.size + cols, return_inverse=True)
    inverse = inverse.ravel()
    total = np.bincount(inverse, weights=w, minlength=pairs.size)
    latest = np.full(pairs.size, -1, dtype=np.int64)
    np.maximum.at(latest, inverse, when)
    keep = total > 0
    pairs, total, latest = pairs[keep], total[keep], latest[keep]
    prow, pcol = pairs // item_ids.size, pairs % item_ids.size
    # rank of each pair within its user's row, latest first
    order = np.lexsort((-latest, prow))
    starts = np.searchsorted(prow, prow)  # pairs are sorted by user
    recency = np.empty(pairs.size, dtype=np.int64)
    recency[order] = np.arange(pairs.size) - starts[order]
    n = np.bincount(prow, minlength=user_ids.size)
    target = (recency < n_last) & (n[prow] > n_last)
    shape = (user_ids.size, item_ids.size)

    def part(mask):
        return sp.csr_matrix((total[mask], (prow[mask], pcol[mask])), shape=shape,
                             dtype=np.float32)

    return part(~target), part(target), user_ids, item_ids


def _distinct_draws(rng, n_rows, n, k):
    """``k`` distinct integers in [0, n) per row, uniformly."""
    if 4 * k > n:
        return np.argsort(rng.random((n_rows, n)), axis=1)[:, :k]
    out = rng.integers(0, n, size=(n_rows, k))
    while True:  # redraw the few rows with a repeat
        s = np.sort(out, axis=1)
        bad = np.flatnonzero((s[:, 1:] == s[:, :-1]).any(axis=1))
        if bad.size == 0:
            return out
        out[bad] = rng.integers(0, n, size=(bad.size, k))


def make_interactions(n_users=1000, n_items=500, n_groups=20, mean_items=20, power=1.0,
                      taste_share=0.8, tastes_per_user=2, random_state=None):
    """Generate implicit feedback with power-law popularity and planted tastes.

    Every item belongs to one of ``n_groups`` latent groups (uniformly at
    random) and has a popularity that follows a Zipf-like law over a random
    ranking of the items, ``1 / (rank + 1) ** power``. Every user likes
    ``tastes_per_user`` groups. Each of a user's interactions is, with
    probability ``taste_share``, an item of one of the user's groups drawn
    by popularity within that group, else an item drawn by popularity from
    the whole catalogue. The number of draws per user is geometric with
    mean ``mean_items`` (at least one); repeated draws count once. Fully
    vectorised: a million items and a million interactions take seconds.

    Parameters
    ----------
    n_users, n_items : int, default=1000 and 500
        Rows and columns of the interaction matrix.
    n_groups : int, default=20
        Latent item groups (at most ``n_items``).
    mean_items : float, default=20
        Mean number of draws per user.
    power : float, default=1.0
        Popularity exponent (0: uniform).
    taste_share : float in [0, 1], default=0.8
        Share of draws that follow the user's tastes.
    tastes_per_user : int, default=2
        Groups each user likes (at most ``n_groups``).
    random_state : int, Generator, RandomState or None, default=None
        Seed.

    Returns
    -------
    sklearn.utils.Bunch
        ``X`` (CSR of shape (n_users, n_items), values 1.0),
        ``item_groups`` (the group of each item), ``user_groups`` (shape
        (n_users, tastes_per_user)) and ``popularity`` (each item's
        normalised popularity).

    Examples
    --------
    >>> from skbolt.datasets import make_interactions
    >>> data = make_interactions(100, 40, n_groups=4, random_state=0)
    >>> data.X.shape, data.item_groups.shape
    ((100, 40), (40,))
    """
    from sklearn.utils import Bunch

    n_users = _check_int("n_users", n_users, 1)
    n_items = _check_int("n_items", n_items, 1)
    n_groups = _check_int("n_groups", n_groups, 1)
    tastes_per_user = _check_int("tastes_per_user", tastes_per_user, 1)
    if n_groups > n_items:
        raise ValueError(f"n_groups={n_groups} cannot exceed n_items={n_items}.")
    if tastes_per_user > n_groups:
        raise ValueError(f"tastes_per_user={tastes_per_user} cannot exceed "
                         f"n_groups={n_groups}.")
    if not (isinstance(mean_items, numbers.Real) and np.isfinite(mean_items)
            and mean_items >= 1):
        raise ValueError(f"mean_items must be a finite number >= 1, got {mean_items!r}.")
    if not (isinstance(power, numbers.Real) and np.isfinite(power) and power >= 0):
        raise ValueError(f"power must be a finite real >= 0, got {power!r}.")
    if not (isinstance(taste_share, numbers.Real) and 0 <= taste_share <= 1):
        raise ValueError(f"taste_share must be in [0, 1], got {taste_share!r}.")
    rng = np.random.default_rng(random_state) if not isinstance(
        random_state, np.random.RandomState) else np.random.default_rng(
        random_state.randint(2**31))

    popularity = np.exp(-float(power) * np.log(np.arange(1, n_items + 1.0)))
    popularity = popularity[rng.permutation(n_items)]
    popularity /= popularity.sum()
    # every group gets at least one item, the rest are uniform
    groups = np.concatenate([np.arange(n_groups), rng.integers(0, n_groups, n_items - n_groups)])
    groups = groups[rng.permutation(n_items)]
    # items sorted by group; per group a cdf over its items, offset by the
    # group number so one searchsorted serves every group
    by_group = np.argsort(groups, kind="stable")
    g_sorted = groups[by_group]
    w = popularity[by_group]
    group_total = np.bincount(g_sorted, weights=w, minlength=n_groups)
    within = np.cumsum(w) - np.concatenate([[0.0], np.cumsum(group_total)[:-1]])[g_sorted]
    group_cdf = g_sorted + within / group_total[g_sorted]
    global_cdf = np.cumsum(popularity)
    global_cdf /= global_cdf[-1]

    tastes = _distinct_draws(rng, n_users, n_groups, tastes_per_user)
    draws = rng.geometric(1.0 / float(mean_items), size=n_users)
    rows = np.repeat(np.arange(n_users), draws)
    taste = rng.random(rows.size) < taste_share
    u = rng.random(rows.size)
    cols = np.empty(rows.size, dtype=np.int64)
    g = tastes[rows[taste], rng.integers(0, tastes_per_user, taste.sum())]
    pos = np.searchsorted(group_cdf, g + u[taste], side="right")
    # a draw at the top of a group's cdf stays inside that group
    pos = np.minimum(pos, np.searchsorted(g_sorted, g, side="right") - 1)
    cols[taste] = by_group[pos]
    cols[~taste] = np.minimum(np.searchsorted(global_cdf, u[~taste], side="right"),
                              n_items - 1)
    X = sp.csr_matrix((np.ones(rows.size, dtype=np.float32), (rows, cols)),
                      shape=(n_users, n_items))
    X.sum_duplicates()
    X.data[:] = 1.0
    return Bunch(X=X, item_groups=groups, user_groups=tastes, popularity=popularity)


def load_movielens100k(data_dir=None, min_rating=None, implicit=False):
    """Load MovieLens 100K (943 users, 1,682 movies, 100,000 ratings).

    Read from ``rec_movielens100k/u.data`` in the shared data folder (the
    original GroupLens layout: tab-separated user, item, rating, timestamp).
    The data's terms forbid redistribution, so it is never shipped with the
    package.

    Parameters
    ----------
    data_dir : str, os.PathLike or None, default=None
        Folder containing ``rec_movielens100k/``; None means
        :func:`data_home`.
    min_rating : int or None, default=None
        Keep only ratings at least this high (4: the usual "liked" cut);
        None keeps all.
    implicit : bool, default=False
        Store 1.0 for every kept rating instead of the rating.

    Returns
    -------
    sklearn.utils.Bunch
        ``X`` (CSR users x items), ``timestamps`` (CSR of the same pattern,
        seconds since 1970), ``user_ids`` and ``item_ids`` (the original
        ids of the rows and columns) and ``titles`` (each column's movie
        title, when ``rec_movielens100k/recbole_atomic/ml-100k.item`` is
        there, else None).

    Raises
    ------
    FileNotFoundError
        If the data folder or ``u.data`` cannot be found.
    """
    from sklearn.utils import Bunch

    base = Path(data_dir) if data_dir is not None else data_home()
    hint = ("Set the SKBOLT_DATA environment variable to the folder that contains "
            "rec_movielens100k/, or pass data_dir.")
    if base is None:
        raise FileNotFoundError(f"No shared data folder was found. {hint}")
    path = base / "rec_movielens100k" / "u.data"
    if not path.is_file():
        raise FileNotFoundError(f"MovieLens 100K file not found: {path}. {hint}")
    raw = np.loadtxt(path, dtype=np.int64, ndmin=2)
    if raw.shape[1] != 4:
        raise ValueError(f"{path}: expected 4 tab-separated columns (user, item, rating, "
                         f"timestamp), got {raw.shape[1]}.")
    if min_rating is not None:
        raw = raw[raw[:, 2] >= min_rating]
        if raw.shape[0] == 0:
            raise ValueError(f"no rating is at least min_rating={min_rating}.")
    weights = np.ones(raw.shape[0]) if implicit else raw[:, 2]
    X, user_ids, item_ids = interactions_to_csr(raw[:, 0], raw[:, 1], weights)
    T, _, _ = interactions_to_csr(raw[:, 0], raw[:, 1], raw[:, 3], dtype=np.float64)
    titles = None
    item_file = base / "rec_movielens100k" / "recbole_atomic" / "ml-100k.item"
    if item_file.is_file():
        by_id = {}
        with open(item_file, encoding="utf-8") as f:
            next(f)  # typed header
            for line in f:
                fields = line.rstrip("\n").split("\t")
                if len(fields) >= 2 and fields[0].isdigit():
                    by_id[int(fields[0])] = fields[1]
        titles = np.array([by_id.get(int(i), "") for i in item_ids], dtype=object)
    return Bunch(X=X, timestamps=T, user_ids=user_ids, item_ids=item_ids, titles=titles)
