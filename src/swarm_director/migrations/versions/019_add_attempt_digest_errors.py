"""The most frequent errors from the digests too: each ended hour's digest keeps its tasks'
failed steps per error pattern (``attempt_digests.errors``: their count and newest steps), and
row triggers on ``history`` retire the digest of an hour whose failed steps change (a step
written, changed or deleted): on SQLite they delete it, on PostgreSQL they append its hour to
``attempt_digest_marks``.

Revision ID: 019_add_attempt_digest_errors
Revises: 018_add_attempt_digests
Create Date: 2026-12-07

The digests are a cache: the table is made again with the new column before the payload (so
that reading it leaves the payload's pages alone), empty, and the server's fold (or ``db
optimize``) writes the digests again; until then the reports read the hours from their rows.
The triggers are a copy of ``models/attempt_digest_ddl.py``'s ``history_create``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "019_add_attempt_digest_errors"
down_revision: str | None = "018_add_attempt_digests"
branch_labels: str | None = None
depends_on: str | None = None

_TRIGGERS = {
    "postgresql": [
        (
            "CREATE OR REPLACE FUNCTION attempt_digests_history() RETURNS trigger LANGUAGE "
            "plpgsql AS $$ BEGIN IF TG_OP IN ('DELETE', 'UPDATE') THEN INSERT INTO "
            "attempt_digest_marks (epoch_hour) VALUES (floor(extract(epoch FROM OLD.at) / "
            "3600)::bigint); END IF; IF TG_OP IN ('INSERT', 'UPDATE') THEN INSERT INTO "
            "attempt_digest_marks (epoch_hour) VALUES (floor(extract(epoch FROM NEW.at) / "
            "3600)::bigint); END IF; RETURN NULL; END $$"
        ),
        (
            "CREATE TRIGGER attempt_digests_history_insert AFTER INSERT ON history FOR EACH ROW "
            "WHEN (NEW.entity = 'task' AND NEW.action IN ('fail', 'retry', 'expire')) EXECUTE "
            "FUNCTION attempt_digests_history()"
        ),
        (
            "CREATE TRIGGER attempt_digests_history_delete AFTER DELETE ON history FOR EACH ROW "
            "WHEN (OLD.entity = 'task' AND OLD.action IN ('fail', 'retry', 'expire')) EXECUTE "
            "FUNCTION attempt_digests_history()"
        ),
        (
            "CREATE TRIGGER attempt_digests_history_update AFTER UPDATE ON history FOR EACH ROW "
            "WHEN (((OLD.entity = 'task' AND OLD.action IN ('fail', 'retry', 'expire')) OR "
            "(NEW.entity = 'task' AND NEW.action IN ('fail', 'retry', 'expire'))) AND (OLD.entity "
            "IS DISTINCT FROM NEW.entity OR OLD.entity_id IS DISTINCT FROM NEW.entity_id OR "
            "OLD.action IS DISTINCT FROM NEW.action OR OLD.at IS DISTINCT FROM NEW.at OR "
            "OLD.error_message IS DISTINCT FROM NEW.error_message)) EXECUTE FUNCTION "
            "attempt_digests_history()"
        ),
    ],
    "sqlite": [
        (
            "CREATE TRIGGER attempt_digests_history_insert AFTER INSERT ON history WHEN "
            "new.entity = 'task' AND new.action IN ('fail', 'retry', 'expire') BEGIN DELETE FROM "
            "attempt_digests WHERE epoch_hour = CAST(strftime('%s', substr(new.at, 1, 19)) AS "
            "INTEGER) / 3600; END"
        ),
        (
            "CREATE TRIGGER attempt_digests_history_delete AFTER DELETE ON history WHEN "
            "old.entity = 'task' AND old.action IN ('fail', 'retry', 'expire') BEGIN DELETE FROM "
            "attempt_digests WHERE epoch_hour = CAST(strftime('%s', substr(old.at, 1, 19)) AS "
            "INTEGER) / 3600; END"
        ),
        (
            "CREATE TRIGGER attempt_digests_history_update AFTER UPDATE ON history WHEN "
            "((old.entity = 'task' AND old.action IN ('fail', 'retry', 'expire')) OR (new.entity "
            "= 'task' AND new.action IN ('fail', 'retry', 'expire'))) AND (old.entity IS NOT "
            "new.entity OR old.entity_id IS NOT new.entity_id OR old.action IS NOT new.action OR "
            "old.at IS NOT new.at OR old.error_message IS NOT new.error_message) BEGIN DELETE "
            "FROM attempt_digests WHERE epoch_hour IN (CAST(strftime('%s', substr(old.at, 1, 19)) "
            "AS INTEGER) / 3600, CAST(strftime('%s', substr(new.at, 1, 19)) AS INTEGER) / 3600); "
            "END"
        ),
    ],
}
_DROP = {
    "postgresql": [
        "DROP TRIGGER IF EXISTS attempt_digests_history_insert ON history",
        "DROP TRIGGER IF EXISTS attempt_digests_history_delete ON history",
        "DROP TRIGGER IF EXISTS attempt_digests_history_update ON history",
        "DROP FUNCTION IF EXISTS attempt_digests_history()",
    ],
    "sqlite": [
        "DROP TRIGGER IF EXISTS attempt_digests_history_insert",
        "DROP TRIGGER IF EXISTS attempt_digests_history_delete",
        "DROP TRIGGER IF EXISTS attempt_digests_history_update",
    ],
}


def _digests(*, errors: bool) -> None:
    """``attempt_digests`` made again, empty (with or without ``errors``), and no mark."""
    op.drop_table("attempt_digests")
    op.create_table(
        "attempt_digests",
        sa.Column("epoch_hour", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("counts", sa.Text(), nullable=False),
        *([sa.Column("errors", sa.Text(), nullable=False)] if errors else []),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("epoch_hour", name=op.f("pk_attempt_digests")),
    )
    op.execute(sa.text("DELETE FROM attempt_digest_marks"))


def upgrade() -> None:
    _digests(errors=True)
    conn = op.get_bind()
    for statement in _TRIGGERS[conn.dialect.name]:
        conn.exec_driver_sql(statement)


def downgrade() -> None:
    conn = op.get_bind()
    for statement in _DROP[conn.dialect.name]:
        conn.exec_driver_sql(statement)
    _digests(errors=False)
