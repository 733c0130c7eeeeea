"""The work queue's attempts, one row per ``claim`` step, kept by triggers on the history.

The durations and failures reports read this table instead of deriving each attempt from the
history with window functions or lookups per claim (seconds for a month of 100,000 tasks:
docs/benchmarks.md, "Reports"). The history stays the record: triggers on its queue steps
keep the table equal to it, in the writing transaction. A step appended to its task's steps
(the queue's own case) ends the claim before it, if that is one, and a claim starts its
attempt; a step written between others, or deleted, recomputes from the history the attempts
it touches (its own if it is a claim, the claim before it, whose end it is, and the claim
after it, whose wait starts at it). So the table says what the history says at every
commit: under concurrent queue work (each task's steps are written under its row lock), under
history retention and under deletes by hand. A task's type is not copied: the reports join
the task (its current type; a deleted task's attempts are not counted, as before).

The SQL is in :mod:`swarm_director.models.attempt_ddl`; ``db check`` compares the table with
the derivation (:func:`attempts_drift`) and ``db rebuild-rollups`` rebuilds it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Connection,
    Float,
    Index,
    Integer,
    String,
    Table,
    delete,
    event,
    func,
    select,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from swarm_director.db.base import Base
from swarm_director.db.ddl import dialect_ddl
from swarm_director.db.types import UTCDateTime
from swarm_director.models import attempt_ddl as ddl


class TaskAttempt(Base):
    """One claim of a task by the queue: who, which attempt, how long it waited and ran, and
    the step that ended it (none while it runs)."""

    __tablename__ = ddl.ATTEMPTS

    claim_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    """The ``history`` id of the claim step."""
    task_id: Mapped[int] = mapped_column(BigInteger)
    agent_id: Mapped[int | None] = mapped_column(BigInteger)
    """The agent that claimed it (not a foreign key: the attempt outlives the agent)."""
    attempt: Mapped[int | None] = mapped_column(Integer)
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    wait_s: Mapped[float | None] = mapped_column(Float)
    """Seconds from ready to claimed, to the millisecond; null without a step before."""
    run_s: Mapped[float | None] = mapped_column(Float)
    """Seconds from claimed to completed, to the millisecond; null unless completed."""
    end_action: Mapped[str | None] = mapped_column(String(20))
    """The queue step after the claim (``complete``, ``fail``, ``retry``, ``expire``...)."""

    __table_args__ = (
        Index("ix_task_attempts_claimed_at", "claimed_at"),
        # The attempt counts' task triggers read a task's attempts (models/attempt_count.py).
        Index("ix_task_attempts_task_id", "task_id"),
    )


_TABLE = cast(Table, TaskAttempt.__table__)


def rebuild_attempts(connection: Connection) -> int:
    """Derive every attempt from the history again (in the connection's transaction);
    returns how many there are."""
    if connection.dialect.name == "postgresql":
        # Queue steps wait for this transaction instead of refreshing rows meanwhile.
        connection.exec_driver_sql("LOCK TABLE history IN SHARE MODE")
        connection.exec_driver_sql(f"LOCK TABLE {ddl.ATTEMPTS}")
    connection.execute(delete(_TABLE))
    connection.exec_driver_sql(ddl.backfill_sql(connection.dialect.name))
    return int(connection.execute(select(func.count()).select_from(_TABLE)).scalar_one())


#: Differing attempts read per side by :func:`attempts_drift` (db check names a few anyway).
DRIFT_LIMIT = 1000


def attempts_drift(connection: Connection) -> list[tuple[int, Any, Any]]:
    """``(claim_id, kept, derived)`` for each attempt where the table differs from the
    history (either side None where the row is missing), at most :data:`DRIFT_LIMIT` a side;
    empty when they agree. The database compares the two (``EXCEPT`` both ways), so only the
    rows that differ come back."""
    columns = [_TABLE.c[name] for name in ddl.COLUMNS.split(", ")]
    derived = ddl.derived(connection.dialect.name, "true")
    kept = f"SELECT {ddl.COLUMNS} FROM {ddl.ATTEMPTS}"  # noqa: S608  (the module's constants)
    sides: list[dict[int, tuple[Any, ...]]] = []
    for first, second in ((kept, derived), (derived, kept)):
        differing = text(
            f"SELECT * FROM ({first} EXCEPT {second}) AS d ORDER BY 1 LIMIT {DRIFT_LIMIT:d}"  # noqa: S608
        ).columns(*columns)
        sides.append({row[0]: tuple(row) for row in connection.execute(differing)})
    only_kept, only_derived = sides
    return [
        (claim, only_kept.get(claim), only_derived.get(claim))
        for claim in sorted(set(only_kept) | set(only_derived))
    ]


# Schemas built from the models (``create_all``: some tests, benchmarks) get the triggers too.
for _dialect in ("postgresql", "sqlite"):
    for _statement in ddl.create(_dialect):
        event.listen(Base.metadata, "after_create", dialect_ddl(_statement, _dialect))
