"""Retention and upkeep of the monthly partitions of ``agent_logs`` (PostgreSQL).

A month whose every row the policy deletes goes as a whole with ``DROP TABLE``: instant, no
WAL for the rows, no vacuum, the space back to the file system at once. A month is whole-drop
material when it ends before the general cutoff *and* holds no row that a per-level rule
keeps (e.g. an error younger than ``error=90d``); such a month, the month that straddles the
cutoff and the default partition are left to the batched ``DELETE`` of the caller, which
partition pruning confines to them. A task-status filter needs a look at each row, so it
disables whole drops.

The drop runs in one transaction that first locks each chosen partition against writers
(``SHARE``), checks again that it holds nothing to keep, optionally hands the connection to
the archiver (which reads the rows under the same lock and publishes the archive file before
anything is dropped), then drops. ``DROP`` briefly needs an exclusive lock on the parent
table; ``lock_timeout`` bounds the wait, and on timeout nothing is dropped (the run fails
with the reason; the archive, if written, holds rows that are all still in the table).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from swarm_director.db.partitions import (
    DEFAULT_MONTHS_AHEAD,
    Partition,
    add_months,
    ensure_default_partition,
    ensure_partitions,
    list_partitions,
    month_start,
    partition_key,
    relation_bytes,
)
from swarm_director.models import AgentLog, LogLevel
from swarm_director.models.rollup import forget_log_hours
from swarm_director.ops.dbinfo import quoted, reader, table_of

LOGS = table_of(AgentLog)
#: Longest wait for the exclusive lock a DROP or a new partition needs on agent_logs.
LOCK_TIMEOUT = "5s"


@dataclass
class DropResult:
    """Partitions dropped by :func:`drop_partitions`, their rows and bytes."""

    names: list[str] = field(default_factory=list)
    rows: int = 0
    bytes: int = 0
    seconds: float = 0.0


def is_partitioned(engine: Engine) -> bool:
    """True if ``agent_logs`` is partitioned by its model's partition column here."""
    if engine.dialect.name != "postgresql":
        return False
    with reader(engine).connect() as conn:
        return partition_key(conn, LOGS.name) is not None


def _keeps_rows(
    conn: Connection, part: Partition, keep: dict[LogLevel, sa.ColumnElement[bool]]
) -> bool:
    """True if ``part`` holds a row that a per-level rule keeps."""
    assert part.lower is not None and part.upper is not None
    for level, younger in keep.items():
        query = sa.select(
            sa.exists().where(
                LOGS.c.log_level == level,
                younger,
                LOGS.c.timestamp >= part.lower,
                LOGS.c.timestamp < part.upper,
            )
        )
        if conn.execute(query).scalar():
            return True
    return False


def _kept_rules(
    keep: dict[LogLevel, datetime], upper: datetime
) -> dict[LogLevel, sa.ColumnElement[bool]]:
    # A level keeps rows from its cutoff on: only one that falls before the partition's end
    # can keep a row of it.
    return {level: LOGS.c.timestamp >= cut for level, cut in keep.items() if cut < upper}


def plan_drops(
    engine: Engine,
    older_than_cutoff: datetime,
    keep_cutoffs: dict[LogLevel, datetime],
) -> list[Partition]:
    """The monthly partitions every row of which the policy deletes (no locks taken)."""
    with reader(engine).connect() as conn:
        if partition_key(conn, LOGS.name) is None:
            return []
        chosen = []
        for part in list_partitions(conn, LOGS.name):
            if part.is_default or part.upper is None or part.upper > older_than_cutoff:
                continue
            if not _keeps_rows(conn, part, _kept_rules(keep_cutoffs, part.upper)):
                chosen.append(part)
        return chosen


def drop_partitions(
    engine: Engine,
    parts: list[Partition],
    keep_cutoffs: dict[LogLevel, datetime],
    *,
    archive: Callable[[Connection, list[Partition]], None] | None = None,
) -> DropResult:
    """Drop ``parts`` (from :func:`plan_drops`) in one transaction; see the module docstring.

    ``archive(conn, dropped)`` is called after the locks and before the drop, with the
    partitions that are still to go.
    """
    result = DropResult()
    if not parts:
        return result
    started = time.perf_counter()
    with engine.begin() as conn:
        conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        going: list[Partition] = []
        for part in parts:
            assert part.upper is not None
            conn.exec_driver_sql(f"LOCK TABLE {quoted(conn, part.name)} IN SHARE MODE")
            if not _keeps_rows(conn, part, _kept_rules(keep_cutoffs, part.upper)):
                going.append(part)
        for part in going:
            table = sa.table(part.name)
            result.rows += int(
                conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
            )
            result.bytes += relation_bytes(conn, part.name)
        if archive is not None:
            archive(conn, going)
        for part in going:
            # A DROP fires no trigger: the month's hours leave the rollup and its deltas here
            # (every row of [lower, upper) is in this partition, so these hours count only its
            # rows; its SHARE lock above waited for every writer of it, so none of their deltas
            # is still uncommitted).
            assert part.upper is not None  # plan_drops never picks the default partition
            forget_log_hours(conn, part.lower, part.upper)
            conn.exec_driver_sql(f"DROP TABLE {quoted(conn, part.name)}")
            result.names.append(part.name)
    result.seconds = time.perf_counter() - started
    return result


def ensure_log_partitions(
    engine: Engine, *, months_ahead: int = DEFAULT_MONTHS_AHEAD, now: datetime
) -> list[str]:
    """Create the partitions of this month and ``months_ahead`` more, the default partition,
    and a partition for each month that has rows in the default one (moving them in).

    Returns the names created. A no-op on SQLite and on a table that is not partitioned.
    """
    if not is_partitioned(engine):
        return []
    current = month_start(now)
    wanted = [add_months(current, n) for n in range(months_ahead + 1)]
    created: list[str] = []
    with engine.begin() as conn:
        conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        if ensure_default_partition(conn, LOGS.name):
            created.append(f"{LOGS.name}_default")
        default = next(p for p in list_partitions(conn, LOGS.name) if p.is_default)
        strays = sa.table(default.name, sa.column("timestamp"))
        months = sa.select(sa.func.min(strays.c.timestamp)).group_by(
            sa.func.date_trunc("month", sa.func.timezone("UTC", strays.c.timestamp))
        )
        wanted.extend(conn.execute(months).scalars())
        created.extend(ensure_partitions(conn, LOGS.name, wanted))
    return created
