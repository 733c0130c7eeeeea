"""``log_volume_hours`` and ``error_group_hours`` stay what a count of the logs says,
whatever writes and deletes them: bulk and single inserts (several writers at once), a task's
cascade, retention (batched deletes; on PostgreSQL whole partitions dropped), updates by hand.
And the log volume report read through it gives the figures of the raw query, for every
bucket and zone."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.engine import URL

from swarm_director.cli.main import cli
from swarm_director.db import Database
from swarm_director.db.partitions import ensure_partitions
from swarm_director.enums import LogLevel
from swarm_director.models import Task
from swarm_director.models.error_group import error_groups_drift
from swarm_director.models.rollup import (
    compact,
    log_hours_drift,
    rebuild_log_hours,
    task_hours_drift,
)
from swarm_director.ops.retention.logs import cleanup_logs
from swarm_director.ops.retention.policy import RetentionPolicy
from swarm_director.schemas.reports import ReportQuery
from swarm_director.store import logs, reports, tasks
from swarm_director.store.history import prune_history
from swarm_director.store.reports.rollups import edges, hours_within
from swarm_director.store.reports.window import resolve
from tests.store.conftest import new_task
from tests.store.queue_workers import run_workers
from tests.store.reports_swarm import START as SWARM_START
from tests.store.reports_swarm import build
from tests.store.rollup_counts import rollup_log_total, stored_logs

NOW = datetime(2026, 12, 15, 12, 30, tzinfo=UTC)
LEVELS = [level.value for level in LogLevel]
HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)


def _rows(n: int, first: datetime, step: timedelta, tag: str = "") -> list[dict[str, object]]:
    return [
        {
            "agent_type": "worker",
            "message": f"{tag} {i}",
            "log_level": LEVELS[i % len(LEVELS)],
            "timestamp": first + step * i,
        }
        for i in range(n)
    ]


def _drift(db: Database) -> list[tuple[int, str, int, int]]:
    """Where the log volume or the error groups (both counts of the logs) differ from the
    logs."""
    with db.engine.connect() as conn:
        return log_hours_drift(conn) + error_groups_drift(conn)


def _new_task(db: Database) -> int:
    with db.transaction() as session:
        return new_task(session).id


def test_every_route_in_and_out_keeps_the_counts_exact(db: Database) -> None:
    keep, gone = _new_task(db), _new_task(db)
    with db.transaction() as session:
        # Rows on both sides of hour boundaries, to the microsecond.
        edge = datetime(2026, 12, 14, 10, 59, 59, 999999, tzinfo=UTC)
        logs.add_logs(session, keep, _rows(50, edge - timedelta(minutes=5), timedelta(seconds=13)))
        logs.add_logs(session, gone, _rows(30, edge, timedelta(microseconds=1)))
        logs.add_logs(session, keep, [{"agent_type": "w", "message": "now"}])  # no timestamp
        logs.add_log(session, keep, {"agent_type": "w", "message": "one", "timestamp": edge})
        logs.add_log(session, keep, {"agent_type": "w", "message": "two", "log_level": "error"})
    assert _drift(db) == []
    assert rollup_log_total(db) == 83

    with db.transaction() as session:
        tasks.delete_task(session, gone)  # its 30 logs go by the foreign key's cascade
    assert _drift(db) == [] and rollup_log_total(db) == 53

    with db.engine.begin() as conn:
        later = (
            "\"timestamp\" + interval '3 hours'"
            if conn.dialect.name == "postgresql"
            else "datetime(\"timestamp\", '+3 hours')"
        )
        conn.execute(
            sa.text(
                f"UPDATE agent_logs SET log_level = 'error', \"timestamp\" = {later} "
                "WHERE message LIKE :p"
            ),
            {"p": " 1%"},
        )
        conn.execute(sa.text("DELETE FROM agent_logs WHERE message LIKE :p"), {"p": " 2%"})
    assert _drift(db) == []


def test_concurrent_writers_a_delete_and_retention_leave_it_exact(db: Database) -> None:
    """Four writers ingest batches (hot hours shared by all) while a task with logs is deleted
    and retention removes the oldest logs; the rollup equals a count of what is left."""
    writers = [_new_task(db) for _ in range(4)]
    doomed = _new_task(db)
    with db.transaction() as session:
        logs.add_logs(session, doomed, _rows(200, NOW - timedelta(days=2), timedelta(minutes=1)))
    errors: list[BaseException] = []

    def write(task_id: int) -> None:
        try:
            for batch in range(15):
                first = NOW - timedelta(days=3) + timedelta(hours=2 * batch)
                with db.transaction() as session:
                    logs.add_logs(session, task_id, _rows(40, first, timedelta(minutes=3), "w"))
                with db.transaction() as session:
                    logs.add_log(session, task_id, {"agent_type": "w", "message": "single"})
        except BaseException as error:
            errors.append(error)

    def delete_and_clean() -> None:
        try:
            with db.transaction() as session:
                tasks.delete_task(session, doomed)
            policy = RetentionPolicy(older_than=timedelta(days=2, hours=12))
            cleanup_logs(db.engine, policy, batch_size=25, now=NOW)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=write, args=(t,)) for t in writers]
    threads.append(threading.Thread(target=delete_and_clean))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert _drift(db) == []
    assert rollup_log_total(db) == stored_logs(db) > 0


def test_retention_that_drops_whole_months_takes_their_hours_along(db: Database) -> None:
    task = _new_task(db)
    with db.engine.begin() as conn:
        # PostgreSQL: monthly partitions, so October and November go by DROP TABLE (no
        # trigger fires), December's first days row by row. SQLite: all row by row.
        if conn.dialect.name == "postgresql":
            months = [datetime(2026, m, 1, tzinfo=UTC) for m in (10, 11, 12)]
            ensure_partitions(conn, "agent_logs", months)
    batches = [
        _rows(120, datetime(2026, 10, 3, tzinfo=UTC), timedelta(hours=5)),
        _rows(120, datetime(2026, 11, 20, tzinfo=UTC), timedelta(hours=5)),  # into December
        _rows(60, NOW - timedelta(days=3), timedelta(hours=1)),
    ]
    with db.transaction() as session:
        for batch in batches:
            logs.add_logs(session, task, batch)
    kept = sum(row["timestamp"] >= NOW - timedelta(days=2) for b in batches for row in b)  # type: ignore[operator]
    report = cleanup_logs(db.engine, RetentionPolicy(older_than=timedelta(days=2)), now=NOW)
    assert report.deleted > 0
    with db.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            assert report.partitions == ["agent_logs_p2026_10", "agent_logs_p2026_11"]
    assert _drift(db) == []
    assert rollup_log_total(db) == kept == 43


@pytest.mark.parametrize(
    ("bucket", "tz", "span"),
    [
        ("hour", "UTC", timedelta(hours=30)),
        ("day", "UTC", timedelta(days=9)),
        ("day", "Europe/Berlin", timedelta(days=9)),  # 2026-10-25: a 25-hour day
        ("day", "America/St_Johns", timedelta(days=9)),  # -03:30: the logs themselves
        ("day", "Asia/Kolkata", timedelta(days=9)),  # +05:30
        ("minute", "UTC", timedelta(hours=3)),
    ],
)
def test_the_log_report_through_the_rollup_equals_the_raw_query(
    db: Database, bucket: str, tz: str, span: timedelta
) -> None:
    task = _new_task(db)
    first = datetime(2026, 10, 20, 7, 13, 29, tzinfo=UTC)
    with db.transaction() as session:
        logs.add_logs(session, task, _rows(1500, first, timedelta(minutes=9, seconds=7)))
        logs.add_logs(session, task, _rows(200, first + timedelta(hours=30), timedelta(seconds=1)))
        # The last 0.4 ms of an hour (SQLite rounds to milliseconds when it reads a time).
        edge = datetime(2026, 10, 20, 9, 59, 59, 999600, tzinfo=UTC)
        logs.add_logs(session, task, _rows(80, edge, timedelta(hours=1)))
    # Ranges that start and end mid-hour, so the ends come from the logs.
    since = first + timedelta(minutes=31, seconds=5, microseconds=7)
    query = ReportQuery(since=since, until=since + span, bucket=bucket, tz=tz)
    window = resolve(query)
    with db.engine.connect() as conn:
        fast = reports.log_volume(conn, window=window)
        raw = reports.log_volume(conn, window=window, rollup=False)
    assert fast == raw
    assert sum(fast.totals.values()) > 10


def test_a_rollup_rebuilt_from_scratch_is_exact(db: Database) -> None:
    task = _new_task(db)
    with db.transaction() as session:
        logs.add_logs(session, task, _rows(100, NOW - timedelta(days=1), timedelta(minutes=17)))
    with db.engine.begin() as conn:
        compact(conn)  # PostgreSQL's counts are deltas until then
        conn.exec_driver_sql("UPDATE log_volume_hours SET logs = logs + 5")
        conn.exec_driver_sql("INSERT INTO log_volume_hours VALUES (1, 'info', 3)")
    assert len(_drift(db)) > 1
    with db.engine.begin() as conn:
        rebuild_log_hours(conn)
    assert _drift(db) == []
    assert rollup_log_total(db) == 100


def test_db_check_names_a_drifted_hour_and_rebuild_rollups_repairs_it(
    db: Database, db_url: URL
) -> None:
    task = _new_task(db)
    with db.transaction() as session:
        logs.add_logs(session, task, _rows(20, datetime(2026, 12, 1, 9, tzinfo=UTC), HOUR))
    url = db_url.render_as_string(hide_password=False)
    assert _cli("db", "check", "--database-url", url)[0] == 0
    with db.engine.begin() as conn:
        compact(conn)
        conn.exec_driver_sql(
            "UPDATE log_volume_hours SET logs = logs + 2 WHERE log_level = 'warning'"
        )
    code, out = _cli("db", "check", "--database-url", url)
    assert code == 1
    assert "2026-12-01T11:00Z warning: the rollup says 3, the logs are 1" in out

    code, out = _cli("db", "rebuild-rollups", "--database-url", url)
    assert code == 0 and "log_volume_hours 20 rows" in out
    assert _drift(db) == []
    assert _cli("db", "check", "--database-url", url)[0] == 0


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def _task_drift(db: Database) -> list[Any]:
    with db.engine.connect() as conn:
        return task_hours_drift(conn)


@pytest.mark.parametrize(
    ("bucket", "tz", "by"),
    [
        ("hour", "UTC", None),
        ("hour", "UTC", "priority"),
        ("day", "UTC", "type"),
        ("day", "Europe/Berlin", None),  # the swarm spans the 25-hour day
        ("day", "Asia/Kolkata", "type"),  # +05:30: from the tasks themselves
        ("minute", "UTC", None),
        ("hour", "UTC", "agent"),  # not in the rollup: from the tasks themselves
    ],
)
def test_task_counts_through_the_rollup_equal_the_raw_query(
    db: Database, bucket: str, tz: str, by: str | None
) -> None:
    build(db)
    assert _task_drift(db) == []
    since = SWARM_START + timedelta(minutes=23, microseconds=5)
    span = timedelta(hours=2) if bucket == "minute" else timedelta(days=3)
    query = ReportQuery(since=since, until=since + span, bucket=bucket, tz=tz, by=by)
    window = resolve(query)
    with db.engine.connect() as conn:
        fast = reports.task_counts(conn, query, window=window)
        raw = reports.task_counts(conn, query, window=window, rollup=False)
    assert fast == raw
    assert fast.totals["created"] > (2 if bucket == "minute" else 10)
    assert fast.totals["completed"] > (0 if bucket == "minute" else 5)


def test_task_counts_follow_edits_deletes_pruning_and_concurrent_workers(db: Database) -> None:
    """The rollup equals a count of the tasks and history after a task changes type and
    priority, a task is deleted, the history is pruned, and four workers claim, complete,
    fail and retry tasks at once."""
    build(db)
    with db.transaction() as session:
        done = session.scalars(
            sa.select(Task.id).where(Task.status == "completed").order_by(Task.id).limit(2)
        ).all()
        tasks.update_task(session, done[0], {"priority": "critical"})
        tasks.delete_task(session, done[1])
    with db.engine.begin() as conn:  # the store never changes a type; SQL by hand may
        conn.execute(
            sa.text("UPDATE tasks SET type = 'communication' WHERE id = :i"), {"i": done[0]}
        )
    assert _task_drift(db) == []
    with db.engine.begin() as conn:
        assert prune_history(conn, SWARM_START + timedelta(hours=20)) > 0
    assert _task_drift(db) == []

    run_workers(db)
    assert _task_drift(db) == []
    with db.engine.connect() as conn:
        kinds = conn.exec_driver_sql(
            "SELECT kind, sum(tasks) FROM (SELECT kind, tasks FROM task_count_hours UNION ALL "
            "SELECT kind, tasks FROM task_count_deltas) AS s GROUP BY kind ORDER BY kind"
        ).all()
    assert [k for k, n in kinds if n > 0] == ["completed", "created", "failed"]


def test_each_partial_hour_is_read_from_the_side_that_can_hold_fewer_rows() -> None:
    """The range's own part of a partial hour, or the rollup's hour less the rest of it: a
    range that ends now reads only what was written after its end (rows lie up to now)."""
    now = datetime(2026, 11, 3, 14, 41, 7, 500000, tzinfo=UTC)
    since, until = now - timedelta(hours=24), now - timedelta(milliseconds=300)
    span = hours_within(since, until)
    assert span is not None
    head, tail = edges(since, until, span, now)
    # 14:41:07 yesterday: its 19 minutes against the 41 before it.
    assert (head.since, head.until, head.by_rollup) == (since, since.replace(minute=0, second=0,
            microsecond=0) + HOUR, False)  # fmt: skip
    # Today's 41 minutes against the 0.3 s written since the range's end: the rollup.
    assert tail.by_rollup and (tail.rest_since, tail.rest_until) == (until, until.replace(
        minute=0, second=0, microsecond=0) + HOUR)  # fmt: skip
    # In the past, by their lengths: 5 minutes of a range's hour read as they are, 55 not.
    early = datetime(2026, 11, 1, 9, 5, tzinfo=UTC)
    span = hours_within(early, early + timedelta(hours=5))
    assert span is not None
    head, tail = edges(early, early + timedelta(hours=5), span, now)
    assert head.by_rollup and (head.rest_since, head.rest_until) == (early - 5 * MINUTE, early)
    assert not tail.by_rollup and (tail.since, tail.until) == (early + 5 * HOUR - 5 * MINUTE,
            early + 5 * HOUR)  # fmt: skip


@pytest.mark.parametrize(("start", "end"), [(41, 41), (5, 5), (5, 41), (41, 5)])
def test_partial_hours_read_either_way_give_the_raw_figures(
    db: Database, start: int, end: int
) -> None:
    """Both ends of a range, each read as its own part or as the rollup's hour less the rest,
    with logs at the range's end itself (not in it: ``until`` is exclusive), after it in the
    same hour and before its start in the same hour: the log volume and the most frequent
    errors are those of the raw query."""
    task = _new_task(db)
    since = datetime(2026, 11, 2, 10, start, 7, tzinfo=UTC)
    until = datetime(2026, 11, 3, 14, end, 7, tzinfo=UTC)
    with db.transaction() as session:
        step = timedelta(minutes=3, seconds=11)
        logs.add_logs(session, task, _rows(600, since - 2 * HOUR, step))
        for at in (since, until):
            logs.add_logs(session, task, _rows(len(LEVELS), at, timedelta(0), "edge"))
            logs.add_logs(session, task, _rows(len(LEVELS), at + 3 * MINUTE, timedelta(0), "+"))
            logs.add_logs(session, task, _rows(len(LEVELS), at - 3 * MINUTE, timedelta(0), "-"))
    window = resolve(ReportQuery(since=since, until=until, bucket="hour"))
    with db.engine.connect() as conn:
        volume = reports.log_volume(conn, window=window)
        assert volume == reports.log_volume(conn, window=window, rollup=False)
        fast = reports.failures(conn, window=window).errors
        raw = reports.failures(conn, window=window, rollup=False).errors
    assert [(e.pattern, e.count) for e in fast] == [(e.pattern, e.count) for e in raw]
    assert sum(volume.totals.values()) > 400 and fast


def test_task_counts_and_failure_rates_read_either_way_give_the_raw_figures(
    db: Database,
) -> None:
    """The tasks report (by nothing, type and priority) and the failure rates (by type and
    agent) with each partial hour read as its own part or as the rollup's hour less the rest,
    the rest holding a claim (and so its task's steps and outcome): the raw query's figures."""
    build(db)
    with db.engine.connect() as conn:
        claims = sorted(
            at for (at,) in conn.execute(sa.select(sa.text("claimed_at FROM task_attempts")))
        )
    claims = [at if isinstance(at, datetime) else datetime.fromisoformat(at) for at in claims]
    claims = [at.replace(tzinfo=UTC) if at.tzinfo is None else at for at in claims]
    second = timedelta(seconds=1)
    early = [at for at in claims if 1 <= at.minute <= 25]
    late = [at for at in claims if 35 <= at.minute <= 58]
    # A claim early in the hour before the range's start and one late in the hour of its
    # end, just outside it: both hours read as the rollup less a rest holding a claim (with
    # its task's creation and steps near it). Then the other way: a late claim just inside
    # the start and an early one just inside the end, both hours read as they are.
    ranges = [(early[i] + second, late[-1 - i] - second) for i in range(3)]
    ranges += [(late[i] - second, early[-1 - i] + second) for i in range(3)]
    assert all(since < until for since, until in ranges)
    with db.engine.connect() as conn:
        for since, until in ranges:
            for by in (None, "type", "priority"):
                query = ReportQuery(since=since, until=until, bucket="hour", by=by)
                window = resolve(query)
                fast = reports.task_counts(conn, query, window=window)
                assert fast == reports.task_counts(conn, query, window=window, rollup=False)
            window = resolve(ReportQuery(since=since, until=until, bucket="hour"))
            rates = reports.failures(conn, window=window)
            raw = reports.failures(conn, window=window, rollup=False)
            assert (rates.by_type, rates.by_agent) == (raw.by_type, raw.by_agent)
