"""Tables as they come: numbers stored as text (with missing-value markers such as ``?``),
numbers stored as objects, dates, and tables with nothing left to learn from."""

from __future__ import annotations

import io
import json
import time
import warnings

import numpy as np
import pandas as pd
import pytest

import autofuse
from autofuse._data import describe
from autofuse._errors import InputError

FIT = {"n_trials": 2, "cv": 3, "learners": ["linear"], "random_state": 0, "verbose": 0}


def _csv_with_markers(n=90, seed=0):
    """CSV text whose numeric column ``size`` has ``?`` for missing values (pandas reads
    it as text), with a binary target ``label`` that depends on it."""
    rng = np.random.default_rng(seed)
    size = rng.normal(size=n)
    colour = rng.choice(["red", "blue"], n)
    label = np.where(size + rng.normal(scale=0.3, size=n) > 0, "big", "small")
    cells = [("?" if i % 9 == 0 else f" {v:.3f}") for i, v in enumerate(size)]
    lines = ["size,colour,label"] + [f"{s},{c},{lab}" for s, c, lab in zip(cells, colour, label)]
    return "\n".join(lines) + "\n"


def test_a_csv_column_of_numbers_with_question_marks_is_numeric():
    table = pd.read_csv(io.StringIO(_csv_with_markers()))
    assert not pd.api.types.is_numeric_dtype(table["size"])  # as pandas reads it
    X, y = table.drop(columns="label"), table["label"]
    model = autofuse.fit(X, y, **FIT)
    summary = model.data_summary().set_index("name")
    assert summary.loc["size", "kind"] == "numeric" and summary.loc["size", "action"] == "keep"
    assert summary.loc["size", "n_missing"] == 10
    assert "10 '?' read as missing" in summary.loc["size", "reason"]
    assert model.score(X, y) > 0.9  # the numbers were learned from, not their text
    new = pd.DataFrame({"size": ["1.5", "?", "n/a", -2.0], "colour": ["red"] * 4})
    assert list(model.predict(new)[[0, 3]]) == ["big", "small"]
    with pytest.raises(ValueError, match=r"column 'size' was numeric at fit time but holds "
                                         r"'lots' \(row 1\)"):
        model.predict(new.assign(size=["1", "lots", "2", "3"]))


def test_numbers_stored_as_objects_are_read_as_they_were():
    rng = np.random.default_rng(1)
    X = pd.DataFrame({"a": rng.normal(size=80), "count": rng.integers(0, 9, 80),
                      "flag": rng.random(80) < 0.5, "city": rng.choice(["Oslo", "Lima"], 80)})
    y = (X["a"] + X["flag"] > 0.5).astype(int)
    plain = autofuse.fit(X, y, **FIT)
    objects = autofuse.fit(X.astype(object), y, **FIT)
    columns = ["name", "kind", "n_unique", "n_missing", "action"]
    pd.testing.assert_frame_equal(plain.data_summary()[columns],
                                  objects.data_summary()[columns])
    np.testing.assert_allclose(objects.predict_proba(X.astype(object)), plain.predict_proba(X))


def test_which_text_columns_are_numbers():
    n = 60
    X = pd.DataFrame({
        "strings": [" 3.5", "1e3", "-2", "NA", "?", "7 "] * 10,
        "mostly_text": ["a", "b", "3", "c", "d", "e"] * 10,  # a few numbers among text
        "only_markers": ["?", "-", None, "?", "-", "?"] * 10,
        "yes_no": ["true", "false"] * 30,
        "bools": np.array([True, False, None] * 20, dtype=object),
        "years": ["2020", "2021", "2022"] * 20,  # numbers, never dates
    })
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        frame, _, spec = describe(X, np.arange(n) % 2)
    kinds = {c.name: c.kind for c in spec.columns}
    assert kinds == {"strings": "numeric", "mostly_text": "categorical",
                     "only_markers": "categorical", "yes_no": "categorical",
                     "bools": "boolean", "years": "numeric"}
    np.testing.assert_array_equal(frame["strings"][:6], [3.5, 1000.0, -2.0, np.nan, np.nan, 7.0])
    reason = {c.name: c.reason for c in spec.columns}["strings"]
    assert "10 'NA'" in reason and "10 '?'" in reason
    assert frame["years"].dtype == float


def _dated(n=120, seed=2):
    rng = np.random.default_rng(seed)
    when = pd.Timestamp("2021-01-01") + pd.to_timedelta(rng.integers(0, 700, n), unit="D") \
        + pd.to_timedelta(rng.integers(0, 24, n), unit="h")
    X = pd.DataFrame({
        "when": when,
        "when_utc": when.tz_localize("UTC").tz_convert("Europe/Oslo"),
        "when_text": when.strftime("%Y-%m-%d %H:%M").to_numpy(),
        "noise": rng.normal(size=n),
    })
    y = np.where(when > pd.Timestamp("2022-01-01"), "late", "early")
    return X, y


def test_datetime_columns_become_numeric_features():
    X, y = _dated()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        frame, _, spec = describe(X, y)
    info = {c.name: c for c in spec.columns}
    assert info["when"].derived == ("when.year", "when.month", "when.day",
                                    "when.day_of_week", "when.hour", "when.timestamp")
    assert all(info[c].kind == "datetime" and info[c].action == "keep"
               for c in ("when", "when_utc", "when_text"))
    assert info["when_text"].reason.startswith("dates stored as text; made when_text.year")
    # The learners see numbers: the derived features are numeric columns of the frame.
    assert list(frame.columns) == spec.kept and "when" not in frame.columns
    assert set(info["when"].derived) <= set(spec.columns_of("numeric"))
    assert spec.inputs == ["when", "when_utc", "when_text", "noise"]
    stamp = frame["when.timestamp"].to_numpy()
    np.testing.assert_array_equal(stamp, frame["when_text.timestamp"].to_numpy())
    np.testing.assert_array_equal(stamp, frame["when_utc.timestamp"].to_numpy())
    assert stamp[0] == (X["when"][0] - pd.Timestamp("1970-01-01")).total_seconds()
    assert frame["when.year"][0] == X["when"][0].year


def test_a_model_with_dates_predicts_new_rows():
    X, y = _dated()
    model = autofuse.fit(X, y, **FIT)
    summary = model.data_summary().set_index("name")
    assert summary.loc["when", "kind"] == "datetime"
    assert "made when.year, when.month" in summary.loc["when", "reason"]
    assert list(model.feature_names_in_) == ["when", "when_utc", "when_text", "noise"]
    assert model.score(X, y) > 0.9  # the dates carry the signal
    new = X.iloc[:5].copy()
    proba = model.predict_proba(new)
    as_text = new.assign(when=new["when"].astype(str), when_utc=new["when_utc"].astype(str))
    np.testing.assert_allclose(model.predict_proba(as_text), proba)
    with pytest.raises(ValueError, match=r"column 'when_text' held dates at fit time but "
                                         r"holds 'soon' \(row 2\)"):
        model.predict(new.assign(when_text=["2021-01-01", "?", "soon", None, "2021-02-02"]))


def test_a_table_with_no_usable_column_is_refused_before_any_trial():
    X = pd.DataFrame({"id": [f"row-{i}" for i in range(60)], "same": 1.0,
                      "nothing": [None] * 60})
    t = time.perf_counter()
    with pytest.raises(InputError, match=r"X has no usable column \(every column was "
                       r"dropped\): 'id' \(high-cardinality text.*\); 'same' \(constant\); "
                       r"'nothing' \(every value is missing\)"):
        autofuse.fit(X, np.arange(60) % 2, time_limit=30, verbose=0)
    assert time.perf_counter() - t < 5


def test_the_command_line_reads_question_marks_as_missing(tmp_path, monkeypatch, capsys):
    from autofuse._cli import main

    (tmp_path / "train.csv").write_text(_csv_with_markers())
    (tmp_path / "new.csv").write_text("size,colour\n?,red\n2.5,blue\n-3,red\n")
    monkeypatch.chdir(tmp_path)
    assert main(["fit", "train.csv", "--target", "label", "--trials", "2", "--cv", "3",
                 "--learners", "linear", "--seed", "0", "--quiet"]) == 0
    record = json.loads((tmp_path / "train.autofuse" / "run.json").read_text())
    size = next(c for c in record["result"]["columns"] if c["name"] == "size")
    assert size["kind"] == "numeric" and "'?' read as missing" in size["reason"]
    capsys.readouterr()
    assert main(["predict", "train.autofuse", "new.csv"]) == 0
    labels = pd.read_csv(io.StringIO(capsys.readouterr().out))["label"]
    assert list(labels[1:]) == ["big", "small"]
