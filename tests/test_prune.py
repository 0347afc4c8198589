"""The ``prune`` combiner: the best blend within a budget of members, bytes or latency."""

from __future__ import annotations

import functools
import json
import pickle
import time

import numpy as np
import pytest

from _problems import classification
from autofuse._scoring import run_metric
from autofuse.combiners._caruana import Caruana
from autofuse.combiners._nested import assess, predict_view
from autofuse.combiners._prune import Blend, Prune, front
from autofuse.combiners._view import LibraryView
from autofuse.testing import _library, _one_thread

TASKS = ["binary", "multiclass", "regression"]
#: Seconds per row each of the six real models takes (as a member), and its bytes.
LATENCY = np.array([4.0, 1.0, 6.0, 3.0, 2.0, 0.5]) * 1e-4
BYTES = np.array([1.0, 0.2, 5.0, 4.0, 3.0, 0.8]) * 1e6


@functools.cache
def real(task: str) -> tuple[np.ndarray, np.ndarray]:
    with _one_thread():  # OpenMP pools spin-waiting on a busy machine are many times slower
        P, target, _ = _library(task, 0)
    return P, target


def per_row(latency: np.ndarray, n_rows: int, n_folds: int = 5) -> np.ndarray:
    """The ``predict_seconds`` that make ``LibraryView.latency`` estimate ``latency``."""
    return np.asarray(latency) * n_rows / n_folds


def view_of(task: str, latency: np.ndarray = LATENCY, nbytes: np.ndarray = BYTES,
            **kwargs) -> LibraryView:
    P, target = real(task)
    return LibraryView.from_arrays(P, target, run_metric(None, task),
                                   predict_seconds=per_row(latency, len(target)),
                                   model_bytes=nbytes, **kwargs)


def blend_latency(view: LibraryView, uses, batch: int = 10_000) -> float:
    return sum(view.latency(t)[batch] for t in uses)


def blend_bytes(view: LibraryView, uses) -> float:
    return sum(view.model_bytes[view.index(t)] for t in uses)


def score(view: LibraryView, fusion) -> float:
    return view.metric.score(predict_view(fusion, view), view.target)


@pytest.mark.parametrize("task", TASKS)
def test_max_members_is_respected(task):
    view = view_of(task)
    for k in (1, 2):
        fusion = Prune(max_members=k).fuse(view)
        assert len(fusion.uses) <= k
        assert fusion.summary()["members"] == len(fusion.uses)
        if task != "regression":
            assert sum(fusion.weights.values()) == pytest.approx(1.0)


@pytest.mark.parametrize("task", TASKS)
def test_max_bytes_is_respected(task):
    view = view_of(task)
    for limit in (2e6, 1.5e6, 0.9e6):
        fusion = Prune(max_bytes=limit).fuse(view)
        assert blend_bytes(view, fusion.uses) <= limit
        assert fusion.details["bytes"] == pytest.approx(blend_bytes(view, fusion.uses))


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("method", ["greedy", "drop_worst"])
def test_infer_limit_is_respected(task, method):
    view = view_of(task)
    for limit in (8e-4, 5e-4, 2e-4):
        fusion = Prune(infer_limit=limit, method=method).fuse(view)
        assert blend_latency(view, fusion.uses) <= limit
        assert fusion.details["latency_10000"] == pytest.approx(blend_latency(view, fusion.uses))
        assert fusion.details["latency_1"] == pytest.approx(blend_latency(view, fusion.uses, 1))
        assert fusion.details["method"] == method


def test_infer_batch_size_says_which_latency_is_limited():
    view = view_of("binary")
    for t in view.trials:  # measured latencies, as the view caches them: batch 1 is slower
        view._source.latencies[t] = {1: 10 * LATENCY[t], 10_000: LATENCY[t]}
    one = Prune(infer_limit=1e-3, infer_batch_size=1).fuse(view)
    assert blend_latency(view, one.uses, 1) <= 1e-3
    assert one.details["budget"] == {"infer_limit": 1e-3, "infer_batch_size": 1}
    many = Prune(infer_limit=1e-3).fuse(view)
    assert blend_latency(view, many.uses) <= 1e-3
    assert blend_latency(view, many.uses, 1) > 1e-3  # the batch-1 limit would have cut it


@pytest.mark.parametrize("task", TASKS)
def test_a_generous_budget_gives_the_caruana_blend(task):
    # Prune keeps the best-scoring blend of its path: the Caruana blend here, since no
    # removal improves these blends (where one does, the smaller, better blend is kept).
    view = view_of(task)
    caruana = Caruana().fuse(view).weights
    for budget in (dict(max_members=100), dict(max_bytes=1e12), dict(infer_limit=1.0)):
        fusion = Prune(**budget).fuse(view)
        assert fusion.weights == caruana
        assert fusion.details["score"] == fusion.details["caruana_score"]


def greedy_wins() -> LibraryView:
    """A slow best model S, a fast model F, and a fast weak model W whose errors cancel
    F's: the budget fits F + W, or S alone. Dropping the worst single model (W) first
    ends with S alone; F + W is much better."""
    rng = np.random.default_rng(0)
    n = 600
    y = 3 * rng.normal(size=n)
    e_s, e_f, e_w = rng.normal(size=(3, n))
    P = np.stack([y + e_s, y + 1.1 * e_f, y - 1.1 * e_f + 0.6 * e_w])
    return LibraryView.from_arrays(P, y, run_metric(None, "regression"),
                                   predict_seconds=per_row([0.8, 0.4, 0.4], n))


def test_greedy_beats_dropping_the_worst_member():
    view = greedy_wins()
    assert len(Caruana().fuse(view).uses) == 3
    greedy = Prune(infer_limit=1.0).fuse(view)
    worst = Prune(infer_limit=1.0, method="drop_worst").fuse(view)
    assert set(greedy.uses) == {1, 2} and worst.uses == (0,)
    assert blend_latency(view, greedy.uses) <= 1.0 and blend_latency(view, worst.uses) <= 1.0
    assert score(view, greedy) < 0.5 * score(view, worst)  # rmse


@pytest.mark.parametrize("task", TASKS)
def test_drop_worst_keeps_the_best_member_of_the_caruana_blend(task):
    view = view_of(task)
    members = Caruana().fuse(view).uses
    best = min(members, key=lambda t: list(view.order()).index(view.index(t)))
    assert Prune(max_members=1, method="drop_worst").fuse(view).uses == (best,)


def test_an_impossible_budget_names_the_fastest_blend():
    view = view_of("regression")
    fastest = int(np.argmin(LATENCY))
    with pytest.raises(ValueError, match=rf"fastest blend possible is trial {fastest} "
                                         rf"\(model\) alone at 5e-05 s/row"):
        Prune(infer_limit=1e-5).fuse(view)
    with pytest.raises(ValueError, match=r"smallest blend possible is trial 1 alone at "
                                         r"2e\+05 bytes"):
        Prune(max_bytes=1e3).fuse(view)


def dominates(a: dict, b: dict, sign: float) -> bool:
    ours = [-sign * a["score"], a["latency_10000"], a["bytes"], len(a["members"])]
    theirs = [-sign * b["score"], b["latency_10000"], b["bytes"], len(b["members"])]
    return all(x <= y for x, y in zip(ours, theirs)) and ours != theirs


@pytest.mark.parametrize("task", TASKS)
def test_the_front_is_non_dominated_and_holds_the_chosen_blend(task):
    view = view_of(task, latency=LATENCY[::-1])
    sign = 1.0 if view.metric.greater_is_better else -1.0
    for budget in (dict(max_members=2), dict(infer_limit=6e-4), dict(max_bytes=2e6)):
        fusion = Prune(**budget).fuse(view)
        front = fusion.details["front"]
        assert front == json.loads(json.dumps(front))
        assert not any(dominates(a, b, sign) for a in front for b in front)
        chosen = [p for p in front if set(p["members"]) == set(fusion.uses)]
        assert len(chosen) == 1
        assert chosen[0]["score"] == pytest.approx(score(view, fusion))
        assert {p["score"] for p in front} >= {fusion.details["caruana_score"]}


def test_front_leaves_out_dominated_blends():
    def blend(members, score, latency, nbytes):
        return Blend({t: 1 / len(members) for t in members}, tuple(members), score,
                     {1: latency, 10_000: latency}, nbytes)

    path = [blend([0, 1, 2], 0.90, 3.0, 30), blend([0, 1], 0.91, 2.0, 20),
            blend([1], 0.80, 1.0, 25), blend([0], 0.85, 1.5, 10)]
    assert front(path, True, 10_000) == [path[1], path[2], path[3]]
    assert front(path, False, 10_000) == [path[2], path[3]]  # lower score is better


@pytest.mark.parametrize("options, name", [
    ({}, "budget"), ({"max_members": 0}, "max_members"), ({"max_members": 2.5}, "max_members"),
    ({"max_members": True}, "max_members"), ({"max_bytes": -1}, "max_bytes"),
    ({"max_bytes": "1MB"}, "max_bytes"), ({"infer_limit": 0.0}, "infer_limit"),
    ({"infer_limit": float("nan")}, "infer_limit"),
    ({"infer_limit": 1e-3, "infer_batch_size": 100}, "infer_batch_size"),
    ({"max_members": 2, "method": "best"}, "method"),
    ({"max_members": 2, "ensemble_size": 0}, "ensemble_size"),
])
def test_bad_options_are_refused_by_name(options, name):
    with pytest.raises(ValueError, match=name):
        Prune(**options)


@pytest.mark.parametrize("task", TASKS)
def test_nested_assessment_and_pickling(task):
    view = view_of(task)
    result = assess("prune", Prune(max_members=2, infer_limit=8e-4), view)
    assert result.ok, result.error
    assert np.isfinite(result.outer) and np.isfinite(result.in_sample)
    fusion = pickle.loads(pickle.dumps(result.fusion))
    assert fusion.weights == result.fusion.weights
    np.testing.assert_array_equal(predict_view(fusion, view), predict_view(result.fusion, view))
    json.dumps(fusion.summary())


def test_same_view_same_result():
    view = view_of("multiclass")
    a, b = (Prune(infer_limit=5e-4).fuse(view) for _ in range(2))
    assert a.weights == b.weights and a.details == b.details


def test_latency_is_measured_only_for_members(monkeypatch):
    rng = np.random.default_rng(1)
    P, y = classification(rng, n_models=30, n_rows=200, n_classes=3)
    view = LibraryView.from_arrays(P, y, run_metric(None, "multiclass"),
                                   predict_seconds=per_row(rng.uniform(1, 3, 30) * 1e-4, 200))
    measured = set()
    latency = LibraryView.latency

    def counting(self, trial):
        measured.add(trial)
        return latency(self, trial)

    monkeypatch.setattr(LibraryView, "latency", counting)
    members = set(Caruana().fuse(view).uses)
    Prune(max_members=2).fuse(view)
    assert measured == members and len(members) < 30


def test_a_passed_deadline_still_meets_the_budget():
    view = view_of("binary", deadline=time.monotonic() - 1.0)
    for limit in (6e-4, 1.2e-4):  # the Caruana blend fits; no blend but a single one fits
        fusion = Prune(infer_limit=limit).fuse(view)
        assert blend_latency(view, fusion.uses) <= limit
        assert fusion.details["stopped"] == "deadline"
    assert len(fusion.uses) == 1
