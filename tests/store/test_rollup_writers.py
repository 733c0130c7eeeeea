"""Writers and the report rollups' upkeep: on PostgreSQL no writer of logs or tasks waits for
another writer's open transaction because both count into the same hour (each appends its
own delta rows), and folding the deltas (``db optimize``) beside writers loses and doubles
nothing; the counts stay what the rows say after commits, rollbacks and deletes."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session

from swarm_director.db import Database, utcnow
from swarm_director.models.rollup import (
    compact,
    epoch_hour,
    forget_log_hours,
    log_hours_drift,
    task_hours_drift,
)
from swarm_director.ops.checks.db_check import run_check
from swarm_director.schemas.reports import ReportQuery
from swarm_director.store import logs, queue, reports
from tests.store.conftest import new_agent, new_task
from tests.store.rollup_counts import delta_rows, rollup_log_total, stored_logs

LEVELS = ("debug", "info", "warning", "error")


class RolledBack(Exception):
    """Raised to leave a transaction without committing it."""


def _drift(db: Database) -> tuple[list[object], list[object]]:
    with db.engine.connect() as conn:
        return list(log_hours_drift(conn)), list(task_hours_drift(conn))


def _counted_logs(db: Database) -> int:
    """The logs the rollup counts (hour rows and deltas), as a new connection sees them."""
    return rollup_log_total(db)


@contextmanager
def _impatient(db: Database) -> Iterator[Session]:
    """A transaction whose lock waits fail after 5 s (a regression fails, never hangs)."""
    with db.transaction() as session:
        session.execute(sa.text("SET LOCAL lock_timeout = '5s'"))
        yield session


def _log(at: datetime, level: str = "info") -> dict[str, object]:
    return {"agent_type": "w", "message": "m", "log_level": level, "timestamp": at}


def _claimed(db: Database, count: int) -> list[tuple[int, str]]:
    """``count`` new tasks of one type and priority, claimed: ``(task id, lease token)``."""
    with db.transaction() as session:
        agent = new_agent(session).id
        for _ in range(count):
            new_task(session, type="analysis", priority="high")
    with db.transaction() as session:
        return [(c.task.id, c.lease_token) for c in queue.claim_tasks(session, agent, limit=count)]


@pytest.mark.parametrize("dialect", ["postgresql"], indirect=True)  # SQLite: one writer at a time
@pytest.mark.parametrize("first_ends", ["commit", "rollback"])
def test_writers_of_one_hour_never_wait_for_each_others_commit(
    db: Database, first_ends: str
) -> None:
    """Two transactions write logs of the same hour and level, create tasks and complete
    tasks of the same type, priority and hour; the second commits while the first is open."""
    (held_task, held_token), (other_task, other_token) = _claimed(db, 2)
    hour = datetime(2026, 12, 14, 10, tzinfo=UTC)
    ends = pytest.raises(RolledBack) if first_ends == "rollback" else nullcontext()
    with ends, db.transaction() as held:
        logs.add_logs(held, held_task, [_log(hour + timedelta(minutes=m)) for m in (1, 2)])
        new_task(held, type="analysis", priority="high")
        queue.complete_task(held, held_task, held_token)
        with _impatient(db) as other:
            logs.add_logs(other, other_task, [_log(hour + timedelta(minutes=3))])
            new_task(other, type="analysis", priority="high")
            queue.complete_task(other, other_task, other_token)
        # The second is committed and counted while the first is still open.
        assert _counted_logs(db) == 1
        assert _drift(db) == ([], [])
        if first_ends == "rollback":
            raise RolledBack
    assert _counted_logs(db) == (3 if first_ends == "commit" else 1)
    assert _drift(db) == ([], [])


@pytest.mark.parametrize("dialect", ["postgresql"], indirect=True)  # SQLite: one writer at a time
def test_folding_the_deltas_waits_for_no_open_writer(db: Database) -> None:
    [(task_id, token)] = _claimed(db, 1)
    with db.transaction() as held:
        logs.add_logs(held, task_id, [_log(utcnow()) for _ in range(4)])
        queue.complete_task(held, task_id, token)
        with _impatient(db) as other:
            compact(other.connection())
        # The open writer's deltas were not visible: they stay for the next fold.
        assert _counted_logs(db) == 0
    assert _counted_logs(db) == 4 and _drift(db) == ([], [])
    with db.engine.begin() as conn:
        compact(conn)
    assert delta_rows(db) == 0
    assert _counted_logs(db) == 4 and _drift(db) == ([], [])


def test_folding_beside_writers_and_deletes_keeps_every_count_and_report(db: Database) -> None:
    """Writers ingest logs into shared hours, create and finish tasks, and delete logs while
    the deltas are folded again and again; the counts equal the rows, before and after a last
    fold, and the reports read through the rollup equal the raw ones."""
    start = utcnow().replace(minute=0, second=0, microsecond=0) - timedelta(hours=6)
    with db.transaction() as session:
        agents = [new_agent(session).id for _ in range(3)]
        owners = [new_task(session).id for _ in range(3)]
    stop = threading.Event()
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            for batch in range(12):
                rows = [
                    _log(start + timedelta(minutes=7 * i + batch), LEVELS[i % 4]) for i in range(30)
                ]
                with db.transaction() as session:
                    logs.add_logs(session, owners[n], rows)
                    new_task(session, type="analysis", priority=("low", "high")[batch % 2])
                with db.transaction() as session:
                    for claim in queue.claim_tasks(session, agents[n], limit=1):
                        queue.complete_task(session, claim.task.id, claim.lease_token)
                if batch % 4 == 3:
                    with db.engine.begin() as conn:
                        conn.execute(
                            sa.text("DELETE FROM agent_logs WHERE task_id = :t AND id % 3 = 0"),
                            {"t": owners[n]},
                        )
        except BaseException as error:
            errors.append(error)

    def fold() -> None:
        try:
            while not stop.is_set():
                with db.engine.begin() as conn:
                    compact(conn)
        except BaseException as error:
            errors.append(error)

    folder = threading.Thread(target=fold)
    writers = [threading.Thread(target=write, args=(n,)) for n in range(3)]
    folder.start()
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join()
    stop.set()
    folder.join()
    assert errors == []
    assert _drift(db) == ([], [])
    with db.engine.begin() as conn:
        compact(conn)
    assert delta_rows(db) == 0
    assert _drift(db) == ([], [])
    assert _counted_logs(db) == stored_logs(db) > 500
    query = ReportQuery(since=start - timedelta(days=1), until=utcnow(), bucket="hour")
    with db.statement_reads() as conn:
        assert reports.log_volume(conn, query) == reports.log_volume(conn, query, rollup=False)
        assert reports.task_counts(conn, query) == reports.task_counts(conn, query, rollup=False)


def _waiting_on_lock(db: Database, pid: int) -> bool:
    with db.engine.connect() as conn:
        kind = conn.scalar(
            sa.text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
        )
    return kind == "Lock"


@pytest.mark.parametrize("dialect", ["postgresql"], indirect=True)  # SQLite: one writer at a time
def test_a_dropped_months_hours_leave_beside_a_fold_without_a_deadlock(db: Database) -> None:
    """Retention's partition drop removes a month's deltas and hour rows while a fold folds
    those deltas into those hour rows: replayed step by step (the removal paused between its
    two statements, the fold started and left to block), both finish and the month is gone
    from the rollup. Removing the hour rows first deadlocked with the fold."""
    task = _claimed(db, 1)[0][0]
    october = datetime(2026, 10, 1, tzinfo=UTC)
    with db.transaction() as session:
        logs.add_logs(session, task, [_log(october + timedelta(hours=h)) for h in range(5)])
        logs.add_logs(session, task, [_log(datetime(2026, 11, 2, tzinfo=UTC))])
    with db.engine.begin() as conn:
        compact(conn)  # October's hour rows exist...
    with db.transaction() as session:  # ...and so do new deltas of them
        logs.add_logs(session, task, [_log(october + timedelta(hours=h)) for h in range(5)])
    paused, go = threading.Event(), threading.Event()
    errors: list[BaseException] = []
    folder_pid: list[int] = []

    deletes: list[str] = []

    def pause_between(_conn: object, _cursor: object, statement: str, *_a: object) -> None:
        if statement.startswith("DELETE FROM"):
            deletes.append(statement)
            if len(deletes) == 2:  # the removal's first table done, the second not begun
                paused.set()
                go.wait(20)

    def remove() -> None:
        try:
            with db.engine.begin() as conn:
                event.listen(conn, "before_cursor_execute", pause_between)
                forget_log_hours(conn, october, datetime(2026, 11, 1, tzinfo=UTC))
        except BaseException as error:
            errors.append(error)

    def fold() -> None:
        try:
            with db.engine.begin() as conn:
                folder_pid.append(int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()))
                compact(conn)
        except BaseException as error:
            errors.append(error)

    remover, folder = threading.Thread(target=remove), threading.Thread(target=fold)
    remover.start()
    assert paused.wait(20)
    folder.start()
    deadline = time.monotonic() + 20
    while not (folder_pid and _waiting_on_lock(db, folder_pid[0])):
        assert time.monotonic() < deadline and folder.is_alive()
        time.sleep(0.02)
    go.set()
    remover.join(30)
    folder.join(30)
    assert errors == []
    with db.engine.connect() as conn:
        left = conn.exec_driver_sql(
            "SELECT epoch_hour, sum(logs) FROM (SELECT epoch_hour, logs FROM log_volume_hours "
            "UNION ALL SELECT epoch_hour, logs FROM log_volume_deltas) AS s "
            "GROUP BY epoch_hour HAVING sum(logs) != 0"
        ).all()
    assert left == [(epoch_hour(datetime(2026, 11, 2, tzinfo=UTC)), 1)]


@pytest.mark.parametrize("dialect", ["postgresql"], indirect=True)  # SQLite: one writer at a time
def test_db_check_reads_the_rollup_and_the_rows_in_one_snapshot(db: Database) -> None:
    """Regression: ``rollup_drift`` counted the logs, then read the rollup in a second
    statement; a batch committed in between was in the rollup but not in the count, and a
    clean database was reported drifted (the reliability run's crash test, a writer beside)."""
    [(task_id, _token)] = _claimed(db, 1)
    hour = datetime(2026, 12, 14, 10, tzinfo=UTC)
    with db.transaction() as session:
        logs.add_logs(session, task_id, [_log(hour)])
    written = []

    def write_between(conn: sa.Connection, *_args: object) -> None:
        statement = str(_args[1])
        # after the drift rule's count of the logs per hour, before its read of the rollup
        if not written and "FROM agent_logs GROUP BY" in statement and "epoch" in statement:
            written.append(True)
            with db.transaction() as session:
                logs.add_logs(session, task_id, [_log(hour) for _ in range(50)])

    event.listen(db.engine, "after_cursor_execute", write_between)
    try:
        report = run_check(db.engine)
    finally:
        event.remove(db.engine, "after_cursor_execute", write_between)
    assert written, "the check read no logs"
    assert [p for p in report.problems if p.rule == "rollup_drift"] == []
    assert _drift(db) == ([], [])
