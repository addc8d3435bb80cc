"""Node classification on graphs: relations and node features in, CSR rows out.

``NeighborhoodFeatures`` turns node ids into feature rows built from a graph,
so that a graph task becomes an ordinary scikit-learn pipeline::

    model = make_pipeline(NeighborhoodFeatures(relations, features=X), BoltClassifier())
    model.fit(train_nodes, y[train_nodes])
    model.predict_proba(test_nodes)

The graph (one or more relations over the same nodes) and the node features
are constructor parameters; the rows that ``fit`` and ``transform`` receive
are node ids. The use is transductive: every node, labelled or not, is in the
graph from the start, and only the labels passed to ``fit`` are ever read.

Each row holds, per relation: the mean of the neighbours' features over one
to ``hops`` hops (for sparse features one block, the average of eight hops of
GCN's symmetric smoothing over the node and its neighbours, as S^2GC builds
it), the log of the node's degree, and the distribution of the
training labels among its neighbours at one and two hops. A node never sees
its own label, not even through the two-hop walks that return to it (the
diagonal of A @ A), so the label features are honest inside cross-validation
folds. Dense columns are standardised with statistics learned in ``fit``;
sparse aggregated blocks keep at most ``max_nnz`` entries per row so that the
input width, which is what a sparse network's input layer costs, stays near
the raw features'.
"""

import numbers

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.preprocessing import normalize
from sklearn.utils.validation import check_is_fitted

from ._base import resolve_n_threads
from ._native import max_threads
from ._propagation import (
    propagate,
    propagator,
    return_walks,
    top_k_rows,
    unit_rows_on_average,
)

__all__ = ["NeighborhoodFeatures", "make_graph"]

_NORMALIZATIONS = ("auto", "row", "sym")
_HOP_BLOCKS = ("auto", "all", "last", "mean")
# hops when "auto": the "mean" block averages eight (benchmarks/HISTORY.md,
# twenty-second session), the other layouts take three
_AUTO_HOPS = {"mean": 8, "all": 3, "last": 3}


def _relation_list(relations):
    """[(name, matrix)] from one matrix, a list or a dict of them."""
    if isinstance(relations, dict):
        items = [(str(k), v) for k, v in relations.items()]
    elif isinstance(relations, (list, tuple)):
        items = [(str(i), v) for i, v in enumerate(relations)]
    else:
        items = [("0", relations)]
    if not items:
        raise ValueError("relations is empty: pass at least one adjacency matrix "
                         "(n_nodes x n_nodes).")
    return items


def _check_relation(name, A):
    """A relation as float32 CSR without explicit zeros, or a ValueError."""
    if sp.issparse(A):
        A = sp.csr_matrix(A, dtype=np.float32)
    else:
        try:
            dense = np.asarray(A, dtype=np.float32)
        except (TypeError, ValueError) as err:
            raise ValueError(f"relation {name!r} is not a matrix: pass a scipy sparse "
                             "adjacency matrix (n_nodes x n_nodes).") from err
        if dense.ndim != 2:
            raise ValueError(f"relation {name!r} has {dense.ndim} dimensions: an "
                             "adjacency matrix is 2-D (n_nodes x n_nodes).")
        A = sp.csr_matrix(dense)
    if A.shape[0] != A.shape[1]:
        raise ValueError(f"relation {name!r} is not square ({A.shape[0]} x {A.shape[1]}): "
                         "an adjacency matrix has one row and one column per node.")
    if not np.all(np.isfinite(A.data)):
        raise ValueError(f"relation {name!r} has NaN or infinite weights: drop or fix "
                         "those edges.")
    if A.data.size and A.data.min() < 0:
        raise ValueError(f"relation {name!r} has negative weights: edge weights must be "
                         ">= 0 (split signed relations into two relations).")
    A.eliminate_zeros()
    A.sort_indices()
    return A


def _check_features(features, n_nodes):
    """Node features as float32 CSR or C-contiguous array, or a ValueError."""
    if sp.issparse(features):
        F = sp.csr_matrix(features, dtype=np.float32)
        values = F.data
    else:
        F = np.asarray(features, dtype=np.float32)
        if F.ndim == 1:
            F = F.reshape(-1, 1)
        if F.ndim != 2:
            raise ValueError(f"features has {F.ndim} dimensions: pass one row per node "
                             "(n_nodes x n_features).")
        F = np.ascontiguousarray(F)
        values = F
    if F.shape[0] != n_nodes:
        raise ValueError(f"features has {F.shape[0]} rows but the relations have "
                         f"{n_nodes} nodes: features needs one row per node.")
    if not np.all(np.isfinite(values)):
        raise ValueError("features has NaN or infinite values: impute them before "
                         "building graph features.")
    return F


def _node_ids(X, n_nodes):
    """X as a 1-D int64 array of node ids in [0, n_nodes), or a ValueError."""
    ids = np.asarray(X)
    if ids.ndim == 2 and ids.shape[1] == 1:
        ids = ids[:, 0]
    if ids.ndim != 1:
        raise ValueError(f"node ids have shape {ids.shape}: pass a 1-D array of integer "
                         "node ids (rows of the adjacency matrices).")
    if ids.dtype.kind not in "iu":
        raise ValueError(f"node ids have dtype {ids.dtype}: pass integer node ids "
                         "(e.g. np.arange(n_nodes)[mask]).")
    if ids.size and (ids.min() < 0 or ids.max() >= n_nodes):
        raise ValueError(f"node ids out of range: got ids from {ids.min()} to {ids.max()} "
                         f"but the graph has {n_nodes} nodes (ids 0 to {n_nodes - 1}).")
    return ids.astype(np.int64, copy=False)


class NeighborhoodFeatures(TransformerMixin, BaseEstimator):
    """Feature rows for graph nodes: own features, neighbourhood means,
    degrees and training-label distributions, as CSR.

    ``fit`` and ``transform`` take node ids (a 1-D integer array) as X; the
    graph and the node features are given to the constructor and shared,
    not copied, by ``clone`` (so a grid search does not copy the graph per
    candidate). Put it in front of a classifier::

        make_pipeline(NeighborhoodFeatures(relations, features=X), BoltClassifier())

    Parameters
    ----------
    relations : sparse matrix, list or dict of sparse matrices
        Adjacency matrices (n_nodes x n_nodes), one per relation, weighted
        (weights >= 0) or 0/1. Each relation is aggregated on its own.
        Directed relations aggregate over out-neighbours (row i's columns).
    features : array-like or sparse matrix of shape (n_nodes, n_features), default=None
        The nodes' own features. None: only degrees and label features.
    hops : int or "auto", default="auto"
        Neighbourhood means over 1 .. ``hops`` hops per relation (0: the
        node's own features only). "auto": 8 with ``hop_blocks`` "mean", 3
        otherwise.
    hop_blocks : {"auto", "all", "last", "mean"}, default="auto"
        Which propagated features the rows hold: "all" the own features and
        every hop's means, "last" only the final hop's (with ``self_loops``
        a smoothing of the node with its neighbourhood, as SGC does; the
        own block is left out), "mean" the average of the hops' blocks (as
        S^2GC does; one block, the own one left out). "auto": "mean" for
        sparse features (on a bag of words with few labels the raw and
        short-hop blocks were noise), "all" for dense ones.
    self_loops : {"auto", True, False}, default="auto"
        Aggregate over the neighbours and the node itself (A + I), so a
        hop's mean keeps the node in it and isolated nodes keep their
        features. "auto": with ``hop_blocks`` "last" or "mean" (where the
        node has no other block of its own), not with "all".
    feature_norm : {"auto", "l1", None}, default="auto"
        Scale each node's feature row before propagation: "l1" to sum 1
        (term frequencies from counts). "auto": "l1" for sparse features,
        None for dense ones (``standardize`` scales them).
    normalization : {"auto", "row", "sym"}, default="auto"
        Aggregation operator: "row" is the mean over neighbours (D^-1 A),
        "sym" the symmetric D^-1/2 A D^-1/2 of GCN. "auto": "sym" with
        ``hop_blocks`` "mean", "row" otherwise.
    degree : {"auto", True, False}, default="auto"
        Add log(1 + weighted degree) per relation. "auto": only without
        sparse features (beside a bag of words' smoothed block the
        standardised column cost accuracy on both citation graphs measured:
        benchmarks/README.md, ``bench_graph.py --ablation``).
    label_features : {"auto", True, False}, default="auto"
        Add, per relation, the distribution of the labels passed to ``fit``
        among the node's neighbours (fractions per class and log counts) at
        one hop and, with ``label_hops=2``, two hops. A node's own label never
        enters its row. "auto": for the relations where a node has on
        average at least one labelled neighbour (sparser label features were
        noise that cost accuracy). Need ``y`` in ``fit``; without it they are
        left out.
    label_hops : {1, 2}, default=2
        Walk lengths of the label features.
    standardize : bool, default=True
        Centre and scale the dense columns (dense features and their means,
        degrees, label features) with the mean and standard deviation of the
        rows ``fit`` sees, and scale each sparse block by one factor so
        that those rows' L2 norm is 1 on average (centring would densify
        it). Without the latter a standardised degree column drowned a
        bag of words' means (entries near 0.01) and cost 26 points on Cora.
    max_nnz : int or None, default=128
        With sparse features, the most entries kept per row in each
        aggregated block (the largest in magnitude), applied after every hop
        and to the "mean" block, so that propagation stays bounded. None: no
        cap.
    n_jobs : int or None, default=None
        Threads that build the aggregated sparse blocks, as BoltClassifier
        counts them: None uses what OpenMP would use (all cores unless
        ``OMP_NUM_THREADS`` or threadpoolctl limit it), -1 every core. The
        rows are the same at any value.

    Attributes
    ----------
    n_nodes_ : int
        Nodes in the graph.
    hops_, hop_blocks_, normalization_, degree_ : int, str, str, bool
        The resolved ``hops``, ``hop_blocks``, ``normalization`` and
        ``degree``.
    relation_names_ : list of str
        Names of the relations (dict keys, or list positions as strings).
    classes_ : ndarray or None
        Labels seen in ``fit`` (None without ``y`` or ``label_features``).
    label_relations_ : list of str
        The relations whose label features are in the rows.
    n_features_out_ : int
        Columns of the rows ``transform`` returns.
    mean_, scale_ : ndarray
        Standardisation of the dense columns (zeros and ones without
        ``standardize``).

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> A = sp.csr_matrix(np.array([[0, 1, 1], [1, 0, 0], [1, 0, 0]], dtype=float))
    >>> nf = NeighborhoodFeatures(A, features=np.eye(3), hops=1)
    >>> nf.fit_transform(np.array([0, 1]), np.array([0, 1])).shape
    (2, 17)
    """

    def __init__(self, relations, features=None, hops="auto", hop_blocks="auto",
                 self_loops="auto", feature_norm="auto", normalization="auto", degree="auto",
                 label_features="auto",
                 label_hops=2, standardize=True, max_nnz=128, n_jobs=None):
        self.relations = relations
        self.features = features
        self.hops = hops
        self.hop_blocks = hop_blocks
        self.self_loops = self_loops
        self.feature_norm = feature_norm
        self.normalization = normalization
        self.degree = degree
        self.label_features = label_features
        self.label_hops = label_hops
        self.standardize = standardize
        self.max_nnz = max_nnz
        self.n_jobs = n_jobs

    def __sklearn_clone__(self):
        # The default clone deep-copies every parameter: the graph would be
        # copied once per grid-search candidate and fold. Parameters are never
        # modified, so the clone shares them.
        return type(self)(**self.get_params(deep=False))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.one_d_array = True
        tags.target_tags.required = False
        return tags

    def _check_params(self):
        if not (self.hops == "auto" if isinstance(self.hops, str) else
                isinstance(self.hops, numbers.Integral) and self.hops >= 0):
            raise ValueError(f"hops={self.hops!r}: pass 'auto' or an integer >= 0.")
        if self.hop_blocks not in _HOP_BLOCKS:
            raise ValueError(f"hop_blocks={self.hop_blocks!r}: pass one of {_HOP_BLOCKS}.")
        if self.self_loops not in ("auto", True, False):
            raise ValueError(f"self_loops={self.self_loops!r}: pass 'auto', True or False.")
        if self.feature_norm not in ("auto", "l1", None):
            raise ValueError(f"feature_norm={self.feature_norm!r}: pass 'auto', 'l1' or None.")
        if self.normalization not in _NORMALIZATIONS:
            raise ValueError(f"normalization={self.normalization!r}: pass one of "
                             f"{_NORMALIZATIONS}.")
        if self.degree not in ("auto", True, False):
            raise ValueError(f"degree={self.degree!r}: pass 'auto', True or False.")
        if self.label_features not in ("auto", True, False):
            raise ValueError(f"label_features={self.label_features!r}: pass 'auto', True "
                             "or False.")
        if self.label_hops not in (1, 2):
            raise ValueError(f"label_hops={self.label_hops!r}: pass 1 or 2.")
        if self.max_nnz is not None and (not isinstance(self.max_nnz, numbers.Integral)
                                         or self.max_nnz < 1):
            raise ValueError(f"max_nnz={self.max_nnz!r}: pass an integer >= 1 or None.")
        if self.n_jobs is not None and not isinstance(self.n_jobs, numbers.Integral):
            raise ValueError(f"n_jobs={self.n_jobs!r}: pass None or a nonzero integer.")

    def fit(self, X, y=None):
        """Build the feature rows of every node from the graph and ``y``.

        Parameters
        ----------
        X : array-like of shape (n_samples,)
            Integer node ids of the labelled nodes.
        y : array-like of shape (n_samples,), default=None
            Labels of those nodes, the only labels the label features use.

        Returns
        -------
        self : NeighborhoodFeatures
            The fitted transformer.
        """
        self._check_params()
        threads = resolve_n_threads(self.n_jobs, max_threads())
        relations = _relation_list(self.relations)
        mats = [_check_relation(name, A) for name, A in relations]
        n_nodes = mats[0].shape[0]
        for (name, _), A in zip(relations, mats):
            if A.shape[0] != n_nodes:
                raise ValueError(f"relation {name!r} has {A.shape[0]} nodes but relation "
                                 f"{relations[0][0]!r} has {n_nodes}: every relation must "
                                 "cover the same nodes.")
        F = None if self.features is None else _check_features(self.features, n_nodes)
        ids = _node_ids(X, n_nodes)
        if y is not None:
            y = np.asarray(y)
            if y.ndim != 1 or y.shape[0] != ids.shape[0]:
                raise ValueError(f"y has shape {y.shape} but X has {ids.shape[0]} node ids: "
                                 "pass one label per node id.")
        self.n_nodes_ = n_nodes
        self.relation_names_ = [name for name, _ in relations]

        sparse_blocks, dense_blocks = [], []
        # each block's column names, in the order transform hstacks them
        sparse_names, dense_names = [], []
        n_in = 0 if F is None else F.shape[1]
        is_sparse = F is not None and sp.issparse(F)
        blocks = self.hop_blocks if self.hop_blocks != "auto" else (
            "mean" if is_sparse else "all")
        self.hops_ = _AUTO_HOPS[blocks] if isinstance(self.hops, str) else int(self.hops)
        self.hop_blocks_ = blocks if self.hops_ and F is not None else "all"
        self.normalization_ = self.normalization if self.normalization != "auto" else (
            "sym" if self.hop_blocks_ == "mean" else "row")
        self.degree_ = (not is_sparse) if self.degree == "auto" else self.degree
        if F is not None:
            norm = self.feature_norm if self.feature_norm != "auto" else (
                "l1" if is_sparse else None)
            if norm == "l1":
                F = normalize(F, norm="l1")
            if self.hop_blocks_ == "all":
                (sparse_blocks if is_sparse else dense_blocks).append(F)
                (sparse_names if is_sparse else dense_names).append(
                    [f"x{j}" for j in range(n_in)])
        for name, A in zip(self.relation_names_, mats):
            if F is not None and self.hops_:
                sparse_blocks_r, dense_blocks_r, hops_r = self._aggregate(A, F, threads)
                names = [[f"{name}_hop{h}_x{j}" for j in range(n_in)] for h in hops_r]
                sparse_blocks += sparse_blocks_r
                dense_blocks += dense_blocks_r
                (sparse_names if sp.issparse(F) else dense_names).extend(names)
            if self.degree_:
                dense_blocks.append(np.log1p(np.asarray(A.sum(axis=1), dtype=np.float32)))
                dense_names.append([f"{name}_log_degree"])
        self.classes_, self.label_relations_ = None, []
        if self.label_features is not False and y is not None:
            self.classes_, codes = np.unique(y, return_inverse=True)
            labelled = np.zeros(n_nodes, np.float32)
            labelled[ids] = 1.0
            for name, A in zip(self.relation_names_, mats):
                per_node = (A != 0) @ labelled
                if self.label_features == "auto" and per_node.mean() < 1.0:
                    continue
                self.label_relations_.append(name)
                dense_blocks.append(self._label_block(A, ids, codes, len(self.classes_)))
                for h in range(1, self.label_hops + 1):
                    dense_names.append(
                        [f"{name}_label_hop{h}_share_{c}" for c in self.classes_]
                        + [f"{name}_label_hop{h}_log_count_{c}" for c in self.classes_]
                        + [f"{name}_label_hop{h}_log_total"])

        if self.standardize:
            sparse_blocks = [unit_rows_on_average(B, ids) for B in sparse_blocks]
        self.sparse_ = sp.hstack(sparse_blocks, format="csr") if sparse_blocks else None
        dense = (np.hstack(dense_blocks).astype(np.float32) if dense_blocks
                 else np.zeros((n_nodes, 0), np.float32))
        if self.standardize and dense.shape[1]:
            rows = dense[ids] if ids.size else dense
            self.mean_ = rows.mean(axis=0)
            std = rows.std(axis=0)
            self.scale_ = np.where(std > 1e-12, std, 1.0).astype(np.float32)
        else:
            self.mean_ = np.zeros(dense.shape[1], np.float32)
            self.scale_ = np.ones(dense.shape[1], np.float32)
        self.dense_ = dense
        self.n_features_out_ = dense.shape[1] + (0 if self.sparse_ is None
                                                 else self.sparse_.shape[1])
        self._feature_names = np.asarray(
            [n for block in sparse_names + dense_names for n in block], dtype=object)
        return self

    def get_feature_names_out(self, input_features=None):
        """Names of the columns ``transform`` returns.

        Parameters
        ----------
        input_features : ignored
            The input is node ids; the names come from the graph.

        Returns
        -------
        ndarray of str objects of shape (``n_features_out_``,)
            ``x{j}`` for the own features, ``{relation}_hop{h}_x{j}`` for
            their neighbourhood means (``hopmean`` for the "mean" block),
            ``{relation}_log_degree``, and
            ``{relation}_label_hop{h}_share_{class}`` /
            ``_log_count_{class}`` / ``_log_total`` for the label features.
        """
        check_is_fitted(self, "dense_")
        return self._feature_names.copy()

    def _aggregate(self, A, F, threads=1):
        """Neighbourhood means of F over 1 .. hops hops of A (sparse blocks,
        dense blocks, and the hops they are of: numbers, or "mean")."""
        if self.self_loops is True or (self.self_loops == "auto"
                                       and self.hop_blocks_ in ("last", "mean")):
            A = (A + sp.eye(A.shape[0], dtype=A.dtype, format="csr")).tocsr()
        P = propagator(A, self.normalization_)
        sparse_out, dense_out, kept = [], [], []
        H = total = F
        last = self.hops_ - 1
        for hop in range(self.hops_):
            H = propagate(P, H, self.max_nnz, threads)
            if self.hop_blocks_ == "mean":
                total = H if hop == 0 else total + H
                if hop == last:
                    H = self._capped(total * np.float32(1.0 / self.hops_))
            if self.hop_blocks_ != "all" and hop < last:
                continue
            (sparse_out if sp.issparse(H) else dense_out).append(H)
            kept.append("mean" if self.hop_blocks_ == "mean" else hop + 1)
        return sparse_out, dense_out, kept

    def _capped(self, H):
        """H as float32, a sparse H cut to ``max_nnz`` entries per row."""
        return top_k_rows(H, self.max_nnz) if sp.issparse(H) else np.asarray(H, np.float32)

    def _label_block(self, A, ids, codes, n_classes):
        """Per hop: label fractions, log counts per class and log of their total.

        Walks that end on the node itself (A_ii for one hop, A_ij A_ji for
        two) are subtracted, so the node's own label never counts; two-hop
        walks count the labels of the one-hop counts, so i -> j -> j is out.
        """
        Y = sp.csr_matrix((np.ones(ids.size, np.float32), (ids, codes)),
                          shape=(A.shape[0], n_classes))
        # a node listed twice in fit would count twice; one label per node
        Y.data[:] = 1.0
        own = Y.toarray()
        out = []
        counts = np.asarray((A @ Y).todense()) - A.diagonal()[:, None] * own
        hops = [counts]
        if self.label_hops == 2:
            # walks i -> j -> i with j != i; the j = i ones are already out of counts
            back = return_walks(A) - A.diagonal() ** 2
            hops.append(A @ counts - back[:, None] * own)
        for c in hops:
            c = np.maximum(c, 0.0)  # rounding of the subtraction, never a real negative
            total = c.sum(axis=1, keepdims=True)
            frac = np.divide(c, total, out=np.zeros_like(c), where=total > 0)
            out += [frac, np.log1p(c), np.log1p(total)]
        return np.hstack(out).astype(np.float32)

    def transform(self, X):
        """Feature rows of the given nodes.

        Parameters
        ----------
        X : array-like of shape (n_samples,)
            Integer node ids.

        Returns
        -------
        scipy.sparse.csr_matrix of shape (n_samples, n_columns)
            float32 rows (``n_columns`` is ``n_features_out_``): sparse
            blocks as stored, then the standardised dense columns.
        """
        check_is_fitted(self, "dense_")
        ids = _node_ids(X, self.n_nodes_)
        dense = (self.dense_[ids] - self.mean_) / self.scale_
        blocks = [] if self.sparse_ is None else [self.sparse_[ids]]
        blocks.append(sp.csr_matrix(dense.astype(np.float32)))
        return sp.hstack(blocks, format="csr", dtype=np.float32)


def make_graph(n_nodes=2000, n_classes=2, avg_degree=10.0, homophily=0.8, n_features=16,
               class_sep=0.5, weights=None, labels=None, random_state=None):
    """Generate a stochastic block model with planted labels and features.

    Every node gets a class (drawn with probabilities ``weights``). Edges
    are sampled, never enumerated: ``n_nodes * avg_degree / 2`` endpoints
    pairs, each from a uniform source to, with probability ``homophily``, a
    uniform node of the source's class, else a uniform node. The graph is
    made symmetric and 0/1 without self loops, so a million nodes and twenty
    million edges take seconds and memory in proportion to the edges.
    Features are Gaussian around a per-class centre (norm ``class_sep`` per
    coordinate on average), so the graph adds what the features lack.

    Parameters
    ----------
    n_nodes : int, default=2000
        Nodes.
    n_classes : int, default=2
        Planted classes.
    avg_degree : float, default=10.0
        Mean number of neighbours per node (before duplicate edges merge).
    homophily : float in [0, 1], default=0.8
        Share of edges drawn inside the source's class.
    n_features : int, default=16
        Dense features per node (0: none).
    class_sep : float, default=0.5
        Scale of the class centres against unit noise.
    weights : array-like of shape (n_classes,), default=None
        Class probabilities (None: uniform); e.g. ``[0.87, 0.13]`` for fraud.
    labels : array-like of shape (n_nodes,), default=None
        The classes (0 .. n_classes - 1) to plant instead of drawing them:
        another relation over the same nodes.
    random_state : int, Generator or None, default=None
        Seed.

    Returns
    -------
    sklearn.utils.Bunch
        ``adjacency`` (symmetric CSR, float32, n_nodes x n_nodes),
        ``features`` (float32 array of shape (n_nodes, n_features)) and
        ``labels`` (int64 class of each node).

    Examples
    --------
    >>> g = make_graph(500, n_classes=3, random_state=0)
    >>> g.adjacency.shape, g.features.shape, g.labels.shape
    ((500, 500), (500, 16), (500,))
    """
    from sklearn.utils import Bunch

    for name, value, low in (("n_nodes", n_nodes, 2), ("n_classes", n_classes, 1),
                             ("n_features", n_features, 0)):
        if not isinstance(value, numbers.Integral) or value < low:
            raise ValueError(f"{name}={value!r}: pass an integer >= {low}.")
    if not 0.0 <= homophily <= 1.0:
        raise ValueError(f"homophily={homophily!r}: pass a share in [0, 1].")
    if not avg_degree > 0:
        raise ValueError(f"avg_degree={avg_degree!r}: pass a positive number.")
    rng = np.random.default_rng(random_state)
    p = None if weights is None else np.asarray(weights, float) / np.sum(weights)
    if p is not None and p.shape != (n_classes,):
        raise ValueError(f"weights has {p.size} entries for n_classes={n_classes}.")
    if labels is None:
        labels = rng.choice(n_classes, size=n_nodes, p=p).astype(np.int64)
    else:
        labels = np.asarray(labels, dtype=np.int64)
        if labels.shape != (n_nodes,) or labels.min() < 0 or labels.max() >= n_classes:
            raise ValueError(f"labels must be {n_nodes} classes in 0 .. {n_classes - 1}.")
    members = np.argsort(labels, kind="stable")
    start = np.searchsorted(labels[members], np.arange(n_classes))
    size = np.bincount(labels, minlength=n_classes)
    m = int(round(n_nodes * avg_degree / 2))
    src = rng.integers(0, n_nodes, size=m)
    dst = rng.integers(0, n_nodes, size=m)
    inside = rng.random(m) < homophily
    c = labels[src[inside]]
    dst[inside] = members[start[c] + (rng.random(c.size) * size[c]).astype(np.int64)]
    keep = src != dst
    src, dst = src[keep], dst[keep]
    ones = np.ones(2 * src.size, np.float32)
    A = sp.csr_matrix((ones, (np.concatenate([src, dst]), np.concatenate([dst, src]))),
                      shape=(n_nodes, n_nodes))
    A.data[:] = 1.0  # duplicate draws of an edge merged into one 0/1 edge
    centres = rng.normal(0.0, class_sep, size=(n_classes, n_features))
    features = (centres[labels] + rng.normal(size=(n_nodes, n_features))).astype(np.float32)
    return Bunch(adjacency=A, features=features, labels=labels)
