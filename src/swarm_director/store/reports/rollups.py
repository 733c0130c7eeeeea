"""Reading and keeping ``log_volume_hours`` (see :mod:`swarm_director.models.rollup`).

A report reads the whole UTC hours of its range from the rollup and the partial hours at
either end from the logs themselves, so its figures are those of the raw query. That holds
for hour buckets and for day buckets in a zone whose offsets are whole hours and change on
whole hours; for minute buckets and other zones :func:`whole_hours` says no and the report
reads the logs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Connection, Table, delete, func, literal_column, select
from sqlalchemy.dialects import sqlite

from swarm_director.models.log import AgentLog
from swarm_director.models.rollup import HOUR_SQL, TABLE, LogVolumeHour, backfill_sql
from swarm_director.store.reports.window import Window

_ROLLUP = cast(Table, LogVolumeHour.__table__)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_HOUR = timedelta(hours=1)


def epoch_hour(when: datetime) -> int:
    """Whole UTC hours since the epoch of ``when`` (naive: UTC), in integers (no float)."""
    aware = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
    return (aware - _EPOCH) // _HOUR


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


@dataclass(frozen=True)
class HourSpan:
    """The whole UTC hours ``[first, end)`` of a range (as :func:`epoch_hour` numbers)."""

    first: int
    end: int

    @property
    def since(self) -> datetime:
        return hour_start(self.first)

    @property
    def until(self) -> datetime:
        return hour_start(self.end)


def hour_start(hour: int) -> datetime:
    """The UTC instant an :func:`epoch_hour` starts."""
    return _EPOCH + hour * _HOUR


def whole_hours(window: Window) -> HourSpan | None:
    """The whole hours of ``window`` the rollup can answer for, or None when its buckets are
    not unions of UTC hours (minute buckets; a zone offset or offset change off the hour)."""
    if window.bucket == "minute":
        return None
    for start, offset in window.offsets:
        if offset % 3600 or (start != window.since and start.minute + start.second):
            return None
    first = -(-(window.since - _EPOCH) // _HOUR)  # ceiling
    end = epoch_hour(window.until)
    return HourSpan(first, end) if first < end else None


def log_hours(connection: Connection, span: HourSpan) -> list[tuple[int, str, int]]:
    """``(epoch_hour, level, logs)`` of the hours in ``span`` that have logs."""
    stmt = select(_ROLLUP.c.epoch_hour, _ROLLUP.c.log_level, _ROLLUP.c.logs).where(
        _ROLLUP.c.epoch_hour >= span.first,
        _ROLLUP.c.epoch_hour < span.end,
        _ROLLUP.c.logs != 0,
    )
    return [(int(h), str(lvl), int(n)) for h, lvl, n in connection.execute(stmt)]


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
        connection.exec_driver_sql(f"LOCK TABLE agent_logs IN SHARE MODE; LOCK TABLE {TABLE}")
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
