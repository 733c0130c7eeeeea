"""Attempts per UTC hour of their claim, task type, agent and kind (``claimed``, and
``completed`` or ``failed`` once ended), for the failures report's failure rates: a month of
a busy swarm is a million attempts, their hours, types and agents a few tens of thousands.

The rollup counts what the report counted from ``task_attempts`` joined to the tasks: the
attempts of tasks that exist, under each task's current type. Row triggers keep it so in the
writing transaction (:mod:`swarm_director.models.attempt_count_ddl`): an attempt claimed,
ended or changed, a task deleted (its attempts leave the counts) or given another type by
hand (they move). The history's own triggers keep ``task_attempts`` (see
:mod:`swarm_director.models.attempt`), so history retention and hand edits of the history
reach the counts through them. It shares the rollups' scheme
(:mod:`swarm_director.models.rollup`): on PostgreSQL the triggers append to
``attempt_count_deltas`` and compaction folds them; on SQLite they upsert.

``db check`` compares it with a count of the attempts (:func:`attempt_counts_drift`) and
``db rebuild-rollups`` counts again (:func:`rebuild_attempt_counts`).
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import BigInteger, Connection, String, Table, event
from sqlalchemy.orm import Mapped, mapped_column

from swarm_director.db.base import Base
from swarm_director.db.ddl import dialect_ddl
from swarm_director.models import attempt_count_ddl as ddl
from swarm_director.models.log import BigId
from swarm_director.models.rollup import differing, kept_counts, recount

#: The kinds an attempt is counted under.
CLAIMED, COMPLETED, FAILED = "claimed", "completed", "failed"
UNASSIGNED = ddl.UNASSIGNED


class AttemptCountHour(Base):
    """Attempts claimed in one UTC hour, by the task's current type and the claiming agent,
    per kind (what ``task_attempts`` and ``tasks`` hold now)."""

    __tablename__ = ddl.COUNTS

    epoch_hour: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    """Whole hours since 1970-01-01T00:00Z of the claim."""
    kind: Mapped[str] = mapped_column(String(10), primary_key=True)
    """``claimed`` (every attempt), ``completed`` or ``failed`` (how it ended)."""
    type: Mapped[str] = mapped_column(String(50), primary_key=True)
    agent_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    """The claiming agent; :data:`UNASSIGNED` (0) for an attempt without one."""
    attempts: Mapped[int] = mapped_column(BigInteger)


class AttemptCountDelta(Base):
    """A change to ``attempt_count_hours`` not yet folded into it (PostgreSQL)."""

    __tablename__ = ddl.COUNT_DELTAS

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    epoch_hour: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(10))
    type: Mapped[str] = mapped_column(String(50))
    agent_id: Mapped[int] = mapped_column(BigInteger)
    attempts: Mapped[int] = mapped_column(BigInteger)


HOURS = cast(Table, AttemptCountHour.__table__)
DELTAS = cast(Table, AttemptCountDelta.__table__)
KEYS = ["kind", "type", "agent_id"]


def rebuild_attempt_counts(connection: Connection) -> int:
    """Count every attempt again into ``attempt_count_hours`` (its deltas dropped), in the
    connection's transaction; returns the number of rows of the rollup. Run it after
    :func:`~swarm_director.models.attempt.rebuild_attempts`."""
    backfill = ddl.backfill_sql(connection.dialect.name)
    return recount(connection, HOURS, DELTAS, "tasks, task_attempts", backfill)


def attempt_counts_drift(connection: Connection) -> list[tuple[tuple[Any, ...], int, int]]:
    """``((epoch_hour, kind, type, agent_id), rollup, counted)`` wherever the rollup (hours
    and deltas) differs from a count of the attempts (empty when exact)."""
    counted = {
        (int(h), str(k), str(t), str(int(a))): int(n)
        for h, k, t, a, n in connection.exec_driver_sql(ddl.counts_sql(connection.dialect.name))
    }
    return differing(counted, kept_counts(connection, HOURS, DELTAS, KEYS, "attempts"))


# Schemas built from the models (``create_all``) get the triggers too, after every table.
for _statement in ddl.pg_create():
    event.listen(Base.metadata, "after_create", dialect_ddl(_statement, "postgresql"))
for _statement in ddl.sqlite_create():
    event.listen(Base.metadata, "after_create", dialect_ddl(_statement, "sqlite"))
