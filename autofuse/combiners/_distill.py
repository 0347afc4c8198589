"""``distill``: one fast student model that learns what a fused teacher predicts.

The teacher is any combiner of the members' predictions (``auto`` by default: the fusion a
run would choose). The student is a registered learner (``hist_gradient_boosting`` by
default) with the parameters of the search's best trial of that learner. It learns soft
targets (Fakoor et al. 2020, "Fast, Accurate, and Simple Models for Tabular Data via
Augmented Distillation"):

* **Real rows**: ``label_weight`` times the label plus the rest times the teacher
  blending the members' *out-of-fold* predictions, never members predicting rows they
  were fitted on (which would teach the student the members' overfitting). An
  out-of-fold prediction of a row is made without that row, so it lacks the row's own
  detail: on phoneme (a 0.97-AUC teacher) a HistGradientBoosting student of the teacher's
  out-of-fold probabilities alone reached a test AUC of 0.935 where the same model on the
  labels reached 0.964, and half of each (the default) 0.956; on california_housing the
  labels alone were best too, while on small noisy tables (credit_g, titanic, abalone)
  the teacher's targets beat the labels.
* **Synthetic rows** (``augment`` per training row, at most ``max_augmented``): a copy of a
  random training row with each column, with probability ``RESAMPLE`` (at least one per
  row), replaced by the value of another random row, plus Gaussian noise of ``NOISE``
  times the column's standard deviation on numeric columns (AutoGluon draws 5 per row, at
  most 100,000; fewer here because every synthetic row is predicted by every teacher
  member and multiplies the student's fit, within the run's budget). A synthetic row is
  labelled the way its original row was: by each member's fold model that was fitted
  without that row.
* **Classification**: the student fits the teacher's probabilities by weighted rows: each
  row appears once per class the teacher gives at least ``SOFT_MIN`` (renormalised), with
  that probability as its weight, so a classifier minimising log loss minimises the cross
  entropy to the teacher's distribution, and its ``predict_proba`` is the student's
  probability. The student's final estimator must take ``sample_weight``.

Scores are honest the way every trial's are: for each fold ``k`` of the view, a student
fitted on the other folds' rows predicts fold ``k``, and the final student is fitted on
every row. A fold student cannot learn the members' out-of-fold predictions of its rows:
those came from fold models that saw fold ``k``'s labels, and a student that sees the
table learns them back (on a 1,500-row table its outer score rose above the teacher's
while its test score fell below it). So every target of fold ``k``'s student comes from
the members' fold models fitted without fold ``k``, blended by the teacher fitted without
it: in sample for the student's own rows, which makes the fold students learn noisier
targets than the final student does, and the outer score conservative. The fits run in
the run's killable workers, under its memory limit and deadline; the number of synthetic
rows is lowered to what the time left allows.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from autofuse.combiners._base import Combiner, CrossFitted
from autofuse.combiners._nested import Assessment, assess, outer_folds, predict_view
from autofuse.combiners._own_model import OwnModelFusion
from autofuse.combiners._view import LibraryView

#: Synthetic rows per training row, and at most this many in all.
AUGMENT = 1.0
MAX_AUGMENTED = 50_000
#: Chance that a column of a synthetic row is resampled from another row (at least one
#: column per row is).
RESAMPLE = 0.1
#: Gaussian noise on a resampled numeric value, times the column's standard deviation.
NOISE = 0.1
#: Weight of the label in a real row's target (the teacher's out-of-fold prediction has the
#: rest); synthetic rows have only the teacher's.
LABEL_WEIGHT = 0.5
#: A class the teacher gives less than this probability is left out of the row's soft label.
SOFT_MIN = 1e-3
#: Share of a run's time budget kept from the search for distillation.
TIME_SHARE = 0.4
#: Shares of the time left: labelling the synthetic rows, then fitting the students.
LABEL_SHARE = 0.25
FIT_SHARE = 0.6


class Distill(CrossFitted):
    """Distil ``teacher`` (a ``Combiner``, named ``teacher_name``) into one ``student``
    (a ``LearnerSpec``).

    Parameters
    ----------
    params : the student's parameters; None: those of the search's best trial of the
        student's learner (its defaults when the library has none).
    augment : synthetic rows per training row (0: none).
    max_augmented : most synthetic rows.
    label_weight : weight of the label in a real row's target, from 0 (the teacher's
        out-of-fold prediction alone) to 1 (the label alone); synthetic rows always learn
        the teacher's.
    """

    #: Share of a run's time budget the search leaves for fusion (the teacher, labelling
    #: the synthetic rows, the students' fits).
    time_share = TIME_SHARE

    def __init__(self, teacher: Combiner, teacher_name: str, student: Any,
                 params: dict[str, Any] | None = None, augment: float = AUGMENT,
                 max_augmented: int = MAX_AUGMENTED, label_weight: float = LABEL_WEIGHT
                 ) -> None:
        if isinstance(label_weight, bool) or not isinstance(label_weight, (int, float)) \
                or not 0 <= label_weight <= 1:
            raise ValueError(f"distill: label_weight must be a number from 0 (the teacher's "
                             f"targets alone) to 1 (the labels alone on the real rows); got "
                             f"{label_weight!r}")
        self.label_weight = float(label_weight)
        if isinstance(teacher, CrossFitted):
            raise ValueError(f"distill: the teacher must combine the members' predictions; "
                             f"{teacher_name!r} fits models of its own")
        if isinstance(augment, bool) or not isinstance(augment, (int, float)) \
                or not 0 <= augment <= 100:
            raise ValueError(f"distill: augment must be a number of synthetic rows per "
                             f"training row, from 0 to 100; got {augment!r}")
        if isinstance(max_augmented, bool) or not isinstance(max_augmented, (int, np.integer)) \
                or max_augmented < 0:
            raise ValueError(f"distill: max_augmented must be an integer >= 0, got "
                             f"{max_augmented!r}")
        if params is not None and not isinstance(params, dict):
            raise ValueError(f"distill: params must be a dict of the student's parameters, "
                             f"got {params!r}")
        self.teacher = teacher
        self.teacher_name = teacher_name
        self.student = student
        self.params = params
        self.augment = float(augment)
        self.max_augmented = int(max_augmented)

    # ------------------------------------------------------------- the teacher
    def _teach(self, view: LibraryView) -> Assessment:
        from autofuse.combiners._auto import Auto

        if isinstance(self.teacher, Auto):
            chosen, _ = self.teacher.assess_all(view)
        else:
            chosen = assess(self.teacher_name, self.teacher, view)
            if not chosen.ok:
                raise RuntimeError(f"the teacher {self.teacher_name!r} failed: {chosen.error}")
        if chosen.fold_fusions is None:
            raise ValueError(f"distill: the teacher {chosen.name!r} fits models of its own")
        return chosen

    def _student_params(self, view: LibraryView) -> tuple[dict[str, Any], dict[str, Any]]:
        """(the student's parameters, what the leaderboard says of them and of the same
        learner trained on the labels alone)."""
        name = self.student.name
        best = next((int(i) for i in view.order() if view.learners[i] == name), None)
        about: dict[str, Any] = {}
        if best is not None:
            about["labels_alone"] = {"trial": int(view.trials[best]),
                                     "score": float(view.scores[best])}
        if self.params is not None:
            return dict(self.params), {**about, "params_from": "given"}
        if best is not None:
            return dict(view.params[best]), {**about,
                                             "params_from": f"trial {view.trials[best]}"}
        portfolio = self.student.portfolio
        return (dict(portfolio[0]) if portfolio else {}), {
            **about, "params_from": "defaults (the library has no trial of it)"}

    # ------------------------------------------------------------- fitting
    def cross_fit(self, view: LibraryView) -> tuple[OwnModelFusion, np.ndarray]:
        from autofuse._workers import fit_arguments

        data = view._source.data
        if data is None or not view.has_models:
            raise RuntimeError("distill needs the training table and the members' fold "
                               "models (a library view of a run)")
        if not self.student.supports(data):
            raise ValueError(f"distill: student {self.student.name!r} does not handle this "
                             f"{data.task} table")
        params, about = self._student_params(view)
        probe = self.student.estimator(params, data, view.random_state)
        if view.task != "regression":
            try:
                fit_arguments(probe, np.ones(1))
            except ValueError as exc:
                raise ValueError(
                    f"distill: student {self.student.name!r} cannot learn the teacher's "
                    f"probabilities ({exc}): a classification student learns them as "
                    "weighted rows; choose a learner whose estimator takes sample_weight "
                    "(hist_gradient_boosting, linear, mlp, random_forest, extra_trees, "
                    "lightgbm...)") from None

        teacher = self._teach(view)
        folds = outer_folds(view)
        table = view.frame().reset_index(drop=True)
        fold_of = view.model_folds()
        n_aug, scale = self._n_augmented(view, list(teacher.fusion.uses), teacher)
        if scale < 1:
            params, about = _fewer_rounds(params, about, scale, left=view.time_left())
        rng = np.random.default_rng(view.random_state or 0)
        origins = rng.integers(0, view.n_rows, size=n_aug)
        synthetic = augment(table, origins, rng)

        labels = (view.target[:, None].astype(float) if view.task == "regression" else
                  np.eye(view.n_outputs)[view.target])
        mix = self.label_weight
        # What the teacher labels: each request is (its fusion, rows, each row's fold model).
        # Fold students, for the honest score: every target from the members' fold models
        # that never saw the held-out fold, blended by the teacher fitted without it.
        requests: list[tuple[Any, pd.DataFrame, np.ndarray]] = []
        for (train, valid), fusion in zip(folds, teacher.fold_fusions):
            blind = np.unique(fold_of[valid])
            if len(blind) != 1 or blind[0] < 0:
                raise RuntimeError("distill: no fold model of the members was fitted without "
                                   "the rows of an outer fold (a view of part of a fold)")
            X = synthetic.iloc[np.flatnonzero(np.isin(origins, train))]
            if mix < 1:
                X = pd.concat([table.iloc[train], X], ignore_index=True)
            requests.append((fusion, X, np.full(len(X), blind[0])))
        # The student: the members' out-of-fold predictions of the real rows (in the view),
        # and each synthetic row by the fold models fitted without its original row.
        requests.append((teacher.fusion, synthetic, fold_of[origins]))
        taught = teach(view, requests)

        jobs = []
        for f, (train, _) in enumerate(folds):
            asked = requests[f][1]
            if mix < 1:  # the request held the real rows, then the synthetic ones
                real = mix * labels[train] + (1 - mix) * taught[f][:len(train)]
                fake, X = taught[f][len(train):], asked
            else:
                real, fake = labels[train], taught[f]
                X = pd.concat([table.iloc[train], asked], ignore_index=True)
            jobs.append(_soft_job(self.student, params, X, np.vstack([real, fake]),
                                  view.task))
        real = labels
        if mix < 1:
            real = mix * real + (1 - mix) * predict_view(teacher.fusion, view, "the teacher")
        jobs.append(_soft_job(self.student, params,
                              pd.concat([table, synthetic], ignore_index=True),
                              np.vstack([real, taught[-1]]), view.task))
        models = view.fit(jobs)

        from autofuse._cv import _predict

        held_out = np.full((view.n_rows, view.n_outputs), np.nan)
        for (_, valid), model in zip(folds, models[:-1]):
            held_out[valid] = _predict(model, table.iloc[valid], data, "the student")
        details = {"student": self.student.name, "params": params, **about,
                   "teacher": {"combiner": teacher.name, "outer_score": float(teacher.outer),
                               "members": len(teacher.fusion.uses)},
                   "augmented_rows": int(n_aug), "fitted_rows": int(len(jobs[-1]["y"]))}
        fusion = OwnModelFusion([models[-1]], data, details, "the student")
        fusion.measure(view)
        return fusion, held_out

    def _n_augmented(self, view: LibraryView, members: list[int], teacher: Assessment
                     ) -> tuple[int, float]:
        """(synthetic rows, share of its boosting rounds the student can afford): ``augment``
        per row, at most ``max_augmented``, and what the time left allows for labelling
        them and fitting the students (estimated from the search's timings). When even no
        synthetic row leaves too little time, the rounds share is below 1 (and 0 rows)."""
        n = min(int(self.augment * view.n_rows), self.max_augmented)
        left = view.time_left()
        if not np.isfinite(left):
            return n, 1.0
        rows = max(1, view.library_rows)
        n_folds = len(outer_folds(view))
        # Labelling: each fold student's rows (real and synthetic) and the student's
        # synthetic rows, each through one fold model of every member.
        per_row = sum(float(view.predict_seconds[view.index(t)]) for t in members) / rows
        if per_row > 0:
            real = (n_folds - 1) * view.n_rows if self.label_weight < 1 else 0
            n = min(n, int((LABEL_SHARE * left / per_row - real) / n_folds))
        # Fitting: a fold of the student's learner in the search took fit_seconds / folds
        # on (1 - 1/folds) of the rows; a student fits (rows + synthetic) x classes kept.
        same = [int(i) for i in view.order() if view.learners[i] == self.student.name]
        if same:
            # The trial whose parameters the student takes (the first: the best), or the
            # median of the learner's.
            took = (view.fit_seconds[same[0]] if self.params is None else
                    np.median(view.fit_seconds[same]))
            k = max(2, view.n_folds_fitted)
            per_fit_row = float(took) / k / ((1 - 1 / k) * rows)
            spread = _classes_kept(teacher.held_out) if view.task != "regression" else 1.0
            rounds = -(-(n_folds + 1) // view._source.n_workers)
            budget = FIT_SHARE * (1 - LABEL_SHARE) * left / rounds
            most = budget / (per_fit_row * spread) - view.n_rows
            if most < 0:
                return 0, budget / (per_fit_row * spread * view.n_rows)
            n = min(n, int(most))
        return max(0, n), 1.0


#: Parameters that count a learner's boosting rounds or trees (scikit-learn, LightGBM,
#: XGBoost, CatBoost), which the student may lower to fit the time left.
ROUNDS = ("max_iter", "n_estimators", "iterations", "num_boost_round")
#: The fewest rounds a student is given, and the largest learning rate cutting them gives.
MIN_ROUNDS = 10
MAX_LEARNING_RATE = 0.3


def _fewer_rounds(params: dict[str, Any], about: dict[str, Any], scale: float, left: float
                  ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The student's parameters with its rounds cut to ``scale`` of them (the fits cannot
    finish in the time left otherwise), or RuntimeError when it has no rounds to cut."""
    key = next((k for k in ROUNDS if isinstance(params.get(k), (int, np.integer))), None)
    if key is None or int(params[key] * scale) < MIN_ROUNDS:
        raise RuntimeError(f"not enough time to distill: {left:.1f} s left, and fitting the "
                           f"students is expected to take {1 / max(scale, 1e-9):.1f} times "
                           "what remains for them")
    cut = max(MIN_ROUNDS, int(params[key] * scale))
    fewer = {**params, key: cut}
    # Fewer rounds take larger steps (boosting), up to MAX_LEARNING_RATE.
    rate = params.get("learning_rate")
    if isinstance(rate, (int, float)) and not isinstance(rate, bool):
        fewer["learning_rate"] = max(rate, min(MAX_LEARNING_RATE, rate * params[key] / cut))
    return fewer, {**about, "rounds_cut": {key: [int(params[key]), cut]}}


def _classes_kept(proba: np.ndarray | None) -> float:
    """Rows a soft label becomes, on average (classes at ``SOFT_MIN`` or more)."""
    if proba is None:
        return 2.0
    return float(np.mean((proba >= SOFT_MIN).sum(axis=1)))


def _blend(fusion: Any, outputs: dict[int, np.ndarray], X: pd.DataFrame, n_outputs: int
           ) -> np.ndarray:
    if len(X) == 0:
        return np.empty((0, n_outputs))
    out = np.asarray(fusion.predict(outputs, X if fusion.needs_table else None), dtype=float)
    return out[:, None] if out.ndim == 1 else out


def _soft_job(student: Any, params: dict[str, Any], X: pd.DataFrame, soft: np.ndarray,
              task: str) -> dict[str, Any]:
    """The student's fit on rows ``X`` labelled ``soft``: values for a regression; for a
    classification one weighted row per class kept (``SOFT_MIN``)."""
    if task == "regression":
        return {"spec": student, "params": params, "X": X, "y": soft[:, 0]}
    P = np.where(soft >= SOFT_MIN, soft, 0.0)
    empty = P.sum(axis=1) == 0
    P[empty, np.argmax(soft[empty], axis=1)] = 1.0
    P /= P.sum(axis=1, keepdims=True)
    rows, classes = np.nonzero(P)
    return {"spec": student, "params": params, "X": X.iloc[rows].reset_index(drop=True),
            "y": classes, "sample_weight": P[rows, classes]}


def augment(table: pd.DataFrame, origins: np.ndarray, rng: np.random.Generator
            ) -> pd.DataFrame:
    """Synthetic rows, one per entry of ``origins`` (row positions of ``table``): each a
    copy of its original row with every column resampled from another random row with
    probability ``RESAMPLE`` (at least one column per row), numeric resampled values moved
    by Gaussian noise of ``NOISE`` times the column's standard deviation."""
    n, width = len(origins), table.shape[1]
    out = table.iloc[origins].reset_index(drop=True)
    if n == 0 or width == 0:
        return out
    change = rng.random((n, width)) < RESAMPLE
    change[np.arange(n), rng.integers(0, width, size=n)] = True
    for j, name in enumerate(table.columns):
        mask = change[:, j]
        if not mask.any():
            continue
        donors = table[name].iloc[rng.integers(0, len(table), size=int(mask.sum()))]
        column = out[name].copy()
        values = donors.to_numpy()
        if pd.api.types.is_float_dtype(column.dtype):
            std = float(np.nanstd(table[name].to_numpy(dtype=float)))
            values = values + rng.normal(0.0, NOISE * std, size=len(values))
        column.iloc[np.flatnonzero(mask)] = values
        out[name] = column
    return out


def teach(view: LibraryView, requests: list[tuple[Any, pd.DataFrame, np.ndarray]]
          ) -> list[np.ndarray]:
    """The teacher's predictions for each request ``(fusion, X, model_of)``: ``fusion``
    blending its members' predictions of ``X``, row ``i`` by each member's fold model
    ``model_of[i]``. Each member's fold models are loaded once for all requests; members
    are spread over the machine's cores, one thread each (OpenMP's barriers in
    scikit-learn's tree predictors cost a scheduler quantum per tree when another thread
    or process holds a core: 50 times slower). Past the view's deadline it stops with a
    RuntimeError."""
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_limits

    from autofuse._core._greedy import default_threads

    members = sorted({t for fusion, _, _ in requests for t in fusion.uses})

    def one(t: int) -> dict[int, np.ndarray]:
        with threadpool_limits(limits=1):  # OpenMP's thread count is set per thread
            asked = [(r, X, model_of) for r, (fusion, X, model_of) in enumerate(requests)
                     if t in fusion.uses and len(X)]
            return _member_outputs(view, t, asked)

    with ThreadPoolExecutor(max_workers=max(1, min(default_threads(), len(members)))) as pool:
        preds = dict(zip(members, pool.map(one, members)))
    return [_blend(fusion, {t: preds[t][r] for t in fusion.uses if r in preds[t]}, X,
                   view.n_outputs) for r, (fusion, X, _) in enumerate(requests)]


def _member_outputs(view: LibraryView, t: int,
                    asked: list[tuple[int, pd.DataFrame, np.ndarray]]) -> dict[int, np.ndarray]:
    """Member ``t``'s predictions for each ``(request, X, model_of)`` asked."""
    from autofuse._cv import _predict

    models = view.models(t) if asked else []
    out = {}
    for r, X, model_of in asked:
        pred = np.zeros((len(X), view.n_outputs))
        for k in np.unique(model_of):
            if k < 0 or k >= len(models):
                raise RuntimeError(f"distill needs member {t}'s fold model {k} (it has "
                                   f"{len(models)})")
            if view.time_left() <= 0:
                raise RuntimeError("stopped at the time limit while the teacher labelled the "
                                   "students' rows")
            rows = np.flatnonzero(model_of == k)
            pred[rows] = _predict(models[k], X.iloc[rows], view._source.data, f"member #{t}")
        out[r] = pred
    return out
