"""The SQL that keeps ``task_attempts`` equal to what the history says: the derivation of an
attempt from the queue's steps, the triggers per dialect (a step appended to its task's steps
ends the claim before it and starts its own attempt; a step written between others or deleted
runs the derivation for the claims around it), and the backfill (see
:mod:`swarm_director.models.attempt`).

An attempt is a task's ``claim`` step. It waited from the queue step before it (the task's
creation, a retry, a lease expiry...), or from that step's ``not_before`` when a creation or a
retry was due later; it ran until the queue step after it, and ended as that step says.
Seconds are rounded to the millisecond by the database, the same expression on both dialects'
epoch seconds (exact: PostgreSQL's ``extract`` is numeric to the microsecond, SQLite's
``julianday`` to the millisecond).

The migration ``013_add_task_attempts`` carries its own copy of this SQL.
"""

from __future__ import annotations

from swarm_director.db.ddl import dropped_triggers

ATTEMPTS = "task_attempts"
PG_FUNCTION = "task_attempts_step"
#: The triggers on ``history``, per dialect (PostgreSQL's function takes both of SQLite's
#: insert cases).
PG_TRIGGERS = ("task_attempts_insert", "task_attempts_delete")
SQLITE_TRIGGERS = ("task_attempts_append", "task_attempts_insert", "task_attempts_delete")
#: The history's actions that are queue steps (what an attempt is read from).
STEPS = "('create', 'claim', 'complete', 'fail', 'retry', 'expire')"
COLUMNS = "claim_id, task_id, agent_id, attempt, claimed_at, wait_s, run_s, end_action"


def _epoch(dialect: str, value: str) -> str:
    if dialect == "postgresql":
        return f"extract(epoch FROM {value})"
    return f"(julianday({value}) - 2440587.5) * 86400.0"


def _json(dialect: str, column: str, key: str, cast: str) -> str:
    if dialect == "postgresql":
        return f"CAST({column} #>> '{{{key}, 1}}' AS {cast})"
    return f"CAST(json_extract({column}, '$.{key}[1]') AS {cast})"


def _step(alias: str, row: str, compare: str) -> str:
    """The queue step of ``row``'s task nearest before (``<``) or after (``>``) it."""
    order = "DESC" if compare == "<" else "ASC"
    return (
        f"FROM history {alias} WHERE {alias}.entity = 'task' AND {alias}.entity_id = "
        f"{row}.entity_id AND {alias}.action IN {STEPS} AND {alias}.id {compare} {row}.id "
        f"ORDER BY {alias}.id {order} LIMIT 1"
    )


#: 1000.0 as a double (seconds rounded to the millisecond), and the type of an agent id.
_THOUSAND = {"postgresql": "CAST(1000.0 AS DOUBLE PRECISION)", "sqlite": "1000.0"}
_AGENT_TYPE = {"postgresql": "BIGINT", "sqlite": "INTEGER"}


def _ms(dialect: str, seconds: str) -> str:
    """A difference of epoch seconds rounded to the millisecond (a double)."""
    return f"round(CAST({seconds} AS FLOAT) * 1000) / {_THOUSAND[dialect]}"


def _ready(dialect: str, claim: str) -> str:
    """When the task of claim ``claim`` became ready, in epoch seconds: the queue step before
    it, or that step's ``not_before`` when a creation or a retry was due later."""
    e = _epoch
    if dialect == "sqlite":  # julianday() reads the ISO text itself
        due = e(dialect, "json_extract(p.changes, '$.not_before[1]')")
    else:
        due = e(dialect, _json(dialect, "p.changes", "not_before", "TIMESTAMP WITH TIME ZONE"))
    return (
        f"(SELECT CASE WHEN p.action IN ('create', 'retry') AND {due} > {e(dialect, 'p.at')} "
        f"THEN {due} ELSE {e(dialect, 'p.at')} END {_step('p', claim, '<')})"
    )


def derived(dialect: str, where: str) -> str:
    """A SELECT of the attempts (in :data:`COLUMNS`' order) of the claims ``c`` that
    ``where`` keeps, computed from the history."""
    e = _epoch
    ready = _ready(dialect, "c")
    next_action = f"(SELECT n.action {_step('n', 'c', '>')})"
    next_s = f"(SELECT {e(dialect, 'n.at')} {_step('n', 'c', '>')})"
    agent_type = _AGENT_TYPE[dialect]
    return (
        f"SELECT s.claim_id, s.task_id, s.agent_id, s.attempt, s.claimed_at, "  # noqa: S608
        f"{_ms(dialect, 's.at_s - s.ready_s')}, CASE WHEN s.next_action = 'complete' THEN "
        f"{_ms(dialect, 's.next_s - s.at_s')} END, s.next_action FROM (SELECT c.id AS claim_id, "
        f"c.entity_id AS task_id, "
        f"{_json(dialect, 'c.changes', 'assigned_agent_id', agent_type)} AS agent_id, "
        f"{_json(dialect, 'c.changes', 'attempt', 'INTEGER')} AS attempt, c.at AS claimed_at, "
        f"{e(dialect, 'c.at')} AS at_s, {ready} AS ready_s, {next_action} AS next_action, "
        f"{next_s} AS next_s FROM history c WHERE c.entity = 'task' AND c.action = 'claim' AND "
        f"{where}) AS s WHERE true"
    )


def _refresh(dialect: str, row: str) -> str:
    """Upsert the attempts a step ``row`` (``new`` or ``old``) changes: its own (a claim),
    the claim before it (whose end it is) and the claim after it (whose wait starts at it)."""
    around = (
        f"c.entity_id = {row}.entity_id AND c.id IN ({row}.id, (SELECT p.id "
        f"{_step('p', row, '<')}), (SELECT n.id {_step('n', row, '>')}))"
    )
    update = ", ".join(f"{column} = excluded.{column}" for column in COLUMNS.split(", ")[1:])
    return (
        f"INSERT INTO {ATTEMPTS} ({COLUMNS}) {derived(dialect, around)} "
        f"ON CONFLICT (claim_id) DO UPDATE SET {update}"
    )


def _later(row: str) -> str:
    """Whether a queue step of ``row``'s task comes after it (an insert out of order)."""
    return f"EXISTS (SELECT 1 {_step('n', row, '>')})"


def _appended(dialect: str) -> list[str]:
    """What a queue step ``new`` appended to its task's steps (the queue's own case) changes:
    the claim before it, if it is one, ends with it; a claim starts an attempt. The same
    figures as :func:`_refresh`, with two index reads instead of eight."""
    e = _epoch
    run = _ms(dialect, f"{e(dialect, 'new.at')} - {e(dialect, 'claimed_at')}")
    wait = _ms(dialect, f"{e(dialect, 'new.at')} - {_ready(dialect, 'new')}")
    agent_type = _AGENT_TYPE[dialect]
    return [
        (
            f"UPDATE {ATTEMPTS} SET end_action = new.action, run_s = CASE WHEN new.action = "  # noqa: S608
            f"'complete' THEN {run} END WHERE claim_id = (SELECT p.id {_step('p', 'new', '<')})"
        ),
        (
            f"INSERT INTO {ATTEMPTS} ({COLUMNS}) SELECT new.id, new.entity_id, "
            f"{_json(dialect, 'new.changes', 'assigned_agent_id', agent_type)}, "
            f"{_json(dialect, 'new.changes', 'attempt', 'INTEGER')}, new.at, {wait}, "
            f"NULL, NULL WHERE new.action = 'claim'"
        ),
    ]


def backfill_sql(dialect: str) -> str:
    """Every attempt the history holds, into the (empty) table."""
    return f"INSERT INTO {ATTEMPTS} ({COLUMNS}) {derived(dialect, 'true')}"


def pg_create() -> list[str]:
    """The trigger function and its two triggers (PostgreSQL)."""
    update, insert = _appended("postgresql")
    return [
        (
            f"CREATE OR REPLACE FUNCTION {PG_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS "  # noqa: S608
            f"$$ BEGIN IF TG_OP = 'DELETE' THEN DELETE FROM {ATTEMPTS} WHERE claim_id = "
            f"OLD.id; {_refresh('postgresql', 'OLD')}; RETURN OLD; END IF; "
            f"IF {_later('NEW')} THEN {_refresh('postgresql', 'NEW')}; RETURN NEW; END IF; "
            f"{update}; {insert}; RETURN NEW; END $$"
        ),
        (
            f"CREATE TRIGGER {PG_TRIGGERS[0]} AFTER INSERT ON history FOR EACH ROW WHEN "
            f"(NEW.entity = 'task' AND NEW.action IN {STEPS}) EXECUTE FUNCTION {PG_FUNCTION}()"
        ),
        (
            f"CREATE TRIGGER {PG_TRIGGERS[1]} AFTER DELETE ON history FOR EACH ROW WHEN "
            f"(OLD.entity = 'task' AND OLD.action IN {STEPS}) EXECUTE FUNCTION {PG_FUNCTION}()"
        ),
    ]


def sqlite_create() -> list[str]:
    """The three triggers (SQLite): a step appended, a step inserted before others, a step
    deleted."""
    update, insert = _appended("sqlite")
    step = f"new.entity = 'task' AND new.action IN {STEPS}"
    return [
        (
            f"CREATE TRIGGER {SQLITE_TRIGGERS[0]} AFTER INSERT ON history WHEN {step} AND NOT "
            f"{_later('new')} BEGIN {update}; {insert}; END"
        ),
        (
            f"CREATE TRIGGER {SQLITE_TRIGGERS[1]} AFTER INSERT ON history WHEN {step} AND "
            f"{_later('new')} BEGIN {_refresh('sqlite', 'new')}; END"
        ),
        (
            f"CREATE TRIGGER {SQLITE_TRIGGERS[2]} AFTER DELETE ON history WHEN old.entity = "  # noqa: S608
            f"'task' AND old.action IN {STEPS} BEGIN DELETE FROM {ATTEMPTS} WHERE claim_id = "
            f"old.id; {_refresh('sqlite', 'old')}; END"
        ),
    ]


def create(dialect: str) -> list[str]:
    return pg_create() if dialect == "postgresql" else sqlite_create()


def drop(dialect: str) -> list[str]:
    """What :func:`create` made, dropped."""
    pg_triggers = [(name, "history") for name in PG_TRIGGERS]
    return dropped_triggers(dialect, pg_triggers, [PG_FUNCTION], SQLITE_TRIGGERS)
