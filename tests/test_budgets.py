"""Memory, disk and time as budgets: the per-trial memory limit, the library's disk budget,
learners that keep failing, and a first trial not charged for the workers' start-up."""

from __future__ import annotations

import logging
import os
import time

import numpy as np
import pytest
from sklearn.datasets import make_classification

import autofuse
from autofuse import _workers
from autofuse._cli import main

from _faults import FLAKY, LEARNERS
from _learners import RAISES


def _data(n=300):
    X, y = make_classification(n, 6, random_state=0)
    return X, y


def test_a_learner_that_keeps_failing_is_disabled_and_the_leaderboard_says_why(caplog):
    X, y = _data()
    with caplog.at_level(logging.WARNING, logger="autofuse"):
        model = autofuse.fit(X, y, n_trials=14, time_limit=None, learners=[RAISES, "linear"],
                             n_jobs=1, random_state=0, verbose=1)
    board = model.leaderboard().query("kind == 'trial'")
    raises = board[board["learner"] == "raises"]
    ran = raises[~raises["reason"].str.startswith("not run")]
    assert len(ran) == 3, ran["reason"].tolist()
    assert ran["reason"].str.contains(
        "learner 'raises' disabled for the rest of the run: 3 of its trials failed and none "
        "finished").sum() == 1
    assert caplog.text.count("learner 'raises' disabled") == 1
    assert (board[board["learner"] == "linear"]["status"] == "done").sum() >= 9


def test_a_learner_that_finished_once_is_never_disabled():
    from autofuse.search import _runner

    assert _runner.MAX_LEARNER_FAILURES == 3  # the rule docs/fit.md states
    X, y = _data()
    model = autofuse.fit(X, y, n_trials=10, time_limit=None, learners=[FLAKY], n_jobs=1,
                         random_state=0, verbose=0)
    board = model.leaderboard().query("kind == 'trial'")
    assert (board["status"] == "done").sum() >= 1
    assert (board["status"] == "failed").sum() > _runner.MAX_LEARNER_FAILURES
    assert not board["reason"].str.contains("disabled").any()


def test_memory_limit_fails_the_trial_from_the_estimator(tmp_path):
    X, y = _data()
    clf = autofuse.AutoFuseClassifier(time_limit=None, n_trials=4, memory_limit=0.5, n_jobs=1,
                                      learners=[LEARNERS["allocates"], "linear"],
                                      random_state=0)
    clf.fit(X, y)
    board = clf.leaderboard().query("kind == 'trial'")
    oom = board[board["learner"] == "allocates"]
    assert len(oom) and oom["reason"].str.contains(r"out of memory \(limit 0.5 GB\)").all()
    assert clf.predict(X).shape == (300,)


@pytest.mark.parametrize("value", [0, -1, 0.01, float("nan"), "2GB", True])
def test_bad_memory_limit_or_max_disk_is_refused_before_any_trial(value):
    X, y = _data()
    for name in ("memory_limit", "max_disk"):
        if name == "max_disk" and value == 0.01:
            continue  # a small disk budget is allowed: the best trial keeps its models
        t = time.perf_counter()
        with pytest.raises(ValueError, match=name):
            autofuse.fit(X, y, time_limit=30, learners=["linear"], **{name: value})
        assert time.perf_counter() - t < 5


def test_the_library_keeps_fold_models_only_within_max_disk(tmp_path):
    X, y = _data()
    storage = f"sqlite:///{tmp_path / 'run.db'}"
    model = autofuse.fit(X, y, n_trials=8, time_limit=None, learners=["linear", "knn"],
                         storage=storage, max_disk=1e-9, n_jobs=1, random_state=0, verbose=0)
    library = tmp_path / "run.db.library"
    kept = [n for n in os.listdir(library) if n.endswith(".models.pkl")]
    predictions = [n for n in os.listdir(library) if n.endswith(".oof.npy")]
    board = model.leaderboard().query("kind == 'trial'")
    done = board[board["status"] == "done"]
    assert len(kept) == 1 and len(predictions) == len(done) == 8
    best = done.iloc[0]["trial"]  # the best trial keeps its models whatever their size
    assert kept == [f"trial-{best}.models.pkl"]
    assert list(model.fusion_.uses) == [best] and model.predict(X).shape == (300,)
    # The run resumes with the dropped trials' predictions and no fold models for them.
    again = autofuse.fit(X, y, n_trials=0, time_limit=None, learners=["linear", "knn"],
                         storage=storage, max_disk=1e-9, n_jobs=1, random_state=0, verbose=0)
    assert list(again.fusion_.uses) == [best]


def test_the_first_trial_is_not_charged_for_starting_fresh_workers():
    _workers.POOL.shutdown()  # the next fit starts its workers from scratch
    X, y = _data()
    model = autofuse.fit(X, y, time_limit=8, learners=["linear"], random_state=0, verbose=0)
    board = model.leaderboard().query("kind == 'trial'")
    assert not board["reason"].str.contains("half of the search time").any(), board["reason"]
    assert (board["status"] == "done").any()


def test_cli_memory_limit_and_max_disk(tmp_path, capsys):
    rng = np.random.default_rng(0)
    import pandas as pd

    frame = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
    frame["y"] = (frame["a"] + rng.normal(size=200) > 0).astype(int)
    frame.to_csv(tmp_path / "t.csv", index=False)
    assert main(["fit", str(tmp_path / "t.csv"), "--target", "y", "--trials", "3",
                 "--learners", "linear", "--memory-limit", "0.1", "--quiet"]) == 2
    assert "memory_limit=0.1 GB is too small" in capsys.readouterr().err
    assert main(["fit", str(tmp_path / "t.csv"), "--target", "y", "--trials", "3",
                 "--learners", "linear", "--memory-limit", "1.5", "--max-disk", "2",
                 "--quiet", "--out", str(tmp_path / "run")]) == 0
    import json

    call = json.loads((tmp_path / "run" / "run.json").read_text())["runs"][-1]
    assert call["memory_limit"] == 1.5 and call["max_disk"] == 2 and call["jobs"] == -1


_CAP_CHECK = """
import numpy as np
from autofuse._workers import memory_cap
held = np.ones(400 * 2**20 // 8)  # the worker already holds 400 MB (a table, thread pools)
with memory_cap(200 * 2**20):
    small = np.ones(50 * 2**20 // 8)  # a trial's own 50 MB fits under a 200 MB limit
    try:
        np.ones(400 * 2**20 // 8)
    except MemoryError:
        print("refused")
big = np.ones(400 * 2**20 // 8)  # the previous limit is back after the trial
print("restored")
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="Linux only")
def test_the_data_limit_counts_from_what_the_worker_already_holds():
    # A worker that served earlier fits, or a machine with many cores (thread pools), holds
    # more than a small limit before the trial starts: every trial then failed "out of
    # memory" when the limit counted from zero.
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _CAP_CHECK], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["refused", "restored"]


def test_soup_learners_keep_their_best_fold_models_past_the_best_trials(tmp_path):
    # Only the `keep` best trials keep fold models, but soup ingredients (small models a
    # long run's best trials crowd out) keep their best KEEP_PER_LEARNER too.
    from autofuse._library import KEEP_PER_LEARNER, Entry, ModelLibrary
    from autofuse._fold_models import ModelFile

    library = ModelLibrary(str(tmp_path), greater_is_better=True, keep=2,
                           keep_learners={"linear"})
    for trial in range(2 * KEEP_PER_LEARNER + 6):
        learner = "linear" if trial % 2 else "knn"
        out = ModelFile(library.models_path(trial))
        out.add({"trial": trial})
        out.close()
        library.add(Entry(trial, learner, {}, float(trial), np.zeros((4, 1), np.float32),
                          os.path.basename(library.models_path(trial)), 0.0, 0.0, 0))
    kept = {t for t, e in library.entries.items() if e.has_models}
    best = sorted(library.entries, reverse=True)[:2]
    linear = sorted((t for t, e in library.entries.items() if e.learner == "linear"),
                    reverse=True)
    assert kept == set(best) | set(linear[:KEEP_PER_LEARNER])
    assert len(linear) > KEEP_PER_LEARNER  # the worst linear trial lost its models
