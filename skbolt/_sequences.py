"""Event logs as time-ordered item sequences, and the network input rows
``BoltSequentialRecommender`` reads from them, built a chunk of positions
at a time so no fit holds every training row at once."""
import zlib

import numpy as np
import scipy.sparse as sp

from .datasets import _interaction_codes

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _mix(x):
    """splitmix64's finaliser on uint64 arrays: equal inputs, equal keys;
    nearby inputs, unrelated keys."""
    x = np.asarray(x, dtype=np.uint64).copy()
    with np.errstate(over="ignore"):
        x ^= x >> np.uint64(30)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(27)
        x *= np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    return x


def _id_keys(ids):
    """A key per id that depends on the id alone (not on which other ids a
    log holds, nor on the process: Python's ``hash`` of a string changes
    from run to run)."""
    ids = np.asarray(ids)
    if ids.dtype.kind in "iu":
        return _mix(ids.astype(np.int64).view(np.uint64))
    return _mix(np.array([zlib.crc32(str(v).encode("utf-8")) for v in ids], dtype=np.uint64))


def tie_keys(user_ids, user_codes, item_ids, item_codes):
    """The pseudo-random key of each (user, item) event that orders events
    of one user at the same time. It is never the item id's order: a
    model could learn an id order that no user follows."""
    with np.errstate(over="ignore"):
        return _mix(_id_keys(user_ids)[user_codes] * np.uint64(0x9E3779B97F4A7C15)
                    ^ _id_keys(item_ids)[item_codes])


def event_columns(users, items, timestamps, weights):
    """The four event columns, from separate arrays or from one table
    (n_events, 3 or 4) of user, item, timestamp[, weight] columns, the
    form ``GridSearchCV`` splits by rows."""
    if items is None and timestamps is None:
        table = users
        if hasattr(table, "iloc"):  # a DataFrame: its columns by position
            cols = [np.asarray(table.iloc[:, j]) for j in range(table.shape[1])]
        else:
            table = np.asarray(table, dtype=object if not hasattr(table, "dtype")
                               else None)
            if table.ndim != 2 or table.shape[1] not in (3, 4):
                raise ValueError(
                    "Pass fit(users, items, timestamps[, weights]) as 1-D arrays, or one "
                    f"table of 3 or 4 columns (user, item, timestamp[, weight]); got an "
                    f"array of shape {table.shape}.")
            cols = [table[:, j] for j in range(table.shape[1])]
        if len(cols) not in (3, 4):
            raise ValueError(f"An event table needs 3 or 4 columns (user, item, "
                             f"timestamp[, weight]), got {len(cols)}.")
        users, items, timestamps = cols[:3]
        if len(cols) == 4:
            if weights is not None:
                raise ValueError("weights were given twice: as a fourth column and as "
                                 "an argument; pass one.")
            weights = cols[3]
        timestamps = np.asarray(timestamps)
        if timestamps.dtype == object:
            try:
                timestamps = timestamps.astype(np.float64)
            except (TypeError, ValueError):
                raise ValueError("the event table's third column must hold numeric "
                                 "timestamps.") from None
        if weights is not None:
            weights = np.asarray(weights, dtype=np.float64)
    elif items is None or timestamps is None:
        raise ValueError("Pass users, items and timestamps (one entry per event), or "
                         "one (n_events, 3) table as the first argument.")
    users, items = np.asarray(users), np.asarray(items)
    if users.ndim != 1 or items.ndim != 1:
        raise ValueError(f"users and items must be 1-D, got shapes {users.shape} and "
                         f"{items.shape}.")
    return users, items, timestamps, weights


def check_times(timestamps, n_events):
    """Timestamps as float64, or a ValueError that says what is wrong."""
    t = np.asarray(timestamps)
    if t.ndim != 1 or t.shape[0] != n_events:
        raise ValueError(f"timestamps must hold one number per event: got shape {t.shape} "
                         f"for {n_events} events.")
    if t.dtype.kind == "M":
        t = t.astype("datetime64[ns]").astype(np.int64)
    if t.dtype.kind not in "biuf":
        raise ValueError(f"timestamps must be numbers or datetime64, got dtype {t.dtype}; "
                         "convert them first (e.g. pandas.to_datetime(...).astype('int64')).")
    t = t.astype(np.float64)
    if not np.isfinite(t).all():
        raise ValueError(f"timestamps hold {np.count_nonzero(~np.isfinite(t))} NaN or infinite "
                         "values; drop those events or give them a time.")
    return t


def time_order(users, items, timestamps):
    """The permutation that puts an event log in time order, ties in time
    broken by the fixed pseudo-random key of (user, item) that
    ``BoltSequentialRecommender`` uses.

    Parameters
    ----------
    users, items : array-like of shape (n_events,)
        Any hashable ids.
    timestamps : array-like of shape (n_events,)
        Numbers (or datetime64).

    Returns
    -------
    order : ndarray of int64 of shape (n_events,)
        Event indices, earliest first. Feeding the permuted log to
        ``skbolt.datasets.split_last`` (which breaks ties by the order given)
        holds out each user's last event as the recommender orders them.

    Examples
    --------
    >>> from skbolt.sequential import time_order
    >>> time_order(["a", "a", "b"], [3, 1, 2], [5, 4, 4]).tolist()[-1]
    0
    """
    user_ids, rows, item_ids, cols, _ = _interaction_codes(users, items, None)
    t = check_times(timestamps, rows.size)
    return np.lexsort((tie_keys(user_ids, rows, item_ids, cols), t)).astype(np.int64)


class Sequences:
    """Every user's items in time order, as one flat array.

    Attributes
    ----------
    items : ndarray of int32
        Item codes, user after user, each user's earliest first.
    weights : ndarray of float32
        Each event's weight.
    starts : ndarray of int64 of shape (n_users + 1,)
        User u's events are ``items[starts[u]:starts[u + 1]]``.
    """

    def __init__(self, items, weights, starts):
        self.items = np.ascontiguousarray(items, dtype=np.int32)
        self.weights = np.ascontiguousarray(weights, dtype=np.float32)
        self.starts = np.ascontiguousarray(starts, dtype=np.int64)

    @classmethod
    def from_codes(cls, rows, cols, t, keys, weights, n_users):
        order = np.lexsort((keys, t, rows))
        starts = np.zeros(n_users + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=n_users), out=starts[1:])
        return cls(cols[order], weights[order], starts)

    @property
    def n_users(self):
        return self.starts.size - 1

    def user_of(self, positions):
        """The user whose sequence holds each flat position."""
        return np.searchsorted(self.starts, positions, side="right") - 1

    def positions(self, skip_last=0):
        """Flat positions t that have at least one earlier event of their
        user (the training targets), leaving each user's last ``skip_last``
        events out."""
        n = np.diff(self.starts)
        first = self.starts[:-1] + 1
        count = np.maximum(n - 1 - skip_last, 0)
        return _ranges(first, count)

    def seen(self, n_items, users=None, end=None):
        """CSR of the items each of ``users`` (default: all) had before
        flat index ``end`` (default: their last event included), a row
        per user."""
        users = np.arange(self.n_users) if users is None else np.asarray(users)
        first = self.starts[users]
        end = self.starts[users + 1] if end is None else np.asarray(end)
        count = end - first
        idx = _ranges(first, count)
        X = sp.csr_matrix((np.ones(idx.size, dtype=np.float32), self.items[idx],
                           np.concatenate([[0], np.cumsum(count)])),
                          shape=(users.size, n_items))
        X.sum_duplicates()
        return X


def _ranges(starts, counts):
    """Concatenated ``arange(s, s + c)`` for each (s, c), vectorised."""
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.repeat(np.asarray(starts, dtype=np.int64) - np.cumsum(counts) + counts, counts)
    return offsets + np.arange(total, dtype=np.int64)


class Encoding:
    """How a history becomes a network input row: a block of the last
    ``window`` items weighted ``decay ** steps_back`` and scaled to length
    ``history_scale``, then ``last_items`` one-hot blocks (block j holds the
    item j + 1 steps back, value ``last_scale``)."""

    def __init__(self, n_items, decay, window, last_items, history_scale=1.0, last_scale=1.0):
        self.n_items, self.decay, self.window = int(n_items), float(decay), int(window)
        self.last_items = int(last_items)
        self.history_scale, self.last_scale = float(history_scale), float(last_scale)

    @property
    def n_features(self):
        return self.n_items * (1 + self.last_items)

    def rows(self, items, ends, lengths, weights=None):
        """Input rows of histories ending before flat index ``ends`` of
        ``items`` with ``lengths`` events available (earlier events belong
        to another user)."""
        ends = np.asarray(ends, dtype=np.int64)
        lengths = np.asarray(lengths, dtype=np.int64)
        n = ends.size
        blocks = []
        if self.history_scale > 0:
            w = np.minimum(lengths, self.window)
            back = _ranges(np.zeros(n, dtype=np.int64), w)
            row = np.repeat(np.arange(n), w)
            idx = np.repeat(ends, w) - 1 - back
            vals = np.power(self.decay, back, dtype=np.float64)
            if weights is not None:
                vals *= weights[idx]
            H = sp.csr_matrix((vals, (row, items[idx])), shape=(n, self.n_items))
            # repeated items sum before the row is scaled to unit length
            norms = np.sqrt(np.asarray(H.multiply(H).sum(axis=1)).ravel())
            norms[norms == 0] = 1.0
            H = sp.diags(self.history_scale / norms) @ H
            blocks.append(H)
        else:
            blocks.append(sp.csr_matrix((n, self.n_items)))
        for j in range(self.last_items):
            have = np.flatnonzero(lengths > j)
            blocks.append(sp.csr_matrix(
                (np.full(have.size, self.last_scale), (have, items[ends[have] - 1 - j])),
                shape=(n, self.n_items)))
        X = sp.hstack(blocks, format="csr", dtype=np.float32)
        X.sort_indices()
        return X

    def training_rows(self, seqs, positions):
        """Inputs and one-hot targets of flat ``positions`` of ``seqs``."""
        users = seqs.user_of(positions)
        X = self.rows(seqs.items, positions, positions - seqs.starts[users], seqs.weights)
        Y = sp.csr_matrix((np.ones(positions.size, dtype=np.float32), seqs.items[positions],
                           np.arange(positions.size + 1)), shape=(positions.size, self.n_items))
        return X, Y

    def user_rows(self, seqs, users):
        """Inputs for each user's next item after their whole history."""
        users = np.asarray(users, dtype=np.int64)
        ends = seqs.starts[users + 1]
        return self.rows(seqs.items, ends, ends - seqs.starts[users], seqs.weights)
