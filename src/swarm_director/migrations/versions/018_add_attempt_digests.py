"""The durations report's digests: each ended hour's attempts, per task type, packed in one
row (``attempt_digests``, with the failure rates' counts per type and agent), and the marks
of the hours whose digest a change has made stale (``attempt_digest_marks``, PostgreSQL).

Revision ID: 018_add_attempt_digests
Revises: 017_index_report_ranges
Create Date: 2026-12-07

Nothing is backfilled: the report reads an hour without a digest from the attempts, and the
server's fold (or ``db optimize``) writes the digests of the hours that have ended. Row
triggers on ``task_attempts`` and ``tasks`` retire the digests a change leaves stale: on
SQLite they delete them, on PostgreSQL they append their hours to the marks (see
``models/attempt_digest_ddl.py``, of which this is a copy).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "018_add_attempt_digests"
down_revision: str | None = "017_index_report_ranges"
branch_labels: str | None = None
depends_on: str | None = None

_TRIGGERS = {
    "postgresql": [
        (
            "CREATE OR REPLACE FUNCTION attempt_digests_attempt() RETURNS trigger LANGUAGE "
            "plpgsql AS $$ BEGIN IF TG_OP IN ('DELETE', 'UPDATE') THEN INSERT INTO "
            "attempt_digest_marks (epoch_hour) VALUES (floor(extract(epoch FROM "
            "OLD.claimed_at) / 3600)::bigint); END IF; IF TG_OP = 'INSERT' OR (TG_OP = "
            "'UPDATE' AND floor(extract(epoch FROM NEW.claimed_at) / 3600)::bigint <> "
            "floor(extract(epoch FROM OLD.claimed_at) / 3600)::bigint) THEN INSERT INTO "
            "attempt_digest_marks (epoch_hour) VALUES (floor(extract(epoch FROM "
            "NEW.claimed_at) / 3600)::bigint); END IF; RETURN NULL; END $$"
        ),
        (
            "CREATE OR REPLACE FUNCTION attempt_digests_task() RETURNS trigger LANGUAGE "
            "plpgsql AS $$ BEGIN IF TG_OP IN ('DELETE', 'UPDATE') THEN INSERT INTO "
            "attempt_digest_marks (epoch_hour) SELECT DISTINCT floor(extract(epoch FROM "
            "a.claimed_at) / 3600)::bigint FROM task_attempts a WHERE a.task_id = OLD.id; "
            "END IF; IF TG_OP = 'INSERT' THEN INSERT INTO attempt_digest_marks (epoch_hour) "
            "SELECT DISTINCT floor(extract(epoch FROM a.claimed_at) / 3600)::bigint FROM "
            "task_attempts a WHERE a.task_id = NEW.id; END IF; RETURN NULL; END $$"
        ),
        (
            "CREATE TRIGGER attempt_digests_attempt AFTER INSERT OR DELETE ON task_attempts "
            "FOR EACH ROW EXECUTE FUNCTION attempt_digests_attempt()"
        ),
        (
            "CREATE TRIGGER attempt_digests_attempt_update AFTER UPDATE ON task_attempts FOR "
            "EACH ROW WHEN (OLD.task_id IS DISTINCT FROM NEW.task_id OR OLD.claimed_at IS "
            "DISTINCT FROM NEW.claimed_at OR OLD.attempt IS DISTINCT FROM NEW.attempt OR "
            "OLD.wait_s IS DISTINCT FROM NEW.wait_s OR OLD.run_s IS DISTINCT FROM NEW.run_s "
            "OR OLD.agent_id IS DISTINCT FROM NEW.agent_id OR OLD.end_action IS DISTINCT "
            "FROM NEW.end_action) EXECUTE FUNCTION attempt_digests_attempt()"
        ),
        (
            "CREATE TRIGGER attempt_digests_task AFTER INSERT OR DELETE ON tasks FOR EACH "
            "ROW EXECUTE FUNCTION attempt_digests_task()"
        ),
        (
            "CREATE TRIGGER attempt_digests_task_update AFTER UPDATE OF type ON tasks FOR "
            "EACH ROW WHEN (OLD.type IS DISTINCT FROM NEW.type) EXECUTE FUNCTION "
            "attempt_digests_task()"
        ),
    ],
    "sqlite": [
        (
            "CREATE TRIGGER attempt_digests_insert AFTER INSERT ON task_attempts BEGIN "
            "DELETE FROM attempt_digests WHERE epoch_hour = CAST(strftime('%s', "
            "substr(new.claimed_at, 1, 19)) AS INTEGER) / 3600; END"
        ),
        (
            "CREATE TRIGGER attempt_digests_delete AFTER DELETE ON task_attempts BEGIN "
            "DELETE FROM attempt_digests WHERE epoch_hour = CAST(strftime('%s', "
            "substr(old.claimed_at, 1, 19)) AS INTEGER) / 3600; END"
        ),
        (
            "CREATE TRIGGER attempt_digests_update AFTER UPDATE ON task_attempts WHEN "
            "old.task_id IS NOT new.task_id OR old.claimed_at IS NOT new.claimed_at OR "
            "old.attempt IS NOT new.attempt OR old.wait_s IS NOT new.wait_s OR old.run_s IS "
            "NOT new.run_s OR old.agent_id IS NOT new.agent_id OR old.end_action IS NOT "
            "new.end_action BEGIN DELETE FROM attempt_digests WHERE epoch_hour IN "
            "(CAST(strftime('%s', substr(old.claimed_at, 1, 19)) AS INTEGER) / 3600, "
            "CAST(strftime('%s', substr(new.claimed_at, 1, 19)) AS INTEGER) / 3600); END"
        ),
        (
            "CREATE TRIGGER attempt_digests_task_insert AFTER INSERT ON tasks BEGIN DELETE "
            "FROM attempt_digests WHERE epoch_hour IN (SELECT DISTINCT CAST(strftime('%s', "
            "substr(a.claimed_at, 1, 19)) AS INTEGER) / 3600 FROM task_attempts a WHERE "
            "a.task_id = new.id); END"
        ),
        (
            "CREATE TRIGGER attempt_digests_task_delete AFTER DELETE ON tasks BEGIN DELETE "
            "FROM attempt_digests WHERE epoch_hour IN (SELECT DISTINCT CAST(strftime('%s', "
            "substr(a.claimed_at, 1, 19)) AS INTEGER) / 3600 FROM task_attempts a WHERE "
            "a.task_id = old.id); END"
        ),
        (
            "CREATE TRIGGER attempt_digests_task_update AFTER UPDATE OF type ON tasks WHEN "
            "old.type IS NOT new.type BEGIN DELETE FROM attempt_digests WHERE epoch_hour IN "
            "(SELECT DISTINCT CAST(strftime('%s', substr(a.claimed_at, 1, 19)) AS INTEGER) / "
            "3600 FROM task_attempts a WHERE a.task_id = old.id); END"
        ),
    ],
}
_DROP = {
    "postgresql": [
        "DROP TRIGGER IF EXISTS attempt_digests_attempt ON task_attempts",
        "DROP TRIGGER IF EXISTS attempt_digests_attempt_update ON task_attempts",
        "DROP TRIGGER IF EXISTS attempt_digests_task ON tasks",
        "DROP TRIGGER IF EXISTS attempt_digests_task_update ON tasks",
        "DROP FUNCTION IF EXISTS attempt_digests_attempt()",
        "DROP FUNCTION IF EXISTS attempt_digests_task()",
    ],
    "sqlite": [
        "DROP TRIGGER IF EXISTS attempt_digests_insert",
        "DROP TRIGGER IF EXISTS attempt_digests_delete",
        "DROP TRIGGER IF EXISTS attempt_digests_update",
        "DROP TRIGGER IF EXISTS attempt_digests_task_insert",
        "DROP TRIGGER IF EXISTS attempt_digests_task_delete",
        "DROP TRIGGER IF EXISTS attempt_digests_task_update",
    ],
}


def upgrade() -> None:
    op.create_table(
        "attempt_digests",
        sa.Column("epoch_hour", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("counts", sa.Text(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("epoch_hour", name=op.f("pk_attempt_digests")),
    )
    op.create_table(
        "attempt_digest_marks",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("epoch_hour", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attempt_digest_marks")),
    )
    op.create_index(
        "ix_attempt_digest_marks_epoch_hour", "attempt_digest_marks", ["epoch_hour"], unique=False
    )
    conn = op.get_bind()
    for statement in _TRIGGERS[conn.dialect.name]:
        conn.exec_driver_sql(statement)


def downgrade() -> None:
    conn = op.get_bind()
    for statement in _DROP[conn.dialect.name]:
        conn.exec_driver_sql(statement)
    op.drop_table("attempt_digest_marks")
    op.drop_table("attempt_digests")
