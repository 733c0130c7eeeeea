"""Reading and keeping ``log_volume_hours`` (see :mod:`swarm_director.models.rollup`).

A report reads the whole UTC hours of its range from the rollup and the partial hours at
either end from the logs themselves, so its figures are those of the raw query. That holds
for hour buckets and for day buckets in a zone whose offsets are whole hours and change on
whole hours; for minute buckets and other zones :func:`whole_hours` says no and the report
reads the logs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Connection, Table

from swarm_director.models.attempt_count import DELTAS as _ATTEMPT_DELTAS
from swarm_director.models.attempt_count import HOURS as _ATTEMPTS
from swarm_director.models.attempt_count import KEYS, UNASSIGNED
from swarm_director.models.rollup import (
    EPOCH,
    HOUR,
    LogVolumeDelta,
    LogVolumeHour,
    TaskCountDelta,
    TaskCountHour,
    epoch_hour,
    hour_start,
    summed,
)
from swarm_director.store.reports.window import Window

_ROLLUP = cast(Table, LogVolumeHour.__table__)
_TASKS = cast(Table, TaskCountHour.__table__)
_LOG_DELTAS = cast(Table, LogVolumeDelta.__table__)
_TASK_DELTAS = cast(Table, TaskCountDelta.__table__)


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


def whole_hours(window: Window) -> HourSpan | None:
    """The whole hours of ``window`` the rollup can answer for, or None when its buckets are
    not unions of UTC hours (minute buckets; a zone offset or offset change off the hour)."""
    if window.bucket == "minute":
        return None
    for start, offset in window.offsets:
        if offset % 3600 or (start != window.since and start.minute + start.second):
            return None
    return hours_within(window.since, window.until)


def hours_within(since: datetime, until: datetime) -> HourSpan | None:
    """The whole UTC hours inside ``[since, until)``, or None when there is none."""
    first = -(-(since - EPOCH) // HOUR)  # ceiling
    end = epoch_hour(until)
    return HourSpan(first, end) if first < end else None


def log_hours(connection: Connection, span: HourSpan) -> list[tuple[int, str, int]]:
    """``(epoch_hour, level, logs)`` of the hours in ``span`` that have logs."""
    stmt = summed(_ROLLUP, _LOG_DELTAS, ["log_level"], "logs", span.first, span.end)
    return [(int(h), str(lvl), int(n)) for h, lvl, n in connection.execute(stmt) if n]


def task_hours(
    connection: Connection, span: HourSpan, by: str | None
) -> list[tuple[int, str, str | None, int]]:
    """``(epoch_hour, kind, key, tasks)`` of the hours in ``span``: ``key`` the type or
    priority with ``by``, else None."""
    keys = ["kind", *([by] if by else [])]
    stmt = summed(_TASKS, _TASK_DELTAS, keys, "tasks", span.first, span.end)
    found = []
    for row in connection.execute(stmt):
        count = int(row[-1])
        if count:
            found.append((int(row[0]), str(row[1]), str(row[2]) if by else None, count))
    return found


def attempt_totals(
    connection: Connection, span: HourSpan
) -> list[tuple[str, str, int | None, int]]:
    """``(kind, type, agent_id, attempts)`` of the attempts claimed in the hours of ``span``
    (``agent_id`` None for attempts without an agent), from ``attempt_count_hours``."""
    stmt = summed(
        _ATTEMPTS, _ATTEMPT_DELTAS, KEYS, "attempts", span.first, span.end, per_hour=False
    )
    return [
        (str(row[0]), str(row[1]), None if row[2] == UNASSIGNED else int(row[2]), int(row[3]))
        for row in connection.execute(stmt)
        if row[3]
    ]
