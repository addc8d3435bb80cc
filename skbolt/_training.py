"""The one training driver every skbolt estimator shares: the row stream
an epoch visits (``RowStream``), the data it reads (``TrainingData``,
``ResplitData``), a network trained along the stream (``Run``), the copy
kept for a rollback on Ctrl-C (``_Checkpoint``), and the centroid finish
of a trained network (``finish_network``)."""
import numpy as np

from . import _rules
from ._network import Network
from .datasets import _hold_out


class RowStream:
    """Successive epochs of shuffled rows, read by visit number.

    Parameters
    ----------
    rows : array-like of int
        The rows one epoch visits.
    order : callable
        ``order(epoch)``: the rows' order in that epoch.
    replayable : bool
        Whether ``order`` gives the same answer for an epoch every time, so
        the stream may be read again from any visit (as the search's
        trials do); otherwise it is read forwards only.
    """

    def __init__(self, rows, order, replayable):
        self.rows = np.asarray(rows)
        self._order = order
        self._replayable = replayable
        self._epoch, self._perm = -1, None

    def __len__(self):
        return len(self.rows)

    @classmethod
    def seeded(cls, rows, seed):
        """Epoch e shuffled by its own generator, seeded ``seed + e``: any
        reader of the stream sees the same rows at the same visit."""
        rows = np.asarray(rows)
        return cls(rows, lambda e: np.random.RandomState((seed + e) % 2**32).permutation(rows),
                   replayable=True)

    @classmethod
    def drawn(cls, rows, rng):
        """Successive permutations drawn from one generator ``rng``."""
        rows = np.asarray(rows)
        return cls(rows, lambda e: rng.permutation(rows), replayable=False)

    def epoch(self, e):
        """The rows' order in epoch ``e``."""
        if e != self._epoch:
            if not self._replayable and e != self._epoch + 1:
                raise ValueError("this row stream is read forwards, one epoch after another")
            self._epoch, self._perm = e, self._order(e)
        return self._perm

    def take(self, start, count):
        """Rows of visits ``start`` .. ``start + count``."""
        n, out = len(self.rows), []
        while count > 0:
            epoch, offset = divmod(start, n)
            piece = self.epoch(epoch)[offset:offset + count]
            out.append(piece)
            start += len(piece)
            count -= len(piece)
        return np.concatenate(out)


class TrainingData:
    """Inputs and targets a fit trains on, as the training driver reads
    them: per epoch (``at``) and for held-out rows (``held_out``).

    Parameters
    ----------
    X : scipy.sparse.csr_matrix
        Inputs.
    Y : scipy.sparse.csr_matrix
        Target indicator over the output neurons.
    """

    def __init__(self, X, Y):
        if X.shape[0] != Y.shape[0]:
            raise ValueError(f"X has {X.shape[0]} rows but y has {Y.shape[0]}; pass one "
                             "target per row of X")
        self.X, self.Y = X, Y

    @property
    def n_rows(self):
        return self.X.shape[0]

    def at(self, epoch):
        """Inputs and targets of epoch ``epoch``: the same every epoch."""
        return self.X, self.Y

    def held_out(self, rows):
        """Inputs and targets of ``rows`` for scoring."""
        return self.X[rows], self.Y[rows]


class ResplitData(TrainingData):
    """Rows of interactions that are their own targets: every epoch each
    row is split anew into input items and a seeded ``target_fraction``
    of target items (``datasets.hold_out_items``), so a network learns to
    complete a history from any part of it. ``X`` and ``Y`` (epoch 0's
    split) give the problem's statistics and the centroids.

    Parameters
    ----------
    X : scipy.sparse.csr_matrix
        Interactions, rows = users, columns = items.
    target_fraction : float in (0, 1)
        Share of each row's items that are targets in an epoch.
    seed : int
        Epoch e is split by a generator seeded ``seed + e``.
    """

    def __init__(self, X, target_fraction, seed):
        self.full, self.target_fraction, self.seed = X, float(target_fraction), int(seed)
        self._epoch = 0
        super().__init__(*self._split(X, self.seed))
        self._current = (self.X, self.Y)

    def _split(self, X, seed):
        return _hold_out(X, self.target_fraction, np.random.RandomState(seed % 2**32))

    def at(self, epoch):
        if epoch != self._epoch:
            self._epoch = epoch
            self._current = self._split(self.full, self.seed + epoch)
        return self._current

    def held_out(self, rows):
        # one fixed split of the held-out rows, unlike any training epoch's
        return self._split(self.full[rows], self.seed + 2**31)


class Run:
    """A network trained along a row stream: the one training driver.

    A fresh sampled network first starts its output rows from the label
    centroids of its rows (``_rules.CENTROID_LOGIT``). It then calls the
    core on consecutive pieces of the stream (never across
    an epoch boundary, at most ``chunk`` rows each), freezes the hash
    tables when an epoch boundary reaches ``freeze_after`` epochs, and
    reports each piece and each finished epoch to the caller.

    Parameters
    ----------
    network : Network
        The network to train.
    batch_size : int
        Samples per Adam step.
    learning_rate : float
        Adam's step size.
    freeze_after : int
        Epochs after which the tables freeze (0: never).
    stream : RowStream
        The rows, epoch after epoch.
    epochs_before : int
        Epochs the network trained before this run (they count towards
        ``freeze_after``).
    centroid_start : bool
        Whether a fresh sampled network starts from the centroids of the
        stream's rows, and a fresh dense sigmoid one from their label priors
        (``Network.init_prior``) (False: the caller started it,
        ``skbolt.dask`` from the sums of every machine's rows).
    """

    def __init__(self, network, batch_size, learning_rate, freeze_after, stream,
                 epochs_before=0, centroid_start=True):
        self.network = network
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.freeze_after = freeze_after
        self.stream = stream
        self.epochs_before = epochs_before
        self.centroid_start = centroid_start
        self.visits = 0

    @property
    def epochs(self):
        """Whole epochs trained, those before this run included."""
        return self.epochs_before + self.visits // len(self.stream)

    def advance(self, data, target, n_threads, chunk=None, on_rows=None, on_epoch=None):
        """Train on ``data`` (a ``TrainingData``) until ``target`` visits of
        the stream; returns the summed loss.

        ``on_rows(count)`` follows every native call; ``on_epoch(epoch)``
        every epoch this run completes.
        """
        n, net, total = len(self.stream), self.network, 0.0
        if self.centroid_start and self.visits == 0 and self.epochs_before == 0 and target > 0:
            X, Y = data.at(0)
            if net.sparse_output:
                net.init_from_centroids(X, Y, np.asarray(self.stream.rows),
                                        _rules.CENTROID_LOGIT, n_threads)
            elif net.config["loss"] == "sigmoid":
                # the centroids' sigmoid biases without their rows (which
                # dense layers measured worse with)
                net.init_prior(X, Y, np.asarray(self.stream.rows), n_threads)
        try:
            while self.visits < target:
                count = min(target - self.visits, n - self.visits % n)
                if chunk:
                    count = min(count, chunk)
                X, Y = data.at(self.epochs_before + self.visits // n)
                rows = self.stream.take(self.visits, count)
                total += net.train(X, Y, rows, self.batch_size, self.learning_rate, n_threads)
                self.visits += count
                if on_rows is not None:
                    on_rows(count)
                if self.visits % n == 0:
                    # a sparse hidden layer's tables freeze with the output's
                    # (its rebuilds read every input weight: issue 36)
                    if ((net.sparse_output or net.sparse_hidden) and self.freeze_after
                            and not net.frozen
                            and self.epochs >= self.freeze_after):
                        net.set_frozen(True)
                    if on_epoch is not None:
                        on_epoch(self.visits // n)
        finally:
            # the core keeps its buffers from call to call (a chunk each);
            # between runs they would only hold memory
            net.release_buffers()
        return total


class _Checkpoint:
    """A network kept for a rollback (Ctrl-C in ``BoltEstimator._train``):
    its weights, not Adam's moments, nor the tables (built from the weights).

    The first time, a network nothing has changed since its creation
    (``Network.pristine``: a fresh fit's) is kept as its configuration and
    created again on a rollback; any other is copied whole. After that, a
    sampled network keeps only the output rows that can have moved since:
    those of seen outputs (the centroid start writes those alone) and those
    an Adam step moved (``Network.take_changed``: an unseen output reaches
    an active set only from tables built before any output was seen). At
    1M outputs of which 18k seen, that is 9 MB of rows instead of a 512 MB
    copy whose fresh pages took one thread 0.1-0.9 s in a 6.5 s fit on two
    (``benchmarks/bench_scale.py``, perf). A dense output layer is copied
    whole.
    """

    def __init__(self, network):
        self._config = self._state = self._rows = self._of = None
        self._moved = np.zeros(0, dtype=np.int32)  # rows Adam moved since the base
        self.take(network)

    def take(self, network):
        """Keep ``network`` as it is now (in place of what was kept)."""
        last = network.n_layers - 1
        base = self._config is not None or self._state is not None
        if network.pristine:
            self._config, self._state, self._rows = network.config, None, None
        elif not base or not network.sparse_output:
            self._config, self._rows = None, None
            # the copy kept is brought up to date in place: fresh pages for
            # a wide layer cost more than the copy, and a sparse hidden
            # layer's input rows change only at the blocks Adam moved
            same = self._state is not None and self._of is network
            self._state = network.get_state(tables=False, reuse=self._state if same else {})
            self._of = network
        else:
            self._moved = np.union1d(self._moved, network.take_changed(last))
            rows = np.union1d(np.flatnonzero(network.seen), self._moved)
            self._rows = network.get_state(tables=False, output_rows=rows)
            return
        # from the base on, the rows Adam moves are marked
        network.take_changed(last)
        self._moved = np.zeros(0, dtype=np.int32)

    def restore(self, n_threads):
        """A new network equal to the one kept."""
        if self._config is not None:
            net = Network(self._config, build_tables=self._rows is None, n_threads=n_threads)
        else:
            net = Network.from_state(self._state, n_threads)
        return net if self._rows is None else net.restore(self._rows, n_threads)


def finish_network(network, X, Y, rows, hash_params, mean_labels, n_threads, held=None,
                   reshape=True):
    """The centroid finish of a trained network: output rows from label
    centroids (``Network.finish_with_centroids``), then DWTA tables of the
    shape ``_rules.finish_tables`` gives finished rows. Returns the network
    (a new one when the tables changed shape; ``network`` is then freed),
    its hash parameters and the temperature fitted on ``held``. Without
    ``reshape`` the tables keep their shape (a network finished before)."""
    t = network.finish_with_centroids(X, Y, rows, _rules.CENTROID_LOGIT, n_threads, held)
    if not reshape:
        return network, hash_params, t
    return (*finished_tables(network, hash_params, mean_labels, n_threads), t)


def finished_tables(network, hash_params, mean_labels, n_threads):
    """A network whose output rows are label centroids, with the DWTA
    tables ``_rules.finish_tables`` gives such rows (``network`` itself
    when the shape stays; else a new one, ``network`` freed), and its hash
    parameters."""
    shape = (_rules.finish_tables(hash_params, mean_labels)
             if network.config["hash_family"] == "dwta" else None)
    if shape is None:
        return network, hash_params
    return (network.reshaped(shape["K"], shape["range_pow"], shape["reservoir"], n_threads),
            shape)
