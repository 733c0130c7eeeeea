"""Migrations: one linear history, every step up and down keeps the rows it must keep."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy.orm import Session

from swarm_director.db import make_engine
from swarm_director.db.partitions import partition_names
from swarm_director.errors import SchemaError
from swarm_director.migrations import migrate
from swarm_director.models.attempt_count import attempt_counts_drift
from swarm_director.models.error_group import error_groups_drift
from swarm_director.models.fulltext import full_text_names
from swarm_director.models.rollup import log_hours_drift, task_hours_drift
from swarm_director.ops.checks.schema_drift import compare_schema
from swarm_director.store import conversations, logs, tasks
from tests.dbtools import fresh_database

REVISIONS = [
    "001_initial_schema",
    "002_add_agent_hierarchy",
    "003_add_conversation_tracking",
    "004_add_maintenance_events",
    "005_add_idempotency_keys",
    "006_add_statement_timings",
    "007_add_full_text_search",
    "008_partition_agent_logs",
    "009_add_api_keys",
    "010_add_console_sessions",
    "011_add_history_and_work_queue",
    "012_add_report_rollups",
    "013_add_task_attempts",
    "014_add_error_groups",
    "015_add_attempt_counts",
    "016_add_history_error_message",
    "017_index_report_ranges",
    "018_add_attempt_digests",
    "019_add_attempt_digest_errors",
]

#: Tables each revision creates (and its downgrade drops).
CREATES = {
    "001_initial_schema": {"agents", "tasks", "agent_logs", "drafts", "email_messages"},
    "002_add_agent_hierarchy": set(),
    "003_add_conversation_tracking": {"conversations", "messages", "conversation_participants"},
    "004_add_maintenance_events": {"maintenance_events"},
    "005_add_idempotency_keys": {"idempotency_keys"},
    "006_add_statement_timings": {"statement_timings"},
    # Full-text objects are not tables of the models (see table_names).
    "007_add_full_text_search": set(),
    "008_partition_agent_logs": set(),
    "009_add_api_keys": {"api_keys"},
    "010_add_console_sessions": {"console_sessions"},
    "011_add_history_and_work_queue": {"history"},
    "012_add_report_rollups": {
        "log_volume_hours",
        "log_volume_deltas",
        "task_count_hours",
        "task_count_deltas",
    },
    "013_add_task_attempts": {"task_attempts"},
    "014_add_error_groups": {"error_group_hours", "error_group_deltas"},
    "015_add_attempt_counts": {"attempt_count_hours", "attempt_count_deltas"},
    "016_add_history_error_message": set(),
    "017_index_report_ranges": set(),
    "018_add_attempt_digests": {"attempt_digests", "attempt_digest_marks"},
    # 019 makes attempt_digests again with a column more (a cache: empty).
    "019_add_attempt_digest_errors": set(),
}
#: Tables whose rows are counted from other tables' (not inserted by ROWS).
DERIVED = {
    "log_volume_hours",
    "log_volume_deltas",
    "task_count_hours",
    "task_count_deltas",
    "task_attempts",
    "error_group_hours",
    "error_group_deltas",
    "attempt_count_hours",
    "attempt_count_deltas",
    "attempt_digests",
    "attempt_digest_marks",
}

T1 = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
T2 = datetime(2026, 3, 5, 8, 9, 10, tzinfo=UTC)
STAMPS = {"created_at": T1, "updated_at": T2}

#: Rows inserted right after upgrading to each revision, using only the columns it has.
#: Foreign keys point at rows of earlier steps, so a rebuild of a referenced table that
#: cascaded or nulled them out would show up as a changed row.
ROWS: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "001_initial_schema": [
        ("agents", {"id": 1, "name": "director", "agent_type": "supervisor", "status": "active",
                    "description": "routes work", "capabilities": ["route", "plan"],
                    "config": {"model": "x", "temperature": 0.2}, **STAMPS}),
        ("agents", {"id": 2, "name": "writer", "agent_type": "specialist", "status": "busy",
                    "description": None, "capabilities": [], "config": {}, **STAMPS}),
        ("tasks", {"id": 1, "type": "email_draft", "user_id": "u-1", "status": "in_progress",
                   "title": "Write the launch email", "description": "short", "priority": "high",
                   "assigned_agent_id": 2, "parent_task_id": None, "completed_at": None,
                   **STAMPS}),
        ("tasks", {"id": 2, "type": "analysis", "user_id": None, "status": "completed",
                   "title": "Subtask", "description": None, "priority": "low",
                   "assigned_agent_id": 1, "parent_task_id": 1, "completed_at": T2, **STAMPS}),
        ("agent_logs", {"id": 1, "task_id": 1, "agent_type": "specialist", "message": "started",
                        "timestamp": T1, "log_level": "warning", "agent_id": 2,
                        "session_id": "s-1", "metadata": {"step": 1}, "created_at": T1}),
        ("drafts", {"id": 1, "task_id": 1, "version": 1, "content": "Dear all,",
                    "status": "under_review", "author_agent_id": 2, "reviewer_agent_id": 1,
                    "review_notes": "tone", **STAMPS}),
        ("email_messages", {"id": 1, "task_id": 1, "recipient": "a@example.com",
                            "subject": "Launch", "body": "Dear all,", "status": "queued",
                            "sender": "bot@example.com", "cc": ["b@example.com"], "bcc": [],
                            "draft_id": 1, "sent_at": None, "error_message": None, **STAMPS}),
    ],
    "002_add_agent_hierarchy": [
        ("agents", {"id": 3, "name": "reviewer", "agent_type": "worker", "status": "idle",
                    "description": None, "capabilities": ["review"], "config": {},
                    "parent_id": 1, **STAMPS}),
    ],
    "003_add_conversation_tracking": [
        ("agents", {"id": 4, "name": "mailer", "agent_type": "worker", "status": "idle",
                    "description": None, "capabilities": [], "config": {}, "parent_id": 3,
                    "total_conversations": 5, "total_messages_sent": 7,
                    "average_response_time": 1.5, "last_conversation_at": T2, **STAMPS}),
        ("conversations", {"id": 1, "title": "Launch", "description": None, "status": "active",
                           "task_id": 1, "created_by_agent_id": 1, "participant_count": 2,
                           "message_count": 2, "metadata": {"topic": "launch"},
                           "completed_at": None, **STAMPS}),
        ("tasks", {"id": 3, "type": "communication", "user_id": "u-2", "status": "pending",
                   "title": "Follow up", "description": None, "priority": "medium",
                   "assigned_agent_id": 4, "parent_task_id": None, "conversation_id": 1,
                   "completed_at": None, **STAMPS}),
        ("messages", {"id": 1, "conversation_id": 1, "sender_agent_id": 1,
                      "message_type": "text", "content": "hello", "metadata": None,
                      "parent_message_id": None, "thread_id": "t-1", "is_edited": False,
                      "edit_count": 0, **STAMPS}),
        ("messages", {"id": 2, "conversation_id": 1, "sender_agent_id": 2,
                      "message_type": "system", "content": "reply", "metadata": {"a": [1]},
                      "parent_message_id": 1, "thread_id": "t-1", "is_edited": True,
                      "edit_count": 2, **STAMPS}),
        ("conversation_participants", {"id": 1, "conversation_id": 1, "agent_id": 2,
                                       "role": "writer", "joined_at": T1, "left_at": None,
                                       "is_active": True, "message_count": 1,
                                       "last_read_message_id": 2, "created_at": T1}),
    ],
    "004_add_maintenance_events": [
        ("maintenance_events", {"id": 1, "operation": "backup", "status": "ok",
                                "started_at": T1, "finished_at": T2,
                                "details": {"path": "b.db"}, **STAMPS}),
    ],
    "005_add_idempotency_keys": [
        ("idempotency_keys", {"id": 1, "scope": "logs:task:1", "key": "k-1",
                              "request_hash": "ab" * 32, "result": {"inserted": 3},
                              "created_at": T1}),
    ],
    "006_add_statement_timings": [
        ("statement_timings", {"shape_hash": "cd" * 32, "shape": "SELECT ? FROM tasks",
                               "calls": 3, "total_ms": 1.5, "max_ms": 0.75,
                               "last_seen": T1, "sources": "host:1 host:2"}),
    ],
    "007_add_full_text_search": [
        ("agent_logs", {"id": 2, "task_id": 3, "agent_type": "worker",
                        "message": "disk full on db.example.com", "timestamp": T2,
                        "log_level": "error", "agent_id": None, "session_id": None,
                        "metadata": None, "created_at": T2}),
    ],
    "008_partition_agent_logs": [  # a month with no partition of its own: the default one
        ("agent_logs", {"id": 4, "task_id": 3, "agent_type": "worker", "message": "late",
                        "timestamp": datetime(2019, 5, 6, tzinfo=UTC), "log_level": "error",
                        "agent_id": None, "session_id": None, "metadata": None,
                        "created_at": T2}),
    ],
    # 009 rebuilds maintenance_events on SQLite (a new CHECK): its rows must survive.
    "009_add_api_keys": [
        ("api_keys", {"id": 1, "name": "agent-1", "key_id": "0123456789ab",
                      "secret_hash": "cd" * 32, "scope": "write", "last_used_at": None,
                      "expires_at": T2, "revoked_at": None, **STAMPS}),
        ("maintenance_events", {"id": 2, "operation": "restore", "status": "failed",
                                "started_at": T2, "finished_at": None, "details": {},
                                **STAMPS}),
    ],
    "010_add_console_sessions": [
        ("console_sessions", {"id": 1, "session_hash": "ef" * 32, "key_id": "0123456789ab",
                              "expires_at": T2, "ended_at": None, "created_at": T1}),
    ],
    # 011 adds the queue's columns to tasks in place: the tasks above keep every value.
    "011_add_history_and_work_queue": [
        ("history", {"id": 1, "entity": "task", "entity_id": 1, "action": "claim",
                     "changes": {"status": ["pending", "in_progress"]}, "actor": "agent-1",
                     "request_id": "r-1", "at": T2}),
        ("tasks", {"id": 4, "type": "analysis", "user_id": None, "status": "in_progress",
                   "title": "Leased", "description": None, "priority": "critical",
                   "assigned_agent_id": 4, "parent_task_id": None, "conversation_id": None,
                   "completed_at": None, "attempts": 2, "max_attempts": 5,
                   "not_before": None, "lease_token": "t" * 32, "lease_expires_at": T2,
                   "claimed_at": T1, "last_error": "boom", "result": {"ok": True},
                   **STAMPS}),
    ],
    # 012's table is counted from the logs above (the test checks the backfill); the queue
    # steps are for 013's attempts.
    "012_add_report_rollups": [
        ("history", {"id": 2, "entity": "task", "entity_id": 4, "action": "create",
                     "changes": {"status": [None, "pending"]}, "actor": "a", "request_id": None,
                     "at": T1}),
        ("history", {"id": 3, "entity": "task", "entity_id": 4, "action": "claim",
                     "changes": {"assigned_agent_id": [None, 4], "attempt": [1, 2]},
                     "actor": "a", "request_id": None, "at": T1 + timedelta(seconds=90)}),
        ("history", {"id": 4, "entity": "task", "entity_id": 4, "action": "complete",
                     "changes": {"status": ["in_progress", "completed"]}, "actor": "a",
                     "request_id": None, "at": T1 + timedelta(seconds=100.5)}),
    ],
    # 013's table is derived from the history above (the test checks the backfill).
    "013_add_task_attempts": [],
    # 014 gives the error logs above their patterns (the test checks them).
    "014_add_error_groups": [],
    # 015 counts the attempts of 013 (the test checks them); a failed step for 016.
    "015_add_attempt_counts": [
        ("history", {"id": 5, "entity": "task", "entity_id": 4, "action": "fail",
                     "changes": {"last_error": [None, "boom 42"]}, "actor": "a",
                     "request_id": None, "at": T2}),
    ],
    # 016 derives the error messages of the history above (the test checks them).
    "016_add_history_error_message": [],
    # 017 only indexes what is there.
    "017_index_report_ranges": [],
    # 018 backfills nothing: the fold digests the hours (its rows are not inserted here).
    "018_add_attempt_digests": [],
    "019_add_attempt_digest_errors": [],
}  # fmt: skip

Snapshot = dict[str, list[dict[str, Any]]]


@pytest.fixture
def engine(dialect: str, tmp_path: Path) -> Iterator[sa.Engine]:
    """An engine on a new, empty database (no tables, no alembic_version)."""
    with fresh_database(dialect, tmp_path) as url:
        engine = make_engine(url)
        try:
            yield engine
        finally:
            engine.dispose()


def table_names(engine: sa.Engine) -> set[str]:
    """The tables, not counting alembic_version, the partitions of a partitioned table or
    SQLite's FTS5 tables (copies of indexed text; their own test is below)."""
    with engine.connect() as conn:
        partitions = partition_names(conn)
    names = set(sa.inspect(engine).get_table_names()) - {"alembic_version", *partitions}
    return names - full_text_names()


def snapshot(engine: sa.Engine) -> Snapshot:
    """Every row of every table, ordered by primary key."""
    metadata = sa.MetaData()
    with engine.connect() as conn:
        metadata.reflect(conn, only=sorted(table_names(engine)))
        return {
            name: [
                dict(row._mapping)
                for row in conn.execute(sa.select(table).order_by(*table.primary_key.columns))
            ]
            for name, table in metadata.tables.items()
        }


def insert_rows(engine: sa.Engine, revision: str) -> None:
    metadata = sa.MetaData()
    with engine.begin() as conn:
        metadata.reflect(conn)
        for table, row in ROWS[revision]:
            conn.execute(sa.insert(metadata.tables[table]), row)


def assert_rows_kept(before: Snapshot, after: Snapshot, dropped: set[str]) -> None:
    """Tables not dropped keep every row with the values of the columns they still have."""
    assert set(before) - set(after) == dropped
    for table in set(before) - dropped:
        assert len(after[table]) == len(before[table]), table
        if not before[table]:
            continue
        common = before[table][0].keys() & after[table][0].keys()
        assert [{k: r[k] for k in common} for r in after[table]] == [
            {k: r[k] for k in common} for r in before[table]
        ], table


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def assert_log_hours_backfilled(after: Snapshot) -> None:
    """012 counted every log of the earlier steps into log_volume_hours, by UTC hour."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    counted = Counter(
        ((_aware(row["timestamp"]) - epoch) // timedelta(hours=1), row["log_level"])
        for row in after["agent_logs"]
    )
    assert len(after["agent_logs"]) >= 3
    assert {(r["epoch_hour"], r["log_level"]): r["logs"] for r in after["log_volume_hours"]} == (
        dict(counted)
    )


def test_history_is_one_line_of_the_named_revisions() -> None:
    script = ScriptDirectory.from_config(migrate.alembic_config())
    assert script.get_heads() == [REVISIONS[-1]]
    assert migrate.head_revision() == REVISIONS[-1]
    history = migrate.history()
    assert [info.revision for info in history] == REVISIONS
    assert [info.down_revision for info in history] == [None, *REVISIONS[:-1]]
    assert all(info.doc and "\n" not in info.doc for info in history)
    for revision in REVISIONS:
        assert (migrate.MIGRATIONS_DIR / "versions" / f"{revision}.py").is_file()


def test_each_step_up_and_down_keeps_the_rows_of_tables_it_does_not_drop(
    engine: sa.Engine,
) -> None:
    assert migrate.current_revision(engine) is None
    assert migrate.pending_revisions(engine) == REVISIONS
    before: Snapshot = {}
    for revision in REVISIONS:
        migrate.upgrade(engine, "+1")
        assert migrate.current_revision(engine) == revision
        after = snapshot(engine)
        assert set(after) == set(before) | CREATES[revision]
        assert_rows_kept(before, after, dropped=set())
        if revision == "012_add_report_rollups":
            assert_log_hours_backfilled(after)
            with engine.connect() as conn:
                assert task_hours_drift(conn) == [] and log_hours_drift(conn) == []
            assert {r["kind"] for r in after["task_count_hours"]} == {"created"}
        if revision == "013_add_task_attempts":
            attempts = {
                r["claim_id"]: (r["task_id"], r["agent_id"], r["attempt"], r["wait_s"],
                                r["run_s"], r["end_action"])
                for r in after["task_attempts"]
            }  # fmt: skip
            # The claim of 011 has no step before it: no wait, and nothing ended it.
            assert attempts == {1: (1, None, None, None, None, None),
                                3: (4, 4, 2, 90.0, 10.5, "complete")}  # fmt: skip
        if revision == "014_add_error_groups":
            patterns = {r["id"]: r["error_pattern"] for r in after["agent_logs"]}
            # The warning has none; the error logs of 007 and 008 have their masked messages.
            assert patterns == {1: None, 2: "disk full on db.example.com", 4: "late"}
            with engine.connect() as conn:
                assert error_groups_drift(conn) == []
            assert sorted(r["logs"] for r in after["error_group_hours"]) == [1, 1]
        if revision == "015_add_attempt_counts":
            with engine.connect() as conn:
                assert attempt_counts_drift(conn) == []
            counts = {(r["kind"], r["agent_id"]): r["attempts"]
                      for r in after["attempt_count_hours"]}  # fmt: skip
            # 013's two claims: one without an agent, still running; one by agent 4, completed.
            assert counts == {("claimed", 0): 1, ("claimed", 4): 1, ("completed", 4): 1}
        if revision == "016_add_history_error_message":
            messages = {r["id"]: r["error_message"] for r in after["history"]}
            assert messages == {1: None, 2: None, 3: None, 4: None, 5: "boom 42"}
        insert_rows(engine, revision)
        before = snapshot(engine)

    assert migrate.is_at_head(engine)
    assert compare_schema(engine) == []
    inserted = sum(len(rows) for name, rows in before.items() if name not in DERIVED)
    assert inserted == sum(len(r) for r in ROWS.values())
    agents = {row["name"]: row for row in before["agents"]}
    # Agents from before 003 got their counters backfilled; newer ones kept what was written.
    assert (agents["director"]["total_conversations"], agents["director"]["parent_id"]) == (0, None)
    assert (agents["reviewer"]["total_messages_sent"], agents["reviewer"]["parent_id"]) == (0, 1)
    assert agents["mailer"]["total_conversations"] == 5

    for revision in reversed(REVISIONS):
        migrate.downgrade(engine, "-1")
        after = snapshot(engine)
        assert_rows_kept(before, after, dropped=CREATES[revision])
        before = after
    assert migrate.current_revision(engine) is None
    assert table_names(engine) == set()

    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == migrate.head_revision()
    assert compare_schema(engine) == []


def test_downgrade_to_a_revision_and_upgrade_again(engine: sa.Engine) -> None:
    migrate.upgrade(engine)
    assert migrate.pending_revisions(engine) == []

    migrate.downgrade(engine, "002_add_agent_hierarchy")
    assert migrate.current_revision(engine) == "002_add_agent_hierarchy"
    assert not migrate.is_at_head(engine)
    assert migrate.pending_revisions(engine) == REVISIONS[2:]
    assert "conversations" not in table_names(engine)
    assert any("conversations" in problem for problem in compare_schema(engine))

    migrate.upgrade(engine, "003")  # an unambiguous prefix is enough
    assert migrate.pending_revisions(engine) == REVISIONS[3:]
    migrate.upgrade(engine)
    assert migrate.is_at_head(engine)
    assert compare_schema(engine) == []


def test_the_migrated_schema_enforces_foreign_keys_afterwards(engine: sa.Engine) -> None:
    # Migrations switch SQLite's foreign keys off for table rebuilds; they must come back on.
    migrate.upgrade(engine)
    insert = sa.text(
        "INSERT INTO agents (id, name, agent_type, status, capabilities, config, parent_id,"
        " total_conversations, total_messages_sent, created_at, updated_at) VALUES"
        " (:id, :name, 'worker', 'idle', '[]', '{}', :parent, 0, 0,"
        " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
    )
    with engine.begin() as conn:
        conn.execute(insert, [{"id": 1, "name": "boss", "parent": None}])
        conn.execute(insert, [{"id": 2, "name": "report", "parent": 1}])
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(insert, {"id": 3, "name": "orphan", "parent": 999})
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM agents WHERE id = 1"))
    with engine.connect() as conn:
        parent = conn.execute(sa.text("SELECT parent_id FROM agents WHERE id = 2")).scalar_one()
    assert parent is None  # ON DELETE SET NULL


def test_a_failing_upgrade_changes_nothing(engine: sa.Engine) -> None:
    # All revisions of one call share one transaction: 004 fails, so 001-003 are undone too.
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE maintenance_events (id INTEGER PRIMARY KEY)"))
    with pytest.raises(SchemaError, match="failed in revision 004_add_maintenance_events") as info:
        migrate.upgrade(engine)
    assert isinstance(info.value.__cause__, sa.exc.DBAPIError)
    assert migrate.current_revision(engine) is None
    assert table_names(engine) == {"maintenance_events"}


@pytest.mark.parametrize("dialect", ["sqlite"])  # PRAGMA foreign_key_check is SQLite's
def test_sqlite_upgrade_refuses_to_leave_broken_foreign_keys(engine: sa.Engine) -> None:
    migrate.upgrade(engine, "001_initial_schema")
    insert_rows(engine, "001_initial_schema")
    # Written behind the engine's back, with foreign keys off (sqlite3's default).
    with closing(sqlite3.connect(str(engine.url.database))) as raw, raw:
        raw.execute("UPDATE tasks SET assigned_agent_id = 999 WHERE id = 1")
    with pytest.raises(SchemaError, match="violate foreign keys"):
        migrate.upgrade(engine)
    assert migrate.current_revision(engine) == "001_initial_schema"
    assert "parent_id" not in {c["name"] for c in sa.inspect(engine).get_columns("agents")}


def test_env_also_migrates_from_a_url(engine: sa.Engine) -> None:
    config = migrate.alembic_config()
    url = engine.url.render_as_string(hide_password=False).replace("%", "%%")
    config.set_main_option("sqlalchemy.url", url)
    command.upgrade(config, "head")
    assert migrate.is_at_head(engine)
    assert compare_schema(engine) == []


def test_unknown_revision_is_a_schema_error(engine: sa.Engine) -> None:
    for revision in ("999_nope", "nope+1", "00"):
        with pytest.raises(SchemaError, match="unknown revision"):
            migrate.upgrade(engine, revision)
        with pytest.raises(SchemaError, match="unknown revision"):
            migrate.downgrade(engine, revision)
    assert migrate.current_revision(engine) is None


def test_wrong_direction_is_a_schema_error(engine: sa.Engine) -> None:
    migrate.upgrade(engine, "002_add_agent_hierarchy")
    with pytest.raises(SchemaError, match="downgrade to go back"):
        migrate.upgrade(engine, "001_initial_schema")
    with pytest.raises(SchemaError, match="upgrade to go forward"):
        migrate.downgrade(engine, "head")
    assert migrate.current_revision(engine) == "002_add_agent_hierarchy"


def test_database_from_a_newer_version_is_a_schema_error(engine: sa.Engine) -> None:
    migrate.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '007_from_the_future'"))
    assert migrate.current_revision(engine) == "007_from_the_future"
    for call in (
        lambda: migrate.upgrade(engine),
        lambda: migrate.downgrade(engine, "base"),
        lambda: migrate.pending_revisions(engine),
        lambda: migrate.is_at_head(engine),
    ):
        with pytest.raises(SchemaError, match=r"007_from_the_future.*newer version"):
            call()
    assert "agents" in table_names(engine)


def _upgrade_in_another_process(url: str) -> str | None:
    engine = make_engine(url)
    try:
        migrate.upgrade(engine)
    except Exception as error:
        return repr(error)
    finally:
        engine.dispose()
    return None


def test_concurrent_upgrades_from_two_processes_run_one_after_the_other(
    engine: sa.Engine,
) -> None:
    # Two workers starting at once: the second waits for the first and finds nothing to do.
    url = engine.url.render_as_string(hide_password=False)
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        results = pool.map_async(_upgrade_in_another_process, [url, url]).get(timeout=60)
    assert results == [None, None]
    assert migrate.is_at_head(engine)


def test_concurrent_upgrades_from_two_threads_run_one_after_the_other(
    engine: sa.Engine,
) -> None:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            migrate.upgrade(engine)
        except BaseException as error:  # reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert migrate.is_at_head(engine)


def _found(engine: sa.Engine) -> tuple[list[int], list[int], list[int]]:
    """Ids of the logs, tasks and messages that searches for words of the ROWS find."""
    with engine.connect() as conn, Session(conn) as session:
        return (
            [row.id for row in logs.list_logs(conn, {"q": "started"}).items]
            + [row.id for row in logs.list_logs(conn, {"q": '"example com"'}).items],
            [task.id for task in tasks.list_tasks(session, {"q": "launch EMAIL"}).items],
            [m.id for m in conversations.list_messages(session, 1, {"q": "reply"}).items],
        )


def test_search_indexes_the_rows_from_before_it_and_downgrade_removes_it(
    engine: sa.Engine,
) -> None:
    for revision in REVISIONS[: REVISIONS.index("007_add_full_text_search")]:
        migrate.upgrade(engine, revision)
        insert_rows(engine, revision)
    migrate.upgrade(engine, "007_add_full_text_search")
    insert_rows(engine, "007_add_full_text_search")  # written after: kept by the index itself
    migrate.upgrade(engine)  # the store reads the models' columns, which later revisions add

    assert _found(engine) == ([1, 2], [1], [2])

    migrate.downgrade(engine, "005_add_idempotency_keys")
    assert not set(sa.inspect(engine).get_table_names()) & full_text_names()
    with engine.connect() as conn:
        indexes = {ix["name"] for t in ("agent_logs", "tasks", "messages")
                   for ix in sa.inspect(conn).get_indexes(t)}  # fmt: skip
    assert not indexes & full_text_names()
    assert compare_schema(engine) != []  # behind head: the search objects are missing
    with engine.begin() as conn:  # deleting without the triggers works: they are gone
        conn.execute(sa.text("DELETE FROM agent_logs WHERE id = 2"))

    migrate.upgrade(engine)
    assert compare_schema(engine) == []
    assert _found(engine) == ([1], [1], [2])
