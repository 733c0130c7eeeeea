"""Hourly rollups for the reports, kept exact by the writes.

Revision ID: 012_add_report_rollups
Revises: 011_add_history_and_work_queue
Create Date: 2026-12-06

``log_volume_hours`` counts the logs of each UTC hour and level, ``task_count_hours`` the
tasks created, completed and failed each UTC hour by type and priority, so that a month's
report reads hundreds of rows, not millions (see :mod:`swarm_director.models.rollup`; the
statements below are rendered by :mod:`swarm_director.models.rollup_ddl` and copied here as
text because a revision is history). On PostgreSQL the triggers append to
``log_volume_deltas`` and ``task_count_deltas`` (rows no two writers share, so no writer waits
for another's transaction) and ``db optimize`` folds them into the hour tables; on SQLite
they upsert into the hour tables and the delta tables stay empty.
The upgrade creates the tables, counts the existing rows into them and creates the triggers,
in the migration's one transaction. It also indexes ``tasks.created_at``: the partial hours
at either end of a report's range are read from the tasks, which was a scan of all of them.
The downgrade drops the triggers, the functions, the tables and the index, nothing else.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "012_add_report_rollups"
down_revision: str | None = "011_add_history_and_work_queue"
branch_labels: str | None = None
depends_on: str | None = None

_BACKFILL = {
    "postgresql": [
        (
            "INSERT INTO log_volume_hours (epoch_hour, log_level, logs) SELECT "
            'floor(extract(epoch FROM "timestamp") / 3600)::bigint, log_level, count(*) FROM '
            "agent_logs GROUP BY 1, 2"
        ),
        (
            "INSERT INTO task_count_hours (epoch_hour, kind, type, priority, tasks) SELECT "
            "hr, k, type, priority, count(*) FROM (SELECT floor(extract(epoch FROM "
            "created_at) / 3600)::bigint AS hr, 'created' AS k, type, priority FROM tasks "
            "UNION ALL SELECT floor(extract(epoch FROM h.at) / 3600)::bigint, CASE WHEN "
            "h.action = 'complete' THEN 'completed' ELSE 'failed' END, t.type, t.priority "
            "FROM history h JOIN tasks t ON t.id = h.entity_id WHERE h.entity = 'task' AND "
            "(h.action IN ('complete', 'fail') OR (h.action = 'expire' AND h.changes -> "
            "'status' ->> 1 = 'failed'))) AS s GROUP BY hr, k, type, priority"
        ),
    ],
    "sqlite": [
        (
            "INSERT INTO log_volume_hours (epoch_hour, log_level, logs) SELECT "
            "CAST(strftime('%s', substr(\"timestamp\", 1, 19)) AS INTEGER) / 3600, log_level, "
            "count(*) FROM agent_logs GROUP BY 1, 2"
        ),
        (
            "INSERT INTO task_count_hours (epoch_hour, kind, type, priority, tasks) SELECT "
            "hr, k, type, priority, count(*) FROM (SELECT CAST(strftime('%s', "
            "substr(created_at, 1, 19)) AS INTEGER) / 3600 AS hr, 'created' AS k, type, "
            "priority FROM tasks UNION ALL SELECT CAST(strftime('%s', substr(h.at, 1, 19)) "
            "AS INTEGER) / 3600, CASE WHEN h.action = 'complete' THEN 'completed' ELSE "
            "'failed' END, t.type, t.priority FROM history h JOIN tasks t ON t.id = "
            "h.entity_id WHERE h.entity = 'task' AND (h.action IN ('complete', 'fail') OR "
            "(h.action = 'expire' AND json_extract(h.changes, '$.status[1]') = 'failed'))) "
            "AS s GROUP BY hr, k, type, priority"
        ),
    ],
}
_TRIGGERS = {
    "postgresql": [
        (
            "CREATE OR REPLACE FUNCTION log_volume_hours_apply() RETURNS trigger LANGUAGE plpgsql"
            " AS $$ BEGIN IF TG_OP IN ('DELETE', 'UPDATE') THEN INSERT INTO log_volume_deltas "
            '(epoch_hour, log_level, logs) SELECT floor(extract(epoch FROM "timestamp") / '
            "3600)::bigint, log_level, -count(*) FROM gone GROUP BY 1, 2; END IF; IF TG_OP IN "
            "('INSERT', 'UPDATE') THEN INSERT INTO log_volume_deltas (epoch_hour, log_level, "
            'logs) SELECT floor(extract(epoch FROM "timestamp") / 3600)::bigint, log_level, '
            "count(*) FROM added GROUP BY 1, 2; END IF; RETURN NULL; END $$"
        ),
        (
            "CREATE TRIGGER log_volume_hours_insert AFTER INSERT ON agent_logs REFERENCING NEW "
            "TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION log_volume_hours_apply()"
        ),
        (
            "CREATE TRIGGER log_volume_hours_delete AFTER DELETE ON agent_logs REFERENCING OLD "
            "TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION log_volume_hours_apply()"
        ),
        (
            "CREATE TRIGGER log_volume_hours_update AFTER UPDATE ON agent_logs REFERENCING OLD "
            "TABLE AS gone NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION "
            "log_volume_hours_apply()"
        ),
        (
            "CREATE OR REPLACE FUNCTION task_count_hours_task() RETURNS trigger LANGUAGE plpgsql "
            "AS $$ BEGIN IF TG_OP IN ('DELETE', 'UPDATE') THEN INSERT INTO task_count_deltas "
            "(epoch_hour, kind, type, priority, tasks) SELECT hr, k, OLD.type, OLD.priority, "
            "-count(*) FROM (SELECT floor(extract(epoch FROM OLD.created_at) / 3600)::bigint AS "
            "hr, 'created' AS k UNION ALL SELECT floor(extract(epoch FROM h.at) / 3600)::bigint, "
            "CASE WHEN h.action = 'complete' THEN 'completed' ELSE 'failed' END FROM history h "
            "WHERE h.entity_id = OLD.id AND h.entity = 'task' AND (h.action IN ('complete', "
            "'fail') OR (h.action = 'expire' AND h.changes -> 'status' ->> 1 = 'failed'))) AS s "
            "WHERE true GROUP BY hr, k ORDER BY hr, k ; END IF; IF TG_OP IN ('INSERT', 'UPDATE') "
            "THEN INSERT INTO task_count_deltas (epoch_hour, kind, type, priority, tasks) SELECT "
            "hr, k, NEW.type, NEW.priority, count(*) FROM (SELECT floor(extract(epoch FROM "
            "NEW.created_at) / 3600)::bigint AS hr, 'created' AS k UNION ALL SELECT "
            "floor(extract(epoch FROM h.at) / 3600)::bigint, CASE WHEN h.action = 'complete' THEN"
            " 'completed' ELSE 'failed' END FROM history h WHERE h.entity_id = NEW.id AND "
            "h.entity = 'task' AND (h.action IN ('complete', 'fail') OR (h.action = 'expire' AND "
            "h.changes -> 'status' ->> 1 = 'failed'))) AS s WHERE true GROUP BY hr, k ORDER BY "
            "hr, k ; END IF; RETURN NULL; END $$"
        ),
        (
            "CREATE OR REPLACE FUNCTION task_count_hours_step() RETURNS trigger LANGUAGE plpgsql "
            "AS $$ BEGIN IF TG_OP = 'INSERT' THEN INSERT INTO task_count_deltas (epoch_hour, "
            "kind, type, priority, tasks) SELECT floor(extract(epoch FROM NEW.at) / "
            "3600)::bigint, CASE WHEN NEW.action = 'complete' THEN 'completed' ELSE 'failed' END,"
            " t.type, t.priority, 1 FROM tasks t WHERE t.id = NEW.entity_id ; ELSE INSERT INTO "
            "task_count_deltas (epoch_hour, kind, type, priority, tasks) SELECT "
            "floor(extract(epoch FROM OLD.at) / 3600)::bigint, CASE WHEN OLD.action = 'complete' "
            "THEN 'completed' ELSE 'failed' END, t.type, t.priority, -1 FROM tasks t WHERE t.id ="
            " OLD.entity_id ; END IF; RETURN NULL; END $$"
        ),
        (
            "CREATE TRIGGER task_count_hours_task AFTER INSERT OR DELETE ON tasks FOR EACH ROW "
            "EXECUTE FUNCTION task_count_hours_task()"
        ),
        (
            "CREATE TRIGGER task_count_hours_task_update AFTER UPDATE OF type, priority, "
            "created_at ON tasks FOR EACH ROW WHEN (OLD.type IS DISTINCT FROM NEW.type OR "
            "OLD.priority IS DISTINCT FROM NEW.priority OR OLD.created_at IS DISTINCT FROM "
            "NEW.created_at) EXECUTE FUNCTION task_count_hours_task()"
        ),
        (
            "CREATE TRIGGER task_count_hours_step_insert AFTER INSERT ON history FOR EACH ROW "
            "WHEN (NEW.entity = 'task' AND (NEW.action IN ('complete', 'fail') OR (NEW.action = "
            "'expire' AND NEW.changes -> 'status' ->> 1 = 'failed'))) EXECUTE FUNCTION "
            "task_count_hours_step()"
        ),
        (
            "CREATE TRIGGER task_count_hours_step_delete AFTER DELETE ON history FOR EACH ROW "
            "WHEN (OLD.entity = 'task' AND (OLD.action IN ('complete', 'fail') OR (OLD.action = "
            "'expire' AND OLD.changes -> 'status' ->> 1 = 'failed'))) EXECUTE FUNCTION "
            "task_count_hours_step()"
        ),
    ],
    "sqlite": [
        (
            "CREATE TRIGGER log_volume_hours_delete AFTER DELETE ON agent_logs BEGIN INSERT "
            "INTO log_volume_hours (epoch_hour, log_level, logs) VALUES (CAST(strftime('%s', "
            'substr(old."timestamp", 1, 19)) AS INTEGER) / 3600, old.log_level, -1) ON '
            "CONFLICT (epoch_hour, log_level) DO UPDATE SET logs = logs + excluded.logs; END"
        ),
        (
            'CREATE TRIGGER log_volume_hours_update AFTER UPDATE OF "timestamp", log_level '
            "ON agent_logs BEGIN INSERT INTO log_volume_hours (epoch_hour, log_level, logs) "
            "VALUES (CAST(strftime('%s', substr(old.\"timestamp\", 1, 19)) AS INTEGER) / 3600, "
            "old.log_level, -1) ON CONFLICT (epoch_hour, log_level) DO UPDATE SET logs = "
            "logs + excluded.logs; INSERT INTO log_volume_hours (epoch_hour, log_level, "
            "logs) VALUES (CAST(strftime('%s', substr(new.\"timestamp\", 1, 19)) AS INTEGER) / "
            "3600, new.log_level, 1) ON CONFLICT (epoch_hour, log_level) DO UPDATE SET logs "
            "= logs + excluded.logs; END"
        ),
        (
            "CREATE TRIGGER task_count_hours_task_insert AFTER INSERT ON tasks BEGIN INSERT "
            "INTO task_count_hours (epoch_hour, kind, type, priority, tasks) SELECT hr, k, "
            "new.type, new.priority, count(*) FROM (SELECT CAST(strftime('%s', "
            "substr(new.created_at, 1, 19)) AS INTEGER) / 3600 AS hr, 'created' AS k UNION "
            "ALL SELECT CAST(strftime('%s', substr(h.at, 1, 19)) AS INTEGER) / 3600, CASE "
            "WHEN h.action = 'complete' THEN 'completed' ELSE 'failed' END FROM history h "
            "WHERE h.entity_id = new.id AND h.entity = 'task' AND (h.action IN ('complete', "
            "'fail') OR (h.action = 'expire' AND json_extract(h.changes, '$.status[1]') = "
            "'failed'))) AS s WHERE true GROUP BY hr, k ORDER BY hr, k ON CONFLICT "
            "(epoch_hour, kind, type, priority) DO UPDATE SET tasks = task_count_hours.tasks "
            "+ excluded.tasks; END"
        ),
        (
            "CREATE TRIGGER task_count_hours_task_delete AFTER DELETE ON tasks BEGIN INSERT "
            "INTO task_count_hours (epoch_hour, kind, type, priority, tasks) SELECT hr, k, "
            "old.type, old.priority, -count(*) FROM (SELECT CAST(strftime('%s', "
            "substr(old.created_at, 1, 19)) AS INTEGER) / 3600 AS hr, 'created' AS k UNION "
            "ALL SELECT CAST(strftime('%s', substr(h.at, 1, 19)) AS INTEGER) / 3600, CASE "
            "WHEN h.action = 'complete' THEN 'completed' ELSE 'failed' END FROM history h "
            "WHERE h.entity_id = old.id AND h.entity = 'task' AND (h.action IN ('complete', "
            "'fail') OR (h.action = 'expire' AND json_extract(h.changes, '$.status[1]') = "
            "'failed'))) AS s WHERE true GROUP BY hr, k ORDER BY hr, k ON CONFLICT "
            "(epoch_hour, kind, type, priority) DO UPDATE SET tasks = task_count_hours.tasks "
            "+ excluded.tasks; END"
        ),
        (
            "CREATE TRIGGER task_count_hours_task_update AFTER UPDATE OF type, priority, "
            "created_at ON tasks WHEN old.type IS NOT new.type OR old.priority IS NOT "
            "new.priority OR old.created_at IS NOT new.created_at BEGIN INSERT INTO "
            "task_count_hours (epoch_hour, kind, type, priority, tasks) SELECT hr, k, "
            "old.type, old.priority, -count(*) FROM (SELECT CAST(strftime('%s', "
            "substr(old.created_at, 1, 19)) AS INTEGER) / 3600 AS hr, 'created' AS k UNION "
            "ALL SELECT CAST(strftime('%s', substr(h.at, 1, 19)) AS INTEGER) / 3600, CASE "
            "WHEN h.action = 'complete' THEN 'completed' ELSE 'failed' END FROM history h "
            "WHERE h.entity_id = old.id AND h.entity = 'task' AND (h.action IN ('complete', "
            "'fail') OR (h.action = 'expire' AND json_extract(h.changes, '$.status[1]') = "
            "'failed'))) AS s WHERE true GROUP BY hr, k ORDER BY hr, k ON CONFLICT "
            "(epoch_hour, kind, type, priority) DO UPDATE SET tasks = task_count_hours.tasks "
            "+ excluded.tasks; INSERT INTO task_count_hours (epoch_hour, kind, type, "
            "priority, tasks) SELECT hr, k, new.type, new.priority, count(*) FROM (SELECT "
            "CAST(strftime('%s', substr(new.created_at, 1, 19)) AS INTEGER) / 3600 AS hr, "
            "'created' AS k UNION ALL SELECT CAST(strftime('%s', substr(h.at, 1, 19)) AS "
            "INTEGER) / 3600, CASE WHEN h.action = 'complete' THEN 'completed' ELSE 'failed' "
            "END FROM history h WHERE h.entity_id = new.id AND h.entity = 'task' AND "
            "(h.action IN ('complete', 'fail') OR (h.action = 'expire' AND "
            "json_extract(h.changes, '$.status[1]') = 'failed'))) AS s WHERE true GROUP BY "
            "hr, k ORDER BY hr, k ON CONFLICT (epoch_hour, kind, type, priority) DO UPDATE "
            "SET tasks = task_count_hours.tasks + excluded.tasks; END"
        ),
        (
            "CREATE TRIGGER task_count_hours_step_insert AFTER INSERT ON history WHEN "
            "new.entity = 'task' AND (new.action IN ('complete', 'fail') OR (new.action = "
            "'expire' AND json_extract(new.changes, '$.status[1]') = 'failed')) BEGIN INSERT "
            "INTO task_count_hours (epoch_hour, kind, type, priority, tasks) SELECT "
            "CAST(strftime('%s', substr(new.at, 1, 19)) AS INTEGER) / 3600, CASE WHEN "
            "new.action = 'complete' THEN 'completed' ELSE 'failed' END, t.type, t.priority, "
            "1 FROM tasks t WHERE t.id = new.entity_id ON CONFLICT (epoch_hour, kind, type, "
            "priority) DO UPDATE SET tasks = task_count_hours.tasks + excluded.tasks; END"
        ),
        (
            "CREATE TRIGGER task_count_hours_step_delete AFTER DELETE ON history WHEN "
            "old.entity = 'task' AND (old.action IN ('complete', 'fail') OR (old.action = "
            "'expire' AND json_extract(old.changes, '$.status[1]') = 'failed')) BEGIN INSERT "
            "INTO task_count_hours (epoch_hour, kind, type, priority, tasks) SELECT "
            "CAST(strftime('%s', substr(old.at, 1, 19)) AS INTEGER) / 3600, CASE WHEN "
            "old.action = 'complete' THEN 'completed' ELSE 'failed' END, t.type, t.priority, "
            "-1 FROM tasks t WHERE t.id = old.entity_id ON CONFLICT (epoch_hour, kind, type, "
            "priority) DO UPDATE SET tasks = task_count_hours.tasks + excluded.tasks; END"
        ),
    ],
}
#: (trigger, table) on PostgreSQL, and the functions they run.
_PG_TRIGGERS = [
    ("log_volume_hours_insert", "agent_logs"),
    ("log_volume_hours_delete", "agent_logs"),
    ("log_volume_hours_update", "agent_logs"),
    ("task_count_hours_task", "tasks"),
    ("task_count_hours_task_update", "tasks"),
    ("task_count_hours_step_insert", "history"),
    ("task_count_hours_step_delete", "history"),
]
_PG_FUNCTIONS = ["log_volume_hours_apply", "task_count_hours_task", "task_count_hours_step"]
_SQLITE_TRIGGERS = [
    "log_volume_hours_delete",
    "log_volume_hours_update",
    "task_count_hours_task_insert",
    "task_count_hours_task_delete",
    "task_count_hours_task_update",
    "task_count_hours_step_insert",
    "task_count_hours_step_delete",
]


def upgrade() -> None:
    op.create_table(
        "log_volume_hours",
        sa.Column("epoch_hour", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("log_level", sa.String(length=20), nullable=False),
        sa.Column("logs", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("epoch_hour", "log_level", name=op.f("pk_log_volume_hours")),
    )
    op.create_table(
        "task_count_hours",
        sa.Column("epoch_hour", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("type", sa.String(length=50), nullable=False),
        sa.Column("priority", sa.String(length=20), nullable=False),
        sa.Column("tasks", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "epoch_hour", "kind", "type", "priority", name=op.f("pk_task_count_hours")
        ),
    )
    op.create_table(
        "log_volume_deltas",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column("epoch_hour", sa.BigInteger(), nullable=False),
        sa.Column("log_level", sa.String(length=20), nullable=False),
        sa.Column("logs", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_log_volume_deltas")),
    )
    op.create_table(
        "task_count_deltas",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column("epoch_hour", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("type", sa.String(length=50), nullable=False),
        sa.Column("priority", sa.String(length=20), nullable=False),
        sa.Column("tasks", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task_count_deltas")),
    )
    # Not in batch mode: SQLite creates an index in place (a rebuild would drop triggers).
    op.create_index("ix_tasks_created_at", "tasks", ["created_at"], unique=False)
    conn = op.get_bind()
    dialect = conn.dialect.name
    for statement in _BACKFILL[dialect] + _TRIGGERS[dialect]:
        conn.exec_driver_sql(statement)


def downgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name == "postgresql":
        for trigger, table in _PG_TRIGGERS:
            conn.exec_driver_sql(f"DROP TRIGGER {trigger} ON {table}")
        for function in _PG_FUNCTIONS:
            conn.exec_driver_sql(f"DROP FUNCTION {function}()")
    else:
        for trigger in _SQLITE_TRIGGERS:
            conn.exec_driver_sql(f"DROP TRIGGER {trigger}")
    op.drop_table("task_count_deltas")
    op.drop_table("log_volume_deltas")
    op.drop_table("task_count_hours")
    op.drop_table("log_volume_hours")
    op.drop_index("ix_tasks_created_at", table_name="tasks")
