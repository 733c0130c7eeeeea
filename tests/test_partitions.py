"""Partitioned agent_logs on PostgreSQL: the migration on a populated database (rows, ids,
keys, sequence kept, and back), and backup, verify and restore carrying the partitions."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from swarm_director.db import make_engine
from swarm_director.db.partitions import ensure_partitions, list_partitions
from swarm_director.migrations import migrate
from swarm_director.ops.backup.create import create_backup
from swarm_director.ops.backup.restore import restore_backup
from swarm_director.ops.backup.verify import verify_backup
from swarm_director.ops.checks.db_check import run_check
from swarm_director.ops.checks.schema_drift import compare_schema
from tests.dbtools import fresh_database

pytestmark = pytest.mark.parametrize("dialect", ["postgresql"])

BEFORE = "005_add_idempotency_keys"
STAMP = datetime(2026, 1, 1, tzinfo=UTC)
#: Three months with rows, and one far in the past (its own partition, made from the data).
MONTHS = [datetime(2025, 11, 5, tzinfo=UTC), datetime(2025, 12, 31, 23, 0, tzinfo=UTC),
          datetime(2026, 1, 1, tzinfo=UTC), datetime(2011, 7, 1, 12, tzinfo=UTC)]  # fmt: skip


@pytest.fixture
def engine(dialect: str, tmp_path: Path) -> Iterator[sa.Engine]:
    with fresh_database(dialect, tmp_path) as url:
        engine = make_engine(url)
        try:
            yield engine
        finally:
            engine.dispose()


def _populate(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        for agent_id, name in ((1, "writer"), (2, "reviewer")):
            conn.execute(
                sa.text(
                    "INSERT INTO agents (id, name, agent_type, status, capabilities, config, "
                    "total_conversations, total_messages_sent, created_at, updated_at) VALUES "
                    "(:id, :name, 'worker', 'idle', '[]', '{}', 0, 0, :t, :t)"
                ),
                {"id": agent_id, "name": name, "t": STAMP},
            )
        for task_id in (1, 2):
            conn.execute(
                sa.text(
                    "INSERT INTO tasks (id, type, status, title, priority, created_at, "
                    "updated_at) VALUES (:id, 'analysis', 'pending', 't', 'medium', :t, :t)"
                ),
                {"id": task_id, "t": STAMP},
            )
        # Ids from the sequence, as the service makes them.
        conn.execute(
            sa.text(
                "INSERT INTO agent_logs (task_id, agent_type, message, timestamp, log_level, "
                "agent_id, session_id, metadata, created_at) VALUES (:task, 'w', :m, :ts, "
                "'info', :agent, 's', CAST(:meta AS jsonb), :ts)"
            ),
            [
                {"task": 1 + i % 2, "m": f"log {i}", "ts": MONTHS[i % 4] + timedelta(seconds=i),
                 "agent": (1, 2, None)[i % 3], "meta": f'{{"i": {i}}}'}
                for i in range(40)
            ],
        )  # fmt: skip


def _logs(engine: sa.Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        result = conn.execute(sa.text("SELECT * FROM agent_logs ORDER BY id"))
        # Revisions after partitioning add columns (014: error_pattern, None on these logs).
        return [{k: v for k, v in row._mapping.items() if k != "error_pattern"} for row in result]


def _insert_one(engine: sa.Engine) -> int:
    with engine.begin() as conn:
        return int(
            conn.execute(
                sa.text(
                    "INSERT INTO agent_logs (task_id, agent_type, message, timestamp, "
                    "log_level, created_at) VALUES (2, 'w', 'new', now(), 'info', now()) "
                    "RETURNING id"
                )
            ).scalar_one()
        )


def test_partitioning_a_populated_table_keeps_everything_and_downgrade_too(
    engine: sa.Engine,
) -> None:
    migrate.upgrade(engine, BEFORE)
    _populate(engine)
    before = _logs(engine)

    migrate.upgrade(engine)
    assert _logs(engine) == before
    assert compare_schema(engine) == []
    with engine.connect() as conn:
        parts = {p.name: p for p in list_partitions(conn, "agent_logs")}
        per_partition = dict(
            conn.execute(
                sa.text("SELECT tableoid::regclass::text, count(*) FROM agent_logs GROUP BY 1")
            ).all()
        )
    assert {"agent_logs_p2011_07", "agent_logs_p2025_11", "agent_logs_p2025_12",
            "agent_logs_p2026_01", "agent_logs_default"} <= set(parts)  # fmt: skip
    assert per_partition == {"agent_logs_p2011_07": 10, "agent_logs_p2025_11": 10,
                             "agent_logs_p2025_12": 10, "agent_logs_p2026_01": 10}  # fmt: skip
    assert parts["agent_logs_p2025_12"].upper == datetime(2026, 1, 1, tzinfo=UTC)

    new_id = _insert_one(engine)  # the sequence continues where it was
    assert new_id == max(row["id"] for row in before) + 1
    with engine.begin() as conn:  # the foreign keys still act: cascade and set null
        with pytest.raises(sa.exc.IntegrityError), conn.begin_nested():
            conn.execute(sa.text("UPDATE agent_logs SET task_id = 99 WHERE id = 1"))
        conn.execute(sa.text("DELETE FROM tasks WHERE id = 1"))
        conn.execute(sa.text("DELETE FROM agents WHERE id = 2"))
    after = _logs(engine)
    assert {row["task_id"] for row in after} == {2}
    assert all(row["agent_id"] in (1, None) for row in after)
    assert len(after) == 21

    migrate.downgrade(engine, BEFORE)
    assert _logs(engine) == after
    with engine.connect() as conn:
        assert list_partitions(conn, "agent_logs") == []
        pk = sa.inspect(conn).get_pk_constraint("agent_logs")["constrained_columns"]
    assert pk == ["id"]
    assert _insert_one(engine) == new_id + 1
    migrate.upgrade(engine)
    assert compare_schema(engine) == []


def _placement(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT tableoid::regclass::text, count(*) FROM agent_logs GROUP BY 1")
        ).all()
    return {str(name): int(n) for name, n in rows}


def test_backup_verify_and_restore_carry_the_partitions(engine: sa.Engine, tmp_path: Path) -> None:
    migrate.upgrade(engine)
    with engine.begin() as conn:
        ensure_partitions(conn, "agent_logs", MONTHS[:2])
    _populate(engine)  # 2026-01 and 2011-07 have no partition: they wait in the default one
    placed = _placement(engine)
    assert placed == {"agent_logs_p2025_11": 10, "agent_logs_p2025_12": 10,
                      "agent_logs_default": 20}  # fmt: skip
    with engine.connect() as conn:
        partitions = list_partitions(conn, "agent_logs")
    backup = create_backup(engine, tmp_path / "backups")
    report = verify_backup(backup.path, target=engine.url)
    assert report.ok, report.mismatches
    assert report.row_counts["agent_logs"] == 40

    with engine.begin() as conn:  # damage: a month gone, rows deleted
        conn.exec_driver_sql("DROP TABLE agent_logs_p2025_11")
        conn.exec_driver_sql("DELETE FROM agent_logs WHERE id < 5")
    restore_backup(engine, backup.path, backup_dir=tmp_path / "backups")

    assert _placement(engine) == placed
    with engine.connect() as conn:
        assert list_partitions(conn, "agent_logs") == partitions
    assert compare_schema(engine) == []
    assert run_check(engine).ok
    assert _insert_one(engine) == 41  # the sequence came back with the rows
