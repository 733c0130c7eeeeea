"""Rollups for the reports: log records counted per hour and level, kept exact by the writes.

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
  ~92,000 → ~49,000 rows/s of CPU), so the two insert paths of the store (``add_logs`` and
  ``add_log``) count their rows in Python and send one upsert per batch
  (``store/reports/rollups.py``). A row inserted by other means is not counted until
  ``swarm-director db rebuild-rollups``; ``db check`` reports the drift.

Upserts sort their keys so that two transactions never lock the same rows in opposite orders.
The migration ``012_add_report_rollups`` carries its own copy of this DDL.
"""

from __future__ import annotations

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


def epoch_hour(when: datetime) -> int:
    """Whole UTC hours since the epoch of ``when`` (naive: UTC), in integers (no float)."""
    aware = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
    return (aware - EPOCH) // HOUR


def hour_start(hour: int) -> datetime:
    """The UTC instant an :func:`epoch_hour` starts."""
    return EPOCH + hour * HOUR


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


def _ddl(statement: str, dialect: str) -> DDL:
    # DDL() applies %-formatting to its text; strftime's %s must survive it.
    ddl: DDL = DDL(statement.replace("%", "%%"))  # type: ignore[no-untyped-call]
    return ddl.execute_if(dialect=dialect)


# Schemas built from the models (``create_all``: some tests, benchmarks) get the triggers too;
# after every table, since they name both.
for _statement in pg_create():
    event.listen(Base.metadata, "after_create", _ddl(_statement, "postgresql"))
for _statement in sqlite_create():
    event.listen(Base.metadata, "after_create", _ddl(_statement, "sqlite"))
