"""Plugins: the hooks, the registry's checks, guarded entry-point loading, the allow-list and
kill switch, and plugins' learners, combiners and metrics in real fits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.metrics import brier_score_loss

import autofuse
from autofuse import plugins
from autofuse.learners import LearnerSpec

import _plugins

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def data():
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return X.iloc[:300, :8], y.iloc[:300].to_numpy()


@pytest.fixture
def registered():
    """Register plugins for one test; unregister them afterwards."""
    names = []

    def add(plugin):
        names.append(plugins.register(plugin))
        return names[-1]

    yield add
    for name in set(names) & {i.name for i in plugins.list_plugins()}:
        plugins.unregister(name)


def _fit(X, y, **kw):
    kw = {"n_trials": 4, "time_limit": 120, "cv": 3, "random_state": 0, "verbose": 0, **kw}
    return autofuse.fit(X, y, **kw)


# ----------------------------------------------------------------- the built-ins

def test_builtins_register_through_the_hooks():
    info = {i.name: i for i in plugins.list_plugins()}["autofuse.builtins"]
    assert info.source == "builtin" and info.loaded and not info.errors
    assert "hist_gradient_boosting" in info.learners and "linear" in info.learners
    assert info.combiners == ["best", "average", "caruana", "stacking", "prune", "auto",
                              "distill", "soup"]
    assert {"roc_auc", "log_loss", "rmse"} <= set(info.metrics)
    assert set(plugins.learners()) == set(info.learners)


def test_builtin_metric_spec_agrees_with_sklearn():
    spec = plugins.metrics()["log_loss"]
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(3), size=50)
    y = rng.integers(0, 3, 50)
    from sklearn.metrics import log_loss

    assert spec.score(y, p) == pytest.approx(log_loss(y, p, labels=[0, 1, 2]), rel=1e-9)
    assert spec.tasks == {"binary", "multiclass"} and not spec.greater_is_better


def test_builtin_plugin_cannot_be_unregistered():
    with pytest.raises(ValueError, match="built-in"):
        plugins.unregister("autofuse.builtins")


# ----------------------------------------------------------------- programmatic plugins

def test_registered_learner_is_searched_with_no_code_change(data, registered):
    X, y = data
    name = registered(_plugins.LearnerPlugin)
    assert plugins.learners()["plugin_linear"] is _plugins.PLUGIN_LINEAR
    info = {i.name: i for i in plugins.list_plugins()}[name]
    assert info.learners == ["plugin_linear"] and info.source == "registered"
    model = _fit(X, y, learners=["plugin_linear", "naive_bayes"])
    board = model.leaderboard()
    assert (board.loc[board["learner"] == "plugin_linear", "status"] == "done").any()


def test_unregistering_removes_the_learner(registered):
    name = registered(_plugins.LearnerPlugin)
    plugins.unregister(name)
    assert "plugin_linear" not in plugins.learners()
    with pytest.raises(ValueError, match="unknown learner 'plugin_linear'"):
        autofuse.fit(np.arange(40.0).reshape(20, 2), np.arange(20) % 2, learners=["plugin_linear"])


def test_duplicate_name_is_refused_naming_both_plugins(data, registered):
    X, y = data
    with pytest.warns(plugins.PluginWarning) as record:
        name = registered(_plugins.DuplicatePlugin)
        learners = plugins.learners()
    message = " ".join(str(w.message) for w in record)
    assert "'linear'" in message and name in message and "autofuse.builtins" in message
    assert learners["linear"].build is not _plugins._ridge_build  # the built-in kept
    assert "plugin_linear" in learners  # its other learner is used
    info = {i.name: i for i in plugins.list_plugins()}[name]
    assert info.learners == ["plugin_linear"] and "refused" in info.errors[0]
    model = _fit(X, y, learners=["linear", "plugin_linear"])
    assert model.predict(X).shape == (len(X),)


def test_hook_that_raises_is_reported_and_skipped(data, registered):
    X, y = data
    with pytest.warns(plugins.PluginWarning, match="hook exploded"):
        name = registered(_plugins.RaisingHookPlugin)
        learners = plugins.learners()
    assert "plugin_linear" not in learners  # nothing from a failed hook call is used
    assert "RuntimeError" in {i.name: i for i in plugins.list_plugins()}[name].errors[0]
    assert _fit(X, y, learners=["linear"]).predict(X).shape == (len(X),)


def test_register_checks_the_type(registered):
    with pytest.warns(plugins.PluginWarning, match="takes a autofuse.learners.LearnerSpec"):
        registered(_plugins.WrongTypePlugin)
        plugins.learners()


def test_misspelt_hook_is_refused():
    with pytest.raises(ValueError, match="unknown hook.*autofuse_register_learner\\b"):
        plugins.register(_plugins.MisspeltHookPlugin)
    assert "MisspeltHookPlugin" not in str(plugins.list_plugins())


def test_plugin_learner_that_raises_fails_its_trials_only(data, registered):
    X, y = data
    registered(_plugins.FailingLearnerPlugin)
    model = _fit(X, y, learners=["raises", "linear"])
    board = model.leaderboard()
    failed = board[board["learner"] == "raises"]
    assert (failed["status"] == "failed").all() and len(failed)
    assert failed["reason"].str.contains("boom").all()
    assert model.weights_.index.str.startswith("linear").all()


# ----------------------------------------------------------------- combiners and metrics

def test_plugin_combiner_fuses_the_run(data, registered):
    X, y = data
    registered(_plugins.CombinerPlugin)
    model = _fit(X, y, learners=["linear", "knn", "naive_bayes"], combiner="top_two")
    row = model.leaderboard().iloc[0]
    assert row["learner"] == "top_two" and row["reason"] == ""
    assert len(model.weights_) == 2 and np.allclose(model.weights_, 0.5)
    top = model.leaderboard().query("kind == 'trial'").iloc[:2]
    assert set(model.weights_.index) == set(top["model"])


def test_failing_combiner_falls_back_to_caruana(data, registered):
    X, y = data
    registered(_plugins.CombinerPlugin)
    model = _fit(X, y, learners=["linear", "knn"], combiner="broken")
    row = model.leaderboard().iloc[0]
    assert row["learner"] == "caruana"
    assert "combiner 'broken' failed" in row["reason"] and "non-negative" in row["reason"]
    assert np.all(model.weights_ > 0)


def test_unknown_combiner_is_refused_before_fitting():
    with pytest.raises(ValueError, match="unknown combiner .nope.; available: auto, average, best, caruana"):
        autofuse.fit(np.arange(40.0).reshape(20, 2), np.arange(20) % 2, combiner="nope")


def test_plugin_metric_judges_the_run(data, registered):
    X, y = data
    registered(_plugins.MetricPlugin)
    model = _fit(X[:200], y[:200], learners=["linear", "naive_bayes"], metric="brier")
    board = model.leaderboard()
    assert model.metric_ == "brier" and "brier" in board.columns
    done = board[(board["status"] == "done") & (board["kind"] == "trial")]
    assert (done["brier"] > 0).all()  # reported as the function returns it, not negated
    assert done["brier"].is_monotonic_increasing  # lower is better: best first
    expected = brier_score_loss(y[200:], model.predict_proba(X[200:])[:, 1])
    assert model.score(X[200:], y[200:]) == pytest.approx(expected, rel=1e-9)
    with pytest.raises(ValueError, match="'brier' is for binary"):
        autofuse.fit(np.arange(60.0).reshape(30, 2), np.arange(30) % 3, metric="brier")


# ----------------------------------------------------------------- installed plugins

GOOD = '''
import os
import autofuse
from autofuse.learners import LearnerSpec
from _plugins import _ridge_space, _ridge_build

with open(os.environ["MARKER"], "a") as f:
    f.write("imported\\n")

EP_LINEAR = LearnerSpec("ep_linear", frozenset({"binary", "multiclass"}), _ridge_space,
                        _ridge_build, portfolio=({},), cost=0.05)

@autofuse.hookimpl
def autofuse_register_learners(register):
    register(EP_LINEAR)
'''

SCRIPT = '''
import json, os, sys, warnings
warnings.simplefilter("always")
import autofuse
out = {"imported_at_import": os.path.exists(os.environ["MARKER"])}
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    infos = autofuse.plugins.list_plugins()
    autofuse.plugins.learners(); autofuse.plugins.learners()
out["warnings"] = [str(w.message) for w in caught]
out["plugins"] = {i.name: [i.distribution, i.version, i.learners, i.errors, i.loaded]
                  for i in infos}
if "--fit" in sys.argv:
    from sklearn.datasets import load_breast_cancer
    X, y = load_breast_cancer(return_X_y=True)
    model = autofuse.fit(X[:200], y[:200], n_trials=3, cv=3, time_limit=120, verbose=0,
                         random_state=0)
    board = model.leaderboard()
    out["fit_learners"] = sorted(set(board.loc[board["kind"] == "trial", "learner"]))
    out["ep_linear_done"] = bool((board.loc[board["learner"] == "ep_linear", "status"]
                                  == "done").any())
with open(os.environ["MARKER"]) if os.path.exists(os.environ["MARKER"]) else open(os.devnull) as f:
    out["imports"] = f.read().count("imported")
print(json.dumps(out))
'''


def _dist(root, name, version, entry, module_source, module):
    info = root / f"{name}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[autofuse]\n{entry} = {module}\n")
    (root / f"{module}.py").write_text(textwrap.dedent(module_source))


@pytest.fixture
def site(tmp_path):
    """A directory holding two installed distributions: ``goodplug`` (entry point
    ``good``) and ``badplug`` (``bad``, whose import raises)."""
    _dist(tmp_path, "goodplug", "1.2", "good", GOOD, "goodplug")
    _dist(tmp_path, "badplug", "0.3", "bad", "raise ImportError('needs libfoo')\n", "badplug")
    return tmp_path


def _run(site, *args, env=None):
    environ = {k: v for k, v in os.environ.items() if not k.startswith("AUTOFUSE_")}
    environ["PYTHONPATH"] = os.pathsep.join([str(site), os.path.join(ROOT, "tests")])
    environ["MARKER"] = str(site / "marker.txt")
    environ.update(env or {})
    (site / "marker.txt").unlink(missing_ok=True)
    done = subprocess.run([sys.executable, "-c", SCRIPT, *args], env=environ, cwd=site,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_entry_points_load_lazily_once_and_broken_ones_are_skipped(site):
    out = _run(site, "--fit")
    assert out["imported_at_import"] is False  # import autofuse runs no plugin code
    assert out["imports"] == 1  # loaded once, however often it is asked
    good = out["plugins"]["good"]
    assert good[:3] == ["goodplug", "1.2", ["ep_linear"]] and good[4] is True
    bad = out["plugins"]["bad"]
    assert bad[0] == "badplug" and bad[4] is False and "needs libfoo" in bad[3][0]
    assert any("'bad'" in w and "badplug" in w and "needs libfoo" in w for w in out["warnings"])
    assert "ep_linear" in out["fit_learners"] and out["ep_linear_done"]


def test_kill_switch_loads_no_installed_plugin(site):
    out = _run(site, env={"AUTOFUSE_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert set(out["plugins"]) == {"autofuse.builtins"}
    assert out["imports"] == 0 and out["warnings"] == []


def test_allow_list_loads_only_the_named_plugins(site):
    out = _run(site, env={"AUTOFUSE_PLUGINS": "goodplug"})  # a distribution name
    assert out["plugins"]["good"][4] is True and out["imports"] == 1
    assert out["plugins"]["bad"][4] is False
    assert "not in AUTOFUSE_PLUGINS" in out["plugins"]["bad"][3][0]
    assert out["warnings"] == []  # a plugin left out on purpose is not an error
    out = _run(site, env={"AUTOFUSE_PLUGINS": "bad"})  # an entry-point name
    assert out["plugins"]["good"][4] is False and out["imports"] == 0


def test_plugins_command_lists_what_each_registered(site):
    environ = {k: v for k, v in os.environ.items() if not k.startswith("AUTOFUSE_")}
    environ["PYTHONPATH"] = os.pathsep.join([str(site), os.path.join(ROOT, "tests")])
    environ["MARKER"] = str(site / "marker.txt")
    done = subprocess.run([sys.executable, "-m", "autofuse", "plugins"], env=environ,
                          cwd=site, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert "autofuse.builtins" in text and "learners: linear" in text
    assert "good  (goodplug 1.2; entry point; loaded)" in text and "learners: ep_linear" in text
    assert "bad  (badplug 0.3; entry point; NOT LOADED)" in text
    assert "error: import failed: ImportError: needs libfoo" in text
    assert done.stderr == ""
    listed = json.loads(subprocess.run([sys.executable, "-m", "autofuse", "plugins", "--json"],
                                       env=environ, cwd=site, capture_output=True, text=True,
                                       timeout=120).stdout)
    assert {"autofuse.builtins", "good", "bad"} <= {p["name"] for p in listed}


def test_learner_spec_seed_reaches_every_random_state():
    spec = plugins.learners()["random_forest"]
    from autofuse._data import describe

    _, _, data = describe(np.random.default_rng(0).random((40, 3)), np.arange(40) % 2)
    model = spec.estimator({}, data, seed=7)
    assert model.get_params()["model__random_state"] == 7
    assert spec.estimator({}, data).get_params()["model__random_state"] is None
    assert isinstance(spec, LearnerSpec)


def test_seeded_runs_are_reproducible(data):
    X, y = data
    boards = [_fit(X, y, learners=["random_forest", "mlp"], n_trials=3, random_state=3)
              .leaderboard() for _ in range(2)]
    assert boards[0]["roc_auc"].tolist() == boards[1]["roc_auc"].tolist()


def test_blend_of_certain_models_scores_despite_rounding():
    """Weights in 50ths sum to 1 + 2e-16: a blend of models that all predict 1.0 exceeds 1
    by a rounding error, which must not fail the run's last step."""
    from autofuse._scoring import run_metric

    weights = np.array([7, 7, 9, 6, 8, 8, 5]) / 50
    P = np.zeros((7, 10, 2))
    P[:, :, 0] = 1.0
    P[:, 0] = [0.2, 0.8]
    blend = np.tensordot(weights, P, axes=1)
    assert blend.max() > 1.0
    target = np.r_[1, np.zeros(9, dtype=int)]
    assert run_metric("log_loss", "multiclass").score(blend, target) == pytest.approx(
        -np.log(0.8) / 10)
    bad = blend.copy()
    bad[1, 0] = 1.001  # a real error still is one
    with pytest.raises(ValueError):
        run_metric("log_loss", "multiclass").score(bad, target)
