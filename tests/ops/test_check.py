"""db check: a clean database passes; each kind of planted corruption is found and named."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from swarm_director.db import Base, Database, utcnow
from swarm_director.models import AgentLog
from swarm_director.ops.checks.db_check import run_check
from swarm_director.ops.checks.findings import CheckReport
from tests.ops.factory import small_dataset


def _found(report: CheckReport) -> set[tuple[str, str | None, int | None]]:
    return {(p.rule, p.table, p.row_id) for p in report.problems}


def _raw(engine: Engine, *statements: str, no_constraints: bool = False) -> None:
    """Run SQL bypassing the safeguards a damaged database has lost."""
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        if engine.dialect.name == "sqlite":
            if no_constraints:
                cursor.execute("PRAGMA foreign_keys=OFF")
                cursor.execute("PRAGMA ignore_check_constraints=ON")
            cursor.execute("BEGIN IMMEDIATE")
        elif no_constraints:
            cursor.execute("SET LOCAL session_replication_role = replica")
        for statement in statements:
            cursor.execute(statement)
        raw.commit()
        if engine.dialect.name == "sqlite":
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA ignore_check_constraints=OFF")
    finally:
        raw.close()


def test_consistent_database_is_clean(db: Database) -> None:
    small_dataset(db)
    report = run_check(db.engine)
    assert report.problems == []
    assert report.ok
    assert {"foreign_key", "counter", "agent_cycle", "email_sent_at"} <= set(report.rules)


def test_orphan_rows_are_found(db: Database) -> None:
    ids = small_dataset(db, logs=1)
    _raw(
        db.engine,
        f"UPDATE agent_logs SET task_id = 9999 WHERE task_id = {ids['task']}",
        no_constraints=True,
    )
    with db.read() as s:
        log_id = s.scalar(sa.select(AgentLog.id))
    assert ("foreign_key", "agent_logs", log_id) in _found(run_check(db.engine))


def test_agent_and_task_cycles_are_found(db: Database) -> None:
    ids = small_dataset(db)
    _raw(
        db.engine,
        f"UPDATE agents SET parent_id = {ids['writer']} WHERE id = {ids['director']}",
        f"UPDATE tasks SET parent_task_id = {ids['subtask']} WHERE id = {ids['task']}",
    )
    report = run_check(db.engine)
    found = _found(report)
    assert ("agent_cycle", "agents", min(ids["director"], ids["writer"])) in found
    assert ("task_cycle", "tasks", min(ids["task"], ids["subtask"])) in found
    cycle = next(p for p in report.problems if p.rule == "agent_cycle")
    assert str(ids["director"]) in cycle.message and str(ids["writer"]) in cycle.message


def test_draft_version_gap_is_found(db: Database) -> None:
    ids = small_dataset(db)
    _raw(db.engine, f"UPDATE drafts SET version = 3 WHERE id = {ids['draft2']}")
    report = run_check(db.engine)
    assert ("draft_version_gap", "drafts", ids["draft2"]) in _found(report)
    assert "missing 2" in next(p.message for p in report.problems)


def test_email_sent_at_inconsistent_with_status_is_found(db: Database) -> None:
    small_dataset(db)
    _raw(db.engine, "UPDATE email_messages SET sent_at = NULL")
    with db.read() as s:
        email_id = s.scalar(sa.text("SELECT id FROM email_messages"))
    report = run_check(db.engine)
    assert _found(report) == {("email_sent_at", "email_messages", email_id)}
    assert report.problems[0].message == "status is sent but sent_at is empty"
    # A queued email had its sent_at cleared by the retry: one that kept it is wrong...
    now = utcnow().isoformat(sep=" ")
    _raw(db.engine, f"UPDATE email_messages SET status = 'queued', sent_at = '{now}'")
    assert _found(run_check(db.engine)) == {("email_sent_at", "email_messages", email_id)}
    # ...while a bounced (failed) email may keep the time it left.
    _raw(db.engine, "UPDATE email_messages SET status = 'failed'")
    assert run_check(db.engine).ok


def test_counters_that_disagree_with_rows_are_found(db: Database) -> None:
    ids = small_dataset(db)
    _raw(
        db.engine,
        f"UPDATE conversations SET message_count = 7 WHERE id = {ids['conversation']}",
        f"UPDATE agents SET total_messages_sent = 0 WHERE id = {ids['writer']}",
    )
    report = run_check(db.engine)
    assert _found(report) == {
        ("counter", "conversations", ids["conversation"]),
        ("counter", "agents", ids["writer"]),
    }
    messages = sorted(p.message for p in report.problems)
    assert messages == [
        "message_count is 7 but the rows say 3",
        "total_messages_sent is 0 but the rows say at least 2",
    ]
    # Agents' totals are lifetime statistics: more than the rows left is fine.
    _raw(db.engine, f"UPDATE agents SET total_messages_sent = 50 WHERE id = {ids['writer']}")
    assert _found(run_check(db.engine)) == {("counter", "conversations", ids["conversation"])}


def test_enum_value_outside_its_set_is_found(own_db: Database) -> None:
    ids = small_dataset(own_db)
    if own_db.dialect == "postgresql":
        _raw(own_db.engine, "ALTER TABLE tasks DROP CONSTRAINT ck_tasks_status")
    _raw(
        own_db.engine,
        f"UPDATE tasks SET status = 'lost' WHERE id = {ids['task']}",
        no_constraints=True,
    )
    report = run_check(own_db.engine)
    assert ("enum_value", "tasks", ids["task"]) in _found(report)
    assert "status='lost'" in next(p.message for p in report.problems if p.rule == "enum_value")


def test_duplicate_draft_versions_are_found(own_db: Database) -> None:
    ids = small_dataset(own_db)
    engine = own_db.engine
    if engine.dialect.name == "postgresql":
        _raw(engine, "ALTER TABLE drafts DROP CONSTRAINT uq_drafts_task_id_version")
    else:
        # SQLite cannot drop a UNIQUE constraint: rebuild the table without it.
        stripped = sa.MetaData()
        for table in Base.metadata.sorted_tables:
            table.to_metadata(stripped)
        copy = stripped.tables["drafts"]
        copy.constraints = {c for c in copy.constraints if not isinstance(c, sa.UniqueConstraint)}
        ddl = str(sa.schema.CreateTable(copy).compile(engine))
        _raw(
            engine,
            "CREATE TABLE drafts_keep AS SELECT * FROM drafts",
            "DROP TABLE drafts",
            ddl,
            "INSERT INTO drafts SELECT * FROM drafts_keep",
            "DROP TABLE drafts_keep",
            no_constraints=True,
        )
    now = utcnow().isoformat(sep=" ")
    _raw(
        engine,
        "INSERT INTO drafts (task_id, version, content, status, created_at, updated_at) "
        f"VALUES ({ids['task']}, 2, 'again', 'draft', '{now}', '{now}')",
    )
    with engine.connect() as conn:
        dup_id = conn.execute(sa.text("SELECT max(id) FROM drafts")).scalar()
    report = run_check(engine)
    assert _found(report) == {("draft_version_duplicate", "drafts", dup_id)}


def test_missing_table_is_reported(own_db: Database) -> None:
    small_dataset(own_db)
    _raw(own_db.engine, "DROP TABLE email_messages")
    report = run_check(own_db.engine)
    assert ("schema", "email_messages", None) in _found(report)
    assert not report.ok


def test_sqlite_file_damage_is_found(tmp_path: Path) -> None:
    from swarm_director.db import make_engine

    path = tmp_path / "damaged.db"
    database = Database(make_engine(f"sqlite:///{path}"))
    Base.metadata.create_all(database.engine)
    small_dataset(database, logs=3000)
    with database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        leaf = conn.exec_driver_sql(
            "SELECT pageno FROM dbstat WHERE name = 'ix_agent_logs_timestamp_id' "
            "AND pagetype = 'leaf' ORDER BY pageno LIMIT 1 OFFSET 2"
        ).scalar_one()
        page_size = conn.exec_driver_sql("PRAGMA page_size").scalar_one()
    database.dispose()
    with path.open("r+b") as f:  # scribble over the end of one of the index's leaf pages
        f.seek(leaf * page_size - 200)
        f.write(b"\x07" * 200)
    damaged = Database(make_engine(f"sqlite:///{path}"))
    try:
        report = run_check(damaged.engine)
    finally:
        damaged.dispose()
    assert not report.ok
    damage = [p for p in report.problems if p.rule == "integrity"]
    assert damage, report.problems
    assert not any("could not run" in p.message for p in damage), damage
    assert any(p.table == "agent_logs" and "missing from index" in p.message for p in damage)


@pytest.mark.parametrize("limit", [2])
def test_problems_beyond_the_limit_are_counted(db: Database, limit: int) -> None:
    small_dataset(db, logs=5)
    _raw(db.engine, "UPDATE agent_logs SET task_id = 4242", no_constraints=True)
    report = run_check(db.engine, limit_per_rule=limit)
    assert len([p for p in report.problems if p.rule == "foreign_key"]) == limit
    assert report.omitted == {"foreign_key": 3}
    assert report.problem_count == 5
