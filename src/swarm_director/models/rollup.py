"""Rollups for the reports, kept exact by the writes: logs per UTC hour and level, tasks per
UTC hour, kind (created, completed, failed), type and priority.

A 30-day log volume report over millions of rows reads ``log_volume_hours`` (720 rows per
level) instead: see docs/reports.md, "Speed". Hours are UTC hours since the epoch (an
integer: no time zone, no floating point at a boundary), which make day buckets in every zone
whose offsets are whole hours; other zones, and minute buckets, read the logs themselves.

How each write reaches the counts, in the writing transaction:

- PostgreSQL: statement-level triggers on ``agent_logs`` (the partitioned parent) with
  transition tables append one row per hour and level of the statement to
  ``log_volume_deltas`` (a COPY batch, a retention DELETE with negative counts, a task's
  foreign-key cascade); row triggers on ``tasks`` and ``history`` append to
  ``task_count_deltas``. A delta row has no key but an id from a sequence: no two writers
  ever touch the same row, so none waits for another's open transaction (an upsert of one
  row per hour did, and every writer of that hour queued behind the slowest). Readers sum
  the hour row and the deltas of each key; :func:`compact` (``db optimize``) folds the
  deltas into the hour tables. Dropping a whole month's partition fires nothing: retention
  removes that month's hours from both tables in the same transaction, under the lock that
  waited for the partition's writers (``ops/retention/partitions.py``).
- SQLite: one writer at a time, so its triggers upsert into the hour tables directly (the
  delta tables stay empty). Row-level triggers for DELETE and UPDATE (cascades, retention,
  any hand-written statement), but not for INSERT: a row trigger halves the raw insert rate
  (measured: ~92,000 → ~49,000 rows/s of CPU), so the store's bulk insert counts its batch in
  Python and sends one upsert (``store/log_ingest.py``), and a log added through the ORM is
  counted as it is flushed (a mapper event, below). A row inserted by other means (Core,
  sqlite3) is not counted until ``swarm-director db rebuild-rollups``; ``db check`` reports
  the drift.

The triggers' SQL is in :mod:`swarm_director.models.rollup_ddl`; the migration
``012_add_report_rollups`` carries its own copy.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Connection,
    Select,
    String,
    Table,
    delete,
    event,
    func,
    literal_column,
    select,
    text,
    union_all,
)
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Mapped, mapped_column

from swarm_director.db.base import Base
from swarm_director.db.ddl import dialect_ddl
from swarm_director.models import rollup_ddl as ddl
from swarm_director.models.log import AgentLog, BigId


class LogVolumeHour(Base):
    """Log records of one UTC hour and level (what ``agent_logs`` holds now)."""

    __tablename__ = "log_volume_hours"

    epoch_hour: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    """Whole hours since 1970-01-01T00:00Z of the records' ``timestamp`` (floor)."""
    log_level: Mapped[str] = mapped_column(String(20), primary_key=True)
    logs: Mapped[int] = mapped_column(BigInteger)
    """How many records; 0 once they are all deleted (the row stays)."""


class LogVolumeDelta(Base):
    """A change to the logs of one UTC hour and level, not yet folded into
    ``log_volume_hours`` (PostgreSQL; see the module's docstring)."""

    __tablename__ = "log_volume_deltas"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    """From a sequence: unique without a lock shared between writers."""
    epoch_hour: Mapped[int] = mapped_column(BigInteger)
    log_level: Mapped[str] = mapped_column(String(20))
    logs: Mapped[int] = mapped_column(BigInteger)
    """Records added (negative: removed) by one statement."""


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


class TaskCountDelta(Base):
    """A change to ``task_count_hours`` not yet folded into it (PostgreSQL)."""

    __tablename__ = "task_count_deltas"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    epoch_hour: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(10))
    type: Mapped[str] = mapped_column(String(50))
    priority: Mapped[str] = mapped_column(String(20))
    tasks: Mapped[int] = mapped_column(BigInteger)


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
_ROLLUP = cast(Table, LogVolumeHour.__table__)
_TASKS = cast(Table, TaskCountHour.__table__)
_LOG_DELTAS = cast(Table, LogVolumeDelta.__table__)
_TASK_DELTAS = cast(Table, TaskCountDelta.__table__)


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
    add_counts(connection, _ROLLUP, "log_level", rows)


def add_counts(
    connection: Connection, hours: Table, key: str, rows: Iterable[tuple[datetime, str]]
) -> None:
    """Add rows just inserted (``(timestamp, key)`` each) to the hour table ``hours`` (keyed
    by ``epoch_hour`` and ``key``, counting in ``logs``), one upsert for the batch. SQLite
    only (see :func:`count_inserted`)."""
    if connection.dialect.name != "sqlite":
        return
    counts = Counter((epoch_hour(when), value) for when, value in rows)
    if not counts:
        return
    stmt = sqlite.insert(hours)
    upsert = stmt.on_conflict_do_update(
        index_elements=[hours.c.epoch_hour, hours.c[key]],
        set_={"logs": hours.c.logs + stmt.excluded.logs},
    )
    connection.execute(
        upsert,
        [{"epoch_hour": h, key: value, "logs": n} for (h, value), n in sorted(counts.items())],
    )


@event.listens_for(AgentLog, "after_insert")
def _count_orm_insert(_mapper: Any, connection: Connection, log: AgentLog) -> None:
    # A log added through the ORM (``add_log``, seeding, tests) is counted as it is flushed.
    level = getattr(log.log_level, "value", log.log_level)
    count_inserted(connection, [(log.timestamp, str(level))])


def forget_log_hours(connection: Connection, since: datetime | None, until: datetime) -> None:
    """Remove the hours ``[since, until)`` (whole hours; None: from the first) from the
    rollup and its deltas, for logs that leave without a DELETE (a dropped partition). The
    caller holds a lock that has waited for every writer of those hours' logs: a delta still
    uncommitted would survive the logs it counts."""
    # Deltas first: a fold running meanwhile holds them, this waits for it, and the hour rows'
    # DELETE (a later statement) then sees what it folded. The other order deadlocks with it.
    # The error groups (models/error_group.py) count the same logs.
    for table in (ddl.LOG_DELTAS, ddl.ERROR_DELTAS, ddl.LOGS, ddl.ERRORS):
        where = "epoch_hour < :end" + ("" if since is None else " AND epoch_hour >= :first")
        connection.execute(
            text(f"DELETE FROM {table} WHERE {where}"),  # noqa: S608  (constants)
            {"end": epoch_hour(until), "first": None if since is None else epoch_hour(since)},
        )


def compact(connection: Connection) -> int:
    """Fold every committed delta into the hour tables (one row per key), in the connection's
    transaction; returns how many hour rows the deltas changed. Safe beside writers: a delta
    committed while it runs stays for the next run (see ``rollup_ddl._PG_COMPACT``)."""
    changed = 0
    for rollup in ddl.ROLLUPS:
        fold, *rest = ddl.compact_sql(connection.dialect.name, *rollup)
        changed += max(connection.exec_driver_sql(fold).rowcount, 0)
        for statement in rest:
            connection.exec_driver_sql(statement)
    return changed


def rebuild_log_hours(connection: Connection) -> int:
    """Count every log again into ``log_volume_hours`` (in the connection's transaction, its
    deltas dropped); returns the number of rows of the rollup. For a database filled by other
    means than the store (SQLite), or after ``db check`` found drift."""
    return recount(
        connection, _ROLLUP, _LOG_DELTAS, "agent_logs", ddl.backfill_sql(connection.dialect.name)
    )


def recount(connection: Connection, hours: Table, deltas: Table, rows: str, backfill: str) -> int:
    """Empty the rollup ``hours`` and its ``deltas`` and count again with the INSERT
    ``backfill``, in the connection's transaction; returns the number of hour rows. On
    PostgreSQL the tables counted (``rows``) are locked in SHARE mode first, so that writers
    wait for this transaction instead of appending deltas meanwhile."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"LOCK TABLE {rows} IN SHARE MODE")
        connection.exec_driver_sql(f"LOCK TABLE {hours.name}, {deltas.name}")
    connection.execute(delete(deltas))
    connection.execute(delete(hours))
    connection.exec_driver_sql(backfill)
    return int(connection.execute(select(func.count()).select_from(hours)).scalar_one())


def summed(
    hours: Table,
    deltas: Table,
    keys: list[str],
    n: str,
    first: int | None = None,
    end: int | None = None,
    *,
    per_hour: bool = True,
    less: Select[Any] | None = None,
) -> Select[Any]:
    """Each ``(epoch_hour, *keys)``'s count (column ``n``): its hour row plus its deltas not
    yet folded, for the hours ``[first, end)`` (None: unbounded). What a rollup says. With
    ``per_hour=False``, each ``keys``' count over all those hours instead. ``less``: rows of
    ``(*keys, n)`` added to the sums (negative counts, to take rows away), in the same
    statement, so read in the same snapshot as the rollup."""
    if per_hour:
        keys = ["epoch_hour", *keys]

    def rows(table: Table) -> Select[Any]:
        stmt = select(*(table.c[k] for k in keys), table.c[n].label("n"))
        if first is not None:
            stmt = stmt.where(table.c.epoch_hour >= first)
        if end is not None:
            stmt = stmt.where(table.c.epoch_hour < end)
        return stmt

    both = union_all(rows(hours), rows(deltas), *([less] if less is not None else [])).subquery()
    group = [both.c[k] for k in keys]
    return select(*group, func.sum(both.c.n)).group_by(*group)


def kept_counts(
    connection: Connection, hours: Table, deltas: Table, keys: list[str], n: str
) -> dict[tuple[Any, ...], int]:
    """Each ``(epoch_hour, *keys)``'s count: its hour row plus its deltas."""
    return {
        (int(hour), *(str(k) for k in key)): int(count)
        for hour, *key, count in connection.execute(summed(hours, deltas, keys, n))
    }


def differing(
    counted: dict[tuple[Any, ...], int], kept: dict[tuple[Any, ...], int]
) -> list[tuple[tuple[Any, ...], int, int]]:
    """``(key, rollup, counted)`` of every key whose rollup count (``kept``) differs from a
    count of the rows (``counted``), in key order; a key missing from one side counts 0."""
    return [
        (key, kept.get(key, 0), counted.get(key, 0))
        for key in sorted(set(counted) | set(kept))
        if kept.get(key, 0) != counted.get(key, 0)
    ]


def log_hours_drift(connection: Connection) -> list[tuple[int, str, int, int]]:
    """``(epoch_hour, level, rollup, logs)`` of every hour and level where the rollup (hours
    and deltas) differs from a count of the logs (empty when exact)."""
    hour = _hour_column(connection.dialect.name)
    raw = {
        (int(h), str(getattr(lvl, "value", lvl))): int(n)
        for h, lvl, n in connection.execute(
            select(hour, AgentLog.log_level, func.count()).group_by(hour, AgentLog.log_level)
        )
    }
    kept = kept_counts(connection, _ROLLUP, _LOG_DELTAS, ["log_level"], "logs")
    return [(h, lvl, k, n) for (h, lvl), k, n in differing(raw, kept)]


def _hour_column(dialect: str) -> Any:
    return literal_column(ddl.HOUR_SQL[dialect].replace('"timestamp"', 'agent_logs."timestamp"'))


def rebuild_task_hours(connection: Connection) -> int:
    """Count every task and step again into ``task_count_hours`` (in the connection's
    transaction, its deltas dropped); returns the number of rows of the rollup."""
    backfill = f"INSERT INTO {ddl.TASKS} (epoch_hour, kind, type, priority, tasks) "
    return recount(
        connection,
        _TASKS,
        _TASK_DELTAS,
        "tasks, history",
        backfill + ddl.task_counts_sql(connection.dialect.name),
    )


def task_hours_drift(connection: Connection) -> list[tuple[tuple[Any, ...], int, int]]:
    """``((epoch_hour, kind, type, priority), rollup, counted)`` wherever the rollup (hours
    and deltas) differs from a count of the tasks and their history (empty when exact)."""
    counted = {
        (int(h), str(k), str(t), str(p)): int(n)
        for h, k, t, p, n in connection.exec_driver_sql(
            ddl.task_counts_sql(connection.dialect.name)
        )
    }
    kept = kept_counts(connection, _TASKS, _TASK_DELTAS, ["kind", "type", "priority"], "tasks")
    return differing(counted, kept)


# Schemas built from the models (``create_all``: some tests, benchmarks) get the triggers too;
# after every table, since they name both.
for _statement in ddl.pg_create() + ddl.task_pg_create():
    event.listen(Base.metadata, "after_create", dialect_ddl(_statement, "postgresql"))
for _statement in ddl.sqlite_create() + ddl.task_sqlite_create():
    event.listen(Base.metadata, "after_create", dialect_ddl(_statement, "sqlite"))
