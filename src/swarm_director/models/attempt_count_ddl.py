"""The SQL that keeps ``attempt_count_hours`` equal to the attempts (see
:mod:`swarm_director.models.attempt_count`): row triggers on ``task_attempts`` (an attempt
claimed, ended, changed or deleted) and on ``tasks`` (a task deleted, created with the id of
a deleted one, or given another type by hand: its attempts move), and the count a rebuild or
``db check`` takes from the rows.

As ``task_count_hours``' (:mod:`swarm_director.models.rollup_ddl`): on PostgreSQL the
triggers append to ``attempt_count_deltas`` (no writer waits for another's row), on SQLite
they upsert into the hour table. The migration ``015_add_attempt_counts`` carries its own
copy of this SQL.
"""

from __future__ import annotations

from swarm_director.db.ddl import dropped_triggers

COUNTS = "attempt_count_hours"
COUNT_DELTAS = "attempt_count_deltas"
KEYS = "epoch_hour, kind, type, agent_id"
#: The ``agent_id`` the rollup keys an attempt without an agent by (ids start at 1).
UNASSIGNED = 0
#: The end actions a failed attempt ends with (``complete`` is the one success).
FAILED_END_ACTIONS = ("fail", "retry", "expire")
FAILED_ENDS = "(" + ", ".join(f"'{action}'" for action in FAILED_END_ACTIONS) + ")"
PG_FUNCTIONS = ("attempt_count_hours_attempt", "attempt_count_hours_task")
PG_TRIGGERS = (
    ("attempt_count_hours_attempt", "task_attempts"),
    ("attempt_count_hours_attempt_update", "task_attempts"),
    ("attempt_count_hours_task", "tasks"),
    ("attempt_count_hours_task_update", "tasks"),
)
SQLITE_TRIGGERS = (
    "attempt_count_hours_insert",
    "attempt_count_hours_delete",
    "attempt_count_hours_end",
    "attempt_count_hours_move",
    "attempt_count_hours_task_insert",
    "attempt_count_hours_task_delete",
    "attempt_count_hours_task_update",
)

#: The SQL of an hour, per dialect, of a timestamp expression ``{}``.
HOUR_OF = {
    "postgresql": "floor(extract(epoch FROM {}) / 3600)::bigint",
    "sqlite": "CAST(strftime('%s', substr({}, 1, 19)) AS INTEGER) / 3600",
}
_TARGET = {"postgresql": COUNT_DELTAS, "sqlite": COUNTS}
_UPSERT = {
    "postgresql": ";",
    "sqlite": f"ON CONFLICT ({KEYS}) DO UPDATE SET attempts = {COUNTS}.attempts + "
    "excluded.attempts;",
}
_INSERT = "INSERT INTO {target} (epoch_hour, kind, type, agent_id, attempts) "
#: The kind an ended attempt also counts under, from its ``end_action`` ``{a}``.
_OUTCOME = "CASE WHEN {a} = 'complete' THEN 'completed' ELSE 'failed' END"
_ENDED = "{a} IN ('complete', 'fail', 'retry', 'expire')"
#: An attempt's key columns: the trigger's update paths compare them.
_MOVED = (
    "{old}.task_id IS DISTINCT FROM {new}.task_id OR {old}.claimed_at IS DISTINCT FROM "
    "{new}.claimed_at OR {old}.agent_id IS DISTINCT FROM {new}.agent_id"
)
_TYPE_CHANGED = "{old}.type IS DISTINCT FROM {new}.type"


def _kinds(row: str, outcome_only: bool) -> str:
    """The kinds attempt ``row`` counts under, as a one-column ``k`` subquery: ``claimed``
    (unless ``outcome_only``), and ``completed`` or ``failed`` once it has ended."""
    outcome = (
        f"SELECT {_OUTCOME.format(a=f'{row}.end_action')} AS k "
        f"WHERE {_ENDED.format(a=f'{row}.end_action')}"
    )
    return outcome if outcome_only else f"SELECT 'claimed' AS k UNION ALL {outcome}"


def _attempt(dialect: str, row: str, sign: str, outcome_only: bool = False) -> str:
    """Add (``sign`` ``""``) or remove (``"-"``) attempt ``row`` (OLD or NEW) under its
    task's current type (nothing when the task is gone)."""
    hour = HOUR_OF[dialect].format(f"{row}.claimed_at")
    return (
        _INSERT.format(target=_TARGET[dialect])
        + f"SELECT {hour}, s.k, t.type, coalesce({row}.agent_id, {UNASSIGNED}), {sign}1 "  # noqa: S608
        f"FROM tasks t JOIN ({_kinds(row, outcome_only)}) AS s ON true "
        f"WHERE t.id = {row}.task_id {_UPSERT[dialect]}"
    )


def _task(dialect: str, row: str, sign: str) -> str:
    """Add or remove every attempt of task ``row`` (OLD or NEW) under its type."""
    attempts = _rows(dialect, f"a.task_id = {row}.id")
    select = f"SELECT hr, k, {row}.type, ag, {sign}count(*) FROM ({attempts}"  # noqa: S608
    return (
        _INSERT.format(target=_TARGET[dialect])
        + select
        + f") AS s WHERE true GROUP BY hr, k, ag ORDER BY hr, k, ag {_UPSERT[dialect]}"
    )


def _rows(dialect: str, where: str) -> str:
    """``(hr, k, ag, task_id)``: a row per kind of each attempt ``a`` that ``where`` keeps."""
    hour = HOUR_OF[dialect].format("a.claimed_at")
    agent = f"coalesce(a.agent_id, {UNASSIGNED})"
    return (
        f"SELECT {hour} AS hr, 'claimed' AS k, {agent} AS ag, a.task_id FROM task_attempts a "  # noqa: S608
        f"WHERE {where} UNION ALL SELECT {hour}, {_OUTCOME.format(a='a.end_action')}, {agent}, "
        f"a.task_id FROM task_attempts a WHERE {where} AND {_ENDED.format(a='a.end_action')}"
    )


def counts_sql(dialect: str) -> str:
    """``(epoch_hour, kind, type, agent_id, attempts)`` counted from the attempts of the
    tasks that exist."""
    return (
        f"SELECT s.hr, s.k, t.type, s.ag, count(*) FROM ({_rows(dialect, 'true')}) AS s "  # noqa: S608
        "JOIN tasks t ON t.id = s.task_id GROUP BY s.hr, s.k, t.type, s.ag"
    )


def backfill_sql(dialect: str) -> str:
    """The statement that counts the attempts into an empty ``attempt_count_hours``."""
    return _INSERT.format(target=COUNTS) + counts_sql(dialect)


def pg_create() -> list[str]:
    """The PostgreSQL functions and row triggers that append to ``attempt_count_deltas``."""
    d = "postgresql"
    attempt, task = PG_FUNCTIONS
    same_place = f"TG_OP = 'UPDATE' AND NOT ({_MOVED.format(old='OLD', new='NEW')})"
    return [
        f"CREATE OR REPLACE FUNCTION {attempt}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        # The queue's own update: an attempt ends (or its end changes) where it was claimed.
        f"IF {same_place} THEN {_attempt(d, 'OLD', '-', True)} {_attempt(d, 'NEW', '', True)} "
        "RETURN NULL; END IF; "
        f"IF TG_OP IN ('DELETE', 'UPDATE') THEN {_attempt(d, 'OLD', '-')} END IF; "
        f"IF TG_OP IN ('INSERT', 'UPDATE') THEN {_attempt(d, 'NEW', '')} END IF; "
        "RETURN NULL; END $$",
        f"CREATE OR REPLACE FUNCTION {task}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        f"IF TG_OP IN ('DELETE', 'UPDATE') THEN {_task(d, 'OLD', '-')} END IF; "
        f"IF TG_OP IN ('INSERT', 'UPDATE') THEN {_task(d, 'NEW', '')} END IF; "
        "RETURN NULL; END $$",
        f"CREATE TRIGGER {PG_TRIGGERS[0][0]} AFTER INSERT OR DELETE ON task_attempts "
        f"FOR EACH ROW EXECUTE FUNCTION {attempt}()",
        f"CREATE TRIGGER {PG_TRIGGERS[1][0]} AFTER UPDATE ON task_attempts FOR EACH ROW WHEN "
        f"(OLD.end_action IS DISTINCT FROM NEW.end_action OR "
        f"{_MOVED.format(old='OLD', new='NEW')}) EXECUTE FUNCTION {attempt}()",
        f"CREATE TRIGGER {PG_TRIGGERS[2][0]} AFTER INSERT OR DELETE ON tasks "
        f"FOR EACH ROW EXECUTE FUNCTION {task}()",
        f"CREATE TRIGGER {PG_TRIGGERS[3][0]} AFTER UPDATE OF type ON tasks FOR EACH ROW "
        f"WHEN ({_TYPE_CHANGED.format(old='OLD', new='NEW')}) EXECUTE FUNCTION {task}()",
    ]


def sqlite_create() -> list[str]:
    """The SQLite row triggers that keep ``attempt_count_hours`` exact."""
    d = "sqlite"
    moved = _MOVED.format(old="old", new="new").replace("IS DISTINCT FROM", "IS NOT")
    changed = _TYPE_CHANGED.format(old="old", new="new").replace("IS DISTINCT FROM", "IS NOT")
    insert, delete, end, move, task_insert, task_delete, task_update = SQLITE_TRIGGERS
    return [
        f"CREATE TRIGGER {insert} AFTER INSERT ON task_attempts BEGIN {_attempt(d, 'new', '')} END",
        f"CREATE TRIGGER {delete} AFTER DELETE ON task_attempts "
        f"BEGIN {_attempt(d, 'old', '-')} END",
        f"CREATE TRIGGER {end} AFTER UPDATE ON task_attempts WHEN NOT ({moved}) AND "
        f"old.end_action IS NOT new.end_action BEGIN {_attempt(d, 'old', '-', True)} "
        f"{_attempt(d, 'new', '', True)} END",
        f"CREATE TRIGGER {move} AFTER UPDATE ON task_attempts WHEN {moved} "
        f"BEGIN {_attempt(d, 'old', '-')} {_attempt(d, 'new', '')} END",
        f"CREATE TRIGGER {task_insert} AFTER INSERT ON tasks BEGIN {_task(d, 'new', '')} END",
        f"CREATE TRIGGER {task_delete} AFTER DELETE ON tasks BEGIN {_task(d, 'old', '-')} END",
        f"CREATE TRIGGER {task_update} AFTER UPDATE OF type ON tasks WHEN {changed} "
        f"BEGIN {_task(d, 'old', '-')} {_task(d, 'new', '')} END",
    ]


def create(dialect: str) -> list[str]:
    return pg_create() if dialect == "postgresql" else sqlite_create()


def drop(dialect: str) -> list[str]:
    """What :func:`create` made, dropped."""
    return dropped_triggers(dialect, PG_TRIGGERS, PG_FUNCTIONS, SQLITE_TRIGGERS)
