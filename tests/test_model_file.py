"""Model files are checked before they are trusted: ``FusedModel.save`` writes a plain
header (format, versions, length, checksum, signature) before the pickle, and
``autofuse.load`` refuses a corrupted, truncated, older or (with a key) unsigned or
otherwise signed file before anything is unpickled. Also: predictions on a table of no
rows."""

from __future__ import annotations

import copy
import json
import os
import pickle
import random

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine

import autofuse
from autofuse._model_file import KEY_ENV, MAGIC

LEARNERS = ["linear", "knn"]


@pytest.fixture(autouse=True)
def _no_key_from_the_shell(monkeypatch):
    """A key in the developer's environment would sign and check every file here."""
    monkeypatch.delenv(KEY_ENV, raising=False)


def _fit(X, y):
    return autofuse.fit(X, y, n_trials=3, time_limit=None, learners=LEARNERS, random_state=0,
                        verbose=0)


def _binary_table(n=200):
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X = X.iloc[:n, :6].copy()
    X["colour"] = np.random.default_rng(0).choice(["red", "green", "blue"], size=n)
    return X, np.where(y.iloc[:n].to_numpy() == 1, "benign", "malignant")


@pytest.fixture(scope="module")
def binary():
    X, y = _binary_table()
    return _fit(X, y), X


@pytest.fixture(scope="module")
def saved(binary, tmp_path_factory):
    """The binary model saved once, unsigned: (its path, its bytes)."""
    path = tmp_path_factory.mktemp("saved") / "model.af"
    binary[0].save(str(path))
    return path, path.read_bytes()


def _header(data):
    end = data.index(b"\n", len(MAGIC))
    return json.loads(data[len(MAGIC):end]), end + 1


def _write(tmp_path, data, name="model.af"):
    path = tmp_path / name
    path.write_bytes(bytes(data))
    return str(path)


# ----------------------------------------------------------------- the layout, round trip

def test_save_and_load_round_trip(binary, saved):
    model, X = binary
    path, data = saved
    loaded = autofuse.load(str(path))
    assert np.array_equal(loaded.predict(X), model.predict(X))
    assert np.array_equal(loaded.predict_proba(X), model.predict_proba(X))
    assert loaded.leaderboard().equals(model.leaderboard())
    # A magic line, then one line of JSON (no pickle), then the pickled model.
    assert data.startswith(MAGIC)
    header, start = _header(data)
    assert header["format"] == 3 and header["versions"] == model.versions_
    assert header["length"] == len(data) - start
    assert header["checksum"]["algorithm"] == "sha256" and len(header["checksum"]["digest"]) == 64
    assert header["signature"] is None
    assert data[start:start + 1] == b"\x80"  # the payload is a pickle


def test_a_file_written_by_other_versions_loads_with_a_warning(binary, tmp_path):
    model, X = binary
    other = copy.copy(model)
    other.versions_ = {**model.versions_, "scikit-learn": "0.0.1"}
    other.save(str(tmp_path / "old.af"))
    with pytest.warns(UserWarning, match=r"scikit-learn 0\.0\.1 \(now "):
        loaded = autofuse.load(str(tmp_path / "old.af"))
    assert np.array_equal(loaded.predict(X), model.predict(X))


# ----------------------------------------------------------------- corruption

def _flipped(data, seed):
    """``data`` with bytes flipped by ``seed``: in the magic, the header, the payload or
    anywhere (16 bytes at once, as in the issue), spread over the seeds."""
    rng = random.Random(seed)
    _, start = _header(data)
    regions = [(0, len(MAGIC)), (len(MAGIC), start), (start, len(data)), (0, len(data))]
    low, high = regions[0 if seed < 2 else 1 if seed < 7 else 2 if seed < 15 else 3]
    count = 16 if seed >= 15 else 1
    out = bytearray(data)
    positions = rng.sample(range(low, high), count)
    if seed == 14:
        positions = [len(data) - 1]  # the very last byte
    for at in positions:  # the header's bytes stay ASCII, to reach past the JSON parser
        out[at] ^= rng.randrange(1, 128 if low == len(MAGIC) else 256)
    return out, positions


@pytest.mark.parametrize("seed", range(20))
def test_a_corrupted_file_is_refused_before_it_is_unpickled(saved, tmp_path, seed):
    _, data = saved
    corrupted, positions = _flipped(data, seed)
    path = _write(tmp_path, corrupted)
    with pytest.raises(ValueError) as caught:
        autofuse.load(path)
    message = str(caught.value)
    assert message.startswith(path), message
    assert any(what in message for what in (
        "is corrupted", "is not an autofuse model file", "has model format")), message
    if positions[0] >= _header(data)[1] and len(positions) == 1:  # one payload byte
        assert "is corrupted: its checksum does not match (the file was changed or " \
               "truncated)" in message


def test_a_flipped_version_in_the_header_is_caught_by_the_checksum(saved, tmp_path):
    _, data = saved
    header, start = _header(data)
    header["versions"]["numpy"] = "0" + header["versions"]["numpy"]
    line = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    path = _write(tmp_path, MAGIC + line + b"\n" + data[start:])
    with pytest.raises(ValueError, match="is corrupted: its checksum does not match"):
        autofuse.load(path)


@pytest.mark.parametrize("cut", ["empty", "magic", "in header", "after header", "half",
                                 "last byte", "one more"])
def test_a_truncated_or_extended_file_is_refused(saved, tmp_path, cut):
    _, data = saved
    _, start = _header(data)
    data = {"empty": b"", "magic": data[:len(MAGIC)], "in header": data[:start - 20],
            "after header": data[:start], "half": data[:len(data) // 2],
            "last byte": data[:-1], "one more": data + b"\0"}[cut]
    path = _write(tmp_path, data)
    expected = {"empty": "is not an autofuse model file", "magic": "header has no end",
                "in header": "header has no end"}.get(
        cut, "bytes of model where its header says")
    with pytest.raises(ValueError, match=expected):
        autofuse.load(path)


def test_not_a_model_file(tmp_path):
    with pytest.raises(ValueError, match="is not an autofuse model file"):
        autofuse.load(_write(tmp_path, b"not a model"))
    with pytest.raises(ValueError, match="is not an autofuse model file"):
        autofuse.load(_write(tmp_path, pickle.dumps([1, 2, 3])))


# ----------------------------------------------------------------- older files

class _Marks:
    """Unpickling it makes a directory: proof that code ran."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return os.mkdir, (self.path,)


def test_an_older_model_file_is_refused_without_unpickling_it(binary, tmp_path):
    model, _ = binary
    marker = str(tmp_path / "code-ran")
    path = str(tmp_path / "old.af")
    with open(path, "wb") as f:  # what save wrote before format 3
        pickle.dump({"format": 2, "versions": model.versions_}, f)
        pickle.dump([model, _Marks(marker)], f)
    with pytest.raises(ValueError, match=r"was written by an older autofuse \(model format 2, "
                       r"autofuse .*\): a bare pickle.*Refit the model"):
        autofuse.load(path)
    assert not os.path.exists(marker)
    # A header that is itself more than data is not read at all.
    with open(path, "wb") as f:
        pickle.dump({"format": 2, "versions": _Marks(marker)}, f)
    with pytest.raises(ValueError, match="is not an autofuse model file"):
        autofuse.load(path)
    assert not os.path.exists(marker)


def test_a_newer_format_is_named(binary, tmp_path):
    from autofuse import _model_file

    _model_file.write(str(tmp_path / "new.af"), pickle.dumps(None),
                      {"format": 99, "versions": binary[0].versions_})
    with pytest.raises(ValueError, match=r"has model format 99 \(written by a newer autofuse\); "
                       "this autofuse reads format 3"):
        autofuse.load(str(tmp_path / "new.af"))


# ----------------------------------------------------------------- signing

def test_a_signed_file_loads_only_with_its_key(binary, saved, tmp_path):
    model, X = binary
    path = str(tmp_path / "signed.af")
    model.save(path, key="key A")
    data = open(path, "rb").read()
    assert b"key A" not in data
    header, start = _header(data)
    assert header["signature"]["algorithm"] == "hmac-sha256"
    assert len(header["signature"]["digest"]) == 64
    for key in ("key A", b"key A"):  # str or bytes, the same key
        assert np.array_equal(autofuse.load(path, key=key).predict(X), model.predict(X))
    autofuse.load(path)  # without a key: the checksum alone is checked
    with pytest.raises(ValueError, match="signature does not match the key given: it was "
                       "signed with another key"):
        autofuse.load(path, key="key B")
    unsigned = str(saved[0])
    with pytest.raises(ValueError, match="is not signed, and the key given requires a signed "
                       "model"):
        autofuse.load(unsigned, key="key A")
    # Corrupted and signed: said to be corrupted.
    corrupted = bytearray(data)
    corrupted[start + 100] ^= 0xFF
    with pytest.raises(ValueError, match="is corrupted: its checksum does not match"):
        autofuse.load(_write(tmp_path, corrupted, "bad.af"), key="key A")


def test_the_checksum_does_not_stop_tampering_the_signature_does(binary, tmp_path):
    """Whoever can change the file can recompute its checksum, not its signature."""
    from autofuse import _model_file

    model, _ = binary
    path = str(tmp_path / "signed.af")
    model.save(path, key="key A")
    data = open(path, "rb").read()
    header, start = _header(data)
    fields = {k: v for k, v in header.items() if k not in ("checksum", "signature", "length")}
    fields["versions"] = {**fields["versions"], "scikit-learn": "0.0.1"}
    _model_file.write(path, data[start:], fields)  # the tamperer's rewrite, unsigned
    with pytest.warns(UserWarning, match="0.0.1"):
        autofuse.load(path)  # a valid checksum: loads
    with pytest.raises(ValueError, match="is not signed"):
        autofuse.load(path, key="key A")
    header = {**_header(open(path, "rb").read())[0], "signature": header["signature"]}
    line = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    _write(tmp_path, MAGIC + line + b"\n" + data[start:], "signed.af")  # old signature kept
    with pytest.raises(ValueError, match="signature does not match the key given"):
        autofuse.load(path, key="key A")


def test_the_key_comes_from_the_environment(binary, saved, tmp_path, monkeypatch):
    model, _ = binary
    path = str(tmp_path / "signed.af")
    monkeypatch.setenv(KEY_ENV, "from the environment")
    model.save(path)
    assert _header(open(path, "rb").read())[0]["signature"] is not None
    autofuse.load(path)
    with pytest.raises(ValueError, match=f"is not signed, and the key in {KEY_ENV} requires"):
        autofuse.load(str(saved[0]))
    with pytest.raises(ValueError, match="signature does not match the key given"):
        autofuse.load(path, key="another")  # an explicit key wins over the environment
    monkeypatch.setenv(KEY_ENV, "another")
    with pytest.raises(ValueError, match=f"signature does not match the key in {KEY_ENV}"):
        autofuse.load(path)
    monkeypatch.setenv(KEY_ENV, "")
    with pytest.raises(ValueError, match=f"the key in {KEY_ENV} is empty"):
        autofuse.load(path)
    monkeypatch.delenv(KEY_ENV)
    autofuse.load(path)  # no key: checksum only
    with pytest.raises(TypeError, match="str or bytes, not int"):
        model.save(path, key=12345)


# ----------------------------------------------------------------- no rows

@pytest.fixture(scope="module")
def multiclass():
    X, y = load_wine(return_X_y=True, as_frame=True)
    return _fit(X, y.to_numpy()), X


@pytest.fixture(scope="module")
def regression():
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    return _fit(X.iloc[:200], y.iloc[:200]), X


def test_a_table_of_no_rows_has_predictions_of_no_rows(binary, multiclass, regression):
    for fixture, n_classes in ((binary, 2), (multiclass, 3)):
        model, X = fixture
        for empty in (X.iloc[:0], pd.DataFrame(columns=X.columns)):  # typed, or as read
            labels = model.predict(empty)
            assert labels.shape == (0,) and labels.dtype == model.classes_.dtype
            assert model.predict_proba(empty).shape == (0, n_classes)
            assert model.predict_best_single(empty).shape == (0, n_classes)
        with pytest.raises(ValueError, match="X has no rows"):
            model.score(X.iloc[:0], [])
    model, X = regression
    values = model.predict(X.iloc[:0])
    assert values.shape == (0,) and values.dtype == np.float64
    assert model.predict_best_single(X.iloc[:0]).shape == (0,)
    # Still checked against the schema.
    with pytest.raises(ValueError, match="lacks 1 column"):
        model.predict(X.iloc[:0, 1:])
