"""Attempts of the work queue, one row per claim, kept by triggers on the history.

Revision ID: 013_add_task_attempts
Revises: 012_add_report_rollups
Create Date: 2026-12-07

``task_attempts`` holds each ``claim`` step of a task with how long it waited and ran and the
step that ended it, so that the durations and failures reports read one narrow row per
attempt instead of deriving it from the history (see :mod:`swarm_director.models.attempt`;
the statements below are rendered by :mod:`swarm_director.models.attempt_ddl` and copied here
as text because a revision is history). Triggers on the history recompute, for each queue step
written or deleted, the attempts around it, in the writing transaction.
The upgrade creates the table, derives every attempt the history holds into it and creates the
triggers, in the migration's one transaction. The downgrade drops the triggers, the function
and the table, nothing else.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "013_add_task_attempts"
down_revision: str | None = "012_add_report_rollups"
branch_labels: str | None = None
depends_on: str | None = None

_BACKFILL = {
    "postgresql": [
        (
            "INSERT INTO task_attempts (claim_id, task_id, agent_id, attempt, claimed_at, wait_s, "
            "run_s, end_action) SELECT s.claim_id, s.task_id, s.agent_id, s.attempt, "
            "s.claimed_at, round(CAST(s.at_s - s.ready_s AS FLOAT) * 1000) / CAST(1000.0 AS "
            "DOUBLE PRECISION), CASE WHEN s.next_action = 'complete' THEN round(CAST(s.next_s - "
            "s.at_s AS FLOAT) * 1000) / CAST(1000.0 AS DOUBLE PRECISION) END, s.next_action FROM "
            "(SELECT c.id AS claim_id, c.entity_id AS task_id, CAST(c.changes #>> "
            "'{assigned_agent_id, 1}' AS BIGINT) AS agent_id, CAST(c.changes #>> '{attempt, 1}' "
            "AS INTEGER) AS attempt, c.at AS claimed_at, extract(epoch FROM c.at) AS at_s, "
            "(SELECT CASE WHEN p.action IN ('create', 'retry') AND extract(epoch FROM "
            "CAST(p.changes #>> '{not_before, 1}' AS TIMESTAMP WITH TIME ZONE)) > extract(epoch "
            "FROM p.at) THEN extract(epoch FROM CAST(p.changes #>> '{not_before, 1}' AS TIMESTAMP "
            "WITH TIME ZONE)) ELSE extract(epoch FROM p.at) END FROM history p WHERE p.entity = "
            "'task' AND p.entity_id = c.entity_id AND p.action IN ('create', 'claim', 'complete', "
            "'fail', 'retry', 'expire') AND p.id < c.id ORDER BY p.id DESC LIMIT 1) AS ready_s, "
            "(SELECT n.action FROM history n WHERE n.entity = 'task' AND n.entity_id = "
            "c.entity_id AND n.action IN ('create', 'claim', 'complete', 'fail', 'retry', "
            "'expire') AND n.id > c.id ORDER BY n.id ASC LIMIT 1) AS next_action, (SELECT "
            "extract(epoch FROM n.at) FROM history n WHERE n.entity = 'task' AND n.entity_id = "
            "c.entity_id AND n.action IN ('create', 'claim', 'complete', 'fail', 'retry', "
            "'expire') AND n.id > c.id ORDER BY n.id ASC LIMIT 1) AS next_s FROM history c WHERE "
            "c.entity = 'task' AND c.action = 'claim' AND true) AS s WHERE true"
        ),
    ],
    "sqlite": [
        (
            "INSERT INTO task_attempts (claim_id, task_id, agent_id, attempt, claimed_at, wait_s, "
            "run_s, end_action) SELECT s.claim_id, s.task_id, s.agent_id, s.attempt, "
            "s.claimed_at, round(CAST(s.at_s - s.ready_s AS FLOAT) * 1000) / 1000.0, CASE WHEN "
            "s.next_action = 'complete' THEN round(CAST(s.next_s - s.at_s AS FLOAT) * 1000) / "
            "1000.0 END, s.next_action FROM (SELECT c.id AS claim_id, c.entity_id AS task_id, "
            "CAST(json_extract(c.changes, '$.assigned_agent_id[1]') AS INTEGER) AS agent_id, "
            "CAST(json_extract(c.changes, '$.attempt[1]') AS INTEGER) AS attempt, c.at AS "
            "claimed_at, (julianday(c.at) - 2440587.5) * 86400.0 AS at_s, (SELECT CASE WHEN "
            "p.action IN ('create', 'retry') AND (julianday(json_extract(p.changes, "
            "'$.not_before[1]')) - 2440587.5) * 86400.0 > (julianday(p.at) - 2440587.5) * 86400.0 "
            "THEN (julianday(json_extract(p.changes, '$.not_before[1]')) - 2440587.5) * 86400.0 "
            "ELSE (julianday(p.at) - 2440587.5) * 86400.0 END FROM history p WHERE p.entity = "
            "'task' AND p.entity_id = c.entity_id AND p.action IN ('create', 'claim', 'complete', "
            "'fail', 'retry', 'expire') AND p.id < c.id ORDER BY p.id DESC LIMIT 1) AS ready_s, "
            "(SELECT n.action FROM history n WHERE n.entity = 'task' AND n.entity_id = "
            "c.entity_id AND n.action IN ('create', 'claim', 'complete', 'fail', 'retry', "
            "'expire') AND n.id > c.id ORDER BY n.id ASC LIMIT 1) AS next_action, (SELECT "
            "(julianday(n.at) - 2440587.5) * 86400.0 FROM history n WHERE n.entity = 'task' AND "
            "n.entity_id = c.entity_id AND n.action IN ('create', 'claim', 'complete', 'fail', "
            "'retry', 'expire') AND n.id > c.id ORDER BY n.id ASC LIMIT 1) AS next_s FROM history "
            "c WHERE c.entity = 'task' AND c.action = 'claim' AND true) AS s WHERE true"
        ),
    ],
}
_TRIGGERS = {
    "postgresql": [
        (
            "CREATE OR REPLACE FUNCTION task_attempts_step() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN IF TG_OP = 'DELETE' THEN DELETE FROM task_attempts WHERE claim_id = OLD.id; "
            "INSERT INTO task_attempts (claim_id, task_id, agent_id, attempt, claimed_at, wait_s, "
            "run_s, end_action) SELECT s.claim_id, s.task_id, s.agent_id, s.attempt, "
            "s.claimed_at, round(CAST(s.at_s - s.ready_s AS FLOAT) * 1000) / CAST(1000.0 AS "
            "DOUBLE PRECISION), CASE WHEN s.next_action = 'complete' THEN round(CAST(s.next_s - "
            "s.at_s AS FLOAT) * 1000) / CAST(1000.0 AS DOUBLE PRECISION) END, s.next_action FROM "
            "(SELECT c.id AS claim_id, c.entity_id AS task_id, CAST(c.changes #>> "
            "'{assigned_agent_id, 1}' AS BIGINT) AS agent_id, CAST(c.changes #>> '{attempt, 1}' "
            "AS INTEGER) AS attempt, c.at AS claimed_at, extract(epoch FROM c.at) AS at_s, "
            "(SELECT CASE WHEN p.action IN ('create', 'retry') AND extract(epoch FROM "
            "CAST(p.changes #>> '{not_before, 1}' AS TIMESTAMP WITH TIME ZONE)) > extract(epoch "
            "FROM p.at) THEN extract(epoch FROM CAST(p.changes #>> '{not_before, 1}' AS TIMESTAMP "
            "WITH TIME ZONE)) ELSE extract(epoch FROM p.at) END FROM history p WHERE p.entity = "
            "'task' AND p.entity_id = c.entity_id AND p.action IN ('create', 'claim', 'complete', "
            "'fail', 'retry', 'expire') AND p.id < c.id ORDER BY p.id DESC LIMIT 1) AS ready_s, "
            "(SELECT n.action FROM history n WHERE n.entity = 'task' AND n.entity_id = "
            "c.entity_id AND n.action IN ('create', 'claim', 'complete', 'fail', 'retry', "
            "'expire') AND n.id > c.id ORDER BY n.id ASC LIMIT 1) AS next_action, (SELECT "
            "extract(epoch FROM n.at) FROM history n WHERE n.entity = 'task' AND n.entity_id = "
            "c.entity_id AND n.action IN ('create', 'claim', 'complete', 'fail', 'retry', "
            "'expire') AND n.id > c.id ORDER BY n.id ASC LIMIT 1) AS next_s FROM history c WHERE "
            "c.entity = 'task' AND c.action = 'claim' AND c.entity_id = OLD.entity_id AND c.id IN "
            "(OLD.id, (SELECT p.id FROM history p WHERE p.entity = 'task' AND p.entity_id = "
            "OLD.entity_id AND p.action IN ('create', 'claim', 'complete', 'fail', 'retry', "
            "'expire') AND p.id < OLD.id ORDER BY p.id DESC LIMIT 1), (SELECT n.id FROM history n "
            "WHERE n.entity = 'task' AND n.entity_id = OLD.entity_id AND n.action IN ('create', "
            "'claim', 'complete', 'fail', 'retry', 'expire') AND n.id > OLD.id ORDER BY n.id ASC "
            "LIMIT 1))) AS s WHERE true ON CONFLICT (claim_id) DO UPDATE SET task_id = "
            "excluded.task_id, agent_id = excluded.agent_id, attempt = excluded.attempt, "
            "claimed_at = excluded.claimed_at, wait_s = excluded.wait_s, run_s = excluded.run_s, "
            "end_action = excluded.end_action; RETURN OLD; END IF; IF EXISTS (SELECT 1 FROM "
            "history n WHERE n.entity = 'task' AND n.entity_id = NEW.entity_id AND n.action IN "
            "('create', 'claim', 'complete', 'fail', 'retry', 'expire') AND n.id > NEW.id ORDER "
            "BY n.id ASC LIMIT 1) THEN INSERT INTO task_attempts (claim_id, task_id, agent_id, "
            "attempt, claimed_at, wait_s, run_s, end_action) SELECT s.claim_id, s.task_id, "
            "s.agent_id, s.attempt, s.claimed_at, round(CAST(s.at_s - s.ready_s AS FLOAT) * 1000) "
            "/ CAST(1000.0 AS DOUBLE PRECISION), CASE WHEN s.next_action = 'complete' THEN "
            "round(CAST(s.next_s - s.at_s AS FLOAT) * 1000) / CAST(1000.0 AS DOUBLE PRECISION) "
            "END, s.next_action FROM (SELECT c.id AS claim_id, c.entity_id AS task_id, "
            "CAST(c.changes #>> '{assigned_agent_id, 1}' AS BIGINT) AS agent_id, CAST(c.changes "
            "#>> '{attempt, 1}' AS INTEGER) AS attempt, c.at AS claimed_at, extract(epoch FROM "
            "c.at) AS at_s, (SELECT CASE WHEN p.action IN ('create', 'retry') AND extract(epoch "
            "FROM CAST(p.changes #>> '{not_before, 1}' AS TIMESTAMP WITH TIME ZONE)) > "
            "extract(epoch FROM p.at) THEN extract(epoch FROM CAST(p.changes #>> '{not_before, "
            "1}' AS TIMESTAMP WITH TIME ZONE)) ELSE extract(epoch FROM p.at) END FROM history p "
            "WHERE p.entity = 'task' AND p.entity_id = c.entity_id AND p.action IN ('create', "
            "'claim', 'complete', 'fail', 'retry', 'expire') AND p.id < c.id ORDER BY p.id DESC "
            "LIMIT 1) AS ready_s, (SELECT n.action FROM history n WHERE n.entity = 'task' AND "
            "n.entity_id = c.entity_id AND n.action IN ('create', 'claim', 'complete', 'fail', "
            "'retry', 'expire') AND n.id > c.id ORDER BY n.id ASC LIMIT 1) AS next_action, "
            "(SELECT extract(epoch FROM n.at) FROM history n WHERE n.entity = 'task' AND "
            "n.entity_id = c.entity_id AND n.action IN ('create', 'claim', 'complete', 'fail', "
            "'retry', 'expire') AND n.id > c.id ORDER BY n.id ASC LIMIT 1) AS next_s FROM history "
            "c WHERE c.entity = 'task' AND c.action = 'claim' AND c.entity_id = NEW.entity_id AND "
            "c.id IN (NEW.id, (SELECT p.id FROM history p WHERE p.entity = 'task' AND p.entity_id "
            "= NEW.entity_id AND p.action IN ('create', 'claim', 'complete', 'fail', 'retry', "
            "'expire') AND p.id < NEW.id ORDER BY p.id DESC LIMIT 1), (SELECT n.id FROM history n "
            "WHERE n.entity = 'task' AND n.entity_id = NEW.entity_id AND n.action IN ('create', "
            "'claim', 'complete', 'fail', 'retry', 'expire') AND n.id > NEW.id ORDER BY n.id ASC "
            "LIMIT 1))) AS s WHERE true ON CONFLICT (claim_id) DO UPDATE SET task_id = "
            "excluded.task_id, agent_id = excluded.agent_id, attempt = excluded.attempt, "
            "claimed_at = excluded.claimed_at, wait_s = excluded.wait_s, run_s = excluded.run_s, "
            "end_action = excluded.end_action; RETURN NEW; END IF; UPDATE task_attempts SET "
            "end_action = new.action, run_s = CASE WHEN new.action = 'complete' THEN "
            "round(CAST(extract(epoch FROM new.at) - extract(epoch FROM claimed_at) AS FLOAT) * "
            "1000) / CAST(1000.0 AS DOUBLE PRECISION) END WHERE claim_id = (SELECT p.id FROM "
            "history p WHERE p.entity = 'task' AND p.entity_id = new.entity_id AND p.action IN "
            "('create', 'claim', 'complete', 'fail', 'retry', 'expire') AND p.id < new.id ORDER "
            "BY p.id DESC LIMIT 1); INSERT INTO task_attempts (claim_id, task_id, agent_id, "
            "attempt, claimed_at, wait_s, run_s, end_action) SELECT new.id, new.entity_id, "
            "CAST(new.changes #>> '{assigned_agent_id, 1}' AS BIGINT), CAST(new.changes #>> "
            "'{attempt, 1}' AS INTEGER), new.at, round(CAST(extract(epoch FROM new.at) - (SELECT "
            "CASE WHEN p.action IN ('create', 'retry') AND extract(epoch FROM CAST(p.changes #>> "
            "'{not_before, 1}' AS TIMESTAMP WITH TIME ZONE)) > extract(epoch FROM p.at) THEN "
            "extract(epoch FROM CAST(p.changes #>> '{not_before, 1}' AS TIMESTAMP WITH TIME "
            "ZONE)) ELSE extract(epoch FROM p.at) END FROM history p WHERE p.entity = 'task' AND "
            "p.entity_id = new.entity_id AND p.action IN ('create', 'claim', 'complete', 'fail', "
            "'retry', 'expire') AND p.id < new.id ORDER BY p.id DESC LIMIT 1) AS FLOAT) * 1000) / "
            "CAST(1000.0 AS DOUBLE PRECISION), NULL, NULL WHERE new.action = 'claim'; RETURN NEW; "
            "END $$"
        ),
        (
            "CREATE TRIGGER task_attempts_insert AFTER INSERT ON history FOR EACH ROW WHEN "
            "(NEW.entity = 'task' AND NEW.action IN ('create', 'claim', 'complete', 'fail', "
            "'retry', 'expire')) EXECUTE FUNCTION task_attempts_step()"
        ),
        (
            "CREATE TRIGGER task_attempts_delete AFTER DELETE ON history FOR EACH ROW WHEN "
            "(OLD.entity = 'task' AND OLD.action IN ('create', 'claim', 'complete', 'fail', "
            "'retry', 'expire')) EXECUTE FUNCTION task_attempts_step()"
        ),
    ],
    "sqlite": [
        (
            "CREATE TRIGGER task_attempts_append AFTER INSERT ON history WHEN new.entity = 'task' "
            "AND new.action IN ('create', 'claim', 'complete', 'fail', 'retry', 'expire') AND NOT "
            "EXISTS (SELECT 1 FROM history n WHERE n.entity = 'task' AND n.entity_id = "
            "new.entity_id AND n.action IN ('create', 'claim', 'complete', 'fail', 'retry', "
            "'expire') AND n.id > new.id ORDER BY n.id ASC LIMIT 1) BEGIN UPDATE task_attempts "
            "SET end_action = new.action, run_s = CASE WHEN new.action = 'complete' THEN "
            "round(CAST((julianday(new.at) - 2440587.5) * 86400.0 - (julianday(claimed_at) - "
            "2440587.5) * 86400.0 AS FLOAT) * 1000) / 1000.0 END WHERE claim_id = (SELECT p.id "
            "FROM history p WHERE p.entity = 'task' AND p.entity_id = new.entity_id AND p.action "
            "IN ('create', 'claim', 'complete', 'fail', 'retry', 'expire') AND p.id < new.id "
            "ORDER BY p.id DESC LIMIT 1); INSERT INTO task_attempts (claim_id, task_id, agent_id, "
            "attempt, claimed_at, wait_s, run_s, end_action) SELECT new.id, new.entity_id, "
            "CAST(json_extract(new.changes, '$.assigned_agent_id[1]') AS INTEGER), "
            "CAST(json_extract(new.changes, '$.attempt[1]') AS INTEGER), new.at, "
            "round(CAST((julianday(new.at) - 2440587.5) * 86400.0 - (SELECT CASE WHEN p.action IN "
            "('create', 'retry') AND (julianday(json_extract(p.changes, '$.not_before[1]')) - "
            "2440587.5) * 86400.0 > (julianday(p.at) - 2440587.5) * 86400.0 THEN "
            "(julianday(json_extract(p.changes, '$.not_before[1]')) - 2440587.5) * 86400.0 ELSE "
            "(julianday(p.at) - 2440587.5) * 86400.0 END FROM history p WHERE p.entity = 'task' "
            "AND p.entity_id = new.entity_id AND p.action IN ('create', 'claim', 'complete', "
            "'fail', 'retry', 'expire') AND p.id < new.id ORDER BY p.id DESC LIMIT 1) AS FLOAT) * "
            "1000) / 1000.0, NULL, NULL WHERE new.action = 'claim'; END"
        ),
        (
            "CREATE TRIGGER task_attempts_insert AFTER INSERT ON history WHEN new.entity = 'task' "
            "AND new.action IN ('create', 'claim', 'complete', 'fail', 'retry', 'expire') AND "
            "EXISTS (SELECT 1 FROM history n WHERE n.entity = 'task' AND n.entity_id = "
            "new.entity_id AND n.action IN ('create', 'claim', 'complete', 'fail', 'retry', "
            "'expire') AND n.id > new.id ORDER BY n.id ASC LIMIT 1) BEGIN INSERT INTO "
            "task_attempts (claim_id, task_id, agent_id, attempt, claimed_at, wait_s, run_s, "
            "end_action) SELECT s.claim_id, s.task_id, s.agent_id, s.attempt, s.claimed_at, "
            "round(CAST(s.at_s - s.ready_s AS FLOAT) * 1000) / 1000.0, CASE WHEN s.next_action = "
            "'complete' THEN round(CAST(s.next_s - s.at_s AS FLOAT) * 1000) / 1000.0 END, "
            "s.next_action FROM (SELECT c.id AS claim_id, c.entity_id AS task_id, "
            "CAST(json_extract(c.changes, '$.assigned_agent_id[1]') AS INTEGER) AS agent_id, "
            "CAST(json_extract(c.changes, '$.attempt[1]') AS INTEGER) AS attempt, c.at AS "
            "claimed_at, (julianday(c.at) - 2440587.5) * 86400.0 AS at_s, (SELECT CASE WHEN "
            "p.action IN ('create', 'retry') AND (julianday(json_extract(p.changes, "
            "'$.not_before[1]')) - 2440587.5) * 86400.0 > (julianday(p.at) - 2440587.5) * 86400.0 "
            "THEN (julianday(json_extract(p.changes, '$.not_before[1]')) - 2440587.5) * 86400.0 "
            "ELSE (julianday(p.at) - 2440587.5) * 86400.0 END FROM history p WHERE p.entity = "
            "'task' AND p.entity_id = c.entity_id AND p.action IN ('create', 'claim', 'complete', "
            "'fail', 'retry', 'expire') AND p.id < c.id ORDER BY p.id DESC LIMIT 1) AS ready_s, "
            "(SELECT n.action FROM history n WHERE n.entity = 'task' AND n.entity_id = "
            "c.entity_id AND n.action IN ('create', 'claim', 'complete', 'fail', 'retry', "
            "'expire') AND n.id > c.id ORDER BY n.id ASC LIMIT 1) AS next_action, (SELECT "
            "(julianday(n.at) - 2440587.5) * 86400.0 FROM history n WHERE n.entity = 'task' AND "
            "n.entity_id = c.entity_id AND n.action IN ('create', 'claim', 'complete', 'fail', "
            "'retry', 'expire') AND n.id > c.id ORDER BY n.id ASC LIMIT 1) AS next_s FROM history "
            "c WHERE c.entity = 'task' AND c.action = 'claim' AND c.entity_id = new.entity_id AND "
            "c.id IN (new.id, (SELECT p.id FROM history p WHERE p.entity = 'task' AND p.entity_id "
            "= new.entity_id AND p.action IN ('create', 'claim', 'complete', 'fail', 'retry', "
            "'expire') AND p.id < new.id ORDER BY p.id DESC LIMIT 1), (SELECT n.id FROM history n "
            "WHERE n.entity = 'task' AND n.entity_id = new.entity_id AND n.action IN ('create', "
            "'claim', 'complete', 'fail', 'retry', 'expire') AND n.id > new.id ORDER BY n.id ASC "
            "LIMIT 1))) AS s WHERE true ON CONFLICT (claim_id) DO UPDATE SET task_id = "
            "excluded.task_id, agent_id = excluded.agent_id, attempt = excluded.attempt, "
            "claimed_at = excluded.claimed_at, wait_s = excluded.wait_s, run_s = excluded.run_s, "
            "end_action = excluded.end_action; END"
        ),
        (
            "CREATE TRIGGER task_attempts_delete AFTER DELETE ON history WHEN old.entity = 'task' "
            "AND old.action IN ('create', 'claim', 'complete', 'fail', 'retry', 'expire') BEGIN "
            "DELETE FROM task_attempts WHERE claim_id = old.id; INSERT INTO task_attempts "
            "(claim_id, task_id, agent_id, attempt, claimed_at, wait_s, run_s, end_action) SELECT "
            "s.claim_id, s.task_id, s.agent_id, s.attempt, s.claimed_at, round(CAST(s.at_s - "
            "s.ready_s AS FLOAT) * 1000) / 1000.0, CASE WHEN s.next_action = 'complete' THEN "
            "round(CAST(s.next_s - s.at_s AS FLOAT) * 1000) / 1000.0 END, s.next_action FROM "
            "(SELECT c.id AS claim_id, c.entity_id AS task_id, CAST(json_extract(c.changes, "
            "'$.assigned_agent_id[1]') AS INTEGER) AS agent_id, CAST(json_extract(c.changes, "
            "'$.attempt[1]') AS INTEGER) AS attempt, c.at AS claimed_at, (julianday(c.at) - "
            "2440587.5) * 86400.0 AS at_s, (SELECT CASE WHEN p.action IN ('create', 'retry') AND "
            "(julianday(json_extract(p.changes, '$.not_before[1]')) - 2440587.5) * 86400.0 > "
            "(julianday(p.at) - 2440587.5) * 86400.0 THEN (julianday(json_extract(p.changes, "
            "'$.not_before[1]')) - 2440587.5) * 86400.0 ELSE (julianday(p.at) - 2440587.5) * "
            "86400.0 END FROM history p WHERE p.entity = 'task' AND p.entity_id = c.entity_id AND "
            "p.action IN ('create', 'claim', 'complete', 'fail', 'retry', 'expire') AND p.id < "
            "c.id ORDER BY p.id DESC LIMIT 1) AS ready_s, (SELECT n.action FROM history n WHERE "
            "n.entity = 'task' AND n.entity_id = c.entity_id AND n.action IN ('create', 'claim', "
            "'complete', 'fail', 'retry', 'expire') AND n.id > c.id ORDER BY n.id ASC LIMIT 1) AS "
            "next_action, (SELECT (julianday(n.at) - 2440587.5) * 86400.0 FROM history n WHERE "
            "n.entity = 'task' AND n.entity_id = c.entity_id AND n.action IN ('create', 'claim', "
            "'complete', 'fail', 'retry', 'expire') AND n.id > c.id ORDER BY n.id ASC LIMIT 1) AS "
            "next_s FROM history c WHERE c.entity = 'task' AND c.action = 'claim' AND c.entity_id "
            "= old.entity_id AND c.id IN (old.id, (SELECT p.id FROM history p WHERE p.entity = "
            "'task' AND p.entity_id = old.entity_id AND p.action IN ('create', 'claim', "
            "'complete', 'fail', 'retry', 'expire') AND p.id < old.id ORDER BY p.id DESC LIMIT "
            "1), (SELECT n.id FROM history n WHERE n.entity = 'task' AND n.entity_id = "
            "old.entity_id AND n.action IN ('create', 'claim', 'complete', 'fail', 'retry', "
            "'expire') AND n.id > old.id ORDER BY n.id ASC LIMIT 1))) AS s WHERE true ON CONFLICT "
            "(claim_id) DO UPDATE SET task_id = excluded.task_id, agent_id = excluded.agent_id, "
            "attempt = excluded.attempt, claimed_at = excluded.claimed_at, wait_s = "
            "excluded.wait_s, run_s = excluded.run_s, end_action = excluded.end_action; END"
        ),
    ],
}
_DROP = {
    "postgresql": [
        ("DROP TRIGGER IF EXISTS task_attempts_insert ON history"),
        ("DROP TRIGGER IF EXISTS task_attempts_delete ON history"),
        ("DROP FUNCTION IF EXISTS task_attempts_step()"),
    ],
    "sqlite": [
        ("DROP TRIGGER IF EXISTS task_attempts_append"),
        ("DROP TRIGGER IF EXISTS task_attempts_insert"),
        ("DROP TRIGGER IF EXISTS task_attempts_delete"),
    ],
}


def upgrade() -> None:
    op.create_table(
        "task_attempts",
        sa.Column("claim_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("task_id", sa.BigInteger(), nullable=False),
        sa.Column("agent_id", sa.BigInteger(), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("wait_s", sa.Float(), nullable=True),
        sa.Column("run_s", sa.Float(), nullable=True),
        sa.Column("end_action", sa.String(length=20), nullable=True),
        sa.PrimaryKeyConstraint("claim_id", name=op.f("pk_task_attempts")),
    )
    op.create_index("ix_task_attempts_claimed_at", "task_attempts", ["claimed_at"], unique=False)
    conn = op.get_bind()
    for statement in _BACKFILL[conn.dialect.name] + _TRIGGERS[conn.dialect.name]:
        conn.exec_driver_sql(statement)


def downgrade() -> None:
    conn = op.get_bind()
    for statement in _DROP[conn.dialect.name]:
        conn.exec_driver_sql(statement)
    op.drop_index("ix_task_attempts_claimed_at", table_name="task_attempts")
    op.drop_table("task_attempts")
