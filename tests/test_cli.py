"""The ``autofuse`` command, run as a subprocess the way scripts and cron jobs run it: run
folders, exit codes and one-line errors, resume (after ``kill -9`` too), predict's schema
checks, the leaderboard, progress output on and off a terminal."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAST = "linear,naive_bayes,knn"
STAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d autofuse: ")


def autofuse(*args, cwd, env=None, timeout=300):
    """Run ``python -m autofuse ARGS`` from ``cwd`` (outside the checkout, so the installed
    package is the one imported)."""
    environ = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "autofuse", *map(str, args)], cwd=cwd,
                          env=environ, capture_output=True, text=True, timeout=timeout)


def _table(n=300, seed=0):
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    frame = X.iloc[:n, :8].copy()
    frame.columns = [c.replace(" ", "_") for c in frame.columns]
    rng = np.random.default_rng(seed)
    frame["color"] = rng.choice(["red", "green", "blue"], size=n)
    frame["diagnosis"] = np.where(y.iloc[:n].to_numpy() == 1, "benign", "malignant")
    return frame


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One finished run: (its folder, the data file, the fit's completed process)."""
    tmp = tmp_path_factory.mktemp("cli")
    _table().to_csv(tmp / "train.csv", index=False)
    done = autofuse("fit", "train.csv", "--target", "diagnosis", "--trials", 6, "--cv", 3,
                    "--learners", FAST, "--seed", 0, "--time-limit", 120, "--combiner", "caruana",
                    cwd=tmp)
    assert done.returncode == 0, done.stderr
    return tmp / "train.autofuse", tmp / "train.csv", done


def _study(folder):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.load_study(study_name="autofuse",
                             storage=f"sqlite:///{folder / 'study.db'}")


# ----------------------------------------------------------------- fit and its run folder

def test_fit_writes_a_complete_run_folder(run):
    folder, data, done = run
    for name in ("model.pkl", "leaderboard.csv", "study.db", "run.json", "run.log"):
        assert (folder / name).is_file(), name
    record = json.loads((folder / "run.json").read_text())
    assert record["config"]["target"] == "diagnosis" and record["config"]["learners"] == FAST.split(",")
    assert record["config"]["seed"] == 0 and record["config"]["cv"] == 3
    assert record["data"]["rows"] == 300 and record["data"]["columns"] == 10
    schema = {c["name"]: c["dtype"] for c in record["data"]["schema"]}
    assert schema["mean_radius"] == "float64" and schema["color"] in ("object", "str", "string")
    assert len(record["data"]["sha256"]) == 64
    assert {"autofuse", "scikit-learn", "optuna", "python"} <= set(record["versions"])
    (call,) = record["runs"]
    assert call["status"] == "done" and call["seconds"] > 0 and call["finished"] >= call["started"]
    assert call["command"] == "fit" and call["combiner"] == "caruana"
    result = record["result"]
    assert result["task"] == "binary" and result["metric"] == "roc_auc"
    assert result["combiner"] == "caruana" and 0.5 < result["outer_score"] <= 1
    assert result["classes"] == ["benign", "malignant"]
    assert sum(result["trials"].values()) == 6
    assert abs(sum(m["weight"] for m in result["members"]) - 1) < 1e-9
    assert [c["name"] for c in result["columns"]][-1] == "color"
    board = pd.read_csv(folder / "leaderboard.csv")
    assert list(board["model"][:3]) == ["blend", "best single", "fusion:caruana"]
    assert list(board["kind"][:3]) == ["blend", "best single", "combiner"]
    assert (board["kind"] == "trial").sum() == 6 and len(board) == 6 + 3
    assert board["roc_auc"].iloc[0] == pytest.approx(result["cv_score"])
    assert board["outer_score"].iloc[0] == pytest.approx(result["outer_score"])
    assert json.loads(board["params"].iloc[2])["members"] == len(result["members"])
    json.loads(board["params"].iloc[3])  # parameters as JSON
    assert len(_study(folder).trials) == 6
    # stdout: a short summary a script can read; stderr (not a terminal): timestamped lines.
    assert f"run folder: {folder}" in done.stdout and "roc_auc" in done.stdout
    assert f"{result['outer_score']:.6g} outer" in done.stdout
    lines = done.stderr.splitlines()
    assert lines and all(STAMP.match(line) for line in lines), done.stderr
    assert any("6/6 trials" in line for line in lines)
    log = (folder / "run.log").read_text().splitlines()
    assert sum(" trial " in line and " done: roc_auc" in line for line in log) == result["trials"]["done"]
    assert all(re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [A-Z]+ ", line) for line in log
               if not line.startswith((" ", "Traceback")))


def test_model_file_loads_in_python(run):
    import autofuse

    folder, data, _ = run
    model = autofuse.load(str(folder / "model.pkl"))
    frame = pd.read_csv(data)
    assert model.target_name_ == "diagnosis"
    assert set(model.predict(frame.drop(columns="diagnosis"))) <= {"benign", "malignant"}


def test_resume_keeps_finished_trials_and_adds_more(run, tmp_path):
    folder, data, _ = run
    import shutil

    copy = tmp_path / "again"
    shutil.copytree(folder, copy)
    before = {t.number: (t.value, t.datetime_complete) for t in _study(copy).trials
              if t.state.name == "COMPLETE"}
    # Only --trials and --time-limit given: the rest comes from run.json.
    done = autofuse("fit", data, "--out", copy, "--trials", 3, "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # --quiet
    study = _study(copy)
    assert len(study.trials) == 9
    after = {t.number: (t.value, t.datetime_complete) for t in study.trials}
    assert all(after[n] == before[n] for n in before)  # kept as they were, not refitted
    record = json.loads((copy / "run.json").read_text())
    assert [c["status"] for c in record["runs"]] == ["done", "done"]
    assert record["runs"][1]["trials"] == 3 and sum(record["result"]["trials"].values()) == 9
    assert (pd.read_csv(copy / "leaderboard.csv")["kind"] == "trial").sum() == 9


@pytest.mark.parametrize("change, message", [
    (["--metric", "accuracy"], "made without --metric"),
    (["--seed", "1"], "with --seed 0"),
    (["--learners", "linear"], "--learners linear"),
    (["--target", "color"], "--target diagnosis"),
])
def test_resume_refuses_to_change_what_defines_the_run(run, change, message):
    folder, data, _ = run
    done = autofuse("fit", data, "--out", folder, "--trials", 1, *change, cwd=folder.parent)
    assert done.returncode == 2
    assert len(done.stderr.splitlines()) == 1 and message in done.stderr, done.stderr


def test_resume_refuses_other_data(run, tmp_path):
    folder, data, _ = run
    other = _table()
    other.loc[5, "mean_radius"] += 1.0
    other.to_csv(tmp_path / "other.csv", index=False)
    done = autofuse("fit", tmp_path / "other.csv", "--out", folder, "--trials", 1, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.splitlines()) == 1
    assert "not the data this run was fit on: its values differ" in done.stderr
    _table(n=250).to_csv(tmp_path / "fewer.csv", index=False)
    done = autofuse("fit", tmp_path / "fewer.csv", "--out", folder, cwd=tmp_path)
    assert done.returncode == 2 and "it has 250 rows, the run's data had 300" in done.stderr


def test_parquet_data_and_output(run, tmp_path):
    folder, data, _ = run
    frame = pd.read_csv(data)
    frame.to_parquet(tmp_path / "new.parquet")
    done = autofuse("predict", folder, "new.parquet", "--out", "preds.parquet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    preds = pd.read_parquet(tmp_path / "preds.parquet")
    assert list(preds.columns) == ["diagnosis"] and len(preds) == 300
    # The same data as CSV gives the same predictions.
    csv = autofuse("predict", folder, data, cwd=tmp_path)
    assert pd.read_csv(pd.io.common.StringIO(csv.stdout))["diagnosis"].tolist() == preds["diagnosis"].tolist()


# ----------------------------------------------------------------- predict

def test_predict_labels_probabilities_and_kept_columns(run, tmp_path):
    folder, data, _ = run
    frame = pd.read_csv(data).drop(columns="diagnosis")
    frame.insert(0, "id", range(1000, 1000 + len(frame)))
    frame.to_csv(tmp_path / "new.csv", index=False)
    done = autofuse("predict", folder, "new.csv", "--out", "p.csv", "--keep", "id",
                    cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    # The id column is extra: ignored by the model, with a one-line warning.
    assert done.stderr.splitlines()[0] == ("autofuse: warning: new.csv has 1 column(s) unseen "
                                           "at fit time, ignored: 'id'")
    preds = pd.read_csv(tmp_path / "p.csv")
    assert list(preds.columns) == ["id", "diagnosis"] and preds["id"].iloc[0] == 1000
    assert (preds["diagnosis"] == pd.read_csv(data)["diagnosis"]).mean() > 0.85
    proba = autofuse("predict", folder / "model.pkl", "new.csv", "--proba", cwd=tmp_path)
    assert proba.returncode == 0, proba.stderr
    p = pd.read_csv(pd.io.common.StringIO(proba.stdout))
    assert list(p.columns) == ["benign", "malignant"] and len(p) == len(frame)
    assert np.allclose(p.sum(axis=1), 1.0)
    assert (p.idxmax(axis=1) == preds["diagnosis"]).all()


def test_predict_handles_unseen_categories(run, tmp_path):
    folder, data, _ = run
    frame = pd.read_csv(data).drop(columns="diagnosis").head(20)
    frame["color"] = "purple"  # never seen at fit time
    frame.to_csv(tmp_path / "new.csv", index=False)
    done = autofuse("predict", folder, "new.csv", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert len(pd.read_csv(pd.io.common.StringIO(done.stdout))) == 20


def test_predict_schema_errors_name_the_column(run, tmp_path):
    folder, data, _ = run
    frame = pd.read_csv(data)
    frame.drop(columns=["mean_texture", "diagnosis"]).to_csv(tmp_path / "missing.csv", index=False)
    wrong = frame.astype({"mean_area": object})
    wrong.loc[3, "mean_area"] = "large"
    wrong.to_csv(tmp_path / "wrong.csv", index=False)
    for name, message in [("missing.csv", "missing.csv lacks 1 column(s) the model was trained with: "
                                          "'mean_texture'"),
                          ("wrong.csv", "column 'mean_area' was numeric at fit time but "
                                        "holds 'large'")]:
        done = autofuse("predict", folder, name, cwd=tmp_path)
        assert done.returncode == 2, done.stderr
        assert done.stderr.splitlines() == [f"autofuse predict: error: {message} (row 3)"
                                            if name == "wrong.csv" else
                                            f"autofuse predict: error: {message}"]
        assert done.stdout == ""


def test_predict_proba_refused_for_regression(tmp_path):
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    frame = X.iloc[:200].assign(progression=y.iloc[:200])
    frame.to_csv(tmp_path / "d.csv", index=False)
    done = autofuse("fit", "d.csv", "--target", "progression", "--trials", 2, "--cv", 3,
                    "--learners", "linear", "--out", "reg", "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "rmse" in done.stdout
    pred = autofuse("predict", "reg", "d.csv", cwd=tmp_path)
    values = pd.read_csv(pd.io.common.StringIO(pred.stdout))["progression"]
    assert len(values) == 200 and values.between(y.min() - 100, y.max() + 100).all()
    done = autofuse("predict", "reg", "d.csv", "--proba", cwd=tmp_path)
    assert done.returncode == 2 and "--proba is for classification" in done.stderr


# ----------------------------------------------------------------- leaderboard, plugins

def test_leaderboard_views(run):
    folder, _, _ = run
    table = autofuse("leaderboard", folder, "--top", 2, cwd=folder.parent)
    assert table.returncode == 0, table.stderr
    rows = table.stdout.splitlines()
    assert rows[0].split()[:4] == ["model", "learner", "roc_auc", "outer_score"]
    assert len(rows) == 1 + 3 + 2  # the header, blend, best single, fusion:caruana, 2 trials
    assert rows[1].split()[0] == "blend" and rows[2].startswith("best single")
    assert rows[3].split()[:2] == ["fusion:caruana", "caruana"]
    as_json = json.loads(autofuse("leaderboard", folder, "--format", "json",
                                  cwd=folder.parent).stdout)
    assert len(as_json) == 9 and all(isinstance(r["params"], dict) for r in as_json)
    assert [r["kind"] for r in as_json[:4]] == ["blend", "best single", "combiner", "trial"]
    assert as_json[2]["members"] >= 1 and as_json[2]["outer_score"] > 0.5
    as_csv = autofuse("leaderboard", folder, "--format", "csv", cwd=folder.parent).stdout
    board = pd.read_csv(pd.io.common.StringIO(as_csv))
    assert board.shape[0] == 9 and {"outer_score", "members", "bytes",
                                    "predict_seconds_per_1000"} <= set(board.columns)


# ----------------------------------------------------------------- combiners, fuse

def test_fit_passes_combiner_options_to_the_combiner(tmp_path):
    _table(n=120).to_csv(tmp_path / "small.csv", index=False)
    done = autofuse("fit", "small.csv", "--target", "diagnosis", "--trials", 2, "--cv", 3,
                    "--learners", "linear", "--seed", 0, "--combiner", "stacking",
                    "--combiner-option", "level2=gbm", "--combiner-option", "passthrough=false",
                    "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "blend (stacking, " in done.stdout
    record = json.loads((tmp_path / "small.autofuse" / "run.json").read_text())
    assert record["config"]["combiner_options"] == {"level2": "gbm", "passthrough": False}
    assert record["runs"][0]["combiner_options"] == {"level2": "gbm", "passthrough": False}
    board = pd.read_csv(tmp_path / "small.autofuse" / "leaderboard.csv")
    blend = board.iloc[0]
    assert blend["learner"] == "stacking" and json.loads(blend["params"])["level2"] == "gbm"


def test_fuse_fuses_the_run_again_without_searching(run, tmp_path):
    import shutil

    folder, data, _ = run
    copy = tmp_path / "again"
    shutil.copytree(folder, copy)
    trials_before = len(_study(copy).trials)
    model_before = (copy / "model.pkl").read_bytes()

    done = autofuse("fuse", copy, "--combiner", "best", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "blend (best, 1 model): roc_auc" in done.stdout and " outer " in done.stdout
    assert (copy / "model.pkl").read_bytes() != model_before
    board = pd.read_csv(copy / "leaderboard.csv")
    assert board["learner"].iloc[0] == "best" and list(board["model"][:3]) == [
        "blend", "best single", "fusion:best"]
    record = json.loads((copy / "run.json").read_text())
    assert record["result"]["combiner"] == "best" and len(record["result"]["members"]) == 1

    done = autofuse("fuse", copy, "--combiner", "prune", "--combiner-option", "max_members=2",
                    "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    board = pd.read_csv(copy / "leaderboard.csv")
    blend = board.iloc[0]
    assert blend["learner"] == "prune" and blend["members"] <= 2
    assert json.loads(blend["params"])["budget"] == {"max_members": 2}
    assert "front" in json.loads(board.loc[board["model"] == "fusion:prune", "params"].iloc[0])
    record = json.loads((copy / "run.json").read_text())
    assert [c.get("command") for c in record["runs"]] == ["fit", "fuse", "fuse"]
    assert [c["status"] for c in record["runs"]] == ["done"] * 3
    assert record["runs"][2]["combiner"] == "prune"
    assert record["runs"][2]["combiner_options"] == {"max_members": 2}
    assert record["result"]["combiner"] == "prune" and len(record["result"]["members"]) <= 2
    assert len(_study(copy).trials) == trials_before  # no search
    assert "fusing the model library" in (copy / "run.log").read_text()

    pred = autofuse("predict", copy, data, cwd=tmp_path)
    assert pred.returncode == 0, pred.stderr
    labels = pd.read_csv(pd.io.common.StringIO(pred.stdout))["diagnosis"]
    assert len(labels) == 300 and set(labels) <= {"benign", "malignant"}


def test_fuse_refuses_an_unknown_combiner_or_option(run, tmp_path, capsys):
    """In-process (``main``), to spare a subprocess per case; the run's model is kept."""
    import shutil

    from autofuse._cli import main

    copy = tmp_path / "again"
    shutil.copytree(run[0], copy)
    model_before = (copy / "model.pkl").read_bytes()
    cases = [(["--combiner", "magic"], "unknown combiner 'magic'"),
             (["--combiner", "prune", "--combiner-option", "bogus=1"], "bogus"),
             (["--combiner", "prune", "--combiner-option", "max_members=0"], "max_members")]
    for args, message in cases:
        capsys.readouterr()
        assert main(["fuse", str(copy), *args]) == 2, args
        captured = capsys.readouterr()
        lines = captured.err.splitlines()
        assert captured.out == "" and len(lines) == 1, captured.err
        assert lines[0].startswith("autofuse fuse: error: ") and message in lines[0]
    assert (copy / "model.pkl").read_bytes() == model_before
    record = json.loads((copy / "run.json").read_text())
    assert [c["status"] for c in record["runs"]] == ["done"] + ["bad input"] * 3
    assert "unknown combiner 'magic'" in record["runs"][1]["error"]


def test_fuse_needs_a_fitted_run(run, tmp_path):
    folder, _, _ = run
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    record = json.loads((folder / "run.json").read_text())
    del record["result"]
    (unfinished / "run.json").write_text(json.dumps(record))
    done = autofuse("fuse", unfinished, cwd=tmp_path)
    assert done.returncode == 2 and "has no model.pkl yet" in done.stderr, done.stderr
    assert len(done.stderr.splitlines()) == 1


def test_plugins_command(tmp_path):
    done = autofuse("plugins", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (builtins,) = [p for p in json.loads(done.stdout) if p["name"] == "autofuse.builtins"]
    assert "linear" in builtins["learners"] and "caruana" in builtins["combiners"]


# ----------------------------------------------------------------- bad input: exit code 2

@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bad")
    good = _table(n=120)
    good.to_csv(tmp / "good.csv", index=False)
    nan = good.copy()
    nan.loc[7, "diagnosis"] = None
    nan.to_csv(tmp / "nan_target.csv", index=False)
    good.assign(diagnosis="benign").to_csv(tmp / "one_class.csv", index=False)
    (tmp / "empty.csv").write_text("")
    (tmp / "header_only.csv").write_text("a,b,diagnosis\n")
    (tmp / "a_file").write_text("x")
    (tmp / "busy").mkdir()
    (tmp / "busy" / "notes.txt").write_text("mine")
    return tmp


BAD = [
    (["fit", "nope.csv", "--target", "diagnosis"], "no such file: nope.csv"),
    (["fit", "good.csv"], "give --target"),
    (["fit", "good.csv", "--target", "label"], "has no column 'label' (--target)"),
    (["fit", "nan_target.csv", "--target", "diagnosis"], "the target column 'diagnosis' has 1 missing or infinite value"),
    (["fit", "one_class.csv", "--target", "diagnosis"], "one class only ('benign')"),
    (["fit", "empty.csv", "--target", "diagnosis"], "empty.csv is empty"),
    (["fit", "header_only.csv", "--target", "diagnosis"], "has a header but no rows"),
    (["fit", "good.csv", "--target", "diagnosis", "--metric", "brier"], "unknown metric"),
    (["fit", "good.csv", "--target", "diagnosis", "--learners", "linear,gpt"],
     "unknown learner 'gpt'"),
    (["fit", "good.csv", "--target", "diagnosis", "--combiner", "magic"],
     "unknown combiner 'magic'"),
    (["fit", "good.csv", "--target", "diagnosis", "--combiner", "average",
      "--combiner-option", "kk=2"], "'kk'"),
    (["fit", "good.csv", "--target", "diagnosis", "--combiner-option", "k"],
     "argument --combiner-option: expected KEY=VALUE, got 'k'"),
    (["fit", "good.csv", "--target", "diagnosis", "--task", "regression"],
     "needs a numeric target"),
    (["fit", "good.csv", "--target", "diagnosis", "--time-limit", "-5"],
     "argument --time-limit: must be more than 0"),
    (["fit", "good.csv", "--target", "diagnosis", "--jobs", "0"], "n_jobs must be"),
    (["fit", "good.csv", "--target", "diagnosis", "--out", "a_file"], "is a file, not a folder"),
    (["fit", "good.csv", "--target", "diagnosis", "--out", "busy"],
     "holds other files and no run.json"),
    (["fit", "good.csv", "--target", "diagnosis", "--nope"], "unrecognized arguments: --nope"),
    (["fitt", "good.csv"], "invalid choice: 'fitt'"),
    (["predict", "busy", "good.csv"], "is not an autofuse run folder"),
    (["predict", "missing_run", "good.csv"], "no such run folder or model file"),
    (["predict", "a_file", "good.csv"], "is not an autofuse model file"),
    (["leaderboard", "busy"], "is not an autofuse run folder"),
    (["fuse", "busy"], "is not an autofuse run folder"),
    (["fuse", "missing_run", "--combiner", "best"], "no such run folder"),
    (["report", "busy"], "is not an autofuse run folder"),
]


@pytest.mark.parametrize("args, message", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_exits_2_with_one_line(tables, args, message):
    started = time.monotonic()
    done = autofuse(*args, cwd=tables)
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and message in lines[0], done.stderr
    assert lines[0].startswith(f"autofuse {args[0]}: error: ") or lines[0].startswith("autofuse: error")
    assert time.monotonic() - started < 30  # refused before any search
    # A refused new run leaves nothing behind.
    assert not (tables / "good.autofuse").exists()
    assert sorted(os.listdir(tables / "busy")) == ["notes.txt"]


# ----------------------------------------------------------------- failure: exit code 1

def test_run_that_fails_exits_1_and_says_why(tables, tmp_path):
    """Every trial of a learner that always raises fails: the run has nothing to fuse."""
    info = tmp_path / "raisesplug-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: raisesplug\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[autofuse]\nraises = raisesplug\n")
    (tmp_path / "raisesplug.py").write_text(
        "import autofuse\nfrom _learners import RAISES\n\n@autofuse.hookimpl\n"
        "def autofuse_register_learners(register):\n    register(RAISES)\n")
    env = {"AUTOFUSE_DISABLE_PLUGIN_AUTOLOAD": "",
           "PYTHONPATH": os.pathsep.join([str(tmp_path), os.path.join(ROOT, "tests")])}
    done = autofuse("fit", tables / "good.csv", "--target", "diagnosis", "--learners",
                    "raises", "--trials", 3, "--out", "failing", cwd=tmp_path, env=env)
    assert done.returncode == 1, done.stderr
    last = done.stderr.splitlines()[-1]
    assert last.startswith("autofuse fit: failed: RuntimeError: no trial finished")
    assert "boom: this learner always fails" in last and "details in" in last
    record = json.loads((tmp_path / "failing" / "run.json").read_text())
    assert record["runs"][0]["status"] == "failed" and "no trial finished" in record["runs"][0]["error"]
    assert "Traceback" in (tmp_path / "failing" / "run.log").read_text()


# ----------------------------------------------------------------- kill -9, then resume

def _complete(folder):
    """Finished trials in the study file, read with sqlite3 (as another process would)."""
    try:
        with sqlite3.connect(f"file:{folder / 'study.db'}?mode=ro", uri=True, timeout=5) as db:
            return dict(db.execute(
                "SELECT t.number, v.value FROM trials t JOIN trial_values v "
                "ON v.trial_id = t.trial_id WHERE t.state = 'COMPLETE'").fetchall())
    except sqlite3.Error:
        return {}


def _children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # not a zombie
    except OSError:  # gone
        return False


def _assert_gone(pids, what):
    """Every process in ``pids`` ends within 5 s (workers die with their run)."""
    for pid in pids:
        for _ in range(50):
            if not _alive(pid):
                break
            time.sleep(0.1)
        else:
            pytest.fail(f"worker {pid} outlived the {what} run")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="kill -9 test uses /proc")
def test_killed_run_resumes_without_losing_a_finished_trial(tmp_path):
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X.assign(target=y).to_csv(tmp_path / "cancer.csv", index=False)
    process = subprocess.Popen(
        [sys.executable, "-m", "autofuse", "fit", "cancer.csv", "--target", "target",
         "--learners", "linear,knn,random_forest,extra_trees", "--time-limit", "300",
         "--seed", "0", "--quiet"], cwd=tmp_path, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    folder = tmp_path / "cancer.autofuse"
    deadline = time.monotonic() + 120
    while len(_complete(folder)) < 5 and time.monotonic() < deadline:
        time.sleep(0.2)
    workers = _children(process.pid)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished = _complete(folder)
    assert len(finished) >= 5 and workers
    _assert_gone(workers, "killed")
    record = json.loads((folder / "run.json").read_text())
    assert record["runs"][0]["status"] == "running"  # it never came back

    done = autofuse("fit", "cancer.csv", "--out", folder, "--time-limit", 20, "--quiet",
                    cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    study = _study(folder)
    states = {t.number: t for t in study.trials}
    for number, value in finished.items():  # every finished trial kept, as it was
        assert states[number].state.name == "COMPLETE" and states[number].value == value
    interrupted = [t for t in study.trials if "interrupted" in t.user_attrs.get("reason", "")]
    assert len(interrupted) <= len(workers)  # one trial per worker was running
    for t in interrupted:  # failed, and queued again if it had its configuration yet
        assert t.state.name == "FAIL"
        if "learner" in t.params:
            assert any(r.user_attrs.get("retry_of") == t.number for r in study.trials)
    record = json.loads((folder / "run.json").read_text())
    assert [c["status"] for c in record["runs"]] == ["killed", "done"]
    board = pd.read_csv(folder / "leaderboard.csv")
    assert set(finished) <= set(board["trial"])
    pred = autofuse("predict", folder, "cancer.csv", cwd=tmp_path)
    assert pred.returncode == 0 and len(pred.stdout.splitlines()) == len(y) + 1


# ----------------------------------------------------------------- progress on a terminal

@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses a pseudo-terminal")
def test_progress_bar_on_a_terminal(tables, tmp_path):
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 120, 0, 0))
    process = subprocess.Popen(
        [sys.executable, "-m", "autofuse", "fit", str(tables / "good.csv"), "--target",
         "diagnosis", "--learners", "linear", "--trials", "3", "--cv", "3", "--out", "tty"],
        cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    process.wait(timeout=120)
    os.close(master)
    shown = b"".join(chunks).decode(errors="replace")
    assert process.returncode == 0, shown
    assert "autofuse:" in shown and "3/3" in shown and "trial" in shown and "\r" in shown
    assert "best=" in shown and "left=" in shown
    assert not any(STAMP.match(line) for line in shown.splitlines())


# ----------------------------------------------------------------- model files are checked

def test_predict_refuses_a_corrupted_or_older_model_file(run, tmp_path):
    import pickle

    import autofuse as af

    folder, data, _ = run
    good = (folder / "model.pkl").read_bytes()
    bad = bytearray(good)
    bad[len(good) // 2] ^= 0xFF
    (tmp_path / "bad.pkl").write_bytes(bad)
    (tmp_path / "short.pkl").write_bytes(good[:-100])
    model = af.load(str(folder / "model.pkl"))
    with open(tmp_path / "old.pkl", "wb") as f:  # what autofuse wrote before model format 3
        pickle.dump({"format": 2, "versions": model.versions_}, f)
        pickle.dump(model, f)
    for name, message in [("bad.pkl", "bad.pkl is corrupted: its checksum does not match "
                                      "(the file was changed or truncated)"),
                          ("short.pkl", "short.pkl is corrupted: it holds"),
                          ("old.pkl", "old.pkl was written by an older autofuse (model "
                                      "format 2")]:
        done = autofuse("predict", name, data, cwd=tmp_path)
        assert done.returncode == 2, done.stderr
        lines = done.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("autofuse predict: error: "), done.stderr
        assert message in lines[0], lines[0]
        assert done.stdout == ""


def test_predict_with_a_key_loads_only_a_model_signed_with_it(run, tmp_path):
    import autofuse as af

    folder, data, _ = run
    af.load(str(folder / "model.pkl")).save(str(tmp_path / "signed.pkl"), key=b"secret-1")
    (tmp_path / "key").write_bytes(b"secret-1\n")  # a trailing newline is not the key's
    (tmp_path / "other").write_text("secret-2")
    env = {"AUTOFUSE_MODEL_KEY": "secret-1"}
    for args, environ in [(["--key-file", "key"], None), ([], env),
                          (["--key-file", "key"], {"AUTOFUSE_MODEL_KEY": "secret-2"})]:
        done = autofuse("predict", "signed.pkl", data, *args, cwd=tmp_path, env=environ)
        assert done.returncode == 0, done.stderr
        assert len(done.stdout.splitlines()) == 301
    for model, args, environ, message in [
            ("signed.pkl", ["--key-file", "other"], None, "signature does not match"),
            ("signed.pkl", [], {"AUTOFUSE_MODEL_KEY": "secret-2"},
             "signature does not match the key in AUTOFUSE_MODEL_KEY"),
            (folder, [], env, "model.pkl is not signed, and the key in AUTOFUSE_MODEL_KEY "
                              "requires a signed model"),
            ("signed.pkl", ["--key-file", "nope"], None, "--key-file: cannot read nope")]:
        done = autofuse("predict", model, data, *args, cwd=tmp_path, env=environ)
        assert done.returncode == 2, done.stderr
        lines = done.stderr.splitlines()
        assert len(lines) == 1 and message in lines[0], done.stderr
    # Without a key a signed model loads (its checksum is checked).
    done = autofuse("predict", "signed.pkl", data, cwd=tmp_path)
    assert done.returncode == 0, done.stderr


# ----------------------------------------------------------------- SIGTERM, then resume

def test_a_call_takes_sigterm_as_an_interrupt_and_puts_the_handler_back(tmp_path):
    from autofuse._cli._fit import Terminated, begin_call, end_call
    from autofuse._run_folder import RunFolder

    folder = RunFolder(str(tmp_path / "run"))
    folder.create()
    record = {"runs": []}
    before = signal.getsignal(signal.SIGTERM)
    call = begin_call(folder, record, "fuse")
    handler = signal.getsignal(signal.SIGTERM)
    assert handler is not before
    with pytest.raises(Terminated) as caught:
        handler(signal.SIGTERM, None)
    assert isinstance(caught.value, KeyboardInterrupt)  # handled as Ctrl-C is
    end_call(call, time.monotonic(), caught.value)
    assert signal.getsignal(signal.SIGTERM) is before
    assert call["status"] == "terminated"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc")
def test_sigterm_records_the_call_and_the_run_resumes(tmp_path):
    _table().to_csv(tmp_path / "train.csv", index=False)
    process = subprocess.Popen(
        [sys.executable, "-m", "autofuse", "fit", "train.csv", "--target", "diagnosis",
         "--learners", "linear,knn,random_forest", "--cv", "3", "--time-limit", "300",
         "--seed", "0", "--quiet"], cwd=tmp_path, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True)
    folder = tmp_path / "train.autofuse"
    deadline = time.monotonic() + 120
    while len(_complete(folder)) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    record = json.loads((folder / "run.json").read_text())
    assert record["runs"][0]["status"] == "running"
    workers = _children(process.pid)
    finished = _complete(folder)
    assert len(finished) >= 2 and workers
    sent = time.monotonic()
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=30)
    assert time.monotonic() - sent < 10  # promptly
    assert process.returncode == 143, err
    assert err.splitlines()[-1] == "autofuse fit: terminated"
    _assert_gone(workers, "terminated")
    (call,) = json.loads((folder / "run.json").read_text())["runs"]
    assert call["status"] == "terminated" and call["seconds"] > 0 and "finished" in call
    assert not (folder / ".lock").exists() or _lock_free(folder)

    done = autofuse("fit", "train.csv", "--out", folder, "--trials", 2, "--quiet",
                    cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    record = json.loads((folder / "run.json").read_text())
    assert [c["status"] for c in record["runs"]] == ["terminated", "done"]
    states = {t.number: t for t in _study(folder).trials}
    for number, value in finished.items():  # every finished trial kept, as it was
        assert states[number].state.name == "COMPLETE" and states[number].value == value


def _lock_free(folder):
    import fcntl

    with open(folder / ".lock") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        return True


def test_fuse_distills_and_makes_soups_from_the_command_line(run, tmp_path):
    import shutil

    folder, data, _ = run
    copy = tmp_path / "again"
    shutil.copytree(folder, copy)
    done = autofuse("fuse", copy, "--combiner", "distill", "--combiner-option",
                    "student=hist_gradient_boosting", "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    blend = pd.read_csv(copy / "leaderboard.csv").iloc[0]
    params = json.loads(blend["params"])
    assert blend["learner"] == "distill" and blend["members"] == 0
    assert params["student"] == "hist_gradient_boosting" and "teacher" in params
    pred = autofuse("predict", copy, data, cwd=tmp_path)
    assert pred.returncode == 0, pred.stderr
    assert len(pd.read_csv(pd.io.common.StringIO(pred.stdout))) == 300
    # The report puts the student on the score-against-latency plot.
    report = autofuse("report", copy, cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    page = (copy / "report.html").read_text()
    latency = page[page.index('id="latency"'):]
    assert "the combiners (distill)" in latency and "blend (distill)" in latency

    done = autofuse("fuse", copy, "--combiner", "soup", "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr  # the run's linear trials make a soup
    blend = pd.read_csv(copy / "leaderboard.csv").iloc[0]
    assert blend["learner"] == "soup" and json.loads(blend["params"])["family"] == "linear"
