"""Node classification: skbolt's graph pipeline against GNNs and the same
features in linear and tree models.

Protocol. Every system learns from the training nodes' labels only, picks
its settings on the validation nodes and is scored once on the test nodes.
``skbolt`` is the contract of issue 34 with every default:
``make_pipeline(NeighborhoodFeatures(relations, features=X),
BoltClassifier(random_state=seed, n_jobs=threads))`` (no tuning at all).

systems
    ``skbolt``: the pipeline above.
    ``logreg``: LogisticRegression on the same NeighborhoodFeatures rows,
    C from (0.1, 1, 10) on validation.
    ``hgb``: HistGradientBoosting on the same rows (densified: it takes no
    CSR), learning_rate from (0.05, 0.1) on validation.
    ``gcn``: 2-layer GCN (Kipf & Welling) written here in plain PyTorch,
    symmetric-normalised union of the relations with self loops; hidden 64,
    dropout 0.5, Adam lr 0.01, weight decay from (5e-4, 0) on validation
    (Yelp: 5e-4 only, at most 150 epochs: an epoch multiplies by 8.6M
    edges), at most 200 epochs, early stopping on validation (patience 30),
    the best epoch's weights kept; class-balanced loss on Yelp.
    ``sage``: 2-layer GraphSAGE with mean aggregation per relation (a
    weight per relation plus one for the node itself), same training.
    Both GNNs multiply by precomputed sparse operators and their
    transposes (``SpMM``: stock layers transpose on every backward pass),
    after the linear map (A (X W), the cheaper order).
    ``pyg_gcn``: PyTorch Geometric's GCNConv (planetoid sets only).

sets
    ``yelp``: Yelp-Chi review spam (three relations), stratified 40/20/40
    split drawn per seed; test AUC and AP.
    ``cora``: public split; accuracy and macro-F1.
    ``citeseer``: public split, reported last; held out of the defaults
    until the sparse-feature layout (the mean of eight symmetric hops, no
    degree column) was chosen on random splits of Cora and CiteSeer
    (benchmarks/HISTORY.md, twenty-second session).

Reported: mean +- sd over seeds 0, 1, 2 (Yelp: three splits; planetoid:
three initialisations), fit CPU seconds (process time of feature building
plus fit of the chosen configuration: CPU seconds over all threads),
microseconds per test node for prediction (skbolt: transform and
predict_proba of the test nodes; GNNs: one full-graph forward divided by
the test nodes), peak RSS of the process (each system runs in its own
process). ``--ablation`` fits the skbolt pipeline with feature families
added one at a time on the validation nodes; with ``--random-splits N``
(Cora, CiteSeer) on the nodes of N random splits instead (20 labelled
nodes per class, 1,500 evaluated), the protocol the sparse-feature
defaults were chosen with. ``--scale N`` generates
``make_graph(N, avg_degree=40, homophily=0.05, class_sep=0.1)`` (a
stochastic block model, ~20N edges, 15 % positives, seed 0), fits the
pipeline on 40 % of the nodes after asking ``BoltClassifier.estimate_memory``
for the fit's plan, and reports times, the estimate and peak RSS.

Usage::

    python benchmarks/bench_graph.py                 # every set, system, 3 seeds
    python benchmarks/bench_graph.py --quick         # seed 0, no hgb / pyg
    python benchmarks/bench_graph.py --ablation --sets yelp cora
    python benchmarks/bench_graph.py --ablation --sets cora citeseer --random-splits 6
    python benchmarks/bench_graph.py --scale 1000000 --out benchmarks/results/graph_scale.json
"""
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from sklearn.metrics import accuracy_score, average_precision_score, f1_score, roc_auc_score
from sklearn.model_selection import train_test_split

sys.path.insert(0, str(Path(__file__).parent))
from bench_xc_peers import machine

from skbolt import BoltClassifier
from skbolt.datasets import data_home
from skbolt.graph import NeighborhoodFeatures, make_graph

SETS = ("yelp", "cora", "citeseer")
SYSTEMS = ("skbolt", "logreg", "hgb", "gcn", "sage", "pyg_gcn")


def load(name, seed):
    """(relations dict, features, labels, train, val, test)."""
    home = data_home()
    if name == "yelp":
        d = home / "graph_yelpchi"
        nodes = np.load(d / "nodes.npz")
        y = nodes["label"].astype(np.int64)
        rel = {r: sp.load_npz(d / f"net_{r}.npz").tocsr() for r in ("rur", "rtr", "rsr")}
        idx = np.arange(y.size)
        train, rest = train_test_split(idx, train_size=0.4, stratify=y, random_state=seed)
        val, test = train_test_split(rest, train_size=1 / 3, stratify=y[rest],
                                     random_state=seed)
        return rel, nodes["features"], y, train, val, test
    d = home / "graph_planetoid"
    split = np.load(d / f"{name}_labels_split.npz")
    return ({"cites": sp.load_npz(d / f"{name}_adjacency.npz").tocsr()},
            sp.load_npz(d / f"{name}_features.npz").tocsr(), split["label"],
            split["train_idx"], split["val_idx"], split["test_idx"])


def scores(name, y, proba, classes):
    if name == "yelp":
        p = proba[:, list(classes).index(1)]
        return {"auc": roc_auc_score(y, p), "ap": average_precision_score(y, p)}
    pred = np.asarray(classes)[proba.argmax(1)]
    return {"accuracy": accuracy_score(y, pred), "macro_f1": f1_score(y, pred, average="macro")}


def headline(name):
    return "auc" if name == "yelp" else "accuracy"


# ---------------------------------------------------------------- sklearn systems

def run_skbolt(name, data, seed, threads, nf_params=None):
    rel, X, y, train, val, test = data
    cpu = time.process_time()
    nf = NeighborhoodFeatures(rel, features=X, **(nf_params or {}))
    Z = nf.fit(train, y[train]).transform(train)
    model = BoltClassifier(random_state=seed, n_jobs=threads).fit(Z, y[train])
    fit_cpu = time.process_time() - cpu
    out = {}
    for part, nodes in (("val", val), ("test", test)):
        start = time.perf_counter()
        proba = model.predict_proba(nf.transform(nodes))
        out[part] = scores(name, y[nodes], proba, model.classes_)
        if part == "test":
            out["us_per_node"] = 1e6 * (time.perf_counter() - start) / nodes.size
    Zt = nf.transform(test)
    out.update(fit_cpu=fit_cpu, width=nf.n_features_out_, nnz_per_row=Zt.nnz / Zt.shape[0],
               label_relations=nf.label_relations_)
    return out


def run_sklearn(name, data, seed, threads, system):
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    rel, X, y, train, val, test = data
    cpu = time.process_time()
    nf = NeighborhoodFeatures(rel, features=X).fit(train, y[train])
    feat_cpu = time.process_time() - cpu
    Ztr, Zva, Zte = (nf.transform(n) for n in (train, val, test))
    if system == "logreg":
        grid = [dict(C=c) for c in (0.1, 1.0, 10.0)]
        make = lambda p: LogisticRegression(max_iter=3000, **p)  # noqa: E731
    else:
        Ztr, Zva, Zte = (z.toarray() for z in (Ztr, Zva, Zte))
        grid = [dict(learning_rate=r) for r in (0.05, 0.1)]
        make = lambda p: HistGradientBoostingClassifier(random_state=seed, **p)  # noqa: E731
    best = None
    for params in grid:
        cpu = time.process_time()
        model = make(params).fit(Ztr, y[train])
        fit_cpu = time.process_time() - cpu
        val_scores = scores(name, y[val], model.predict_proba(Zva), model.classes_)
        if best is None or val_scores[headline(name)] > best[1][headline(name)]:
            best = (model, val_scores, params, fit_cpu)
    model, val_scores, params, fit_cpu = best
    start = time.perf_counter()
    proba = model.predict_proba(Zte)
    us = 1e6 * (time.perf_counter() - start) / test.size
    return {"val": val_scores, "test": scores(name, y[test], proba, model.classes_),
            "params": params, "fit_cpu": feat_cpu + fit_cpu, "us_per_node": us}


# ---------------------------------------------------------------- GNNs in PyTorch

def torch_operator(M):
    import torch

    M = M.tocoo()
    return torch.sparse_coo_tensor(np.vstack([M.row, M.col]), M.data.astype(np.float32),
                                   M.shape).coalesce()


def spmm_function():
    import torch

    class SpMM(torch.autograd.Function):
        """P @ H with the transpose precomputed for the backward pass."""

        @staticmethod
        def forward(ctx, P, PT, H):
            ctx.PT = PT
            return torch.sparse.mm(P, H)

        @staticmethod
        def backward(ctx, grad):
            return None, None, torch.sparse.mm(ctx.PT, grad)

    return SpMM.apply


def normalised(A, kind):
    deg = np.asarray(A.sum(1)).ravel()
    with np.errstate(divide="ignore"):
        if kind == "row":
            return (sp.diags(np.where(deg > 0, 1 / deg, 0)) @ A).tocsr()
        s = np.where(deg > 0, 1 / np.sqrt(deg), 0)
    return (sp.diags(s) @ A @ sp.diags(s)).tocsr()


def run_gnn(name, data, seed, threads, system, max_epochs=200, patience=30):
    import torch

    torch.set_num_threads(threads)
    rel, X, y, train, val, test = data
    cpu = time.process_time()
    mats = list(rel.values())
    Xd = X.toarray() if sp.issparse(X) else np.asarray(X)
    Xd = ((Xd - Xd[train].mean(0)) / (Xd[train].std(0) + 1e-6) if name == "yelp"
          else Xd).astype(np.float32)
    if system == "gcn":
        U = sum(mats)
        U.data[:] = 1.0
        ops = [normalised((U + sp.eye(U.shape[0])).tocsr(), "sym")]
    else:
        ops = [normalised(A, "row") for A in mats]
    P_t = [(torch_operator(P), torch_operator(P.T.tocsr())) for P in ops]
    Xt = torch.from_numpy(Xd)
    n_classes = int(y.max()) + 1
    yt = torch.from_numpy(np.where(y < 0, 0, y))
    weight = None
    if name == "yelp":  # class-balanced loss, usual for fraud GNNs
        counts = np.bincount(y[train], minlength=n_classes)
        weight = torch.tensor(counts.sum() / (n_classes * counts), dtype=torch.float32)
    prep_cpu = time.process_time() - cpu
    spmm = spmm_function()
    best = None
    # Yelp: one weight decay and 150 epochs at most (an epoch multiplies by 8.6M
    # edges); planetoid: two
    if name == "yelp":
        grid, max_epochs = (5e-4,), min(max_epochs, 150)
    else:
        grid = (5e-4, 0.0)
    for wd in grid:
        torch.manual_seed(seed)
        hidden = 64
        k = len(ops)
        lin1 = torch.nn.ModuleList(torch.nn.Linear(Xd.shape[1], hidden, bias=(i == 0))
                                   for i in range(k + (system == "sage")))
        lin2 = torch.nn.ModuleList(torch.nn.Linear(hidden, n_classes, bias=(i == 0))
                                   for i in range(k + (system == "sage")))
        params = list(lin1.parameters()) + list(lin2.parameters())
        opt = torch.optim.Adam(params, lr=0.01, weight_decay=wd)

        def forward(training):
            drop = torch.nn.functional.dropout
            x = drop(Xt, 0.5, training)
            if system == "gcn":
                h = torch.relu(spmm(*P_t[0], lin1[0](x)))
                h = drop(h, 0.5, training)
                return spmm(*P_t[0], lin2[0](h))
            h = lin1[k](x)
            for i in range(k):
                h = h + spmm(*P_t[i], lin1[i](x))
            h = drop(torch.relu(h), 0.5, training)
            out = lin2[k](h)
            for i in range(k):
                out = out + spmm(*P_t[i], lin2[i](h))
            return out

        cpu = time.process_time()
        best_val, best_state, wait = -1.0, None, 0
        for _ in range(max_epochs):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(forward(True)[train], yt[train],
                                                     weight=weight)
            loss.backward()
            opt.step()
            with torch.no_grad():
                proba = torch.softmax(forward(False), 1).numpy()
            v = scores(name, y[val], proba[val], np.arange(n_classes))[headline(name)]
            if v > best_val:
                best_val, wait = v, 0
                best_state = [p.detach().clone() for p in params]
            else:
                wait += 1
                if wait >= patience:
                    break
        fit_cpu = time.process_time() - cpu
        if best is None or best_val > best[0]:
            best = (best_val, best_state, wd, fit_cpu, forward, params)
    best_val, state, wd, fit_cpu, forward, params = best
    with torch.no_grad():
        for p, s in zip(params, state):
            p.copy_(s)
        start = time.perf_counter()
        proba = torch.softmax(forward(False), 1).numpy()
        us = 1e6 * (time.perf_counter() - start) / test.size
    classes = np.arange(n_classes)
    return {"val": scores(name, y[val], proba[val], classes),
            "test": scores(name, y[test], proba[test], classes),
            "params": {"weight_decay": wd}, "fit_cpu": prep_cpu + fit_cpu, "us_per_node": us}


def run_pyg(name, data, seed, threads):
    import torch
    from torch_geometric.nn import GCNConv

    torch.set_num_threads(threads)
    rel, X, y, train, val, test = data
    A = next(iter(rel.values())).tocoo()
    edges = torch.from_numpy(np.vstack([A.row, A.col]).astype(np.int64))
    Xt = torch.from_numpy(X.toarray().astype(np.float32))
    yt = torch.from_numpy(y)
    torch.manual_seed(seed)
    c1, c2 = GCNConv(Xt.shape[1], 64), GCNConv(64, int(y.max()) + 1)
    params = list(c1.parameters()) + list(c2.parameters())
    opt = torch.optim.Adam(params, lr=0.01, weight_decay=5e-4)
    drop = torch.nn.functional.dropout

    def forward(training):
        h = torch.relu(c1(drop(Xt, 0.5, training), edges))
        return c2(drop(h, 0.5, training), edges)

    cpu = time.process_time()
    best_val, state, wait = -1.0, None, 0
    for _ in range(200):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(forward(True)[train], yt[train]).backward()
        opt.step()
        with torch.no_grad():
            pred = forward(False).argmax(1).numpy()
        v = accuracy_score(y[val], pred[val])
        if v > best_val:
            best_val, state, wait = v, [p.detach().clone() for p in params], 0
        else:
            wait += 1
            if wait >= 30:
                break
    fit_cpu = time.process_time() - cpu
    with torch.no_grad():
        for p, s in zip(params, state):
            p.copy_(s)
        start = time.perf_counter()
        proba = torch.softmax(forward(False), 1).numpy()
        us = 1e6 * (time.perf_counter() - start) / test.size
    classes = np.arange(proba.shape[1])
    return {"val": scores(name, y[val], proba[val], classes),
            "test": scores(name, y[test], proba[test], classes),
            "params": {"weight_decay": 5e-4}, "fit_cpu": fit_cpu, "us_per_node": us}


def run_one(name, system, seed, threads):
    data = load(name, seed)
    if system == "skbolt":
        out = run_skbolt(name, data, seed, threads)
    elif system in ("logreg", "hgb"):
        out = run_sklearn(name, data, seed, threads, system)
    elif system == "pyg_gcn":
        out = run_pyg(name, data, seed, threads)
    else:
        out = run_gnn(name, data, seed, threads, system)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


# ---------------------------------------------------------------- ablation and scale

ABLATION = (
    ("own features only", dict(hops=0, degree=False, label_features=False, standardize=False)),
    ("+ hop means", dict(degree=False, label_features=False, standardize=False)),
    ("+ degree", dict(degree=True, label_features=False, standardize=False)),
    ("+ label features", dict(degree=True, label_features=True, standardize=False)),
    ("+ standardisation (label_features=True)", dict(degree=True, label_features=True)),
    ("defaults", {}),
    ("defaults, no width cap", dict(max_nnz=None)),
    ("defaults, normalization='row'", dict(normalization="row")),
    ("defaults, degree=True", dict(degree=True)),
    ("defaults, hops=3", dict(hops=3)),
    ("before: last of 3 hops, row, degree", dict(hop_blocks="last", hops=3, normalization="row",
                                                 degree=True)),
)


def random_splits(name, n_splits, per_class=20, n_eval=1500, seed=123):
    """Planetoid-style splits drawn at random (``per_class`` labelled nodes
    of each class, ``n_eval`` other nodes evaluated, the first third as the
    "val" part and the rest as "test"), in place of the public split whose
    500 validation nodes cannot tell layouts apart."""
    rel, X, y, *_ = load(name, 0)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_splits):
        perm = rng.permutation(y.size)
        train = np.concatenate([perm[y[perm] == c][:per_class] for c in np.unique(y)])
        rest = rng.permutation(np.setdiff1d(perm, train))[:n_eval]
        out.append((rel, X, y, train, rest[: n_eval // 3], rest[n_eval // 3:]))
    return out


def ablation(sets, seeds, threads, n_random_splits=0):
    """Each ABLATION variant on the validation nodes of every seed's split,
    or, with ``n_random_splits`` (Cora, CiteSeer), on that many random
    splits (split i fitted with classifier seed i), scored on all their
    evaluated nodes."""
    found = []
    for name in sets:
        splits = random_splits(name, n_random_splits) if n_random_splits else None
        for label, params in ABLATION:
            if splits:
                runs = [run_skbolt(name, split, i, threads, params)
                        for i, split in enumerate(splits)]
                for r, split in zip(runs, splits):
                    third = split[4].size / (split[4].size + split[5].size)
                    r["val"] = {k: third * r["val"][k] + (1 - third) * r["test"][k]
                                for k in r["val"]}
            else:
                runs = [run_skbolt(name, load(name, seed), seed, threads, params)
                        for seed in seeds]
            row = {"set": name, "variant": label, "params": params,
                   "val": float(np.mean([r["val"][headline(name)] for r in runs])),
                   "val_sd": float(np.std([r["val"][headline(name)] for r in runs])),
                   "fit_cpu": float(np.mean([r["fit_cpu"] for r in runs])),
                   "nnz_per_row": float(np.mean([r["nnz_per_row"] for r in runs])),
                   "width": runs[0]["width"]}
            found.append(row)
            print(f"{name:9s} {label:42s} val {headline(name)} {row['val']:.4f} "
                  f"+- {row['val_sd']:.4f}  fit {row['fit_cpu']:.1f} CPU-s  "
                  f"nnz/row {row['nnz_per_row']:.0f}  width {row['width']}", flush=True)
    return found


def scale(n_nodes, threads):
    t0 = time.perf_counter()
    g = make_graph(n_nodes, n_classes=2, avg_degree=40, homophily=0.05, n_features=16,
                   class_sep=0.1, weights=[0.85, 0.15], random_state=0)
    out = {"n_nodes": n_nodes, "n_edges": int(g.adjacency.nnz // 2),
           "generate_s": time.perf_counter() - t0}
    rng = np.random.default_rng(0)
    order = rng.permutation(n_nodes)
    train, test = order[: int(0.4 * n_nodes)], order[int(0.6 * n_nodes):]
    t0, c0 = time.perf_counter(), time.process_time()
    nf = NeighborhoodFeatures(g.adjacency, features=g.features).fit(train, g.labels[train])
    Z = nf.transform(train)
    out.update(features_s=time.perf_counter() - t0, features_cpu=time.process_time() - c0,
               width=Z.shape[1], rss_after_features_mb=resource.getrusage(
                   resource.RUSAGE_SELF).ru_maxrss / 1024)
    model = BoltClassifier(random_state=0, n_jobs=threads)
    out["estimate_memory_mb"] = {k: (v / 2**20 if v is not None else None)
                                 for k, v in model.estimate_memory(Z, g.labels[train]).items()}
    t0, c0 = time.perf_counter(), time.process_time()
    model.fit(Z, g.labels[train])
    out.update(fit_s=time.perf_counter() - t0, fit_cpu=time.process_time() - c0)
    t0 = time.perf_counter()
    proba = model.predict_proba(nf.transform(test))[:, 1]
    out.update(predict_us_per_node=1e6 * (time.perf_counter() - t0) / test.size,
               test_auc=roc_auc_score(g.labels[test], proba),
               peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return out


def scale_sparse(n_nodes, threads):
    """Feature building on a generated graph with sparse 0/1 node features
    (the layout for bags of words: eight symmetric hops averaged, each
    cut to ``max_nnz``) at one thread and at ``threads``, every fifth node
    labelled; the two must build the same rows."""
    g = make_graph(n_nodes, n_classes=5, avg_degree=20, homophily=0.7, n_features=500,
                   class_sep=0.3, random_state=0)
    F = sp.csr_matrix((g.features > 1.5).astype(np.float32))
    ids = np.arange(0, n_nodes, 5)
    out = {"n_nodes": n_nodes, "n_edges": int(g.adjacency.nnz // 2),
           "feature_nnz_per_row": F.nnz / n_nodes, "runs": []}
    rows = []
    for n_jobs in (1, threads):
        t0, c0 = time.perf_counter(), time.process_time()
        nf = NeighborhoodFeatures(g.adjacency, features=F, n_jobs=n_jobs)
        rows.append(nf.fit(ids, g.labels[ids]).transform(ids))
        out["runs"].append({"n_jobs": n_jobs, "wall_s": time.perf_counter() - t0,
                            "cpu_s": time.process_time() - c0, "width": nf.n_features_out_,
                            "nnz_per_row": rows[-1].nnz / ids.size})
        print(json.dumps(out["runs"][-1]), flush=True)
    out["same_rows"] = bool((rows[0] != rows[1]).nnz == 0)
    out["speedup"] = out["runs"][0]["wall_s"] / out["runs"][1]["wall_s"]
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


# ---------------------------------------------------------------- driver

def summarise(results, sets, systems):
    rows = []
    for name in sets:
        for system in systems:
            runs = [r for r in results if r["set"] == name and r["system"] == system
                    and "test" in r]
            if not runs:
                continue
            row = {"set": name, "system": system, "seeds": [r["seed"] for r in runs]}
            for key in runs[0]["test"]:
                vals = [r["test"][key] for r in runs]
                row[key] = (float(np.mean(vals)), float(np.std(vals)))
            for key in ("fit_cpu", "us_per_node", "peak_rss_mb"):
                row[key] = float(np.mean([r[key] for r in runs]))
            rows.append(row)
    print("\n| set | system | " + " | ".join(("metric 1", "metric 2")) +
          " | fit CPU-s | µs / node | peak RSS MB |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        metrics = [k for k in ("auc", "ap", "accuracy", "macro_f1") if k in row]
        cells = " | ".join(f"{k} {row[k][0]:.4f} ± {row[k][1]:.4f}" for k in metrics)
        print(f"| {row['set']} | {row['system']} | {cells} | {row['fit_cpu']:.1f} | "
              f"{row['us_per_node']:.1f} | {row['peak_rss_mb']:.0f} |")
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=SETS)
    parser.add_argument("--systems", nargs="+", default=list(SYSTEMS), choices=SYSTEMS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--ablation", action="store_true")
    parser.add_argument("--random-splits", type=int, default=0, metavar="N",
                        help="with --ablation: score on N random splits (Cora, CiteSeer)")
    parser.add_argument("--scale", type=int, default=None, metavar="N_NODES")
    parser.add_argument("--scale-sparse", type=int, default=None, metavar="N_NODES",
                        help="feature building with sparse node features, 1 thread "
                             "against --threads")
    parser.add_argument("--one", nargs=3, metavar=("SET", "SYSTEM", "SEED"), help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    if args.one:
        name, system, seed = args.one
        print(json.dumps(run_one(name, system, int(seed), args.threads)))
        return
    if args.scale_sparse is not None:
        found = scale_sparse(args.scale_sparse, args.threads)
        print(json.dumps(found, indent=1))
        with open(args.out or "benchmarks/results/graph_scale_sparse.json", "w") as fh:
            json.dump(found, fh, indent=1)
        return
    if data_home() is None and args.scale is None:
        sys.exit("shared data not found: set SKBOLT_DATA (graph_yelpchi, graph_planetoid)")
    if args.scale is not None:
        found = scale(args.scale, args.threads)
        print(json.dumps(found, indent=1))
        out = args.out or "benchmarks/results/graph_scale.json"
    elif args.ablation:
        found = ablation(args.sets, args.seeds, args.threads, args.random_splits)
        out = args.out or "benchmarks/results/graph_ablation.json"
    else:
        if args.quick:
            args.seeds = args.seeds[:1]
            args.systems = [s for s in args.systems if s not in ("hgb", "pyg_gcn")]
        results = []
        for name in args.sets:
            for system in args.systems:
                if system == "pyg_gcn" and name == "yelp":
                    continue
                for seed in args.seeds:
                    done = subprocess.run([sys.executable, __file__, "--one", name, system,
                                           str(seed), "--threads", str(args.threads)],
                                          capture_output=True, text=True)
                    if done.returncode != 0:
                        print(f"{name} {system} {seed} failed:\n{done.stderr[-2000:]}")
                        continue
                    r = {"set": name, "system": system, "seed": seed,
                         **json.loads(done.stdout.strip().splitlines()[-1])}
                    results.append(r)
                    print(f"{name} {system} seed {seed}: test {r['test']}  val "
                          f"{r['val'][headline(name)]:.4f}  fit {r['fit_cpu']:.1f} CPU-s  "
                          f"{r['us_per_node']:.1f} us/node  {r['peak_rss_mb']:.0f} MB",
                          flush=True)
        found = {"runs": results, "table": summarise(results, args.sets, args.systems)}
        out = args.out or ("benchmarks/results/graph_quick.json" if args.quick
                           else "benchmarks/results/graph.json")
    Path(out).write_text(json.dumps({"machine": machine(("skbolt", "torch", "torch-geometric",
                                                          "scikit-learn", "numpy", "scipy")),
                                     "results": found}, indent=1, default=float))
    print("wrote", out)


if __name__ == "__main__":
    main()
