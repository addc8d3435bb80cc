"""The ``skbolt`` command: train, predict, evaluate and inspect models from
files, as fastText, omikuji or napkinxc users are used to.

Subcommands (``skbolt SUBCOMMAND --help`` for each)::

    skbolt train TRAIN --model M [--test TEST] [--param name=value ...]
    skbolt predict M DATA [-k 5] [--out FILE.txt | FILE.npz]
    skbolt evaluate M DATA [-k 1 3 5] [--propensity A B]
    skbolt info M
    skbolt recommend-train INTERACTIONS.csv --model M [--min-weight W] [--param ...]
    skbolt recommend M [--users U ...] [--interactions CSV] [-n 10] [--out FILE.csv]

Data files are the Extreme Classification Repository's text format (a
``n_points n_features n_labels`` header line) or plain SVMLight, told apart
by the first line (``--format`` overrides); interactions are delimited text
of (user, item[, weight]) with the user's own ids. Models are written with
``skbolt.io`` (a format that executes nothing), never as pickles.

What the command line keeps in a model beside the estimator, in its
``cli_info_`` attribute (a dict, saved with the model): the data format and
the training file's label counts (for ``evaluate --propensity``); for a
recommender the item ids of the columns, the user ids and every training
user's items, so ``recommend --users`` serves known users by their own ids.

A user's mistake (a missing or malformed file, a bad parameter, a model file
that does not load) prints one line ``skbolt: error: ...`` to stderr and
exits with status 2; Ctrl-C exits with status 130. Anything else is a bug
and keeps its traceback.
"""
import argparse
import ast
import os
import sys
import time

import numpy as np
import scipy.sparse as sp

#: Exit status for a user's error (argparse's own for bad arguments).
USAGE_ERROR = 2


class UsageError(Exception):
    """A mistake of the user's that the command reports in one line."""


# ----------------------------------------------------------------------
# reading data


def sniff_format(path):
    """"xc" when the first line is an Extreme Classification header (three
    integers, no ``:``), else "svmlight"."""
    with open(path, "rb") as fh:
        first = fh.readline().split(b"#", 1)[0].split()
    if len(first) == 3 and all(tok.isdigit() for tok in first):
        return "xc"
    return "svmlight"


def read_data(path, fmt="auto", n_features=None, n_labels=None, verbose=False):
    """X and the labels of an XC or SVMLight file, with the format used.

    ``n_features`` / ``n_labels`` are a fitted model's widths: an XC file
    must declare them; an SVMLight file's features beyond ``n_features`` are
    dropped (features the model never saw carry nothing it learned).
    """
    from .datasets import load_svmlight, load_xc

    if not os.path.isfile(path):
        raise UsageError(f"{path}: no such file")
    fmt = sniff_format(path) if fmt == "auto" else fmt
    if fmt == "xc":
        X, Y = load_xc(path, n_features=n_features, n_labels=n_labels, verbose=verbose)
        return X, Y, fmt
    X, y = load_svmlight(path, verbose=verbose)
    if sp.issparse(y) and n_labels is not None and y.shape[1] < n_labels:
        # a test file need not hold the model's last labels
        y = sp.csr_matrix((y.data, y.indices, y.indptr), shape=(y.shape[0], n_labels))
    if n_features is not None:
        if X.shape[1] > n_features:
            dropped = int((X.indices >= n_features).sum())
            if dropped:
                print(f"skbolt: note: {path}: {dropped} feature values at indices >= "
                      f"{n_features} (unseen in training) are ignored", file=sys.stderr)
            X = X[:, :n_features]
        elif X.shape[1] < n_features:
            X = sp.csr_matrix((X.data, X.indices, X.indptr), shape=(X.shape[0], n_features))
    return X, y, fmt


# ----------------------------------------------------------------------
# parameters


def parse_params(pairs, estimator_cls):
    """``name=value`` strings as a dict of estimator parameters; values are
    Python literals where they parse as one (``1e-3``, ``(256,)``, ``True``),
    else strings (``auto``)."""
    valid = set(estimator_cls._get_param_names())
    params = {}
    for pair in pairs or ():
        name, sep, text = pair.partition("=")
        name = name.strip()
        if not sep:
            raise UsageError(f"--param expects name=value, got {pair!r}")
        if name not in valid:
            raise UsageError(f"{estimator_cls.__name__} has no parameter {name!r}; it has "
                             + ", ".join(sorted(valid)))
        try:
            params[name] = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError):
            params[name] = text.strip()
    return params


def resolved_params(estimator):
    """What "auto" became in ``fit``: the public trailing-underscore
    attributes that name a parameter."""
    out = {}
    for name in estimator._get_param_names():
        value = getattr(estimator, name + "_", None)
        if value is not None:
            out[name] = value
    if getattr(estimator, "hash_params_", None):
        out["hash_params"] = estimator.hash_params_
    return out


def _format_value(v):
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}={_format_value(x)}" for k, x in v.items()) + "}"
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


# ----------------------------------------------------------------------
# models


def load_model(path, kind=None):
    """An estimator read with ``skbolt.load``; ``kind`` the class it must be."""
    from . import io

    if not os.path.isfile(path):
        raise UsageError(f"{path}: no such model file")
    try:
        model = io.load(path)
    except ValueError as e:
        raise UsageError(str(e) if path in str(e) else f"{path}: {e}") from None
    if kind is not None and type(model).__name__ != kind:
        raise UsageError(f"{path} holds a {type(model).__name__}; this command needs a {kind}")
    return model


def _as_indices(model, Y, top):
    """Targets and top-k predictions as the ranking metrics compare them:
    a multi-label model's indicator and column ids as they are, a
    multi-class model's labels as indices into ``classes_`` (a label it
    never saw: an index no prediction has)."""
    if model.multilabel_:
        return Y, top
    return model._class_indices(Y), model._class_indices(top)


def evaluate_model(model, X, Y, ks, propensity=None):
    """P@k and nDCG@k (and PSP@k with ``propensity``) of ``model`` on X, Y,
    from one top-max(ks) prediction."""
    from .metrics import ndcg_at_k, precision_at_k, psp_at_k

    truth, top = _as_indices(model, Y, model.predict_topk(X, k=max(ks))[0])
    out = {}
    for k in ks:
        out[f"P@{k}"] = precision_at_k(truth, top, k=k)
    for k in ks:
        out[f"nDCG@{k}"] = ndcg_at_k(truth, top, k=k)
    if propensity is not None:
        for k in ks:
            out[f"PSP@{k}"] = psp_at_k(truth, top, propensity, k=k)
    return out


def _print_scores(scores, out):
    print("  ".join(f"{name} {value:.4f}" for name, value in scores.items()), file=out)


# ----------------------------------------------------------------------
# subcommands


def _check_writable(path):
    """Refuse, before any reading or training, a model path whose folder is
    missing or not writable (a typo would otherwise cost the whole fit)."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UsageError(f"{path}: cannot write the model: no folder {folder}")
    if not os.access(folder, os.W_OK):
        raise UsageError(f"{path}: cannot write the model: {folder} is not writable")


def _fit_and_save(model, fit_args, source, info, args, out, given):
    """Fit ``model`` (with the command's seed, threads and, unless the user
    ``given`` a verbose parameter, its verbosity), print what "auto" became,
    keep ``info`` in ``cli_info_`` and write the model."""
    if args.n_jobs is not None:
        model.set_params(n_jobs=args.n_jobs)
    if args.seed is not None:
        model.set_params(random_state=args.seed)
    if "verbose" not in given:
        model.set_params(verbose=0 if args.quiet else 1)
    start = time.perf_counter()
    try:
        model.fit(*fit_args)
    except ValueError as e:
        raise UsageError(f"{source}: {e}") from None
    print(f"fit: {time.perf_counter() - start:.1f} s, {model.n_iter_} epochs", file=out)
    print("resolved parameters:", file=out)
    for name, value in resolved_params(model).items():
        print(f"  {name} = {_format_value(value)}", file=out)
    model.verbose = 0  # what the file holds is the model, not this run's terminal
    model.cli_info_ = info
    try:
        model.save(args.model)
    except OSError as e:
        raise UsageError(f"{args.model}: cannot write the model: {e.strerror or e}") from None
    print(f"model written to {args.model} ({os.path.getsize(args.model) / 1e6:.1f} MB)",
          file=out)
    return model


def cmd_train(args, out):
    from . import BoltClassifier

    params = parse_params(args.param, BoltClassifier)
    model = BoltClassifier(**params)
    _check_writable(args.model)
    if args.test and not os.path.isfile(args.test):
        raise UsageError(f"{args.test}: no such file (the --test file is checked before "
                         "training)")
    start = time.perf_counter()
    X, Y, fmt = read_data(args.train, args.format, verbose=not args.quiet)
    if X.shape[0] == 0:
        raise UsageError(f"{args.train}: the file holds no data lines")
    print(f"{args.train}: {X.shape[0]} rows, {X.shape[1]} features, "
          f"{Y.shape[1] if sp.issparse(Y) else len(np.unique(Y))} labels ({fmt} format, "
          f"read in {time.perf_counter() - start:.1f} s)", file=out)
    classes = None if sp.issparse(Y) else np.unique(Y)
    counts = (np.asarray(Y.sum(axis=0)).ravel() if classes is None
              else np.bincount(np.searchsorted(classes, Y), minlength=len(classes)))
    info = {"format": fmt, "label_counts": counts.astype(np.int64),
            "n_train": int(X.shape[0]), "train_file": os.path.basename(args.train)}
    model = _fit_and_save(model, (X, Y), args.train, info, args, out, params)
    if args.test:
        cmd_evaluate(argparse.Namespace(model=args.model, data=args.test, k=[1, 3, 5],
                                        propensity=None, format=args.format, quiet=args.quiet,
                                        _model=model), out)
    return 0


def cmd_evaluate(args, out):
    model = getattr(args, "_model", None) or load_model(args.model, "BoltClassifier")
    X, Y, _ = read_data(args.data, args.format, n_features=model.n_features_in_,
                        n_labels=model.n_outputs_ if model.multilabel_ else None,
                        verbose=not args.quiet)
    propensity = None
    if args.propensity is not None:
        from .metrics import propensity_scores

        counts = getattr(model, "cli_info_", {}).get("label_counts")
        if counts is None:
            raise UsageError(f"{args.model} holds no training label counts (it was not "
                             "written by 'skbolt train'); PSP@k needs them")
        a, b = args.propensity
        # labels of the file the model never saw have count 0, the rarest
        # (multi-class: all at the one index past classes_)
        width = Y.shape[1] if sp.issparse(Y) else len(model.classes_) + 1
        counts = np.concatenate([counts, np.zeros(max(0, width - len(counts)), np.int64)])
        propensity = propensity_scores(counts, int(model.cli_info_["n_train"]), a, b)
    start = time.perf_counter()
    scores = evaluate_model(model, X, Y, sorted(set(args.k)), propensity)
    print(f"{args.data}: {X.shape[0]} rows, evaluated in {time.perf_counter() - start:.2f} s",
          file=out)
    _print_scores(scores, out)
    return 0


def _write_topk(path, ids, scores, out):
    if path is None or path == "-":
        for row_ids, row_scores in zip(ids, scores):
            print(" ".join(f"{i}:{s:.6g}" for i, s in zip(row_ids, row_scores)), file=out)
        return
    try:
        if path.endswith(".npz"):
            np.savez(path, labels=ids, scores=scores)
        else:
            with open(path, "w", encoding="utf-8") as f:
                for row_ids, row_scores in zip(ids, scores):
                    f.write(" ".join(f"{i}:{s:.6g}" for i, s in zip(row_ids, row_scores)))
                    f.write("\n")
    except OSError as e:
        raise UsageError(f"{path}: cannot write: {e.strerror or e}") from None


def cmd_predict(args, out):
    model = load_model(args.model, "BoltClassifier")
    if args.k < 1:
        raise UsageError(f"-k must be at least 1, got {args.k}")
    X, _, _ = read_data(args.data, args.format, n_features=model.n_features_in_,
                        n_labels=model.n_outputs_ if model.multilabel_ else None,
                        verbose=not args.quiet)
    model.verbose = 0 if args.quiet else 1  # the estimator's bar, from 100,000 rows
    ids, scores = model.predict_topk(X, k=args.k)
    _write_topk(args.out, ids, scores, out)
    if args.out not in (None, "-"):
        print(f"top-{args.k} labels and scores of {X.shape[0]} rows written to {args.out}",
              file=out)
    return 0


def cmd_info(args, out):
    from . import io

    model = load_model(args.model)
    header = io.read_header(args.model)
    name = type(model).__name__
    print(f"{args.model}: {name}, skbolt model format {header['format_version']} "
          f"(written by skbolt {header['skbolt_version']}), "
          f"{os.path.getsize(args.model) / 1e6:.1f} MB", file=out)
    fitted = getattr(model, "_network", None) is not None
    if fitted:
        outputs = model.n_outputs_ if name == "BoltClassifier" else model.n_items_
        print(f"  shape: {model.n_features_in_} features -> hidden "
              f"{tuple(model.hidden_layer_sizes_)} -> {outputs} "
              f"{'outputs' if name == 'BoltClassifier' else 'items'}", file=out)
        print(f"  trained {model.n_iter_} epochs; memory planned for training "
              f"{model.memory_bytes_ / 1e6:.1f} MB", file=out)
    else:
        print("  not fitted", file=out)
    print("  parameters:", file=out)
    for k, v in model.get_params().items():
        print(f"    {k} = {_format_value(v)}", file=out)
    if fitted:
        print("  resolved:", file=out)
        for k, v in resolved_params(model).items():
            print(f"    {k} = {_format_value(v)}", file=out)
    info = getattr(model, "cli_info_", None)
    if info:
        shown = {k: v for k, v in info.items() if not isinstance(v, (np.ndarray, dict))}
        print("  command line: " + ", ".join(f"{k}={v}" for k, v in shown.items()), file=out)
    return 0


def cmd_recommend_train(args, out):
    from . import BoltRecommender
    from .datasets import load_interactions

    params = parse_params(args.param, BoltRecommender)
    model = BoltRecommender(**params)
    _check_writable(args.model)
    if not os.path.isfile(args.interactions):
        raise UsageError(f"{args.interactions}: no such file")
    X, user_ids, item_ids = load_interactions(args.interactions, delimiter=args.delimiter,
                                              min_weight=args.min_weight, binary=args.binary,
                                              verbose=not args.quiet)
    print(f"{args.interactions}: {X.nnz} interactions, {X.shape[0]} users, "
          f"{X.shape[1]} items", file=out)
    info = {
        "format": "interactions", "train_file": os.path.basename(args.interactions),
        "item_ids": item_ids.astype(str), "user_ids": user_ids.astype(str),
        "histories": {"indptr": X.indptr.astype(np.int64), "indices": X.indices.astype(np.int64),
                      "data": X.data.astype(np.float32)},
    }
    _fit_and_save(model, (X,), args.interactions, info, args, out, params)
    return 0


def _histories(model, args):
    """User ids and their rows over the model's items: from ``--interactions``
    (new users, folded in) or the training users kept in the model."""
    info = getattr(model, "cli_info_", None) or {}
    item_ids = info.get("item_ids")
    if item_ids is None:
        raise UsageError(f"{args.model} holds no item ids (it was not written by "
                         "'skbolt recommend-train')")
    if args.interactions:
        from .datasets import load_interactions

        if not os.path.isfile(args.interactions):
            raise UsageError(f"{args.interactions}: no such file")
        X, users, items = load_interactions(args.interactions, delimiter=args.delimiter,
                                            min_weight=args.min_weight, binary=args.binary,
                                            verbose=not args.quiet)
        order = np.argsort(item_ids)
        pos = np.searchsorted(item_ids, items, sorter=order)
        pos = np.minimum(pos, len(item_ids) - 1)
        known = item_ids[order[pos]] == items
        if not known.all():
            print(f"skbolt: note: {args.interactions}: {int((~known).sum())} items the model "
                  "was not trained on are ignored", file=sys.stderr)
        cols = np.full(len(items), -1, dtype=np.int64)
        cols[known] = order[pos[known]]
        X = X.tocoo()
        keep = cols[X.col] >= 0
        H = sp.csr_matrix((X.data[keep], (X.row[keep], cols[X.col[keep]])),
                          shape=(len(users), len(item_ids)))
        return users, H
    h = info["histories"]
    users = info["user_ids"]
    H = sp.csr_matrix((h["data"], h["indices"], h["indptr"]), shape=(len(users), len(item_ids)))
    return users, H


def cmd_recommend(args, out):
    model = load_model(args.model, "BoltRecommender")
    if args.n < 1:
        raise UsageError(f"-n must be at least 1, got {args.n}")
    users, H = _histories(model, args)
    if args.users:
        wanted = np.asarray(args.users, dtype=str)
        order = np.argsort(users)
        pos = np.minimum(np.searchsorted(users, wanted, sorter=order), len(users) - 1)
        rows = order[pos]
        missing = wanted[users[rows] != wanted]
        if missing.size:
            where = args.interactions or "the model's training users"
            raise UsageError(f"user {str(missing[0])!r} is not in {where}"
                             + (f" ({missing.size} such users)" if missing.size > 1 else "")
                             + "; give their items with --interactions")
        users, H = wanted, H[rows]
    item_ids = model.cli_info_["item_ids"]
    model.exclude_seen = not args.include_seen
    ids, scores = model.recommend(H, n=min(args.n, len(item_ids)))
    lines = ["user,item,rank,score"]
    for user, row_ids, row_scores in zip(users, ids, scores):
        for rank, (i, s) in enumerate(zip(row_ids, row_scores), 1):
            if i >= 0:
                lines.append(f"{user},{item_ids[i]},{rank},{s:.6g}")
    text = "\n".join(lines) + "\n"
    if args.out in (None, "-"):
        out.write(text)
    else:
        try:
            with open(args.out, "w", encoding="utf-8") as f:
                f.write(text)
        except OSError as e:
            raise UsageError(f"{args.out}: cannot write: {e.strerror or e}") from None
        print(f"{args.n} recommendations for {len(users)} users written to {args.out}",
              file=out)
    return 0


# ----------------------------------------------------------------------
# the parser


def _add_format(p):
    p.add_argument("--format", choices=("auto", "xc", "svmlight"), default="auto",
                   help="data file format (default: from the first line)")


def _add_common(p):
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bars")


def _add_fit_options(p):
    p.add_argument("--param", "-p", action="append", metavar="NAME=VALUE",
                   help="an estimator parameter (repeatable), e.g. -p max_iter=20")
    p.add_argument("--n-jobs", type=int, default=None, help="threads (default: all cores)")
    p.add_argument("--seed", type=int, default=None, help="random_state")


def _add_interaction_options(p):
    p.add_argument("--delimiter", default=None,
                   help="field separator (default: tab, comma or semicolon from the first "
                        "line, else whitespace)")
    p.add_argument("--min-weight", type=float, default=None,
                   help="keep interactions with at least this weight (e.g. 4 for ratings)")
    p.add_argument("--binary", action="store_true",
                   help="weight every kept interaction 1 (without it the weights go to the "
                        "model as they come, and its input_scaling, 'auto' unless -p "
                        "input_scaling=... says otherwise, measures whether to use them "
                        "raw, binary or log1p; a trained model scales new users' rows as "
                        "it scaled its own)")


def build_parser():
    """The argparse parser of the ``skbolt`` command."""
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="skbolt", description="LSH-sparse networks for extreme classification and "
                                   "recommendation, from files.")
    parser.add_argument("--version", action="version", version=f"skbolt {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("train", help="train a BoltClassifier on an XC or SVMLight file")
    p.add_argument("train", help="training file")
    p.add_argument("--model", "-m", required=True, help="where to write the model")
    p.add_argument("--test", help="a file to report P@1/3/5 and nDCG on")
    _add_format(p)
    _add_fit_options(p)
    _add_common(p)
    p.set_defaults(run=cmd_train)

    p = sub.add_parser("predict", help="top-k labels and scores of every row of a file")
    p.add_argument("model")
    p.add_argument("data")
    p.add_argument("-k", type=int, default=5, help="labels per row (default 5)")
    p.add_argument("--out", "-o", default=None,
                   help="output file: 'label:score ...' lines, or arrays 'labels' and "
                        "'scores' when it ends in .npz (default: standard output)")
    _add_format(p)
    _add_common(p)
    p.set_defaults(run=cmd_predict)

    p = sub.add_parser("evaluate", help="P@k, nDCG@k (and PSP@k) of a model on a file")
    p.add_argument("model")
    p.add_argument("data")
    p.add_argument("-k", type=int, nargs="+", default=[1, 3, 5], help="cut-offs (default 1 3 5)")
    p.add_argument("--propensity", type=float, nargs=2, metavar=("A", "B"), default=None,
                   help="also PSP@k with Jain et al.'s propensities from the training label "
                        "counts (A=0.55 B=1.5 for most sets, 0.5 0.4 for Amazon, 0.6 2.6 "
                        "for Wikipedia)")
    _add_format(p)
    _add_common(p)
    p.set_defaults(run=cmd_evaluate)

    p = sub.add_parser("info", help="what a model file holds")
    p.add_argument("model")
    p.set_defaults(run=cmd_info)

    p = sub.add_parser("recommend-train",
                       help="train a BoltRecommender on (user, item[, weight]) interactions")
    p.add_argument("interactions", help="delimited text: user, item[, weight][, ...]")
    p.add_argument("--model", "-m", required=True, help="where to write the model")
    _add_interaction_options(p)
    _add_fit_options(p)
    _add_common(p)
    p.set_defaults(run=cmd_recommend_train)

    p = sub.add_parser("recommend", help="items for users, by their own ids")
    p.add_argument("model")
    p.add_argument("--users", "-u", nargs="+", default=None,
                   help="user ids (default: every user of --interactions, or of training)")
    p.add_argument("--interactions", "-i", default=None,
                   help="the users' items (new users are folded in); default: the training "
                        "histories kept in the model")
    p.add_argument("-n", type=int, default=10, help="items per user (default 10)")
    p.add_argument("--include-seen", action="store_true",
                   help="do not leave out the items a user already has")
    p.add_argument("--out", "-o", default=None, help="CSV file (default: standard output)")
    _add_interaction_options(p)
    _add_common(p)
    p.set_defaults(run=cmd_recommend)
    return parser


def main(argv=None, out=None):
    """Run the command line; returns the exit status.

    Parameters
    ----------
    argv : list of str, default=None
        Arguments (default ``sys.argv[1:]``).
    out : file-like, default=None
        Where results go (default standard output); errors go to stderr.
    """
    out = sys.stdout if out is None else out
    args = build_parser().parse_args(argv)
    try:
        return args.run(args, out)
    except (UsageError, ValueError, MemoryError) as e:
        # ValueError / MemoryError reaching here come from reading a file or
        # refusing a configuration: the user's to fix, said in one line
        print(f"skbolt: error: {e}", file=sys.stderr)
        return USAGE_ERROR
    except BrokenPipeError:
        # the reader (``| head``) has gone: stop quietly, as text tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except OSError as e:
        print(f"skbolt: error: {e.filename or ''}: {e.strerror or e}", file=sys.stderr)
        return USAGE_ERROR
    except KeyboardInterrupt:
        print("skbolt: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
