"""describe(): task inference, column kinds, and clear errors before any fitting."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from autofuse._data import describe


def _frame(n=60, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "age": rng.normal(40, 10, n),
        "city": rng.choice(["paris", "lyon", "nice"], n),
        "member": rng.random(n) < 0.5,
        "user_id": [f"u{i:05d}" for i in range(n)],
        "empty": [np.nan] * n,
        "const": 1.0,
        "tier": pd.Categorical(rng.choice(["a", "b"], n)),
    })


def test_column_kinds_and_actions():
    X = _frame()
    X.loc[3, "age"] = np.inf
    X.loc[5, "city"] = None
    frame, target, spec = describe(X, ["yes", "no"] * 30)
    kinds = {c.name: (c.kind, c.action) for c in spec.columns}
    assert kinds["age"] == ("numeric", "keep")
    assert kinds["city"] == ("categorical", "keep")
    assert kinds["member"] == ("boolean", "keep")
    assert kinds["tier"] == ("categorical", "keep")
    assert kinds["user_id"] == ("text", "drop")
    assert kinds["empty"][1] == "drop" and kinds["const"][1] == "drop"
    reasons = {c.name: c.reason for c in spec.columns}
    assert "high-cardinality" in reasons["user_id"] and "60 distinct" in reasons["user_id"]
    assert list(frame.columns) == ["age", "city", "member", "tier"]
    assert np.isnan(frame.loc[3, "age"])  # infinity is treated as missing
    assert spec.columns_of("categorical") == ["city", "tier"]
    assert spec.task == "binary" and spec.classes.tolist() == ["no", "yes"]
    assert target.tolist()[:2] == [1, 0]


@pytest.mark.parametrize(
    "y,task",
    [
        (np.arange(60) % 2, "binary"),
        (np.arange(60) % 4, "multiclass"),
        (np.repeat(["a", "b", "c"], 20), "multiclass"),
        (np.linspace(0, 1, 60), "regression"),
        (np.arange(60), "regression"),  # 60 distinct integers: a count, not classes
        (np.arange(60) % 2 == 0, "binary"),
    ],
)
def test_task_inference(y, task):
    assert describe(_frame(), y)[2].task == task


def test_task_override():
    y = np.arange(60) % 4
    assert describe(_frame(), y, task="regression")[2].task == "regression"
    assert describe(_frame(), np.arange(60) % 2, task="classification")[2].task == "binary"
    assert describe(np.ones((60, 2)) * np.arange(60)[:, None], y)[2].kept == ["x0", "x1"]


@pytest.mark.parametrize(
    "X,y,kwargs,message",
    [
        (np.ones((5, 2)), [0, 1, 0, 1], {}, "X has 5 rows but y has 4"),
        (np.ones(5), [0, 1, 0, 1, 0], {}, "X must be 2-D"),
        (np.ones((0, 3)), [], {}, "X is empty"),
        (np.ones((4, 0)), [0, 1, 0, 1], {}, "X is empty"),
        (np.ones((4, 2)), [0.5, np.nan, 1.0, 2.0], {}, "1 missing or infinite value(s), first at row 1"),
        (np.ones((4, 2)), [0.5, 1.0, np.inf, 2.0], {}, "first at row 2"),
        (np.ones((4, 2)), ["a", None, "b", "a"], {}, "first at row 1"),
        (np.ones((6, 2)), ["a"] * 6, {}, "one class only ('a')"),
        (np.ones((6, 2)), ["a", "b", "c"] * 2, {"task": "binary"}, "holds 3 classes"),
        (np.ones((6, 2)), np.array([1, "a"] * 3, dtype=object), {}, "mixes label types (int, str)"),
        (np.ones((6, 2)), ["a", "b"] * 3, {"task": "regression"}, "needs a numeric target"),
        (np.ones((6, 2)), [0, 1] * 3, {"task": "ranking"}, "task must be one of"),
        (np.ones((6, 2)), np.ones((6, 2)), {}, "y must be 1-D"),
        (pd.DataFrame([[1, 2]] * 4, columns=["a", "a"]), [0, 1] * 2, {}, "'a' more than once"),
    ],
)
def test_bad_input_is_named(X, y, kwargs, message):
    with pytest.raises(ValueError) as err:
        describe(X, y, **kwargs)
    assert message in str(err.value)


def test_rare_classes_are_kept():
    _, target, spec = describe(np.arange(24).reshape(12, 2), ["a"] * 10 + ["b"] * 2)
    assert spec.task == "binary" and target.sum() == 2
