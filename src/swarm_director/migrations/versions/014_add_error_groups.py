"""Error logs' patterns, and a rollup of error logs per hour and pattern.

Revision ID: 014_add_error_groups
Revises: 013_add_task_attempts
Create Date: 2026-12-07

The failures report's most frequent errors grouped a month of error logs by message at every
call, hundreds of thousands of rows. Now each error log carries its message with numbers and
ids masked (``agent_logs.error_pattern``, written by the store; see
:mod:`swarm_director.models.log_pattern`) and ``error_group_hours`` counts the error logs per
UTC hour and pattern, kept by triggers as ``log_volume_hours`` is (see
:mod:`swarm_director.models.error_group`; the statements below are rendered by
:mod:`swarm_director.models.rollup_ddl` and copied here as text, and the masking is copied
too, because a revision is history). A partial index on (error_pattern, timestamp) finds a
group's newest examples, and one on the history's failed steps (``fail``, ``retry``,
``expire``) by time the attempts' errors of a range; one more on the emails' changes by time,
for the emails report's failures (SQLite read every step of the range).
The upgrade adds the column and gives every existing error log its pattern (5,000 a
statement; about 230 µs a log on PostgreSQL, where each UPDATE rewrites the row in every
index, 50 µs on SQLite), then creates the indexes, the tables, the counts and the triggers,
in the migration's one transaction. The downgrade drops the triggers, the function, the tables, the
index and the column, nothing else.
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from alembic import op

revision = "014_add_error_groups"
down_revision: str | None = "013_add_task_attempts"
branch_labels: str | None = None
depends_on: str | None = None

_MASKS = (
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I), "<uuid>"),
    (re.compile(r"\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{8,}\b", re.I), "<hex>"),
    (re.compile(r"\d+(?:\.\d+)?"), "<n>"),
)
_BATCH = 5_000
_BACKFILL = {
    "postgresql": [
        (
            "INSERT INTO error_group_hours (epoch_hour, pattern, logs) SELECT "
            'floor(extract(epoch FROM "timestamp") / 3600)::bigint, coalesce(error_pattern, '
            "''), count(*) FROM agent_logs WHERE log_level = 'error' GROUP BY 1, 2"
        ),
    ],
    "sqlite": [
        (
            "INSERT INTO error_group_hours (epoch_hour, pattern, logs) SELECT "
            "CAST(strftime('%s', substr(\"timestamp\", 1, 19)) AS INTEGER) / 3600, "
            "coalesce(error_pattern, ''), count(*) FROM agent_logs WHERE log_level = 'error' "
            "GROUP BY 1, 2"
        ),
    ],
}
_TRIGGERS = {
    "postgresql": [
        (
            "CREATE OR REPLACE FUNCTION error_group_hours_apply() RETURNS trigger LANGUAGE "
            "plpgsql AS $$ BEGIN IF TG_OP IN ('DELETE', 'UPDATE') THEN INSERT INTO "
            "error_group_deltas (epoch_hour, pattern, logs) SELECT floor(extract(epoch FROM "
            "\"timestamp\") / 3600)::bigint, coalesce(error_pattern, ''), -count(*) FROM gone "
            "WHERE log_level = 'error' GROUP BY 1, 2; END IF; IF TG_OP IN ('INSERT', 'UPDATE') "
            "THEN INSERT INTO error_group_deltas (epoch_hour, pattern, logs) SELECT "
            'floor(extract(epoch FROM "timestamp") / 3600)::bigint, coalesce(error_pattern, '
            "''), count(*) FROM added WHERE log_level = 'error' GROUP BY 1, 2; END IF; RETURN "
            "NULL; END $$"
        ),
        (
            "CREATE TRIGGER error_group_hours_insert AFTER INSERT ON agent_logs REFERENCING "
            "NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION error_group_hours_apply()"
        ),
        (
            "CREATE TRIGGER error_group_hours_delete AFTER DELETE ON agent_logs REFERENCING "
            "OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION error_group_hours_apply()"
        ),
        (
            "CREATE TRIGGER error_group_hours_update AFTER UPDATE ON agent_logs REFERENCING "
            "OLD TABLE AS gone NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION "
            "error_group_hours_apply()"
        ),
    ],
    "sqlite": [
        (
            "CREATE TRIGGER error_group_hours_delete AFTER DELETE ON agent_logs WHEN "
            "old.log_level = 'error' BEGIN INSERT INTO error_group_hours (epoch_hour, pattern, "
            "logs) SELECT CAST(strftime('%s', substr(old.\"timestamp\", 1, 19)) AS INTEGER) / "
            "3600, coalesce(old.error_pattern, ''), -1 WHERE old.log_level = 'error' ON "
            "CONFLICT (epoch_hour, pattern) DO UPDATE SET logs = logs + excluded.logs; END"
        ),
        (
            'CREATE TRIGGER error_group_hours_update AFTER UPDATE OF "timestamp", log_level, '
            "error_pattern ON agent_logs WHEN old.log_level = 'error' OR new.log_level = "
            "'error' BEGIN INSERT INTO error_group_hours (epoch_hour, pattern, logs) SELECT "
            "CAST(strftime('%s', substr(old.\"timestamp\", 1, 19)) AS INTEGER) / 3600, "
            "coalesce(old.error_pattern, ''), -1 WHERE old.log_level = 'error' ON CONFLICT "
            "(epoch_hour, pattern) DO UPDATE SET logs = logs + excluded.logs; INSERT INTO "
            "error_group_hours (epoch_hour, pattern, logs) SELECT CAST(strftime('%s', "
            'substr(new."timestamp", 1, 19)) AS INTEGER) / 3600, coalesce(new.error_pattern, '
            "''), 1 WHERE new.log_level = 'error' ON CONFLICT (epoch_hour, pattern) DO UPDATE "
            "SET logs = logs + excluded.logs; END"
        ),
    ],
}
_DROP = {
    "postgresql": [
        "DROP TRIGGER IF EXISTS error_group_hours_insert ON agent_logs",
        "DROP TRIGGER IF EXISTS error_group_hours_delete ON agent_logs",
        "DROP TRIGGER IF EXISTS error_group_hours_update ON agent_logs",
        "DROP FUNCTION IF EXISTS error_group_hours_apply()",
    ],
    "sqlite": [
        "DROP TRIGGER IF EXISTS error_group_hours_delete",
        "DROP TRIGGER IF EXISTS error_group_hours_update",
    ],
}


def _pattern(message: str | None) -> str:
    text = " ".join((message or "(no message)").split())
    for pattern, placeholder in _MASKS:
        text = pattern.sub(placeholder, text)
    return text[:200]


def _fill_patterns(conn: sa.Connection) -> None:
    """Every error log's pattern, :data:`_BATCH` logs at a time."""
    logs = sa.table(
        "agent_logs",
        sa.column("id", sa.BigInteger()),
        sa.column("message", sa.Text()),
        sa.column("log_level", sa.String()),
        sa.column("error_pattern", sa.String()),
    )
    last = 0
    while True:
        rows = conn.execute(
            sa.select(logs.c.id, logs.c.message)
            .where(sa.cast(logs.c.log_level, sa.String) == "error", logs.c.id > last)
            .order_by(logs.c.id)
            .limit(_BATCH)
        ).all()
        if not rows:
            return
        patterns = [(log_id, _pattern(message)) for log_id, message in rows]
        if conn.dialect.name == "postgresql":  # one statement a batch: its triggers fire once
            found = sa.values(
                sa.column("log_id", sa.BigInteger()), sa.column("pattern", sa.String()), name="f"
            ).data(patterns)
            conn.execute(
                sa.update(logs)
                .where(logs.c.id == found.c.log_id)
                .values(error_pattern=found.c.pattern)
            )
        else:
            conn.execute(
                sa.update(logs)
                .where(logs.c.id == sa.bindparam("log_id"))
                .values(error_pattern=sa.bindparam("pattern")),
                [{"log_id": i, "pattern": p} for i, p in patterns],
            )
        last = rows[-1][0]


def upgrade() -> None:
    op.add_column("agent_logs", sa.Column("error_pattern", sa.String(length=200), nullable=True))
    conn = op.get_bind()
    if conn.dialect.name == "postgresql":
        # The log volume's UPDATE trigger would append a -n and a +n for every batch: the
        # patterns change no hour or level. (The ALTER TABLE above holds the table already.)
        conn.exec_driver_sql("ALTER TABLE agent_logs DISABLE TRIGGER log_volume_hours_update")
        _fill_patterns(conn)
        conn.exec_driver_sql("ALTER TABLE agent_logs ENABLE TRIGGER log_volume_hours_update")
    else:
        _fill_patterns(conn)
    # Not in batch mode: SQLite creates an index in place (a rebuild would drop triggers).
    op.create_index(
        "ix_agent_logs_error_pattern_timestamp",
        "agent_logs",
        ["error_pattern", "timestamp"],
        unique=False,
        postgresql_where=sa.text("error_pattern IS NOT NULL"),
        sqlite_where=sa.text("error_pattern IS NOT NULL"),
    )
    op.create_index(
        "ix_history_failed_at",
        "history",
        ["at"],
        unique=False,
        postgresql_where=sa.text("action IN ('fail', 'retry', 'expire')"),
        sqlite_where=sa.text("action IN ('fail', 'retry', 'expire')"),
    )
    op.create_index(
        "ix_history_email_at",
        "history",
        ["at"],
        unique=False,
        postgresql_where=sa.text("entity = 'email'"),
        sqlite_where=sa.text("entity = 'email'"),
    )
    op.create_table(
        "error_group_hours",
        sa.Column("epoch_hour", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("pattern", sa.String(length=200), nullable=False),
        sa.Column("logs", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("epoch_hour", "pattern", name=op.f("pk_error_group_hours")),
    )
    op.create_table(
        "error_group_deltas",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column("epoch_hour", sa.BigInteger(), nullable=False),
        sa.Column("pattern", sa.String(length=200), nullable=False),
        sa.Column("logs", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_error_group_deltas")),
    )
    dialect = conn.dialect.name
    for statement in _BACKFILL[dialect] + _TRIGGERS[dialect]:
        conn.exec_driver_sql(statement)


def downgrade() -> None:
    conn = op.get_bind()
    for statement in _DROP[conn.dialect.name]:
        conn.exec_driver_sql(statement)
    op.drop_table("error_group_deltas")
    op.drop_table("error_group_hours")
    op.drop_index("ix_history_email_at", table_name="history")
    op.drop_index("ix_history_failed_at", table_name="history")
    op.drop_index("ix_agent_logs_error_pattern_timestamp", table_name="agent_logs")
    conn.exec_driver_sql("ALTER TABLE agent_logs DROP COLUMN error_pattern")
