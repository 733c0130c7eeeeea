"""compare_schema: silent when the database matches the models, specific when it does not."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import URL

from swarm_director.db import make_engine
from swarm_director.db.partitions import ensure_partitions, partition_names
from swarm_director.migrations import migrate
from swarm_director.ops.checks.schema_drift import compare_schema
from tests.dbtools import fresh_database


@pytest.fixture
def migrated(dialect: str, tmp_path: Path) -> Iterator[sa.Engine]:
    """An engine on a new database upgraded to head by the migrations."""
    with fresh_database(dialect, tmp_path) as url:
        engine = make_engine(url)
        try:
            migrate.upgrade(engine)
            yield engine
        finally:
            engine.dispose()


def test_migration_head_has_no_drift_from_the_models(migrated: sa.Engine) -> None:
    # The CI drift check: what the migrations build is exactly what the models describe.
    assert migrate.current_revision(migrated) == migrate.head_revision()
    assert compare_schema(migrated) == []


def test_schema_built_from_the_models_has_no_drift(db_url: URL) -> None:
    engine = make_engine(db_url)
    try:
        assert compare_schema(engine) == []
    finally:
        engine.dispose()


def test_missing_tables_are_reported(dialect: str, tmp_path: Path) -> None:
    with fresh_database(dialect, tmp_path) as url:
        engine = make_engine(url)
        try:
            migrate.upgrade(engine, "003_add_conversation_tracking")
            problems = compare_schema(engine)
            queue = ("attempts", "claimed_at", "last_error", "lease_expires_at", "lease_token")
            queue += ("max_attempts", "not_before", "result")
            expected = [
                "column agents.last_seen_at is in the models but missing from the database",
                "column agent_logs.error_pattern is in the models but missing from the database",
                "index ix_agent_logs_error_pattern_timestamp on agent_logs (error_pattern, "
                "timestamp) is in the models but missing from the database",
                *(
                    f"column tasks.{c} is in the models but missing from the database"
                    for c in queue
                ),
                "index ix_tasks_status_lease_expires_at on tasks (status, lease_expires_at) is in "
                "the models but missing from the database",
                "index ix_tasks_status_priority_id on tasks (status, priority, id) is in the "
                "models but missing from the database",
                "index ix_tasks_created_at on tasks (created_at) is in the models but missing "
                "from the database",
                "index ix_email_messages_sent_at on email_messages (sent_at) is in the models "
                "but missing from the database",
                "index ix_drafts_status_updated_at on drafts (status, updated_at, version) is "
                "in the models but missing from the database",
                "table history is in the models but missing from the database",
                "table api_keys is in the models but missing from the database",
                "table console_sessions is in the models but missing from the database",
                "table idempotency_keys is in the models but missing from the database",
                "table attempt_count_deltas is in the models but missing from the database",
                "table attempt_count_hours is in the models but missing from the database",
                "table attempt_digests is in the models but missing from the database",
                "table attempt_digest_marks is in the models but missing from the database",
                "table log_volume_deltas is in the models but missing from the database",
                "table log_volume_hours is in the models but missing from the database",
                "table error_group_deltas is in the models but missing from the database",
                "table error_group_hours is in the models but missing from the database",
                "table maintenance_events is in the models but missing from the database",
                "table statement_timings is in the models but missing from the database",
                "table task_count_deltas is in the models but missing from the database",
                "table task_count_hours is in the models but missing from the database",
                "table task_attempts is in the models but missing from the database",
            ]
            if dialect == "postgresql":  # partitioned from 008 on
                expected.insert(
                    0,
                    "table agent_logs is not partitioned in the database but partitioned by "
                    "timestamp in the models",
                )
            assert sorted(p for p in problems if not p.startswith("full-text")) == sorted(expected)
            # The search indexes came later too; each missing object is named.
            full_text = {p.split()[2] for p in problems if p.startswith("full-text")}
            if dialect == "sqlite":
                assert "agent_logs_fts" in full_text and "messages_fts_update" in full_text
                assert len(full_text) == 12  # 3 FTS5 tables, 3 triggers each
            else:
                assert full_text == {"ix_agent_logs_fts", "ix_tasks_fts", "ix_messages_fts"}
        finally:
            engine.dispose()


#: Each planted change and the words compare_schema must use for it.
EXPECTED = [
    "index ix_tasks_status_id on tasks (status, id) is in the models but missing from the database",
    "column agents.nickname is in the database but not in the models",
    "table scratch is in the database but not in the models",
    "column tasks.title has type VARCHAR(50) in the database but VARCHAR(200) in the models",
    "column drafts.review_notes is NOT NULL in the database but allows NULL in the models",
    "check constraint ck_tasks_priority on tasks allows ['high', 'low'] in the database but "
    "['critical', 'high', 'low', 'medium'] in the models",
    "check constraint ck_email_messages_status on email_messages is in the models but missing "
    "from the database",
    "unique constraint uq_drafts_task_id_version on drafts (task_id, version) is in the models "
    "but missing from the database",
    # An ON DELETE action that differs is one foreign key the database has and one it lacks.
    "foreign key fk_drafts_task_id_tasks on drafts (task_id) -> tasks.id is in the database but "
    "not in the models",
    "foreign key fk_drafts_task_id_tasks on drafts (task_id) -> tasks.id ON DELETE CASCADE is in "
    "the models but missing from the database",
]


def test_planted_drift_is_reported_line_by_line(migrated: sa.Engine) -> None:
    with migrated.begin() as conn:
        op = Operations(MigrationContext.configure(conn))
        op.create_table("scratch", sa.Column("id", sa.Integer, primary_key=True))
        op.add_column("agents", sa.Column("nickname", sa.String(50)))
        op.drop_index("ix_tasks_status_id", table_name="tasks")
        # Batch mode: SQLite can only change these by rebuilding the table (they are empty).
        with op.batch_alter_table("tasks") as batch:
            batch.alter_column("title", existing_type=sa.String(200), type_=sa.String(50))
            batch.drop_constraint("ck_tasks_priority", type_="check")
            batch.create_check_constraint("ck_tasks_priority", "priority IN ('low', 'high')")
        with op.batch_alter_table("email_messages") as batch:
            batch.drop_constraint("ck_email_messages_status", type_="check")
        with op.batch_alter_table("drafts") as batch:
            batch.alter_column("review_notes", existing_type=sa.Text(), nullable=False)
            batch.drop_constraint("uq_drafts_task_id_version", type_="unique")
            batch.drop_constraint("fk_drafts_task_id_tasks", type_="foreignkey")
            batch.create_foreign_key("fk_drafts_task_id_tasks", "tasks", ["task_id"], ["id"])

    problems = compare_schema(migrated)

    expected = list(EXPECTED)
    if migrated.dialect.name == "sqlite":
        # Rebuilding tasks dropped the triggers that keep its search index exact: a later
        # migration that rebuilds a searchable table must create them again.
        expected += [
            f"full-text trigger tasks_fts_{kind} is in the models but missing from the database"
            for kind in ("insert", "delete", "update")
        ]
    assert sorted(problems) == sorted(expected)


@pytest.mark.parametrize("dialect", ["postgresql"])  # SQLite keeps agent_logs one table
def test_partitions_are_storage_not_drift_but_their_key_is_checked(migrated: sa.Engine) -> None:
    with migrated.begin() as conn:
        partitions = partition_names(conn)
        assert "agent_logs_default" in partitions and len(partitions) >= 5  # now + 3 ahead
        ensure_partitions(conn, "agent_logs", [datetime(2001, 2, 3, tzinfo=UTC)])
    assert compare_schema(migrated) == []  # one more month is not a difference

    with migrated.begin() as conn:  # the same columns in another order: a different key
        conn.exec_driver_sql("ALTER TABLE agent_logs DROP CONSTRAINT pk_agent_logs")
        conn.exec_driver_sql('ALTER TABLE agent_logs ADD PRIMARY KEY ("timestamp", id)')
    assert compare_schema(migrated) == [
        "primary key of agent_logs is (timestamp, id) in the database but (id, timestamp) in "
        "the models"
    ]
