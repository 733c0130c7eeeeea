"""The server folds the report rollups' deltas (PostgreSQL) and digests the attempts of the
hours that have ended (both) by itself, every ``SWARM_ROLLUP_FOLD``: the deltas do not pile up
between maintenance runs, the counts stay exact, one process folds at a time, and the thread
ends with the app's database."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask

from swarm_director.db import Database
from swarm_director.models.rollup import log_hours_drift, task_hours_drift
from swarm_director.ops.rollup_fold import FOLD_LOCK, RollupFolder, fold_rollups
from swarm_director.schemas.reports import ReportQuery
from swarm_director.store import logs, reports
from swarm_director.web.context import database
from tests.api.conftest import AppFactory
from tests.store.conftest import new_task
from tests.store.reports_swarm import START as SWARM_START
from tests.store.reports_swarm import build
from tests.store.rollup_counts import delta_rows, rollup_log_total, stored_logs

postgresql_only = pytest.mark.parametrize("dialect", ["postgresql"], indirect=True)


def _write(db: Database, records: int) -> int:
    """A new task with ``records`` logs of two levels; its id."""
    with db.transaction() as session:
        task = new_task(session).id
        logs.add_logs(
            session,
            task,
            [
                {"agent_type": "w", "message": f"m{n}", "log_level": ("info", "error")[n % 2]}
                for n in range(records)
            ],
        )
    return task


def _folders() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "rollup-fold"]


def _until(check: Callable[[], bool], seconds: float = 15) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return check()


@postgresql_only
def test_the_server_folds_the_deltas_by_itself(make_app: AppFactory) -> None:
    app = make_app(SWARM_ROLLUP_FOLD="1s")
    db = database(app)
    for _ in range(3):
        _write(db, 20)
    assert delta_rows(db) > 0
    assert app.test_client().get("/api/health").status_code == 200  # starts the thread
    assert _until(lambda: delta_rows(db) == 0), "the deltas were not folded"
    assert rollup_log_total(db) == stored_logs(db) == 60
    with db.engine.connect() as conn:
        assert list(log_hours_drift(conn)) == [] and list(task_hours_drift(conn)) == []
    # Writes after a fold are folded at the next turn.
    _write(db, 5)
    assert _until(lambda: delta_rows(db) == 0)
    assert rollup_log_total(db) == stored_logs(db) == 65


@postgresql_only
def test_one_process_folds_at_a_time(make_app: AppFactory) -> None:
    db = database(make_app(SWARM_ROLLUP_FOLD="0s"))
    _write(db, 10)
    with db.engine.connect() as other:  # another process, folding
        other.execute(sa.select(sa.func.pg_advisory_xact_lock(FOLD_LOCK)))
        assert fold_rollups(db.engine) is None
        assert delta_rows(db) > 0
        other.rollback()
    changed = fold_rollups(db.engine)
    assert changed is not None and changed > 0
    assert delta_rows(db) == 0 and rollup_log_total(db) == 10


def test_the_server_digests_the_ended_hours_by_itself(make_app: AppFactory) -> None:
    app = make_app(SWARM_ROLLUP_FOLD="1s")
    db = database(app)
    build(db)
    query = ReportQuery(since=SWARM_START, until=SWARM_START + timedelta(hours=48))
    with db.statement_reads() as conn:
        raw = reports.durations(conn, query, rollup=False)
    app.test_client().get("/api/health")  # starts the thread

    def digested() -> bool:
        with db.engine.connect() as conn:
            return bool(conn.exec_driver_sql("SELECT count(*) FROM attempt_digests").scalar())

    assert _until(digested)
    assert (
        app.test_client()
        .get(
            "/api/reports/durations",
            query_string={"since": query.since.isoformat(), "until": query.until.isoformat()},
        )
        .get_json()["types"]
        == raw.model_dump(mode="json")["types"]
    )


def test_the_thread_ends_with_the_database(make_app: AppFactory) -> None:
    before = len(_folders())
    app: Flask = make_app(SWARM_ROLLUP_FOLD="1s")
    app.test_client().get("/api/health")
    app.test_client().get("/api/health")
    # One thread a process, started by the first request.
    assert len(_folders()) == before + 1
    database(app).dispose()
    assert _until(lambda: len(_folders()) == before, 6)


@postgresql_only
def test_no_thread_when_folding_is_off(make_app: AppFactory) -> None:
    before = len(_folders())
    app = make_app(SWARM_ROLLUP_FOLD="0s")
    app.test_client().get("/api/health")
    assert len(_folders()) == before


@pytest.mark.parametrize("value", ["-5m", "soon", "5"])
def test_a_bad_interval_is_refused(make_app: AppFactory, value: str) -> None:
    from swarm_director.errors import ConfigError

    with pytest.raises(ConfigError, match="SWARM_ROLLUP_FOLD"):
        make_app(SWARM_ROLLUP_FOLD=value)


def test_a_failed_fold_is_logged_and_tried_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    before = set(_folders())
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'missing' / 'swarm.db'}")  # cannot open
    folder = RollupFolder(engine, 0.05)

    def failures() -> int:
        return sum("rollup fold failed" in r.getMessage() for r in caplog.records)

    with caplog.at_level(logging.WARNING, logger="swarm_director.ops.rollup_fold"):
        folder.ensure_started()
        folder.ensure_started()  # once a process
        assert len(set(_folders()) - before) == 1
        assert _until(lambda: failures() >= 2, 5), "a failed fold stopped the thread"
        folder.stop()
    engine.dispose()
    assert _until(lambda: set(_folders()) <= before, 6)
