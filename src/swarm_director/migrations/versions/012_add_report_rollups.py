"""Log volume per hour and level for the reports, kept exact by the writes.

Revision ID: 012_add_report_rollups
Revises: 011_add_history_and_work_queue
Create Date: 2026-12-06

``log_volume_hours`` counts the logs of each UTC hour and level so that a month's log volume
report reads hundreds of rows, not millions (see :mod:`swarm_director.models.rollup`, whose
DDL this file copies: a revision is history). The upgrade creates the table, counts the
existing logs into it and creates the triggers, in that order and in the migration's
transaction (a log written meanwhile waits for it on SQLite, and on PostgreSQL the table lock
of CREATE TRIGGER holds writers back). The downgrade drops the triggers, the function and the
table, and nothing else.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "012_add_report_rollups"
down_revision: str | None = "011_add_history_and_work_queue"
branch_labels: str | None = None
depends_on: str | None = None

_TABLE = "log_volume_hours"
_HOUR = {
    "postgresql": 'floor(extract(epoch FROM "timestamp") / 3600)::bigint',
    "sqlite": "CAST(strftime('%s', substr(\"timestamp\", 1, 19)) AS INTEGER) / 3600",
}
_PG_UPSERT = (
    f"INSERT INTO {_TABLE} (epoch_hour, log_level, logs) "  # noqa: S608  (constants)
    'SELECT floor(extract(epoch FROM "timestamp") / 3600)::bigint, log_level, {sign}count(*) '
    "FROM {rows} GROUP BY 1, 2 ORDER BY 1, 2 "
    f"ON CONFLICT (epoch_hour, log_level) DO UPDATE SET logs = {_TABLE}.logs + excluded.logs;"
)
_SQLITE_UPSERT = (
    f"INSERT INTO {_TABLE} (epoch_hour, log_level, logs) "  # noqa: S608  (constants)
    "VALUES (CAST(strftime('%s', substr({row}.\"timestamp\", 1, 19)) AS INTEGER) / 3600, "
    "{row}.log_level, {delta}) "
    "ON CONFLICT (epoch_hour, log_level) DO UPDATE SET logs = logs + excluded.logs;"
)


def _pg_create() -> list[str]:
    minus = _PG_UPSERT.format(sign="-", rows="gone")
    plus = _PG_UPSERT.format(sign="", rows="added")
    function = "log_volume_hours_apply"
    return [
        f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        f"IF TG_OP IN ('DELETE', 'UPDATE') THEN {minus} END IF; "
        f"IF TG_OP IN ('INSERT', 'UPDATE') THEN {plus} END IF; "
        "RETURN NULL; END $$",
        "CREATE TRIGGER log_volume_hours_insert AFTER INSERT ON agent_logs "
        f"REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
        "CREATE TRIGGER log_volume_hours_delete AFTER DELETE ON agent_logs "
        f"REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
        "CREATE TRIGGER log_volume_hours_update AFTER UPDATE ON agent_logs "
        "REFERENCING OLD TABLE AS gone NEW TABLE AS added "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
    ]


def _sqlite_create() -> list[str]:
    minus = _SQLITE_UPSERT.format(row="old", delta=-1)
    plus = _SQLITE_UPSERT.format(row="new", delta=1)
    return [
        f"CREATE TRIGGER log_volume_hours_delete AFTER DELETE ON agent_logs BEGIN {minus} END",
        'CREATE TRIGGER log_volume_hours_update AFTER UPDATE OF "timestamp", log_level '
        f"ON agent_logs BEGIN {minus} {plus} END",
    ]


def upgrade() -> None:
    op.create_table(
        _TABLE,
        sa.Column("epoch_hour", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("log_level", sa.String(length=20), nullable=False),
        sa.Column("logs", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("epoch_hour", "log_level", name=op.f("pk_log_volume_hours")),
    )
    dialect = op.get_bind().dialect.name
    conn = op.get_bind()
    conn.exec_driver_sql(
        f"INSERT INTO {_TABLE} (epoch_hour, log_level, logs) "  # noqa: S608  (constants)
        f"SELECT {_HOUR[dialect]}, log_level, count(*) FROM agent_logs GROUP BY 1, 2"
    )
    for statement in _pg_create() if dialect == "postgresql" else _sqlite_create():
        conn.exec_driver_sql(statement)


def downgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name == "postgresql":
        for name in ("insert", "delete", "update"):
            conn.exec_driver_sql(f"DROP TRIGGER log_volume_hours_{name} ON agent_logs")
        conn.exec_driver_sql("DROP FUNCTION log_volume_hours_apply()")
    else:
        for name in ("delete", "update"):
            conn.exec_driver_sql(f"DROP TRIGGER log_volume_hours_{name}")
    op.drop_table(_TABLE)
