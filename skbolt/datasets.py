"""Dataset loaders and synthetic generators for extreme classification.

This module provides

* :func:`load_xc`, a reader for the text format of the Extreme
  Classification Repository (Bhatia et al.);
* :func:`data_home`, :func:`load_bibtex` and :func:`load_corel5k`, access
  to the real datasets shipped next to the repository checkout;
* :func:`make_extreme_classification`, a fast, fully vectorised generator of
  sparse, learnable problems with a power-law label distribution, suitable
  for exercising LSH-sparse networks at 10^5+ classes.
"""

import numbers
import os
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from sklearn.datasets import load_svmlight_file
from sklearn.preprocessing import normalize

__all__ = [
    "data_home",
    "load_bibtex",
    "load_corel5k",
    "load_xc",
    "make_extreme_classification",
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
            f"header 'n_points n_features n_labels'; got {line[:80]!r}."
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


def load_xc(path, n_features=None, n_labels=None, dtype=np.float32):
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
        from the header count, if a feature index is out of range, or if a
        label index is negative, non-integral or ``>= n_labels``.

    Notes
    -----
    Blank lines are skipped by the underlying svmlight parser, so a point
    with neither labels nor features cannot be represented and shows up as
    a row-count mismatch.

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
        # Handing the open file (positioned after the header) to the parser
        # avoids copying a multi-GB body into memory a second time.
        X, labels = load_svmlight_file(
            fh,
            n_features=n_features,
            dtype=dtype,
            multilabel=True,
            zero_based=True,
        )

    if X.shape[0] != n_points:
        raise ValueError(
            f"{os.fspath(path)!r}: header declares {n_points} points but "
            f"{X.shape[0]} data rows were read."
        )

    counts = np.fromiter(map(len, labels), dtype=np.int64, count=len(labels))
    flat = np.fromiter(
        (lab for row in labels for lab in row), dtype=np.float64, count=counts.sum()
    )
    label_idx = flat.astype(np.int64)
    bad = (label_idx != flat) | (label_idx < 0) | (label_idx >= n_labels)
    if bad.any():
        first = flat[np.argmax(bad)]
        raise ValueError(
            f"{os.fspath(path)!r}: label index {first:g} is not an integer in "
            f"[0, {n_labels})."
        )

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
