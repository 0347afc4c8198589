"""Heartbeats of a shared study: a dead worker's trial is failed and run again elsewhere.

Optuna's ``RDBStorage(heartbeat_interval=..., grace_period=...)`` keeps one heartbeat time
per running trial, but Optuna beats the heart only inside ``study.optimize``, and autofuse
drives its study with ask and tell. So the search loop does it through the storage's own
calls: every ``HEARTBEAT_SECONDS`` it records a heartbeat for each trial it runs
(``record_heartbeat``) and reaps the study's stale trials (``_get_stale_trial_ids``: running
trials whose last heartbeat is older than the grace period, ``GRACE_BEATS`` beats). A stale
trial is one whose worker was killed, or lost its machine or its connection: it is failed
with that reason and marked ``stale`` (it does not count against the run's trial limit),
and its configuration is queued once more (``requeue``), for whichever worker asks next.
Any worker may reap; the storage lets only one of them fail a given trial.

The run's trial limit is counted in the study too (``started_trials``): trials started,
less those a dead worker left (their retries count instead) and those given back past the
limit, which the study lists as ``uncounted:N`` user attributes.

A study in a server database (PostgreSQL, MySQL) gets heartbeats; SQLite and memory
studies belong to one process, and a resumed run fails their running trials at once
(``autofuse._api._resume``).
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import optuna
from optuna.trial import TrialState

log = logging.getLogger("autofuse")

#: Seconds between heartbeats (the environment variable AUTOFUSE_HEARTBEAT_SECONDS, an
#: integer, overrides it: shorter for tests, longer for a slow database).
HEARTBEAT_SECONDS = 5
#: A running trial without a heartbeat for this many intervals is stale. A worker's loop
#: wakes at least once a second; writing a trial's artifacts to a slow store is what can
#: hold it longest.
GRACE_BEATS = 4


def heartbeat_seconds() -> int:
    text = os.environ.get("AUTOFUSE_HEARTBEAT_SECONDS", "").strip()
    if text:
        try:
            value = int(text)
        except ValueError:
            value = 0
        if value >= 1:
            return value
        raise ValueError(f"AUTOFUSE_HEARTBEAT_SECONDS must be a whole number of seconds >= 1, "
                         f"got {text!r}")
    return HEARTBEAT_SECONDS


def is_server_url(storage: Any) -> bool:
    """Whether ``storage`` is the URL of a database server (not SQLite)."""
    return isinstance(storage, str) and "://" in storage and not storage.startswith("sqlite")


def server_storage(url: str) -> optuna.storages.RDBStorage:
    """An ``RDBStorage`` of ``url`` with heartbeats (and connections checked before use:
    a server may close idle ones)."""
    import warnings

    beat = heartbeat_seconds()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RDBStorage(url, engine_kwargs={"pool_pre_ping": True},
                                          heartbeat_interval=beat,
                                          grace_period=GRACE_BEATS * beat)


def has_heartbeats(storage: Any) -> bool:
    getter = getattr(storage, "get_heartbeat_interval", None)
    return callable(getter) and getter() is not None


def configuration(trial: optuna.trial.FrozenTrial) -> dict[str, Any] | None:
    """The parameters ``trial`` was run with: those it sampled, or those it was queued
    with (a queued trial that stopped before sampling holds them apart); None if it stopped
    before it had any."""
    params = trial.params if "learner" in trial.params else trial.system_attrs.get(
        "fixed_params", {})
    return dict(params) if "learner" in params else None


def started_trials(study: optuna.Study) -> int:
    """Trials of ``study`` that were started (not waiting), less those failed because their
    worker died (each is queued again, and its retry counts in its place) and those given
    back past the run's trial limit."""
    storage, sid = study._storage, study._study_id
    uncounted = sum(1 for key in storage.get_study_user_attrs(sid)
                    if key.startswith(UNCOUNTED))
    return storage.get_n_trials(sid) - storage.get_n_trials(sid, TrialState.WAITING) - uncounted


#: Prefix of the study's user attributes that name the trials a shared run's trial limit
#: does not count (``uncounted:N``: a dead worker's, whose retry counts instead, or one
#: given back past the limit). Three small queries count the started trials this way,
#: where reading the failed trials' attributes grew with the study.
UNCOUNTED = "uncounted:"


def uncount(study: optuna.Study, number: int, why: str) -> None:
    """Leave trial ``number`` out of ``started_trials``."""
    study._storage.set_study_user_attr(study._study_id, f"{UNCOUNTED}{number}", why)


def requeue(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
    """Queue ``trial``'s configuration once more, unless it was itself such a retry (in case
    it is what killed its worker) or stopped before it had one. True if queued."""
    params = configuration(trial)
    if params is None or "retry_of" in trial.user_attrs:
        return False
    attrs: dict[str, Any] = {"retry_of": trial.number}
    if "portfolio" in trial.user_attrs:
        attrs["portfolio"] = trial.user_attrs["portfolio"]
    study.enqueue_trial(params, user_attrs=attrs)
    return True


def reap_stale(study: optuna.Study) -> list[int]:
    """Fail the study's stale trials (their workers stopped sending heartbeats) and queue
    each once more; the numbers of those this process failed."""
    storage = study._storage
    if not has_heartbeats(storage):
        return []
    backend = getattr(storage, "_backend", storage)  # Optuna caches an RDBStorage
    grace = getattr(backend, "grace_period", None) or 2 * storage.get_heartbeat_interval()
    failed = []
    for trial_id in storage._get_stale_trial_ids(study._study_id):
        try:
            trial = storage.get_trial(trial_id)
            again = configuration(trial) is not None and "retry_of" not in trial.user_attrs
            storage.set_trial_user_attr(trial_id, "stale", True)
            storage.set_trial_user_attr(trial_id, "reason", (
                f"its worker ({trial.user_attrs.get('worker', 'unknown')}) sent no heartbeat "
                f"for {grace} s: killed, or its machine or connection was lost; "
                + ("queued again" if again else "not queued again: it was itself a retry"
                   if "retry_of" in trial.user_attrs else
                   "not queued again: it had no configuration yet")))
            if not storage.set_trial_state_values(trial_id, state=TrialState.FAIL):
                continue
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another worker failed it first, or it just finished
        uncount(study, trial.number, "its worker died")
        frozen = storage.get_trial(trial_id)
        requeue(study, frozen)
        failed.append(frozen.number)
        log.warning("trial %d (%s) failed: %s", frozen.number,
                    frozen.user_attrs.get("learner", "?"), frozen.user_attrs.get("reason"))
    return failed


class Heartbeats:
    """Heartbeats for the trials one process runs, and reaping of everyone's stale trials,
    at most every interval."""

    def __init__(self, study: optuna.Study) -> None:
        self.study = study
        self.storage = study._storage
        self.interval = float(self.storage.get_heartbeat_interval())
        self.last = -float("inf")

    def start(self, trial: optuna.Trial) -> None:
        """A trial just asked for: its first heartbeat (a trial without one is never found
        stale)."""
        self.storage.record_heartbeat(trial._trial_id)

    def tick(self, trials: list[optuna.Trial]) -> None:
        """Beat for ``trials`` and reap stale ones, if an interval has passed."""
        now = time.monotonic()
        if now - self.last < self.interval:
            return
        self.last = now
        for trial in trials:
            self.storage.record_heartbeat(trial._trial_id)
        reap_stale(self.study)
