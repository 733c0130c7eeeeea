"""PostgreSQL retention on monthly partitions: whole months dropped, the rest row by row."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from swarm_director.db import Database, make_engine, utcnow
from swarm_director.db.partitions import (
    ensure_partitions,
    list_partitions,
    month_start,
    partition_name,
)
from swarm_director.migrations import migrate
from swarm_director.models import LogLevel, TaskStatus
from swarm_director.ops.checks.db_check import run_check
from swarm_director.ops.checks.schema_drift import compare_schema
from swarm_director.ops.retention.logs import cleanup_logs
from swarm_director.ops.retention.partitions import ensure_log_partitions
from swarm_director.ops.retention.policy import RetentionPolicy
from tests.dbtools import fresh_database
from tests.ops.factory import add_task, insert_logs

pytestmark = pytest.mark.parametrize("dialect", ["postgresql"])  # SQLite: one table

NOW = datetime(2026, 12, 15, tzinfo=UTC)
POLICY = RetentionPolicy(older_than=timedelta(days=30), keep={LogLevel.ERROR: timedelta(days=90)})
#: (when, level, how many). Cutoffs: 2026-11-15 for all, 2026-09-16 for errors.
ROWS = [
    (datetime(2026, 7, 10, tzinfo=UTC), LogLevel.INFO, 30),  # July: every row goes
    (datetime(2026, 7, 11, tzinfo=UTC), LogLevel.ERROR, 5),  # errors past 90 days too
    (datetime(2026, 9, 20, tzinfo=UTC), LogLevel.INFO, 20),  # September: goes row by row,
    (datetime(2026, 9, 20, tzinfo=UTC), LogLevel.ERROR, 3),  # as these errors are kept
    (datetime(2026, 10, 5, tzinfo=UTC), LogLevel.INFO, 10),  # October: no error to keep
    (datetime(2026, 11, 10, tzinfo=UTC), LogLevel.INFO, 7),  # straddles the cutoff: batched
    (datetime(2026, 11, 20, tzinfo=UTC), LogLevel.INFO, 4),  # kept
    (datetime(2001, 1, 1, tzinfo=UTC), LogLevel.INFO, 2),  # a stray in the default partition
]
#: August is empty: it goes too (a late August row would land in the default partition).
DROPPED = ["agent_logs_p2026_07", "agent_logs_p2026_08", "agent_logs_p2026_10"]


def _fill(db: Database) -> None:
    with db.engine.begin() as conn:
        ensure_partitions(
            conn, "agent_logs", [datetime(2026, m, 1, tzinfo=UTC) for m in (7, 8, 9, 10, 11, 12)]
        )
    task = add_task(db)
    for when, level, count in ROWS:
        insert_logs(db.engine, task, count, level=level, now=when)


def _left(db: Database) -> list[tuple[str, str, int]]:
    with db.engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT to_char(timestamp AT TIME ZONE 'UTC', 'YYYY-MM-DD'), log_level, count(*) "
                "FROM agent_logs GROUP BY 1, 2 ORDER BY 1, 2"
            )
        ).all()
    return [(str(day), str(level), int(n)) for day, level, n in rows]


def _partition_names(db: Database) -> set[str]:
    with db.engine.connect() as conn:
        return {p.name for p in list_partitions(conn, "agent_logs")}


def test_whole_months_are_dropped_and_the_rest_deleted_in_batches(db: Database) -> None:
    _fill(db)
    preview = cleanup_logs(db.engine, POLICY, dry_run=True, now=NOW)
    assert preview.partitions == DROPPED and preview.total_matched == 74
    assert set(DROPPED) <= _partition_names(db)  # a dry run changes nothing

    report = cleanup_logs(db.engine, POLICY, batch_size=5, now=NOW)

    assert report.partitions == DROPPED
    assert (report.deleted, report.dropped_rows) == (74, 45)
    assert report.batches >= 6  # 29 rows one by one, 5 at a time
    assert report.dropped_bytes > 0 and report.bytes_freed >= report.dropped_bytes
    assert not set(DROPPED) & _partition_names(db)
    assert _left(db) == [("2026-09-20", "error", 3), ("2026-11-20", "info", 4)]
    with db.engine.connect() as conn:
        details = conn.execute(
            sa.text("SELECT details FROM maintenance_events WHERE operation = 'cleanup'")
        ).scalar_one()
    assert details["partitions"] == DROPPED and details["deleted"] == 74
    assert compare_schema(db.engine) == []


def test_archive_holds_every_row_of_dropped_months_and_the_rest(
    db: Database, tmp_path: Path
) -> None:
    _fill(db)
    with db.engine.connect() as conn:
        before = {
            row.id: row.message
            for row in conn.execute(sa.text("SELECT id, message, timestamp FROM agent_logs"))
        }
    archive = tmp_path / "logs.jsonl.gz"
    report = cleanup_logs(db.engine, POLICY, archive=archive, batch_size=7, now=NOW)
    with gzip.open(archive, "rt", encoding="utf-8") as f:
        archived = [json.loads(line) for line in f]
    with db.engine.connect() as conn:
        left = set(conn.execute(sa.text("SELECT id FROM agent_logs")).scalars())
    assert report.partitions == DROPPED
    assert (report.archived, report.deleted, report.vanished) == (74, 74, 0)
    assert {row["id"] for row in archived} | left == set(before)
    assert not {row["id"] for row in archived} & left
    assert all(before[row["id"]] == row["message"] for row in archived)


def test_a_task_status_filter_deletes_row_by_row(db: Database) -> None:
    _fill(db)
    policy = RetentionPolicy(older_than=timedelta(days=30), task_statuses=[TaskStatus.PENDING])
    report = cleanup_logs(db.engine, policy, now=NOW)
    assert report.partitions == [] and report.deleted == 77
    assert set(DROPPED) <= _partition_names(db)


def test_maintain_makes_months_ahead_and_moves_strays_out_of_the_default(db: Database) -> None:
    task = add_task(db)
    insert_logs(db.engine, task, 3, now=datetime(2001, 1, 1, tzinfo=UTC))
    insert_logs(db.engine, task, 2, now=datetime(2040, 6, 1, tzinfo=UTC))
    created = ensure_log_partitions(
        db.engine, months_ahead=2, now=datetime(2039, 12, 5, tzinfo=UTC)
    )
    assert created == ["agent_logs_p2001_01", "agent_logs_p2039_12", "agent_logs_p2040_01",
                       "agent_logs_p2040_02", "agent_logs_p2040_06"]  # fmt: skip
    with db.engine.connect() as conn:
        placed = dict(
            conn.execute(
                sa.text("SELECT tableoid::regclass::text, count(*) FROM agent_logs GROUP BY 1")
            ).all()
        )
    assert placed == {"agent_logs_p2001_01": 3, "agent_logs_p2040_06": 2}
    assert (
        ensure_log_partitions(db.engine, months_ahead=2, now=datetime(2039, 12, 5, tzinfo=UTC))
        == []
    )
    assert compare_schema(db.engine) == []


def test_check_reports_a_missing_default_or_current_partition(dialect: str, tmp_path: Path) -> None:
    with fresh_database(dialect, tmp_path) as url:
        engine = make_engine(url)
        try:
            migrate.upgrade(engine)
            assert run_check(engine).ok
            month = partition_name("agent_logs", month_start(utcnow()))
            with engine.begin() as conn:
                conn.exec_driver_sql("DROP TABLE agent_logs_default")
                conn.exec_driver_sql(f"DROP TABLE {month}")
            report = run_check(engine)
            found = sorted(p.message.split(":")[0] for p in report.problems)
            assert found == [
                "no default partition",
                f"no partition for {month_start(utcnow()):%Y-%m}",
            ]
            assert not report.ok
            assert ensure_log_partitions(engine, now=utcnow())[:2] == ["agent_logs_default", month]
            assert run_check(engine).ok
        finally:
            engine.dispose()
