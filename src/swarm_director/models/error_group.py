"""Error-level logs per UTC hour and message pattern, for the failures report's most frequent
errors: a month of error logs is hundreds of thousands of rows, their patterns a few hundred.

A log's pattern is its message with numbers and ids masked
(:mod:`swarm_director.models.log_pattern`), computed in Python when the log is written
(``agent_logs.error_pattern``, error-level rows only): SQLite has no regular expressions, and
one function keeps both dialects' groups identical. The rollup then needs no masking in SQL:
its triggers read the stored column, as the log volume rollup's read the level, and share
that rollup's scheme (:mod:`swarm_director.models.rollup`): on PostgreSQL statement triggers
append to ``error_group_deltas`` and compaction folds them; on SQLite the store counts
inserts in Python and row triggers count deletes and updates.

An error log written by other means than the store (SQL by hand, a raw fill) has no pattern
(NULL); the rollup counts it under the empty pattern and the report masks those logs as it
reads them. ``swarm-director db rebuild-rollups`` gives them their patterns.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Connection,
    Row,
    String,
    Table,
    bindparam,
    column,
    delete,
    event,
    func,
    select,
    update,
    values,
)
from sqlalchemy.orm import Mapped, mapped_column

from swarm_director.db.base import Base
from swarm_director.db.ddl import dialect_ddl
from swarm_director.enums import LogLevel
from swarm_director.models import rollup_ddl as ddl
from swarm_director.models.log import AgentLog, BigId
from swarm_director.models.log_pattern import PATTERN_LENGTH, pattern_of
from swarm_director.models.rollup import add_counts, differing, kept_counts

#: The rollup's key for error logs that have no pattern (written by hand).
UNMASKED = ""
#: Error logs given their pattern per statement by :func:`fill_patterns`.
FILL_BATCH = 5_000
_ERROR = LogLevel.ERROR.value


class ErrorGroupHour(Base):
    """Error-level logs of one UTC hour and pattern (what ``agent_logs`` holds now)."""

    __tablename__ = "error_group_hours"

    epoch_hour: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    pattern: Mapped[str] = mapped_column(String(PATTERN_LENGTH), primary_key=True)
    """The logs' ``error_pattern``; empty for logs that have none."""
    logs: Mapped[int] = mapped_column(BigInteger)


class ErrorGroupDelta(Base):
    """A change to ``error_group_hours`` not yet folded into it (PostgreSQL)."""

    __tablename__ = "error_group_deltas"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    epoch_hour: Mapped[int] = mapped_column(BigInteger)
    pattern: Mapped[str] = mapped_column(String(PATTERN_LENGTH))
    logs: Mapped[int] = mapped_column(BigInteger)


HOURS = cast(Table, ErrorGroupHour.__table__)
DELTAS = cast(Table, ErrorGroupDelta.__table__)
_LOGS = cast(Table, AgentLog.__table__)


def count_inserted_errors(
    connection: Connection, rows: Iterable[tuple[datetime, str | None]]
) -> None:
    """Add error logs just inserted (``(timestamp, error_pattern)`` each, None patterns
    counted as :data:`UNMASKED`) to the rollup, one upsert for the batch. SQLite only, as
    :func:`~swarm_director.models.rollup.count_inserted`."""
    add_counts(connection, HOURS, "pattern", ((when, p or UNMASKED) for when, p in rows))


def fill_patterns(connection: Connection) -> int:
    """Give every error log without a pattern its pattern (in the connection's transaction,
    :data:`FILL_BATCH` logs a statement); returns how many."""
    filled = 0
    last = 0
    while True:
        rows = connection.execute(
            select(_LOGS.c.id, _LOGS.c.message)
            .where(
                _LOGS.c.log_level == _ERROR,
                _LOGS.c.error_pattern.is_(None),
                _LOGS.c.id > last,
            )
            .order_by(_LOGS.c.id)
            .limit(FILL_BATCH)
        ).all()
        if not rows:
            return filled
        connection.execute(*_set_patterns(connection.dialect.name, rows))
        filled += len(rows)
        last = rows[-1][0]


def _set_patterns(dialect: str, rows: Sequence[Row[Any, Any]]) -> tuple[Any, ...]:
    """The statement (and parameters) that writes ``rows``' patterns: on PostgreSQL one
    ``UPDATE ... FROM (VALUES ...)``, so its statement triggers fire once a batch; on SQLite,
    which has no such alias list, an UPDATE a row (its row triggers fire a row anyway)."""
    patterns = [(log_id, pattern_of(_ERROR, text)) for log_id, text in rows]
    if dialect == "postgresql":
        found = values(column("log_id", BigInteger), column("pattern", String), name="found").data(
            patterns
        )
        return (
            update(_LOGS).where(_LOGS.c.id == found.c.log_id).values(error_pattern=found.c.pattern),
        )
    stmt = update(_LOGS).where(_LOGS.c.id == bindparam("log_id"))
    return (
        stmt.values(error_pattern=bindparam("pattern")),
        [{"log_id": log_id, "pattern": pattern} for log_id, pattern in patterns],
    )


def rebuild_error_groups(connection: Connection) -> int:
    """Give pattern-less error logs their pattern, then count every error log again into
    ``error_group_hours`` (its deltas dropped), in the connection's transaction; returns the
    number of rows of the rollup."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("LOCK TABLE agent_logs IN SHARE ROW EXCLUSIVE MODE")
        connection.exec_driver_sql(f"LOCK TABLE {ddl.ERRORS}, {ddl.ERROR_DELTAS}")
    fill_patterns(connection)
    connection.execute(delete(DELTAS))
    connection.execute(delete(HOURS))
    connection.exec_driver_sql(ddl.error_backfill_sql(connection.dialect.name))
    return int(connection.execute(select(func.count()).select_from(HOURS)).scalar_one())


@event.listens_for(AgentLog, "after_insert")
def _count_orm_insert(_mapper: Any, connection: Connection, log: AgentLog) -> None:
    # As the log volume's (models/rollup.py): an error log added through the ORM.
    if getattr(log.log_level, "value", log.log_level) == _ERROR:
        count_inserted_errors(connection, [(log.timestamp, log.error_pattern)])


def error_groups_drift(connection: Connection) -> list[tuple[int, str, int, int]]:
    """``(epoch_hour, pattern, rollup, logs)`` wherever the rollup (hours and deltas) differs
    from a count of the error logs (empty when exact)."""
    counted = {
        (int(h), str(p)): int(n)
        for h, p, n in connection.exec_driver_sql(ddl.error_counts_sql(connection.dialect.name))
    }
    kept = kept_counts(connection, HOURS, DELTAS, ["pattern"], "logs")
    return [(h, p, k, n) for (h, p), k, n in differing(counted, kept)]


# Schemas built from the models (``create_all``) get the triggers too, after every table.
for _statement in ddl.error_pg_create():
    event.listen(Base.metadata, "after_create", dialect_ddl(_statement, "postgresql"))
for _statement in ddl.error_sqlite_create():
    event.listen(Base.metadata, "after_create", dialect_ddl(_statement, "sqlite"))
