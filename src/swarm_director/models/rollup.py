"""Rollups for the reports, kept exact by the writes: logs per UTC hour and level, tasks per
UTC hour, kind (created, completed, failed), type and priority.

A 30-day log volume report over millions of rows reads ``log_volume_hours`` (720 rows per
level) instead: see docs/reports.md, "Speed". Hours are UTC hours since the epoch (an
integer: no time zone, no floating point at a boundary), which make day buckets in every zone
whose offsets are whole hours; other zones, and minute buckets, read the logs themselves.

How each write reaches the counts, in the writing transaction:

- PostgreSQL: statement-level triggers on ``agent_logs`` (the partitioned parent) with
  transition tables, one aggregated upsert per statement: a COPY batch, a retention DELETE, a
  task's foreign-key cascade (which deletes through the parent). Dropping a whole month's
  partition fires nothing: retention deletes that month's hours from the rollup in the same
  transaction (``ops/retention/partitions.py``).
- SQLite: row-level triggers for DELETE and UPDATE (cascades, retention, any hand-written
  statement), but not for INSERT: a row trigger halves the raw insert rate (measured:
  ~92,000 → ~49,000 rows/s of CPU), so the store's bulk insert counts its batch in Python
  and sends one upsert (``store/log_ingest.py``), and a log added through the ORM is counted
  as it is flushed (a mapper event, below). A row inserted by other means (Core, sqlite3) is
  not counted until ``swarm-director db rebuild-rollups``; ``db check`` reports the drift.

Upserts sort their keys so that two transactions never lock the same rows in opposite orders.
The migration ``012_add_report_rollups`` carries its own copy of this DDL.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    DDL,
    BigInteger,
    Connection,
    String,
    Table,
    delete,
    event,
    func,
    literal_column,
    select,
)
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Mapped, mapped_column

from swarm_director.db.base import Base
from swarm_director.models.log import AgentLog


class LogVolumeHour(Base):
    """Log records of one UTC hour and level (what ``agent_logs`` holds now)."""

    __tablename__ = "log_volume_hours"

    epoch_hour: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    """Whole hours since 1970-01-01T00:00Z of the records' ``timestamp`` (floor)."""
    log_level: Mapped[str] = mapped_column(String(20), primary_key=True)
    logs: Mapped[int] = mapped_column(BigInteger)
    """How many records; 0 once they are all deleted (the row stays)."""


class TaskCountHour(Base):
    """Tasks created, completed and failed in one UTC hour, by the task's current type and
    priority (what the tasks and their history hold now)."""

    __tablename__ = "task_count_hours"

    epoch_hour: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    """Whole hours since 1970-01-01T00:00Z of the creation or the queue's step."""
    kind: Mapped[str] = mapped_column(String(10), primary_key=True)
    """``created``, ``completed`` or ``failed`` (see docs/reports.md for what each counts)."""
    type: Mapped[str] = mapped_column(String(50), primary_key=True)
    priority: Mapped[str] = mapped_column(String(20), primary_key=True)
    tasks: Mapped[int] = mapped_column(BigInteger)


TABLE = "log_volume_hours"
PG_FUNCTION = "log_volume_hours_apply"
#: PostgreSQL triggers, one per statement kind.
PG_TRIGGERS = ("log_volume_hours_insert", "log_volume_hours_delete", "log_volume_hours_update")
#: SQLite triggers (inserts are counted by the store).
SQLITE_TRIGGERS = ("log_volume_hours_delete", "log_volume_hours_update")

_PG_UPSERT = (
    f"INSERT INTO {TABLE} (epoch_hour, log_level, logs) "  # noqa: S608  (constants)
    'SELECT floor(extract(epoch FROM "timestamp") / 3600)::bigint, log_level, {sign}count(*) '
    "FROM {rows} GROUP BY 1, 2 ORDER BY 1, 2 "
    f"ON CONFLICT (epoch_hour, log_level) DO UPDATE SET logs = {TABLE}.logs + excluded.logs;"
)
_SQLITE_HOUR = "CAST(strftime('%s', substr({row}.\"timestamp\", 1, 19)) AS INTEGER) / 3600"
_SQLITE_UPSERT = (
    f"INSERT INTO {TABLE} (epoch_hour, log_level, logs) "  # noqa: S608  (constants)
    f"VALUES ({_SQLITE_HOUR}, {{row}}.log_level, {{delta}}) "
    f"ON CONFLICT (epoch_hour, log_level) DO UPDATE SET logs = logs + excluded.logs;"
)


def pg_create() -> list[str]:
    """The PostgreSQL function and triggers that keep ``log_volume_hours`` exact."""
    minus = _PG_UPSERT.format(sign="-", rows="gone")
    plus = _PG_UPSERT.format(sign="", rows="added")
    insert, delete, update = PG_TRIGGERS
    return [
        f"CREATE OR REPLACE FUNCTION {PG_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        f"IF TG_OP IN ('DELETE', 'UPDATE') THEN {minus} END IF; "
        f"IF TG_OP IN ('INSERT', 'UPDATE') THEN {plus} END IF; "
        "RETURN NULL; END $$",
        f"CREATE TRIGGER {insert} AFTER INSERT ON agent_logs REFERENCING NEW TABLE AS added "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {PG_FUNCTION}()",
        f"CREATE TRIGGER {delete} AFTER DELETE ON agent_logs REFERENCING OLD TABLE AS gone "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {PG_FUNCTION}()",
        f"CREATE TRIGGER {update} AFTER UPDATE ON agent_logs "
        "REFERENCING OLD TABLE AS gone NEW TABLE AS added "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {PG_FUNCTION}()",
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


TASK_TABLE = "task_count_hours"
_TASK_UPSERT = (
    f"ON CONFLICT (epoch_hour, kind, type, priority) "
    f"DO UPDATE SET tasks = {TASK_TABLE}.tasks + excluded.tasks;"
)
#: The SQL of an hour, per dialect, of a timestamp expression ``{}``.
_HOUR_OF = {
    "postgresql": "floor(extract(epoch FROM {}) / 3600)::bigint",
    "sqlite": "CAST(strftime('%s', substr({}, 1, 19)) AS INTEGER) / 3600",
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
    """The upsert that adds (``sign`` ``""``) or removes (``"-"``) everything task ``row``
    (OLD or NEW) counts for: its creation and its counted steps, under its type and
    priority."""
    hour = _HOUR_OF[dialect]
    return (
        f"INSERT INTO {TASK_TABLE} (epoch_hour, kind, type, priority, tasks) "  # noqa: S608
        f"SELECT hr, k, {row}.type, {row}.priority, {sign}count(*) FROM ("
        f"SELECT {hour.format(f'{row}.created_at')} AS hr, 'created' AS k UNION ALL "
        f"SELECT {hour.format('h.at')}, {_KIND_OF.format(h='h')} FROM history h "
        f"WHERE h.entity_id = {row}.id AND {_COUNTED[dialect].format(h='h')}"
        f") AS s WHERE true GROUP BY hr, k ORDER BY hr, k {_TASK_UPSERT}"
    )


def _step(dialect: str, row: str, sign: str) -> str:
    """The upsert that adds or removes history row ``row``'s step under its task's type and
    priority (nothing when the task is gone)."""
    hour = _HOUR_OF[dialect].format(f"{row}.at")
    return (
        f"INSERT INTO {TASK_TABLE} (epoch_hour, kind, type, priority, tasks) "  # noqa: S608
        f"SELECT {hour}, {_KIND_OF.format(h=row)}, t.type, t.priority, {sign}1 "
        f"FROM tasks t WHERE t.id = {row}.entity_id {_TASK_UPSERT}"
    )


_TASK_CHANGED = (
    "{old}.type IS DISTINCT FROM {new}.type OR {old}.priority IS DISTINCT FROM {new}.priority "
    "OR {old}.created_at IS DISTINCT FROM {new}.created_at"
)


def task_pg_create() -> list[str]:
    """The PostgreSQL functions and row triggers that keep ``task_count_hours`` exact."""
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


#: A log's ``epoch_hour`` in SQL, per dialect (what the triggers compute).
HOUR_SQL = {
    "postgresql": 'floor(extract(epoch FROM "timestamp") / 3600)::bigint',
    "sqlite": "CAST(strftime('%s', substr(\"timestamp\", 1, 19)) AS INTEGER) / 3600",
}


def backfill_sql(dialect: str) -> str:
    """The statement that counts the existing logs into an empty ``log_volume_hours``."""
    return (
        f"INSERT INTO {TABLE} (epoch_hour, log_level, logs) "  # noqa: S608  (constants)
        f"SELECT {HOUR_SQL[dialect]}, log_level, count(*) FROM agent_logs GROUP BY 1, 2"
    )


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
_ROLLUP = cast(Table, LogVolumeHour.__table__)
_TASKS = cast(Table, TaskCountHour.__table__)


def epoch_hour(when: datetime) -> int:
    """Whole UTC hours since the epoch of ``when`` (naive: UTC), in integers (no float)."""
    aware = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
    return (aware - EPOCH) // HOUR


def hour_start(hour: int) -> datetime:
    """The UTC instant an :func:`epoch_hour` starts."""
    return EPOCH + hour * HOUR


def count_inserted(connection: Connection, rows: Iterable[tuple[datetime, str]]) -> None:
    """Add logs just inserted (``(timestamp, level)`` each) to the rollup, one upsert for the
    batch, in the connection's transaction. SQLite only: PostgreSQL's triggers count every
    insert (see :mod:`swarm_director.models.rollup` for why SQLite's do not)."""
    if connection.dialect.name != "sqlite":
        return
    counts = Counter((epoch_hour(when), level) for when, level in rows)
    if not counts:
        return
    stmt = sqlite.insert(_ROLLUP)
    upsert = stmt.on_conflict_do_update(
        index_elements=[_ROLLUP.c.epoch_hour, _ROLLUP.c.log_level],
        set_={"logs": _ROLLUP.c.logs + stmt.excluded.logs},
    )
    connection.execute(
        upsert,
        [{"epoch_hour": h, "log_level": lvl, "logs": n} for (h, lvl), n in sorted(counts.items())],
    )


@event.listens_for(AgentLog, "after_insert")
def _count_orm_insert(_mapper: Any, connection: Connection, log: AgentLog) -> None:
    # A log added through the ORM (``add_log``, seeding, tests) is counted as it is flushed.
    level = getattr(log.log_level, "value", log.log_level)
    count_inserted(connection, [(log.timestamp, str(level))])


def forget_log_hours(connection: Connection, since: datetime | None, until: datetime) -> None:
    """Remove the hours ``[since, until)`` (whole hours; None: from the first) from the
    rollup, for logs that leave without a DELETE (a dropped partition)."""
    stmt = delete(_ROLLUP).where(_ROLLUP.c.epoch_hour < epoch_hour(until))
    if since is not None:
        stmt = stmt.where(_ROLLUP.c.epoch_hour >= epoch_hour(since))
    connection.execute(stmt)


def rebuild_log_hours(connection: Connection) -> int:
    """Count every log again into ``log_volume_hours`` (in the connection's transaction);
    returns the number of rows of the rollup. For a database filled by other means than the
    store (SQLite), or after ``db check`` found drift."""
    if connection.dialect.name == "postgresql":
        # Writers wait for this transaction instead of counting into the table meanwhile.
        connection.exec_driver_sql("LOCK TABLE agent_logs IN SHARE MODE")
        connection.exec_driver_sql(f"LOCK TABLE {TABLE}")
    connection.execute(delete(_ROLLUP))
    connection.exec_driver_sql(backfill_sql(connection.dialect.name))
    return int(connection.execute(select(func.count()).select_from(_ROLLUP)).scalar_one())


def log_hours_drift(connection: Connection) -> list[tuple[int, str, int, int]]:
    """``(epoch_hour, level, rollup, logs)`` of every hour and level where the rollup differs
    from a count of the logs (empty when exact)."""
    hour = _hour_column(connection.dialect.name)
    raw = {
        (int(h), str(getattr(lvl, "value", lvl))): int(n)
        for h, lvl, n in connection.execute(
            select(hour, AgentLog.log_level, func.count()).group_by(hour, AgentLog.log_level)
        )
    }
    kept = {
        (int(h), str(lvl)): int(n)
        for h, lvl, n in connection.execute(
            select(_ROLLUP.c.epoch_hour, _ROLLUP.c.log_level, _ROLLUP.c.logs)
        )
    }
    return [
        (h, lvl, kept.get((h, lvl), 0), raw.get((h, lvl), 0))
        for h, lvl in sorted(set(raw) | set(kept))
        if kept.get((h, lvl), 0) != raw.get((h, lvl), 0)
    ]


def _hour_column(dialect: str) -> Any:
    return literal_column(HOUR_SQL[dialect].replace('"timestamp"', 'agent_logs."timestamp"'))


def rebuild_task_hours(connection: Connection) -> int:
    """Count every task and step again into ``task_count_hours`` (in the connection's
    transaction); returns the number of rows of the rollup."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("LOCK TABLE tasks, history IN SHARE MODE")
        connection.exec_driver_sql(f"LOCK TABLE {TASK_TABLE}")
    connection.execute(delete(_TASKS))
    connection.exec_driver_sql(
        f"INSERT INTO {TASK_TABLE} (epoch_hour, kind, type, priority, tasks) "
        + task_counts_sql(connection.dialect.name)
    )
    return int(connection.execute(select(func.count()).select_from(_TASKS)).scalar_one())


def task_hours_drift(connection: Connection) -> list[tuple[tuple[Any, ...], int, int]]:
    """``((epoch_hour, kind, type, priority), rollup, counted)`` wherever the rollup differs
    from a count of the tasks and their history (empty when exact)."""
    counted = {
        (int(h), str(k), str(t), str(p)): int(n)
        for h, k, t, p, n in connection.exec_driver_sql(task_counts_sql(connection.dialect.name))
    }
    kept = {
        (int(h), str(k), str(t), str(p)): int(n)
        for h, k, t, p, n in connection.execute(select(*_TASKS.c))
    }
    return [
        (key, kept.get(key, 0), counted.get(key, 0))
        for key in sorted(set(counted) | set(kept))
        if kept.get(key, 0) != counted.get(key, 0)
    ]


def _ddl(statement: str, dialect: str) -> DDL:
    # DDL() applies %-formatting to its text; strftime's %s must survive it.
    ddl: DDL = DDL(statement.replace("%", "%%"))  # type: ignore[no-untyped-call]
    return ddl.execute_if(dialect=dialect)


# Schemas built from the models (``create_all``: some tests, benchmarks) get the triggers too;
# after every table, since they name both.
for _statement in pg_create() + task_pg_create():
    event.listen(Base.metadata, "after_create", _ddl(_statement, "postgresql"))
for _statement in sqlite_create() + task_sqlite_create():
    event.listen(Base.metadata, "after_create", _ddl(_statement, "sqlite"))
