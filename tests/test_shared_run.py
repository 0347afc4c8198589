"""A run shared by many workers through one study in PostgreSQL and one artifact store.

The tests that need a server start a throwaway PostgreSQL cluster (``tests/_postgres.py``)
and skip, saying how to install it, where PostgreSQL is absent.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState

import autofuse
from autofuse._artifacts import FolderStore, get_file, put_file
from autofuse._shared_run import RUN_ATTR
from autofuse.testing import example_data

pytest_plugins = ["_postgres"]

#: Heartbeats every second in the workers these tests start: a dead worker's trial is
#: found stale after 4 s.
FAST_BEATS = {"AUTOFUSE_HEARTBEAT_SECONDS": "1"}


def _table(n_rows: int = 300) -> tuple[pd.DataFrame, pd.Series]:
    X, y = example_data("binary", n_rows=n_rows)
    return X, pd.Series(y, name="target")


def _cli(*args: str, env: dict | None = None, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "autofuse", *args],
                            env={**os.environ, **FAST_BEATS, **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def _study(url: str, name: str = "s") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=url)


# ----------------------------------------------------------------- without a server

def test_the_folder_store_never_shows_half_a_file(tmp_path):
    store = FolderStore(str(tmp_path))

    class Broken(io.RawIOBase):
        def __init__(self):
            self.sent = 0

        def readable(self):
            return True

        def readinto(self, b):
            if self.sent:
                raise OSError("connection lost")
            self.sent = len(b)
            b[:] = b"x" * len(b)
            return len(b)

    with pytest.raises(OSError, match="connection lost"):
        store.write("a.models", io.BufferedReader(Broken()))
    assert os.listdir(tmp_path) == []  # neither the file nor its temporary copy

    source = tmp_path / "src.bin"
    source.write_bytes(os.urandom(3_000_000))
    size, sha = put_file(store, "b.models", str(source))
    assert size == 3_000_000 and (tmp_path / "b.models").read_bytes() == source.read_bytes()
    get_file(store, "b.models", str(tmp_path / "copy"), sha)
    assert (tmp_path / "copy").read_bytes() == source.read_bytes()
    with pytest.raises(ValueError, match="corrupted"):
        get_file(store, "b.models", str(tmp_path / "bad"), "0" * 64)
    assert not (tmp_path / "bad").exists()
    with pytest.raises(ValueError, match="invalid artifact id"):
        store.write("../escape", io.BytesIO(b""))


def test_an_artifact_store_that_cannot_be_opened_says_what_to_do(tmp_path):
    import importlib.util

    from autofuse._artifacts import open_store

    with pytest.raises(ValueError, match="is not a folder on this machine.*--artifacts"):
        open_store(str(tmp_path / "not-mounted"))
    assert isinstance(open_store(str(tmp_path / "new"), create=True), FolderStore)
    with pytest.raises(ValueError, match="unknown artifact store 'ftp://host/x'"):
        open_store("ftp://host/x")
    with pytest.raises(ValueError, match="must be a folder path, an s3:// URL or an Optuna"):
        open_store(42)
    store = FolderStore(str(tmp_path))
    assert open_store(store) is store  # any object with Optuna's artifact-store methods
    if importlib.util.find_spec("boto3") is None:
        with pytest.raises(ValueError, match=r"needs boto3: pip install 'autofuse\[s3\]'"):
            open_store("s3://bucket/runs")


def test_a_database_without_its_driver_or_server_is_refused_before_any_trial(tmp_path,
                                                                           monkeypatch):
    monkeypatch.chdir(tmp_path)
    X, y = _table()
    with pytest.raises(ValueError, match=r"could not be opened: ImportError.*pip install "
                                         r"'autofuse\[postgres\]'"):
        autofuse.fit(X, y, n_trials=1, storage="postgresql+pg8000://u@127.0.0.1:1/x",
                     verbose=0)
    import importlib.util

    error = "OperationalError" if importlib.util.find_spec("psycopg") else "ImportError"
    with pytest.raises(ValueError, match=r"'postgresql://u:\*\*\*@127.0.0.1:1/x' could not "
                                         rf"be opened: {error}"):
        autofuse.fit(X, y, n_trials=1, storage="postgresql://u:secret@127.0.0.1:1/x",
                     verbose=0)
    with pytest.raises(ValueError, match="could not be opened"):
        autofuse.worker("postgresql://u@127.0.0.1:1/x", "s", wait=0, verbose=0)


def test_artifacts_without_a_database_server_are_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    X, y = _table()
    with pytest.raises(ValueError, match="artifacts= is the store of a run shared"):
        autofuse.fit(X, y, n_trials=1, artifacts=str(tmp_path), verbose=0)
    with pytest.raises(ValueError, match="artifacts= is the store of a run shared"):
        autofuse.fit(X, y, n_trials=1, storage=f"sqlite:///{tmp_path}/run.db",
                     artifacts=str(tmp_path), verbose=0)


# ----------------------------------------------------------------- with a server

def test_a_shared_run_fuses_like_one_process_and_shows_in_the_dashboard(
        postgres_url, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the starter's local copy of the library goes here
    X, y = _table()
    artifacts = tmp_path / "artifacts"
    model = autofuse.fit(X, y, storage=postgres_url, study_name="s", n_trials=6,
                         time_limit=None, learners=["linear", "naive_bayes", "knn"],
                         combiner="caruana", artifacts=str(artifacts), n_jobs=1,
                         random_state=0, verbose=0)
    study = _study(postgres_url)
    # optuna-dashboard names the objective after the metric; learner and reason are there
    assert study.metric_names == ["roc_auc"]
    run = study.user_attrs[RUN_ATTR]
    assert run["artifacts"] == str(artifacts) and run["table"]["target"] == "target"
    done = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert len(done) >= 3
    for t in study.trials:
        assert t.user_attrs["learner"] in ("linear", "naive_bayes", "knn")
        assert t.user_attrs["worker"].endswith(f":{os.getpid()}")
        if t.state == TrialState.COMPLETE:
            files = t.user_attrs["artifacts"]
            assert (artifacts / files["oof"]).is_file() and (artifacts / files["models"]).is_file()
    # one context file, two files per finished trial, nothing else
    assert len(os.listdir(artifacts)) == 1 + 2 * len(done)

    # fusing the study again, from the artifact store alone, gives the same model
    again = autofuse.fuse(postgres_url, "s", combiner="caruana", verbose=0)
    pd.testing.assert_series_equal(again.weights_, model.weights_)
    np.testing.assert_allclose(again.predict_proba(X), model.predict_proba(X), atol=1e-12)

    # the command line: the trials as they stand, and a fused run folder
    from autofuse._cli import main

    assert main(["leaderboard", "--storage", postgres_url, "--study", "s"]) == 0
    shown = capsys.readouterr().out
    assert "worker" in shown and f":{os.getpid()}" in shown
    assert shown.count("done") == len(done)
    out = tmp_path / "fused"
    assert main(["fuse", "--storage", postgres_url, "--study", "s", "--out", str(out),
                 "--combiner", "caruana", "--quiet"]) == 0
    capsys.readouterr()
    cli = autofuse.load(str(out / "model.pkl"))
    np.testing.assert_allclose(cli.predict_proba(X), model.predict_proba(X), atol=1e-12)
    assert main(["leaderboard", str(out)]) == 0
    assert "blend" in capsys.readouterr().out
    # that folder fuses again without the database: the trials' models not copied yet come
    # from the store
    for copied in (out / "library").glob("trial-*.models.pkl"):
        copied.unlink()  # so every member's models must come from the store
    assert main(["fuse", str(out), "--combiner", "average", "--combiner-option", "k=2",
                 "--quiet"]) == 0
    averaged = autofuse.load(str(out / "model.pkl"))
    assert averaged.combiner_ == "average" and len(averaged.members) == 2
    assert {f"trial-{m.trial}.models.pkl" for m in averaged.members} <= {
        p.name for p in (out / "library").glob("trial-*.models.pkl")}
    assert averaged.predict_proba(X).shape == (len(X), 2)
    page = tmp_path / "shared.html"
    assert main(["report", "--storage", postgres_url, "--study", "s", "--out", str(page)]) == 0
    assert page.read_text().lstrip().lower().startswith("<!doctype html")


def test_a_worker_with_another_table_or_version_is_refused(postgres_url, tmp_path, capsys,
                                                            monkeypatch):
    from autofuse._cli import main

    monkeypatch.chdir(tmp_path)
    X, y = _table()
    autofuse.fit(X, y, storage=postgres_url, study_name="s", n_trials=2, time_limit=None,
                 learners=["naive_bayes"], combiner="best", artifacts=str(tmp_path / "a"),
                 n_jobs=1, verbose=0)
    study = _study(postgres_url)
    before = len(study.trials)

    # the run's starter resuming with other learners than its workers fit
    with pytest.raises(ValueError, match=r"searches the learners \['naive_bayes'\]; a call "
                                         "that resumes it must search the same"):
        autofuse.fit(X, y, storage=postgres_url, study_name="s", n_trials=1,
                     time_limit=None, learners=["linear"], artifacts=str(tmp_path / "a"),
                     n_jobs=1, verbose=0)
    assert len(_study(postgres_url).trials) == before  # nothing queued

    # another table: one value changed
    other = pd.concat([X, y], axis=1)
    other.iloc[0, 0] = other.iloc[1, 0]
    other.to_csv(tmp_path / "other.csv", index=False)
    code = main(["worker", "--storage", postgres_url, "--study", "s", "--data",
                 str(tmp_path / "other.csv"), "--wait", "0", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "is not the table this run was started on" in err
    with pytest.raises(ValueError, match="is not the table this run was started on"):
        autofuse.worker(postgres_url, "s", X=X.iloc[1:], y=y.iloc[1:], wait=0, verbose=0)

    # another autofuse version, and a plugin this worker lacks
    run = dict(study.user_attrs[RUN_ATTR])
    run["versions"] = {**run["versions"], "autofuse": "0.0.1"}
    study.set_user_attr(RUN_ATTR, run)
    code = main(["worker", "--storage", postgres_url, "--study", "s", "--wait", "0"])
    err = capsys.readouterr().err
    assert code == 2 and "autofuse 0.0.1 (here: " in err and "cannot join the run" in err
    run["versions"] = {**run["versions"], "autofuse": autofuse.__version__,
                       "autofuse-gbm-extra": "1.2"}
    run["plugins"] = ["autofuse-gbm-extra"]
    study.set_user_attr(RUN_ATTR, run)
    with pytest.raises(ValueError, match=r"autofuse-gbm-extra 1.2 \(here: not installed\)"):
        autofuse.worker(postgres_url, "s", wait=0, verbose=0)

    # no such study, and a study that is not a shared run
    with pytest.raises(ValueError, match="no study 'nope'"):
        autofuse.worker(postgres_url, "nope", wait=0, verbose=0)
    optuna.create_study(storage=postgres_url, study_name="plain")
    with pytest.raises(ValueError, match="is not a shared autofuse run"):
        autofuse.worker(postgres_url, "plain", wait=0, verbose=0)
    assert len(_study(postgres_url).trials) == before  # no refused worker ran a trial


def _running_trial_of(url: str, pid: int, n_folds: int) -> optuna.trial.FrozenTrial | None:
    """A trial worker ``pid`` is fitting (sampled and sent to its process, fewer than
    ``n_folds - 1`` folds reported, so it has not begun writing its artifacts)."""
    for t in _study(url).get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if (t.user_attrs.get("worker", "").endswith(f":{pid}") and "params" in t.user_attrs
                and len(t.intermediate_values) < n_folds - 1):
            return t
    return None


def _read(path) -> tuple[pd.DataFrame, pd.Series]:
    """The table as ``autofuse fit`` reads it."""
    from autofuse._tables import read_table

    table = read_table(str(path))
    return table.drop(columns=["target"]), table["target"]


def test_three_workers_share_a_run_and_a_killed_one_loses_nothing(postgres_url, tmp_path,
                                                                   monkeypatch):
    monkeypatch.chdir(tmp_path)
    X, y = _table(n_rows=569)
    data = tmp_path / "train.csv"
    pd.concat([X, y], axis=1).to_csv(data, index=False)
    artifacts, run_dir = tmp_path / "artifacts", tmp_path / "run"
    n_trials = 14
    starter = _cli("fit", str(data), "--target", "target", "--storage", postgres_url,
                   "--study", "s", "--artifacts", str(artifacts), "--trials", str(n_trials),
                   "--jobs", "1", "--time-limit", "400", "--combiner", "caruana",
                   "--learners", "random_forest,extra_trees", "--seed", "0",
                   "--out", str(run_dir), "--quiet")
    workers = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if RUN_ATTR in _study(postgres_url).user_attrs:
                    break
            except KeyError:
                pass
            assert starter.poll() is None, starter.communicate()
            time.sleep(0.2)
        workers = [_cli("worker", "--storage", postgres_url, "--study", "s", "--quiet")
                   for _ in range(3)]
        victim = workers[0]

        # kill -9 the first worker in the middle of one of its trials
        killed = None
        while killed is None and time.monotonic() < deadline:
            t = _running_trial_of(postgres_url, victim.pid, n_folds=5)
            if t is not None:
                victim.send_signal(signal.SIGSTOP)
                if _running_trial_of(postgres_url, victim.pid, n_folds=5) is not None:
                    victim.send_signal(signal.SIGKILL)
                    killed = t.number
                else:
                    victim.send_signal(signal.SIGCONT)
            assert victim.poll() is None or killed is not None, victim.communicate()
            time.sleep(0.05)
        assert killed is not None, "the first worker never ran a trial"
        victim.wait(timeout=30)

        # SIGTERM (a scheduler stopping a job) stops the second worker as Ctrl-C would:
        # its trial fails "interrupted" and goes back to the queue, and it exits 143
        stopped, second = None, workers[1]
        while stopped is None and time.monotonic() < deadline and second.poll() is None:
            t = _running_trial_of(postgres_url, second.pid, n_folds=5)
            if t is not None:
                second.send_signal(signal.SIGTERM)
                stopped = t.number
            time.sleep(0.05)
        second.communicate(timeout=60)
        assert stopped is not None, "the second worker never ran a trial"
        assert second.returncode == 143

        # resuming the run in another process while the workers run fails none of their
        # live trials (it fuses what finished so far, and leaves the run's budget be)
        X_, y_ = _read(data)
        while not [t for t in _study(postgres_url).trials if t.state == TrialState.COMPLETE]:
            time.sleep(0.2)
        early = autofuse.fit(X_, y_, n_trials=0, storage=postgres_url, study_name="s",
                             learners=["random_forest", "extra_trees"], combiner="caruana",
                             random_state=0, verbose=0)
        assert early.leaderboard()["status"].eq("done").any()

        out, err = starter.communicate(timeout=300)
        assert starter.returncode == 0, err
        w_out, w_err = workers[2].communicate(timeout=120)
        assert workers[2].returncode == 0, w_err
        assert "trials done" in w_out
    finally:
        for p in [starter, *workers]:
            if p.poll() is None:
                p.kill()
                p.wait()

    study = _study(postgres_url)
    trials = study.get_trials(deepcopy=False)
    by_number = {t.number: t for t in trials}
    # the killed trial failed with its reason, and was run again
    dead = by_number[killed]
    assert dead.state == TrialState.FAIL and dead.user_attrs["stale"] is True
    assert "sent no heartbeat" in dead.user_attrs["reason"]
    assert dead.user_attrs["worker"].endswith(f":{victim.pid}")
    retries = [t for t in trials if t.user_attrs.get("retry_of") == killed]
    assert len(retries) == 1 and retries[0].state in (TrialState.COMPLETE, TrialState.PRUNED)
    assert retries[0].params == dead.params
    # nothing lost, nothing counted twice: the run started its trials, the dead one's retry
    # in its place, and none is left running
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    assert not [t for t in trials if t.user_attrs.get("reason", "").startswith("interrupted")]
    uncounted = {int(k.split(":")[1]) for k in study.user_attrs if k.startswith("uncounted:")}
    assert killed in uncounted
    started = [t for t in trials if t.state != TrialState.WAITING and t.number not in uncounted]
    assert len(started) == n_trials
    # the SIGTERMed worker's trial, queued again and run
    assert "interrupted; queued again" in by_number[stopped].user_attrs["reason"]
    assert stopped in uncounted
    assert [t.state for t in trials if t.user_attrs.get("retry_of") == stopped] in (
        [TrialState.COMPLETE], [TrialState.PRUNED])
    assert len({t.user_attrs["worker"] for t in trials if "worker" in t.user_attrs}) >= 3
    done = sorted(t.number for t in trials if t.state == TrialState.COMPLETE)
    files = sorted(os.listdir(artifacts))
    assert not [f for f in files if ".tmp-" in f]
    expected = {by_number[n].user_attrs["artifacts"][k] for n in done for k in ("models", "oof")}
    assert set(files) == expected | {study.user_attrs[RUN_ATTR]["context"]["id"]}

    # the starter fused every finished trial, whichever worker ran it ...
    model = autofuse.load(str(run_dir / "model.pkl"))
    board = model.leaderboard()
    trial_rows = board[board["kind"] == "trial"]
    assert sorted(trial_rows.loc[trial_rows["status"] == "done", "trial"].astype(int)) == done
    # ... into the model one process fuses from the same finished trials: the study copied
    # into SQLite and the trials' files into its library, then fit(n_trials=0)
    copy = tmp_path / "copy.db"
    optuna.copy_study(from_study_name="s", from_storage=postgres_url,
                      to_storage=f"sqlite:///{copy}", to_study_name="s")
    library = tmp_path / "copy.db.s.library"  # a SQLite study's library, for study "s"
    library.mkdir()
    for n in done:
        files = by_number[n].user_attrs["artifacts"]
        shutil.copy(artifacts / files["oof"], library / f"trial-{n}.oof.npy")
        shutil.copy(artifacts / files["models"], library / f"trial-{n}.models.pkl")
    single = autofuse.fit(X_, y_, n_trials=0, storage=f"sqlite:///{copy}", study_name="s",
                          combiner="caruana", random_state=0, verbose=0)
    pd.testing.assert_series_equal(single.weights_, model.weights_)
    np.testing.assert_allclose(single.predict_proba(X_), model.predict_proba(X_), atol=1e-12)


def test_any_optuna_artifact_store_can_hold_a_shared_run(postgres_url, tmp_path, monkeypatch):
    from optuna.artifacts import FileSystemArtifactStore

    monkeypatch.chdir(tmp_path)
    X, y = _table()
    (tmp_path / "store").mkdir()
    store = FileSystemArtifactStore(str(tmp_path / "store"))  # Optuna's own, as an object
    model = autofuse.fit(X, y, storage=postgres_url, study_name="objects", n_trials=3,
                         time_limit=None, learners=["naive_bayes", "linear"],
                         combiner="caruana", artifacts=store, n_jobs=1, verbose=0)
    assert _study(postgres_url, "objects").user_attrs[RUN_ATTR]["artifacts"] is None
    # the study cannot say where an object is: every other process is given it
    with pytest.raises(ValueError, match="give it to this process too"):
        autofuse.fuse(postgres_url, "objects", verbose=0)
    again = autofuse.fuse(postgres_url, "objects", combiner="caruana", artifacts=store,
                          verbose=0)
    np.testing.assert_allclose(again.predict_proba(X), model.predict_proba(X), atol=1e-12)
