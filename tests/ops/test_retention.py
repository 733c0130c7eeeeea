"""db cleanup-logs: the right rows go, archived first, in short batches, failures are loud."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from swarm_director.db import Database
from swarm_director.durations import DurationError, format_duration, parse_duration
from swarm_director.models import AgentLog, LogLevel, TaskStatus
from swarm_director.ops.errors import RetentionError
from swarm_director.ops.retention import batched_deletes
from swarm_director.ops.retention import logs as log_retention
from swarm_director.ops.retention.logs import cleanup_logs
from swarm_director.ops.retention.policy import RetentionPolicy, parse_keep
from tests.ops.factory import add_task, count, insert_logs
from tests.ops.helpers import events

DAY = timedelta(days=1)


def _levels_left(db: Database) -> list[tuple[str, int]]:
    with db.engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT log_level, count(*) FROM agent_logs GROUP BY log_level ORDER BY 1")
        ).all()
    return [(str(level), int(n)) for level, n in rows]


def _all_logs(db: Database) -> dict[int, dict[str, Any]]:
    with db.engine.connect() as conn:
        rows = conn.execute(sa.select(AgentLog.__table__)).mappings().all()
    out = {}
    for row in rows:
        data = dict(row)
        for key in ("timestamp", "created_at"):
            data[key] = data[key].isoformat()
        out[data["id"]] = json.loads(json.dumps(data, default=str))
    return out


def test_parsing_durations_and_keep_rules() -> None:
    assert parse_duration("30d") == 30 * DAY
    assert parse_duration("12h") == timedelta(hours=12)
    assert parse_keep("error=90d, warning=2w") == {
        LogLevel.ERROR: 90 * DAY,
        LogLevel.WARNING: 14 * DAY,
    }
    with pytest.raises(DurationError, match="invalid duration"):
        parse_duration("30 days")
    with pytest.raises(DurationError, match="at most 100 years"):
        parse_duration("99999w")
    assert [format_duration(parse_duration(t)) for t in ("30d", "14d", "90m", "1.5h")] == [
        "30d",
        "14d",
        "90m",
        "90m",
    ]
    with pytest.raises(RetentionError, match="unknown log level 'fatal'"):
        parse_keep("fatal=90d")


def test_age_and_per_level_keep_choose_exactly_the_right_rows(db: Database) -> None:
    task = add_task(db)
    insert_logs(db.engine, task, 5, age=40 * DAY)  # info, past 30 d: goes
    insert_logs(db.engine, task, 3, age=10 * DAY)  # info, recent: stays
    insert_logs(db.engine, task, 4, age=40 * DAY, level=LogLevel.ERROR)  # error kept 90 d
    insert_logs(db.engine, task, 2, age=100 * DAY, level=LogLevel.ERROR)  # past 90 d: goes
    insert_logs(db.engine, task, 6, age=40 * DAY, level=LogLevel.DEBUG)  # goes
    policy = RetentionPolicy(older_than=30 * DAY, keep={LogLevel.ERROR: 90 * DAY})

    dry = cleanup_logs(db.engine, policy, dry_run=True)
    assert dry.matched == {"info": 5, "error": 2, "debug": 6}
    assert count(db.engine, AgentLog) == 20  # a dry run deletes nothing

    report = cleanup_logs(db.engine, policy, batch_size=4)
    assert report.deleted == 13
    assert report.batches >= 4  # bounded batches
    assert _levels_left(db) == [("error", 4), ("info", 3)]
    op, status, details = events(db.engine)[-1]
    assert (op, status, details["deleted"]) == ("cleanup", "ok", 13)


def test_task_status_limits_cleanup_to_finished_tasks(db: Database) -> None:
    done = add_task(db, status=TaskStatus.COMPLETED)
    running = add_task(db, status=TaskStatus.IN_PROGRESS)
    insert_logs(db.engine, done, 7, age=40 * DAY)
    insert_logs(db.engine, running, 5, age=40 * DAY)
    policy = RetentionPolicy(older_than=30 * DAY, task_statuses=[TaskStatus.COMPLETED])
    assert cleanup_logs(db.engine, policy).deleted == 7
    with db.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT DISTINCT task_id FROM agent_logs")).scalars().all() == [
            running
        ]


def test_archive_plus_remaining_rows_equal_the_original_set(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    task = add_task(db)
    insert_logs(db.engine, task, 250, age=60 * DAY, level=LogLevel.WARNING)
    insert_logs(db.engine, task, 40, age=1 * DAY)
    original = _all_logs(db)
    archive = tmp_path / "logs-2026.jsonl.gz"

    seen_before_first_delete: list[bool] = []
    real_batch = batched_deletes.run_batch

    def spy(engine: sa.Engine, statement: sa.Delete, report: Any) -> int:
        if not seen_before_first_delete:
            with gzip.open(archive, "rt") as f:  # complete and readable already
                seen_before_first_delete.append(sum(1 for _ in f) == 250)
        return 0 if report is None else real_batch(engine, statement, report)

    real_drop = log_retention.drop_partitions

    def drop_spy(engine: sa.Engine, parts: Any, keep: Any, *, archive: Any = None) -> Any:
        # PostgreSQL: when the old rows fill whole months (another test of the session may
        # have made their partition), they go with a DROP; the archive must be complete first.
        def archive_then_look(conn: Any, going: Any) -> None:
            archive(conn, going)
            spy(engine, sa.delete(sa.table("agent_logs")).where(sa.false()), None)

        return real_drop(engine, parts, keep, archive=archive_then_look)

    monkeypatch.setattr(batched_deletes, "run_batch", spy)
    monkeypatch.setattr(log_retention, "drop_partitions", drop_spy)
    report = cleanup_logs(
        db.engine, RetentionPolicy(older_than=30 * DAY), archive=archive, batch_size=100
    )
    assert seen_before_first_delete == [True]
    assert (report.archived, report.deleted, report.vanished) == (250, 250, 0)
    with gzip.open(archive, "rt", encoding="utf-8") as f:
        archived = {row["id"]: row for row in map(json.loads, f)}
    remaining = _all_logs(db)
    assert set(archived) | set(remaining) == set(original)
    assert not set(archived) & set(remaining)
    assert {**archived, **remaining} == original  # every field, nothing lost
    with pytest.raises(RetentionError, match="already exists"):
        cleanup_logs(db.engine, RetentionPolicy(older_than=1 * DAY), archive=archive)


def test_failure_midway_is_loud_and_keeps_the_archive(db: Database, tmp_path: Path) -> None:
    task = add_task(db)
    insert_logs(db.engine, task, 100, age=60 * DAY)
    deletes = 0

    def fail_third_delete(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        nonlocal deletes
        if statement.lstrip().upper().startswith("DELETE FROM AGENT_LOGS"):
            deletes += 1
            if deletes == 3:
                raise RuntimeError("disk I/O error (simulated)")

    sa.event.listen(db.engine, "before_cursor_execute", fail_third_delete)
    archive = tmp_path / "a.jsonl.gz"
    try:
        with pytest.raises(RetentionError, match=r"stopped after deleting 20 of 100 rows"):
            cleanup_logs(db.engine, RetentionPolicy(older_than=DAY), archive=archive, batch_size=10)
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", fail_third_delete)
    assert count(db.engine, AgentLog) == 80
    with gzip.open(archive, "rt") as f:
        assert sum(1 for _ in f) == 100
    op, status, details = events(db.engine)[-1]
    assert (op, status, details["deleted"]) == ("cleanup", "failed", 20)
    assert "stopped after deleting 20" in details["error"]


def test_writer_in_another_process_is_never_blocked_long(
    db: Database, tmp_path: Path, record_property: Any
) -> None:
    task = add_task(db)
    for _ in range(2):
        insert_logs(db.engine, task, 10_000, age=60 * DAY)
    progress = tmp_path / "writer.log"
    url = db.engine.url.render_as_string(hide_password=False)
    writer = subprocess.Popen(
        [sys.executable, "-m", "tests.ops.writer", url, str(task), str(progress), "60"],
        cwd=Path(__file__).parents[2],
    )
    try:
        deadline = time.monotonic() + 15
        while not progress.exists() or progress.read_text().count("\n") < 10:
            assert time.monotonic() < deadline, "writer did not start"
            time.sleep(0.02)
        report = cleanup_logs(
            db.engine, RetentionPolicy(older_than=30 * DAY), archive=tmp_path / "a.jsonl.gz"
        )
        time.sleep(0.1)
    finally:
        Path(str(progress) + ".stop").touch()
        writer.wait(timeout=30)
    assert writer.returncode == 0
    waits = [float(line.split()[1]) for line in progress.read_text().splitlines()[1:]]
    assert report.deleted == 20_000 and report.batches == 10
    assert len(waits) > 20
    longest = max(waits)
    record_property("writer_longest_wait_s", round(longest, 3))
    print(
        f"\n[{db.dialect}] writer longest wait {longest * 1000:.0f} ms over {len(waits)} "
        f"inserts; longest delete batch {report.longest_batch_s * 1000:.0f} ms"
    )
    assert longest < 1.0
    assert count(db.engine, AgentLog) == len(waits)  # the writer lost nothing either
