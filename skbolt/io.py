"""Saving and loading estimators in a format that executes nothing.

A pickle (or a joblib file) runs code when it is loaded, so it must only
come from a trusted source. ``save`` / ``load`` write and read a file that
holds values only: a JSON description of the estimator's state and its
arrays as raw little-endian bytes, so reading one never imports, calls or
evaluates anything named in the file. Use them for models that travel
between people or services; pickle and joblib keep working for everything
else (and for estimators inside Pipelines or search objects, which this
format does not hold).

Layout (format version 1), all integers little-endian::

    magic       8 bytes   b"SKBOLT\\x00M"
    header_len  8 bytes   uint64
    header      header_len bytes of UTF-8 JSON
    arrays      each at an offset from the payload start, 64-byte aligned
    digest      32 bytes  SHA-256 of everything before it

The header names the format version, the estimator class (one of skbolt's
own, looked up in a fixed table), and the state: a tree of JSON values
in which tuples, non-finite floats, numpy scalars, object arrays, random
states and arrays are tagged objects; each array entry gives its dtype
(booleans, integers, floats and fixed-width unicode only), shape, offset
and size. ``load`` checks the digest, then the header, every array's
entry, and the network's shapes against its configuration before it
builds anything; the native core then validates every value it is given.
"""
import hashlib
import json
import math
import numbers
import os
import struct
import tempfile

import numpy as np

MAGIC = b"SKBOLT\x00M"
FORMAT_VERSION = 1
ALIGN = 64
_DIGEST = 32
_FIXED = len(MAGIC) + 8
#: Largest header ``load`` parses (a header describes, it does not hold data).
MAX_HEADER = 256 * 2**20
_MAX_NDIM = 8
_NUMERIC = {"?", "b", "B", "h", "H", "i", "I", "l", "L", "q", "Q", "e", "f", "d"}


def _estimators():
    # a fixed table: the file names a key, never a module or a callable
    from .classifier import BoltClassifier
    from .recommender import BoltRecommender

    return {"BoltClassifier": BoltClassifier, "BoltRecommender": BoltRecommender}


# ----------------------------------------------------------------------
# encoding a state tree


class _Encoder:
    def __init__(self):
        self.arrays = []

    def array(self, a, path):
        a = np.asarray(a)
        if a.dtype.kind == "O":
            return {"t": "objects", "shape": list(a.shape),
                    "v": [self.value(v, f"{path}[{i}]") for i, v in enumerate(a.ravel())]}
        if a.dtype.char not in _NUMERIC and a.dtype.kind != "U":
            raise ValueError(f"{path} is an array of dtype {a.dtype}, which the safe format "
                             "does not store; save the model with pickle or joblib instead")
        a = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<"))
        self.arrays.append(a)
        return {"t": "array", "i": len(self.arrays) - 1}

    def value(self, v, path):
        if v is None or isinstance(v, (bool, str)):
            return v
        if isinstance(v, np.generic):
            if v.dtype.char not in _NUMERIC:
                raise ValueError(f"{path} is a numpy {v.dtype} scalar, which the safe format "
                                 "does not store")
            return {"t": "scalar", "dtype": v.dtype.newbyteorder("<").str,
                    "v": self.value(v.item(), path)}
        if isinstance(v, numbers.Integral):
            return int(v)
        if isinstance(v, float):
            return v if math.isfinite(v) else {"t": "float", "v": repr(v)}
        if isinstance(v, np.ndarray):
            return self.array(v, path)
        if isinstance(v, list):
            return [self.value(x, f"{path}[{i}]") for i, x in enumerate(v)]
        if isinstance(v, tuple):
            return {"t": "tuple", "v": [self.value(x, f"{path}[{i}]") for i, x in enumerate(v)]}
        if isinstance(v, dict):
            return {"t": "dict", "v": [[self.value(k, f"{path} key"), self.value(x, f"{path}.{k}")]
                                       for k, x in v.items()]}
        if isinstance(v, np.random.RandomState):
            _, key, pos, has_gauss, cached = v.get_state(legacy=True)
            return {"t": "random_state", "key": self.array(key, path), "pos": int(pos),
                    "has_gauss": int(has_gauss), "cached": float(cached)}
        raise ValueError(f"{path} holds a {type(v).__name__}, which the safe format does not "
                         "store (it holds numbers, strings, arrays, lists, dicts and "
                         "RandomState); save this model with pickle or joblib instead")


# ----------------------------------------------------------------------
# decoding


class _Decoder:
    def __init__(self, arrays):
        self.arrays, self.used = arrays, set()

    def value(self, v, depth=0):
        if depth > 64:
            raise ValueError("the model file's state is nested too deeply")
        if v is None or isinstance(v, (bool, int, float, str)):
            return v
        if isinstance(v, list):
            return [self.value(x, depth + 1) for x in v]
        if not isinstance(v, dict) or not isinstance(v.get("t"), str):
            raise ValueError(f"the model file's state holds an unknown value {str(v)[:80]!r}")
        tag = v["t"]
        if tag == "array":
            i = v.get("i")
            if not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < len(self.arrays):
                raise ValueError(f"the model file refers to array {i!r}, which it does not hold")
            self.used.add(i)
            return self.arrays[i]
        if tag == "tuple":
            return tuple(self.value(x, depth + 1) for x in _list(v, "v"))
        if tag == "dict":
            out = {}
            for pair in _list(v, "v"):
                if not isinstance(pair, list) or len(pair) != 2:
                    raise ValueError("the model file holds a malformed dict entry")
                key = self.value(pair[0], depth + 1)
                if not isinstance(key, (str, int, float, bool, tuple, type(None))):
                    raise ValueError("the model file holds a dict key that is not a plain value")
                out[key] = self.value(pair[1], depth + 1)
            return out
        if tag == "float":
            if v.get("v") not in ("nan", "inf", "-inf"):
                raise ValueError(f"the model file holds a malformed float {v.get('v')!r}")
            return float(v["v"])
        if tag == "scalar":
            dtype = _dtype(v.get("dtype"))
            if dtype.kind == "U":
                raise ValueError("the model file holds a malformed numpy scalar")
            x = self.value(v.get("v"), depth + 1)
            if not isinstance(x, (bool, int, float)):
                raise ValueError("the model file holds a malformed numpy scalar")
            return np.array(x, dtype=dtype)[()]
        if tag == "objects":
            items = [self.value(x, depth + 1) for x in _list(v, "v")]
            shape = _shape(v.get("shape"))
            if math.prod(shape) != len(items):
                raise ValueError("the model file holds an object array of the wrong size")
            out = np.empty(len(items), dtype=object)
            out[:] = items
            return out.reshape(shape)
        if tag == "random_state":
            key = self.value(v.get("key"), depth + 1)
            pos, has_gauss, cached = v.get("pos"), v.get("has_gauss"), v.get("cached")
            if not (isinstance(key, np.ndarray) and key.dtype.kind == "u" and key.shape == (624,)
                    and isinstance(pos, int) and 0 <= pos <= 624 and has_gauss in (0, 1)
                    and isinstance(cached, (int, float))):
                raise ValueError("the model file holds a malformed random state")
            rs = np.random.RandomState()
            rs.set_state(("MT19937", key.astype(np.uint32), pos, has_gauss, float(cached)))
            return rs
        raise ValueError(f"the model file's state holds an unknown tag {tag!r}")


def _list(v, key):
    x = v.get(key)
    if not isinstance(x, list):
        raise ValueError(f"the model file holds a malformed {v.get('t')!r} entry")
    return x


def _dtype(s):
    if not isinstance(s, str) or len(s) > 16:
        raise ValueError(f"the model file names an invalid dtype {s!r}")
    try:
        dtype = np.dtype(s)
    except TypeError:
        raise ValueError(f"the model file names an invalid dtype {s!r}") from None
    if dtype.byteorder == ">" or not (dtype.char in _NUMERIC or dtype.kind == "U") or (
            dtype.kind == "U" and dtype.itemsize == 0):
        raise ValueError(f"the model file names dtype {s!r}; the safe format holds "
                         "little-endian booleans, integers, floats and unicode only")
    return dtype


def _shape(shape):
    if not isinstance(shape, list) or len(shape) > _MAX_NDIM or not all(
            isinstance(d, int) and not isinstance(d, bool) and 0 <= d < 2**48 for d in shape):
        raise ValueError(f"the model file holds an invalid array shape {str(shape)[:80]}")
    return tuple(shape)


# ----------------------------------------------------------------------
# the file


def _padding(n):
    return (-n) % ALIGN


def save(estimator, path):
    """Write ``estimator`` to ``path`` in skbolt's safe format.

    The write is atomic: the file is written beside ``path`` under a
    temporary name, flushed to disk and renamed over ``path``, so a crash
    or a full disk mid-save leaves any previous file at ``path`` intact.

    Parameters
    ----------
    estimator : BoltClassifier or BoltRecommender
        Fitted or not.
    path : str or os.PathLike
        Where to write (conventionally ``*.skbolt``).

    Raises
    ------
    ValueError
        If the estimator is not one of skbolt's, or holds a value the format
        cannot store (for instance a ``random_state`` that is a
        ``numpy.random.Generator``): use pickle or joblib for it.
    OSError
        If the file cannot be written; ``path`` is then as it was.
    """
    name = type(estimator).__name__
    if _estimators().get(name) is not type(estimator):
        raise ValueError(f"save writes skbolt's estimators, got {type(estimator).__name__}")
    encoder = _Encoder()
    tree = encoder.value(estimator.__getstate__(), name)
    entries, offset = [], 0
    for a in encoder.arrays:
        entries.append({"dtype": a.dtype.str, "shape": list(a.shape), "offset": offset,
                        "nbytes": a.nbytes})
        offset += a.nbytes + _padding(a.nbytes)
    from . import __version__

    header = json.dumps({"format": "skbolt-model", "format_version": FORMAT_VERSION,
                         "skbolt_version": __version__, "estimator": name, "state": tree,
                         "arrays": entries, "payload_bytes": offset},
                        allow_nan=False, separators=(",", ":")).encode("utf-8")
    header += b" " * _padding(_FIXED + len(header))
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".skbolt-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            digest = hashlib.sha256()

            def write(b):
                digest.update(b)
                f.write(b)

            write(MAGIC + struct.pack("<Q", len(header)))
            write(header)
            for a in encoder.arrays:
                write(memoryview(a).cast("B") if a.size else b"")
                write(b"\0" * _padding(a.nbytes))
            f.write(digest.digest())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # the rename itself reaches the disk with the directory
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def _read_exact(f, n, what):
    b = f.read(n)
    if len(b) != n:
        raise ValueError(f"the model file is truncated: it ends inside its {what}")
    return b


def _read_header(f, path, size):
    """The parsed header of an open model file, its length and the digest of
    the bytes read so far."""
    head = f.read(_FIXED)
    if head[:len(MAGIC)] != MAGIC:
        raise ValueError(f"{path} is not an skbolt model file (it does not start with "
                         "skbolt's signature); a pickle or joblib file loads with "
                         "joblib.load, from trusted sources only")
    if len(head) < _FIXED:
        raise ValueError("the model file is truncated: it ends inside its signature")
    (header_len,) = struct.unpack("<Q", head[len(MAGIC):])
    if header_len > min(MAX_HEADER, size - _FIXED - _DIGEST):
        raise ValueError(f"the model file is truncated or damaged: it announces a "
                         f"{header_len}-byte header in a {size}-byte file")
    digest = hashlib.sha256(head)
    raw = _read_exact(f, header_len, "header")
    digest.update(raw)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise ValueError(f"the model file's header is damaged: {e}") from None
    if not isinstance(header, dict):
        raise ValueError("the model file's header is damaged: it is not a JSON object")
    return header, header_len, digest


def read_header(path):
    """The header of a model file written by ``save``, without its arrays.

    For inspecting a file (``skbolt info``): the header is parsed but the
    checksum, which covers the arrays, is not verified; ``load`` does that.

    Parameters
    ----------
    path : str or os.PathLike
        A file written by ``save``.

    Returns
    -------
    dict
        ``format_version``, ``skbolt_version``, ``estimator`` and the
        encoded state tree (``state``) and array entries (``arrays``).

    Raises
    ------
    ValueError
        If the file is not an skbolt model file or its header is damaged.
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        return _read_header(f, path, os.path.getsize(path))[0]


def load(path):
    """Read an estimator written by ``save``.

    Nothing in the file is executed: its contents are checked (digest,
    format version, estimator name, every array's dtype, shape and extent,
    the network's shapes against its configuration) before any model is
    built.

    Parameters
    ----------
    path : str or os.PathLike
        A file written by ``save``.

    Returns
    -------
    estimator : BoltClassifier or BoltRecommender
        The estimator as it was saved; it predicts exactly as the original.

    Raises
    ------
    ValueError
        If the file is not an skbolt model, is truncated or was changed after
        it was written, comes from a newer format, or describes an
        inconsistent model; the message says which.
    """
    path = os.fspath(path)
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        header, header_len, digest = _read_header(f, path, size)
        entries = _check_header(header, size - _FIXED - header_len - _DIGEST)
        arrays = []
        position = 0
        for e, dtype, shape in entries:
            gap = e["offset"] - position
            digest.update(_read_exact(f, gap, "arrays"))
            a = np.empty(shape, dtype=dtype)
            view = memoryview(a).cast("B") if a.size else memoryview(bytearray())
            if f.readinto(view) != e["nbytes"]:
                raise ValueError("the model file is truncated: it ends inside its arrays")
            digest.update(view)
            arrays.append(a)
            position = e["offset"] + e["nbytes"]
        digest.update(_read_exact(f, header["payload_bytes"] - position, "arrays"))
        stored = _read_exact(f, _DIGEST, "checksum")
    if stored != digest.digest():
        raise ValueError("the model file's checksum does not match its contents: it was "
                         "changed or damaged after it was written")
    decoder = _Decoder(arrays)
    state = decoder.value(header["state"])
    if len(decoder.used) != len(arrays):
        raise ValueError("the model file holds arrays its state does not use")
    cls = _estimators()[header["estimator"]]
    return _restore(cls, state)


def _check_header(header, payload_room):
    if not isinstance(header, dict) or header.get("format") != "skbolt-model":
        raise ValueError("the model file's header does not describe an skbolt model")
    version = header.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValueError(f"the model file names an invalid format version {version!r}")
    if version > FORMAT_VERSION:
        raise ValueError(f"the model file is in format version {version}, written by a newer "
                         f"skbolt ({header.get('skbolt_version')!r}); this one reads up to "
                         f"version {FORMAT_VERSION}: upgrade skbolt to load it")
    if header.get("estimator") not in _estimators():
        raise ValueError(f"the model file names estimator {header.get('estimator')!r}; "
                         f"skbolt loads {sorted(_estimators())}")
    payload = header.get("payload_bytes")
    if not isinstance(payload, int) or payload != payload_room:
        raise ValueError(f"the model file is truncated or damaged: its header announces "
                         f"{payload!r} bytes of arrays, the file holds {payload_room}")
    raw = header.get("arrays")
    if not isinstance(raw, list):
        raise ValueError("the model file's header lacks its array table")
    entries, end = [], 0
    for i, e in enumerate(raw):
        if not isinstance(e, dict):
            raise ValueError(f"array {i} of the model file has a malformed entry")
        dtype, shape = _dtype(e.get("dtype")), _shape(e.get("shape"))
        offset, nbytes = e.get("offset"), e.get("nbytes")
        if not all(isinstance(x, int) and not isinstance(x, bool) for x in (offset, nbytes)):
            raise ValueError(f"array {i} of the model file has a malformed entry")
        if nbytes != math.prod(shape) * dtype.itemsize:
            raise ValueError(f"array {i} of the model file announces {nbytes} bytes for shape "
                             f"{shape} of {dtype}")
        if offset < end or offset % ALIGN or offset + nbytes > payload:
            raise ValueError(f"array {i} of the model file lies outside its place "
                             f"(offset {offset}, {nbytes} bytes, payload {payload})")
        end = offset + nbytes
        entries.append((e, dtype, shape))
    return entries


def _restore(cls, state):
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise ValueError("the model file's state is not a mapping of attribute names")
    params = set(cls._get_param_names())
    for key in state:
        # only parameters, fitted (trailing _) and private (leading _)
        # attributes: a file cannot shadow a method or a dunder
        if not key.isidentifier() or key.startswith("__") or not (
                key in params or key.endswith("_") or key.startswith("_")) or (
                callable(getattr(cls, key, None))):
            raise ValueError(f"the model file sets attribute {key!r}, which a {cls.__name__} "
                             "does not have")
    # parameters added since format 1 was fixed: a file written before one
    # existed holds the value that behaves as that model did
    state = {**getattr(cls, "_added_params", {}), **state}
    missing = params - set(state)
    if missing:
        raise ValueError(f"the model file lacks the parameters {sorted(missing)}")
    network = state.get("_network_state")
    if network is not None:
        _check_network(network, state)
    estimator = cls.__new__(cls)
    try:
        estimator.__setstate__(state)
    except (TypeError, KeyError, AttributeError, IndexError) as e:
        raise ValueError(f"the model file describes an inconsistent model: {e!r}") from None
    return estimator


def _check_network(network, state):
    """The network's arrays against its configuration, before it is built."""
    bad = "the model file's network state is inconsistent"
    if not isinstance(network, dict) or not isinstance(network.get("config"), dict):
        raise ValueError(f"{bad}: it has no configuration")
    config = network["config"]
    try:
        widths = ([int(config["n_features"])] + [int(h) for h in config["hidden_sizes"]]
                  + [int(config["n_outputs"])])
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"{bad}: its configuration lacks the layer sizes") from None
    if min(widths) < 1:
        raise ValueError(f"{bad}: layer sizes {widths}")
    params = network.get("params")
    if not isinstance(params, list) or len(params) != len(widths) - 1:
        raise ValueError(f"{bad}: {len(widths) - 1} layers configured, parameters for "
                         f"{len(params) if isinstance(params, list) else 'none'}")
    for i, pair in enumerate(params):
        if not (isinstance(pair, tuple) and len(pair) == 2
                and all(isinstance(a, np.ndarray) and a.dtype == np.float32 for a in pair)):
            raise ValueError(f"{bad}: layer {i}'s parameters are not two float32 arrays")
        w, b = pair
        n_in, n_out = widths[i], widths[i + 1]
        if w.ndim != 2 or sorted(w.shape) != sorted((n_in, n_out)) or b.shape not in (
                (n_out,), (n_in,)):
            raise ValueError(f"{bad}: layer {i} is configured {n_in} -> {n_out} but holds "
                             f"weights {w.shape} and bias {b.shape}")
    n_in = state.get("n_features_in_")
    if n_in is not None and n_in != widths[0]:
        raise ValueError(f"{bad}: the estimator reads {n_in} features, its network "
                         f"{widths[0]}")
