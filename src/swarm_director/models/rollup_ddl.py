"""The SQL that keeps the report rollups exact: triggers per dialect, and the counts a
rebuild or ``db check`` takes from the rows (see :mod:`swarm_director.models.rollup` for the
tables and why each dialect writes where it does).

PostgreSQL's triggers only append to the delta tables (``log_volume_deltas``,
``task_count_deltas``): a plain INSERT of new rows, whose only key is an id from a sequence,
so a writer never waits for another writer's open transaction. SQLite's triggers upsert into
the hour tables: SQLite has one writer at a time, so the row lock costs nobody anything.
The migration ``012_add_report_rollups`` carries its own copy of this DDL.
"""

from __future__ import annotations

from swarm_director.models import attempt_count_ddl

LOGS = "log_volume_hours"
LOG_DELTAS = "log_volume_deltas"
TASKS = "task_count_hours"
TASK_DELTAS = "task_count_deltas"
ERRORS = "error_group_hours"
ERROR_DELTAS = "error_group_deltas"
PG_FUNCTION = "log_volume_hours_apply"
#: PostgreSQL triggers, one per statement kind.
PG_TRIGGERS = ("log_volume_hours_insert", "log_volume_hours_delete", "log_volume_hours_update")
#: SQLite triggers (inserts are counted by the store).
SQLITE_TRIGGERS = ("log_volume_hours_delete", "log_volume_hours_update")

#: A log's ``epoch_hour`` in SQL, per dialect.
HOUR_SQL = {
    "postgresql": 'floor(extract(epoch FROM "timestamp") / 3600)::bigint',
    "sqlite": "CAST(strftime('%s', substr(\"timestamp\", 1, 19)) AS INTEGER) / 3600",
}
#: The SQL of an hour, per dialect, of a timestamp expression ``{}``.
_HOUR_OF = attempt_count_ddl.HOUR_OF

_PG_APPEND = (
    f"INSERT INTO {LOG_DELTAS} (epoch_hour, log_level, logs) "  # noqa: S608  (constants)
    'SELECT floor(extract(epoch FROM "timestamp") / 3600)::bigint, log_level, {sign}count(*) '
    "FROM {rows} GROUP BY 1, 2;"
)
_SQLITE_HOUR = "CAST(strftime('%s', substr({row}.\"timestamp\", 1, 19)) AS INTEGER) / 3600"
_SQLITE_UPSERT = (
    f"INSERT INTO {LOGS} (epoch_hour, log_level, logs) "  # noqa: S608  (constants)
    f"VALUES ({_SQLITE_HOUR}, {{row}}.log_level, {{delta}}) "
    f"ON CONFLICT (epoch_hour, log_level) DO UPDATE SET logs = logs + excluded.logs;"
)


def pg_create() -> list[str]:
    """The PostgreSQL function and triggers that append each statement's logs per hour and
    level to ``log_volume_deltas`` (negative for the rows a DELETE or UPDATE took away)."""
    return _pg_statement_triggers(PG_FUNCTION, PG_TRIGGERS, _PG_APPEND)


def _pg_statement_triggers(function: str, triggers: tuple[str, ...], append: str) -> list[str]:
    """A plpgsql function that runs ``append`` (a statement with ``{sign}`` and ``{rows}``)
    over the rows each statement on ``agent_logs`` took away (``gone``) and added
    (``added``), and its INSERT, DELETE and UPDATE statement triggers, named ``triggers``."""
    minus = append.format(sign="-", rows="gone")
    plus = append.format(sign="", rows="added")
    insert, delete, update = triggers
    return [
        f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        f"IF TG_OP IN ('DELETE', 'UPDATE') THEN {minus} END IF; "
        f"IF TG_OP IN ('INSERT', 'UPDATE') THEN {plus} END IF; "
        "RETURN NULL; END $$",
        f"CREATE TRIGGER {insert} AFTER INSERT ON agent_logs REFERENCING NEW TABLE AS added "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
        f"CREATE TRIGGER {delete} AFTER DELETE ON agent_logs REFERENCING OLD TABLE AS gone "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
        f"CREATE TRIGGER {update} AFTER UPDATE ON agent_logs "
        "REFERENCING OLD TABLE AS gone NEW TABLE AS added "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
    ]


def sqlite_create() -> list[str]:
    """The SQLite triggers that keep ``log_volume_hours`` exact on deletes and updates."""
    delete, update = SQLITE_TRIGGERS
    minus = _SQLITE_UPSERT.format(row="old", delta=-1)
    plus = _SQLITE_UPSERT.format(row="new", delta=1)
    return [
        f"CREATE TRIGGER {delete} AFTER DELETE ON agent_logs BEGIN {minus} END",
        f'CREATE TRIGGER {update} AFTER UPDATE OF "timestamp", log_level ON agent_logs '
        f"BEGIN {minus} {plus} END",
    ]


#: Where a task trigger writes, per dialect: PostgreSQL appends a delta, SQLite upserts.
_TASK_TARGET = {"postgresql": TASK_DELTAS, "sqlite": TASKS}
_TASK_UPSERT = {
    "postgresql": ";",
    "sqlite": (
        "ON CONFLICT (epoch_hour, kind, type, priority) "
        f"DO UPDATE SET tasks = {TASKS}.tasks + excluded.tasks;"
    ),
}
#: The history rows the task counts count: a completion, a failure for good.
_COUNTED = {
    "postgresql": "{h}.entity = 'task' AND ({h}.action IN ('complete', 'fail') OR "
    "({h}.action = 'expire' AND {h}.changes -> 'status' ->> 1 = 'failed'))",
    "sqlite": "{h}.entity = 'task' AND ({h}.action IN ('complete', 'fail') OR "
    "({h}.action = 'expire' AND json_extract({h}.changes, '$.status[1]') = 'failed'))",
}
_KIND_OF = "CASE WHEN {h}.action = 'complete' THEN 'completed' ELSE 'failed' END"


def _task_contribution(dialect: str, row: str, sign: str) -> str:
    """The statement that adds (``sign`` ``""``) or removes (``"-"``) everything task ``row``
    (OLD or NEW) counts for: its creation and its counted steps, under its type and
    priority."""
    hour = _HOUR_OF[dialect]
    return (
        f"INSERT INTO {_TASK_TARGET[dialect]} (epoch_hour, kind, type, priority, tasks) "  # noqa: S608
        f"SELECT hr, k, {row}.type, {row}.priority, {sign}count(*) FROM ("
        f"SELECT {hour.format(f'{row}.created_at')} AS hr, 'created' AS k UNION ALL "
        f"SELECT {hour.format('h.at')}, {_KIND_OF.format(h='h')} FROM history h "
        f"WHERE h.entity_id = {row}.id AND {_COUNTED[dialect].format(h='h')}"
        f") AS s WHERE true GROUP BY hr, k ORDER BY hr, k {_TASK_UPSERT[dialect]}"
    )


def _step(dialect: str, row: str, sign: str) -> str:
    """The statement that adds or removes history row ``row``'s step under its task's type
    and priority (nothing when the task is gone)."""
    hour = _HOUR_OF[dialect].format(f"{row}.at")
    return (
        f"INSERT INTO {_TASK_TARGET[dialect]} (epoch_hour, kind, type, priority, tasks) "  # noqa: S608
        f"SELECT {hour}, {_KIND_OF.format(h=row)}, t.type, t.priority, {sign}1 "
        f"FROM tasks t WHERE t.id = {row}.entity_id {_TASK_UPSERT[dialect]}"
    )


_TASK_CHANGED = (
    "{old}.type IS DISTINCT FROM {new}.type OR {old}.priority IS DISTINCT FROM {new}.priority "
    "OR {old}.created_at IS DISTINCT FROM {new}.created_at"
)


def task_pg_create() -> list[str]:
    """The PostgreSQL functions and row triggers that append to ``task_count_deltas``."""
    d = "postgresql"
    return [
        "CREATE OR REPLACE FUNCTION task_count_hours_task() RETURNS trigger LANGUAGE plpgsql "
        "AS $$ BEGIN "
        f"IF TG_OP IN ('DELETE', 'UPDATE') THEN {_task_contribution(d, 'OLD', '-')} END IF; "
        f"IF TG_OP IN ('INSERT', 'UPDATE') THEN {_task_contribution(d, 'NEW', '')} END IF; "
        "RETURN NULL; END $$",
        "CREATE OR REPLACE FUNCTION task_count_hours_step() RETURNS trigger LANGUAGE plpgsql "
        "AS $$ BEGIN "
        f"IF TG_OP = 'INSERT' THEN {_step(d, 'NEW', '')} "
        f"ELSE {_step(d, 'OLD', '-')} END IF; "
        "RETURN NULL; END $$",
        "CREATE TRIGGER task_count_hours_task AFTER INSERT OR DELETE ON tasks "
        "FOR EACH ROW EXECUTE FUNCTION task_count_hours_task()",
        "CREATE TRIGGER task_count_hours_task_update AFTER UPDATE OF type, priority, created_at "
        f"ON tasks FOR EACH ROW WHEN ({_TASK_CHANGED.format(old='OLD', new='NEW')}) "
        "EXECUTE FUNCTION task_count_hours_task()",
        "CREATE TRIGGER task_count_hours_step_insert AFTER INSERT ON history FOR EACH ROW "
        f"WHEN ({_COUNTED[d].format(h='NEW')}) EXECUTE FUNCTION task_count_hours_step()",
        "CREATE TRIGGER task_count_hours_step_delete AFTER DELETE ON history FOR EACH ROW "
        f"WHEN ({_COUNTED[d].format(h='OLD')}) EXECUTE FUNCTION task_count_hours_step()",
    ]


def task_sqlite_create() -> list[str]:
    """The SQLite row triggers that keep ``task_count_hours`` exact."""
    d = "sqlite"
    changed = _TASK_CHANGED.format(old="old", new="new").replace("IS DISTINCT FROM", "IS NOT")
    return [
        "CREATE TRIGGER task_count_hours_task_insert AFTER INSERT ON tasks "
        f"BEGIN {_task_contribution(d, 'new', '')} END",
        "CREATE TRIGGER task_count_hours_task_delete AFTER DELETE ON tasks "
        f"BEGIN {_task_contribution(d, 'old', '-')} END",
        "CREATE TRIGGER task_count_hours_task_update AFTER UPDATE OF type, priority, created_at "
        f"ON tasks WHEN {changed} BEGIN {_task_contribution(d, 'old', '-')} "
        f"{_task_contribution(d, 'new', '')} END",
        "CREATE TRIGGER task_count_hours_step_insert AFTER INSERT ON history "
        f"WHEN {_COUNTED[d].format(h='new')} BEGIN {_step(d, 'new', '')} END",
        "CREATE TRIGGER task_count_hours_step_delete AFTER DELETE ON history "
        f"WHEN {_COUNTED[d].format(h='old')} BEGIN {_step(d, 'old', '-')} END",
    ]


def task_counts_sql(dialect: str) -> str:
    """``(epoch_hour, kind, type, priority, tasks)`` counted from the tasks and history."""
    hour = _HOUR_OF[dialect]
    return (
        "SELECT hr, k, type, priority, count(*) FROM ("  # noqa: S608  (constants)
        f"SELECT {hour.format('created_at')} AS hr, 'created' AS k, type, priority FROM tasks "
        f"UNION ALL SELECT {hour.format('h.at')}, {_KIND_OF.format(h='h')}, t.type, t.priority "
        f"FROM history h JOIN tasks t ON t.id = h.entity_id WHERE {_COUNTED[dialect].format(h='h')}"
        ") AS s GROUP BY hr, k, type, priority"
    )


def backfill_sql(dialect: str) -> str:
    """The statement that counts the existing logs into an empty ``log_volume_hours``."""
    return (
        f"INSERT INTO {LOGS} (epoch_hour, log_level, logs) "  # noqa: S608  (constants)
        f"SELECT {HOUR_SQL[dialect]}, log_level, count(*) FROM agent_logs GROUP BY 1, 2"
    )


#: Folds a delta table into its hour table in one statement (PostgreSQL): the DELETE takes
#: exactly the committed deltas its snapshot sees, and the same statement adds their sums, so
#: a delta committed meanwhile stays for the next run and none is counted twice (a second
#: compaction waits on the rows the first deletes, then skips them). Only compactions, a
#: rebuild and a partition drop write the hour tables on PostgreSQL: writers never wait on it.
_PG_COMPACT = (
    "WITH d AS (DELETE FROM {deltas} RETURNING {keys}, {n}) "
    "INSERT INTO {hours} ({keys}, {n}) SELECT {keys}, sum({n})::bigint FROM d "
    "GROUP BY {keys} ORDER BY {keys} "
    "ON CONFLICT ({keys}) DO UPDATE SET {n} = {hours}.{n} + excluded.{n}"
)
#: SQLite: its one writer holds the lock from the first statement to the commit.
_SQLITE_COMPACT = (
    "INSERT INTO {hours} ({keys}, {n}) SELECT {keys}, sum({n}) FROM {deltas} "
    "WHERE true GROUP BY {keys} ON CONFLICT ({keys}) DO UPDATE SET {n} = {hours}.{n} + excluded.{n}"
)
#: (hours, deltas, key columns, count column) of each rollup.
ROLLUPS = (
    (LOGS, LOG_DELTAS, "epoch_hour, log_level", "logs"),
    (TASKS, TASK_DELTAS, "epoch_hour, kind, type, priority", "tasks"),
    (ERRORS, ERROR_DELTAS, "epoch_hour, pattern", "logs"),
    (attempt_count_ddl.COUNTS, attempt_count_ddl.COUNT_DELTAS, attempt_count_ddl.KEYS, "attempts"),
)


def compact_sql(dialect: str, hours: str, deltas: str, keys: str, n: str) -> list[str]:
    """The statements that fold ``deltas`` into ``hours`` (one row per key), in order."""
    if dialect == "postgresql":
        return [_PG_COMPACT.format(hours=hours, deltas=deltas, keys=keys, n=n)]
    return [
        _SQLITE_COMPACT.format(hours=hours, deltas=deltas, keys=keys, n=n),
        f"DELETE FROM {deltas}",  # noqa: S608  (constants)
    ]


# Error groups (``error_group_hours``, see :mod:`swarm_director.models.error_group`): the same
# scheme as the log volume's, keyed by the pattern the store wrote with each error log.
ERROR_PG_FUNCTION = "error_group_hours_apply"
ERROR_PG_TRIGGERS = (
    "error_group_hours_insert",
    "error_group_hours_delete",
    "error_group_hours_update",
)
ERROR_SQLITE_TRIGGERS = ("error_group_hours_delete", "error_group_hours_update")
#: An error log's key in the rollup: its pattern, or the empty one (none was written).
_PATTERN = "coalesce({row}error_pattern, '')"
_ERROR_PG_APPEND = (
    f"INSERT INTO {ERROR_DELTAS} (epoch_hour, pattern, logs) "  # noqa: S608  (constants)
    f"SELECT {HOUR_SQL['postgresql']}, {_PATTERN.format(row='')}, {{sign}}count(*) "
    "FROM {rows} WHERE log_level = 'error' GROUP BY 1, 2;"
)
_ERROR_SQLITE_UPSERT = (
    f"INSERT INTO {ERRORS} (epoch_hour, pattern, logs) "
    f"SELECT {_SQLITE_HOUR}, {_PATTERN.format(row='{row}.')}, {{delta}} "
    "WHERE {row}.log_level = 'error' "
    "ON CONFLICT (epoch_hour, pattern) DO UPDATE SET logs = logs + excluded.logs;"
)


def error_pg_create() -> list[str]:
    """The PostgreSQL function and statement triggers that append each statement's error
    logs per hour and pattern to ``error_group_deltas``."""
    return _pg_statement_triggers(ERROR_PG_FUNCTION, ERROR_PG_TRIGGERS, _ERROR_PG_APPEND)


def error_sqlite_create() -> list[str]:
    """The SQLite row triggers that keep ``error_group_hours`` exact on deletes and updates
    (inserts are counted by the store)."""
    delete, update = ERROR_SQLITE_TRIGGERS
    minus = _ERROR_SQLITE_UPSERT.format(row="old", delta=-1)
    plus = _ERROR_SQLITE_UPSERT.format(row="new", delta=1)
    return [
        f"CREATE TRIGGER {delete} AFTER DELETE ON agent_logs "
        f"WHEN old.log_level = 'error' BEGIN {minus} END",
        f'CREATE TRIGGER {update} AFTER UPDATE OF "timestamp", log_level, error_pattern '
        "ON agent_logs WHEN old.log_level = 'error' OR new.log_level = 'error' "
        f"BEGIN {minus} {plus} END",
    ]


def error_counts_sql(dialect: str) -> str:
    """``(epoch_hour, pattern, logs)`` counted from the error logs."""
    return (
        f"SELECT {HOUR_SQL[dialect]}, {_PATTERN.format(row='')}, count(*) "  # noqa: S608
        "FROM agent_logs WHERE log_level = 'error' GROUP BY 1, 2"
    )


def error_backfill_sql(dialect: str) -> str:
    """The statement that counts the existing error logs into an empty ``error_group_hours``."""
    return f"INSERT INTO {ERRORS} (epoch_hour, pattern, logs) " + error_counts_sql(dialect)
