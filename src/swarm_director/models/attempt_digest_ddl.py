"""The SQL that keeps ``attempt_digests`` from going stale (see
:mod:`swarm_director.models.attempt_digest`): row triggers on ``task_attempts`` (an attempt
claimed, ended, changed or deleted), on ``tasks`` (a task deleted, created with the id of
a deleted one, or given another type by hand) and on ``history`` (a task's failed step
written, changed or deleted: the digest's errors) that say which hours' digests no longer
hold.

- On SQLite, which has one writer at a time, they delete those hours' digests in the writing
  transaction (a digest is written in a transaction of its own, which writes nothing else).
- On PostgreSQL they append the hours to ``attempt_digest_marks`` instead: a digest being
  computed meanwhile in a snapshot that does not see the change would otherwise be written
  after the trigger had looked for it. A digest holds only while no mark names its hour, and
  the fold that writes it deletes the marks its snapshot saw (never one committed later).

The migrations ``018_add_attempt_digests`` (attempts, tasks) and
``019_add_attempt_digest_errors`` (history) carry their own copies of this SQL.
"""

from __future__ import annotations

from swarm_director.db.ddl import dropped_triggers
from swarm_director.models.attempt_count_ddl import FAILED_ENDS, HOUR_OF

DIGESTS = "attempt_digests"
MARKS = "attempt_digest_marks"
PG_FUNCTIONS = ("attempt_digests_attempt", "attempt_digests_task")
PG_TRIGGERS = (
    ("attempt_digests_attempt", "task_attempts"),
    ("attempt_digests_attempt_update", "task_attempts"),
    ("attempt_digests_task", "tasks"),
    ("attempt_digests_task_update", "tasks"),
)
SQLITE_TRIGGERS = (
    "attempt_digests_insert",
    "attempt_digests_delete",
    "attempt_digests_update",
    "attempt_digests_task_insert",
    "attempt_digests_task_delete",
    "attempt_digests_task_update",
)
HISTORY_FUNCTIONS = ("attempt_digests_history",)
HISTORY_PG_TRIGGERS = (
    ("attempt_digests_history_insert", "history"),
    ("attempt_digests_history_delete", "history"),
    ("attempt_digests_history_update", "history"),
)
HISTORY_SQLITE_TRIGGERS = tuple(name for name, _table in HISTORY_PG_TRIGGERS)
#: The columns of an attempt a digest reads (an update of another leaves the digests alone).
_READ = ("task_id", "claimed_at", "attempt", "wait_s", "run_s", "agent_id", "end_action")


def _changed(old: str, new: str, distinct: str) -> str:
    return " OR ".join(f"{old}.{c} {distinct} {new}.{c}" for c in _READ)


def _hour(dialect: str, row: str) -> str:
    return HOUR_OF[dialect].format(f"{row}.claimed_at")


def _task_hours(dialect: str, row: str) -> str:
    """The hours of task ``row``'s attempts."""
    return (
        f"SELECT DISTINCT {HOUR_OF[dialect].format('a.claimed_at')} FROM task_attempts a "  # noqa: S608
        f"WHERE a.task_id = {row}.id"
    )


def _failed(row: str) -> str:
    """Whether history ``row`` is a task's failed step (``FAILED_STEPS``, of that row)."""
    return f"{row}.entity = 'task' AND {row}.action IN {FAILED_ENDS}"


def _step_changed(old: str, new: str, distinct: str) -> str:
    """Whether a failed step's time, task or message changed, or a step became or stopped
    being one."""
    read = ("entity", "entity_id", "action", "at", "error_message")
    changed = " OR ".join(f"{old}.{c} {distinct} {new}.{c}" for c in read)
    return f"(({_failed(old)}) OR ({_failed(new)})) AND ({changed})"


def history_create(dialect: str) -> list[str]:
    """The triggers on ``history`` that retire the digests of the hours whose failed steps
    change (the digests' ``errors``)."""
    insert, delete, update = (name for name, _table in HISTORY_PG_TRIGGERS)
    if dialect == "postgresql":
        (function,) = HISTORY_FUNCTIONS
        hour = HOUR_OF[dialect]
        mark = f"INSERT INTO {MARKS} (epoch_hour) VALUES"
        return [
            f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN IF TG_OP IN ('DELETE', 'UPDATE') THEN {mark} ({hour.format('OLD.at')}); "
            f"END IF; IF TG_OP IN ('INSERT', 'UPDATE') THEN {mark} ({hour.format('NEW.at')}); "
            "END IF; RETURN NULL; END $$",
            f"CREATE TRIGGER {insert} AFTER INSERT ON history FOR EACH ROW "
            f"WHEN ({_failed('NEW')}) EXECUTE FUNCTION {function}()",
            f"CREATE TRIGGER {delete} AFTER DELETE ON history FOR EACH ROW "
            f"WHEN ({_failed('OLD')}) EXECUTE FUNCTION {function}()",
            f"CREATE TRIGGER {update} AFTER UPDATE ON history FOR EACH ROW "
            f"WHEN ({_step_changed('OLD', 'NEW', 'IS DISTINCT FROM')}) "
            f"EXECUTE FUNCTION {function}()",
        ]
    hour = HOUR_OF[dialect]
    forget = f"DELETE FROM {DIGESTS} WHERE epoch_hour"  # noqa: S608  (constants)
    return [
        f"CREATE TRIGGER {insert} AFTER INSERT ON history WHEN {_failed('new')} "
        f"BEGIN {forget} = {hour.format('new.at')}; END",
        f"CREATE TRIGGER {delete} AFTER DELETE ON history WHEN {_failed('old')} "
        f"BEGIN {forget} = {hour.format('old.at')}; END",
        f"CREATE TRIGGER {update} AFTER UPDATE ON history "
        f"WHEN {_step_changed('old', 'new', 'IS NOT')} "
        f"BEGIN {forget} IN ({hour.format('old.at')}, {hour.format('new.at')}); END",
    ]


def pg_create() -> list[str]:
    """The PostgreSQL functions and row triggers that append to ``attempt_digest_marks``."""
    d = "postgresql"
    attempt, task = PG_FUNCTIONS
    mark = f"INSERT INTO {MARKS} (epoch_hour)"
    return [
        f"CREATE OR REPLACE FUNCTION {attempt}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "  # noqa: S608
        f"IF TG_OP IN ('DELETE', 'UPDATE') THEN {mark} VALUES ({_hour(d, 'OLD')}); END IF; "
        f"IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND {_hour(d, 'NEW')} <> {_hour(d, 'OLD')}) "
        f"THEN {mark} VALUES ({_hour(d, 'NEW')}); END IF; "
        "RETURN NULL; END $$",
        f"CREATE OR REPLACE FUNCTION {task}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        f"IF TG_OP IN ('DELETE', 'UPDATE') THEN {mark} {_task_hours(d, 'OLD')}; END IF; "
        f"IF TG_OP = 'INSERT' THEN {mark} {_task_hours(d, 'NEW')}; END IF; "
        "RETURN NULL; END $$",
        f"CREATE TRIGGER {PG_TRIGGERS[0][0]} AFTER INSERT OR DELETE ON task_attempts "
        f"FOR EACH ROW EXECUTE FUNCTION {attempt}()",
        f"CREATE TRIGGER {PG_TRIGGERS[1][0]} AFTER UPDATE ON task_attempts FOR EACH ROW "
        f"WHEN ({_changed('OLD', 'NEW', 'IS DISTINCT FROM')}) EXECUTE FUNCTION {attempt}()",
        f"CREATE TRIGGER {PG_TRIGGERS[2][0]} AFTER INSERT OR DELETE ON tasks "
        f"FOR EACH ROW EXECUTE FUNCTION {task}()",
        f"CREATE TRIGGER {PG_TRIGGERS[3][0]} AFTER UPDATE OF type ON tasks FOR EACH ROW "
        f"WHEN (OLD.type IS DISTINCT FROM NEW.type) EXECUTE FUNCTION {task}()",
    ]


def sqlite_create() -> list[str]:
    """The SQLite row triggers that delete the digests a change leaves stale."""
    d = "sqlite"
    insert, delete, update, task_insert, task_delete, task_update = SQLITE_TRIGGERS
    forget = f"DELETE FROM {DIGESTS} WHERE epoch_hour"  # noqa: S608  (constants)
    return [
        f"CREATE TRIGGER {insert} AFTER INSERT ON task_attempts "
        f"BEGIN {forget} = {_hour(d, 'new')}; END",
        f"CREATE TRIGGER {delete} AFTER DELETE ON task_attempts "
        f"BEGIN {forget} = {_hour(d, 'old')}; END",
        f"CREATE TRIGGER {update} AFTER UPDATE ON task_attempts "
        f"WHEN {_changed('old', 'new', 'IS NOT')} "
        f"BEGIN {forget} IN ({_hour(d, 'old')}, {_hour(d, 'new')}); END",
        f"CREATE TRIGGER {task_insert} AFTER INSERT ON tasks "
        f"BEGIN {forget} IN ({_task_hours(d, 'new')}); END",
        f"CREATE TRIGGER {task_delete} AFTER DELETE ON tasks "
        f"BEGIN {forget} IN ({_task_hours(d, 'old')}); END",
        f"CREATE TRIGGER {task_update} AFTER UPDATE OF type ON tasks "
        f"WHEN old.type IS NOT new.type BEGIN {forget} IN ({_task_hours(d, 'old')}); END",
    ]


def create(dialect: str) -> list[str]:
    made = pg_create() if dialect == "postgresql" else sqlite_create()
    return made + history_create(dialect)


def history_drop(dialect: str) -> list[str]:
    """What :func:`history_create` made, dropped."""
    return dropped_triggers(
        dialect, HISTORY_PG_TRIGGERS, HISTORY_FUNCTIONS, HISTORY_SQLITE_TRIGGERS
    )


def drop(dialect: str) -> list[str]:
    """What :func:`create` made, dropped."""
    return dropped_triggers(dialect, PG_TRIGGERS, PG_FUNCTIONS, SQLITE_TRIGGERS) + history_drop(
        dialect
    )
