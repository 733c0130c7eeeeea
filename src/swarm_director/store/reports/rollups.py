"""Reading and keeping ``log_volume_hours`` (see :mod:`swarm_director.models.rollup`).

A report reads the whole UTC hours of its range from the rollup and the partial hours at
either end from the logs themselves, so its figures are those of the raw query. That holds
for hour buckets and for day buckets in a zone whose offsets are whole hours and change on
whole hours; for minute buckets and other zones :func:`whole_hours` says no and the report
reads the logs.

The partial hour at the end is the exception when nothing lies after the range's end in its
hour (:func:`tail_counts`): then the rollup's count of that hour is the count of its rows
before the end. That is the usual case, a range that ends now, and the hour that a swarm
writing fast fills most: read from the logs, the last 24 hours' report read every log of
the current hour (docs/benchmarks.md, "Reports under live ingest").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar, cast

from sqlalchemy import ColumnElement, Connection, Table

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
_Row = TypeVar("_Row", bound=tuple[Any, ...])


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


def log_hours(
    connection: Connection, first: int, end: int, when: ColumnElement[bool] | None = None
) -> list[tuple[int, str, int]]:
    """``(epoch_hour, level, logs)`` of the hours ``[first, end)`` that have logs (only if
    ``when`` holds, with it)."""
    stmt = summed(_ROLLUP, _LOG_DELTAS, ["log_level"], "logs", first, end, when=when)
    return [(int(h), str(lvl), int(n)) for h, lvl, n in connection.execute(stmt) if n]


def tail_counts(
    until: datetime,
    counts: Callable[[int, ColumnElement[bool]], list[_Row]],
    later: Callable[[datetime, datetime], ColumnElement[bool]],
) -> list[_Row] | None:
    """The rollup's counts of the hour ``until`` falls inside, if no row lies from ``until`` to
    that hour's end (``later(since, until)``: such a row exists): they then count the hour's
    rows before ``until``. ``counts(hour, condition)`` reads them, with the condition checked
    in the same statement. ``[]`` when ``until`` is on the hour (no partial hour); None when
    the rollup cannot stand for the rows (or has none for the hour): read the rows."""
    hour = epoch_hour(until)
    if hour_start(hour) == until:
        return []
    found = counts(hour, ~later(until, hour_start(hour + 1)))
    return found or None


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
