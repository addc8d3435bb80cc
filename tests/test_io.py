"""skbolt.io: the model file that executes nothing."""
import hashlib
import json
import os
import pickle
import struct

import numpy as np
import pytest
import scipy.sparse as sp

import skbolt
from skbolt import BoltClassifier, BoltRecommender
from skbolt import io as skio
from skbolt.datasets import make_interactions


@pytest.fixture(scope="module")
def classifier():
    rng = np.random.RandomState(0)
    X = sp.random(400, 60, density=0.1, format="csr", random_state=rng, dtype=np.float32)
    y = np.array(["ant", "bee", "cat", "dog", "eel"])[rng.randint(0, 5, 400)]
    # a sampled output layer, so the file holds hash tables too
    model = BoltClassifier(max_iter=2, hidden_layer_sizes=(32,), output_sparsity=0.6,
                           random_state=np.random.RandomState(3)).fit(X, y)
    return model, X


@pytest.fixture(scope="module")
def recommender():
    X = make_interactions(300, 120, random_state=0).X
    return BoltRecommender(max_iter=3, hidden_layer_sizes=(32,), random_state=0).fit(X), X


@pytest.fixture()
def saved(classifier, tmp_path):
    path = tmp_path / "model.skbolt"
    classifier[0].save(path)
    return path


def _rewrite(path, edit_header):
    """Write the file again with its header changed by ``edit_header`` and a
    valid checksum, as a forger would."""
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[8:16])
    header = json.loads(raw[16:16 + n])
    edit_header(header)
    body = json.dumps(header).encode()
    body += b" " * ((-(16 + len(body))) % skio.ALIGN)
    out = raw[:8] + struct.pack("<Q", len(body)) + body + raw[16 + n:-32]
    path.write_bytes(out + hashlib.sha256(out).digest())


def test_round_trip_predicts_identically(classifier, saved):
    model, X = classifier
    back = skbolt.load(saved)
    assert type(back) is BoltClassifier
    assert back.get_params().keys() == model.get_params().keys()
    np.testing.assert_array_equal(back.classes_, model.classes_)
    np.testing.assert_array_equal(back.predict_proba(X), model.predict_proba(X))
    np.testing.assert_array_equal(back.predict(X), model.predict(X))
    assert back.hidden_layer_sizes_ == model.hidden_layer_sizes_  # a tuple stays a tuple
    assert back.loss_curve_ == model.loss_curve_
    # the random state continues where the saved one stood
    assert back.random_state.randint(2**31) == pickle.loads(
        pickle.dumps(model.random_state)).randint(2**31)
    # the sampled network's tables came back: sparse top-k agrees too
    assert model._network.sparse_output
    np.testing.assert_array_equal(back.predict_topk(X, 3)[0], model.predict_topk(X, 3)[0])


def test_recommender_round_trip(recommender, tmp_path):
    model, X = recommender
    model.save(tmp_path / "rec.skbolt")
    back = skbolt.load(tmp_path / "rec.skbolt")
    for a, b in zip(back.recommend(X[:50], n=15), model.recommend(X[:50], n=15)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(back.similar_items([0, 5])[0], model.similar_items([0, 5])[0])


def test_saving_is_deterministic_and_loaded_model_trains_on(classifier, saved, tmp_path):
    # the loaded model saves to the same bytes: nothing was lost or reordered
    skbolt.load(saved).save(tmp_path / "again.skbolt")
    assert (tmp_path / "again.skbolt").read_bytes() == saved.read_bytes()
    model, X = classifier
    back = skbolt.load(saved)
    twin = pickle.loads(pickle.dumps(model))
    y = model.predict(X)
    back.partial_fit(X, y)
    twin.partial_fit(X, y)
    # training goes on from the saved epoch exactly as from a pickled copy
    assert back._epochs_done == model._epochs_done + 1
    np.testing.assert_array_equal(back.predict_proba(X), twin.predict_proba(X))


def test_unfitted_estimator_round_trips(tmp_path):
    BoltRecommender(n_recommendations=7, input_fraction=0.6).save(tmp_path / "u.skbolt")
    back = skbolt.load(tmp_path / "u.skbolt")
    assert back.get_params() == BoltRecommender(n_recommendations=7,
                                                input_fraction=0.6).get_params()
    assert not hasattr(back, "_network")


def test_every_truncation_is_refused(saved, tmp_path):
    raw = saved.read_bytes()
    cut = tmp_path / "cut.skbolt"
    lengths = sorted(set(np.linspace(0, len(raw) - 1, 60).astype(int)) | {15, 16, len(raw) - 1})
    for n in lengths:
        cut.write_bytes(raw[:n])
        with pytest.raises(ValueError, match="truncated|not an skbolt|damaged|checksum"):
            skbolt.load(cut)


def test_every_edited_byte_is_refused(saved, tmp_path):
    raw = bytearray(saved.read_bytes())
    edited = tmp_path / "edited.skbolt"
    positions = np.random.RandomState(0).choice(len(raw), 80, replace=False)
    for p in positions:
        copy = bytearray(raw)
        copy[p] ^= 0x5A
        edited.write_bytes(bytes(copy))
        with pytest.raises(ValueError):
            skbolt.load(edited)
    edited.write_bytes(bytes(raw) + b"\0")
    with pytest.raises(ValueError, match="damaged"):
        skbolt.load(edited)


def test_foreign_files_are_refused(classifier, tmp_path):
    foreign = tmp_path / "foreign"
    for content in (b"", b"SKBOLT", pickle.dumps(classifier[0]),
                    np.random.RandomState(1).bytes(5000)):
        foreign.write_bytes(content)
        with pytest.raises(ValueError, match="not an skbolt|truncated"):
            skbolt.load(foreign)


def test_read_header_describes_the_file_without_loading_it(saved, recommender, tmp_path):
    header = skio.read_header(saved)
    assert header["format_version"] == 1 == skio.FORMAT_VERSION
    assert header["estimator"] == "BoltClassifier"
    assert header["skbolt_version"] == skbolt.__version__
    assert {"state", "arrays"} <= set(header)
    # str paths too, and the recommender names itself
    recommender[0].save(tmp_path / "rec.skbolt")
    assert skio.read_header(str(tmp_path / "rec.skbolt"))["estimator"] == "BoltRecommender"
    # the arrays are not read: a damaged body still shows its header
    raw = bytearray(saved.read_bytes())
    raw[-40] ^= 0xFF
    damaged = tmp_path / "damaged.skbolt"
    damaged.write_bytes(bytes(raw))
    assert skio.read_header(damaged)["estimator"] == "BoltClassifier"
    with pytest.raises(ValueError):
        skbolt.load(damaged)


def test_read_header_refuses_other_files(classifier, tmp_path):
    other = tmp_path / "data.txt"
    for content in (b"3 5 4\n0 0:1\n", pickle.dumps(classifier[0]), b""):
        other.write_bytes(content)
        with pytest.raises(ValueError, match=f"{other} is not an skbolt model file"):
            skio.read_header(other)
    other.write_bytes(skio.MAGIC + struct.pack("<Q", 10**9) + b"{}")
    with pytest.raises(ValueError, match="truncated or damaged"):
        skio.read_header(other)


def test_newer_format_names_the_upgrade(saved):
    _rewrite(saved, lambda h: h.update(format_version=skio.FORMAT_VERSION + 1))
    with pytest.raises(ValueError, match="newer skbolt.*upgrade"):
        skbolt.load(saved)


@pytest.mark.parametrize("forgery, message", [
    (lambda h: h.update(estimator="os.system"), "names estimator"),
    (lambda h: h["arrays"][0].update(dtype="|O"), "dtype"),
    (lambda h: h["arrays"][0].update(dtype=">f4"), "little-endian"),
    (lambda h: h["arrays"][0].update(shape=[10**9]), "announces"),
    (lambda h: h["arrays"][1].update(offset=0), "outside"),
    (lambda h: h.update(payload_bytes=h["payload_bytes"] + 64), "announces"),
    (lambda h: h["state"]["v"].append(["predict", 1]), "sets attribute 'predict'"),
    (lambda h: h["state"]["v"].append(["__class__", 1]), "sets attribute"),
    (lambda h: h["state"]["v"].append(["x", {"t": "pickle", "v": "cos\nsystem"}]),
     "unknown tag"),
])
def test_forged_headers_are_refused(saved, forgery, message):
    _rewrite(saved, forgery)
    with pytest.raises(ValueError, match=message):
        skbolt.load(saved)


def _entry(tree, key):
    """The [key, value] pair of a saved dict."""
    return next(pair for pair in tree["v"] if pair[0] == key)


def test_forged_network_is_refused_before_it_is_built(saved):
    def wider(h):
        config = _entry(_entry(h["state"], "_network_state")[1], "config")[1]
        _entry(config, "n_outputs")[1] = 10**7  # a network that would take gigabytes

    _rewrite(saved, wider)
    with pytest.raises(ValueError, match="network state is inconsistent"):
        skbolt.load(saved)


def test_forged_parameter_values_reach_the_estimators_checks(saved, classifier):
    _rewrite(saved, lambda h: _entry(h["state"], "n_features_in_").__setitem__(1, 61))
    with pytest.raises(ValueError, match="reads 61 features"):
        skbolt.load(saved)


def test_failed_write_leaves_previous_file(classifier, saved, monkeypatch):
    before = saved.read_bytes()

    def full_disk(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space"):
        BoltRecommender().save(saved)
    monkeypatch.undo()
    assert saved.read_bytes() == before
    assert sorted(p.name for p in saved.parent.iterdir()) == [saved.name]  # no temporary left
    assert isinstance(skbolt.load(saved), BoltClassifier)


def test_values_the_format_cannot_hold_are_refused_at_save(tmp_path):
    with pytest.raises(ValueError, match="Generator.*pickle or joblib"):
        BoltClassifier(random_state=np.random.default_rng(0)).save(tmp_path / "g.skbolt")
    assert not list(tmp_path.iterdir())
    with pytest.raises(ValueError, match="skbolt's estimators"):
        skio.save(object(), tmp_path / "o.skbolt")


def test_object_labels_and_numpy_scalars_survive(tmp_path):
    X = sp.random(60, 8, density=0.5, format="csr", random_state=0)
    y = np.array(["one", "two", "three"], dtype=object)[np.arange(60) % 3]
    model = BoltClassifier(max_iter=1, hidden_layer_sizes=(8,), random_state=0).fit(X, y)
    model.extra_ = {"score": np.float64(0.25), "nan": float("nan"), (1, 2): [np.int32(3)]}
    model.save(tmp_path / "o.skbolt")
    back = skbolt.load(tmp_path / "o.skbolt")
    assert back.classes_.dtype == object and list(back.classes_) == list(model.classes_)
    assert back.extra_["score"] == 0.25 and type(back.extra_["score"]) is np.float64
    assert np.isnan(back.extra_["nan"]) and type(back.extra_[(1, 2)][0]) is np.int32
    np.testing.assert_array_equal(back.predict(X), model.predict(X))


def test_recommender_round_trip_keeps_the_input_scaling(tmp_path):
    """The measured scaling comes back and is applied to fold-in rows; a
    file written before the parameter existed reads rows raw, as then."""
    X = make_interactions(300, 120, random_state=0).X
    X.data = 1 + np.floor(20 * np.random.RandomState(0).pareto(1.2, X.nnz))
    model = BoltRecommender(input_scaling="log1p", random_state=0, n_jobs=1).fit(X)
    path = tmp_path / "rec.skbolt"
    model.save(path)
    back = skbolt.load(path)
    assert back.input_scaling == back.input_scaling_ == "log1p"
    np.testing.assert_array_equal(back.recommend(X[:50])[1], model.recommend(X[:50])[1])

    def drop_scaling(header):
        pairs = header["state"]["v"]
        header["state"]["v"] = [p for p in pairs if not p[0].startswith("input_scaling")]

    _rewrite(path, drop_scaling)
    old = skbolt.load(path)
    assert old.input_scaling == "raw" and not hasattr(old, "input_scaling_")
    raw = BoltRecommender(input_scaling="raw", random_state=0, n_jobs=1)
    raw.__setstate__({**model.__getstate__(), "input_scaling_": "raw"})
    np.testing.assert_array_equal(old.recommend(X[:50])[1], raw.recommend(X[:50])[1])
