"""The throwaway PostgreSQL server of tests/_postgres.py: Optuna can keep a study in it,
each test gets a database of its own, and without PostgreSQL the fixtures skip (or fail,
when AUTOFUSE_REQUIRE_POSTGRES=1)."""

from __future__ import annotations

import optuna
import pytest

pytest_plugins = ["_postgres"]


def test_a_study_round_trips_through_the_server(postgres_url):
    study = optuna.create_study(storage=postgres_url, study_name="s")
    study.optimize(lambda trial: trial.suggest_float("x", -1, 1) ** 2, n_trials=3)
    loaded = optuna.load_study(study_name="s", storage=postgres_url)
    assert [t.state for t in loaded.trials] == [optuna.trial.TrialState.COMPLETE] * 3
    assert [t.value for t in loaded.trials] == [t.params["x"] ** 2 for t in study.trials]
    assert loaded.best_value == study.best_value


def test_each_test_has_a_database_of_its_own(postgres_url, postgres_server):
    # The study above lives in another, dropped database.
    assert optuna.get_all_study_names(postgres_url) == []
    assert postgres_url.startswith(
        f"postgresql://postgres@127.0.0.1:{postgres_server.port}/")
    with postgres_server.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT datname FROM pg_database WHERE datname LIKE 'test\\_%'")
        names = [row[0] for row in cur.fetchall()]
    conn.close()
    assert names == [postgres_url.rsplit("/", 1)[1]]


def test_no_postgres_skips_unless_it_is_required(monkeypatch):
    import _postgres  # loaded by pytest_plugins (importing it first skips its assert rewriting)

    monkeypatch.setattr(_postgres, "_programs", lambda: None)
    monkeypatch.delenv("AUTOFUSE_REQUIRE_POSTGRES", raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install postgresql"):
        _postgres._check_available()
    monkeypatch.setenv("AUTOFUSE_REQUIRE_POSTGRES", "1")
    with pytest.raises(pytest.fail.Exception, match="AUTOFUSE_REQUIRE_POSTGRES=1"):
        _postgres._check_available()
