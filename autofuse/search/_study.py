"""The study: sampler, pruner, storage, the conditional search space and the portfolio."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import optuna

if TYPE_CHECKING:
    from autofuse._data import DataSpec
    from autofuse._scoring import RunMetric
    from autofuse.learners import LearnerSpec

#: Name of the study inside a storage.
STUDY_NAME = "autofuse"
#: Pruning: after each fold, a trial whose best fold score so far is in the worst quarter of
#: the finished trials' scores on that fold is stopped, once this many trials have finished.
PRUNE_PERCENTILE = 75.0
PRUNE_STARTUP_TRIALS = 8


class LearnerTrial:
    """The trial a ``LearnerSpec.space`` sees: parameter names are prefixed with the
    learner's name (so each learner's parameters stay conditional on it), and in a portfolio
    trial the parameters the configuration does not set are left to the learner's default
    (``None`` is returned for them and dropped)."""

    def __init__(self, trial: optuna.trial.BaseTrial, learner: str,
                 fixed: dict[str, Any] | None = None) -> None:
        self._trial = trial
        self._prefix = f"{learner}."
        self._fixed = fixed

    def _suggest(self, method: str, name: str, *args: Any, **kwargs: Any) -> Any:
        if self._fixed is not None and name not in self._fixed:
            return None
        return getattr(self._trial, method)(self._prefix + name, *args, **kwargs)

    def suggest_float(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return self._suggest("suggest_float", name, *args, **kwargs)

    def suggest_int(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return self._suggest("suggest_int", name, *args, **kwargs)

    def suggest_categorical(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return self._suggest("suggest_categorical", name, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._trial, name)


def sample(trial: optuna.trial.BaseTrial, learners: dict[str, LearnerSpec],
           data: DataSpec) -> tuple[LearnerSpec, dict[str, Any]]:
    """The learner and the parameters of one trial."""
    name = trial.suggest_categorical("learner", sorted(learners))
    spec = learners[name]
    fixed = None
    tag = trial.user_attrs.get("portfolio")
    if tag is not None:
        fixed = spec.portfolio[int(tag.rsplit(":", 1)[1])]
    params = spec.space(LearnerTrial(trial, name, fixed), data)
    return spec, {k: v for k, v in params.items() if v is not None}


def _shown(storage: Any) -> str:
    """``storage`` as an error message shows it: a URL without its password."""
    if isinstance(storage, str):
        return repr(re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", storage))
    return repr(storage)


def sampler_and_pruner(random_state: int | None, n_jobs: int
                       ) -> tuple[optuna.samplers.BaseSampler, optuna.pruners.BasePruner]:
    """The run's sampler (TPE, with the constant liar when trials run in parallel) and
    pruner."""
    sampler = optuna.samplers.TPESampler(seed=random_state, n_startup_trials=10,
                                         constant_liar=n_jobs > 1)
    pruner = optuna.pruners.PercentilePruner(PRUNE_PERCENTILE,
                                             n_startup_trials=PRUNE_STARTUP_TRIALS)
    return sampler, pruner


def storage_of(storage: Any) -> Any:
    """What Optuna is handed for ``storage``: a database server's URL becomes an
    ``RDBStorage`` with heartbeats (workers share its studies); anything else as it is.
    A storage that cannot be opened is a ``ValueError`` naming it and the cause."""
    from autofuse.search._heartbeat import is_server_url, server_storage

    if storage is not None and not isinstance(storage, (str, optuna.storages.BaseStorage)):
        raise ValueError(f"storage must be None, an Optuna storage URL such as "
                         f"'sqlite:///run.db' or an optuna.storages object; got "
                         f"{type(storage).__name__} {storage!r}")
    if not is_server_url(storage):
        return storage
    try:
        return server_storage(storage)
    except Exception as exc:
        raise ValueError(f"storage {_shown(storage)} could not be opened: "
                         f"{type(exc).__name__}: {_first_line(exc)}"
                         f"{_driver_hint(exc, storage)}") from exc


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0]


def _driver_hint(exc: BaseException, storage: Any = None) -> str:
    postgres = isinstance(storage, str) and storage.startswith("postgresql")
    if isinstance(exc, ImportError) and (postgres or "psycopg" in str(exc)):
        return " (the PostgreSQL driver: pip install 'autofuse[postgres]')"
    return ""


def open_study(storage: Any, metric: RunMetric, fingerprint: str,
               random_state: int | None, n_jobs: int, study_name: str = STUDY_NAME
               ) -> tuple[optuna.Study, bool]:
    """Create the study, or reopen the one ``storage`` holds under ``study_name`` (refusing
    one made for other data, metric or folds). Returns the study and whether it was
    resumed. A storage that cannot be opened (an unknown database, a directory that does
    not exist, a missing driver, an object that is not a storage) is a ``ValueError``
    naming it and the cause. The study's objective is named after the metric (as
    optuna-dashboard shows it)."""
    sampler, pruner = sampler_and_pruner(random_state, n_jobs)
    try:
        study = optuna.create_study(storage=storage_of(storage),
                                    study_name=study_name if storage else None,
                                    load_if_exists=storage is not None,
                                    direction=metric.direction, sampler=sampler, pruner=pruner)
    except ValueError as exc:
        if "could not be opened" in str(exc):
            raise
        raise ValueError(f"storage {_shown(storage)} could not be opened: "
                         f"{type(exc).__name__}: {_first_line(exc)}") from exc
    except Exception as exc:
        raise ValueError(f"storage {_shown(storage)} could not be opened: "
                         f"{type(exc).__name__}: {_first_line(exc)}"
                         f"{_driver_hint(exc, storage)}") from exc
    saved = study.user_attrs.get("fingerprint")
    if saved is None:
        study.set_user_attr("fingerprint", fingerprint)
        study.set_user_attr("metric", metric.name)
        study.set_user_attr("task", metric.task)
        name_objective(study, metric.name)
        return study, False
    if saved != fingerprint:
        raise ValueError(
            f"the storage {_shown(storage)} holds a study of a different run (its data, target, "
            f"task, metric or folds differ: it was made for metric "
            f"{study.user_attrs.get('metric')!r} on a {study.user_attrs.get('task')} task). "
            "Use a new storage for new data, or the same inputs to resume")
    return study, True


def name_objective(study: optuna.Study, metric: str) -> None:
    """Name the study's objective after the metric (optuna-dashboard shows "Objective 0"
    otherwise)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # experimental in some Optuna versions
        study.set_metric_names([metric])


def release_session(study: optuna.Study, interruption: BaseException | None = None) -> None:
    """Drop the storage's database session, rolling back whatever it was doing: an
    interruption (Ctrl-C, SIGTERM) raised in the middle of a query leaves that session
    holding its lock, and SQLite then refuses every later write of the same process
    ("database is locked"), the ones that record the interruption among them.

    A query cut short while its rows were being read keeps SQLite's read lock for as long
    as its cursor lives, and a rollback does not end it: the frames of ``interruption``'s
    traceback (and of the exceptions it chains) hold that cursor, so their local variables
    are cleared first (the traceback's lines stay, for the log)."""
    import gc
    import traceback

    seen: set[int] = set()
    while interruption is not None and id(interruption) not in seen:
        seen.add(id(interruption))
        traceback.clear_frames(interruption.__traceback__)
        interruption = interruption.__cause__ or interruption.__context__
    gc.collect()  # the cursor may sit in a reference cycle
    storage = getattr(study, "_storage", None)
    for backend in (storage, getattr(storage, "_backend", None)):
        session = getattr(backend, "scoped_session", None)
        if session is not None and callable(getattr(session, "remove", None)):
            try:
                session.remove()
            except Exception:  # noqa: BLE001 - best effort: the writes will say
                pass


def enqueue_portfolio(study: optuna.Study, learners: dict[str, LearnerSpec]) -> int:
    """Queue every portfolio configuration not yet tried in ``study``: round by round, the
    first configuration of every learner (cheapest learner first), then every second one,
    and so on, so a short budget sees each learner's best-known configuration before any
    learner's alternatives. Returns how many were queued."""
    tried = {t.user_attrs.get("portfolio") for t in study.get_trials(deepcopy=False)}
    queue = []
    for spec in learners.values():
        for i, config in enumerate(spec.portfolio):
            tag = f"{spec.name}:{i}"
            if tag in tried:
                continue
            params = {"learner": spec.name, **{f"{spec.name}.{k}": v for k, v in config.items()}}
            queue.append(((i, spec.cost, spec.name), params, tag))
    queue.sort(key=lambda item: item[0])
    for _, params, tag in queue:
        study.enqueue_trial(params, user_attrs={"portfolio": tag})
    return len(queue)
