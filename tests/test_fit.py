"""autofuse.fit end to end, through the public API."""

from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd
import pytest
from _learners import BAD_SPACE, HANGS, RAISES
from sklearn.metrics import log_loss, roc_auc_score

import autofuse

FAST = ["linear", "naive_bayes", "knn"]


def _table(n=240, seed=0, classes=2):
    """A DataFrame with numeric, categorical, string, boolean and missing values."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({
        "num": rng.normal(size=n),
        "noisy": np.where(rng.random(n) < 0.2, np.nan, rng.normal(size=n)),
        "colour": pd.Categorical(rng.choice(["red", "green", "blue"], n)),
        "city": rng.choice(["Oslo", "Lima", None], n),
        "flag": rng.random(n) < 0.5,
        "id": [f"row-{i}" for i in range(n)],
    })
    signal = X["num"] + (X["colour"] == "red") + 0.5 * X["flag"] + rng.normal(scale=0.5, size=n)
    cuts = np.quantile(signal, np.linspace(0, 1, classes + 1)[1:-1])
    labels = np.array(["no", "yes", "maybe", "later"][:classes])
    return X, labels[np.digitize(signal, cuts)]


def test_binary_dataframe_with_categoricals_strings_and_missing_values():
    X, y = _table()
    model = autofuse.fit(X, y, time_limit=60, n_trials=6, learners=FAST, random_state=0,
                         verbose=0)
    assert model.task_ == "binary" and model.metric_ == "roc_auc"
    assert set(model.classes_) == {"no", "yes"}
    proba = model.predict_proba(X)
    assert proba.shape == (len(X), 2) and np.allclose(proba.sum(axis=1), 1.0)
    assert set(model.predict(X)) <= {"no", "yes"}
    assert model.score(X, y) == pytest.approx(roc_auc_score(y == "yes", proba[:, 1]))
    assert np.isclose(model.weights_.sum(), 1.0)
    board = model.leaderboard()
    assert list(board["model"][:2]) == ["blend", "best single"]
    assert {"learner", "params", "roc_auc", "fit_seconds", "predict_seconds", "weight",
            "status", "reason"} <= set(board.columns)
    trials = board[board["kind"] == "trial"]
    assert len(trials) == 6 and set(trials["learner"]) <= set(FAST)
    done = trials[trials["status"] == "done"]
    assert np.isclose(done["weight"].sum(), 1.0)
    # The blend's CV score is at least the best single model's (greedy starts from it).
    assert board.loc[0, "roc_auc"] >= done["roc_auc"].max() - 1e-12
    summary = model.data_summary().set_index("name")
    assert summary.loc["id", "action"] == "drop" and "identifier" in summary.loc["id", "reason"]
    # The id column may be absent at prediction time: it was dropped.
    assert model.predict(X.drop(columns="id")).shape == (len(X),)


def test_multiclass_numpy_input_uses_log_loss():
    X, y = _table(n=300, classes=3)
    arr = X[["num", "noisy"]].to_numpy()
    model = autofuse.fit(arr, y, n_trials=4, learners=FAST, random_state=0, verbose=0)
    assert model.task_ == "multiclass" and model.metric_ == "log_loss"
    proba = model.predict_proba(arr)
    assert proba.shape == (300, 3)
    assert model.score(arr, y) == pytest.approx(log_loss(y, proba, labels=model.classes_))
    with pytest.raises(ValueError, match=r"shape \(n_rows, 2\)"):
        model.predict(arr[:, :1])


def test_regression_and_a_scorer_metric():
    rng = np.random.default_rng(1)
    X = pd.DataFrame({"a": rng.normal(size=200), "b": rng.choice(["u", "v"], 200)})
    y = 3 * X["a"] + (X["b"] == "u") + rng.normal(scale=0.1, size=200)
    model = autofuse.fit(X, y, n_trials=4, learners=["linear", "knn"], random_state=0,
                         verbose=0)
    assert model.task_ == "regression" and model.metric_ == "rmse"
    pred = model.predict(X)
    assert pred.shape == (200,) and np.sqrt(np.mean((pred - y) ** 2)) < 0.5
    with pytest.raises(AttributeError, match="classification"):
        model.predict_proba(X)
    mae = autofuse.fit(X, y, n_trials=2, learners=["linear"], metric="neg_mean_absolute_error",
                       verbose=0)
    assert mae.metric_ == "neg_mean_absolute_error" and mae.cv_score_ < 0


@pytest.mark.parametrize("make, match", [
    (lambda X, y: (X.iloc[:10], y), "rows but y has"),
    (lambda X, y: (X.iloc[:0], y[:0]), "empty"),
    (lambda X, y: (X, np.where(np.arange(len(y)) == 3, np.nan, 1.0)), "missing or infinite"),
    (lambda X, y: (X, np.where(np.arange(len(y)) == 3, np.inf, 1.0)), "missing or infinite"),
    (lambda X, y: (X, np.array(["a"] * len(y))), "one class"),
    (lambda X, y: (X, np.array([1, "a"] * (len(y) // 2), dtype=object)), "mixes label types"),
])
def test_bad_data_is_refused_before_fitting(make, match):
    X, y = _table(n=60)
    X, y = make(X, y)
    t = time.perf_counter()
    with pytest.raises(ValueError, match=match):
        autofuse.fit(X, y, n_trials=1, verbose=0)
    assert time.perf_counter() - t < 5  # refused up front, not after a search


@pytest.mark.parametrize("kwargs, error, match", [
    ({"metric": "no_such_metric"}, ValueError, "unknown metric"),
    ({"metric": "rmse"}, ValueError, "is for regression"),
    ({"metric": "f1", "task": "multiclass"}, ValueError, "binary"),
    ({"learners": ["linear", "no_such_learner"]}, ValueError, "unknown learner 'no_such_learner'"),
    ({"learners": ["elastic_net"]}, ValueError, "none of the learners"),
    ({"time_limit": 0}, ValueError, "time_limit"),
    ({"time_limit": None, "n_trials": None}, ValueError, "needs a way to end"),
    ({"n_trials": -1}, ValueError, "n_trials"),
    ({"n_jobs": 0}, ValueError, "n_jobs"),
    ({"task": "ranking"}, ValueError, "task must be"),
])
def test_bad_arguments_are_refused(kwargs, error, match):
    X, y = _table(n=60, classes=3 if kwargs.get("task") == "multiclass" else 2)
    with pytest.raises(error, match=match):
        autofuse.fit(X, y, **{"n_trials": 1, "verbose": 0, **kwargs})


def test_a_class_rarer_than_the_folds_is_handled(caplog):
    X, y = _table(n=120, classes=3)
    y[:3] = "rare"
    model = autofuse.fit(X, y, n_trials=2, learners=["linear"], random_state=0, verbose=1)
    assert "rare" in model.classes_ and model.predict_proba(X).shape == (120, 4)
    assert "fewer rows than the 5 folds: 'rare' (3 rows)" in caplog.text


def test_a_learner_that_raises_fails_its_trials_and_the_run_goes_on():
    X, y = _table()
    model = autofuse.fit(X, y, n_trials=5, learners=[RAISES, "linear"], random_state=0,
                         verbose=0)
    board = model.leaderboard().query("kind == 'trial'")
    failed = board[board["learner"] == "raises"]
    assert len(failed) >= 1 and (failed["status"] == "failed").all()
    assert failed["reason"].str.contains("RuntimeError: boom").all()
    assert (board[board["learner"] == "linear"]["status"] == "done").any()
    assert set(model.weights_.index.str.split("#").str[0]) == {"linear"}


def test_a_search_space_that_raises_fails_its_trials_and_the_run_goes_on():
    X, y = _table()
    model = autofuse.fit(X, y, n_trials=4, learners=[BAD_SPACE, "linear"], random_state=0,
                         verbose=0)
    board = model.leaderboard().query("kind == 'trial'")
    bad = board[board["status"] == "failed"]
    assert len(bad) >= 1 and bad["reason"].str.contains("sampling failed.*bad space").all()
    assert (board["status"] == "done").sum() >= 2


def test_only_failures_give_a_clear_error():
    X, y = _table()
    with pytest.raises(RuntimeError, match="no trial finished.*boom"):
        autofuse.fit(X, y, n_trials=2, learners=[RAISES], verbose=0)


def test_time_budget_holds_even_with_a_learner_stuck_in_fit():
    X, y = _table()
    limit = 8.0
    t = time.perf_counter()
    model = autofuse.fit(X, y, time_limit=limit, learners=[HANGS, "linear"], random_state=0,
                         verbose=0)
    wall = time.perf_counter() - t
    assert wall <= 1.05 * limit, f"fit took {wall:.2f} s for a {limit} s budget"
    board = model.leaderboard().query("kind == 'trial'")
    stuck = board[board["learner"] == "hangs"]
    assert len(stuck) >= 1
    assert stuck["reason"].str.contains("half of the search time|time limit").all()
    assert (board[board["learner"] == "linear"]["status"] == "done").any()


def test_resume_from_sqlite_reuses_finished_trials(tmp_path):
    X, y = _table()
    storage = f"sqlite:///{tmp_path / 'run.db'}"
    first = autofuse.fit(X, y, n_trials=4, learners=FAST, storage=storage, random_state=0,
                         verbose=0)
    done_first = first.leaderboard().query("kind == 'trial' and status == 'done'")
    assert (tmp_path / "run.db.library").is_dir()
    second = autofuse.fit(X, y, n_trials=2, learners=FAST, storage=storage, random_state=0,
                          verbose=0)
    board = second.leaderboard().query("kind == 'trial'")
    assert len(board) == 6  # four reused, two new: nothing refitted
    old = board.set_index("trial").loc[done_first["trial"]]
    assert np.allclose(old["fit_seconds"].to_numpy(), done_first["fit_seconds"].to_numpy())
    assert np.allclose(old["roc_auc"].to_numpy(), done_first["roc_auc"].to_numpy())
    assert len(second.study_.get_trials(states=[autofuse_state("COMPLETE")])) >= len(done_first)
    # Other data in the same storage is refused with a clear message.
    with pytest.raises(ValueError, match="different run"):
        autofuse.fit(X.iloc[:200], y[:200], n_trials=1, storage=storage, verbose=0)
    # A trial left running by a call that died is marked failed when the run resumes.
    import optuna

    optuna.load_study(study_name="autofuse", storage=storage).ask()
    # Finished trials alone are enough to fuse again.
    again = autofuse.fit(X, y, n_trials=0, learners=FAST, storage=storage, random_state=0,
                         verbose=0)
    board = again.leaderboard()
    assert len(board) == len(second.leaderboard()) + 1
    assert board.iloc[-1]["status"] == "failed" and "interrupted" in board.iloc[-1]["reason"]


def test_an_interrupt_that_cuts_a_storage_read_short_is_still_recorded(tmp_path, monkeypatch):
    """Ctrl-C (or the command's SIGTERM) in the middle of a read of the SQLite study left
    that read's cursor holding SQLite's lock, and the writes that record the interruption
    then failed with "database is locked": the run ended with a storage error instead of
    KeyboardInterrupt, its running trials unrecorded."""
    import sys

    import optuna
    import sqlalchemy.orm.loading as loading

    X, y = _table()
    storage = f"sqlite:///{tmp_path / 'run.db'}"
    autofuse.fit(X, y, n_trials=3, learners=FAST, storage=storage, random_state=0, verbose=0)
    real, asked = loading.instances, []

    def cut_short(*args, **kwargs):
        rows = real(*args, **kwargs)  # the query ran: its cursor holds the read lock
        frame = sys._getframe(1)
        while frame is not None and frame.f_code.co_name != "_create_new_trial":
            frame = frame.f_back
        if frame is not None:
            asked.append(1)
            if len(asked) == 3:  # two trials are running: n_jobs=2
                raise KeyboardInterrupt
        return rows

    monkeypatch.setattr(loading, "instances", cut_short)
    with pytest.raises(KeyboardInterrupt):
        autofuse.fit(X, y, n_trials=20, learners=FAST, storage=storage, random_state=0,
                     n_jobs=2, verbose=0)
    monkeypatch.setattr(loading, "instances", real)
    study = optuna.load_study(study_name="autofuse", storage=storage)
    states = [t.state.name for t in study.trials]
    assert "RUNNING" not in states[:-1]  # the trial being created when it was cut short
    stopped = [t for t in study.trials if "interrupted" in t.user_attrs.get("reason", "")]
    assert stopped and all(t.state.name == "FAIL" for t in stopped)
    again = autofuse.fit(X, y, n_trials=1, learners=FAST, storage=storage, random_state=0,
                         verbose=0)
    assert (again.leaderboard().query("kind == 'trial'")["status"] == "done").sum() >= 4


def test_an_interrupt_stays_an_interrupt_when_the_storage_refuses_its_records(
        tmp_path, monkeypatch):
    """Should the storage refuse the records of the interrupted trials, the caller still
    gets the interruption (not a storage error), and the run's next call marks those
    trials failed."""
    import optuna
    from optuna.storages import RDBStorage

    X, y = _table()
    storage = f"sqlite:///{tmp_path / 'run.db'}"
    real_tell, real_set = RDBStorage.set_trial_state_values, RDBStorage.set_trial_user_attr
    told, cut = [], []

    def tell(self, trial_id, state, values=None):
        if state == autofuse_state("COMPLETE"):
            told.append(trial_id)
            if len(told) == 3:  # the run is cut short as it records a finished trial
                cut.append(1)
                raise KeyboardInterrupt
        return real_tell(self, trial_id, state, values)

    def refuse(self, *args, **kwargs):
        if cut:
            raise optuna.exceptions.StorageInternalError("database is locked")
        return real_set(self, *args, **kwargs)

    monkeypatch.setattr(RDBStorage, "set_trial_state_values", tell)
    monkeypatch.setattr(RDBStorage, "set_trial_user_attr", refuse)
    with pytest.raises(KeyboardInterrupt):
        autofuse.fit(X, y, n_trials=20, learners=FAST, storage=storage, random_state=0,
                     n_jobs=2, verbose=0)
    monkeypatch.undo()
    left = optuna.load_study(study_name="autofuse", storage=storage).get_trials(
        states=[autofuse_state("RUNNING")])
    assert told[-1] in {t._trial_id for t in left}  # and the one still running, if any
    again = autofuse.fit(X, y, n_trials=1, learners=FAST, storage=storage, random_state=0,
                         verbose=0)
    board = again.leaderboard().query("kind == 'trial'").set_index("trial")
    assert {t.number for t in left} <= set(board.index)
    for t in left:
        assert board.loc[t.number, "status"] == "failed"
        assert "interrupted" in board.loc[t.number, "reason"]


def autofuse_state(name):
    from optuna.trial import TrialState

    return TrialState[name]


def test_save_and_load_round_trip(tmp_path):
    X, y = _table()
    model = autofuse.fit(X, y, n_trials=3, learners=FAST, random_state=0, verbose=0)
    path = tmp_path / "model.af"
    model.save(str(path))
    loaded = autofuse.load(str(path))
    assert np.array_equal(loaded.predict_proba(X), model.predict_proba(X))
    assert loaded.leaderboard().equals(model.leaderboard())
    # Other versions, corruption and keys: tests/test_model_file.py.
    (tmp_path / "junk").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="not an autofuse model"):
        autofuse.load(str(tmp_path / "junk"))


def test_predict_checks_the_columns():
    X, y = _table()
    model = autofuse.fit(X, y, n_trials=2, learners=FAST, random_state=0, verbose=0)
    with pytest.raises(ValueError, match="lacks 1 column.*'colour'"):
        model.predict(X.drop(columns="colour"))
    with pytest.raises(ValueError, match="'num' was numeric at fit time"):
        model.predict(X.assign(num="text"))
    with pytest.warns(UserWarning, match="unseen at fit time, ignored: 'extra'"):
        model.predict(X.assign(extra=1.0))
    unseen = X.assign(city="Tokyo", colour=pd.Categorical(["purple"] * len(X)))
    assert model.predict_proba(unseen).shape == (len(X), 2)


def test_parallel_trials_and_refit_full():
    X, y = _table(n=300)
    model = autofuse.fit(X, y, n_trials=6, learners=FAST, n_jobs=2, refit_full=True,
                         random_state=0, verbose=0)
    board = model.leaderboard().query("kind == 'trial'")
    assert (board["status"] == "done").sum() >= 5
    assert all(len(m.models) == 1 for m in model.members)  # refitted on all rows
    assert model.predict_proba(X).shape == (300, 2)


def test_quiet_run_prints_nothing(capfd):
    X, y = _table()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        autofuse.fit(X, y, n_trials=2, learners=["linear"], verbose=0)
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_portfolio_runs_every_learners_first_configuration_first():
    import optuna

    from autofuse.learners import BUILTIN_LEARNERS
    from autofuse.search import enqueue_portfolio

    study = optuna.create_study()
    specs = {s.name: s for s in BUILTIN_LEARNERS}
    n = enqueue_portfolio(study, specs)
    tags = [t.user_attrs["portfolio"] for t in study.get_trials(deepcopy=False)]
    assert n == len(tags) == sum(len(s.portfolio) for s in BUILTIN_LEARNERS)
    first = tags[:len(specs)]
    assert all(tag.endswith(":0") for tag in first)
    costs = [specs[tag.split(":")[0]].cost for tag in first]
    assert costs == sorted(costs)
    assert enqueue_portfolio(study, specs) == 0  # nothing queued twice


def test_search_keeps_time_to_load_the_likely_members(tmp_path):
    """Fusion loads the members' pickled fold models; forests on many classes run to
    gigabytes, so the search stops earlier by the time the best trials' files take."""
    from autofuse._library import (LIKELY_MEMBERS, LOAD_BYTES_PER_SECOND,
                                   SAVE_BYTES_PER_SECOND, Entry, ModelLibrary)

    library = ModelLibrary(str(tmp_path))
    for trial in range(LIKELY_MEMBERS + 5):
        name = f"trial-{trial}.models.pkl"
        (tmp_path / name).write_bytes(b"x" * (1000 * (trial + 1)))
        library.add(Entry(trial, "x", {}, float(trial), np.zeros((3, 1), np.float32), name))
    assert library.entries[4].models_bytes == 5000
    lowest = sum(1000 * (t + 1) for t in range(LIKELY_MEMBERS))  # loss: low scores best
    assert library.load_seconds(False) == pytest.approx(lowest / LOAD_BYTES_PER_SECOND)
    highest = sum(1000 * (t + 1) for t in range(5, LIKELY_MEMBERS + 5))
    assert library.load_seconds(True) == pytest.approx(highest / LOAD_BYTES_PER_SECOND)
    # The command line saves the model within its budget: writing the members counts too.
    library.saves_model = True
    assert library.load_seconds(False) == pytest.approx(
        lowest / LOAD_BYTES_PER_SECOND + lowest / SAVE_BYTES_PER_SECOND)
