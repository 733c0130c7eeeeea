"""A rollup of the queue's attempts per hour, task type, agent and outcome.

Revision ID: 015_add_attempt_counts
Revises: 014_add_error_groups
Create Date: 2026-12-07

The failures report's failure rates read every attempt of the range joined to its task at
every call: a million rows for a month of a busy swarm. ``attempt_count_hours`` counts the
attempts per UTC hour of their claim, the task's current type, the agent and the kind
(``claimed``; ``completed`` or ``failed`` once ended), kept by row triggers on
``task_attempts`` and ``tasks`` as ``task_count_hours`` is (see
:mod:`swarm_director.models.attempt_count`; the statements below are rendered by
:mod:`swarm_director.models.attempt_count_ddl` and copied here as text, because a revision
is history). An index on ``task_attempts.task_id`` lets the tasks' triggers find a task's
attempts. The upgrade creates the index, the tables, the counts and the triggers in the
migration's one transaction (a count of the attempts: seconds for millions); the downgrade
drops them, nothing else.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "015_add_attempt_counts"
down_revision: str | None = "014_add_error_groups"
branch_labels: str | None = None
depends_on: str | None = None

_BACKFILL = {
    "postgresql": [
        (
            "INSERT INTO attempt_count_hours (epoch_hour, kind, type, agent_id, attempts)"
            " SELECT s.hr, s.k, t.type, s.ag, count(*) FROM (SELECT floor(extract(epoch "
            "FROM a.claimed_at) / 3600)::bigint AS hr, 'claimed' AS k, "
            "coalesce(a.agent_id, 0) AS ag, a.task_id FROM task_attempts a WHERE true "
            "UNION ALL SELECT floor(extract(epoch FROM a.claimed_at) / 3600)::bigint, "
            "CASE WHEN a.end_action = 'complete' THEN 'completed' ELSE 'failed' END, "
            "coalesce(a.agent_id, 0), a.task_id FROM task_attempts a WHERE true AND "
            "a.end_action IN ('complete', 'fail', 'retry', 'expire')) AS s JOIN tasks t "
            "ON t.id = s.task_id GROUP BY s.hr, s.k, t.type, s.ag"
        ),
    ],
    "sqlite": [
        (
            "INSERT INTO attempt_count_hours (epoch_hour, kind, type, agent_id, attempts)"
            " SELECT s.hr, s.k, t.type, s.ag, count(*) FROM (SELECT CAST(strftime('%s', "
            "substr(a.claimed_at, 1, 19)) AS INTEGER) / 3600 AS hr, 'claimed' AS k, "
            "coalesce(a.agent_id, 0) AS ag, a.task_id FROM task_attempts a WHERE true "
            "UNION ALL SELECT CAST(strftime('%s', substr(a.claimed_at, 1, 19)) AS "
            "INTEGER) / 3600, CASE WHEN a.end_action = 'complete' THEN 'completed' ELSE "
            "'failed' END, coalesce(a.agent_id, 0), a.task_id FROM task_attempts a WHERE "
            "true AND a.end_action IN ('complete', 'fail', 'retry', 'expire')) AS s JOIN "
            "tasks t ON t.id = s.task_id GROUP BY s.hr, s.k, t.type, s.ag"
        ),
    ],
}
_TRIGGERS = {
    "postgresql": [
        (
            "CREATE OR REPLACE FUNCTION attempt_count_hours_attempt() RETURNS trigger "
            "LANGUAGE plpgsql AS $$ BEGIN IF TG_OP = 'UPDATE' AND NOT (OLD.task_id IS "
            "DISTINCT FROM NEW.task_id OR OLD.claimed_at IS DISTINCT FROM NEW.claimed_at "
            "OR OLD.agent_id IS DISTINCT FROM NEW.agent_id) THEN INSERT INTO "
            "attempt_count_deltas (epoch_hour, kind, type, agent_id, attempts) SELECT "
            "floor(extract(epoch FROM OLD.claimed_at) / 3600)::bigint, s.k, t.type, "
            "coalesce(OLD.agent_id, 0), -1 FROM tasks t JOIN (SELECT CASE WHEN "
            "OLD.end_action = 'complete' THEN 'completed' ELSE 'failed' END AS k WHERE "
            "OLD.end_action IN ('complete', 'fail', 'retry', 'expire')) AS s ON true "
            "WHERE t.id = OLD.task_id ; INSERT INTO attempt_count_deltas (epoch_hour, "
            "kind, type, agent_id, attempts) SELECT floor(extract(epoch FROM "
            "NEW.claimed_at) / 3600)::bigint, s.k, t.type, coalesce(NEW.agent_id, 0), 1 "
            "FROM tasks t JOIN (SELECT CASE WHEN NEW.end_action = 'complete' THEN "
            "'completed' ELSE 'failed' END AS k WHERE NEW.end_action IN ('complete', "
            "'fail', 'retry', 'expire')) AS s ON true WHERE t.id = NEW.task_id ; RETURN "
            "NULL; END IF; IF TG_OP IN ('DELETE', 'UPDATE') THEN INSERT INTO "
            "attempt_count_deltas (epoch_hour, kind, type, agent_id, attempts) SELECT "
            "floor(extract(epoch FROM OLD.claimed_at) / 3600)::bigint, s.k, t.type, "
            "coalesce(OLD.agent_id, 0), -1 FROM tasks t JOIN (SELECT 'claimed' AS k UNION"
            " ALL SELECT CASE WHEN OLD.end_action = 'complete' THEN 'completed' ELSE "
            "'failed' END AS k WHERE OLD.end_action IN ('complete', 'fail', 'retry', "
            "'expire')) AS s ON true WHERE t.id = OLD.task_id ; END IF; IF TG_OP IN "
            "('INSERT', 'UPDATE') THEN INSERT INTO attempt_count_deltas (epoch_hour, "
            "kind, type, agent_id, attempts) SELECT floor(extract(epoch FROM "
            "NEW.claimed_at) / 3600)::bigint, s.k, t.type, coalesce(NEW.agent_id, 0), 1 "
            "FROM tasks t JOIN (SELECT 'claimed' AS k UNION ALL SELECT CASE WHEN "
            "NEW.end_action = 'complete' THEN 'completed' ELSE 'failed' END AS k WHERE "
            "NEW.end_action IN ('complete', 'fail', 'retry', 'expire')) AS s ON true "
            "WHERE t.id = NEW.task_id ; END IF; RETURN NULL; END $$"
        ),
        (
            "CREATE OR REPLACE FUNCTION attempt_count_hours_task() RETURNS trigger "
            "LANGUAGE plpgsql AS $$ BEGIN IF TG_OP IN ('DELETE', 'UPDATE') THEN INSERT "
            "INTO attempt_count_deltas (epoch_hour, kind, type, agent_id, attempts) "
            "SELECT hr, k, OLD.type, ag, -count(*) FROM (SELECT floor(extract(epoch FROM "
            "a.claimed_at) / 3600)::bigint AS hr, 'claimed' AS k, coalesce(a.agent_id, 0)"
            " AS ag, a.task_id FROM task_attempts a WHERE a.task_id = OLD.id UNION ALL "
            "SELECT floor(extract(epoch FROM a.claimed_at) / 3600)::bigint, CASE WHEN "
            "a.end_action = 'complete' THEN 'completed' ELSE 'failed' END, "
            "coalesce(a.agent_id, 0), a.task_id FROM task_attempts a WHERE a.task_id = "
            "OLD.id AND a.end_action IN ('complete', 'fail', 'retry', 'expire')) AS s "
            "WHERE true GROUP BY hr, k, ag ORDER BY hr, k, ag ; END IF; IF TG_OP IN "
            "('INSERT', 'UPDATE') THEN INSERT INTO attempt_count_deltas (epoch_hour, "
            "kind, type, agent_id, attempts) SELECT hr, k, NEW.type, ag, count(*) FROM "
            "(SELECT floor(extract(epoch FROM a.claimed_at) / 3600)::bigint AS hr, "
            "'claimed' AS k, coalesce(a.agent_id, 0) AS ag, a.task_id FROM task_attempts "
            "a WHERE a.task_id = NEW.id UNION ALL SELECT floor(extract(epoch FROM "
            "a.claimed_at) / 3600)::bigint, CASE WHEN a.end_action = 'complete' THEN "
            "'completed' ELSE 'failed' END, coalesce(a.agent_id, 0), a.task_id FROM "
            "task_attempts a WHERE a.task_id = NEW.id AND a.end_action IN ('complete', "
            "'fail', 'retry', 'expire')) AS s WHERE true GROUP BY hr, k, ag ORDER BY hr, "
            "k, ag ; END IF; RETURN NULL; END $$"
        ),
        (
            "CREATE TRIGGER attempt_count_hours_attempt AFTER INSERT OR DELETE ON "
            "task_attempts FOR EACH ROW EXECUTE FUNCTION attempt_count_hours_attempt()"
        ),
        (
            "CREATE TRIGGER attempt_count_hours_attempt_update AFTER UPDATE ON "
            "task_attempts FOR EACH ROW WHEN (OLD.end_action IS DISTINCT FROM "
            "NEW.end_action OR OLD.task_id IS DISTINCT FROM NEW.task_id OR OLD.claimed_at"
            " IS DISTINCT FROM NEW.claimed_at OR OLD.agent_id IS DISTINCT FROM "
            "NEW.agent_id) EXECUTE FUNCTION attempt_count_hours_attempt()"
        ),
        (
            "CREATE TRIGGER attempt_count_hours_task AFTER INSERT OR DELETE ON tasks FOR "
            "EACH ROW EXECUTE FUNCTION attempt_count_hours_task()"
        ),
        (
            "CREATE TRIGGER attempt_count_hours_task_update AFTER UPDATE OF type ON tasks"
            " FOR EACH ROW WHEN (OLD.type IS DISTINCT FROM NEW.type) EXECUTE FUNCTION "
            "attempt_count_hours_task()"
        ),
    ],
    "sqlite": [
        (
            "CREATE TRIGGER attempt_count_hours_insert AFTER INSERT ON task_attempts "
            "BEGIN INSERT INTO attempt_count_hours (epoch_hour, kind, type, agent_id, "
            "attempts) SELECT CAST(strftime('%s', substr(new.claimed_at, 1, 19)) AS "
            "INTEGER) / 3600, s.k, t.type, coalesce(new.agent_id, 0), 1 FROM tasks t JOIN"
            " (SELECT 'claimed' AS k UNION ALL SELECT CASE WHEN new.end_action = "
            "'complete' THEN 'completed' ELSE 'failed' END AS k WHERE new.end_action IN "
            "('complete', 'fail', 'retry', 'expire')) AS s ON true WHERE t.id = "
            "new.task_id ON CONFLICT (epoch_hour, kind, type, agent_id) DO UPDATE SET "
            "attempts = attempt_count_hours.attempts + excluded.attempts; END"
        ),
        (
            "CREATE TRIGGER attempt_count_hours_delete AFTER DELETE ON task_attempts "
            "BEGIN INSERT INTO attempt_count_hours (epoch_hour, kind, type, agent_id, "
            "attempts) SELECT CAST(strftime('%s', substr(old.claimed_at, 1, 19)) AS "
            "INTEGER) / 3600, s.k, t.type, coalesce(old.agent_id, 0), -1 FROM tasks t "
            "JOIN (SELECT 'claimed' AS k UNION ALL SELECT CASE WHEN old.end_action = "
            "'complete' THEN 'completed' ELSE 'failed' END AS k WHERE old.end_action IN "
            "('complete', 'fail', 'retry', 'expire')) AS s ON true WHERE t.id = "
            "old.task_id ON CONFLICT (epoch_hour, kind, type, agent_id) DO UPDATE SET "
            "attempts = attempt_count_hours.attempts + excluded.attempts; END"
        ),
        (
            "CREATE TRIGGER attempt_count_hours_end AFTER UPDATE ON task_attempts WHEN "
            "NOT (old.task_id IS NOT new.task_id OR old.claimed_at IS NOT new.claimed_at "
            "OR old.agent_id IS NOT new.agent_id) AND old.end_action IS NOT "
            "new.end_action BEGIN INSERT INTO attempt_count_hours (epoch_hour, kind, "
            "type, agent_id, attempts) SELECT CAST(strftime('%s', substr(old.claimed_at, "
            "1, 19)) AS INTEGER) / 3600, s.k, t.type, coalesce(old.agent_id, 0), -1 FROM "
            "tasks t JOIN (SELECT CASE WHEN old.end_action = 'complete' THEN 'completed' "
            "ELSE 'failed' END AS k WHERE old.end_action IN ('complete', 'fail', 'retry',"
            " 'expire')) AS s ON true WHERE t.id = old.task_id ON CONFLICT (epoch_hour, "
            "kind, type, agent_id) DO UPDATE SET attempts = attempt_count_hours.attempts "
            "+ excluded.attempts; INSERT INTO attempt_count_hours (epoch_hour, kind, "
            "type, agent_id, attempts) SELECT CAST(strftime('%s', substr(new.claimed_at, "
            "1, 19)) AS INTEGER) / 3600, s.k, t.type, coalesce(new.agent_id, 0), 1 FROM "
            "tasks t JOIN (SELECT CASE WHEN new.end_action = 'complete' THEN 'completed' "
            "ELSE 'failed' END AS k WHERE new.end_action IN ('complete', 'fail', 'retry',"
            " 'expire')) AS s ON true WHERE t.id = new.task_id ON CONFLICT (epoch_hour, "
            "kind, type, agent_id) DO UPDATE SET attempts = attempt_count_hours.attempts "
            "+ excluded.attempts; END"
        ),
        (
            "CREATE TRIGGER attempt_count_hours_move AFTER UPDATE ON task_attempts WHEN "
            "old.task_id IS NOT new.task_id OR old.claimed_at IS NOT new.claimed_at OR "
            "old.agent_id IS NOT new.agent_id BEGIN INSERT INTO attempt_count_hours "
            "(epoch_hour, kind, type, agent_id, attempts) SELECT CAST(strftime('%s', "
            "substr(old.claimed_at, 1, 19)) AS INTEGER) / 3600, s.k, t.type, "
            "coalesce(old.agent_id, 0), -1 FROM tasks t JOIN (SELECT 'claimed' AS k UNION"
            " ALL SELECT CASE WHEN old.end_action = 'complete' THEN 'completed' ELSE "
            "'failed' END AS k WHERE old.end_action IN ('complete', 'fail', 'retry', "
            "'expire')) AS s ON true WHERE t.id = old.task_id ON CONFLICT (epoch_hour, "
            "kind, type, agent_id) DO UPDATE SET attempts = attempt_count_hours.attempts "
            "+ excluded.attempts; INSERT INTO attempt_count_hours (epoch_hour, kind, "
            "type, agent_id, attempts) SELECT CAST(strftime('%s', substr(new.claimed_at, "
            "1, 19)) AS INTEGER) / 3600, s.k, t.type, coalesce(new.agent_id, 0), 1 FROM "
            "tasks t JOIN (SELECT 'claimed' AS k UNION ALL SELECT CASE WHEN "
            "new.end_action = 'complete' THEN 'completed' ELSE 'failed' END AS k WHERE "
            "new.end_action IN ('complete', 'fail', 'retry', 'expire')) AS s ON true "
            "WHERE t.id = new.task_id ON CONFLICT (epoch_hour, kind, type, agent_id) DO "
            "UPDATE SET attempts = attempt_count_hours.attempts + excluded.attempts; END"
        ),
        (
            "CREATE TRIGGER attempt_count_hours_task_insert AFTER INSERT ON tasks BEGIN "
            "INSERT INTO attempt_count_hours (epoch_hour, kind, type, agent_id, attempts)"
            " SELECT hr, k, new.type, ag, count(*) FROM (SELECT CAST(strftime('%s', "
            "substr(a.claimed_at, 1, 19)) AS INTEGER) / 3600 AS hr, 'claimed' AS k, "
            "coalesce(a.agent_id, 0) AS ag, a.task_id FROM task_attempts a WHERE "
            "a.task_id = new.id UNION ALL SELECT CAST(strftime('%s', substr(a.claimed_at,"
            " 1, 19)) AS INTEGER) / 3600, CASE WHEN a.end_action = 'complete' THEN "
            "'completed' ELSE 'failed' END, coalesce(a.agent_id, 0), a.task_id FROM "
            "task_attempts a WHERE a.task_id = new.id AND a.end_action IN ('complete', "
            "'fail', 'retry', 'expire')) AS s WHERE true GROUP BY hr, k, ag ORDER BY hr, "
            "k, ag ON CONFLICT (epoch_hour, kind, type, agent_id) DO UPDATE SET attempts "
            "= attempt_count_hours.attempts + excluded.attempts; END"
        ),
        (
            "CREATE TRIGGER attempt_count_hours_task_delete AFTER DELETE ON tasks BEGIN "
            "INSERT INTO attempt_count_hours (epoch_hour, kind, type, agent_id, attempts)"
            " SELECT hr, k, old.type, ag, -count(*) FROM (SELECT CAST(strftime('%s', "
            "substr(a.claimed_at, 1, 19)) AS INTEGER) / 3600 AS hr, 'claimed' AS k, "
            "coalesce(a.agent_id, 0) AS ag, a.task_id FROM task_attempts a WHERE "
            "a.task_id = old.id UNION ALL SELECT CAST(strftime('%s', substr(a.claimed_at,"
            " 1, 19)) AS INTEGER) / 3600, CASE WHEN a.end_action = 'complete' THEN "
            "'completed' ELSE 'failed' END, coalesce(a.agent_id, 0), a.task_id FROM "
            "task_attempts a WHERE a.task_id = old.id AND a.end_action IN ('complete', "
            "'fail', 'retry', 'expire')) AS s WHERE true GROUP BY hr, k, ag ORDER BY hr, "
            "k, ag ON CONFLICT (epoch_hour, kind, type, agent_id) DO UPDATE SET attempts "
            "= attempt_count_hours.attempts + excluded.attempts; END"
        ),
        (
            "CREATE TRIGGER attempt_count_hours_task_update AFTER UPDATE OF type ON tasks"
            " WHEN old.type IS NOT new.type BEGIN INSERT INTO attempt_count_hours "
            "(epoch_hour, kind, type, agent_id, attempts) SELECT hr, k, old.type, ag, "
            "-count(*) FROM (SELECT CAST(strftime('%s', substr(a.claimed_at, 1, 19)) AS "
            "INTEGER) / 3600 AS hr, 'claimed' AS k, coalesce(a.agent_id, 0) AS ag, "
            "a.task_id FROM task_attempts a WHERE a.task_id = old.id UNION ALL SELECT "
            "CAST(strftime('%s', substr(a.claimed_at, 1, 19)) AS INTEGER) / 3600, CASE "
            "WHEN a.end_action = 'complete' THEN 'completed' ELSE 'failed' END, "
            "coalesce(a.agent_id, 0), a.task_id FROM task_attempts a WHERE a.task_id = "
            "old.id AND a.end_action IN ('complete', 'fail', 'retry', 'expire')) AS s "
            "WHERE true GROUP BY hr, k, ag ORDER BY hr, k, ag ON CONFLICT (epoch_hour, "
            "kind, type, agent_id) DO UPDATE SET attempts = attempt_count_hours.attempts "
            "+ excluded.attempts; INSERT INTO attempt_count_hours (epoch_hour, kind, "
            "type, agent_id, attempts) SELECT hr, k, new.type, ag, count(*) FROM (SELECT "
            "CAST(strftime('%s', substr(a.claimed_at, 1, 19)) AS INTEGER) / 3600 AS hr, "
            "'claimed' AS k, coalesce(a.agent_id, 0) AS ag, a.task_id FROM task_attempts "
            "a WHERE a.task_id = new.id UNION ALL SELECT CAST(strftime('%s', "
            "substr(a.claimed_at, 1, 19)) AS INTEGER) / 3600, CASE WHEN a.end_action = "
            "'complete' THEN 'completed' ELSE 'failed' END, coalesce(a.agent_id, 0), "
            "a.task_id FROM task_attempts a WHERE a.task_id = new.id AND a.end_action IN "
            "('complete', 'fail', 'retry', 'expire')) AS s WHERE true GROUP BY hr, k, ag "
            "ORDER BY hr, k, ag ON CONFLICT (epoch_hour, kind, type, agent_id) DO UPDATE "
            "SET attempts = attempt_count_hours.attempts + excluded.attempts; END"
        ),
    ],
}
_DROP = {
    "postgresql": [
        "DROP TRIGGER IF EXISTS attempt_count_hours_attempt ON task_attempts",
        "DROP TRIGGER IF EXISTS attempt_count_hours_attempt_update ON task_attempts",
        "DROP TRIGGER IF EXISTS attempt_count_hours_task ON tasks",
        "DROP TRIGGER IF EXISTS attempt_count_hours_task_update ON tasks",
        "DROP FUNCTION IF EXISTS attempt_count_hours_attempt()",
        "DROP FUNCTION IF EXISTS attempt_count_hours_task()",
    ],
    "sqlite": [
        "DROP TRIGGER IF EXISTS attempt_count_hours_insert",
        "DROP TRIGGER IF EXISTS attempt_count_hours_delete",
        "DROP TRIGGER IF EXISTS attempt_count_hours_end",
        "DROP TRIGGER IF EXISTS attempt_count_hours_move",
        "DROP TRIGGER IF EXISTS attempt_count_hours_task_insert",
        "DROP TRIGGER IF EXISTS attempt_count_hours_task_delete",
        "DROP TRIGGER IF EXISTS attempt_count_hours_task_update",
    ],
}


def upgrade() -> None:
    op.create_index("ix_task_attempts_task_id", "task_attempts", ["task_id"], unique=False)
    op.create_table(
        "attempt_count_hours",
        sa.Column("epoch_hour", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("type", sa.String(length=50), nullable=False),
        sa.Column("agent_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("attempts", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "epoch_hour", "kind", "type", "agent_id", name=op.f("pk_attempt_count_hours")
        ),
    )
    op.create_table(
        "attempt_count_deltas",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("epoch_hour", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("type", sa.String(length=50), nullable=False),
        sa.Column("agent_id", sa.BigInteger(), nullable=False),
        sa.Column("attempts", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attempt_count_deltas")),
    )
    conn = op.get_bind()
    dialect = conn.dialect.name
    for statement in _BACKFILL[dialect] + _TRIGGERS[dialect]:
        conn.exec_driver_sql(statement)


def downgrade() -> None:
    conn = op.get_bind()
    for statement in _DROP[conn.dialect.name]:
        conn.exec_driver_sql(statement)
    op.drop_table("attempt_count_deltas")
    op.drop_table("attempt_count_hours")
    op.drop_index("ix_task_attempts_task_id", table_name="task_attempts")
